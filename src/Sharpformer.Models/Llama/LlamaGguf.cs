// llama.cpp's GGUF files ↔ the Llama family in Hugging Face names. The one renaming table of this model lives here:
//   token_embd → model.embed_tokens, output_norm → model.norm, output → lm_head (absent: tied),
//   blk.{i}.attn_norm → model.layers.{i}.input_layernorm, attn_q/attn_k/attn_v/attn_output → self_attn.q/k/v/o_proj,
//   attn_qkv → self_attn.qkv_proj (phi3), ffn_norm → post_attention_layernorm, ffn_gate/ffn_up/ffn_down →
//   mlp.gate/up/down_proj (phi3: ffn_up → mlp.gate_up_proj).
// llama.cpp's converter reorders the rows of q_proj and k_proj (and their biases) for the "llama" architecture, whose
// graph rotates adjacent pairs (GPT-J style) where HF's rotate_half rotates halves: within each head, HF row
// half·D/2 + i is GGUF row 2i + half. The loader undoes it and the exporter applies it; qwen2 and phi3 use llama.cpp's
// NEOX rope, the HF layout, and are stored as is. Weights come through GgufWeights.Read (F32/F16/BF16 today).
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.IO.Config;
using Sharpformer.IO.Gguf;
using Sharpformer.IO.SafeTensors;
using Sharpformer.NN;
using Sharpformer.Tensors;
using Sharpformer.Text;

namespace Sharpformer.Models.Llama;

/// <summary>Loads llama.cpp GGUF files as <see cref="LlamaForCausalLM"/> (with their tokenizer) and writes Llama-family checkpoints as GGUF.</summary>
public static class LlamaGguf
{
    private const string Llama3Regex = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    private const string Qwen2Regex = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>The GGUF architectures this loader reads (general.architecture).</summary>
    public static IReadOnlyList<string> Architectures { get; } = ["llama", "phi3", "qwen2"];

    /// <summary>
    /// Reads the model config from GGUF metadata ({arch}.context_length, embedding_length, feed_forward_length,
    /// block_count, attention.head_count(_kv), attention.layer_norm_rms_epsilon, rope.freq_base, rope.scaling.*, …),
    /// validated like a config.json.
    /// </summary>
    /// <param name="file">The open file.</param>
    /// <returns>The config (model_type llama, qwen2 or phi3).</returns>
    /// <exception cref="NotSupportedException">The architecture is not one of <see cref="Architectures"/>, or a feature it uses is not supported.</exception>
    /// <exception cref="GgufFormatException">A required key is missing.</exception>
    public static LlamaConfig ReadConfig(GgufFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        var arch = Text(file, "general.architecture")
            ?? throw new GgufFormatException($"{file.Path}: no general.architecture; not a llama.cpp model file.");
        if (!Architectures.Contains(arch))
        {
            throw new NotSupportedException($"{file.Path}: general.architecture '{arch}' is not supported here; supported: {string.Join(", ", Architectures)}.");
        }

        int heads = Required(file, $"{arch}.attention.head_count");
        int hidden = Required(file, $"{arch}.embedding_length");
        int vocab = Number(file, $"{arch}.vocab_size")
            ?? (file.Metadata.TryGetValue("tokenizer.ggml.tokens", out var tokens) ? tokens.AsStrings("tokenizer.ggml.tokens").Length : (int)file.GetTensor("token_embd.weight").Dims[1]);
        // llama.cpp converts Mistral to the llama architecture; a sliding window marks it.
        int? window = Number(file, $"{arch}.attention.sliding_window");
        var json = new JsonObject
        {
            ["model_type"] = arch == "llama" && window is not null ? "mistral" : arch,
            ["vocab_size"] = vocab,
            ["hidden_size"] = hidden,
            ["intermediate_size"] = Required(file, $"{arch}.feed_forward_length"),
            ["num_hidden_layers"] = Required(file, $"{arch}.block_count"),
            ["num_attention_heads"] = heads,
            ["num_key_value_heads"] = Number(file, $"{arch}.attention.head_count_kv") ?? heads,
            ["max_position_embeddings"] = Required(file, $"{arch}.context_length"),
            ["rms_norm_eps"] = Real(file, $"{arch}.attention.layer_norm_rms_epsilon") ?? 1e-5,
            ["rope_theta"] = Real(file, $"{arch}.rope.freq_base") ?? 10000.0,
            ["tie_word_embeddings"] = !file.ContainsTensor("output.weight"),
            ["hidden_act"] = "silu",
        };
        if (Number(file, $"{arch}.attention.key_length") is { } keyLength && keyLength != hidden / heads)
        {
            json["head_dim"] = keyLength;
        }

        if (window is not null)
        {
            json["sliding_window"] = window;
            if (arch == "qwen2")
            {
                json["use_sliding_window"] = true;
                json["max_window_layers"] = Number(file, $"{arch}.attention.max_window_layers") ?? 0;
            }
        }

        // Biases are not flagged in the metadata: their tensors say whether the layers have them.
        if (arch == "llama")
        {
            json["attention_bias"] = file.ContainsTensor("blk.0.attn_q.bias");
            json["mlp_bias"] = file.ContainsTensor("blk.0.ffn_gate.bias");
        }

        if (Text(file, $"{arch}.rope.scaling.type") is { } scaling && scaling != "none")
        {
            if (scaling != "linear")
            {
                throw new NotSupportedException($"{file.Path}: {arch}.rope.scaling.type '{scaling}' is not supported here (linear is, and llama3-style scaling through rope_freqs.weight).");
            }

            json["rope_scaling"] = new JsonObject { ["rope_type"] = "linear", ["factor"] = Real(file, $"{arch}.rope.scaling.factor") ?? 1.0 };
        }

        if (file.Metadata.ContainsKey("tokenizer.ggml.bos_token_id"))
        {
            json["bos_token_id"] = Number(file, "tokenizer.ggml.bos_token_id");
        }

        if (file.Metadata.ContainsKey("tokenizer.ggml.eos_token_id"))
        {
            json["eos_token_id"] = Number(file, "tokenizer.ggml.eos_token_id");
        }

        var config = (LlamaConfig)ModelConfig.Parse(json.ToJsonString(), $"{file.Path} (GGUF metadata)");
        if (file.ContainsTensor("rope_freqs.weight"))
        {
            config = config with { RopeFrequencyFactors = GgufWeights.Read(file, file.GetTensor("rope_freqs.weight")).To(DType.F32).ToArray() };
        }

        foreach (var unsupported in new[] { "rope_factors_long.weight", "rope_factors_short.weight" })
        {
            if (file.ContainsTensor(unsupported))
            {
                throw new NotSupportedException($"{file.Path}: tensor '{unsupported}' (Phi-3 longrope factors stored as tensors) is not supported for GGUF input yet; load the Hugging Face folder instead.");
            }
        }

        return config;
    }

    /// <summary>Loads a GGUF file as a model (weights kept in <paramref name="dtype"/>), in evaluation mode.</summary>
    /// <param name="path">The .gguf file.</param>
    /// <param name="dtype">The type the matrices are kept in: F32, F16 or BF16.</param>
    /// <returns>The model.</returns>
    /// <exception cref="NotSupportedException">The architecture, a feature or a tensor type is not supported; the message names it.</exception>
    /// <exception cref="ModelLoadException">A tensor is missing or misshapen.</exception>
    public static LlamaForCausalLM LoadModel(string path, DType dtype = DType.F32)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var file = GgufFile.Open(path);
        var config = ReadConfig(file);
        var arch = Text(file, "general.architecture")!;
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var info in file.Tensors)
        {
            if (info.Name == "rope_freqs.weight")
            {
                continue;
            }

            var hf = HfName(info.Name, arch)
                ?? throw new NotSupportedException($"{path}: tensor '{info.Name}' has no Hugging Face counterpart in the {arch} architecture here.");
            var tensor = GgufWeights.Read(file, info);
            if (arch == "llama" && (hf.EndsWith(".q_proj.weight", StringComparison.Ordinal) || hf.EndsWith(".q_proj.bias", StringComparison.Ordinal)))
            {
                tensor = Permute(tensor, config.NumAttentionHeads, inverse: true);
            }
            else if (arch == "llama" && (hf.EndsWith(".k_proj.weight", StringComparison.Ordinal) || hf.EndsWith(".k_proj.bias", StringComparison.Ordinal)))
            {
                tensor = Permute(tensor, config.NumKeyValueHeads, inverse: true);
            }

            tensors[hf] = tensor;
        }

        var vb = VarBuilder.FromTensors(tensors);
        var model = LlamaForCausalLM.FromVarBuilder(config, vb, dtype);
        model.LoadReport = vb.Report();
        return model;
    }

    /// <summary>Loads a GGUF file's model and tokenizer together (what <c>generate</c> and <c>chat</c> need).</summary>
    /// <param name="path">The .gguf file.</param>
    /// <param name="dtype">The type the matrices are kept in.</param>
    /// <returns>The model and its tokenizer.</returns>
    /// <exception cref="NotSupportedException">The file carries no vocabulary, or something in it is not supported; the message says what.</exception>
    public static (LlamaForCausalLM Model, TextTokenizer Tokenizer) Load(string path, DType dtype = DType.F32)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var tokenizer = ReadTokenizer(GgufFile.Open(path))
            ?? throw new NotSupportedException($"{path}: the file carries no vocabulary (tokenizer.ggml.model is no_vocab or absent), so text cannot be tokenized; use a GGUF converted with its tokenizer.");
        return (LoadModel(path, dtype), tokenizer);
    }

    /// <summary>True when <paramref name="path"/> names an existing .gguf file.</summary>
    /// <param name="path">A --model value.</param>
    /// <returns>Whether to load it with <see cref="Load"/>.</returns>
    public static bool IsGgufFile(string path) =>
        !string.IsNullOrEmpty(path) && path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) && File.Exists(path);

    /// <summary>
    /// The tokenizer a GGUF file carries (tokenizer.ggml.*), as the equivalent tokenizer.json pipeline: <c>llama</c>
    /// (SentencePiece: pieces and scores → BPE merges as transformers' LlamaConverter derives them, byte fallback,
    /// "▁" prefix) or <c>gpt2</c> (byte-level BPE with the split regex named by tokenizer.ggml.pre), control and
    /// user-defined tokens as added tokens, BOS/EOS from add_bos_token/add_eos_token, and tokenizer.chat_template.
    /// </summary>
    /// <param name="file">The open file.</param>
    /// <returns>The tokenizer, or null when the file has no vocabulary (tokenizer.ggml.model "no_vocab" or absent).</returns>
    /// <exception cref="NotSupportedException">The tokenizer model or pre-tokenizer is not supported; the message names it.</exception>
    public static TextTokenizer? ReadTokenizer(GgufFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        var model = Text(file, "tokenizer.ggml.model");
        if (model is null or "no_vocab" || !file.Metadata.ContainsKey("tokenizer.ggml.tokens"))
        {
            return null;
        }

        var tokens = file.Get("tokenizer.ggml.tokens").AsStrings("tokenizer.ggml.tokens");
        var types = file.Metadata.TryGetValue("tokenizer.ggml.token_type", out var tt) ? tt.AsInt32s("tokenizer.ggml.token_type") : null;
        var vocab = new JsonObject();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var added = new List<AddedToken>();
        for (int id = 0; id < tokens.Length; id++)
        {
            if (seen.Add(tokens[id]))
            {
                vocab[tokens[id]] = id;
            }

            var type = types is null ? GgufTokenType.Normal : (GgufTokenType)types[id];
            if (type is GgufTokenType.Control or GgufTokenType.UserDefined or GgufTokenType.Unknown)
            {
                added.Add(new AddedToken(tokens[id], id, Special: type != GgufTokenType.UserDefined));
            }
        }

        string? Named(string key) => Number(file, key) is { } id && (uint)id < (uint)tokens.Length ? tokens[id] : null;
        var specials = new SpecialTokens
        {
            Bos = Named("tokenizer.ggml.bos_token_id"),
            Eos = Named("tokenizer.ggml.eos_token_id"),
            Unk = Named("tokenizer.ggml.unknown_token_id"),
            Pad = Named("tokenizer.ggml.padding_token_id"),
        };
        var root = new JsonObject { ["version"] = "1.0" };
        bool addBos, addEos = Flag(file, "tokenizer.ggml.add_eos_token") ?? false;
        switch (model)
        {
            case "llama":
                {
                    var scores = file.Get("tokenizer.ggml.scores").Value as float[]
                        ?? throw new GgufFormatException($"{file.Path}: tokenizer.ggml.scores must be an array of float32 for a SentencePiece vocabulary.");
                    bool prefix = Flag(file, "tokenizer.ggml.add_space_prefix") ?? true;
                    addBos = Flag(file, "tokenizer.ggml.add_bos_token") ?? true;
                    var unk = specials.Unk ?? (types is null ? null : tokens.Where((_, i) => types[i] == (int)GgufTokenType.Unknown).FirstOrDefault());
                    root["model"] = new JsonObject
                    {
                        ["type"] = "BPE",
                        ["unk_token"] = unk,
                        ["fuse_unk"] = true,
                        ["byte_fallback"] = true,
                        ["vocab"] = vocab,
                        ["merges"] = SentencePieceMerges(tokens, scores),
                    };
                    root["normalizer"] = prefix
                        ? new JsonObject { ["type"] = "Sequence", ["normalizers"] = new JsonArray(new JsonObject { ["type"] = "Prepend", ["prepend"] = "▁" }, Replace(" ", "▁")) }
                        : Replace(" ", "▁");
                    var decoders = new JsonArray(Replace("▁", " "), new JsonObject { ["type"] = "ByteFallback" }, new JsonObject { ["type"] = "Fuse" });
                    if (prefix)
                    {
                        decoders.Add(new JsonObject { ["type"] = "Strip", ["content"] = " ", ["start"] = 1, ["stop"] = 0 });
                    }

                    root["decoder"] = new JsonObject { ["type"] = "Sequence", ["decoders"] = decoders };
                    break;
                }

            case "gpt2":
                {
                    var merges = file.Get("tokenizer.ggml.merges").AsStrings("tokenizer.ggml.merges");
                    var pre = Text(file, "tokenizer.ggml.pre") ?? "default";
                    addBos = Flag(file, "tokenizer.ggml.add_bos_token") ?? false;
                    string? regex = pre switch
                    {
                        "llama-bpe" or "llama3" or "smaug-bpe" => Llama3Regex,
                        "qwen2" => Qwen2Regex,
                        "gpt-2" or "default" => null,
                        _ => throw new NotSupportedException($"{file.Path}: tokenizer.ggml.pre '{pre}' is not supported here; supported: llama-bpe, qwen2, gpt-2, default."),
                    };
                    root["model"] = new JsonObject
                    {
                        ["type"] = "BPE",
                        ["ignore_merges"] = regex == Llama3Regex,
                        ["vocab"] = vocab,
                        ["merges"] = new JsonArray(merges.Select(m => (JsonNode)m).ToArray()),
                    };
                    var byteLevel = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = regex is null };
                    root["pre_tokenizer"] = regex is null ? byteLevel : new JsonObject
                    {
                        ["type"] = "Sequence",
                        ["pretokenizers"] = new JsonArray(new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = regex }, ["behavior"] = "Isolated" }, byteLevel),
                    };
                    root["decoder"] = new JsonObject { ["type"] = "ByteLevel" };
                    break;
                }

            default:
                throw new NotSupportedException($"{file.Path}: tokenizer.ggml.model '{model}' is not supported here; supported: llama (SentencePiece), gpt2 (byte-level BPE).");
        }

        root["post_processor"] = Template(addBos ? specials.Bos : null, addEos ? specials.Eos : null, tokens);
        using var doc = JsonDocument.Parse(root.ToJsonString());
        int context = Number(file, $"{Text(file, "general.architecture")}.context_length") ?? int.MaxValue;
        return HfBpeTokenizer.FromJson(doc.RootElement, added, specials, context, $"{file.Path} (tokenizer.ggml.*)", Text(file, "tokenizer.chat_template"));
    }

    /// <summary>
    /// Writes a Llama-family Hugging Face folder (config.json + safetensors) as a GGUF file llama.cpp loads:
    /// general.architecture llama (llama, mistral), qwen2 or phi3, its metadata keys and tensor names, q/k rows permuted
    /// for the llama architecture, Llama 3 rope scaling as rope_freqs.weight. The file carries no vocabulary
    /// (tokenizer.ggml.model = "no_vocab").
    /// </summary>
    /// <param name="folder">The Hugging Face folder.</param>
    /// <param name="outputPath">The .gguf to write.</param>
    /// <param name="fileType">All F32, or matrices F16 with norms F32.</param>
    /// <returns>The number of tensors written.</returns>
    /// <exception cref="InvalidDataException">The folder is not a Llama-family model.</exception>
    /// <exception cref="NotSupportedException">Its rope scaling cannot be expressed in GGUF here.</exception>
    public static int Export(string folder, string outputPath, GgufFileType fileType = GgufFileType.AllF32)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentException.ThrowIfNullOrEmpty(outputPath);
        var config = ModelConfig.Load(folder) as LlamaConfig
            ?? throw new InvalidDataException($"{folder}/config.json: model_type is not one of {string.Join(", ", LlamaConfig.Families)}.");
        string arch = config.Family is "llama" or "mistral" ? "llama" : config.Family;
        var writer = new GgufWriter();
        writer.Add("general.architecture", GgufValue.FromString(arch));
        writer.Add("general.name", GgufValue.FromString(new DirectoryInfo(folder).Name));
        writer.Add("general.file_type", GgufValue.FromUInt32((uint)fileType));
        writer.Add($"{arch}.context_length", GgufValue.FromUInt32((uint)config.MaxPositionEmbeddings));
        writer.Add($"{arch}.embedding_length", GgufValue.FromUInt32((uint)config.HiddenSize));
        writer.Add($"{arch}.feed_forward_length", GgufValue.FromUInt32((uint)config.IntermediateSize));
        writer.Add($"{arch}.block_count", GgufValue.FromUInt32((uint)config.NumHiddenLayers));
        writer.Add($"{arch}.attention.head_count", GgufValue.FromUInt32((uint)config.NumAttentionHeads));
        writer.Add($"{arch}.attention.head_count_kv", GgufValue.FromUInt32((uint)config.NumKeyValueHeads));
        writer.Add($"{arch}.attention.key_length", GgufValue.FromUInt32((uint)config.HeadDim));
        writer.Add($"{arch}.attention.value_length", GgufValue.FromUInt32((uint)config.HeadDim));
        writer.Add($"{arch}.attention.layer_norm_rms_epsilon", GgufValue.FromFloat32((float)config.RmsNormEps));
        writer.Add($"{arch}.rope.freq_base", GgufValue.FromFloat32((float)config.RopeTheta));
        writer.Add($"{arch}.rope.dimension_count", GgufValue.FromUInt32((uint)config.HeadDim));
        writer.Add($"{arch}.vocab_size", GgufValue.FromUInt32((uint)config.VocabSize));
        if (config.SlidingWindow is { } window)
        {
            writer.Add($"{arch}.attention.sliding_window", GgufValue.FromUInt32((uint)window));
            if (config.MaxWindowLayers > 0)
            {
                // Not a llama.cpp key: Qwen2's first windowed layer, so this loader reads the model back exactly.
                writer.Add($"{arch}.attention.max_window_layers", GgufValue.FromUInt32((uint)config.MaxWindowLayers));
            }
        }

        writer.Add("tokenizer.ggml.model", GgufValue.FromString("no_vocab"));
        if (config.BosTokenId is { } bos)
        {
            writer.Add("tokenizer.ggml.bos_token_id", GgufValue.FromUInt32((uint)bos));
        }

        if (config.EosTokenIds.Count > 0)
        {
            writer.Add("tokenizer.ggml.eos_token_id", GgufValue.FromUInt32((uint)config.EosTokenIds[0]));
        }

        switch (config.RopeScaling?.RopeType)
        {
            case null or "default" or "dynamic":
                break;
            case "linear":
                writer.Add($"{arch}.rope.scaling.type", GgufValue.FromString("linear"));
                writer.Add($"{arch}.rope.scaling.factor", GgufValue.FromFloat32((float)config.RopeScaling.Factor!.Value));
                break;
            case "llama3":
                {
                    // llama.cpp divides each default frequency by rope_freqs[i]: store default / scaled.
                    var scaled = new LlamaRotary(config).InverseFrequencies;
                    var plain = RotaryEmbedding.DefaultInverseFrequencies(config.HeadDim, (float)config.RopeTheta);
                    var factors = plain.Select((f, i) => f / scaled[i]).ToArray();
                    writer.AddTensor("rope_freqs.weight", GgufTensorType.F32, [factors.Length], MemoryMarshal.AsBytes(factors.AsSpan()).ToArray());
                    break;
                }

            default:
                throw new NotSupportedException($"{folder}: rope_scaling '{config.RopeScaling.RopeType}' cannot be written to GGUF here.");
        }

        using var weights = SafeTensorsLoader.Open(folder);
        int count = 0;
        foreach (var info in weights.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal))
        {
            if (config.TieWordEmbeddings && info == "lm_head.weight")
            {
                continue;
            }

            var ggml = GgufName(info, arch)
                ?? throw new InvalidDataException($"{folder}: tensor '{info}' has no llama.cpp name in the {arch} architecture.");
            var tensor = weights.GetTensorAsF32(info);
            if (arch == "llama" && info.Contains(".q_proj.", StringComparison.Ordinal))
            {
                tensor = Permute(tensor, config.NumAttentionHeads, inverse: false);
            }
            else if (arch == "llama" && info.Contains(".k_proj.", StringComparison.Ordinal))
            {
                tensor = Permute(tensor, config.NumKeyValueHeads, inverse: false);
            }

            var type = fileType == GgufFileType.MostlyF16 && tensor.Rank == 2 ? GgufTensorType.F16 : GgufTensorType.F32;
            var values = tensor.Contiguous().ToArray();
            byte[] data = type == GgufTensorType.F32
                ? MemoryMarshal.AsBytes(values.AsSpan()).ToArray()
                : MemoryMarshal.AsBytes(values.Select(v => (Half)v).ToArray().AsSpan()).ToArray();
            writer.AddTensor(ggml, type, Enumerable.Reverse(tensor.Shape.Dims.ToArray()).Select(d => (long)d).ToArray(), data);
            count++;
        }

        writer.WriteTo(outputPath);
        return count;
    }

    /// <summary>llama.cpp's q/k row order for the llama architecture: within each of <paramref name="heads"/> heads, HF row half·D/2 + i ↔ GGUF row 2i + half.</summary>
    private static Tensor Permute(Tensor tensor, int heads, bool inverse)
    {
        var values = tensor.To(DType.F32).Contiguous().ToArray();
        int rows = tensor.Shape[0], cols = tensor.Rank == 2 ? tensor.Shape[1] : 1, d = rows / heads, half = d / 2;
        var output = new float[values.Length];
        for (int h = 0; h < heads; h++)
        {
            for (int part = 0; part < 2; part++)
            {
                for (int i = 0; i < half; i++)
                {
                    int hfRow = (h * d) + (part * half) + i, ggRow = (h * d) + (2 * i) + part;
                    int from = inverse ? ggRow : hfRow, to = inverse ? hfRow : ggRow;
                    Array.Copy(values, from * cols, output, to * cols, cols);
                }
            }
        }

        var result = Tensor.FromArray(output, tensor.Shape);
        return tensor.DType == DType.F32 ? result : result.To(tensor.DType);
    }

    private static string? HfName(string ggml, string arch)
    {
        switch (ggml)
        {
            case "token_embd.weight": return "model.embed_tokens.weight";
            case "output_norm.weight": return "model.norm.weight";
            case "output.weight": return "lm_head.weight";
        }

        var parts = ggml.Split('.');
        if (parts.Length != 4 || parts[0] != "blk" || !int.TryParse(parts[1], out int layer))
        {
            return null;
        }

        string? module = parts[2] switch
        {
            "attn_norm" => "input_layernorm",
            "ffn_norm" => "post_attention_layernorm",
            "attn_q" => "self_attn.q_proj",
            "attn_k" => "self_attn.k_proj",
            "attn_v" => "self_attn.v_proj",
            "attn_output" => "self_attn.o_proj",
            "attn_qkv" => "self_attn.qkv_proj",
            "ffn_gate" => "mlp.gate_proj",
            "ffn_up" => arch == "phi3" ? "mlp.gate_up_proj" : "mlp.up_proj",
            "ffn_down" => "mlp.down_proj",
            _ => null,
        };
        return module is null ? null : $"model.layers.{layer}.{module}.{parts[3]}";
    }

    private static string? GgufName(string hf, string arch)
    {
        switch (hf)
        {
            case "model.embed_tokens.weight": return "token_embd.weight";
            case "model.norm.weight": return "output_norm.weight";
            case "lm_head.weight": return "output.weight";
        }

        var parts = hf.Split('.');
        if (parts.Length < 5 || parts[0] != "model" || parts[1] != "layers")
        {
            return null;
        }

        string module = string.Join('.', parts[3..^1]);
        string? name = module switch
        {
            "input_layernorm" => "attn_norm",
            "post_attention_layernorm" => "ffn_norm",
            "self_attn.q_proj" => "attn_q",
            "self_attn.k_proj" => "attn_k",
            "self_attn.v_proj" => "attn_v",
            "self_attn.o_proj" => "attn_output",
            "self_attn.qkv_proj" => "attn_qkv",
            "mlp.gate_proj" => "ffn_gate",
            "mlp.up_proj" or "mlp.gate_up_proj" => "ffn_up",
            "mlp.down_proj" => "ffn_down",
            _ => null,
        };
        return name is null ? null : $"blk.{parts[2]}.{name}.{parts[^1]}";
    }

    /// <summary>transformers' SentencePieceExtractor: every split of a piece into two pieces, ordered by the piece's score (highest first), ties by the parts' ids.</summary>
    private static JsonArray SentencePieceMerges(string[] tokens, float[] scores)
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < tokens.Length; i++)
        {
            ids.TryAdd(tokens[i], i);
        }

        var merges = new List<(int Left, int Right, float Score, int Order)>();
        for (int id = 0; id < tokens.Length; id++)
        {
            var piece = tokens[id];
            var local = new List<(int, int)>();
            for (int cut = 1; cut < piece.Length; cut++)
            {
                if (char.IsLowSurrogate(piece[cut]))
                {
                    continue;
                }

                if (ids.TryGetValue(piece[..cut], out var l) && ids.TryGetValue(piece[cut..], out var r))
                {
                    local.Add((l, r));
                }
            }

            local.Sort();
            foreach (var (l, r) in local)
            {
                merges.Add((l, r, scores[id], merges.Count));
            }
        }

        // A stable sort by score, highest first (Python's sorted(..., reverse=True) keeps ties in order).
        var ordered = merges.OrderByDescending(m => m.Score).ThenBy(m => m.Order);
        return new JsonArray(ordered.Select(m => (JsonNode)new JsonArray(tokens[m.Left], tokens[m.Right])).ToArray());
    }

    private static JsonObject Template(string? bos, string? eos, string[] tokens)
    {
        var single = new JsonArray();
        var specials = new JsonObject();
        void Special(JsonArray template, string token, int type)
        {
            template.Add(new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = token, ["type_id"] = type } });
            specials[token] = new JsonObject { ["id"] = token, ["ids"] = new JsonArray(Array.IndexOf(tokens, token)), ["tokens"] = new JsonArray(token) };
        }

        var pair = new JsonArray();
        if (bos is not null)
        {
            Special(single, bos, 0);
        }

        single.Add(new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } });
        if (eos is not null)
        {
            Special(single, eos, 0);
        }

        foreach (var (seq, type) in new[] { ("A", 0), ("B", 1) })
        {
            if (bos is not null)
            {
                Special(pair, bos, type);
            }

            pair.Add(new JsonObject { ["Sequence"] = new JsonObject { ["id"] = seq, ["type_id"] = type } });
            if (eos is not null)
            {
                Special(pair, eos, type);
            }
        }

        return new JsonObject { ["type"] = "TemplateProcessing", ["single"] = single, ["pair"] = pair, ["special_tokens"] = specials };
    }

    private static JsonObject Replace(string from, string to) =>
        new() { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = from }, ["content"] = to };

    private static string? Text(GgufFile file, string key) => file.Metadata.TryGetValue(key, out var v) ? v.AsString(key) : null;

    private static int? Number(GgufFile file, string key) => file.Metadata.TryGetValue(key, out var v) ? checked((int)v.AsUInt64(key)) : null;

    private static double? Real(GgufFile file, string key) => file.Metadata.TryGetValue(key, out var v) ? v.AsDouble(key) : null;

    private static bool? Flag(GgufFile file, string key) => file.Metadata.TryGetValue(key, out var v) && v.Value is bool b ? b : null;

    private static int Required(GgufFile file, string key) =>
        Number(file, key) ?? throw new GgufFormatException($"{file.Path}: metadata key '{key}' is missing; the file is not a complete llama.cpp model.");
}
