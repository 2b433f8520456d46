// The IExplainableModel side of GPT2LMHeadModel (Gpt2LMHeadModel.cs holds the network).
using Sharpformer.Models.Explain;
using Sharpformer.Tensors;

namespace Sharpformer.Models.Gpt2;

/// <summary>GPT-2 as the explainer sees it: a causal decoder whose every layer can be read through ln_f and the tied head.</summary>
public sealed partial class Gpt2LMHeadModel : IExplainableModel
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
    bool IExplainableModel.IsCausal => true;

    /// <inheritdoc/>
    PositionEncodingKind IExplainableModel.PositionEncoding => PositionEncodingKind.Learned;

    /// <inheritdoc/>
    ExplainOutputKind IExplainableModel.OutputKind => ExplainOutputKind.CausalLanguageModel;

    /// <inheritdoc/>
    Tensor IExplainableModel.TokenEmbeddings(ReadOnlySpan<int> ids) => ExplainSupport.Rows(Transformer.Wte, ids, "GPT-2");

    /// <inheritdoc/>
    Tensor IExplainableModel.PositionTable(int length) =>
        ExplainSupport.PositionRows(Transformer.Wpe, 0, length, Config.MaxPositionEmbeddings, "GPT-2");

    /// <inheritdoc/>
    ExplainTrace IExplainableModel.Trace(ReadOnlySpan<int> ids)
    {
        var input = ExplainSupport.CheckIds(ids, VocabSize, MaxPositions, "GPT-2");
        var output = ExplainSupport.InEval(this, () => Transformer.Forward(input, null, outputAttentions: true, outputHiddenStates: true));
        return ExplainSupport.Squeeze(output.HiddenStates, output.Attentions, "GPT-2");
    }

    /// <inheritdoc/>
    /// <remarks>
    /// GPT-2 is pre-LN: the residual stream is normalized only once, by ln_f, after the last block. Layers 0 … L − 1
    /// therefore go through ln_f and the tied head; layer L (HF's last hidden state) is already ln_f's output.
    /// </remarks>
    Tensor IExplainableModel.LogitLens(int layer, Tensor hidden)
    {
        ExplainSupport.CheckLens(layer, Config.NumHiddenLayers, hidden, Config.HiddenSize, "GPT-2");
        int rows = hidden.Shape[0], c = Config.HiddenSize;
        var states = hidden.Contiguous().ToArray<float>();
        if (layer < Config.NumHiddenLayers)
        {
            Transformer.FinalNorm(states, rows);
        }

        var logits = new float[(long)rows * VocabSize];
        LmHead.Apply(states.AsSpan(0, rows * c), rows, logits, accumulate: false);
        return Tensor.FromArray(logits, new Shape(rows, VocabSize));
    }
}
