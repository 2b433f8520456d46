namespace Sharpformer.Models;

/// <summary>
/// A causal LM that can decode sequences of different lengths together (continuous batching): each sequence lives in
/// a slot of a <see cref="KvCache"/>, is prefilled on its own, then steps with whichever other slots are active, each
/// at its own position. A server claims a slot per request, frees it with <see cref="KvCache.ResetSequence"/>, and
/// reuses it for the next request while the others keep decoding.
/// </summary>
public interface ISlotCausalLM : ICausalLM
{
    /// <summary>
    /// ids [N, T] for the N slots <paramref name="slots"/> → logits of each slot's last new position [N, V]: appends T
    /// tokens to every listed slot at its own length (its positions continue its own count). All N rows go through
    /// each dense layer together (one GEMM/GEMV per layer for the whole step).
    /// </summary>
    /// <param name="slots">[N] distinct slot indices in [0, B).</param>
    /// <param name="ids">[N, T] token ids, row-major (T = ids.Length / N).</param>
    /// <param name="cache">The cache the slots live in (from <see cref="ICausalLM.CreateCache"/>).</param>
    /// <param name="lastLogits">[N, V] receives the logits.</param>
    void ForwardSlots(ReadOnlySpan<int> slots, ReadOnlySpan<int> ids, KvCache cache, Span<float> lastLogits);
}
