using System.Text.Json;
using System.Text.Json.Serialization;
using Sharpformer.IO.Config;

namespace Sharpformer.Models.Seq2Seq;

/// <summary>
/// config.json of the original Transformer (<c>model_type</c> "sharpformer-transformer"), key for key: the DTO that
/// is read and written. <see cref="TransformerConfig"/> is the validated record with defaults resolved.
/// </summary>
public sealed class TransformerConfigJson
{
    /// <summary><c>model_type</c>: always "sharpformer-transformer".</summary>
    [JsonPropertyName("model_type")]
    public string? ModelType { get; set; }

    /// <summary><c>architectures</c>.</summary>
    [JsonPropertyName("architectures")]
    public string[]? Architectures { get; set; }

    /// <summary><c>vocab_size</c>: V, shared by source and target.</summary>
    [JsonPropertyName("vocab_size")]
    public int? VocabSize { get; set; }

    /// <summary><c>d_model</c>: C.</summary>
    [JsonPropertyName("d_model")]
    public int? DModel { get; set; }

    /// <summary><c>encoder_layers</c>.</summary>
    [JsonPropertyName("encoder_layers")]
    public int? EncoderLayers { get; set; }

    /// <summary><c>decoder_layers</c>.</summary>
    [JsonPropertyName("decoder_layers")]
    public int? DecoderLayers { get; set; }

    /// <summary><c>num_attention_heads</c>: H, in every attention block.</summary>
    [JsonPropertyName("num_attention_heads")]
    public int? NumAttentionHeads { get; set; }

    /// <summary><c>ffn_dim</c>: the feed-forward width.</summary>
    [JsonPropertyName("ffn_dim")]
    public int? FfnDim { get; set; }

    /// <summary><c>max_position_embeddings</c>: rows of the sinusoidal table.</summary>
    [JsonPropertyName("max_position_embeddings")]
    public int? MaxPositionEmbeddings { get; set; }

    /// <summary><c>dropout</c>: on the embeddings and every sub-layer output.</summary>
    [JsonPropertyName("dropout")]
    public double? Dropout { get; set; }

    /// <summary><c>attention_dropout</c>: on the attention probabilities.</summary>
    [JsonPropertyName("attention_dropout")]
    public double? AttentionDropout { get; set; }

    /// <summary><c>activation_dropout</c>: inside the feed-forward block, after the ReLU.</summary>
    [JsonPropertyName("activation_dropout")]
    public double? ActivationDropout { get; set; }

    /// <summary><c>layer_norm_eps</c>.</summary>
    [JsonPropertyName("layer_norm_eps")]
    public double? LayerNormEps { get; set; }

    /// <summary><c>init_std</c>: the normal init of the dense layers.</summary>
    [JsonPropertyName("init_std")]
    public double? InitStd { get; set; }

    /// <summary><c>pad_token_id</c>.</summary>
    [JsonPropertyName("pad_token_id")]
    public int? PadTokenId { get; set; }

    /// <summary><c>bos_token_id</c>.</summary>
    [JsonPropertyName("bos_token_id")]
    public int? BosTokenId { get; set; }

    /// <summary><c>eos_token_id</c>.</summary>
    [JsonPropertyName("eos_token_id")]
    public int? EosTokenId { get; set; }

    /// <summary><c>decoder_start_token_id</c>.</summary>
    [JsonPropertyName("decoder_start_token_id")]
    public int? DecoderStartTokenId { get; set; }
}

/// <summary>
/// The validated configuration of the original encoder-decoder Transformer ("Attention Is All You Need"): post-LN
/// layers, ReLU feed-forward, sinusoidal positions, one embedding table shared by source, target and output.
/// Defaults are the paper's base model (C = 512, 6 + 6 layers, H = 8, ffn 2048, dropout 0.1).
/// </summary>
public sealed record TransformerConfig
{
    /// <summary>The <c>model_type</c> of this architecture.</summary>
    public const string ModelTypeName = "sharpformer-transformer";

    /// <summary>V.</summary>
    public int VocabSize { get; init; }

    /// <summary>C.</summary>
    public int DModel { get; init; } = 512;

    /// <summary>Encoder layers.</summary>
    public int EncoderLayers { get; init; } = 6;

    /// <summary>Decoder layers.</summary>
    public int DecoderLayers { get; init; } = 6;

    /// <summary>H.</summary>
    public int NumAttentionHeads { get; init; } = 8;

    /// <summary>Feed-forward width.</summary>
    public int FfnDim { get; init; } = 2048;

    /// <summary>Positions the sinusoidal table covers (the longest source and target).</summary>
    public int MaxPositionEmbeddings { get; init; } = 512;

    /// <summary>Dropout on the embeddings and sub-layer outputs.</summary>
    public float Dropout { get; init; } = 0.1f;

    /// <summary>Dropout on the attention probabilities.</summary>
    public float AttentionDropout { get; init; }

    /// <summary>Dropout after the feed-forward ReLU.</summary>
    public float ActivationDropout { get; init; }

    /// <summary>LayerNorm epsilon.</summary>
    public float LayerNormEps { get; init; } = 1e-5f;

    /// <summary>Std of the normal init of dense layers (the shared embedding uses C^−½).</summary>
    public float InitStd { get; init; } = 0.02f;

    /// <summary>Padding id.</summary>
    public int PadTokenId { get; init; }

    /// <summary>Beginning-of-sequence id.</summary>
    public int BosTokenId { get; init; } = 1;

    /// <summary>End-of-sequence id.</summary>
    public int EosTokenId { get; init; } = 2;

    /// <summary>The first decoder input (bos unless set).</summary>
    public int DecoderStartTokenId { get; init; } = 1;

    /// <summary>D = C / H.</summary>
    public int HeadDim => DModel / NumAttentionHeads;

    /// <summary>Checks the sizes and ids; called by every factory.</summary>
    /// <returns>This config.</returns>
    /// <exception cref="ModelConfigException">A value is out of range; the message names the key.</exception>
    public TransformerConfig Validate()
    {
        Positive(VocabSize, "vocab_size");
        Positive(DModel, "d_model");
        Positive(EncoderLayers, "encoder_layers");
        Positive(DecoderLayers, "decoder_layers");
        Positive(NumAttentionHeads, "num_attention_heads");
        Positive(FfnDim, "ffn_dim");
        Positive(MaxPositionEmbeddings, "max_position_embeddings");
        if (DModel % NumAttentionHeads != 0)
        {
            throw new ModelConfigException($"config.json: d_model {DModel} is not divisible by num_attention_heads {NumAttentionHeads}; pick a head count that divides it.");
        }

        Probability(Dropout, "dropout");
        Probability(AttentionDropout, "attention_dropout");
        Probability(ActivationDropout, "activation_dropout");
        TokenId(PadTokenId, "pad_token_id");
        TokenId(BosTokenId, "bos_token_id");
        TokenId(EosTokenId, "eos_token_id");
        TokenId(DecoderStartTokenId, "decoder_start_token_id");
        return this;
    }

    /// <summary>Reads and validates <paramref name="folder"/>/config.json.</summary>
    /// <param name="folder">The model folder.</param>
    /// <returns>The config.</returns>
    /// <exception cref="ModelConfigException">The file is missing, not JSON, not this model type, or a value is invalid.</exception>
    public static TransformerConfig Load(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        string path = Path.Combine(folder, "config.json");
        if (!File.Exists(path))
        {
            throw new ModelConfigException($"{path} does not exist; a sharpformer-transformer folder holds config.json and model.safetensors (SavePretrained writes both).");
        }

        TransformerConfigJson? json;
        try
        {
            json = JsonSerializer.Deserialize<TransformerConfigJson>(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new ModelConfigException($"{path}: not valid JSON ({e.Message}).", e);
        }

        if (json is null || json.ModelType != ModelTypeName)
        {
            throw new ModelConfigException($"{path}: model_type is '{json?.ModelType}', expected '{ModelTypeName}'.");
        }

        return FromJson(json, path);
    }

    /// <summary>The record for a DTO, defaults resolved, validated.</summary>
    /// <param name="json">The DTO.</param>
    /// <param name="source">Where it came from (for messages).</param>
    /// <returns>The config.</returns>
    /// <exception cref="ModelConfigException">A required key is missing or a value is invalid.</exception>
    public static TransformerConfig FromJson(TransformerConfigJson json, string source = "config.json")
    {
        ArgumentNullException.ThrowIfNull(json);
        var defaults = new TransformerConfig();
        int bos = json.BosTokenId ?? defaults.BosTokenId;
        try
        {
            return new TransformerConfig
            {
                VocabSize = json.VocabSize ?? throw new ModelConfigException($"{source}: vocab_size is missing."),
                DModel = json.DModel ?? defaults.DModel,
                EncoderLayers = json.EncoderLayers ?? defaults.EncoderLayers,
                DecoderLayers = json.DecoderLayers ?? defaults.DecoderLayers,
                NumAttentionHeads = json.NumAttentionHeads ?? defaults.NumAttentionHeads,
                FfnDim = json.FfnDim ?? defaults.FfnDim,
                MaxPositionEmbeddings = json.MaxPositionEmbeddings ?? defaults.MaxPositionEmbeddings,
                Dropout = (float)(json.Dropout ?? defaults.Dropout),
                AttentionDropout = (float)(json.AttentionDropout ?? defaults.AttentionDropout),
                ActivationDropout = (float)(json.ActivationDropout ?? defaults.ActivationDropout),
                LayerNormEps = (float)(json.LayerNormEps ?? defaults.LayerNormEps),
                InitStd = (float)(json.InitStd ?? defaults.InitStd),
                PadTokenId = json.PadTokenId ?? defaults.PadTokenId,
                BosTokenId = bos,
                EosTokenId = json.EosTokenId ?? defaults.EosTokenId,
                DecoderStartTokenId = json.DecoderStartTokenId ?? bos,
            }.Validate();
        }
        catch (ModelConfigException e) when (!e.Message.StartsWith(source, StringComparison.Ordinal))
        {
            throw new ModelConfigException($"{source}: {e.Message}", e);
        }
    }

    /// <summary>The DTO for this record (what <see cref="TransformerForConditionalGeneration.SavePretrained"/> writes).</summary>
    /// <returns>The DTO.</returns>
    public TransformerConfigJson ToJson() => new()
    {
        ModelType = ModelTypeName,
        Architectures = ["TransformerForConditionalGeneration"],
        VocabSize = VocabSize,
        DModel = DModel,
        EncoderLayers = EncoderLayers,
        DecoderLayers = DecoderLayers,
        NumAttentionHeads = NumAttentionHeads,
        FfnDim = FfnDim,
        MaxPositionEmbeddings = MaxPositionEmbeddings,
        Dropout = Dropout,
        AttentionDropout = AttentionDropout,
        ActivationDropout = ActivationDropout,
        LayerNormEps = LayerNormEps,
        InitStd = InitStd,
        PadTokenId = PadTokenId,
        BosTokenId = BosTokenId,
        EosTokenId = EosTokenId,
        DecoderStartTokenId = DecoderStartTokenId,
    };

    private static void Positive(int value, string key)
    {
        if (value <= 0)
        {
            throw new ModelConfigException($"config.json: {key} must be positive, got {value}.");
        }
    }

    private static void Probability(float value, string key)
    {
        if (!(value >= 0f && value < 1f))
        {
            throw new ModelConfigException($"config.json: {key} must be in [0, 1), got {value}.");
        }
    }

    private void TokenId(int value, string key)
    {
        if ((uint)value >= (uint)VocabSize)
        {
            throw new ModelConfigException($"config.json: {key} {value} is outside the vocabulary [0, {VocabSize}).");
        }
    }
}
