using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Tests;

public class ParallelForTests
{
    [Theory]
    [InlineData(0, 4)]
    [InlineData(1, 4)]
    [InlineData(1000, 7)]
    [InlineData(4096, 1)]
    public void For_VisitsEveryIndexExactlyOnce(int count, int grain)
    {
        var hits = new int[count];
        ParallelFor.For(count, grain, (start, end) =>
        {
            for (int i = start; i < end; i++) Interlocked.Increment(ref hits[i]);
        });
        Assert.All(hits, h => Assert.Equal(1, h));
    }

    [Fact]
    public void For_RethrowsWorkerException()
    {
        var e = Assert.Throws<InvalidOperationException>(() => ParallelFor.For(100, 1, (s, _) =>
        {
            if (s == 57) throw new InvalidOperationException("chunk 57");
        }));
        Assert.Equal("chunk 57", e.Message);
    }
}
