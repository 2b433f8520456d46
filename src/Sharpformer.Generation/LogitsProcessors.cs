namespace Sharpformer.Generation;

/// <summary>
/// Hugging Face's logits processors on one row of scores [V], in place. <see cref="Apply"/> runs them in HF's order:
/// repetition penalty, no-repeat n-gram, min new tokens, then (when sampling) temperature, top-k, top-p, min-p.
/// Removed tokens become −∞.
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
    /// [V]: HF NoRepeatNGramLogitsProcessor: every token that would complete an n-gram already present in
    /// <paramref name="previousTokens"/> becomes −∞ (the n-grams are read over the whole sequence so far: the prompt, or
    /// an encoder-decoder's decoder start token, included).
    /// </summary>
    /// <param name="scores">The scores, changed in place.</param>
    /// <param name="previousTokens">The sequence so far.</param>
    /// <param name="ngramSize">n; 0 leaves the scores as they are.</param>
    public static void NoRepeatNgram(Span<float> scores, ReadOnlySpan<int> previousTokens, int ngramSize)
    {
        int length = previousTokens.Length;
        if (ngramSize <= 0 || length + 1 < ngramSize)
        {
            return;
        }

        // The last n − 1 tokens are the prefix; any earlier n-gram that starts with it bans its last token.
        var prefix = previousTokens.Slice(length + 1 - ngramSize, ngramSize - 1);
        for (int start = 0; start + ngramSize <= length; start++)
        {
            if (previousTokens.Slice(start, ngramSize - 1).SequenceEqual(prefix))
            {
                int banned = previousTokens[start + ngramSize - 1];
                if ((uint)banned < (uint)scores.Length)
                {
                    scores[banned] = float.NegativeInfinity;
                }
            }
        }
    }

    /// <summary>
    /// [V]: HF NoBadWordsLogitsProcessor: a one-token bad word is always −∞; a longer one's last token is −∞ when the
    /// sequence ends with its other tokens. A one-token bad word that is a stop token is skipped, as HF drops
    /// <c>[eos_token_id]</c> from the list.
    /// </summary>
    /// <param name="scores">The scores, changed in place.</param>
    /// <param name="previousTokens">The sequence so far.</param>
    /// <param name="badWords">The banned token sequences; empty leaves the scores as they are.</param>
    /// <param name="stopTokenIds">The end-of-sequence ids, or null.</param>
    public static void BadWords(Span<float> scores, ReadOnlySpan<int> previousTokens, IReadOnlyList<IReadOnlyList<int>> badWords, IEnumerable<int>? stopTokenIds = null)
    {
        ArgumentNullException.ThrowIfNull(badWords);
        foreach (var word in badWords)
        {
            int last = word[^1];
            if ((uint)last >= (uint)scores.Length)
            {
                continue;
            }

            if (word.Count == 1)
            {
                if (stopTokenIds is null || !stopTokenIds.Contains(last))
                {
                    scores[last] = float.NegativeInfinity;
                }

                continue;
            }

            int prefix = word.Count - 1;
            if (previousTokens.Length < prefix)
            {
                continue;
            }

            bool matches = true;
            for (int i = 0; i < prefix && matches; i++)
            {
                matches = previousTokens[previousTokens.Length - prefix + i] == word[i];
            }

            if (matches)
            {
                scores[last] = float.NegativeInfinity;
            }
        }
    }

    /// <summary>[V]: HF MinNewTokensLengthLogitsProcessor: the stop tokens become −∞ while fewer than <paramref name="minNewTokens"/> tokens were generated.</summary>
    /// <param name="scores">The scores, changed in place.</param>
    /// <param name="generatedTokens">Tokens generated so far.</param>
    /// <param name="minNewTokens">The minimum; 0 leaves the scores as they are.</param>
    /// <param name="stopTokenIds">The end-of-sequence ids.</param>
    public static void MinNewTokens(Span<float> scores, int generatedTokens, int minNewTokens, IEnumerable<int> stopTokenIds)
    {
        ArgumentNullException.ThrowIfNull(stopTokenIds);
        if (generatedTokens >= minNewTokens)
        {
            return;
        }

        foreach (int id in stopTokenIds)
        {
            if ((uint)id < (uint)scores.Length)
            {
                scores[id] = float.NegativeInfinity;
            }
        }
    }

    /// <summary>[V]: HF ForcedBOS/ForcedEOSTokenLogitsProcessor: every score −∞ except <paramref name="token"/>'s, which becomes 0.</summary>
    /// <param name="scores">The scores, changed in place.</param>
    /// <param name="token">The token to force.</param>
    public static void ForceToken(Span<float> scores, int token)
    {
        scores.Fill(float.NegativeInfinity);
        if ((uint)token < (uint)scores.Length)
        {
            scores[token] = 0f;
        }
    }

    /// <summary>
    /// [V]: every processor <paramref name="options"/> enables, in HF's order: repetition penalty, no-repeat n-gram,
    /// bad words, min new tokens (when <paramref name="stopTokenIds"/> are given), then the warpers when sampling.
    /// </summary>
    /// <param name="scores">The scores, changed in place.</param>
    /// <param name="previousTokens">The prompt and the tokens generated so far (for the repetition penalty and n-grams).</param>
    /// <param name="options">The options.</param>
    /// <param name="generatedTokens">Tokens generated so far (for <see cref="GenerationOptions.MinNewTokens"/>).</param>
    /// <param name="stopTokenIds">The end-of-sequence ids <see cref="GenerationOptions.MinNewTokens"/> holds back; null skips that processor.</param>
    public static void Apply(Span<float> scores, ReadOnlySpan<int> previousTokens, GenerationOptions options, int generatedTokens = 0, IEnumerable<int>? stopTokenIds = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        RepetitionPenalty(scores, previousTokens, options.RepetitionPenalty);
        NoRepeatNgram(scores, previousTokens, options.NoRepeatNgramSize);
        BadWords(scores, previousTokens, options.BadWordsIds, stopTokenIds);
        if (stopTokenIds is not null)
        {
            MinNewTokens(scores, generatedTokens, options.MinNewTokens, stopTokenIds);
        }

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
