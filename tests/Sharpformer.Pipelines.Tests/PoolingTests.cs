namespace Sharpformer.Pipelines.Tests;

public class PoolingTests
{
    [Fact]
    public void MeanPool_MaskedTokens_AreLeftOut()
    {
        // [B=2, T=3, C=2]; the second text has one padding position holding large values that must not count.
        float[] hidden = [1, 2, 3, 4, 5, 6, /* b=1 */ 2, 2, 4, 0, 100, 100];
        int[] mask = [1, 1, 1, 1, 1, 0];

        var pooled = Pooling.MeanPool(hidden, mask, batch: 2, seq: 3, channels: 2);

        Assert.Equal([3, 4, 3, 1], pooled);
    }

    [Fact]
    public void MeanPool_AllPadding_GivesZerosNotNaN()
    {
        var pooled = Pooling.MeanPool([7, 8], [0], batch: 1, seq: 1, channels: 2);

        Assert.Equal([0, 0], pooled);
    }

    [Fact]
    public void MeanPool_WrongLengths_ThrowsNamingShapes()
    {
        var error = Assert.Throws<ArgumentException>(() => Pooling.MeanPool(new float[5], new int[2], batch: 1, seq: 2, channels: 3));

        Assert.Contains("B 1 × T 2 × C 3", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void L2Normalize_Rows_HaveUnitNormAndZeroRowStaysZero()
    {
        float[] rows = [3, 4, 0, 0, 1, 1];

        Pooling.L2Normalize(rows, channels: 2);

        Assert.Equal(0.6f, rows[0], Tolerances.Rounding);
        Assert.Equal(0.8f, rows[1], Tolerances.Rounding);
        Assert.Equal([0f, 0f], rows[2..4]);
        Assert.Equal(MathF.Sqrt(0.5f), rows[4], Tolerances.Rounding);
    }

    [Fact]
    public void Cosine_KnownVectors_MatchDefinition()
    {
        Assert.Equal(1f, Similarity.Cosine([1, 2, 3], [2, 4, 6]), Tolerances.Rounding);
        Assert.Equal(-1f, Similarity.Cosine([1, 0], [-3, 0]), Tolerances.Rounding);
        Assert.Equal(0f, Similarity.Cosine([1, 0], [0, 5]), Tolerances.Rounding);
        Assert.Equal(0.5f, Similarity.Cosine([1, 0], [1, MathF.Sqrt(3)]), Tolerances.Rounding);
        Assert.Equal(0f, Similarity.Cosine([0, 0], [1, 1]));
    }

    [Fact]
    public void Cosine_DifferentLengths_Throws()
    {
        Assert.Throws<ArgumentException>(() => Similarity.Cosine([1, 2], [1, 2, 3]));
    }

    [Fact]
    public void CosineMatrix_IsSymmetricWithUnitDiagonal()
    {
        var m = Similarity.CosineMatrix([[1, 0], [1, 1], [0, 2]]);

        Assert.Equal(1f, m[0, 0], Tolerances.Rounding);
        Assert.Equal(1f, m[2, 2], Tolerances.Rounding);
        Assert.Equal(m[0, 1], m[1, 0]);
        Assert.Equal(MathF.Sqrt(0.5f), m[1, 2], Tolerances.Rounding);
        Assert.Equal(0f, m[0, 2], Tolerances.Rounding);
    }
}
