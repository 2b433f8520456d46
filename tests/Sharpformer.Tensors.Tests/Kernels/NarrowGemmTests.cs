using Sharpformer.Tensors.Kernels;

namespace Sharpformer.Tensors.Tests.Kernels;

/// <summary>
/// The BF16 and dynamic-int8 linear kernels against their scalar references and against exact float32 math with the
/// error the format allows. CI runs this class on every ISA tier (AVX-512, AVX2, Vector128, scalar); the int8 dot
/// product's tiers (AvxVnni, Avx2, scalar) also under DOTNET_EnableAVXVNNI=0.
/// </summary>
public class NarrowGemmTests
{
    private static float[] RandomValues(Random random, int count, float scale = 1f)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (float)((random.NextDouble() * 2) - 1) * scale;
        return values;
    }

    public static TheoryData<int, int, int> Shapes() => new()
    {
        { 1, 1, 1 }, { 1, 33, 5 }, { 3, 64, 4 }, { 8, 100, 17 }, { 9, 31, 3 }, { 37, 67, 70 }, { 128, 384, 96 },
    };

    [Fact]
    public void RoundToBf16_MatchesScalarRoundingOnEveryTail()
    {
        var random = new Random(7);
        for (int n = 0; n < 70; n++)
        {
            var x = RandomValues(random, n, 100f);
            var rounded = new float[n];

            Bf16Gemm.RoundToBf16(x, rounded);

            for (int i = 0; i < n; i++) Assert.Equal(BFloat16.FromSingle(x[i]).ToSingle(), rounded[i]);
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Bf16MatMul_MatchesReference(int m, int k, int n)
    {
        var random = new Random((m * 131) + (k * 7) + n);
        var x = RandomValues(random, m * k);
        var w = Bf16Gemm.QuantizeWeights(RandomValues(random, n * k));
        var bias = RandomValues(random, n);
        var fast = RandomValues(random, m * n);
        var reference = (float[])fast.Clone();

        Bf16Gemm.MatMul(x, m, k, w, n, bias, fast, accumulate: true);
        Bf16Gemm.MatMulReference(x, m, k, w, n, bias, reference, accumulate: true);

        for (int i = 0; i < fast.Length; i++)
        {
            // Reordered float sums of k products of magnitude ≤ 1, plus the accumulated value and bias.
            Assert.True(Math.Abs(fast[i] - reference[i]) <= Tolerances.KernelVsReferenceRelative * (k + 2), $"[{i}] {fast[i]} vs {reference[i]}");
        }
    }

    [Fact]
    public void Bf16MatMul_LargeWeight_WidenedInBlocks_MatchesReference()
    {
        // N·K = 2.2 Mi weights: more than one widened block (2 Mi floats each).
        const int m = 9, k = 1024, n = 2150;
        var random = new Random(3);
        var x = RandomValues(random, m * k);
        var w = Bf16Gemm.QuantizeWeights(RandomValues(random, n * k));
        var fast = new float[m * n];
        var reference = new float[m * n];

        Bf16Gemm.MatMul(x, m, k, w, n, default, fast, accumulate: false);
        Bf16Gemm.MatMulReference(x, m, k, w, n, default, reference, accumulate: false);

        for (int i = 0; i < fast.Length; i++) Assert.True(Math.Abs(fast[i] - reference[i]) <= Tolerances.KernelVsReferenceRelative * k, $"[{i}]");
    }

    [Theory]
    [InlineData(4)]
    [InlineData(40)]
    public void Bf16MatMul_RoundsActivationsToBf16(int m)
    {
        // 1 + 2⁻¹⁰ is not a bfloat16 (8 significant bits): it rounds to 1, so every output is exactly k, not k·(1 + 2⁻¹⁰).
        const int k = 48, n = 5;
        var x = Enumerable.Repeat(1f + MathF.Pow(2, -10), m * k).ToArray();
        var w = Bf16Gemm.QuantizeWeights(Enumerable.Repeat(1f, n * k).ToArray());
        var y = new float[m * n];

        Bf16Gemm.MatMul(x, m, k, w, n, default, y, accumulate: false);

        Assert.All(y, v => Assert.Equal(k, v));
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Int8MatMul_EqualsReferenceExactly(int m, int k, int n)
    {
        // The int32 dot products are exact on every tier and the float epilogue is shared, so the results are identical.
        var random = new Random((m * 131) + (k * 7) + n);
        var x = RandomValues(random, m * k, 3f);
        var w = Int8Weights.Quantize(RandomValues(random, n * k), n, k);
        var bias = RandomValues(random, n);
        var fast = RandomValues(random, m * n);
        var reference = (float[])fast.Clone();

        Int8Gemm.MatMul(x, m, w, bias, fast, accumulate: true);
        Int8Gemm.MatMulReference(x, m, w, bias, reference, accumulate: true);

        Assert.Equal(reference, fast);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Int8MatMul_WithinQuantizationErrorOfFloat32(int m, int k, int n)
    {
        var random = new Random(n + 11);
        var x = RandomValues(random, m * k, 2f);
        x[0] = 0.5f; // a row that is not symmetric around zero
        var weight = RandomValues(random, n * k);
        var w = Int8Weights.Quantize(weight, n, k);
        var y = new float[m * n];

        Int8Gemm.MatMul(x, m, w, default, y, accumulate: false);

        for (int row = 0; row < m; row++)
        {
            var xs = x.AsSpan(row * k, k);
            float min = Math.Min(0f, Min(xs)), max = Math.Max(0f, Max(xs));
            double xError = (max - min) / 255.0 / 2;
            for (int col = 0; col < n; col++)
            {
                double exact = 0, bound = 1e-4;
                double wError = w.Scales[col] / 2;
                for (int i = 0; i < k; i++)
                {
                    double a = xs[i], b = weight[(col * k) + i];
                    exact += a * b;
                    bound += (Math.Abs(a) * wError) + (Math.Abs(b) * xError) + (xError * wError);
                }

                Assert.True(Math.Abs(y[(row * n) + col] - exact) <= bound, $"[{row}, {col}] {y[(row * n) + col]} vs {exact} (bound {bound})");
            }
        }
    }

    [Fact]
    public void QuantizeActivations_ZeroIsExactAndZeroRowIsScaleOne()
    {
        float[] x = [-1f, 0f, 3f, 0f, 0f, 0f];
        var q = new byte[2 * 32];
        var scales = new float[2];
        var zeros = new int[2];

        Int8Gemm.QuantizeActivations(x, 2, 3, q, scales, zeros);

        Assert.Equal(4f / 255f, scales[0], 1e-7f);
        Assert.Equal(zeros[0], q[1]); // 0 maps to the zero point exactly
        Assert.Equal(0, q[0]);
        Assert.Equal(255, q[2]);
        Assert.Equal(1f, scales[1]);
        Assert.Equal(0, zeros[1]);
        Assert.All(q.AsSpan(3, 29).ToArray(), b => Assert.Equal(0, b)); // padding
    }

    [Fact]
    public void Int8Weights_DequantizeWithinHalfAStep()
    {
        var random = new Random(5);
        var weight = RandomValues(random, 7 * 45);
        var w = Int8Weights.Quantize(weight, 7, 45);

        var back = w.Dequantize();

        for (int i = 0; i < weight.Length; i++) Assert.True(Math.Abs(back[i] - weight[i]) <= (w.Scales[i / 45] / 2) + 1e-7f, $"[{i}]");
    }

    [Fact]
    public void Int8Weights_WrongLength_SaysTheShape()
    {
        var error = Assert.Throws<ArgumentException>(() => Int8Weights.Quantize(new float[10], 3, 4));

        Assert.Contains("[N=3, K=4]", error.Message, StringComparison.Ordinal);
    }

    private static float Min(ReadOnlySpan<float> values)
    {
        float min = float.PositiveInfinity;
        foreach (float v in values) min = Math.Min(min, v);
        return min;
    }

    private static float Max(ReadOnlySpan<float> values)
    {
        float max = float.NegativeInfinity;
        foreach (float v in values) max = Math.Max(max, v);
        return max;
    }
}
