using Sharpformer.IO.Hub;

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
    /// default, so a too-long input is an error that names the limit.
    /// </summary>
    public bool Truncation { get; init; }

    /// <summary>
    /// The model name is a default the user did not choose: when it is a Hugging Face default with a shipped stand-in
    /// (<see cref="ShippedModels.StandIns"/>) and neither the cache nor the Hub can give it, load the shipped model
    /// instead and say so once through <see cref="Warning"/>. Verbs set this only when <c>--model</c> was not given, so
    /// an explicit model is never replaced.
    /// </summary>
    public bool UseShippedWhenUnavailable { get; init; }
}
