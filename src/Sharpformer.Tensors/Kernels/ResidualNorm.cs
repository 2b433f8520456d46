using System.Diagnostics;
using System.Numerics.Tensors;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Kernels;

/// <summary>
/// Residual add fused with LayerNorm, the post-LN transformer step y = LayerNorm(x + residual): one call that keeps
/// each row in L1 between the add and the normalization, instead of writing the sum to memory and reading it back.
/// </summary>
public static class ResidualNorm
{
    /// <summary>[N, C], [N, C] → [N, C]: y = (s − mean(s)) · rstd · gamma + beta with s = x + residual per row, rstd = 1/√(var + eps).</summary>
    /// <param name="x">Sublayer output, N · C elements.</param>
    /// <param name="residual">The skip connection, N · C elements.</param>
    /// <param name="gamma">Scale [C].</param>
    /// <param name="beta">Shift [C].</param>
    /// <param name="y">Output, N · C elements; may be <paramref name="x"/> or <paramref name="residual"/>.</param>
    /// <param name="rows">N.</param>
    /// <param name="cols">C.</param>
    /// <param name="eps">Added to the variance.</param>
    /// <exception cref="ArgumentException">A span is too short.</exception>
    public static unsafe void AddLayerNorm(
        ReadOnlySpan<float> x, ReadOnlySpan<float> residual, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, Span<float> y,
        int rows, int cols, float eps)
    {
        long n = (long)rows * cols;
        if (rows < 0 || cols < 0 || x.Length < n || residual.Length < n || y.Length < n || gamma.Length < cols || beta.Length < cols)
        {
            throw new ArgumentException(
                $"ResidualNorm.AddLayerNorm: rows={rows}, cols={cols} need x, residual, y of {n} and gamma, beta of {cols} elements; got {x.Length}, {residual.Length}, {y.Length}, {gamma.Length}, {beta.Length}.");
        }

        if (!RowParallel.Worth(rows, cols))
        {
            Rows(x, residual, gamma, beta, y, 0, rows, cols, eps);
            return;
        }

        fixed (float* px = x, pr = residual, pg = gamma, pb = beta, py = y)
        {
            nint ax = (nint)px, ar = (nint)pr, ag = (nint)pg, ab = (nint)pb, ay = (nint)py;
            int len = (int)n;
            ParallelFor.For(rows, RowParallel.Grain(cols), (start, end) => Rows(
                new ReadOnlySpan<float>((void*)ax, len), new ReadOnlySpan<float>((void*)ar, len),
                new ReadOnlySpan<float>((void*)ag, cols), new ReadOnlySpan<float>((void*)ab, cols),
                new Span<float>((void*)ay, len), start, end, cols, eps));
        }
    }

    private static void Rows(
        ReadOnlySpan<float> x, ReadOnlySpan<float> residual, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, Span<float> y,
        int start, int end, int cols, float eps)
    {
        for (int r = start; r < end; r++)
        {
            var yr = y.Slice(r * cols, cols);
            TensorPrimitives.Add(x.Slice(r * cols, cols), residual.Slice(r * cols, cols), yr);
            float mean = TensorPrimitives.Sum<float>(yr) / cols;
            // Two passes over the row (in L1): subtract the mean first so the variance does not cancel catastrophically.
            TensorPrimitives.Subtract(yr, mean, yr);
            float variance = TensorPrimitives.SumOfSquares<float>(yr) / cols;
            float rstd = 1f / MathF.Sqrt(variance + eps);
            Debug.Assert(float.IsFinite(rstd) || !float.IsFinite(variance), "rstd is finite for finite input");
            TensorPrimitives.Multiply(yr, rstd, yr);
            TensorPrimitives.MultiplyAdd(yr, gamma, beta, yr);
        }
    }

    /// <summary>Scalar reference of <see cref="AddLayerNorm"/> in double precision (the test oracle).</summary>
    internal static void AddLayerNormReference(
        ReadOnlySpan<float> x, ReadOnlySpan<float> residual, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, Span<float> y,
        int rows, int cols, float eps)
    {
        var s = new double[cols];
        for (int r = 0; r < rows; r++)
        {
            double mean = 0;
            for (int c = 0; c < cols; c++)
            {
                s[c] = (double)x[(r * cols) + c] + residual[(r * cols) + c];
                mean += s[c];
            }

            mean /= cols;
            double variance = 0;
            for (int c = 0; c < cols; c++) variance += (s[c] - mean) * (s[c] - mean);
            double rstd = 1.0 / Math.Sqrt((variance / cols) + eps);
            for (int c = 0; c < cols; c++) y[(r * cols) + c] = (float)(((s[c] - mean) * rstd * gamma[c]) + beta[c]);
        }
    }
}
