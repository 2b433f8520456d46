using System.Text.Json;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Tensors;

namespace Sharpformer.IO.Tests.Gguf;

/// <summary>How a test GPT-2 folder stores its tokenizer.</summary>
public enum TokenizerLayout
{
    /// <summary>vocab.json + merges.txt.</summary>
    VocabAndMerges,

    /// <summary>tokenizer.json, merges as pairs, model.type "BPE".</summary>
    TokenizerJson,

    /// <summary>The Hub's older GPT-2 tokenizer.json: merges as "a b" strings, no model.type.</summary>
    LegacyTokenizerJson,
}

/// <summary>A tiny random GPT-2 Hugging Face folder (C = 8, 2 layers, a 7-token byte-level vocabulary, vocab_size 8).</summary>
internal static class TinyGpt2
{
    public const int C = 8;
    public const int Layers = 2;
    public const int Positions = 16;

    // A toy byte-level vocabulary: ids 0..5 plus <|endoftext|> at 6; vocab_size 8 leaves id 7 as padding.
    private static readonly Dictionary<string, int> Vocab = new()
    {
        ["a"] = 0,
        ["b"] = 1,
        ["Ġ"] = 2,
        ["ab"] = 3,
        ["Ġa"] = 4,
        ["Ġab"] = 5,
        ["<|endoftext|>"] = 6,
    };

    public static readonly string[] Merges = ["a b", "Ġ a", "Ġa b"];

    public static string Make(string folder, TokenizerLayout layout = TokenizerLayout.VocabAndMerges, bool hubNames = false, string activation = "gelu_new", Action<Dictionary<string, Tensor>>? edit = null)
    {
        File.WriteAllText(Path.Combine(folder, "config.json"), $$"""
            {"model_type": "gpt2", "vocab_size": 8, "n_positions": {{Positions}}, "n_embd": {{C}}, "n_layer": {{Layers}}, "n_head": 2,
             "activation_function": "{{activation}}", "bos_token_id": 6, "eos_token_id": 6}
            """);
        var rng = new Random(7);
        var prefix = hubNames ? "" : "transformer.";
        var w = new Dictionary<string, Tensor>
        {
            [prefix + "wte.weight"] = Tensor.RandomNormal(new int[] { 8, C }, rng),
            [prefix + "wpe.weight"] = Tensor.RandomNormal(new int[] { Positions, C }, rng),
            [prefix + "ln_f.weight"] = Tensor.RandomNormal(new int[] { C }, rng),
            [prefix + "ln_f.bias"] = Tensor.RandomNormal(new int[] { C }, rng),
        };
        for (var i = 0; i < Layers; i++)
        {
            var p = $"{prefix}h.{i}.";
            w[p + "ln_1.weight"] = Tensor.RandomNormal(new int[] { C }, rng);
            w[p + "ln_1.bias"] = Tensor.RandomNormal(new int[] { C }, rng);
            w[p + "attn.c_attn.weight"] = Tensor.RandomNormal(new int[] { C, 3 * C }, rng);
            w[p + "attn.c_attn.bias"] = Tensor.RandomNormal(new int[] { 3 * C }, rng);
            w[p + "attn.c_proj.weight"] = Tensor.RandomNormal(new int[] { C, C }, rng);
            w[p + "attn.c_proj.bias"] = Tensor.RandomNormal(new int[] { C }, rng);
            w[p + "ln_2.weight"] = Tensor.RandomNormal(new int[] { C }, rng);
            w[p + "ln_2.bias"] = Tensor.RandomNormal(new int[] { C }, rng);
            w[p + "mlp.c_fc.weight"] = Tensor.RandomNormal(new int[] { C, 4 * C }, rng);
            w[p + "mlp.c_fc.bias"] = Tensor.RandomNormal(new int[] { 4 * C }, rng);
            w[p + "mlp.c_proj.weight"] = Tensor.RandomNormal(new int[] { 4 * C, C }, rng);
            w[p + "mlp.c_proj.bias"] = Tensor.RandomNormal(new int[] { C }, rng);
            if (hubNames)
            {
                // Causal-mask buffers some Hub checkpoints carry: not parameters, never exported.
                w[p + "attn.bias"] = Tensor.Ones(new int[] { 1, 1, Positions, Positions });
                w[p + "attn.masked_bias"] = Tensor.Full(new int[] { 1 }, -1e4f);
            }
        }

        edit?.Invoke(w);
        SafeTensorsWriter.Write(Path.Combine(folder, "model.safetensors"), w.Select(kv => (kv.Key, kv.Value)));
        switch (layout)
        {
            case TokenizerLayout.VocabAndMerges:
                File.WriteAllText(Path.Combine(folder, "vocab.json"), JsonSerializer.Serialize(Vocab));
                File.WriteAllLines(Path.Combine(folder, "merges.txt"), ["#version: 0.2", .. Merges]);
                break;
            default:
                var legacy = layout == TokenizerLayout.LegacyTokenizerJson;
                var model = new Dictionary<string, object> { ["vocab"] = Vocab, ["merges"] = legacy ? Merges : Merges.Select(m => m.Split(' ')).ToArray() };
                if (!legacy)
                {
                    model["type"] = "BPE";
                }

                var json = new Dictionary<string, object>
                {
                    ["added_tokens"] = new[] { new { id = 6, content = "<|endoftext|>", special = true } },
                    ["model"] = model,
                };
                File.WriteAllText(Path.Combine(folder, "tokenizer.json"), JsonSerializer.Serialize(json));
                break;
        }

        return folder;
    }
}
