using System.CommandLine;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using Sharpformer.IO;
using Sharpformer.IO.Gguf;
using Sharpformer.IO.Onnx;
using Sharpformer.IO.SafeTensors;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer inspect PATH [--json]</c>: what a checkpoint holds — tensors (name, dtype or quantisation, shape,
/// parameters), totals, a dtype breakdown, file sizes, and a summary of the <c>config.json</c> beside it — for every
/// weight format we read: safetensors (file, folder, sharded index), GGUF (metadata, tensor types, tokenizer) and ONNX
/// (opsets, inputs/outputs, initializers, operators). The format is detected from the file's first bytes, not its
/// name. Safetensors and GGUF are read from their headers only, so it is instant even on large models.
/// </summary>
internal static class InspectCommand
{
    // config.json fields worth a glance, BERT/Llama and GPT-2 spellings both; read generically so any model type works.
    private static readonly string[] ConfigKeys =
    [
        "model_type", "architectures", "hidden_size", "n_embd", "num_hidden_layers", "n_layer", "num_attention_heads", "n_head",
        "num_key_value_heads", "intermediate_size", "vocab_size", "max_position_embeddings", "n_positions", "torch_dtype", "dtype",
    ];

    private static readonly JsonSerializerOptions JsonOut = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static Command Create()
    {
        var path = new Argument<string>("path") { Description = "A safetensors file, a model.safetensors.index.json, a GGUF or ONNX file, or a model folder." };
        var json = new Option<bool>("--json") { Description = "Print machine-readable JSON instead of a table." };
        var command = new Command("inspect", "List what a checkpoint holds — safetensors (file, sharded index or model folder), GGUF or ONNX, detected by content: tensors with dtypes or quantisation, shapes, parameter counts, file sizes, metadata and a config.json summary.");
        command.Arguments.Add(path);
        command.Options.Add(json);
        command.SetAction(parse => Run(parse.GetValue(path)!, parse.GetValue(json)));
        return command;
    }

    internal static int Run(string path, bool json)
    {
        Report report;
        try
        {
            report = Build(path);
        }
        catch (Exception e) when (e is SafeTensorsException or GgufFormatException or OnnxFormatException or FileNotFoundException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }

        if (json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(report.ToJson(), JsonOut));
        }
        else
        {
            PrintTable(report);
        }

        return 0;
    }

    private static Report Build(string path)
    {
        if (Directory.Exists(path))
        {
            bool hasSafetensors = File.Exists(Path.Combine(path, "model.safetensors")) || File.Exists(Path.Combine(path, "model.safetensors.index.json"));
            if (hasSafetensors) return BuildSafetensors(path);
            var candidates = Directory.EnumerateFiles(path).Where(f => new FileInfo(f).Length > 0 && CheckpointFormats.Detect(f) is CheckpointFormat.Gguf or CheckpointFormat.Onnx or CheckpointFormat.Safetensors).Order(StringComparer.Ordinal).ToList();
            if (candidates.Count == 1) return Build(candidates[0]);
            if (candidates.Count == 0)
            {
                throw new FileNotFoundException($"{Path.GetFullPath(path)} holds no checkpoint (no model.safetensors, sharded index, GGUF or ONNX file); pass the weight file itself or a model folder.");
            }

            throw new IOException($"{Path.GetFullPath(path)} holds {candidates.Count} weight files ({string.Join(", ", candidates.Take(5).Select(Path.GetFileName))}); pass the one to inspect.");
        }

        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"no such file or folder: {Path.GetFullPath(path)}; pass a safetensors, GGUF or ONNX file, or a model folder.");
        }

        return CheckpointFormats.Detect(path) switch
        {
            CheckpointFormat.Safetensors or CheckpointFormat.SafetensorsIndex => BuildSafetensors(path),
            CheckpointFormat.Gguf => BuildGguf(path),
            CheckpointFormat.Onnx => BuildOnnx(path),
            _ when new FileInfo(path).Length < 10 => throw new IOException($"{Path.GetFullPath(path)} is {new FileInfo(path).Length} bytes long: too short to be a safetensors, GGUF or ONNX file (truncated?)."),
            _ => throw new IOException($"{Path.GetFullPath(path)} is not a safetensors, GGUF or ONNX file (it starts with {FirstBytes(path)}); inspect reads those formats, whatever the file is named."),
        };
    }

    private static string FirstBytes(string path)
    {
        var head = new byte[8];
        using var stream = File.OpenRead(path);
        int n = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        return n == 0 ? "nothing: it is empty" : "bytes " + Convert.ToHexString(head, 0, n);
    }

    private static Report BuildGguf(string path)
    {
        var gguf = GgufFile.Open(path);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in gguf.MetadataInOrder)
        {
            metadata[key] = value.Value is Array array
                ? $"[{array.Length} × {value.ElementType?.ToString().ToLowerInvariant()}]"
                : Text(value);
        }

        // GGUF lists dims innermost first (ne[0] is the row length); show them row-major, as safetensors and PyTorch do.
        var tensors = gguf.Tensors.Select(t => new TensorRow(t.Name, t.Type.ToString(), [.. t.Dims.Reverse()], t.ElementCount, t.ByteLength, null)).ToList();
        var details = new List<KeyValuePair<string, string>>();
        if (gguf.Metadata.TryGetValue("general.architecture", out var arch)) details.Add(new("architecture", Text(arch)));
        if (gguf.Metadata.TryGetValue("general.file_type", out var fileType)) details.Add(new("file type", FileTypeName(fileType)));
        if (gguf.Metadata.TryGetValue("tokenizer.ggml.model", out var tokenizerModel))
        {
            string tokens = gguf.Metadata.TryGetValue("tokenizer.ggml.tokens", out var t) && t.Value is Array ta ? $"{ta.Length} tokens" : "no token list";
            string merges = gguf.Metadata.TryGetValue("tokenizer.ggml.merges", out var m) && m.Value is Array ma ? $", {ma.Length} merges" : "";
            details.Add(new("tokenizer", $"{Text(tokenizerModel)} ({tokens}{merges})"));
        }

        string folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        return new Report(Path.GetFullPath(path), "gguf", $"GGUF v{gguf.Version} ({gguf.MetadataInOrder.Count} metadata keys, alignment {gguf.Alignment})",
            [(Path.GetFullPath(path), gguf.FileLength)], metadata, ReadConfig(Path.Combine(folder, "config.json")), tensors, null, details);
    }

    /// <summary>A GGUF scalar as text: strings bare (not quoted), numbers invariant.</summary>
    private static string Text(GgufValue value) => value.Value as string ?? value.ToString();

    /// <summary>llama.cpp's <c>general.file_type</c> (enum llama_ftype) by name where it is one we know.</summary>
    private static string FileTypeName(GgufValue value)
    {
        ulong code;
        try
        {
            code = value.AsUInt64("general.file_type");
        }
        catch (GgufFormatException)
        {
            return value.ToString();
        }

        string? name = code switch
        {
            0 => "ALL_F32",
            1 => "MOSTLY_F16",
            2 => "MOSTLY_Q4_0",
            3 => "MOSTLY_Q4_1",
            7 => "MOSTLY_Q8_0",
            8 => "MOSTLY_Q5_0",
            9 => "MOSTLY_Q5_1",
            10 => "MOSTLY_Q2_K",
            15 => "MOSTLY_Q4_K_M",
            14 => "MOSTLY_Q4_K_S",
            17 => "MOSTLY_Q5_K_M",
            18 => "MOSTLY_Q6_K",
            32 => "MOSTLY_BF16",
            _ => null,
        };
        return name is null ? code.ToString(CultureInfo.InvariantCulture) : $"{name} ({code})";
    }

    private static Report BuildOnnx(string path)
    {
        var model = OnnxReader.Load(path);
        var graph = model.Graph;
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["ir_version"] = model.IrVersion.ToString(CultureInfo.InvariantCulture),
            ["producer"] = model.ProducerName,
            ["opsets"] = string.Join(" ", model.Opsets.Select(o => $"{(o.Domain.Length == 0 ? "ai.onnx" : o.Domain)}:{o.Version}")),
        };
        var tensors = graph.Initializers.Values.Select(t => new TensorRow(t.Name, t.DataType.ToString().ToUpperInvariant(), [.. t.Dims], t.ElementCount, t.Data.Length, null)).ToList();
        var initializerNames = graph.Initializers.Keys.ToHashSet(StringComparer.Ordinal);
        var details = new List<KeyValuePair<string, string>>
        {
            new("inputs", string.Join(", ", graph.Inputs.Where(i => !initializerNames.Contains(i)))),
            new("outputs", string.Join(", ", graph.Outputs)),
            new("nodes", $"{graph.Nodes.Count}: " + string.Join(", ", graph.Nodes.GroupBy(n => n.OpType, StringComparer.Ordinal).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key}×{g.Count()}"))),
        };
        string folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        return new Report(Path.GetFullPath(path), "onnx", $"ONNX (graph '{graph.Name}', {graph.Initializers.Count} initializers)",
            [(Path.GetFullPath(path), new FileInfo(path).Length)], metadata, ReadConfig(Path.Combine(folder, "config.json")), tensors, null, details);
    }

    private static Report BuildSafetensors(string path)
    {
        using var source = SafeTensorsLoader.Open(path);
        var files = new List<(string Path, long Bytes)>();
        var owner = new Dictionary<string, string>(StringComparer.Ordinal);
        long? indexTotal = null;
        string layout;
        if (source is ShardedSafeTensors sharded)
        {
            layout = $"sharded safetensors ({sharded.Shards.Count} shards)";
            files.Add((sharded.IndexPath, new FileInfo(sharded.IndexPath).Length));
            foreach (var shard in sharded.Shards)
            {
                files.Add((shard.Path, shard.FileLength));
            }

            foreach (var t in sharded.Tensors)
            {
                owner[t.Name] = Path.GetFileName(sharded.Owner(t.Name).Path);
            }

            indexTotal = sharded.TotalSize;
        }
        else
        {
            var file = (SafeTensorsFile)source;
            layout = "safetensors (1 file)";
            files.Add((file.Path, file.FileLength));
        }

        string folder = Directory.Exists(path) ? path : Path.GetDirectoryName(Path.GetFullPath(path))!;
        var config = ReadConfig(Path.Combine(folder, "config.json"));
        var tensors = source.Tensors.Select(t => new TensorRow(t.Name, t.DType.HeaderName(), [.. t.Shape], t.ElementCount, t.ByteLength, owner.GetValueOrDefault(t.Name))).ToList();
        return new Report(Path.GetFullPath(path), "safetensors", layout, files, new Dictionary<string, string>(source.Metadata), config, tensors, indexTotal, []);
    }

    /// <summary>The summary fields of a config.json, as raw JSON text per key; null when there is no config.</summary>
    private static ConfigSummary? ReadConfig(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { MaxDepth = 64 });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                return new ConfigSummary(path, [], "config.json is not a JSON object");
            }

            var fields = new List<KeyValuePair<string, JsonElement>>();
            foreach (string key in ConfigKeys)
            {
                if (doc.RootElement.TryGetProperty(key, out var value))
                {
                    fields.Add(new(key, value.Clone()));
                }
            }

            // Remote code is never run; say so when a config asks for it.
            bool remote = doc.RootElement.TryGetProperty("auto_map", out _) || doc.RootElement.TryGetProperty("trust_remote_code", out _);
            return new ConfigSummary(path, fields, remote ? "auto_map/trust_remote_code present: ignored (custom code is never run)" : null);
        }
        catch (JsonException e)
        {
            return new ConfigSummary(path, [], $"config.json is not valid JSON: {e.Message}");
        }
    }

    private static void PrintTable(Report r)
    {
        var o = Console.Out;
        o.WriteLine($"{r.Path}: {r.Layout}");
        foreach (var (file, bytes) in r.Files)
        {
            o.WriteLine($"  {Path.GetFileName(file),-40} {FormatBytes(bytes),12}");
        }

        if (r.Metadata.Count > 0)
        {
            var entries = r.Metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={Shorten(kv.Value)}").ToList();
            if (entries.Count <= 3)
            {
                o.WriteLine("metadata: " + string.Join(", ", entries));
            }
            else
            {
                o.WriteLine("metadata:");
                foreach (var entry in entries) o.WriteLine("  " + entry);
            }
        }

        foreach (var (key, value) in r.Details)
        {
            o.WriteLine($"{key}: {value}");
        }

        if (r.Config is { } config)
        {
            o.WriteLine($"config: {string.Join(", ", config.Fields.Select(kv => $"{kv.Key}={FormatJsonValue(kv.Value)}"))}");
            if (config.Note is not null)
            {
                o.WriteLine($"config note: {config.Note}");
            }
        }

        o.WriteLine();
        int nameWidth = Math.Clamp(r.Tensors.Count == 0 ? 4 : r.Tensors.Max(t => t.Name.Length), 4, 80);
        bool sharded = r.Tensors.Any(t => t.File is not null);
        o.WriteLine($"{"name".PadRight(nameWidth)}  {"dtype",-8} {"shape",-24} {"params",14}" + (sharded ? "  file" : ""));
        foreach (var t in r.Tensors)
        {
            string shape = "[" + string.Join(", ", t.Shape) + "]";
            o.WriteLine($"{t.Name.PadRight(nameWidth)}  {t.DType,-8} {shape,-24} {t.Parameters.ToString("N0", CultureInfo.InvariantCulture),14}" + (sharded ? "  " + t.File : ""));
        }

        o.WriteLine();
        o.WriteLine("by dtype:");
        foreach (var (dtype, group) in r.ByDType())
        {
            o.WriteLine($"  {dtype,-8} {group.Tensors,6} tensors {FormatCount(group.Parameters),10} params {FormatBytes(group.Bytes),12}");
        }

        o.WriteLine($"total: {r.Tensors.Count} tensors, {r.TotalParameters.ToString("N0", CultureInfo.InvariantCulture)} parameters ({FormatCount(r.TotalParameters)}), {FormatBytes(r.TotalBytes)} of tensor data");
        if (r.IndexTotalSize is { } declared && declared != r.TotalBytes)
        {
            o.WriteLine($"note: the index declares total_size {declared}, but the tensors hold {r.TotalBytes} bytes");
        }
    }

    /// <summary>A metadata value for the table: one line, long texts (chat templates, say) cut with their length noted; --json keeps them whole.</summary>
    private static string Shorten(string value)
    {
        string line = value.ReplaceLineEndings("\\n");
        return line.Length <= 100 ? line : string.Create(CultureInfo.InvariantCulture, $"{line[..97]}… ({value.Length} chars)");
    }

    private static string FormatJsonValue(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.String => v.GetString()!,
        JsonValueKind.Array => "[" + string.Join(", ", v.EnumerateArray().Select(FormatJsonValue)) + "]",
        _ => v.GetRawText(),
    };

    internal static string FormatCount(long n) => n switch
    {
        >= 1_000_000_000 => (n / 1e9).ToString("0.##", CultureInfo.InvariantCulture) + "B",
        >= 1_000_000 => (n / 1e6).ToString("0.##", CultureInfo.InvariantCulture) + "M",
        >= 1_000 => (n / 1e3).ToString("0.##", CultureInfo.InvariantCulture) + "K",
        _ => n.ToString(CultureInfo.InvariantCulture),
    };

    internal static string FormatBytes(long n) => n switch
    {
        >= 1L << 30 => (n / (double)(1L << 30)).ToString("0.00", CultureInfo.InvariantCulture) + " GiB",
        >= 1L << 20 => (n / (double)(1L << 20)).ToString("0.00", CultureInfo.InvariantCulture) + " MiB",
        >= 1L << 10 => (n / (double)(1L << 10)).ToString("0.00", CultureInfo.InvariantCulture) + " KiB",
        _ => n.ToString(CultureInfo.InvariantCulture) + " B",
    };

    private sealed record TensorRow(string Name, string DType, long[] Shape, long Parameters, long Bytes, string? File);

    private sealed record ConfigSummary(string Path, List<KeyValuePair<string, JsonElement>> Fields, string? Note);

    private sealed record DTypeGroup(int Tensors, long Parameters, long Bytes);

    private sealed record Report(string Path, string Format, string Layout, List<(string Path, long Bytes)> Files, Dictionary<string, string> Metadata, ConfigSummary? Config, List<TensorRow> Tensors, long? IndexTotalSize, List<KeyValuePair<string, string>> Details)
    {
        public long TotalParameters => Tensors.Sum(t => t.Parameters);

        public long TotalBytes => Tensors.Sum(t => t.Bytes);

        public IEnumerable<(string DType, DTypeGroup Group)> ByDType() =>
            Tensors.GroupBy(t => t.DType, StringComparer.Ordinal)
                .OrderByDescending(g => g.Sum(t => t.Bytes))
                .Select(g => (g.Key, new DTypeGroup(g.Count(), g.Sum(t => t.Parameters), g.Sum(t => t.Bytes))));

        public Dictionary<string, object?> ToJson() => new()
        {
            ["path"] = Path,
            ["format"] = Format,
            ["layout"] = Layout,
            ["details"] = Details.ToDictionary(kv => kv.Key, kv => kv.Value),
            ["files"] = Files.Select(f => new Dictionary<string, object> { ["path"] = f.Path, ["bytes"] = f.Bytes }).ToList(),
            ["metadata"] = Metadata,
            ["config"] = Config is null ? null : new Dictionary<string, object?>
            {
                ["path"] = Config.Path,
                ["fields"] = Config.Fields.ToDictionary(kv => kv.Key, kv => (object)kv.Value),
                ["note"] = Config.Note,
            },
            ["tensors"] = Tensors.Select(t => new Dictionary<string, object?>
            {
                ["name"] = t.Name,
                ["dtype"] = t.DType,
                ["shape"] = t.Shape,
                ["parameters"] = t.Parameters,
                ["bytes"] = t.Bytes,
                ["file"] = t.File,
            }).ToList(),
            ["dtypes"] = ByDType().ToDictionary(g => g.DType, g => new Dictionary<string, long> { ["tensors"] = g.Group.Tensors, ["parameters"] = g.Group.Parameters, ["bytes"] = g.Group.Bytes }),
            ["total_tensors"] = Tensors.Count,
            ["total_parameters"] = TotalParameters,
            ["total_bytes"] = TotalBytes,
            ["index_total_size"] = IndexTotalSize,
        };
    }
}
