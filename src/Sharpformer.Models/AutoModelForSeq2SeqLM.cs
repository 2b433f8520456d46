using System.Text.Json;
using Sharpformer.IO.Config;
using Sharpformer.Models.Bart;
using Sharpformer.Models.Seq2Seq;
using Sharpformer.Models.T5;
using Sharpformer.Tensors;

namespace Sharpformer.Models;

/// <summary>
/// Builds the encoder-decoder (sequence-to-sequence) language model of a Hugging Face folder from its config.json
/// <c>model_type</c>, like transformers' <c>AutoModelForSeq2SeqLM</c>.
/// </summary>
public static class AutoModelForSeq2SeqLM
{
    /// <summary>The model types <see cref="FromPretrained"/> can build.</summary>
    public static IReadOnlyList<string> SupportedModelTypes { get; } = ["bart", "marian", "mbart", "t5", TransformerConfig.ModelTypeName];

    /// <summary>
    /// Loads <paramref name="folder"/> as an encoder-decoder: <see cref="BartForConditionalGeneration"/> for bart,
    /// marian (MarianMT) and mbart, <see cref="T5ForConditionalGeneration"/> for t5 (v1.0, v1.1, flan-t5), and
    /// <see cref="TransformerForConditionalGeneration"/> (the original Transformer) for sharpformer-transformer.
    /// </summary>
    /// <param name="folder">A folder with config.json and safetensors weights.</param>
    /// <param name="dtype">The type the weight matrices are kept in (HF's <c>torch_dtype</c>): F32 (default, trainable), F16 or BF16 (inference only, the Hugging Face families); compute stays F32.</param>
    /// <returns>The model, in evaluation mode.</returns>
    /// <exception cref="ArgumentException"><paramref name="dtype"/> is not F32, F16 or BF16, or not F32 for the original Transformer.</exception>
    /// <exception cref="ModelConfigException">config.json is missing or invalid.</exception>
    /// <exception cref="NotSupportedException">The model_type is not an encoder-decoder implemented here; the message lists the supported ones.</exception>
    public static ISeq2SeqLM FromPretrained(string folder, DType dtype = DType.F32)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        if (ReadModelType(folder) == TransformerConfig.ModelTypeName)
        {
            if (dtype != DType.F32)
            {
                throw new ArgumentException($"{folder}: the original Transformer ({TransformerConfig.ModelTypeName}) loads in F32 only; drop the {dtype} dtype.", nameof(dtype));
            }

            return TransformerForConditionalGeneration.FromPretrained(folder);
        }

        var config = ModelConfig.Load(folder);
        return config switch
        {
            BartConfig => BartForConditionalGeneration.FromPretrained(folder, dtype),
            T5Config => T5ForConditionalGeneration.FromPretrained(folder, dtype),
            _ => throw new NotSupportedException(
                $"{folder}: model_type '{config.ModelType}' is not an encoder-decoder (sequence-to-sequence) model here; use a model of type {string.Join(", ", SupportedModelTypes)}."),
        };
    }

    /// <summary>config.json's <c>model_type</c> (the original Transformer's config is ours, not one <see cref="ModelConfig"/> reads).</summary>
    private static string? ReadModelType(string folder)
    {
        string path = Path.Combine(folder, "config.json");
        if (!File.Exists(path))
        {
            throw new ModelConfigException($"{path} does not exist; an encoder-decoder folder holds config.json and model.safetensors.");
        }

        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(path));
            return document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("model_type", out var type)
                && type.ValueKind == JsonValueKind.String
                ? type.GetString()
                : null;
        }
        catch (JsonException e)
        {
            throw new ModelConfigException($"{path}: not valid JSON ({e.Message}).", e);
        }
    }
}
