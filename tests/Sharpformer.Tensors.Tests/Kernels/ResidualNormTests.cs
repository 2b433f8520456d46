using Sharpformer.Tensors.Kernels;

namespace Sharpformer.Tensors.Tests.Kernels;

public class ResidualNormTests
{
    [Fact]
    public void AddLayerNorm_EveryWidth_MatchesDoubleReference()
    {
        foreach (int n in KernelTestData.Lengths())
        {
            if (n == 0) continue;
            var x = KernelTestData.Uniform(3 * n, 40f, 60f, n);
            var residual = KernelTestData.Uniform(3 * n, 40f, 60f, n + 7);
            var gamma = KernelTestData.Uniform(n, 0.5f, 1.5f, n + 1);
            var beta = KernelTestData.Uniform(n, -1f, 1f, n + 2);
            var y = new float[x.Length];
            var expected = new float[x.Length];
            ResidualNorm.AddLayerNorm(x, residual, gamma, beta, y, 3, n, 1e-12f);
            ResidualNorm.AddLayerNormReference(x, residual, gamma, beta, expected, 3, n, 1e-12f);
            KernelTestData.Close(expected, y, Tolerances.NormVsDouble, Tolerances.NormVsDouble, $"add+layernorm C={n}");
        }
    }

    [Fact]
    public void AddLayerNorm_ManyRowsInPlace_EqualsAddThenLayerNorm()
    {
        // Enough rows to split across cores; the output overwrites the residual, as the BERT fast path does.
        int rows = 300, cols = 384;
        var x = KernelTestData.Uniform(rows * cols, -2f, 2f, 1);
        var residual = KernelTestData.Uniform(rows * cols, -2f, 2f, 2);
        var gamma = KernelTestData.Uniform(cols, 0.5f, 1.5f, 3);
        var beta = KernelTestData.Uniform(cols, -1f, 1f, 4);
        var sum = new float[rows * cols];
        Elementwise.Add(x, residual, sum);
        var expected = new float[rows * cols];
        Norms.LayerNorm(sum, gamma, beta, expected, rows, cols, 1e-5f);
        ResidualNorm.AddLayerNorm(x, residual, gamma, beta, residual, rows, cols, 1e-5f);
        KernelTestData.Close(expected, residual, Tolerances.NormVsDouble, Tolerances.NormVsDouble, "in place");
    }

    [Fact]
    public void AddLayerNorm_ShortSpan_ThrowsNamingSizes()
    {
        var e = Assert.Throws<ArgumentException>(() => ResidualNorm.AddLayerNorm(new float[4], new float[3], new float[2], new float[2], new float[4], 2, 2, 1e-5f));
        Assert.Contains("rows=2, cols=2", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Tanh_ForwardAndGradient_MatchFormulaAndFiniteDifferences()
    {
        var x = Tensor.FromArray(new[] { -3f, -0.5f, 0f, 0.25f, 2f, 9f });
        var y = Ops.Tanh(x).ToArray();
        for (int i = 0; i < y.Length; i++) Assert.Equal(Math.Tanh(x.ToArray()[i]), y[i], 1e-6);
        GradCheck.Check(t => Ops.Tanh(t[0]), GradCheck.Param(21, 3, 5));
    }
}
