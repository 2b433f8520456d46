using System.Text;
using Sharpformer.Text;
using Sharpformer.Training.Data;
using static Sharpformer.Training.Tests.Data.DataTestKit;

namespace Sharpformer.Training.Tests.Data;

/// <summary>The masked-LM <see cref="MlmLayout.Lines"/> layout and the line ends of the token cache it packs.</summary>
public class MlmLinesTests
{
    private static readonly Lazy<string> Vocab = new(BertFolder);

    private static int W(int n) => FirstWord + n;

    private static TokenCache BertCache(string corpusPath, int chunkChars = 1 << 16) =>
        TokenCache.Open(Corpus.FromPath(corpusPath), AutoTokenizer.FromPretrained(Vocab.Value), "bert", NewFolder("cache"), progress: null, chunkChars, CancellationToken.None);

    private static (long Start, long End)[] Lines(TokenCache cache) =>
        Enumerable.Range(0, (int)cache.LineCount).Select(l => cache.LineRange(l)).ToArray();

    [Fact]
    public void WordPieceCache_RecordsNonEmptyLines_DocumentEndsAreLineEnds()
    {
        var dir = NewFolder("lines-bert");
        Write(dir, "a.txt", "w1 w2\n\nw3ab\n  \nw4\n");
        Write(dir, "b.jsonl", "{\"text\":\"w5\\nw6 w7\"}\n{\"text\":\"\\n\\n\"}\n{\"text\":\"w8\"}\n");
        using var cache = BertCache(dir);
        Assert.Equal([W(1), W(2), W(3), ContA, ContA + 1, W(4), W(5), W(6), W(7), W(8)], AllTokens(cache));
        Assert.Equal(3, cache.DocumentCount);
        Assert.Equal([(0L, 2L), (2L, 5L), (5L, 6L), (6L, 7L), (7L, 9L), (9L, 10L)], Lines(cache));
        Assert.Throws<ArgumentOutOfRangeException>(() => cache.LineRange(6));
    }

    /// <summary>BERT's pre-tokenizer treats a newline as whitespace: line by line gives the ids of the whole text, in pieces or not.</summary>
    [Fact]
    public void WordPiece_LineByLine_EqualsTheWholeText_AndLineEndsAreEachLinesTokens()
    {
        var random = new Random(3);
        string[] words = ["w1", "w2ab", "w17c", "zz", "w3", ".", "W4", "[SEP]", "w5,w6"];
        string[] gaps = [" ", "  ", "\n", "\n\n", " \n", "\n ", "\t", "\r\n", " \n\n "];
        var text = new StringBuilder("\n w9");
        for (var i = 0; i < 2000; i++)
        {
            text.Append(gaps[random.Next(gaps.Length)]).Append(words[random.Next(words.Length)]);
        }

        var tokenizer = AutoTokenizer.FromPretrained(Vocab.Value);
        var noSpecials = new EncodeOptions { AddSpecialTokens = false };
        var whole = tokenizer.Encode(text.ToString(), options: noSpecials).Ids.ToArray();
        var expectedEnds = new List<long>();
        var byLines = new List<int>();
        foreach (var line in text.ToString().Split('\n'))
        {
            var ids = tokenizer.Encode(line, options: noSpecials).Ids;
            byLines.AddRange(ids);
            if (ids.Count > 0)
            {
                expectedEnds.Add(byLines.Count);
            }
        }

        Assert.Equal(whole, byLines);
        var path = Write(NewFolder("lines-whole"), "doc.txt", text.ToString());
        foreach (var chunk in new[] { 1 << 16, 40 })
        {
            using var cache = BertCache(path, chunk);
            Assert.Equal(whole, AllTokens(cache));
            Assert.Equal(expectedEnds, Lines(cache).Select(l => l.End));
        }
    }

    /// <summary>
    /// GPT-2's ids are unchanged (newlines stay tokens); a line ends after each token that holds a newline, so a blank
    /// line inside a run of newlines is a line of one newline token, and "\n\n" merged into one token ends one line.
    /// </summary>
    [Fact]
    public void ByteLevelCache_KeepsItsIds_AndEndsLinesAfterNewlineTokens()
    {
        var dir = NewFolder("lines-bytes");
        Write(dir, "a.txt", "ab\ncd\n\nef\n");
        Write(dir, "b.txt", "g\n\n");
        using var cache = ByteCache(dir, NewFolder("cache"), merges: true);
        // a b \n | c d \n | \n | e f \n ‖ g \n\n (before a word "\n\n" is two pre-tokens; at the end one, merged to 257)
        Assert.Equal([.. Ids("ab\ncd\n\nef\ng"), 257], AllTokens(cache));
        Assert.Equal([(0L, 3L), (3L, 6L), (6L, 7L), (7L, 10L), (10L, 12L)], Lines(cache));
    }

    [Fact]
    public void OldFormatVersion_IsRebuilt_AndSaysWhy()
    {
        var path = Write(NewFolder("lines-version"), "a.txt", "w1 w2\nw3");
        var cacheDir = NewFolder("cache");
        var tokenizer = AutoTokenizer.FromPretrained(Vocab.Value);
        string file;
        using (var first = TokenCache.Open(Corpus.FromPath(path), tokenizer, "bert", cacheDir))
        {
            file = first.Path;
        }

        // A version-1 file was 64-byte headed with no line ends: the header's version field alone must send it back.
        var bytes = File.ReadAllBytes(file);
        Assert.Equal(TokenCache.FormatVersion, BitConverter.ToInt32(bytes, 8));
        BitConverter.GetBytes(TokenCache.FormatVersion - 1).CopyTo(bytes, 8);
        File.WriteAllBytes(file, bytes[..(64 + (4 * 3) + 8)]);
        using var rebuilt = TokenCache.Open(Corpus.FromPath(path), tokenizer, "bert", cacheDir);
        Assert.True(rebuilt.WasBuilt);
        Assert.Contains($"format version {TokenCache.FormatVersion - 1}", rebuilt.BuildReason, StringComparison.Ordinal);
        Assert.Equal(2, rebuilt.LineCount);
        Assert.Equal(bytes.Length, new FileInfo(file).Length);
    }

    [Fact]
    public void LineEnds_ThatCrossADocument_AreCorruption()
    {
        var dir = NewFolder("lines-corrupt");
        Write(dir, "a.txt", "w1 w2\nw3");
        Write(dir, "b.txt", "w4");
        var cacheDir = NewFolder("cache");
        var tokenizer = AutoTokenizer.FromPretrained(Vocab.Value);
        string file;
        using (var first = TokenCache.Open(Corpus.FromPath(dir), tokenizer, "bert", cacheDir))
        {
            file = first.Path;
            Assert.Equal([(0L, 2L), (2L, 3L), (3L, 4L)], Lines(first));
        }

        // Lines end at 2, 3, 4 and documents at 3, 4: moving the middle line end to 2.5 → "2" twice, skipping document 0's end.
        var bytes = File.ReadAllBytes(file);
        BitConverter.GetBytes(2L).CopyTo(bytes, bytes.Length - 16);
        File.WriteAllBytes(file, bytes);
        using var rebuilt = TokenCache.Open(Corpus.FromPath(dir), tokenizer, "bert", cacheDir);
        Assert.True(rebuilt.WasBuilt);
        Assert.Contains("line 1 ends at 2", rebuilt.BuildReason, StringComparison.Ordinal);
        Assert.Equal([(0L, 2L), (2L, 3L), (3L, 4L)], Lines(rebuilt));
    }

    /// <summary>
    /// T = 8, so 6 content tokens. a.txt's lines: [w1 w2] [w3 w4 w5] (empty) [w6 ##a ##b w7] [w8 … w15] (8 tokens) [w16];
    /// b.txt: [w20 … w25] (exactly 6) [w26].
    /// </summary>
    [Fact]
    public void Lines_PackWholeLines_ANewSequenceAtEachDocument_LongLinesCut_Padded()
    {
        var dir = NewFolder("lines-pack");
        Write(dir, "a.txt", "w1 w2\nw3 w4 w5\n\nw6ab w7\nw8 w9 w10 w11 w12 w13 w14 w15\nw16\n");
        Write(dir, "b.txt", "w20 w21 w22 w23 w24 w25\nw26");
        using var cache = BertCache(dir);
        var source = new MlmBatchSource(cache, new MlmDataOptions { BlockSize = 8, BatchSize = 7, Shuffle = false, MaskProbability = 1e-12 });
        Assert.Equal(MlmLayout.Lines, source.Layout);
        Assert.Equal(Pad, source.PadId);
        Assert.Equal(7, source.TrainBlockCount);
        Assert.Equal(1, source.BatchesPerEpoch);
        var batch = source.Next();
        int[][] expected =
        [
            [Cls, W(1), W(2), W(3), W(4), W(5), Sep, Pad], // [w6 ##a ##b w7] would make 9
            [Cls, W(6), ContA, ContA + 1, W(7), Sep, Pad, Pad], // the next line is too long: closed here
            [Cls, W(8), W(9), W(10), W(11), W(12), W(13), Sep], // the long line in pieces of 6
            [Cls, W(14), W(15), Sep, Pad, Pad, Pad, Pad], // its last piece is a sequence of its own
            [Cls, W(16), Sep, Pad, Pad, Pad, Pad, Pad], // the document ends
            [Cls, W(20), W(21), W(22), W(23), W(24), W(25), Sep], // exactly fits
            [Cls, W(26), Sep, Pad, Pad, Pad, Pad, Pad],
        ];
        Assert.Equal(expected, Rows(batch.InputIds));
        Assert.NotNull(batch.AttentionMask);
        Assert.Equal(expected.Select(r => r.Select(id => id == Pad ? 0 : 1).ToArray()).ToArray(), Rows(batch.AttentionMask!));
        Assert.All(batch.Labels.ToArray<int>(), l => Assert.Equal(-100, l));
        Assert.Equal(expected.Sum(r => r.Count(id => id != Pad)), batch.TokenCount);
    }

    [Fact]
    public void Lines_SeparateEvalData_IsPackedTheSameWay()
    {
        var dir = NewFolder("lines-eval");
        var train = Write(dir, "train.txt", "w1\nw2\nw3\nw4");
        var eval = Write(dir, "eval.txt", "w5 w6 w7\nw8 w9");
        using var trainCache = BertCache(train);
        using var evalCache = BertCache(eval);
        var source = new MlmBatchSource(trainCache, new MlmDataOptions { BlockSize = 5, BatchSize = 2, Shuffle = false, MaskProbability = 1e-12 }, evalCache);
        Assert.Equal(2, source.TrainBlockCount); // [w1 w2 w3] [w4]
        var batches = source.EvalBatches().ToList();
        Assert.Single(batches);
        Assert.Equal([[Cls, W(5), W(6), W(7), Sep], [Cls, W(8), W(9), Sep, Pad]], Rows(batches[0].InputIds));
        Assert.Equal([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]], Rows(batches[0].AttentionMask!));
    }

    /// <summary>Random lines of 0 to 12 tokens (words of 1–3 WordPiece tokens, "zz" = [UNK]), some empty.</summary>
    private static string RandomLines(int lines, int seed)
    {
        var random = new Random(seed);
        var text = new StringBuilder();
        for (var l = 0; l < lines; l++)
        {
            var words = random.Next(10);
            for (var i = 0; i < words; i++)
            {
                var w = random.Next(WordCount);
                text.Append(random.Next(100) switch
                {
                    < 5 => "zz",
                    < 25 => $"w{w}ab",
                    < 35 => $"w{w}c",
                    _ => $"w{w}",
                });
                text.Append(' ');
            }

            text.Append('\n');
        }

        return text.ToString();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Masking_NeverTouchesPaddingOrSpecials_AndRowsAreTheirLines(bool wholeWord)
    {
        var path = Write(NewFolder("lines-mask"), "a.txt", RandomLines(6000, seed: 5));
        using var cache = BertCache(path);
        const int T = 24;
        var source = new MlmBatchSource(cache, new MlmDataOptions { BlockSize = T, BatchSize = 8, Shuffle = false, Seed = 3, MaskProbability = 0.3, WholeWordMask = wholeWord });
        var tokens = AllTokens(cache);
        var position = 0L;
        long chosen = 0, candidates = 0, padded = 0, lineCount = 0;
        var lineEnds = new HashSet<long>(Enumerable.Range(0, (int)cache.LineCount).Select(l => cache.LineRange(l).End));
        for (var b = 0; b < source.BatchesPerEpoch; b++)
        {
            var batch = source.Next();
            var ids = Rows(batch.InputIds);
            var labels = Rows(batch.Labels);
            var attention = Rows(batch.AttentionMask!);
            foreach (var r in Enumerable.Range(0, ids.Length))
            {
                var n = attention[r].Sum() - 2;
                Assert.InRange(n, 1, T - 2);
                Assert.Equal(Enumerable.Repeat(1, n + 2).Concat(Enumerable.Repeat(0, T - n - 2)), attention[r]);
                Assert.Equal((Cls, Sep, -100, -100), (ids[r][0], ids[r][n + 1], labels[r][0], labels[r][n + 1]));
                for (var t = n + 2; t < T; t++)
                {
                    Assert.Equal((Pad, -100), (ids[r][t], labels[r][t]));
                }

                // In order, sequences are consecutive ranges of the cache; a shorter-than-full one ends at a line end.
                var content = tokens.AsSpan((int)position, n);
                for (var t = 1; t <= n; t++)
                {
                    var original = content[t - 1];
                    if (labels[r][t] == -100)
                    {
                        Assert.Equal(original, ids[r][t]);
                    }
                    else
                    {
                        Assert.Equal(original, labels[r][t]);
                        Assert.NotEqual(Unk, original);
                        chosen++;
                    }

                    candidates += original == Unk ? 0 : 1;
                }

                position += n;
                Assert.True(n == T - 2 || lineEnds.Contains(position), $"a sequence of {n} tokens ends at {position}, inside a line");
                lineCount += lineEnds.Contains(position) ? 1 : 0;
                padded += T - 2 - n;
            }
        }

        Assert.True(padded > 1000 && lineCount > 500, $"padding {padded}, sequences ending at a line end {lineCount}");
        var rate = (double)chosen / candidates;
        // Token masking: p of the candidates. Whole words: HF's budget round((n + 2)·p) counts [CLS] and [SEP], so a little more.
        Assert.InRange(rate, wholeWord ? 0.25 : 0.28, wholeWord ? 0.4 : 0.32);
    }

    [Fact]
    public void Lines_Resume_GivesTheSameSequencesAndMasks_AndEvalIsHeldOutAndFixed()
    {
        var path = Write(NewFolder("lines-resume"), "a.txt", RandomLines(800, seed: 9));
        using var cache = BertCache(path);
        var options = new MlmDataOptions { BlockSize = 16, BatchSize = 4, Seed = 21, EvalFraction = 0.2 };
        var original = new MlmBatchSource(cache, options);
        Assert.InRange(original.BatchesPerEpoch, 5, 200);
        var plan = new LineSequences(cache, 14);
        Assert.Equal(plan.Count, original.TrainBlockCount + original.EvalBlockCount);
        Assert.Equal((int)Math.Ceiling(0.2 * plan.Count), original.EvalBlockCount);
        for (var i = 0; i < original.BatchesPerEpoch + 3; i++)
        {
            original.Next();
        }

        var saved = original.Position;
        Assert.Equal(new DataPosition(1, 3), saved);
        var expected = Enumerable.Range(0, 5).Select(_ => original.Next()).ToList();
        var resumed = new MlmBatchSource(cache, options) { Position = saved };
        foreach (var want in expected)
        {
            var got = resumed.Next();
            Assert.Equal(want.InputIds.ToArray<int>(), got.InputIds.ToArray<int>());
            Assert.Equal(want.Labels.ToArray<int>(), got.Labels.ToArray<int>());
            Assert.Equal(want.AttentionMask!.ToArray<int>(), got.AttentionMask!.ToArray<int>());
        }

        string Key(TrainingBatch b) => string.Join(",", b.InputIds.ToArray<int>()) + "|" + string.Join(",", b.Labels.ToArray<int>());
        var firstEval = original.EvalBatches().Select(Key).ToList();
        Assert.Equal(firstEval, resumed.EvalBatches().Select(Key).ToList());
        Assert.Equal(original.EvalBatchCount, firstEval.Count);

        // Train and eval sequences partition the plan: one in-order epoch of B = 1 plus the eval rows are every sequence once.
        var unmasked = options with { MaskProbability = 1e-12, BatchSize = 1, Shuffle = false };
        var split = new MlmBatchSource(cache, unmasked);
        var rows = Enumerable.Range(0, (int)split.BatchesPerEpoch).Select(_ => Rows(split.Next().InputIds)[0])
            .Concat(split.EvalBatches().SelectMany(b => Rows(b.InputIds)))
            .Select(r => string.Join(",", r.Where(id => id is not (Cls or Sep or Pad))))
            .Order(StringComparer.Ordinal);
        var tokens = AllTokens(cache);
        var all = Enumerable.Range(0, (int)plan.Count).Select(i => plan.Range(i))
            .Select(r => string.Join(",", tokens.AsSpan((int)r.Start, r.Length).ToArray()))
            .Order(StringComparer.Ordinal);
        Assert.Equal(all, rows);
    }

    [Fact]
    public void Lines_WithTooLittleData_OrAnUnknownLayout_AreRefusedClearly()
    {
        var path = Write(NewFolder("lines-refuse"), "a.txt", "w1 w2\nw2 w1\nw1\n");
        using var bert = BertCache(path);
        var ex = Assert.Throws<ArgumentException>(() => new MlmBatchSource(bert, new MlmDataOptions { BlockSize = 8, BatchSize = 2 }));
        Assert.Contains("5 tokens in 3 lines, packed into 1 sequences of at most 6 tokens", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => new MlmBatchSource(bert, new MlmDataOptions { BlockSize = 8, Layout = (MlmLayout)7 }));
    }
}
