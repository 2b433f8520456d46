using Sharpformer.Text;

namespace Sharpformer.Pipelines.Tests;

/// <summary>A small WordPiece vocabulary written to a temp folder, for tests that need exact ids.</summary>
internal static class TestTokenizers
{
    public static readonly string[] Vocab =
    [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "heart", "is", "a", "organ", ".", "cardiac", "large",
        "major", "living", "mechanical", "small", "##ly", "brain", "un", "##real", ",",
    ];

    private static readonly Lazy<TextTokenizer> Small = new(() => Load(Vocab, modelMaxLength: 16));

    /// <summary>Uncased WordPiece over <see cref="Vocab"/>, model_max_length 16.</summary>
    public static TextTokenizer Tiny => Small.Value;

    public static int Id(string token) => Array.IndexOf(Vocab, token);

    public static TextTokenizer Load(string[] vocab, int modelMaxLength)
    {
        var folder = WriteFolder(vocab, modelMaxLength);
        try
        {
            return AutoTokenizer.FromPretrained(folder);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    public static string WriteFolder(string[] vocab, int modelMaxLength, string? folder = null)
    {
        folder ??= Path.Combine(Path.GetTempPath(), $"sharpformer-pipelines-tok-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        File.WriteAllLines(Path.Combine(folder, "vocab.txt"), vocab);
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"),
            $"{{\"do_lower_case\": true, \"model_max_length\": {modelMaxLength}, \"tokenizer_class\": \"BertTokenizer\"}}");
        return folder;
    }
}
