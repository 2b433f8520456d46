namespace Sharpformer.Tensors.Tests.Kernels;

public class ConvertSimdTests
{
    private static float[] Inputs(int n, int seed)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            // Random bit patterns hit every exponent, ties (low half exactly 0x8000), NaN payloads and infinities.
            uint bits = (uint)rng.NextInt64(0, 1L << 32);
            if (i % 5 == 0) bits = (bits & 0xFFFF_0000u) | 0x8000u;
            x[i] = BitConverter.UInt32BitsToSingle(bits);
        }

        return x;
    }

    [Fact]
    public void F32ToBF16_EveryLength_BitExactWithScalarReference()
    {
        foreach (int n in KernelTestData.Lengths())
        {
            var x = Inputs(n, n);
            var fast = new BFloat16[n];
            var reference = new BFloat16[n];
            Tensors.Kernels.Convert.F32ToBF16(x, fast);
            Tensors.Kernels.Convert.F32ToBF16Reference(x, reference);
            Assert.Equal(reference.Select(b => b.Bits), fast.Select(b => b.Bits));
        }
    }

    [Fact]
    public void F32ToF16Cache_EveryLength_BitExactWithScalarReference()
    {
        foreach (int n in KernelTestData.Lengths())
        {
            // Random bit patterns (every exponent, NaN, inf) and values around F16's subnormal and overflow limits.
            var x = Inputs(n, n + 7);
            var rng = new Random(n);
            for (int i = 1; i < n; i += 3)
            {
                x[i] = (float)((rng.NextDouble() - 0.5) * (i % 2 == 0 ? 2.5e-4 : 1.4e5));
            }

            var fast = new Half[n];
            var reference = new Half[n];
            Tensors.Kernels.Convert.F32ToF16Cache(x, fast);
            Tensors.Kernels.Convert.F32ToF16CacheReference(x, reference);
            Assert.Equal(reference.Select(BitConverter.HalfToUInt16Bits), fast.Select(BitConverter.HalfToUInt16Bits));
            Assert.DoesNotContain(fast, h => Half.IsSubnormal(h) || Half.IsInfinity(h));
        }
    }

    [Fact]
    public void F32ToF16Cache_FlushesSubnormalsSaturatesOverflowAndKeepsTheRest()
    {
        float[] x = [1e-6f, -1e-6f, 6.1035156e-5f, 70000f, float.NegativeInfinity, float.NaN, 1.0009766f, 65504f];
        var padded = new float[40];
        x.CopyTo(padded, 20);
        var y = new Half[40];
        Tensors.Kernels.Convert.F32ToF16Cache(padded, y);
        Assert.Equal(0x0000, BitConverter.HalfToUInt16Bits(y[20]));   // subnormal → +0
        Assert.Equal(0x8000, BitConverter.HalfToUInt16Bits(y[21]));   // → −0
        Assert.Equal(0x0400, BitConverter.HalfToUInt16Bits(y[22]));   // the smallest normal stays
        Assert.Equal(0x7BFF, BitConverter.HalfToUInt16Bits(y[23]));   // overflow → 65504
        Assert.Equal(0xFBFF, BitConverter.HalfToUInt16Bits(y[24]));   // −inf → −65504
        Assert.True(Half.IsNaN(y[25]));
        Assert.Equal((Half)1.0009766f, y[26]);
        Assert.Equal((Half)65504f, y[27]);
    }

    [Fact]
    public void BF16ToF32_EveryLength_BitExactWithScalarReference()
    {
        foreach (int n in KernelTestData.Lengths())
        {
            var rng = new Random(n);
            var src = Enumerable.Range(0, n).Select(_ => BFloat16.FromBits((ushort)rng.Next(0, 1 << 16))).ToArray();
            var fast = new float[n];
            var reference = new float[n];
            Tensors.Kernels.Convert.BF16ToF32(src, fast);
            Tensors.Kernels.Convert.BF16ToF32Reference(src, reference);
            Assert.Equal(reference.Select(BitConverter.SingleToUInt32Bits), fast.Select(BitConverter.SingleToUInt32Bits));
        }
    }

    [Fact]
    public void F32ToBF16_TiesAndNaN_RoundToEvenAndStayNaN()
    {
        float[] x = [BitConverter.UInt32BitsToSingle(0x3F80_8000u), BitConverter.UInt32BitsToSingle(0x3F81_8000u), float.NaN, float.NegativeInfinity];
        var padded = new float[40];
        x.CopyTo(padded, 20);
        var y = new BFloat16[40];
        Tensors.Kernels.Convert.F32ToBF16(padded, y);
        Assert.Equal(0x3F80, y[20].Bits); // tie → even (down)
        Assert.Equal(0x3F82, y[21].Bits); // tie → even (up)
        Assert.True(float.IsNaN(y[22].ToSingle()));
        Assert.Equal(0xFF80, y[23].Bits);
    }
}
