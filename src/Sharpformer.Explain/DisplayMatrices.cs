namespace Sharpformer.Explain;

/// <summary>Building <see cref="DisplayMatrix"/> values: exact when small, block mean/min/max when large.</summary>
public static class DisplayMatrices
{
    /// <summary>
    /// A row-major [rows, cols] matrix → at most <paramref name="maxRows"/> × <paramref name="maxCols"/> cells. Side n
    /// is cut into m = min(n, max) contiguous blocks, block i covering ⌊i·n/m⌋ … ⌊(i + 1)·n/m⌋ − 1.
    /// </summary>
    /// <param name="values">The matrix, row-major.</param>
    /// <param name="rows">Its rows.</param>
    /// <param name="cols">Its columns.</param>
    /// <param name="maxRows">The most displayed rows.</param>
    /// <param name="maxCols">The most displayed columns.</param>
    /// <returns>The display matrix (the values themselves, copied, when it fits).</returns>
    /// <exception cref="ArgumentException">The sizes do not match or a limit is below 1.</exception>
    public static DisplayMatrix Create(ReadOnlySpan<float> values, int rows, int cols, int maxRows, int maxCols)
    {
        if (rows < 1 || cols < 1 || (long)rows * cols != values.Length)
        {
            throw new ArgumentException($"DisplayMatrices.Create: {values.Length} values do not make a [{rows}, {cols}] matrix.", nameof(values));
        }

        if (maxRows < 1 || maxCols < 1)
        {
            throw new ArgumentException($"DisplayMatrices.Create: the display limits must be positive, got {maxRows} × {maxCols}.", nameof(maxRows));
        }

        var rowStarts = Starts(rows, Math.Min(rows, maxRows));
        var colStarts = Starts(cols, Math.Min(cols, maxCols));
        int outRows = rowStarts.Length - 1, outCols = colStarts.Length - 1;
        if (outRows == rows && outCols == cols)
        {
            return new DisplayMatrix(rows, cols, rowStarts, colStarts, values.ToArray(), null, null);
        }

        var mean = new float[outRows * outCols];
        var min = new float[outRows * outCols];
        var max = new float[outRows * outCols];
        for (int bi = 0; bi < outRows; bi++)
        {
            for (int bj = 0; bj < outCols; bj++)
            {
                double sum = 0;
                float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
                for (int i = rowStarts[bi]; i < rowStarts[bi + 1]; i++)
                {
                    for (int j = colStarts[bj]; j < colStarts[bj + 1]; j++)
                    {
                        float v = values[(i * cols) + j];
                        sum += v;
                        lo = Math.Min(lo, v);
                        hi = Math.Max(hi, v);
                    }
                }

                int count = (rowStarts[bi + 1] - rowStarts[bi]) * (colStarts[bj + 1] - colStarts[bj]);
                mean[(bi * outCols) + bj] = (float)(sum / count);
                min[(bi * outCols) + bj] = lo;
                max[(bi * outCols) + bj] = hi;
            }
        }

        return new DisplayMatrix(rows, cols, rowStarts, colStarts, mean, min, max);
    }

    /// <summary>m + 1 block boundaries over n: ⌊i·n/m⌋ for i = 0 … m.</summary>
    internal static int[] Starts(int n, int m)
    {
        var starts = new int[m + 1];
        for (int i = 0; i <= m; i++)
        {
            starts[i] = (int)((long)i * n / m);
        }

        return starts;
    }
}
