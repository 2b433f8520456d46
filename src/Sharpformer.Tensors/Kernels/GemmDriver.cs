using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Kernels;

/// <summary>Which micro-kernel a GEMM runs: the widest vectors this machine accelerates, or the scalar reference.</summary>
internal enum GemmIsa
{
    /// <summary><see cref="Gemm.Reference"/>: no SIMD available.</summary>
    Scalar,

    /// <summary><see cref="Kernel128"/>, 6×8 tiles.</summary>
    Vector128,

    /// <summary><see cref="Kernel256"/>, 6×16 tiles (needs FMA).</summary>
    Vector256,

    /// <summary><see cref="Kernel512"/>, 12×32 tiles.</summary>
    Vector512,
}

/// <summary>
/// The blocked SGEMM (BLIS loop structure): op(A) is packed into MR-row panels and op(B) into NR-column panels, k cut
/// into blocks of at most <see cref="KcMax"/> so one B panel (KC·NR floats, 32 KiB for 12×32) stays in the 48 KiB L1d
/// while the A block it meets (≤ 192 rows · KC, 192 KiB; ≤ 288 rows when that spares a short second row tile) stays in
/// L2 (1 MiB on Zen 5, 2 MiB on Emerald Rapids). The tile loop prefetches the next C tile and the next B panel's source. C is cut into tiles that threads claim
/// dynamically, each thread from its own stretch first, with one fork-join per chunk for the tiles; every tile runs
/// the k blocks in order, so beta and the bias apply on the first block only.
/// </summary>
internal static unsafe class GemmDriver
{
    /// <summary>Largest k block; k is split into equal blocks (384 → 2 × 192) so the last is not a sliver.</summary>
    public const int KcMax = 256;

    /// <summary>Products below this many FLOPs run on the caller alone: a fork-join costs a few microseconds.</summary>
    public const double ParallelFlops = 3e6;

    /// <summary>Tile height in A panels for one thread: 16 · 12 rows · KC floats = 192 KiB of packed A, resident in L2.</summary>
    private const int McPanels = 16;

    /// <summary>
    /// Up to this many A panels (288 rows of 12, 270 KiB of packed A at KC 256, a quarter of L2) stay one row tile rather
    /// than a 16-panel tile plus a short one: B is then packed panel by panel into L1 right before use, and read once.
    /// </summary>
    private const int McPanelsOneTile = 24;

    /// <summary>Tile width in B panels for one thread; threads shrink tiles further until each has ≥ 6 to claim.</summary>
    private const int NcPanels = 8;

    /// <summary>A tile's C from this many floats (512 KiB, half of L2) on is prefetched on every k block, not only the first.</summary>
    private const long PrefetchCFloats = 1 << 17;

    /// <summary>Largest packed A (512 KiB, half an L2) that the threads of a one-row-tile product pack together and share.</summary>
    private const int SharedAFloats = 1 << 17;

    /// <summary>
    /// From this many A panels in a row tile on (192 rows), a Bᵀ panel packed inside the tiles has its source asked for
    /// in L2 while the previous panel meets the A panels: enough multiply time to hide a weight row read from memory.
    /// </summary>
    private const int PrefetchBtPanels = 16;

    /// <summary>
    /// With one row tile on several threads, column tiles narrowed below <see cref="NcPanels"/> panels and B stored
    /// [k, n], a participant multiplies up to this many B panels of its own column tiles together, k block by k block
    /// (C of the run: 264 rows × 512 columns, 540 KiB, beside a 270 KiB A block in L2).
    /// </summary>
    private const int RunPanels = 2 * NcPanels;

    /// <summary>
    /// A run's packed A from this many floats on (1 MiB, an L2) is packed k block by k block as the run meets it rather
    /// than all up front (see OwnedTiles). A smaller A stays in L2 either way, and when it was just written (GPT-2's
    /// c_proj input gradient, 256 × 768) packing it by blocks measured 3-4% slower inside the training step.
    /// </summary>
    private const int BlockAFloats = 1 << 18;

    /// <summary>
    /// A C asked to be streamed (<see cref="Run"/>'s streamC) is written with non-temporal stores only from this many
    /// floats on (1 MiB, an L2): a smaller C costs little to read in, and what is left of it in the caches may yet serve.
    /// </summary>
    private const long StreamCFloats = 1 << 18;

    /// <summary>How far ahead along a row (one k block, 1 KiB) the transposing A pack asks for lines (see PackAPanel).</summary>
    private const int PackAheadFloats = KcMax;

    /// <summary>
    /// Largest packed chunk of A or B in floats (16 MiB); bigger operands are packed and multiplied chunk by chunk (except
    /// a narrow B met by one row tile, which is never packed whole: see Execute).
    /// </summary>
    private const int ChunkFloats = 1 << 22;

    /// <summary>The kernel this process uses: the widest accelerated vectors (with FMA on x86), else the scalar reference.</summary>
    public static GemmIsa BestIsa { get; } = Detect();

    [ThreadStatic]
    private static GemmJob? _cachedJob;

    private static GemmIsa Detect()
    {
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported) return GemmIsa.Vector512;
        if (Vector256.IsHardwareAccelerated && Fma.IsSupported) return GemmIsa.Vector256;
        if (Vector128.IsHardwareAccelerated) return GemmIsa.Vector128;
        return GemmIsa.Scalar;
    }

    /// <summary>Whether <paramref name="isa"/> can run here (tests force each supported tier).</summary>
    public static bool IsSupported(GemmIsa isa) => isa switch
    {
        GemmIsa.Scalar => true,
        GemmIsa.Vector128 => Vector128.IsHardwareAccelerated,
        GemmIsa.Vector256 => Vector256.IsHardwareAccelerated && Fma.IsSupported,
        GemmIsa.Vector512 => Vector512.IsHardwareAccelerated && Avx512F.IsSupported,
        _ => false,
    };

    /// <summary>Tile rows (A panel width) of <paramref name="isa"/>'s micro-kernel.</summary>
    public static int Mr(GemmIsa isa) => isa switch
    {
        GemmIsa.Vector512 => Kernel512.MR,
        GemmIsa.Vector256 => Kernel256.MR,
        _ => Kernel128.MR,
    };

    /// <summary>Tile columns (B panel width) of <paramref name="isa"/>'s micro-kernel.</summary>
    public static int Nr(GemmIsa isa) => isa switch
    {
        GemmIsa.Vector512 => Kernel512.NR,
        GemmIsa.Vector256 => Kernel256.NR,
        _ => Kernel128.NR,
    };

    /// <summary>The k block size for a given k: the blocks are equal up to rounding, none larger than <see cref="KcMax"/>.</summary>
    public static int KBlock(int k)
    {
        int blocks = (k + KcMax - 1) / KcMax;
        return (k + blocks - 1) / blocks;
    }

    /// <summary>
    /// C = alpha · op(A) · op(B) + beta · C (+ bias) on validated pointers with a SIMD <paramref name="isa"/>.
    /// <paramref name="packedB"/>, when given, replaces <paramref name="b"/> (its layout matches <paramref name="isa"/>).
    /// Uses up to <paramref name="maxThreads"/> threads when the product is large enough to pay for them.
    /// <paramref name="streamC"/> says that nothing reads C soon (a weight gradient the optimizer reads after the whole
    /// backward): the whole tiles of C are then written with non-temporal stores when <see cref="CanStreamC"/> allows.
    /// </summary>
    public static void Run(
        GemmIsa isa, int maxThreads, bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, float* bias, float* packedB, bool streamC = false)
    {
        Debug.Assert(isa != GemmIsa.Scalar, "the scalar tier runs Gemm.Reference");
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            ScaleOnly(m, n, beta, c, ldc, bias);
            return;
        }

        int threads = 2.0 * m * n * k >= ParallelFlops ? Math.Max(1, maxThreads) : 1;
        bool thin = packedB == null && transB && !transA && m <= GemmThinA.MaxRows && isa >= GemmIsa.Vector256;
        int sliceLength = packedB == null && !thin ? GemmSplitK.SliceLength(m, n, k) : 0;
        if (sliceLength > 0)
        {
            // A long k with a small C: slices of k in parallel, partial sums added in a fixed order.
            GemmSplitK.Run(isa, threads, sliceLength, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias);
            return;
        }

        GemmJob job = _cachedJob ?? new GemmJob();
        _cachedJob = null; // a nested call on this thread (e.g. from a batched body) gets its own job
        try
        {
            if (thin)
            {
                job.ExecuteThin(threads, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias);
            }
            else
            {
                job.Execute(isa, threads, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, packedB, NarrowB.None, streamC && CanStreamC(isa, m, n, k, beta, c, ldc));
            }
        }
        finally
        {
            _cachedJob = job;
        }
    }

    /// <summary>
    /// C = alpha · A · Bᵀ + beta · C (+ bias) on validated pointers, B stored [n, k] in F16, half codes or BF16
    /// (<paramref name="format"/>): <see cref="Run"/>'s packed path with B widened while its panels are packed
    /// (<see cref="GemmNarrowB"/>). Never the thin or split-k path, so the sums run as for a packed F32 B.
    /// </summary>
    public static void RunNarrowB(
        GemmIsa isa, int maxThreads, NarrowB format, int m, int n, int k, float alpha,
        float* a, int lda, ushort* b, int ldb, float beta, float* c, int ldc, float* bias)
    {
        Debug.Assert(isa != GemmIsa.Scalar && format != NarrowB.None, "the scalar tier runs GemmNarrowB.Reference");
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            ScaleOnly(m, n, beta, c, ldc, bias);
            return;
        }

        int threads = 2.0 * m * n * k >= ParallelFlops ? Math.Max(1, maxThreads) : 1;
        GemmJob job = _cachedJob ?? new GemmJob();
        _cachedJob = null;
        try
        {
            job.Execute(isa, threads, false, true, m, n, k, alpha, a, lda, (float*)b, ldb, beta, c, ldc, bias, null, format);
        }
        finally
        {
            _cachedJob = job;
        }
    }

    /// <summary>
    /// Whether a C asked to be streamed is: C is only written (beta 0) and each element only once (k in one block), the
    /// kernel's rows are whole 64-byte lines (Vector512 or Vector256) that start on a line (C 64-byte aligned, ldc a
    /// multiple of 16 floats; tiles start at multiples of NR columns), and C is at least <see cref="StreamCFloats"/>.
    /// </summary>
    internal static bool CanStreamC(GemmIsa isa, int m, int n, int k, float beta, float* c, int ldc) =>
        isa >= GemmIsa.Vector256 && Sse.IsSupported && beta == 0f && k <= KcMax && ((nint)c & 63) == 0 && ldc % 16 == 0
        && (long)m * n >= StreamCFloats;

    /// <summary>k = 0: the product is empty, so C = beta · C + bias (beta 0 never reads C).</summary>
    private static void ScaleOnly(int m, int n, float beta, float* c, int ldc, float* bias)
    {
        for (int i = 0; i < m; i++)
        {
            float* row = c + ((long)i * ldc);
            for (int j = 0; j < n; j++)
            {
                float v = beta == 0f ? 0f : beta * row[j];
                row[j] = bias == null ? v : v + bias[j];
            }
        }
    }

    /// <summary>
    /// Packs rows [i0, i0 + rows) of op(A) into one MR-wide panel per k block: panel of block p0 at
    /// dst + p0 · mPad, element (i, p) at [p · MR + i]; rows past the end are zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackAPanel(bool transA, float* a, int lda, int i0, int rows, int k, int kc, int mr, int mPad, int panel, float* dst)
    {
        // A stored [m, k] whose panel spans several k blocks of rows that lie apart (more than a page): each row is walked
        // a k block at a time by the transposes, 12 short streams that the hardware prefetcher barely starts on, so the
        // transposes ask for the rows' next k block in L1 as they go (a language-model head's input gradient, split-k
        // slices of 256 × 2528 out of dLogits [256, 50257]: its A packs took 3.1 instead of 3.8 ms of thread time per call).
        bool aheadRows = !transA && k > kc && (long)lda * sizeof(float) > 4096;
        for (int p0 = 0; p0 < k; p0 += kc)
        {
            int kcb = Math.Min(kc, k - p0);
            float* d = dst + ((long)p0 * mPad) + ((long)panel * kcb * mr);
            if (!transA)
            {
                // A[i, p] at a[i · lda + p]: a transpose. Rows go 8 (then 4) at a time through in-register 8×8
                // transposes; the scalar copy costs about a cycle per float, 8% of the multiply at 128×1536×384.
                int r = 0, pv = 0;
                if (Avx.IsSupported)
                {
                    pv = kcb & ~7;
                    for (; r + 8 <= rows; r += 8)
                    {
                        PackARowsTransposed8(a + ((long)(i0 + r) * lda) + p0, lda, 8, pv, mr, d + r, aheadRows);
                    }

                    if (r + 4 <= rows)
                    {
                        PackARowsTransposed8(a + ((long)(i0 + r) * lda) + p0, lda, 4, pv, mr, d + r, aheadRows);
                        r += 4;
                    }
                }

                for (int rr = 0; rr < rows; rr++)
                {
                    // What the transposes left: the k tail of every row, and whole rows past the last block of 4.
                    float* src = a + ((long)(i0 + rr) * lda) + p0;
                    for (int p = rr < r ? pv : 0; p < kcb; p++) d[(p * mr) + rr] = src[p];
                }
            }
            else
            {
                // Aᵀ stored [k, m]: the panel's rows at one p are contiguous already, a copy of MR floats per p (a
                // weight gradient's dYᵀ; copied one float at a time, its packs left that GEMM ~6% slower than on the
                // same A stored [m, k]: GPT-2's four weight-gradient shapes at k = 256, AMD Zen 4, 2 threads).
                int p = 0;
                if (rows == mr && mr == 12 && Vector256.IsHardwareAccelerated)
                {
                    for (; p < kcb; p++)
                    {
                        float* src = a + ((long)(p0 + p) * lda) + i0;
                        Vector256.Store(Vector256.Load(src), d + (p * 12));
                        Vector128.Store(Vector128.Load(src + 8), d + (p * 12) + 8);
                    }
                }
                else if (rows == mr && mr == 6 && Vector128.IsHardwareAccelerated)
                {
                    for (; p < kcb; p++)
                    {
                        float* src = a + ((long)(p0 + p) * lda) + i0;
                        Vector128.Store(Vector128.Load(src), d + (p * 6));
                        *(long*)(d + (p * 6) + 4) = *(long*)(src + 4);
                    }
                }

                for (; p < kcb; p++)
                {
                    float* src = a + ((long)(p0 + p) * lda) + i0;
                    for (int r = 0; r < rows; r++) d[(p * mr) + r] = src[r];
                }
            }

            for (int r = rows; r < mr; r++)
            {
                for (int p = 0; p < kcb; p++) d[(p * mr) + r] = 0f;
            }
        }
    }

    /// <summary>
    /// Packs columns [j0, j0 + cols) of op(B) into one NR-wide panel per k block: panel of block p0 at
    /// dst + p0 · nPad, element (p, j) at [p · NR + j]; columns past the end are zero.
    /// </summary>
    public static void PackBPanel(bool transB, float* b, int ldb, int j0, int cols, int k, int kc, int nr, int nPad, int panel, float* dst)
    {
        for (int p0 = 0; p0 < k; p0 += kc)
        {
            int kcb = Math.Min(kc, k - p0);
            PackBBlock(transB, b, ldb, j0, cols, p0, kcb, nr, dst + ((long)p0 * nPad) + ((long)panel * kcb * nr));
        }
    }

    /// <summary>Packs op(B)[p0 .. p0 + kcb, j0 .. j0 + cols) into one panel d[p · NR + j], zero past cols.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackBBlock(bool transB, float* b, int ldb, int j0, int cols, int p0, int kcb, int nr, float* d)
    {
        if (!transB)
        {
            // B[p, j] at b[p · ldb + j]: each k step is a contiguous copy.
            for (int p = 0; p < kcb; p++)
            {
                float* src = b + ((long)(p0 + p) * ldb) + j0;
                float* row = d + (p * nr);
                int j = 0;
                if (Vector256.IsHardwareAccelerated)
                {
                    for (; j + 8 <= cols; j += 8) Vector256.Store(Vector256.Load(src + j), row + j);
                }

                for (; j < cols; j++) row[j] = src[j];
                for (; j < nr; j++) row[j] = 0f;
            }
        }
        else if (cols == nr && nr % 16 == 0 && Avx512F.IsSupported)
        {
            PackBTransposed16(b, ldb, j0, p0, kcb, nr, d);
        }
        else if (cols == nr && nr % 8 == 0 && Avx.IsSupported)
        {
            PackBTransposed8(b, ldb, j0, p0, kcb, nr, d);
        }
        else
        {
            // Bᵀ stored [n, k] (Linear weights): a transpose; read each weight row once.
            for (int jj = 0; jj < cols; jj++)
            {
                float* src = b + ((long)(j0 + jj) * ldb) + p0;
                for (int p = 0; p < kcb; p++) d[(p * nr) + jj] = src[p];
            }

            for (int jj = cols; jj < nr; jj++)
            {
                for (int p = 0; p < kcb; p++) d[(p * nr) + jj] = 0f;
            }
        }
    }

    /// <summary>
    /// Transposing pack of a full panel, 8×8 blocks at a time in registers: 8 weight rows × 8 k values in, 8 k steps × 8
    /// columns out. The scalar transpose costs about one cycle per float, as much as the multiply itself at m = 128.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackBTransposed8(float* b, int ldb, int j0, int p0, int kcb, int nr, float* d)
    {
        // Eight weight rows at a time, walked along k: eight sequential streams the hardware prefetcher can follow.
        int pEnd = kcb & ~7;
        for (int jj = 0; jj < nr; jj += 8)
        {
            for (int p = 0; p < pEnd; p += 8)
            {
                float* src = b + ((long)(j0 + jj) * ldb) + p0 + p;
                Vector256<float> r0 = Vector256.Load(src);
                Vector256<float> r1 = Vector256.Load(src + ldb);
                Vector256<float> r2 = Vector256.Load(src + (2L * ldb));
                Vector256<float> r3 = Vector256.Load(src + (3L * ldb));
                Vector256<float> r4 = Vector256.Load(src + (4L * ldb));
                Vector256<float> r5 = Vector256.Load(src + (5L * ldb));
                Vector256<float> r6 = Vector256.Load(src + (6L * ldb));
                Vector256<float> r7 = Vector256.Load(src + (7L * ldb));
                Transpose8x8(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
                float* dst = d + (p * nr) + jj;
                r0.Store(dst);
                r1.Store(dst + nr);
                r2.Store(dst + (2 * nr));
                r3.Store(dst + (3 * nr));
                r4.Store(dst + (4 * nr));
                r5.Store(dst + (5 * nr));
                r6.Store(dst + (6 * nr));
                r7.Store(dst + (7 * nr));
            }
        }

        for (int p = pEnd; p < kcb; p++)
        {
            for (int jj = 0; jj < nr; jj++) d[(p * nr) + jj] = b[((long)(j0 + jj) * ldb) + p0 + p];
        }
    }

    /// <summary>
    /// Transposing pack of a full panel with Vector512, 16×16 blocks at a time: 16 weight rows × 16 k values in (one
    /// 64-byte load per row, a whole line when the row is line-aligned), 16 k steps × 16 columns out (one 64-byte store
    /// each). Per 256 floats: 16 loads, 64 shuffles, 16 stores, against 32 loads, 96 shuffles and 32 stores for four
    /// 8×8 blocks. Where it pays is the cold weight: each source line is read by one load, and 16 rows are in flight at
    /// once. Zen 5, 32 weight rows × 256 k, 1 thread: 0.64-0.72× the 8×8 pack's time from memory. GPT-2's forwards
    /// (256 rows) run 0-2% faster, 128-row prefills 6-7% with a cold weight.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackBTransposed16(float* b, int ldb, int j0, int p0, int kcb, int nr, float* d)
    {
        int pEnd = kcb & ~15;
        for (int jj = 0; jj < nr; jj += 16)
        {
            float* rows = b + ((long)(j0 + jj) * ldb) + p0;
            for (int p = 0; p < pEnd; p += 16)
            {
                // Four rows at a time through two in-lane stages: u{g}{q}, lane L = rows 4g..4g+3 at k step 4L + q.
                float* s = rows + p;
                Transpose4Rows(s, ldb, out Vector512<float> u00, out Vector512<float> u01, out Vector512<float> u02, out Vector512<float> u03);
                Transpose4Rows(s + (4L * ldb), ldb, out Vector512<float> u10, out Vector512<float> u11, out Vector512<float> u12, out Vector512<float> u13);
                Transpose4Rows(s + (8L * ldb), ldb, out Vector512<float> u20, out Vector512<float> u21, out Vector512<float> u22, out Vector512<float> u23);
                Transpose4Rows(s + (12L * ldb), ldb, out Vector512<float> u30, out Vector512<float> u31, out Vector512<float> u32, out Vector512<float> u33);
                float* dst = d + (p * nr) + jj;
                StoreLanes4(u00, u10, u20, u30, dst, nr);
                StoreLanes4(u01, u11, u21, u31, dst + nr, nr);
                StoreLanes4(u02, u12, u22, u32, dst + (2 * nr), nr);
                StoreLanes4(u03, u13, u23, u33, dst + (3 * nr), nr);
            }
        }

        // A k tail of 1-15 steps: 8×8 blocks, then scalar.
        if (pEnd < kcb) PackBTransposed8(b, ldb, j0, p0 + pEnd, kcb - pEnd, nr, d + (pEnd * nr));
    }

    /// <summary>
    /// Four rows of 16 floats (<paramref name="s"/>, stride <paramref name="ld"/>) transposed within each 128-bit lane:
    /// lane L of u{q} holds the four rows' values at k step 4L + q.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose4Rows(float* s, int ld, out Vector512<float> u0, out Vector512<float> u1, out Vector512<float> u2, out Vector512<float> u3)
    {
        Vector512<float> r0 = Vector512.Load(s), r1 = Vector512.Load(s + ld);
        Vector512<float> r2 = Vector512.Load(s + (2L * ld)), r3 = Vector512.Load(s + (3L * ld));
        Vector512<float> t0 = Avx512F.UnpackLow(r0, r1), t1 = Avx512F.UnpackHigh(r0, r1);
        Vector512<float> t2 = Avx512F.UnpackLow(r2, r3), t3 = Avx512F.UnpackHigh(r2, r3);
        u0 = Avx512F.Shuffle(t0, t2, 0x44);
        u1 = Avx512F.Shuffle(t0, t2, 0xEE);
        u2 = Avx512F.Shuffle(t1, t3, 0x44);
        u3 = Avx512F.Shuffle(t1, t3, 0xEE);
    }

    /// <summary>
    /// 4×4 transpose of 128-bit lanes: lane L of <paramref name="u0"/> … <paramref name="u3"/> (rows 0-3, 4-7, 8-11, 12-15
    /// at k step 4L + q) becomes the 16 columns of k step 4L + q, stored at dst + 4L · <paramref name="nr"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreLanes4(Vector512<float> u0, Vector512<float> u1, Vector512<float> u2, Vector512<float> u3, float* dst, int nr)
    {
        Vector512<float> v0 = Avx512F.Shuffle4x128(u0, u1, 0x44), v1 = Avx512F.Shuffle4x128(u0, u1, 0xEE);
        Vector512<float> v2 = Avx512F.Shuffle4x128(u2, u3, 0x44), v3 = Avx512F.Shuffle4x128(u2, u3, 0xEE);
        Avx512F.Shuffle4x128(v0, v2, 0x88).Store(dst);
        Avx512F.Shuffle4x128(v0, v2, 0xDD).Store(dst + (4 * nr));
        Avx512F.Shuffle4x128(v1, v3, 0x88).Store(dst + (8 * nr));
        Avx512F.Shuffle4x128(v1, v3, 0xDD).Store(dst + (12 * nr));
    }

    /// <summary>
    /// Transposes <paramref name="rowCount"/> (4 or 8) rows of A, k steps [0, <paramref name="kEnd"/>) (a multiple of 8),
    /// into the panel: dst[p · mr + r] = src[r · lda + p]. Four rows use half of each transposed vector. With
    /// <paramref name="ahead"/>, each row's line <see cref="PackAheadFloats"/> further on is asked for in L1 (a prefetch
    /// never faults, so it may point past the rows).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackARowsTransposed8(float* src, int lda, int rowCount, int kEnd, int mr, float* dst, bool ahead)
    {
        Debug.Assert(rowCount is 4 or 8 && kEnd % 8 == 0, "whole 8×8 or 4×8 blocks only");
        ahead &= Sse.IsSupported;
        for (int p = 0; p < kEnd; p += 8)
        {
            float* s = src + p;
            if (ahead && (p & 15) == 0)
            {
                // One line per row every other step: the whole next k block of each row by the end of this one.
                for (int r = 0; r < rowCount; r++) Sse.Prefetch0(s + ((long)r * lda) + PackAheadFloats);
            }

            Vector256<float> r0 = Vector256.Load(s);
            Vector256<float> r1 = Vector256.Load(s + lda);
            Vector256<float> r2 = Vector256.Load(s + (2L * lda));
            Vector256<float> r3 = Vector256.Load(s + (3L * lda));
            Vector256<float> r4 = default, r5 = default, r6 = default, r7 = default;
            if (rowCount == 8)
            {
                r4 = Vector256.Load(s + (4L * lda));
                r5 = Vector256.Load(s + (5L * lda));
                r6 = Vector256.Load(s + (6L * lda));
                r7 = Vector256.Load(s + (7L * lda));
            }

            Transpose8x8(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
            float* d = dst + (p * mr);
            if (rowCount == 8)
            {
                r0.Store(d);
                r1.Store(d + mr);
                r2.Store(d + (2 * mr));
                r3.Store(d + (3 * mr));
                r4.Store(d + (4 * mr));
                r5.Store(d + (5 * mr));
                r6.Store(d + (6 * mr));
                r7.Store(d + (7 * mr));
            }
            else
            {
                r0.GetLower().Store(d);
                r1.GetLower().Store(d + mr);
                r2.GetLower().Store(d + (2 * mr));
                r3.GetLower().Store(d + (3 * mr));
                r4.GetLower().Store(d + (4 * mr));
                r5.GetLower().Store(d + (5 * mr));
                r6.GetLower().Store(d + (6 * mr));
                r7.GetLower().Store(d + (7 * mr));
            }
        }
    }

    /// <summary>In-register 8×8 transpose (AVX): interleave pairs, then quads, then swap 128-bit halves.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose8x8(
        ref Vector256<float> r0, ref Vector256<float> r1, ref Vector256<float> r2, ref Vector256<float> r3,
        ref Vector256<float> r4, ref Vector256<float> r5, ref Vector256<float> r6, ref Vector256<float> r7)
    {
        Debug.Assert(Avx.IsSupported, "callers check Avx.IsSupported");
        Vector256<float> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1);
        Vector256<float> t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);
        Vector256<float> t4 = Avx.UnpackLow(r4, r5), t5 = Avx.UnpackHigh(r4, r5);
        Vector256<float> t6 = Avx.UnpackLow(r6, r7), t7 = Avx.UnpackHigh(r6, r7);
        Vector256<float> s0 = Avx.Shuffle(t0, t2, 0x44), s1 = Avx.Shuffle(t0, t2, 0xEE);
        Vector256<float> s2 = Avx.Shuffle(t1, t3, 0x44), s3 = Avx.Shuffle(t1, t3, 0xEE);
        Vector256<float> s4 = Avx.Shuffle(t4, t6, 0x44), s5 = Avx.Shuffle(t4, t6, 0xEE);
        Vector256<float> s6 = Avx.Shuffle(t5, t7, 0x44), s7 = Avx.Shuffle(t5, t7, 0xEE);
        r0 = Avx.Permute2x128(s0, s4, 0x20);
        r1 = Avx.Permute2x128(s1, s5, 0x20);
        r2 = Avx.Permute2x128(s2, s6, 0x20);
        r3 = Avx.Permute2x128(s3, s7, 0x20);
        r4 = Avx.Permute2x128(s0, s4, 0x31);
        r5 = Avx.Permute2x128(s1, s5, 0x31);
        r6 = Avx.Permute2x128(s2, s6, 0x31);
        r7 = Avx.Permute2x128(s3, s7, 0x31);
    }

    /// <summary>Rents a float buffer with room to align its start to 64 bytes (a cache line, one zmm load).</summary>
    public static float[] RentAligned(long floats) => ArrayPool<float>.Shared.Rent(checked((int)floats + 16));

    public static float* Align64(float* p) => (float*)(((nint)p + 63) & ~(nint)63);

    /// <summary>
    /// One GEMM call's state, reused across calls on the same thread so the hot path allocates nothing; the
    /// parallel bodies are cached delegates over it.
    /// </summary>
    private sealed class GemmJob
    {
        private readonly Action<int, int> _packBody;
        private readonly Action<int, int> _thinBody;
        private readonly Action<int, int> _ownedBody;

        // Multithreaded chunks: one claim counter per tile (WholeTile once a participant claimed all of it, else how many
        // of its B panels were claimed one by one), and how many participants the tiles are dealt among.
        private int[] _claimed = [];
        private int _parts;

        private GemmIsa _isa;
        private bool _transA, _transB;
        private int _m, _n, _k, _lda, _ldb, _ldc;
        private float _alpha, _beta;
        private float* _a, _b, _c, _bias;
        private int _mr, _nr, _kc;

        // B's storage type: F32, or F16/BF16 (then _b points at ushorts and every B panel is widened as it is packed).
        private NarrowB _narrowB;

        // Whole tiles of C are written with non-temporal stores (CanStreamC held); each participant fences after its tiles.
        private bool _streamC;

        // The current chunk: rows [_row0, _row0 + _rows) of A packed at _ap (stride _mPad per k), columns
        // [_col0, _col0 + _cols) of C whose B panels start at _bp (stride _nPad per k; panel 0 = column _bpCol0).
        private float* _ap, _bp;
        private int _row0, _rows, _mPad, _col0, _cols, _nPad, _bpCol0;
        private bool _packB;

        // Whether _bp holds this column chunk's packed B already (packed once by the caller, or by an earlier row chunk).
        private bool _bSharedReady;

        // B is packed panel by panel inside the tiles (into L1, right before use) instead of all at once into a
        // buffer that outgrows L2: only when every column tile is visited by exactly one row tile (m ≤ one tile).
        private bool _packBInTile;

        // Multithreaded, B packed per call and met by several row tiles: every thread packs the column tiles it
        // meets into its own buffer instead of all threads sharing one.
        private bool _privateB;

        // Multithreaded with one row tile: A is packed up front by all threads into _ap and shared.
        private bool _sharedA;

        // Multithreaded with a private B and fewer rows than columns: tiles are dealt column tiles major, so each
        // participant packs its share of B's columns and all of A (every row tile once, kept side by side) rather
        // than all of B and its share of A: fewer floats packed and read back from L3 per thread. GPT-2 fc2's weight
        // gradient (768 × 3072, k = 256, 2 threads, Zen 5): 4-9% faster; a BERT-base FFN forward (1024 × 3072 × 768): 5-6%.
        private bool _colMajor;

        // Shared A is packed inside the tile loop's fork-join (no extra one): panels claimed through _aNext, counted
        // done in _aDone; a participant starts its tiles once all _aPanels are done.
        private int _aNext, _aDone;
        private int _bPanels, _aPanels;

        // Tiles of C: _mc × _nc, _mTiles × _nTiles of them in the current chunk.
        private int _mc, _nc, _mTiles, _nTiles;

        public GemmJob()
        {
            _packBody = PackRange;
            _thinBody = ThinRange;
            _ownedBody = OwnedRange;
        }

        /// <summary>The thin-A path (<see cref="GemmThinA"/>): columns of C split across threads, nothing packed.</summary>
        public void ExecuteThin(int threads, int m, int n, int k, float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, float* bias)
        {
            _m = m;
            _k = k;
            _alpha = alpha;
            _beta = beta;
            _a = a;
            _lda = lda;
            _b = b;
            _ldb = ldb;
            _c = c;
            _ldc = ldc;
            _bias = bias;
            try
            {
                if (threads > 1)
                {
                    ParallelFor.For(n, Math.Max(64, RoundUp(n / (8 * threads), 4)), _thinBody);
                }
                else
                {
                    ThinRange(0, n);
                }
            }
            finally
            {
                _a = _b = _c = _bias = null;
            }
        }

        private void ThinRange(int start, int end) => GemmThinA.Run(_m, _k, _alpha, _a, _lda, _b, _ldb, _beta, _c, _ldc, _bias, start, end);

        public void Execute(
            GemmIsa isa, int threads, bool transA, bool transB, int m, int n, int k, float alpha,
            float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, float* bias, float* packedB, NarrowB narrowB = NarrowB.None, bool streamC = false)
        {
            _isa = isa;
            _streamC = streamC;
            _narrowB = narrowB;
            _transA = transA;
            _transB = transB;
            _m = m;
            _n = n;
            _k = k;
            _alpha = alpha;
            _beta = beta;
            _a = a;
            _lda = lda;
            _b = b;
            _ldb = ldb;
            _c = c;
            _ldc = ldc;
            _bias = bias;
            _mr = Mr(isa);
            _nr = Nr(isa);
            _kc = KBlock(k);

            int rowChunk = Math.Max(_mr, ChunkFloats / k / _mr * _mr);
            // A narrow B met by one row tile is packed inside the tiles, never into a buffer: one column chunk, so A is
            // packed once per call (GemmNarrowB). An F32 B keeps its chunks: as one chunk, a language-model head's
            // forward (256 × 50257 × 768) ran 1–2.8 % faster on 2 threads, but on 1 thread the training step then faulted
            // in ~95 MB of fresh pages every step (24 000 minor faults, 3.5 % slower) and its peak RSS rose 47–85 MB (the
            // cause is not known; the chunked path rents a 16 MiB B buffer it never touches, the size the head's split-K
            // partials rent next).
            bool bInTile = narrowB != NarrowB.None && m <= rowChunk && RoundUp(m, _mr) / _mr <= McPanelsOneTile;
            int colChunk = packedB != null || bInTile ? RoundUp(n, _nr) : Math.Max(_nr, ChunkFloats / k / _nr * _nr);
            int rowsMax = Math.Min(m, rowChunk), colsMax = Math.Min(n, colChunk);
            float[] aBuf = RentAligned((long)RoundUp(rowsMax, _mr) * k);
            float[]? bBuf = packedB == null && !bInTile ? RentAligned((long)RoundUp(colsMax, _nr) * k) : null;
            try
            {
                fixed (float* aRaw = aBuf, bRaw = bBuf)
                {
                    _ap = Align64(aRaw);
                    for (int col0 = 0; col0 < n; col0 += colChunk)
                    {
                        _col0 = col0;
                        _cols = Math.Min(colChunk, n - col0);
                        _bSharedReady = packedB != null;
                        if (packedB != null)
                        {
                            _bp = packedB;
                            _nPad = RoundUp(n, _nr);
                            _bpCol0 = 0;
                        }
                        else
                        {
                            _bp = Align64(bRaw);
                            _nPad = RoundUp(_cols, _nr);
                            _bpCol0 = col0;
                        }

                        for (int row0 = 0; row0 < m; row0 += rowChunk)
                        {
                            _row0 = row0;
                            _rows = Math.Min(rowChunk, m - row0);
                            _mPad = RoundUp(_rows, _mr);
                            _packB = packedB == null;
                            RunChunk(threads);
                        }
                    }
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(aBuf);
                if (bBuf != null) ArrayPool<float>.Shared.Return(bBuf);
                _a = _b = _c = _bias = _ap = _bp = null;
            }
        }

        private void RunChunk(int threads)
        {
            _aPanels = _mPad / _mr;
            _mc = _aPanels <= McPanelsOneTile ? _mPad : McPanels * _mr;
            _nc = Math.Min(_nPad, NcPanels * _nr);
            if (threads > 1)
            {
                // Enough tiles that a slowed core simply claims fewer of them (≥ 6 per thread), not so small that
                // a tile stops reusing its B panels across the A block. When one row tile covers every row, narrow
                // the column tiles down to one panel rather than cutting the rows: each thread then reads all of A
                // (the small operand here, packed by the threads together) and only its own share of B, packed
                // inside its tiles straight into L1, or packed once before the call. Cutting the rows instead makes
                // every thread read or pack all of B.
                int ncMin = _mc == _mPad ? 2 * _nr : 4 * _nr;
                while (TileCount() < 6 * threads)
                {
                    if (_nc >= ncMin) _nc = RoundUp(_nc / 2, _nr);
                    else if (_mc >= 2 * _mr) _mc = RoundUp(_mc / 2, _mr);
                    else break;
                }
            }

            _mTiles = (_rows + _mc - 1) / _mc;
            _nTiles = (_cols + _nc - 1) / _nc;
            _packBInTile = _packB && _mTiles == 1;
            _privateB = threads > 1 && _packB && !_packBInTile;
            _colMajor = false;

            // The shared B buffer is filled once per column chunk, by the first row chunk that reads it (one that
            // packs B inside its tiles leaves it empty for the next).
            _bPanels = _packB && !_packBInTile && !_privateB && !_bSharedReady ? _nPad / _nr : 0;
            if (_bPanels > 0) _bSharedReady = true;
            int tiles = _mTiles * _nTiles;
            if (threads > 1)
            {
                // Each thread packs the A rows of the tiles it claims itself (and B, see _privateB), so no tile
                // reads panels packed on the other core: with shared packs of A and B, 1024³ fell to 71–73% of the
                // two-thread peak whenever this VM made reads across cores slow, while two single-threaded processes
                // kept their full speed side by side. The exception is one small row tile (m ≤ 192, packed A ≤
                // SharedAFloats): every tile needs all of it, so the threads pack it together once and each reads
                // the other's half, which then stays in its L2 (at 128×384×1536 that beat each packing all of A, 88%
                // vs 80% of peak for B packed once; at 128×1536×384, A outgrows half of L2 and the shared A lost, 72%
                // vs 89%).
                // One fork-join: nothing is packed up front (B is private, packed in the tiles, or packed before the call).
                Debug.Assert(_bPanels == 0, "threads never share a B packed by this call");
                _sharedA = _mTiles == 1 && (long)_mPad * _k <= SharedAFloats;
                _colMajor = _privateB && _mTiles > 1 && _nTiles > 1 && _rows < _cols;
                _aNext = -1;
                _aDone = 0;
                if (_claimed.Length < tiles) _claimed = new int[tiles];
                Array.Clear(_claimed, 0, tiles);
                _parts = Math.Min(threads, tiles);
                ParallelFor.For(_parts, 1, _ownedBody);
            }
            else
            {
                PackRange(0, _aPanels + _bPanels);
                TileRange(0, tiles);
            }
        }

        /// <summary>Packs B's columns [j0, j0 + cols) as panel <paramref name="panel"/> of dst, widening a narrow B.</summary>
        private void PackBPanelOfB(int j0, int cols, int nr, int panel, float* dst)
        {
            if (_narrowB == NarrowB.None)
            {
                PackBPanel(_transB, _b, _ldb, j0, cols, _k, _kc, nr, _nPad, panel, dst);
            }
            else
            {
                GemmNarrowB.PackBPanel(_narrowB, (ushort*)_b, _ldb, j0, cols, _k, _kc, nr, _nPad, panel, dst);
            }
        }

        /// <summary>Packs the k block [p0, p0 + kcb) of B's columns [j0, j0 + cols) into one panel at dst, widening a narrow B.</summary>
        private void PackBBlockOfB(int j0, int cols, int p0, int kcb, int nr, float* dst)
        {
            if (_narrowB == NarrowB.None)
            {
                PackBBlock(_transB, _b, _ldb, j0, cols, p0, kcb, nr, dst);
            }
            else
            {
                GemmNarrowB.PackBBlock(_narrowB, (ushort*)_b, _ldb, j0, cols, p0, kcb, nr, dst);
            }
        }

        /// <summary>A claim flag's value for a tile claimed whole (above any count of its panels claimed one by one).</summary>
        private const int WholeTile = 1 << 20;

        /// <summary>B panels in tile <paramref name="t"/>.</summary>
        private int TilePanels(int t, int nr)
        {
            int j0 = _col0 + (TileColumn(t) * _nc);
            return (Math.Min(_col0 + _cols, j0 + _nc) - j0 + nr - 1) / nr;
        }

        private int TileCount() => ((_rows + _mc - 1) / _mc) * ((_cols + _nc - 1) / _nc);

        private void PackRange(int start, int end)
        {
            for (int item = start; item < end; item++)
            {
                if (item < _bPanels)
                {
                    int j0 = _col0 + (item * _nr);
                    PackBPanelOfB(j0, Math.Min(_nr, _col0 + _cols - j0), _nr, item, _bp);
                }
                else
                {
                    int panel = item - _bPanels;
                    int i0 = _row0 + (panel * _mr);
                    PackAPanel(_transA, _a, _lda, i0, Math.Min(_mr, _row0 + _rows - i0), _k, _kc, _mr, _mPad, panel, _ap);
                }
            }
        }

        private void TileRange(int start, int end)
        {
            switch (_isa)
            {
                case GemmIsa.Vector512:
                    TileRange<Kernel512>(start, end);
                    break;
                case GemmIsa.Vector256:
                    TileRange<Kernel256>(start, end);
                    break;
                default:
                    TileRange<Kernel128>(start, end);
                    break;
            }
        }

        private void OwnedRange(int start, int end)
        {
            for (int part = start; part < end; part++)
            {
                switch (_isa)
                {
                    case GemmIsa.Vector512:
                        OwnedTiles<Kernel512>(part);
                        break;
                    case GemmIsa.Vector256:
                        OwnedTiles<Kernel256>(part);
                        break;
                    default:
                        OwnedTiles<Kernel128>(part);
                        break;
                }
            }
        }

        /// <summary>Single thread: every tile in turn, reading the A block packed up front for the whole chunk.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void TileRange<TKernel>(int start, int end)
            where TKernel : struct, IGemmKernel
        {
            int nr = TKernel.NR;
            float* edge = stackalloc float[12 * 32];
            Debug.Assert(TKernel.MR * nr <= 12 * 32, "edge scratch holds the largest tile");
            float* panelScratch = stackalloc float[_packBInTile ? (KcMax * nr) + 16 : 1];
            panelScratch = Align64(panelScratch);
            int* cols = stackalloc int[2];
            for (int t = start; t < end; t++)
            {
                // Tiles along m first: neighbouring claims share B columns.
                int mb = t % _mTiles, nb = t / _mTiles;
                int i0 = _row0 + (mb * _mc), i1 = Math.Min(_row0 + _rows, i0 + _mc);
                cols[0] = _col0 + (nb * _nc);
                cols[1] = Math.Min(_col0 + _cols, cols[0] + _nc);
                MultiplyRun<TKernel>(i0, i1, cols, 1, _ap, _mPad, (i0 - _row0) / TKernel.MR, _bp, panelScratch, edge, false);
            }

            // Non-temporal stores are weakly ordered: drain them before the caller reads C.
            if (_streamC) Sse.StoreFence();
        }

        /// <summary>
        /// One participant of a multithreaded chunk: deals itself the tiles from its own stretch of the (row tile,
        /// column tile) order first, so it keeps meeting the same rows and packs each row tile of A once into its own
        /// buffer (unless A is shared), and each column tile of B once when B is private; then it takes whatever the
        /// others have not claimed yet, so a slowed core does less of the work.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void OwnedTiles<TKernel>(int part)
            where TKernel : struct, IGemmKernel
        {
            int mr = TKernel.MR, nr = TKernel.NR;
            float* edge = stackalloc float[12 * 32];
            float* panelScratch = stackalloc float[_packBInTile ? (KcMax * nr) + 16 : 1];
            panelScratch = Align64(panelScratch);
            int tiles = _mTiles * _nTiles;
            float[]? aBuf = null, bBuf = null; // rented on the first claim: a participant that finds nothing left needs none
            float[]? aBlockBuf = null; // one k block of A, for a run that packs A block by block
            GCHandle pin = default, bPin = default, aBlockPin = default;
            bool[]? bTilePacked = null; // which column tiles this participant has packed into bBuf
            try
            {
                float* ap = null, bp = _bp;
                int packedRowTile = -1;
                if (_sharedA)
                {
                    // Help pack A, then wait for the panels others claimed: they are being packed by running
                    // threads, so the wait ends even if some worker never joined this loop.
                    int item;
                    while ((item = Interlocked.Increment(ref _aNext)) < _aPanels)
                    {
                        int i0 = _row0 + (item * mr);
                        PackAPanel(_transA, _a, _lda, i0, Math.Min(mr, _row0 + _rows - i0), _k, _kc, mr, _mPad, item, _ap);
                        Interlocked.Increment(ref _aDone);
                    }

                    var spinner = default(SpinWait);
                    while (Volatile.Read(ref _aDone) < _aPanels) spinner.SpinOnce(sleep1Threshold: -1);
                }

                int first = (int)((long)part * tiles / _parts);
                int own = (int)((long)(part + 1) * tiles / _parts) - first;

                // One row tile (B packed inside the tiles) cut into narrowed column tiles, B stored [k, n]: the tiles
                // of this participant's own stretch go in runs of up to RunPanels panels, multiplied together k block
                // by k block. A k block of A then stays in L2 across the run (a narrowed tile alone reads A's block
                // from L3 for only two B panels once k ≥ 2304 makes A outgrow L2), and a cold B is read a run's width
                // of each row at a time rather than 256 bytes. Tiles taken from another stretch go one at a time.
                // Cold weights, 2 threads, 256 rows, n = 768 (dX of GPT-2's c_attn, fc1 and c_proj): 2-5% faster.
                // Not for Bᵀ stored [n, k] (a forward's weight): there a tile reads each weight row along k in one
                // sequential stream, and cutting that stream into k blocks far apart measured 2% slower.
                int runLength = 1;
                if (_packBInTile && !_transB && own > 0 && _nc < NcPanels * nr)
                {
                    int most = Math.Max(1, RunPanels * nr / _nc);
                    int runs = (own + most - 1) / most;
                    runLength = (own + runs - 1) / runs;
                }

                // One run covers this participant's whole stretch, A is stored [m, k] and outgrows L2 (the input
                // gradients dY [256, 2304–3072]): A is packed one k block at a time, right before the run meets it, into a block
                // buffer (≤ 270 KiB) that stays in L2, while the next block's source rows are asked for in L2 a share
                // per tile (MultiplyRun). Packing all of A up front wrote 2.4–3.2 MB out to L3 to read it back block by
                // block, with no FMA running while its rows came from memory or from the other core. Tiles taken from
                // another stretch afterwards pack the whole A as before (once), so a late participant's tiles do not
                // each repack it. Same packed values, same kernel calls: the result is unchanged bit for bit.
                bool blockA = runLength > 1 && runLength >= own && !_sharedA && !_colMajor && !_transA && (long)_mc * _k > BlockAFloats;
                float* aBlock = null;
                if (blockA)
                {
                    aBlockBuf = RentAligned((long)_mc * _kc);
                    aBlockPin = GCHandle.Alloc(aBlockBuf, GCHandleType.Pinned);
                    aBlock = Align64((float*)aBlockPin.AddrOfPinnedObject());
                }

                int* run = stackalloc int[2 * RunPanels];
                int runCount = 0, runI0 = 0, runI1 = 0, runStride = 0, runFirstPanel = 0;
                bool runBlockA = false;
                float* runA = null;
                for (int step = 0; step < tiles; step++)
                {
                    int t = first + step;
                    if (t >= tiles) t -= tiles;
                    if (runLength == 1 && _mTiles == 1 && step >= own - 1 && TilePanels(t, nr) is int panels and >= 2)
                    {
                        // One row tile, one tile at a time: the last tile of this participant's stretch and every
                        // tile taken from another stretch go panel by panel, the participants claiming a tile's B
                        // panels through its counter, so the one that finishes first takes panels of the other's last
                        // tile rather than waiting up to a whole tile (0.2-0.5 ms here) at the join. Each panel is
                        // packed and multiplied once, as in a whole tile, and each participant has all of A packed
                        // already (or shares it): same kernel calls per C element, the result is unchanged bit for
                        // bit. In the GPT-2 training step (2 threads, Zen 5) the median gap between the two threads'
                        // ends fell from 320 to 37 µs for fc2's input gradient and from 360 to 36 µs per language-model
                        // head forward chunk; those calls got 1-4% faster, the forwards 0-1%.
                        int tj0 = _col0 + (TileColumn(t) * _nc), tj1 = Math.Min(_col0 + _cols, tj0 + _nc);
                        bool prepared = false;
                        while (Volatile.Read(ref _claimed[t]) < panels)
                        {
                            int q = Interlocked.Increment(ref _claimed[t]) - 1;
                            if (q >= panels) break;
                            if (!prepared)
                            {
                                ClaimedTile(t, ref packedRowTile, ref aBuf, ref pin, ref ap, ref bBuf, ref bPin, ref bp, ref bTilePacked, mr, nr);
                                prepared = true;
                            }

                            run[0] = tj0 + (q * nr);
                            run[1] = Math.Min(tj1, run[0] + nr);
                            MultiplyRun<TKernel>(_row0, _row0 + _rows, run, 1, _sharedA ? _ap : ap, _sharedA ? _mPad : _mc, 0, bp, panelScratch, edge, false);
                        }

                        continue;
                    }

                    if (Volatile.Read(ref _claimed[t]) == 0 && Interlocked.CompareExchange(ref _claimed[t], WholeTile, 0) == 0)
                    {
                        runBlockA = blockA && step < own;
                        if (!runBlockA) ClaimedTile(t, ref packedRowTile, ref aBuf, ref pin, ref ap, ref bBuf, ref bPin, ref bp, ref bTilePacked, mr, nr);

                        // Row tiles major: consecutive tiles of one participant share its packed A rows (column
                        // tiles major with _colMajor: they share its packed B columns).
                        int mb = TileRow(t), nb = TileColumn(t);
                        runI0 = _row0 + (mb * _mc);
                        runI1 = Math.Min(_row0 + _rows, runI0 + _mc);
                        runA = _sharedA ? _ap : runBlockA ? aBlock : ap;
                        runStride = _sharedA ? _mPad : _mc;
                        runFirstPanel = _sharedA ? (runI0 - _row0) / mr : 0;
                        run[2 * runCount] = _col0 + (nb * _nc);
                        run[(2 * runCount) + 1] = Math.Min(_col0 + _cols, run[2 * runCount] + _nc);
                        runCount++;
                    }

                    if (runCount > 0 && (runCount == runLength || step >= own - 1))
                    {
                        MultiplyRun<TKernel>(runI0, runI1, run, runCount, runA, runStride, runFirstPanel, bp, panelScratch, edge, runBlockA);
                        runCount = 0;
                    }
                }
            }
            finally
            {
                if (aBlockBuf != null)
                {
                    aBlockPin.Free();
                    ArrayPool<float>.Shared.Return(aBlockBuf);
                }

                if (aBuf != null)
                {
                    pin.Free();
                    ArrayPool<float>.Shared.Return(aBuf);
                }

                if (bBuf != null)
                {
                    bPin.Free();
                    ArrayPool<float>.Shared.Return(bBuf);
                }

                if (bTilePacked != null) ArrayPool<bool>.Shared.Return(bTilePacked);

                // Non-temporal stores are weakly ordered: drain this participant's before the join publishes C.
                if (_streamC) Sse.StoreFence();
            }
        }

        /// <summary>
        /// Readies a tile this participant just claimed: packs its A rows into the participant's own buffer (unless A is
        /// shared or that row tile is packed already) and, with a private B, its column tile's B panels.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void ClaimedTile(
            int t, ref int packedRowTile, ref float[]? aBuf, ref GCHandle pin, ref float* ap,
            ref float[]? bBuf, ref GCHandle bPin, ref float* bp, ref bool[]? bTilePacked, int mr, int nr)
        {
            int mb = TileRow(t), nb = TileColumn(t);
            int i0 = _row0 + (mb * _mc), i1 = Math.Min(_row0 + _rows, i0 + _mc);
            int j0 = _col0 + (nb * _nc), j1 = Math.Min(_col0 + _cols, j0 + _nc);
            if (_sharedA) return;

            if (_colMajor)
            {
                // Every row tile packed once into its own slot of a buffer for all of A, flagged after the B flags.
                if (aBuf == null)
                {
                    aBuf = RentAligned((long)_mTiles * _mc * _k);
                    pin = GCHandle.Alloc(aBuf, GCHandleType.Pinned);
                }

                float* slot = Align64((float*)pin.AddrOfPinnedObject()) + ((long)mb * _mc * _k);
                EnsureFlags(ref bTilePacked);
                if (!bTilePacked![_nTiles + mb])
                {
                    for (int i = i0; i < i1; i += mr)
                    {
                        PackAPanel(_transA, _a, _lda, i, Math.Min(mr, i1 - i), _k, _kc, mr, _mc, (i - i0) / mr, slot);
                    }

                    bTilePacked[_nTiles + mb] = true;
                }

                ap = slot;
                packedRowTile = mb;
            }
            else if (mb != packedRowTile)
            {
                if (aBuf == null)
                {
                    aBuf = RentAligned((long)_mc * _k);
                    pin = GCHandle.Alloc(aBuf, GCHandleType.Pinned);
                    ap = Align64((float*)pin.AddrOfPinnedObject());
                }

                for (int i = i0; i < i1; i += mr)
                {
                    PackAPanel(_transA, _a, _lda, i, Math.Min(mr, i1 - i), _k, _kc, mr, _mc, (i - i0) / mr, ap);
                }

                packedRowTile = mb;
            }

            if (_privateB)
            {
                if (bBuf == null)
                {
                    bBuf = RentAligned((long)_nPad * _k);
                    bPin = GCHandle.Alloc(bBuf, GCHandleType.Pinned);
                    bp = Align64((float*)bPin.AddrOfPinnedObject());
                    EnsureFlags(ref bTilePacked);
                }

                if (!bTilePacked![nb])
                {
                    for (int j = j0; j < j1; j += nr)
                    {
                        PackBPanelOfB(j, Math.Min(nr, j1 - j), nr, (j - _col0) / nr, bp);
                    }

                    bTilePacked[nb] = true;
                }
            }
        }

        /// <summary>Rents and clears a participant's packed flags: one per column tile of B, then one per row tile of A.</summary>
        private void EnsureFlags(ref bool[]? flags)
        {
            if (flags != null) return;
            flags = ArrayPool<bool>.Shared.Rent(_nTiles + _mTiles);
            Array.Clear(flags, 0, _nTiles + _mTiles);
        }

        /// <summary>The row tile of tile <paramref name="t"/> in the dealing order (row tiles major unless <see cref="_colMajor"/>).</summary>
        private int TileRow(int t) => _colMajor ? t % _mTiles : t / _nTiles;

        /// <summary>The column tile of tile <paramref name="t"/> in the dealing order.</summary>
        private int TileColumn(int t) => _colMajor ? t / _mTiles : t % _nTiles;

        /// <summary>
        /// C[i0..i1, j0..j1) over the whole k loop for each of <paramref name="count"/> column tiles of one row tile
        /// (<paramref name="cols"/> holds j0, j1 pairs): k blocks outermost, so a k block of A meets every tile of the
        /// run before the next; each element still sums the k blocks in order. <paramref name="aPack"/> holds packed A
        /// panels (k block p0 at aPack + p0 · <paramref name="aStride"/>), row i0's panel being number
        /// <paramref name="aFirstPanel"/>. B comes from <paramref name="bPack"/> (k block p0 at bPack + p0 · _nPad,
        /// panel 0 = column _bpCol0), or is packed here panel by panel into <paramref name="panelScratch"/>. With
        /// <paramref name="packABlock"/> (A stored [m, k]), <paramref name="aPack"/> is a one-block buffer instead: each
        /// k block of rows [i0, i1) is packed into it here before the tiles meet it, and the next block's source is
        /// asked for in L2 meanwhile.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void MultiplyRun<TKernel>(int i0, int i1, int* cols, int count, float* aPack, int aStride, int aFirstPanel, float* bPack, float* panelScratch, float* edge, bool packABlock)
            where TKernel : struct, IGemmKernel
        {
            int mr = TKernel.MR;
            long runFloats = 0;
            for (int r = 0; r < count; r++) runFloats += (long)(i1 - i0) * (cols[(2 * r) + 1] - cols[2 * r]);
            for (int p0 = 0; p0 < _k; p0 += _kc)
            {
                int kcb = Math.Min(_kc, _k - p0);
                bool first = p0 == 0;
                float beta = first ? _beta : 1f;
                float* bias = first ? _bias : null;
                float* aBlock = aPack + ((long)p0 * aStride);
                if (packABlock)
                {
                    // Rows [i0, i1) of this k block only (A stored [m, k]), into the block buffer the run then meets.
                    aBlock = aPack;
                    float* aSrc = _a + p0;
                    for (int i = i0; i < i1; i += mr)
                    {
                        PackAPanel(false, aSrc, _lda, i, Math.Min(mr, i1 - i), kcb, kcb, mr, _mc, (i - i0) / mr, aBlock);
                    }
                }

                float* bBlock = bPack + ((long)p0 * _nPad);
                for (int r = 0; r < count; r++)
                {
                    if (packABlock && p0 + _kc < _k && Sse.IsSupported)
                    {
                        // A share of the next k block's A source, asked for in L2 while this block multiplies.
                        int np0 = p0 + _kc, nBytes = Math.Min(_kc, _k - np0) * sizeof(float);
                        int from = i0 + (int)((long)(i1 - i0) * r / count), to = i0 + (int)((long)(i1 - i0) * (r + 1) / count);
                        for (int i = from; i < to; i++)
                        {
                            byte* row = (byte*)(_a + ((long)i * _lda) + np0);
                            for (int off = 0; off < nBytes; off += 64) Sse.Prefetch1(row + off);
                            Sse.Prefetch1(row + nBytes - 1);
                        }
                    }

                    int j0 = cols[2 * r], j1 = cols[(2 * r) + 1];
                    // After this tile's last panel comes the next tile's first, or the run's first of the next k block.
                    bool lastOfBlock = r + 1 == count;
                    int nextJ0 = lastOfBlock ? cols[0] : cols[2 * (r + 1)], nextJ1 = lastOfBlock ? cols[1] : cols[(2 * r) + 3];
                    MultiplyBlock<TKernel>(i0, i1, j0, j1, p0, kcb, beta, bias, aBlock, aFirstPanel, bBlock, panelScratch, edge, runFloats, nextJ0, nextJ1, lastOfBlock ? p0 + _kc : p0);
                }
            }
        }

        /// <summary>
        /// One k block [p0, p0 + kcb) of the tile C[i0..i1, j0..j1). The tile multiplied after it covers columns
        /// [<paramref name="nextJ0"/>, <paramref name="nextJ1"/>) at k block <paramref name="nextTileP0"/>: its first B
        /// panel is the one prefetched after this tile's last. <paramref name="runFloats"/> is the C that the run
        /// (this tile with the others multiplied block by block beside it) keeps warm between k blocks.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void MultiplyBlock<TKernel>(
            int i0, int i1, int j0, int j1, int p0, int kcb, float beta, float* bias, float* aBlock, int aFirstPanel,
            float* bBlock, float* panelScratch, float* edge, long runFloats, int nextJ0, int nextJ1, int nextTileP0)
            where TKernel : struct, IGemmKernel
        {
            int mr = TKernel.MR, nr = TKernel.NR;
            bool first = p0 == 0;
            for (int j = j0; j < j1; j += nr)
            {
                // One B panel [kcb][nr], kept in L1 while it meets every A panel of the tile.
                float* bPanel;
                int nrValid = Math.Min(nr, j1 - j);
                if (_packBInTile)
                {
                    bPanel = panelScratch;
                    PackBBlockOfB(j, nrValid, p0, kcb, nr, bPanel);
                }
                else
                {
                    bPanel = bBlock + ((long)((j - _bpCol0) / nr) * kcb * nr);
                }

                float* biasJ = bias == null ? null : bias + j;

                // C is read from afar on the first k block (beta ≠ 0), and on later ones when the run's C outgrew
                // half of L2; a C tile that the last block just wrote is in L2, and asking costs 1–3% there.
                bool prefetchC = beta != 0f && (first || runFloats >= PrefetchCFloats);

                // B packed here next: the following panel of this tile, else the next tile's first.
                bool inTile = j + nr < j1;
                int nextPanelJ = inTile ? j + nr : nextJ0, nextP0 = inTile ? p0 : nextTileP0, nextEnd = inTile ? j1 : nextJ1;
                int tilesInPanel = (i1 - i0 + mr - 1) / mr;
                for (int i = i0; i < i1; i += mr)
                {
                    float* aPanel = aBlock + ((long)(aFirstPanel + ((i - i0) / mr)) * kcb * mr);
                    if (_packBInTile && (!_transB || tilesInPanel >= PrefetchBtPanels) && nextP0 < _k)
                    {
                        // Its source rows (a strided walk through B, one or two lines per k step, that the
                        // hardware prefetcher does not follow) are fetched into L2 a share per tile, so packing it
                        // next reads no line from L3 or memory. Bᵀ's panel source is 32 sequential streams: the
                        // hardware follows those, and asking as well cost the 128-row Linear shapes 1–3%; from 16
                        // A panels on it pays (a language-model head's forward, 256 × 50257 × 768 on 2 threads:
                        // 48.4 → 43.6 ms, the weight read from memory no longer stalls each panel's packing).
                        int part = (i - i0) / mr;
                        PrefetchBSource(nextPanelJ, Math.Min(nr, nextEnd - nextPanelJ), nextP0, Math.Min(_kc, _k - nextP0), part, tilesInPanel);
                    }

                    if (prefetchC)
                    {
                        // The next tile of C is read when its kernel starts; fetch it now, while this tile's
                        // k loop runs (a C read from L3 or memory otherwise stalls every tile's start).
                        int nextI = i + mr < i1 ? i + mr : i0, nextJ = i + mr < i1 ? j : j + nr;
                        if (nextJ < j1) PrefetchTile(_c + ((long)nextI * _ldc) + nextJ, _ldc, Math.Min(mr, i1 - nextI), Math.Min(nr, j1 - nextJ));
                    }

                    TKernel.Tile(aPanel, bPanel, kcb, _c + ((long)i * _ldc) + j, _ldc, Math.Min(mr, i1 - i), nrValid, _alpha, beta, biasJ, edge, _streamC);
                }
            }
        }

        /// <summary>
        /// Part <paramref name="part"/> of <paramref name="parts"/> of the stored B that a panel of columns
        /// [j, j + cols) over k [p0, p0 + kcb) packs from, asked for in L2.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void PrefetchBSource(int j, int cols, int p0, int kcb, int part, int parts)
        {
            if (!Sse.IsSupported) return;
            if (!_transB)
            {
                // B[p, j] at b[p · ldb + j]: one short row per k step.
                int from = (int)((long)kcb * part / parts), to = (int)((long)kcb * (part + 1) / parts);
                for (int p = from; p < to; p++)
                {
                    float* row = _b + ((long)(p0 + p) * _ldb) + j;
                    for (int jj = 0; jj < cols; jj += 16) Sse.Prefetch1(row + jj);
                    Sse.Prefetch1(row + cols - 1);
                }
            }
            else
            {
                // Bᵀ stored [n, k]: one k stretch per column (of 2-byte values for a narrow B).
                int from = (int)((long)cols * part / parts), to = (int)((long)cols * (part + 1) / parts);
                int size = _narrowB == NarrowB.None ? sizeof(float) : sizeof(ushort);
                for (int jj = from; jj < to; jj++)
                {
                    byte* row = (byte*)_b + ((((long)(j + jj) * _ldb) + p0) * size);
                    for (int p = 0; p < kcb * size; p += 64) Sse.Prefetch1(row + p);
                    Sse.Prefetch1(row + ((kcb * size) - 1));
                }
            }
        }
    }

    /// <summary>Asks for a tile of C (<paramref name="rows"/> × <paramref name="cols"/>) in L1 ahead of its use; nothing without SSE.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchTile(float* c, int ldc, int rows, int cols)
    {
        if (!Sse.IsSupported) return;
        for (int r = 0; r < rows; r++)
        {
            float* row = c + ((long)r * ldc);
            for (int j = 0; j < cols; j += 16) Sse.Prefetch0(row + j);
            Sse.Prefetch0(row + cols - 1);
        }
    }

    public static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;
}
