using System.Collections.ObjectModel;
using System.Text.Json;

namespace Sharpformer.IO.Config;

/// <summary>
/// An immutable, validated model configuration with Hugging Face's defaults resolved. Read one with
/// <see cref="Load"/>; the concrete type (<see cref="BertConfig"/>, <see cref="RobertaConfig"/>,
/// <see cref="DistilBertConfig"/>, <see cref="Gpt2Config"/>, <see cref="LlamaConfig"/>) follows config.json's
/// <c>model_type</c>.
/// </summary>
public abstract record ModelConfig
{
    /// <summary>The model types <see cref="Load"/> understands, sorted.</summary>
    public static IReadOnlyList<string> SupportedModelTypes { get; } = ["bart", "bert", "distilbert", "gpt2", "llama", "marian", "mbart", "mistral", "phi3", "qwen2", "roberta", "t5"];

    /// <summary>The <c>model_type</c> this record describes (e.g. <c>bert</c>).</summary>
    public abstract string ModelType { get; }

    /// <summary>Embedding width C (HF <c>hidden_size</c>; <c>n_embd</c> in GPT-2, <c>dim</c> in DistilBERT).</summary>
    public int HiddenSize { get; init; }

    /// <summary>Number of transformer blocks (<c>num_hidden_layers</c> / <c>n_layer</c> / <c>n_layers</c>).</summary>
    public int NumHiddenLayers { get; init; }

    /// <summary>Number of attention heads H (<c>num_attention_heads</c> / <c>n_head</c> / <c>n_heads</c>).</summary>
    public int NumAttentionHeads { get; init; }

    /// <summary>Vocabulary size V.</summary>
    public int VocabSize { get; init; }

    /// <summary>Longest sequence T the position embeddings cover (<c>max_position_embeddings</c> / <c>n_positions</c>).</summary>
    public int MaxPositionEmbeddings { get; init; }

    /// <summary>Width of the feed-forward hidden layer (<c>intermediate_size</c> / <c>n_inner</c> / <c>hidden_dim</c>).</summary>
    public int IntermediateSize { get; init; }

    /// <summary><c>architectures</c> from the file (empty when absent).</summary>
    public IReadOnlyList<string> Architectures { get; init; } = [];

    /// <summary>The dtype the checkpoint was saved in (<c>torch_dtype</c> or <c>dtype</c>), or null.</summary>
    public string? TorchDtype { get; init; }

    /// <summary><c>bos_token_id</c> with the architecture's default resolved (may be null).</summary>
    public int? BosTokenId { get; init; }

    /// <summary><c>eos_token_id</c> as a list (one id for most models, several for Llama 3 instruct); empty when unset.</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    /// <summary><c>pad_token_id</c> with the architecture's default resolved (may be null).</summary>
    public int? PadTokenId { get; init; }

    /// <summary>Whether the output projection shares the input embedding (<c>tie_word_embeddings</c>).</summary>
    public bool TieWordEmbeddings { get; init; }

    /// <summary>The problem types a classification head accepts in <c>problem_type</c>, as transformers spells them.</summary>
    public static IReadOnlyList<string> ProblemTypes { get; } = ["regression", "single_label_classification", "multi_label_classification"];

    /// <summary>
    /// <c>id2label</c>: class index to label for classification heads, indices 0 … num_labels − 1. Resolved as
    /// transformers' PretrainedConfig does: from the file, else <c>LABEL_0</c> … <c>LABEL_{num_labels−1}</c> with
    /// num_labels from the file or 2.
    /// </summary>
    public IReadOnlyDictionary<int, string> Id2Label { get; init; } = DefaultLabels(2);

    /// <summary><c>label2id</c>: the inverse of <see cref="Id2Label"/> (checked against the file's when it has one).</summary>
    public IReadOnlyDictionary<string, int> Label2Id { get; init; } = Invert(DefaultLabels(2));

    /// <summary>The number of classes of a classification head (<c>num_labels</c>): the size of <see cref="Id2Label"/>.</summary>
    public int NumLabels => Id2Label.Count;

    /// <summary><c>problem_type</c> (one of <see cref="ProblemTypes"/>), or null when the file leaves it to be decided from the labels.</summary>
    public string? ProblemType { get; init; }

    /// <summary>The config.json text this record was parsed from (null when built in code); saving a model starts from its keys.</summary>
    public string? SourceJson { get; init; }

    /// <summary>Keys of the file that this record does not model, kept verbatim.</summary>
    public IReadOnlyDictionary<string, JsonElement> ExtraKeys { get; init; } = ReadOnlyDictionary<string, JsonElement>.Empty;

    /// <summary>Non-fatal findings, e.g. an <c>auto_map</c> that is ignored because remote code never runs.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>
    /// Reads a config: <paramref name="pathOrJson"/> is inline JSON (starts with <c>{</c>), a config.json path, or a
    /// model folder holding config.json. Dispatches on <c>model_type</c>, or on <c>architectures</c> when an old
    /// checkpoint has no <c>model_type</c>.
    /// </summary>
    /// <exception cref="ModelConfigException">The file is missing, is not JSON, names an unsupported model type, or
    /// fails validation; the message names the source and the key.</exception>
    public static ModelConfig Load(string pathOrJson)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(pathOrJson);
        if (pathOrJson.TrimStart().StartsWith('{'))
            return Parse(pathOrJson, "inline JSON");

        var path = Directory.Exists(pathOrJson) ? Path.Combine(pathOrJson, "config.json") : pathOrJson;
        if (!File.Exists(path))
            throw new ModelConfigException($"config.json not found at '{path}': pass a model folder, a config.json path, or the JSON text itself.");
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses config.json text; <paramref name="source"/> names it in error messages.</summary>
    /// <exception cref="ModelConfigException">See <see cref="Load"/>.</exception>
    public static ModelConfig Parse(string json, string source = "inline JSON")
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(source);
        var modelType = DetectModelType(json, source);
        ModelConfig config = modelType switch
        {
            "bert" => BertConfig.FromJson(Deserialize<BertConfigJson>(json, source), source),
            "roberta" => RobertaConfig.FromJson(Deserialize<RobertaConfigJson>(json, source), source),
            "distilbert" => DistilBertConfig.FromJson(Deserialize<DistilBertConfigJson>(json, source), source),
            "gpt2" => Gpt2Config.FromJson(Deserialize<Gpt2ConfigJson>(json, source), source),
            "llama" or "mistral" or "qwen2" or "phi3" => LlamaConfig.FromJson(Deserialize<LlamaConfigJson>(json, source), source, modelType),
            "bart" or "marian" or "mbart" => BartConfig.FromJson(Deserialize<BartConfigJson>(json, source), modelType, source),
            "t5" => T5Config.FromJson(Deserialize<T5ConfigJson>(json, source), source),
            _ => throw new ModelConfigException(
                $"{source}: model_type '{modelType}' is not supported; supported model types: {string.Join(", ", SupportedModelTypes)}."),
        };
        return config with { SourceJson = json };
    }

    /// <summary>
    /// A copy of this config for a classification head with <paramref name="labels"/> as its classes (id2label in order,
    /// label2id its inverse), as transformers' <c>from_pretrained(..., id2label=...)</c> sets them.
    /// </summary>
    /// <param name="labels">One distinct, non-empty label per class.</param>
    /// <returns>The new config.</returns>
    /// <exception cref="ArgumentException">The list is empty, or a label is empty or repeated.</exception>
    public ModelConfig WithLabels(IReadOnlyList<string> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (labels.Count == 0)
            throw new ArgumentException("WithLabels: give at least one label (num_labels must be positive).", nameof(labels));
        var id2label = new Dictionary<int, string>();
        var label2id = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < labels.Count; i++)
        {
            if (string.IsNullOrEmpty(labels[i]))
                throw new ArgumentException($"WithLabels: label {i} is empty; every class needs a name.", nameof(labels));
            if (!label2id.TryAdd(labels[i], i))
                throw new ArgumentException($"WithLabels: label '{labels[i]}' is given twice (ids {label2id[labels[i]]} and {i}); labels must be distinct.", nameof(labels));
            id2label[i] = labels[i];
        }

        return this with { Id2Label = new ReadOnlyDictionary<int, string>(id2label), Label2Id = new ReadOnlyDictionary<string, int>(label2id) };
    }

    /// <summary>A copy of this config with <c>problem_type</c> set (one of <see cref="ProblemTypes"/>, or null to decide from the labels).</summary>
    /// <param name="problemType">The problem type.</param>
    /// <returns>The new config.</returns>
    /// <exception cref="ArgumentException">The name is not one of <see cref="ProblemTypes"/>.</exception>
    public ModelConfig WithProblemType(string? problemType)
    {
        if (problemType is not null && !ProblemTypes.Contains(problemType))
            throw new ArgumentException($"problem_type '{problemType}' is not one of: {string.Join(", ", ProblemTypes)}.", nameof(problemType));
        return this with { ProblemType = problemType };
    }

    private static ReadOnlyDictionary<int, string> DefaultLabels(int count)
    {
        var labels = new Dictionary<int, string>();
        for (int i = 0; i < count; i++)
            labels[i] = "LABEL_" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return new ReadOnlyDictionary<int, string>(labels);
    }

    private static ReadOnlyDictionary<string, int> Invert(IReadOnlyDictionary<int, string> id2label)
    {
        var inverse = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (id, label) in id2label)
            inverse[label] = id;
        return new ReadOnlyDictionary<string, int>(inverse);
    }

    /// <summary>Reads <c>model_type</c>, or infers it from <c>architectures</c> (e.g. <c>BertForMaskedLM</c> → bert).</summary>
    private static string DetectModelType(string json, string source)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw new ModelConfigException($"{source}: not valid JSON ({e.Message}).", e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new ModelConfigException($"{source}: config.json must be a JSON object, found {root.ValueKind}.");
            if (root.TryGetProperty("model_type", out var mt) && mt.ValueKind != JsonValueKind.Null)
            {
                if (mt.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(mt.GetString()))
                    throw new ModelConfigException($"{source}: 'model_type' must be a non-empty string.");
                return mt.GetString()!;
            }
            if (root.TryGetProperty("architectures", out var archs) && archs.ValueKind == JsonValueKind.Array)
            {
                foreach (var arch in archs.EnumerateArray())
                {
                    if (arch.ValueKind != JsonValueKind.String)
                        continue;
                    var type = ModelTypeFromArchitecture(arch.GetString()!);
                    if (type is not null)
                        return type;
                }
            }
            throw new ModelConfigException(
                $"{source}: no 'model_type' key and no recognizable 'architectures' entry; add \"model_type\" (one of: {string.Join(", ", SupportedModelTypes)}).");
        }
    }

    private static string? ModelTypeFromArchitecture(string architecture)
    {
        // Longest prefixes first: "DistilBert..." must not be read as "Bert...".
        if (architecture.StartsWith("DistilBert", StringComparison.Ordinal)) return "distilbert";
        if (architecture.StartsWith("Roberta", StringComparison.Ordinal)) return "roberta";
        if (architecture.StartsWith("Bert", StringComparison.Ordinal)) return "bert";
        if (architecture.StartsWith("GPT2", StringComparison.Ordinal)) return "gpt2";
        if (architecture.StartsWith("Llama", StringComparison.Ordinal)) return "llama";
        if (architecture.StartsWith("Bart", StringComparison.Ordinal)) return "bart";
        if (architecture.StartsWith("Marian", StringComparison.Ordinal)) return "marian";
        if (architecture.StartsWith("MBart", StringComparison.Ordinal)) return "mbart";
        if (architecture.StartsWith("T5", StringComparison.Ordinal)) return "t5";
        if (architecture.StartsWith("Mistral", StringComparison.Ordinal)) return "mistral";
        if (architecture.StartsWith("Qwen2", StringComparison.Ordinal)) return "qwen2";
        if (architecture.StartsWith("Phi3", StringComparison.Ordinal)) return "phi3";
        return null;
    }

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        AllowDuplicateProperties = false,
        MaxDepth = 64,
    };

    private static T Deserialize<T>(string json, string source) where T : ConfigJson
    {
        try
        {
            return JsonSerializer.Deserialize<T>(json, JsonOptions)
                ?? throw new ModelConfigException($"{source}: config.json is 'null'.");
        }
        catch (JsonException e)
        {
            var key = string.IsNullOrEmpty(e.Path) ? "" : $" at '{e.Path.TrimStart('$', '.')}'";
            throw new ModelConfigException($"{source}: wrong value{key} ({e.Message}).", e);
        }
        catch (InvalidOperationException e)
        {
            throw new ModelConfigException($"{source}: {e.Message}", e);
        }
    }

    /// <summary>Copies the common PretrainedConfig keys; <paramref name="defaults"/> carries the per-architecture values.</summary>
    private protected static CommonValues ResolveCommon(ConfigJson dto, string source, CommonDefaults defaults)
    {
        var warnings = new List<string>();
        if (dto.AutoMap is { ValueKind: not JsonValueKind.Null })
            warnings.Add($"{source}: 'auto_map' names remote code; it is ignored (Sharpformer never runs code from a checkpoint).");
        if (dto.Extra is not null && dto.Extra.ContainsKey("trust_remote_code"))
            warnings.Add($"{source}: 'trust_remote_code' is ignored (Sharpformer never runs code from a checkpoint).");

        var id2label = new Dictionary<int, string>();
        if (dto.Id2Label is not null)
        {
            foreach (var (key, label) in dto.Id2Label)
            {
                if (!int.TryParse(key, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id))
                    throw new ModelConfigException($"{source}: 'id2label' key '{key}' is not a class index; keys must be \"0\", \"1\", ...");
                id2label[id] = label;
            }

            for (int i = 0; i < id2label.Count; i++)
            {
                if (!id2label.ContainsKey(i))
                    throw new ModelConfigException($"{source}: 'id2label' has {id2label.Count} entries but no key \"{i}\"; keys must be \"0\" … \"{id2label.Count - 1}\", one per class.");
            }

            if (dto.NumLabels is int declared && declared != id2label.Count)
                throw new ModelConfigException($"{source}: 'num_labels' is {declared} but 'id2label' has {id2label.Count} entries; they must agree (remove one of them, or fix the other).");
        }
        else
        {
            int count = dto.NumLabels ?? 2;
            if (count <= 0)
                throw new ModelConfigException($"{source}: 'num_labels' must be positive, got {count}.");
            foreach (var (id, label) in DefaultLabels(count))
                id2label[id] = label;
        }

        var label2id = Invert(id2label);
        if (label2id.Count != id2label.Count)
            throw new ModelConfigException($"{source}: 'id2label' names a label twice; each class needs its own label.");
        if (dto.Label2Id is not null)
        {
            foreach (var (label, id) in dto.Label2Id)
            {
                if (!id2label.TryGetValue(id, out var named) || named != label)
                    throw new ModelConfigException($"{source}: 'label2id' maps '{label}' to {id}, but 'id2label' {(id2label.TryGetValue(id, out var other) ? $"maps {id} to '{other}'" : $"has no class {id}")}; label2id must be the inverse of id2label.");
            }

            if (dto.Label2Id.Count != id2label.Count)
                throw new ModelConfigException($"{source}: 'label2id' has {dto.Label2Id.Count} entries but 'id2label' has {id2label.Count}; label2id must be the inverse of id2label.");
        }

        if (dto.ProblemType is not null && !ProblemTypes.Contains(dto.ProblemType))
            throw new ModelConfigException($"{source}: 'problem_type' is '{dto.ProblemType}'; use one of: {string.Join(", ", ProblemTypes)}, or leave it out to decide from the labels.");

        var extra = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        if (dto.Extra is not null)
        {
            foreach (var (key, value) in dto.Extra)
                extra[key] = value.Clone();
        }

        return new CommonValues(
            dto.Architectures is null ? [] : [.. dto.Architectures],
            dto.TorchDtype ?? dto.Dtype,
            dto.BosTokenId ?? defaults.BosTokenId,
            dto.EosTokenId is null ? (defaults.EosTokenId is { } eos ? [eos] : []) : [.. dto.EosTokenId],
            dto.PadTokenId ?? defaults.PadTokenId,
            dto.TieWordEmbeddings ?? defaults.TieWordEmbeddings,
            new ReadOnlyDictionary<int, string>(id2label),
            label2id,
            dto.ProblemType,
            new ReadOnlyDictionary<string, JsonElement>(extra),
            warnings);
    }

    /// <summary>Per-architecture defaults of the common keys (HF's PretrainedConfig subclasses differ here).</summary>
    private protected readonly record struct CommonDefaults(int? BosTokenId, int? EosTokenId, int? PadTokenId, bool TieWordEmbeddings);

    /// <summary>The common keys after defaults, ready to copy into a record.</summary>
    private protected sealed record CommonValues(
        IReadOnlyList<string> Architectures,
        string? TorchDtype,
        int? BosTokenId,
        IReadOnlyList<int> EosTokenIds,
        int? PadTokenId,
        bool TieWordEmbeddings,
        IReadOnlyDictionary<int, string> Id2Label,
        IReadOnlyDictionary<string, int> Label2Id,
        string? ProblemType,
        IReadOnlyDictionary<string, JsonElement> ExtraKeys,
        IReadOnlyList<string> Warnings);
}
