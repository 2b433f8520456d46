using System.Text.Json.Serialization;
using static Sharpformer.IO.Config.ConfigValidation;

namespace Sharpformer.IO.Config;

/// <summary>config.json of a <c>bert</c> model, keys exactly as transformers' BertConfig writes them.</summary>
public class BertConfigJson : ConfigJson
{
    /// <summary><c>vocab_size</c>.</summary>
    [JsonPropertyName("vocab_size")] public int? VocabSize { get; set; }

    /// <summary><c>hidden_size</c>.</summary>
    [JsonPropertyName("hidden_size")] public int? HiddenSize { get; set; }

    /// <summary><c>num_hidden_layers</c>.</summary>
    [JsonPropertyName("num_hidden_layers")] public int? NumHiddenLayers { get; set; }

    /// <summary><c>num_attention_heads</c>.</summary>
    [JsonPropertyName("num_attention_heads")] public int? NumAttentionHeads { get; set; }

    /// <summary><c>intermediate_size</c>.</summary>
    [JsonPropertyName("intermediate_size")] public int? IntermediateSize { get; set; }

    /// <summary><c>hidden_act</c>.</summary>
    [JsonPropertyName("hidden_act")] public string? HiddenAct { get; set; }

    /// <summary><c>hidden_dropout_prob</c>.</summary>
    [JsonPropertyName("hidden_dropout_prob")] public double? HiddenDropoutProb { get; set; }

    /// <summary><c>attention_probs_dropout_prob</c>.</summary>
    [JsonPropertyName("attention_probs_dropout_prob")] public double? AttentionProbsDropoutProb { get; set; }

    /// <summary><c>max_position_embeddings</c>.</summary>
    [JsonPropertyName("max_position_embeddings")] public int? MaxPositionEmbeddings { get; set; }

    /// <summary><c>type_vocab_size</c>.</summary>
    [JsonPropertyName("type_vocab_size")] public int? TypeVocabSize { get; set; }

    /// <summary><c>initializer_range</c>.</summary>
    [JsonPropertyName("initializer_range")] public double? InitializerRange { get; set; }

    /// <summary><c>layer_norm_eps</c>.</summary>
    [JsonPropertyName("layer_norm_eps")] public double? LayerNormEps { get; set; }

    /// <summary><c>position_embedding_type</c>: absolute, relative_key or relative_key_query.</summary>
    [JsonPropertyName("position_embedding_type")] public string? PositionEmbeddingType { get; set; }

    /// <summary><c>use_cache</c>.</summary>
    [JsonPropertyName("use_cache")] public bool? UseCache { get; set; }

    /// <summary><c>classifier_dropout</c>: null means "use hidden_dropout_prob".</summary>
    [JsonPropertyName("classifier_dropout")] public double? ClassifierDropout { get; set; }

    /// <summary><c>is_decoder</c>.</summary>
    [JsonPropertyName("is_decoder")] public bool? IsDecoder { get; set; }
}

/// <summary>config.json of a <c>roberta</c> model: BERT's keys, RoBERTa's defaults.</summary>
public sealed class RobertaConfigJson : BertConfigJson;

/// <summary>Validated settings shared by BERT-style encoders (<see cref="BertConfig"/>, <see cref="RobertaConfig"/>).</summary>
public abstract record BertStyleConfig : ModelConfig
{
    /// <summary><c>hidden_act</c> (default <c>gelu</c>, the exact erf GELU).</summary>
    public string HiddenAct { get; init; } = "gelu";

    /// <summary><c>hidden_dropout_prob</c> (default 0.1).</summary>
    public double HiddenDropoutProb { get; init; }

    /// <summary><c>attention_probs_dropout_prob</c> (default 0.1).</summary>
    public double AttentionProbsDropoutProb { get; init; }

    /// <summary><c>type_vocab_size</c>: number of token-type (segment) ids (BERT 2, RoBERTa checkpoints 1).</summary>
    public int TypeVocabSize { get; init; }

    /// <summary><c>initializer_range</c> (default 0.02).</summary>
    public double InitializerRange { get; init; }

    /// <summary><c>layer_norm_eps</c> (default 1e-12).</summary>
    public double LayerNormEps { get; init; }

    /// <summary><c>position_embedding_type</c>: <c>absolute</c> (default), <c>relative_key</c> or <c>relative_key_query</c>.</summary>
    public string PositionEmbeddingType { get; init; } = "absolute";

    /// <summary><c>use_cache</c> (default true).</summary>
    public bool UseCache { get; init; }

    /// <summary><c>classifier_dropout</c>, resolved: null in the file means <see cref="HiddenDropoutProb"/>.</summary>
    public double ClassifierDropout { get; init; }

    /// <summary><c>is_decoder</c> (default false).</summary>
    public bool IsDecoder { get; init; }

    private protected static readonly string[] PositionEmbeddingTypes = ["absolute", "relative_key", "relative_key_query"];

    /// <summary>Validates the BERT keys of <paramref name="dto"/> against <paramref name="d"/>'s defaults.</summary>
    private protected static TConfig Build<TConfig>(BertConfigJson dto, string source, BertDefaults d, CommonDefaults common)
        where TConfig : BertStyleConfig, new()
    {
        var c = ResolveCommon(dto, source, common);
        var hidden = Positive(source, "hidden_size", dto.HiddenSize ?? 768);
        var heads = Positive(source, "num_attention_heads", dto.NumAttentionHeads ?? 12);
        DivisibleHeads(source, "hidden_size", hidden, "num_attention_heads", heads);
        var positionType = dto.PositionEmbeddingType ?? "absolute";
        if (Array.IndexOf(PositionEmbeddingTypes, positionType) < 0)
            throw new ModelConfigException(
                $"{source}: 'position_embedding_type' is '{positionType}'; use one of: {string.Join(", ", PositionEmbeddingTypes)}.");
        var hiddenDropout = Probability(source, "hidden_dropout_prob", dto.HiddenDropoutProb ?? 0.1);
        return new TConfig
        {
            VocabSize = Positive(source, "vocab_size", dto.VocabSize ?? d.VocabSize),
            HiddenSize = hidden,
            NumHiddenLayers = Positive(source, "num_hidden_layers", dto.NumHiddenLayers ?? 12),
            NumAttentionHeads = heads,
            IntermediateSize = Positive(source, "intermediate_size", dto.IntermediateSize ?? 3072),
            MaxPositionEmbeddings = Positive(source, "max_position_embeddings", dto.MaxPositionEmbeddings ?? 512),
            HiddenAct = Activation(source, "hidden_act", dto.HiddenAct ?? "gelu"),
            HiddenDropoutProb = hiddenDropout,
            AttentionProbsDropoutProb = Probability(source, "attention_probs_dropout_prob", dto.AttentionProbsDropoutProb ?? 0.1),
            TypeVocabSize = Positive(source, "type_vocab_size", dto.TypeVocabSize ?? 2),
            InitializerRange = PositiveReal(source, "initializer_range", dto.InitializerRange ?? 0.02),
            LayerNormEps = PositiveReal(source, "layer_norm_eps", dto.LayerNormEps ?? 1e-12),
            PositionEmbeddingType = positionType,
            UseCache = dto.UseCache ?? true,
            ClassifierDropout = Probability(source, "classifier_dropout", dto.ClassifierDropout ?? hiddenDropout),
            IsDecoder = dto.IsDecoder ?? false,
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

    /// <summary>The defaults where BERT and RoBERTa differ.</summary>
    private protected readonly record struct BertDefaults(int VocabSize);
}

/// <summary>A validated <c>bert</c> config with transformers' BertConfig defaults resolved.</summary>
public sealed record BertConfig : BertStyleConfig
{
    /// <inheritdoc/>
    public override string ModelType => "bert";

    /// <summary>Validates <paramref name="dto"/>; <paramref name="source"/> names the file in errors.</summary>
    /// <exception cref="ModelConfigException">A value is out of range or inconsistent.</exception>
    public static BertConfig FromJson(BertConfigJson dto, string source = "config.json")
    {
        ArgumentNullException.ThrowIfNull(dto);
        // BertConfig: vocab_size=30522, pad_token_id=0; PretrainedConfig ties embeddings by default.
        return Build<BertConfig>(dto, source, new BertDefaults(30522), new CommonDefaults(null, null, 0, true));
    }
}

/// <summary>A validated <c>roberta</c> config: BERT's keys with RobertaConfig's defaults (pad 1, bos 0, eos 2, vocab 50265).</summary>
public sealed record RobertaConfig : BertStyleConfig
{
    /// <inheritdoc/>
    public override string ModelType => "roberta";

    /// <summary>Validates <paramref name="dto"/>; <paramref name="source"/> names the file in errors.</summary>
    /// <exception cref="ModelConfigException">A value is out of range or inconsistent.</exception>
    public static RobertaConfig FromJson(BertConfigJson dto, string source = "config.json")
    {
        ArgumentNullException.ThrowIfNull(dto);
        return Build<RobertaConfig>(dto, source, new BertDefaults(50265), new CommonDefaults(0, 2, 1, true));
    }
}
