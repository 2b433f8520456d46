using Sharpformer.NN;
using Sharpformer.Tensors;
using Sharpformer.Training.Distributed;

namespace Sharpformer.Training.Tests.Distributed;

/// <summary>
/// <see cref="GradientReducer"/> on an in-process group of ranks: after a backward with the hook and <see
/// cref="GradientReducer.Finish"/>, every rank holds the mean of the ranks' gradients (computed here independently),
/// whether buckets overlap backward or not, with one bucket or many, and every rank issues the same collectives.
/// </summary>
public class GradientReducerTests
{
    /// <summary>A two-layer net with a tied matrix (used first and last, so its gradient finishes last).</summary>
    private static Parameter[] Net(int seed)
    {
        var random = new Random(seed);
        return
        [
            new Parameter(Tensor.RandomNormal(new Shape(6, 4), random, 0f, 0.5f)),
            new Parameter(Tensor.RandomNormal(new Shape(6), random, 0f, 0.5f)),
            new Parameter(Tensor.RandomNormal(new Shape(5, 6), random, 0f, 0.5f)),
            new Parameter(Tensor.RandomNormal(new Shape(5), random, 0f, 0.5f)),
        ];
    }

    private static Tensor Loss(Parameter[] p, int rank)
    {
        var x = Tensor.RandomNormal(new Shape(3, 4), new Random(100 + rank), 0f, 1f);
        var h = Ops.Gelu(Ops.Linear(x, p[0].Value, p[1].Value));
        var y = Ops.Linear(h, p[2].Value, p[3].Value);
        var back = Ops.Linear(y, Ops.Transpose(p[2].Value, 0, 1)); // p[2] again: its gradient has two contributions
        return Ops.Mean(Ops.Mul(back, back));
    }

    [Theory]
    [InlineData(3, 1L << 20, true)]
    [InlineData(3, 40L, true)]
    [InlineData(2, 40L, false)]
    [InlineData(4, 1L, true)]
    public void Finish_EveryRankHoldsTheMeanGradient(int ranks, long bucketBytes, bool overlap)
    {
        // The expected mean, from each rank's own backward without any reducer.
        var expected = new float[4][];
        for (int r = 0; r < ranks; r++)
        {
            var p = Net(seed: 7);
            Loss(p, r).Backward();
            for (int i = 0; i < p.Length; i++)
            {
                var g = p[i].Value.Grad!.ToArray();
                expected[i] ??= new float[g.Length];
                for (int j = 0; j < g.Length; j++) expected[i][j] += g[j] / ranks;
            }
        }

        using var group = new ThreadGroup(ranks);
        var results = new float[ranks][][];
        var buckets = new int[ranks];
        group.Run(rank =>
        {
            var p = Net(seed: 7);
            using var reducer = new GradientReducer(p, rank, bucketBytes, overlap);
            buckets[rank.Rank] = reducer.BucketCount;
            for (int step = 0; step < 2; step++)
            {
                foreach (var q in p) q.Value.ZeroGrad();
                reducer.BeginStep();
                Loss(p, rank.Rank).Backward(reducer.GradientReady);
                reducer.Finish();
            }

            Assert.Equal(overlap, reducer.Overlapping);
            Assert.Equal(4L * p.Sum(q => q.Shape.ElementCount), reducer.BytesPerStep);
            results[rank.Rank] = [.. p.Select(q => q.Value.Grad!.ToArray())];
        });

        Assert.Equal(bucketBytes >= 1 << 20 ? 1 : bucketBytes == 1 ? 4 : buckets[0], buckets[0]);
        if (bucketBytes == 40) Assert.True(buckets[0] > 1, "40-byte buckets must split these parameters");
        for (int r = 0; r < ranks; r++)
        {
            for (int i = 0; i < expected.Length; i++)
            {
                for (int j = 0; j < expected[i].Length; j++)
                {
                    Assert.True(Math.Abs(results[r][i][j] - expected[i][j]) <= Tolerances.OwnPaths * Math.Max(1, Math.Abs(expected[i][j])),
                        $"rank {r} parameter {i}[{j}]: {results[r][i][j]} vs mean {expected[i][j]}");
                }

                // Every rank ends with exactly the same values (they steer identical optimizer steps).
                Assert.Equal(results[0][i], results[r][i]);
            }
        }
    }

    [Fact]
    public void SingleProcess_LeavesGradientsAsTheyAre()
    {
        var p = Net(seed: 3);
        using var reducer = new GradientReducer(p, SingleProcessCommunicator.Instance);
        reducer.BeginStep();
        Loss(p, 0).Backward(reducer.GradientReady);
        var before = p.Select(q => q.Value.Grad!.ToArray()).ToList();
        reducer.Finish();
        Assert.False(reducer.Overlapping);
        for (int i = 0; i < p.Length; i++) Assert.Equal(before[i], p[i].Value.Grad!.ToArray());
    }

    [Fact]
    public void Constructor_RejectsNothingToReduce() =>
        Assert.Throws<ArgumentException>(() => new GradientReducer([], SingleProcessCommunicator.Instance));
}
