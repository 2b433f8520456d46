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
                $"{folder}: model_type '{config.ModelType}' is not supported here yet; use a model of type {string.Join(", ", SupportedModelTypes)}."),
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
                $"{folder}: model_type '{config.ModelType}' has no masked-LM (fill-mask) implementation here yet; use a model of type {string.Join(", ", SupportedModelTypes)}."),
        };
    }

    /// <summary>
    /// A fresh masked language model for <paramref name="config"/>, initialised as Hugging Face's <c>_init_weights</c>
    /// does (normal(0, initializer_range) weights, zero biases, LayerNorm 1/0, padding row zero), in training mode.
    /// </summary>
    /// <param name="config">A validated config (bert).</param>
    /// <param name="seed">The seed of the initialisation.</param>
    /// <returns>The model.</returns>
    /// <exception cref="NotSupportedException">The model_type cannot be built from scratch here; the message lists the ones that can.</exception>
    public static Module FromConfig(ModelConfig config, int seed)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config switch
        {
            BertConfig bert when config.ModelType == "bert" => BertForMaskedLM.FromConfig(bert, seed),
            _ => throw new NotSupportedException(
                $"a fresh '{config.ModelType}' masked-LM cannot be built from a config yet (from scratch: bert); to continue training a checkpoint of another type, pass --model."),
        };
    }
}
