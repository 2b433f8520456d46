using System.Runtime.InteropServices;
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

    /// <summary>
    /// Weights as trained ones look: N(0, 0.02) rounded to halves (about 0.25 % subnormal halves), with ±0 and values near
    /// ±127.9 (the largest encodable exponent) mixed in every so often; returned as halves and as their codes.
    /// </summary>
    private static (float[] X, Half[] W, HalfCode[] Codes, float[] Bias) MakeCoded(int rows, int inFeatures, int outFeatures, int seed)
    {
        var rng = new Random(seed);
        var x = Enumerable.Range(0, rows * inFeatures).Select(_ => (float)((rng.NextDouble() * 2) - 1)).ToArray();
        var w = new Half[outFeatures * inFeatures];
        for (var i = 0; i < w.Length; i++)
        {
            // Box–Muller.
            var normal = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
            w[i] = (i % 101) switch
            {
                7 => Half.Zero,
                19 => Half.NegativeZero,
                37 => (Half)127.9f,
                53 => (Half)(-127.875f),
                71 => BitConverter.UInt16BitsToHalf((ushort)(rng.Next(1, 0x400) | ((i & 1) << 15))), // a subnormal
                _ => (Half)(0.02 * normal),
            };
        }

        Assert.Contains(w, h => Half.IsSubnormal(h));
        var codes = MemoryMarshal.Cast<Half, HalfCode>(w.ToArray().AsSpan()).ToArray();
        HalfCodes.Encode(MemoryMarshal.Cast<HalfCode, Half>(codes.AsSpan()));
        var bias = Enumerable.Range(0, outFeatures).Select(_ => (float)rng.NextDouble()).ToArray();
        return (x, w, codes, bias);
    }

    private static void AssertBitEqual(float[] expected, float[] actual, string label)
    {
        for (var i = 0; i < expected.Length; i++)
        {
            if (BitConverter.SingleToUInt32Bits(expected[i]) != BitConverter.SingleToUInt32Bits(actual[i]))
            {
                Assert.Fail($"{label}: y[{i}] = {actual[i]}, F16 gives {expected[i]}");
            }
        }
    }

    [Theory]
    [InlineData(1, 771, 1031, true, false)] // in not a multiple of 32: the paired loop, then the row remainder
    [InlineData(2, 771, 1031, false, true)]
    [InlineData(3, 771, 1031, true, true)] // R ≥ 3 with AVX-512: the grouped loop, a 3-value tail
    [InlineData(8, 771, 1031, true, false)]
    [InlineData(1, 768, 2304, true, true)] // GPT-2 c_attn, whole blocks
    [InlineData(2, 20, 33, true, false)] // shorter than one paired step
    [InlineData(3, 2069, 1031, false, false)] // k-blocks and output groups
    [InlineData(8, 5632, 40, true, true)] // too long for the grouped loop; too few outputs as well
    [InlineData(5, 77, 33, false, true)] // every tail path
    public void MatVecCodes_Shapes_EqualF16BitForBit(int rows, int inFeatures, int outFeatures, bool withBias, bool accumulate)
    {
        var (x, w, codes, bias) = MakeCoded(rows, inFeatures, outFeatures, (rows * 17) + inFeatures);
        float[] b = withBias ? bias : [];
        var start = Enumerable.Range(0, rows * outFeatures).Select(i => (i % 7) - 3f).ToArray();
        var label = $"R {rows}, {outFeatures}×{inFeatures}, bias {withBias}, accumulate {accumulate}";

        var f16 = (float[])start.Clone();
        var coded = (float[])start.Clone();
        Gemv.MatVec(x, rows, w, inFeatures, outFeatures, b, f16, accumulate);
        Gemv.MatVec(x, rows, codes, inFeatures, outFeatures, b, coded, accumulate);
        AssertBitEqual(f16, coded, label);

        var reference = (float[])start.Clone();
        var codedReference = (float[])start.Clone();
        Gemv.MatVecReference(x, rows, w, inFeatures, outFeatures, b, reference, accumulate);
        Gemv.MatVecReference(x, rows, codes, inFeatures, outFeatures, b, codedReference, accumulate);
        AssertBitEqual(reference, codedReference, label + " (reference)");

        // Products up to 128 in magnitude: the sums' rounding grows with them.
        var bound = Tolerances.KernelVsReferenceRelative * inFeatures * 128f;
        for (var i = 0; i < reference.Length; i++)
        {
            Assert.True(Math.Abs(reference[i] - coded[i]) <= bound * Math.Max(1f, Math.Abs(reference[i])), $"{label}: y[{i}] {coded[i]} vs reference {reference[i]}");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(8)]
    public void MatVecCodes_Shared_EqualsF16SharedAndOneCallEach(int rows)
    {
        // q, k, v style: one large output (grouped at R ≥ 3), two small ones; in not a multiple of 32.
        const int inFeatures = 771;
        int[] outs = [1031, 300, 77];
        var made = outs.Select((o, j) => MakeCoded(rows, inFeatures, o, 40 + j)).ToArray();
        var x = made[0].X;
        foreach (var accumulate in new[] { false, true })
        {
            var f16 = outs.Select((o, j) => Enumerable.Range(0, rows * o).Select(i => (float)(i % 5)).ToArray()).ToArray();
            var coded = f16.Select(y => (float[])y.Clone()).ToArray();
            var single = f16.Select(y => (float[])y.Clone()).ToArray();
            Gemv.MatVec(
                x, rows, inFeatures,
                new GemvProduct<Half>(made[0].W, outs[0], f16[0], made[0].Bias),
                new GemvProduct<Half>(made[1].W, outs[1], f16[1]),
                new GemvProduct<Half>(made[2].W, outs[2], f16[2], made[2].Bias),
                accumulate);
            Gemv.MatVec(
                x, rows, inFeatures,
                new GemvProduct<HalfCode>(made[0].Codes, outs[0], coded[0], made[0].Bias),
                new GemvProduct<HalfCode>(made[1].Codes, outs[1], coded[1]),
                new GemvProduct<HalfCode>(made[2].Codes, outs[2], coded[2], made[2].Bias),
                accumulate);
            Gemv.MatVec(x, rows, made[0].Codes, inFeatures, outs[0], made[0].Bias, single[0], accumulate);
            Gemv.MatVec(x, rows, made[1].Codes, inFeatures, outs[1], [], single[1], accumulate);
            Gemv.MatVec(x, rows, made[2].Codes, inFeatures, outs[2], made[2].Bias, single[2], accumulate);
            for (var j = 0; j < outs.Length; j++)
            {
                AssertBitEqual(f16[j], coded[j], $"R {rows}, product {j}, accumulate {accumulate}");
                AssertBitEqual(single[j], coded[j], $"R {rows}, product {j}, accumulate {accumulate} (one call each)");
            }
        }

        // Two products (no third).
        var two = outs.Take(2).Select(o => new float[rows * o]).ToArray();
        var twoF16 = outs.Take(2).Select(o => new float[rows * o]).ToArray();
        Gemv.MatVec(x, rows, inFeatures, new GemvProduct<HalfCode>(made[0].Codes, outs[0], two[0]), new GemvProduct<HalfCode>(made[1].Codes, outs[1], two[1]));
        Gemv.MatVec(x, rows, inFeatures, new GemvProduct<Half>(made[0].W, outs[0], twoF16[0]), new GemvProduct<Half>(made[1].W, outs[1], twoF16[1]));
        AssertBitEqual(twoF16[0], two[0], $"R {rows}, two products, first");
        AssertBitEqual(twoF16[1], two[1], $"R {rows}, two products, second");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void MatVecCodes_EveryEncodableHalf_ComesThroughExactly(int rows)
    {
        // As MatVecF16_Every16BitPattern_ComesThroughExactly, over the 45056 encodable patterns as codes: row p holds
        // pattern p at column p mod 32 (both halves of the paired lanes), x all ones, so y[p] is exactly (float)h.
        const int inFeatures = 32;
        var patterns = Enumerable.Range(0, 1 << 16).Where(i => HalfCodes.CanEncode(BitConverter.UInt16BitsToHalf((ushort)i))).ToArray();
        var w = new Half[patterns.Length * inFeatures];
        for (var p = 0; p < patterns.Length; p++)
        {
            w[(p * inFeatures) + (p % inFeatures)] = BitConverter.UInt16BitsToHalf((ushort)patterns[p]);
        }

        HalfCodes.Encode(w);
        var x = Enumerable.Repeat(1f, rows * inFeatures).ToArray();
        var y = new float[rows * patterns.Length];
        Gemv.MatVec(x, rows, MemoryMarshal.Cast<Half, HalfCode>(w.AsSpan()), inFeatures, patterns.Length, [], y);
        for (var r = 0; r < rows; r++)
        {
            for (var p = 0; p < patterns.Length; p++)
            {
                var expected = (float)BitConverter.UInt16BitsToHalf((ushort)patterns[p]);
                Assert.True(expected == y[(r * patterns.Length) + p], $"row {r}, half 0x{patterns[p]:X4}: {y[(r * patterns.Length) + p]} vs {expected}");
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
