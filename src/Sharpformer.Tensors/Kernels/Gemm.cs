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
    public static void Sgemm(
        bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc, ReadOnlySpan<float> bias = default)
    {
        Validate(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc, bias.Length);
        Reference(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias);
    }

    /// <summary>
    /// <paramref name="batch"/> independent <see cref="Sgemm"/> calls; matrix i of A, B, C starts at
    /// i · <paramref name="strideA"/>, i · <paramref name="strideB"/>, i · <paramref name="strideC"/> (a stride of 0 broadcasts).
    /// </summary>
    public static void SgemmBatched(
        bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, long strideA, ReadOnlySpan<float> b, int ldb, long strideB,
        float beta, Span<float> c, int ldc, long strideC, int batch, ReadOnlySpan<float> bias = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(batch);
        for (int i = 0; i < batch; i++)
        {
            Sgemm(transA, transB, m, n, k, alpha, a[(int)(i * strideA)..], lda, b[(int)(i * strideB)..], ldb, beta, c[(int)(i * strideC)..], ldc, bias);
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

        if (ld < cols)
        {
            throw new ArgumentException($"Sgemm: {name} is stored [{rows}, {cols}]{(transposed ? " (transposed)" : string.Empty)} but its leading dimension is {ld} < {cols}.");
        }

        long needed = ((long)(rows - 1) * ld) + cols;
        if (length < needed)
        {
            throw new ArgumentException($"Sgemm: {name} is stored [{rows}, {cols}] with leading dimension {ld} and needs {needed} elements, but the span holds {length}.");
        }
    }
}
