using Sharpformer.IO.Config;
using Sharpformer.Models.Bert;
using Sharpformer.Models.DistilBert;
using Sharpformer.Models.Gpt2;

namespace Sharpformer.Models;

/// <summary>Builds the sequence classifier of a Hugging Face folder from its config.json <c>model_type</c>.</summary>
public static class AutoModelForSequenceClassification
{
    /// <summary>The model types <see cref="FromPretrained"/> and <see cref="FromConfig"/> can build.</summary>
    public static IReadOnlyList<string> SupportedModelTypes { get; } = ["bert", "distilbert", "gpt2"];

    /// <summary>
    /// Loads <paramref name="folder"/> as a sequence classifier: <see cref="BertForSequenceClassification"/>,
    /// <see cref="DistilBertForSequenceClassification"/> or <see cref="Gpt2ForSequenceClassification"/>. A base or
    /// language-model checkpoint gets a newly initialised head, listed in the model's <c>LoadReport</c> as HF does.
    /// </summary>
    /// <param name="folder">A folder with config.json and safetensors weights.</param>
    /// <param name="labels">The classes in id order (overrides config.json's id2label), or null for the file's (LABEL_0, LABEL_1 when it has none).</param>
    /// <param name="seed">The seed of a new head's initialisation.</param>
    /// <returns>The model, in evaluation mode.</returns>
    /// <exception cref="NotSupportedException">The model_type has no sequence-classification head here; the message lists the supported ones.</exception>
    public static ISequenceClassifier FromPretrained(string folder, IReadOnlyList<string>? labels = null, int seed = 0)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        var config = ModelConfig.Load(folder);
        return config.ModelType switch
        {
            "bert" => BertForSequenceClassification.FromPretrained(folder, labels, seed),
            "distilbert" => DistilBertForSequenceClassification.FromPretrained(folder, labels, seed),
            "gpt2" => Gpt2ForSequenceClassification.FromPretrained(folder, labels, seed),
            _ => throw Unsupported(nameof(AutoModelForSequenceClassification), config.ModelType, folder, SupportedModelTypes),
        };
    }

    /// <summary>A fresh sequence classifier for <paramref name="config"/> (its id2label sizes the head), initialised as HF's <c>_init_weights</c> does, in training mode.</summary>
    /// <param name="config">A validated config (bert, distilbert or gpt2); use <see cref="ModelConfig.WithLabels"/> to set the classes.</param>
    /// <param name="seed">The seed of the initialisation.</param>
    /// <returns>The model.</returns>
    /// <exception cref="NotSupportedException">The model_type has no sequence-classification head here.</exception>
    public static ISequenceClassifier FromConfig(ModelConfig config, int seed)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config switch
        {
            BertConfig bert => BertForSequenceClassification.FromConfig(bert, seed),
            DistilBertConfig distil => DistilBertForSequenceClassification.FromConfig(distil, seed),
            Gpt2Config gpt2 => Gpt2ForSequenceClassification.FromConfig(gpt2, seed),
            _ => throw Unsupported(nameof(AutoModelForSequenceClassification), config.ModelType, null, SupportedModelTypes),
        };
    }

    internal static NotSupportedException Unsupported(string factory, string modelType, string? folder, IReadOnlyList<string> supported) => new(
        $"{factory}: model_type '{modelType}'{(folder is null ? "" : $" in {folder}")} has no such head here; supported model types: {string.Join(", ", supported)}.");
}

/// <summary>Builds the token classifier (e.g. NER) of a Hugging Face folder from its config.json <c>model_type</c>.</summary>
public static class AutoModelForTokenClassification
{
    /// <summary>The model types <see cref="FromPretrained"/> and <see cref="FromConfig"/> can build.</summary>
    public static IReadOnlyList<string> SupportedModelTypes { get; } = ["bert", "distilbert"];

    /// <summary>Loads <paramref name="folder"/> as a token classifier: <see cref="BertForTokenClassification"/> or <see cref="DistilBertForTokenClassification"/>; a base or MLM checkpoint gets a newly initialised classifier (listed in its <c>LoadReport</c>).</summary>
    /// <param name="folder">A folder with config.json and safetensors weights.</param>
    /// <param name="labels">The tags in id order (overrides config.json's id2label), or null for the file's.</param>
    /// <param name="seed">The seed of a new head's initialisation.</param>
    /// <returns>The model, in evaluation mode.</returns>
    /// <exception cref="NotSupportedException">The model_type has no token-classification head here; the message lists the supported ones.</exception>
    public static ITokenClassifier FromPretrained(string folder, IReadOnlyList<string>? labels = null, int seed = 0)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        var config = ModelConfig.Load(folder);
        return config.ModelType switch
        {
            "bert" => BertForTokenClassification.FromPretrained(folder, labels, seed),
            "distilbert" => DistilBertForTokenClassification.FromPretrained(folder, labels, seed),
            _ => throw AutoModelForSequenceClassification.Unsupported(nameof(AutoModelForTokenClassification), config.ModelType, folder, SupportedModelTypes),
        };
    }

    /// <summary>A fresh token classifier for <paramref name="config"/> (its id2label sizes the head), initialised as HF does, in training mode.</summary>
    /// <param name="config">A validated config (bert or distilbert).</param>
    /// <param name="seed">The seed of the initialisation.</param>
    /// <returns>The model.</returns>
    /// <exception cref="NotSupportedException">The model_type has no token-classification head here.</exception>
    public static ITokenClassifier FromConfig(ModelConfig config, int seed)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config switch
        {
            BertConfig bert => BertForTokenClassification.FromConfig(bert, seed),
            DistilBertConfig distil => DistilBertForTokenClassification.FromConfig(distil, seed),
            _ => throw AutoModelForSequenceClassification.Unsupported(nameof(AutoModelForTokenClassification), config.ModelType, null, SupportedModelTypes),
        };
    }
}

/// <summary>Builds the extractive question-answering model of a Hugging Face folder from its config.json <c>model_type</c>.</summary>
public static class AutoModelForQuestionAnswering
{
    /// <summary>The model types <see cref="FromPretrained"/> and <see cref="FromConfig"/> can build.</summary>
    public static IReadOnlyList<string> SupportedModelTypes { get; } = ["bert", "distilbert"];

    /// <summary>Loads <paramref name="folder"/> as a QA model: <see cref="BertForQuestionAnswering"/> or <see cref="DistilBertForQuestionAnswering"/>; a base or MLM checkpoint gets a newly initialised qa_outputs (listed in its <c>LoadReport</c>).</summary>
    /// <param name="folder">A folder with config.json and safetensors weights.</param>
    /// <param name="seed">The seed of a new head's initialisation.</param>
    /// <returns>The model, in evaluation mode.</returns>
    /// <exception cref="NotSupportedException">The model_type has no question-answering head here; the message lists the supported ones.</exception>
    public static IQuestionAnswering FromPretrained(string folder, int seed = 0)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        var config = ModelConfig.Load(folder);
        return config.ModelType switch
        {
            "bert" => BertForQuestionAnswering.FromPretrained(folder, seed),
            "distilbert" => DistilBertForQuestionAnswering.FromPretrained(folder, seed),
            _ => throw AutoModelForSequenceClassification.Unsupported(nameof(AutoModelForQuestionAnswering), config.ModelType, folder, SupportedModelTypes),
        };
    }

    /// <summary>A fresh QA model for <paramref name="config"/> (num_labels 2), initialised as HF does, in training mode.</summary>
    /// <param name="config">A validated config (bert or distilbert).</param>
    /// <param name="seed">The seed of the initialisation.</param>
    /// <returns>The model.</returns>
    /// <exception cref="NotSupportedException">The model_type has no question-answering head here.</exception>
    public static IQuestionAnswering FromConfig(ModelConfig config, int seed)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config switch
        {
            BertConfig bert => BertForQuestionAnswering.FromConfig(bert, seed),
            DistilBertConfig distil => DistilBertForQuestionAnswering.FromConfig(distil, seed),
            _ => throw AutoModelForSequenceClassification.Unsupported(nameof(AutoModelForQuestionAnswering), config.ModelType, null, SupportedModelTypes),
        };
    }
}
