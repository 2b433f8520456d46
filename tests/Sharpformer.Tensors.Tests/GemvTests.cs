using Sharpformer.Tensors.Kernels;

namespace Sharpformer.Tensors.Tests;

/// <summary>
/// Gemv against its scalar reference. CI runs this class again with AVX-512 off and with all SIMD off, so each ISA tier
/// of the dot product meets the reference.
/// </summary>
public sealed class GemvTests
{
    private static (float[] X, Half[] W, float[] Bias) Make(int rows, int inFeatures, int outFeatures, int seed)
    {
        var rng = new Random(seed);
        var x = Enumerable.Range(0, rows * inFeatures).Select(_ => (float)((rng.NextDouble() * 2) - 1)).ToArray();
        var w = Enumerable.Range(0, outFeatures * inFeatures).Select(_ => (Half)((rng.NextDouble() * 2) - 1)).ToArray();
        var bias = Enumerable.Range(0, outFeatures).Select(_ => (float)rng.NextDouble()).ToArray();
        return (x, w, bias);
    }

    private static void AssertClose(float[] expected, float[] actual, int inFeatures)
    {
        // Reordered float sums of `in` products of magnitude ≤ 1: the error grows with the sum's length.
        var bound = Tolerances.KernelVsReferenceRelative * inFeatures;
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= bound, $"y[{i}]: {actual[i]} vs reference {expected[i]} (bound {bound})");
        }
    }

    [Theory]
    [InlineData(1, 768, 2304)] // GPT-2 c_attn, batch 1
    [InlineData(8, 768, 3072)] // c_fc, batch 8
    [InlineData(3, 3072, 768)] // c_proj of the MLP: in spans three tiles
    [InlineData(2, 1, 5)]
    [InlineData(5, 77, 33)] // every tail path, out not a multiple of the chunk
    [InlineData(1, 1030, 17)] // a tile plus a 6-value remainder
    [InlineData(8, 2069, 1031)] // R ≥ 3 with AVX-512: three k-blocks, a 5-value tail, output groups, a lone last row
    [InlineData(5, 5632, 67)] // Llama's MLP down projection's input length: several k-blocks
    public void MatVecF16_Shapes_MatchesReference(int rows, int inFeatures, int outFeatures)
    {
        var (x, w, bias) = Make(rows, inFeatures, outFeatures, rows * 31 + inFeatures);
        var expected = new float[rows * outFeatures];
        var actual = new float[rows * outFeatures];
        Gemv.MatVecReference(x, rows, w, inFeatures, outFeatures, bias, expected);
        Gemv.MatVec(x, rows, w, inFeatures, outFeatures, bias, actual);
        AssertClose(expected, actual, inFeatures);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(8)]
    public void MatVec_EveryRowCount_AllWeightTypesMatchReference(int rows)
    {
        // Every specialized kernel (R = 1..8; one-row and two-row forms), an odd output count (the two-row form's lone
        // last row) and an input length with a vector remainder and a scalar tail.
        // 1037 outputs: enough for the grouped AVX-512 loop at R ≥ 3.
        const int inFeatures = 16 * 7 + 3, outFeatures = 1037;
        var (x, w, bias) = Make(rows, inFeatures, outFeatures, 100 + rows);
        var expected = new float[rows * outFeatures];
        Gemv.MatVecReference(x, rows, w, inFeatures, outFeatures, bias, expected);
        var actual = new float[rows * outFeatures];
        Gemv.MatVec(x, rows, w, inFeatures, outFeatures, bias, actual);
        AssertClose(expected, actual, inFeatures);
        Array.Clear(actual);
        Gemv.MatVec(x, rows, w.Select(h => (float)h).ToArray(), inFeatures, outFeatures, bias, actual);
        AssertClose(expected, actual, inFeatures);
    }

    [Theory]
    [InlineData(1, 768, 2304)]
    [InlineData(8, 100, 50)]
    [InlineData(7, 2069, 1031)] // k-blocks and output groups (see the F16 shapes)
    public void MatVecF32_SameWeightsAsF16_MatchesReference(int rows, int inFeatures, int outFeatures)
    {
        var (x, w, bias) = Make(rows, inFeatures, outFeatures, 5);
        var wide = w.Select(h => (float)h).ToArray();
        var expected = new float[rows * outFeatures];
        var actual = new float[rows * outFeatures];
        Gemv.MatVecReference(x, rows, w, inFeatures, outFeatures, bias, expected);
        Gemv.MatVec(x, rows, wide, inFeatures, outFeatures, bias, actual);
        AssertClose(expected, actual, inFeatures);
    }

    [Theory]
    [InlineData(1, 768, 2304)]
    [InlineData(8, 100, 50)]
    [InlineData(3, 1030, 17)]
    [InlineData(2, 1030, 17)] // the row-after-row loop with a 6-value remainder per row
    [InlineData(8, 2069, 1031)] // k-blocks and output groups (see the F16 shapes)
    public void MatVecBF16_Shapes_MatchesReferenceOnWidenedWeights(int rows, int inFeatures, int outFeatures)
    {
        var (x, w, bias) = Make(rows, inFeatures, outFeatures, 11);
        // BF16 rounding of the F16 values, then the same values as halves (every BF16 of magnitude ≤ 1 away from the
        // subnormal range is exactly an F16 too), so the F16 reference applies unchanged.
        var brain = w.Select(h => BFloat16.FromSingle((float)h)).ToArray();
        var asHalf = brain.Select(b => (Half)b.ToSingle()).ToArray();
        Assert.All(brain.Zip(asHalf), p => Assert.Equal(p.First.ToSingle(), (float)p.Second));
        var expected = new float[rows * outFeatures];
        var actual = new float[rows * outFeatures];
        Gemv.MatVecReference(x, rows, asHalf, inFeatures, outFeatures, bias, expected);
        Gemv.MatVec(x, rows, brain, inFeatures, outFeatures, bias, actual);
        AssertClose(expected, actual, inFeatures);
    }

    [Fact]
    public void MatVec_AccumulateWithoutBias_AddsToY()
    {
        var (x, w, _) = Make(2, 64, 40, 9);
        var expected = Enumerable.Range(0, 80).Select(i => (float)i).ToArray();
        var actual = (float[])expected.Clone();
        Gemv.MatVecReference(x, 2, w, 64, 40, [], expected, accumulate: true);
        Gemv.MatVec(x, 2, w, 64, 40, [], actual, accumulate: true);
        AssertClose(expected, actual, 64);
        Assert.NotEqual(79f, actual[79]);
    }

    [Fact]
    public unsafe void WidenHalf_Every16BitPattern_MatchesHalfToSingle()
    {
        // All 65536 halves (subnormals, ±0, ±inf, NaNs) through every vector width and the scalar tail.
        var bits = Enumerable.Range(0, 65536).Select(i => (ushort)i).ToArray();
        var wide = new float[bits.Length + 3];
        fixed (ushort* src = bits)
        fixed (float* dst = wide)
        {
            Gemv.WidenHalf(src, dst, bits.Length);
            Gemv.WidenHalf(src + 5, dst + bits.Length, 3);
        }

        for (var i = 0; i < bits.Length; i++)
        {
            var expected = (float)BitConverter.UInt16BitsToHalf(bits[i]);
            Assert.True(float.IsNaN(expected) ? float.IsNaN(wide[i]) : BitConverter.SingleToUInt32Bits(expected) == BitConverter.SingleToUInt32Bits(wide[i]), $"half 0x{i:X4}: {wide[i]} vs {expected}");
        }

        Assert.Equal((float)BitConverter.UInt16BitsToHalf(7), wide[^1]);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(8)]
    public void MatVecF16_Every16BitPattern_ComesThroughExactly(int rows)
    {
        // W [65536, 32]: row p holds half pattern p at column p mod 32 and zeros elsewhere; x is all ones, so y[p] must be
        // exactly the pattern's value (subnormals, ±inf and NaN included) through every kernel form: both halves of
        // the paired 32-bit lanes, each table entry, and the tails.
        const int inFeatures = 32, outFeatures = 65536;
        var w = new Half[outFeatures * inFeatures];
        for (var p = 0; p < outFeatures; p++)
        {
            w[(p * inFeatures) + (p % inFeatures)] = BitConverter.UInt16BitsToHalf((ushort)p);
        }

        var x = Enumerable.Repeat(1f, rows * inFeatures).ToArray();
        var y = new float[rows * outFeatures];
        Gemv.MatVec(x, rows, w, inFeatures, outFeatures, [], y);
        for (var r = 0; r < rows; r++)
        {
            for (var p = 0; p < outFeatures; p++)
            {
                var expected = (float)BitConverter.UInt16BitsToHalf((ushort)p);
                var actual = y[(r * outFeatures) + p];
                Assert.True(float.IsNaN(expected) ? float.IsNaN(actual) : expected == actual, $"row {r}, half 0x{p:X4}: {actual} vs {expected}");
            }
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void MatVecF16_EveryPatternAtEveryLinePosition_AmongNormalLines_ComesThroughExactly(int rows)
    {
        // W [65536, 96]: three 32-half lines per row, every half a normal value except pattern p at column p mod 96, so
        // zero, subnormal, inf and NaN halves sit at every position of a line, beside lines of normal halves only (a
        // widening that branches per line on its exponents takes both paths within one row). x is one-hot at column j, so
        // y[p] is exactly w[p, j], or NaN where row p holds an inf or NaN elsewhere (times 0).
        const int inFeatures = 96, outFeatures = 65536;
        var w = new Half[outFeatures * inFeatures];
        for (var p = 0; p < outFeatures; p++)
        {
            for (var c = 0; c < inFeatures; c++)
            {
                // Normal fillers of both signs and many exponents.
                var filler = (ushort)((((p + c) & 1) << 15) | ((1 + ((p + (3 * c)) % 30)) << 10) | ((p * 7) + c) % 1024);
                w[(p * inFeatures) + c] = BitConverter.UInt16BitsToHalf(c == p % inFeatures ? (ushort)p : filler);
            }
        }

        var y = new float[rows * outFeatures];
        for (var j = 0; j < inFeatures; j++)
        {
            var x = new float[rows * inFeatures];
            for (var r = 0; r < rows; r++)
            {
                x[(r * inFeatures) + j] = 1f;
            }

            Gemv.MatVec(x, rows, w, inFeatures, outFeatures, [], y);
            for (var p = 0; p < outFeatures; p++)
            {
                var pattern = BitConverter.UInt16BitsToHalf((ushort)p);
                var expected = j != p % inFeatures && !Half.IsFinite(pattern) ? float.NaN : (float)w[(p * inFeatures) + j];
                for (var r = 0; r < rows; r++)
                {
                    var actual = y[(r * outFeatures) + p];
                    Assert.True(float.IsNaN(expected) ? float.IsNaN(actual) : expected == actual, $"x one-hot at {j}, row {r}, half 0x{p:X4}: {actual} vs {expected}");
                }
            }
        }
    }

    [Fact]
    public void MatVec_ShortOutput_ThrowsNamingShapes()
    {
        var (x, w, bias) = Make(1, 8, 4, 1);
        var ex = Assert.Throws<ArgumentException>(() => Gemv.MatVec(x, 1, w, 8, 4, bias, new float[3]));
        Assert.Contains("[R, out]", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => Gemv.MatVec(x, 9, w, 8, 4, bias, new float[36]));
    }
}
