using System.Text.Json.Serialization;
using static Sharpformer.IO.Config.ConfigValidation;

namespace Sharpformer.IO.Config;

/// <summary>config.json of a <c>distilbert</c> model, keys exactly as transformers' DistilBertConfig writes them.</summary>
public sealed class DistilBertConfigJson : ConfigJson
{
    /// <summary><c>vocab_size</c>.</summary>
    [JsonPropertyName("vocab_size")] public int? VocabSize { get; set; }

    /// <summary><c>max_position_embeddings</c>.</summary>
    [JsonPropertyName("max_position_embeddings")] public int? MaxPositionEmbeddings { get; set; }

    /// <summary><c>sinusoidal_pos_embds</c>: fixed sinusoidal instead of learned position embeddings.</summary>
    [JsonPropertyName("sinusoidal_pos_embds")] public bool? SinusoidalPosEmbds { get; set; }

    /// <summary><c>n_layers</c>.</summary>
    [JsonPropertyName("n_layers")] public int? NLayers { get; set; }

    /// <summary><c>n_heads</c>.</summary>
    [JsonPropertyName("n_heads")] public int? NHeads { get; set; }

    /// <summary><c>dim</c>: the hidden size.</summary>
    [JsonPropertyName("dim")] public int? Dim { get; set; }

    /// <summary><c>hidden_dim</c>: the feed-forward width.</summary>
    [JsonPropertyName("hidden_dim")] public int? HiddenDim { get; set; }

    /// <summary><c>dropout</c>.</summary>
    [JsonPropertyName("dropout")] public double? Dropout { get; set; }

    /// <summary><c>attention_dropout</c>.</summary>
    [JsonPropertyName("attention_dropout")] public double? AttentionDropout { get; set; }

    /// <summary><c>activation</c>.</summary>
    [JsonPropertyName("activation")] public string? Activation { get; set; }

    /// <summary><c>initializer_range</c>.</summary>
    [JsonPropertyName("initializer_range")] public double? InitializerRange { get; set; }

    /// <summary><c>qa_dropout</c>.</summary>
    [JsonPropertyName("qa_dropout")] public double? QaDropout { get; set; }

    /// <summary><c>seq_classif_dropout</c>.</summary>
    [JsonPropertyName("seq_classif_dropout")] public double? SeqClassifDropout { get; set; }

    /// <summary><c>tie_weights_</c>: DistilBERT's own flag for tying the MLM head to the embeddings.</summary>
    [JsonPropertyName("tie_weights_")] public bool? TieWeights { get; set; }
}

/// <summary>
/// A validated <c>distilbert</c> config. <see cref="ModelConfig.HiddenSize"/> is <c>dim</c>,
/// <see cref="ModelConfig.NumHiddenLayers"/> is <c>n_layers</c>, <see cref="ModelConfig.NumAttentionHeads"/> is
/// <c>n_heads</c> and <see cref="ModelConfig.IntermediateSize"/> is <c>hidden_dim</c>, as transformers' attribute_map says.
/// </summary>
public sealed record DistilBertConfig : ModelConfig
{
    /// <inheritdoc/>
    public override string ModelType => "distilbert";

    /// <summary><c>sinusoidal_pos_embds</c> (default false: learned position embeddings).</summary>
    public bool SinusoidalPosEmbds { get; init; }

    /// <summary><c>dropout</c> (default 0.1).</summary>
    public double Dropout { get; init; }

    /// <summary><c>attention_dropout</c> (default 0.1).</summary>
    public double AttentionDropout { get; init; }

    /// <summary><c>activation</c> (default <c>gelu</c>).</summary>
    public string Activation { get; init; } = "gelu";

    /// <summary><c>initializer_range</c> (default 0.02).</summary>
    public double InitializerRange { get; init; }

    /// <summary><c>qa_dropout</c> (default 0.1).</summary>
    public double QaDropout { get; init; }

    /// <summary><c>seq_classif_dropout</c> (default 0.2).</summary>
    public double SeqClassifDropout { get; init; }

    /// <summary>Validates <paramref name="dto"/>; <paramref name="source"/> names the file in errors.</summary>
    /// <exception cref="ModelConfigException">A value is out of range or inconsistent.</exception>
    public static DistilBertConfig FromJson(DistilBertConfigJson dto, string source = "config.json")
    {
        ArgumentNullException.ThrowIfNull(dto);
        // DistilBertConfig: pad_token_id=0; tie_weights_ (default true) is its own spelling of tie_word_embeddings.
        var c = ResolveCommon(dto, source, new CommonDefaults(null, null, 0, dto.TieWeights ?? true));
        var dim = Positive(source, "dim", dto.Dim ?? 768);
        var heads = Positive(source, "n_heads", dto.NHeads ?? 12);
        DivisibleHeads(source, "dim", dim, "n_heads", heads);
        return new DistilBertConfig
        {
            VocabSize = Positive(source, "vocab_size", dto.VocabSize ?? 30522),
            MaxPositionEmbeddings = Positive(source, "max_position_embeddings", dto.MaxPositionEmbeddings ?? 512),
            SinusoidalPosEmbds = dto.SinusoidalPosEmbds ?? false,
            NumHiddenLayers = Positive(source, "n_layers", dto.NLayers ?? 6),
            NumAttentionHeads = heads,
            HiddenSize = dim,
            IntermediateSize = Positive(source, "hidden_dim", dto.HiddenDim ?? 4 * 768),
            Dropout = Probability(source, "dropout", dto.Dropout ?? 0.1),
            AttentionDropout = Probability(source, "attention_dropout", dto.AttentionDropout ?? 0.1),
            Activation = Activation(source, "activation", dto.Activation ?? "gelu"),
            InitializerRange = PositiveReal(source, "initializer_range", dto.InitializerRange ?? 0.02),
            QaDropout = Probability(source, "qa_dropout", dto.QaDropout ?? 0.1),
            SeqClassifDropout = Probability(source, "seq_classif_dropout", dto.SeqClassifDropout ?? 0.2),
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
}
