// llama.cpp's GGUF files ↔ the Llama family in Hugging Face names. The one renaming table of this model lives here:
//   token_embd → model.embed_tokens, output_norm → model.norm, output → lm_head (absent: tied),
//   blk.{i}.attn_norm → model.layers.{i}.input_layernorm, attn_q/attn_k/attn_v/attn_output → self_attn.q/k/v/o_proj,
//   attn_qkv → self_attn.qkv_proj (phi3), ffn_norm → post_attention_layernorm, ffn_gate/ffn_up/ffn_down →
//   mlp.gate/up/down_proj (phi3: ffn_up → mlp.gate_up_proj).
// llama.cpp's converter reorders the rows of q_proj and k_proj (and their biases) for the "llama" architecture, whose
// graph rotates adjacent pairs (GPT-J style) where HF's rotate_half rotates halves: within each head, HF row
// half·D/2 + i is GGUF row 2i + half. The loader undoes it and the exporter applies it; qwen2 and phi3 use llama.cpp's
// NEOX rope, the HF layout, and are stored as is. F32/F16/BF16 weights come through GgufWeights.Read; Q8_0/Q4_0/Q4_K/Q6_K
// matrices keep their blocks (each Linear multiplies by them) and are written by Export's quantized file types.
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.IO.Config;
using Sharpformer.IO.Gguf;
using Sharpformer.IO.SafeTensors;
using Sharpformer.NN;
using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels.Quant;
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

    /// <summary>
    /// Loads a GGUF file as a model, in evaluation mode. F32/F16/BF16 tensors become weights in
    /// <paramref name="dtype"/>. A block-quantized matrix (Q8_0, Q4_0, Q4_K, Q6_K) is read twice over: its blocks, as
    /// stored, become its Linear layer's <see cref="Linear.QuantizedWeight"/> (<see cref="Linear.UseQuantizedWeight"/>),
    /// which every inference product (<see cref="Linear.Apply"/>, decode and prefill) multiplies by, and its values,
    /// dequantized once, become the layer's dense parameter in <paramref name="dtype"/> (what checkpoints, StateDict and
    /// LoRA see; pass F16 or BF16 to halve that copy). The token embedding, quantized in most real files, is dequantized
    /// once into its dense F32/F16/BF16 table and looked up row by row from it; a tied head multiplies by
    /// token_embd's own blocks. Norms stay F32. For the llama architecture the q/k row permutation is undone on the
    /// blocks as a permutation of whole block rows (each row's blocks are independent of the others).
    /// </summary>
    /// <param name="path">The .gguf file.</param>
    /// <param name="dtype">The type the dense matrices are kept in: F32, F16 or BF16.</param>
    /// <returns>The model.</returns>
    /// <exception cref="NotSupportedException">The architecture, a feature or a tensor type (Q5_K, Q4_1, IQ*, …) is not supported; the message names it and the tensor.</exception>
    /// <exception cref="ModelLoadException">A tensor is missing or misshapen.</exception>
    public static LlamaForCausalLM LoadModel(string path, DType dtype = DType.F32)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var file = GgufFile.Open(path);
        var config = ReadConfig(file);
        var arch = Text(file, "general.architecture")!;
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var blocks = new Dictionary<string, QuantizedMatrix>(StringComparer.Ordinal);
        foreach (var info in file.Tensors)
        {
            if (info.Name == "rope_freqs.weight")
            {
                continue;
            }

            var hf = HfName(info.Name, arch)
                ?? throw new NotSupportedException($"{path}: tensor '{info.Name}' has no Hugging Face counterpart in the {arch} architecture here.");
            int? permuteHeads = arch != "llama" ? null
                : hf.EndsWith(".q_proj.weight", StringComparison.Ordinal) || hf.EndsWith(".q_proj.bias", StringComparison.Ordinal) ? config.NumAttentionHeads
                : hf.EndsWith(".k_proj.weight", StringComparison.Ordinal) || hf.EndsWith(".k_proj.bias", StringComparison.Ordinal) ? config.NumKeyValueHeads
                : null;
            if (IsBlockType(info.Type))
            {
                if (info.Dims.Count != 2)
                {
                    throw new NotSupportedException($"{path}: tensor '{info.Name}' is {info.Type} with {info.Dims.Count} dimensions; quantized tensors are loaded as 2-D matrices only (keep norms and biases F32).");
                }

                var matrix = file.ReadQuantized(info.Name);
                if (permuteHeads is { } h)
                {
                    matrix = PermuteRows(matrix, h);
                }

                blocks[hf] = matrix;
                var dense = new float[(long)matrix.Rows * matrix.Columns];
                matrix.DequantizeRows(0, matrix.Rows, dense);
                tensors[hf] = Tensor.FromArray(dense, new Shape(matrix.Rows, matrix.Columns));
                continue;
            }

            if (!GgufWeights.SupportedTypes.Contains(info.Type))
            {
                throw new NotSupportedException(
                    $"{path}: tensor '{info.Name}' is {info.Type}, which this loader does not read; Llama-family GGUF tensors may be F32, F16, BF16, Q8_0, Q4_0, Q4_K or Q6_K. Re-quantize the model with llama-quantize to Q8_0, Q4_0 or Q4_K_S (or convert it with --outtype f16).");
            }

            var tensor = GgufWeights.Read(file, info);
            if (permuteHeads is { } heads)
            {
                tensor = Permute(tensor, heads, inverse: true);
            }

            tensors[hf] = tensor;
        }

        var vb = VarBuilder.FromTensors(tensors);
        var model = LlamaForCausalLM.FromVarBuilder(config, vb, dtype);
        model.LoadReport = vb.Report();
        UseFileBlocks(model, blocks, path);
        return model;
    }

    /// <summary>Every Linear whose GGUF matrix is block-quantized multiplies by those blocks; the tied head by token_embd's.</summary>
    private static void UseFileBlocks(LlamaForCausalLM model, Dictionary<string, QuantizedMatrix> blocks, string path)
    {
        var attached = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, module) in model.NamedModules())
        {
            if (module is Linear linear && blocks.TryGetValue(name + ".weight", out var matrix))
            {
                linear.UseQuantizedWeight(matrix);
                attached.Add(name + ".weight");
            }
        }

        const string EmbeddingName = "model.embed_tokens.weight";
        if (blocks.TryGetValue(EmbeddingName, out var table))
        {
            // Looked up from its dequantized dense table; as the tied head it multiplies by the blocks.
            if (model.Config.TieWordEmbeddings)
            {
                model.LmHead.UseQuantizedWeight(table);
            }

            attached.Add(EmbeddingName);
        }

        foreach (var name in blocks.Keys)
        {
            if (!attached.Contains(name))
            {
                throw new NotSupportedException($"{path}: the quantized tensor for '{name}' is not the weight of a Linear layer here, so its blocks cannot be used; store it as F32/F16.");
            }
        }
    }

    /// <summary>The ggml block types the loader multiplies by as stored.</summary>
    private static bool IsBlockType(GgufTensorType type) =>
        type is GgufTensorType.Q8_0 or GgufTensorType.Q4_0 or GgufTensorType.Q4_K or GgufTensorType.Q6_K;

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
    /// (tokenizer.ggml.model = "no_vocab"). Each tensor's type is <see cref="TensorType"/>'s choice for the file type.
    /// </summary>
    /// <param name="folder">The Hugging Face folder.</param>
    /// <param name="outputPath">The .gguf to write.</param>
    /// <param name="fileType">All F32; matrices F16 with norms F32; or matrices quantized (Q8_0, Q4_0, Q4_K) as llama.cpp's quantizer picks the types.</param>
    /// <param name="name">general.name (default: the folder's name).</param>
    /// <returns>The number of tensors written.</returns>
    /// <exception cref="InvalidDataException">The folder is not a Llama-family model.</exception>
    /// <exception cref="NotSupportedException">Its rope scaling cannot be expressed in GGUF here.</exception>
    /// <exception cref="ArgumentException"><paramref name="fileType"/> is not one of AllF32, MostlyF16, MostlyQ8_0, MostlyQ4_0, MostlyQ4_K.</exception>
    public static int Export(string folder, string outputPath, GgufFileType fileType = GgufFileType.AllF32, string? name = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentException.ThrowIfNullOrEmpty(outputPath);
        if (!Enum.IsDefined(fileType))
        {
            throw new ArgumentException($"GGUF file type {(uint)fileType} is not one this exporter writes; use AllF32, MostlyF16, MostlyQ8_0, MostlyQ4_0 or MostlyQ4_K (convert gguf --dtype f32|f16|q8_0|q4_0|q4_k).", nameof(fileType));
        }

        var config = ModelConfig.Load(folder) as LlamaConfig
            ?? throw new InvalidDataException($"{folder}/config.json: model_type is not one of {string.Join(", ", LlamaConfig.Families)}.");
        string arch = config.Family is "llama" or "mistral" ? "llama" : config.Family;
        var writer = new GgufWriter();
        writer.Add("general.architecture", GgufValue.FromString(arch));
        writer.Add("general.name", GgufValue.FromString(name ?? new DirectoryInfo(folder).Name));
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

            var dims = Enumerable.Reverse(tensor.Shape.Dims.ToArray()).Select(d => (long)d).ToArray();
            var type = TensorType(fileType, ggml, dims, tiedOutput: config.TieWordEmbeddings && ggml == "token_embd.weight");
            var values = tensor.Contiguous().ToArray();
            byte[] data = type switch
            {
                GgufTensorType.F32 => MemoryMarshal.AsBytes(values.AsSpan()).ToArray(),
                GgufTensorType.F16 => MemoryMarshal.AsBytes(values.Select(v => (Half)v).ToArray().AsSpan()).ToArray(),
                // Whole rows of ne0 values, with ggml's reference quantizers (the q/k rows already in llama.cpp's order).
                _ => QuantizedMatrix.Quantize(values, tensor.Shape[0], tensor.Shape[1], (QuantType)type).Data.ToArray(),
            };
            writer.AddTensor(ggml, type, dims, data);
            count++;
        }

        writer.WriteTo(outputPath);
        return count;
    }

    /// <summary>
    /// The type one tensor of a Llama-family file is written in, as llama.cpp's quantizer (llama_tensor_get_type, no
    /// importance matrix) chooses it, through the same rule as GPT-2's (<see cref="Gpt2GgufExporter.TensorType"/>): 1-D
    /// tensors (norms, biases) F32; in a quantized file the output layer (output.weight, or token_embd when the head is
    /// tied) Q6_K, or Q8_0 in a Q8_0 file or when its rows are not whole 256-value super-blocks; every other matrix
    /// (token_embd of an untied model included) the file's type, falling back to Q8_0 (Q4_K) or F16 (Q8_0, Q4_0) when its
    /// rows are not whole blocks. Two differences from llama.cpp's Q4_K_S mix, for want of Q5_K/Q5_0 blocks here: llama.cpp
    /// writes attn_v of the first four layers and ffn_down of the first n_layer/8 layers as Q5_K (this writes Q4_K), and
    /// falls back from Q4_K to Q5_0 for rows that are not whole super-blocks (this falls back to Q8_0).
    /// </summary>
    /// <param name="fileType">The file's type.</param>
    /// <param name="ggmlName">The GGUF tensor name.</param>
    /// <param name="dims">ggml dimensions, ne0 first.</param>
    /// <param name="tiedOutput">Whether this is the token embedding that also serves as the output layer.</param>
    /// <returns>The tensor's type.</returns>
    public static GgufTensorType TensorType(GgufFileType fileType, string ggmlName, IReadOnlyList<long> dims, bool tiedOutput) =>
        Gpt2GgufExporter.TensorType(fileType, ggmlName, dims, tiedOutput);

    /// <summary>llama.cpp's q/k row order for the llama architecture: within each of <paramref name="heads"/> heads, HF row half·D/2 + i ↔ GGUF row 2i + half.</summary>
    private static Tensor Permute(Tensor tensor, int heads, bool inverse)
    {
        var values = tensor.To(DType.F32).Contiguous().ToArray();
        int rows = tensor.Shape[0], cols = tensor.Rank == 2 ? tensor.Shape[1] : 1, d = rows / heads;
        var output = new float[values.Length];
        for (int hfRow = 0; hfRow < rows; hfRow++)
        {
            int ggRow = GgufRow(hfRow, d);
            int from = inverse ? ggRow : hfRow, to = inverse ? hfRow : ggRow;
            Array.Copy(values, from * cols, output, to * cols, cols);
        }

        var result = Tensor.FromArray(output, tensor.Shape);
        return tensor.DType == DType.F32 ? result : result.To(tensor.DType);
    }

    /// <summary>The inverse of the llama.cpp q/k row order on a block-quantized matrix read from GGUF: whole rows of blocks move, their bytes untouched.</summary>
    private static QuantizedMatrix PermuteRows(QuantizedMatrix matrix, int heads)
    {
        int d = matrix.Rows / heads, rowBytes = matrix.RowBytes;
        var output = new byte[(long)matrix.Rows * rowBytes];
        for (int hfRow = 0; hfRow < matrix.Rows; hfRow++)
        {
            matrix.Row(GgufRow(hfRow, d)).CopyTo(output.AsSpan(hfRow * rowBytes, rowBytes));
        }

        return QuantizedMatrix.FromBlocks(matrix.Type, matrix.Rows, matrix.Columns, output);
    }

    /// <summary>Where HF row <paramref name="hfRow"/> of a q/k projection with head size <paramref name="headDim"/> sits in llama.cpp's order: in its head, half·D/2 + i → 2i + half.</summary>
    private static int GgufRow(int hfRow, int headDim)
    {
        int half = headDim / 2, local = hfRow % headDim;
        int part = local / half, i = local % half;
        return hfRow - local + (2 * i) + part;
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
