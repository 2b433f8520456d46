namespace Sharpformer.Text.Tests;

public class NormalizerTests
{
    [Theory]
    [InlineData("Crème Brûlée", "creme brulee")]
    [InlineData("a\tb\nc\rd", "a b c d")]
    [InlineData("soft\u00adhyphen zero\u200bwidth", "softhyphen zerowidth")]
    [InlineData("nul\u0000 \ufffd", "nul ")]
    [InlineData("中文", " 中  文 ")]
    [InlineData("İ", "i")]
    [InlineData("한", "\u1112\u1161\u11ab")]
    [InlineData("हिन्दी", "हिनदी")]
    public void Normalize_HfRules_ExpectedText(string input, string expected)
    {
        Assert.Equal(expected, new BertNormalizer().Normalize(input));
    }

    [Fact]
    public void Normalize_CasedWithoutStripping_KeepsAccentsAndCase()
    {
        var cased = new BertNormalizer { Lowercase = false };

        Assert.Equal("Crème", cased.Normalize("Crème"));
    }

    [Fact]
    public void Normalize_LowercaseWithoutStripping_KeepsComposedAccents()
    {
        Assert.Equal("crème", new BertNormalizer { StripAccents = false }.Normalize("CRÈME"));
    }

    [Fact]
    public void Normalize_CombiningMarksOutOfOrder_AreReorderedThenStripped()
    {
        // q + dot above (230) + dot below (220): NFD reorders, strip removes both (category Mn).
        Assert.Equal("q", new BertNormalizer().Normalize("q\u0307\u0323"));
    }

    [Fact]
    public void PreTokenize_HfExample_WordsAndOffsets()
    {
        // The example in HF tokenizers' own BertPreTokenizer test.
        var words = BertPreTokenizer.PreTokenize("Hey friend!     How are you?!?");

        Assert.Equal(["Hey", "friend", "!", "How", "are", "you", "?", "!", "?"], words.Select(w => w.Word));
        Assert.Equal(
            [new(0, 3), new(4, 10), new(10, 11), new(16, 19), new(20, 23), new(24, 27), new(27, 28), new(28, 29), new(29, 30)],
            words.Select(w => w.Span));
    }

    [Fact]
    public void PreTokenize_AsciiSymbolsAndUnderscore_AreEachAWord()
    {
        var words = BertPreTokenizer.PreTokenize("CrCl<30 snake_case $5");

        Assert.Equal(["CrCl", "<", "30", "snake", "_", "case", "$", "5"], words.Select(w => w.Word));
    }
}
