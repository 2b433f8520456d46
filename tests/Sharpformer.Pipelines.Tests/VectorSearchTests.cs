namespace Sharpformer.Pipelines.Tests;

public class VectorSearchTests
{
    private static float[] Random(Random random, int n) => Enumerable.Range(0, n).Select(_ => (float)((random.NextDouble() * 2) - 1)).ToArray();

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(384)]
    [InlineData(1027)]
    public void Dot_SimdMatchesScalarReference(int length)
    {
        var random = new Random(length);
        var a = Random(random, length);
        var b = Random(random, length);

        Assert.Equal(VectorSearch.DotScalar(a, b), VectorSearch.Dot(a, b), Tolerances.SimdDot * length);
    }

    [Fact]
    public void TopK_EqualsCosineOfEveryRowSortedBestFirst()
    {
        var random = new Random(3);
        const int c = 50, rows = 40;
        var vectors = Enumerable.Range(0, rows).Select(_ => Random(random, c)).ToList();
        var query = Random(random, c);

        var top = VectorSearch.TopK(vectors.SelectMany(v => v).ToArray(), c, query, 5);

        var expected = vectors.Select((v, i) => (Row: i, Score: Similarity.Cosine(query, v))).OrderByDescending(x => x.Score).Take(5).ToList();
        Assert.Equal(expected.Select(e => e.Row), top.Select(t => t.Row));
        for (var i = 0; i < 5; i++) Assert.Equal(expected[i].Score, top[i].Score, Tolerances.SimdDot * c);
    }

    [Fact]
    public void TopK_TiesGoToTheLowerRow_AndKIsCappedAtN()
    {
        float[] matrix = [1, 0, 0, 1, 1, 0];

        var top = VectorSearch.TopK(matrix, 2, [1f, 0f], 10);

        Assert.Equal([0, 2, 1], top.Select(t => t.Row));
        Assert.Equal([1f, 1f, 0f], top.Select(t => t.Score));
    }

    [Fact]
    public void TopK_BadShapesAndK_Throw()
    {
        Assert.Throws<ArgumentException>(() => VectorSearch.TopK(new float[5], 2, new float[2], 1));
        Assert.Throws<ArgumentException>(() => VectorSearch.TopK(new float[4], 2, new float[3], 1));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => VectorSearch.TopK(new float[4], 2, new float[2], 0));
        Assert.Contains("at least 1", e.Message, StringComparison.Ordinal);
    }
}
