using System.Text.Json.Serialization;
using static Sharpformer.IO.Config.ConfigValidation;

namespace Sharpformer.IO.Config;

/// <summary>config.json of a <c>gpt2</c> model, keys exactly as transformers' GPT2Config writes them.</summary>
public sealed class Gpt2ConfigJson : ConfigJson
{
    /// <summary><c>vocab_size</c>.</summary>
    [JsonPropertyName("vocab_size")] public int? VocabSize { get; set; }

    /// <summary><c>n_positions</c>.</summary>
    [JsonPropertyName("n_positions")] public int? NPositions { get; set; }

    /// <summary><c>n_ctx</c>: a legacy duplicate of <c>n_positions</c> in old checkpoints; unused.</summary>
    [JsonPropertyName("n_ctx")] public int? NCtx { get; set; }

    /// <summary><c>n_embd</c>.</summary>
    [JsonPropertyName("n_embd")] public int? NEmbd { get; set; }

    /// <summary><c>n_layer</c>.</summary>
    [JsonPropertyName("n_layer")] public int? NLayer { get; set; }

    /// <summary><c>n_head</c>.</summary>
    [JsonPropertyName("n_head")] public int? NHead { get; set; }

    /// <summary><c>n_inner</c>: null means 4 × <c>n_embd</c>.</summary>
    [JsonPropertyName("n_inner")] public int? NInner { get; set; }

    /// <summary><c>activation_function</c>.</summary>
    [JsonPropertyName("activation_function")] public string? ActivationFunction { get; set; }

    /// <summary><c>resid_pdrop</c>.</summary>
    [JsonPropertyName("resid_pdrop")] public double? ResidPdrop { get; set; }

    /// <summary><c>embd_pdrop</c>.</summary>
    [JsonPropertyName("embd_pdrop")] public double? EmbdPdrop { get; set; }

    /// <summary><c>attn_pdrop</c>.</summary>
    [JsonPropertyName("attn_pdrop")] public double? AttnPdrop { get; set; }

    /// <summary><c>layer_norm_epsilon</c>.</summary>
    [JsonPropertyName("layer_norm_epsilon")] public double? LayerNormEpsilon { get; set; }

    /// <summary><c>initializer_range</c>.</summary>
    [JsonPropertyName("initializer_range")] public double? InitializerRange { get; set; }

    /// <summary><c>scale_attn_weights</c>.</summary>
    [JsonPropertyName("scale_attn_weights")] public bool? ScaleAttnWeights { get; set; }

    /// <summary><c>scale_attn_by_inverse_layer_idx</c>.</summary>
    [JsonPropertyName("scale_attn_by_inverse_layer_idx")] public bool? ScaleAttnByInverseLayerIdx { get; set; }

    /// <summary><c>reorder_and_upcast_attn</c>.</summary>
    [JsonPropertyName("reorder_and_upcast_attn")] public bool? ReorderAndUpcastAttn { get; set; }

    /// <summary><c>use_cache</c>.</summary>
    [JsonPropertyName("use_cache")] public bool? UseCache { get; set; }
}

/// <summary>
/// A validated <c>gpt2</c> config. As in transformers' attribute_map, <see cref="ModelConfig.HiddenSize"/> is
/// <c>n_embd</c>, <see cref="ModelConfig.NumHiddenLayers"/> <c>n_layer</c>, <see cref="ModelConfig.NumAttentionHeads"/>
/// <c>n_head</c>, <see cref="ModelConfig.MaxPositionEmbeddings"/> <c>n_positions</c> and
/// <see cref="ModelConfig.IntermediateSize"/> the resolved <c>n_inner</c>.
/// </summary>
public sealed record Gpt2Config : ModelConfig
{
    /// <inheritdoc/>
    public override string ModelType => "gpt2";

    /// <summary><c>activation_function</c> (default <c>gelu_new</c>, the tanh approximation).</summary>
    public string ActivationFunction { get; init; } = "gelu_new";

    /// <summary><c>resid_pdrop</c> (default 0.1).</summary>
    public double ResidPdrop { get; init; }

    /// <summary><c>embd_pdrop</c> (default 0.1).</summary>
    public double EmbdPdrop { get; init; }

    /// <summary><c>attn_pdrop</c> (default 0.1).</summary>
    public double AttnPdrop { get; init; }

    /// <summary><c>layer_norm_epsilon</c> (default 1e-5).</summary>
    public double LayerNormEpsilon { get; init; }

    /// <summary><c>initializer_range</c> (default 0.02).</summary>
    public double InitializerRange { get; init; }

    /// <summary><c>scale_attn_weights</c> (default true: divide scores by √D).</summary>
    public bool ScaleAttnWeights { get; init; }

    /// <summary><c>scale_attn_by_inverse_layer_idx</c> (default false).</summary>
    public bool ScaleAttnByInverseLayerIdx { get; init; }

    /// <summary><c>reorder_and_upcast_attn</c> (default false).</summary>
    public bool ReorderAndUpcastAttn { get; init; }

    /// <summary><c>use_cache</c> (default true).</summary>
    public bool UseCache { get; init; }

    /// <summary>Validates <paramref name="dto"/>; <paramref name="source"/> names the file in errors.</summary>
    /// <exception cref="ModelConfigException">A value is out of range or inconsistent.</exception>
    public static Gpt2Config FromJson(Gpt2ConfigJson dto, string source = "config.json")
    {
        ArgumentNullException.ThrowIfNull(dto);
        // GPT2Config: bos = eos = 50256 (<|endoftext|>), no pad token; PretrainedConfig ties embeddings by default.
        var c = ResolveCommon(dto, source, new CommonDefaults(50256, 50256, null, true));
        var embd = Positive(source, "n_embd", dto.NEmbd ?? 768);
        var heads = Positive(source, "n_head", dto.NHead ?? 12);
        DivisibleHeads(source, "n_embd", embd, "n_head", heads);
        return new Gpt2Config
        {
            VocabSize = Positive(source, "vocab_size", dto.VocabSize ?? 50257),
            MaxPositionEmbeddings = Positive(source, "n_positions", dto.NPositions ?? 1024),
            HiddenSize = embd,
            NumHiddenLayers = Positive(source, "n_layer", dto.NLayer ?? 12),
            NumAttentionHeads = heads,
            IntermediateSize = Positive(source, "n_inner", dto.NInner ?? 4 * embd),
            ActivationFunction = Activation(source, "activation_function", dto.ActivationFunction ?? "gelu_new"),
            ResidPdrop = Probability(source, "resid_pdrop", dto.ResidPdrop ?? 0.1),
            EmbdPdrop = Probability(source, "embd_pdrop", dto.EmbdPdrop ?? 0.1),
            AttnPdrop = Probability(source, "attn_pdrop", dto.AttnPdrop ?? 0.1),
            LayerNormEpsilon = PositiveReal(source, "layer_norm_epsilon", dto.LayerNormEpsilon ?? 1e-5),
            InitializerRange = PositiveReal(source, "initializer_range", dto.InitializerRange ?? 0.02),
            ScaleAttnWeights = dto.ScaleAttnWeights ?? true,
            ScaleAttnByInverseLayerIdx = dto.ScaleAttnByInverseLayerIdx ?? false,
            ReorderAndUpcastAttn = dto.ReorderAndUpcastAttn ?? false,
            UseCache = dto.UseCache ?? true,
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
