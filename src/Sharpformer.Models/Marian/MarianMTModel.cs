// MarianMT (Junczys-Dowmunt et al. 2018; the Helsinki-NLP opus-mt models) in Hugging Face's names (modeling_marian.py).
// Its layers, attention and head are BART's (HF's Marian file copies them), so the module tree is
// BartForConditionalGeneration run with Marian's settings: static sinusoidal positions laid out as below, no
// layernorm_embedding, scale_embedding (√d_model), swish, final_logits_bias, one table for source, target and lm_head,
// decoder start = pad. This file holds what is Marian's own: the position table and loading.
using Sharpformer.IO.Config;
using Sharpformer.Models.Bart;
using Sharpformer.Tensors;

namespace Sharpformer.Models.Marian;

/// <summary>Loads MarianMT checkpoints (model_type marian) and lays out Marian's sinusoidal positions.</summary>
public static class MarianMTModel
{
    /// <summary>
    /// Marian's static position table [positions, dim] (HF <c>MarianSinusoidalPositionalEmbedding</c>): angle(p, j) =
    /// p / 10000^(2·⌊j/2⌋/dim); the first ⌈dim/2⌉ channels hold sin of the even-j angles, the rest cos of the odd-j ones
    /// (not interleaved). Computed in double, stored F32. Positions start at 0 (no offset).
    /// </summary>
    /// <param name="positions">max_position_embeddings.</param>
    /// <param name="dim">d_model.</param>
    /// <returns>The table.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    public static Tensor SinusoidalPositions(int positions, int dim)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(positions);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dim);
        var table = new float[positions * dim];
        int sentinel = dim % 2 == 0 ? dim / 2 : (dim / 2) + 1;
        for (int p = 0; p < positions; p++)
        {
            for (int j = 0; j < dim; j++)
            {
                double angle = p / Math.Pow(10000, 2.0 * (j / 2) / dim);
                if (j % 2 == 0)
                {
                    table[(p * dim) + (j / 2)] = (float)Math.Sin(angle);
                }
                else
                {
                    table[(p * dim) + sentinel + (j / 2)] = (float)Math.Cos(angle);
                }
            }
        }

        return Tensor.FromArray(table, new Shape(positions, dim));
    }

    /// <summary>Loads an HF MarianMT folder (config.json of model_type marian + safetensors), in evaluation mode.</summary>
    /// <param name="folder">The model folder.</param>
    /// <param name="dtype">The matrices' type: F32 (default, trainable), F16 or BF16 (inference only).</param>
    /// <returns>The model.</returns>
    /// <exception cref="InvalidDataException">config.json is not a Marian config.</exception>
    /// <exception cref="ModelConfigException">config.json is missing or invalid (e.g. separate source/target vocabularies).</exception>
    public static BartForConditionalGeneration FromPretrained(string folder, DType dtype = DType.F32)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        if (ModelConfig.Load(folder) is not BartConfig { Family: "marian" })
        {
            throw new InvalidDataException($"{Path.Combine(folder, "config.json")}: model_type is not marian; use AutoModelForSeq2SeqLM for other encoder-decoders.");
        }

        return BartForConditionalGeneration.FromPretrained(folder, dtype);
    }
}
