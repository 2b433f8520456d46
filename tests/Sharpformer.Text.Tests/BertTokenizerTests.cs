namespace Sharpformer.Text.Tests;

public class BertTokenizerTests
{
    private static readonly Lazy<TextTokenizer> Bert = new(() => AutoTokenizer.FromPretrained(TestData.BertVocabFolder));

    [Fact]
    public void Encode_SeedSentence_MatchesBertBaseUncasedIds()
    {
        var encoding = Bert.Value.Encode("The heart is a [MASK] organ.");

        Assert.Equal([101, 1996, 2540, 2003, 1037, 103, 5812, 1012, 102], encoding.Ids);
        Assert.Equal(["[CLS]", "the", "heart", "is", "a", "[MASK]", "organ", ".", "[SEP]"], encoding.Tokens);
        Assert.Equal([1, 0, 0, 0, 0, 0, 0, 0, 1], encoding.SpecialTokensMask);
        Assert.All(encoding.AttentionMask, m => Assert.Equal(1, m));
    }

    [Fact]
    public void Encode_SeedSentence_OffsetsPointAtTheOriginalText()
    {
        const string text = "The heart is a [MASK] organ.";
        var encoding = Bert.Value.Encode(text);

        Assert.Equal(
            [new(0, 0), new(0, 3), new(4, 9), new(10, 12), new(13, 14), new(15, 21), new(22, 27), new(27, 28), new(0, 0)],
            encoding.Offsets);
    }

    [Fact]
    public void Encode_LowercaseMask_IsNotTheMaskToken()
    {
        var ids = Bert.Value.Encode("[mask]").Ids;

        Assert.DoesNotContain(103, ids);
        Assert.Equal(["[CLS]", "[", "mask", "]", "[SEP]"], Bert.Value.Encode("[mask]").Tokens);
    }

    [Fact]
    public void Encode_AccentsAndSubwords_OffsetsCoverTheOriginalChars()
    {
        // "Crème" → "creme" (NFD, Mn removed, lowercase); its pieces map back to the accented original.
        const string text = "Crème unaffable";
        var encoding = Bert.Value.Encode(text, options: new EncodeOptions { AddSpecialTokens = false });

        Assert.Equal(["cr", "##eme", "una", "##ffa", "##ble"], encoding.Tokens);
        Assert.Equal([new(0, 2), new(2, 5), new(6, 9), new(9, 12), new(12, 15)], encoding.Offsets);
    }

    [Fact]
    public void Encode_NonBmpAndCjk_OffsetsAreUtf16IndicesOnCharBoundaries()
    {
        // "a😀" is one word (an emoji is not punctuation) with no pieces in the vocabulary: one [UNK] over 3 chars.
        const string text = "a😀中b";
        var encoding = Bert.Value.Encode(text, options: new EncodeOptions { AddSpecialTokens = false });

        Assert.Equal(["[UNK]", "中", "b"], encoding.Tokens);
        Assert.Equal([new(0, 3), new(3, 4), new(4, 5)], encoding.Offsets);
    }

    [Fact]
    public void Encode_CorpusOffsets_CoverTextThatNormalizesToTheToken()
    {
        var bert = (BertWordPieceTokenizer)Bert.Value;
        foreach (var text in TestData.Corpus)
        {
            var encoding = bert.Encode(text);
            var previousStart = 0;
            for (var t = 0; t < encoding.Count; t++)
            {
                var (start, end) = (encoding.Offsets[t].Start, encoding.Offsets[t].End);
                if (encoding.SpecialTokensMask[t] == 1)
                {
                    Assert.Equal(default, encoding.Offsets[t]);
                    continue;
                }

                Assert.InRange(start, previousStart, end - 1);
                Assert.InRange(end, start + 1, text.Length);
                Assert.False(char.IsLowSurrogate(text[start]), $"offset {start} splits a surrogate pair in {OracleTests.Escape(text)}");
                Assert.False(end < text.Length && char.IsLowSurrogate(text[end]), $"offset {end} splits a surrogate pair in {OracleTests.Escape(text)}");
                previousStart = start;

                var token = encoding.Tokens[t];
                if (token is "[UNK]" || bert.AddedTokens.Any(a => a.Content == token))
                {
                    continue;
                }

                var piece = token.StartsWith("##", StringComparison.Ordinal) ? token[2..] : token;
                var source = bert.Normalizer.Normalize(text[start..end]).Replace(" ", "", StringComparison.Ordinal);
                Assert.True(source.Contains(piece, StringComparison.Ordinal), $"token '{token}' at ({start}, {end}) of {OracleTests.Escape(text)} covers '{source}'");
            }
        }
    }

    [Fact]
    public void Encode_Pair_AddsSeparatorsAndTypeIds()
    {
        var encoding = Bert.Value.Encode("Hello world", "How are you?");

        Assert.Equal(["[CLS]", "hello", "world", "[SEP]", "how", "are", "you", "?", "[SEP]"], encoding.Tokens);
        Assert.Equal([0, 0, 0, 0, 1, 1, 1, 1, 1], encoding.TypeIds);
        Assert.Equal([1, 0, 0, 1, 0, 0, 0, 0, 1], encoding.SpecialTokensMask);
        Assert.Equal([-1, 0, 0, -1, 1, 1, 1, 1, -1], encoding.SequenceIds);
        Assert.Equal(new TextSpan(0, 3), encoding.Offsets[4]); // offsets of the pair index into the pair's text
    }

    [Fact]
    public void Encode_TruncationOfSingle_KeepsSpecialsWithinMaxLength()
    {
        var options = new EncodeOptions { Truncation = true, MaxLength = 5 };
        var encoding = Bert.Value.Encode("one two three four five six", options: options);

        Assert.Equal(["[CLS]", "one", "two", "three", "[SEP]"], encoding.Tokens);
    }

    [Fact]
    public void Encode_LongestFirstBothLong_SecondGetsTheOddToken()
    {
        // HF: 10 + 10 tokens into 12 - 3 specials = 9 → both cut to half, the second input gets the extra one.
        const string ten = "a b c d e f g h i j";
        var encoding = Bert.Value.Encode(ten, ten, new EncodeOptions { Truncation = true, MaxLength = 12 });

        Assert.Equal(12, encoding.Count);
        Assert.Equal(4, encoding.SequenceIds.Count(s => s == 0));
        Assert.Equal(5, encoding.SequenceIds.Count(s => s == 1));
    }

    [Fact]
    public void Encode_LongestFirstShortPair_OnlyLongerIsCut()
    {
        var encoding = Bert.Value.Encode("a b c d e f g h i j", "x y", new EncodeOptions { Truncation = true, MaxLength = 8 });

        Assert.Equal(["[CLS]", "a", "b", "c", "[SEP]", "x", "y", "[SEP]"], encoding.Tokens);
    }

    [Fact]
    public void Encode_OnlySecond_CutsThePair()
    {
        var encoding = Bert.Value.Encode("a b", "c d e f", new EncodeOptions { Truncation = true, MaxLength = 7, TruncationStrategy = TruncationStrategy.OnlySecond });

        Assert.Equal(["[CLS]", "a", "b", "[SEP]", "c", "d", "[SEP]"], encoding.Tokens);
    }

    [Fact]
    public void Encode_MaxLengthBelowSpecials_ThrowsNamingTheLength()
    {
        var error = Assert.Throws<ArgumentException>(() => Bert.Value.Encode("a", "b", new EncodeOptions { Truncation = true, MaxLength = 2 }));

        Assert.Contains("max_length 2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EncodeBatch_PadLongestRight_MasksPadding()
    {
        var batch = Bert.Value.EncodeBatch(["hello", "hello world again"], options: new EncodeOptions { Padding = PaddingStrategy.Longest });

        Assert.Equal(5, batch[0].Count);
        Assert.Equal(5, batch[1].Count);
        Assert.Equal([101, 7592, 102, 0, 0], batch[0].Ids);
        Assert.Equal([1, 1, 1, 0, 0], batch[0].AttentionMask);
        Assert.Equal([1, 0, 1, 1, 1], batch[0].SpecialTokensMask);
    }

    [Fact]
    public void EncodeBatch_PadMaxLengthLeft_PadsBefore()
    {
        var batch = Bert.Value.EncodeBatch(["hello"], options: new EncodeOptions { Padding = PaddingStrategy.MaxLength, MaxLength = 6, PaddingSide = PaddingSide.Left });

        Assert.Equal([0, 0, 0, 101, 7592, 102], batch[0].Ids);
        Assert.Equal([0, 0, 0, 1, 1, 1], batch[0].AttentionMask);
    }

    [Fact]
    public void EncodeBatch_PairsOfDifferentCount_Throws()
    {
        Assert.Throws<ArgumentException>(() => Bert.Value.EncodeBatch(["a", "b"], ["c"]));
    }

    [Fact]
    public void Decode_SubwordsAndPunctuation_JoinedLikeHf()
    {
        var ids = Bert.Value.Encode("Hello, unaffable world! Don't stop.").Ids;

        // HF's Rust decoder cleans each token on its own, so " '" before "t" stays spaced: "don ' t" (the oracle agrees).
        Assert.Equal("hello, unaffable world! don ' t stop.", Bert.Value.Decode(ids));
        Assert.Equal("[CLS] hello, unaffable world! don ' t stop. [SEP]", Bert.Value.Decode(ids, skipSpecialTokens: false));
    }

    [Fact]
    public void Encode_WordOfMoreThan100Chars_IsOneUnknown()
    {
        var text = new string('b', 101);
        var encoding = Bert.Value.Encode(text, options: new EncodeOptions { AddSpecialTokens = false });

        Assert.Equal(["[UNK]"], encoding.Tokens);
        Assert.Equal([new TextSpan(0, 101)], encoding.Offsets);
    }

    [Fact]
    public void Encode_HundredNonBmpLetters_CountsCharactersNotUtf16Units()
    {
        // 100 code points (200 UTF-16 units) is within the limit, so the word is tried piece by piece.
        var hundred = string.Concat(Enumerable.Repeat("𝒜", 100));
        var tokenizer = (BertWordPieceTokenizer)Bert.Value;
        var normalizedWord = tokenizer.Normalizer.Normalize(hundred);

        Assert.Equal(200, normalizedWord.Length);
        Assert.Single(tokenizer.Tokenize(hundred));
        Assert.Single(tokenizer.Tokenize(hundred + "𝒜"));
    }
}
