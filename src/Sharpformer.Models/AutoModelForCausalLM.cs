using Sharpformer.IO.Config;
using Sharpformer.IO.Gguf;
using Sharpformer.Models.Gpt2;
using Sharpformer.Models.Llama;
using Sharpformer.Tensors;
using Sharpformer.Text;

namespace Sharpformer.Models;

/// <summary>Builds the causal (next-token) language model of a Hugging Face folder from its config.json <c>model_type</c>.</summary>
public static class AutoModelForCausalLM
{
    /// <summary>The model types <see cref="FromPretrained"/> can build.</summary>
    public static IReadOnlyList<string> SupportedModelTypes { get; } = ["gpt2", "llama", "mistral", "phi3", "qwen2"];

    /// <summary>
    /// Loads <paramref name="folder"/> as a causal LM (<see cref="Gpt2LMHeadModel"/> for gpt2, <see cref="LlamaForCausalLM"/>
    /// for llama, mistral, qwen2 and phi3); a llama.cpp <c>.gguf</c> file loads by its general.architecture: gpt2 through
    /// <see cref="Gpt2Gguf"/> (quantized matrices multiplied as stored; <paramref name="dtype"/> is not used), llama, qwen2
    /// and phi3 through <see cref="LlamaGguf"/> (quantized matrices multiplied as stored; <paramref name="dtype"/> is the
    /// type of the dense copies).
    /// </summary>
    /// <param name="folder">A folder with config.json and safetensors weights, or a .gguf file.</param>
    /// <param name="dtype">The type the weight matrices are kept in (HF's <c>torch_dtype</c>): F32 (default), F16 or BF16; compute stays F32.</param>
    /// <returns>The model.</returns>
    /// <exception cref="ArgumentException"><paramref name="dtype"/> is not F32, F16 or BF16.</exception>
    /// <exception cref="NotSupportedException">The model_type has no causal-LM implementation; the message lists the supported ones.</exception>
    public static ICausalLM FromPretrained(string folder, DType dtype = DType.F32)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        if (LlamaGguf.IsGgufFile(folder))
        {
            string architecture = GgufFile.Open(folder).Get("general.architecture").AsString("general.architecture");
            return architecture == "gpt2" ? Gpt2Gguf.Load(folder) : LlamaGguf.LoadModel(folder, dtype);
        }

        var config = ModelConfig.Load(folder);
        return config.ModelType switch
        {
            "gpt2" => Gpt2LMHeadModel.FromPretrained(folder, dtype),
            "llama" or "mistral" or "qwen2" or "phi3" => LlamaForCausalLM.FromPretrained(folder, dtype),
            _ => throw new NotSupportedException(
                $"{folder}: model_type '{config.ModelType}' is not a causal (text-generation) language model here; use a model of type {string.Join(", ", SupportedModelTypes)}."),
        };
    }

    /// <summary>
    /// Loads a llama.cpp GGUF file as a causal LM together with the tokenizer it carries (tokenizer.ggml.*, with its
    /// chat template): gpt2 files through <see cref="Gpt2Gguf"/>, llama, qwen2 and phi3 through <see cref="LlamaGguf"/>.
    /// </summary>
    /// <param name="path">The .gguf file.</param>
    /// <param name="dtype">The type the dense matrices are kept in (Llama family; GPT-2 files keep their own types).</param>
    /// <returns>The model and its tokenizer.</returns>
    /// <exception cref="NotSupportedException">The file carries no vocabulary, or its architecture, tokenizer or a tensor type is not supported; the message says which.</exception>
    public static (ICausalLM Model, TextTokenizer Tokenizer) FromGguf(string path, DType dtype = DType.F32)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var tokenizer = LlamaGguf.ReadTokenizer(GgufFile.Open(path))
            ?? throw new NotSupportedException($"{path}: the file carries no vocabulary (tokenizer.ggml.model is no_vocab or absent), so text cannot be tokenized; use a GGUF converted with its tokenizer.");
        return (FromPretrained(path, dtype), tokenizer);
    }

    /// <summary>
    /// A fresh causal LM for <paramref name="config"/>, initialised as Hugging Face's <c>_init_weights</c> does
    /// (normal(0, initializer_range), GPT-2's residual projections scaled by 1/√(2·n_layer), zero biases, LayerNorm and
    /// RMSNorm weights 1, LayerNorm biases 0),
    /// in training mode.
    /// </summary>
    /// <param name="config">A validated config (gpt2, llama, mistral, qwen2, phi3).</param>
    /// <param name="seed">The seed of the initialisation.</param>
    /// <returns>The model.</returns>
    /// <exception cref="NotSupportedException">The model_type cannot be built from scratch here; the message lists the ones that can.</exception>
    public static ICausalLM FromConfig(ModelConfig config, int seed)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config switch
        {
            Gpt2Config gpt2 => Gpt2LMHeadModel.FromConfig(gpt2, seed),
            LlamaConfig llama => LlamaForCausalLM.FromConfig(llama, seed),
            _ => throw new NotSupportedException(
                $"a fresh '{config.ModelType}' causal LM cannot be built from a config yet; use a config of type {string.Join(", ", SupportedModelTypes)}."),
        };
    }
}
