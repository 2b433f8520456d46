using Sharpformer.IO.Config;
using Sharpformer.Models.Llama;

namespace Sharpformer.Models.Tests;

/// <summary>
/// A random Llama wide enough for every ggml block type (linked into Sharpformer.Peers.Tests too): hidden 256 and
/// intermediate 512 are whole Q4_K/Q6_K super-blocks, so a quantized export keeps no matrix in F16; four heads of 64
/// over two key/value heads (grouped-query attention, the llama q/k row permutation on 64-row heads), two layers, 96
/// tokens. initializer_range 0.1 spreads the logits over several units, far beyond the quantization tolerances.
/// </summary>
internal static class WideLlama
{
    /// <summary>Writes config.json and model.safetensors of the seeded model into <paramref name="folder"/>.</summary>
    /// <param name="folder">Created if missing.</param>
    /// <param name="tied">Whether lm_head is tied to the token embedding.</param>
    /// <param name="seed">The initialization seed.</param>
    /// <returns><paramref name="folder"/>.</returns>
    public static string Create(string folder, bool tied, int seed = 5)
    {
        Directory.CreateDirectory(folder);
        var json = $$"""
            {
              "model_type": "llama",
              "vocab_size": 96,
              "hidden_size": 256,
              "intermediate_size": 512,
              "num_hidden_layers": 2,
              "num_attention_heads": 4,
              "num_key_value_heads": 2,
              "max_position_embeddings": 64,
              "rms_norm_eps": 1e-05,
              "rope_theta": 10000.0,
              "tie_word_embeddings": {{(tied ? "true" : "false")}},
              "hidden_act": "silu",
              "initializer_range": 0.1,
              "bos_token_id": 1,
              "eos_token_id": 2
            }
            """;
        var config = (LlamaConfig)ModelConfig.Parse(json, "WideLlama");
        LlamaForCausalLM.FromConfig(config, seed).SaveSafetensors(Path.Combine(folder, "model.safetensors"));
        File.WriteAllText(Path.Combine(folder, "config.json"), json);
        return folder;
    }
}
