// The IExplainableModel side of the BERT classes (BertModel.cs holds the networks): the explainer reads the same
// module tree, through the models' own forwards with hidden states and attentions returned.
using Sharpformer.Models.Explain;
using Sharpformer.Tensors;

namespace Sharpformer.Models.Bert;

/// <summary>BertModel as the explainer sees it: a bare encoder, its outputs compared with the word embeddings.</summary>
public sealed partial class BertModel : IExplainableModel
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
    int IExplainableModel.MaxPositions => BertExplain.MaxPositions(Embeddings, Config.MaxPositionEmbeddings);

    /// <inheritdoc/>
    bool IExplainableModel.IsCausal => false;

    /// <inheritdoc/>
    PositionEncodingKind IExplainableModel.PositionEncoding => PositionEncodingKind.Learned;

    /// <inheritdoc/>
    ExplainOutputKind IExplainableModel.OutputKind => ExplainOutputKind.EmbeddingProjection;

    /// <inheritdoc/>
    Tensor IExplainableModel.TokenEmbeddings(ReadOnlySpan<int> ids) => ExplainSupport.Rows(Embeddings.WordEmbeddings, ids, "BERT");

    /// <inheritdoc/>
    Tensor IExplainableModel.PositionTable(int length) => BertExplain.PositionTable(Embeddings, length, Config.MaxPositionEmbeddings);

    /// <inheritdoc/>
    ExplainTrace IExplainableModel.Trace(ReadOnlySpan<int> ids) => BertExplain.Trace(this, ids);

    /// <inheritdoc/>
    /// <remarks>A bare encoder has no head: the rows are projected on the word-embedding table (h · Wᵀ).</remarks>
    Tensor IExplainableModel.LogitLens(int layer, Tensor hidden)
    {
        ExplainSupport.CheckLens(layer, Config.NumHiddenLayers, hidden, Config.HiddenSize, "BERT");
        return ExplainSupport.ProjectOnEmbeddings(hidden, Embeddings.WordEmbeddings);
    }
}

/// <summary>BertForMaskedLM as the explainer sees it: every layer read through the MLM head.</summary>
public sealed partial class BertForMaskedLM : IExplainableModel
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
    int IExplainableModel.MaxPositions => BertExplain.MaxPositions(Bert.Embeddings, Config.MaxPositionEmbeddings);

    /// <inheritdoc/>
    bool IExplainableModel.IsCausal => false;

    /// <inheritdoc/>
    PositionEncodingKind IExplainableModel.PositionEncoding => PositionEncodingKind.Learned;

    /// <inheritdoc/>
    ExplainOutputKind IExplainableModel.OutputKind => ExplainOutputKind.MaskedLanguageModel;

    /// <inheritdoc/>
    Tensor IExplainableModel.TokenEmbeddings(ReadOnlySpan<int> ids) => ExplainSupport.Rows(Bert.Embeddings.WordEmbeddings, ids, "BERT");

    /// <inheritdoc/>
    Tensor IExplainableModel.PositionTable(int length) => BertExplain.PositionTable(Bert.Embeddings, length, Config.MaxPositionEmbeddings);

    /// <inheritdoc/>
    ExplainTrace IExplainableModel.Trace(ReadOnlySpan<int> ids) => BertExplain.Trace(Bert, ids);

    /// <inheritdoc/>
    /// <remarks>BERT's layers end in a LayerNorm, so every layer goes straight into the head (transform, tied decoder, bias).</remarks>
    Tensor IExplainableModel.LogitLens(int layer, Tensor hidden)
    {
        ExplainSupport.CheckLens(layer, Config.NumHiddenLayers, hidden, Config.HiddenSize, "BERT");
        return TaskInterfaces.PredictLogits(hidden, Config.HiddenSize, states => Cls.Forward(states, DecoderWeight.Value));
    }
}

/// <summary>The pieces both BERT classes share.</summary>
internal static class BertExplain
{
    /// <summary>The usable length: RoBERTa's positions start after padding_idx, so its table covers fewer tokens.</summary>
    public static int MaxPositions(BertEmbeddings embeddings, int tableRows) =>
        embeddings.PaddingIdx is int pad ? tableRows - pad - 1 : tableRows;

    /// <summary>The learned rows the first <paramref name="length"/> tokens of an unpadded input add: 0 … T − 1 (RoBERTa: padding_idx + 1 …).</summary>
    public static Tensor PositionTable(BertEmbeddings embeddings, int length, int tableRows)
    {
        int first = embeddings.PaddingIdx is int pad ? pad + 1 : 0;
        return ExplainSupport.PositionRows(embeddings.PositionEmbeddings, first, length, MaxPositions(embeddings, tableRows), "BERT");
    }

    public static ExplainTrace Trace(BertModel model, ReadOnlySpan<int> ids)
    {
        var input = ExplainSupport.CheckIds(ids, model.Config.VocabSize, MaxPositions(model.Embeddings, model.Config.MaxPositionEmbeddings), "BERT");
        var mask = Tensor.FromArray(Enumerable.Repeat(1, ids.Length).ToArray(), input.Shape);
        var types = Tensor.Zeros(input.Shape, DType.I32);
        var output = ExplainSupport.InEval(model, () => model.Forward(input, mask, types, outputHiddenStates: true, outputAttentions: true));
        return ExplainSupport.Squeeze(output.HiddenStates, output.Attentions, "BERT");
    }
}
