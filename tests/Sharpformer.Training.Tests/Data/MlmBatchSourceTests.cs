using System.Text;
using Sharpformer.Training.Data;
using static Sharpformer.Training.Tests.Data.DataTestKit;

namespace Sharpformer.Training.Tests.Data;

public class MlmBatchSourceTests
{
    private static readonly Lazy<string> Vocab = new(BertFolder);

    /// <summary>Random words: w0…w59 (1 token), "wNab" (3 tokens: wN ##a ##b), "wNc" (2), "." and "zz" ([UNK]).</summary>
    private static string Text(int words, int seed)
    {
        var random = new Random(seed);
        var text = new StringBuilder();
        for (var i = 0; i < words; i++)
        {
            var kind = random.Next(100);
            var w = random.Next(WordCount);
            text.Append(kind switch
            {
                < 5 => "zz",
                < 20 => $"w{w}ab",
                < 30 => $"w{w}c",
                < 35 => ".",
                _ => $"w{w}",
            });
            text.Append(i % 17 == 16 ? '\n' : ' ');
        }

        return text.ToString();
    }

    private static TokenCache Cache(int words, int seed = 1)
    {
        var dir = NewFolder("mlm");
        var path = Write(dir, "corpus.txt", Text(words, seed));
        return TokenCache.Open(Corpus.FromPath(path), Vocab.Value, NewFolder("cache"));
    }

    [Fact]
    public void Sequences_AreClsContentSep_OverTheConcatenatedTokens_NoPadding()
    {
        var dir = NewFolder("mlm-small");
        Write(dir, "a.txt", "w1 w2 w3ab");
        Write(dir, "b.txt", "w4 . w5c w6");
        using var cache = TokenCache.Open(Corpus.FromPath(dir), Vocab.Value, NewFolder("cache"));
        // Tokens: w1 w2 w3 ##a ##b | w4 . w5 ##c w6 → 10 tokens, blocks of 5 − 2 = 3: 3 blocks, 1 token dropped.
        var source = new MlmBatchSource(cache, new MlmDataOptions { Layout = MlmLayout.Grouped, BlockSize = 5, BatchSize = 3, Shuffle = false, MaskProbability = 1e-12 });
        var batch = source.Next();
        int W(int n) => FirstWord + n;
        Assert.Equal(
            [[Cls, W(1), W(2), W(3), Sep], [Cls, ContA, ContA + 1, W(4), Sep], [Cls, Period, W(5), ContA + 2, Sep]],
            Rows(batch.InputIds));
        Assert.All(batch.Labels.ToArray<int>(), l => Assert.Equal(-100, l));
        Assert.Null(batch.AttentionMask);
        Assert.Equal((Cls, Sep, Mask), (source.ClsId, source.SepId, source.MaskId));
    }

    [Fact]
    public void TokenMasking_MatchesHfRates_WithinBinomialBounds_AndNeverChoosesSpecialTokens()
    {
        using var cache = Cache(60_000);
        const double P = 0.15;
        var options = new MlmDataOptions { Layout = MlmLayout.Grouped, BlockSize = 34, BatchSize = 16, Shuffle = false, Seed = 9, MaskProbability = P };
        var source = new MlmBatchSource(cache, options);
        var tokens = AllTokens(cache);
        long candidates = 0, chosen = 0, masked = 0, kept = 0, replaced = 0;
        var randomIds = new HashSet<int>();
        var block = 0;
        for (var b = 0; b < source.BatchesPerEpoch; b++)
        {
            var batch = source.Next();
            var ids = Rows(batch.InputIds);
            var labels = Rows(batch.Labels);
            for (var r = 0; r < ids.Length; r++, block++)
            {
                Assert.Equal(Cls, ids[r][0]);
                Assert.Equal(Sep, ids[r][^1]);
                for (var t = 0; t < ids[r].Length; t++)
                {
                    var original = t == 0 ? Cls : t == ids[r].Length - 1 ? Sep : tokens[(block * 32) + t - 1];
                    var isSpecial = original is Cls or Sep or Unk or Pad or Mask;
                    if (labels[r][t] == -100)
                    {
                        Assert.Equal(original, ids[r][t]);
                        candidates += isSpecial ? 0 : 1;
                        continue;
                    }

                    Assert.False(isSpecial, $"special token {original} was chosen");
                    Assert.Equal(original, labels[r][t]);
                    candidates++;
                    chosen++;
                    if (ids[r][t] == Mask)
                    {
                        masked++;
                    }
                    else if (ids[r][t] == original)
                    {
                        kept++;
                    }
                    else
                    {
                        replaced++;
                        Assert.InRange(ids[r][t], 0, BertVocabularySize - 1);
                        randomIds.Add(ids[r][t]);
                    }
                }
            }
        }

        Assert.True(candidates > 50_000, $"only {candidates} candidate tokens");
        AssertBinomial(chosen, candidates, P, "chosen");

        // A random id equals [MASK] or the original id with probability 1/V each.
        const double V = BertVocabularySize;
        AssertBinomial(masked, chosen, 0.8 + (0.1 / V), "[MASK]");
        AssertBinomial(kept, chosen, 0.1 + (0.1 / V), "kept");
        AssertBinomial(replaced, chosen, 0.1 * (V - 2) / V, "random");
        Assert.True(randomIds.Count > BertVocabularySize - 5, $"random replacements hit only {randomIds.Count} of {BertVocabularySize} ids");
    }

    [Fact]
    public void WholeWordMasking_ChoosesWholeWords_UpToHfsBudget()
    {
        using var cache = Cache(30_000, seed: 2);
        const double P = 0.15;
        const int T = 40;
        var source = new MlmBatchSource(cache, new MlmDataOptions { Layout = MlmLayout.Grouped, BlockSize = T, BatchSize = 8, Shuffle = false, Seed = 4, WholeWordMask = true, MaskProbability = P });
        var tokens = AllTokens(cache);
        var budget = (int)Math.Round(T * P, MidpointRounding.ToEven); // HF: min(512, max(1, round(len · p))) = 6
        long rows = 0, chosenTotal = 0, maskedTotal = 0, partialWords = 0, multiTokenWordsChosen = 0;
        var block = 0;
        for (var b = 0; b < source.BatchesPerEpoch; b++)
        {
            var batch = source.Next();
            var labels = Rows(batch.Labels);
            var ids = Rows(batch.InputIds);
            for (var r = 0; r < labels.Length; r++, block++)
            {
                var original = new int[T];
                original[0] = Cls;
                original[^1] = Sep;
                Array.Copy(tokens, block * (T - 2), original, 1, T - 2);

                // Words as HF sees them: a token and the "##" tokens after it ([CLS]/[SEP] excluded).
                var chosenHere = 0;
                for (var t = 1; t < T - 1;)
                {
                    var end = t + 1;
                    while (end < T - 1 && original[end] is >= ContA and <= ContA + 2)
                    {
                        end++;
                    }

                    var chosenInWord = Enumerable.Range(t, end - t).Count(i => labels[r][i] != -100);
                    if (chosenInWord != 0 && chosenInWord != end - t)
                    {
                        partialWords++;
                    }

                    multiTokenWordsChosen += chosenInWord > 1 ? 1 : 0;
                    chosenHere += chosenInWord;
                    t = end;
                }

                Assert.Equal(-100, labels[r][0]);
                Assert.Equal(-100, labels[r][^1]);
                Assert.InRange(chosenHere, 0, budget);
                for (var t = 0; t < T; t++)
                {
                    if (labels[r][t] != -100)
                    {
                        Assert.Equal(original[t], labels[r][t]);
                        Assert.NotEqual(Unk, original[t]);
                        maskedTotal += ids[r][t] == Mask ? 1 : 0;
                    }
                    else
                    {
                        Assert.Equal(original[t], ids[r][t]);
                    }
                }

                rows++;
                chosenTotal += chosenHere;
            }
        }

        // A sequence at the edge of a block can start with "##" pieces: HF makes them a word of their own, so a word
        // split by the block edge is two words; inside a block no word is ever partly chosen.
        Assert.Equal(0, partialWords);
        Assert.True(multiTokenWordsChosen > 100, $"only {multiTokenWordsChosen} multi-token words chosen");

        // Words are taken until the budget is met; only [UNK] words (chosen, then unchosen as special) and a last
        // word too long to fit leave it short.
        Assert.InRange((double)chosenTotal / rows, budget - 1.0, budget);
        AssertBinomial(maskedTotal, chosenTotal, 0.8 + (0.1 / BertVocabularySize), "[MASK]");
    }

    [Fact]
    public void Resume_GivesTheSameBlocksAndTheSameMasks()
    {
        using var cache = Cache(1_500);
        var options = new MlmDataOptions { Layout = MlmLayout.Grouped, BlockSize = 18, BatchSize = 4, Seed = 21 };
        var original = new MlmBatchSource(cache, options);
        Assert.True(original.BatchesPerEpoch < 100);
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
        }

        var otherSeed = new MlmBatchSource(cache, options with { Seed = 22 }) { Position = saved }.Next();
        Assert.NotEqual(expected[0].Labels.ToArray<int>(), otherSeed.Labels.ToArray<int>());
    }

    [Fact]
    public void EvalBatches_AreMaskedTheSameEveryTime_AndHeldOutOfTraining()
    {
        using var cache = Cache(4_000);
        var source = new MlmBatchSource(cache, new MlmDataOptions { Layout = MlmLayout.Grouped, BlockSize = 18, BatchSize = 4, EvalFraction = 0.2, Seed = 2 });
        var first = source.EvalBatches().Select(b => (string.Join(",", b.InputIds.ToArray<int>()), string.Join(",", b.Labels.ToArray<int>()))).ToList();
        var second = source.EvalBatches().Select(b => (string.Join(",", b.InputIds.ToArray<int>()), string.Join(",", b.Labels.ToArray<int>()))).ToList();
        Assert.Equal(first, second);
        Assert.Equal(source.EvalBatchCount, first.Count);
        Assert.Equal(source.EvalBlockCount + source.TrainBlockCount, (int)(cache.TokenCount / 16));
        Assert.Contains(first, b => b.Item2.Split(',').Any(l => l != "-100"));
    }

    [Fact]
    public void TokenizersWithoutMlmTokens_OrWithoutWordPieces_AreRefusedClearly()
    {
        var dir = NewFolder("mlm-refuse");
        var path = Write(dir, "a.txt", string.Join(" ", Enumerable.Repeat("w1 w2", 100)));
        using var bytes = TokenCache.Open(Corpus.FromPath(path), Bytes(), "bytes", NewFolder("cache"));
        var ex = Assert.Throws<ArgumentException>(() => new MlmBatchSource(bytes, new MlmDataOptions { Layout = MlmLayout.Grouped, BlockSize = 8 }));
        Assert.Contains("cls_token", ex.Message, StringComparison.Ordinal);

        var noPieces = NewFolder("bert-no-pieces");
        File.WriteAllText(Path.Combine(noPieces, "vocab.txt"), "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nw1\nw2\n");
        using var words = TokenCache.Open(Corpus.FromPath(path), noPieces, NewFolder("cache"));
        ex = Assert.Throws<ArgumentException>(() => new MlmBatchSource(words, new MlmDataOptions { Layout = MlmLayout.Grouped, BlockSize = 8, WholeWordMask = true }));
        Assert.Contains("##", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => new MlmBatchSource(words, new MlmDataOptions { Layout = MlmLayout.Grouped, BlockSize = 8, MaskProbability = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new MlmBatchSource(words, new MlmDataOptions { Layout = MlmLayout.Grouped, BlockSize = 2 }));
        ex = Assert.Throws<ArgumentException>(() => new MlmBatchSource(words, new MlmDataOptions { Layout = MlmLayout.Grouped, BlockSize = 300, BatchSize = 1 }));
        Assert.Contains("The data has 200 tokens", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>|k − n·p| within 5 standard deviations of Binomial(n, p).</summary>
    private static void AssertBinomial(long k, long n, double p, string what)
    {
        var mean = n * p;
        var sd = Math.Sqrt(n * p * (1 - p));
        Assert.True(Math.Abs(k - mean) <= 5 * sd, $"{what}: {k} of {n}, expected {mean:F1} ± {5 * sd:F1} (5σ of Binomial(n, {p}))");
    }
}

public class MlmMaskerTests
{
    /// <summary>HF's loop: [w0 ##a ##b] fits 4, [w1 ##c] would make 5 and is skipped, [w2] makes 4, then it stops.</summary>
    [Fact]
    public void TakeWords_SkipsAWordThatWouldOvershoot_AndStopsAtTheBudget()
    {
        List<List<int>> words = [[1, 2, 3], [4, 5], [6], [7]];
        var chosen = MlmMasker.TakeWords(words, 9, budget: 4);
        Assert.Equal([1, 2, 3, 6], Enumerable.Range(0, 9).Where(i => chosen[i]));
    }

    [Theory]
    [InlineData(10, 0.25, 2)] // round(2.5) = 2 in Python
    [InlineData(14, 0.25, 4)] // round(3.5) = 4
    [InlineData(4, 0.1, 1)] // at least one
    [InlineData(8192, 0.15, 512)] // at most max_predictions
    [InlineData(40, 0.15, 6)]
    public void Budget_IsHfsNumToPredict(int length, double p, int expected) => Assert.Equal(expected, MlmMasker.Budget(length, p));

    [Fact]
    public void CandidateWords_JoinHashHashPieces_AndSkipClsSep()
    {
        var special = new bool[DataTestKit.BertVocabularySize];
        var continuation = new bool[DataTestKit.BertVocabularySize];
        continuation[DataTestKit.ContA] = continuation[DataTestKit.ContA + 1] = true;
        var masker = new MlmMasker(special, continuation, DataTestKit.Cls, DataTestKit.Sep, DataTestKit.Mask, DataTestKit.BertVocabularySize, 0.15);
        int[] ids = [DataTestKit.Cls, DataTestKit.ContA, 7, DataTestKit.ContA, DataTestKit.ContA + 1, 8, DataTestKit.Sep];

        // A leading "##" piece has no word before it ([CLS] is not a candidate) so it starts its own word, as in HF.
        var words = masker.CandidateWords(ids);
        Assert.Equal([[1], [2, 3, 4], [5]], words);
    }
}
