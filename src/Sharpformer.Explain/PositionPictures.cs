namespace Sharpformer.Explain;

/// <summary>
/// Position encodings as pictures: the sinusoidal table of Vaswani et al. for any length and width, and the
/// summaries the page draws for any table (learned, sinusoidal or rotary).
/// </summary>
public static class PositionPictures
{
    /// <summary>
    /// The sinusoidal encoding [length, width], row-major: PE(p, 2i) = sin(p / 10000^(2i/width)),
    /// PE(p, 2i + 1) = cos(p / 10000^(2i/width)) — the picture of the paper (position down, dimension across), computed
    /// in double precision. An odd width ends with a sine column.
    /// </summary>
    /// <param name="length">Positions (rows), at least 1.</param>
    /// <param name="width">Dimensions (columns), at least 1.</param>
    /// <returns>The table.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A size is below 1 or the table would exceed 2^28 values.</exception>
    public static float[] Sinusoidal(int length, int width)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(length, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        if ((long)length * width > 1 << 28)
        {
            throw new ArgumentOutOfRangeException(nameof(length), $"PositionPictures.Sinusoidal: {length} × {width} values is too large to draw; use at most 2^28.");
        }

        var table = new float[length * width];
        for (int p = 0; p < length; p++)
        {
            for (int j = 0; j < width; j++)
            {
                double angle = p / Math.Pow(10000.0, 2.0 * (j / 2) / width);
                table[(p * width) + j] = (float)(j % 2 == 0 ? Math.Sin(angle) : Math.Cos(angle));
            }
        }

        return table;
    }

    /// <summary>
    /// The cosine similarity of each row of an additive position table [length, width] with row 0: how alike two
    /// positions look to the model as a function of their distance.
    /// </summary>
    /// <param name="table">The table, row-major.</param>
    /// <param name="length">Rows.</param>
    /// <param name="width">Columns.</param>
    /// <returns>length values; 1 at position 0 (0 where a row is all zeros).</returns>
    /// <exception cref="ArgumentException">The sizes do not match the table.</exception>
    public static float[] SimilarityToFirst(ReadOnlySpan<float> table, int length, int width)
    {
        if (length < 1 || width < 1 || (long)length * width != table.Length)
        {
            throw new ArgumentException($"PositionPictures.SimilarityToFirst: {table.Length} values do not make a [{length}, {width}] table.", nameof(table));
        }

        var first = table[..width];
        double firstNorm = Norm(first);
        var result = new float[length];
        for (int p = 0; p < length; p++)
        {
            var row = table.Slice(p * width, width);
            double dot = 0;
            for (int j = 0; j < width; j++) dot += (double)row[j] * first[j];
            double denominator = firstNorm * Norm(row);
            result[p] = denominator > 0 ? (float)(dot / denominator) : 0f;
        }

        return result;
    }

    /// <summary>
    /// Rotary angles [length, pairs] (angle(p, i) = p·θ_i) → (cos, sin, relative), each table [length, pairs] row-major,
    /// and relative[p] = mean_i cos(angle(p, i) − angle(0, i)): the factor by which rotary scales the dot product of a
    /// query at position 0 and a key at position p whose pairs are equal — its relative-position fingerprint.
    /// </summary>
    /// <param name="angles">The angles in radians, row-major.</param>
    /// <param name="length">Positions.</param>
    /// <param name="pairs">Frequency pairs (D/2).</param>
    /// <returns>The cos table, the sin table and the relative profile.</returns>
    /// <exception cref="ArgumentException">The sizes do not match.</exception>
    public static (float[] Cos, float[] Sin, float[] Relative) Rotary(ReadOnlySpan<float> angles, int length, int pairs)
    {
        if (length < 1 || pairs < 1 || (long)length * pairs != angles.Length)
        {
            throw new ArgumentException($"PositionPictures.Rotary: {angles.Length} angles do not make a [{length}, {pairs}] table.", nameof(angles));
        }

        var cos = new float[angles.Length];
        var sin = new float[angles.Length];
        var relative = new float[length];
        for (int p = 0; p < length; p++)
        {
            double sum = 0;
            for (int i = 0; i < pairs; i++)
            {
                float a = angles[(p * pairs) + i];
                cos[(p * pairs) + i] = MathF.Cos(a);
                sin[(p * pairs) + i] = MathF.Sin(a);
                sum += Math.Cos(a - angles[i]);
            }

            relative[p] = (float)(sum / pairs);
        }

        return (cos, sin, relative);
    }

    private static double Norm(ReadOnlySpan<float> row)
    {
        double sum = 0;
        foreach (float v in row) sum += (double)v * v;
        return Math.Sqrt(sum);
    }
}
