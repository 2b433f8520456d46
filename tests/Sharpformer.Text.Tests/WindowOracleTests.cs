using System.Text.Json;

namespace Sharpformer.Text.Tests;

/// <summary>
/// Word ids, sequence ids, offsets and overflowing windows against Hugging Face's Rust tokenizers: data/hf_windows.json,
/// made by data/make_hf_windows.js with the npm package of HF tokenizers on the same tokenizer.json files TestData writes.
/// </summary>
public class WindowOracleTests
{
    private static readonly Lazy<JsonDocument> Fixture = new(() => JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "data", "hf_windows.json"))));

    public static TheoryData<string> Models => new() { "bert", "gpt2" };

    [Theory]
    [MemberData(nameof(Models))]
    public void Encode_WordIdsSequenceIdsAndOffsets_MatchHuggingFace(string model)
    {
        var tokenizer = Tokenizer(model);
        var cases = Fixture.Value.RootElement.GetProperty(model).GetProperty("encodings");
        Assert.True(cases.GetArrayLength() >= 10);
        foreach (var c in cases.EnumerateArray())
        {
            var text = c.GetProperty("text").GetString()!;
            var pair = c.GetProperty("pair").GetString();
            AssertSame(c, tokenizer.Encode(text, pair), $"{model} '{text}' / '{pair}'");
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Encode_OverflowingWindows_MatchHuggingFace(string model)
    {
        var tokenizer = Tokenizer(model);
        foreach (var c in Fixture.Value.RootElement.GetProperty(model).GetProperty("windows").EnumerateArray())
        {
            var text = c.GetProperty("text").GetString()!;
            var pair = c.GetProperty("pair").GetString();
            var encoding = tokenizer.Encode(text, pair, WindowOptions(c));
            var expected = c.GetProperty("windows").EnumerateArray().ToList();
            var actual = new List<TokenEncoding> { encoding };
            actual.AddRange(encoding.Overflowing);
            Assert.True(expected.Count == actual.Count, $"{model} '{text}': HF has {expected.Count} windows, ours {actual.Count}");
            for (var w = 0; w < expected.Count; w++)
            {
                AssertSame(expected[w], actual[w], $"{model} '{text}' window {w}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void EncodeWindows_Batch_FlattensWindowsWithSampleMapping(string model)
    {
        var tokenizer = Tokenizer(model);
        // Only the OnlySecond cases share options per batch; encode those that share max length and stride together.
        var cases = Fixture.Value.RootElement.GetProperty(model).GetProperty("windows").EnumerateArray()
            .Where(c => c.GetProperty("strategy").GetString() == "OnlySecond")
            .GroupBy(c => (c.GetProperty("maxLength").GetInt32(), c.GetProperty("stride").GetInt32()));
        var batches = 0;
        foreach (var group in cases)
        {
            var list = group.ToList();
            var result = tokenizer.EncodeWindows(
                list.Select(c => c.GetProperty("text").GetString()!).ToList(),
                list.Select(c => c.GetProperty("pair").GetString()!).ToList(),
                WindowOptions(list[0]) with { ReturnOverflowingTokens = false });
            var expectedMapping = new List<int>();
            var expectedWindows = new List<JsonElement>();
            for (var b = 0; b < list.Count; b++)
            {
                foreach (var window in list[b].GetProperty("windows").EnumerateArray())
                {
                    expectedMapping.Add(b);
                    expectedWindows.Add(window);
                }
            }

            Assert.Equal(expectedMapping, result.OverflowToSampleMapping);
            Assert.Equal(expectedWindows.Count, result.Count);
            for (var w = 0; w < result.Count; w++)
            {
                AssertSame(expectedWindows[w], result.Encodings[w], $"{model} batch window {w}");
                Assert.Empty(result.Encodings[w].Overflowing);
            }

            batches++;
        }

        Assert.True(batches >= 2);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Encode_LongInputWithoutSpecials_WindowsMatchHuggingFaceTruncate(string model)
    {
        var tokenizer = Tokenizer(model);
        foreach (var c in Fixture.Value.RootElement.GetProperty(model).GetProperty("rawWindows").EnumerateArray())
        {
            var text = c.GetProperty("text").GetString()!;
            var options = new EncodeOptions
            {
                AddSpecialTokens = false,
                Truncation = true,
                MaxLength = c.GetProperty("maxLength").GetInt32(),
                Stride = c.GetProperty("stride").GetInt32(),
                ReturnOverflowingTokens = true,
            };
            var encoding = tokenizer.Encode(text, options: options);
            var expected = c.GetProperty("windows").EnumerateArray().ToList();
            var actual = new List<TokenEncoding> { encoding };
            actual.AddRange(encoding.Overflowing);
            Assert.Equal(expected.Count, actual.Count);
            for (var w = 0; w < expected.Count; w++)
            {
                var e = expected[w];
                var label = $"{model} '{text}' window {w}";
                Assert.True(Ints(e, "ids").SequenceEqual(actual[w].Ids), label);
                Assert.True(Ints(e, "wordIds").SequenceEqual(actual[w].WordIds), label);
                Assert.True(Spans(e).SequenceEqual(actual[w].Offsets), label);
            }
        }
    }

    private static TextTokenizer Tokenizer(string model) =>
        AutoTokenizer.FromPretrained(model == "bert" ? TestData.BertTokenizerJsonFolder : TestData.Gpt2TokenizerJsonFolder);

    private static EncodeOptions WindowOptions(JsonElement c) => new()
    {
        Truncation = true,
        MaxLength = c.GetProperty("maxLength").GetInt32(),
        Stride = c.GetProperty("stride").GetInt32(),
        TruncationStrategy = Enum.Parse<TruncationStrategy>(c.GetProperty("strategy").GetString()!),
        ReturnOverflowingTokens = true,
    };

    private static void AssertSame(JsonElement expected, TokenEncoding actual, string label)
    {
        Assert.True(Ints(expected, "ids").SequenceEqual(actual.Ids), $"{label}: ids HF [{string.Join(",", Ints(expected, "ids"))}] ours [{string.Join(",", actual.Ids)}]");
        Assert.True(Ints(expected, "typeIds").SequenceEqual(actual.TypeIds), $"{label}: type ids");
        Assert.True(Ints(expected, "wordIds").SequenceEqual(actual.WordIds), $"{label}: word ids HF [{string.Join(",", Ints(expected, "wordIds"))}] ours [{string.Join(",", actual.WordIds)}]");
        Assert.True(Ints(expected, "sequenceIds").SequenceEqual(actual.SequenceIds), $"{label}: sequence ids HF [{string.Join(",", Ints(expected, "sequenceIds"))}] ours [{string.Join(",", actual.SequenceIds)}]");
        Assert.True(Ints(expected, "specialTokensMask").SequenceEqual(actual.SpecialTokensMask), $"{label}: special tokens mask");
        Assert.True(Spans(expected).SequenceEqual(actual.Offsets), $"{label}: offsets HF [{string.Join(",", Spans(expected))}] ours [{string.Join(",", actual.Offsets)}]");
    }

    private static List<int> Ints(JsonElement e, string name) => e.GetProperty(name).EnumerateArray().Select(x => x.GetInt32()).ToList();

    private static List<TextSpan> Spans(JsonElement e) =>
        e.GetProperty("offsets").EnumerateArray().Select(o => new TextSpan(o[0].GetInt32(), o[1].GetInt32())).ToList();
}
