namespace Sharpformer.Pipelines;

/// <summary>Cosine similarity between embeddings (sentence-transformers' <c>util.cos_sim</c>).</summary>
public static class Similarity
{
    /// <summary>[C], [C] → a·b / (max(‖a‖, 1e-8)·max(‖b‖, 1e-8)), in [−1, 1]; 0 when either vector is zero.</summary>
    /// <exception cref="ArgumentException">The vectors have different lengths or are empty.</exception>
    public static float Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length || a.Length == 0)
        {
            throw new ArgumentException($"Cosine: the vectors have {a.Length} and {b.Length} values; both must have the same non-zero length C.");
        }

        // Double accumulation: 384+ products of ~0.05 would otherwise lose the last digits cos_sim keeps.
        double dot = 0, na = 0, nb = 0;
        for (var i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            na += (double)a[i] * a[i];
            nb += (double)b[i] * b[i];
        }

        return (float)(dot / (Math.Max(Math.Sqrt(na), 1e-8) * Math.Max(Math.Sqrt(nb), 1e-8)));
    }

    /// <summary>N vectors of C → the [N, N] matrix of pairwise cosines (symmetric, 1 on the diagonal for non-zero vectors).</summary>
    /// <exception cref="ArgumentException">The vectors do not all have the same length.</exception>
    public static float[,] CosineMatrix(IReadOnlyList<float[]> vectors)
    {
        ArgumentNullException.ThrowIfNull(vectors);
        var n = vectors.Count;
        var matrix = new float[n, n];
        for (var i = 0; i < n; i++)
        {
            for (var j = i; j < n; j++)
            {
                matrix[i, j] = matrix[j, i] = Cosine(vectors[i], vectors[j]);
            }
        }

        return matrix;
    }
}
