using Sharpformer.IO.Config;
using Sharpformer.Models.Bert;
using Sharpformer.Models.DistilBert;
using Sharpformer.NN;

namespace Sharpformer.Models;

/// <summary>Builds the base model of a Hugging Face folder from its config.json <c>model_type</c>.</summary>
public static class AutoModel
{
    /// <summary>The model types <see cref="FromPretrained"/> can build.</summary>
    public static IReadOnlyList<string> SupportedModelTypes { get; } = ["bert", "roberta", "distilbert"];

    /// <summary>Loads the base model (no task head) of <paramref name="folder"/>: a <see cref="BertModel"/> for bert and roberta, a <see cref="DistilBertModel"/> for distilbert.</summary>
    /// <param name="folder">A folder with config.json and safetensors weights.</param>
    /// <returns>The model, in evaluation mode.</returns>
    /// <exception cref="NotSupportedException">The model_type has no implementation here; the message lists the supported ones.</exception>
    public static Module FromPretrained(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        var config = ModelConfig.Load(folder);
        return config.ModelType switch
        {
            "bert" or "roberta" => BertModel.FromPretrained(folder),
            "distilbert" => DistilBertModel.FromPretrained(folder),
            _ => throw new NotSupportedException(
                $"AutoModel: model_type '{config.ModelType}' in {folder} has no model implementation yet; supported model types: {string.Join(", ", SupportedModelTypes)}."),
        };
    }
}

/// <summary>Builds the masked-language-model of a Hugging Face folder from its config.json <c>model_type</c>.</summary>
public static class AutoModelForMaskedLM
{
    /// <summary>The model types <see cref="FromPretrained"/> can build.</summary>
    public static IReadOnlyList<string> SupportedModelTypes { get; } = ["bert", "distilbert"];

    /// <summary>Loads <paramref name="folder"/> as a masked language model: <see cref="BertForMaskedLM"/> for bert, <see cref="DistilBertForMaskedLM"/> for distilbert.</summary>
    /// <param name="folder">A folder with config.json and safetensors weights.</param>
    /// <returns>The model, in evaluation mode.</returns>
    /// <exception cref="NotSupportedException">The model_type has no masked-LM implementation; the message lists the supported ones.</exception>
    public static Module FromPretrained(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        var config = ModelConfig.Load(folder);
        return config.ModelType switch
        {
            "bert" => BertForMaskedLM.FromPretrained(folder),
            "distilbert" => DistilBertForMaskedLM.FromPretrained(folder),
            _ => throw new NotSupportedException(
                $"AutoModelForMaskedLM: model_type '{config.ModelType}' in {folder} has no masked-LM implementation yet; supported model types: {string.Join(", ", SupportedModelTypes)}."),
        };
    }
}
