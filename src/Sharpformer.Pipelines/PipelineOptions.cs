using Sharpformer.IO.Hub;
using Sharpformer.NN;

namespace Sharpformer.Pipelines;

/// <summary>How a pipeline finds and loads its model; every property has a sensible default.</summary>
public sealed record PipelineOptions
{
    /// <summary>The Hub settings; null means <see cref="HubOptions.FromEnvironment"/> (HF_ENDPOINT, HF_HUB_OFFLINE, HF_HUB_CACHE…).</summary>
    public HubOptions? Hub { get; init; }

    /// <summary>Branch, tag or commit to load from the Hub.</summary>
    public string Revision { get; init; } = "main";

    /// <summary>Receives download progress while model files are fetched.</summary>
    public IProgress<DownloadProgress>? DownloadProgress { get; init; }

    /// <summary>Receives warnings HF would log (e.g. a fill-mask target that is not one token); null drops them.</summary>
    public Action<string>? Warning { get; init; }

    /// <summary>
    /// Cut inputs longer than the model's limit down to it instead of failing (HF's <c>truncation=True</c>). Off by
    /// default, so a too-long input is an error that names the limit. Sentence embeddings always truncate to
    /// max_seq_length, as sentence-transformers does, unless <see cref="NoTruncation"/> is set.
    /// </summary>
    public bool Truncation { get; init; }

    /// <summary>
    /// The model name is a default the user did not choose: when it is a Hugging Face default with a shipped stand-in
    /// (<see cref="ShippedModels.StandIns"/>) and neither the cache nor the Hub can give it, load the shipped model
    /// instead and say so once through <see cref="Warning"/>. Verbs set this only when <c>--model</c> was not given, so
    /// an explicit model is never replaced.
    /// </summary>
    public bool UseShippedWhenUnavailable { get; init; }

    /// <summary>
    /// Sentence embeddings only (<c>--no-truncate</c>): fail on a text longer than max_seq_length instead of cutting it
    /// down with a warning (sentence-transformers' behaviour, the default).
    /// </summary>
    public bool NoTruncation { get; init; }

    /// <summary>
    /// The number format the encoder's linear layers compute in (<c>--dtype</c>): F32 (default), BF16 (bfloat16 weights
    /// and activations, float32 accumulation) or Int8 (dynamic quantization as ONNX Runtime's quantize_dynamic).
    /// Heads, embeddings, attention and norms stay float32.
    /// </summary>
    public LinearPrecision Precision { get; init; } = LinearPrecision.F32;
}
