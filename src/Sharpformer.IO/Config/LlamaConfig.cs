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

    /// <summary><c>sliding_window</c> (mistral, qwen2, phi3): keys further back than this many positions are not attended.</summary>
    [JsonPropertyName("sliding_window")] public int? SlidingWindow { get; set; }

    /// <summary><c>use_sliding_window</c> (qwen2): whether <c>sliding_window</c> applies at all.</summary>
    [JsonPropertyName("use_sliding_window")] public bool? UseSlidingWindow { get; set; }

    /// <summary><c>max_window_layers</c> (qwen2): layers from this index on use the sliding window.</summary>
    [JsonPropertyName("max_window_layers")] public int? MaxWindowLayers { get; set; }

    /// <summary><c>original_max_position_embeddings</c> (phi3, top level): the pre-training context of longrope scaling.</summary>
    [JsonPropertyName("original_max_position_embeddings")] public int? OriginalMaxPositionEmbeddings { get; set; }

    /// <summary><c>partial_rotary_factor</c> (phi3): the fraction of each head that is rotated.</summary>
    [JsonPropertyName("partial_rotary_factor")] public double? PartialRotaryFactor { get; set; }
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

    /// <summary>A list-valued parameter such as longrope's <c>short_factor</c> / <c>long_factor</c>, or null when absent.</summary>
    /// <param name="key">The key in <c>rope_scaling</c>.</param>
    /// <returns>The numbers, or null.</returns>
    /// <exception cref="FormatException">The value is not a list of numbers.</exception>
    public double[]? GetList(string key)
    {
        if (!Parameters.TryGetValue(key, out var value) || value.ValueKind == JsonValueKind.Null)
            return null;
        if (value.ValueKind != JsonValueKind.Array)
            throw new FormatException($"rope_scaling.{key} must be a list of numbers, found {value.ValueKind}.");
        var list = new List<double>();
        foreach (var item in value.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number)
                throw new FormatException($"rope_scaling.{key} must be a list of numbers; an item is {item.ValueKind}.");
            list.Add(item.GetDouble());
        }
        return [.. list];
    }
}

/// <summary>
/// A validated config of a Llama-shaped decoder with transformers' defaults resolved: <c>llama</c> and its close kin
/// <c>mistral</c> (sliding window), <c>qwen2</c> (q/k/v biases, optional sliding window on the upper layers) and
/// <c>phi3</c> (fused qkv/gate_up projections), which share every other key. <see cref="ModelType"/> says which.
/// </summary>
public sealed record LlamaConfig : ModelConfig
{
    /// <summary>The <c>model_type</c> values this record describes.</summary>
    public static IReadOnlyList<string> Families { get; } = ["llama", "mistral", "phi3", "qwen2"];

    /// <inheritdoc/>
    public override string ModelType => Family;

    /// <summary>Which member of the family: <c>llama</c> (default), <c>mistral</c>, <c>qwen2</c> or <c>phi3</c>.</summary>
    public string Family { get; init; } = "llama";

    /// <summary>
    /// The sliding attention window W (mistral, qwen2 with <c>use_sliding_window</c>, phi3): query i attends to keys j
    /// with i − W &lt; j ≤ i, on layers from <see cref="MaxWindowLayers"/> on; null means full causal attention.
    /// </summary>
    public int? SlidingWindow { get; init; }

    /// <summary>The first layer the sliding window applies to (qwen2's <c>max_window_layers</c>; 0 for the others).</summary>
    public int MaxWindowLayers { get; init; }

    /// <summary>Whether q_proj, k_proj and v_proj carry biases (qwen2 always; llama with <c>attention_bias</c>).</summary>
    public bool QkvBias => Family == "qwen2" || AttentionBias;

    /// <summary>Whether o_proj carries a bias (llama with <c>attention_bias</c>; never in qwen2, mistral, phi3).</summary>
    public bool OutputBias => Family is "llama" && AttentionBias;

    /// <summary>Whether the checkpoint fuses q/k/v into <c>qkv_proj</c> and gate/up into <c>gate_up_proj</c> (phi3).</summary>
    public bool FusedProjections => Family == "phi3";

    /// <summary>phi3's top-level <c>original_max_position_embeddings</c> (longrope's pre-training context), or null.</summary>
    public int? OriginalMaxPositionEmbeddings { get; init; }

    /// <summary>
    /// llama.cpp's per-frequency rope divisors (the <c>rope_freqs.weight</c> tensor of a GGUF file: θ_i / f_i, how its
    /// converter stores Llama 3.1's rope scaling), D/2 values; null for configs from config.json.
    /// </summary>
    public IReadOnlyList<float>? RopeFrequencyFactors { get; init; }

    /// <summary>The window that applies to layer <paramref name="layer"/>, or null for full causal attention.</summary>
    /// <param name="layer">The layer index.</param>
    /// <returns>W or null.</returns>
    public int? WindowOf(int layer) => SlidingWindow is { } w && layer >= MaxWindowLayers ? w : null;

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
    /// <param name="dto">The parsed file.</param>
    /// <param name="source">Names the file in errors.</param>
    /// <param name="family">The <c>model_type</c>: llama, mistral, qwen2 or phi3 (each has its own transformers defaults).</param>
    /// <exception cref="ModelConfigException">A value is out of range or inconsistent.</exception>
    public static LlamaConfig FromJson(LlamaConfigJson dto, string source = "config.json", string family = "llama")
    {
        ArgumentNullException.ThrowIfNull(dto);
        if (!Families.Contains(family))
            throw new ModelConfigException($"{source}: model_type '{family}' is not one of the Llama family: {string.Join(", ", Families)}.");
        var d = FamilyDefaults.Of(family);
        var c = ResolveCommon(dto, source, new CommonDefaults(d.Bos, d.Eos, d.Pad, false));
        var hidden = Positive(source, "hidden_size", dto.HiddenSize ?? d.Hidden);
        var heads = Positive(source, "num_attention_heads", dto.NumAttentionHeads ?? 32);
        var kvHeads = Positive(source, "num_key_value_heads", dto.NumKeyValueHeads ?? d.KvHeads ?? heads);
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
        if (dto.PartialRotaryFactor is { } partial && partial != 1.0)
            throw new ModelConfigException($"{source}: 'partial_rotary_factor' is {partial}; only fully rotary heads (1.0) are supported.");
        int? window = null;
        int maxWindowLayers = 0;
        if (family == "qwen2")
        {
            maxWindowLayers = dto.MaxWindowLayers ?? 28;
            if (maxWindowLayers < 0)
                throw new ModelConfigException($"{source}: 'max_window_layers' must be ≥ 0, got {maxWindowLayers}.");
            window = dto.UseSlidingWindow == true ? dto.SlidingWindow ?? 4096 : null;
        }
        else if (family is "mistral" or "phi3")
        {
            window = dto.SlidingWindow;
        }
        if (window is { } w && w <= 0)
            throw new ModelConfigException($"{source}: 'sliding_window' must be positive (or null for full attention), got {w}.");

        return new LlamaConfig
        {
            Family = family,
            SlidingWindow = window,
            MaxWindowLayers = maxWindowLayers,
            OriginalMaxPositionEmbeddings = dto.OriginalMaxPositionEmbeddings,
            VocabSize = Positive(source, "vocab_size", dto.VocabSize ?? d.Vocab),
            HiddenSize = hidden,
            IntermediateSize = Positive(source, "intermediate_size", dto.IntermediateSize ?? d.Intermediate),
            NumHiddenLayers = Positive(source, "num_hidden_layers", dto.NumHiddenLayers ?? 32),
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = headDim,
            HiddenAct = Activation(source, "hidden_act", dto.HiddenAct ?? "silu"),
            MaxPositionEmbeddings = Positive(source, "max_position_embeddings", dto.MaxPositionEmbeddings ?? d.MaxPositions),
            InitializerRange = PositiveReal(source, "initializer_range", dto.InitializerRange ?? 0.02),
            RmsNormEps = PositiveReal(source, "rms_norm_eps", dto.RmsNormEps ?? d.RmsEps),
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

    /// <summary>transformers' per-family constructor defaults (LlamaConfig, MistralConfig, Qwen2Config, Phi3Config).</summary>
    private sealed record FamilyDefaults(int Vocab, int Hidden, int Intermediate, int? KvHeads, int MaxPositions, double RmsEps, int? Bos, int? Eos, int? Pad)
    {
        public static FamilyDefaults Of(string family) => family switch
        {
            "mistral" => new(32000, 4096, 14336, 8, 4096 * 32, 1e-6, 1, 2, null),
            "qwen2" => new(151936, 4096, 22016, 32, 32768, 1e-6, null, null, null),
            "phi3" => new(32064, 3072, 8192, null, 4096, 1e-5, 1, 32000, 32000),
            _ => new(32000, 4096, 11008, null, 2048, 1e-6, 1, 2, null),
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
        // Phi-3's first releases spelled longrope "su" (transformers maps it the same way).
        if (type == "su")
            type = "longrope";
        if (!RopeScaling.KnownTypes.Contains(type))
            throw new ModelConfigException(
                $"{source}: 'rope_scaling.rope_type' is '{type}'; use one of: {string.Join(", ", RopeScaling.KnownTypes)}.");

        var factor = GetDouble(parameters, "factor", source);
        if (type is not ("default" or "longrope") && (factor is null || factor < 1.0))
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
