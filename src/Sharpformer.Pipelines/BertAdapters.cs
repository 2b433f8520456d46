using Sharpformer.Models.Bert;
using Sharpformer.Tensors;

namespace Sharpformer.Pipelines;

/// <summary>Runs a Sharpformer.Models <see cref="BertModel"/> (bert or roberta) as the pipelines' <see cref="ITextEncoder"/>.</summary>
internal sealed class BertEncoderAdapter(BertModel model) : ITextEncoder
{
    public int HiddenSize => model.Config.HiddenSize;

    public int MaxPositions => model.Config.MaxPositionEmbeddings;

    public float[] Encode(ReadOnlySpan<int> ids, ReadOnlySpan<int> attentionMask, ReadOnlySpan<int> typeIds, int batch, int seq) =>
        BertAdapters.Encode(model, ids, attentionMask, typeIds, batch, seq);
}

/// <summary>Runs a Sharpformer.Models <see cref="BertForMaskedLM"/> as the pipelines' <see cref="IMaskedLanguageModel"/>.</summary>
internal sealed class BertMaskedLmAdapter(BertForMaskedLM model) : IMaskedLanguageModel
{
    public int HiddenSize => model.Config.HiddenSize;

    public int MaxPositions => model.Config.MaxPositionEmbeddings;

    public int VocabSize => model.Config.VocabSize;

    public bool HasMaskedLanguageModelHead => true;

    public float[] Encode(ReadOnlySpan<int> ids, ReadOnlySpan<int> attentionMask, ReadOnlySpan<int> typeIds, int batch, int seq) =>
        BertAdapters.Encode(model.Bert, ids, attentionMask, typeIds, batch, seq);

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
        return model.Cls.Forward(states, model.DecoderWeight.Value).Contiguous().ToArray();
    }
}

internal static class BertAdapters
{
    /// <summary>[B, T] ids, mask, types → last_hidden_state [B, T, C] on the model's fused inference path (no autograd).</summary>
    public static float[] Encode(BertModel model, ReadOnlySpan<int> ids, ReadOnlySpan<int> attentionMask, ReadOnlySpan<int> typeIds, int batch, int seq)
    {
        using var noGrad = Autograd.NoGrad();
        var shape = new Shape(batch, seq);
        var output = model.Forward(
            Tensor.FromArray(ids.ToArray(), shape), Tensor.FromArray(attentionMask.ToArray(), shape), Tensor.FromArray(typeIds.ToArray(), shape));
        return output.LastHiddenState.Contiguous().ToArray();
    }
}
