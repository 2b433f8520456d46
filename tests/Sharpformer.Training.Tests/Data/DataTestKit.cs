using System.Text;
using Sharpformer.Text;
using Sharpformer.Training.Data;

namespace Sharpformer.Training.Tests.Data;

/// <summary>Tiny tokenizers whose ids can be worked out by hand, and scratch folders under the test output folder.</summary>
internal static class DataTestKit
{
    /// <summary>The byte-level tokenizer's end-of-text id (after the 256 byte tokens).</summary>
    public const int ByteEos = 256;

    /// <summary>Special ids of <see cref="BertFolder"/>.</summary>
    public const int Pad = 0, Unk = 1, Cls = 2, Sep = 3, Mask = 4;

    /// <summary>The first "wN" word id of <see cref="BertFolder"/> (w0 = 5 … w59 = 64), then ##a = 65, ##b = 66, ##c = 67, "." = 68.</summary>
    public const int FirstWord = 5, WordCount = 60, ContA = 65, Period = 68, BertVocabularySize = 69;

    private static readonly Lazy<string> Root = new(() =>
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "data-tests");
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }

        Directory.CreateDirectory(dir);
        return dir;
    });

    /// <summary>A new empty folder.</summary>
    public static string NewFolder(string name)
    {
        var dir = Path.Combine(Root.Value, name + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>
    /// Byte-level BPE where token id = byte value (vocab in GPT-2's byte-to-char spelling, id b for byte b) and
    /// &lt;|endoftext|&gt; = 256; with <paramref name="merges"/> also "ĊĊ" (\n\n) 257, "ĠĠ" 258, "Ġt" 259, "he" 260, "Ġthe" 261.
    /// </summary>
    public static ByteLevelBpeTokenizer Bytes(bool merges = false)
    {
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var b = 0; b < 256; b++)
        {
            vocab[ByteLevelBpeTokenizer.BytesToUnicode[b].ToString()] = b;
        }

        vocab["<|endoftext|>"] = ByteEos;
        var list = new List<(string, string)>();
        if (merges)
        {
            (string, string)[] pairs = [("Ċ", "Ċ"), ("Ġ", "Ġ"), ("Ġ", "t"), ("h", "e"), ("Ġt", "he")];
            foreach (var (left, right) in pairs)
            {
                vocab[left + right] = vocab.Count;
                list.Add((left, right));
            }
        }

        return ByteLevelBpeTokenizer.Create(vocab, list);
    }

    /// <summary>A BERT WordPiece folder: [PAD] [UNK] [CLS] [SEP] [MASK], w0…w59, ##a ##b ##c, ".".</summary>
    public static string BertFolder()
    {
        var dir = NewFolder("bert");
        var lines = new List<string> { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" };
        for (var w = 0; w < WordCount; w++)
        {
            lines.Add($"w{w}");
        }

        lines.AddRange(["##a", "##b", "##c", "."]);
        File.WriteAllText(Path.Combine(dir, "vocab.txt"), string.Join("\n", lines) + "\n");
        return dir;
    }

    /// <summary>Writes UTF-8 text (no BOM) and returns the path.</summary>
    public static string Write(string folder, string name, string text)
    {
        var path = Path.Combine(folder, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text, new UTF8Encoding(false));
        return path;
    }

    /// <summary>A cache of <paramref name="corpusPath"/> with the byte tokenizer.</summary>
    public static TokenCache ByteCache(string corpusPath, string cacheDir, bool merges = false) =>
        TokenCache.Open(Corpus.FromPath(corpusPath), Bytes(merges), merges ? "bytes+merges" : "bytes", cacheDir);

    /// <summary>All ids of a cache.</summary>
    public static int[] AllTokens(TokenCache cache)
    {
        var ids = new int[cache.TokenCount];
        cache.CopyTokens(0, ids);
        return ids;
    }

    /// <summary>The [B, T] ids of a batch as rows.</summary>
    public static int[][] Rows(Sharpformer.Tensors.Tensor t)
    {
        var flat = t.ToArray<int>();
        var rows = new int[t.Shape[0]][];
        for (var b = 0; b < rows.Length; b++)
        {
            rows[b] = flat.AsSpan(b * t.Shape[1], t.Shape[1]).ToArray();
        }

        return rows;
    }

    /// <summary>Bytes of an ASCII string as ids of the byte tokenizer.</summary>
    public static int[] Ids(string ascii) => ascii.Select(c => (int)c).ToArray();
}
