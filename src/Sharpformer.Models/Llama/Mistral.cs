// Mistral's difference from Llama: a sliding attention window (config.json sliding_window W). Query i sees key j only
// when i − W < j ≤ i (transformers' sliding_window_causal mask: kv_idx > q_idx − W), counted in cache positions. Qwen2
// uses the same window on its layers from max_window_layers on when use_sliding_window is set, and Phi-3 accepts it
// too. The window lives here once; LlamaAttention asks it for masks (module path) and key ranges (fused path). The
// cache keeps every key (the window hides the old ones); a rolling cache would save memory, not change results.
using Sharpformer.Tensors;

namespace Sharpformer.Models.Llama;

/// <summary>The sliding-window rule of Mistral (and Qwen2/Phi-3 where configured).</summary>
public static class SlidingWindow
{
    /// <summary>The first key index query <paramref name="query"/> (a cache index) may see under window <paramref name="window"/>.</summary>
    /// <param name="query">The query's index among the keys (cached + new).</param>
    /// <param name="window">W, or null for no window.</param>
    /// <returns>max(0, query − W + 1), or 0 without a window.</returns>
    public static int FirstVisibleKey(int query, int? window) => window is { } w ? Math.Max(0, query - w + 1) : 0;

    /// <summary>Whether a call with <paramref name="past"/> cached keys and <paramref name="tokens"/> new queries hides any key that plain causal attention would show.</summary>
    /// <param name="past">Keys already cached.</param>
    /// <param name="tokens">New queries.</param>
    /// <param name="window">W, or null.</param>
    /// <returns>True when some query's window starts after key 0.</returns>
    public static bool Cuts(int past, int tokens, int? window) => window is { } w && past + tokens > w;

    /// <summary>An additive score bias [T, T] for the module path: 0 where key j is inside query i's window (j ≤ i and i − j &lt; W), −∞ elsewhere.</summary>
    /// <param name="tokens">T.</param>
    /// <param name="window">W.</param>
    /// <returns>The bias (a constant: no gradient).</returns>
    public static Tensor Bias(int tokens, int window)
    {
        var bias = new float[tokens * tokens];
        for (int i = 0; i < tokens; i++)
        {
            for (int j = 0; j < tokens; j++)
            {
                bias[(i * tokens) + j] = j <= i && j > i - window ? 0f : float.NegativeInfinity;
            }
        }

        return Tensor.FromArray(bias, new Shape(tokens, tokens));
    }
}
