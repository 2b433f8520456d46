using System.Text.Json;
using System.Text.Json.Serialization;

namespace Sharpformer.Server;

// The OpenAI wire format (https://platform.openai.com/docs/api-reference), snake_case through Protocol.Json. Only the
// fields this server reads or writes are declared; unknown request fields are ignored, as OpenAI-compatible servers do.

/// <summary>The JSON settings of the wire format.</summary>
internal static class Protocol
{
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };
}

/// <summary>OpenAI's error body: <c>{"error": {"message", "type", "param", "code"}}</c>.</summary>
/// <param name="Error">The error.</param>
public sealed record ErrorResponse(ErrorDetail Error);

/// <summary>The error inside <see cref="ErrorResponse"/>.</summary>
/// <param name="Message">What is wrong and how to fix it.</param>
/// <param name="Type">invalid_request_error, authentication_error, rate_limit_error, timeout_error, server_error, not_found_error.</param>
/// <param name="Param">The request field at fault, or null.</param>
/// <param name="Code">A machine-readable code (e.g. model_not_found, invalid_api_key, context_length_exceeded), or null.</param>
public sealed record ErrorDetail(string Message, string Type, [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Param, [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Code);

/// <summary><c>stream_options</c>.</summary>
public sealed class StreamOptions
{
    /// <summary>Send a last chunk with the usage (and no choices) before [DONE].</summary>
    public bool? IncludeUsage { get; set; }
}

/// <summary><c>response_format</c>: <c>text</c> or <c>json_object</c>.</summary>
public sealed class ResponseFormat
{
    /// <summary>text or json_object.</summary>
    public string? Type { get; set; }
}

/// <summary>Fields the completion and chat requests share.</summary>
public abstract class GenerationRequestBase
{
    /// <summary>The served model's name.</summary>
    public string? Model { get; set; }

    /// <summary>The most tokens to generate.</summary>
    public int? MaxTokens { get; set; }

    /// <summary>Sampling temperature in [0, 2]; 0 is greedy.</summary>
    public float? Temperature { get; set; }

    /// <summary>Nucleus sampling mass in (0, 1].</summary>
    public float? TopP { get; set; }

    /// <summary>Choices per prompt (1 to 8).</summary>
    public int? N { get; set; }

    /// <summary>Stream server-sent events.</summary>
    public bool? Stream { get; set; }

    /// <summary>Streaming options.</summary>
    public StreamOptions? StreamOptions { get; set; }

    /// <summary>A string or up to 4 strings that end the output.</summary>
    public JsonElement? Stop { get; set; }

    /// <summary>Seed of the sampler (choice i uses seed + i).</summary>
    public int? Seed { get; set; }

    /// <summary>text or json_object.</summary>
    public ResponseFormat? ResponseFormat { get; set; }

    /// <summary>Not supported: must be absent or 0 (the server answers 400 otherwise rather than ignore it).</summary>
    public float? PresencePenalty { get; set; }

    /// <summary>Not supported: must be absent or 0.</summary>
    public float? FrequencyPenalty { get; set; }

    /// <summary>Not supported: must be absent or empty.</summary>
    public JsonElement? LogitBias { get; set; }

    /// <summary>Not supported (no tool calling): must be absent or empty.</summary>
    public JsonElement? Tools { get; set; }
}

/// <summary><c>POST /v1/completions</c>.</summary>
public sealed class CompletionRequest : GenerationRequestBase
{
    /// <summary>A string, an array of strings, or an array of token ids.</summary>
    public JsonElement? Prompt { get; set; }

    /// <summary>Return the log-probabilities of this many most likely tokens per step (0 to 5), with the chosen token's.</summary>
    public int? Logprobs { get; set; }
}

/// <summary>One message of a chat request.</summary>
public sealed class ChatMessageDto
{
    /// <summary>system, user, assistant, …</summary>
    public string? Role { get; set; }

    /// <summary>A string, or an array of parts of which the text parts are used.</summary>
    public JsonElement? Content { get; set; }
}

/// <summary><c>POST /v1/chat/completions</c>.</summary>
public sealed class ChatCompletionRequest : GenerationRequestBase
{
    /// <summary>The conversation.</summary>
    public List<ChatMessageDto>? Messages { get; set; }

    /// <summary>The newer name of <see cref="GenerationRequestBase.MaxTokens"/>.</summary>
    public int? MaxCompletionTokens { get; set; }

    /// <summary>Return the chosen tokens' log-probabilities.</summary>
    public bool? Logprobs { get; set; }

    /// <summary>With logprobs: this many alternatives per step (0 to 20).</summary>
    public int? TopLogprobs { get; set; }
}

/// <summary><c>POST /v1/embeddings</c>.</summary>
public sealed class EmbeddingRequest
{
    /// <summary>The served model's name.</summary>
    public string? Model { get; set; }

    /// <summary>A string or an array of strings.</summary>
    public JsonElement? Input { get; set; }

    /// <summary>float (default) or base64 (little-endian float32).</summary>
    public string? EncodingFormat { get; set; }

    /// <summary>Not supported (the model's width is fixed); must be absent or equal to it.</summary>
    public int? Dimensions { get; set; }
}

/// <summary><c>POST /v1/fill-mask</c> (not in OpenAI's API): the best tokens for each mask token of the input.</summary>
public sealed class FillMaskRequest
{
    /// <summary>The served model's name (an encoder with an MLM head).</summary>
    public string? Model { get; set; }

    /// <summary>Text holding the model's mask token (e.g. [MASK]) at least once.</summary>
    public string? Input { get; set; }

    /// <summary>Candidates per mask (default 5).</summary>
    public int? TopK { get; set; }
}

/// <summary><c>POST /v1/classify</c> (not in OpenAI's API): HF's text-classification pipeline on a sequence classifier.</summary>
public sealed class ClassifyRequest
{
    /// <summary>The served model's name (a *ForSequenceClassification checkpoint).</summary>
    public string? Model { get; set; }

    /// <summary>A text, or an array of 1 to 2048 texts.</summary>
    public JsonElement? Input { get; set; }

    /// <summary>Labels per text, best first (default 1; 0 = all labels, as HF's top_k=None).</summary>
    public int? TopK { get; set; }

    /// <summary>sigmoid, softmax or none (default: HF's — sigmoid for multi-label or one-label models, else softmax).</summary>
    public string? FunctionToApply { get; set; }
}

/// <summary><c>POST /v1/ner</c> (not in OpenAI's API): HF's token-classification pipeline on a token classifier.</summary>
public sealed class NerRequest
{
    /// <summary>The served model's name (a *ForTokenClassification checkpoint).</summary>
    public string? Model { get; set; }

    /// <summary>A text, or an array of 1 to 2048 texts.</summary>
    public JsonElement? Input { get; set; }

    /// <summary>none, simple, first, average or max (default simple), as HF defines them.</summary>
    public string? AggregationStrategy { get; set; }
}

/// <summary>One label of a classification answer.</summary>
/// <param name="Label">The label (config id2label).</param>
/// <param name="Score">Its score under the applied function.</param>
public sealed record ClassifyLabel(string Label, float Score);

/// <summary>The labels of one input.</summary>
/// <param name="Index">Input index.</param>
/// <param name="Labels">Best first.</param>
public sealed record ClassifyEntry(int Index, IReadOnlyList<ClassifyLabel> Labels);

/// <summary>One entity (or token, without aggregation) of a NER answer, in HF's shape.</summary>
/// <param name="Entity">The label (<c>entity_group</c> when aggregated, else <c>entity</c>).</param>
/// <param name="Score">Its score.</param>
/// <param name="Word">The text it covers.</param>
/// <param name="Start">Character offset where it starts.</param>
/// <param name="End">Character offset where it ends.</param>
/// <param name="TokenIndex">The token index (no aggregation), else null.</param>
public sealed record NerEntity(string Entity, float Score, string Word, int Start, int End, int? TokenIndex);

/// <summary>The entities of one input.</summary>
/// <param name="Index">Input index.</param>
/// <param name="Entities">In text order.</param>
public sealed record NerEntry(int Index, IReadOnlyList<NerEntity> Entities);

/// <summary>Token counts.</summary>
/// <param name="PromptTokens">Tokens in the prompt(s).</param>
/// <param name="CompletionTokens">Tokens generated.</param>
/// <param name="TotalTokens">The sum.</param>
public sealed record Usage(int PromptTokens, int CompletionTokens, int TotalTokens);

/// <summary>One entry of <c>GET /v1/models</c>.</summary>
/// <param name="Id">The name.</param>
/// <param name="Object">"model".</param>
/// <param name="Created">Unix seconds (server start).</param>
/// <param name="OwnedBy">"sharpformer".</param>
public sealed record ModelEntry(string Id, string Object, long Created, string OwnedBy);

/// <summary>A list response (<c>{"object": "list", "data": [...]}</c>).</summary>
/// <typeparam name="T">The entry type.</typeparam>
/// <param name="Object">"list".</param>
/// <param name="Data">The entries.</param>
/// <param name="Model">The model (embeddings, fill-mask), else null.</param>
/// <param name="Usage">Token counts (embeddings), else null.</param>
public sealed record ListResponse<T>(string Object, IReadOnlyList<T> Data, string? Model = null, Usage? Usage = null);

/// <summary>One embedding.</summary>
/// <param name="Object">"embedding".</param>
/// <param name="Index">Input index.</param>
/// <param name="Embedding">float[] or a base64 string.</param>
public sealed record EmbeddingEntry(string Object, int Index, object Embedding);

/// <summary>One candidate of a fill-mask answer.</summary>
/// <param name="Score">Probability.</param>
/// <param name="Token">Token id.</param>
/// <param name="TokenStr">The token's text.</param>
/// <param name="Sequence">The input with this candidate in the mask.</param>
public sealed record FillMaskCandidate(float Score, int Token, string TokenStr, string Sequence);

/// <summary>The candidates for one mask.</summary>
/// <param name="Index">Which mask of the input (0 = first).</param>
/// <param name="Predictions">Best first.</param>
public sealed record FillMaskEntry(int Index, IReadOnlyList<FillMaskCandidate> Predictions);

/// <summary>Legacy completions' log-probabilities of one choice (or one chunk).</summary>
/// <param name="Tokens">Token texts.</param>
/// <param name="TokenLogprobs">Their log-probabilities.</param>
/// <param name="TopLogprobs">Per token: the most likely alternatives, text → log-probability.</param>
/// <param name="TextOffset">Each token's character offset in the choice's text.</param>
public sealed record CompletionLogprobs(List<string> Tokens, List<float> TokenLogprobs, List<Dictionary<string, float>> TopLogprobs, List<int> TextOffset);

/// <summary>One choice (or the delta of one choice) of a completion.</summary>
/// <param name="Index">Choice index.</param>
/// <param name="Text">Text (the new piece when streaming).</param>
/// <param name="Logprobs">Log-probabilities when asked.</param>
/// <param name="FinishReason">stop or length once done, else null.</param>
public sealed record CompletionChoice(int Index, string Text, [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] CompletionLogprobs? Logprobs, [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? FinishReason);

/// <summary>A completion or one streamed chunk of it.</summary>
/// <param name="Id">cmpl-…</param>
/// <param name="Object">text_completion.</param>
/// <param name="Created">Unix seconds.</param>
/// <param name="Model">The model name.</param>
/// <param name="Choices">The choices.</param>
/// <param name="Usage">Token counts (the whole response, or the last chunk with include_usage).</param>
public sealed record CompletionResponse(string Id, string Object, long Created, string Model, IReadOnlyList<CompletionChoice> Choices, Usage? Usage);

/// <summary>One alternative token of chat log-probabilities.</summary>
/// <param name="Token">Token text.</param>
/// <param name="Logprob">Its log-probability.</param>
/// <param name="Bytes">Its UTF-8 bytes.</param>
public sealed record ChatTopLogprob(string Token, float Logprob, IReadOnlyList<int> Bytes);

/// <summary>One chosen token of chat log-probabilities.</summary>
/// <param name="Token">Token text.</param>
/// <param name="Logprob">Its log-probability.</param>
/// <param name="Bytes">Its UTF-8 bytes.</param>
/// <param name="TopLogprobs">The most likely alternatives.</param>
public sealed record ChatTokenLogprob(string Token, float Logprob, IReadOnlyList<int> Bytes, IReadOnlyList<ChatTopLogprob> TopLogprobs);

/// <summary>Chat log-probabilities: <c>{"content": [...]}</c>.</summary>
/// <param name="Content">One entry per generated token.</param>
public sealed record ChatLogprobs(List<ChatTokenLogprob> Content);

/// <summary>An assistant message, or the delta of one while streaming.</summary>
/// <param name="Role">"assistant" (only on the first delta when streaming).</param>
/// <param name="Content">Text.</param>
public sealed record ChatMessageOut(string? Role, string? Content);

/// <summary>One chat choice.</summary>
/// <param name="Index">Choice index.</param>
/// <param name="Message">The whole message (non-streaming), else null.</param>
/// <param name="Delta">The new piece (streaming), else null.</param>
/// <param name="Logprobs">Log-probabilities when asked.</param>
/// <param name="FinishReason">stop or length once done.</param>
public sealed record ChatChoice(int Index, ChatMessageOut? Message, ChatMessageOut? Delta, [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] ChatLogprobs? Logprobs, [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? FinishReason);

/// <summary>A chat completion or one chunk of it.</summary>
/// <param name="Id">chatcmpl-…</param>
/// <param name="Object">chat.completion or chat.completion.chunk.</param>
/// <param name="Created">Unix seconds.</param>
/// <param name="Model">The model name.</param>
/// <param name="Choices">The choices.</param>
/// <param name="Usage">Token counts.</param>
public sealed record ChatCompletionResponse(string Id, string Object, long Created, string Model, IReadOnlyList<ChatChoice> Choices, Usage? Usage);
