namespace Sharpformer.Pipelines;

/// <summary>A transformer encoder as the pipelines see it: token ids in, one hidden vector per token out.</summary>
public interface ITextEncoder
{
    /// <summary>C, the width of each hidden vector.</summary>
    int HiddenSize { get; }

    /// <summary>The longest input (in tokens) the model's position table covers.</summary>
    int MaxPositions { get; }

    /// <summary>[B, T] ids, attention mask (1 = token, 0 = padding) and token type ids → last_hidden_state [B, T, C] (row-major).</summary>
    /// <exception cref="ArgumentException">The spans are not B·T long, or an id is outside the vocabulary.</exception>
    float[] Encode(ReadOnlySpan<int> ids, ReadOnlySpan<int> attentionMask, ReadOnlySpan<int> typeIds, int batch, int seq);
}

/// <summary>An encoder with a masked-language-model head (BertForMaskedLM and friends).</summary>
public interface IMaskedLanguageModel : ITextEncoder
{
    /// <summary>V, the number of logits per token.</summary>
    int VocabSize { get; }

    /// <summary>True when the checkpoint carries the MLM head; a bare encoder (BertModel) cannot fill masks.</summary>
    bool HasMaskedLanguageModelHead { get; }

    /// <summary>[N, C] hidden states → [N, V] vocabulary logits through the MLM head.</summary>
    /// <exception cref="InvalidOperationException">The model has no MLM head.</exception>
    float[] PredictLogits(ReadOnlySpan<float> hidden, int rows);
}
