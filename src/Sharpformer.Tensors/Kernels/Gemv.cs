using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Kernels;

/// <summary>
/// Decode-time matrix–vector products against weights stored [out, in] (the Linear layout), for a few rows at once:
/// y [R, out] = x [R, in] · Wᵀ + bias, with R ≤ <see cref="MaxRows"/>. Batch-1 decoding is bound by reading the weights,
/// so each weight row is streamed from memory exactly once for all R input rows (one row after another for R ≤ 2, a
/// single sequential stream with software prefetch; two rows side by side for R ≥ 3, in k-blocks that keep x in L1, where loads, not memory, bound the
/// loop), and F16 / BF16 weights (or F16 re-encoded as <see cref="HalfCode"/>s, which widen in fewer operations) are
/// widened to F32 in registers right before the multiply (no F32 copy, not even of a tile): the narrow types halve the
/// bytes read. The kernel is generic over the vector width (Vector512 → Vector256 → Vector128 → scalar,
/// the scalar form also being the tail), the weight type and R, so the JIT emits one specialized loop per combination
/// with its 2·R accumulators in registers. Output rows are split into chunks that idle threads claim dynamically
/// (<see cref="ParallelFor"/>).
/// </summary>
public static unsafe partial class Gemv
{
    /// <summary>The most input rows one call takes (the decode batch).</summary>
    public const int MaxRows = 8;

    /// <summary>
    /// How far ahead of the loads the one-row kernel asks for weight lines (bytes). The hardware prefetchers alone left
    /// batch-1 GPT-2 decoding at 60 GB/s (F32) on the 2-core Zen 5 host; 4 KiB ahead, one request per 64-byte line, reached
    /// 77 GB/s. Interleaved A/B runs of the GPT-2 124M weight stream (2 threads, R = 1): 4, 6, 8, 12, 16 KiB gave
    /// 142.8, 145.6, 149.9, 147.3, 144.8 steps/s at F32 and 8 KiB was 1 % ahead of 4 at F16; one thread, +4 % / +2 %.
    /// </summary>
    private const int SeqPrefetch = 8192;

    /// <summary>
    /// How far ahead <see cref="SequentialRows"/> asks for F16 weight lines (F32 and BF16 keep <see cref="SeqPrefetch"/>).
    /// 16 distinct 5632 × 2048 F16 matrices (369 MB) streamed at batch 1 in turn, 2 threads, AMD EPYC Zen 5 class, the
    /// distance alternated sweep by sweep in one process (5 rounds of 6), time against 8 KiB: at a ~81 GB/s probe 4 KiB
    /// 1.078, 6 KiB 0.999, 10 KiB 0.922 (64–67 GB/s against 60–63); at a ~51–53 GB/s probe 4 KiB 0.998, 6 KiB 0.984,
    /// 10 KiB 0.983 and 0.970, 12 KiB 0.993, 16 KiB 0.966 (10 KiB: 49.5–53.7 GB/s, 0.96–1.0 of the probe).
    /// </summary>
    private const int F16SeqPrefetch = 10 << 10;

    /// <summary>The widest F16 form's masks as data: the sign bit, and a half's exponent and mantissa bits shifted left by 13.</summary>
    private static readonly uint[] HalfTable = [F16.SignMask, 0x0FFFE000];

    /// <summary>The half codes' constants as data (kept in registers by the widest loop, as <see cref="HalfTable"/>): the mask and 2^102's bits.</summary>
    private static readonly uint[] CodeTable = [HalfCodes.Mask, BitConverter.SingleToUInt32Bits(HalfCodes.Scale)];

    /// <summary>By half exponent e: the F32 exponent-field add, 112 (normal), 113 (e = 0: 2^-14·(1 + f)) or 224 (e = 31: all ones).</summary>
    internal static readonly uint[] HalfRebiasTable = [.. Enumerable.Range(0, 32).Select(e => e == 0 ? F16.Rebias + F16.SubnormalLimit : e == 31 ? 2 * F16.Rebias : F16.Rebias)];

    /// <summary>By half exponent e: what to subtract after the rebias, 2^-14 for e = 0 (leaving f·2^-14), else 0.</summary>
    internal static readonly float[] HalfOffsetTable = [.. Enumerable.Range(0, 32).Select(e => e == 0 ? BitConverter.UInt32BitsToSingle(F16.Rebias + F16.SubnormalLimit) : 0f)];

    /// <summary>Up to this many rows the kernel reads one weight row at a time (memory-bound); above, two (load-bound).</summary>
    private const int SequentialMaxRows = 2;

    /// <summary>
    /// The most bytes of x (R rows of one k-block, F32) that <see cref="GroupedPairs"/> keeps in L1 while the weight rows
    /// stream past: half of Zen 5's 48 KiB L1, leaving the rest to the weight lines in flight.
    /// </summary>
    private const int XTileBytes = 24 * 1024;

    /// <summary>Output rows that <see cref="GroupedPairs"/> takes through all k-blocks before storing them (even).</summary>
    private const int GroupRows = 64;

    /// <summary>
    /// The longest input <see cref="GroupedPairs"/> takes; longer rows go through <see cref="TwoOutputs"/>. At 8 rows and
    /// 2 threads on Zen 5 (F16, paired medians of interleaved runs), grouped against two outputs at a time: 2048-long
    /// rows 231–237 against 202 GFLOP/s, 5632-long rows 206–211 against 227 whatever the k-block (16–48 KiB of x, or
    /// none).
    /// </summary>
    private const int GroupedMaxIn = 4096;

    /// <summary>
    /// The fewest outputs <see cref="GroupedPairs"/> takes: regrouping x is a fixed cost of each call (done by one
    /// thread), and with 256 outputs of 2048 inputs (Llama's k and v projections) the grouped call measured 50 µs
    /// against 40 µs for <see cref="TwoOutputs"/> (best of 5 interleaved samples, 2 threads, F16, R = 8).
    /// </summary>
    private const int GroupedMinOut = 1024;

    /// <summary>
    /// Weight bytes per parallel chunk: long enough that a chunk is one stream the prefetchers settle into, short enough
    /// to balance noisy cores. Batch-1 GPT-2 weight streaming on 2 threads, F32: 16 rows (48 KiB) per chunk 85 steps/s,
    /// 64 KiB 97, 256 KiB 120, 1 MiB 125; a 4-way split of the tail measured no better. Since then 2 MiB with at least
    /// <see cref="ChunksPerThread"/> = 2 chunks per thread (was 1 MiB and 4, as the quantized decode's chunking changed)
    /// took 0.96–0.99 of the old token time in the GPT-2 124M F16 decode (token-by-token A/B, 2 threads, AMD EPYC Zen 5
    /// class, 47–77 GB/s probes): each chunk costs each thread a fixed ~0.5–2.5 µs of stream ramp.
    /// </summary>
    private const int ChunkBytes = 2 << 20;

    /// <summary>The fewest chunks per thread a product is cut into (smaller chunks when a matrix is small), for balance.</summary>
    private const int ChunksPerThread = 2;

    /// <summary>Output rows per chunk for a weight of <paramref name="rowBytes"/> bytes per row: about <see cref="ChunkBytes"/>, at least 2, and at least <see cref="ChunksPerThread"/> chunks per thread.</summary>
    private static int RowsPerChunk(int outFeatures, long rowBytes)
    {
        var rows = (int)Math.Clamp(ChunkBytes / rowBytes, 2, int.MaxValue);
        var perThread = (outFeatures + (ChunksPerThread * ParallelFor.MaxDegreeOfParallelism) - 1) / (ChunksPerThread * ParallelFor.MaxDegreeOfParallelism);
        return Math.Max(2, Math.Min(rows, perThread)) & ~1;
    }

    /// <summary>
    /// y [R, out] = x [R, in] · Wᵀ + bias (+ y when <paramref name="accumulate"/>), W [out, in] in F16.
    /// </summary>
    /// <param name="x">[R, in] row-major.</param>
    /// <param name="rows">R, 1 to <see cref="MaxRows"/>.</param>
    /// <param name="w">[out, in] row-major.</param>
    /// <param name="inFeatures">in.</param>
    /// <param name="outFeatures">out.</param>
    /// <param name="bias">[out], or empty for none.</param>
    /// <param name="y">[R, out] row-major.</param>
    /// <param name="accumulate">Add to y (a fused residual add) instead of overwriting it.</param>
    /// <exception cref="ArgumentException">A span is shorter than its shape needs, or R is out of range.</exception>
    public static void MatVec(ReadOnlySpan<float> x, int rows, ReadOnlySpan<Half> w, int inFeatures, int outFeatures, ReadOnlySpan<float> bias, Span<float> y, bool accumulate = false) =>
        MatVecPaired<Half, F16>(x, rows, w, inFeatures, outFeatures, bias, y, accumulate);

    /// <summary>
    /// y [R, out] = x [R, in] · Wᵀ + bias (+ y when <paramref name="accumulate"/>), W [out, in] as half codes
    /// (<see cref="HalfCodes"/>): the F16 loops with the 3-operation widening, bit-equal to
    /// <see cref="MatVec(ReadOnlySpan{float}, int, ReadOnlySpan{Half}, int, int, ReadOnlySpan{float}, Span{float}, bool)"/>
    /// on the halves the codes stand for (the same values meet x in the same order).
    /// </summary>
    /// <param name="x">[R, in] row-major.</param>
    /// <param name="rows">R, 1 to <see cref="MaxRows"/>.</param>
    /// <param name="w">[out, in] row-major, encoded by <see cref="HalfCodes.Encode"/>.</param>
    /// <param name="inFeatures">in.</param>
    /// <param name="outFeatures">out.</param>
    /// <param name="bias">[out], or empty for none.</param>
    /// <param name="y">[R, out] row-major.</param>
    /// <param name="accumulate">Add to y (a fused residual add) instead of overwriting it.</param>
    /// <exception cref="ArgumentException">A span is shorter than its shape needs, or R is out of range.</exception>
    public static void MatVec(ReadOnlySpan<float> x, int rows, ReadOnlySpan<HalfCode> w, int inFeatures, int outFeatures, ReadOnlySpan<float> bias, Span<float> y, bool accumulate = false) =>
        MatVecPaired<HalfCode, F16Code>(x, rows, w, inFeatures, outFeatures, bias, y, accumulate);

    /// <summary>
    /// The F16 and half-code products: the paired loop (AVX-512, R ≤ 2) reads x with even and odd positions split, built
    /// once per call.
    /// </summary>
    private static void MatVecPaired<T, TW>(ReadOnlySpan<float> x, int rows, ReadOnlySpan<T> w, int inFeatures, int outFeatures, ReadOnlySpan<float> bias, Span<float> y, bool accumulate)
        where T : unmanaged
        where TW : struct, IWeightFormat
    {
        Check(x.Length, rows, w.Length, inFeatures, outFeatures, bias.Length, y.Length);
        var blocks = inFeatures / 32;
        var paired = Vector512.IsHardwareAccelerated && Avx512F.IsSupported && rows <= SequentialMaxRows && blocks > 0;
        var pairs = paired ? ArrayPool<float>.Shared.Rent(rows * blocks * 32) : null;
        try
        {
            fixed (float* px = x, pb = bias, py = y, pp = pairs)
            fixed (T* pw = w)
            {
                if (paired)
                {
                    SplitEvenOdd(px, rows, inFeatures, blocks, pp);
                }

                var job = new Job((nint)px, rows, (nint)pw, inFeatures, outFeatures, bias.IsEmpty ? 0 : (nint)pb, (nint)py, accumulate) { XPairs = (nint)pp };
                Run<TW>(job);
            }
        }
        finally
        {
            if (pairs is not null)
            {
                ArrayPool<float>.Shared.Return(pairs);
            }
        }
    }

    /// <summary>y [R, out] = x [R, in] · Wᵀ + bias (+ y when <paramref name="accumulate"/>), W [out, in] in BF16.</summary>
    /// <param name="x">[R, in] row-major.</param>
    /// <param name="rows">R, 1 to <see cref="MaxRows"/>.</param>
    /// <param name="w">[out, in] row-major.</param>
    /// <param name="inFeatures">in.</param>
    /// <param name="outFeatures">out.</param>
    /// <param name="bias">[out], or empty for none.</param>
    /// <param name="y">[R, out] row-major.</param>
    /// <param name="accumulate">Add to y instead of overwriting it.</param>
    /// <exception cref="ArgumentException">A span is shorter than its shape needs, or R is out of range.</exception>
    public static void MatVec(ReadOnlySpan<float> x, int rows, ReadOnlySpan<BFloat16> w, int inFeatures, int outFeatures, ReadOnlySpan<float> bias, Span<float> y, bool accumulate = false)
    {
        Check(x.Length, rows, w.Length, inFeatures, outFeatures, bias.Length, y.Length);
        fixed (float* px = x, pb = bias, py = y)
        fixed (BFloat16* pw = w)
        {
            var job = new Job((nint)px, rows, (nint)pw, inFeatures, outFeatures, bias.IsEmpty ? 0 : (nint)pb, (nint)py, accumulate);
            Run<BF16>(job);
        }
    }

    /// <summary>y [R, out] = x [R, in] · Wᵀ + bias (+ y when <paramref name="accumulate"/>), W [out, in] in F32.</summary>
    /// <param name="x">[R, in] row-major.</param>
    /// <param name="rows">R, 1 to <see cref="MaxRows"/>.</param>
    /// <param name="w">[out, in] row-major.</param>
    /// <param name="inFeatures">in.</param>
    /// <param name="outFeatures">out.</param>
    /// <param name="bias">[out], or empty for none.</param>
    /// <param name="y">[R, out] row-major.</param>
    /// <param name="accumulate">Add to y instead of overwriting it.</param>
    /// <exception cref="ArgumentException">A span is shorter than its shape needs, or R is out of range.</exception>
    public static void MatVec(ReadOnlySpan<float> x, int rows, ReadOnlySpan<float> w, int inFeatures, int outFeatures, ReadOnlySpan<float> bias, Span<float> y, bool accumulate = false)
    {
        Check(x.Length, rows, w.Length, inFeatures, outFeatures, bias.Length, y.Length);
        fixed (float* px = x, pb = bias, py = y, pw = w)
        {
            var job = new Job((nint)px, rows, (nint)pw, inFeatures, outFeatures, bias.IsEmpty ? 0 : (nint)pb, (nint)py, accumulate);
            Run<F32>(job);
        }
    }

    /// <summary>The scalar reference of <see cref="MatVec(ReadOnlySpan{float}, int, ReadOnlySpan{Half}, int, int, ReadOnlySpan{float}, Span{float}, bool)"/>: one float sum per output in index order.</summary>
    /// <param name="x">[R, in].</param>
    /// <param name="rows">R.</param>
    /// <param name="w">[out, in] F16.</param>
    /// <param name="inFeatures">in.</param>
    /// <param name="outFeatures">out.</param>
    /// <param name="bias">[out] or empty.</param>
    /// <param name="y">[R, out].</param>
    /// <param name="accumulate">Add to y.</param>
    public static void MatVecReference(ReadOnlySpan<float> x, int rows, ReadOnlySpan<Half> w, int inFeatures, int outFeatures, ReadOnlySpan<float> bias, Span<float> y, bool accumulate = false)
    {
        Check(x.Length, rows, w.Length, inFeatures, outFeatures, bias.Length, y.Length);
        for (var r = 0; r < rows; r++)
        {
            for (var o = 0; o < outFeatures; o++)
            {
                var s = 0f;
                for (var i = 0; i < inFeatures; i++)
                {
                    s += x[(r * inFeatures) + i] * (float)w[(o * inFeatures) + i];
                }

                s += bias.IsEmpty ? 0f : bias[o];
                y[(r * outFeatures) + o] = accumulate ? y[(r * outFeatures) + o] + s : s;
            }
        }
    }

    /// <summary>
    /// The scalar reference of <see cref="MatVec(ReadOnlySpan{float}, int, ReadOnlySpan{HalfCode}, int, int, ReadOnlySpan{float}, Span{float}, bool)"/>:
    /// one float sum per output in index order, each code widened by <see cref="HalfCode.ToSingle"/> (so it equals the F16
    /// reference on the halves, bit for bit).
    /// </summary>
    /// <param name="x">[R, in].</param>
    /// <param name="rows">R.</param>
    /// <param name="w">[out, in] half codes.</param>
    /// <param name="inFeatures">in.</param>
    /// <param name="outFeatures">out.</param>
    /// <param name="bias">[out] or empty.</param>
    /// <param name="y">[R, out].</param>
    /// <param name="accumulate">Add to y.</param>
    public static void MatVecReference(ReadOnlySpan<float> x, int rows, ReadOnlySpan<HalfCode> w, int inFeatures, int outFeatures, ReadOnlySpan<float> bias, Span<float> y, bool accumulate = false)
    {
        Check(x.Length, rows, w.Length, inFeatures, outFeatures, bias.Length, y.Length);
        for (var r = 0; r < rows; r++)
        {
            for (var o = 0; o < outFeatures; o++)
            {
                var s = 0f;
                for (var i = 0; i < inFeatures; i++)
                {
                    s += x[(r * inFeatures) + i] * w[(o * inFeatures) + i].ToSingle();
                }

                s += bias.IsEmpty ? 0f : bias[o];
                y[(r * outFeatures) + o] = accumulate ? y[(r * outFeatures) + o] + s : s;
            }
        }
    }

    private static void Check(int x, int rows, int w, int inFeatures, int outFeatures, int bias, int y)
    {
        if (rows is < 1 or > MaxRows || inFeatures < 1 || outFeatures < 1)
        {
            throw new ArgumentException($"Gemv: rows R = {rows} must be 1..{MaxRows}, in = {inFeatures} and out = {outFeatures} positive.");
        }

        if (x < (long)rows * inFeatures || w < (long)outFeatures * inFeatures || y < (long)rows * outFeatures || (bias != 0 && bias < outFeatures))
        {
            throw new ArgumentException(
                $"Gemv: x [R={rows}, in={inFeatures}] has {x} values, W [out={outFeatures}, in] {w}, y [R, out] {y}, bias [out] {bias}; one is too short.");
        }
    }

    /// <summary>Picks the kernel specialized for the row count R (a type parameter, so its accumulators are registers).</summary>
    private static void Run<TW>(Job job)
        where TW : struct, IWeightFormat
    {
        switch (job.Rows)
        {
            case 1: Run<TW, R1>(job); break;
            case 2: Run<TW, R2>(job); break;
            case 3: Run<TW, R3>(job); break;
            case 4: Run<TW, R4>(job); break;
            case 5: Run<TW, R5>(job); break;
            case 6: Run<TW, R6>(job); break;
            case 7: Run<TW, R7>(job); break;
            default: Run<TW, R8>(job); break;
        }
    }

    private static void Run<TW, TR>(Job job)
        where TW : struct, IWeightFormat
        where TR : struct, IRowCount
    {
        var rowsPerChunk = RowsPerChunk(job.Out, TW.Offset(0, job.In));
        var chunks = (job.Out + rowsPerChunk - 1) / rowsPerChunk;

        // R ≥ 3 with AVX-512: x regrouped 16 values at a time for GroupedPairs, built once per call.
        var groups = job.In / 16;
        var grouped = TR.Count > SequentialMaxRows && Vector512.IsHardwareAccelerated && groups > 0 && job.In <= GroupedMaxIn && job.Out >= GroupedMinOut;
        var buffer = grouped ? ArrayPool<float>.Shared.Rent(TR.Count * groups * 16) : null;
        try
        {
            fixed (float* pg = buffer)
            {
                if (grouped)
                {
                    Interleave((float*)job.X, TR.Count, job.In, groups, pg);
                }

                var run = job with { XGroups = (nint)pg };
                ParallelFor.For(chunks, 1, (start, end) => Outputs<TW, TR>(run, start * rowsPerChunk, Math.Min(run.Out, end * rowsPerChunk)));
            }
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<float>.Shared.Return(buffer);
            }
        }
    }

    /// <summary>Outputs [o0, o1) of one job by the loop that fits R, the ISA and the prepared forms of x.</summary>
    private static void Outputs<TW, TR>(in Job run, int o0, int o1)
        where TW : struct, IWeightFormat
        where TR : struct, IRowCount
    {
        if (TR.Count <= SequentialMaxRows && Vector512.IsHardwareAccelerated && run.In >= 32 && (!IsPaired<TW>() || run.XPairs != 0))
        {
            SequentialRows<TW, TR>(run, o0, o1);
        }
        else if (run.XGroups != 0)
        {
            GroupedPairs<TW, TR>(run, o0, o1);
        }
        else
        {
            for (var o = o0; o < o1; o += TR.Count <= SequentialMaxRows ? 1 : 2)
            {
                if (TR.Count <= SequentialMaxRows)
                {
                    OneOutput<TW, TR>(run, o);
                }
                else
                {
                    TwoOutputs<TW, TR>(run, o, o + 1 < o1);
                }
            }
        }
    }

    /// <summary>
    /// x [R, n]'s whole 16-value groups regrouped group by group: group g of row r at (g·R + r)·16 in
    /// <paramref name="grouped"/>, so one step of <see cref="GroupedPairs"/> reads R·16 consecutive values and a k-block
    /// of x is one contiguous run.
    /// </summary>
    private static void Interleave(float* x, int rows, int n, int groups, float* grouped)
    {
        for (var g = 0; g < groups; g++)
        {
            for (var r = 0; r < rows; r++)
            {
                Vector512.Load(x + ((long)r * n) + (16 * g)).Store(grouped + ((((long)g * rows) + r) * 16));
            }
        }
    }

    /// <summary>
    /// The input length of one k-block for R rows: as many values as keep the R rows' slice of x within
    /// <see cref="XTileBytes"/>, a multiple of 64, the blocks about equal; the whole row when it fits.
    /// </summary>
    private static int KBlock(int n, int rows)
    {
        var most = Math.Max(64, XTileBytes / (rows * sizeof(float)) & ~63);
        if (n <= most)
        {
            return n;
        }

        var blocks = (n + most - 1) / most;
        return (((n + blocks - 1) / blocks) + 63) & ~63;
    }

    /// <summary>
    /// Outputs [o0, o1) for R ≥ 3 rows with AVX-512, two weight rows at a time as in <see cref="PairDots"/>, against x
    /// regrouped by <see cref="Interleave"/> and split into k-blocks (<see cref="KBlock"/>), the outputs into groups of
    /// <see cref="GroupRows"/>: for each group, a k-block's slice of x is multiplied into every row pair of the group
    /// before the next block, so that slice stays in L1 (8 rows of a 2048-long x are 64 KiB, more than Zen 5's 48 KiB
    /// L1). With x regrouped, a step's R loads sit at fixed offsets from one pointer; indexed by row from x itself the
    /// JIT spent four scalar instructions per row on each address, about half of the loop's instructions. The partial
    /// sums of a group's outputs live in a small buffer and are stored once, after the last block. The values after the
    /// last whole group (fewer than 16) go through the scalar <see cref="PairDots"/> against x itself.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GroupedPairs<TW, TR>(in Job job, int o0, int o1)
        where TW : struct, IWeightFormat
        where TR : struct, IRowCount
    {
        int n = job.In;
        var groups = n / 16;
        var groupsPerBlock = KBlock(n, TR.Count) / 16;
        var xg = (float*)job.XGroups;

        // Pair o's sums at [(o − g)·MaxRows, + 2·MaxRows): row o's R sums, then row o + 1's (a lone last row's partner
        // slot is written and dropped).
        var sums = stackalloc float[(GroupRows + 2) * MaxRows];
        for (var g = o0; g < o1; g += GroupRows)
        {
            var gEnd = Math.Min(o1, g + GroupRows);
            new Span<float>(sums, (GroupRows + 2) * MaxRows).Clear();
            for (var b0 = 0; b0 < groups; b0 += groupsPerBlock)
            {
                var b1 = Math.Min(groups, b0 + groupsPerBlock);
                for (var o = g; o < gEnd; o += 2)
                {
                    nint w0 = TW.Offset(job.W, (long)o * n);
                    nint w1 = o + 1 < gEnd ? TW.Offset(job.W, (long)(o + 1) * n) : w0;
                    GroupDots<TW, TR>(w0, w1, xg, n, b0, b1, sums + ((o - g) * MaxRows));
                }
            }

            if (16 * groups < n)
            {
                for (var o = g; o < gEnd; o += 2)
                {
                    nint w0 = TW.Offset(job.W, (long)o * n);
                    nint w1 = o + 1 < gEnd ? TW.Offset(job.W, (long)(o + 1) * n) : w0;
                    PairDots<SimdScalar, float, TW, TR>(w0, w1, (float*)job.X, n, n, 16 * groups, sums + ((o - g) * MaxRows));
                }
            }

            for (var o = g; o < gEnd; o++)
            {
                Store<TR>(job, o, sums + ((o - g) * MaxRows));
            }
        }
    }

    /// <summary>
    /// sums[k·8 + r] += Σ_i w_k[i]·x_r[i] for the two weight rows k over the 16-value groups [b0, b1) of x regrouped by
    /// <see cref="Interleave"/>: each weight vector widened once and multiplied into all R rows, each x vector into both
    /// weight rows, 2·R accumulators reduced once at the end.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void GroupDots<TW, TR>(nint w0, nint w1, float* xg, int n, int b0, int b1, float* sums)
        where TW : struct, IWeightFormat
        where TR : struct, IRowCount
    {
        // The constants made here, not passed in: a struct passed by reference stays in memory, and the JIT reloaded six
        // of them on every step.
        var k = ConstantsFor<Simd512, Vector512<float>, TW>();
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a04 = default, a05 = default, a06 = default, a07 = default;
        Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default, a14 = default, a15 = default, a16 = default, a17 = default;

        // Pointers stepped, not indexed (as in SequentialRows).
        var step = TW.Offset(0, 16);
        var ahead = TW.Offset(0, 2L * n);
        var wp0 = TW.Offset(w0, 16L * b0);
        var wp1 = TW.Offset(w1, 16L * b0);
        var end = TW.Offset(w0, 16L * b1);
        var xp = xg + (16L * b0 * TR.Count);
        for (; wp0 < end; wp0 += step, wp1 += step, xp += 16 * TR.Count)
        {
            if (Sse.IsSupported)
            {
                // The same place in the next pair of rows, which the next pair of this k-block reads.
                Sse.Prefetch0((void*)(wp0 + ahead));
                Sse.Prefetch0((void*)(wp1 + ahead));
            }

            var v0 = TW.Load512(wp0, 0, k);
            var v1 = TW.Load512(wp1, 0, k);
            var xv = Vector512.Load(xp);
            a00 = Vector512.FusedMultiplyAdd(v0, xv, a00);
            a10 = Vector512.FusedMultiplyAdd(v1, xv, a10);
            if (TR.Count > 1)
            {
                xv = Vector512.Load(xp + 16);
                a01 = Vector512.FusedMultiplyAdd(v0, xv, a01);
                a11 = Vector512.FusedMultiplyAdd(v1, xv, a11);
            }

            if (TR.Count > 2)
            {
                xv = Vector512.Load(xp + 32);
                a02 = Vector512.FusedMultiplyAdd(v0, xv, a02);
                a12 = Vector512.FusedMultiplyAdd(v1, xv, a12);
            }

            if (TR.Count > 3)
            {
                xv = Vector512.Load(xp + 48);
                a03 = Vector512.FusedMultiplyAdd(v0, xv, a03);
                a13 = Vector512.FusedMultiplyAdd(v1, xv, a13);
            }

            if (TR.Count > 4)
            {
                xv = Vector512.Load(xp + 64);
                a04 = Vector512.FusedMultiplyAdd(v0, xv, a04);
                a14 = Vector512.FusedMultiplyAdd(v1, xv, a14);
            }

            if (TR.Count > 5)
            {
                xv = Vector512.Load(xp + 80);
                a05 = Vector512.FusedMultiplyAdd(v0, xv, a05);
                a15 = Vector512.FusedMultiplyAdd(v1, xv, a15);
            }

            if (TR.Count > 6)
            {
                xv = Vector512.Load(xp + 96);
                a06 = Vector512.FusedMultiplyAdd(v0, xv, a06);
                a16 = Vector512.FusedMultiplyAdd(v1, xv, a16);
            }

            if (TR.Count > 7)
            {
                xv = Vector512.Load(xp + 112);
                a07 = Vector512.FusedMultiplyAdd(v0, xv, a07);
                a17 = Vector512.FusedMultiplyAdd(v1, xv, a17);
            }
        }

        sums[0] += Vector512.Sum(a00);
        sums[MaxRows] += Vector512.Sum(a10);
        if (TR.Count > 1) { sums[1] += Vector512.Sum(a01); sums[MaxRows + 1] += Vector512.Sum(a11); }
        if (TR.Count > 2) { sums[2] += Vector512.Sum(a02); sums[MaxRows + 2] += Vector512.Sum(a12); }
        if (TR.Count > 3) { sums[3] += Vector512.Sum(a03); sums[MaxRows + 3] += Vector512.Sum(a13); }
        if (TR.Count > 4) { sums[4] += Vector512.Sum(a04); sums[MaxRows + 4] += Vector512.Sum(a14); }
        if (TR.Count > 5) { sums[5] += Vector512.Sum(a05); sums[MaxRows + 5] += Vector512.Sum(a15); }
        if (TR.Count > 6) { sums[6] += Vector512.Sum(a06); sums[MaxRows + 6] += Vector512.Sum(a16); }
        if (TR.Count > 7) { sums[7] += Vector512.Sum(a07); sums[MaxRows + 7] += Vector512.Sum(a17); }
    }

    /// <summary>
    /// Output o for R ≤ 2 rows: weight row o is read once, front to back. Rows are visited in order, so a thread's reads
    /// form one sequential stream across its chunk, which the hardware prefetchers follow: at R = 1 the loop is bound by
    /// memory, and reading two rows side by side (two short streams) measured 2–2.5× slower from DRAM than this.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void OneOutput<TW, TR>(in Job job, int o)
        where TW : struct, IWeightFormat
        where TR : struct, IRowCount
    {
        int n = job.In;
        var sums = stackalloc float[MaxRows];
        new Span<float>(sums, MaxRows).Clear();
        nint w = TW.Offset(job.W, (long)o * n);
        var x = (float*)job.X;
        var i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            i = Dots<Simd512, Vector512<float>, TW, TR>(w, x, n, 0, sums);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            i = Dots<Simd256, Vector256<float>, TW, TR>(w, x, n, 0, sums);
        }
        else if (Vector128.IsHardwareAccelerated)
        {
            i = Dots<Simd128, Vector128<float>, TW, TR>(w, x, n, 0, sums);
        }

        // The remainder (or everything, without SIMD): the same loop one value at a time.
        Dots<SimdScalar, float, TW, TR>(w, x, n, i, sums);
        Store<TR>(job, o, sums);
    }

    /// <summary>
    /// Outputs o and o + 1 for R ≥ 3 rows without AVX-512 (<see cref="PairDots"/>). When only o remains, its row is read
    /// twice and the second result is dropped.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TwoOutputs<TW, TR>(in Job job, int o, bool both)
        where TW : struct, IWeightFormat
        where TR : struct, IRowCount
    {
        int n = job.In;
        var sums = stackalloc float[2 * MaxRows];
        new Span<float>(sums, 2 * MaxRows).Clear();
        nint w0 = TW.Offset(job.W, (long)o * n);
        nint w1 = both ? TW.Offset(job.W, (long)(o + 1) * n) : w0;
        var x = (float*)job.X;
        var i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            i = PairDots<Simd512, Vector512<float>, TW, TR>(w0, w1, x, n, n, 0, sums);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            i = PairDots<Simd256, Vector256<float>, TW, TR>(w0, w1, x, n, n, 0, sums);
        }
        else if (Vector128.IsHardwareAccelerated)
        {
            i = PairDots<Simd128, Vector128<float>, TW, TR>(w0, w1, x, n, n, 0, sums);
        }

        PairDots<SimdScalar, float, TW, TR>(w0, w1, x, n, n, i, sums);
        Store<TR>(job, o, sums);
        if (both)
        {
            Store<TR>(job, o + 1, sums + MaxRows);
        }
    }

    /// <summary>y[r, o] = sums[r] + bias[o] (+ y[r, o]) for the R rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store<TR>(in Job job, int o, float* sums)
        where TR : struct, IRowCount
    {
        var bias = job.Bias == 0 ? 0f : ((float*)job.Bias)[o];
        for (var r = 0; r < TR.Count; r++)
        {
            var dst = (float*)job.Y + ((long)r * job.Out) + o;
            *dst = job.Accumulate ? *dst + sums[r] + bias : sums[r] + bias;
        }
    }

    /// <summary>
    /// Whether <see cref="SequentialRows"/> reads this weight format's 32 values per step as 16 32-bit lanes of pairs
    /// (F16 and half codes), against x split into even and odd positions; a constant per instantiation.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsPaired<TW>()
        where TW : struct, IWeightFormat => typeof(TW) == typeof(F16) || typeof(TW) == typeof(F16Code);

    /// <summary>The widening constants of <typeparamref name="TW"/> for one width: the codes' mask and scale, or the F16 ones.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static HalfConstants<TV> ConstantsFor<TS, TV, TW>()
        where TS : struct, ISimd<TV>
        where TV : struct
        where TW : struct, IWeightFormat => typeof(TW) == typeof(F16Code) ? TS.CodeConstants : TS.HalfConstants;

    /// <summary>
    /// For each of the R rows of x [R, in], its whole 32-value blocks with the 16 even positions first and the 16 odd
    /// after: [x0, x2, …, x30, x1, x3, …, x31] per block, into <paramref name="pairs"/> [R, blocks·32].
    /// </summary>
    private static void SplitEvenOdd(float* x, int rows, int n, int blocks, float* pairs)
    {
        var even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        var odd = even + Vector512<int>.One;
        for (var r = 0; r < rows; r++)
        {
            for (var b = 0; b < blocks; b++)
            {
                var lo = Vector512.Load(x + ((long)r * n) + (32 * b));
                var hi = Vector512.Load(x + ((long)r * n) + (32 * b) + 16);
                var dst = pairs + ((long)r * blocks * 32) + (32 * b);
                Avx512F.PermuteVar16x32x2(lo, even, hi).Store(dst);
                Avx512F.PermuteVar16x32x2(lo, odd, hi).Store(dst + 16);
            }
        }
    }

    /// <summary>
    /// Outputs [o0, o1) for R ≤ 2 with AVX-512, 32 values per step. The rows follow one another in one loop with the
    /// constants made once (a call per row measured 3 % slower at F16, whose rows are half as many bytes), read front to
    /// back: one sequential stream per chunk, as in <see cref="OneOutput"/>. F16 reads its 32 halves as 16 32-bit lanes
    /// without widening: each lane's low half is an even position and its high half an odd one, and both are converted
    /// in place with shifts that pick their bits (<see cref="F16.Low512"/>, <see cref="F16.High512"/>), saving the
    /// zero-extension and a shift per 16 values (8.5 operations instead of 10), against x split into even and odd
    /// positions to match (<see cref="SplitEvenOdd"/>). Half codes take the same lanes and the same x, their low halves
    /// shifted up 16 then arithmetically down 3, their high halves down 3, each masked and scaled
    /// (<see cref="F16Code.Low512"/>, <see cref="F16Code.High512"/>): 3.5 operations per 16 values, and the same F32
    /// values, so the sums are the F16 loop's bits. A row remainder of fewer than 32 values goes through
    /// <see cref="Dots"/> afterwards.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SequentialRows<TW, TR>(in Job job, int o0, int o1)
        where TW : struct, IWeightFormat
        where TR : struct, IRowCount
    {
        var k = ConstantsFor<Simd512, Vector512<float>, TW>();
        var n = job.In;
        var blocks = n / 32;
        var done = 32L * blocks;

        // x as the steps read it: F16 and codes against the even/odd split (row stride 32·blocks), the others against x itself.
        var xs = IsPaired<TW>() ? (float*)job.XPairs : (float*)job.X;
        var xStride = IsPaired<TW>() ? done : n;
        var step = TW.Offset(0, 32);
        var ahead = IsPaired<TW>() ? F16SeqPrefetch : SeqPrefetch; // a constant per instantiation (the JIT folds the type test)
        var sums = stackalloc float[MaxRows];
        for (var o = o0; o < o1; o++)
        {
            Vector512<float> a0 = default, a1 = default, b0 = default, b1 = default;

            // Pointers stepped, not indexed: from the block number the JIT recomputes every address each step (9 scalar
            // instructions per 32 values), which measured 4–7 % slower on 2 threads.
            var w = TW.Offset(job.W, (long)o * n);
            var end = w + (blocks * step);
            var xp = xs;
            for (var wp = w; wp < end; wp += step, xp += 32)
            {
                if (Sse.IsSupported)
                {
                    if (typeof(TW) == typeof(F16Code))
                    {
                        // Codes ask for L2 only (prefetcht2). The code loop asks for lines about twice as fast as the
                        // F16 loop, whose widening paces it, and with prefetcht0 it read from memory slower than F16 on
                        // AMD EPYC Zen 4 (2 threads, whole-model decode, one model coded and one in IEEE halves
                        // alternated 16 tokens at a time, coded/IEEE per round): GPT-2 124M 0.82–1.17, ~1B Llama
                        // 1.06–1.17, the 77 MB tied GPT-2 head alone 1.12–1.37. With prefetcht2: GPT-2 0.49–0.96
                        // (medians 0.74 in two runs), ~1B Llama 0.75–1.04 (medians 0.93, 0.91).
                        Sse.Prefetch2((void*)(wp + ahead));
                    }
                    else
                    {
                        Sse.Prefetch0((void*)(wp + ahead));
                    }

                    if (step > 64)
                    {
                        Sse.Prefetch0((void*)(wp + ahead + 64));
                    }
                }

                Vector512<float> v0, v1;
                if (typeof(TW) == typeof(F16))
                {
                    var lanes = Vector512.Load((uint*)wp);
                    v0 = F16.Low512(lanes, k);
                    v1 = F16.High512(lanes, k);
                }
                else if (typeof(TW) == typeof(F16Code))
                {
                    var lanes = Vector512.Load((uint*)wp);
                    v0 = F16Code.Low512(lanes, k);
                    v1 = F16Code.High512(lanes, k);
                }
                else
                {
                    v0 = TW.Load512(wp, 0, k);
                    v1 = TW.Load512(wp, 16, k);
                }

                a0 = Vector512.FusedMultiplyAdd(v0, Vector512.Load(xp), a0);
                a1 = Vector512.FusedMultiplyAdd(v1, Vector512.Load(xp + 16), a1);
                if (TR.Count > 1)
                {
                    b0 = Vector512.FusedMultiplyAdd(v0, Vector512.Load(xp + xStride), b0);
                    b1 = Vector512.FusedMultiplyAdd(v1, Vector512.Load(xp + xStride + 16), b1);
                }
            }

            sums[0] = Vector512.Sum(a0 + a1);
            if (TR.Count > 1)
            {
                sums[1] = Vector512.Sum(b0 + b1);
            }

            Store<TR>(job, o, sums);
        }

        // Rows whose length is not whole blocks: the rest of each row added afterwards, in a loop of its own (with it
        // inside the loop above, the JIT spilled the constants and reloaded six of them on every step).
        if (done < n)
        {
            var x = (float*)job.X;
            for (var o = o0; o < o1; o++)
            {
                sums[0] = 0f;
                sums[1] = 0f;
                var w = TW.Offset(job.W, (long)o * n);
                var i = Dots<Simd512, Vector512<float>, TW, TR>(w, x, n, (int)done, sums);
                Dots<SimdScalar, float, TW, TR>(w, x, n, i, sums);
                for (var r = 0; r < TR.Count; r++)
                {
                    ((float*)job.Y)[((long)r * job.Out) + o] += sums[r];
                }
            }
        }
    }

    /// <summary>
    /// sums[r] += Σ_i w[i]·x_r[i] (R ≤ 2) over i from <paramref name="i"/> while a whole vector remains; returns where it
    /// stopped. Two vectors per step into two accumulator sets, so R = 1 is not bound by the FMA latency.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Dots<TS, TV, TW, TR>(nint w, float* x, int n, int i, float* sums)
        where TS : struct, ISimd<TV>
        where TV : struct
        where TW : struct, IWeightFormat
        where TR : struct, IRowCount
    {
        Debug.Assert(TR.Count <= SequentialMaxRows);
        if (i > n - TS.Count)
        {
            // Fewer values left than one vector (e.g. the row remainder SequentialRows hands over): no accumulators to reduce.
            return i;
        }

        var k = ConstantsFor<TS, TV, TW>();
        TV a00 = TS.Zero, a01 = TS.Zero, a10 = TS.Zero, a11 = TS.Zero;
        // Pointers stepped, not indexed (as in SequentialRows).
        var steps = (n - i) / (2 * TS.Count);
        var wp = TW.Offset(w, i);
        var end = TW.Offset(wp, (long)steps * 2 * TS.Count);
        var stride = TW.Offset(0, 2 * TS.Count);
        for (var xp = x + i; wp < end; wp += stride, xp += 2 * TS.Count)
        {
            if (Sse.IsSupported)
            {
                Sse.Prefetch0((void*)(wp + SeqPrefetch));
                if (stride > 64)
                {
                    Sse.Prefetch0((void*)(wp + SeqPrefetch + 64));
                }
            }

            var v0 = TS.LoadWeights<TW>(wp, 0, k);
            var v1 = TS.LoadWeights<TW>(wp, TS.Count, k);
            a00 = TS.Fma(v0, TS.Load(xp), a00);
            a10 = TS.Fma(v1, TS.Load(xp + TS.Count), a10);
            if (TR.Count > 1)
            {
                a01 = TS.Fma(v0, TS.Load(xp + n), a01);
                a11 = TS.Fma(v1, TS.Load(xp + n + TS.Count), a11);
            }
        }

        i += steps * 2 * TS.Count;

        // One odd vector left: into the first set.
        if (i <= n - TS.Count)
        {
            var v0 = TS.LoadWeights<TW>(w, i, k);
            a00 = TS.Fma(v0, TS.Load(x + i), a00);
            if (TR.Count > 1)
            {
                a01 = TS.Fma(v0, TS.Load(x + n + i), a01);
            }

            i += TS.Count;
        }

        sums[0] += TS.Sum(TS.Add(a00, a10));
        if (TR.Count > 1)
        {
            sums[1] += TS.Sum(TS.Add(a01, a11));
        }

        return i;
    }

    /// <summary>
    /// sums[k·8 + r] += Σ_i w_k[i]·x_r[i] for the two weight rows k over i from <paramref name="i"/> while a whole vector
    /// remains before <paramref name="end"/>; returns where it stopped. 2·R accumulators, each reduced once at the end.
    /// Each weight vector is widened once and multiplied into all R rows of x, and each x vector serves both weight
    /// rows, so a step loads 2 + R vectors for 2·R FMAs (one row at a time would load 1 + R for R). x rows are
    /// <paramref name="n"/> apart, as are the weights' rows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int PairDots<TS, TV, TW, TR>(nint w0, nint w1, float* x, int n, int end, int i, float* sums)
        where TS : struct, ISimd<TV>
        where TV : struct
        where TW : struct, IWeightFormat
        where TR : struct, IRowCount
    {
        var k = ConstantsFor<TS, TV, TW>();
        TV a00 = TS.Zero, a01 = TS.Zero, a02 = TS.Zero, a03 = TS.Zero, a04 = TS.Zero, a05 = TS.Zero, a06 = TS.Zero, a07 = TS.Zero;
        TV a10 = TS.Zero, a11 = TS.Zero, a12 = TS.Zero, a13 = TS.Zero, a14 = TS.Zero, a15 = TS.Zero, a16 = TS.Zero, a17 = TS.Zero;
        for (; i <= end - TS.Count; i += TS.Count)
        {
            if (Sse.IsSupported)
            {
                // Two rows read side by side are two short streams that the hardware prefetchers pick up late: ask for
                // the same place in the next pair of rows, 2·in values ahead.
                Sse.Prefetch0((void*)TW.Offset(w0, i + (2L * n)));
                Sse.Prefetch0((void*)TW.Offset(w1, i + (2L * n)));
            }

            var v0 = TS.LoadWeights<TW>(w0, i, k);
            var v1 = TS.LoadWeights<TW>(w1, i, k);
            var xv = TS.Load(x + i);
            a00 = TS.Fma(v0, xv, a00);
            a10 = TS.Fma(v1, xv, a10);

            if (TR.Count > 1)
            {
                xv = TS.Load(x + (1 * n) + i);
                a01 = TS.Fma(v0, xv, a01);
                a11 = TS.Fma(v1, xv, a11);
            }

            if (TR.Count > 2)
            {
                xv = TS.Load(x + (2 * n) + i);
                a02 = TS.Fma(v0, xv, a02);
                a12 = TS.Fma(v1, xv, a12);
            }

            if (TR.Count > 3)
            {
                xv = TS.Load(x + (3 * n) + i);
                a03 = TS.Fma(v0, xv, a03);
                a13 = TS.Fma(v1, xv, a13);
            }

            if (TR.Count > 4)
            {
                xv = TS.Load(x + (4 * n) + i);
                a04 = TS.Fma(v0, xv, a04);
                a14 = TS.Fma(v1, xv, a14);
            }

            if (TR.Count > 5)
            {
                xv = TS.Load(x + (5 * n) + i);
                a05 = TS.Fma(v0, xv, a05);
                a15 = TS.Fma(v1, xv, a15);
            }

            if (TR.Count > 6)
            {
                xv = TS.Load(x + (6 * n) + i);
                a06 = TS.Fma(v0, xv, a06);
                a16 = TS.Fma(v1, xv, a16);
            }

            if (TR.Count > 7)
            {
                xv = TS.Load(x + (7 * n) + i);
                a07 = TS.Fma(v0, xv, a07);
                a17 = TS.Fma(v1, xv, a17);
            }
        }

        sums[0] += TS.Sum(a00);
        sums[MaxRows] += TS.Sum(a10);
        if (TR.Count > 1) { sums[1] += TS.Sum(a01); sums[MaxRows + 1] += TS.Sum(a11); }
        if (TR.Count > 2) { sums[2] += TS.Sum(a02); sums[MaxRows + 2] += TS.Sum(a12); }
        if (TR.Count > 3) { sums[3] += TS.Sum(a03); sums[MaxRows + 3] += TS.Sum(a13); }
        if (TR.Count > 4) { sums[4] += TS.Sum(a04); sums[MaxRows + 4] += TS.Sum(a14); }
        if (TR.Count > 5) { sums[5] += TS.Sum(a05); sums[MaxRows + 5] += TS.Sum(a15); }
        if (TR.Count > 6) { sums[6] += TS.Sum(a06); sums[MaxRows + 6] += TS.Sum(a16); }
        if (TR.Count > 7) { sums[7] += TS.Sum(a07); sums[MaxRows + 7] += TS.Sum(a17); }
        return i;
    }

    /// <summary>
    /// F16 bits → F32, exactly (normals, subnormals, zeros, inf, NaN), the scalar reference of the vector forms below and
    /// of <see cref="WidenHalf"/>.
    /// </summary>
    internal static void WidenHalf(ushort* src, float* dst, int n)
    {
        var i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + 16 <= n; i += 16)
            {
                F16.Load512((nint)src, i, Simd512.HalfConstants).Store(dst + i);
            }
        }

        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 8 <= n; i += 8)
            {
                F16.Load256((nint)src, i, Simd256.HalfConstants).Store(dst + i);
            }
        }

        if (Vector128.IsHardwareAccelerated)
        {
            for (; i + 4 <= n; i += 4)
            {
                F16.Load128((nint)src, i, Simd128.HalfConstants).Store(dst + i);
            }
        }

        for (; i < n; i++)
        {
            dst[i] = F16.Scalar((nint)src, i);
        }
    }

    /// <summary>How one weight element type is read and widened to F32, per vector width.</summary>
    private interface IWeightFormat
    {
        static abstract nint Offset(nint w, long elements);

        static abstract float Scalar(nint w, nint i);

        static abstract Vector128<float> Load128(nint w, nint i, in HalfConstants<Vector128<float>> k);

        static abstract Vector256<float> Load256(nint w, nint i, in HalfConstants<Vector256<float>> k);

        static abstract Vector512<float> Load512(nint w, nint i, in HalfConstants<Vector512<float>> k);
    }

    private readonly struct F32 : IWeightFormat
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static nint Offset(nint w, long elements) => w + (nint)(elements * sizeof(float));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Scalar(nint w, nint i) => ((float*)w)[i];

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> Load128(nint w, nint i, in HalfConstants<Vector128<float>> k) => Vector128.Load((float*)w + i);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load256(nint w, nint i, in HalfConstants<Vector256<float>> k) => Vector256.Load((float*)w + i);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load512(nint w, nint i, in HalfConstants<Vector512<float>> k) => Vector512.Load((float*)w + i);
    }

    /// <summary>
    /// F16 widened in registers without ever forming a subnormal F32: F32 floating-point operations on subnormal operands
    /// take a microcode assist, which made the whole GEMV 2.5× slower when ~1 % of a matrix's halves were subnormal (random
    /// N(0, 0.02) weights have some). The 15 magnitude bits move to F32's exponent and mantissa place and the exponent is
    /// rebiased by an integer add: 112 for normal halves; 113 for exponent 0, giving the normal float 2^-14·(1 + f), from
    /// which subtracting 2^-14 leaves the exact subnormal (or zero) value f·2^-14; 224 for inf/NaN (exponent 31), landing
    /// on F32's all-ones exponent with the payload kept. The sign bit is copied last. With AVX-512 the add and the
    /// subtrahend come from two 32-entry tables indexed by the half's exponent (vpermt2d/vpermi2ps): 10 operations per 16
    /// values instead of 12 with compares and selects, which measured 15–18 % faster on Zen 5, where this loop is bound by
    /// its integer operations rather than by memory.
    /// </summary>
    private readonly struct F16 : IWeightFormat
    {
        /// <summary>A magnitude (F32 position) below this has half exponent 0: zero or subnormal.</summary>
        public const uint SubnormalLimit = 0x00800000;

        /// <summary>A magnitude at or above this has half exponent 31: inf or NaN.</summary>
        public const uint SpecialThreshold = 0x0F800000;

        /// <summary>112 in F32's exponent field: 127 − 15.</summary>
        public const uint Rebias = 0x38000000;

        public const uint SignMask = 0x80000000;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static nint Offset(nint w, long elements) => w + (nint)(elements * sizeof(ushort));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Scalar(nint w, nint i) => (float)BitConverter.UInt16BitsToHalf(((ushort*)w)[i]);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> Load128(nint w, nint i, in HalfConstants<Vector128<float>> k)
        {
            var h = Vector128.WidenLower(Vector128.CreateScalarUnsafe(*(ulong*)((ushort*)w + i)).AsUInt16());
            var magnitude = Vector128.ShiftRightLogical(Vector128.ShiftLeft(h, 17), 4);
            var normal = magnitude + k.Rebias.AsUInt32();
            var small = ((normal + k.SubnormalLimit.AsUInt32()).AsSingle() - k.MinNormal).AsUInt32();
            var value = Vector128.ConditionalSelect(Vector128.LessThan(magnitude, k.SubnormalLimit.AsUInt32()), small, normal);
            value = Vector128.ConditionalSelect(Vector128.GreaterThanOrEqual(magnitude, k.SpecialThreshold.AsUInt32()), normal + k.Rebias.AsUInt32(), value);
            return (value | (Vector128.ShiftLeft(h, 16) & k.SignMask.AsUInt32())).AsSingle();
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load256(nint w, nint i, in HalfConstants<Vector256<float>> k)
        {
            var h = Vector256.WidenLower(Vector128.Load((ushort*)w + i).ToVector256Unsafe());
            var magnitude = Vector256.ShiftRightLogical(Vector256.ShiftLeft(h, 17), 4);
            var normal = magnitude + k.Rebias.AsUInt32();
            var small = ((normal + k.SubnormalLimit.AsUInt32()).AsSingle() - k.MinNormal).AsUInt32();
            var value = Vector256.ConditionalSelect(Vector256.LessThan(magnitude, k.SubnormalLimit.AsUInt32()), small, normal);
            value = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(magnitude, k.SpecialThreshold.AsUInt32()), normal + k.Rebias.AsUInt32(), value);
            return (value | (Vector256.ShiftLeft(h, 16) & k.SignMask.AsUInt32())).AsSingle();
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load512(nint w, nint i, in HalfConstants<Vector512<float>> k)
        {
            // Vector512 is accelerated only where AVX-512F is (x64), so the table form needs no fallback. Per-exponent
            // tables (32 entries, looked up by the half's 5 exponent bits) instead of compares and selects: the integer
            // rebias for each exponent (112, 113 for subnormals, 224 for inf/NaN) and the float to subtract (2^-14 for
            // subnormals, else 0).
            Debug.Assert(Avx512F.IsSupported);
            return Low512(Vector512.WidenLower(Vector256.Load((ushort*)w + i).ToVector512Unsafe()), k);
        }

        /// <summary>The half in the low 16 bits of each 32-bit lane as F32 (the high bits are ignored).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Low512(Vector512<uint> lanes, in HalfConstants<Vector512<float>> k) =>
            FromFields(Vector512.ShiftLeft(lanes, 13) & k.MagnitudeMask.AsUInt32(), Vector512.ShiftRightLogical(lanes, 10), Vector512.ShiftLeft(lanes, 16) & k.SignMask.AsUInt32(), k);

        /// <summary>The half in the high 16 bits of each 32-bit lane as F32.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> High512(Vector512<uint> lanes, in HalfConstants<Vector512<float>> k) =>
            FromFields(Vector512.ShiftRightLogical(lanes, 3) & k.MagnitudeMask.AsUInt32(), Vector512.ShiftRightLogical(lanes, 26), lanes & k.SignMask.AsUInt32(), k);

        /// <summary>
        /// A half's fields already in F32 position (magnitude bits at 13–27, the exponent in the low 5 bits of
        /// <paramref name="exponent"/>, the sign at bit 31) → F32: the table rebias, the subnormal subtrahend, the sign.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<float> FromFields(Vector512<uint> magnitude, Vector512<uint> exponent, Vector512<uint> sign, in HalfConstants<Vector512<float>> k)
        {
            var rebiased = magnitude + Avx512F.PermuteVar16x32x2(k.RebiasLow.AsUInt32(), exponent, k.RebiasHigh.AsUInt32());
            var value = rebiased.AsSingle() - Avx512F.PermuteVar16x32x2(k.OffsetLow, exponent.AsInt32(), k.OffsetHigh);
            return (value.AsUInt32() | sign).AsSingle();
        }
    }

    /// <summary>BF16 widened in registers: the 16 bits become the upper half of an F32 (exact).</summary>
    private readonly struct BF16 : IWeightFormat
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static nint Offset(nint w, long elements) => w + (nint)(elements * sizeof(ushort));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Scalar(nint w, nint i) => BitConverter.UInt32BitsToSingle((uint)((ushort*)w)[i] << 16);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> Load128(nint w, nint i, in HalfConstants<Vector128<float>> k) =>
            Vector128.ShiftLeft(Vector128.WidenLower(Vector128.CreateScalarUnsafe(*(ulong*)((ushort*)w + i)).AsUInt16()), 16).AsSingle();

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load256(nint w, nint i, in HalfConstants<Vector256<float>> k) =>
            Vector256.ShiftLeft(Vector256.WidenLower(Vector128.Load((ushort*)w + i).ToVector256Unsafe()), 16).AsSingle();

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load512(nint w, nint i, in HalfConstants<Vector512<float>> k) =>
            Vector512.ShiftLeft(Vector512.WidenLower(Vector256.Load((ushort*)w + i).ToVector512Unsafe()), 16).AsSingle();
    }

    /// <summary>
    /// Half codes (<see cref="HalfCodes"/>) widened in registers: each code sign-extended to 32 bits, shifted left by 13,
    /// masked to the sign and bits 27–13 and multiplied by 2^102, giving exactly the F32 of the half it stands for,
    /// never through a subnormal F32. Three operations per 16 values after the load (which sign-extends; 3.5 in
    /// <see cref="SequentialRows"/>' paired lanes) against 8.5–10 for <see cref="F16"/>'s exact IEEE widening, which
    /// bounds batch-1 F16 decode on AMD EPYC Zen 4 (family 25 model 17, 2 vCPUs): one 3072 × 768 matrix in cache at R = 1,
    /// 2 threads, medians of 7 alternated samples in three runs, 22.4 / 22.5 / 24.3 GB/s as F16 against 45.2 / 41.0 /
    /// 46.0 as codes; 24 such matrices cycled from memory 16.9 / 25.0 / 15.7 against 21.4 / 27.0 / 21.5 (F32 at that
    /// shape streams ~25 GB/s there, so cold the codes run into memory).
    /// </summary>
    private readonly struct F16Code : IWeightFormat
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static nint Offset(nint w, long elements) => w + (nint)(elements * sizeof(ushort));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Scalar(nint w, nint i) => HalfCodes.Widen(((ushort*)w)[i]);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> Load128(nint w, nint i, in HalfConstants<Vector128<float>> k)
        {
            var c = Vector128.WidenLower(Vector128.CreateScalarUnsafe(*(ulong*)((ushort*)w + i)).AsInt16());
            return (Vector128.ShiftLeft(c, 13) & k.CodeMask.AsInt32()).AsSingle() * k.CodeScale;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load256(nint w, nint i, in HalfConstants<Vector256<float>> k)
        {
            var c = Vector256.WidenLower(Vector128.Load((short*)w + i).ToVector256Unsafe());
            return (Vector256.ShiftLeft(c, 13) & k.CodeMask.AsInt32()).AsSingle() * k.CodeScale;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load512(nint w, nint i, in HalfConstants<Vector512<float>> k)
        {
            var c = Vector512.WidenLower(Vector256.Load((short*)w + i).ToVector512Unsafe());
            return (Vector512.ShiftLeft(c, 13) & k.CodeMask.AsInt32()).AsSingle() * k.CodeScale;
        }

        /// <summary>The code in the low 16 bits of each 32-bit lane as F32: moved up 16, then arithmetically down 3 (sign-extended and shifted by 13).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Low512(Vector512<uint> lanes, in HalfConstants<Vector512<float>> k) =>
            (Vector512.ShiftRightArithmetic(Vector512.ShiftLeft(lanes, 16).AsInt32(), 3) & k.CodeMask.AsInt32()).AsSingle() * k.CodeScale;

        /// <summary>The code in the high 16 bits of each 32-bit lane as F32: arithmetically down 3.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> High512(Vector512<uint> lanes, in HalfConstants<Vector512<float>> k) =>
            (Vector512.ShiftRightArithmetic(lanes.AsInt32(), 3) & k.CodeMask.AsInt32()).AsSingle() * k.CodeScale;
    }

    /// <summary>
    /// The F16 widening constants of one width (bit patterns, in float-typed vectors), made once before a loop and passed
    /// in. Built from <see cref="HalfTable"/> (runtime values) for the widest form: from literal constants the JIT
    /// re-broadcasts each one from constant memory on every step instead of keeping it in a register (5 extra loads per
    /// vector; measured no faster or slower on Zen 5, where the loop is bound by its integer ops). Other formats ignore them.
    /// </summary>
    private readonly struct HalfConstants<TV>(TV rebias, TV subnormalLimit, TV specialThreshold, TV minNormal, TV signMask)
        where TV : struct
    {
        public HalfConstants(TV rebias, TV subnormalLimit, TV specialThreshold, TV minNormal, TV signMask, TV magnitudeMask, TV rebiasLow, TV rebiasHigh, TV offsetLow, TV offsetHigh)
            : this(rebias, subnormalLimit, specialThreshold, minNormal, signMask)
        {
            MagnitudeMask = magnitudeMask;
            RebiasLow = rebiasLow;
            RebiasHigh = rebiasHigh;
            OffsetLow = offsetLow;
            OffsetHigh = offsetHigh;
        }

        /// <summary>The exponent and mantissa bits of a half shifted left by 13.</summary>
        public TV MagnitudeMask { get; }

        /// <summary>The rebias table by half exponent, entries 0–15 and 16–31.</summary>
        public TV RebiasLow { get; }

        public TV RebiasHigh { get; }

        /// <summary>The subtrahend table by half exponent (2^-14 at 0, else 0), entries 0–15 and 16–31.</summary>
        public TV OffsetLow { get; }

        public TV OffsetHigh { get; }

        public TV Rebias { get; } = rebias;

        public TV SubnormalLimit { get; } = subnormalLimit;

        public TV SpecialThreshold { get; } = specialThreshold;

        /// <summary>2^-14, the smallest normal half.</summary>
        public TV MinNormal { get; } = minNormal;

        public TV SignMask { get; } = signMask;

        /// <summary>Half codes: <see cref="HalfCodes.Mask"/>, what the widening keeps of a code sign-extended and shifted left by 13.</summary>
        public TV CodeMask { get; init; }

        /// <summary>Half codes: <see cref="HalfCodes.Scale"/>, 2^102.</summary>
        public TV CodeScale { get; init; }
    }

    /// <summary>One vector width (or scalar) for <see cref="Dots{TS, TV, TW, TR}"/>.</summary>
    private interface ISimd<TV>
        where TV : struct
    {
        static abstract int Count { get; }

        static abstract TV Zero { get; }

        static abstract TV Load(float* p);

        /// <summary>The F16 widening constants, made once before a loop (the JIT would otherwise re-broadcast them every step).</summary>
        static abstract HalfConstants<TV> HalfConstants { get; }

        /// <summary>The half codes' constants (only <see cref="HalfConstants{TV}.CodeMask"/> and <see cref="HalfConstants{TV}.CodeScale"/> set).</summary>
        static abstract HalfConstants<TV> CodeConstants { get; }

        static abstract TV LoadWeights<TW>(nint w, nint i, in HalfConstants<TV> k)
            where TW : struct, IWeightFormat;

        static abstract TV Fma(TV a, TV b, TV c);

        static abstract TV Add(TV a, TV b);

        static abstract float Sum(TV v);
    }

    private readonly struct Simd512 : ISimd<Vector512<float>>
    {
        public static int Count => Vector512<float>.Count;

        public static Vector512<float> Zero => Vector512<float>.Zero;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load(float* p) => Vector512.Load(p);

        public static HalfConstants<Vector512<float>> HalfConstants
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            // The table form (F16.Load512) reads only the masks and the tables; the compare-and-select constants stay unset.
            get => new(
                default,
                default,
                default,
                default,
                Vector512.Create(HalfTable[0]).AsSingle(),
                Vector512.Create(HalfTable[1]).AsSingle(),
                Vector512.Create(new ReadOnlySpan<uint>(HalfRebiasTable, 0, 16)).AsSingle(),
                Vector512.Create(new ReadOnlySpan<uint>(HalfRebiasTable, 16, 16)).AsSingle(),
                Vector512.Create(new ReadOnlySpan<float>(HalfOffsetTable, 0, 16)),
                Vector512.Create(new ReadOnlySpan<float>(HalfOffsetTable, 16, 16)));
        }

        public static HalfConstants<Vector512<float>> CodeConstants
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            get => new(default, default, default, default, default)
            {
                CodeMask = Vector512.Create(CodeTable[0]).AsSingle(),
                CodeScale = Vector512.Create(CodeTable[1]).AsSingle(),
            };
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> LoadWeights<TW>(nint w, nint i, in HalfConstants<Vector512<float>> k)
            where TW : struct, IWeightFormat => TW.Load512(w, i, k);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Sum(Vector512<float> v) => Vector512.Sum(v);
    }

    private readonly struct Simd256 : ISimd<Vector256<float>>
    {
        public static int Count => Vector256<float>.Count;

        public static Vector256<float> Zero => Vector256<float>.Zero;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load(float* p) => Vector256.Load(p);

        public static HalfConstants<Vector256<float>> HalfConstants => new(
            Vector256.Create(F16.Rebias).AsSingle(),
            Vector256.Create(F16.SubnormalLimit).AsSingle(),
            Vector256.Create(F16.SpecialThreshold).AsSingle(),
            Vector256.Create(F16.Rebias + F16.SubnormalLimit).AsSingle(),
            Vector256.Create(F16.SignMask).AsSingle());

        public static HalfConstants<Vector256<float>> CodeConstants => new(default, default, default, default, default)
        {
            CodeMask = Vector256.Create(HalfCodes.Mask).AsSingle(),
            CodeScale = Vector256.Create(HalfCodes.Scale),
        };

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> LoadWeights<TW>(nint w, nint i, in HalfConstants<Vector256<float>> k)
            where TW : struct, IWeightFormat => TW.Load256(w, i, k);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Sum(Vector256<float> v) => Vector256.Sum(v);
    }

    private readonly struct Simd128 : ISimd<Vector128<float>>
    {
        public static int Count => Vector128<float>.Count;

        public static Vector128<float> Zero => Vector128<float>.Zero;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> Load(float* p) => Vector128.Load(p);

        public static HalfConstants<Vector128<float>> HalfConstants => new(
            Vector128.Create(F16.Rebias).AsSingle(),
            Vector128.Create(F16.SubnormalLimit).AsSingle(),
            Vector128.Create(F16.SpecialThreshold).AsSingle(),
            Vector128.Create(F16.Rebias + F16.SubnormalLimit).AsSingle(),
            Vector128.Create(F16.SignMask).AsSingle());

        public static HalfConstants<Vector128<float>> CodeConstants => new(default, default, default, default, default)
        {
            CodeMask = Vector128.Create(HalfCodes.Mask).AsSingle(),
            CodeScale = Vector128.Create(HalfCodes.Scale),
        };

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> LoadWeights<TW>(nint w, nint i, in HalfConstants<Vector128<float>> k)
            where TW : struct, IWeightFormat => TW.Load128(w, i, k);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> Fma(Vector128<float> a, Vector128<float> b, Vector128<float> c) => Vector128.FusedMultiplyAdd(a, b, c);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Sum(Vector128<float> v) => Vector128.Sum(v);
    }

    /// <summary>One value at a time: the tail after the vectors, and the whole loop without SIMD.</summary>
    private readonly struct SimdScalar : ISimd<float>
    {
        public static int Count => 1;

        public static float Zero => 0f;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Load(float* p) => *p;

        public static HalfConstants<float> HalfConstants => default;

        public static HalfConstants<float> CodeConstants => default;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float LoadWeights<TW>(nint w, nint i, in HalfConstants<float> k)
            where TW : struct, IWeightFormat => TW.Scalar(w, i);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Fma(float a, float b, float c) => (a * b) + c;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Add(float a, float b) => a + b;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Sum(float v) => v;
    }

    /// <summary>R, the number of input rows, as a type so each R gets its own kernel.</summary>
    private interface IRowCount
    {
        static abstract int Count { get; }
    }

    private readonly struct R1 : IRowCount
    {
        public static int Count => 1;
    }

    private readonly struct R2 : IRowCount
    {
        public static int Count => 2;
    }

    private readonly struct R3 : IRowCount
    {
        public static int Count => 3;
    }

    private readonly struct R4 : IRowCount
    {
        public static int Count => 4;
    }

    private readonly struct R5 : IRowCount
    {
        public static int Count => 5;
    }

    private readonly struct R6 : IRowCount
    {
        public static int Count => 6;
    }

    private readonly struct R7 : IRowCount
    {
        public static int Count => 7;
    }

    private readonly struct R8 : IRowCount
    {
        public static int Count => 8;
    }

    /// <summary>One call's operands as raw addresses (the spans are pinned by the caller for the loop's duration).</summary>
    private readonly record struct Job(nint X, int Rows, nint W, int In, int Out, nint Bias, nint Y, bool Accumulate)
    {
        /// <summary>For the paired F16 loop: x's whole 32-value blocks with even and odd positions split (see <see cref="SequentialRows"/>), or 0.</summary>
        public nint XPairs { get; init; }

        /// <summary>For the R ≥ 3 AVX-512 loop: x's whole 16-value groups regrouped by <see cref="Interleave"/>, or 0.</summary>
        public nint XGroups { get; init; }
    }
}
