using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sharpformer.Tensors.Kernels.Quant;

/// <summary>
/// The batch-1 (decode) path of <see cref="QuantMatMul"/>: one token against every weight row, each row streamed once.
/// On a quiet machine two cores read about 50 GB/s, so a core has 4–5 cycles per Q8_0 block and about 20 per Q4_K
/// super-block: these kernels are written to that budget. Q8_0 converts its block scales eight at a time (one gather of
/// the eight F16 scales, converted in registers and multiplied by the activation scales in one vector op) instead of a
/// table lookup per block, and keeps four accumulators so the FMA latency does not bind.
/// </summary>
public static unsafe partial class QuantMatMul
{
    /// <summary>Q8_0 blocks whose scales one gather fetches: 8 blocks of 34 bytes (272 bytes of the row).</summary>
    private const int DecodeGroupBlocks = 8;

    /// <summary>2^112: a half's exponent and mantissa bits moved to F32 position, times this, are its value (zero, subnormal and normal alike).</summary>
    private static readonly Vector256<float> HalfRebias = Vector256.Create(BitConverter.UInt32BitsToSingle(0x77800000));

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

        return start;
    }

    /// <summary>
    /// Q8_0 rows [start, end) at batch 1: per group of eight blocks the eight weight scales are gathered and converted in
    /// one go and multiplied by the activation scales (<see cref="HalvesToSingle"/>); each block's integer dot product
    /// (<see cref="SignedDot"/>) is scaled by its lane of that vector into one of four accumulators. Blocks past the last
    /// whole group take the per-block form of <see cref="DotQ8_0Avx2"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DecodeQ8_0(in Job job, int start, int end)
    {
        var blocks = job.In / 32;
        var groups = blocks / DecodeGroupBlocks;
        var x0 = (sbyte*)job.Codes;
        var xd0 = (float*)job.Scales;
        var offsets = Vector256.Create(0, 34, 68, 102, 136, 170, 204, 238);
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

            var sum = Vector256.Sum((a0 + a1) + (a2 + a3));
            var rest = blocks - (groups * DecodeGroupBlocks);
            if (rest > 0)
            {
                sum += DotQ8_0Avx2(w, x, xd, rest);
            }

            Store(job, o, 0, sum);
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
        var value = magnitude.AsSingle() * HalfRebias;
        var special = Vector256.GreaterThanOrEqual(magnitude, Vector256.Create(0x0F800000u));
        value = Vector256.ConditionalSelect(special.AsSingle(), (magnitude | Vector256.Create(0x7F800000u)).AsSingle(), value);
        return (value.AsUInt32() | Vector256.ShiftLeft(bits & Vector256.Create(0x8000u), 16)).AsSingle();
    }
}
