using Sharpformer.Tensors;

namespace Sharpformer.Models;

/// <summary>How a model tells its tokens where they are.</summary>
public enum PositionEncodingKind
{
    /// <summary>A learned table [P, C] added to the token embeddings (BERT, GPT-2, DistilBERT by default).</summary>
    Learned,

    /// <summary>The fixed sinusoidal table [P, C] of Vaswani et al., added to the token embeddings (DistilBERT with <c>sinusoidal_pos_embds</c>).</summary>
    Sinusoidal,

    /// <summary>Rotary embeddings: queries and keys of each head rotated by angles p·θ_i (Llama-style); nothing is added to the embeddings.</summary>
    Rotary,
}

/// <summary>What the model's own output head predicts, and so what the explainer shows as the output.</summary>
public enum ExplainOutputKind
{
    /// <summary>A masked-LM head: the top tokens for each [MASK].</summary>
    MaskedLanguageModel,

    /// <summary>A causal-LM head: the next-token distribution after the last token.</summary>
    CausalLanguageModel,

    /// <summary>A bare encoder without a head: hidden states are compared with the word-embedding table (dot products) instead.</summary>
    EmbeddingProjection,
}

/// <summary>What one forward of a single sequence exposes to the explainer.</summary>
/// <param name="HiddenStates">L + 1 tensors [T, C]: the embeddings output, then every layer's output, as the model's own <c>hidden_states</c> (GPT-2's last one is after ln_f).</param>
/// <param name="Attentions">L tensors [H, T, T]: every layer's attention probabilities (query rows, key columns), as the model returns them.</param>
public sealed record ExplainTrace(IReadOnlyList<Tensor> HiddenStates, IReadOnlyList<Tensor> Attentions);

/// <summary>
/// A model the explainer (<c>sharpformer explain</c>) can look inside: its token and position tables, the hidden
/// states and attention weights of one forward, and its output head applied to any layer (the logit lens).
/// Implemented by BERT, DistilBERT (bare and masked-LM) and GPT-2 over their own module trees; a new family
/// implements it once and the explainer page works for it.
/// </summary>
public interface IExplainableModel
{
    /// <summary>The config's <c>model_type</c> ("bert", "distilbert", "gpt2").</summary>
    string ModelType { get; }

    /// <summary>L, the number of transformer layers.</summary>
    int NumLayers { get; }

    /// <summary>H, the attention heads per layer.</summary>
    int NumHeads { get; }

    /// <summary>C, the width of the residual stream.</summary>
    int HiddenSize { get; }

    /// <summary>V, the vocabulary size (logits per position).</summary>
    int VocabSize { get; }

    /// <summary>The longest input, in tokens.</summary>
    int MaxPositions { get; }

    /// <summary>True for decoders: each token attends only to itself and earlier tokens (the causal mask).</summary>
    bool IsCausal { get; }

    /// <summary>How positions are encoded; <see cref="PositionTable"/> returns the matching table.</summary>
    PositionEncodingKind PositionEncoding { get; }

    /// <summary>What the output head predicts.</summary>
    ExplainOutputKind OutputKind { get; }

    /// <summary>The raw token-embedding rows of <paramref name="ids"/>: [T, C] (before positions, segments and normalization).</summary>
    /// <param name="ids">Token ids.</param>
    /// <returns>A new [T, C] F32 tensor.</returns>
    /// <exception cref="ArgumentException">An id is outside [0, V).</exception>
    Tensor TokenEmbeddings(ReadOnlySpan<int> ids);

    /// <summary>
    /// The position encoding of positions 0 … <paramref name="length"/> − 1. Learned and sinusoidal: the added table
    /// [T, C]. Rotary: the rotation angles [T, D/2], angle(p, i) = p·θ_i in radians.
    /// </summary>
    /// <param name="length">T, at most <see cref="MaxPositions"/>.</param>
    /// <returns>A new F32 tensor.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is not in [1, MaxPositions].</exception>
    Tensor PositionTable(int length);

    /// <summary>One forward of one sequence in evaluation mode, without gradients: the hidden states and attentions.</summary>
    /// <param name="ids">The token ids (1 ≤ T ≤ <see cref="MaxPositions"/>).</param>
    /// <returns>The trace.</returns>
    /// <exception cref="ArgumentException">The sequence is empty, too long, or holds an id outside the vocabulary.</exception>
    ExplainTrace Trace(ReadOnlySpan<int> ids);

    /// <summary>
    /// The logit lens: rows of <see cref="ExplainTrace.HiddenStates"/>[<paramref name="layer"/>] [N, C] → logits [N, V]
    /// through the model's output head (with the final norm where the model applies one after the last layer). At
    /// <paramref name="layer"/> = L this is the model's own output.
    /// </summary>
    /// <param name="layer">0 … L: which hidden state the rows come from.</param>
    /// <param name="hidden">[N, C] rows.</param>
    /// <returns>[N, V] logits.</returns>
    /// <exception cref="ArgumentException"><paramref name="hidden"/> is not [N, C] or <paramref name="layer"/> is outside [0, L].</exception>
    Tensor LogitLens(int layer, Tensor hidden);
}
