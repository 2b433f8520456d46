using Sharpformer.Pipelines;
using Sharpformer.Tensors;

namespace Sharpformer.AI;

/// <summary>How <see cref="LocalChatClient.FromPretrainedAsync"/> loads a model and turns conversations into prompts.</summary>
public sealed record LocalChatClientOptions
{
    /// <summary>
    /// Turns messages into the prompt. Null means the model's own chat template (tokenizer_config.json
    /// <c>chat_template</c> or chat_template.jinja); a model without one needs a formatter here (e.g.
    /// <see cref="TranscriptPromptFormatter"/>), and loading it without one fails saying so.
    /// </summary>
    public IChatPromptFormatter? PromptFormatter { get; init; }

    /// <summary>Where the model comes from (Hub settings, revision, download progress); null means the defaults.</summary>
    public PipelineOptions? Source { get; init; }

    /// <summary>The type the weight matrices are kept in (F32, F16 or BF16).</summary>
    public DType WeightType { get; init; } = DType.F32;

    /// <summary>
    /// How the model's KV cache stores keys and values (F16 or F32, see <see cref="Models.IKvCacheElementType"/>); null
    /// means the model's default (F16 for F16/BF16/quantized weights, F32 for F32 weights).
    /// </summary>
    public DType? KvCacheType { get; init; }

    /// <summary>
    /// Tokens to generate when <c>ChatOptions.MaxOutputTokens</c> is not set; capped by what is left of the context.
    /// Default 512.
    /// </summary>
    public int DefaultMaxOutputTokens { get; init; } = 512;

    /// <summary>The model id responses report; null means the name the model was loaded by.</summary>
    public string? ModelId { get; init; }
}
