using Sharpformer.Training.Data;
using static Sharpformer.Training.Tests.Data.DataTestKit;

namespace Sharpformer.Training.Tests.Data;

public class ClmBatchSourceTests
{
    private const int E = ByteEos;

    /// <summary>Documents of the byte tokenizer (id = byte) as one JSON Lines file.</summary>
    private static TokenCache Docs(params string[] docs)
    {
        var dir = NewFolder("clm");
        var lines = docs.Select(d => System.Text.Json.JsonSerializer.Serialize(new { text = d }));
        var path = Write(dir, "docs.jsonl", string.Join("\n", lines) + "\n");
        return ByteCache(path, NewFolder("cache"));
    }

    /// <summary>n documents "d0 ", "d1 ", … of 3 letters each (4 stream tokens with EOS).</summary>
    private static TokenCache Many(int n) => Docs(Enumerable.Range(0, n).Select(i => $"{(char)('a' + (i % 26))}{(char)('a' + (i / 26 % 26))}.").ToArray());

    [Fact]
    public void Blocks_AreTheStreamWithEosAfterEveryDocument_LastPartialBlockDropped()
    {
        using var cache = Docs("abc", "de");
        var source = new ClmBatchSource(cache, new BlockDataOptions { BlockSize = 3, BatchSize = 1, Shuffle = false });

        // Stream: a b c E d e E → blocks [a b c] [E d e]; the trailing [E] is dropped.
        Assert.Equal(2, source.BatchesPerEpoch);
        Assert.Equal(E, source.EosId);
        var first = source.Next();
        Assert.Equal([[97, 98, 99]], Rows(first.InputIds));
        Assert.Equal(first.InputIds.ToArray<int>(), first.Labels.ToArray<int>());
        Assert.Null(first.AttentionMask);
        var second = source.Next();
        Assert.Equal([[E, 100, 101]], Rows(second.InputIds));
        Assert.Equal(new DataPosition(1, 0), source.Position);
    }

    [Fact]
    public void Blocks_CanSpanSeveralDocuments()
    {
        using var cache = Docs("a", "b", "cd", "efgh");
        var source = new ClmBatchSource(cache, new BlockDataOptions { BlockSize = 5, BatchSize = 2, Shuffle = false });
        var batch = source.Next();
        Assert.Equal([[97, E, 98, E, 99], [100, E, 101, 102, 103]], Rows(batch.InputIds));
        Assert.Equal(10, batch.TokenCount);
    }

    [Fact]
    public void NoShuffle_WrapsIntoTheNextEpoch_ContinuingTheBlockOrder()
    {
        using var cache = Docs("ab", "cd", "ef");
        // Stream a b E c d E e f E: blocks of 3 are [a b E] [c d E] [e f E]; B = 2 → one batch per epoch.
        var source = new ClmBatchSource(cache, new BlockDataOptions { BlockSize = 3, BatchSize = 2, Shuffle = false });
        Assert.Equal(1, source.BatchesPerEpoch);
        int[] b0 = [97, 98, E], b1 = [99, 100, E], b2 = [101, 102, E];
        Assert.Equal([b0, b1], Rows(source.Next().InputIds));
        Assert.Equal([b2, b0], Rows(source.Next().InputIds));
        Assert.Equal([b1, b2], Rows(source.Next().InputIds));
        Assert.Equal(new DataPosition(3, 0), source.Position);
    }

    [Fact]
    public void Shuffle_IsAPermutationPerEpoch_SameForSameSeed_DifferentAcrossEpochsAndSeeds()
    {
        using var cache = Many(40); // 160 stream tokens = 40 blocks of 4, each one document "xy." + EOS
        var options = new BlockDataOptions { BlockSize = 4, BatchSize = 4, Seed = 3 };
        var epochs = Epochs(new ClmBatchSource(cache, options), 3);
        var again = Epochs(new ClmBatchSource(cache, options), 3);
        var otherSeed = Epochs(new ClmBatchSource(cache, options with { Seed = 4 }), 1);
        Assert.Equal(epochs, again);
        foreach (var epoch in epochs)
        {
            Assert.Equal(40, epoch.Count);
            Assert.Equal(40, epoch.Distinct().Count());
        }

        Assert.NotEqual(epochs[0], epochs[1]);
        Assert.NotEqual(epochs[1], epochs[2]);
        Assert.NotEqual(epochs[0], otherSeed[0]);
        var inOrder = Enumerable.Range(0, 40).Select(i => BlockKey(i)).ToList();
        Assert.NotEqual(inOrder, epochs[0]);
        Assert.Equal(inOrder.Order(StringComparer.Ordinal), epochs[0].Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Shuffle_PartialLastBatchIsDropped_EveryBatchIsFull()
    {
        using var cache = Many(10); // 10 blocks of 4, B = 3 → 3 batches, 1 block left out per epoch
        var source = new ClmBatchSource(cache, new BlockDataOptions { BlockSize = 4, BatchSize = 3, Seed = 1 });
        Assert.Equal(3, source.BatchesPerEpoch);
        var seen = new HashSet<string>();
        for (var step = 0; step < 3 * 6; step++)
        {
            var batch = source.Next();
            Assert.Equal(3, batch.BatchSize);
            foreach (var row in Rows(batch.InputIds))
            {
                seen.Add(string.Join(",", row));
            }
        }

        Assert.Equal(10, seen.Count); // over six epochs every block was used
    }

    [Fact]
    public void Resume_FromASavedPosition_GivesTheIdenticalNextBatches()
    {
        using var cache = Many(30);
        var options = new BlockDataOptions { BlockSize = 4, BatchSize = 4, Seed = 11 };
        var original = new ClmBatchSource(cache, options);
        for (var i = 0; i < 9; i++)
        {
            original.Next(); // into the second epoch (7 batches each)
        }

        var saved = original.Position;
        Assert.Equal(new DataPosition(1, 2), saved);
        var expected = Enumerable.Range(0, 10).Select(_ => original.Next().InputIds.ToArray<int>()).ToList();
        var resumed = new ClmBatchSource(cache, options) { Position = saved };
        var actual = Enumerable.Range(0, 10).Select(_ => resumed.Next().InputIds.ToArray<int>()).ToList();
        Assert.Equal(expected, actual);
        Assert.Throws<ArgumentOutOfRangeException>(() => resumed.Position = new DataPosition(0, 7));
        Assert.Throws<ArgumentOutOfRangeException>(() => resumed.Position = new DataPosition(-1, 0));
    }

    [Fact]
    public void DataShorterThanOneBatch_ErrorSaysHowManyTokensAndWhatIsNeeded()
    {
        using var cache = Docs("abc", "de");
        var ex = Assert.Throws<ArgumentException>(() => new ClmBatchSource(cache, new BlockDataOptions { BlockSize = 8, BatchSize = 1 }));
        Assert.Contains("The data has 7 tokens", ex.Message, StringComparison.Ordinal);
        Assert.Contains("0 blocks of 8", ex.Message, StringComparison.Ordinal);
        Assert.Contains("one batch needs 1 blocks = 8 tokens", ex.Message, StringComparison.Ordinal);
        ex = Assert.Throws<ArgumentException>(() => new ClmBatchSource(cache, new BlockDataOptions { BlockSize = 3, BatchSize = 3 }));
        Assert.Contains("2 blocks of 3", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => new ClmBatchSource(cache, new BlockDataOptions { BlockSize = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ClmBatchSource(cache, new BlockDataOptions { BlockSize = 2, EvalFraction = 1 }));
    }

    [Fact]
    public void EvalFraction_HoldsOutWholeBlocks_NeverTrainedOn_EachEvaluatedOnceInOrder()
    {
        using var cache = Many(50);
        var options = new BlockDataOptions { BlockSize = 4, BatchSize = 4, EvalFraction = 0.1, EvalBatchSize = 2, Seed = 5 };
        var source = new ClmBatchSource(cache, options);
        Assert.Equal(5, source.EvalBlockCount); // ceil(0.1 · 50)
        Assert.Equal(45, source.TrainBlockCount);
        Assert.Equal(11, source.BatchesPerEpoch);
        Assert.Equal(3, source.EvalBatchCount);
        var evalBatches = source.EvalBatches().ToList();
        Assert.Equal([2, 2, 1], evalBatches.Select(b => b.BatchSize));
        var eval = evalBatches.SelectMany(b => Rows(b.InputIds)).Select(r => string.Join(",", r)).ToList();
        Assert.Equal(5, eval.Distinct().Count());
        Assert.Equal(eval, source.EvalBatches().SelectMany(b => Rows(b.InputIds)).Select(r => string.Join(",", r)));

        // Ascending block order: the blocks are documents whose first letters rise with the block index.
        var firstLetters = eval.Select(r => int.Parse(r.Split(',')[1], System.Globalization.CultureInfo.InvariantCulture) * 26 + int.Parse(r.Split(',')[0], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(firstLetters.Order(), firstLetters);
        var trained = Epochs(source, 4).SelectMany(e => e).ToHashSet();
        Assert.Empty(trained.Intersect(eval));
        Assert.Equal(45, trained.Count);

        var otherSplit = new ClmBatchSource(cache, options with { Seed = 6 }).EvalBatches().SelectMany(b => Rows(b.InputIds)).Select(r => string.Join(",", r));
        Assert.NotEqual(eval, otherSplit);
    }

    [Fact]
    public void SeparateEvalData_IsEvaluatedWhole_AndTrainingKeepsEveryBlock()
    {
        using var train = Many(8);
        using var eval = Docs("xyz", "uvw");
        var source = new ClmBatchSource(train, new BlockDataOptions { BlockSize = 4, BatchSize = 2 }, eval);
        Assert.Equal(8, source.TrainBlockCount);
        Assert.Equal([[120, 121, 122, E], [117, 118, 119, E]], source.EvalBatches().SelectMany(b => Rows(b.InputIds)));
        Assert.Throws<ArgumentException>(() => new ClmBatchSource(train, new BlockDataOptions { BlockSize = 4, EvalFraction = 0.5 }, eval));
    }

    [Fact]
    public void TokenizerWithoutEos_IsRefusedClearly()
    {
        var dir = NewFolder("clm-bert");
        var path = Write(dir, "a.txt", string.Join(" ", Enumerable.Repeat("w1", 100)));
        var bert = BertFolder();
        using var cache = TokenCache.Open(Corpus.FromPath(path), bert, NewFolder("cache"));
        var ex = Assert.Throws<ArgumentException>(() => new ClmBatchSource(cache, new BlockDataOptions { BlockSize = 4 }));
        Assert.Contains("eos_token", ex.Message, StringComparison.Ordinal);
    }

    private static string BlockKey(int i) => $"{97 + (i % 26)},{97 + (i / 26 % 26)},46,{E}";

    private static List<List<string>> Epochs(ClmBatchSource source, int epochs)
    {
        var result = new List<List<string>>();
        for (var e = 0; e < epochs; e++)
        {
            var blocks = new List<string>();
            for (var b = 0; b < source.BatchesPerEpoch; b++)
            {
                blocks.AddRange(Rows(source.Next().InputIds).Select(r => string.Join(",", r)));
            }

            result.Add(blocks);
        }

        return result;
    }
}
