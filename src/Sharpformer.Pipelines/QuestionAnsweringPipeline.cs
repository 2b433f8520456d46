using Sharpformer.Models;
using Sharpformer.Text;

namespace Sharpformer.Pipelines;

/// <summary>One answer span, shaped like HF's question-answering pipeline output.</summary>
/// <param name="Score">The span's probability: P(start) · P(end) within its window (for the empty answer, the smallest P(CLS)·P(CLS) over the windows).</param>
/// <param name="Start">Index of the answer's first char in the context (UTF-16).</param>
/// <param name="End">Index one past the answer's last char in the context (UTF-16).</param>
/// <param name="Answer">The context's text between <paramref name="Start"/> and <paramref name="End"/>.</param>
public sealed record QuestionAnsweringResult(float Score, int Start, int End, string Answer);

/// <summary>The knobs of <see cref="QuestionAnsweringPipeline.Run"/>, with HF's defaults.</summary>
public sealed record QuestionAnsweringOptions
{
    /// <summary>How many answers to return, best first (HF's <c>top_k</c>, default 1).</summary>
    public int TopK { get; init; } = 1;

    /// <summary>The length of each window in tokens, question and special tokens included (HF's <c>max_seq_len</c>); null means min(model_max_length, 384).</summary>
    public int? MaxSeqLen { get; init; }

    /// <summary>How many context tokens consecutive windows share (HF's <c>doc_stride</c>); null means min(max_seq_len / 2, 128).</summary>
    public int? DocStride { get; init; }

    /// <summary>
    /// Cut the question to this many tokens (HF's <c>max_question_len</c>, which only its slow-tokenizer path applies);
    /// null keeps the whole question, as HF's fast-tokenizer path does.
    /// </summary>
    public int? MaxQuestionLen { get; init; }

    /// <summary>The longest answer in tokens (HF's <c>max_answer_len</c>, default 15).</summary>
    public int MaxAnswerLen { get; init; } = 15;

    /// <summary>Also offer the empty answer, scored by the CLS token (HF's <c>handle_impossible_answer</c>; SQuAD 2.0 models).</summary>
    public bool HandleImpossibleAnswer { get; init; }

    /// <summary>Widen spans to whole words of the context (HF's <c>align_to_words</c>, default true); false keeps the tokens' own offsets.</summary>
    public bool AlignToWords { get; init; } = true;
}

/// <summary>
/// HF's <c>pipeline("question-answering")</c>: extractive QA, the best spans of a context that answer a question, over
/// overlapping windows when the context is longer than the model takes.
/// </summary>
/// <example>
/// <code>
/// var qa = await QuestionAnsweringPipeline.FromPretrainedAsync(QuestionAnsweringPipeline.DefaultModel);
/// var best = qa.Run("Where do I live?", "My name is Wolfgang and I live in Berlin")[0];
/// Console.WriteLine($"{best.Answer} ({best.Score:F4})");   // Berlin
/// </code>
/// </example>
public sealed class QuestionAnsweringPipeline
{
    /// <summary>The model HF's question-answering pipeline loads when none is given.</summary>
    public const string DefaultModel = "distilbert/distilbert-base-cased-distilled-squad";

    /// <summary>HF's default window length, before the model's own limit caps it.</summary>
    public const int DefaultMaxSeqLen = 384;

    /// <summary>Windows run through the model this many at a time.</summary>
    private const int WindowBatch = 8;

    /// <summary>Builds the pipeline over a loaded tokenizer and question-answering model.</summary>
    public QuestionAnsweringPipeline(TextTokenizer tokenizer, IQuestionAnswering model)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(model);
        Tokenizer = tokenizer;
        Model = model;
    }

    /// <summary>The tokenizer.</summary>
    public TextTokenizer Tokenizer { get; }

    /// <summary>The question-answering model.</summary>
    public IQuestionAnswering Model { get; }

    /// <summary>
    /// Loads an extractive question-answering model from a local folder or the Hub ("org/name", through the HF cache;
    /// HF_ENDPOINT and HF_HUB_OFFLINE are honoured) and builds the pipeline.
    /// </summary>
    /// <param name="modelIdOrFolder">"org/name" or a local folder; HF's default model when omitted.</param>
    /// <param name="options">Hub settings and warnings.</param>
    /// <param name="ct">Cancels downloads.</param>
    /// <returns>The pipeline.</returns>
    /// <exception cref="ModelUnavailableException">Not a local folder, not cached, and the Hub cannot be reached (or offline mode is on).</exception>
    /// <exception cref="NotSupportedException">The model type has no question-answering head here.</exception>
    public static async Task<QuestionAnsweringPipeline> FromPretrainedAsync(string modelIdOrFolder = DefaultModel, PipelineOptions? options = null, CancellationToken ct = default)
    {
        var (tokenizer, model) = await TaskModelLoader.LoadQuestionAnsweringAsync(modelIdOrFolder, options, ct).ConfigureAwait(false);
        return new QuestionAnsweringPipeline(tokenizer, model);
    }

    /// <summary>
    /// The best answers to <paramref name="question"/> in <paramref name="context"/>. The context is cut into windows of
    /// max_seq_len tokens ([CLS] question [SEP] context-part [SEP]) overlapping by doc_stride tokens; in each window the
    /// start and end logits outside the context (CLS kept) are masked, softmaxed, and every span of at most
    /// max_answer_len tokens scored P(start)·P(end); the spans of all windows are ranked together.
    /// </summary>
    /// <param name="question">The question.</param>
    /// <param name="context">The text that holds the answer.</param>
    /// <param name="options">Top-k, window and answer lengths; HF's defaults when null.</param>
    /// <returns>Up to top-k answers, best first.</returns>
    /// <exception cref="ArgumentException">An empty question or context, an option out of range, or a question too long for the window.</exception>
    public IReadOnlyList<QuestionAnsweringResult> Run(string question, string context, QuestionAnsweringOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(question);
        ArgumentNullException.ThrowIfNull(context);
        options ??= new QuestionAnsweringOptions();
        if (string.IsNullOrWhiteSpace(question))
        {
            throw new ArgumentException("question-answering: the question is empty; pass the question to answer.", nameof(question));
        }

        if (string.IsNullOrWhiteSpace(context))
        {
            throw new ArgumentException("question-answering: the context is empty; pass the text that holds the answer.", nameof(context));
        }

        var windows = QuestionWindows.Build(Tokenizer, Model, question, context, options);
        var spans = new List<(float[] Start, float[] End)>(windows.Count);
        for (var first = 0; first < windows.Count; first += WindowBatch)
        {
            var chunk = windows.GetRange(first, Math.Min(WindowBatch, windows.Count - first));
            var (ids, mask, types) = TaskBatches.Pad(chunk.Select(w => ((IReadOnlyList<int>)w.Ids, (IReadOnlyList<int>)w.TypeIds)).ToList(), TaskBatches.PadId(Tokenizer), Model.UsesTokenTypes);
            int length = ids.Shape[1];
            var (startLogits, endLogits) = Model.SpanLogits(ids, mask, types);
            var starts = startLogits.Contiguous().ToArray();
            var ends = endLogits.Contiguous().ToArray();
            if (starts.Length != chunk.Count * length || ends.Length != starts.Length)
            {
                throw new InvalidOperationException($"question-answering: the model returned {starts.Length} start and {ends.Length} end logits for [{chunk.Count}, {length}] tokens; expected one of each per token.");
            }

            for (var b = 0; b < chunk.Count; b++)
            {
                var count = chunk[b].Ids.Length;
                spans.Add((starts.AsSpan(b * length, count).ToArray(), ends.AsSpan(b * length, count).ToArray()));
            }
        }

        return SpanSelection.Select(windows, spans, context, options);
    }
}

/// <summary>One window of a question-answering input: [CLS] question [SEP] part of the context [SEP], per token.</summary>
/// <param name="Ids">Token ids.</param>
/// <param name="TypeIds">Segment ids from the tokenizer's pair template.</param>
/// <param name="Offsets">Char spans in the context for context tokens; (0, 0) for the rest.</param>
/// <param name="WordIds">The index of the context word a token belongs to (HF's word_ids), or -1 (question and special tokens).</param>
/// <param name="Desired">Whether a token may start or end an answer as HF's p_mask says: a context token, or the CLS token.</param>
internal sealed record QuestionWindow(int[] Ids, int[] TypeIds, TextSpan[] Offsets, int[] WordIds, bool[] Desired);

/// <summary>
/// HF's question-answering preprocess with a fast tokenizer: the tokenizer's <c>truncation="only_second"</c> with
/// <c>stride</c> and overflowing windows (<see cref="EncodeOptions.ReturnOverflowingTokens"/>) — the question whole in
/// every window, the context cut into parts of max_seq_len − |question| − specials tokens, each part repeating the last
/// doc_stride tokens of the one before.
/// </summary>
internal static class QuestionWindows
{
    /// <summary>The windows of one question and context.</summary>
    public static List<QuestionWindow> Build(TextTokenizer tokenizer, ITaskModel model, string question, string context, QuestionAnsweringOptions options)
    {
        var modelLimit = TaskBatches.MaxLength(tokenizer, model);
        var maxSeqLen = options.MaxSeqLen ?? Math.Min(modelLimit, QuestionAnsweringPipeline.DefaultMaxSeqLen);
        if (maxSeqLen < 1 || maxSeqLen > modelLimit)
        {
            throw new ArgumentOutOfRangeException(nameof(options), maxSeqLen, $"question-answering: max_seq_len must be between 1 and the model's limit {modelLimit}; got {maxSeqLen}.");
        }

        var docStride = options.DocStride ?? Math.Min(maxSeqLen / 2, 128);
        if (docStride < 0 || docStride > maxSeqLen)
        {
            throw new ArgumentOutOfRangeException(nameof(options), docStride, $"question-answering: doc_stride ({docStride}) must be between 0 and max_seq_len ({maxSeqLen}).");
        }

        if (options.TopK < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.TopK, "question-answering: top_k must be at least 1.");
        }

        if (options.MaxAnswerLen < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxAnswerLen, "question-answering: max_answer_len must be at least 1.");
        }

        if (options.MaxQuestionLen is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxQuestionLen, "question-answering: max_question_len must be at least 1 (or null to keep the whole question).");
        }

        var plain = new EncodeOptions { AddSpecialTokens = false };
        var questionTokens = tokenizer.Encode(question, options: plain);
        if (options.MaxQuestionLen is { } maxQuestion && questionTokens.Count > maxQuestion)
        {
            // HF's slow path cuts the question's tokens; cutting the text after the last kept token gives those tokens.
            question = question[..questionTokens.Offsets[maxQuestion - 1].End];
            questionTokens = tokenizer.Encode(question, options: plain);
        }

        var specials = tokenizer.Encode(question, question).Count - (2 * questionTokens.Count);
        var budget = maxSeqLen - questionTokens.Count - specials;
        if (budget < 1)
        {
            throw new ArgumentException(
                $"question-answering: the question is {questionTokens.Count} tokens, which with {specials} special tokens leaves no room for the context in a window of max_seq_len {maxSeqLen}; shorten the question, set max_question_len, or raise max_seq_len.",
                nameof(question));
        }

        var window = new EncodeOptions
        {
            Truncation = true,
            MaxLength = maxSeqLen,
            TruncationStrategy = TruncationStrategy.OnlySecond,
            Stride = docStride,
            ReturnOverflowingTokens = true,
        };
        var contextLength = tokenizer.Encode(context, options: plain).Count;
        if (contextLength == 0)
        {
            throw new ArgumentException("question-answering: the context has no tokens; pass the text that holds the answer.", nameof(context));
        }

        if (contextLength > budget && docStride >= budget)
        {
            throw new ArgumentException(
                $"question-answering: doc_stride {docStride} must be smaller than the {budget} context tokens a window holds (max_seq_len {maxSeqLen} minus the question and special tokens); lower doc_stride or raise max_seq_len.",
                nameof(options));
        }

        var encoding = tokenizer.Encode(question, context, window);
        var clsId = tokenizer.SpecialTokens.Cls is { } cls ? tokenizer.TokenToId(cls) : null;
        var windows = new List<QuestionWindow> { Window(encoding, clsId) };
        foreach (var overflow in encoding.Overflowing)
        {
            windows.Add(Window(overflow, clsId));
        }

        return windows;
    }

    /// <summary>
    /// One window as the postprocess needs it: HF's p_mask (desired = a context token, or a CLS token) and the context
    /// word of each token (-1 outside the context).
    /// </summary>
    private static QuestionWindow Window(TokenEncoding encoding, int? clsId)
    {
        var count = encoding.Count;
        var words = new int[count];
        var desired = new bool[count];
        for (var t = 0; t < count; t++)
        {
            var inContext = encoding.SequenceIds[t] == 1;
            words[t] = inContext ? encoding.WordIds[t] : -1;
            desired[t] = inContext || encoding.Ids[t] == clsId;
        }

        return new QuestionWindow(encoding.Ids.ToArray(), encoding.TypeIds.ToArray(), encoding.Offsets.ToArray(), words, desired);
    }
}

/// <summary>HF's question-answering postprocess and <c>decode</c>: masked softmax per window, banded outer product, top-k spans, char offsets.</summary>
internal static class SpanSelection
{
    /// <summary>HF's mask value for logits outside the context (exp of it underflows to 0).</summary>
    private const float Masked = -10000f;

    /// <summary>The top-k answers over all windows, with the empty answer when asked for.</summary>
    public static IReadOnlyList<QuestionAnsweringResult> Select(
        IReadOnlyList<QuestionWindow> windows, IReadOnlyList<(float[] Start, float[] End)> logits, string context, QuestionAnsweringOptions options)
    {
        var answers = new List<QuestionAnsweringResult>();
        var minNullScore = 1_000_000f;
        for (var w = 0; w < windows.Count; w++)
        {
            var window = windows[w];
            var startProbs = MaskedSoftmax(logits[w].Start, window.Desired);
            var endProbs = MaskedSoftmax(logits[w].End, window.Desired);
            if (options.HandleImpossibleAnswer)
            {
                minNullScore = Math.Min(minNullScore, startProbs[0] * endProbs[0]);
            }

            // HF zeroes position 0 (CLS) so that it never starts or ends a span.
            startProbs[0] = 0f;
            endProbs[0] = 0f;
            foreach (var (s, e, score) in BestSpans(startProbs, endProbs, window.Desired, options.TopK, options.MaxAnswerLen))
            {
                var (startChar, endChar) = CharSpan(window, s, e, options.AlignToWords);
                answers.Add(new QuestionAnsweringResult(score, startChar, endChar, context[startChar..endChar]));
            }
        }

        if (options.HandleImpossibleAnswer)
        {
            answers.Add(new QuestionAnsweringResult(minNullScore, 0, 0, ""));
        }

        // A stable sort, as Python's sorted: equal scores keep window order.
        return answers.OrderByDescending(a => a.Score).Take(options.TopK).ToList();
    }

    /// <summary>Logits outside <paramref name="desired"/> set to −10000, then exp(x − max) / Σ in float32 (numpy's order).</summary>
    internal static float[] MaskedSoftmax(float[] logits, bool[] desired)
    {
        var masked = new float[logits.Length];
        for (var t = 0; t < logits.Length; t++)
        {
            masked[t] = desired[t] ? logits[t] : Masked;
        }

        return TaskBatches.Softmax(masked);
    }

    /// <summary>
    /// HF's <c>decode</c>: scores P(start = s)·P(end = e) for s ≤ e &lt; s + max_answer_len, best first, of the spans whose
    /// start and end are both context tokens. Position 0 (CLS, zeroed) never starts or ends a span here; HF can return
    /// such zero-score spans only when top_k exceeds the number of spans with a non-zero score. Ties keep (s, e) order.
    /// </summary>
    internal static List<(int Start, int End, float Score)> BestSpans(float[] start, float[] end, bool[] desired, int topK, int maxAnswerLen)
    {
        var spans = new List<(int Start, int End, float Score)>();
        for (var s = 1; s < start.Length; s++)
        {
            if (!desired[s])
            {
                continue;
            }

            for (var e = s; e < Math.Min(end.Length, s + maxAnswerLen); e++)
            {
                if (desired[e])
                {
                    spans.Add((s, e, start[s] * end[e]));
                }
            }
        }

        return spans.OrderByDescending(x => x.Score).Take(topK).ToList();
    }

    /// <summary>
    /// HF's <c>get_indices</c>: with <paramref name="alignToWords"/>, from the start of the first token of the start
    /// token's word to the end of the last token of the end token's word (within the window); otherwise, or for tokens
    /// without a word, the tokens' own offsets.
    /// </summary>
    internal static (int Start, int End) CharSpan(QuestionWindow window, int s, int e, bool alignToWords)
    {
        var offsets = window.Offsets;
        if (!alignToWords || window.WordIds[s] < 0 || window.WordIds[e] < 0)
        {
            return (offsets[s].Start, offsets[e].End);
        }

        var first = s;
        while (first > 0 && window.WordIds[first - 1] == window.WordIds[s])
        {
            first--;
        }

        var last = e;
        while (last + 1 < window.WordIds.Length && window.WordIds[last + 1] == window.WordIds[e])
        {
            last++;
        }

        return (offsets[first].Start, offsets[last].End);
    }
}
