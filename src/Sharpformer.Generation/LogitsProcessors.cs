namespace Sharpformer.Generation;

/// <summary>
/// Hugging Face's logits processors on one row of scores [V], in place. <see cref="Apply"/> runs them in HF's order:
/// repetition penalty, then (when sampling) temperature, top-k, top-p, min-p. Removed tokens become −∞.
/// </summary>
public static class LogitsProcessors
{
    /// <summary>
    /// [V]: HF RepetitionPenaltyLogitsProcessor: every distinct token of <paramref name="previousTokens"/> has its score
    /// divided by <paramref name="penalty"/> when positive, multiplied when negative (so it always becomes less likely for a penalty &gt; 1).
    /// </summary>
    /// <param name="scores">The scores, changed in place.</param>
    /// <param name="previousTokens">The prompt and the tokens generated so far.</param>
    /// <param name="penalty">The penalty; 1 leaves the scores as they are.</param>
    public static void RepetitionPenalty(Span<float> scores, ReadOnlySpan<int> previousTokens, float penalty)
    {
        if (penalty == 1f)
        {
            return;
        }

        // Each distinct token once, as HF gathers/scatters unique positions.
        var seen = new HashSet<int>();
        foreach (int token in previousTokens)
        {
            if ((uint)token < (uint)scores.Length && seen.Add(token))
            {
                float s = scores[token];
                scores[token] = s < 0f ? s * penalty : s / penalty;
            }
        }
    }

    /// <summary>[V]: HF TemperatureLogitsWarper, scores / <paramref name="temperature"/>.</summary>
    /// <param name="scores">The scores, changed in place.</param>
    /// <param name="temperature">&gt; 0.</param>
    public static void Temperature(Span<float> scores, float temperature)
    {
        if (temperature == 1f)
        {
            return;
        }

        for (int i = 0; i < scores.Length; i++)
        {
            scores[i] /= temperature;
        }
    }

    /// <summary>
    /// [V]: HF TopKLogitsWarper: scores below the k-th largest become −∞ (ties with the k-th are kept).
    /// </summary>
    /// <param name="scores">The scores, changed in place.</param>
    /// <param name="topK">K; 0 (or ≥ V) leaves the scores as they are.</param>
    /// <param name="minTokensToKeep">K is raised to at least this.</param>
    public static void TopK(Span<float> scores, int topK, int minTokensToKeep = 1)
    {
        int k = Math.Max(topK, minTokensToKeep);
        if (topK == 0 || k >= scores.Length)
        {
            return;
        }

        var sorted = scores.ToArray();
        Array.Sort(sorted);
        float threshold = sorted[^k];
        for (int i = 0; i < scores.Length; i++)
        {
            if (scores[i] < threshold)
            {
                scores[i] = float.NegativeInfinity;
            }
        }
    }

    /// <summary>
    /// [V]: HF TopPLogitsWarper (nucleus): sort ascending, accumulate softmax probabilities, and remove the tokens whose
    /// running sum stays ≤ 1 − <paramref name="topP"/>; the <paramref name="minTokensToKeep"/> most likely always stay.
    /// </summary>
    /// <param name="scores">The scores, changed in place.</param>
    /// <param name="topP">In (0, 1]; 1 leaves the scores as they are.</param>
    /// <param name="minTokensToKeep">Tokens always kept.</param>
    public static void TopP(Span<float> scores, float topP, int minTokensToKeep = 1)
    {
        if (topP >= 1f)
        {
            return;
        }

        int[] order = AscendingOrder(scores);
        var probs = Softmax(scores);
        float cumulative = 0f;
        for (int r = 0; r < order.Length - minTokensToKeep; r++)
        {
            cumulative += probs[order[r]];
            if (cumulative <= 1f - topP)
            {
                scores[order[r]] = float.NegativeInfinity;
            }
        }
    }

    /// <summary>
    /// [V]: HF MinPLogitsWarper: tokens whose probability is below <paramref name="minP"/> × the top probability become
    /// −∞; the <paramref name="minTokensToKeep"/> most likely always stay.
    /// </summary>
    /// <param name="scores">The scores, changed in place.</param>
    /// <param name="minP">In [0, 1]; 0 leaves the scores as they are.</param>
    /// <param name="minTokensToKeep">Tokens always kept.</param>
    public static void MinP(Span<float> scores, float minP, int minTokensToKeep = 1)
    {
        if (minP <= 0f)
        {
            return;
        }

        var probs = Softmax(scores);
        float threshold = minP * probs.Max();
        int[] order = AscendingOrder(scores);
        for (int r = 0; r < order.Length - minTokensToKeep; r++)
        {
            if (probs[order[r]] < threshold)
            {
                scores[order[r]] = float.NegativeInfinity;
            }
        }
    }

    /// <summary>
    /// [V]: every processor <paramref name="options"/> enables, in HF's order (warpers only when sampling).
    /// </summary>
    /// <param name="scores">The scores, changed in place.</param>
    /// <param name="previousTokens">The prompt and the tokens generated so far (for the repetition penalty).</param>
    /// <param name="options">The options.</param>
    public static void Apply(Span<float> scores, ReadOnlySpan<int> previousTokens, GenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        RepetitionPenalty(scores, previousTokens, options.RepetitionPenalty);
        if (!options.DoSample)
        {
            return;
        }

        Temperature(scores, options.Temperature);
        TopK(scores, options.TopK);
        TopP(scores, options.TopP);
        MinP(scores, options.MinP);
    }

    /// <summary>[V] → [V] softmax in float, −∞ giving 0.</summary>
    internal static float[] Softmax(ReadOnlySpan<float> scores)
    {
        float max = float.NegativeInfinity;
        foreach (float s in scores)
        {
            max = Math.Max(max, s);
        }

        var probs = new float[scores.Length];
        double sum = 0;
        for (int i = 0; i < scores.Length; i++)
        {
            probs[i] = MathF.Exp(scores[i] - max);
            sum += probs[i];
        }

        float inv = (float)(1.0 / sum);
        for (int i = 0; i < probs.Length; i++)
        {
            probs[i] *= inv;
        }

        return probs;
    }

    /// <summary>Indices sorted by ascending score; ties keep index order (stable), so results are reproducible.</summary>
    private static int[] AscendingOrder(ReadOnlySpan<float> scores)
    {
        var keys = scores.ToArray();
        var order = new int[keys.Length];
        for (int i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }

        // Sort by (score, index) so equal scores stay in index order.
        Array.Sort(order, (a, b) => keys[a] != keys[b] ? keys[a].CompareTo(keys[b]) : a.CompareTo(b));
        return order;
    }
}
