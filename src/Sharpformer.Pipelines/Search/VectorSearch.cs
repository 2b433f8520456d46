using System.Numerics;
using System.Runtime.InteropServices;

namespace Sharpformer.Pipelines;

/// <summary>Exact nearest neighbours by cosine over a row-major [N, C] matrix: one dot product per row, no approximation.</summary>
public static class VectorSearch
{
    /// <summary>a·b with <see cref="Vector{T}"/> lanes (float accumulation per lane, lanes summed at the end); <see cref="DotScalar"/> is the reference.</summary>
    /// <exception cref="ArgumentException">The spans differ in length.</exception>
    public static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length)
        {
            throw new ArgumentException($"Dot: the vectors have {a.Length} and {b.Length} values; they must have the same length C.");
        }

        int i = 0;
        float sum = 0;
        if (Vector.IsHardwareAccelerated && a.Length >= Vector<float>.Count)
        {
            var va = MemoryMarshal.Cast<float, Vector<float>>(a);
            var vb = MemoryMarshal.Cast<float, Vector<float>>(b);
            var acc = Vector<float>.Zero;
            for (int v = 0; v < va.Length; v++)
            {
                acc += va[v] * vb[v];
            }

            sum = Vector.Sum(acc);
            i = va.Length * Vector<float>.Count;
        }

        for (; i < a.Length; i++)
        {
            sum += a[i] * b[i];
        }

        return sum;
    }

    /// <summary>a·b one element at a time, accumulated in double: the reference for <see cref="Dot"/>.</summary>
    /// <exception cref="ArgumentException">The spans differ in length.</exception>
    public static float DotScalar(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length)
        {
            throw new ArgumentException($"DotScalar: the vectors have {a.Length} and {b.Length} values; they must have the same length C.");
        }

        double sum = 0;
        for (int i = 0; i < a.Length; i++)
        {
            sum += (double)a[i] * b[i];
        }

        return (float)sum;
    }

    /// <summary>
    /// The <paramref name="k"/> rows of <paramref name="matrix"/> most similar to <paramref name="query"/> by cosine
    /// (a·r / (max(‖a‖, 1e-8)·max(‖r‖, 1e-8)), as <see cref="Similarity.Cosine"/>), best first; ties go to the lower row.
    /// </summary>
    /// <param name="matrix">N rows of C values, row-major.</param>
    /// <param name="channels">C.</param>
    /// <param name="query">C values.</param>
    /// <param name="k">How many rows to return (fewer when N is smaller).</param>
    /// <returns>(row, score) pairs, best first.</returns>
    /// <exception cref="ArgumentException">The matrix is not a whole number of rows of C, the query is not C long, or k is below 1.</exception>
    public static IReadOnlyList<(int Row, float Score)> TopK(ReadOnlySpan<float> matrix, int channels, ReadOnlySpan<float> query, int k)
    {
        if (channels <= 0 || matrix.Length % channels != 0 || query.Length != channels)
        {
            throw new ArgumentException($"TopK: the matrix has {matrix.Length} values and the query {query.Length}; expected rows of C {channels} and a query of C.");
        }

        if (k < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(k), k, $"TopK: k is {k}; ask for at least 1 result.");
        }

        int rows = matrix.Length / channels;
        double queryNorm = Math.Max(Math.Sqrt(VectorSearch.DotScalar(query, query)), 1e-8);
        var scores = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            var row = matrix.Slice(r * channels, channels);
            double rowNorm = Math.Max(Math.Sqrt(Dot(row, row)), 1e-8);
            scores[r] = (float)(Dot(query, row) / (queryNorm * rowNorm));
        }

        var order = new int[rows];
        for (int r = 0; r < rows; r++)
        {
            order[r] = r;
        }

        Array.Sort(order, (x, y) =>
        {
            int byScore = scores[y].CompareTo(scores[x]);
            return byScore != 0 ? byScore : x.CompareTo(y);
        });

        var result = new List<(int, float)>(Math.Min(k, rows));
        for (int i = 0; i < Math.Min(k, rows); i++)
        {
            result.Add((order[i], scores[order[i]]));
        }

        return result;
    }
}
