using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Sharpformer.Tensors.Kernels;

/// <summary>
/// C = A·Bᵀ for a thin A (m ≤ <see cref="MaxRows"/>, decode-like: a few tokens through a Linear layer whose weight
/// B is stored [n, k] and not pre-packed). Packing would transpose all of B for a handful of rows, costing more than
/// the multiply; here both operands are read as they are stored, as dot products along k: 4 rows of A × 4 rows of B
/// per step, 16 vector accumulators, each reduced once at the end.
/// </summary>
internal static unsafe class GemmThinA
{
    /// <summary>Largest m that takes this path; above it, packing B pays for itself.</summary>
    public const int MaxRows = 8;

    /// <summary>Columns [j0, j1) of C for all m rows; validated pointers, B stored [n, k].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(int m, int k, float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, float* bias, int j0, int j1)
    {
        float* sums = stackalloc float[16];
        for (int j = j0; j < j1; j += 4)
        {
            int cols = Math.Min(4, j1 - j);

            // Rows past the end repeat the last valid row: computed, never stored, so the loop has no branches.
            float* b0 = b + ((long)j * ldb);
            float* b1 = b + ((long)(j + Math.Min(1, cols - 1)) * ldb);
            float* b2 = b + ((long)(j + Math.Min(2, cols - 1)) * ldb);
            float* b3 = b + ((long)(j + Math.Min(3, cols - 1)) * ldb);
            for (int i = 0; i < m; i += 4)
            {
                int rows = Math.Min(4, m - i);
                float* a0 = a + ((long)i * lda);
                float* a1 = a + ((long)(i + Math.Min(1, rows - 1)) * lda);
                float* a2 = a + ((long)(i + Math.Min(2, rows - 1)) * lda);
                float* a3 = a + ((long)(i + Math.Min(3, rows - 1)) * lda);
                Dot4x4(a0, a1, a2, a3, b0, b1, b2, b3, k, sums);
                for (int r = 0; r < rows; r++)
                {
                    float* cRow = c + ((long)(i + r) * ldc) + j;
                    for (int q = 0; q < cols; q++)
                    {
                        // The same epilogue as the tiled kernels: alpha · sum, then fused beta · C, then bias.
                        float v = alpha * sums[(r * 4) + q];
                        if (beta != 0f) v = MathF.FusedMultiplyAdd(cRow[q], beta, v);
                        if (bias != null) v += bias[j + q];
                        cRow[q] = v;
                    }
                }
            }
        }
    }

    /// <summary>sums[r · 4 + q] = Σ_p a_r[p] · b_q[p] over p &lt; k.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4x4(float* a0, float* a1, float* a2, float* a3, float* b0, float* b1, float* b2, float* b3, int k, float* sums)
    {
        Vector256<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector256<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector256<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector256<float> c30 = default, c31 = default, c32 = default, c33 = default;
        int p = 0;
        for (; p + 8 <= k; p += 8)
        {
            Vector256<float> x0 = Vector256.Load(b0 + p), x1 = Vector256.Load(b1 + p);
            Vector256<float> x2 = Vector256.Load(b2 + p), x3 = Vector256.Load(b3 + p);
            Vector256<float> y = Vector256.Load(a0 + p);
            c00 = Vector256.FusedMultiplyAdd(y, x0, c00);
            c01 = Vector256.FusedMultiplyAdd(y, x1, c01);
            c02 = Vector256.FusedMultiplyAdd(y, x2, c02);
            c03 = Vector256.FusedMultiplyAdd(y, x3, c03);
            y = Vector256.Load(a1 + p);
            c10 = Vector256.FusedMultiplyAdd(y, x0, c10);
            c11 = Vector256.FusedMultiplyAdd(y, x1, c11);
            c12 = Vector256.FusedMultiplyAdd(y, x2, c12);
            c13 = Vector256.FusedMultiplyAdd(y, x3, c13);
            y = Vector256.Load(a2 + p);
            c20 = Vector256.FusedMultiplyAdd(y, x0, c20);
            c21 = Vector256.FusedMultiplyAdd(y, x1, c21);
            c22 = Vector256.FusedMultiplyAdd(y, x2, c22);
            c23 = Vector256.FusedMultiplyAdd(y, x3, c23);
            y = Vector256.Load(a3 + p);
            c30 = Vector256.FusedMultiplyAdd(y, x0, c30);
            c31 = Vector256.FusedMultiplyAdd(y, x1, c31);
            c32 = Vector256.FusedMultiplyAdd(y, x2, c32);
            c33 = Vector256.FusedMultiplyAdd(y, x3, c33);
        }

        sums[0] = Vector256.Sum(c00);
        sums[1] = Vector256.Sum(c01);
        sums[2] = Vector256.Sum(c02);
        sums[3] = Vector256.Sum(c03);
        sums[4] = Vector256.Sum(c10);
        sums[5] = Vector256.Sum(c11);
        sums[6] = Vector256.Sum(c12);
        sums[7] = Vector256.Sum(c13);
        sums[8] = Vector256.Sum(c20);
        sums[9] = Vector256.Sum(c21);
        sums[10] = Vector256.Sum(c22);
        sums[11] = Vector256.Sum(c23);
        sums[12] = Vector256.Sum(c30);
        sums[13] = Vector256.Sum(c31);
        sums[14] = Vector256.Sum(c32);
        sums[15] = Vector256.Sum(c33);

        // The k tail (k mod 8) in scalar.
        for (; p < k; p++)
        {
            float y0 = a0[p], y1 = a1[p], y2 = a2[p], y3 = a3[p];
            float x0 = b0[p], x1 = b1[p], x2 = b2[p], x3 = b3[p];
            sums[0] += y0 * x0;
            sums[1] += y0 * x1;
            sums[2] += y0 * x2;
            sums[3] += y0 * x3;
            sums[4] += y1 * x0;
            sums[5] += y1 * x1;
            sums[6] += y1 * x2;
            sums[7] += y1 * x3;
            sums[8] += y2 * x0;
            sums[9] += y2 * x1;
            sums[10] += y2 * x2;
            sums[11] += y2 * x3;
            sums[12] += y3 * x0;
            sums[13] += y3 * x1;
            sums[14] += y3 * x2;
            sums[15] += y3 * x3;
        }
    }
}
