namespace Sharpformer.Models;

/// <summary>The input checks every <see cref="ISeq2SeqLM"/> makes at its boundary, with messages naming the model and the limit.</summary>
internal static class Seq2SeqChecks
{
    /// <summary>Checks source ids [B, S] and an optional mask; returns S.</summary>
    /// <exception cref="ArgumentException">The ids do not form [B, S], the mask does not match, an id is outside the vocabulary, or S exceeds the model's positions.</exception>
    public static int Source(string model, ReadOnlySpan<int> ids, ReadOnlySpan<float> mask, int batch, int vocab, int maxPositions)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        if (ids.Length == 0 || ids.Length % batch != 0)
        {
            throw new ArgumentException($"{model} Encode: {ids.Length} source ids do not form [B={batch}, S] with S ≥ 1; pass B equal (right-padded) rows.", nameof(ids));
        }

        int length = ids.Length / batch;
        if (length > maxPositions)
        {
            throw new ArgumentException($"{model} Encode: the source has {length} tokens but the model takes at most {maxPositions} (max_position_embeddings); truncate the source (the pipelines' truncation option does so).", nameof(ids));
        }

        if (!mask.IsEmpty && mask.Length != ids.Length)
        {
            throw new ArgumentException($"{model} Encode: the source mask has {mask.Length} values, [B={batch}, S={length}] needs {ids.Length}.", nameof(mask));
        }

        foreach (int id in ids)
        {
            if ((uint)id >= (uint)vocab)
            {
                throw new ArgumentException($"{model} Encode: token id {id} is outside the vocabulary [0, {vocab}); use the model's own tokenizer.", nameof(ids));
            }
        }

        return length;
    }

    /// <summary>Checks the target capacity of a new state.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The capacity is not positive or exceeds the model's target positions.</exception>
    public static void Capacity(string model, int capacity, int maxPositions)
    {
        if (capacity <= 0 || capacity > maxPositions)
        {
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, $"{model} Encode: the target capacity must be in [1, {maxPositions}] (the decoder's max_position_embeddings, decoder start token included).");
        }
    }

    /// <summary>Checks target ids [B, T] against a state and the logits span; returns T.</summary>
    /// <exception cref="ArgumentException">The ids do not form [B, T], an id is outside the vocabulary, the state's cache is full, or the logits span is too small.</exception>
    public static int Target(string model, ReadOnlySpan<int> ids, Seq2SeqState state, Span<float> logits, int vocab)
    {
        int batch = state.Batch;
        if (ids.Length == 0 || ids.Length % batch != 0)
        {
            throw new ArgumentException($"{model} DecodeLast: {ids.Length} target ids do not form [B={batch}, T] with T ≥ 1.", nameof(ids));
        }

        int tokens = ids.Length / batch;
        if (state.SelfAttention.Length + tokens > state.SelfAttention.Capacity)
        {
            throw new ArgumentException($"{model} DecodeLast: {state.SelfAttention.Length} decoded + {tokens} new tokens exceed the state's target capacity {state.SelfAttention.Capacity}; Encode with a larger targetCapacity.", nameof(ids));
        }

        if (logits.Length < batch * vocab)
        {
            throw new ArgumentException($"{model} DecodeLast: the logits span holds {logits.Length} values, [B={batch}, V={vocab}] needs {batch * vocab}.", nameof(logits));
        }

        foreach (int id in ids)
        {
            if ((uint)id >= (uint)vocab)
            {
                throw new ArgumentException($"{model} DecodeLast: token id {id} is outside the vocabulary [0, {vocab}).", nameof(ids));
            }
        }

        return tokens;
    }
}
