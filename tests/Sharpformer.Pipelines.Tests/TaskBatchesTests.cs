namespace Sharpformer.Pipelines.Tests;

public class TaskBatchesTests
{
    [Fact]
    public void LengthBuckets_SortedLongestFirst_TiesInInputOrder_CutToTheBatchSize()
    {
        var batches = TaskBatches.LengthBuckets([3, 8, 3, 5, 4, 8], 2);

        Assert.Equal([[1, 5], [3, 4], [0, 2]], batches);
    }

    [Fact]
    public void LengthBuckets_EveryIndexOnce()
    {
        var random = new Random(7);
        var lengths = Enumerable.Range(0, 37).Select(_ => random.Next(1, 50)).ToArray();

        var batches = TaskBatches.LengthBuckets(lengths, 5);

        Assert.Equal(Enumerable.Range(0, 37), batches.SelectMany(b => b).Order());
        Assert.All(batches, b => Assert.InRange(b.Length, 1, 5));
        var flat = batches.SelectMany(b => b).Select(i => lengths[i]).ToArray();
        Assert.Equal(flat.OrderDescending(), flat);
    }

    [Fact]
    public void LengthBuckets_NoInputs_NoBatches() => Assert.Empty(TaskBatches.LengthBuckets([], 4));
}
