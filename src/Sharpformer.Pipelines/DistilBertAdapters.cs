using Sharpformer.Models.DistilBert;
using Sharpformer.Tensors;

namespace Sharpformer.Pipelines;

/// <summary>Runs a Sharpformer.Models <see cref="DistilBertModel"/> as the pipelines' <see cref="ITextEncoder"/> (token types are ignored: DistilBERT has none).</summary>
internal sealed class DistilBertEncoderAdapter(DistilBertModel model) : ITextEncoder
{
    public int HiddenSize => model.Config.HiddenSize;

    public int MaxPositions => model.Config.MaxPositionEmbeddings;

    public float[] Encode(ReadOnlySpan<int> ids, ReadOnlySpan<int> attentionMask, ReadOnlySpan<int> typeIds, int batch, int seq) =>
        DistilBertAdapters.Encode(model, ids, attentionMask, batch, seq);
}

/// <summary>Runs a Sharpformer.Models <see cref="DistilBertForMaskedLM"/> as the pipelines' <see cref="IMaskedLanguageModel"/>.</summary>
internal sealed class DistilBertMaskedLmAdapter(DistilBertForMaskedLM model) : IMaskedLanguageModel
{
    public int HiddenSize => model.Config.HiddenSize;

    public int MaxPositions => model.Config.MaxPositionEmbeddings;

    public int VocabSize => model.Config.VocabSize;

    public bool HasMaskedLanguageModelHead => true;

    public float[] Encode(ReadOnlySpan<int> ids, ReadOnlySpan<int> attentionMask, ReadOnlySpan<int> typeIds, int batch, int seq) =>
        DistilBertAdapters.Encode(model.DistilBert, ids, attentionMask, batch, seq);

    // Only the masked rows go through the head: [1, N, C] → [1, N, V] instead of logits for every token.
    public float[] PredictLogits(ReadOnlySpan<float> hidden, int rows)
    {
        int c = HiddenSize;
        if (hidden.Length != rows * c)
        {
            throw new ArgumentException($"PredictLogits: hidden has {hidden.Length} values, expected rows {rows} × C {c}.", nameof(hidden));
        }

        using var noGrad = Autograd.NoGrad();
        var states = Tensor.FromArray(hidden.ToArray(), new Shape(1, rows, c));
        return model.PredictionHead(states).Contiguous().ToArray();
    }
}

internal static class DistilBertAdapters
{
    /// <summary>[B, T] ids and mask → last_hidden_state [B, T, C] on the model's fused inference path (no autograd).</summary>
    public static float[] Encode(DistilBertModel model, ReadOnlySpan<int> ids, ReadOnlySpan<int> attentionMask, int batch, int seq)
    {
        using var noGrad = Autograd.NoGrad();
        var shape = new Shape(batch, seq);
        var output = model.Forward(Tensor.FromArray(ids.ToArray(), shape), Tensor.FromArray(attentionMask.ToArray(), shape));
        return output.LastHiddenState.Contiguous().ToArray();
    }
}
