using System.Text.Json;
using System.Text.Json.Serialization;
using static Sharpformer.IO.Config.ConfigValidation;

namespace Sharpformer.IO.Config;

/// <summary>config.json of a <c>llama</c> model, keys exactly as transformers' LlamaConfig writes them.</summary>
public sealed class LlamaConfigJson : ConfigJson
{
    /// <summary><c>vocab_size</c>.</summary>
    [JsonPropertyName("vocab_size")] public int? VocabSize { get; set; }

    /// <summary><c>hidden_size</c>.</summary>
    [JsonPropertyName("hidden_size")] public int? HiddenSize { get; set; }

    /// <summary><c>intermediate_size</c>.</summary>
    [JsonPropertyName("intermediate_size")] public int? IntermediateSize { get; set; }

    /// <summary><c>num_hidden_layers</c>.</summary>
    [JsonPropertyName("num_hidden_layers")] public int? NumHiddenLayers { get; set; }

    /// <summary><c>num_attention_heads</c>.</summary>
    [JsonPropertyName("num_attention_heads")] public int? NumAttentionHeads { get; set; }

    /// <summary><c>num_key_value_heads</c>: null means as many as <c>num_attention_heads</c> (no grouping).</summary>
    [JsonPropertyName("num_key_value_heads")] public int? NumKeyValueHeads { get; set; }

    /// <summary><c>head_dim</c>: null means <c>hidden_size / num_attention_heads</c>.</summary>
    [JsonPropertyName("head_dim")] public int? HeadDim { get; set; }

    /// <summary><c>hidden_act</c>.</summary>
    [JsonPropertyName("hidden_act")] public string? HiddenAct { get; set; }

    /// <summary><c>max_position_embeddings</c>.</summary>
    [JsonPropertyName("max_position_embeddings")] public int? MaxPositionEmbeddings { get; set; }

    /// <summary><c>initializer_range</c>.</summary>
    [JsonPropertyName("initializer_range")] public double? InitializerRange { get; set; }

    /// <summary><c>rms_norm_eps</c>.</summary>
    [JsonPropertyName("rms_norm_eps")] public double? RmsNormEps { get; set; }

    /// <summary><c>use_cache</c>.</summary>
    [JsonPropertyName("use_cache")] public bool? UseCache { get; set; }

    /// <summary><c>pretraining_tp</c>.</summary>
    [JsonPropertyName("pretraining_tp")] public int? PretrainingTp { get; set; }

    /// <summary><c>rope_theta</c>.</summary>
    [JsonPropertyName("rope_theta")] public double? RopeTheta { get; set; }

    /// <summary><c>rope_scaling</c>: null, or an object with <c>rope_type</c> (legacy <c>type</c>) and its parameters.</summary>
    [JsonPropertyName("rope_scaling")] public IDictionary<string, JsonElement>? RopeScaling { get; set; }

    /// <summary><c>attention_bias</c>.</summary>
    [JsonPropertyName("attention_bias")] public bool? AttentionBias { get; set; }

    /// <summary><c>attention_dropout</c>.</summary>
    [JsonPropertyName("attention_dropout")] public double? AttentionDropout { get; set; }

    /// <summary><c>mlp_bias</c>.</summary>
    [JsonPropertyName("mlp_bias")] public bool? MlpBias { get; set; }
}

/// <summary>
/// RoPE scaling parameters (<c>rope_scaling</c>). <see cref="RopeType"/> is one of default, linear, dynamic, yarn,
/// longrope, llama3; the other fields are null where the file leaves them out.
/// </summary>
/// <param name="RopeType"><c>rope_type</c> (or the legacy <c>type</c> key).</param>
/// <param name="Factor"><c>factor</c>: context extension factor (≥ 1).</param>
/// <param name="LowFreqFactor"><c>low_freq_factor</c> (llama3).</param>
/// <param name="HighFreqFactor"><c>high_freq_factor</c> (llama3).</param>
/// <param name="OriginalMaxPositionEmbeddings"><c>original_max_position_embeddings</c> (llama3, yarn, longrope).</param>
/// <param name="Parameters">Every key of the object, verbatim (yarn and longrope carry more).</param>
public sealed record RopeScaling(
    string RopeType,
    double? Factor,
    double? LowFreqFactor,
    double? HighFreqFactor,
    int? OriginalMaxPositionEmbeddings,
    IReadOnlyDictionary<string, JsonElement> Parameters)
{
    /// <summary>The rope types transformers' ROPE_INIT_FUNCTIONS knows.</summary>
    public static IReadOnlyList<string> KnownTypes { get; } = ["default", "linear", "dynamic", "yarn", "longrope", "llama3"];
}

/// <summary>A validated <c>llama</c> config with transformers' LlamaConfig defaults resolved.</summary>
public sealed record LlamaConfig : ModelConfig
{
    /// <inheritdoc/>
    public override string ModelType => "llama";

    /// <summary><c>num_key_value_heads</c>, resolved: equal to the attention heads when the file leaves it null.</summary>
    public int NumKeyValueHeads { get; init; }

    /// <summary><c>head_dim</c> D, resolved: <c>hidden_size / num_attention_heads</c> when the file leaves it null.</summary>
    public int HeadDim { get; init; }

    /// <summary><c>hidden_act</c> (default <c>silu</c>).</summary>
    public string HiddenAct { get; init; } = "silu";

    /// <summary><c>initializer_range</c> (default 0.02).</summary>
    public double InitializerRange { get; init; }

    /// <summary><c>rms_norm_eps</c> (default 1e-6).</summary>
    public double RmsNormEps { get; init; }

    /// <summary><c>use_cache</c> (default true).</summary>
    public bool UseCache { get; init; }

    /// <summary><c>pretraining_tp</c> (default 1).</summary>
    public int PretrainingTp { get; init; }

    /// <summary><c>rope_theta</c> (default 10000).</summary>
    public double RopeTheta { get; init; }

    /// <summary><c>rope_scaling</c>, or null for plain RoPE.</summary>
    public RopeScaling? RopeScaling { get; init; }

    /// <summary><c>attention_bias</c> (default false).</summary>
    public bool AttentionBias { get; init; }

    /// <summary><c>attention_dropout</c> (default 0).</summary>
    public double AttentionDropout { get; init; }

    /// <summary><c>mlp_bias</c> (default false).</summary>
    public bool MlpBias { get; init; }

    /// <summary>Validates <paramref name="dto"/>; <paramref name="source"/> names the file in errors.</summary>
    /// <exception cref="ModelConfigException">A value is out of range or inconsistent.</exception>
    public static LlamaConfig FromJson(LlamaConfigJson dto, string source = "config.json")
    {
        ArgumentNullException.ThrowIfNull(dto);
        // LlamaConfig: bos=1, eos=2, no pad token, untied embeddings.
        var c = ResolveCommon(dto, source, new CommonDefaults(1, 2, null, false));
        var hidden = Positive(source, "hidden_size", dto.HiddenSize ?? 4096);
        var heads = Positive(source, "num_attention_heads", dto.NumAttentionHeads ?? 32);
        var kvHeads = Positive(source, "num_key_value_heads", dto.NumKeyValueHeads ?? heads);
        if (heads % kvHeads != 0)
            throw new ModelConfigException(
                $"{source}: 'num_attention_heads' ({heads}) must be a multiple of 'num_key_value_heads' ({kvHeads}) so query heads group evenly.");
        int headDim;
        if (dto.HeadDim is { } explicitHeadDim)
        {
            headDim = Positive(source, "head_dim", explicitHeadDim);
        }
        else
        {
            DivisibleHeads(source, "hidden_size", hidden, "num_attention_heads", heads);
            headDim = hidden / heads;
        }
        if (headDim % 2 != 0)
            throw new ModelConfigException($"{source}: head_dim ({headDim}) must be even for rotary embeddings (RoPE rotates pairs).");

        return new LlamaConfig
        {
            VocabSize = Positive(source, "vocab_size", dto.VocabSize ?? 32000),
            HiddenSize = hidden,
            IntermediateSize = Positive(source, "intermediate_size", dto.IntermediateSize ?? 11008),
            NumHiddenLayers = Positive(source, "num_hidden_layers", dto.NumHiddenLayers ?? 32),
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = headDim,
            HiddenAct = Activation(source, "hidden_act", dto.HiddenAct ?? "silu"),
            MaxPositionEmbeddings = Positive(source, "max_position_embeddings", dto.MaxPositionEmbeddings ?? 2048),
            InitializerRange = PositiveReal(source, "initializer_range", dto.InitializerRange ?? 0.02),
            RmsNormEps = PositiveReal(source, "rms_norm_eps", dto.RmsNormEps ?? 1e-6),
            UseCache = dto.UseCache ?? true,
            PretrainingTp = Positive(source, "pretraining_tp", dto.PretrainingTp ?? 1),
            RopeTheta = PositiveReal(source, "rope_theta", dto.RopeTheta ?? 10000.0),
            RopeScaling = ParseRopeScaling(dto.RopeScaling, source),
            AttentionBias = dto.AttentionBias ?? false,
            AttentionDropout = Probability(source, "attention_dropout", dto.AttentionDropout ?? 0.0),
            MlpBias = dto.MlpBias ?? false,
            Architectures = c.Architectures,
            TorchDtype = c.TorchDtype,
            BosTokenId = c.BosTokenId,
            EosTokenIds = c.EosTokenIds,
            PadTokenId = c.PadTokenId,
            TieWordEmbeddings = c.TieWordEmbeddings,
            Id2Label = c.Id2Label,
            Label2Id = c.Label2Id,
            ProblemType = c.ProblemType,
            ExtraKeys = c.ExtraKeys,
            Warnings = c.Warnings,
        };
    }

    private static RopeScaling? ParseRopeScaling(IDictionary<string, JsonElement>? raw, string source)
    {
        if (raw is null)
            return null;
        var parameters = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var (key, value) in raw)
            parameters[key] = value.Clone();

        // transformers renamed "type" to "rope_type" and still accepts the old spelling.
        var type = GetString(parameters, "rope_type") ?? GetString(parameters, "type")
            ?? throw new ModelConfigException($"{source}: 'rope_scaling' needs a 'rope_type' (one of: {string.Join(", ", RopeScaling.KnownTypes)}).");
        if (!RopeScaling.KnownTypes.Contains(type))
            throw new ModelConfigException(
                $"{source}: 'rope_scaling.rope_type' is '{type}'; use one of: {string.Join(", ", RopeScaling.KnownTypes)}.");

        var factor = GetDouble(parameters, "factor", source);
        if (type != "default" && (factor is null || factor < 1.0))
            throw new ModelConfigException($"{source}: 'rope_scaling.factor' must be a number >= 1 for rope_type '{type}', got {factor?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "nothing"}.");
        var low = GetDouble(parameters, "low_freq_factor", source);
        var high = GetDouble(parameters, "high_freq_factor", source);
        var original = GetDouble(parameters, "original_max_position_embeddings", source);
        if (type == "llama3")
        {
            if (low is null || high is null || original is null)
                throw new ModelConfigException(
                    $"{source}: rope_type 'llama3' needs 'low_freq_factor', 'high_freq_factor' and 'original_max_position_embeddings' in 'rope_scaling'.");
            if (high <= low)
                throw new ModelConfigException($"{source}: 'rope_scaling.high_freq_factor' ({high}) must be greater than 'low_freq_factor' ({low}).");
        }
        if (original is { } o && (o < 1 || o != Math.Floor(o) || o > int.MaxValue))
            throw new ModelConfigException($"{source}: 'rope_scaling.original_max_position_embeddings' must be a positive integer, got {o}.");
        return new RopeScaling(type, factor, low, high, original is { } ov ? (int)ov : null, parameters);
    }

    private static string? GetString(Dictionary<string, JsonElement> d, string key) =>
        d.TryGetValue(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static double? GetDouble(Dictionary<string, JsonElement> d, string key, string source)
    {
        if (!d.TryGetValue(key, out var v) || v.ValueKind == JsonValueKind.Null)
            return null;
        if (v.ValueKind != JsonValueKind.Number)
            throw new ModelConfigException($"{source}: 'rope_scaling.{key}' must be a number, found {v.ValueKind}.");
        return v.GetDouble();
    }
}
