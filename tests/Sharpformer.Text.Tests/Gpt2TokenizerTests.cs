using System.Text;
using Microsoft.ML.Tokenizers;

namespace Sharpformer.Text.Tests;

public class Gpt2TokenizerTests
{
    private static readonly Lazy<TextTokenizer> Gpt2 = new(() => AutoTokenizer.FromPretrained(TestData.Gpt2FilesFolder));

    [Fact]
    public void Encode_HelloWorld_Gpt2Ids()
    {
        var encoding = Gpt2.Value.Encode("Hello world");

        // Ids from GPT-2's own ranks (the "Hello" / " world" tokens).
        Assert.Equal([15496, 995], encoding.Ids);
        Assert.Equal(["Hello", "Ġworld"], encoding.Tokens);
        Assert.Equal([new(0, 5), new(5, 11)], encoding.Offsets);
    }

    [Fact]
    public void Encode_EndOfText_IsOneSpecialToken()
    {
        var encoding = Gpt2.Value.Encode("Hi<|endoftext|>there");

        Assert.Contains(50256, encoding.Ids);
        Assert.Equal(new TextSpan(2, 15), encoding.Offsets[encoding.Ids.ToList().IndexOf(50256)]);
        Assert.Equal("Hithere", Gpt2.Value.Decode(encoding.Ids));
        Assert.Equal("Hi<|endoftext|>there", Gpt2.Value.Decode(encoding.Ids, skipSpecialTokens: false));
    }

    [Fact]
    public void Encode_Corpus_SameIdsAsTiktokenGpt2()
    {
        var tiktoken = TiktokenTokenizer.CreateForModel("gpt2");
        var mismatches = new List<string>();
        foreach (var text in TestData.Corpus)
        {
            if (!tiktoken.EncodeToIds(text).SequenceEqual(Gpt2.Value.Encode(text).Ids))
            {
                mismatches.Add(OracleTests.Escape(text));
            }
        }

        Assert.Empty(mismatches);
    }

    [Fact]
    public void DecodeEncode_Corpus_RoundTripsExactly()
    {
        foreach (var text in TestData.Corpus)
        {
            Assert.Equal(text, Gpt2.Value.Decode(Gpt2.Value.Encode(text).Ids, skipSpecialTokens: false));
        }
    }

    [Fact]
    public void DecodeEncode_RandomUnicode_RoundTripsExactly()
    {
        // Code points from the ranges that break tokenizers: controls, combining marks, CJK, Hangul, emoji, spaces.
        int[][] ranges = [[0x00, 0x7F], [0x80, 0xFF], [0x300, 0x36F], [0x900, 0x97F], [0x3040, 0x30FF], [0x4E00, 0x4FFF], [0xAC00, 0xACFF], [0x1F300, 0x1F6FF], [0x2000, 0x206F], [0xFE00, 0xFE0F]];
        var random = new Random(1234);
        for (var n = 0; n < 300; n++)
        {
            var builder = new StringBuilder();
            var length = random.Next(1, 40);
            for (var i = 0; i < length; i++)
            {
                var range = ranges[random.Next(ranges.Length)];
                var cp = random.Next(range[0], range[1] + 1);
                builder.Append(char.ConvertFromUtf32(cp));
            }

            var text = builder.ToString();
            Assert.Equal(text, Gpt2.Value.Decode(Gpt2.Value.Encode(text).Ids, skipSpecialTokens: false));
        }
    }

    [Fact]
    public void BytesToUnicode_MatchesGpt2sTable()
    {
        // The test data's own bytes_to_unicode and a few entries written out: '!' is itself, space is 'Ġ' (U+0120).
        Assert.Equal(TestData.ByteToChar(), ByteLevelBpeTokenizer.BytesToUnicode);
        Assert.Equal('!', ByteLevelBpeTokenizer.BytesToUnicode['!']);
        Assert.Equal('\u0120', ByteLevelBpeTokenizer.BytesToUnicode[' ']);
        Assert.Equal('\u0100', ByteLevelBpeTokenizer.BytesToUnicode[0]);
    }

    [Fact]
    public void Encode_CorpusOffsets_CoverTheTokensText()
    {
        var byteToChar = TestData.ByteToChar();
        foreach (var text in TestData.Corpus)
        {
            var encoding = Gpt2.Value.Encode(text);
            for (var t = 0; t < encoding.Count; t++)
            {
                var (start, end) = (encoding.Offsets[t].Start, encoding.Offsets[t].End);
                Assert.InRange(start, 0, end - 1);
                Assert.InRange(end, start + 1, text.Length);
                if (encoding.Ids[t] == 50256)
                {
                    continue;
                }

                // The token's bytes are part of the UTF-8 of the text its offsets cover.
                var covered = string.Concat(Encoding.UTF8.GetBytes(text[start..end]).Select(b => byteToChar[b]));
                Assert.True(covered.Contains(encoding.Tokens[t], StringComparison.Ordinal), $"token '{encoding.Tokens[t]}' at ({start}, {end}) of {OracleTests.Escape(text)}");
            }
        }
    }

    [Fact]
    public void Gpt2PreTokenizer_ContractionsAndSpaces_SplitLikeTheRegex()
    {
        const string text = "I'm  here's 123abc  \n x";
        var pieces = Gpt2PreTokenizer.Split(text).Select(s => text[s.Start..s.End]);

        Assert.Equal(["I", "'m", " ", " here", "'s", " 123", "abc", "  \n", " x"], pieces);
    }

    [Fact]
    public void EncodeBatch_PaddingWithoutPadToken_ThrowsSayingHowToFix()
    {
        var error = Assert.Throws<InvalidOperationException>(() => Gpt2.Value.EncodeBatch(["a", "a b c"], options: new EncodeOptions { Padding = PaddingStrategy.Longest }));

        Assert.Contains("pad_token", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Encode_Pair_ConcatenatesWithTypeIds()
    {
        var encoding = Gpt2.Value.Encode("Hello", " world");

        Assert.Equal([15496, 995], encoding.Ids);
        Assert.Equal([0, 1], encoding.TypeIds);
    }
}
