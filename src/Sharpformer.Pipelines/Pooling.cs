namespace Sharpformer.Pipelines;

/// <summary>Sentence-transformers pooling (every mode of <c>sentence_transformers.models.Pooling</c>) and L2 normalisation.</summary>
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

    /// <summary>
    /// [B, T, C] hidden, [B, T] attention mask → [B, K·C], the K modes of <paramref name="config"/> concatenated in
    /// sentence-transformers' order (cls, max, mean, mean-sqrt-len, weighted mean, last token), computed exactly as
    /// <c>sentence_transformers.models.Pooling.forward</c>. When the config leaves the prompt out, the first
    /// <paramref name="promptLength"/> positions ([CLS] and the prompt's tokens) count as masked for every mode but cls.
    /// </summary>
    /// <param name="hidden">B·T·C token vectors.</param>
    /// <param name="attentionMask">B·T mask (1 real, 0 padding).</param>
    /// <param name="batch">B.</param>
    /// <param name="seq">T.</param>
    /// <param name="channels">C.</param>
    /// <param name="config">The modes.</param>
    /// <param name="promptLength">Tokens of the prompt, [CLS] included (0: no prompt).</param>
    /// <returns>B·K·C pooled values.</returns>
    /// <exception cref="ArgumentException">The spans do not hold B·T·C and B·T values, or no mode is on.</exception>
    public static float[] Pool(ReadOnlySpan<float> hidden, ReadOnlySpan<int> attentionMask, int batch, int seq, int channels, PoolingConfig config, int promptLength = 0)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (batch < 0 || seq < 0 || channels < 0 || hidden.Length != (long)batch * seq * channels || attentionMask.Length != (long)batch * seq)
        {
            throw new ArgumentException(
                $"Pool: hidden has {hidden.Length} values and the mask {attentionMask.Length}; expected B {batch} × T {seq} × C {channels} and B × T.");
        }

        int modes = config.ModeCount;
        if (modes == 0)
        {
            throw new ArgumentException("Pool: the pooling config has no mode on; turn on one of ClsToken, MaxTokens, MeanTokens, MeanSqrtLenTokens, WeightedMeanTokens, LastToken.", nameof(config));
        }

        int width = modes * channels;
        var pooled = new float[batch * width];
        var mask = new int[seq];
        var sum = new double[channels];
        for (var b = 0; b < batch; b++)
        {
            attentionMask.Slice(b * seq, seq).CopyTo(mask);
            if (!config.IncludePrompt)
            {
                mask.AsSpan(0, Math.Min(promptLength, seq)).Clear();
            }

            var rows = hidden.Slice(b * seq * channels, seq * channels);
            var output = pooled.AsSpan(b * width, width);
            var slot = 0;
            if (config.ClsToken)
            {
                rows[..channels].CopyTo(output);
                slot++;
            }

            if (config.MaxTokens)
            {
                // Masked positions take -1e9 (not -inf), so a row with no real token pools to -1e9.
                var max = output.Slice(slot++ * channels, channels);
                max.Fill(float.NegativeInfinity);
                for (var t = 0; t < seq; t++)
                {
                    for (var j = 0; j < channels; j++)
                    {
                        max[j] = Math.Max(max[j], mask[t] == 0 ? -1e9f : rows[(t * channels) + j]);
                    }
                }
            }

            if (config.MeanTokens || config.MeanSqrtLenTokens)
            {
                var count = WeightedSum(rows, mask, channels, sum, positionWeights: false);
                var clamped = Math.Max(count, 1e-9);
                if (config.MeanTokens)
                {
                    Store(sum, clamped, output.Slice(slot++ * channels, channels));
                }

                if (config.MeanSqrtLenTokens)
                {
                    Store(sum, Math.Sqrt(clamped), output.Slice(slot++ * channels, channels));
                }
            }

            if (config.WeightedMeanTokens)
            {
                var weights = WeightedSum(rows, mask, channels, sum, positionWeights: true);
                Store(sum, Math.Max(weights, 1e-9), output.Slice(slot++ * channels, channels));
            }

            if (config.LastToken)
            {
                // The last position whose mask is 1; none: zeros (sentence-transformers gathers a masked-out row).
                var last = output.Slice(slot * channels, channels);
                last.Clear();
                for (var t = seq - 1; t >= 0; t--)
                {
                    if (mask[t] != 0)
                    {
                        rows.Slice(t * channels, channels).CopyTo(last);
                        break;
                    }
                }
            }
        }

        return pooled;
    }

    /// <summary>sum[j] = Σₜ wₜ·mask[t]·row[t][j] with wₜ = t + 1 or 1; returns Σₜ wₜ·mask[t].</summary>
    private static double WeightedSum(ReadOnlySpan<float> rows, int[] mask, int channels, double[] sum, bool positionWeights)
    {
        Array.Clear(sum);
        double total = 0;
        for (var t = 0; t < mask.Length; t++)
        {
            if (mask[t] == 0)
            {
                continue;
            }

            double weight = positionWeights ? t + 1 : 1;
            total += weight;
            var row = rows.Slice(t * channels, channels);
            for (var j = 0; j < channels; j++)
            {
                sum[j] += weight * row[j];
            }
        }

        return total;
    }

    private static void Store(double[] sum, double denominator, Span<float> destination)
    {
        for (var j = 0; j < destination.Length; j++)
        {
            destination[j] = (float)(sum[j] / denominator);
        }
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
