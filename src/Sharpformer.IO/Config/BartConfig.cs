using System.Text.Json.Serialization;
using static Sharpformer.IO.Config.ConfigValidation;

namespace Sharpformer.IO.Config;

/// <summary>
/// config.json of a <c>bart</c>, <c>marian</c> or <c>mbart</c> model (transformers' BartConfig / MarianConfig /
/// MBartConfig share these keys), spelled exactly as in the file.
/// </summary>
public sealed class BartConfigJson : ConfigJson
{
    /// <summary><c>vocab_size</c>.</summary>
    [JsonPropertyName("vocab_size")] public int? VocabSize { get; set; }

    /// <summary><c>decoder_vocab_size</c> (Marian with separate source/target vocabularies).</summary>
    [JsonPropertyName("decoder_vocab_size")] public int? DecoderVocabSize { get; set; }

    /// <summary><c>max_position_embeddings</c>.</summary>
    [JsonPropertyName("max_position_embeddings")] public int? MaxPositionEmbeddings { get; set; }

    /// <summary><c>d_model</c>.</summary>
    [JsonPropertyName("d_model")] public int? DModel { get; set; }

    /// <summary><c>encoder_layers</c>.</summary>
    [JsonPropertyName("encoder_layers")] public int? EncoderLayers { get; set; }

    /// <summary><c>decoder_layers</c>.</summary>
    [JsonPropertyName("decoder_layers")] public int? DecoderLayers { get; set; }

    /// <summary><c>encoder_attention_heads</c>.</summary>
    [JsonPropertyName("encoder_attention_heads")] public int? EncoderAttentionHeads { get; set; }

    /// <summary><c>decoder_attention_heads</c>.</summary>
    [JsonPropertyName("decoder_attention_heads")] public int? DecoderAttentionHeads { get; set; }

    /// <summary><c>encoder_ffn_dim</c>.</summary>
    [JsonPropertyName("encoder_ffn_dim")] public int? EncoderFfnDim { get; set; }

    /// <summary><c>decoder_ffn_dim</c>.</summary>
    [JsonPropertyName("decoder_ffn_dim")] public int? DecoderFfnDim { get; set; }

    /// <summary><c>activation_function</c>.</summary>
    [JsonPropertyName("activation_function")] public string? ActivationFunction { get; set; }

    /// <summary><c>dropout</c>.</summary>
    [JsonPropertyName("dropout")] public double? Dropout { get; set; }

    /// <summary><c>attention_dropout</c>.</summary>
    [JsonPropertyName("attention_dropout")] public double? AttentionDropout { get; set; }

    /// <summary><c>activation_dropout</c>.</summary>
    [JsonPropertyName("activation_dropout")] public double? ActivationDropout { get; set; }

    /// <summary><c>init_std</c>.</summary>
    [JsonPropertyName("init_std")] public double? InitStd { get; set; }

    /// <summary><c>scale_embedding</c>: multiply token embeddings by √d_model.</summary>
    [JsonPropertyName("scale_embedding")] public bool? ScaleEmbedding { get; set; }

    /// <summary><c>decoder_start_token_id</c>.</summary>
    [JsonPropertyName("decoder_start_token_id")] public int? DecoderStartTokenId { get; set; }

    /// <summary><c>forced_bos_token_id</c>.</summary>
    [JsonPropertyName("forced_bos_token_id")] public int? ForcedBosTokenId { get; set; }

    /// <summary><c>forced_eos_token_id</c>.</summary>
    [JsonPropertyName("forced_eos_token_id")] public int? ForcedEosTokenId { get; set; }

    /// <summary><c>share_encoder_decoder_embeddings</c> (Marian; true unless the model has separate vocabularies).</summary>
    [JsonPropertyName("share_encoder_decoder_embeddings")] public bool? ShareEncoderDecoderEmbeddings { get; set; }
}

/// <summary>
/// A validated <c>bart</c> / <c>marian</c> / <c>mbart</c> config. <see cref="ModelConfig.HiddenSize"/> is
/// <c>d_model</c>, <see cref="ModelConfig.NumHiddenLayers"/> <c>encoder_layers</c>,
/// <see cref="ModelConfig.NumAttentionHeads"/> <c>encoder_attention_heads</c> and
/// <see cref="ModelConfig.IntermediateSize"/> <c>encoder_ffn_dim</c>, as transformers' attribute_map says.
/// </summary>
public sealed record BartConfig : ModelConfig
{
    /// <summary>The model types this record reads.</summary>
    public static IReadOnlyList<string> Families { get; } = ["bart", "marian", "mbart"];

    /// <summary><c>bart</c>, <c>marian</c> or <c>mbart</c>.</summary>
    public string Family { get; init; } = "bart";

    /// <inheritdoc/>
    public override string ModelType => Family;

    /// <summary><c>decoder_layers</c>.</summary>
    public int DecoderLayers { get; init; }

    /// <summary><c>decoder_attention_heads</c>.</summary>
    public int DecoderAttentionHeads { get; init; }

    /// <summary><c>decoder_ffn_dim</c>.</summary>
    public int DecoderFfnDim { get; init; }

    /// <summary><c>activation_function</c> (gelu for BART, swish for Marian).</summary>
    public string ActivationFunction { get; init; } = "gelu";

    /// <summary><c>dropout</c> (default 0.1).</summary>
    public double Dropout { get; init; }

    /// <summary><c>attention_dropout</c> (default 0).</summary>
    public double AttentionDropout { get; init; }

    /// <summary><c>activation_dropout</c> (default 0).</summary>
    public double ActivationDropout { get; init; }

    /// <summary><c>init_std</c> (default 0.02).</summary>
    public double InitStd { get; init; }

    /// <summary><c>scale_embedding</c>: token embeddings times √d_model.</summary>
    public bool ScaleEmbedding { get; init; }

    /// <summary><c>decoder_start_token_id</c> (BART: eos 2; Marian: pad).</summary>
    public int DecoderStartTokenId { get; init; }

    /// <summary><c>forced_bos_token_id</c>, or null.</summary>
    public int? ForcedBosTokenId { get; init; }

    /// <summary><c>forced_eos_token_id</c>, or null.</summary>
    public int? ForcedEosTokenId { get; init; }

    /// <summary>Validates <paramref name="dto"/> for <paramref name="family"/>; <paramref name="source"/> names the file in errors.</summary>
    /// <exception cref="ModelConfigException">A value is out of range or inconsistent, or the model has separate source/target vocabularies.</exception>
    public static BartConfig FromJson(BartConfigJson dto, string family, string source = "config.json")
    {
        ArgumentNullException.ThrowIfNull(dto);
        if (!Families.Contains(family))
            throw new ModelConfigException($"{source}: BartConfig reads model types {string.Join(", ", Families)}, not '{family}'.");
        var marian = family == "marian";
        // BartConfig: bos 0, pad 1, eos 2; MarianConfig: eos 0, pad 58100 (= decoder start), no bos.
        var c = ResolveCommon(dto, source, marian ? new CommonDefaults(null, 0, 58100, true) : new CommonDefaults(0, 2, 1, true));
        var vocab = Positive(source, "vocab_size", dto.VocabSize ?? (marian ? 58101 : 50265));
        if (marian && (dto.ShareEncoderDecoderEmbeddings == false || (dto.DecoderVocabSize is { } dv && dv != vocab)))
            throw new ModelConfigException($"{source}: this Marian model has separate source and target vocabularies (share_encoder_decoder_embeddings = false or decoder_vocab_size ≠ vocab_size), which is not supported; use a model with one shared vocabulary (all Helsinki-NLP/opus-mt-* models but a few).");
        var d = Positive(source, "d_model", dto.DModel ?? (marian ? 512 : 1024));
        var encoderHeads = Positive(source, "encoder_attention_heads", dto.EncoderAttentionHeads ?? (marian ? 8 : 16));
        var decoderHeads = Positive(source, "decoder_attention_heads", dto.DecoderAttentionHeads ?? (marian ? 8 : 16));
        DivisibleHeads(source, "d_model", d, "encoder_attention_heads", encoderHeads);
        DivisibleHeads(source, "d_model", d, "decoder_attention_heads", decoderHeads);
        var pad = c.PadTokenId ?? throw new ModelConfigException($"{source}: 'pad_token_id' is required for an encoder-decoder model.");
        var eos = c.EosTokenIds.Count > 0 ? c.EosTokenIds[0] : throw new ModelConfigException($"{source}: 'eos_token_id' is required for an encoder-decoder model.");
        return new BartConfig
        {
            Family = family,
            VocabSize = vocab,
            MaxPositionEmbeddings = Positive(source, "max_position_embeddings", dto.MaxPositionEmbeddings ?? (marian ? 512 : 1024)),
            HiddenSize = d,
            NumHiddenLayers = Positive(source, "encoder_layers", dto.EncoderLayers ?? 12),
            NumAttentionHeads = encoderHeads,
            IntermediateSize = Positive(source, "encoder_ffn_dim", dto.EncoderFfnDim ?? (marian ? 2048 : 4096)),
            DecoderLayers = Positive(source, "decoder_layers", dto.DecoderLayers ?? 12),
            DecoderAttentionHeads = decoderHeads,
            DecoderFfnDim = Positive(source, "decoder_ffn_dim", dto.DecoderFfnDim ?? (marian ? 2048 : 4096)),
            ActivationFunction = Activation(source, "activation_function", dto.ActivationFunction ?? (marian ? "gelu" : "gelu")),
            Dropout = Probability(source, "dropout", dto.Dropout ?? 0.1),
            AttentionDropout = Probability(source, "attention_dropout", dto.AttentionDropout ?? 0.0),
            ActivationDropout = Probability(source, "activation_dropout", dto.ActivationDropout ?? 0.0),
            InitStd = PositiveReal(source, "init_std", dto.InitStd ?? 0.02),
            ScaleEmbedding = dto.ScaleEmbedding ?? false,
            DecoderStartTokenId = dto.DecoderStartTokenId ?? (marian ? pad : eos),
            ForcedBosTokenId = dto.ForcedBosTokenId,
            ForcedEosTokenId = dto.ForcedEosTokenId,
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
