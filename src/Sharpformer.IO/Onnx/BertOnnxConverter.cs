using System.Text;
using System.Text.Json;
using Sharpformer.IO.SafeTensors;

namespace Sharpformer.IO.Onnx;

/// <summary>What <see cref="BertOnnxConverter.ConvertToHuggingFace"/> wrote.</summary>
/// <param name="Config">The hyper-parameters recovered from the graph.</param>
/// <param name="TensorCount">Tensors written to model.safetensors.</param>
/// <param name="ParameterCount">Total number of weights.</param>
/// <param name="OutputDirectory">The Hugging Face folder.</param>
/// <param name="Files">Full paths of the files written.</param>
public sealed record BertOnnxConversion(BertOnnxConfig Config, int TensorCount, long ParameterCount, string OutputDirectory, IReadOnlyList<string> Files);

/// <summary>
/// Turns an ONNX BERT export into a Hugging Face model folder: config.json (a BertConfig inferred from the graph),
/// model.safetensors (BertModel tensor names, linear weights [out, in]), vocab.txt (copied) and tokenizer_config.json.
/// </summary>
public static class BertOnnxConverter
{
    /// <summary>The special tokens a BERT WordPiece vocabulary must contain.</summary>
    public static readonly IReadOnlyList<string> SpecialTokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

    /// <summary>
    /// Converts <paramref name="onnxPath"/> into a Hugging Face folder at <paramref name="outputDirectory"/> (created if
    /// missing). The vocabulary is <paramref name="vocabPath"/>, or vocab.txt next to the model when that is null.
    /// </summary>
    /// <exception cref="OnnxFormatException">The model is not a readable ONNX file or not a BERT export.</exception>
    /// <exception cref="FileNotFoundException">The model or the vocabulary does not exist.</exception>
    /// <exception cref="InvalidDataException">The vocabulary does not match the model (size or special tokens).</exception>
    public static BertOnnxConversion ConvertToHuggingFace(string onnxPath, string outputDirectory, string? vocabPath = null)
    {
        ArgumentNullException.ThrowIfNull(onnxPath);
        ArgumentNullException.ThrowIfNull(outputDirectory);
        vocabPath ??= Path.Combine(Path.GetDirectoryName(Path.GetFullPath(onnxPath)) ?? ".", "vocab.txt");
        if (!File.Exists(vocabPath))
        {
            throw new FileNotFoundException($"Vocabulary '{vocabPath}' does not exist; pass the model's vocab.txt with --vocab.", vocabPath);
        }

        var import = BertOnnxImporter.Import(OnnxReader.Load(onnxPath));
        var config = import.Config;
        string[] vocab = ReadVocab(vocabPath);
        if (vocab.Length != config.VocabSize)
        {
            throw new InvalidDataException($"Vocabulary '{vocabPath}' has {vocab.Length} tokens but the model's word-embedding table has {config.VocabSize} rows; pass the vocab.txt that belongs to this model.");
        }

        var missing = SpecialTokens.Where(t => !vocab.Contains(t)).ToList();
        if (missing.Count > 0)
        {
            throw new InvalidDataException($"Vocabulary '{vocabPath}' lacks the BERT special tokens {string.Join(", ", missing)}; it is not a BERT WordPiece vocabulary.");
        }

        Directory.CreateDirectory(outputDirectory);
        string configPath = Path.Combine(outputDirectory, "config.json");
        string weightsPath = Path.Combine(outputDirectory, SafeTensorsWriter.SingleFileName);
        string vocabOut = Path.Combine(outputDirectory, "vocab.txt");
        string tokenizerPath = Path.Combine(outputDirectory, "tokenizer_config.json");

        SafeTensorsWriter.Write(weightsPath, import.Tensors.Select(kv => (kv.Key, kv.Value)), new Dictionary<string, string> { ["format"] = "pt" });
        File.WriteAllText(configPath, ConfigJson(config), new UTF8Encoding(false));
        if (!string.Equals(Path.GetFullPath(vocabPath), Path.GetFullPath(vocabOut), StringComparison.Ordinal))
        {
            File.Copy(vocabPath, vocabOut, overwrite: true);
        }

        File.WriteAllText(tokenizerPath, TokenizerConfigJson(config), new UTF8Encoding(false));
        long parameters = import.Tensors.Sum(kv => kv.Value.ElementCount);
        return new BertOnnxConversion(config, import.Tensors.Count, parameters, outputDirectory, [configPath, weightsPath, vocabOut, tokenizerPath]);
    }

    /// <summary>The Hugging Face BertConfig (config.json) for <paramref name="config"/>, keys sorted as transformers writes them.</summary>
    public static string ConfigJson(BertOnnxConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return Json(w =>
        {
            w.WriteStartArray("architectures");
            w.WriteStringValue("BertModel");
            w.WriteEndArray();
            w.WriteNumber("attention_probs_dropout_prob", 0.1);
            w.WriteNull("classifier_dropout");
            w.WriteString("hidden_act", config.HiddenAct);
            w.WriteNumber("hidden_dropout_prob", 0.1);
            w.WriteNumber("hidden_size", config.HiddenSize);
            w.WriteNumber("initializer_range", 0.02);
            w.WriteNumber("intermediate_size", config.IntermediateSize);
            w.WriteNumber("layer_norm_eps", config.LayerNormEps);
            w.WriteNumber("max_position_embeddings", config.MaxPositionEmbeddings);
            w.WriteString("model_type", "bert");
            w.WriteNumber("num_attention_heads", config.NumAttentionHeads);
            w.WriteNumber("num_hidden_layers", config.NumHiddenLayers);
            w.WriteNumber("pad_token_id", 0);
            w.WriteString("position_embedding_type", "absolute");
            w.WriteString("torch_dtype", "float32");
            w.WriteNumber("type_vocab_size", config.TypeVocabSize);
            w.WriteBoolean("use_cache", true);
            w.WriteNumber("vocab_size", config.VocabSize);
        });
    }

    /// <summary>tokenizer_config.json for an uncased BERT WordPiece tokenizer with the standard special tokens.</summary>
    public static string TokenizerConfigJson(BertOnnxConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return Json(w =>
        {
            w.WriteBoolean("clean_up_tokenization_spaces", true);
            w.WriteString("cls_token", "[CLS]");
            w.WriteBoolean("do_basic_tokenize", true);
            w.WriteBoolean("do_lower_case", true);
            w.WriteString("mask_token", "[MASK]");
            w.WriteNumber("model_max_length", 512);
            w.WriteNull("never_split");
            w.WriteString("pad_token", "[PAD]");
            w.WriteString("sep_token", "[SEP]");
            w.WriteNull("strip_accents");
            w.WriteBoolean("tokenize_chinese_chars", true);
            w.WriteString("tokenizer_class", "BertTokenizer");
            w.WriteString("unk_token", "[UNK]");
        });
    }

    private static string[] ReadVocab(string path)
    {
        // One token per line; a trailing newline does not add a token (as HF's load_vocab reads it).
        string text = File.ReadAllText(path, Encoding.UTF8);
        var lines = text.Split('\n');
        int count = lines.Length > 0 && lines[^1].Length == 0 ? lines.Length - 1 : lines.Length;
        var tokens = new string[count];
        for (int i = 0; i < count; i++) tokens[i] = lines[i].TrimEnd('\r');
        return tokens;
    }

    private static string Json(Action<Utf8JsonWriter> body)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }
}
