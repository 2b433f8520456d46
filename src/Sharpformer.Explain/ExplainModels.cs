using Sharpformer.IO.Config;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Models;
using Sharpformer.Models.Bert;
using Sharpformer.Models.DistilBert;
using Sharpformer.Models.Gpt2;
using Sharpformer.Pipelines;
using Sharpformer.Text;

namespace Sharpformer.Explain;

/// <summary>Loads a model folder (or Hub id) as the explainer needs it: its tokenizer and an <see cref="IExplainableModel"/>.</summary>
public static class ExplainModels
{
    /// <summary>The model types the explainer loads.</summary>
    public static IReadOnlyList<string> SupportedModelTypes { get; } = ["bert", "roberta", "distilbert", "gpt2"];

    /// <summary>
    /// Resolves <paramref name="modelIdOrFolder"/> (a local folder, or a Hub id through the cache) and loads it: GPT-2 as
    /// GPT2LMHeadModel; BERT and DistilBERT with their masked-LM head when the checkpoint has one, else the bare encoder.
    /// </summary>
    /// <param name="modelIdOrFolder">A folder with config.json, safetensors weights and tokenizer files, or "org/name".</param>
    /// <param name="options">Hub options (offline mode, revision, progress); null for the defaults.</param>
    /// <param name="ct">Cancels a download.</param>
    /// <returns>The tokenizer, the model and the folder it was read from.</returns>
    /// <exception cref="NotSupportedException">The model_type is not one the explainer supports.</exception>
    public static async Task<(TextTokenizer Tokenizer, IExplainableModel Model, string Folder)> LoadAsync(string modelIdOrFolder, PipelineOptions? options = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelIdOrFolder);
        var files = await ModelFolders.ResolveAsync(modelIdOrFolder, options ?? new PipelineOptions(),
            "pass --model a local folder with config.json, model.safetensors and the tokenizer files (vocab.txt, or vocab.json + merges.txt).", ct).ConfigureAwait(false);
        var (tokenizer, model) = Load(files.Directory);
        return (tokenizer, model, files.Directory);
    }

    /// <summary>Loads a local folder (see <see cref="LoadAsync"/>).</summary>
    /// <param name="folder">The model folder.</param>
    /// <returns>The tokenizer and the model, in evaluation mode.</returns>
    /// <exception cref="NotSupportedException">The model_type is not one the explainer supports.</exception>
    public static (TextTokenizer Tokenizer, IExplainableModel Model) Load(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        var config = ModelConfig.Load(folder);
        IExplainableModel model;
        switch (config.ModelType)
        {
            case "gpt2":
                model = Gpt2LMHeadModel.FromPretrained(folder);
                break;
            case "bert" or "roberta":
                model = config.ModelType == "bert" && HasTensor(folder, "cls.predictions.transform.dense.weight")
                    ? BertForMaskedLM.FromPretrained(folder)
                    : BertModel.FromPretrained(folder);
                break;
            case "distilbert":
                model = HasTensor(folder, "vocab_transform.weight") ? DistilBertForMaskedLM.FromPretrained(folder) : DistilBertModel.FromPretrained(folder);
                break;
            default:
                throw new NotSupportedException(
                    $"model_type '{config.ModelType}' in {Path.Combine(folder, "config.json")} is not supported yet; supported: {string.Join(", ", SupportedModelTypes)}. A new family supports it by implementing IExplainableModel.");
        }

        return (AutoTokenizer.FromPretrained(folder), model);
    }

    private static bool HasTensor(string folder, string name)
    {
        using var weights = SafeTensorsLoader.Open(folder);
        return weights.Contains(name);
    }
}
