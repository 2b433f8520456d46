using System.Text;
using System.Text.Json.Nodes;
using HfTokenizer = Tokenizers.DotNet.Tokenizer;

namespace Sharpformer.Text.Tests;

/// <summary>Every BertNormalizer switch, read from tokenizer.json, against HF on the whole corpus.</summary>
public class NormalizerOracleTests
{
    public static TheoryData<string, bool> Switches => new()
    {
        { "lowercase", false },
        { "strip_accents", false },
        { "strip_accents", true },
        { "handle_chinese_chars", false },
        { "clean_text", false },
    };

    [Theory]
    [MemberData(nameof(Switches))]
    public void Encode_NormalizerVariant_SameIdsAsHuggingFace(string option, bool value)
    {
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(TestData.BertTokenizerJsonFolder, "tokenizer.json")))!;
        json["normalizer"]![option] = value;
        if (option == "strip_accents" && value)
        {
            json["normalizer"]!["lowercase"] = false; // stripping without lowercasing
        }

        var folder = TestData.NewFolder($"normalizer-{option}-{value}");
        var path = Path.Combine(folder, "tokenizer.json");
        File.WriteAllText(path, json.ToJsonString());
        var oracle = new HfTokenizer(path);
        var ours = AutoTokenizer.FromPretrained(folder);

        var standard = AutoTokenizer.FromPretrained(TestData.BertTokenizerJsonFolder);
        var report = new StringBuilder();
        var changed = 0;
        foreach (var text in TestData.Corpus)
        {
            var expected = oracle.Encode(text).Select(i => (int)i).ToArray();
            changed += standard.Encode(text).Ids.SequenceEqual(expected) ? 0 : 1;
            var actual = ours.Encode(text).Ids.ToArray();
            if (!expected.SequenceEqual(actual))
            {
                report.AppendLine($"'{OracleTests.Escape(text)}': HF [{string.Join(' ', expected)}] ours [{string.Join(' ', actual)}]");
            }
        }

        Assert.True(report.Length == 0, report.ToString());
        Assert.True(changed > 0, $"{option}={value} changed no input; the variant tests nothing");
    }
}
