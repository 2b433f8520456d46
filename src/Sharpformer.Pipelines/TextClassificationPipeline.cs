using Sharpformer.Models;
using Sharpformer.Text;

namespace Sharpformer.Pipelines;

/// <summary>One label and its score, shaped like an entry of HF's text-classification pipeline output.</summary>
/// <param name="Label">The label (config <c>id2label</c>).</param>
/// <param name="Score">The label's score after the chosen function (softmax probability, sigmoid, or the raw logit).</param>
public sealed record TextClassificationResult(string Label, float Score);

/// <summary>What turns logits into scores (HF's <c>function_to_apply</c>).</summary>
public enum ClassificationFunction
{
    /// <summary>1 / (1 + exp(−x)) per label: HF's default for multi-label models and models with one label.</summary>
    Sigmoid,

    /// <summary>exp(x − max) / Σ over the labels: HF's default for single-label models with several labels.</summary>
    Softmax,

    /// <summary>The raw logits.</summary>
    None,
}

/// <summary>
/// HF's <c>pipeline("text-classification")</c>: labels and scores for texts or text pairs with a sequence-classification
/// model (sentiment, topic, NLI…).
/// </summary>
/// <example>
/// <code>
/// var classify = await TextClassificationPipeline.FromPretrainedAsync(TextClassificationPipeline.DefaultModel);
/// var best = classify.Run("This movie was great!")[0];
/// Console.WriteLine($"{best.Label} {best.Score:F4}");   // POSITIVE 0.99…
/// </code>
/// </example>
public sealed class TextClassificationPipeline
{
    /// <summary>The model HF's text-classification pipeline loads when none is given.</summary>
    public const string DefaultModel = "distilbert/distilbert-base-uncased-finetuned-sst-2-english";

    private readonly PipelineOptions _options;

    /// <summary>Builds the pipeline over a loaded tokenizer and sequence classifier.</summary>
    /// <exception cref="ArgumentException">The model has no labels.</exception>
    public TextClassificationPipeline(TextTokenizer tokenizer, ISequenceClassifier model, PipelineOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(model);
        if (model.Labels.Count == 0)
        {
            throw new ArgumentException("text-classification: the model has no labels (num_labels is 0); use a checkpoint fine-tuned for classification.", nameof(model));
        }

        Tokenizer = tokenizer;
        Model = model;
        _options = options ?? new PipelineOptions();
    }

    /// <summary>The tokenizer.</summary>
    public TextTokenizer Tokenizer { get; }

    /// <summary>The sequence classifier.</summary>
    public ISequenceClassifier Model { get; }

    /// <summary>
    /// The function HF applies when none is asked for: sigmoid for a multi-label model or a model with a single label,
    /// else softmax.
    /// </summary>
    public ClassificationFunction DefaultFunction =>
        Model.Problem == ClassificationProblem.MultiLabel || Model.Labels.Count == 1 ? ClassificationFunction.Sigmoid : ClassificationFunction.Softmax;

    /// <summary>
    /// Loads a sequence-classification model from a local folder or the Hub ("org/name", through the HF cache;
    /// HF_ENDPOINT and HF_HUB_OFFLINE are honoured) and builds the pipeline.
    /// </summary>
    /// <param name="modelIdOrFolder">"org/name" or a local folder; HF's default model when omitted.</param>
    /// <param name="options">Hub settings, warnings and truncation.</param>
    /// <param name="ct">Cancels downloads.</param>
    /// <returns>The pipeline.</returns>
    /// <exception cref="ModelUnavailableException">Not a local folder, not cached, and the Hub cannot be reached (or offline mode is on).</exception>
    /// <exception cref="NotSupportedException">The model type has no sequence-classification head here.</exception>
    public static async Task<TextClassificationPipeline> FromPretrainedAsync(string modelIdOrFolder = DefaultModel, PipelineOptions? options = null, CancellationToken ct = default)
    {
        var (tokenizer, model) = await TaskModelLoader.LoadSequenceClassifierAsync(modelIdOrFolder, options, ct).ConfigureAwait(false);
        return new TextClassificationPipeline(tokenizer, model, options);
    }

    /// <summary>
    /// Classifies one text, or one text pair (encoded with the tokenizer's pair template, e.g. [CLS] A [SEP] B [SEP]).
    /// </summary>
    /// <param name="text">The text.</param>
    /// <param name="textPair">The second text of a pair (NLI, paraphrase), or null.</param>
    /// <param name="topK">How many labels to return, best first (HF's default is the best label only); null returns every label, best first.</param>
    /// <param name="function">The score function; null chooses as HF does (<see cref="DefaultFunction"/>).</param>
    /// <returns>The labels and scores, best first (ties keep label order).</returns>
    /// <exception cref="ArgumentException">An empty text, topK below 1, a pair for a model without token types, or an input longer than the model allows.</exception>
    public IReadOnlyList<TextClassificationResult> Run(string text, string? textPair = null, int? topK = 1, ClassificationFunction? function = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        return RunBatch([text], textPair is null ? null : [textPair], topK, function)[0];
    }

    /// <summary>
    /// Classifies B texts (or pairs) in batches of <paramref name="batchSize"/> grouped by length (sorted, each batch
    /// padded to its own longest input: <see cref="TaskBatches.LengthBuckets"/>); one result list per text, in input order.
    /// </summary>
    /// <param name="texts">The texts.</param>
    /// <param name="textPairs">One second text per text, or null.</param>
    /// <param name="topK">As in <see cref="Run"/>.</param>
    /// <param name="function">As in <see cref="Run"/>.</param>
    /// <param name="batchSize">How many inputs run through the model at once (tokenizers without a pad token run one at a time).</param>
    /// <returns>One list of labels and scores per input.</returns>
    /// <exception cref="ArgumentException">As in <see cref="Run"/>, naming the input; or the pairs do not match the texts.</exception>
    public IReadOnlyList<IReadOnlyList<TextClassificationResult>> RunBatch(
        IReadOnlyList<string> texts, IReadOnlyList<string>? textPairs = null, int? topK = 1, ClassificationFunction? function = null, int batchSize = 8)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (topK is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(topK), topK, "text-classification: top_k must be at least 1 (or null for every label).");
        }

        if (batchSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "text-classification: the batch size must be at least 1.");
        }

        if (textPairs is not null && textPairs.Count != texts.Count)
        {
            throw new ArgumentException($"text-classification: got {texts.Count} texts but {textPairs.Count} text pairs; pass one pair per text, or none.", nameof(textPairs));
        }

        if (textPairs is not null && !Model.UsesTokenTypes)
        {
            throw new ArgumentException(
                "text-classification: this model reads no token_type_ids (DistilBERT, GPT-2), so the second text of a pair would reach it unmarked; classify a single text, or use a model with token types (BERT) for pairs.",
                nameof(textPairs));
        }

        var encodings = new List<TokenEncoding>(texts.Count);
        for (var i = 0; i < texts.Count; i++)
        {
            ArgumentNullException.ThrowIfNull(texts[i], nameof(texts));
            if (string.IsNullOrWhiteSpace(texts[i]) || (textPairs is not null && string.IsNullOrWhiteSpace(textPairs[i])))
            {
                var which = texts.Count == 1 ? "the text" : $"input {i + 1}";
                throw new ArgumentException($"text-classification: {which} is empty; pass some text to classify.", nameof(texts));
            }

            encodings.Add(TaskBatches.EncodeChecked(Tokenizer, Model, texts[i], textPairs?[i], _options, nameof(texts)));
        }

        var apply = function ?? DefaultFunction;
        var step = Tokenizer.PadTokenId is null ? 1 : batchSize;
        var labels = Model.Labels;
        var results = new IReadOnlyList<TextClassificationResult>[texts.Count];
        foreach (var batch in TaskBatches.LengthBuckets(encodings.Select(e => e.Count).ToList(), step))
        {
            var chunk = batch.Select(i => encodings[i]).ToList();
            var (ids, mask, types) = TaskBatches.Pad(chunk, TaskBatches.PadId(Tokenizer), Model.UsesTokenTypes);
            var logits = Model.ClassificationLogits(ids, mask, types).Contiguous().ToArray();
            if (logits.Length != chunk.Count * labels.Count)
            {
                throw new InvalidOperationException($"text-classification: the model returned {logits.Length} logits for {chunk.Count} inputs and {labels.Count} labels; its head does not match its id2label.");
            }

            for (var b = 0; b < chunk.Count; b++)
            {
                results[batch[b]] = Score(logits.AsSpan(b * labels.Count, labels.Count), labels, apply, topK);
            }
        }

        return results;
    }

    /// <summary>HF's postprocess: the function over one row of logits, then every label sorted by score (stable), cut to top-k.</summary>
    internal static IReadOnlyList<TextClassificationResult> Score(ReadOnlySpan<float> logits, IReadOnlyList<string> labels, ClassificationFunction function, int? topK)
    {
        var scores = function switch
        {
            ClassificationFunction.Sigmoid => TaskBatches.Sigmoid(logits),
            ClassificationFunction.Softmax => TaskBatches.Softmax(logits),
            _ => logits.ToArray(),
        };
        var ranked = Enumerable.Range(0, scores.Length)
            .OrderByDescending(i => scores[i])
            .ThenBy(i => i)
            .Select(i => new TextClassificationResult(labels[i], scores[i]));
        return (topK is { } k ? ranked.Take(k) : ranked).ToList();
    }
}
