namespace Sharpformer.Training.Tests;

public class SeedMixTests
{
    // Expected values from an independent Python implementation of SplitMix64's finalizer (64-bit wrap-around arithmetic).
    [Theory]
    [InlineData(42, 0L, 0L, 902658722)]
    [InlineData(42, 7L, 3L, 1309180678)]
    [InlineData(-1, 123456789012L, 5L, 942119130)]
    public void Derive_MatchesIndependentImplementation(int seed, long a, long b, int expected) =>
        Assert.Equal(expected, SeedMix.Derive(seed, a, b));

    [Fact]
    public void Derive_NeighbouringCountersGiveDistinctSeeds()
    {
        var seeds = new HashSet<int>();
        for (long step = 0; step < 100; step++)
        {
            for (long layer = 0; layer < 50; layer++)
            {
                int s = SeedMix.Derive(1, step, layer);
                Assert.True(s >= 0);
                seeds.Add(s);
            }
        }

        Assert.Equal(5000, seeds.Count);
    }
}
