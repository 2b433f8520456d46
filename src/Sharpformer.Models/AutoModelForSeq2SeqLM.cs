using System.Text.Json;
using Sharpformer.IO.Config;
using Sharpformer.Models.Seq2Seq;

namespace Sharpformer.Models;

/// <summary>Builds the encoder-decoder (sequence-to-sequence) language model of a folder from its config.json <c>model_type</c>.</summary>
public static class AutoModelForSeq2SeqLM
{
    /// <summary>The model types <see cref="FromPretrained"/> can build.</summary>
    public static IReadOnlyList<string> SupportedModelTypes { get; } = [TransformerConfig.ModelTypeName];

    /// <summary>Loads <paramref name="folder"/> as an encoder-decoder, in evaluation mode.</summary>
    /// <param name="folder">A folder with config.json and safetensors weights.</param>
    /// <returns>The model.</returns>
    /// <exception cref="ModelConfigException">config.json is missing, unreadable or has no model_type.</exception>
    /// <exception cref="NotSupportedException">The model_type is not an encoder-decoder here; the message lists the supported ones.</exception>
    public static ISeq2SeqLM FromPretrained(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        string modelType = ReadModelType(folder);
        return modelType switch
        {
            TransformerConfig.ModelTypeName => TransformerForConditionalGeneration.FromPretrained(folder),
            _ => throw new NotSupportedException(
                $"{folder}: model_type '{modelType}' is not an encoder-decoder (translation/summarization) model here; use a model of type {string.Join(", ", SupportedModelTypes)}."),
        };
    }

    /// <summary>config.json's <c>model_type</c>.</summary>
    private static string ReadModelType(string folder)
    {
        string path = Path.Combine(folder, "config.json");
        if (!File.Exists(path))
        {
            throw new ModelConfigException($"{path} does not exist; an encoder-decoder folder holds config.json and model.safetensors.");
        }

        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(path));
            if (document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("model_type", out var type)
                && type.ValueKind == JsonValueKind.String)
            {
                return type.GetString()!;
            }
        }
        catch (JsonException e)
        {
            throw new ModelConfigException($"{path}: not valid JSON ({e.Message}).", e);
        }

        throw new ModelConfigException($"{path}: model_type is missing; add it (e.g. \"{TransformerConfig.ModelTypeName}\").");
    }
}
