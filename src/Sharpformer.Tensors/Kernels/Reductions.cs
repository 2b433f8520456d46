using System.Numerics.Tensors;

namespace Sharpformer.Tensors.Kernels;

/// <summary>
/// Reductions over contiguous floats: whole-span sum and max, per-row sum/max/mean ([rows, cols] → [rows]) and column
/// sums ([rows, cols] → [cols], the bias gradient: Σ over tokens of dY). Fast paths call <see cref="TensorPrimitives"/>
/// row by row; the scalar references accumulate in double and are the test oracle.
/// </summary>
public static class Reductions
{
    /// <summary>[N] → scalar: Σ x (0 for an empty span).</summary>
    /// <param name="x">Values.</param>
    /// <returns>The sum.</returns>
    public static float Sum(ReadOnlySpan<float> x) => TensorPrimitives.Sum(x);

    /// <summary>[N] → scalar: max x; NaN if any element is NaN.</summary>
    /// <param name="x">Values; must not be empty.</param>
    /// <returns>The largest value.</returns>
    /// <exception cref="ArgumentException"><paramref name="x"/> is empty.</exception>
    public static float Max(ReadOnlySpan<float> x)
    {
        if (x.IsEmpty) KernelChecks.Invalid("Reductions.Max", nameof(x), "the input is empty; the maximum of no values is undefined.");
        return TensorPrimitives.Max(x);
    }

    /// <summary>[rows, cols] → [rows]: destination[r] = Σ_c x[r, c].</summary>
    /// <param name="x">The matrix, rows · cols elements.</param>
    /// <param name="destination">Row sums, rows elements (overwritten).</param>
    /// <param name="rows">Number of rows.</param>
    /// <param name="cols">Number of columns.</param>
    /// <exception cref="ArgumentException">A size is negative or a span is too short.</exception>
    public static void SumRows(ReadOnlySpan<float> x, Span<float> destination, int rows, int cols)
    {
        CheckRows("Reductions.SumRows", x, destination, rows, cols);
        for (int r = 0; r < rows; r++) destination[r] = TensorPrimitives.Sum(x.Slice(r * cols, cols));
    }

    /// <summary>[rows, cols] → [rows]: destination[r] = (1/cols) · Σ_c x[r, cols].</summary>
    /// <param name="x">The matrix, rows · cols elements.</param>
    /// <param name="destination">Row means, rows elements (overwritten); NaN when cols is 0.</param>
    /// <param name="rows">Number of rows.</param>
    /// <param name="cols">Number of columns.</param>
    /// <exception cref="ArgumentException">A size is negative or a span is too short.</exception>
    public static void MeanRows(ReadOnlySpan<float> x, Span<float> destination, int rows, int cols)
    {
        CheckRows("Reductions.MeanRows", x, destination, rows, cols);
        for (int r = 0; r < rows; r++) destination[r] = TensorPrimitives.Sum(x.Slice(r * cols, cols)) / cols;
    }

    /// <summary>[rows, cols] → [rows]: destination[r] = max_c x[r, c]; NaN if the row holds a NaN.</summary>
    /// <param name="x">The matrix, rows · cols elements.</param>
    /// <param name="destination">Row maxima, rows elements (overwritten).</param>
    /// <param name="rows">Number of rows.</param>
    /// <param name="cols">Number of columns; at least 1 when rows &gt; 0.</param>
    /// <exception cref="ArgumentException">A size is negative, cols is 0 with rows &gt; 0, or a span is too short.</exception>
    public static void MaxRows(ReadOnlySpan<float> x, Span<float> destination, int rows, int cols)
    {
        CheckRows("Reductions.MaxRows", x, destination, rows, cols);
        if (rows > 0 && cols == 0) KernelChecks.Invalid("Reductions.MaxRows", nameof(cols), "cols is 0; the maximum of an empty row is undefined.");
        for (int r = 0; r < rows; r++) destination[r] = TensorPrimitives.Max(x.Slice(r * cols, cols));
    }

    /// <summary>[rows, cols] → [cols]: destination[c] (+)= Σ_r x[r, c] (bias gradient from dY).</summary>
    /// <param name="x">The matrix, rows · cols elements.</param>
    /// <param name="destination">Column sums, cols elements.</param>
    /// <param name="rows">Number of rows.</param>
    /// <param name="cols">Number of columns.</param>
    /// <param name="accumulate">true adds into <paramref name="destination"/>; false overwrites it.</param>
    /// <exception cref="ArgumentException">A size is negative or a span is too short.</exception>
    public static void SumColumns(ReadOnlySpan<float> x, Span<float> destination, int rows, int cols, bool accumulate = false)
    {
        KernelChecks.Dims("Reductions.SumColumns", rows, cols);
        KernelChecks.AtLeast("Reductions.SumColumns", "x", x.Length, (long)rows * cols, "[rows={0}, cols={1}]", rows, cols);
        KernelChecks.AtLeast("Reductions.SumColumns", "destination", destination.Length, cols, "[cols={0}]", cols);
        var d = destination[..cols];
        if (!accumulate) d.Clear();
        for (int r = 0; r < rows; r++) TensorPrimitives.Add(d, x.Slice(r * cols, cols), d);
    }

    /// <summary>Scalar reference of <see cref="SumRows"/> (double accumulation).</summary>
    internal static void SumRowsReference(ReadOnlySpan<float> x, Span<float> destination, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            double s = 0;
            for (int c = 0; c < cols; c++) s += x[(r * cols) + c];
            destination[r] = (float)s;
        }
    }

    /// <summary>Scalar reference of <see cref="MaxRows"/>.</summary>
    internal static void MaxRowsReference(ReadOnlySpan<float> x, Span<float> destination, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            float m = float.NegativeInfinity;
            for (int c = 0; c < cols; c++)
            {
                float v = x[(r * cols) + c];
                if (float.IsNaN(v) || float.IsNaN(m)) m = float.NaN;
                else if (v > m) m = v;
            }

            destination[r] = m;
        }
    }

    /// <summary>Scalar reference of <see cref="SumColumns"/> (double accumulation, overwriting).</summary>
    internal static void SumColumnsReference(ReadOnlySpan<float> x, Span<float> destination, int rows, int cols)
    {
        for (int c = 0; c < cols; c++)
        {
            double s = 0;
            for (int r = 0; r < rows; r++) s += x[(r * cols) + c];
            destination[c] = (float)s;
        }
    }

    private static void CheckRows(string op, ReadOnlySpan<float> x, Span<float> destination, int rows, int cols)
    {
        KernelChecks.Dims(op, rows, cols);
        KernelChecks.AtLeast(op, "x", x.Length, (long)rows * cols, "[rows={0}, cols={1}]", rows, cols);
        KernelChecks.AtLeast(op, "destination", destination.Length, rows, "[rows={0}]", rows);
    }
}
