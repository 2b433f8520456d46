using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sharpformer.Tensors.Kernels.Quant;

/// <summary>
/// The token-lane path of <see cref="QuantMatMul"/> for Q8_0 and Q4_0 weights times eight or more tokens, with AVX-VNNI:
/// the activations of eight tokens are interleaved so that lane t of a vector holds token t's codes, and each
/// VPDPBUSD multiplies one broadcast group of four weight bytes by the eight tokens' four codes. A block's integer sums
/// for eight tokens then sit in one vector, so the int→float conversion and the two scales cost three operations per
/// weight row and block for all eight tokens (the 2 × 4 tiles pay them per token). A tile of four weight rows is made
/// unsigned once (Q8_0 codes + 128, Q4_0 codes 0–15) into a panel that every token group reads; two groups and two
/// blocks run side by side, each broadcast of weight bytes feeding both groups (sixteen independent VPDPBUSD chains:
/// Q8_0 2048×2048 × 128 tokens on one core of an AMD EPYC Zen 5 class, 114 → 183 GMAC/s against one group, two blocks
/// and the weights made unsigned again per group). One group alone (batched decode at 8–15 tokens) makes the codes
/// unsigned as they stream in instead, without the panel pass. With AVX-512 a pair of groups runs one block at a time
/// (<see cref="LaneTilePairWide"/>: eight chains, each row's two groups joined into one 512-bit vector for the int→float
/// conversion and the scales): the two-block form above needs more accumulators than the sixteen registers the JIT
/// gives VPDPBUSD's accumulator and copies half of them in and out of ymm16–23 around every VPDPBUSD; one block with
/// 512-bit scaling measured 0.95× its time on one core of the same CPU (Q8_0, the ~1B shapes × 128 tokens). The signed activation codes meet the offset through each token's
/// code sum (−offset·Σx starts the integer sum), so the block sums are the reference's exact integers.
/// </summary>
public static unsafe partial class QuantMatMul
{
    /// <summary>Tokens per lane group (the eight int32 lanes of a 256-bit vector).</summary>
    private const int LaneTokens = 8;

    /// <summary>Weight rows per lane tile.</summary>
    private const int LaneRowsPerTile = 4;

    /// <summary>
    /// Rows [start, end) in tiles of four over every group of eight tokens, the tokens past the last group one at a
    /// time; returns the first row not done (the last one to three rows of the range go to the other paths). With two or
    /// more groups each tile's codes are made unsigned once into a panel (<see cref="LanePanel"/>) that every group then
    /// reads; one group takes the codes straight from the weights (<see cref="LaneTileQ8_0"/>, <see cref="LaneTileQ4_0"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int LaneRows(in Job job, int start, int end)
    {
        var tile = stackalloc float[2 * LaneRowsPerTile * LaneTokens];
        var scratch = stackalloc byte[2 * LaneRowsPerTile * 32];
        var blocks = job.In / 32;
        var codeBytes = LaneRowsPerTile * job.In;
        var buffer = ArrayPool<byte>.Shared.Rent(codeBytes + (LaneRowsPerTile * blocks * sizeof(float)));
        var groupBytes = (long)LaneTokens * job.In;
        var o = start;
        try
        {
            fixed (byte* panel = buffer)
            {
                var factors = (float*)(panel + codeBytes);
                for (; o + LaneRowsPerTile <= end; o += LaneRowsPerTile)
                {
                    var w = (byte*)job.W + ((long)o * job.RowBytes);
                    if (job.LaneGroups == 1)
                    {
                        // One group (batched decode): the codes made unsigned as they stream in, no panel pass (which
                        // measured ~12% slower at 8 tokens on the ~1B shapes: its loads wait on memory without work beside them).
                        if (job.Type == QuantType.Q8_0)
                        {
                            LaneTileQ8_0(w, job.RowBytes, (sbyte*)job.Lanes, (float*)job.LaneScales, (int*)job.LaneStarts, blocks, scratch, tile);
                        }
                        else
                        {
                            LaneTileQ4_0(w, job.RowBytes, (sbyte*)job.Lanes, (float*)job.LaneScales, (int*)job.LaneStarts, blocks, scratch, tile);
                        }

                        StoreTile(job, o, 0, tile);
                        StoreRest(job, o, w);
                        continue;
                    }

                    LanePanel(job.Type, w, job.RowBytes, blocks, panel, factors);
                    var g = 0;
                    for (; g + 2 <= job.LaneGroups; g += 2)
                    {
                        // Two groups against each broadcast of weight bytes (sixteen independent VPDPBUSD chains).
                        var lanes = (sbyte*)job.Lanes + (g * groupBytes);
                        var scales = (float*)job.LaneScales + ((long)g * blocks * LaneTokens);
                        var starts = (int*)job.LaneStarts + ((long)g * blocks * LaneTokens);
                        if (Avx512F.IsSupported)
                        {
                            // One block at a time, each row's sums of both groups converted and scaled 512 bits wide.
                            LaneTilePairWide(panel, factors, blocks, lanes, lanes + groupBytes, scales, scales + (blocks * LaneTokens), starts, starts + (blocks * LaneTokens), tile);
                            StoreTile(job, o, g, tile, 2 * LaneTokens);
                            StoreTile(job, o, g + 1, tile + LaneTokens, 2 * LaneTokens);
                            continue;
                        }

                        LaneTilePair(panel, factors, blocks, lanes, lanes + groupBytes, scales, scales + (blocks * LaneTokens), starts, starts + (blocks * LaneTokens), tile);
                        StoreTile(job, o, g, tile);
                        StoreTile(job, o, g + 1, tile + (LaneRowsPerTile * LaneTokens));
                    }

                    if (g < job.LaneGroups)
                    {
                        var lanes = (sbyte*)job.Lanes + (g * groupBytes);
                        var scales = (float*)job.LaneScales + ((long)g * blocks * LaneTokens);
                        var starts = (int*)job.LaneStarts + ((long)g * blocks * LaneTokens);
                        LaneTile(panel, factors, blocks, lanes, scales, starts, tile);
                        StoreTile(job, o, g, tile);
                    }

                    StoreRest(job, o, w);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return o;
    }

    /// <summary>The tokens past the last group of eight against the tile's four rows at <paramref name="w"/>, one at a time.</summary>
    private static void StoreRest(in Job job, int o, byte* w)
    {
        for (var r = job.LaneGroups * LaneTokens; r < job.Rows; r++)
        {
            for (var i = 0; i < LaneRowsPerTile; i++)
            {
                Store(job, o + i, r, Dot(job, w + ((long)i * job.RowBytes), r));
            }
        }
    }

    /// <summary>
    /// Four Q8_0 or Q4_0 rows from <paramref name="w"/> as unsigned codes in value order, block b's rows at
    /// <paramref name="panel"/> + 128·b + 32·r (Q8_0 codes + 128, Q4_0 codes 0–15), and their block scales as floats at
    /// <paramref name="factors"/>[4·b + r].
    /// </summary>
    private static void LanePanel(QuantType type, byte* w, int rowBytes, int blocks, byte* panel, float* factors)
    {
        var offset = Vector256.Create((byte)0x80);
        var blockBytes = type == QuantType.Q8_0 ? 34 : 18;
        for (var r = 0; r < LaneRowsPerTile; r++)
        {
            var block = w + ((long)r * rowBytes);
            for (var b = 0; b < blocks; b++, block += blockBytes)
            {
                var codes = type == QuantType.Q8_0 ? Vector256.Load(block + 2) ^ offset : Q4Codes(block + 2);
                codes.Store(panel + (128 * b) + (32 * r));
                factors[(4 * b) + r] = Half16(block);
            }
        }
    }

    /// <summary>
    /// The panel's four rows times two groups of eight tokens (A and B: interleaved codes, block scales, zero-point
    /// starts) into <paramref name="result"/> [2 groups, 4 rows, 8 tokens], without AVX-512 (else <see cref="LaneTilePairWide"/>). Two blocks run side by side, each broadcast
    /// of four weight bytes feeding both groups: sixteen independent VPDPBUSD chains, then the odd last block alone.
    /// </summary>
    private static void LaneTilePair(
        byte* panel, float* factors, int blocks, sbyte* lanesA, sbyte* lanesB, float* scalesA, float* scalesB, int* startsA, int* startsB, float* result)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default;
        var b = 0;
        for (; b + 2 <= blocks; b += 2)
        {
            var w = panel + (128 * b);
            var xa = lanesA + (256 * b);
            var xb = lanesB + (256 * b);
            // Block b: i (group A), j (group B); block b + 1: k (A), m (B); each starts at the tokens' −offset·Σx.
            Vector256<int> i0 = Vector256.Load(startsA + (8 * b)), i1 = i0, i2 = i0, i3 = i0;
            Vector256<int> j0 = Vector256.Load(startsB + (8 * b)), j1 = j0, j2 = j0, j3 = j0;
            Vector256<int> k0 = Vector256.Load(startsA + (8 * b) + 8), k1 = k0, k2 = k0, k3 = k0;
            Vector256<int> m0 = Vector256.Load(startsB + (8 * b) + 8), m1 = m0, m2 = m0, m3 = m0;
            for (var s = 0; s < 8; s++)
            {
                WideStep(w + (4 * s), xa + (32 * s), xb + (32 * s), ref i0, ref i1, ref i2, ref i3, ref j0, ref j1, ref j2, ref j3);
                WideStep(w + 128 + (4 * s), xa + 256 + (32 * s), xb + 256 + (32 * s), ref k0, ref k1, ref k2, ref k3, ref m0, ref m1, ref m2, ref m3);
            }

            var f = factors + (4 * b);
            var dA = Vector256.Load(scalesA + (8 * b));
            var dB = Vector256.Load(scalesB + (8 * b));
            a0 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(i0), dA * f[0], a0);
            a1 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(i1), dA * f[1], a1);
            a2 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(i2), dA * f[2], a2);
            a3 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(i3), dA * f[3], a3);
            b0 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(j0), dB * f[0], b0);
            b1 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(j1), dB * f[1], b1);
            b2 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(j2), dB * f[2], b2);
            b3 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(j3), dB * f[3], b3);
            dA = Vector256.Load(scalesA + (8 * b) + 8);
            dB = Vector256.Load(scalesB + (8 * b) + 8);
            a0 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(k0), dA * f[4], a0);
            a1 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(k1), dA * f[5], a1);
            a2 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(k2), dA * f[6], a2);
            a3 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(k3), dA * f[7], a3);
            b0 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(m0), dB * f[4], b0);
            b1 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(m1), dB * f[5], b1);
            b2 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(m2), dB * f[6], b2);
            b3 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(m3), dB * f[7], b3);
        }

        if (b < blocks)
        {
            PanelBlockLast(panel + (128 * b), factors + (4 * b), lanesA + (256 * b), scalesA + (8 * b), startsA + (8 * b), ref a0, ref a1, ref a2, ref a3);
            PanelBlockLast(panel + (128 * b), factors + (4 * b), lanesB + (256 * b), scalesB + (8 * b), startsB + (8 * b), ref b0, ref b1, ref b2, ref b3);
        }

        a0.Store(result);
        a1.Store(result + 8);
        a2.Store(result + 16);
        a3.Store(result + 24);
        b0.Store(result + 32);
        b1.Store(result + 40);
        b2.Store(result + 48);
        b3.Store(result + 56);
    }

    /// <summary>
    /// <see cref="LaneTilePair"/> one block at a time with the float work 512 bits wide: each row's two groups' integer
    /// sums joined into one vector of sixteen tokens, so one conversion, one scale product and one FMA serve both
    /// groups; <paramref name="result"/> is [4 rows, 16 tokens] (group A in tokens 0–7, B in 8–15).
    /// </summary>
    private static void LaneTilePairWide(
        byte* panel, float* factors, int blocks, sbyte* lanesA, sbyte* lanesB, float* scalesA, float* scalesB, int* startsA, int* startsB, float* result)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (var b = 0; b < blocks; b++)
        {
            var w = panel + (128 * b);
            var xa = lanesA + (256 * b);
            var xb = lanesB + (256 * b);
            Vector256<int> i0 = Vector256.Load(startsA + (8 * b)), i1 = i0, i2 = i0, i3 = i0;
            Vector256<int> j0 = Vector256.Load(startsB + (8 * b)), j1 = j0, j2 = j0, j3 = j0;
            WideStep(w, xa, xb, ref i0, ref i1, ref i2, ref i3, ref j0, ref j1, ref j2, ref j3);
            WideStep(w + 4, xa + 32, xb + 32, ref i0, ref i1, ref i2, ref i3, ref j0, ref j1, ref j2, ref j3);
            WideStep(w + 8, xa + 64, xb + 64, ref i0, ref i1, ref i2, ref i3, ref j0, ref j1, ref j2, ref j3);
            WideStep(w + 12, xa + 96, xb + 96, ref i0, ref i1, ref i2, ref i3, ref j0, ref j1, ref j2, ref j3);
            WideStep(w + 16, xa + 128, xb + 128, ref i0, ref i1, ref i2, ref i3, ref j0, ref j1, ref j2, ref j3);
            WideStep(w + 20, xa + 160, xb + 160, ref i0, ref i1, ref i2, ref i3, ref j0, ref j1, ref j2, ref j3);
            WideStep(w + 24, xa + 192, xb + 192, ref i0, ref i1, ref i2, ref i3, ref j0, ref j1, ref j2, ref j3);
            WideStep(w + 28, xa + 224, xb + 224, ref i0, ref i1, ref i2, ref i3, ref j0, ref j1, ref j2, ref j3);
            var f = factors + (4 * b);
            var d = Vector512.Create(Vector256.Load(scalesA + (8 * b)), Vector256.Load(scalesB + (8 * b)));
            a0 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Vector512.Create(i0, j0)), d * f[0], a0);
            a1 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Vector512.Create(i1, j1)), d * f[1], a1);
            a2 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Vector512.Create(i2, j2)), d * f[2], a2);
            a3 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Vector512.Create(i3, j3)), d * f[3], a3);
        }

        a0.Store(result);
        a1.Store(result + 16);
        a2.Store(result + 32);
        a3.Store(result + 48);
    }

    /// <summary>One step of four weight bytes (four rows 32 bytes apart at <paramref name="w"/>) against two groups' interleaved codes (<see cref="LaneTilePair"/>, <see cref="LaneTilePairWide"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WideStep(
        byte* w, sbyte* xa, sbyte* xb,
        ref Vector256<int> i0, ref Vector256<int> i1, ref Vector256<int> i2, ref Vector256<int> i3,
        ref Vector256<int> j0, ref Vector256<int> j1, ref Vector256<int> j2, ref Vector256<int> j3)
    {
        var x = Vector256.Load(xa);
        var y = Vector256.Load(xb);
        var w0 = Broadcast4x8(w);
        var w1 = Broadcast4x8(w + 32);
        var w2 = Broadcast4x8(w + 64);
        var w3 = Broadcast4x8(w + 96);
        i0 = AvxVnni.MultiplyWideningAndAdd(i0, w0, x);
        j0 = AvxVnni.MultiplyWideningAndAdd(j0, w0, y);
        i1 = AvxVnni.MultiplyWideningAndAdd(i1, w1, x);
        j1 = AvxVnni.MultiplyWideningAndAdd(j1, w1, y);
        i2 = AvxVnni.MultiplyWideningAndAdd(i2, w2, x);
        j2 = AvxVnni.MultiplyWideningAndAdd(j2, w2, y);
        i3 = AvxVnni.MultiplyWideningAndAdd(i3, w3, x);
        j3 = AvxVnni.MultiplyWideningAndAdd(j3, w3, y);
    }

    /// <summary>
    /// The panel's four rows times one group of eight tokens into <paramref name="result"/> [4, 8]: two blocks side by
    /// side (eight independent VPDPBUSD chains, <see cref="LaneDotPair"/>), then the odd last block alone.
    /// </summary>
    private static void LaneTile(byte* panel, float* factors, int blocks, sbyte* lanes, float* scales, int* starts, float* result)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        var b = 0;
        for (; b + 2 <= blocks; b += 2)
        {
            var f = factors + (4 * b);
            var (e0, e1, e2, e3, g0, g1, g2, g3) = LaneDotPair(panel + (128 * b), 32, 128, lanes + (256 * b), 256, 8);
            var start = Vector256.Load(starts + (8 * b));
            var dx = Vector256.Load(scales + (8 * b));
            a0 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(e0 + start), dx * f[0], a0);
            a1 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(e1 + start), dx * f[1], a1);
            a2 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(e2 + start), dx * f[2], a2);
            a3 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(e3 + start), dx * f[3], a3);
            start = Vector256.Load(starts + (8 * b) + 8);
            dx = Vector256.Load(scales + (8 * b) + 8);
            a0 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(g0 + start), dx * f[4], a0);
            a1 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(g1 + start), dx * f[5], a1);
            a2 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(g2 + start), dx * f[6], a2);
            a3 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(g3 + start), dx * f[7], a3);
        }

        if (b < blocks)
        {
            PanelBlockLast(panel + (128 * b), factors + (4 * b), lanes + (256 * b), scales + (8 * b), starts + (8 * b), ref a0, ref a1, ref a2, ref a3);
        }

        a0.Store(result);
        a1.Store(result + 8);
        a2.Store(result + 16);
        a3.Store(result + 24);
    }

    /// <summary>
    /// The odd last block of a panel (four rows' unsigned codes at <paramref name="panel"/>, their scales in
    /// <paramref name="factors"/>) times one group of eight tokens, added to the accumulators: a_r += (start + Σ w·x)·d_x·f_r.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PanelBlockLast(
        byte* panel, float* factors, sbyte* lanes, float* scales, int* starts,
        ref Vector256<float> a0, ref Vector256<float> a1, ref Vector256<float> a2, ref Vector256<float> a3)
    {
        var (i0, i1, i2, i3) = LaneBlock(panel, lanes, Vector256.Load(starts));
        var dx = Vector256.Load(scales);
        a0 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(i0), dx * factors[0], a0);
        a1 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(i1), dx * factors[1], a1);
        a2 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(i2), dx * factors[2], a2);
        a3 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(i3), dx * factors[3], a3);
    }

    /// <summary>Four weight bytes broadcast to every 32-bit lane of a 256-bit vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Broadcast4x8(byte* p) => Vector256.Create(*(uint*)p).AsByte();

    /// <summary>Four Q8_0 rows from <paramref name="w"/> times one group of eight tokens into <paramref name="result"/> [4, 8].</summary>
    private static void LaneTileQ8_0(byte* w, int rowBytes, sbyte* lanes, float* scales, int* starts, int blocks, byte* scratch, float* result)
    {
        byte* w0 = w, w1 = w + rowBytes, w2 = w + (2 * rowBytes), w3 = w + (3 * rowBytes);
        var offset = Vector256.Create((byte)0x80);
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        var b = 0;
        // Two blocks side by side (eight independent VPDPBUSD chains), then the odd last block alone.
        for (; b + 2 <= blocks; b += 2, w0 += 68, w1 += 68, w2 += 68, w3 += 68, lanes += 512)
        {
            // The codes + 128 as unsigned bytes, stored where four bytes at a time are broadcast from: block b's rows at
            // 32·r, block b + 1's at 128 + 32·r.
            (Vector256.Load(w0 + 2) ^ offset).Store(scratch);
            (Vector256.Load(w1 + 2) ^ offset).Store(scratch + 32);
            (Vector256.Load(w2 + 2) ^ offset).Store(scratch + 64);
            (Vector256.Load(w3 + 2) ^ offset).Store(scratch + 96);
            (Vector256.Load(w0 + 36) ^ offset).Store(scratch + 128);
            (Vector256.Load(w1 + 36) ^ offset).Store(scratch + 160);
            (Vector256.Load(w2 + 36) ^ offset).Store(scratch + 192);
            (Vector256.Load(w3 + 36) ^ offset).Store(scratch + 224);
            LaneBlockPair(scratch, lanes, starts + (8 * b), scales + (8 * b), w0, w1, w2, w3, 34, ref a0, ref a1, ref a2, ref a3);
        }

        if (b < blocks)
        {
            (Vector256.Load(w0 + 2) ^ offset).Store(scratch);
            (Vector256.Load(w1 + 2) ^ offset).Store(scratch + 32);
            (Vector256.Load(w2 + 2) ^ offset).Store(scratch + 64);
            (Vector256.Load(w3 + 2) ^ offset).Store(scratch + 96);
            LaneBlockLast(scratch, lanes, starts + (8 * b), scales + (8 * b), w0, w1, w2, w3, ref a0, ref a1, ref a2, ref a3);
        }

        a0.Store(result);
        a1.Store(result + 8);
        a2.Store(result + 16);
        a3.Store(result + 24);
    }

    /// <summary>Four Q4_0 rows from <paramref name="w"/> times one group of eight tokens into <paramref name="result"/> [4, 8].</summary>
    private static void LaneTileQ4_0(byte* w, int rowBytes, sbyte* lanes, float* scales, int* starts, int blocks, byte* scratch, float* result)
    {
        byte* w0 = w, w1 = w + rowBytes, w2 = w + (2 * rowBytes), w3 = w + (3 * rowBytes);
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        var b = 0;
        for (; b + 2 <= blocks; b += 2, w0 += 36, w1 += 36, w2 += 36, w3 += 36, lanes += 512)
        {
            // The 4-bit codes (0–15) in value order: low nibbles are values 0–15, high nibbles 16–31.
            Q4Codes(w0 + 2).Store(scratch);
            Q4Codes(w1 + 2).Store(scratch + 32);
            Q4Codes(w2 + 2).Store(scratch + 64);
            Q4Codes(w3 + 2).Store(scratch + 96);
            Q4Codes(w0 + 20).Store(scratch + 128);
            Q4Codes(w1 + 20).Store(scratch + 160);
            Q4Codes(w2 + 20).Store(scratch + 192);
            Q4Codes(w3 + 20).Store(scratch + 224);
            LaneBlockPair(scratch, lanes, starts + (8 * b), scales + (8 * b), w0, w1, w2, w3, 18, ref a0, ref a1, ref a2, ref a3);
        }

        if (b < blocks)
        {
            Q4Codes(w0 + 2).Store(scratch);
            Q4Codes(w1 + 2).Store(scratch + 32);
            Q4Codes(w2 + 2).Store(scratch + 64);
            Q4Codes(w3 + 2).Store(scratch + 96);
            LaneBlockLast(scratch, lanes, starts + (8 * b), scales + (8 * b), w0, w1, w2, w3, ref a0, ref a1, ref a2, ref a3);
        }

        a0.Store(result);
        a1.Store(result + 8);
        a2.Store(result + 16);
        a3.Store(result + 24);
    }

    /// <summary>
    /// Blocks b and b + 1 of four rows (their unsigned codes in <paramref name="scratch"/>, block b + 1 at +128) times
    /// eight tokens, added to the accumulators: a_r += (start + Σ w·x)·d_x·d_w per block; <paramref name="blockBytes"/>
    /// apart in the rows <paramref name="w0"/>..<paramref name="w3"/> sit the second block's F16 scales.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void LaneBlockPair(
        byte* scratch, sbyte* lanes, int* starts, float* scales, byte* w0, byte* w1, byte* w2, byte* w3, int blockBytes,
        ref Vector256<float> a0, ref Vector256<float> a1, ref Vector256<float> a2, ref Vector256<float> a3)
    {
        var (e0, e1, e2, e3, f0, f1, f2, f3) = LaneDotPair(scratch, 32, 128, lanes, 256, 8);
        var start = Vector256.Load(starts);
        var dx = Vector256.Load(scales);
        a0 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(e0 + start), dx * Half16(w0), a0);
        a1 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(e1 + start), dx * Half16(w1), a1);
        a2 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(e2 + start), dx * Half16(w2), a2);
        a3 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(e3 + start), dx * Half16(w3), a3);
        start = Vector256.Load(starts + 8);
        dx = Vector256.Load(scales + 8);
        a0 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(f0 + start), dx * Half16(w0 + blockBytes), a0);
        a1 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(f1 + start), dx * Half16(w1 + blockBytes), a1);
        a2 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(f2 + start), dx * Half16(w2 + blockBytes), a2);
        a3 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(f3 + start), dx * Half16(w3 + blockBytes), a3);
    }

    /// <summary>One block of four rows (unsigned codes in <paramref name="scratch"/>) times eight tokens, added to the accumulators.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void LaneBlockLast(
        byte* scratch, sbyte* lanes, int* starts, float* scales, byte* w0, byte* w1, byte* w2, byte* w3,
        ref Vector256<float> a0, ref Vector256<float> a1, ref Vector256<float> a2, ref Vector256<float> a3)
    {
        var (i0, i1, i2, i3) = LaneBlock(scratch, lanes, Vector256.Load(starts));
        var dx = Vector256.Load(scales);
        a0 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(i0), dx * Half16(w0), a0);
        a1 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(i1), dx * Half16(w1), a1);
        a2 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(i2), dx * Half16(w2), a2);
        a3 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(i3), dx * Half16(w3), a3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Q4Codes(byte* codes)
    {
        var low = Vector128.Create((byte)0x0F);
        var raw = Vector128.Load(codes);
        return Vector256.Create(raw & low, Vector128.ShiftRightLogical(raw, 4) & low);
    }

    /// <summary>
    /// One block (32 values) of four unsigned weight rows at <paramref name="weights"/> (32 bytes each) times eight
    /// tokens' interleaved codes: lane t of result r is start[t] + Σ_i w_r[i]·x_t[i].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<int>, Vector256<int>, Vector256<int>, Vector256<int>) LaneBlock(byte* weights, sbyte* lanes, Vector256<int> start)
    {
        Vector256<int> i0 = start, i1 = start, i2 = start, i3 = start;
        for (var k = 0; k < 8; k++)
        {
            var x = Vector256.Load(lanes + (32 * k));
            i0 = AvxVnni.MultiplyWideningAndAdd(i0, Vector256.Create(*(uint*)(weights + (4 * k))).AsByte(), x);
            i1 = AvxVnni.MultiplyWideningAndAdd(i1, Vector256.Create(*(uint*)(weights + 32 + (4 * k))).AsByte(), x);
            i2 = AvxVnni.MultiplyWideningAndAdd(i2, Vector256.Create(*(uint*)(weights + 64 + (4 * k))).AsByte(), x);
            i3 = AvxVnni.MultiplyWideningAndAdd(i3, Vector256.Create(*(uint*)(weights + 96 + (4 * k))).AsByte(), x);
        }

        return (i0, i1, i2, i3);
    }
}
