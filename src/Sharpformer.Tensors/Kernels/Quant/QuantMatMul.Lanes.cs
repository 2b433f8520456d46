using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sharpformer.Tensors.Kernels.Quant;

/// <summary>
/// The token-lane path of <see cref="QuantMatMul"/> for Q8_0 and Q4_0 weights times eight or more tokens, with AVX-VNNI:
/// the activations of eight tokens are interleaved so that lane t of a vector holds token t's codes, and each
/// VPDPBUSD multiplies one broadcast group of four weight bytes by the eight tokens' four codes. A block's integer sums
/// for eight tokens then sit in one vector, so the int→float conversion and the two scales cost three operations per
/// weight row and block for all eight tokens (the 2 × 4 tiles pay them per token). Four weight rows and two blocks run
/// side by side (eight independent VPDPBUSD chains: with four, the instruction's latency bounds the loop). Weights are
/// taken unsigned (Q8_0 codes + 128, Q4_0 codes 0–15) against signed activation codes, the offset returned through
/// each token's code sum (−offset·Σx starts the integer sum), so the block sums are the reference's exact integers.
/// </summary>
public static unsafe partial class QuantMatMul
{
    /// <summary>Tokens per lane group (the eight int32 lanes of a 256-bit vector).</summary>
    private const int LaneTokens = 8;

    /// <summary>Weight rows per lane tile.</summary>
    private const int LaneRowsPerTile = 4;

    /// <summary>
    /// Rows [start, end) in tiles of four over every group of eight tokens, the tokens past the last group one at a
    /// time; returns the first row not done (the last one to three rows of the range go to the other paths).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int LaneRows(in Job job, int start, int end)
    {
        var tile = stackalloc float[LaneRowsPerTile * LaneTokens];
        var scratch = stackalloc byte[2 * LaneRowsPerTile * 32];
        var blocks = job.In / 32;
        var o = start;
        for (; o + LaneRowsPerTile <= end; o += LaneRowsPerTile)
        {
            var w = (byte*)job.W + ((long)o * job.RowBytes);
            for (var g = 0; g < job.LaneGroups; g++)
            {
                var lanes = (sbyte*)job.Lanes + ((long)g * LaneTokens * job.In);
                var scales = (float*)job.LaneScales + ((long)g * blocks * LaneTokens);
                var starts = (int*)job.LaneStarts + ((long)g * blocks * LaneTokens);
                if (job.Type == QuantType.Q8_0)
                {
                    LaneTileQ8_0(w, job.RowBytes, lanes, scales, starts, blocks, scratch, tile);
                }
                else
                {
                    LaneTileQ4_0(w, job.RowBytes, lanes, scales, starts, blocks, scratch, tile);
                }

                StoreTile(job, o, g, tile);
            }

            for (var r = job.LaneGroups * LaneTokens; r < job.Rows; r++)
            {
                for (var i = 0; i < LaneRowsPerTile; i++)
                {
                    Store(job, o + i, r, Dot(job, w + ((long)i * job.RowBytes), r));
                }
            }
        }

        return o;
    }

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
