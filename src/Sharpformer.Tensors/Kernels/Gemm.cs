using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Kernels;

/// <summary>
/// Single-precision general matrix multiply, BLAS conventions, row-major:
/// <c>C[m, n] = alpha · op(A)[m, k] · op(B)[k, n] + beta · C[m, n] (+ bias[n])</c>,
/// where op(X) is X or Xᵀ. Linear layers store weights [out, in], so <c>y = x · Wᵀ</c> is <c>transB: true</c>.
/// </summary>
public static partial class Gemm
{
    /// <summary>
    /// C = alpha · op(A) · op(B) + beta · C (+ bias broadcast over rows). Row-major; <paramref name="lda"/>,
    /// <paramref name="ldb"/>, <paramref name="ldc"/> are the row strides of A, B, C as stored.
    /// When <paramref name="beta"/> is 0, C is not read (NaN/garbage in C does not propagate).
    /// </summary>
    /// <param name="transA">A is stored [k, m] and used transposed.</param>
    /// <param name="transB">B is stored [n, k] and used transposed.</param>
    /// <param name="m">Rows of op(A) and C.</param>
    /// <param name="n">Columns of op(B) and C.</param>
    /// <param name="k">Inner dimension.</param>
    /// <param name="alpha">Scale of the product.</param>
    /// <param name="a">A's elements.</param>
    /// <param name="lda">Row stride of A as stored (≥ k, or ≥ m when transposed).</param>
    /// <param name="b">B's elements.</param>
    /// <param name="ldb">Row stride of B as stored (≥ n, or ≥ k when transposed).</param>
    /// <param name="beta">Scale of C's previous contents; 0 overwrites.</param>
    /// <param name="c">C's elements.</param>
    /// <param name="ldc">Row stride of C (≥ n).</param>
    /// <param name="bias">Empty, or n values added to every row of C.</param>
    /// <exception cref="ArgumentException">A dimension is negative, a leading dimension is too small, or a span is too short.</exception>
    /// <remarks>
    /// Runs the packed, cache-blocked SIMD kernel (Vector512 12×32, else Vector256 6×16, else Vector128 6×8 tiles) on up
    /// to <see cref="ParallelFor.MaxDegreeOfParallelism"/> threads; products under about 3 MFLOP stay on the caller's
    /// thread. A thin A (m ≤ 8) times a B stored [n, k] skips packing and runs as dot products (decode-like Linear
    /// calls). Without SIMD it runs <see cref="Reference"/>. The sums run in a different order from the reference, so
    /// results agree to rounding, not bit for bit; the thread count never changes the result. A long k with a small C
    /// (k ≥ 8192, as in a language-model head's input gradient) is cut into slices of k summed into partial buffers in
    /// parallel, then added in slice order, so it also rounds differently from the packed-B overload. alpha 0 still
    /// computes op(A)·op(B) (NaN in A or B propagates), as the reference does. For a B used many times (a weight),
    /// <see cref="PackB"/> once and call the packed overload.
    /// </remarks>
    public static void Sgemm(
        bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc, ReadOnlySpan<float> bias = default)
    {
        Validate(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc, bias.Length);
        SgemmCore(GemmDriver.BestIsa, ParallelFor.MaxDegreeOfParallelism, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias);
    }

    /// <summary>
    /// <paramref name="batch"/> independent <see cref="Sgemm(bool, bool, int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, Span{float}, int, ReadOnlySpan{float})"/> calls; matrix i of A, B, C starts at
    /// i · <paramref name="strideA"/>, i · <paramref name="strideB"/>, i · <paramref name="strideC"/> (a stride of 0
    /// broadcasts A or B; the C matrices must not overlap). Many small products (attention heads) run in parallel
    /// across the batch, one thread each; a few large ones run one after another, each on all threads.
    /// </summary>
    /// <param name="transA">A is stored [k, m] and used transposed.</param>
    /// <param name="transB">B is stored [n, k] and used transposed.</param>
    /// <param name="m">Rows of op(A) and C.</param>
    /// <param name="n">Columns of op(B) and C.</param>
    /// <param name="k">Inner dimension.</param>
    /// <param name="alpha">Scale of the product.</param>
    /// <param name="a">A's elements, all matrices.</param>
    /// <param name="lda">Row stride of A as stored.</param>
    /// <param name="strideA">Distance between consecutive A matrices (0 broadcasts one A).</param>
    /// <param name="b">B's elements, all matrices.</param>
    /// <param name="ldb">Row stride of B as stored.</param>
    /// <param name="strideB">Distance between consecutive B matrices (0 broadcasts one B).</param>
    /// <param name="beta">Scale of C's previous contents; 0 overwrites.</param>
    /// <param name="c">C's elements, all matrices.</param>
    /// <param name="ldc">Row stride of C.</param>
    /// <param name="strideC">Distance between consecutive C matrices (≥ the extent of one C).</param>
    /// <param name="batch">Number of products.</param>
    /// <param name="bias">Empty, or n values added to every row of every C.</param>
    /// <exception cref="ArgumentException">A dimension or stride is negative, a span is too short, or the C matrices overlap.</exception>
    public static void SgemmBatched(
        bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, long strideA, ReadOnlySpan<float> b, int ldb, long strideB,
        float beta, Span<float> c, int ldc, long strideC, int batch, ReadOnlySpan<float> bias = default)
    {
        ValidateBatched(transA, transB, m, n, k, a.Length, lda, strideA, b.Length, ldb, strideB, c.Length, ldc, strideC, batch, bias.Length);
        SgemmBatchedCore(
            GemmDriver.BestIsa, ParallelFor.MaxDegreeOfParallelism, transA, transB, m, n, k, alpha,
            a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batch, bias);
    }

    /// <summary>
    /// Packs B once for many products with the same B (a Linear layer's weight): <paramref name="b"/> is stored
    /// [n, k] when <paramref name="transB"/> (the Linear layout), else [k, n]. Pass the result to
    /// <see cref="Sgemm(bool, int, float, ReadOnlySpan{float}, int, GemmPackedB, float, Span{float}, int, ReadOnlySpan{float})"/>.
    /// The packed copy does not track later changes to <paramref name="b"/>.
    /// </summary>
    /// <param name="transB">B is stored [n, k] and used transposed.</param>
    /// <param name="k">Inner dimension (rows of op(B)).</param>
    /// <param name="n">Columns of op(B).</param>
    /// <param name="b">B's elements.</param>
    /// <param name="ldb">Row stride of B as stored.</param>
    /// <returns>op(B) in the micro-kernel's panel layout.</returns>
    /// <exception cref="ArgumentException">A dimension is negative, ldb is too small, or the span is too short.</exception>
    public static GemmPackedB PackB(bool transB, int k, int n, ReadOnlySpan<float> b, int ldb)
    {
        if (k < 0 || n < 0)
        {
            throw new ArgumentException($"Gemm.PackB: dimensions k={k}, n={n} must be non-negative.");
        }

        CheckOperand("B", transB ? n : k, transB ? k : n, b.Length, ldb, transB);
        return GemmPackedB.Create(GemmDriver.BestIsa, transB, k, n, b, ldb);
    }

    /// <summary>
    /// C[m, n] = alpha · op(A)[m, k] · B[k, n] + beta · C (+ bias[n]) with B packed by <see cref="PackB"/>;
    /// the same semantics as <see cref="Sgemm(bool, bool, int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, Span{float}, int, ReadOnlySpan{float})"/>
    /// without re-packing B on every call.
    /// </summary>
    /// <param name="transA">A is stored [k, m] and used transposed.</param>
    /// <param name="m">Rows of op(A) and C.</param>
    /// <param name="alpha">Scale of the product.</param>
    /// <param name="a">A's elements.</param>
    /// <param name="lda">Row stride of A as stored.</param>
    /// <param name="b">B from <see cref="PackB"/>; it fixes k and n.</param>
    /// <param name="beta">Scale of C's previous contents; 0 overwrites (C is not read).</param>
    /// <param name="c">C's elements.</param>
    /// <param name="ldc">Row stride of C (≥ n).</param>
    /// <param name="bias">Empty, or n values added to every row of C.</param>
    /// <exception cref="ArgumentException">A dimension is negative, a leading dimension is too small, or a span is too short.</exception>
    public static void Sgemm(
        bool transA, int m, float alpha, ReadOnlySpan<float> a, int lda, GemmPackedB b,
        float beta, Span<float> c, int ldc, ReadOnlySpan<float> bias = default)
    {
        ArgumentNullException.ThrowIfNull(b);
        int n = b.N, k = b.K;
        if (m < 0)
        {
            throw new ArgumentException($"Sgemm: m={m} must be non-negative.");
        }

        CheckOperand("A", transA ? k : m, transA ? m : k, a.Length, lda, transA);
        CheckOperand("C", m, n, c.Length, ldc, false);
        CheckBias(n, bias.Length);
        b.Multiply(ParallelFor.MaxDegreeOfParallelism, transA, m, alpha, a, lda, beta, c, ldc, bias);
    }

    /// <summary>
    /// <see cref="Sgemm(bool, bool, int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, Span{float}, int, ReadOnlySpan{float})"/>
    /// for a C that nothing reads soon (a weight gradient, read by the optimizer after the whole backward): with beta 0,
    /// k in one block and C 64-byte aligned with ldc a multiple of 16, its whole tiles are written with non-temporal
    /// stores, so no line of C is read from memory before it is overwritten. The same values as Sgemm, bit for bit.
    /// </summary>
    internal static unsafe void SgemmStreamC(
        bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc)
    {
        Validate(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc, 0);
        SgemmCore(GemmDriver.BestIsa, ParallelFor.MaxDegreeOfParallelism, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, default, streamC: true);
    }

    /// <summary>The micro-kernel this process runs, e.g. "Vector512 12×32" or "scalar reference" (for benchmark reports).</summary>
    public static string KernelDescription => GemmDriver.BestIsa == GemmIsa.Scalar
        ? "scalar reference"
        : $"{GemmDriver.BestIsa} {GemmDriver.Mr(GemmDriver.BestIsa)}×{GemmDriver.Nr(GemmDriver.BestIsa)}";

    /// <summary>The fast path after validation: <paramref name="isa"/>'s micro-kernel on up to <paramref name="maxThreads"/> threads.</summary>
    internal static unsafe void SgemmCore(
        GemmIsa isa, int maxThreads, bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc, ReadOnlySpan<float> bias, bool streamC = false)
    {
        if (isa == GemmIsa.Scalar)
        {
            Reference(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias);
            return;
        }

        fixed (float* pa = a, pb = b, pc = c, pbias = bias)
        {
            GemmDriver.Run(isa, maxThreads, transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc, bias.IsEmpty ? null : pbias, null, streamC);
        }
    }

    /// <summary>The batched fast path after validation.</summary>
    internal static unsafe void SgemmBatchedCore(
        GemmIsa isa, int maxThreads, bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, long strideA, ReadOnlySpan<float> b, int ldb, long strideB,
        float beta, Span<float> c, int ldc, long strideC, int batch, ReadOnlySpan<float> bias)
    {
        if (batch == 0 || m == 0 || n == 0) return;
        if (isa == GemmIsa.Scalar)
        {
            for (int i = 0; i < batch; i++)
            {
                Reference(transA, transB, m, n, k, alpha, a[(int)(i * strideA)..], lda, b[(int)(i * strideB)..], ldb, beta, c[(int)(i * strideC)..], ldc, bias);
            }

            return;
        }

        fixed (float* pa = a, pb = b, pc = c, pbias = bias)
        {
            GemmBatch batched = GemmBatch.Rent(isa, transA, transB, m, n, k, alpha, pa, lda, strideA, pb, ldb, strideB, beta, pc, ldc, strideC, bias.IsEmpty ? null : pbias);
            try
            {
                double flops = 2.0 * m * n * k;
                if (maxThreads <= 1 || flops * batch < GemmDriver.ParallelFlops)
                {
                    batched.Run(0, batch, 1);
                }
                else if (batch < 2 * maxThreads && flops >= GemmDriver.ParallelFlops)
                {
                    // Few large products: each one is split into tiles across all threads.
                    batched.Run(0, batch, maxThreads);
                }
                else
                {
                    // Many products: one thread per product keeps each product's packed panels in one core's caches.
                    ParallelFor.For(batch, 1, batched.RunOne);
                }
            }
            finally
            {
                batched.Return();
            }
        }
    }

    /// <summary>The scalar reference: plain triple loop in double-free float, the test oracle and the fallback.</summary>
    internal static void Reference(
        bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc, ReadOnlySpan<float> bias)
    {
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                float sum = 0f;
                for (int p = 0; p < k; p++)
                {
                    float av = transA ? a[(p * lda) + i] : a[(i * lda) + p];
                    float bv = transB ? b[(j * ldb) + p] : b[(p * ldb) + j];
                    sum += av * bv;
                }

                float prior = beta == 0f ? 0f : beta * c[(i * ldc) + j];
                c[(i * ldc) + j] = (alpha * sum) + prior + (bias.IsEmpty ? 0f : bias[j]);
            }
        }
    }

    internal static void Validate(
        bool transA, bool transB, int m, int n, int k, int aLength, int lda, int bLength, int ldb, int cLength, int ldc, int biasLength)
    {
        if (m < 0 || n < 0 || k < 0)
        {
            throw new ArgumentException($"Sgemm: dimensions m={m}, n={n}, k={k} must be non-negative.");
        }

        int aRows = transA ? k : m, aCols = transA ? m : k;
        int bRows = transB ? n : k, bCols = transB ? k : n;
        CheckOperand("A", aRows, aCols, aLength, lda, transA);
        CheckOperand("B", bRows, bCols, bLength, ldb, transB);
        CheckOperand("C", m, n, cLength, ldc, false);
        CheckBias(n, biasLength);
    }

    internal static void ValidateBatched(
        bool transA, bool transB, int m, int n, int k, int aLength, int lda, long strideA, int bLength, int ldb, long strideB,
        int cLength, int ldc, long strideC, int batch, int biasLength)
    {
        if (batch < 0 || strideA < 0 || strideB < 0 || strideC < 0)
        {
            throw new ArgumentException($"SgemmBatched: batch={batch} and the strides (A {strideA}, B {strideB}, C {strideC}) must be non-negative.");
        }

        if (batch == 0)
        {
            return;
        }

        // The last matrix of each operand must fit: validate it as if its span started at its offset.
        long last = batch - 1L;
        Validate(
            transA, transB, m, n, k,
            Remaining(aLength, last * strideA, "A"), lda, Remaining(bLength, last * strideB, "B"), ldb,
            Remaining(cLength, last * strideC, "C"), ldc, biasLength);
        long cExtent = m == 0 || n == 0 ? 0 : ((long)(m - 1) * ldc) + n;
        if (batch > 1 && strideC < cExtent)
        {
            throw new ArgumentException(
                $"SgemmBatched: the C matrices overlap: strideC is {strideC} but one C [{m}, {n}] with ldc {ldc} spans {cExtent} elements; give each product its own C (strideC ≥ {cExtent}).");
        }
    }

    private static int Remaining(int length, long offset, string name)
    {
        if (offset > length)
        {
            throw new ArgumentException($"SgemmBatched: the last {name} matrix starts at element {offset} but the span holds only {length}; check batch and stride{name}.");
        }

        return (int)(length - offset);
    }

    private static void CheckBias(int n, int biasLength)
    {
        if (biasLength != 0 && biasLength < n)
        {
            throw new ArgumentException($"Sgemm: bias has {biasLength} values but C has {n} columns.");
        }
    }

    private static void CheckOperand(string name, int rows, int cols, int length, int ld, bool transposed)
    {
        if (rows == 0 || cols == 0)
        {
            return;
        }

        string layout = transposed ? " (transposed)" : string.Empty;
        if (ld < cols)
        {
            throw new ArgumentException($"Sgemm: {name} is stored [{rows}, {cols}]{layout} but its leading dimension is {ld} < {cols}; pass the stored row length (or more) as ld{name.ToLowerInvariant()}.");
        }

        long needed = ((long)(rows - 1) * ld) + cols;
        if (length < needed)
        {
            throw new ArgumentException($"Sgemm: {name} is stored [{rows}, {cols}]{layout} with leading dimension {ld} and needs {needed} elements, but the span holds {length}.");
        }
    }
}
