using System.Text.Json;
using System.Text.Json.Serialization;
using static Sharpformer.IO.Config.ConfigValidation;

namespace Sharpformer.IO.Config;

/// <summary>config.json of a <c>t5</c> model (T5 v1.0, v1.1, flan-t5), keys exactly as transformers' T5Config writes them.</summary>
public sealed class T5ConfigJson : ConfigJson
{
    /// <summary><c>vocab_size</c>.</summary>
    [JsonPropertyName("vocab_size")] public int? VocabSize { get; set; }

    /// <summary><c>d_model</c>.</summary>
    [JsonPropertyName("d_model")] public int? DModel { get; set; }

    /// <summary><c>d_kv</c>: the width of one head (H·d_kv need not equal d_model).</summary>
    [JsonPropertyName("d_kv")] public int? DKv { get; set; }

    /// <summary><c>d_ff</c>.</summary>
    [JsonPropertyName("d_ff")] public int? DFf { get; set; }

    /// <summary><c>num_layers</c> (encoder).</summary>
    [JsonPropertyName("num_layers")] public int? NumLayers { get; set; }

    /// <summary><c>num_decoder_layers</c> (default: num_layers).</summary>
    [JsonPropertyName("num_decoder_layers")] public int? NumDecoderLayers { get; set; }

    /// <summary><c>num_heads</c>.</summary>
    [JsonPropertyName("num_heads")] public int? NumHeads { get; set; }

    /// <summary><c>relative_attention_num_buckets</c>.</summary>
    [JsonPropertyName("relative_attention_num_buckets")] public int? RelativeAttentionNumBuckets { get; set; }

    /// <summary><c>relative_attention_max_distance</c>.</summary>
    [JsonPropertyName("relative_attention_max_distance")] public int? RelativeAttentionMaxDistance { get; set; }

    /// <summary><c>dropout_rate</c>.</summary>
    [JsonPropertyName("dropout_rate")] public double? DropoutRate { get; set; }

    /// <summary><c>layer_norm_epsilon</c>.</summary>
    [JsonPropertyName("layer_norm_epsilon")] public double? LayerNormEpsilon { get; set; }

    /// <summary><c>initializer_factor</c>.</summary>
    [JsonPropertyName("initializer_factor")] public double? InitializerFactor { get; set; }

    /// <summary><c>feed_forward_proj</c>: <c>relu</c> (v1.0) or <c>gated-gelu</c> (v1.1, flan).</summary>
    [JsonPropertyName("feed_forward_proj")] public string? FeedForwardProj { get; set; }

    /// <summary><c>decoder_start_token_id</c>.</summary>
    [JsonPropertyName("decoder_start_token_id")] public int? DecoderStartTokenId { get; set; }

    /// <summary><c>task_specific_params</c>: per task, generation settings and the input <c>prefix</c>.</summary>
    [JsonPropertyName("task_specific_params")] public JsonElement? TaskSpecificParams { get; set; }
}

/// <summary>
/// A validated <c>t5</c> config. <see cref="ModelConfig.HiddenSize"/> is <c>d_model</c>,
/// <see cref="ModelConfig.NumHiddenLayers"/> <c>num_layers</c>, <see cref="ModelConfig.NumAttentionHeads"/>
/// <c>num_heads</c> and <see cref="ModelConfig.IntermediateSize"/> <c>d_ff</c>. T5 has no position table:
/// <see cref="ModelConfig.MaxPositionEmbeddings"/> is <see cref="int.MaxValue"/>.
/// </summary>
public sealed record T5Config : ModelConfig
{
    /// <inheritdoc/>
    public override string ModelType => "t5";

    /// <summary><c>d_kv</c>, the width of one head.</summary>
    public int DKv { get; init; }

    /// <summary><c>num_decoder_layers</c>.</summary>
    public int NumDecoderLayers { get; init; }

    /// <summary><c>relative_attention_num_buckets</c> (default 32).</summary>
    public int RelativeAttentionNumBuckets { get; init; }

    /// <summary><c>relative_attention_max_distance</c> (default 128).</summary>
    public int RelativeAttentionMaxDistance { get; init; }

    /// <summary><c>dropout_rate</c> (default 0.1).</summary>
    public double DropoutRate { get; init; }

    /// <summary><c>layer_norm_epsilon</c> (default 1e-6).</summary>
    public double LayerNormEpsilon { get; init; }

    /// <summary><c>initializer_factor</c> (default 1).</summary>
    public double InitializerFactor { get; init; }

    /// <summary>The activation of the feed-forward block (<c>relu</c>, or <c>gelu_new</c> for <c>gated-gelu</c>).</summary>
    public string DenseActivation { get; init; } = "relu";

    /// <summary>True for the gated feed-forward of v1.1/flan (<c>wi_0</c>, <c>wi_1</c>).</summary>
    public bool IsGatedActivation { get; init; }

    /// <summary><c>decoder_start_token_id</c> (the pad token, 0).</summary>
    public int DecoderStartTokenId { get; init; }

    /// <summary>The input prefix of each task in <c>task_specific_params</c> ("summarization" → "summarize: ").</summary>
    public IReadOnlyDictionary<string, string> TaskPrefixes { get; init; } = new Dictionary<string, string>();

    /// <summary>Validates <paramref name="dto"/>; <paramref name="source"/> names the file in errors.</summary>
    /// <exception cref="ModelConfigException">A value is out of range or <c>feed_forward_proj</c> is malformed.</exception>
    public static T5Config FromJson(T5ConfigJson dto, string source = "config.json")
    {
        ArgumentNullException.ThrowIfNull(dto);
        // T5Config: pad 0, eos 1, no bos; tie_word_embeddings true (v1.0) unless the file says false (v1.1, flan).
        var c = ResolveCommon(dto, source, new CommonDefaults(null, 1, 0, true));
        var projection = dto.FeedForwardProj ?? "relu";
        var parts = projection.Split('-');
        var gated = parts.Length == 2 && parts[0] == "gated";
        if (!(parts.Length == 1 || gated))
            throw new ModelConfigException($"{source}: 'feed_forward_proj' is '{projection}'; use an activation name ('relu') or 'gated-' and one ('gated-gelu').");
        var activation = parts[^1] == "gelu" && gated ? "gelu_new" : parts[^1];
        var buckets = Positive(source, "relative_attention_num_buckets", dto.RelativeAttentionNumBuckets ?? 32);
        if (buckets < 4)
            throw new ModelConfigException($"{source}: 'relative_attention_num_buckets' must be at least 4 (half for exact offsets, half logarithmic, in each direction), got {buckets}.");
        var prefixes = new Dictionary<string, string>(StringComparer.Ordinal);
        if (dto.TaskSpecificParams is { ValueKind: JsonValueKind.Object } tasks)
        {
            foreach (var task in tasks.EnumerateObject())
            {
                if (task.Value.ValueKind == JsonValueKind.Object && task.Value.TryGetProperty("prefix", out var prefix) && prefix.ValueKind == JsonValueKind.String)
                    prefixes[task.Name] = prefix.GetString()!;
            }
        }

        var layers = Positive(source, "num_layers", dto.NumLayers ?? 6);
        var pad = c.PadTokenId ?? 0;
        return new T5Config
        {
            VocabSize = Positive(source, "vocab_size", dto.VocabSize ?? 32128),
            MaxPositionEmbeddings = int.MaxValue,
            HiddenSize = Positive(source, "d_model", dto.DModel ?? 512),
            DKv = Positive(source, "d_kv", dto.DKv ?? 64),
            IntermediateSize = Positive(source, "d_ff", dto.DFf ?? 2048),
            NumHiddenLayers = layers,
            NumDecoderLayers = Positive(source, "num_decoder_layers", dto.NumDecoderLayers ?? layers),
            NumAttentionHeads = Positive(source, "num_heads", dto.NumHeads ?? 8),
            RelativeAttentionNumBuckets = buckets,
            RelativeAttentionMaxDistance = Positive(source, "relative_attention_max_distance", dto.RelativeAttentionMaxDistance ?? 128),
            DropoutRate = Probability(source, "dropout_rate", dto.DropoutRate ?? 0.1),
            LayerNormEpsilon = PositiveReal(source, "layer_norm_epsilon", dto.LayerNormEpsilon ?? 1e-6),
            InitializerFactor = PositiveReal(source, "initializer_factor", dto.InitializerFactor ?? 1.0),
            DenseActivation = Activation(source, "feed_forward_proj", activation),
            IsGatedActivation = gated,
            DecoderStartTokenId = dto.DecoderStartTokenId ?? pad,
            TaskPrefixes = prefixes,
            Architectures = c.Architectures,
            TorchDtype = c.TorchDtype,
            BosTokenId = c.BosTokenId,
            EosTokenIds = c.EosTokenIds,
            PadTokenId = pad,
            TieWordEmbeddings = c.TieWordEmbeddings,
            Id2Label = c.Id2Label,
            Label2Id = c.Label2Id,
            ProblemType = c.ProblemType,
            ExtraKeys = c.ExtraKeys,
            Warnings = c.Warnings,
        };
    }
}
