namespace Sharpformer.Models;

/// <summary>
/// A decoder-only language model that generation drives one step at a time: it appends tokens to a
/// <see cref="KvCache"/> and returns the next-token logits of every sequence.
/// </summary>
public interface ICausalLM
{
    /// <summary>V, the number of logits per position.</summary>
    int VocabSize { get; }

    /// <summary>The context length (n_positions): prompt plus generated tokens may not exceed it.</summary>
    int MaxPositions { get; }

    /// <summary>Allocates a cache for <paramref name="batch"/> sequences of up to <paramref name="capacity"/> tokens.</summary>
    /// <param name="batch">B, the number of sequences decoded together.</param>
    /// <param name="capacity">Tmax; at most <see cref="MaxPositions"/>.</param>
    /// <returns>An empty cache.</returns>
    KvCache CreateCache(int batch, int capacity);

    /// <summary>
    /// ids [B, T] → logits of the last new position [B, V]: appends T tokens per sequence to <paramref name="cache"/>.
    /// </summary>
    /// <param name="ids">[B, T] token ids, row-major.</param>
    /// <param name="attentionMask">Empty (all real tokens) or [B, T]: 1 = token, 0 = left padding.</param>
    /// <param name="cache">The sequences' cache; it grows by T.</param>
    /// <param name="lastLogits">[B, V] receives the logits at each sequence's last new position.</param>
    void ForwardLast(ReadOnlySpan<int> ids, ReadOnlySpan<float> attentionMask, KvCache cache, Span<float> lastLogits);
}
