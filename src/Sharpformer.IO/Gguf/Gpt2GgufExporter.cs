using System.Globalization;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Sharpformer.IO.Config;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Tensors.Kernels.Quant;

namespace Sharpformer.IO.Gguf;

/// <summary>What <see cref="Gpt2GgufExporter.Export"/> wrote.</summary>
/// <param name="OutputPath">The GGUF file.</param>
/// <param name="FileType">F32, F16, Q8_0, Q4_0 or Q4_K weights.</param>
/// <param name="TensorCount">Tensors written.</param>
/// <param name="ParameterCount">Values in those tensors.</param>
/// <param name="FileBytes">Size of the file.</param>
/// <param name="Config">The model's config.</param>
/// <param name="TiedOutput">True when the head is the token embedding (no separate <c>output.weight</c>).</param>
public sealed record Gpt2GgufExport(string OutputPath, GgufFileType FileType, int TensorCount, long ParameterCount, long FileBytes, Gpt2Config Config, bool TiedOutput);

/// <summary>
/// Exports a Hugging Face GPT-2 folder (config.json, safetensors, tokenizer files) to a GGUF file that llama.cpp's
/// <c>gpt2</c> architecture loads: its tensor names, its dimension order, its metadata keys, and the tokenizer keys
/// (<c>tokenizer.ggml.model = "gpt2"</c>, <c>tokenizer.ggml.pre = "gpt-2"</c>, tokens, token types, merges).
/// </summary>
public static class Gpt2GgufExporter
{
    private static readonly string[] TanhGelu = ["gelu_new", "gelu_pytorch_tanh"];

    /// <summary>Writes <paramref name="outputPath"/> from the GPT-2 checkpoint in <paramref name="folder"/>.</summary>
    /// <param name="folder">The Hugging Face folder.</param>
    /// <param name="outputPath">The .gguf to write (replaced if present; written to a temporary file first).</param>
    /// <param name="fileType">All F32; 2-D weights in F16 with norms and biases kept F32 (as llama.cpp's converter does); or quantized as llama.cpp's quantizer would (see <see cref="TensorType"/>).</param>
    /// <param name="name">general.name (default: the folder's name).</param>
    /// <exception cref="GgufFormatException">The checkpoint is not a GPT-2 llama.cpp can run, or a tensor is missing or mis-shaped.</exception>
    /// <exception cref="ModelConfigException">config.json is missing or invalid.</exception>
    /// <exception cref="SafeTensorsException">The weights cannot be opened.</exception>
    public static Gpt2GgufExport Export(string folder, string outputPath, GgufFileType fileType = GgufFileType.AllF32, string? name = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentException.ThrowIfNullOrEmpty(outputPath);
        if (!Directory.Exists(folder))
        {
            throw new GgufFormatException($"{folder}: no such folder; pass a Hugging Face GPT-2 folder (config.json, model.safetensors, tokenizer files).");
        }

        if (ModelConfig.Load(folder) is not Gpt2Config config)
        {
            throw new GgufFormatException($"{folder}/config.json: model_type is not gpt2; this exporter writes llama.cpp's gpt2 architecture only.");
        }

        CheckSupported(folder, config);
        var controlIds = new List<int>(config.EosTokenIds);
        if (config.BosTokenId is { } bos)
        {
            controlIds.Add(bos);
        }

        var vocabulary = Gpt2Vocabulary.Read(folder, config.VocabSize, controlIds);
        using var weights = SafeTensorsLoader.Open(folder);
        var prefix = weights.Contains("transformer.wte.weight") ? "transformer." : "";
        int c = config.HiddenSize, ff = config.IntermediateSize, v = config.VocabSize, p = config.MaxPositionEmbeddings;

        var writer = new GgufWriter();
        writer.Add("general.architecture", GgufValue.FromString("gpt2"));
        writer.Add("general.name", GgufValue.FromString(name ?? new DirectoryInfo(folder).Name));
        writer.Add("general.file_type", GgufValue.FromUInt32((uint)fileType));
        writer.Add("gpt2.context_length", GgufValue.FromUInt32((uint)p));
        writer.Add("gpt2.embedding_length", GgufValue.FromUInt32((uint)c));
        writer.Add("gpt2.feed_forward_length", GgufValue.FromUInt32((uint)ff));
        writer.Add("gpt2.block_count", GgufValue.FromUInt32((uint)config.NumHiddenLayers));
        writer.Add("gpt2.attention.head_count", GgufValue.FromUInt32((uint)config.NumAttentionHeads));
        writer.Add("gpt2.attention.layer_norm_epsilon", GgufValue.FromFloat32((float)config.LayerNormEpsilon));
        writer.Add("tokenizer.ggml.model", GgufValue.FromString("gpt2"));
        // Without "gpt-2" llama.cpp falls back to a default pre-tokenizer regex that splits text differently.
        writer.Add("tokenizer.ggml.pre", GgufValue.FromString("gpt-2"));
        writer.Add("tokenizer.ggml.tokens", GgufValue.FromStrings(vocabulary.Tokens));
        writer.Add("tokenizer.ggml.token_type", GgufValue.FromInt32s(vocabulary.TokenTypes.Select(t => (int)t).ToArray()));
        writer.Add("tokenizer.ggml.merges", GgufValue.FromStrings(vocabulary.Merges));
        if (config.BosTokenId is { } bosId)
        {
            writer.Add("tokenizer.ggml.bos_token_id", GgufValue.FromUInt32((uint)bosId));
        }

        if (config.EosTokenIds.Count > 0)
        {
            writer.Add("tokenizer.ggml.eos_token_id", GgufValue.FromUInt32((uint)config.EosTokenIds[0]));
        }

        if (config.PadTokenId is { } pad)
        {
            writer.Add("tokenizer.ggml.padding_token_id", GgufValue.FromUInt32((uint)pad));
        }

        // GPT-2 ties the head to wte; llama.cpp reuses token_embd when output.weight is absent. A checkpoint with its
        // own, different lm_head gets a separate output tensor.
        var tied = !weights.Contains("lm_head.weight") || weights.GetBytes("lm_head.weight").SequenceEqual(weights.GetBytes(prefix + "wte.weight"));
        long parameters = 0;
        var count = 0;
        void Add(string ggmlName, string hfName, long[] hfShape, bool transpose)
        {
            var full = prefix + hfName;
            if (!weights.Contains(full) && prefix.Length > 0 && weights.Contains(hfName))
            {
                full = hfName;
            }

            if (!weights.Contains(full))
            {
                throw new GgufFormatException($"{folder}: tensor '{full}' is missing; a GPT-2 checkpoint needs it for GGUF '{ggmlName}'.");
            }

            var info = weights.GetInfo(full);
            if (!info.Shape.SequenceEqual(hfShape))
            {
                throw new GgufFormatException($"{folder}: tensor '{full}' is {info.ShapeString}, but config.json implies [{string.Join(", ", hfShape)}].");
            }

            // ggml lists dims innermost first. Conv1D weights are stored [in, out]; ggml wants ne0 = in, ne1 = out with
            // rows of length in, i.e. the [out, in] transpose. Embeddings [rows, C] keep their layout: ne0 = C.
            long[] dims = hfShape.Length == 1 ? [hfShape[0]] : transpose ? [hfShape[0], hfShape[1]] : [hfShape[1], hfShape[0]];
            var type = TensorType(fileType, ggmlName, dims, tiedOutput: tied && ggmlName == "token_embd.weight");
            writer.AddTensor(ggmlName, type, dims, stream => WriteTensor(stream, weights, full, transpose, type));
            parameters += info.ElementCount;
            count++;
        }

        Add("token_embd.weight", "wte.weight", [v, c], transpose: false);
        Add("position_embd.weight", "wpe.weight", [p, c], transpose: false);
        for (var i = 0; i < config.NumHiddenLayers; i++)
        {
            var hf = $"h.{i}.";
            var gg = $"blk.{i}.";
            Add(gg + "attn_norm.weight", hf + "ln_1.weight", [c], false);
            Add(gg + "attn_norm.bias", hf + "ln_1.bias", [c], false);
            Add(gg + "attn_qkv.weight", hf + "attn.c_attn.weight", [c, 3 * c], true);
            Add(gg + "attn_qkv.bias", hf + "attn.c_attn.bias", [3 * c], false);
            Add(gg + "attn_output.weight", hf + "attn.c_proj.weight", [c, c], true);
            Add(gg + "attn_output.bias", hf + "attn.c_proj.bias", [c], false);
            Add(gg + "ffn_norm.weight", hf + "ln_2.weight", [c], false);
            Add(gg + "ffn_norm.bias", hf + "ln_2.bias", [c], false);
            Add(gg + "ffn_up.weight", hf + "mlp.c_fc.weight", [c, ff], true);
            Add(gg + "ffn_up.bias", hf + "mlp.c_fc.bias", [ff], false);
            Add(gg + "ffn_down.weight", hf + "mlp.c_proj.weight", [ff, c], true);
            Add(gg + "ffn_down.bias", hf + "mlp.c_proj.bias", [c], false);
        }

        Add("output_norm.weight", "ln_f.weight", [c], false);
        Add("output_norm.bias", "ln_f.bias", [c], false);

        if (!tied)
        {
            Add("output.weight", "lm_head.weight", [v, c], transpose: false);
        }

        writer.WriteTo(outputPath);
        return new Gpt2GgufExport(Path.GetFullPath(outputPath), fileType, count, parameters, new FileInfo(outputPath).Length, config, tied);
    }

    private static void CheckSupported(string folder, Gpt2Config config)
    {
        var source = Path.Combine(folder, "config.json");
        if (!TanhGelu.Contains(config.ActivationFunction, StringComparer.Ordinal))
        {
            throw new GgufFormatException($"{source}: activation_function '{config.ActivationFunction}'; llama.cpp's gpt2 graph computes the tanh GELU (gelu_new), so the export would not match the model.");
        }

        if (config.ScaleAttnByInverseLayerIdx || config.ReorderAndUpcastAttn || !config.ScaleAttnWeights)
        {
            throw new GgufFormatException($"{source}: scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn / scale_attn_weights differ from GPT-2's defaults; llama.cpp's gpt2 graph does not implement them.");
        }
    }

    private static void WriteTensor(Stream stream, ISafeTensorsSource weights, string name, bool transpose, GgufTensorType type)
    {
        var tensor = weights.GetTensorAsF32(name);
        if (transpose)
        {
            tensor = tensor.Transpose(0, 1);
        }

        var values = tensor.Contiguous().AsReadOnlySpan<float>();
        if (type == GgufTensorType.F32)
        {
            stream.Write(MemoryMarshal.AsBytes(values));
            return;
        }

        if (type != GgufTensorType.F16)
        {
            // Quantized: whole rows (ne0 values each) at a time, with ggml's reference quantizers.
            var quant = (QuantType)type;
            var width = tensor.Shape[tensor.Rank - 1];
            var rowBytes = (int)quant.RowBytes(width);
            var rowsPerChunk = Math.Max(1, (1 << 16) / width);
            var blocks = new byte[rowsPerChunk * rowBytes];
            for (var row = 0; row < values.Length / width; row += rowsPerChunk)
            {
                var rows = Math.Min(rowsPerChunk, (values.Length / width) - row);
                BlockQuant.Quantize(quant, values.Slice(row * width, rows * width), blocks);
                stream.Write(blocks, 0, rows * rowBytes);
            }

            return;
        }

        // F16 in chunks: round-to-nearest-even conversion, no full-size copy.
        var chunk = new Half[1 << 16];
        for (var start = 0; start < values.Length; start += chunk.Length)
        {
            var n = Math.Min(chunk.Length, values.Length - start);
            TensorPrimitives.ConvertToHalf(values.Slice(start, n), chunk.AsSpan(0, n));
            stream.Write(MemoryMarshal.AsBytes(chunk.AsSpan(0, n)));
        }
    }

    /// <summary>Parses "f32", "f16", "q8_0", "q4_0" or "q4_k" (any case) into a file type.</summary>
    /// <exception cref="ArgumentException">Anything else.</exception>
    public static GgufFileType ParseFileType(string dtype) => dtype?.ToLower(CultureInfo.InvariantCulture) switch
    {
        "f32" => GgufFileType.AllF32,
        "f16" => GgufFileType.MostlyF16,
        "q8_0" => GgufFileType.MostlyQ8_0,
        "q4_0" => GgufFileType.MostlyQ4_0,
        "q4_k" => GgufFileType.MostlyQ4_K,
        _ => throw new ArgumentException($"--dtype '{dtype}' is not supported for GGUF export; use f32, f16, q8_0, q4_0 or q4_k.", nameof(dtype)),
    };

    /// <summary>
    /// The type one tensor is written in, as llama.cpp's quantizer chooses it for GPT-2 (llama_tensor_get_type without an
    /// importance matrix): 1-D tensors and the position embedding stay F32; in a quantized file the tied token
    /// embedding (also the output layer) takes Q6_K, or Q8_0 when its width is not whole 256-value super-blocks or the
    /// file is Q8_0; other matrices take the file's type, or Q8_0 (Q4_K) / F16 (Q8_0, Q4_0) when their width is not whole
    /// blocks of it.
    /// </summary>
    /// <param name="fileType">The file's type.</param>
    /// <param name="ggmlName">The GGUF tensor name.</param>
    /// <param name="dims">ggml dimensions, ne0 first.</param>
    /// <param name="tiedOutput">Whether this is the token embedding that also serves as the output layer.</param>
    /// <returns>The tensor's type.</returns>
    public static GgufTensorType TensorType(GgufFileType fileType, string ggmlName, IReadOnlyList<long> dims, bool tiedOutput)
    {
        ArgumentNullException.ThrowIfNull(dims);
        if (dims.Count < 2 || fileType == GgufFileType.AllF32)
        {
            return GgufTensorType.F32;
        }

        if (fileType == GgufFileType.MostlyF16)
        {
            return GgufTensorType.F16;
        }

        if (ggmlName == "position_embd.weight")
        {
            return GgufTensorType.F32;
        }

        var width = dims[0];
        if (tiedOutput || ggmlName == "output.weight")
        {
            return fileType == GgufFileType.MostlyQ8_0 || !QuantType.Q6_K.Fits(width) ? Fallback(QuantType.Q8_0, width) : GgufTensorType.Q6_K;
        }

        return fileType switch
        {
            GgufFileType.MostlyQ8_0 => Fallback(QuantType.Q8_0, width),
            GgufFileType.MostlyQ4_0 => Fallback(QuantType.Q4_0, width),
            _ => QuantType.Q4_K.Fits(width) ? GgufTensorType.Q4_K : Fallback(QuantType.Q8_0, width),
        };

        static GgufTensorType Fallback(QuantType type, long width) => type.Fits(width) ? (GgufTensorType)type : GgufTensorType.F16;
    }
}
