using Sharpformer.Models;
using Sharpformer.Text;

namespace Sharpformer.Pipelines;

/// <summary>How the token-classification pipeline fuses tokens into entities (HF's <c>aggregation_strategy</c>).</summary>
public enum AggregationStrategy
{
    /// <summary>One result per token: its best label and that label's probability.</summary>
    None,

    /// <summary>Tokens' best labels, then adjacent tokens with the same tag (B-/I- aside, a B- starting anew) grouped, scores averaged.</summary>
    Simple,

    /// <summary>Words first (a word takes the label of its first token), then grouped as <see cref="Simple"/>.</summary>
    First,

    /// <summary>Words first (the tokens' probabilities averaged, then the best label), then grouped as <see cref="Simple"/>.</summary>
    Average,

    /// <summary>Words first (the label of the token with the highest probability), then grouped as <see cref="Simple"/>.</summary>
    Max,
}

/// <summary>One token or one entity group, shaped like an entry of HF's token-classification pipeline output.</summary>
/// <param name="Entity">The label (HF's <c>entity</c>, e.g. "B-PER") without aggregation; the tag without its B-/I- prefix (HF's <c>entity_group</c>, e.g. "PER") with one.</param>
/// <param name="Score">The label's probability; with aggregation, the mean over the group's tokens or words.</param>
/// <param name="Index">The token's position in the encoded input ([CLS] is 0) without aggregation; null with one (HF omits it).</param>
/// <param name="Word">The token as in the vocabulary ("##ing") without aggregation; the group's tokens joined by the tokenizer's decoder with one.</param>
/// <param name="Start">Index of the first char in the input (UTF-16).</param>
/// <param name="End">Index one past the last char in the input (UTF-16).</param>
public sealed record TokenClassificationResult(string Entity, float Score, int? Index, string Word, int Start, int End);

/// <summary>
/// HF's <c>pipeline("token-classification")</c> (alias "ner"): labels per token with a token-classification model,
/// optionally fused into words and entity groups.
/// </summary>
/// <example>
/// <code>
/// var ner = await TokenClassificationPipeline.FromPretrainedAsync(TokenClassificationPipeline.DefaultModel);
/// foreach (var e in ner.Run("My name is Wolfgang and I live in Berlin", AggregationStrategy.Simple))
///     Console.WriteLine($"{e.Entity} {e.Word} [{e.Start}, {e.End}) {e.Score:F4}");
/// </code>
/// </example>
public sealed class TokenClassificationPipeline
{
    /// <summary>The model HF's token-classification pipeline loads when none is given.</summary>
    public const string DefaultModel = "dbmdz/bert-large-cased-finetuned-conll03-english";

    private static readonly string[] DefaultIgnoreLabels = ["O"];
    private readonly PipelineOptions _options;

    /// <summary>Builds the pipeline over a loaded tokenizer and token classifier.</summary>
    /// <exception cref="ArgumentException">The model has no labels.</exception>
    public TokenClassificationPipeline(TextTokenizer tokenizer, ITokenClassifier model, PipelineOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(model);
        if (model.Labels.Count == 0)
        {
            throw new ArgumentException("token-classification: the model has no labels (num_labels is 0); use a checkpoint fine-tuned for token classification.", nameof(model));
        }

        Tokenizer = tokenizer;
        Model = model;
        _options = options ?? new PipelineOptions();
    }

    /// <summary>The tokenizer.</summary>
    public TextTokenizer Tokenizer { get; }

    /// <summary>The token classifier.</summary>
    public ITokenClassifier Model { get; }

    /// <summary>
    /// Loads a token-classification model from a local folder or the Hub ("org/name", through the HF cache;
    /// HF_ENDPOINT and HF_HUB_OFFLINE are honoured) and builds the pipeline.
    /// </summary>
    /// <param name="modelIdOrFolder">"org/name" or a local folder; HF's default model when omitted.</param>
    /// <param name="options">Hub settings, warnings and truncation.</param>
    /// <param name="ct">Cancels downloads.</param>
    /// <returns>The pipeline.</returns>
    /// <exception cref="ModelUnavailableException">Not a local folder, not cached, and the Hub cannot be reached (or offline mode is on).</exception>
    /// <exception cref="NotSupportedException">The model type has no token-classification head here.</exception>
    public static async Task<TokenClassificationPipeline> FromPretrainedAsync(string modelIdOrFolder = DefaultModel, PipelineOptions? options = null, CancellationToken ct = default)
    {
        var (tokenizer, model) = await TaskModelLoader.LoadTokenClassifierAsync(modelIdOrFolder, options, ct).ConfigureAwait(false);
        return new TokenClassificationPipeline(tokenizer, model, options);
    }

    /// <summary>Labels one text.</summary>
    /// <param name="text">The text.</param>
    /// <param name="aggregation">How tokens are fused (HF's default: none).</param>
    /// <param name="ignoreLabels">Labels (or entity groups) left out of the result; null means HF's default ["O"].</param>
    /// <returns>The tokens or entity groups, in text order.</returns>
    /// <exception cref="ArgumentException">An empty text, or one longer than the model allows (without truncation).</exception>
    public IReadOnlyList<TokenClassificationResult> Run(string text, AggregationStrategy aggregation = AggregationStrategy.None, IReadOnlyList<string>? ignoreLabels = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        return RunBatch([text], aggregation, ignoreLabels)[0];
    }

    /// <summary>
    /// Labels B texts in batches of <paramref name="batchSize"/> grouped by length (sorted, each batch padded to its own
    /// longest text: <see cref="TaskBatches.LengthBuckets"/>); one result list per text, in input order.
    /// </summary>
    /// <param name="texts">The texts.</param>
    /// <param name="aggregation">As in <see cref="Run"/>.</param>
    /// <param name="ignoreLabels">As in <see cref="Run"/>.</param>
    /// <param name="batchSize">How many texts run through the model at once (tokenizers without a pad token run one at a time).</param>
    /// <returns>One list of tokens or entity groups per text.</returns>
    /// <exception cref="ArgumentException">As in <see cref="Run"/>, naming the input.</exception>
    public IReadOnlyList<IReadOnlyList<TokenClassificationResult>> RunBatch(
        IReadOnlyList<string> texts, AggregationStrategy aggregation = AggregationStrategy.None, IReadOnlyList<string>? ignoreLabels = null, int batchSize = 8)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (batchSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "token-classification: the batch size must be at least 1.");
        }

        if (!Enum.IsDefined(aggregation))
        {
            throw new ArgumentOutOfRangeException(nameof(aggregation), aggregation, "token-classification: the aggregation strategy must be none, simple, first, average or max.");
        }

        var encodings = new List<TokenEncoding>(texts.Count);
        for (var i = 0; i < texts.Count; i++)
        {
            ArgumentNullException.ThrowIfNull(texts[i], nameof(texts));
            if (string.IsNullOrWhiteSpace(texts[i]))
            {
                var which = texts.Count == 1 ? "the text" : $"input {i + 1}";
                throw new ArgumentException($"token-classification: {which} is empty; pass some text to label.", nameof(texts));
            }

            encodings.Add(TaskBatches.EncodeChecked(Tokenizer, Model, texts[i], null, _options, nameof(texts)));
        }

        if ((aggregation is AggregationStrategy.First or AggregationStrategy.Average or AggregationStrategy.Max) && Tokenizer is not BertWordPieceTokenizer)
        {
            _options.Warning?.Invoke("Tokenizer does not support real words, using fallback heuristic");
        }

        var ignored = ignoreLabels ?? DefaultIgnoreLabels;
        var labels = Model.Labels;
        var step = Tokenizer.PadTokenId is null ? 1 : batchSize;
        var results = new IReadOnlyList<TokenClassificationResult>[texts.Count];
        foreach (var batch in TaskBatches.LengthBuckets(encodings.Select(e => e.Count).ToList(), step))
        {
            var chunk = batch.Select(i => encodings[i]).ToList();
            var (ids, mask, types) = TaskBatches.Pad(chunk, TaskBatches.PadId(Tokenizer), Model.UsesTokenTypes);
            int length = ids.Shape[1];
            var logits = Model.TokenLogits(ids, mask, types).Contiguous().ToArray();
            if (logits.Length != chunk.Count * length * labels.Count)
            {
                throw new InvalidOperationException($"token-classification: the model returned {logits.Length} logits for [{chunk.Count}, {length}] tokens and {labels.Count} labels; its head does not match its id2label.");
            }

            for (var b = 0; b < chunk.Count; b++)
            {
                var rows = logits.AsSpan(b * length * labels.Count, chunk[b].Count * labels.Count);
                var entities = TokenAggregation.Postprocess(Tokenizer, labels, texts[batch[b]], chunk[b], rows, aggregation);
                results[batch[b]] = entities.Where(e => !ignored.Contains(e.Entity)).ToList();
            }
        }

        return results;
    }
}

/// <summary>HF's token-classification postprocess over one input's [T, L] logits: pre-entities, words, entity groups.</summary>
internal static class TokenAggregation
{
    /// <summary>A token of the text with its probabilities, as HF's <c>gather_pre_entities</c> makes it.</summary>
    private sealed record PreEntity(string Word, float[] Scores, int Start, int End, int Index, bool IsSubword);

    /// <summary>A labelled token or word before grouping.</summary>
    private sealed record Labelled(string Entity, float Score, int Index, string Word, int Start, int End);

    /// <summary>
    /// Softmax per token, special tokens dropped, then: <see cref="AggregationStrategy.None"/> one result per token;
    /// otherwise tokens (simple) or words (first/average/max) grouped into entity groups. Nothing is filtered here.
    /// </summary>
    public static List<TokenClassificationResult> Postprocess(
        TextTokenizer tokenizer, IReadOnlyList<string> labels, string sentence, TokenEncoding encoding, ReadOnlySpan<float> logits, AggregationStrategy aggregation)
    {
        var preEntities = Gather(tokenizer, sentence, encoding, logits, labels.Count);
        List<Labelled> entities;
        if (aggregation is AggregationStrategy.None or AggregationStrategy.Simple)
        {
            entities = new List<Labelled>(preEntities.Count);
            foreach (var pre in preEntities)
            {
                var best = TaskBatches.ArgMax(pre.Scores);
                entities.Add(new Labelled(labels[best], pre.Scores[best], pre.Index, pre.Word, pre.Start, pre.End));
            }

            if (aggregation == AggregationStrategy.None)
            {
                return entities.Select(e => new TokenClassificationResult(e.Entity, e.Score, e.Index, e.Word, e.Start, e.End)).ToList();
            }
        }
        else
        {
            entities = AggregateWords(tokenizer, labels, preEntities, aggregation);
        }

        return GroupEntities(tokenizer, entities);
    }

    /// <summary>
    /// HF's <c>gather_pre_entities</c>: every non-special token with its probabilities and char span. A WordPiece token is a
    /// subword when its vocabulary string is longer or shorter than the text it covers ("##ing" over "ing"); for other
    /// tokenizers, when it starts after char 0 and neither it nor the char before it is a space. An [UNK] takes the text
    /// it covers as its word and always starts a word.
    /// </summary>
    private static List<PreEntity> Gather(TextTokenizer tokenizer, string sentence, TokenEncoding encoding, ReadOnlySpan<float> logits, int labelCount)
    {
        var wordPiece = tokenizer is BertWordPieceTokenizer;
        var unkId = tokenizer.SpecialTokens.Unk is { } unk ? tokenizer.TokenToId(unk) : null;
        var result = new List<PreEntity>();
        for (var t = 0; t < encoding.Count; t++)
        {
            if (encoding.SpecialTokensMask[t] == 1 || encoding.AttentionMask[t] == 0)
            {
                continue;
            }

            var word = encoding.Tokens[t];
            var span = encoding.Offsets[t];
            var wordRef = sentence[span.Start..span.End];
            bool isSubword;
            if (wordPiece)
            {
                isSubword = CodePoints(word) != CodePoints(wordRef);
            }
            else
            {
                isSubword = span.Start > 0 && !sentence.AsSpan(span.Start - 1, Math.Min(2, sentence.Length - span.Start + 1)).Contains(' ');
            }

            if (encoding.Ids[t] == unkId)
            {
                word = wordRef;
                isSubword = false;
            }

            result.Add(new PreEntity(word, TaskBatches.Softmax(logits.Slice(t * labelCount, labelCount)), span.Start, span.End, t, isSubword));
        }

        return result;
    }

    /// <summary>HF's <c>aggregate_words</c>: a token that is not a subword starts a word; each word gets one label.</summary>
    private static List<Labelled> AggregateWords(TextTokenizer tokenizer, IReadOnlyList<string> labels, List<PreEntity> preEntities, AggregationStrategy aggregation)
    {
        var words = new List<Labelled>();
        var group = new List<PreEntity>();
        foreach (var pre in preEntities)
        {
            if (group.Count > 0 && !pre.IsSubword)
            {
                words.Add(AggregateWord(tokenizer, labels, group, aggregation));
                group.Clear();
            }

            group.Add(pre);
        }

        if (group.Count > 0)
        {
            words.Add(AggregateWord(tokenizer, labels, group, aggregation));
        }

        return words;
    }

    /// <summary>
    /// HF's <c>aggregate_word</c>: first — the first token's best label; max — the best label of the token whose best
    /// probability is highest (the first such token on ties); average — the best label of the tokens' mean probabilities.
    /// </summary>
    private static Labelled AggregateWord(TextTokenizer tokenizer, IReadOnlyList<string> labels, List<PreEntity> tokens, AggregationStrategy aggregation)
    {
        var word = tokenizer.ConvertTokensToString(tokens.Select(t => t.Word));
        float[] scores;
        switch (aggregation)
        {
            case AggregationStrategy.First:
                scores = tokens[0].Scores;
                break;
            case AggregationStrategy.Max:
                {
                    var best = tokens[0];
                    foreach (var token in tokens)
                    {
                        if (token.Scores.Max() > best.Scores.Max())
                        {
                            best = token;
                        }
                    }

                    scores = best.Scores;
                    break;
                }

            default:
                scores = new float[labels.Count];
                for (var l = 0; l < scores.Length; l++)
                {
                    var sum = 0f;
                    foreach (var token in tokens)
                    {
                        sum += token.Scores[l];
                    }

                    scores[l] = sum / tokens.Count;
                }

                break;
        }

        var label = TaskBatches.ArgMax(scores);
        return new Labelled(labels[label], scores[label], tokens[0].Index, word, tokens[0].Start, tokens[^1].End);
    }

    /// <summary>
    /// HF's <c>group_entities</c>: a token or word joins the current group when its tag (the label without "B-"/"I-")
    /// equals the previous one's and it is not a B-; a group's label is its first member's with everything up to the
    /// first "-" removed, its score the mean, its word the members' words joined by the tokenizer's decoder.
    /// </summary>
    private static List<TokenClassificationResult> GroupEntities(TextTokenizer tokenizer, List<Labelled> entities)
    {
        var groups = new List<TokenClassificationResult>();
        var current = new List<Labelled>();
        foreach (var entity in entities)
        {
            if (current.Count > 0)
            {
                var (bi, tag) = Tag(entity.Entity);
                var (_, lastTag) = Tag(current[^1].Entity);
                if (tag != lastTag || bi == 'B')
                {
                    groups.Add(GroupOf(tokenizer, current));
                    current = [];
                }
            }

            current.Add(entity);
        }

        if (current.Count > 0)
        {
            groups.Add(GroupOf(tokenizer, current));
        }

        return groups;
    }

    private static TokenClassificationResult GroupOf(TextTokenizer tokenizer, List<Labelled> members)
    {
        var first = members[0].Entity;
        var dash = first.IndexOf('-', StringComparison.Ordinal);
        var group = dash >= 0 ? first[(dash + 1)..] : first;
        var sum = 0f;
        foreach (var member in members)
        {
            sum += member.Score;
        }

        var word = tokenizer.ConvertTokensToString(members.Select(m => m.Word));
        return new TokenClassificationResult(group, sum / members.Count, null, word, members[0].Start, members[^1].End);
    }

    // HF's get_tag: "B-X" → (B, X), "I-X" → (I, X), anything else → (I, itself).
    private static (char Bi, string Tag) Tag(string label)
    {
        if (label.StartsWith("B-", StringComparison.Ordinal))
        {
            return ('B', label[2..]);
        }

        if (label.StartsWith("I-", StringComparison.Ordinal))
        {
            return ('I', label[2..]);
        }

        return ('I', label);
    }

    // Python's len: code points, not UTF-16 units.
    private static int CodePoints(string text) => text.EnumerateRunes().Count();
}
