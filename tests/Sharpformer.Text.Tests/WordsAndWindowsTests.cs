namespace Sharpformer.Text.Tests;

/// <summary>Pre-split words (HF's is_split_into_words), word ids and windows on cases derived by hand from HF's rules.</summary>
public class WordsAndWindowsTests
{
    private static TextTokenizer Bert => AutoTokenizer.FromPretrained(TestData.BertVocabFolder);

    [Fact]
    public void EncodeWords_Bert_WordIdsPerGivenWordAndOffsetsWithinEachWord()
    {
        // "world!" is one given word, split by the pre-tokenizer into "world" and "!": both keep word id 1, and the
        // offsets count from the start of that word, as HF's is_split_into_words=True does.
        var encoding = Bert.EncodeWords(["Hello", "world!"]);

        Assert.Equal(["[CLS]", "hello", "world", "!", "[SEP]"], encoding.Tokens);
        Assert.Equal([-1, 0, 1, 1, -1], encoding.WordIds);
        Assert.Equal([new TextSpan(0, 0), new TextSpan(0, 5), new TextSpan(0, 5), new TextSpan(5, 6), new TextSpan(0, 0)], encoding.Offsets);
        Assert.Equal([-1, 0, 0, 0, -1], encoding.SequenceIds);
    }

    [Fact]
    public void EncodeWords_SubwordsAndEmptyWords_KeepTheirWordIndex()
    {
        // "tokenization" is two WordPiece pieces of word 0; the empty word 1 gives no token, so word 2 follows directly.
        var encoding = Bert.EncodeWords(["tokenization", "", "rocks"], options: new EncodeOptions { AddSpecialTokens = false });

        Assert.Equal(["token", "##ization", "rocks"], encoding.Tokens);
        Assert.Equal([0, 0, 2], encoding.WordIds);
        Assert.Equal([new TextSpan(0, 5), new TextSpan(5, 12), new TextSpan(0, 5)], encoding.Offsets);
    }

    [Fact]
    public void EncodeWords_Pair_WordIdsRestartForTheSecondInput()
    {
        var encoding = Bert.EncodeWords(["a", "b"], ["c"]);

        Assert.Equal([-1, 0, 1, -1, 0, -1], encoding.WordIds);
        Assert.Equal([-1, 0, 0, -1, 1, -1], encoding.SequenceIds);
        Assert.Equal([0, 0, 0, 0, 1, 1], encoding.TypeIds);
    }

    [Fact]
    public void EncodeWords_SameTokensAsTheJoinedText_WhenWordsAreWhitespaceSplit()
    {
        var text = "The heart's left side pumps blood.";
        var joined = Bert.Encode(text);
        var split = Bert.EncodeWords(text.Split(' '));

        Assert.Equal(joined.Ids, split.Ids);
        // Word ids differ: the joined text's words are pre-tokens ("heart", "'", "s"), the split input's are the given words.
        Assert.Equal(["[CLS]", "the", "heart", "'", "s", "left", "side", "pumps", "blood", ".", "[SEP]"], split.Tokens);
        Assert.Equal([-1, 0, 1, 1, 1, 2, 3, 4, 5, 5, -1], split.WordIds);
        Assert.Equal([-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, -1], joined.WordIds);
    }

    [Fact]
    public void EncodeWordsBatch_PadsAndMarksPaddingWithMinusOne()
    {
        var batch = Bert.EncodeWordsBatch([["short"], ["a", "longer", "input"]], options: new EncodeOptions { Padding = PaddingStrategy.Longest });

        Assert.Equal(5, batch[0].Count);
        Assert.Equal([-1, 0, -1, -1, -1], batch[0].WordIds);
        Assert.Equal([-1, 0, 1, 2, -1], batch[1].WordIds);
    }

    [Fact]
    public void EncodeWords_ByteLevelWithoutPrefixSpace_ThrowsAsHfDoes()
    {
        var gpt2 = AutoTokenizer.FromPretrained(TestData.Gpt2FilesFolder);

        var error = Assert.Throws<InvalidOperationException>(() => gpt2.EncodeWords(["Hello", "world"]));
        Assert.Contains("add_prefix_space", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EncodeWords_ByteLevelWithPrefixSpace_EachWordGetsTheSpace()
    {
        var folder = TestData.NewFolder("prefix-words");
        File.Copy(Path.Combine(TestData.Gpt2FilesFolder, "vocab.json"), Path.Combine(folder, "vocab.json"));
        File.Copy(Path.Combine(TestData.Gpt2FilesFolder, "merges.txt"), Path.Combine(folder, "merges.txt"));
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"add_prefix_space": true}""");
        var gpt2 = AutoTokenizer.FromPretrained(folder);

        var encoding = gpt2.EncodeWords(["Hello", "world"]);

        Assert.Equal(["ĠHello", "Ġworld"], encoding.Tokens);
        Assert.Equal([0, 1], encoding.WordIds);
    }

    [Fact]
    public void Encode_OnlySecondWithStride_WindowsOverlapByStride()
    {
        // Question "q" (1 token), context of 10 one-token words, max_length 8: [CLS] q [SEP] + 4 context tokens + [SEP].
        // Windows start every 4 − 2 = 2 tokens: [0,4) [2,6) [4,8) [6,10).
        var context = "a b c d e f g h i j";
        var options = new EncodeOptions { Truncation = true, MaxLength = 8, Stride = 2, TruncationStrategy = TruncationStrategy.OnlySecond, ReturnOverflowingTokens = true };

        var encoding = Bert.Encode("q", context, options);

        var windows = new[] { encoding }.Concat(encoding.Overflowing).ToList();
        Assert.Equal(4, windows.Count);
        var starts = new[] { 0, 2, 4, 6 };
        for (var w = 0; w < windows.Count; w++)
        {
            Assert.Equal(["[CLS]", "q", "[SEP]"], windows[w].Tokens.Take(3));
            Assert.Equal("[SEP]", windows[w].Tokens[^1]);
            var contextWords = windows[w].WordIds.Skip(3).Take(4).ToList();
            Assert.Equal(Enumerable.Range(starts[w], 4), contextWords);
            Assert.Equal(new TextSpan(2 * starts[w], (2 * starts[w]) + 1), windows[w].Offsets[3]);
            Assert.Equal([-1, 0, -1, 1, 1, 1, 1, -1], windows[w].SequenceIds);
        }
    }

    [Fact]
    public void Encode_OverflowNotAsked_OnlyTheFirstWindow()
    {
        var options = new EncodeOptions { Truncation = true, MaxLength = 8, Stride = 2, TruncationStrategy = TruncationStrategy.OnlySecond };

        var encoding = Bert.Encode("q", "a b c d e f g h i j", options);

        Assert.Equal(8, encoding.Count);
        Assert.Empty(encoding.Overflowing);
    }

    [Fact]
    public void Encode_StrideNotBelowWindow_ThrowsNamingBoth()
    {
        var options = new EncodeOptions { Truncation = true, MaxLength = 8, Stride = 4, TruncationStrategy = TruncationStrategy.OnlySecond, ReturnOverflowingTokens = true };

        var error = Assert.Throws<ArgumentException>(() => Bert.Encode("q", "a b c d e f g h i j", options));
        Assert.Contains("stride 4", error.Message, StringComparison.Ordinal);
        Assert.Contains("4 tokens", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Encode_NegativeStride_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Bert.Encode("a b c", options: new EncodeOptions { Truncation = true, MaxLength = 3, Stride = -1 }));
    }

    [Fact]
    public void EncodeWindows_PaddingMaxLength_PadsEveryWindow()
    {
        var options = new EncodeOptions { Truncation = true, MaxLength = 8, Stride = 1, TruncationStrategy = TruncationStrategy.OnlySecond, Padding = PaddingStrategy.MaxLength };

        var result = Bert.EncodeWindows(["q", "what"], ["a b c d e f g", "x"], options);

        // Sample 0: 7 context tokens in windows of 4 starting every 3: [0,4) [3,7); sample 1 fits in one window.
        Assert.Equal([0, 0, 1], result.OverflowToSampleMapping);
        Assert.All(result.Encodings, e => Assert.Equal(8, e.Count));
        Assert.Equal([1, 1, 1, 1, 1, 0, 0, 0], result.Encodings[2].AttentionMask);
        Assert.Equal([-1, 0, -1, 0, -1, -1, -1, -1], result.Encodings[2].WordIds);
    }
}
