namespace Sharpformer.Tensors.Tests.Kernels;

/// <summary>Deterministic inputs, lengths that cover every SIMD tail, and comparison helpers for the kernel tests.</summary>
internal static class KernelTestData
{
    /// <summary>0..130 (every Vector512/256/128 tail) plus a few large lengths.</summary>
    public static IEnumerable<int> Lengths()
    {
        for (int n = 0; n <= 130; n++) yield return n;
        yield return 1023;
        yield return 4099;
    }

    public static float[] Uniform(int n, float lo, float hi, int seed)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = lo + ((hi - lo) * (float)rng.NextDouble());
        return x;
    }

    /// <summary>Values every float kernel must survive: signed zeros, infinities, NaN, huge and tiny magnitudes.</summary>
    public static readonly float[] EdgeValues =
    [
        0f, -0f, 1f, -1f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, 1e30f, -1e30f, 88.7f, -88.7f, 89f, -104f,
        -87.3f, 1e-30f, -1e-30f, float.Epsilon, float.MaxValue, float.MinValue, 20f, -20f, 10f, -10f, 3.5f, -3.5f,
    ];

    /// <summary>Distance in units in the last place between two finite floats of the same sign (or across zero).</summary>
    public static long UlpDistance(float a, float b)
    {
        if (a == b) return 0;
        int ia = BitConverter.SingleToInt32Bits(a), ib = BitConverter.SingleToInt32Bits(b);
        long la = ia < 0 ? int.MinValue - (long)ia : ia;
        long lb = ib < 0 ? int.MinValue - (long)ib : ib;
        return Math.Abs(la - lb);
    }

    /// <summary>Same value, or both NaN; otherwise within abs + rel · |expected|.</summary>
    public static void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, float abs, float rel, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            float e = expected[i], a = actual[i];
            if (e.Equals(a)) continue;
            if (float.IsNaN(e) || float.IsNaN(a) || float.IsInfinity(e) || float.IsInfinity(a))
            {
                Assert.Fail($"{what}: element {i} of {expected.Length}: expected {e}, got {a}");
            }

            float tol = abs + (rel * Math.Abs(e));
            Assert.True(Math.Abs(e - a) <= tol, $"{what}: element {i} of {expected.Length}: expected {e}, got {a} (|diff| {Math.Abs(e - a)} > {tol})");
        }
    }

    /// <summary>erf in double: Maclaurin series for |x| ≤ 4 (error far below 1e-9 there), ±1 beyond (erfc(4) ≈ 1.5e-8).</summary>
    public static double ErfDouble(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        double a = Math.Abs(x);
        if (a > 4) return Math.Sign(x);
        double term = a, sum = a, a2 = a * a;
        for (int n = 1; n < 200; n++)
        {
            term *= -a2 / n;
            double t = term / ((2 * n) + 1);
            sum += t;
            if (Math.Abs(t) < 1e-17) break;
        }

        return Math.CopySign(2 / Math.Sqrt(Math.PI) * sum, x);
    }

    /// <summary>
    /// Central finite differences of a scalar function of a float array, in double around float inputs:
    /// dL/dx[i] ≈ (L(x + h·eᵢ) − L(x − h·eᵢ)) / 2h.
    /// </summary>
    public static double[] NumericGradient(float[] x, Func<float[], double> loss, float h = 1e-2f)
    {
        var g = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            float keep = x[i];
            x[i] = keep + h;
            double plus = loss(x);
            x[i] = keep - h;
            double minus = loss(x);
            x[i] = keep;
            g[i] = (plus - minus) / (2.0 * h);
        }

        return g;
    }

    public static void GradClose(double[] numeric, ReadOnlySpan<float> analytic, string what)
    {
        for (int i = 0; i < numeric.Length; i++)
        {
            double tol = Tolerances.GradCheckAbsolute + (Tolerances.GradCheckRelative * Math.Abs(numeric[i]));
            Assert.True(
                Math.Abs(numeric[i] - analytic[i]) <= tol,
                $"{what}: gradient {i}: finite differences {numeric[i]}, analytic {analytic[i]}");
        }
    }

    /// <summary>Σ w ⊙ y in double: a random linear probe turns a vector output into a scalar loss for gradient checks.</summary>
    public static double Probe(ReadOnlySpan<float> y, ReadOnlySpan<float> w)
    {
        double s = 0;
        for (int i = 0; i < y.Length; i++) s += (double)y[i] * w[i];
        return s;
    }
}
