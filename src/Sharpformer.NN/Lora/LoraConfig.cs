using System.Text.Json;
using System.Text.Json.Nodes;

namespace Sharpformer.NN.Lora;

/// <summary>
/// PEFT's LoraConfig, the content of <c>adapter_config.json</c>: which Linear layers get adapters
/// (<see cref="TargetModules"/> as name suffixes, or <see cref="TargetModulesRegex"/> matched against the whole module
/// path), the rank <see cref="R"/>, <see cref="LoraAlpha"/>, <see cref="LoraDropout"/>, and the modules trained and saved
/// whole (<see cref="ModulesToSave"/>; a classification <see cref="TaskType"/> adds the head as PEFT does). Defaults are
/// PEFT's: r 8, alpha 8, dropout 0, bias "none".
/// </summary>
public sealed record LoraConfig
{
    /// <summary>The file name PEFT gives the config inside an adapter folder.</summary>
    public const string FileName = "adapter_config.json";

    /// <summary>PEFT's shorthand for every Linear layer except the output layer (<c>lm_head</c>) and the modules to save.</summary>
    public const string AllLinear = "all-linear";

    /// <summary>The task types PEFT names (<c>task_type</c>); null is also allowed.</summary>
    public static IReadOnlyList<string> TaskTypes { get; } = ["SEQ_CLS", "TOKEN_CLS", "QUESTION_ANS", "CAUSAL_LM", "SEQ_2_SEQ_LM", "FEATURE_EXTRACTION"];

    /// <summary>r: the rank of each update B·A (positive).</summary>
    public int R { get; init; } = 8;

    /// <summary>lora_alpha: the numerator of the scaling (alpha / r).</summary>
    public float LoraAlpha { get; init; } = 8f;

    /// <summary>lora_dropout: the dropout probability on each adapter's input, in [0, 1).</summary>
    public float LoraDropout { get; init; }

    /// <summary>
    /// target_modules as a list: a module is adapted when its path equals a name or ends with "." + name (PEFT's rule),
    /// e.g. ["query", "value"] or ["c_attn"]; the single name <see cref="AllLinear"/> takes every Linear layer but the
    /// output layer. Set this or <see cref="TargetModulesRegex"/>, not both.
    /// </summary>
    public IReadOnlyList<string>? TargetModules { get; init; }

    /// <summary>target_modules as a string: a regular expression that must match the whole module path (Python's re.fullmatch).</summary>
    public string? TargetModulesRegex { get; init; }

    /// <summary>exclude_modules: names (same suffix rule as <see cref="TargetModules"/>) never adapted; null for none.</summary>
    public IReadOnlyList<string>? ExcludeModules { get; init; }

    /// <summary>
    /// modules_to_save: modules trained in full and stored in the adapter file, matched as PEFT does (the module path
    /// ends with the name, so "classifier" also takes DistilBERT's pre_classifier). SEQ_CLS and TOKEN_CLS add
    /// "classifier" and "score", QUESTION_ANS adds "qa_outputs" (<see cref="Resolved"/>).
    /// </summary>
    public IReadOnlyList<string>? ModulesToSave { get; init; }

    /// <summary>use_rslora: scale by alpha / √r instead of alpha / r.</summary>
    public bool UseRslora { get; init; }

    /// <summary>task_type: one of <see cref="TaskTypes"/>, or null.</summary>
    public string? TaskType { get; init; }

    /// <summary>fan_in_fan_out: true when the targeted layers store their weight [In, Out] (GPT-2's Conv1D); set by <see cref="LoraModel.Apply"/>.</summary>
    public bool FanInFanOut { get; init; }

    /// <summary>base_model_name_or_path: the model the adapter was trained on (a Hub id or a folder), written on save.</summary>
    public string? BaseModelNameOrPath { get; init; }

    /// <summary>inference_mode: PEFT writes true into saved adapters.</summary>
    public bool InferenceMode { get; init; }

    /// <summary>The factor on B·A: <see cref="LoraAlpha"/> / <see cref="R"/>, or / √r with <see cref="UseRslora"/>.</summary>
    public float Scaling => UseRslora ? LoraAlpha / MathF.Sqrt(R) : LoraAlpha / R;

    /// <summary>
    /// This config with the modules PEFT adds for the task (<see cref="ModulesToSave"/>), duplicates removed in order.
    /// </summary>
    /// <returns>The resolved config.</returns>
    public LoraConfig Resolved()
    {
        var names = new List<string>(ModulesToSave ?? []);
        string[] added = TaskType switch
        {
            "SEQ_CLS" or "TOKEN_CLS" => ["classifier", "score"],
            "QUESTION_ANS" => ["qa_outputs"],
            _ => [],
        };
        foreach (var name in added)
        {
            if (!names.Contains(name, StringComparer.Ordinal))
            {
                names.Add(name);
            }
        }

        return this with { ModulesToSave = names.Count == 0 ? null : names.Distinct(StringComparer.Ordinal).ToArray() };
    }

    /// <summary>Checks every field and says which one is wrong and how to fix it.</summary>
    /// <param name="source">Where the config came from (named in messages).</param>
    /// <exception cref="ArgumentException">A field is out of range or the target modules are missing or given twice.</exception>
    public void Validate(string source = "LoraConfig")
    {
        if (R <= 0)
        {
            throw new ArgumentException($"{source}: r must be a positive rank (PEFT uses 8 by default), got {R}.");
        }

        if (!float.IsFinite(LoraAlpha) || LoraAlpha <= 0f)
        {
            throw new ArgumentException($"{source}: lora_alpha must be positive and finite (the scaling is alpha / r), got {LoraAlpha}.");
        }

        if (!(LoraDropout >= 0f && LoraDropout < 1f))
        {
            throw new ArgumentException($"{source}: lora_dropout must be in [0, 1), got {LoraDropout}.");
        }

        bool hasList = TargetModules is { Count: > 0 };
        bool hasRegex = !string.IsNullOrEmpty(TargetModulesRegex);
        if (hasList == hasRegex)
        {
            throw new ArgumentException(hasList
                ? $"{source}: give target_modules either as a list of names or as one regular expression, not both."
                : $"{source}: target_modules is empty; name the Linear layers to adapt, e.g. [\"query\", \"value\"] for BERT or [\"c_attn\"] for GPT-2, or \"{AllLinear}\".");
        }

        if (hasList && TargetModules!.Any(string.IsNullOrWhiteSpace))
        {
            throw new ArgumentException($"{source}: target_modules holds an empty name; list module names such as \"query\".");
        }

        if (TaskType is not null && !TaskTypes.Contains(TaskType, StringComparer.Ordinal))
        {
            throw new ArgumentException($"{source}: task_type \"{TaskType}\" is not one of {string.Join(", ", TaskTypes)} (or null).");
        }

        if (ModulesToSave is not null && ModulesToSave.Any(string.IsNullOrWhiteSpace))
        {
            throw new ArgumentException($"{source}: modules_to_save holds an empty name; list module names such as \"classifier\".");
        }
    }

    /// <summary>The config as PEFT writes adapter_config.json (its keys, snake_case; fields PEFT has and this code leaves at their defaults included).</summary>
    /// <returns>The JSON object.</returns>
    public JsonObject ToJson()
    {
        JsonNode? targets = TargetModulesRegex is not null ? JsonValue.Create(TargetModulesRegex) : Strings(TargetModules);
        return new JsonObject
        {
            ["alpha_pattern"] = new JsonObject(),
            ["auto_mapping"] = null,
            ["base_model_name_or_path"] = BaseModelNameOrPath,
            ["bias"] = "none",
            ["exclude_modules"] = Strings(ExcludeModules),
            ["fan_in_fan_out"] = FanInFanOut,
            ["inference_mode"] = InferenceMode,
            ["init_lora_weights"] = true,
            ["layer_replication"] = null,
            ["layers_pattern"] = null,
            ["layers_to_transform"] = null,
            ["loftq_config"] = new JsonObject(),
            ["lora_alpha"] = LoraAlpha,
            ["lora_bias"] = false,
            ["lora_dropout"] = LoraDropout,
            ["megatron_config"] = null,
            ["megatron_core"] = "megatron.core",
            ["modules_to_save"] = Strings(ModulesToSave),
            ["peft_type"] = "LORA",
            ["r"] = R,
            ["rank_pattern"] = new JsonObject(),
            ["revision"] = null,
            ["target_modules"] = targets,
            ["task_type"] = TaskType,
            ["use_dora"] = false,
            ["use_rslora"] = UseRslora,
        };
    }

    /// <summary>Writes <see cref="FileName"/> into <paramref name="folder"/> (created when missing).</summary>
    /// <param name="folder">The adapter folder.</param>
    public void Save(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, FileName), ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>
    /// Reads an adapter_config.json (or the folder holding one). Options this code does not implement (DoRA, a bias
    /// other than "none", per-layer rank or alpha patterns, layers_to_transform, another peft_type) are refused with
    /// the key named, never ignored.
    /// </summary>
    /// <param name="folderOrFile">The adapter folder or its adapter_config.json.</param>
    /// <returns>The config.</returns>
    /// <exception cref="FileNotFoundException">There is no adapter_config.json.</exception>
    /// <exception cref="InvalidDataException">The file is not valid JSON, a key has the wrong type, or an unsupported option is set.</exception>
    public static LoraConfig Load(string folderOrFile)
    {
        ArgumentException.ThrowIfNullOrEmpty(folderOrFile);
        string path = Directory.Exists(folderOrFile) ? Path.Combine(folderOrFile, FileName) : folderOrFile;
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"LoRA adapter: {path} does not exist; an adapter folder holds {FileName} and adapter_model.safetensors (PEFT's save_pretrained writes both).", path);
        }

        JsonObject json;
        try
        {
            json = JsonNode.Parse(File.ReadAllText(path)) as JsonObject
                ?? throw new InvalidDataException($"{path}: the file must hold one JSON object.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({e.Message}).", e);
        }

        return FromJson(json, path);
    }

    /// <summary>Reads the config from adapter_config.json's object (see <see cref="Load"/>).</summary>
    /// <param name="json">The object.</param>
    /// <param name="source">The file, named in messages.</param>
    /// <returns>The config.</returns>
    /// <exception cref="InvalidDataException">A key has the wrong type or an unsupported option is set.</exception>
    public static LoraConfig FromJson(JsonObject json, string source)
    {
        ArgumentNullException.ThrowIfNull(json);
        string peftType = Text(json, "peft_type", source) ?? "LORA";
        if (peftType != "LORA")
        {
            throw new InvalidDataException($"{source}: peft_type is \"{peftType}\"; only LoRA adapters (\"LORA\") can be loaded.");
        }

        string bias = Text(json, "bias", source) ?? "none";
        if (bias != "none")
        {
            throw new InvalidDataException($"{source}: bias \"{bias}\" (trained biases) is not supported; only adapters saved with bias \"none\" load.");
        }

        if (json["use_dora"] is JsonValue dora && dora.GetValueKind() == JsonValueKind.True)
        {
            throw new InvalidDataException($"{source}: use_dora is true; DoRA adapters are not supported, only plain LoRA.");
        }

        foreach (var key in new[] { "rank_pattern", "alpha_pattern" })
        {
            if (json[key] is JsonObject pattern && pattern.Count > 0)
            {
                throw new InvalidDataException($"{source}: {key} gives per-layer values, which are not supported; every adapted layer must share r and lora_alpha.");
            }
        }

        foreach (var key in new[] { "layers_to_transform", "layer_replication" })
        {
            if (json[key] is not null)
            {
                throw new InvalidDataException($"{source}: {key} is set, which is not supported; adapt layers by target_modules only.");
            }
        }

        List<string>? targets = null;
        string? regex = null;
        switch (json["target_modules"])
        {
            case JsonArray array: targets = StringList(array, "target_modules", source); break;
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                string text = value.GetValue<string>();
                if (text == AllLinear) targets = [AllLinear];
                else regex = text;
                break;
            case null: break;
            default: throw new InvalidDataException($"{source}: target_modules must be a list of names or a regular expression string.");
        }

        var config = new LoraConfig
        {
            R = Int(json, "r", source) ?? 8,
            LoraAlpha = Float(json, "lora_alpha", source) ?? 8f,
            LoraDropout = Float(json, "lora_dropout", source) ?? 0f,
            TargetModules = targets,
            TargetModulesRegex = regex,
            ExcludeModules = json["exclude_modules"] switch
            {
                null => null,
                JsonArray array => StringList(array, "exclude_modules", source),
                _ => throw new InvalidDataException($"{source}: exclude_modules as a regular expression is not supported; give a list of names."),
            },
            ModulesToSave = json["modules_to_save"] is JsonArray save ? StringList(save, "modules_to_save", source) : null,
            UseRslora = Bool(json, "use_rslora", source),
            TaskType = Text(json, "task_type", source),
            FanInFanOut = Bool(json, "fan_in_fan_out", source),
            BaseModelNameOrPath = Text(json, "base_model_name_or_path", source),
            InferenceMode = Bool(json, "inference_mode", source),
        };
        try
        {
            config.Validate(source);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException(e.Message, e);
        }

        return config;
    }

    private static JsonArray? Strings(IReadOnlyList<string>? values) =>
        values is null ? null : new JsonArray(values.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray());

    private static List<string> StringList(JsonArray array, string key, string source)
    {
        var list = new List<string>();
        foreach (var item in array)
        {
            if (item is not JsonValue value || value.GetValueKind() != JsonValueKind.String)
            {
                throw new InvalidDataException($"{source}: {key} must list strings, found {item?.ToJsonString() ?? "null"}.");
            }

            list.Add(value.GetValue<string>());
        }

        return list;
    }

    private static string? Text(JsonObject json, string key, string source) => json[key] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        var other => throw new InvalidDataException($"{source}: {key} must be a string or null, found {other.ToJsonString()}."),
    };

    private static bool Bool(JsonObject json, string key, string source) => json[key] switch
    {
        null => false,
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
        var other => throw new InvalidDataException($"{source}: {key} must be true or false, found {other.ToJsonString()}."),
    };

    private static int? Int(JsonObject json, string key, string source) => json[key] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out int i) => i,
        var other => throw new InvalidDataException($"{source}: {key} must be an integer, found {other.ToJsonString()}."),
    };

    private static float? Float(JsonObject json, string key, string source) => json[key] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => (float)v.GetValue<double>(),
        var other => throw new InvalidDataException($"{source}: {key} must be a number, found {other.ToJsonString()}."),
    };
}
