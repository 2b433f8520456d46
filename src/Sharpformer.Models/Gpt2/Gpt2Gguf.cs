using Sharpformer.IO.Config;
using Sharpformer.IO.Gguf;
using Sharpformer.NN;
using Sharpformer.Tensors;

namespace Sharpformer.Models.Gpt2;

/// <summary>
/// Loads a GPT-2 from a llama.cpp GGUF file (architecture <c>gpt2</c>: what <see cref="Gpt2GgufExporter"/> and
/// llama.cpp's converter write), with F32, F16, BF16, Q8_0, Q4_0, Q4_K or Q6_K tensors. The hyperparameters come from the
/// <c>gpt2.*</c> keys, the tensors are renamed back to Hugging Face's (the exporter's map in reverse; ggml's [out, in]
/// rows transposed back to Conv1D's [in, out] on the way in). Every parameter is held dense in F32 (quantized tensors
/// dequantized: what llama.cpp's embedding lookups read), and every linear layer whose GGUF matrix is block-quantized
/// also takes those very blocks (<see cref="Linear.UseQuantizedWeight"/>), so its products run on the file's bytes as
/// llama.cpp's do; the tied LM head multiplies by <c>token_embd</c>'s blocks.
/// </summary>
public static class Gpt2Gguf
{
    /// <summary>Loads <paramref name="path"/> as a GPT-2 LM head model in evaluation mode.</summary>
    /// <param name="path">A GGUF file with <c>general.architecture = gpt2</c>.</param>
    /// <returns>The model.</returns>
    /// <exception cref="GgufFormatException">The file is not a valid GGUF, not gpt2, lacks a key or tensor, or has a tensor of a type or shape GPT-2 cannot use; the message says which.</exception>
    /// <exception cref="ModelConfigException">The hyperparameters do not make a valid GPT-2.</exception>
    public static Gpt2LMHeadModel Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var file = GgufFile.Open(path);
        var arch = file.Get("general.architecture").AsString("general.architecture");
        if (arch != "gpt2")
        {
            throw new GgufFormatException($"{path}: general.architecture is '{arch}'; Gpt2Gguf loads gpt2 files only.");
        }

        if (file.ContainsTensor("output.weight"))
        {
            throw new GgufFormatException($"{path}: the file has its own output.weight; Sharpformer's GPT-2 ties the head to token_embd, so this model cannot be loaded as GPT-2.");
        }

        var embd = file.GetTensor("token_embd.weight");
        int Key(string name) => checked((int)file.Get("gpt2." + name).AsUInt64("gpt2." + name));
        var dto = new Gpt2ConfigJson
        {
            ModelType = "gpt2",
            VocabSize = checked((int)embd.Dims[^1]),
            NPositions = Key("context_length"),
            NEmbd = Key("embedding_length"),
            NLayer = Key("block_count"),
            NHead = Key("attention.head_count"),
            NInner = Key("feed_forward_length"),
            LayerNormEpsilon = file.Get("gpt2.attention.layer_norm_epsilon").AsDouble("gpt2.attention.layer_norm_epsilon"),
            ActivationFunction = "gelu_new",
        };
        var config = Gpt2Config.FromJson(dto, path);

        // HF name → GGUF name, and whether the HF tensor is a Conv1D weight ([in, out], the transpose of ggml's rows).
        var map = new List<(string Hf, string Gguf, bool Conv1D)>
        {
            ("wte.weight", "token_embd.weight", false),
            ("wpe.weight", "position_embd.weight", false),
            ("ln_f.weight", "output_norm.weight", false),
            ("ln_f.bias", "output_norm.bias", false),
        };
        for (var i = 0; i < config.NumHiddenLayers; i++)
        {
            string h = $"h.{i}.", b = $"blk.{i}.";
            map.Add((h + "ln_1.weight", b + "attn_norm.weight", false));
            map.Add((h + "ln_1.bias", b + "attn_norm.bias", false));
            map.Add((h + "attn.c_attn.weight", b + "attn_qkv.weight", true));
            map.Add((h + "attn.c_attn.bias", b + "attn_qkv.bias", false));
            map.Add((h + "attn.c_proj.weight", b + "attn_output.weight", true));
            map.Add((h + "attn.c_proj.bias", b + "attn_output.bias", false));
            map.Add((h + "ln_2.weight", b + "ffn_norm.weight", false));
            map.Add((h + "ln_2.bias", b + "ffn_norm.bias", false));
            map.Add((h + "mlp.c_fc.weight", b + "ffn_up.weight", true));
            map.Add((h + "mlp.c_fc.bias", b + "ffn_up.bias", false));
            map.Add((h + "mlp.c_proj.weight", b + "ffn_down.weight", true));
            map.Add((h + "mlp.c_proj.bias", b + "ffn_down.bias", false));
        }

        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (hf, gguf, conv1D) in map)
        {
            var info = file.GetTensor(gguf);
            var values = file.ReadAsF32(gguf);
            // ggml dims are innermost first: [ne0] for vectors, [ne0, ne1] = rows of ne0 values for matrices.
            var tensor = info.Dims.Count switch
            {
                1 => Tensor.FromArray(values, new Shape(checked((int)info.Dims[0]))),
                2 => Tensor.FromArray(values, new Shape(checked((int)info.Dims[1]), checked((int)info.Dims[0]))),
                _ => throw new GgufFormatException($"{path}: tensor '{gguf}' has {info.Dims.Count} dimensions; GPT-2 needs 1 or 2."),
            };
            tensors[hf] = conv1D ? tensor.Transpose(0, 1).Contiguous() : tensor;
        }

        Gpt2LMHeadModel model;
        try
        {
            model = Gpt2LMHeadModel.FromVarBuilder(config, VarBuilder.FromTensors(tensors));
        }
        catch (ModelLoadException e)
        {
            throw new GgufFormatException($"{path}: {e.Message}");
        }

        // The file's own blocks for every quantized matrix: the products then read exactly what llama.cpp reads.
        void UseBlocks(Linear layer, string gguf)
        {
            if (file.GetTensor(gguf).Type is GgufTensorType.Q8_0 or GgufTensorType.Q4_0 or GgufTensorType.Q4_K or GgufTensorType.Q6_K)
            {
                layer.UseQuantizedWeight(file.ReadQuantized(gguf));
            }
        }

        for (var i = 0; i < config.NumHiddenLayers; i++)
        {
            var block = model.Transformer.H[i];
            UseBlocks(block.Attn.CAttn, $"blk.{i}.attn_qkv.weight");
            UseBlocks(block.Attn.CProj, $"blk.{i}.attn_output.weight");
            UseBlocks(block.Mlp.CFc, $"blk.{i}.ffn_up.weight");
            UseBlocks(block.Mlp.CProj, $"blk.{i}.ffn_down.weight");
        }

        UseBlocks(model.LmHead, "token_embd.weight");
        return model;
    }
}
