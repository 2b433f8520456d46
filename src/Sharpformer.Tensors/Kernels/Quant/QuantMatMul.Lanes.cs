using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sharpformer.Tensors.Kernels.Quant;

/// <summary>
/// The token-lane path of <see cref="QuantMatMul"/> for Q8_0 and Q4_0 weights times eight or more tokens, with AVX-VNNI:
/// the activations of eight tokens are interleaved so that lane t of a vector holds token t's codes, and each
/// VPDPBUSD multiplies one broadcast group of four weight bytes by the eight tokens' four codes. A block's integer sums
/// for eight tokens then sit in one vector, so the int→float conversion and the two scales cost three operations per
/// weight row and block for all eight tokens (the 2 × 4 tiles pay them per token). Four weight rows run side by side
/// (four independent VPDPBUSD chains). Weights are taken unsigned (Q8_0 codes + 128, Q4_0 codes 0–15) against signed
/// activation codes, the offset returned through each token's code sum (−offset·Σx starts the integer sum), so the
/// block sums are the reference's exact integers.
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
        var scratch = stackalloc byte[LaneRowsPerTile * 32];
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

                for (var i = 0; i < LaneRowsPerTile; i++)
                {
                    for (var t = 0; t < LaneTokens; t++)
                    {
                        Store(job, o + i, (g * LaneTokens) + t, tile[(i * LaneTokens) + t]);
                    }
                }
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
        for (var b = 0; b < blocks; b++, w0 += 34, w1 += 34, w2 += 34, w3 += 34, lanes += 256)
        {
            // The codes + 128 as unsigned bytes, stored where four bytes at a time are broadcast from.
            (Vector256.Load(w0 + 2) ^ offset).Store(scratch);
            (Vector256.Load(w1 + 2) ^ offset).Store(scratch + 32);
            (Vector256.Load(w2 + 2) ^ offset).Store(scratch + 64);
            (Vector256.Load(w3 + 2) ^ offset).Store(scratch + 96);
            var (i0, i1, i2, i3) = LaneBlock(scratch, lanes, Vector256.Load(starts + (8 * b)));
            var dx = Vector256.Load(scales + (8 * b));
            a0 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(i0), dx * Half16(w0), a0);
            a1 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(i1), dx * Half16(w1), a1);
            a2 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(i2), dx * Half16(w2), a2);
            a3 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(i3), dx * Half16(w3), a3);
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
        for (var b = 0; b < blocks; b++, w0 += 18, w1 += 18, w2 += 18, w3 += 18, lanes += 256)
        {
            // The 4-bit codes (0–15) in value order: low nibbles are values 0–15, high nibbles 16–31.
            Q4Codes(w0 + 2).Store(scratch);
            Q4Codes(w1 + 2).Store(scratch + 32);
            Q4Codes(w2 + 2).Store(scratch + 64);
            Q4Codes(w3 + 2).Store(scratch + 96);
            var (i0, i1, i2, i3) = LaneBlock(scratch, lanes, Vector256.Load(starts + (8 * b)));
            var dx = Vector256.Load(scales + (8 * b));
            a0 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(i0), dx * Half16(w0), a0);
            a1 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(i1), dx * Half16(w1), a1);
            a2 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(i2), dx * Half16(w2), a2);
            a3 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(i3), dx * Half16(w3), a3);
        }

        a0.Store(result);
        a1.Store(result + 8);
        a2.Store(result + 16);
        a3.Store(result + 24);
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
