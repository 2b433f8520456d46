using System.Text;
using Sharpformer.Text;

namespace Sharpformer.Training.Tests.FineTuning;

/// <summary>Temporary files and a tiny hand-made WordPiece vocabulary whose tokenization is derivable by hand.</summary>
internal sealed class FineTuningKit : IDisposable
{
    public static readonly string[] Vocab =
    [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "heart", "pump", "##s", "blood", ".", "what", "does", "?",
        "a", "b", "c", "d", "e", "f", "g", "h", "insulin", "is", "made", "in", "pancreas", "lung", "good", "bad",
    ];

    public FineTuningKit()
    {
        Folder = Path.Combine(Path.GetTempPath(), "sharpformer-ft-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Folder);
    }

    public string Folder { get; }

    public static TextTokenizer Tokenizer()
    {
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(string.Join('\n', Vocab) + "\n"));
        return BertWordPieceTokenizer.FromVocab(stream);
    }

    public static int Id(string token) => Array.IndexOf(Vocab, token);

    public string Write(string name, string content)
    {
        var path = Path.Combine(Folder, name);
        File.WriteAllText(path, content, new UTF8Encoding(false));
        return path;
    }

    public void Dispose()
    {
        if (Directory.Exists(Folder)) Directory.Delete(Folder, recursive: true);
    }
}
