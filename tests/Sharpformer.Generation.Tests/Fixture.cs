using System.Text.Json;
using Sharpformer.Models.Gpt2;

namespace Sharpformer.Generation.Tests;

/// <summary>The PyTorch fixture of tests/fixtures/gpt2_tiny (see make_fixture.py there).</summary>
internal static class Fixture
{
    public static string Folder => Path.Combine(AppContext.BaseDirectory, "fixtures", "gpt2_tiny");

    private static readonly Lazy<JsonElement> ExpectedLazy = new(() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "expected.json"))).RootElement);

    public static JsonElement Expected => ExpectedLazy.Value;

    public static Gpt2LMHeadModel LoadModel() => Gpt2LMHeadModel.FromPretrained(Folder);

    public static int[] Ints(JsonElement e) => [.. e.EnumerateArray().Select(x => x.GetInt32())];

    public static float[] Floats(JsonElement e) => [.. e.EnumerateArray().Select(x => x.GetSingle())];

    public static int[][] Prompts => [.. Expected.GetProperty("prompts").EnumerateArray().Select(Ints)];

    public static float MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        float max = 0f;
        for (int i = 0; i < a.Length; i++)
        {
            max = Math.Max(max, Math.Abs(a[i] - b[i]));
        }

        return max;
    }

    /// <summary>A folder with a byte-level BPE tokenizer without merges: ids 0–255 are the bytes, 256 is &lt;|endoftext|&gt; (the fixture's vocabulary).</summary>
    public static string ByteTokenizerFolder(string parent)
    {
        var dir = Path.Combine(parent, "byte-tokenizer");
        Directory.CreateDirectory(dir);
        var map = ByteToUnicode();
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int b = 0; b < 256; b++)
        {
            vocab[map[b].ToString()] = b;
        }

        vocab["<|endoftext|>"] = 256;
        File.WriteAllText(Path.Combine(dir, "vocab.json"), JsonSerializer.Serialize(vocab));
        File.WriteAllText(Path.Combine(dir, "merges.txt"), "#version: 0.2\n");
        return dir;
    }

    /// <summary>GPT-2's byte → printable character table (printable Latin-1 bytes map to themselves, the rest to U+0100 on).</summary>
    public static char[] ByteToUnicode()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)next++;
        }

        return map;
    }
}
