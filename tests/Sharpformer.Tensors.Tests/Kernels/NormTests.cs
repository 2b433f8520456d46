using Sharpformer.Tensors.Kernels;

namespace Sharpformer.Tensors.Tests.Kernels;

public class NormTests
{
    [Fact]
    public void LayerNorm_EveryWidth_MatchesDoubleReference()
    {
        foreach (int n in KernelTestData.Lengths())
        {
            if (n == 0) continue;

            // An offset mean and a large spread make a naive one-pass variance lose digits; two-pass does not.
            var x = KernelTestData.Uniform(3 * n, 90f, 110f, n);
            var gamma = KernelTestData.Uniform(n, 0.5f, 1.5f, n + 1);
            var beta = KernelTestData.Uniform(n, -1f, 1f, n + 2);
            var y = new float[x.Length];
            var expected = new float[x.Length];
            float[] mean = new float[3], rstd = new float[3], eMean = new float[3], eRstd = new float[3];
            Norms.LayerNorm(x, gamma, beta, y, 3, n, 1e-5f, mean, rstd);
            Norms.LayerNormReference(x, gamma, beta, expected, 3, n, 1e-5f, eMean, eRstd);
            KernelTestData.Close(expected, y, Tolerances.NormVsDouble, Tolerances.NormVsDouble, $"layernorm C={n}");
            KernelTestData.Close(eMean, mean, 0f, 1e-6f, "mean");
            KernelTestData.Close(eRstd, rstd, 0f, Tolerances.NormVsDouble, "rstd");
        }
    }

    [Fact]
    public void LayerNorm_NoAffine_IsStandardized()
    {
        var x = KernelTestData.Uniform(2 * 64, -3f, 7f, 3);
        var y = new float[x.Length];
        Norms.LayerNorm(x, default, default, y, 2, 64, 0f);
        for (int r = 0; r < 2; r++)
        {
            var row = y.Skip(r * 64).Take(64).ToArray();
            Assert.Equal(0.0, row.Average(v => (double)v), 5);
            Assert.Equal(1.0, row.Average(v => (double)v * v), 4);
        }
    }

    [Fact]
    public void RmsNorm_EveryWidth_MatchesDoubleReference()
    {
        foreach (int n in KernelTestData.Lengths())
        {
            if (n == 0) continue;
            var x = KernelTestData.Uniform(2 * n, -4f, 4f, n);
            var gamma = KernelTestData.Uniform(n, 0.5f, 1.5f, n + 1);
            var y = new float[x.Length];
            var expected = new float[x.Length];
            float[] rstd = new float[2], eRstd = new float[2];
            Norms.RmsNorm(x, gamma, y, 2, n, 1e-6f, rstd);
            Norms.RmsNormReference(x, gamma, expected, 2, n, 1e-6f, eRstd);
            KernelTestData.Close(expected, y, Tolerances.NormVsDouble, Tolerances.NormVsDouble, $"rmsnorm C={n}");
            KernelTestData.Close(eRstd, rstd, 0f, Tolerances.NormVsDouble, "rstd");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(33)]
    [InlineData(130)]
    public void LayerNormBackward_MatchesReference(int cols)
    {
        const int Rows = 4;
        var x = KernelTestData.Uniform(Rows * cols, -2f, 3f, cols);
        var gamma = KernelTestData.Uniform(cols, 0.5f, 1.5f, 1);
        var dy = KernelTestData.Uniform(Rows * cols, -1f, 1f, 2);
        float[] mean = new float[Rows], rstd = new float[Rows];
        Norms.LayerNorm(x, gamma, default, new float[x.Length], Rows, cols, 1e-5f, mean, rstd);
        float[] dx = new float[x.Length], dg = new float[cols], db = new float[cols];
        float[] edx = new float[x.Length], edg = new float[cols], edb = new float[cols];
        dg[0] = 99f; // overwritten, not accumulated
        Norms.LayerNormBackward(dy, x, gamma, mean, rstd, dx, dg, db, Rows, cols);
        Norms.LayerNormBackwardReference(dy, x, gamma, mean, rstd, edx, edg, edb, Rows, cols);
        KernelTestData.Close(edx, dx, 1e-5f, 1e-4f, "dx");
        KernelTestData.Close(edg, dg, 1e-5f, 1e-4f, "dgamma");
        KernelTestData.Close(edb, db, 1e-5f, 1e-4f, "dbeta");
    }

    [Theory]
    [InlineData(64, 768, true)]
    [InlineData(48, 1001, false)]
    public void LayerNormBackward_ParallelRows_MatchReference(int rows, int cols, bool affine)
    {
        // Enough elements to be split over the workers; without gamma (ones) and, in that case, without dgamma / dbeta.
        var x = KernelTestData.Uniform(rows * cols, -2f, 3f, cols);
        var gamma = affine ? KernelTestData.Uniform(cols, 0.5f, 1.5f, 1) : [];
        var dy = KernelTestData.Uniform(rows * cols, -1f, 1f, 2);
        float[] mean = new float[rows], rstd = new float[rows];
        Norms.LayerNorm(x, gamma, default, new float[x.Length], rows, cols, 1e-5f, mean, rstd);
        float[] dx = new float[x.Length], dg = affine ? new float[cols] : [], db = affine ? new float[cols] : [];
        float[] edx = new float[x.Length], edg = new float[cols], edb = new float[cols];
        Norms.LayerNormBackward(dy, x, gamma, mean, rstd, dx, dg, db, rows, cols);
        Norms.LayerNormBackwardReference(dy, x, gamma, mean, rstd, edx, edg, edb, rows, cols);
        KernelTestData.Close(edx, dx, 1e-5f, 1e-4f, "dx");
        if (affine)
        {
            KernelTestData.Close(edg, dg, 1e-4f, 1e-4f, "dgamma");
            KernelTestData.Close(edb, db, 1e-4f, 1e-4f, "dbeta");
        }
    }

    [Fact]
    public void LayerNormBackward_MatchesFiniteDifferences()
    {
        const int Rows = 3, Cols = 10;
        var x = KernelTestData.Uniform(Rows * Cols, -2f, 2f, 1);
        var gamma = KernelTestData.Uniform(Cols, 0.5f, 1.5f, 2);
        var beta = KernelTestData.Uniform(Cols, -0.5f, 0.5f, 3);
        var w = KernelTestData.Uniform(Rows * Cols, -1f, 1f, 4);
        float[] mean = new float[Rows], rstd = new float[Rows];
        Norms.LayerNorm(x, gamma, beta, new float[x.Length], Rows, Cols, 1e-5f, mean, rstd);
        float[] dx = new float[x.Length], dg = new float[Cols], db = new float[Cols];
        Norms.LayerNormBackward(w, x, gamma, mean, rstd, dx, dg, db, Rows, Cols);

        double Loss(float[] xs, float[] g, float[] b)
        {
            var y = new float[xs.Length];
            Norms.LayerNorm(xs, g, b, y, Rows, Cols, 1e-5f);
            return KernelTestData.Probe(y, w);
        }

        KernelTestData.GradClose(KernelTestData.NumericGradient(x, xs => Loss(xs, gamma, beta)), dx, "dx");
        KernelTestData.GradClose(KernelTestData.NumericGradient(gamma, g => Loss(x, g, beta)), dg, "dgamma");
        KernelTestData.GradClose(KernelTestData.NumericGradient(beta, b => Loss(x, gamma, b)), db, "dbeta");
    }

    [Fact]
    public void RmsNormBackward_MatchesFiniteDifferencesAndReference()
    {
        const int Rows = 3, Cols = 12;
        var x = KernelTestData.Uniform(Rows * Cols, -2f, 2f, 5);
        var gamma = KernelTestData.Uniform(Cols, 0.5f, 1.5f, 6);
        var w = KernelTestData.Uniform(Rows * Cols, -1f, 1f, 7);
        var rstd = new float[Rows];
        Norms.RmsNorm(x, gamma, new float[x.Length], Rows, Cols, 1e-6f, rstd);
        float[] dx = new float[x.Length], dg = new float[Cols];
        Norms.RmsNormBackward(w, x, gamma, rstd, dx, dg, Rows, Cols);

        double Loss(float[] xs, float[] g)
        {
            var y = new float[xs.Length];
            Norms.RmsNorm(xs, g, y, Rows, Cols, 1e-6f);
            return KernelTestData.Probe(y, w);
        }

        KernelTestData.GradClose(KernelTestData.NumericGradient(x, xs => Loss(xs, gamma)), dx, "dx");
        KernelTestData.GradClose(KernelTestData.NumericGradient(gamma, g => Loss(x, g)), dg, "dgamma");

        float[] edx = new float[x.Length], edg = new float[Cols];
        Norms.RmsNormBackwardReference(w, x, gamma, rstd, edx, edg, Rows, Cols);
        KernelTestData.Close(edx, dx, 1e-5f, 1e-4f, "dx vs reference");
        KernelTestData.Close(edg, dg, 1e-5f, 1e-4f, "dgamma vs reference");
    }

    [Fact]
    public void LayerNorm_ShortGamma_ThrowsNamingGamma()
    {
        var e = Assert.Throws<ArgumentException>(() => Norms.LayerNorm(new float[8], new float[3], default, new float[8], 2, 4, 1e-5f));
        Assert.Equal("gamma", e.ParamName);
        Assert.Contains("Norms.LayerNorm", e.Message, StringComparison.Ordinal);
    }
}
