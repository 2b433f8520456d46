using Sharpformer.Training.Data;
using static Sharpformer.Training.Tests.Data.DataTestKit;

namespace Sharpformer.Training.Tests.Distributed;

/// <summary>
/// Data-parallel sharding of the batch sources: the shards of N ranks, stacked in rank order, are exactly the batches
/// one process takes with N times the batch size (the same blocks, order and MLM masks for the same seed), epoch after
/// epoch, and a resumed position gives each rank the same shard again.
/// </summary>
public class ShardingTests
{
    private static TokenCache ByteCorpus(int documents)
    {
        var dir = NewFolder("shard");
        var text = string.Join("\n", Enumerable.Range(0, documents).Select(i => System.Text.Json.JsonSerializer.Serialize(new { text = $"doc {i} says {i * 7 % 13}." })));
        return ByteCache(Write(dir, "docs.jsonl", text + "\n"), NewFolder("cache"));
    }

    [Theory]
    [InlineData(2, true)]
    [InlineData(3, false)]
    public void ClmShards_StackToTheSingleProcessBatch(int ranks, bool shuffle)
    {
        using var cache = ByteCorpus(60);
        var single = new BlockDataOptions { BlockSize = 7, BatchSize = 2 * ranks, Seed = 11, Shuffle = shuffle, EvalFraction = 0.1 };
        var whole = new ClmBatchSource(cache, single);
        var shards = Enumerable.Range(0, ranks).Select(r => new ClmBatchSource(cache, single with { BatchSize = 2, ShardCount = ranks, ShardIndex = r })).ToList();
        Assert.All(shards, s => Assert.Equal(whole.BatchesPerEpoch, s.BatchesPerEpoch));
        for (long b = 0; b < (2 * whole.BatchesPerEpoch) + 1; b++)
        {
            var expected = Rows(whole.Next().InputIds);
            var stacked = shards.SelectMany(s => Rows(s.Next().InputIds)).ToArray();
            Assert.Equal(expected, stacked);
        }

        // Evaluation is not sharded: every rank sees the whole held-out set.
        Assert.Equal(whole.EvalBatches().SelectMany(e => Rows(e.InputIds)), shards[^1].EvalBatches().SelectMany(e => Rows(e.InputIds)));

        // A resumed rank continues with its own shard of the same global batch.
        var position = shards[1].Position;
        var resumed = new ClmBatchSource(cache, single with { BatchSize = 2, ShardCount = ranks, ShardIndex = 1 }) { Position = position };
        Assert.Equal(Rows(shards[1].Next().InputIds), Rows(resumed.Next().InputIds));
    }

    [Fact]
    public void MlmShards_CarryTheSingleProcessMasks()
    {
        var dir = NewFolder("mlm-shard");
        var words = string.Join(" ", Enumerable.Range(0, 400).Select(i => i % 9 == 0 ? "." : $"w{i % 7}"));
        using var cache = TokenCache.Open(Corpus.FromPath(Write(dir, "c.txt", words)), BertFolder(), NewFolder("cache"));
        var single = new MlmDataOptions { Layout = MlmLayout.Grouped, BlockSize = 10, BatchSize = 4, Seed = 5 };
        var whole = new MlmBatchSource(cache, single);
        var shards = Enumerable.Range(0, 2).Select(r => new MlmBatchSource(cache, single with { BatchSize = 2, ShardCount = 2, ShardIndex = r })).ToList();
        for (int b = 0; b < 5; b++)
        {
            var expected = whole.Next();
            var parts = shards.Select(s => s.Next()).ToList();
            Assert.Equal(Rows(expected.InputIds), parts.SelectMany(p => Rows(p.InputIds)).ToArray());
            Assert.Equal(Rows(expected.Labels), parts.SelectMany(p => Rows(p.Labels)).ToArray());
        }
    }

    [Fact]
    public void ShardOutsideTheGroup_IsRejected()
    {
        using var cache = ByteCorpus(20);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new ClmBatchSource(cache, new BlockDataOptions { BlockSize = 4, BatchSize = 1, ShardCount = 2, ShardIndex = 2 }));
        Assert.Contains("ShardIndex", ex.Message, StringComparison.Ordinal);
    }
}
