using Sharpformer.Tensors.Kernels;

namespace Sharpformer.Tensors.Tests;

/// <summary>
/// <see cref="Gemm.SgemmNarrowB(int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{Half}, int, float, Span{float}, int, ReadOnlySpan{float})"/>:
/// B [n, k] in F16 or BF16, widened while its panels are packed, against widening B to F32 first and running the same
/// tier's F32 GEMM (bit for bit: the same panels meet the same kernel in the same order) and against the reference.
/// </summary>
public partial class GemmTests
{
    public static TheoryData<string, bool> TiersAndFormats()
    {
        var data = new TheoryData<string, bool>();
        foreach (GemmIsa isa in Enum.GetValues<GemmIsa>())
        {
            if (!GemmDriver.IsSupported(isa)) continue;
            data.Add(isa.ToString(), true);
            data.Add(isa.ToString(), false);
        }

        return data;
    }

    /// <summary>Narrow bits of random values in [-1, 1), every 7th a subnormal or signed zero for F16 (exact widening matters there).</summary>
    private static ushort[] NarrowRandom(int seed, int length, bool f16)
    {
        var random = new Random(seed);
        var bits = new ushort[length];
        for (int i = 0; i < length; i++)
        {
            float v = (float)((random.NextDouble() * 2) - 1);
            if (f16)
            {
                bits[i] = i % 7 == 3 ? (ushort)(random.Next(0, 0x400) | (i % 2 == 0 ? 0x8000 : 0)) : BitConverter.HalfToUInt16Bits((Half)v);
            }
            else
            {
                bits[i] = BFloat16.FromSingle(v).Bits;
            }
        }

        return bits;
    }

    private static float[] Widened(ushort[] bits, bool f16) =>
        [.. bits.Select(b => f16 ? (float)BitConverter.UInt16BitsToHalf(b) : BFloat16.FromBits(b).ToSingle())];

    private static void CheckNarrow(GemmIsa isa, bool f16, int m, int n, int k, int maxThreads, float alpha, float beta, bool withBias, int ldb)
    {
        int seed = (m * 31) + (n * 7) + k;
        float[] a = Random(seed, m * k);
        ushort[] b = NarrowRandom(seed + 1, ((n - 1) * ldb) + k, f16);
        float[] wide = Widened(b, f16);
        float[] bias = withBias ? Random(seed + 2, n) : [];
        float[] c0 = Random(seed + 3, m * n);
        float[] expected = (float[])c0.Clone(), actual = (float[])c0.Clone();
        Gemm.SgemmCore(isa, maxThreads, false, true, m, n, k, alpha, a, k, wide, ldb, beta, expected, n, bias);
        Gemm.SgemmNarrowBCore(isa, maxThreads, f16 ? NarrowB.F16 : NarrowB.BF16, m, n, k, alpha, a, k, b, ldb, beta, actual, n, bias);
        string label = $"{isa} {(f16 ? "F16" : "BF16")} {m}×{n}×{k} ldb {ldb}, {maxThreads} threads, beta {beta}, bias {withBias}";
        if (m > GemmThinA.MaxRows && k < GemmSplitK.MinK)
        {
            Assert.True(expected.AsSpan().SequenceEqual(actual), $"{label}: differs from widening B first");
        }
        else
        {
            // The F32 call takes its thin or split-k path, which sums in another order: compare with the reference.
            var reference = (float[])c0.Clone();
            Gemm.Reference(false, true, m, n, k, alpha, a, k, wide, ldb, beta, reference, n, bias);
            AssertClose(false, true, m, n, k, alpha, a, k, wide, ldb, beta, c0, n, bias, reference, actual, label);
        }
    }

    [Theory]
    [MemberData(nameof(TiersAndFormats))]
    public void SgemmNarrowBCore_OddShapes_EqualWideningFirstBitForBit(string tier, bool f16)
    {
        // M, N, K off the tiles, K above KcMax (several k blocks), one and several row tiles (m > 288 packs B per column
        // tile outside the tiles; with fewer rows than columns, two threads deal those tiles column tiles first), a leading
        // dimension above k; one and two threads; with and without bias and beta.
        GemmIsa isa = Enum.Parse<GemmIsa>(tier);
        foreach ((int m, int n, int k) in new[] { (9, 1, 1), (13, 37, 300), (130, 70, 600), (200, 33, 257), (20, 800, 40), (128, 100, 1000), (300, 45, 530), (320, 700, 300), (37, 96, 17) })
        {
            foreach (int threads in new[] { 1, 2 })
            {
                CheckNarrow(isa, f16, m, n, k, threads, alpha: 1f, beta: 0f, withBias: false, ldb: k);
                CheckNarrow(isa, f16, m, n, k, threads, alpha: 0.75f, beta: 1f, withBias: true, ldb: k + 3);
            }
        }
    }

    [Theory]
    [MemberData(nameof(TiersAndFormats))]
    public void SgemmNarrowBCore_ThinAndLongK_MatchReference(string tier, bool f16)
    {
        GemmIsa isa = Enum.Parse<GemmIsa>(tier);
        CheckNarrow(isa, f16, 3, 70, 300, 2, alpha: 1f, beta: 0.5f, withBias: true, ldb: 300);
        CheckNarrow(isa, f16, 16, 20, GemmSplitK.MinK + 40, 2, alpha: 1f, beta: 1f, withBias: true, ldb: GemmSplitK.MinK + 40);
    }

    [Fact]
    public unsafe void PackBBlock_EveryHalf_EqualsWidenedPack()
    {
        // All 65536 F16 (and BF16) bit patterns through the narrow pack, as 32/16/8-wide panels, full and partial, against
        // widening first and packing with the F32 pack: equal values (NaN stays NaN, payload aside).
        foreach (bool f16 in new[] { true, false })
        {
            ushort[] bits = [.. Enumerable.Range(0, 1 << 16).Select(i => (ushort)i)];
            float[] wide = Widened(bits, f16);
            const int ld = 2048; // 32 rows × 2048 values
            foreach ((int nr, int cols, int kcb) in new[] { (32, 32, 256), (32, 32, 250), (16, 16, 200), (8, 8, 77), (32, 20, 64), (16, 5, 33) })
            {
                for (int p0 = 0; p0 + kcb <= ld; p0 += 3 * kcb)
                {
                    var narrow = new float[kcb * nr];
                    var expected = new float[kcb * nr];
                    fixed (ushort* pb = bits)
                    fixed (float* pw = wide, pn = narrow, pe = expected)
                    {
                        GemmNarrowB.PackBBlock(f16 ? NarrowB.F16 : NarrowB.BF16, pb, ld, 0, cols, p0, kcb, nr, pn);
                        GemmDriver.PackBBlock(true, pw, ld, 0, cols, p0, kcb, nr, pe);
                    }

                    for (int i = 0; i < narrow.Length; i++)
                    {
                        if (!(narrow[i] == expected[i] && (narrow[i] != 0 || float.IsNegative(narrow[i]) == float.IsNegative(expected[i]))) && !(float.IsNaN(narrow[i]) && float.IsNaN(expected[i])))
                        {
                            Assert.Fail($"{(f16 ? "F16" : "BF16")} nr {nr} cols {cols} kcb {kcb} p0 {p0}: [{i}] = {narrow[i]}, widened first {expected[i]}");
                        }
                    }
                }
            }
        }
    }

    [Fact]
    public void SgemmNarrowB_PublicOverloads_MatchReference()
    {
        const int m = 40, n = 50, k = 300;
        float[] a = Random(5, m * k), bias = Random(6, n);
        foreach (bool f16 in new[] { true, false })
        {
            ushort[] bits = NarrowRandom(7, n * k, f16);
            float[] wide = Widened(bits, f16);
            var c = new float[m * n];
            if (f16)
            {
                Gemm.SgemmNarrowB(m, n, k, 1f, a, k, [.. bits.Select(BitConverter.UInt16BitsToHalf)], k, 0f, c, n, bias);
            }
            else
            {
                Gemm.SgemmNarrowB(m, n, k, 1f, a, k, [.. bits.Select(BFloat16.FromBits)], k, 0f, c, n, bias);
            }

            var reference = new float[m * n];
            Gemm.Reference(false, true, m, n, k, 1f, a, k, wide, k, 0f, reference, n, bias);
            AssertClose(false, true, m, n, k, 1f, a, k, wide, k, 0f, new float[m * n], n, bias, reference, c, f16 ? "F16" : "BF16");
        }

        Assert.Throws<ArgumentException>(() => Gemm.SgemmNarrowB(m, n, k, 1f, a, k, new Half[(n * k) - 1], k, 0f, new float[m * n], n));
    }

    /// <summary>F16 bits as <see cref="NarrowRandom"/> makes them, with ±0 and values near ±127.9 mixed in, and their codes.</summary>
    private static (ushort[] Halves, ushort[] Codes) CodedRandom(int seed, int length)
    {
        var halves = NarrowRandom(seed, length, f16: true);
        for (int i = 5; i < length; i += 41)
        {
            halves[i] = (i / 41 % 4) switch { 0 => 0x8000, 1 => 0, 2 => BitConverter.HalfToUInt16Bits((Half)127.9f), _ => BitConverter.HalfToUInt16Bits((Half)(-127.9f)) };
        }

        var codes = (ushort[])halves.Clone();
        HalfCodes.Encode(System.Runtime.InteropServices.MemoryMarshal.Cast<ushort, Half>(codes.AsSpan()));
        return (halves, codes);
    }

    [Theory]
    [MemberData(nameof(Tiers))]
    public void SgemmNarrowBCore_HalfCodes_EqualF16BitForBit(string tier)
    {
        // The same shapes as the F16 tests (tiles, k blocks, leading dimensions, thin and long k, one and two threads),
        // codes against the halves they stand for: the packed panels hold the same F32 values, so C is the same bits.
        GemmIsa isa = Enum.Parse<GemmIsa>(tier);
        foreach ((int m, int n, int k) in new[] { (9, 1, 1), (13, 37, 300), (130, 70, 600), (200, 33, 257), (20, 800, 40), (300, 45, 530), (37, 96, 17), (3, 70, 300), (16, 20, GemmSplitK.MinK + 40) })
        {
            foreach (int threads in new[] { 1, 2 })
            {
                foreach ((float alpha, float beta, bool withBias, int ldb) in new[] { (1f, 0f, false, k), (0.75f, 1f, true, k + 3) })
                {
                    int seed = (m * 31) + (n * 7) + k;
                    float[] a = Random(seed, m * k);
                    (ushort[] halves, ushort[] codes) = CodedRandom(seed + 1, ((n - 1) * ldb) + k);
                    float[] bias = withBias ? Random(seed + 2, n) : [];
                    float[] c0 = Random(seed + 3, m * n);
                    float[] expected = (float[])c0.Clone(), actual = (float[])c0.Clone();
                    Gemm.SgemmNarrowBCore(isa, threads, NarrowB.F16, m, n, k, alpha, a, k, halves, ldb, beta, expected, n, bias);
                    Gemm.SgemmNarrowBCore(isa, threads, NarrowB.F16Code, m, n, k, alpha, a, k, codes, ldb, beta, actual, n, bias);
                    Assert.True(
                        expected.Select(BitConverter.SingleToUInt32Bits).SequenceEqual(actual.Select(BitConverter.SingleToUInt32Bits)),
                        $"{isa} {m}×{n}×{k} ldb {ldb}, {threads} threads, beta {beta}, bias {withBias}: codes differ from F16");
                }
            }
        }
    }

    [Fact]
    public unsafe void PackBBlock_EveryEncodableHalfAsCode_EqualsF16Pack()
    {
        // All 45056 encodable halves as codes through the narrow pack (full and partial panels of every width), against
        // the F16 pack of the halves: the same bits, −0 included.
        ushort[] halves = [.. Enumerable.Range(0, 1 << 16).Select(i => (ushort)i).Where(b => HalfCodes.CanEncode(BitConverter.UInt16BitsToHalf(b)))];
        ushort[] codes = (ushort[])halves.Clone();
        HalfCodes.Encode(System.Runtime.InteropServices.MemoryMarshal.Cast<ushort, Half>(codes.AsSpan()));
        const int ld = 1408; // 32 rows × 1408 values
        foreach ((int nr, int cols, int kcb) in new[] { (32, 32, 256), (32, 32, 250), (16, 16, 200), (8, 8, 77), (32, 20, 64), (16, 5, 33) })
        {
            for (int p0 = 0; p0 + kcb <= ld; p0 += 2 * kcb)
            {
                var fromCodes = new float[kcb * nr];
                var fromHalves = new float[kcb * nr];
                fixed (ushort* pc = codes, ph = halves)
                fixed (float* pfc = fromCodes, pfh = fromHalves)
                {
                    GemmNarrowB.PackBBlock(NarrowB.F16Code, pc, ld, 0, cols, p0, kcb, nr, pfc);
                    GemmNarrowB.PackBBlock(NarrowB.F16, ph, ld, 0, cols, p0, kcb, nr, pfh);
                }

                for (int i = 0; i < fromCodes.Length; i++)
                {
                    if (BitConverter.SingleToUInt32Bits(fromCodes[i]) != BitConverter.SingleToUInt32Bits(fromHalves[i]))
                    {
                        Assert.Fail($"nr {nr} cols {cols} kcb {kcb} p0 {p0}: [{i}] = {fromCodes[i]}, F16 pack {fromHalves[i]}");
                    }
                }
            }
        }
    }

    [Fact]
    public void SgemmNarrowB_HalfCodeOverload_EqualsHalfOverload()
    {
        const int m = 40, n = 50, k = 300;
        float[] a = Random(5, m * k), bias = Random(6, n);
        (ushort[] halves, ushort[] codes) = CodedRandom(7, n * k);
        float[] expected = new float[m * n], actual = new float[m * n];
        Gemm.SgemmNarrowB(m, n, k, 1f, a, k, [.. halves.Select(BitConverter.UInt16BitsToHalf)], k, 0f, expected, n, bias);
        Gemm.SgemmNarrowB(m, n, k, 1f, a, k, [.. codes.Select(HalfCode.FromBits)], k, 0f, actual, n, bias);
        Assert.True(expected.Select(BitConverter.SingleToUInt32Bits).SequenceEqual(actual.Select(BitConverter.SingleToUInt32Bits)), "codes differ from F16");
        Assert.Throws<ArgumentException>(() => Gemm.SgemmNarrowB(m, n, k, 1f, a, k, new HalfCode[(n * k) - 1], k, 0f, new float[m * n], n));
    }
}
