using Sharpformer.Tensors.Kernels.Quant;

namespace Sharpformer.Tensors.Tests.Kernels;

/// <summary>
/// The ggml block formats: round trips within each type's error bound, hand-computed blocks byte for byte, layout
/// facts (sizes, nibble order, packed 6-bit scales), and validation. Byte equality with llama.cpp's own quantizer on the
/// same GGUF file is in Sharpformer.Peers.Tests (LlamaCppQuantizeTests).
/// </summary>
public sealed class BlockQuantTests
{
    private static float[] Normal(int n, int seed, float std = 1f)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (var i = 0; i < n; i++)
        {
            // Box–Muller: weights are roughly normal.
            var u1 = 1.0 - rng.NextDouble();
            var u2 = rng.NextDouble();
            x[i] = (float)(std * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }

        return x;
    }

    private static float[] RoundTrip(QuantType type, float[] x)
    {
        var bytes = new byte[type.RowBytes(x.Length)];
        BlockQuant.Quantize(type, x, bytes);
        var back = new float[x.Length];
        BlockQuant.Dequantize(type, bytes, back);
        return back;
    }

    [Theory]
    [InlineData(QuantType.Q8_0, 32, 34)]
    [InlineData(QuantType.Q4_0, 32, 18)]
    [InlineData(QuantType.Q4_K, 256, 144)]
    [InlineData(QuantType.Q6_K, 256, 210)]
    public void BlockSizes_AreGgmls(QuantType type, int values, int bytes)
    {
        Assert.Equal(values, type.BlockValues());
        Assert.Equal(bytes, type.BlockBytes());
        Assert.Equal(3L * bytes, type.RowBytes(3 * values));
    }

    [Fact]
    public void RowBytes_NotWholeBlocks_SaysWhatToDo()
    {
        var e = Assert.Throws<ArgumentException>(() => QuantType.Q4_K.RowBytes(300));
        Assert.Contains("multiple of 256", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(QuantType.Q8_0)]
    [InlineData(QuantType.Q4_0)]
    public void RoundTrip_Q8_0AndQ4_0_WithinHalfAStepPerBlock(QuantType type)
    {
        var x = Normal(32 * 64, 1);
        var back = RoundTrip(type, x);
        for (var b = 0; b < 64; b++)
        {
            var amax = x.AsSpan(b * 32, 32).ToArray().Max(MathF.Abs);
            // Q8_0: step amax/127, rounding to nearest (½ step) plus the F16 rounding of the scale (≤ 127·2^-11 steps).
            // Q4_0: step amax/8, ½ step except the one side where code 16 is clipped to 15 (one full step).
            var bound = type == QuantType.Q8_0 ? Tolerances.Q8_0RoundTripSteps * amax / 127 : Tolerances.Q4_0RoundTripSteps * amax / 8;
            for (var i = b * 32; i < (b + 1) * 32; i++)
            {
                Assert.True(MathF.Abs(x[i] - back[i]) <= bound, $"{type} value {i}: {x[i]} → {back[i]} (bound {bound})");
            }
        }
    }

    [Theory]
    [InlineData(QuantType.Q4_K)]
    [InlineData(QuantType.Q6_K)]
    public void RoundTrip_KQuants_WithinTheirStepPerGroup(QuantType type)
    {
        var x = Normal(256 * 16, 2, 0.02f);
        var back = RoundTrip(type, x);
        // Per group (32 values for Q4_K, 16 for Q6_K): the code step is range/15 (Q4_K, min..max) or amax/32 (Q6_K);
        // the searched scale and its 6/8-bit quantization keep every value within one step.
        var group = type == QuantType.Q4_K ? 32 : 16;
        for (var g = 0; g < x.Length / group; g++)
        {
            var slice = x.AsSpan(g * group, group).ToArray();
            var step = type == QuantType.Q4_K ? (slice.Max() - Math.Min(0, slice.Min())) / 15 : slice.Max(MathF.Abs) / 32;
            var bound = Tolerances.KQuantRoundTripSteps * step;
            for (var i = g * group; i < (g + 1) * group; i++)
            {
                Assert.True(MathF.Abs(x[i] - back[i]) <= bound, $"{type} value {i}: {x[i]} → {back[i]} (bound {bound})");
            }
        }

        // And on the whole, far better than one step: the relative RMS error of 4- and 6-bit codes.
        var rms = Math.Sqrt(x.Select((v, i) => (double)(v - back[i]) * (v - back[i])).Average() / x.Select(v => (double)v * v).Average());
        Assert.True(rms <= (type == QuantType.Q4_K ? Tolerances.Q4_KRelativeRms : Tolerances.Q6_KRelativeRms), $"{type}: relative RMS error {rms:E3}");
    }

    [Fact]
    public void Q8_0_HandComputedBlock_BytesExact()
    {
        // amax 127 → d = 1 (F16 0x3C00); codes round half away from zero: 2.5 → 3, −2.5 → −3.
        var x = new float[32];
        x[0] = 127f;
        x[1] = 2.5f;
        x[2] = -2.5f;
        x[3] = -127f;
        x[4] = 0.49f;
        var bytes = new byte[34];
        BlockQuant.Quantize(QuantType.Q8_0, x, bytes);
        Assert.Equal(new byte[] { 0x00, 0x3C, 127, 3, unchecked((byte)-3), unchecked((byte)-127), 0 }, bytes[..7]);
        Assert.All(bytes[7..], b => Assert.Equal(0, b));
    }

    [Fact]
    public void Q4_0_HandComputedBlock_NibbleOrderAndScale()
    {
        // Largest magnitude −16 → d = −16/−8 = 2; value j in the low nibble of byte j, value j + 16 in the high one.
        var x = new float[32];
        x[0] = -16f; // code 0
        x[16] = 14f; // 14/2 + 8.5 = 15.5 → 15
        x[1] = 3f; // 1.5 + 8.5 = 10
        x[17] = -3f; // −1.5 + 8.5 = 7
        var bytes = new byte[18];
        BlockQuant.Quantize(QuantType.Q4_0, x, bytes);
        Assert.Equal(2f, (float)BitConverter.UInt16BitsToHalf((ushort)(bytes[0] | (bytes[1] << 8))));
        Assert.Equal(0x00 | (15 << 4), bytes[2]);
        Assert.Equal(10 | (7 << 4), bytes[3]);
        Assert.Equal(8 | (8 << 4), bytes[4]); // zeros → code 8
        var back = new float[32];
        BlockQuant.Dequantize(QuantType.Q4_0, bytes, back);
        Assert.Equal(-16f, back[0]);
        Assert.Equal(14f, back[16]);
        Assert.Equal(4f, back[1]);
        Assert.Equal(-2f, back[17]);
    }

    [Fact]
    public void Q4_K_PackedScales_RoundTripAllSixBitValues()
    {
        // The 12-byte packing of eight 6-bit scales and mins, written through the quantizer and read back by the
        // decoder: a block whose sub-blocks have ranges 1..8 gives eight distinct scales, the largest 63.
        var x = new float[256];
        for (var j = 0; j < 8; j++)
        {
            for (var i = 0; i < 32; i++)
            {
                x[(32 * j) + i] = (j + 1) * ((i / 31f) - 0.25f);
            }
        }

        var bytes = new byte[144];
        BlockQuant.Quantize(QuantType.Q4_K, x, bytes);
        var scales = bytes[4..16];
        int Scale(int j) => j < 4 ? scales[j] & 63 : (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4);
        var decoded = Enumerable.Range(0, 8).Select(Scale).ToArray();
        Assert.Equal(63, decoded[7]);
        Assert.Equal(decoded.OrderBy(s => s).ToArray(), decoded);
        Assert.True(decoded[0] < decoded[7] / 4, string.Join(",", decoded));
    }

    [Fact]
    public void ZeroBlocks_QuantizeToZeroAndBack()
    {
        foreach (var type in new[] { QuantType.Q8_0, QuantType.Q4_0, QuantType.Q4_K, QuantType.Q6_K })
        {
            var back = RoundTrip(type, new float[512]);
            Assert.All(back, v => Assert.Equal(0f, v));
        }
    }

    [Fact]
    public void Quantize_SourceNotWholeBlocks_Throws()
    {
        var e = Assert.Throws<ArgumentException>(() => BlockQuant.Quantize(QuantType.Q8_0, new float[40], new byte[100]));
        Assert.Contains("32", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => BlockQuant.Quantize(QuantType.Q8_0, new float[64], new byte[67]));
        Assert.Throws<ArgumentException>(() => BlockQuant.Dequantize(QuantType.Q4_K, new byte[143], new float[256]));
    }

    [Fact]
    public void QuantizedMatrix_FromBlocks_ChecksSize()
    {
        var e = Assert.Throws<ArgumentException>(() => QuantizedMatrix.FromBlocks(QuantType.Q6_K, 2, 256, new byte[419]));
        Assert.Contains("420", e.Message, StringComparison.Ordinal);
        var m = QuantizedMatrix.FromBlocks(QuantType.Q6_K, 2, 256, new byte[420]);
        Assert.Equal(210, m.RowBytes);
    }
}
