using System.Text.Json;
using Sharpformer.Tensors;
using Sharpformer.Text;

namespace Sharpformer.Training.FineTuning;

/// <summary>One answer of a SQuAD question.</summary>
/// <param name="Text">The answer text.</param>
/// <param name="Start">Its start in the context (UTF-16 index, SQuAD's <c>answer_start</c>).</param>
public sealed record QaAnswer(string Text, int Start);

/// <summary>One SQuAD question with its context.</summary>
/// <param name="Id">The question id.</param>
/// <param name="Title">The article title.</param>
/// <param name="Context">The paragraph.</param>
/// <param name="Question">The question.</param>
/// <param name="Answers">The answers (several in SQuAD's dev sets; none for an unanswerable v2 question).</param>
/// <param name="IsImpossible">SQuAD v2's <c>is_impossible</c>.</param>
/// <param name="Location">Where the question is: "file:line: JSON path", for messages.</param>
public sealed record QaExample(string Id, string Title, string Context, string Question, IReadOnlyList<QaAnswer> Answers, bool IsImpossible, string Location);

/// <summary>Reads SQuAD-format JSON (v1.1, and v2.0 with <c>is_impossible</c>).</summary>
public static class SquadData
{
    /// <summary>
    /// Reads <c>{"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question", "answers": [{"text",
    /// "answer_start"}], "is_impossible"?}]}]}]}</c>, checking that every answer's text is at its answer_start.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <returns>The questions in file order.</returns>
    /// <exception cref="InvalidDataException">The file is empty or malformed, an answer is not at its answer_start, or a question has no answers without being impossible; the message names the file, the line and JSON path of the question, and its id.</exception>
    public static IReadOnlyList<QaExample> Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"SQuAD data '{path}' not found; pass a SQuAD-format .json file.", path);
        JsonDocument document;
        var bytes = File.ReadAllBytes(path);
        try
        {
            document = JsonDocument.Parse(bytes);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}:{(e.LineNumber ?? 0) + 1}: not valid JSON ({e.Message}).", e);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array)
            {
                throw new InvalidDataException($"{path}: no top-level \"data\" array; this is not a SQuAD-format file.");
            }

            var lines = QuestionLines(bytes);
            var examples = new List<QaExample>();
            var a = 0;
            foreach (var article in data.EnumerateArray())
            {
                var title = article.TryGetProperty("title", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : string.Empty;
                var p = 0;
                foreach (var paragraph in Array(article, "paragraphs", $"{path}: data[{a}]"))
                {
                    var where = $"data[{a}].paragraphs[{p}]";
                    var context = String(paragraph, "context", $"{path}: {where}");
                    var q = 0;
                    foreach (var qa in Array(paragraph, "qas", $"{path}: {where}"))
                    {
                        var line = examples.Count < lines.Count ? lines[examples.Count] : 0;
                        var location = $"{path}:{line}: {where}.qas[{q}]";
                        examples.Add(ReadQuestion(qa, title, context, location));
                        q++;
                    }

                    p++;
                }

                a++;
            }

            if (examples.Count == 0) throw new InvalidDataException($"{path}: the file has no questions.");
            return examples;
        }
    }

    /// <summary>The 1-based line of each object in a "qas" array, in document order (JsonDocument keeps no positions).</summary>
    private static List<int> QuestionLines(byte[] json)
    {
        var lines = new List<int>();
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip });
        // For each open container: the property name it was the value of (arrays) or null.
        var names = new Stack<string?>();
        string? property = null;
        var line = 1;
        var counted = 0;
        while (reader.Read())
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.PropertyName:
                    property = reader.GetString();
                    break;
                case JsonTokenType.StartArray:
                    names.Push(property);
                    property = null;
                    break;
                case JsonTokenType.StartObject:
                    if (names.Count > 0 && names.Peek() == "qas" && property is null)
                    {
                        var at = (int)reader.TokenStartIndex;
                        for (; counted < at; counted++)
                        {
                            if (json[counted] == (byte)'\n') line++;
                        }

                        lines.Add(line);
                    }

                    names.Push(null);
                    property = null;
                    break;
                case JsonTokenType.EndArray:
                case JsonTokenType.EndObject:
                    names.Pop();
                    property = null;
                    break;
                default:
                    property = null;
                    break;
            }
        }

        return lines;
    }

    private static QaExample ReadQuestion(JsonElement qa, string title, string context, string location)
    {
        var id = qa.TryGetProperty("id", out var idElement) ? idElement.ValueKind == JsonValueKind.String ? idElement.GetString()! : idElement.GetRawText() : throw new InvalidDataException($"{location}: the question has no \"id\".");
        var question = String(qa, "question", $"{location} (id {id})");
        var impossible = qa.TryGetProperty("is_impossible", out var flag) && flag.ValueKind == JsonValueKind.True;
        var answers = new List<QaAnswer>();
        if (qa.TryGetProperty("answers", out var list) && list.ValueKind == JsonValueKind.Array)
        {
            var i = 0;
            foreach (var answer in list.EnumerateArray())
            {
                var text = String(answer, "text", $"{location}.answers[{i}] (id {id})");
                if (!answer.TryGetProperty("answer_start", out var startElement) || !startElement.TryGetInt32(out var start))
                {
                    throw new InvalidDataException($"{location}.answers[{i}] (id {id}): no integer \"answer_start\".");
                }

                if (start < 0 || start + text.Length > context.Length || string.CompareOrdinal(context, start, text, 0, text.Length) != 0)
                {
                    var found = start >= 0 && start < context.Length ? context.Substring(start, Math.Min(text.Length, context.Length - start)) : "(outside the context)";
                    throw new InvalidDataException($"{location}.answers[{i}] (id {id}): the answer '{text}' is not at answer_start {start} of its context (found '{found}'); fix answer_start (a UTF-16 character index into the context) or the text.");
                }

                answers.Add(new QaAnswer(text, start));
                i++;
            }
        }

        if (impossible && answers.Count > 0)
        {
            throw new InvalidDataException($"{location} (id {id}): is_impossible is true but the question has {answers.Count} answer(s); SQuAD v2 puts those under plausible_answers.");
        }

        if (!impossible && answers.Count == 0)
        {
            throw new InvalidDataException($"{location} (id {id}): the question has no answers; give at least one, or mark it \"is_impossible\": true (SQuAD v2).");
        }

        return new QaExample(id, title, context, question, answers, impossible, location);
    }

    private static JsonElement.ArrayEnumerator Array(JsonElement parent, string name, string where)
    {
        if (parent.ValueKind != JsonValueKind.Object || !parent.TryGetProperty(name, out var array) || array.ValueKind != JsonValueKind.Array)
        {
            throw new InvalidDataException($"{where}: no \"{name}\" array.");
        }

        return array.EnumerateArray();
    }

    private static string String(JsonElement parent, string name, string where)
    {
        if (parent.ValueKind != JsonValueKind.Object || !parent.TryGetProperty(name, out var value) || value.ValueKind != JsonValueKind.String)
        {
            throw new InvalidDataException($"{where}: no string \"{name}\".");
        }

        return value.GetString()!;
    }
}

/// <summary>One window (feature) of a question and a slice of its context.</summary>
/// <param name="Encoding">The window's encoding ([CLS] question [SEP] context slice [SEP]).</param>
/// <param name="ExampleIndex">The index of its question in the example list (HF's overflow_to_sample_mapping).</param>
/// <param name="StartPosition">The answer's first token, or the [CLS] index when the answer is not in this window (training features).</param>
/// <param name="EndPosition">The answer's last token, or the [CLS] index.</param>
/// <param name="ContextOffsets">Per token, its span in the context, or null outside the context (HF's eval offset_mapping with None).</param>
public sealed record QaFeature(TokenEncoding Encoding, int ExampleIndex, int StartPosition, int EndPosition, IReadOnlyList<TextSpan?> ContextOffsets);

/// <summary>One scored answer candidate.</summary>
/// <param name="Text">The answer text (empty for the null answer).</param>
/// <param name="Score">start logit + end logit.</param>
/// <param name="StartLogit">The start logit.</param>
/// <param name="EndLogit">The end logit.</param>
/// <param name="Probability">Softmax of the scores over the n-best list.</param>
public sealed record QaCandidate(string Text, double Score, double StartLogit, double EndLogit, double Probability);

/// <summary>The answer to one question after post-processing.</summary>
/// <param name="Id">The question id.</param>
/// <param name="Text">The predicted answer ("" when SQuAD v2 predicts no answer).</param>
/// <param name="NBest">The n-best candidates, best first.</param>
/// <param name="NullScoreDiff">SQuAD v2: null score minus the best non-null score; null for v1.</param>
public sealed record QaPrediction(string Id, string Text, IReadOnlyList<QaCandidate> NBest, double? NullScoreDiff);

/// <summary>
/// Question-answering features and answers as HF's run_qa.py and utils_qa.py make them: question + context windows
/// with <c>max_length</c>/<c>doc_stride</c>/offsets (<c>prepare_train_features</c>, <c>prepare_validation_features</c>)
/// and the logits → text post-processing (<c>postprocess_qa_predictions</c>).
/// </summary>
public static class QuestionAnsweringFeatures
{
    /// <summary>
    /// HF's <c>prepare_train_features</c>: each question (left-stripped) with its context, truncated only_second to
    /// <paramref name="maxLength"/> with stride <paramref name="docStride"/>, every window a feature; the answer (the
    /// first one) is located with the offsets: its first and last token when it lies wholly inside the window's context,
    /// else both positions are the [CLS] index (also for unanswerable questions).
    /// </summary>
    /// <param name="tokenizer">A tokenizer with a [CLS] token (BERT-style).</param>
    /// <param name="examples">The questions.</param>
    /// <param name="maxLength">Tokens per window (HF default 384).</param>
    /// <param name="docStride">Overlap between windows (HF default 128).</param>
    /// <returns>The features, in order.</returns>
    public static IReadOnlyList<QaFeature> PrepareTrain(TextTokenizer tokenizer, IReadOnlyList<QaExample> examples, int maxLength = 384, int docStride = 128)
    {
        var windows = Encode(tokenizer, examples, maxLength, docStride);
        var cls = ClsId(tokenizer);
        var features = new List<QaFeature>(windows.Count);
        for (var f = 0; f < windows.Count; f++)
        {
            var encoding = windows.Encodings[f];
            var example = examples[windows.OverflowToSampleMapping[f]];
            var clsIndex = IndexOf(encoding.Ids, cls);
            var start = clsIndex;
            var end = clsIndex;
            if (example.Answers.Count > 0)
            {
                var startChar = example.Answers[0].Start;
                var endChar = startChar + example.Answers[0].Text.Length;
                var sequence = encoding.SequenceIds;
                var offsets = encoding.Offsets;
                var tokenStart = 0;
                while (sequence[tokenStart] != 1) tokenStart++;
                var tokenEnd = encoding.Count - 1;
                while (sequence[tokenEnd] != 1) tokenEnd--;
                if (offsets[tokenStart].Start <= startChar && offsets[tokenEnd].End >= endChar)
                {
                    // Move the two ends onto the answer (HF's loops). One deliberate difference: HF's start loop runs
                    // on past the context when the answer starts on the window's last context token, because [SEP] and
                    // padding have offset (0, 0) ≤ start_char, and labels the last token of the window; this loop stops
                    // at the context's end, which labels the answer's real first token.
                    var contextEnd = tokenEnd;
                    while (tokenStart <= contextEnd && offsets[tokenStart].Start <= startChar) tokenStart++;
                    start = tokenStart - 1;
                    while (offsets[tokenEnd].End >= endChar) tokenEnd--;
                    end = tokenEnd + 1;
                }
            }

            features.Add(new QaFeature(encoding, windows.OverflowToSampleMapping[f], start, end, ContextOffsets(encoding)));
        }

        return features;
    }

    /// <summary>
    /// HF's <c>prepare_validation_features</c>: the same windows, each keeping its example index and the offsets of its
    /// context tokens only (null elsewhere), for <see cref="Postprocess"/>. Positions are left at the [CLS] index.
    /// </summary>
    /// <param name="tokenizer">A tokenizer with a [CLS] token.</param>
    /// <param name="examples">The questions.</param>
    /// <param name="maxLength">Tokens per window.</param>
    /// <param name="docStride">Overlap between windows.</param>
    /// <returns>The features, in order.</returns>
    public static IReadOnlyList<QaFeature> PrepareEval(TextTokenizer tokenizer, IReadOnlyList<QaExample> examples, int maxLength = 384, int docStride = 128)
    {
        var windows = Encode(tokenizer, examples, maxLength, docStride);
        var cls = ClsId(tokenizer);
        var features = new List<QaFeature>(windows.Count);
        for (var f = 0; f < windows.Count; f++)
        {
            var encoding = windows.Encodings[f];
            var clsIndex = IndexOf(encoding.Ids, cls);
            features.Add(new QaFeature(encoding, windows.OverflowToSampleMapping[f], clsIndex, clsIndex, ContextOffsets(encoding)));
        }

        return features;
    }

    /// <summary>The batch of the features at <paramref name="indices"/>: padded ids, mask, token types and (for training) start/end positions.</summary>
    /// <param name="features">All features.</param>
    /// <param name="indices">The features of this batch.</param>
    /// <param name="padId">The padding id.</param>
    /// <param name="tokenTypes">Emit token_type_ids.</param>
    /// <param name="withPositions">Include start/end positions (training and eval loss).</param>
    /// <returns>The batch.</returns>
    public static TaskBatch Collate(IReadOnlyList<QaFeature> features, IReadOnlyList<int> indices, int padId, bool tokenTypes, bool withPositions = true)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(indices);
        if (indices.Count == 0) throw new ArgumentException("A batch needs at least one feature.", nameof(indices));
        var chosen = indices.Select(i => features[i]).ToList();
        var (ids, mask, types, _) = BatchTensors.Pad(chosen.Select(f => f.Encoding).ToList(), padId, tokenTypes);
        if (!withPositions) return new TaskBatch(ids, mask, types);
        var shape = new Shape(chosen.Count);
        return new TaskBatch(ids, mask, types, null, Tensor.FromArray(chosen.Select(f => f.StartPosition).ToArray(), shape), Tensor.FromArray(chosen.Select(f => f.EndPosition).ToArray(), shape));
    }

    /// <summary>
    /// HF utils_qa's <c>postprocess_qa_predictions</c>: for each question, over all its features, the
    /// <paramref name="nBest"/> highest start and end logits are paired; pairs outside the context, reversed, or longer
    /// than <paramref name="maxAnswerLength"/> tokens are dropped; candidates are ranked by start + end logit and their
    /// text cut from the context by the offsets. With <paramref name="versionWithNegative"/> (SQuAD v2) the null answer
    /// (the [CLS] score, minimum over features) competes: the answer is "" when null score − best non-null score exceeds
    /// <paramref name="nullScoreDiffThreshold"/>.
    /// </summary>
    /// <param name="examples">The questions.</param>
    /// <param name="features">Their eval features (<see cref="PrepareEval"/>).</param>
    /// <param name="startLogits">Per feature, the start logits of its tokens.</param>
    /// <param name="endLogits">Per feature, the end logits of its tokens.</param>
    /// <param name="nBest">How many starts/ends and candidates to keep (HF default 20).</param>
    /// <param name="maxAnswerLength">The longest answer in tokens (HF default 30).</param>
    /// <param name="versionWithNegative">Allow "no answer" (SQuAD v2).</param>
    /// <param name="nullScoreDiffThreshold">The margin the null answer needs (HF default 0).</param>
    /// <returns>One prediction per question, in example order.</returns>
    public static IReadOnlyList<QaPrediction> Postprocess(IReadOnlyList<QaExample> examples, IReadOnlyList<QaFeature> features, IReadOnlyList<float[]> startLogits, IReadOnlyList<float[]> endLogits,
        int nBest = 20, int maxAnswerLength = 30, bool versionWithNegative = false, double nullScoreDiffThreshold = 0)
    {
        ArgumentNullException.ThrowIfNull(examples);
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(startLogits);
        ArgumentNullException.ThrowIfNull(endLogits);
        if (startLogits.Count != features.Count || endLogits.Count != features.Count)
        {
            throw new ArgumentException($"Postprocess got {features.Count} features but {startLogits.Count} start and {endLogits.Count} end logit rows; pass one row per feature.");
        }

        var byExample = new List<int>[examples.Count];
        for (var e = 0; e < examples.Count; e++) byExample[e] = [];
        for (var f = 0; f < features.Count; f++) byExample[features[f].ExampleIndex].Add(f);

        var predictions = new List<QaPrediction>(examples.Count);
        for (var e = 0; e < examples.Count; e++)
        {
            var context = examples[e].Context;
            (double Score, double Start, double End)? minNull = null;
            var prelim = new List<(int From, int To, double Score, double Start, double End, bool IsNull)>();
            foreach (var f in byExample[e])
            {
                var starts = startLogits[f];
                var ends = endLogits[f];
                var offsets = features[f].ContextOffsets;
                var nullScore = starts[0] + ends[0];
                if (minNull is null || minNull.Value.Score > nullScore) minNull = (nullScore, starts[0], ends[0]);
                foreach (var s in TopIndices(starts, nBest))
                {
                    foreach (var t in TopIndices(ends, nBest))
                    {
                        if (s >= offsets.Count || t >= offsets.Count || offsets[s] is null || offsets[t] is null) continue;
                        if (t < s || t - s + 1 > maxAnswerLength) continue;
                        prelim.Add((offsets[s]!.Value.Start, offsets[t]!.Value.End, starts[s] + ends[t], starts[s], ends[t], false));
                    }
                }
            }

            if (versionWithNegative && minNull is { } n) prelim.Add((0, 0, n.Score, n.Start, n.End, true));
            var ranked = prelim.OrderByDescending(p => p.Score).Take(nBest).ToList();
            if (versionWithNegative && minNull is { } m && !ranked.Any(p => p.From == 0 && p.To == 0)) ranked.Add((0, 0, m.Score, m.Start, m.End, true));
            var candidates = ranked.Select(p => (Text: context[p.From..p.To], p.Score, p.Start, p.End)).ToList();
            if (candidates.Count == 0 || (candidates.Count == 1 && candidates[0].Text.Length == 0))
            {
                candidates.Insert(0, ("empty", 0, 0, 0));
            }

            var max = candidates.Max(c => c.Score);
            var exp = candidates.Select(c => Math.Exp(c.Score - max)).ToList();
            var sum = exp.Sum();
            var nbest = candidates.Select((c, i) => new QaCandidate(c.Text, c.Score, c.Start, c.End, exp[i] / sum)).ToList();
            if (!versionWithNegative)
            {
                predictions.Add(new QaPrediction(examples[e].Id, nbest[0].Text, nbest, null));
                continue;
            }

            var best = nbest.FirstOrDefault(c => c.Text.Length > 0) ?? nbest[^1];
            var diff = minNull!.Value.Score - best.StartLogit - best.EndLogit;
            predictions.Add(new QaPrediction(examples[e].Id, diff > nullScoreDiffThreshold ? string.Empty : best.Text, nbest, diff));
        }

        return predictions;
    }

    private static OverflowingBatch Encode(TextTokenizer tokenizer, IReadOnlyList<QaExample> examples, int maxLength, int docStride)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(examples);
        if (maxLength <= 0) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "max_length must be positive.");
        if (docStride < 0 || docStride >= maxLength) throw new ArgumentOutOfRangeException(nameof(docStride), docStride, $"doc_stride must be in [0, max_length = {maxLength}).");
        // Questions lose their leading whitespace (HF: some SQuAD questions start with many spaces that eat the window).
        var options = new EncodeOptions { Truncation = true, MaxLength = maxLength, Stride = docStride, TruncationStrategy = TruncationStrategy.OnlySecond };
        try
        {
            return tokenizer.EncodeWindows(examples.Select(e => e.Question.TrimStart()).ToList(), examples.Select(e => e.Context).ToList(), options);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"A question is too long for max_length {maxLength} with doc_stride {docStride} ({e.Message}); raise --max-length or lower --doc-stride.", e);
        }
    }

    private static int ClsId(TextTokenizer tokenizer) => tokenizer.SpecialTokens.Cls is { } cls && tokenizer.TokenToId(cls) is { } id ? id
        : throw new InvalidOperationException("Question answering needs a tokenizer with a [CLS] token (the no-answer position), as HF's run_qa does; use a BERT-style model.");

    private static int IndexOf(IReadOnlyList<int> ids, int id)
    {
        for (var i = 0; i < ids.Count; i++)
        {
            if (ids[i] == id) return i;
        }

        return 0;
    }

    private static List<TextSpan?> ContextOffsets(TokenEncoding encoding)
    {
        var offsets = new List<TextSpan?>(encoding.Count);
        for (var i = 0; i < encoding.Count; i++) offsets.Add(encoding.SequenceIds[i] == 1 ? encoding.Offsets[i] : null);
        return offsets;
    }

    /// <summary>Indices of the <paramref name="k"/> largest values, largest first (ties: lower index first).</summary>
    private static List<int> TopIndices(float[] values, int k)
    {
        var order = Enumerable.Range(0, values.Length).ToList();
        order.Sort((a, b) => values[b] != values[a] ? values[b].CompareTo(values[a]) : a.CompareTo(b));
        return order.Take(k).ToList();
    }
}
