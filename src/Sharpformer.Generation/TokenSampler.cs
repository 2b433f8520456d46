namespace Sharpformer.Generation;

/// <summary>
/// Picks the next token from one row of processed scores [V]: the arg max (greedy), or a draw from softmax(scores)
/// with a seeded generator, so the same seed replays the same choices.
/// </summary>
public sealed class TokenSampler
{
    private readonly Random _random;

    /// <summary>Creates a sampler; <paramref name="seed"/> null draws a fresh seed.</summary>
    /// <param name="seed">The seed.</param>
    public TokenSampler(int? seed) => _random = seed is { } s ? new Random(s) : new Random();

    /// <summary>[V] → the index of the largest score (the first one on ties, as torch.argmax).</summary>
    /// <param name="scores">The scores.</param>
    /// <returns>The token id.</returns>
    public static int ArgMax(ReadOnlySpan<float> scores)
    {
        int best = 0;
        for (int i = 1; i < scores.Length; i++)
        {
            if (scores[i] > scores[best])
            {
                best = i;
            }
        }

        return best;
    }

    /// <summary>[V] → a token drawn with probability softmax(scores); −∞ scores are never drawn.</summary>
    /// <param name="scores">The processed scores.</param>
    /// <returns>The token id.</returns>
    /// <exception cref="ArgumentException">No score is finite (every token was removed).</exception>
    public int Sample(ReadOnlySpan<float> scores)
    {
        float max = float.NegativeInfinity;
        foreach (float s in scores)
        {
            max = Math.Max(max, s);
        }

        if (float.IsNegativeInfinity(max) || float.IsNaN(max))
        {
            throw new ArgumentException("TokenSampler.Sample: every token's score is −∞ or NaN; the processors removed all tokens.", nameof(scores));
        }

        double total = 0;
        foreach (float s in scores)
        {
            total += Math.Exp(s - max);
        }

        double target = _random.NextDouble() * total;
        double running = 0;
        int last = 0;
        for (int i = 0; i < scores.Length; i++)
        {
            if (float.IsNegativeInfinity(scores[i]))
            {
                continue;
            }

            last = i;
            running += Math.Exp(scores[i] - max);
            if (running > target)
            {
                return i;
            }
        }

        // Rounding left target just past the sum: the last possible token.
        return last;
    }
}
