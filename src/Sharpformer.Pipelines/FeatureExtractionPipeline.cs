using Sharpformer.Models;
using Sharpformer.Tensors;
using Sharpformer.Text;

namespace Sharpformer.Pipelines;

/// <summary>HF's <c>pipeline("feature-extraction")</c>: the encoder's last_hidden_state, one vector per token (special tokens included).</summary>
public sealed class FeatureExtractionPipeline
{
    private readonly PipelineOptions _options;

    /// <summary>Builds the pipeline over a loaded tokenizer and encoder.</summary>
    public FeatureExtractionPipeline(TextTokenizer tokenizer, ITextEncoder model, PipelineOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(model);
        Tokenizer = tokenizer;
        Model = model;
        _options = options ?? new PipelineOptions();
    }

    /// <summary>The tokenizer.</summary>
    public TextTokenizer Tokenizer { get; }

    /// <summary>The encoder.</summary>
    public ITextEncoder Model { get; }

    /// <summary>Loads a model from a local folder or the Hub and builds the pipeline (see <see cref="FillMaskPipeline.FromPretrainedAsync"/>).</summary>
    /// <exception cref="ModelUnavailableException">Not a local folder, not cached, and the Hub cannot be reached (or offline mode is on).</exception>
    public static async Task<FeatureExtractionPipeline> FromPretrainedAsync(string modelIdOrFolder, PipelineOptions? options = null, CancellationToken ct = default)
    {
        var (tokenizer, model) = await ModelLoader.LoadEncoderAsync(modelIdOrFolder, options, ct).ConfigureAwait(false);
        return new FeatureExtractionPipeline(tokenizer, model, options);
    }

    /// <summary>text → T vectors of C: last_hidden_state [1, T, C] of the encoded text, [CLS] and [SEP] included.</summary>
    /// <exception cref="ArgumentException">The input is longer than the model allows and truncation is off.</exception>
    public IReadOnlyList<float[]> Run(string text)
    {
        var encoding = ModelLoader.EncodeChecked(Tokenizer, Model, text, _options);
        int seq = encoding.Count, c = Model.HiddenSize;
        var shape = new Shape(1, seq);
        var hidden = Model.Encode(
            Tensor.FromArray(encoding.Ids.ToArray(), shape), Tensor.FromArray(encoding.AttentionMask.ToArray(), shape), Tensor.FromArray(encoding.TypeIds.ToArray(), shape))
            .Contiguous().AsReadOnlySpan<float>();
        var vectors = new float[seq][];
        for (var t = 0; t < seq; t++)
        {
            vectors[t] = hidden.Slice(t * c, c).ToArray();
        }

        return vectors;
    }
}
