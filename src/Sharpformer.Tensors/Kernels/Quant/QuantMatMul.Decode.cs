using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sharpformer.Tensors.Kernels.Quant;

/// <summary>
/// The batch-1 (decode) path of <see cref="QuantMatMul"/>: one token against every weight row, each row streamed once.
/// On a quiet machine two cores read about 50 GB/s, so a core has 4–5 cycles per Q8_0 block and about 20 per Q4_K
/// super-block: these kernels are written to that budget. Q8_0 (AVX2, VPDPBUSD with AVX-VNNI) converts its block scales
/// eight at a time (one gather of the eight F16 scales, converted in registers and multiplied by the activation scales
/// in one vector op) instead of a table lookup per block, and keeps four accumulators so the FMA latency does not bind.
/// Q4_K and Q6_K (AVX-512BW) read 64 code bytes per load against activation codes reordered once per call to match.
/// Every kernel keeps the reference's exact integer block sums; without these ISAs the per-row AVX2 kernels of
/// QuantMatMul.cs run, and <see cref="MultiplyReference"/> is the scalar reference. No static field is read inside a
/// kernel loop: its class-initialization check made the JIT spill the vector registers on every block.
/// </summary>
public static unsafe partial class QuantMatMul
{
    /// <summary>Q8_0 blocks whose scales one gather fetches: 8 blocks of 34 bytes (272 bytes of the row).</summary>
    private const int DecodeGroupBlocks = 8;

    /// <summary>The longest row whose reordered activation codes <see cref="DecodeQ4_K"/> and <see cref="DecodeQ6_K"/> keep on the stack (16 KiB).</summary>
    private const int DecodeMaxColumns = 1 << 14;

    /// <summary>
    /// Weight bytes per parallel chunk at batch 1: long chunks keep each thread on one sequential stream that the
    /// prefetchers settle into. Q8_0 ~1B-Llama layer stack, 2 threads, new kernel: 64 KiB chunks 0.75–0.83 of the read
    /// bandwidth, 256 KiB 0.83–0.89, 1 MiB 0.93–0.95 (as <see cref="Gemv"/> found for F16/F32).
    /// </summary>
    private const int DecodeChunkBytes = 1 << 20;

    /// <summary>Rows per chunk at batch 1: about <see cref="DecodeChunkBytes"/> of weights, at least 4 rows, and at least four chunks per thread (so a slow core's share can move).</summary>
    private static int DecodeGrain(int outs, int rowBytes)
    {
        var rows = Math.Max(1, DecodeChunkBytes / rowBytes);
        var perThread = (outs + (4 * Threading.ParallelFor.MaxDegreeOfParallelism) - 1) / (4 * Threading.ParallelFor.MaxDegreeOfParallelism);
        return Math.Max(4, Math.Min(rows, perThread));
    }

    /// <summary>
    /// Rows [start, end) for one token when a decode kernel exists for the weight type on this CPU; returns the first row
    /// not done (<paramref name="start"/> when there is none).
    /// </summary>
    private static int DecodeRows(in Job job, int start, int end)
    {
        if (job.Type == QuantType.Q8_0 && job.In >= 32 * DecodeGroupBlocks)
        {
            DecodeQ8_0(job, start, end);
            return end;
        }

        if (Vector512.IsHardwareAccelerated && Avx512BW.IsSupported)
        {
            if (job.Type == QuantType.Q4_K && job.In <= DecodeMaxColumns)
            {
                DecodeQ4_K(job, start, end);
                return end;
            }

            if (job.Type == QuantType.Q6_K && job.In <= DecodeMaxColumns)
            {
                DecodeQ6_K(job, start, end);
                return end;
            }
        }

        return start;
    }

    /// <summary>
    /// Q4_K rows [start, end) at batch 1 with AVX-512BW, a super-block in two steps of 128 values. A 64-byte load of
    /// codes holds the nibbles of four sub-blocks: bytes 0–31 sub-blocks 0 (low nibbles) and 1 (high), bytes 32–63
    /// sub-blocks 2 and 3; so one mask gives sub-blocks 0 and 2 side by side and a shift and a mask sub-blocks 1 and 3.
    /// The activation codes are put once per call into that order (<see cref="ReorderActivations"/>), and VPMADDUBSW
    /// multiplies without any shuffling of the weights; VPMADDWD applies the two sub-blocks' scales (picked from the
    /// eight unpacked scales by VPERMW) into one int32 sum per super-block. Scales and mins are unpacked with two byte
    /// shuffles (<see cref="Q4_KScalesAndMins"/>); the mins meet the activation's sums of 32, made once per call. Exact
    /// integer super-block sums, like the reference. Rows over <see cref="DecodeMaxColumns"/> values are left to the AVX2 kernel.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DecodeQ4_K(in Job job, int start, int end)
    {
        var blocks = job.In / 256;
        var x = stackalloc sbyte[job.In];
        ReorderActivations((sbyte*)job.Codes, x, blocks, Q4_KChunkOrder);
        // The activation's sums of 32 (one per sub-block, against the mins) from its sums of 16.
        var subSums = stackalloc short[job.In / 32];
        for (var j = 0; j < job.In / 32; j++)
        {
            subSums[j] = (short)(((short*)job.Sums)[2 * j] + ((short*)job.Sums)[(2 * j) + 1]);
        }

        var low = Vector512.Create((byte)0x0F);
        // Scale pickers, int16 lanes 0–15 and 16–31: sub-blocks (0, 2), (1, 3), (4, 6), (5, 7).
        var pick02 = Vector512.Create(Vector256<short>.Zero, Vector256.Create((short)2));
        var pick13 = pick02 + Vector512<short>.One;
        var pick46 = pick02 + Vector512.Create((short)4);
        var pick57 = pick02 + Vector512.Create((short)5);
        // The scale table pinned once: read through the static field inside the loop, the class-initialization check
        // and its helper call made the JIT spill every vector register on each super-block.
        fixed (float* halves = HalfTable)
        {
            for (var o = start; o < end; o++)
            {
                var w = (byte*)job.W + ((long)o * job.RowBytes);
                var xb = x;
                var xd = (float*)job.Scales;
                var sums = subSums;
                var acc = Vector512<float>.Zero;
                var minAcc = Vector128<float>.Zero;
                for (var b = 0; b < blocks; b++, w += 144, xb += 256, sums += 8)
                {
                    Sse.Prefetch0(w + PrefetchBytes);
                    Sse.Prefetch0(w + PrefetchBytes + 64);
                    Sse.Prefetch0(w + PrefetchBytes + 128);
                    // int16 lanes 0–7 the sub-block scales (VPERMW's table), lanes 8–15 the mins.
                    var scalesAndMins = Q4_KScalesAndMins(w + Q4_K.ScalesOffset);
                    var table = scalesAndMins.ToVector512Unsafe();
                    var raw0 = Vector512.Load(w + Q4_K.CodesOffset);
                    var raw1 = Vector512.Load(w + Q4_K.CodesOffset + 64);
                    var s02 = Avx512BW.MultiplyAddAdjacent(raw0 & low, Vector512.Load(xb));
                    var s13 = Avx512BW.MultiplyAddAdjacent(Vector512.ShiftRightLogical(raw0.AsUInt16(), 4).AsByte() & low, Vector512.Load(xb + 64));
                    var s46 = Avx512BW.MultiplyAddAdjacent(raw1 & low, Vector512.Load(xb + 128));
                    var s57 = Avx512BW.MultiplyAddAdjacent(Vector512.ShiftRightLogical(raw1.AsUInt16(), 4).AsByte() & low, Vector512.Load(xb + 192));
                    var isum = (Avx512BW.MultiplyAddAdjacent(s02, Avx512BW.PermuteVar32x16(table, pick02)) + Avx512BW.MultiplyAddAdjacent(s13, Avx512BW.PermuteVar32x16(table, pick13)))
                        + (Avx512BW.MultiplyAddAdjacent(s46, Avx512BW.PermuteVar32x16(table, pick46)) + Avx512BW.MultiplyAddAdjacent(s57, Avx512BW.PermuteVar32x16(table, pick57)));
                    acc = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(isum), Vector512.Create(halves[*(ushort*)w] * xd[b]), acc);
                    minAcc = Vector128.FusedMultiplyAdd(
                        Sse2.ConvertToVector128Single(Sse2.MultiplyAddAdjacent(Vector128.Load(sums), scalesAndMins.GetUpper())), Vector128.Create(-halves[*(ushort*)(w + 2)] * xd[b]), minAcc);
                }

                Store(job, o, 0, Vector512.Sum(acc) + Vector128.Sum(minAcc));
            }
        }
    }

    /// <summary>
    /// A Q4_K block's eight 6-bit sub-block scales (int16 lanes 0–7) and eight mins (lanes 8–15) from its 12 packed bytes
    /// (ggml's get_scale_min_k4 for all sixteen at once, in registers): one shuffle puts each value's low-bits byte in
    /// its lane (s_0..s_3, the low nibbles for s_4..s_7, m_0..m_3, the high nibbles for m_4..m_7), another the bytes
    /// whose top two bits are the high bits of s_4..s_7 and m_4..m_7.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> Q4_KScalesAndMins(byte* packed)
    {
        // 16 bytes: the 12 packed ones and 4 code bytes (not used).
        var bytes = Vector128.Load(packed);
        var lowBits = Ssse3.Shuffle(bytes, Vector128.Create((byte)0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
        var topBits = Ssse3.Shuffle(bytes, Vector128.Create((byte)0x80, 0x80, 0x80, 0x80, 0, 1, 2, 3, 0x80, 0x80, 0x80, 0x80, 4, 5, 6, 7));
        // m_4..m_7 take the high nibbles (lanes 12–15); then the 6- or 4-bit masks, and the top two bits at bits 4–5.
        var nibbles = Vector128.ConditionalSelect(
            Vector128.Create(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, (byte)0xFF), Vector128.ShiftRightLogical(lowBits.AsUInt16(), 4).AsByte(), lowBits);
        var masked = nibbles & Vector128.Create(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, (byte)15);
        return Avx2.ConvertToVector256Int16(masked | (Vector128.ShiftRightLogical(topBits.AsUInt16(), 2).AsByte() & Vector128.Create((byte)0x30)));
    }

    /// <summary>
    /// Q6_K rows [start, end) at batch 1 with AVX-512BW, a super-block in four steps of 64 values, each step one quarter
    /// k of both halves: the low 32 bytes of ql of each half (quarters 0 and 2) and the high 32 (quarters 1 and 3) are
    /// paired across the halves by one VSHUFI64X2 each, so that all 64 bytes of qh (both halves) give every step its
    /// two high bits with one fixed shift and a mask. The activation codes are put once per call into that order
    /// (<see cref="ReorderActivations"/>); VPMADDUBSW multiplies the unsigned codes, VPMADDWD applies the four groups'
    /// scales (picked by VPERMW). The −32 offset comes from the 16-value sums as in <see cref="FinishQ6_K"/>. Rows over
    /// <see cref="DecodeMaxColumns"/> values are left to the AVX2 kernel.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DecodeQ6_K(in Job job, int start, int end)
    {
        var blocks = job.In / 256;
        var x = stackalloc sbyte[job.In];
        ReorderActivations((sbyte*)job.Codes, x, blocks, Q6_KChunkOrder);
        var low = Vector512.Create((byte)0x0F);
        var top = Vector512.Create((byte)0x30);
        // Group pickers: int16 lanes 0–7, 8–15 take groups 2k, 2k + 1 of the first half, lanes 16–31 the same of the second.
        var pick0 = Vector512.Create((short)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 8, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9);
        var pick1 = pick0 + Vector512.Create((short)2);
        var pick2 = pick0 + Vector512.Create((short)4);
        var pick3 = pick0 + Vector512.Create((short)6);
        fixed (float* halves = HalfTable)
        {
            for (var o = start; o < end; o++)
            {
                var w = (byte*)job.W + ((long)o * job.RowBytes);
                var xb = x;
                var xd = (float*)job.Scales;
                var sums = (short*)job.Sums;
                var acc = Vector256<float>.Zero;
                for (var b = 0; b < blocks; b++, w += 210, xb += 256, sums += 16)
                {
                    Sse.Prefetch0(w + PrefetchBytes);
                    Sse.Prefetch0(w + PrefetchBytes + 64);
                    Sse.Prefetch0(w + PrefetchBytes + 128);
                    Sse.Prefetch0(w + PrefetchBytes + 192);
                    var scales = Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)(w + Q6_K.ScalesOffset)));
                    var table = scales.ToVector512Unsafe();
                    var half0 = Vector512.Load(w).AsUInt64();
                    var half1 = Vector512.Load(w + 64).AsUInt64();
                    var high = Vector512.Load(w + Q6_K.HighOffset).AsUInt16();
                    // Quarters 0 and 2 of both halves (low 32 bytes of each ql), and quarters 1 and 3 (high 32 bytes).
                    var even = Avx512F.Shuffle4x128(half0, half1, 0x44).AsByte();
                    var odd = Avx512F.Shuffle4x128(half0, half1, 0xEE).AsByte();
                    var q0 = (even & low) | (Vector512.ShiftLeft(high, 4).AsByte() & top);
                    var q1 = (odd & low) | (Vector512.ShiftLeft(high, 2).AsByte() & top);
                    var q2 = (Vector512.ShiftRightLogical(even.AsUInt16(), 4).AsByte() & low) | (high.AsByte() & top);
                    var q3 = (Vector512.ShiftRightLogical(odd.AsUInt16(), 4).AsByte() & low) | (Vector512.ShiftRightLogical(high, 2).AsByte() & top);
                    var isum = (Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q0, Vector512.Load(xb)), Avx512BW.PermuteVar32x16(table, pick0))
                        + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q1, Vector512.Load(xb + 64)), Avx512BW.PermuteVar32x16(table, pick1)))
                        + (Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q2, Vector512.Load(xb + 128)), Avx512BW.PermuteVar32x16(table, pick2))
                        + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q3, Vector512.Load(xb + 192)), Avx512BW.PermuteVar32x16(table, pick3)));
                    acc += FinishQ6_K(isum.GetLower() + isum.GetUpper(), Vector256.Load(sums), scales, halves[*(ushort*)(w + Q6_K.DOffset)] * xd[b]);
                }

                Store(job, o, 0, Vector256.Sum(acc));
            }
        }
    }

    /// <summary>Q4_K's activation order for <see cref="DecodeQ4_K"/>: the 32-value chunks of a super-block as sub-blocks 0, 2, 1, 3, 4, 6, 5, 7.</summary>
    private static ReadOnlySpan<byte> Q4_KChunkOrder => [0, 2, 1, 3, 4, 6, 5, 7];

    /// <summary>Q6_K's activation order for <see cref="DecodeQ6_K"/>: quarter k of the first half, then of the second, for k = 0..3.</summary>
    private static ReadOnlySpan<byte> Q6_KChunkOrder => [0, 4, 1, 5, 2, 6, 3, 7];

    /// <summary>Each super-block's activation codes, 32-value chunks put so that position k holds chunk <paramref name="order"/>[k].</summary>
    private static void ReorderActivations(sbyte* source, sbyte* destination, int blocks, ReadOnlySpan<byte> order)
    {
        for (var b = 0; b < blocks; b++, source += 256, destination += 256)
        {
            for (var k = 0; k < 8; k++)
            {
                Vector256.Load(source + (32 * order[k])).Store(destination + (32 * k));
            }
        }
    }

    /// <summary>
    /// Q8_0 rows [start, end) at batch 1: per group of eight blocks the eight weight scales are gathered and converted in
    /// one go and multiplied by the activation scales (<see cref="HalvesToSingle"/>); each block's integer dot product
    /// (<see cref="SignedDot"/>) is scaled by its lane of that vector into one of four accumulators. Blocks past the last
    /// whole group are scaled one at a time.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DecodeQ8_0(in Job job, int start, int end)
    {
        var blocks = job.In / 32;
        var groups = blocks / DecodeGroupBlocks;
        var x0 = (sbyte*)job.Codes;
        var xd0 = (float*)job.Scales;
        var offsets = Vector256.Create(0, 34, 68, 102, 136, 170, 204, 238);
        // Pinned once for the tail blocks (see DecodeQ4_K): no static field access inside the loops.
        fixed (float* halves = HalfTable)
        {
            for (var o = start; o < end; o++)
            {
                var w = (byte*)job.W + ((long)o * job.RowBytes);
                var x = x0;
                var xd = xd0;
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (var g = 0; g < groups; g++, w += 34 * DecodeGroupBlocks, x += 32 * DecodeGroupBlocks, xd += DecodeGroupBlocks)
                {
                    Sse.Prefetch0(w + PrefetchBytes);
                    Sse.Prefetch0(w + PrefetchBytes + 64);
                    Sse.Prefetch0(w + PrefetchBytes + 128);
                    Sse.Prefetch0(w + PrefetchBytes + 192);
                    Sse.Prefetch0(w + PrefetchBytes + 256);
                    var d = HalvesToSingle(Avx2.GatherVector256((int*)w, offsets, 1)) * Vector256.Load(xd);
                    a0 = Vector256.FusedMultiplyAdd(BlockDotQ8_0(w, x, 0), Lane(d, 0), a0);
                    a1 = Vector256.FusedMultiplyAdd(BlockDotQ8_0(w, x, 1), Lane(d, 1), a1);
                    a2 = Vector256.FusedMultiplyAdd(BlockDotQ8_0(w, x, 2), Lane(d, 2), a2);
                    a3 = Vector256.FusedMultiplyAdd(BlockDotQ8_0(w, x, 3), Lane(d, 3), a3);
                    a0 = Vector256.FusedMultiplyAdd(BlockDotQ8_0(w, x, 4), Lane(d, 4), a0);
                    a1 = Vector256.FusedMultiplyAdd(BlockDotQ8_0(w, x, 5), Lane(d, 5), a1);
                    a2 = Vector256.FusedMultiplyAdd(BlockDotQ8_0(w, x, 6), Lane(d, 6), a2);
                    a3 = Vector256.FusedMultiplyAdd(BlockDotQ8_0(w, x, 7), Lane(d, 7), a3);
                }

                // Blocks past the last whole group, one at a time.
                for (var b = groups * DecodeGroupBlocks; b < blocks; b++, w += 34, x += 32, xd++)
                {
                    a0 = Vector256.FusedMultiplyAdd(BlockDotQ8_0(w, x, 0), Vector256.Create(halves[*(ushort*)w] * *xd), a0);
                }

                Store(job, o, 0, Vector256.Sum((a0 + a1) + (a2 + a3)));
            }
        }
    }

    /// <summary>Block <paramref name="k"/> of a group: Σ w·x of its 32 codes as eight int32 lanes, converted to F32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> BlockDotQ8_0(byte* w, sbyte* x, int k) =>
        Avx.ConvertToVector256Single(SignedDot(Vector256.Load((sbyte*)(w + (34 * k) + 2)), Vector256.Load(x + (32 * k))));

    /// <summary>Lane <paramref name="k"/> of <paramref name="v"/> in every lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Lane(Vector256<float> v, int k) => Avx2.PermuteVar8x32(v, Vector256.Create(k));

    /// <summary>
    /// The F16 value in the low 16 bits of each 32-bit lane as F32, exactly, for every bit pattern (the high bits are
    /// ignored): the exponent and mantissa moved to F32 position and multiplied by 2^112 (which also scales a subnormal
    /// half's bits, a subnormal F32, to its value), exponent 31 mapped to F32's inf/NaN, the sign put back.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> HalvesToSingle(Vector256<int> lanes)
    {
        var bits = lanes.AsUInt32();
        var magnitude = Vector256.ShiftLeft(bits & Vector256.Create(0x7FFFu), 13);
        // 2^112 (F32 bits 0x77800000): a half's exponent and mantissa bits in F32 position, times this, are its value.
        var value = magnitude.AsSingle() * Vector256.Create(0x77800000u).AsSingle();
        var special = Vector256.GreaterThanOrEqual(magnitude, Vector256.Create(0x0F800000u));
        value = Vector256.ConditionalSelect(special.AsSingle(), (magnitude | Vector256.Create(0x7F800000u)).AsSingle(), value);
        return (value.AsUInt32() | Vector256.ShiftLeft(bits & Vector256.Create(0x8000u), 16)).AsSingle();
    }
}
