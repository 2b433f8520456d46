namespace Sharpformer.Text.Tests;

/// <summary>Inputs that crashed or hung other tokenizers (anchors-reliability.md §7): no exception, offsets in bounds.</summary>
public class RobustnessTests
{
    private static readonly Lazy<TextTokenizer[]> Tokenizers = new(() =>
        [AutoTokenizer.FromPretrained(TestData.BertVocabFolder), AutoTokenizer.FromPretrained(TestData.Gpt2FilesFolder)]);

    public static TheoryData<string> HostileInputs => new()
    {
        "¯\u008fব",
        "text\r\n",
        "\r\n",
        "\u0000\u0000",
        "lone \ud800 high",
        "lone \udc00 low",
        "\udc00\ud800 reversed pair",
        "\ud83d",
        "ﷺ ﷻ ﾀﾞ",
        "😀\u0301\u0301",
        "\u0301",
        "\ufeff",
        "[MASK",
        "<|endoftext|",
        new string('^', 20_000),
        new string('a', 20_000),
        string.Concat(Enumerable.Repeat("a\u0301", 5_000)),
        string.Concat(Enumerable.Repeat("中", 5_000)),
        string.Concat(Enumerable.Repeat("😀", 5_000)),
        string.Concat(Enumerable.Repeat(" \n", 5_000)),
    };

    [Theory]
    [MemberData(nameof(HostileInputs))]
    public void Encode_HostileInput_OffsetsInBoundsAndDecodes(string text)
    {
        foreach (var tokenizer in Tokenizers.Value)
        {
            var encoding = tokenizer.Encode(text);
            foreach (var offset in encoding.Offsets)
            {
                Assert.InRange(offset.Start, 0, text.Length);
                Assert.InRange(offset.End, offset.Start, text.Length);
            }

            _ = tokenizer.Decode(encoding.Ids);
        }
    }

    [Fact]
    public void Gpt2Decode_LoneSurrogate_BecomesReplacementChar()
    {
        // Lone surrogates are not Unicode scalar values: they read as U+FFFD, as any UTF-8 encoder would write them.
        var gpt2 = AutoTokenizer.FromPretrained(TestData.Gpt2FilesFolder);

        Assert.Equal("a\ufffdb", gpt2.Decode(gpt2.Encode("a\ud800b").Ids));
    }
}
