using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sharpformer.Tensors.Kernels.Quant;

/// <summary>
/// The batch-1 (decode) path of <see cref="QuantMatMul"/>: one token against every weight row, each row streamed once.
/// On a quiet machine two cores read about 50 GB/s, so a core has 4–5 cycles per Q8_0 block and about 20 per Q4_K
/// super-block: these kernels are written to that budget. Q8_0 (AVX2, VPDPBUSD with AVX-VNNI) converts its block scales
/// eight at a time (one gather of the eight F16 scales, converted in registers and multiplied by the activation scales
/// in one vector op) instead of a table lookup per block, and keeps four accumulators so the FMA latency does not bind;
/// with AVX-512 it reads the weight codes XOR 0x80 as unsigned bytes against codes whose −128·Σx is added back per group
/// (no sign trick) and finishes eight blocks in one 512-bit vector (<see cref="DecodeQ8_0Wide{TDistance}"/>).
/// Q4_K and Q6_K (AVX-512BW) read 64 code bytes per load against activation codes reordered once per call to match.
/// Every kernel keeps the reference's exact integer block sums; without these ISAs the per-row AVX2 kernels of
/// QuantMatMul.cs run, and <see cref="MultiplyReference"/> is the scalar reference. No static field is read inside a
/// kernel loop: its class-initialization check made the JIT spill the vector registers on every block.
/// </summary>
public static unsafe partial class QuantMatMul
{
    /// <summary>Q8_0 blocks whose scales one gather fetches: 8 blocks of 34 bytes (272 bytes of the row).</summary>
    private const int DecodeGroupBlocks = 8;

    /// <summary>The longest row whose reordered activation codes <see cref="DecodeQ4_K{TDistance}"/> and <see cref="DecodeQ6_K{TDistance}"/> keep on the stack (16 KiB).</summary>
    private const int DecodeMaxColumns = 1 << 14;

    /// <summary>
    /// Weight bytes per parallel chunk at batch 1: long chunks keep each thread on one sequential stream that the
    /// prefetchers settle into. Q8_0 ~1B-Llama layer stack, 2 threads, new kernel: 64 KiB chunks 0.75–0.83 of the read
    /// bandwidth, 256 KiB 0.83–0.89, 1 MiB 0.93–0.95 (as <see cref="Gemv"/> found for F16/F32). Each chunk still
    /// costs each thread a fixed ~0.5–2.5 µs (its stream ramping up, the kernel's per-call activation setup): per-region
    /// timing of the ~1B Q4_K decode (AMD EPYC Zen 5 class, 2 threads) showed the regions' stream rate falling with the
    /// chunk size, at a ~79 GB/s probe 0.71 of it for o's 295 KiB chunks and 0.89 for gate/up's 927 KiB. 2 MiB with
    /// <see cref="DecodeChunksPerThread"/> 2 against 1 MiB and 4 per thread, token by token in one process: Q4_K 0.962
    /// of the step time at a 76–78 GB/s probe (6 rounds of 64 tokens, 0.958–0.971) and 0.983 at 44–50 GB/s (12 rounds,
    /// all below 1), Q8_0 0.987 at ~47 GB/s (5 rounds, all below 1); at ~77 GB/s 4 MiB was level with 2 MiB and one
    /// chunk per thread 3–4 % slower. Since then the activation setup is made once per product call
    /// (<see cref="PrepareDecode"/>, ~0.2 µs per chunk per thread before) and each thread streams a contiguous share of
    /// the chunks (ParallelFor.ForShares: the ramp, ~1 µs, once per thread per region instead of once per chunk).
    /// </summary>
    private const int DecodeChunkBytes = 2 << 20;

    /// <summary>
    /// How far ahead <see cref="DecodeQ4_K{TDistance}"/> prefetches its rows while its recent stream rate is below
    /// <see cref="DecodeQ4_KFastRate"/>: 6 KiB, where the other kernels use <see cref="PrefetchBytes"/> (4 KiB). The
    /// ~1B Llama Q4_K decode ran with 2 threads on the 2-core Zen 5 host (2026-12-07), with the distance switched token
    /// by token in one process; medians of per-token-pair ratios. At a ~77 GB/s read bandwidth, 8 KiB took 0.958–0.970
    /// of 4 KiB's token time and 6 KiB 1.003–1.007 of 8 KiB's. At ~50 GB/s, 6 KiB took 0.997–1.008 of 4 KiB's and
    /// 0.956–0.972 of 8 KiB's. 12 and 16 KiB were slower than 8 KiB, and no prefetch took 1.19–1.22 of 4 KiB's time.
    /// </summary>
    private const int DecodeQ4_KPrefetchBytes = PrefetchBytes + 2048;

    /// <summary>
    /// How far ahead <see cref="DecodeQ4_K{TDistance}"/> prefetches when its recent stream rate per thread
    /// (<see cref="_decodeRate"/>) is at least <see cref="DecodeQ4_KFastRate"/>: 10 KiB. The best distance grows with
    /// the bandwidth a thread gets (about rate × 280 ns here), so one value cannot serve both of the host's memory phases.
    /// The ~1B Llama Q4_K decode, 2 threads, AMD EPYC Zen 5 class, token by token in one process against 6 KiB: 10 KiB
    /// took 0.959 of the token time at an ~81 GB/s probe (11 rounds, 0.955–0.969) but 1.03–1.04 at ~48 GB/s; 16 KiB
    /// took 1.07 at ~52. Chosen by the rate as here: 0.968 at ~80 GB/s (7 rounds, 0.963–0.983; the average read
    /// 36–40 GB/s per thread) and level at ~52 (1.001 and 1.003, 19.7–24.5 GB/s per thread: 6 KiB on both paths).
    /// </summary>
    private const int DecodeQ4_KFastPrefetchBytes = 10 << 10;

    /// <summary>
    /// How far ahead <see cref="DecodeQ8_0Wide{TDistance}"/> prefetches when the recent stream rate per thread
    /// (<see cref="_decodeRate"/>) is at least <see cref="DecodeQ8_0FastRate"/>: 8 KiB, else <see cref="PrefetchBytes"/>
    /// (4 KiB). The ~1B Llama Q8_0 decode, 2 threads, AMD EPYC Zen 5 class, token by token in one process against 4 KiB:
    /// 8 KiB took 0.935 of the token time at an ~81 GB/s probe (2 rounds) but 1.03–1.04 at ~52 GB/s; 10 KiB 0.975–0.980
    /// at ~80 and 1.05 at ~52. Chosen by the rate as here: 0.949 at a ~75 GB/s probe (7 rounds, 0.932–0.953; the average
    /// read 37–38 GB/s per thread) and level at ~52 (1.000 and 1.000, 26.8–27.5 GB/s per thread: 4 KiB on both paths).
    /// </summary>
    private const int DecodeQ8_0FastPrefetchBytes = 8 << 10;

    /// <summary>
    /// How far ahead <see cref="DecodeQ6_K{TDistance}"/> prefetches when the recent stream rate per thread
    /// (<see cref="_decodeRate"/>) is at least <see cref="DecodeQ6_KFastRate"/>: 10 KiB, else <see cref="PrefetchBytes"/>
    /// (4 KiB). 24 distinct 5632 × 2048 Q6_K matrices (227 MB) streamed at batch 1 in turn, 2 threads, AMD EPYC Zen 5
    /// class, the distance alternated sweep by sweep in one process (6 rounds of 8 sweeps): at a ~80 GB/s probe 4 KiB
    /// read 65–68 GB/s, and 6, 8 and 10 KiB took 0.918, 0.881 and 0.873 of its time (10 KiB: 73–80 GB/s); at a ~46 GB/s
    /// probe 0.988, 0.985 and 1.000.
    /// </summary>
    private const int DecodeQ6_KFastPrefetchBytes = 10 << 10;

    /// <summary>
    /// The stream rate per thread, bytes per second, from which <see cref="DecodeQ6_K{TDistance}"/> prefetches further
    /// ahead: between what it read per thread in the slow memory phase (23.7–25.3 GB/s at a ~46 GB/s probe) and in the
    /// fast phase (38.3–40.5 at ~80).
    /// </summary>
    private const double DecodeQ6_KFastRate = 30e9;

    /// <summary>
    /// The stream rate per thread, bytes per second, from which <see cref="DecodeQ4_K{TDistance}"/> prefetches further ahead: between
    /// what the ~1B Q4_K decode read per thread in the host's slow memory phase (19.7–24.7 GB/s at a ~52 GB/s probe) and
    /// in its fast phase (34.6–39.7 at ~80).
    /// </summary>
    private const double DecodeQ4_KFastRate = 30e9;

    /// <summary>
    /// The stream rate per thread, bytes per second, from which <see cref="DecodeQ8_0Wide{TDistance}"/> prefetches further ahead:
    /// between what the ~1B Q8_0 decode read per thread in the slow phase (26.8–27.5 GB/s at ~52) and in the fast phase
    /// (39.0–39.3 at ~81).
    /// </summary>
    private const double DecodeQ8_0FastRate = 33e9;

    /// <summary>
    /// The recent stream rate of the batch-1 Q4_K, Q6_K and Q8_0 kernels, bytes of weights per second per thread: an
    /// exponential average (weight 1/32) over their calls, each timed in <see cref="DecodeRows"/>. Threads update it
    /// without a lock; a lost update only drops one call's estimate.
    /// </summary>
    private static double _decodeRate;

    /// <summary>Chunks per thread that a batch-1 product is cut into at least, so that a slow core's share can still move.</summary>
    private const int DecodeChunksPerThread = 2;

    /// <summary>Rows per chunk at batch 1: about <see cref="DecodeChunkBytes"/> of weights, at least 4 rows, and at least <see cref="DecodeChunksPerThread"/> chunks per thread.</summary>
    private static int DecodeGrain(int outs, int rowBytes)
    {
        var rows = Math.Max(1, DecodeChunkBytes / rowBytes);
        var chunks = DecodeChunksPerThread * Threading.ParallelFor.MaxDegreeOfParallelism;
        var perThread = (outs + chunks - 1) / chunks;
        return Math.Max(4, Math.Min(rows, perThread));
    }

    /// <summary>
    /// Bytes of the activation-side setup that <see cref="PrepareDecode"/> makes once per call for a batch-1
    /// <paramref name="job"/>: the codes reordered for <see cref="DecodeQ4_K{TDistance}"/> or <see cref="DecodeQ6_K{TDistance}"/> (and
    /// DecodeQ4_K's per-group sums and factors); 0 when its kernel needs none. Made once per call rather than once per
    /// chunk: per chunk it cost ~0.2 µs per thread (~1B Q4_K decode, 2 threads, AMD EPYC Zen 5 class; 256 KiB chunks,
    /// token by token in one process: 0.982 of the step time with it made once per call, at a ~50 GB/s read bandwidth).
    /// </summary>
    private static int DecodePreparedBytes(in Job job)
    {
        if (!job.Simd || job.Rows != 1 || job.LaneGroups > 0 || job.In > DecodeMaxColumns || !Vector512.IsHardwareAccelerated || !Avx512BW.IsSupported)
        {
            return 0;
        }

        var groups = ((job.In / 256) + 3) / 4;
        return job.Type switch
        {
            QuantType.Q8_0 => AvxVnni.IsSupported && job.In >= 32 * DecodeGroupBlocks ? 64 + (job.In / 256 * 128) : 0,
            QuantType.Q4_K => 64 + job.In + (groups * 128),
            QuantType.Q6_K => 64 + job.In,
            _ => 0,
        };
    }

    /// <summary>
    /// <paramref name="job"/> with its batch-1 activation setup made in <paramref name="buffer"/> (<see cref="PrepareDecode"/>)
    /// when <paramref name="bytes"/> (its <see cref="DecodePreparedBytes"/>) is positive; otherwise the job unchanged.
    /// </summary>
    private static Job WithPrepared(in Job job, int bytes, byte* buffer) =>
        bytes > 0 ? job with { Prepared = PrepareDecode(job, buffer) } : job;

    /// <summary>
    /// Makes <paramref name="job"/>'s batch-1 activation setup in <paramref name="buffer"/> (<see cref="DecodePreparedBytes"/>
    /// bytes) and returns where it starts, on a 64-byte boundary (every 64-byte load of the codes whole): the activation
    /// codes reordered for the kernel; then, for Q4_K, per group of four super-blocks, 16 factors (the activation scale of
    /// block k at lane 4k, to go with d, its negation at 4k + 1, to go with dmin, zero elsewhere) and 32 sums of 32 codes
    /// (8 per block; zero past the last block, which then adds nothing).
    /// </summary>
    private static nint PrepareDecode(in Job job, byte* buffer)
    {
        var x = (sbyte*)(((nint)buffer + 63) & ~(nint)63);
        if (job.Type == QuantType.Q8_0)
        {
            PrepareQ8_0((sbyte*)job.Codes, (float*)job.Scales, (byte*)x, job.In / 32);
            return (nint)x;
        }

        var blocks = job.In / 256;
        if (job.Type == QuantType.Q6_K)
        {
            ReorderActivations((sbyte*)job.Codes, x, blocks, Q6_KChunkOrder);
            return (nint)x;
        }

        ReorderActivations((sbyte*)job.Codes, x, blocks, Q4_KChunkOrder);
        var groups = (blocks + 3) / 4;
        var factors = (float*)(x + job.In);
        var subSums = (short*)(factors + (groups * 16));
        var xd = (float*)job.Scales;
        var sums16 = (short*)job.Sums;
        for (var j = 0; j < groups * 32; j++)
        {
            subSums[j] = j < blocks * 8 ? (short)(sums16[2 * j] + sums16[(2 * j) + 1]) : (short)0;
        }

        for (var b = 0; b < groups * 4; b++)
        {
            var scale = b < blocks ? xd[b] : 0f;
            factors[4 * b] = scale;
            factors[(4 * b) + 1] = -scale;
            factors[(4 * b) + 2] = 0f;
            factors[(4 * b) + 3] = 0f;
        }

        return (nint)x;
    }

    /// <summary>
    /// Rows [start, end) for one token when a decode kernel exists for the weight type on this CPU; returns the first row
    /// not done (<paramref name="start"/> when there is none).
    /// </summary>
    private static int DecodeRows(in Job job, int start, int end)
    {
        if (job.Type == QuantType.Q8_0 && job.In >= 32 * DecodeGroupBlocks)
        {
            if (job.Prepared != 0)
            {
                var rate = _decodeRate;
                var t0 = Stopwatch.GetTimestamp();
                if (rate >= DecodeQ8_0FastRate) DecodeQ8_0Wide<Q8_0FastDistance>(job, start, end);
                else DecodeQ8_0Wide<DefaultDistance>(job, start, end);
                UpdateDecodeRate(rate, t0, (long)(end - start) * job.RowBytes);
            }
            else
            {
                DecodeQ8_0(job, start, end);
            }

            return end;
        }

        if (job.Prepared != 0)
        {
            if (job.Type == QuantType.Q4_K && job.In <= DecodeMaxColumns)
            {
                var rate = _decodeRate;
                var t0 = Stopwatch.GetTimestamp();
                if (rate >= DecodeQ4_KFastRate) DecodeQ4_K<Q4_KFastDistance>(job, start, end);
                else DecodeQ4_K<Q4_KDistance>(job, start, end);
                UpdateDecodeRate(rate, t0, (long)(end - start) * job.RowBytes);

                return end;
            }

            if (job.Type == QuantType.Q6_K && job.In <= DecodeMaxColumns)
            {
                var rate = _decodeRate;
                var t0 = Stopwatch.GetTimestamp();
                if (rate >= DecodeQ6_KFastRate) DecodeQ6_K<Q6_KFastDistance>(job, start, end);
                else DecodeQ6_K<DefaultDistance>(job, start, end);
                UpdateDecodeRate(rate, t0, (long)(end - start) * job.RowBytes);
                return end;
            }
        }

        return start;
    }

    /// <summary>Folds a kernel call that started at <paramref name="t0"/> (a <see cref="Stopwatch"/> timestamp) and read <paramref name="bytes"/> into <see cref="_decodeRate"/>, which read <paramref name="rate"/> before it.</summary>
    private static void UpdateDecodeRate(double rate, long t0, long bytes)
    {
        var ticks = Stopwatch.GetTimestamp() - t0;
        if (ticks > 0)
        {
            _decodeRate = rate + ((((double)bytes * Stopwatch.Frequency / ticks) - rate) / 32);
        }
    }

    /// <summary>
    /// A software-prefetch distance in bytes, as a type: the decode kernels take it as a type parameter so that each
    /// instantiation has it as a constant in its addressing. As an <c>int</c> argument the ~1B Q4_K decode ran ~7–10 %
    /// slower at a ~52 GB/s read bandwidth than with the constant it replaced (separate processes, alternated; AMD EPYC
    /// Zen 5 class, 2 threads), though level within one process against itself at any distance.
    /// </summary>
    private interface IPrefetchDistance
    {
        /// <summary>How far ahead of the current block to prefetch.</summary>
        static abstract int Bytes { get; }
    }

    /// <summary><see cref="PrefetchBytes"/>.</summary>
    private readonly struct DefaultDistance : IPrefetchDistance
    {
        public static int Bytes => PrefetchBytes;
    }

    /// <summary><see cref="DecodeQ4_KPrefetchBytes"/>.</summary>
    private readonly struct Q4_KDistance : IPrefetchDistance
    {
        public static int Bytes => DecodeQ4_KPrefetchBytes;
    }

    /// <summary><see cref="DecodeQ4_KFastPrefetchBytes"/>.</summary>
    private readonly struct Q4_KFastDistance : IPrefetchDistance
    {
        public static int Bytes => DecodeQ4_KFastPrefetchBytes;
    }

    /// <summary><see cref="DecodeQ8_0FastPrefetchBytes"/>.</summary>
    private readonly struct Q8_0FastDistance : IPrefetchDistance
    {
        public static int Bytes => DecodeQ8_0FastPrefetchBytes;
    }

    /// <summary><see cref="DecodeQ6_KFastPrefetchBytes"/>.</summary>
    private readonly struct Q6_KFastDistance : IPrefetchDistance
    {
        public static int Bytes => DecodeQ6_KFastPrefetchBytes;
    }

    /// <summary>
    /// Q4_K rows [start, end) at batch 1 with AVX-512BW, in groups of four super-blocks (the last group of a row may be
    /// short). Per group, the four 16-byte headers (d, dmin, 12 packed bytes) sit in the four 128-bit lanes of one vector,
    /// so the work that does not scale with the codes is done once for four blocks: the scales and mins unpacked by the
    /// same byte shuffles for all four (<see cref="Q4_KGroupScalesAndMins"/>), the eight F16 factors converted at once
    /// (<see cref="HalvesToSingle(Vector512{uint})"/>) and multiplied by the activation scales, and the mins against the
    /// activation's sums of 32 in one VPMADDWD (four blocks × eight mins) and one FMA. Per block
    /// (<see cref="Q4_KBlock"/>): a 64-byte load of codes holds the nibbles of four sub-blocks, bytes 0–31 sub-blocks 0
    /// (low nibbles) and 1 (high), bytes 32–63 sub-blocks 2 and 3; one mask gives sub-blocks 0 and 2 side by side and a
    /// shift and a mask sub-blocks 1 and 3, against activation codes put into that order once per product call
    /// (<see cref="PrepareDecode"/>); VPMADDUBSW multiplies, VPMADDWD applies the sub-block scales, picked by VPSHUFB
    /// from the block's lane broadcast to all four. Exact integer super-block sums, like the reference. The old one-block
    /// form (a 128-bit scale unpack, a VPERMW per scale vector, the factors looked up one block at a time) ran ~15 % slower
    /// on L2-resident 256 × 2048 weights. Rows over <see cref="DecodeMaxColumns"/> values are left to the AVX2 kernel.
    /// <typeparamref name="TDistance"/> says how far ahead it prefetches (<see cref="DecodeQ4_KFastPrefetchBytes"/>). In the
    /// ~1B decode the arithmetic is worth little (AMD EPYC Zen 5 class, 2 threads, token by token): with none at all
    /// (the rows only loaded) the token took 0.971 of the time at an ~80 GB/s read bandwidth, and a form that adds the
    /// VPMADDUBSW outputs of VPUNPCKLWD/VPUNPCKHWD-paired rows in int16 (11 multiply-pipe operations per block instead
    /// of 15), ~5 % faster on L3-resident weights, was level (0.995–1.006 at ~80 GB/s, 0.999 at ~52).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DecodeQ4_K<TDistance>(in Job job, int start, int end)
        where TDistance : struct, IPrefetchDistance
    {
        var blocks = job.In / 256;
        var groups = (blocks + 3) / 4;
        // The reordered activation codes, and per group the activation's sums of 32 and its scales (PrepareDecode).
        var x = (sbyte*)job.Prepared;
        var factors = (float*)(x + job.In);
        var subSums = (short*)(factors + (groups * 16));

        // The header read in place of a block past the end of a row: d = dmin = 0.
        var none = stackalloc byte[16];
        Vector128<byte>.Zero.Store(none);
        var low = Vector512.Create((byte)0x0F);
        // The unpack's constants (see Q4_KGroupScalesAndMins), made once: written inside the loop, the JIT rebuilt each
        // 512-bit vector from its 128-bit constant (a load, a stack reload and two inserts) and spilled it, on every group.
        var lowPick = Vector512.Create(Vector128.Create((byte)4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15));
        var topPick = Vector512.Create(Vector128.Create((byte)0x80, 0x80, 0x80, 0x80, 4, 5, 6, 7, 0x80, 0x80, 0x80, 0x80, 8, 9, 10, 11));
        var minNibbles = Vector512.Create(Vector128.Create(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, (byte)0xFF));
        var bitMasks = Vector512.Create(Vector128.Create(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, (byte)15));
        var pickMinBytes = Vector512.Create((ushort)4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        // The group's factors, stored so that each block's FMA takes its factor as a broadcast memory operand (no VPERMPS).
        var factorSlots = stackalloc float[32];
        var groupFactors = (float*)(((nint)factorSlots + 63) & ~(nint)63);
        // int32 lane 4k ← int16 lane 8k (d of block k), lane 4k + 1 ← 8k + 1 (dmin); the high halves are ignored.
        var pickFactors = Vector512.Create((ushort)0, 0, 1, 0, 0, 0, 0, 0, 8, 0, 9, 0, 8, 0, 8, 0, 16, 0, 17, 0, 16, 0, 16, 0, 24, 0, 25, 0, 24, 0, 24, 0);
        // dmin·d_x of block k in lanes 4k .. 4k + 3, against its four pair sums of mins × sums of 32.
        var pickMins = Vector512.Create(1, 1, 1, 1, 5, 5, 5, 5, 9, 9, 9, 9, 13, 13, 13, 13);
        // Scale pickers for VPSHUFB on a block's unpacked bytes (s_0..s_7 at 0..7); 0x80 zeroes the high byte of each
        // int16: lanes 0–15 sub-block 0 and 16–31 sub-block 2, then (1, 3), (4, 6), (5, 7).
        var pick02 = Vector512.Create(Vector256.Create((ushort)0x8000).AsByte(), Vector256.Create((ushort)0x8002).AsByte());
        var pick13 = pick02 + Vector512.Create((ushort)1).AsByte();
        var pick46 = pick02 + Vector512.Create((ushort)4).AsByte();
        var pick57 = pick02 + Vector512.Create((ushort)5).AsByte();
        for (var o = start; o < end; o++)
        {
            var w = (byte*)job.W + ((long)o * job.RowBytes);
            var xb = x;
            var acc = Vector512<float>.Zero;
            var minAcc = Vector512<float>.Zero;
            for (var g = 0; g < groups; g++, w += 4 * 144, xb += 4 * 256)
            {
                // The group's 576 bytes, one prefetch per line, 6 or 10 KiB ahead (see DecodeQ4_KFastPrefetchBytes).
                Sse.Prefetch0(w + TDistance.Bytes);
                Sse.Prefetch0(w + TDistance.Bytes + 64);
                Sse.Prefetch0(w + TDistance.Bytes + 128);
                Sse.Prefetch0(w + TDistance.Bytes + 192);
                Sse.Prefetch0(w + TDistance.Bytes + 256);
                Sse.Prefetch0(w + TDistance.Bytes + 320);
                Sse.Prefetch0(w + TDistance.Bytes + 384);
                Sse.Prefetch0(w + TDistance.Bytes + 448);
                Sse.Prefetch0(w + TDistance.Bytes + 512);
                var count = Math.Min(4, blocks - (4 * g));
                var headers = Vector512.Create(
                    Vector256.Create(Vector128.Load(w), Vector128.Load(count > 1 ? w + 144 : none)),
                    Vector256.Create(Vector128.Load(count > 2 ? w + 288 : none), Vector128.Load(count > 3 ? w + 432 : none)));
                var f = HalvesToSingle(Avx512BW.PermuteVar32x16(headers.AsUInt16(), pickFactors).AsUInt32()) * Vector512.Load(factors + (16 * g));
                f.Store(groupFactors);
                var (scales, mins) = Q4_KGroupScalesAndMins(headers, lowPick, topPick, minNibbles, bitMasks, pickMinBytes);
                var minSums = Avx512BW.MultiplyAddAdjacent(mins, Vector512.Load(subSums + (32 * g)));
                minAcc = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(minSums), Avx512F.PermuteVar16x32(f, pickMins), minAcc);
                var lanes = scales.AsUInt64();
                acc = Q4_KBlock(acc, w, xb, Avx512F.Shuffle4x128(lanes, lanes, 0x00).AsByte(), groupFactors, low, pick02, pick13, pick46, pick57);
                if (count > 1)
                {
                    acc = Q4_KBlock(acc, w + 144, xb + 256, Avx512F.Shuffle4x128(lanes, lanes, 0x55).AsByte(), groupFactors + 4, low, pick02, pick13, pick46, pick57);
                }

                if (count > 2)
                {
                    acc = Q4_KBlock(acc, w + 288, xb + 512, Avx512F.Shuffle4x128(lanes, lanes, 0xAA).AsByte(), groupFactors + 8, low, pick02, pick13, pick46, pick57);
                }

                if (count > 3)
                {
                    acc = Q4_KBlock(acc, w + 432, xb + 768, Avx512F.Shuffle4x128(lanes, lanes, 0xFF).AsByte(), groupFactors + 12, low, pick02, pick13, pick46, pick57);
                }
            }

            Store(job, o, 0, Vector512.Sum(acc + minAcc));
        }
    }

    /// <summary>
    /// One Q4_K super-block at <paramref name="w"/> against the reordered activation codes <paramref name="x"/>:
    /// <paramref name="acc"/> + (Σ_j s_j·Σ q·x) · (d·d_x, at <paramref name="factor"/>), with
    /// <paramref name="scales"/> the block's unpacked scales (bytes 0–7) in every 128-bit lane.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Q4_KBlock(
        Vector512<float> acc, byte* w, sbyte* x, Vector512<byte> scales, float* factor,
        Vector512<byte> low, Vector512<byte> pick02, Vector512<byte> pick13, Vector512<byte> pick46, Vector512<byte> pick57)
    {
        var raw0 = Vector512.Load(w + Q4_K.CodesOffset);
        var raw1 = Vector512.Load(w + Q4_K.CodesOffset + 64);
        var s02 = Avx512BW.MultiplyAddAdjacent(raw0 & low, Vector512.Load(x));
        var s13 = Avx512BW.MultiplyAddAdjacent(Vector512.ShiftRightLogical(raw0.AsUInt16(), 4).AsByte() & low, Vector512.Load(x + 64));
        var s46 = Avx512BW.MultiplyAddAdjacent(raw1 & low, Vector512.Load(x + 128));
        var s57 = Avx512BW.MultiplyAddAdjacent(Vector512.ShiftRightLogical(raw1.AsUInt16(), 4).AsByte() & low, Vector512.Load(x + 192));
        var isum = (Avx512BW.MultiplyAddAdjacent(s02, Avx512BW.Shuffle(scales, pick02).AsInt16()) + Avx512BW.MultiplyAddAdjacent(s13, Avx512BW.Shuffle(scales, pick13).AsInt16()))
            + (Avx512BW.MultiplyAddAdjacent(s46, Avx512BW.Shuffle(scales, pick46).AsInt16()) + Avx512BW.MultiplyAddAdjacent(s57, Avx512BW.Shuffle(scales, pick57).AsInt16()));
        return Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(isum), Vector512.Create(*factor), acc);
    }

    /// <summary>
    /// Four Q4_K blocks' scales and mins from their headers (block k's 16 bytes in 128-bit lane k: d, dmin, then the 12
    /// packed bytes): the scales as bytes s_0..s_7 at 0–7 of lane k (bytes 8–15 the mins), and the mins as int16, block
    /// k's m_0..m_7 in lanes 8k .. 8k + 7. ggml's get_scale_min_k4 for all 64 values at once: one shuffle puts each
    /// value's low-bits byte in place (s_0..s_3, the low nibbles for s_4..s_7, m_0..m_3, the high nibbles for m_4..m_7),
    /// another the bytes whose top two bits are the high bits of s_4..s_7 and m_4..m_7. The constant vectors come from
    /// the caller, made once per call (see <see cref="DecodeQ4_K{TDistance}"/>): <paramref name="lowPick"/> and
    /// <paramref name="topPick"/> the two shuffles, <paramref name="minNibbles"/> the bytes that take high nibbles,
    /// <paramref name="bitMasks"/> the 6- or 4-bit masks, <paramref name="pickMinBytes"/> the mins' int16 lanes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<byte> Scales, Vector512<short> Mins) Q4_KGroupScalesAndMins(
        Vector512<byte> headers, Vector512<byte> lowPick, Vector512<byte> topPick, Vector512<byte> minNibbles, Vector512<byte> bitMasks, Vector512<ushort> pickMinBytes)
    {
        var lowBits = Avx512BW.Shuffle(headers, lowPick);
        var topBits = Avx512BW.Shuffle(headers, topPick);
        // m_4..m_7 take the high nibbles (bytes 12–15); then the 6- or 4-bit masks, and the top two bits at bits 4–5.
        var nibbles = Vector512.ConditionalSelect(minNibbles, Vector512.ShiftRightLogical(lowBits.AsUInt16(), 4).AsByte(), lowBits);
        var masked = nibbles & bitMasks;
        var unpacked = masked | (Vector512.ShiftRightLogical(topBits.AsUInt16(), 2).AsByte() & Vector512.Create((byte)0x30));
        // The mins' bytes (8–15 of each lane, int16 lanes 4–7) gathered into the low 32 bytes, then widened.
        var minBytes = Avx512BW.PermuteVar32x16(unpacked.AsUInt16(), pickMinBytes);
        return (unpacked, Avx512BW.ConvertToVector512Int16(minBytes.AsByte().GetLower()).AsInt16());
    }

    /// <summary>
    /// Q6_K rows [start, end) at batch 1 with AVX-512BW, a super-block in four steps of 64 values, each step one quarter
    /// k of both halves: the low 32 bytes of ql of each half (quarters 0 and 2) and the high 32 (quarters 1 and 3) are
    /// paired across the halves by one VSHUFI64X2 each, so that all 64 bytes of qh (both halves) give every step its
    /// two high bits with one fixed shift and a mask. The activation codes are put into that order once per product
    /// call (<see cref="PrepareDecode"/>); VPMADDUBSW multiplies the unsigned codes, VPMADDWD applies the four groups'
    /// scales (picked by VPERMW). The −32 offset comes from the 16-value sums as in <see cref="FinishQ6_K"/>. Rows over
    /// <see cref="DecodeMaxColumns"/> values are left to the AVX2 kernel. <typeparamref name="TDistance"/> says how far
    /// ahead it prefetches (<see cref="DecodeQ6_KFastPrefetchBytes"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DecodeQ6_K<TDistance>(in Job job, int start, int end)
        where TDistance : struct, IPrefetchDistance
    {
        var blocks = job.In / 256;
        var x = (sbyte*)job.Prepared; // the reordered activation codes (PrepareDecode)
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
                    Sse.Prefetch0(w + TDistance.Bytes);
                    Sse.Prefetch0(w + TDistance.Bytes + 64);
                    Sse.Prefetch0(w + TDistance.Bytes + 128);
                    Sse.Prefetch0(w + TDistance.Bytes + 192);
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

    /// <summary>Q4_K's activation order for <see cref="DecodeQ4_K{TDistance}"/>: the 32-value chunks of a super-block as sub-blocks 0, 2, 1, 3, 4, 6, 5, 7.</summary>
    private static ReadOnlySpan<byte> Q4_KChunkOrder => [0, 2, 1, 3, 4, 6, 5, 7];

    /// <summary>Q6_K's activation order for <see cref="DecodeQ6_K{TDistance}"/>: quarter k of the first half, then of the second, for k = 0..3.</summary>
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
    /// one go and multiplied by the activation scales (<see cref="HalvesToSingle(Vector256{int})"/>); each block's integer dot product
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

    /// <summary>
    /// The activation side of <see cref="DecodeQ8_0Wide{TDistance}"/>, per group of eight Q8_0 blocks 128 bytes in the order of the
    /// kernel's sums (blocks 0–3 codes 0–15, blocks 0–3 codes 16–31, blocks 4–7 codes 0–15, blocks 4–7 codes 16–31):
    /// 16 int32 corrections, −128 times the sum of those 16 activation codes (the term that VPDPBUSD adds when it reads
    /// the weight codes w + 128, w XOR 0x80, as unsigned bytes), then 16 factors 2^112·d_x (see <see cref="ScaledHalves"/>).
    /// </summary>
    private static void PrepareQ8_0(sbyte* codes, float* scales, byte* destination, int blocks)
    {
        var ones = Vector256.Create((byte)1);
        var minus128 = Vector256.Create((short)-128);
        var two112 = Vector128.Create(0x77800000u).AsSingle();
        var sixteen = stackalloc int[DecodeGroupBlocks * 2];
        for (var g = 0; g < blocks / DecodeGroupBlocks; g++, codes += 32 * DecodeGroupBlocks, scales += DecodeGroupBlocks, destination += 128)
        {
            for (var b = 0; b < DecodeGroupBlocks; b++)
            {
                // Pairs of codes (|x| ≤ 128: no saturation), then four codes times −128, exact in int32; then sums of 16.
                var fours = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(ones, Vector256.Load(codes + (32 * b))), minus128);
                sixteen[2 * b] = Vector128.Sum(fours.GetLower());
                sixteen[(2 * b) + 1] = Vector128.Sum(fours.GetUpper());
            }

            var corrections = (int*)destination;
            for (var k = 0; k < 4; k++)
            {
                // 128-bit lane k: blocks 0–3 (k < 2) or 4–7, codes 0–15 (k even) or 16–31.
                for (var i = 0; i < 4; i++)
                {
                    corrections[(4 * k) + i] = sixteen[(2 * ((4 * (k / 2)) + i)) + (k % 2)];
                }
            }

            var low = Vector128.Load(scales) * two112;
            var high = Vector128.Load(scales + 4) * two112;
            Vector512.Create(Vector256.Create(low, low), Vector256.Create(high, high)).Store((float*)(destination + 64));
        }
    }

    /// <summary>
    /// Q8_0 rows [start, end) at batch 1 with AVX-VNNI and AVX-512, in groups of eight blocks (272 bytes), against the
    /// token's codes and <see cref="PrepareQ8_0"/>'s per-group corrections and factors (<see cref="Job.Prepared"/>). Per
    /// block one VPDPBUSD of the weight codes XOR 0x80 (w + 128, unsigned) and the activation codes, without VPABSB and
    /// VPSIGNB; three rounds of VPHADDD reduce the group's eight blocks to one vector of sums of 16 codes (blocks 0–3
    /// twice, then 4–7 twice), to which one add of the prepared corrections gives the exact integer sums Σ w·x. One
    /// convert and one FMA by the group's scales finish it. The eight weight scales are picked out of the group's bytes by
    /// two VPERMT2W (blocks 4k..4k + 3 sit at the same offsets of the 128 bytes from 136k), in the order of the sums, and
    /// converted 16 lanes at once (<see cref="ScaledHalves"/>). Blocks past the last whole group are done one at a time.
    /// Against <see cref="DecodeQ8_0"/> (AMD EPYC Zen 5 class, the ~1B Llama's shapes hot in L3, alternated in one
    /// process): 0.64–0.70 of its time on one thread, 0.68–0.70 on two (2048 × 2048 and the MLP shapes); the ~1B Llama
    /// Q8_0 decode, token by token on 2 threads, 0.912 of the step time at an ~80 GB/s read bandwidth (6 rounds,
    /// 0.902–0.916), level at ~52 and 0.981 at ~48, where the old kernel already streamed near the bound. Tried and not
    /// kept, level within ±2 %: two rows per pass (sharing the scale conversion), an unpack-and-add transpose in place of
    /// VPHADDD, the scales one group ahead. The scale path costs most: with constant scales (wrong results) the loop ran
    /// 0.76–0.82 of the time, so its loads and conversion, not the VPDPBUSDs, are what is left.
    /// <typeparamref name="TDistance"/> says how far ahead it prefetches (<see cref="DecodeQ8_0FastPrefetchBytes"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DecodeQ8_0Wide<TDistance>(in Job job, int start, int end)
        where TDistance : struct, IPrefetchDistance
    {
        var blocks = job.In / 32;
        var groups = blocks / DecodeGroupBlocks;
        var x0 = (sbyte*)job.Codes;
        var prepared0 = (byte*)job.Prepared;
        var flip = Vector256.Create((byte)0x80);
        // Scale words of blocks 0..3 of a 128-byte window (words 0, 17, 34, 51) into the low words of int32 lanes 0..3
        // and again 4..7.
        var pickScales = Vector512.Create((short)0, 0, 17, 0, 34, 0, 51, 0, 0, 0, 17, 0, 34, 0, 51, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        // Pinned once for the tail blocks: no static field access inside the loops.
        fixed (float* halves = HalfTable)
        {
            for (var o = start; o < end; o++)
            {
                var w = (byte*)job.W + ((long)o * job.RowBytes);
                var x = x0;
                var prepared = prepared0;
                Vector512<float> a0 = default, a1 = default;
                for (var g = 0; g < groups; g++, w += 34 * DecodeGroupBlocks, x += 32 * DecodeGroupBlocks, prepared += 128)
                {
                    Sse.Prefetch0(w + TDistance.Bytes);
                    Sse.Prefetch0(w + TDistance.Bytes + 64);
                    Sse.Prefetch0(w + TDistance.Bytes + 128);
                    Sse.Prefetch0(w + TDistance.Bytes + 192);
                    Sse.Prefetch0(w + TDistance.Bytes + 256);
                    var first = Avx512BW.PermuteVar32x16x2(Vector512.Load((short*)w), pickScales, Vector512.Load((short*)(w + 64)));
                    var second = Avx512BW.PermuteVar32x16x2(Vector512.Load((short*)(w + 136)), pickScales, Vector512.Load((short*)(w + 200)));
                    var d = ScaledHalves(Avx512F.InsertVector256(first.AsUInt32(), second.AsUInt32().GetLower(), 1), Vector512.Load((float*)(prepared + 64)));
                    var h01 = Avx2.HorizontalAdd(FlippedDot(w, x, flip), FlippedDot(w + 34, x + 32, flip));
                    var h23 = Avx2.HorizontalAdd(FlippedDot(w + 68, x + 64, flip), FlippedDot(w + 102, x + 96, flip));
                    var h45 = Avx2.HorizontalAdd(FlippedDot(w + 136, x + 128, flip), FlippedDot(w + 170, x + 160, flip));
                    var h67 = Avx2.HorizontalAdd(FlippedDot(w + 204, x + 192, flip), FlippedDot(w + 238, x + 224, flip));
                    var sums = Avx512F.InsertVector256(Avx2.HorizontalAdd(h01, h23).ToVector512Unsafe(), Avx2.HorizontalAdd(h45, h67), 1) + Vector512.Load((int*)prepared);
                    // Two accumulators, alternate groups: the FMA latency does not bind.
                    if ((g & 1) == 0)
                    {
                        a0 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(sums), d, a0);
                    }
                    else
                    {
                        a1 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(sums), d, a1);
                    }
                }

                // Blocks past the last whole group, one at a time.
                var tail = Vector256<float>.Zero;
                var xd = (float*)job.Scales + (groups * DecodeGroupBlocks);
                for (var b = groups * DecodeGroupBlocks; b < blocks; b++, w += 34, x += 32, xd++)
                {
                    tail = Vector256.FusedMultiplyAdd(BlockDotQ8_0(w, x, 0), Vector256.Create(halves[*(ushort*)w] * *xd), tail);
                }

                var sum = a0 + a1;
                Store(job, o, 0, Vector256.Sum(sum.GetLower() + sum.GetUpper() + tail));
            }
        }
    }

    /// <summary>
    /// The F16 value in the low 16 bits of each 32-bit lane times the lane of <paramref name="factors"/>, 2^112·d_x
    /// (<see cref="PrepareQ8_0"/>), rounded once as F16 value × d_x is: the half's exponent and mantissa in F32 position
    /// (exponent 31 mapped to F32's inf/NaN) with its sign, times 2^112·d_x, which is exact and finite because d_x is an
    /// F16 value (at most 65504). Seven operations where <see cref="HalvesToSingle(Vector512{uint})"/> and a multiply are nine.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> ScaledHalves(Vector512<uint> bits, Vector512<float> factors)
    {
        var magnitude = Vector512.ShiftLeft(bits & Vector512.Create(0x7FFFu), 13);
        var special = Vector512.GreaterThanOrEqual(magnitude, Vector512.Create(0x0F800000u));
        magnitude = Vector512.ConditionalSelect(special, magnitude | Vector512.Create(0x7F800000u), magnitude);
        // magnitude | (bits << 16 & 0x80000000): the sign put back.
        var signed = Avx512F.TernaryLogic(magnitude, Vector512.ShiftLeft(bits, 16), Vector512.Create(0x80000000u), 0xF8);
        return signed.AsSingle() * factors;
    }

    /// <summary>The block at <paramref name="w"/> against the activation codes <paramref name="x"/>: Σ (w + 128)·x per four codes, as eight int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> FlippedDot(byte* w, sbyte* x, Vector256<byte> flip) =>
        AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Vector256.Load(w + 2) ^ flip, Vector256.Load(x));

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

    /// <summary>The 512-bit form of <see cref="HalvesToSingle(Vector256{int})"/>: each 32-bit lane's low 16 bits, an F16 value, as F32, exactly.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> HalvesToSingle(Vector512<uint> bits)
    {
        var magnitude = Vector512.ShiftLeft(bits & Vector512.Create(0x7FFFu), 13);
        var value = magnitude.AsSingle() * Vector512.Create(0x77800000u).AsSingle();
        var special = Vector512.GreaterThanOrEqual(magnitude, Vector512.Create(0x0F800000u));
        value = Vector512.ConditionalSelect(special.AsSingle(), (magnitude | Vector512.Create(0x7F800000u)).AsSingle(), value);
        return (value.AsUInt32() | Vector512.ShiftLeft(bits & Vector512.Create(0x8000u), 16)).AsSingle();
    }
}
