using Sharpformer.Tensors.Kernels;
using Xunit.Abstractions;

namespace Sharpformer.Tensors.Tests.Kernels;

public class FastMathTests(ITestOutputHelper output)
{
    [Fact]
    public void Exp_EveryLength_SimdEqualsScalarReference()
    {
        foreach (int n in KernelTestData.Lengths())
        {
            var x = KernelTestData.Uniform(n, -110f, 95f, n);
            var fast = new float[n];
            var reference = new float[n];
            FastMath.Exp(x, fast);
            FastMath.ExpReference(x, reference);
            for (int i = 0; i < n; i++)
            {
                Assert.True(KernelTestData.UlpDistance(reference[i], fast[i]) <= 1, $"n={n}, i={i}: exp({x[i]}) = {reference[i]} vs {fast[i]}");
            }
        }
    }

    [Fact]
    public void Exp_EdgeValuesInEveryLane_MatchScalar()
    {
        // Each edge value visits every lane position of a 16-wide vector and the scalar tail.
        foreach (float edge in KernelTestData.EdgeValues)
        {
            var x = KernelTestData.Uniform(37, -5f, 5f, 1);
            for (int lane = 0; lane < x.Length; lane++)
            {
                float keep = x[lane];
                x[lane] = edge;
                var y = new float[x.Length];
                FastMath.Exp(x, y);
                float expected = FastMath.Exp(edge);
                Assert.True(expected.Equals(y[lane]), $"exp({edge}) in lane {lane}: scalar {expected}, vector {y[lane]}");
                x[lane] = keep;
            }
        }
    }

    [Fact]
    public void Exp_InPlace_SameAsOutOfPlace()
    {
        var x = KernelTestData.Uniform(77, -20f, 20f, 3);
        var y = new float[77];
        FastMath.Exp(x, y);
        FastMath.Exp(x, x);
        Assert.Equal(y, x);
    }

    [Fact]
    public void Exp_DenseSweep_WithinTwoUlpOfMathExp()
    {
        // Every normal result: x in [-87.3, 88.7] (plus the subnormal range, checked in absolute terms below).
        const int Count = 400_001;
        var x = new float[Count];
        for (int i = 0; i < Count; i++) x[i] = -87.3f + (176f * i / (Count - 1));
        var y = new float[Count];
        FastMath.Exp(x, y);
        long worst = 0;
        float worstAt = 0;
        for (int i = 0; i < Count; i++)
        {
            float expected = (float)Math.Exp(x[i]);
            long ulp = KernelTestData.UlpDistance(expected, y[i]);
            if (ulp > worst)
            {
                worst = ulp;
                worstAt = x[i];
            }
        }

        output.WriteLine($"exp: max error {worst} ulp vs Math.Exp (at x = {worstAt}) over {Count} points in [-87.3, 88.7]");
        Assert.True(worst <= 2, $"exp is {worst} ulp off at x = {worstAt}");

        // Subnormal results: error within one subnormal step (2^-149) plus 1e-6 relative.
        for (float v = -103.9f; v < -87.4f; v += 0.01f)
        {
            double expected = Math.Exp(v);
            Assert.True(Math.Abs(FastMath.Exp(v) - expected) <= float.Epsilon + (1e-6 * expected), $"exp({v})");
        }
    }

    [Fact]
    public void Erf_EveryLength_SimdEqualsScalarReference()
    {
        foreach (int n in KernelTestData.Lengths())
        {
            var x = KernelTestData.Uniform(n, -6f, 6f, n + 7);
            var fast = new float[n];
            var reference = new float[n];
            FastMath.Erf(x, fast);
            FastMath.ErfReference(x, reference);
            KernelTestData.Close(reference, fast, 1e-7f, 0f, $"erf n={n}");
        }
    }

    [Fact]
    public void Erf_DenseSweep_WithinOneMillionthOfDoubleReference()
    {
        double worst = 0;
        float worstAt = 0;
        var x = new float[120_001];
        for (int i = 0; i < x.Length; i++) x[i] = -6f + (12f * i / (x.Length - 1));
        var y = new float[x.Length];
        FastMath.Erf(x, y);
        for (int i = 0; i < x.Length; i++)
        {
            double err = Math.Abs(y[i] - KernelTestData.ErfDouble(x[i]));
            if (err > worst)
            {
                worst = err;
                worstAt = x[i];
            }
        }

        output.WriteLine($"erf: max abs error {worst:E2} (at x = {worstAt}) over [-6, 6]");
        Assert.True(worst <= 1e-6, $"erf error {worst} at {worstAt}");
    }

    [Fact]
    public void Exp_ShortDestination_ThrowsNamingDestination()
    {
        var e = Assert.Throws<ArgumentException>(() => FastMath.Exp(new float[4], new float[3]));
        Assert.Equal("destination", e.ParamName);
        Assert.Contains("FastMath.Exp", e.Message, StringComparison.Ordinal);
    }
}
