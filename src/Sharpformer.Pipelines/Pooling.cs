namespace Sharpformer.Pipelines;

/// <summary>Sentence-transformers pooling: mean over real tokens, then L2 normalisation.</summary>
public static class Pooling
{
    /// <summary>
    /// [B, T, C] hidden, [B, T] attention mask → [B, C]: the mean of the vectors whose mask is non-zero, as
    /// sentence-transformers' mean pooling (sum of masked vectors over max(token count, 1e-9)).
    /// </summary>
    /// <exception cref="ArgumentException">The spans do not hold B·T·C and B·T values.</exception>
    public static float[] MeanPool(ReadOnlySpan<float> hidden, ReadOnlySpan<int> attentionMask, int batch, int seq, int channels)
    {
        if (batch < 0 || seq < 0 || channels < 0 || hidden.Length != (long)batch * seq * channels || attentionMask.Length != (long)batch * seq)
        {
            throw new ArgumentException(
                $"MeanPool: hidden has {hidden.Length} values and the mask {attentionMask.Length}; expected B {batch} × T {seq} × C {channels} and B × T.");
        }

        var pooled = new float[batch * channels];
        var sum = new double[channels];
        for (var b = 0; b < batch; b++)
        {
            Array.Clear(sum);
            var count = 0;
            for (var t = 0; t < seq; t++)
            {
                if (attentionMask[(b * seq) + t] == 0)
                {
                    continue;
                }

                count++;
                var row = hidden.Slice(((b * seq) + t) * channels, channels);
                for (var j = 0; j < channels; j++)
                {
                    sum[j] += row[j];
                }
            }

            // sentence-transformers clamps the count at 1e-9, so an all-padding row pools to zeros rather than NaN.
            var denominator = Math.Max(count, 1e-9);
            for (var j = 0; j < channels; j++)
            {
                pooled[(b * channels) + j] = (float)(sum[j] / denominator);
            }
        }

        return pooled;
    }

    /// <summary>[N, C] → [N, C] in place: each row divided by max(‖row‖₂, 1e-12), as torch.nn.functional.normalize.</summary>
    /// <exception cref="ArgumentException">The span length is not a multiple of <paramref name="channels"/>.</exception>
    public static void L2Normalize(Span<float> rows, int channels)
    {
        if (channels <= 0 || rows.Length % channels != 0)
        {
            throw new ArgumentException($"L2Normalize: {rows.Length} values do not split into rows of C {channels}.", nameof(channels));
        }

        for (var start = 0; start < rows.Length; start += channels)
        {
            var row = rows.Slice(start, channels);
            double squares = 0;
            foreach (var value in row)
            {
                squares += (double)value * value;
            }

            var inv = (float)(1 / Math.Max(Math.Sqrt(squares), 1e-12));
            for (var j = 0; j < row.Length; j++)
            {
                row[j] *= inv;
            }
        }
    }
}
