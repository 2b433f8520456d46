using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sharpformer.Tensors.Kernels.Quant;

/// <summary>
/// The token lanes of <see cref="QuantMatMul"/> for Q8_0 and Q4_0 weights on CPUs with AVX-512BW but no AVX-VNNI (AMD
/// Zen 4, Intel Skylake-SP to Ice Lake): .NET 10 exposes VPDPBUSD only through AVX-VNNI, so the four-byte products go
/// through VPMADDUBSW (unsigned weight code × signed activation code, adjacent pairs added into int16) and VPADDW,
/// eight steps (a block of 32 values) summed in int16 before one VPMADDWD folds each int32 lane's two halves. Pairs of
/// token groups sit 16 wide in the lanes of a 512-bit vector (the K-quants' interleaving, QuantMatMul.KLanesWide.cs),
/// so one broadcast of four weight bytes feeds sixteen tokens; an odd last group takes the same kernel 256 bits wide,
/// and batched decode's one group streams the weight blocks without a panel (<see cref="ByteTileStream"/>).
/// <para>
/// Exact: Q8_0 activation codes lie in [−127, 127] and every weight code the kernel multiplies lies in [0, 15], so one
/// VPMADDUBSW pair is at most 2·15·127 = 3810 in magnitude and a block's eight steps at most 30480 (int16 holds 32767).
/// Q4_0 codes are 0–15 already. A Q8_0 code w is taken as u = w + 128 = 16·h + l with nibbles h and l, each summed
/// on its own: Σ w·x = −128·Σx + Σ l·x + 16·Σ h·x, the block's integers as the reference has them.
/// </para>
/// </summary>
public static unsafe partial class QuantMatMul
{
    /// <summary>Whether the Q8_0/Q4_0 token lanes run on VPMADDUBSW (this file) rather than AVX-VNNI's VPDPBUSD (QuantMatMul.Lanes.cs).</summary>
    private static bool ByteLanes => !AvxVnni.IsSupported && KLanesWide;

    /// <summary>
    /// Rows [start, end) in tiles of four over every group of eight tokens, the pairs of groups 512 bits wide, the
    /// tokens past the last group one at a time; returns the first row not done. With two or more groups each tile's
    /// codes are unpacked once into a panel (<see cref="BytePanel"/>) that every group reads.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int ByteLaneRows(in Job job, int start, int end)
    {
        var tile = stackalloc float[LaneRowsPerTile * 2 * LaneTokens];
        var blocks = job.In / 32;
        var eight = job.Type == QuantType.Q8_0;
        var o = start;
        if (job.LaneGroups == 1)
        {
            // One group (batched decode): no panel, each block through one of two block buffers (ByteTileStream).
            var streamRaw = stackalloc byte[(2 * 256) + 64];
            var stream = (byte*)(((nint)streamRaw + 63) & ~(nint)63);
            for (; o + LaneRowsPerTile <= end; o += LaneRowsPerTile)
            {
                var w = (byte*)job.W + ((long)o * job.RowBytes);
                ByteTileStream(eight, w, job.RowBytes, blocks, (sbyte*)job.Lanes, (float*)job.LaneScales, (int*)job.LaneStarts, stream, tile);
                StoreTile(job, o, 0, tile);
                StoreRest(job, o, w);
            }

            return o;
        }

        var panelBytes = LaneRowsPerTile * 32 * blocks * (eight ? 2 : 1);
        var buffer = ArrayPool<byte>.Shared.Rent(panelBytes + (LaneRowsPerTile * blocks * sizeof(float)) + 64);
        var groupBytes = (long)LaneTokens * job.In;
        var paired = job.LaneGroups / 2 * 2;
        try
        {
            fixed (byte* raw = buffer)
            {
                // On a 64-byte boundary: each step broadcasts four bytes of each row.
                var panel = (byte*)(((nint)raw + 63) & ~(nint)63);
                var factors = (float*)(panel + panelBytes);
                for (; o + LaneRowsPerTile <= end; o += LaneRowsPerTile)
                {
                    var w = (byte*)job.W + ((long)o * job.RowBytes);
                    BytePanel(eight, w, job.RowBytes, blocks, panel, factors);
                    for (var g = 0; g < job.LaneGroups; g++)
                    {
                        var scales = (float*)job.LaneScales + ((long)g * blocks * LaneTokens);
                        var starts = (int*)job.LaneStarts + ((long)g * blocks * LaneTokens);
                        var lanes = (sbyte*)job.Lanes + (g * groupBytes);
                        if (g < paired)
                        {
                            // Groups g and g + 1 share 16-wide rows (Activations.Interleave).
                            var stride = blocks * LaneTokens;
                            BytePairTile(eight, panel, factors, blocks, lanes, scales, scales + stride, starts, starts + stride, tile);
                            StoreTile(job, o, g, tile, 2 * LaneTokens);
                            StoreTile(job, o, g + 1, tile + LaneTokens, 2 * LaneTokens);
                            g++;
                            continue;
                        }

                        ByteTile(eight, panel, factors, blocks, lanes, scales, starts, tile);
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

    /// <summary>
    /// Four Q8_0 or Q4_0 rows from <paramref name="w"/> as unsigned four-bit codes in value order, and their block
    /// scales as floats at <paramref name="factors"/>[4·b + r]. Q4_0 (<paramref name="eight"/> false): block b's row r at
    /// <paramref name="panel"/> + 128·b + 32·r. Q8_0: the low nibbles of w + 128 at 256·b + 32·r, the high nibbles 128
    /// bytes further.
    /// </summary>
    private static void BytePanel(bool eight, byte* w, int rowBytes, int blocks, byte* panel, float* factors)
    {
        var offset = Vector256.Create((byte)0x80);
        var low = Vector256.Create((byte)0x0F);
        for (var r = 0; r < LaneRowsPerTile; r++)
        {
            var block = w + ((long)r * rowBytes);
            if (eight)
            {
                for (var b = 0; b < blocks; b++, block += 34)
                {
                    if ((b & 1) == 0)
                    {
                        // The same block of the next tile's row (the weights are streamed once per range of tiles).
                        Sse.Prefetch0(block + (LaneRowsPerTile * rowBytes));
                    }

                    var u = Vector256.Load(block + 2) ^ offset;
                    (u & low).Store(panel + (256 * b) + (32 * r));
                    (Vector256.ShiftRightLogical(u.AsUInt16(), 4).AsByte() & low).Store(panel + (256 * b) + 128 + (32 * r));
                    factors[(4 * b) + r] = Half16(block);
                }
            }
            else
            {
                for (var b = 0; b < blocks; b++, block += 18)
                {
                    if ((b & 3) == 0)
                    {
                        Sse.Prefetch0(block + (LaneRowsPerTile * rowBytes));
                    }

                    Q4Codes(block + 2).Store(panel + (128 * b) + (32 * r));
                    factors[(4 * b) + r] = Half16(block);
                }
            }
        }
    }

    /// <summary>
    /// The panel's four rows times a pair of groups of eight tokens (their codes 16 wide at <paramref name="lanes"/>;
    /// group A's block scales and starts −offset·Σx, then B's) into <paramref name="result"/> [4 rows, 16 tokens], A in
    /// tokens 0–7: per block and row one 512-bit integer sum for both groups, converted and scaled once.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void BytePairTile(
        bool eight, byte* panel, float* factors, int blocks, sbyte* lanes, float* scalesA, float* scalesB, int* startsA, int* startsB, float* result)
    {
        var ones = Vector512<short>.One;
        var sixteens = Vector512.Create((short)16);
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (var b = 0; b < blocks; b++)
        {
            var l = lanes + (512 * b);
            var w = panel + ((eight ? 256 : 128) * b);
            Vector512<short> e0 = default, e1 = default, e2 = default, e3 = default;
            ByteSteps(w, l, ref e0, ref e1, ref e2, ref e3);
            var start = Vector512.Create(Vector256.Load(startsA + (8 * b)), Vector256.Load(startsB + (8 * b)));
            var i0 = start + Avx512BW.MultiplyAddAdjacent(e0, ones);
            var i1 = start + Avx512BW.MultiplyAddAdjacent(e1, ones);
            var i2 = start + Avx512BW.MultiplyAddAdjacent(e2, ones);
            var i3 = start + Avx512BW.MultiplyAddAdjacent(e3, ones);
            if (eight)
            {
                // The high nibbles, 128 bytes after the low ones: Σ h·x, weighed 16.
                var h = w + 128;
                Vector512<short> h0 = default, h1 = default, h2 = default, h3 = default;
                ByteSteps(h, l, ref h0, ref h1, ref h2, ref h3);
                i0 += Avx512BW.MultiplyAddAdjacent(h0, sixteens);
                i1 += Avx512BW.MultiplyAddAdjacent(h1, sixteens);
                i2 += Avx512BW.MultiplyAddAdjacent(h2, sixteens);
                i3 += Avx512BW.MultiplyAddAdjacent(h3, sixteens);
            }

            var f = factors + (4 * b);
            var d = Vector512.Create(Vector256.Load(scalesA + (8 * b)), Vector256.Load(scalesB + (8 * b)));
            a0 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i0), d * f[0], a0);
            a1 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i1), d * f[1], a1);
            a2 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i2), d * f[2], a2);
            a3 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i3), d * f[3], a3);
        }

        a0.Store(result);
        a1.Store(result + 16);
        a2.Store(result + 32);
        a3.Store(result + 48);
    }

    /// <summary>The eight steps of one block (32 codes of each of four rows, 32 bytes apart from <paramref name="w"/>) against sixteen tokens' codes at <paramref name="x"/>, written out (no loop counter beside the products).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ByteSteps(byte* w, sbyte* x, ref Vector512<short> e0, ref Vector512<short> e1, ref Vector512<short> e2, ref Vector512<short> e3)
    {
        ByteStep(w, x, ref e0, ref e1, ref e2, ref e3);
        ByteStep(w + 4, x + 64, ref e0, ref e1, ref e2, ref e3);
        ByteStep(w + 8, x + 128, ref e0, ref e1, ref e2, ref e3);
        ByteStep(w + 12, x + 192, ref e0, ref e1, ref e2, ref e3);
        ByteStep(w + 16, x + 256, ref e0, ref e1, ref e2, ref e3);
        ByteStep(w + 20, x + 320, ref e0, ref e1, ref e2, ref e3);
        ByteStep(w + 24, x + 384, ref e0, ref e1, ref e2, ref e3);
        ByteStep(w + 28, x + 448, ref e0, ref e1, ref e2, ref e3);
    }

    /// <summary><see cref="ByteSteps"/> for eight tokens.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ByteStepsNarrow(byte* w, sbyte* x, ref Vector256<short> e0, ref Vector256<short> e1, ref Vector256<short> e2, ref Vector256<short> e3)
    {
        ByteStepNarrow(w, x, ref e0, ref e1, ref e2, ref e3);
        ByteStepNarrow(w + 4, x + 32, ref e0, ref e1, ref e2, ref e3);
        ByteStepNarrow(w + 8, x + 64, ref e0, ref e1, ref e2, ref e3);
        ByteStepNarrow(w + 12, x + 96, ref e0, ref e1, ref e2, ref e3);
        ByteStepNarrow(w + 16, x + 128, ref e0, ref e1, ref e2, ref e3);
        ByteStepNarrow(w + 20, x + 160, ref e0, ref e1, ref e2, ref e3);
        ByteStepNarrow(w + 24, x + 192, ref e0, ref e1, ref e2, ref e3);
        ByteStepNarrow(w + 28, x + 224, ref e0, ref e1, ref e2, ref e3);
    }

    /// <summary>One step of four code bytes of each of four rows (32 bytes apart from <paramref name="w"/>) against sixteen tokens' four codes at <paramref name="x"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ByteStep(byte* w, sbyte* x, ref Vector512<short> e0, ref Vector512<short> e1, ref Vector512<short> e2, ref Vector512<short> e3)
    {
        var v = Vector512.Load(x);
        e0 += Avx512BW.MultiplyAddAdjacent(Broadcast4(w), v);
        e1 += Avx512BW.MultiplyAddAdjacent(Broadcast4(w + 32), v);
        e2 += Avx512BW.MultiplyAddAdjacent(Broadcast4(w + 64), v);
        e3 += Avx512BW.MultiplyAddAdjacent(Broadcast4(w + 96), v);
    }

    /// <summary><see cref="BytePairTile"/> for one group of eight tokens (8 wide at <paramref name="lanes"/>) into <paramref name="result"/> [4, 8], 256 bits wide.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ByteTile(bool eight, byte* panel, float* factors, int blocks, sbyte* lanes, float* scales, int* starts, float* result)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (var b = 0; b < blocks; b++)
        {
            var f = factors + (4 * b);
            ByteBlock(eight, panel + ((eight ? 256 : 128) * b), lanes + (256 * b), starts + (8 * b), scales + (8 * b), f[0], f[1], f[2], f[3], ref a0, ref a1, ref a2, ref a3);
        }

        a0.Store(result);
        a1.Store(result + 8);
        a2.Store(result + 16);
        a3.Store(result + 24);
    }

    /// <summary>
    /// Four Q8_0 or Q4_0 rows from <paramref name="w"/> times one group of eight tokens into <paramref name="result"/>
    /// [4, 8] without a panel (batched decode: each weight block is read once). Each block is unpacked into one of the
    /// two 256-byte halves of <paramref name="scratch"/> (in L1) while the block before runs from the other half, so
    /// that the broadcasts never wait on the stores just made; the same blocks of the next tile's rows are prefetched.
    /// </summary>
    private static void ByteTileStream(bool eight, byte* w, int rowBytes, int blocks, sbyte* lanes, float* scales, int* starts, byte* scratch, float* result)
    {
        var blockBytes = eight ? 34 : 18;
        byte* w0 = w, w1 = w + rowBytes, w2 = w + (2 * rowBytes), w3 = w + (3 * rowBytes);
        // The same block of the next tile's rows: a tile's four rows lie back to back, each only In/32 blocks long.
        var ahead = (long)LaneRowsPerTile * rowBytes;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        UnpackBlock(eight, w0, w1, w2, w3, scratch);
        for (var b = 0; b < blocks; b++)
        {
            var at = (long)b * blockBytes;
            if (b + 1 < blocks)
            {
                var next = at + blockBytes;
                if ((b & 1) == 0)
                {
                    Sse.Prefetch0(w0 + next + ahead);
                    Sse.Prefetch0(w1 + next + ahead);
                    Sse.Prefetch0(w2 + next + ahead);
                    Sse.Prefetch0(w3 + next + ahead);
                }

                UnpackBlock(eight, w0 + next, w1 + next, w2 + next, w3 + next, scratch + (256 * ((b + 1) & 1)));
            }

            ByteBlock(
                eight, scratch + (256 * (b & 1)), lanes + (256 * b), starts + (8 * b), scales + (8 * b),
                Half16(w0 + at), Half16(w1 + at), Half16(w2 + at), Half16(w3 + at), ref a0, ref a1, ref a2, ref a3);
        }

        a0.Store(result);
        a1.Store(result + 8);
        a2.Store(result + 16);
        a3.Store(result + 24);
    }

    /// <summary>One Q8_0 (<paramref name="eight"/>) or Q4_0 block of four rows as <see cref="BytePanel"/> lays out a block, at <paramref name="at"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void UnpackBlock(bool eight, byte* w0, byte* w1, byte* w2, byte* w3, byte* at)
    {
        if (eight)
        {
            var offset = Vector256.Create((byte)0x80);
            var low = Vector256.Create((byte)0x0F);
            Nibbles(Vector256.Load(w0 + 2) ^ offset, low, at);
            Nibbles(Vector256.Load(w1 + 2) ^ offset, low, at + 32);
            Nibbles(Vector256.Load(w2 + 2) ^ offset, low, at + 64);
            Nibbles(Vector256.Load(w3 + 2) ^ offset, low, at + 96);
        }
        else
        {
            Q4Codes(w0 + 2).Store(at);
            Q4Codes(w1 + 2).Store(at + 32);
            Q4Codes(w2 + 2).Store(at + 64);
            Q4Codes(w3 + 2).Store(at + 96);
        }
    }

    /// <summary>The low nibbles of <paramref name="u"/> at <paramref name="at"/>, the high nibbles 128 bytes further.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Nibbles(Vector256<byte> u, Vector256<byte> low, byte* at)
    {
        (u & low).Store(at);
        (Vector256.ShiftRightLogical(u.AsUInt16(), 4).AsByte() & low).Store(at + 128);
    }

    /// <summary>
    /// One block of four rows' four-bit codes (row r at <paramref name="w"/> + 32·r; for Q8_0 the high nibbles 128 bytes
    /// further) times eight tokens' codes at <paramref name="lanes"/>, added to the accumulators: a_r += (start + Σ)·d_x·f_r.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ByteBlock(
        bool eight, byte* w, sbyte* lanes, int* starts, float* scales, float f0, float f1, float f2, float f3,
        ref Vector256<float> a0, ref Vector256<float> a1, ref Vector256<float> a2, ref Vector256<float> a3)
    {
        var l = lanes;
        Vector256<short> e0 = default, e1 = default, e2 = default, e3 = default;
        ByteStepsNarrow(w, l, ref e0, ref e1, ref e2, ref e3);
        var ones = Vector256<short>.One;
        var start = Vector256.Load(starts);
        var i0 = start + Avx2.MultiplyAddAdjacent(e0, ones);
        var i1 = start + Avx2.MultiplyAddAdjacent(e1, ones);
        var i2 = start + Avx2.MultiplyAddAdjacent(e2, ones);
        var i3 = start + Avx2.MultiplyAddAdjacent(e3, ones);
        if (eight)
        {
            var h = w + 128;
            Vector256<short> h0 = default, h1 = default, h2 = default, h3 = default;
            ByteStepsNarrow(h, l, ref h0, ref h1, ref h2, ref h3);
            var sixteens = Vector256.Create((short)16);
            i0 += Avx2.MultiplyAddAdjacent(h0, sixteens);
            i1 += Avx2.MultiplyAddAdjacent(h1, sixteens);
            i2 += Avx2.MultiplyAddAdjacent(h2, sixteens);
            i3 += Avx2.MultiplyAddAdjacent(h3, sixteens);
        }

        var d = Vector256.Load(scales);
        a0 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(i0), d * f0, a0);
        a1 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(i1), d * f1, a1);
        a2 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(i2), d * f2, a2);
        a3 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(i3), d * f3, a3);
    }

    /// <summary><see cref="ByteStep"/> for eight tokens.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ByteStepNarrow(byte* w, sbyte* x, ref Vector256<short> e0, ref Vector256<short> e1, ref Vector256<short> e2, ref Vector256<short> e3)
    {
        var v = Vector256.Load(x);
        e0 += Avx2.MultiplyAddAdjacent(Broadcast4x8(w), v);
        e1 += Avx2.MultiplyAddAdjacent(Broadcast4x8(w + 32), v);
        e2 += Avx2.MultiplyAddAdjacent(Broadcast4x8(w + 64), v);
        e3 += Avx2.MultiplyAddAdjacent(Broadcast4x8(w + 96), v);
    }
}
