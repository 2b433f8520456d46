using System.Text;
using HfTokenizer = Tokenizers.DotNet.Tokenizer;

namespace Sharpformer.Text.Tests;

/// <summary>
/// Our tokenizers against Hugging Face's own Rust tokenizers (Tokenizers.DotNet wraps it) on data/corpus.json.
/// The oracle returns ids only; offsets are checked by the offset tests.
/// </summary>
public class OracleTests
{
    private static readonly Lazy<HfTokenizer> BertOracle = new(() => new HfTokenizer(Path.Combine(TestData.BertTokenizerJsonFolder, "tokenizer.json")));
    private static readonly Lazy<HfTokenizer> Gpt2Oracle = new(() => new HfTokenizer(Path.Combine(TestData.Gpt2TokenizerJsonFolder, "tokenizer.json")));

    public static TheoryData<string> BertFolders => new() { TestData.BertVocabFolder, TestData.BertTokenizerJsonFolder };

    public static TheoryData<string> Gpt2Folders => new() { TestData.Gpt2FilesFolder, TestData.Gpt2TokenizerJsonFolder, TestData.Gpt2LegacyJsonFolder };

    [Theory]
    [MemberData(nameof(BertFolders))]
    public void BertEncode_CorpusAgainstHuggingFace_NoMismatches(string folder)
    {
        var ours = AutoTokenizer.FromPretrained(folder);
        var report = new StringBuilder();
        var mismatches = 0;
        foreach (var text in TestData.Corpus)
        {
            var expected = BertOracle.Value.Encode(text).Select(i => (int)i).ToArray();
            var actual = ours.Encode(text).Ids.ToArray();
            if (!expected.SequenceEqual(actual))
            {
                mismatches++;
                report.AppendLine(Describe(text, expected, actual, ours));
            }
        }

        Assert.True(mismatches == 0, $"{mismatches} of {TestData.Corpus.Count} inputs differ from HF:\n{report}");
    }

    [Fact]
    public void BertDecode_CorpusAgainstHuggingFace_NoMismatches()
    {
        var ours = AutoTokenizer.FromPretrained(TestData.BertVocabFolder);
        var report = new StringBuilder();
        foreach (var text in TestData.Corpus)
        {
            var ids = ours.Encode(text).Ids;
            var expected = BertOracle.Value.Decode(ids.Select(i => (uint)i).ToArray());
            var actual = ours.Decode(ids);
            if (expected != actual)
            {
                report.AppendLine($"{Escape(text)}: HF '{Escape(expected)}' ours '{Escape(actual)}'");
            }
        }

        Assert.True(report.Length == 0, report.ToString());
    }

    [Theory]
    [MemberData(nameof(Gpt2Folders))]
    public void Gpt2Encode_CorpusAgainstHuggingFace_NoMismatches(string folder)
    {
        var ours = AutoTokenizer.FromPretrained(folder);
        var report = new StringBuilder();
        var mismatches = 0;
        foreach (var text in TestData.Corpus)
        {
            var expected = Gpt2Oracle.Value.Encode(text).Select(i => (int)i).ToArray();
            var actual = ours.Encode(text).Ids.ToArray();
            if (!expected.SequenceEqual(actual))
            {
                mismatches++;
                report.AppendLine(Describe(text, expected, actual, ours));
            }
        }

        Assert.True(mismatches == 0, $"{mismatches} of {TestData.Corpus.Count} inputs differ from HF:\n{report}");
    }

    [Fact]
    public void Gpt2Decode_CorpusAgainstHuggingFace_SameText()
    {
        var ours = AutoTokenizer.FromPretrained(TestData.Gpt2FilesFolder);
        var report = new StringBuilder();
        foreach (var text in TestData.Corpus)
        {
            var ids = ours.Encode(text).Ids;
            var expected = Gpt2Oracle.Value.Decode(ids.Select(i => (uint)i).ToArray());
            var actual = ours.Decode(ids); // the wrapper decodes with skip_special_tokens=true
            if (expected != actual)
            {
                report.AppendLine($"{Escape(text)}: HF '{Escape(expected)}' ours '{Escape(actual)}'");
            }
        }

        Assert.True(report.Length == 0, report.ToString());
    }

    [Fact]
    public void Gpt2AddPrefixSpace_CorpusAgainstHuggingFace_NoMismatches()
    {
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(TestData.Gpt2TokenizerJsonFolder, "tokenizer.json")))!;
        json["pre_tokenizer"]!["add_prefix_space"] = true;
        var folder = TestData.NewFolder("gpt2-prefix-space");
        var path = Path.Combine(folder, "tokenizer.json");
        File.WriteAllText(path, json.ToJsonString());
        var oracle = new HfTokenizer(path);
        var ours = AutoTokenizer.FromPretrained(folder);

        var report = new StringBuilder();
        foreach (var text in TestData.Corpus)
        {
            var expected = oracle.Encode(text).Select(i => (int)i).ToArray();
            var actual = ours.Encode(text).Ids.ToArray();
            if (!expected.SequenceEqual(actual))
            {
                report.AppendLine(Describe(text, expected, actual, ours));
            }
        }

        Assert.True(report.Length == 0, report.ToString());
        Assert.Equal([995], ours.Encode("world").Ids); // "world" encodes as " world"
    }

    private static string Describe(string text, int[] expected, int[] actual, TextTokenizer ours) =>
        $"{Escape(text)}\n  HF:   {string.Join(' ', expected.Select(i => $"{i}:{ours.IdToToken(i)}"))}\n  ours: {string.Join(' ', actual.Select(i => $"{i}:{ours.IdToToken(i)}"))}";

    internal static string Escape(string text)
    {
        var b = new StringBuilder();
        foreach (var r in text.EnumerateRunes())
        {
            b.Append(r.Value is < 32 or (>= 0x7F and <= 0xA0) or 0xAD or (>= 0x200B and <= 0x200F) or (>= 0x2028 and <= 0x206F) or 0xFEFF
                ? $"\\u{r.Value:X4}"
                : r.ToString());
        }

        return b.Length > 120 ? b.ToString(0, 120) + "…" : b.ToString();
    }
}
