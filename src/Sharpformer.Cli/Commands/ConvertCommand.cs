using System.CommandLine;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using Sharpformer.IO.Config;
using Sharpformer.IO.Gguf;
using Sharpformer.IO.Onnx;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Tensors;

namespace Sharpformer.Cli.Commands;

/// <summary><c>sharpformer convert ...</c>: checkpoint importers; each source format is a sub-command.</summary>
internal static class ConvertCommand
{
    private static readonly JsonSerializerOptions JsonOut = new()
    {
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    };

    public static Command Create()
    {
        var convert = new Command("convert", "Convert checkpoints between Hugging Face folders and other formats (ONNX in, GGUF out).");
        convert.Subcommands.Add(CreateOnnxBert());
        convert.Subcommands.Add(CreateGguf());
        convert.Subcommands.Add(CreateDType());
        return convert;
    }

    private static Command CreateDType()
    {
        var folder = new Argument<string>("hf-folder") { Description = "The Hugging Face folder (config.json, model.safetensors or a sharded index, tokenizer files)." };
        var output = new Argument<string>("out-dir") { Description = "The folder to write (created if missing; an existing non-empty one needs --force)." };
        var dtype = new Option<string>("--dtype") { Description = "The floating-point type of the written weights: bf16, f16 or f32 (integer tensors are copied as they are).", Required = true };
        dtype.AcceptOnlyFromAmong("bf16", "f16", "f32");
        var force = new Option<bool>("--force") { Description = "Write into out-dir even when it already holds files (they may be overwritten)." };
        var command = new Command("dtype", "Write a Hugging Face folder with its weights in another floating-point type (as model.to(torch.bfloat16).save_pretrained does): one model.safetensors, config.json's torch_dtype set, the tokenizer, generation config and card copied.");
        command.Arguments.Add(folder);
        command.Arguments.Add(output);
        command.Options.Add(dtype);
        command.Options.Add(force);
        command.SetAction(parse => RunDType(parse.GetValue(folder)!, parse.GetValue(output)!, parse.GetValue(dtype)!, Console.Out, Console.Error, parse.GetValue(force)));
        return command;
    }

    internal static int RunDType(string folder, string output, string dtype, TextWriter stdout, TextWriter stderr, bool force = false)
    {
        var (target, torchName) = dtype switch
        {
            "bf16" => (DType.BF16, "bfloat16"),
            "f16" => (DType.F16, "float16"),
            "f32" => (DType.F32, "float32"),
            _ => throw new ArgumentException($"--dtype must be bf16, f16 or f32 (got '{dtype}')."),
        };
        try
        {
            if (!File.Exists(Path.Combine(folder, "config.json")))
            {
                stderr.WriteLine($"error: convert dtype: {folder} has no config.json; pass a Hugging Face model folder.");
                return 1;
            }

            if (Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar) == Path.GetFullPath(output).TrimEnd(Path.DirectorySeparatorChar))
            {
                stderr.WriteLine("error: convert dtype: out-dir is the input folder; write to another folder (the weights are read while they are written).");
                return 2;
            }

            if (Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any() && !force)
            {
                stderr.WriteLine($"error: convert dtype: {output} is not empty; choose another folder or pass --force.");
                return 1;
            }

            Directory.CreateDirectory(output);
            long before = 0, after = 0, count = 0;
            using (var weights = SafeTensorsLoader.Open(folder))
            {
                var tensors = new List<(string Name, Tensor Tensor)>();
                foreach (var info in weights.Tensors)
                {
                    var tensor = weights.GetTensor(info.Name);
                    before += info.ByteLength;
                    var converted = tensor.DType is DType.F32 or DType.F16 or DType.BF16 ? tensor.To(target) : tensor;
                    after += converted.Shape.ElementCount * converted.DType.SizeOf();
                    tensors.Add((info.Name, converted));
                    count++;
                }

                var metadata = new Dictionary<string, string>(weights.Metadata, StringComparer.Ordinal) { ["format"] = "pt" };
                SafeTensorsWriter.Write(Path.Combine(output, SafeTensorsWriter.SingleFileName), tensors, metadata);
            }

            // The model's own files (not a training run's optimizer state, logs or checkpoints that may share its folder).
            string[] companions = ["config.json", "README.md", "spiece.model", "source.spm", "target.spm", "sentencepiece.bpe.model", "added_tokens.json",
                "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", .. Sharpformer.IO.Hub.HubClient.OptionalModelFiles];
            foreach (var name in companions.Distinct(StringComparer.Ordinal))
            {
                string file = Path.Combine(folder, name);
                if (!File.Exists(file))
                {
                    continue;
                }

                string destination = Path.Combine(output, name);
                if (name == "config.json")
                {
                    var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(file))!.AsObject();
                    config["torch_dtype"] = torchName;
                    File.WriteAllText(destination, config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                }
                else
                {
                    File.Copy(file, destination, overwrite: true);
                }
            }

            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote {count} tensors as {dtype} to {output} ({before / 1e6:F1} MB → {after / 1e6:F1} MB)"));
            return 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException or SafeTensorsException or JsonException)
        {
            stderr.WriteLine($"error: convert dtype: {e.Message}");
            return 1;
        }
    }

    private static Command CreateOnnxBert()
    {
        var model = new Argument<string>("model.onnx") { Description = "The ONNX BERT export (e.g. a sentence-transformers model.onnx)." };
        var output = new Argument<string>("out-dir") { Description = "The Hugging Face folder to write (created if missing; an existing non-empty one needs --force)." };
        var vocab = new Option<string?>("--vocab") { Description = "The WordPiece vocab.txt (default: vocab.txt next to the model)." };
        var json = new Option<bool>("--json") { Description = "Print the result (config, counts, files) as JSON instead of a summary." };
        var force = new Option<bool>("--force") { Description = "Write into out-dir even when it already holds files (they may be overwritten)." };
        var command = new Command("onnx-bert", "Import an ONNX-exported BERT into a Hugging Face folder: config.json, model.safetensors, vocab.txt, tokenizer_config.json.");
        command.Arguments.Add(model);
        command.Arguments.Add(output);
        command.Options.Add(vocab);
        command.Options.Add(json);
        command.Options.Add(force);
        command.SetAction(parse => Run(parse.GetValue(model)!, parse.GetValue(output)!, parse.GetValue(vocab), parse.GetValue(json), Console.Out, Console.Error, parse.GetValue(force)));
        return command;
    }

    private static Command CreateGguf()
    {
        var folder = new Argument<string>("hf-folder") { Description = "The Hugging Face folder: a GPT-2 (config.json, model.safetensors, tokenizer.json or vocab.json + merges.txt) or a Llama, Mistral, Qwen2 or Phi-3 (config.json, safetensors; written without a vocabulary)." };
        var output = new Argument<string>("out.gguf") { Description = "The GGUF file to write (an existing file needs --force)." };
        var dtype = new Option<string>("--dtype")
        {
            Description = "Weight type: f32; f16 (matrices in F16, norms and biases F32); or q8_0, q4_0, q4_k (matrices quantized as llama.cpp's quantizer does, the tied token embedding Q6_K except in q8_0).",
            DefaultValueFactory = _ => "f32",
        };
        dtype.AcceptOnlyFromAmong("f32", "f16", "q8_0", "q4_0", "q4_k");
        var name = new Option<string?>("--name") { Description = "general.name (default: the folder's name)." };
        var force = new Option<bool>("--force") { Description = "Replace out.gguf when it exists." };
        var command = new Command("gguf", "Export a GPT-2 (gpt2 architecture, GPT-2 tokenizer metadata) or a Llama-family checkpoint (llama, qwen2, phi3 architectures) to GGUF for llama.cpp.");
        command.Arguments.Add(folder);
        command.Arguments.Add(output);
        command.Options.Add(dtype);
        command.Options.Add(name);
        command.Options.Add(force);
        command.SetAction(parse => RunGguf(parse.GetValue(folder)!, parse.GetValue(output)!, parse.GetValue(dtype)!, parse.GetValue(name), Console.Out, Console.Error, parse.GetValue(force)));
        return command;
    }

    internal static int RunGguf(string folder, string output, string dtype, string? name, TextWriter stdout, TextWriter stderr, bool force = false)
    {
        if (File.Exists(output) && !force)
        {
            stderr.WriteLine($"error: convert gguf: {Path.GetFullPath(output)} already exists; pass --force to replace it, or choose another file name.");
            return 1;
        }

        if (Directory.Exists(output))
        {
            stderr.WriteLine($"error: convert gguf: {Path.GetFullPath(output)} is a folder; name the .gguf file to write.");
            return 1;
        }

        Gpt2GgufExport result;
        GgufFile check;
        try
        {
            if (File.Exists(Path.Combine(folder, "config.json")) && ModelConfig.Load(folder) is LlamaConfig llama)
            {
                return RunLlamaGguf(folder, output, Gpt2GgufExporter.ParseFileType(dtype), name, llama, stdout);
            }

            result = Gpt2GgufExporter.Export(folder, output, Gpt2GgufExporter.ParseFileType(dtype), name);
            // Read the file back through the bounds-checked reader: what we hand to llama.cpp must parse.
            check = GgufFile.Open(result.OutputPath);
        }
        catch (Exception ex) when (ex is GgufFormatException or ModelConfigException or IO.SafeTensors.SafeTensorsException or IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            stderr.WriteLine($"error: convert gguf: {ex.Message.ReplaceLineEndings(" ")}");
            return 1;
        }

        var c = result.Config;
        var inv = CultureInfo.InvariantCulture;
        stdout.WriteLine(string.Create(inv, $"Converted {folder} → {result.OutputPath}"));
        stdout.WriteLine(string.Create(inv, $"  GPT-2: {c.NumHiddenLayers} layers, n_embd {c.HiddenSize}, {c.NumAttentionHeads} heads, n_inner {c.IntermediateSize}, context {c.MaxPositionEmbeddings}, vocab {c.VocabSize}"));
        stdout.WriteLine(string.Create(inv, $"  {Describe(result.FileType)}, {result.TensorCount} tensors, {result.ParameterCount:N0} parameters, {result.FileBytes:N0} bytes{(result.TiedOutput ? ", head tied to token_embd" : "")}"));
        stdout.WriteLine(string.Create(inv, $"  verified: GGUF v{check.Version}, {check.MetadataInOrder.Count} metadata keys, {check.Tensors.Count} tensors"));
        return 0;
    }

    /// <summary>A Llama-family folder (llama, mistral, qwen2, phi3) through <see cref="Models.Llama.LlamaGguf.Export"/>, read back to verify it parses.</summary>
    private static int RunLlamaGguf(string folder, string output, GgufFileType fileType, string? name, LlamaConfig c, TextWriter stdout)
    {
        int tensors = Models.Llama.LlamaGguf.Export(folder, output, fileType, name);
        var check = GgufFile.Open(output);
        var types = check.Tensors.GroupBy(t => t.Type).OrderBy(g => g.Key).Select(g => $"{g.Count()} {g.Key}");
        var inv = CultureInfo.InvariantCulture;
        stdout.WriteLine(string.Create(inv, $"Converted {folder} → {Path.GetFullPath(output)}"));
        stdout.WriteLine(string.Create(inv, $"  {c.Family}: {c.NumHiddenLayers} layers, hidden {c.HiddenSize}, {c.NumAttentionHeads} heads ({c.NumKeyValueHeads} kv), intermediate {c.IntermediateSize}, context {c.MaxPositionEmbeddings}, vocab {c.VocabSize}"));
        stdout.WriteLine(string.Create(inv, $"  {fileType}, {tensors} tensors ({string.Join(", ", types)}), {new FileInfo(output).Length:N0} bytes; no vocabulary (tokenizer.ggml.model no_vocab)"));
        stdout.WriteLine(string.Create(inv, $"  verified: GGUF v{check.Version}, {check.MetadataInOrder.Count} metadata keys, {check.Tensors.Count} tensors"));
        return 0;
    }

    internal static int Run(string model, string output, string? vocab, bool json, TextWriter stdout, TextWriter stderr, bool force = false)
    {
        if (!File.Exists(model))
        {
            stderr.WriteLine($"error: convert onnx-bert: no such file: {Path.GetFullPath(model)}; pass the path of the model.onnx to import.");
            return 1;
        }

        if (File.Exists(output))
        {
            stderr.WriteLine($"error: convert onnx-bert: {Path.GetFullPath(output)} is a file; out-dir must be a folder (it is created if missing).");
            return 1;
        }

        if (!force && Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any())
        {
            stderr.WriteLine($"error: convert onnx-bert: {Path.GetFullPath(output)} already holds files; pass --force to write into it anyway, or choose an empty or new folder.");
            return 1;
        }

        BertOnnxConversion result;
        try
        {
            result = BertOnnxConverter.ConvertToHuggingFace(model, output, vocab);
        }
        catch (Exception ex) when (ex is OnnxFormatException or IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException or IO.SafeTensors.SafeTensorsException)
        {
            // One line: the message already names the file, the element and the rule.
            stderr.WriteLine($"error: convert onnx-bert: {ex.Message.ReplaceLineEndings(" ")}");
            return 1;
        }

        if (json)
        {
            stdout.WriteLine(JsonSerializer.Serialize(
                new { output_dir = result.OutputDirectory, tensors = result.TensorCount, parameters = result.ParameterCount, config = result.Config, files = result.Files },
                JsonOut));
            return 0;
        }

        var c = result.Config;
        var inv = CultureInfo.InvariantCulture;
        stdout.WriteLine(string.Create(inv, $"Converted {model} → {result.OutputDirectory}"));
        stdout.WriteLine(string.Create(inv, $"  BERT: {c.NumHiddenLayers} layers, hidden {c.HiddenSize}, {c.NumAttentionHeads} heads, intermediate {c.IntermediateSize}, {c.HiddenAct}, layer_norm_eps {c.LayerNormEps:R}"));
        stdout.WriteLine(string.Create(inv, $"  vocab {c.VocabSize}, max positions {c.MaxPositionEmbeddings}, token types {c.TypeVocabSize}, pooler {(c.HasPooler ? "yes" : "no")}"));
        stdout.WriteLine(string.Create(inv, $"  {result.TensorCount} tensors, {result.ParameterCount:N0} parameters"));
        foreach (string file in result.Files) stdout.WriteLine($"  wrote {file}");
        return 0;
    }

    private static string Describe(GgufFileType type) => type switch
    {
        GgufFileType.AllF32 => "F32",
        GgufFileType.MostlyF16 => "F16 (norms and biases F32)",
        GgufFileType.MostlyQ8_0 => "Q8_0 (norms, biases and positions F32)",
        GgufFileType.MostlyQ4_0 => "Q4_0 (tied token embedding Q6_K; norms, biases and positions F32)",
        _ => "Q4_K (tied token embedding Q6_K; norms, biases and positions F32)",
    };
}
