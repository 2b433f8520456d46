// The IExplainableModel side of the DistilBERT classes (DistilBertModel.cs holds the networks).
using Sharpformer.Models.Explain;
using Sharpformer.Tensors;

namespace Sharpformer.Models.DistilBert;

/// <summary>DistilBertModel as the explainer sees it: a bare encoder, its outputs compared with the word embeddings.</summary>
public sealed partial class DistilBertModel : IExplainableModel
{
    /// <inheritdoc/>
    string IExplainableModel.ModelType => Config.ModelType;

    /// <inheritdoc/>
    int IExplainableModel.NumLayers => Config.NumHiddenLayers;

    /// <inheritdoc/>
    int IExplainableModel.NumHeads => Config.NumAttentionHeads;

    /// <inheritdoc/>
    int IExplainableModel.HiddenSize => Config.HiddenSize;

    /// <inheritdoc/>
    int IExplainableModel.VocabSize => Config.VocabSize;

    /// <inheritdoc/>
    int IExplainableModel.MaxPositions => Config.MaxPositionEmbeddings;

    /// <inheritdoc/>
    bool IExplainableModel.IsCausal => false;

    /// <inheritdoc/>
    PositionEncodingKind IExplainableModel.PositionEncoding => Config.SinusoidalPosEmbds ? PositionEncodingKind.Sinusoidal : PositionEncodingKind.Learned;

    /// <inheritdoc/>
    ExplainOutputKind IExplainableModel.OutputKind => ExplainOutputKind.EmbeddingProjection;

    /// <inheritdoc/>
    Tensor IExplainableModel.TokenEmbeddings(ReadOnlySpan<int> ids) => ExplainSupport.Rows(Embeddings.WordEmbeddings, ids, "DistilBERT");

    /// <inheritdoc/>
    Tensor IExplainableModel.PositionTable(int length) =>
        ExplainSupport.PositionRows(Embeddings.PositionEmbeddings, 0, length, Config.MaxPositionEmbeddings, "DistilBERT");

    /// <inheritdoc/>
    ExplainTrace IExplainableModel.Trace(ReadOnlySpan<int> ids) => DistilBertExplain.Trace(this, ids);

    /// <inheritdoc/>
    /// <remarks>A bare encoder has no head: the rows are projected on the word-embedding table (h · Wᵀ).</remarks>
    Tensor IExplainableModel.LogitLens(int layer, Tensor hidden)
    {
        ExplainSupport.CheckLens(layer, Config.NumHiddenLayers, hidden, Config.HiddenSize, "DistilBERT");
        return ExplainSupport.ProjectOnEmbeddings(hidden, Embeddings.WordEmbeddings);
    }
}

/// <summary>DistilBertForMaskedLM as the explainer sees it: every layer read through the MLM head.</summary>
public sealed partial class DistilBertForMaskedLM : IExplainableModel
{
    /// <inheritdoc/>
    string IExplainableModel.ModelType => Config.ModelType;

    /// <inheritdoc/>
    int IExplainableModel.NumLayers => Config.NumHiddenLayers;

    /// <inheritdoc/>
    int IExplainableModel.NumHeads => Config.NumAttentionHeads;

    /// <inheritdoc/>
    int IExplainableModel.HiddenSize => Config.HiddenSize;

    /// <inheritdoc/>
    int IExplainableModel.VocabSize => Config.VocabSize;

    /// <inheritdoc/>
    int IExplainableModel.MaxPositions => Config.MaxPositionEmbeddings;

    /// <inheritdoc/>
    bool IExplainableModel.IsCausal => false;

    /// <inheritdoc/>
    PositionEncodingKind IExplainableModel.PositionEncoding => Config.SinusoidalPosEmbds ? PositionEncodingKind.Sinusoidal : PositionEncodingKind.Learned;

    /// <inheritdoc/>
    ExplainOutputKind IExplainableModel.OutputKind => ExplainOutputKind.MaskedLanguageModel;

    /// <inheritdoc/>
    Tensor IExplainableModel.TokenEmbeddings(ReadOnlySpan<int> ids) => ExplainSupport.Rows(DistilBert.Embeddings.WordEmbeddings, ids, "DistilBERT");

    /// <inheritdoc/>
    Tensor IExplainableModel.PositionTable(int length) =>
        ExplainSupport.PositionRows(DistilBert.Embeddings.PositionEmbeddings, 0, length, Config.MaxPositionEmbeddings, "DistilBERT");

    /// <inheritdoc/>
    ExplainTrace IExplainableModel.Trace(ReadOnlySpan<int> ids) => DistilBertExplain.Trace(DistilBert, ids);

    /// <inheritdoc/>
    /// <remarks>DistilBERT's layers end in a LayerNorm, so every layer goes straight into the head.</remarks>
    Tensor IExplainableModel.LogitLens(int layer, Tensor hidden)
    {
        ExplainSupport.CheckLens(layer, Config.NumHiddenLayers, hidden, Config.HiddenSize, "DistilBERT");
        return TaskInterfaces.PredictLogits(hidden, Config.HiddenSize, PredictionHead);
    }
}

/// <summary>The forward both DistilBERT classes share.</summary>
internal static class DistilBertExplain
{
    public static ExplainTrace Trace(DistilBertModel model, ReadOnlySpan<int> ids)
    {
        var input = ExplainSupport.CheckIds(ids, model.Config.VocabSize, model.Config.MaxPositionEmbeddings, "DistilBERT");
        var mask = Tensor.FromArray(Enumerable.Repeat(1, ids.Length).ToArray(), input.Shape);
        var output = ExplainSupport.InEval(model, () => model.Forward(input, mask, outputHiddenStates: true, outputAttentions: true));
        return ExplainSupport.Squeeze(output.HiddenStates, output.Attentions, "DistilBERT");
    }
}
