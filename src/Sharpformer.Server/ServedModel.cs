using Sharpformer.IO.Config;
using Sharpformer.Models;
using Sharpformer.Pipelines;
using Sharpformer.Text;

namespace Sharpformer.Server;

/// <summary>One chat message as the chat route hands it to a prompt formatter.</summary>
/// <param name="Role">system, user, assistant (or another role the client sent).</param>
/// <param name="Content">The message text.</param>
public sealed record ChatTurn(string Role, string Content);

/// <summary>
/// A model the server offers under a name: a generative model (completions, and chat when it has a prompt formatter),
/// an encoder (embeddings, and fill-mask when it has an MLM head), a sequence classifier (classify) or a token
/// classifier (ner), the last two chosen by config.json's <c>architectures</c>.
/// </summary>
public sealed class ServedModel
{
    private ServedModel(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
    }

    /// <summary>The name clients pass as <c>model</c>.</summary>
    public string Name { get; }

    /// <summary>The causal LM (generative models), else null.</summary>
    public ISlotCausalLM? CausalLM { get; private init; }

    /// <summary>The tokenizer.</summary>
    public TextTokenizer? Tokenizer { get; private init; }

    /// <summary>
    /// Turns chat messages into the prompt text (the model's chat template), or null when the model has none the
    /// server can render; chat requests to it are then answered 400 with <see cref="ChatUnavailableReason"/>.
    /// </summary>
    public Func<IReadOnlyList<ChatTurn>, string>? ChatPrompt { get; private init; }

    /// <summary>Why chat is unavailable (null when <see cref="ChatPrompt"/> is set).</summary>
    public string? ChatUnavailableReason { get; private init; }

    /// <summary>Sentence embeddings (encoders), else null.</summary>
    public SentenceEmbeddingPipeline? Embeddings { get; private init; }

    /// <summary>Fill-mask (encoders with an MLM head), else null.</summary>
    public FillMaskPipeline? FillMask { get; private init; }

    /// <summary>Text classification (*ForSequenceClassification checkpoints), else null.</summary>
    public TextClassificationPipeline? Classifier { get; private init; }

    /// <summary>Token classification / NER (*ForTokenClassification checkpoints), else null.</summary>
    public TokenClassificationPipeline? Tagger { get; private init; }

    /// <summary>Whether the model runs on the encoder path (one request at a time) rather than the generation loop.</summary>
    public bool IsEncoder => CausalLM is null;

    /// <summary>A generative model.</summary>
    /// <param name="name">The name clients use.</param>
    /// <param name="model">The model (the server's inference loop becomes its only user).</param>
    /// <param name="tokenizer">Its tokenizer.</param>
    /// <param name="chatPrompt">Renders chat messages into the prompt, or null (chat answered 400).</param>
    /// <param name="chatUnavailableReason">With no formatter: the sentence the 400 gives (default: the model has no chat template).</param>
    /// <returns>The served model.</returns>
    public static ServedModel Generative(string name, ISlotCausalLM model, TextTokenizer tokenizer, Func<IReadOnlyList<ChatTurn>, string>? chatPrompt = null, string? chatUnavailableReason = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        return new ServedModel(name)
        {
            CausalLM = model,
            Tokenizer = tokenizer,
            ChatPrompt = chatPrompt,
            ChatUnavailableReason = chatPrompt is null ? chatUnavailableReason ?? $"model {name} has no chat template; use /v1/completions" : null,
        };
    }

    /// <summary>An encoder.</summary>
    /// <param name="name">The name clients use.</param>
    /// <param name="embeddings">The embedding pipeline.</param>
    /// <param name="fillMask">The fill-mask pipeline over the same model, or null.</param>
    /// <returns>The served model.</returns>
    public static ServedModel Encoder(string name, SentenceEmbeddingPipeline embeddings, FillMaskPipeline? fillMask = null)
    {
        ArgumentNullException.ThrowIfNull(embeddings);
        return new ServedModel(name) { Embeddings = embeddings, FillMask = fillMask, Tokenizer = embeddings.Tokenizer };
    }

    /// <summary>A sequence classifier (served at <c>/v1/classify</c>).</summary>
    /// <param name="name">The name clients use.</param>
    /// <param name="pipeline">The text-classification pipeline.</param>
    /// <returns>The served model.</returns>
    public static ServedModel ForClassification(string name, TextClassificationPipeline pipeline)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        return new ServedModel(name) { Classifier = pipeline, Tokenizer = pipeline.Tokenizer };
    }

    /// <summary>A token classifier (served at <c>/v1/ner</c>).</summary>
    /// <param name="name">The name clients use.</param>
    /// <param name="pipeline">The token-classification pipeline.</param>
    /// <returns>The served model.</returns>
    public static ServedModel ForTokenClassification(string name, TokenClassificationPipeline pipeline)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        return new ServedModel(name) { Tagger = pipeline, Tokenizer = pipeline.Tokenizer };
    }

    /// <summary>
    /// Loads a local Hugging Face folder or a Hub id (through the HF cache): a causal LM (config.json model_type among
    /// <see cref="AutoModelForCausalLM.SupportedModelTypes"/>) or an encoder. A generative folder serves chat through
    /// its chat template (tokenizer_config.json <c>chat_template</c> or chat_template.jinja); without one, chat
    /// requests are answered 400 (use /v1/completions).
    /// </summary>
    /// <param name="name">The name clients use.</param>
    /// <param name="path">The folder or Hub id.</param>
    /// <param name="ct">Cancels a download.</param>
    /// <returns>The served model.</returns>
    /// <exception cref="NotSupportedException">The model type can be neither generated from with continuous batching nor embedded.</exception>
    /// <exception cref="ModelUnavailableException">Not a local folder, not cached, and the Hub cannot be reached.</exception>
    public static async Task<ServedModel> LoadAsync(string name, string path, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        path = (await ModelFolders.ResolveAsync(path, new PipelineOptions(), $"pass --model {name}=<folder> with config.json, the weights and the tokenizer files.", ct).ConfigureAwait(false)).Directory;
        var architectures = ModelConfig.Load(path).Architectures;
        if (architectures.Any(a => a.EndsWith("ForSequenceClassification", StringComparison.Ordinal)))
        {
            return ForClassification(name, await TextClassificationPipeline.FromPretrainedAsync(path, null, ct).ConfigureAwait(false));
        }

        if (architectures.Any(a => a.EndsWith("ForTokenClassification", StringComparison.Ordinal)))
        {
            return ForTokenClassification(name, await TokenClassificationPipeline.FromPretrainedAsync(path, null, ct).ConfigureAwait(false));
        }

        if (AutoModelForCausalLM.SupportedModelTypes.Contains(ModelConfig.Load(path).ModelType))
        {
            var model = AutoModelForCausalLM.FromPretrained(path) as ISlotCausalLM
                ?? throw new NotSupportedException($"--model {name}={path}: this causal LM does not support continuous batching (ISlotCausalLM).");
            var tokenizer = AutoTokenizer.FromPretrained(path);
            string? reason = tokenizer.ChatTemplateError is { } error ? $"model {name} has a chat template this server cannot render ({error}); use /v1/completions" : null;
            return Generative(name, model, tokenizer, tokenizer.ChatTemplate is { } template ? TemplatePrompt(template) : null, reason);
        }

        var embeddings = await SentenceEmbeddingPipeline.FromPretrainedAsync(path, null, ct).ConfigureAwait(false);
        FillMaskPipeline? fillMask;
        try
        {
            fillMask = await FillMaskPipeline.FromPretrainedAsync(path, null, ct).ConfigureAwait(false);
        }
        catch (NotSupportedException)
        {
            fillMask = null;
        }

        return Encoder(name, embeddings, fillMask);
    }

    /// <summary>
    /// Renders chat turns with a model's chat template and the generation prompt, as transformers'
    /// <c>apply_chat_template(messages, add_generation_prompt=True)</c>. A template that rejects the conversation
    /// (raise_exception) throws <see cref="Text.Jinja.JinjaRaisedException"/>, which the chat route answers with 400.
    /// </summary>
    /// <param name="template">The model's chat template.</param>
    /// <returns>The prompt renderer for <see cref="Generative"/>.</returns>
    public static Func<IReadOnlyList<ChatTurn>, string> TemplatePrompt(ChatTemplate template)
    {
        ArgumentNullException.ThrowIfNull(template);
        return turns => template.Render(turns.Select(t => (t.Role, t.Content)), new ChatTemplateOptions { AddGenerationPrompt = true });
    }
}
