namespace Sharpformer.Models;

/// <summary>
/// An encoder-decoder language model (the original Transformer, Marian, T5, BART) that generation drives: the encoder
/// runs once per source batch, each decoder layer's cross-attention keys and values are computed from its output once,
/// and the decoder then appends target tokens one step at a time to a self-attention cache.
/// </summary>
public interface ISeq2SeqLM
{
    /// <summary>V, the number of logits per target position.</summary>
    int VocabSize { get; }

    /// <summary>The most source tokens the encoder takes (<see cref="int.MaxValue"/> for relative-position models such as T5).</summary>
    int MaxSourcePositions { get; }

    /// <summary>The most target tokens the decoder takes (<see cref="int.MaxValue"/> for relative-position models).</summary>
    int MaxTargetPositions { get; }

    /// <summary>The token ids generation needs: decoder start, end of sequence, padding, and the forced first/last tokens.</summary>
    Seq2SeqSpecialTokens SpecialTokens { get; }

    /// <summary>
    /// Runs the encoder: source ids [B, S] → a state holding each decoder layer's cross-attention keys and values
    /// [B, S, H·D] (computed once here) and an empty decoder self-attention cache of <paramref name="targetCapacity"/>.
    /// </summary>
    /// <param name="sourceIds">[B, S] token ids, row-major, right-padded.</param>
    /// <param name="sourceMask">Empty (all real tokens) or [B, S]: 1 = token, 0 = padding.</param>
    /// <param name="batch">B.</param>
    /// <param name="targetCapacity">The most target tokens the state will hold (decoder start token included).</param>
    /// <returns>The state the decoder steps read and extend.</returns>
    Seq2SeqState Encode(ReadOnlySpan<int> sourceIds, ReadOnlySpan<float> sourceMask, int batch, int targetCapacity);

    /// <summary>
    /// Target ids [B, T] → logits of the last new position [B, V]: appends T tokens per sequence to the state's
    /// self-attention cache and attends to the encoder output through the cached cross-attention keys and values.
    /// </summary>
    /// <param name="targetIds">[B, T] target token ids, row-major (the first step starts with the decoder start token).</param>
    /// <param name="state">The state <see cref="Encode"/> returned; its self-attention cache grows by T.</param>
    /// <param name="lastLogits">[B, V] receives the logits at each sequence's last new position.</param>
    void DecodeLast(ReadOnlySpan<int> targetIds, Seq2SeqState state, Span<float> lastLogits);
}

/// <summary>
/// An encoder-decoder that can show where each target position looked in the source: its decoder layers' cross-attention
/// weights over one source and a teacher-forced target (HF's <c>output_attentions=True</c> → <c>cross_attentions</c>).
/// </summary>
public interface ICrossAttentionSeq2SeqLM : ISeq2SeqLM
{
    /// <summary>Runs encoder and decoder once, without recording gradients, and returns each decoder layer's cross-attention weights.</summary>
    /// <param name="sourceIds">The source ids (S ≥ 1, at most <see cref="ISeq2SeqLM.MaxSourcePositions"/>).</param>
    /// <param name="decoderInputIds">The decoder inputs (T ≥ 1): the decoder start token, then the target tokens before the last.</param>
    /// <returns>Per decoder layer, [H, T, S] row-major: softmax rows over the source positions.</returns>
    /// <exception cref="ArgumentException">A sequence is empty or too long, or an id is outside the vocabulary.</exception>
    IReadOnlyList<float[]> CrossAttentionWeights(ReadOnlySpan<int> sourceIds, ReadOnlySpan<int> decoderInputIds);

    /// <summary>H, the number of heads of each decoder layer's cross-attention.</summary>
    int CrossAttentionHeads { get; }
}

/// <summary>The token ids an encoder-decoder's generation uses (HF <c>generation_config.json</c> / <c>config.json</c> names).</summary>
/// <param name="DecoderStartTokenId">The first decoder input (<c>decoder_start_token_id</c>; pad for T5 and Marian, eos for BART).</param>
/// <param name="EosTokenId">End of sequence (<c>eos_token_id</c>).</param>
/// <param name="PadTokenId">Padding (<c>pad_token_id</c>).</param>
/// <param name="ForcedBosTokenId">A token forced as the first generated one (<c>forced_bos_token_id</c>), or null.</param>
/// <param name="ForcedEosTokenId">A token forced when the maximum length is reached (<c>forced_eos_token_id</c>), or null.</param>
public sealed record Seq2SeqSpecialTokens(
    int DecoderStartTokenId,
    int EosTokenId,
    int PadTokenId,
    int? ForcedBosTokenId = null,
    int? ForcedEosTokenId = null);

/// <summary>
/// What a decoder step needs from the encoder, for B sequences: the cross-attention keys and values of every decoder
/// layer (filled once by <see cref="ISeq2SeqLM.Encode"/>, S rows per sequence), the source padding mask, and the decoder's
/// growing self-attention cache.
/// </summary>
public sealed class Seq2SeqState
{
    private float[] _sourceMask;

    /// <summary>Wraps the caches of one encoded batch.</summary>
    /// <param name="selfAttention">The decoder self-attention cache (empty at first).</param>
    /// <param name="crossAttention">Each decoder layer's cross-attention K/V, filled with S rows per sequence.</param>
    /// <param name="sourceMask">[B, S]: 1 = source token, 0 = padding.</param>
    /// <param name="sourceLength">S.</param>
    /// <exception cref="ArgumentException">The caches disagree on B, or the mask is not [B, S].</exception>
    public Seq2SeqState(KvCache selfAttention, KvCache crossAttention, float[] sourceMask, int sourceLength)
    {
        ArgumentNullException.ThrowIfNull(selfAttention);
        ArgumentNullException.ThrowIfNull(crossAttention);
        ArgumentNullException.ThrowIfNull(sourceMask);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(sourceLength);
        if (selfAttention.Batch != crossAttention.Batch)
        {
            throw new ArgumentException($"Seq2SeqState: the self-attention cache holds {selfAttention.Batch} sequences but the cross-attention cache {crossAttention.Batch}; build both for the same B.", nameof(crossAttention));
        }

        if (sourceMask.Length != selfAttention.Batch * sourceLength)
        {
            throw new ArgumentException($"Seq2SeqState: the source mask has {sourceMask.Length} values, expected B·S = {selfAttention.Batch}·{sourceLength}.", nameof(sourceMask));
        }

        SelfAttention = selfAttention;
        CrossAttention = crossAttention;
        _sourceMask = sourceMask;
        SourceLength = sourceLength;
    }

    /// <summary>B, the number of sequences.</summary>
    public int Batch => SelfAttention.Batch;

    /// <summary>S, the (padded) source length.</summary>
    public int SourceLength { get; }

    /// <summary>The decoder self-attention cache.</summary>
    public KvCache SelfAttention { get; }

    /// <summary>The cross-attention keys and values of every decoder layer (S rows per sequence).</summary>
    public KvCache CrossAttention { get; }

    /// <summary>[B, S]: 1 = source token, 0 = padding.</summary>
    public ReadOnlySpan<float> SourceMask => _sourceMask;

    /// <summary>
    /// Rearranges the sequences: new sequence i becomes a copy of old sequence <paramref name="sources"/>[i] in both
    /// caches and the source mask (beam search keeps the best beams).
    /// </summary>
    /// <param name="sources">[B] old indices, each in [0, B).</param>
    /// <exception cref="ArgumentException">The index count is not B or an index is out of range.</exception>
    public void Reorder(ReadOnlySpan<int> sources)
    {
        SelfAttention.Reorder(sources);
        CrossAttention.Reorder(sources);
        var mask = new float[_sourceMask.Length];
        for (int b = 0; b < sources.Length; b++)
        {
            Array.Copy(_sourceMask, sources[b] * SourceLength, mask, b * SourceLength, SourceLength);
        }

        _sourceMask = mask;
    }
}
