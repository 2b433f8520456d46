using System.Globalization;
using System.Text.Json;
using Sharpformer.Models;

namespace Sharpformer.Training.FineTuning;

/// <summary>In which order string labels get their ids.</summary>
public enum LabelOrder
{
    /// <summary>Sorted (ordinal; integer labels numerically), as HF's run_glue/run_ner do (<c>label_list.sort()</c>). The default.</summary>
    Sorted,

    /// <summary>In the order the labels first appear in the training file.</summary>
    FirstSeen,
}

/// <summary>One text-classification example.</summary>
/// <param name="Text">The text (<c>text</c> column).</param>
/// <param name="TextPair">The second text (<c>text_pair</c> column), or null.</param>
/// <param name="Labels">The label names: one for single-label, any number (0..L) for multi-label, none for regression.</param>
/// <param name="Values">Regression targets (one or more), or null for classification.</param>
/// <param name="Line">The 1-based line of the example in its file.</param>
public sealed record ClassificationExample(string Text, string? TextPair, IReadOnlyList<string> Labels, IReadOnlyList<float>? Values, int Line);

/// <summary>Options of <see cref="ClassificationData.Read"/>.</summary>
public sealed record ClassificationReadOptions
{
    /// <summary>The text column (default <c>text</c>).</summary>
    public string TextColumn { get; init; } = "text";

    /// <summary>The optional second-text column (default <c>text_pair</c>); absent columns mean single texts.</summary>
    public string TextPairColumn { get; init; } = "text_pair";

    /// <summary>The label column (default <c>label</c>).</summary>
    public string LabelColumn { get; init; } = "label";

    /// <summary>The order of label ids when <see cref="Labels"/> is not given.</summary>
    public LabelOrder LabelOrder { get; init; } = LabelOrder.Sorted;

    /// <summary>A fixed label list (the training file's, or a model's id2label): any other label is an error. Null derives it from the file.</summary>
    public IReadOnlyList<string>? Labels { get; init; }

    /// <summary>The problem type; null infers it: JSON arrays of strings → multi-label, non-integer numbers → regression, else single-label.</summary>
    public ClassificationProblem? Problem { get; init; }
}

/// <summary>A text-classification data set read from CSV, TSV or JSONL.</summary>
public sealed class ClassificationDataset
{
    private readonly Dictionary<string, int> _ids;

    internal ClassificationDataset(string path, IReadOnlyList<ClassificationExample> examples, IReadOnlyList<string> labels, ClassificationProblem problem)
    {
        Path = path;
        Examples = examples;
        LabelNames = labels;
        Problem = problem;
        _ids = [];
        for (var i = 0; i < labels.Count; i++) _ids[labels[i]] = i;
    }

    /// <summary>The file read.</summary>
    public string Path { get; }

    /// <summary>The examples in file order.</summary>
    public IReadOnlyList<ClassificationExample> Examples { get; }

    /// <summary>The labels in id order (id2label); for regression, <c>LABEL_0</c>… one per target.</summary>
    public IReadOnlyList<string> LabelNames { get; }

    /// <summary>Single-label, multi-label or regression.</summary>
    public ClassificationProblem Problem { get; }

    /// <summary>Whether any example has a second text.</summary>
    public bool HasTextPairs => Examples.Any(e => e.TextPair is not null);

    /// <summary>The id of <paramref name="label"/>.</summary>
    /// <param name="label">A label name of this data set.</param>
    /// <returns>Its id.</returns>
    public int LabelId(string label) => _ids.TryGetValue(label, out var id) ? id
        : throw new ArgumentException($"'{label}' is not one of the labels [{string.Join(", ", LabelNames)}].", nameof(label));

    /// <summary>A data set over a subset of the examples (a train/validation split), with the same labels.</summary>
    /// <param name="examples">The examples.</param>
    /// <returns>The subset.</returns>
    public ClassificationDataset WithExamples(IReadOnlyList<ClassificationExample> examples) => new(Path, examples, LabelNames, Problem);
}

/// <summary>Reads text-classification data: CSV/TSV with a header row, or JSONL with one object per line.</summary>
public static class ClassificationData
{
    /// <summary>
    /// Reads <paramref name="path"/> (.csv, .tsv, .jsonl or .json as JSON lines): <c>text</c>, optional
    /// <c>text_pair</c>, <c>label</c>. String labels become ids in <see cref="ClassificationReadOptions.LabelOrder"/>;
    /// integer labels are class names ("0", "1", …, sorted numerically); non-integer numbers (or a JSON array of numbers)
    /// make a regression set; a JSON array of strings makes a multi-label set.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="options">Column names, label order, a fixed label list, the problem type.</param>
    /// <returns>The data set.</returns>
    /// <exception cref="InvalidDataException">The file is empty, a column is missing, or a label is missing, unknown or inconsistent; the message names the file and line.</exception>
    public static ClassificationDataset Read(string path, ClassificationReadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        options ??= new ClassificationReadOptions();
        if (!File.Exists(path)) throw new FileNotFoundException($"Classification data '{path}' not found; pass a .csv, .tsv or .jsonl file.", path);
        var raw = System.IO.Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".csv" => ReadDelimited(path, ',', options),
            ".tsv" => ReadDelimited(path, '\t', options),
            ".jsonl" or ".json" => ReadJsonLines(path, options),
            var other => throw new InvalidDataException($"{path}: unknown extension '{other}'; classification data must be .csv, .tsv or .jsonl (text, text_pair, label)."),
        };
        if (raw.Count == 0) throw new InvalidDataException($"{path}: the file has no examples.");
        return Build(path, raw, options);
    }

    /// <summary>
    /// The check the fine-tuning verb runs before training: text pairs need a model that reads token_type_ids.
    /// </summary>
    /// <param name="data">The data set.</param>
    /// <param name="usesTokenTypes">The model's <see cref="ITaskModel.UsesTokenTypes"/>.</param>
    /// <exception cref="InvalidDataException">The data has a text_pair and the model has no token types; names the first such line.</exception>
    public static void CheckTextPairs(ClassificationDataset data, bool usesTokenTypes)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (usesTokenTypes) return;
        var first = data.Examples.FirstOrDefault(e => e.TextPair is not null);
        if (first is not null)
        {
            throw new InvalidDataException($"{data.Path}:{first.Line}: this example has a text_pair, but the model has no token_type_ids (e.g. DistilBERT, GPT-2), so it cannot tell the two texts apart; use a model with segments (BERT) or join the texts into one 'text' column.");
        }
    }

    private sealed record RawLabel(string? Name, IReadOnlyList<string>? Names, IReadOnlyList<double>? Numbers, bool IsInteger);

    private sealed record RawExample(string Text, string? Pair, RawLabel Label, int Line);

    private static List<RawExample> ReadDelimited(string path, char delimiter, ClassificationReadOptions options)
    {
        var records = DelimitedText.Read(path, delimiter);
        if (records.Count == 0) throw new InvalidDataException($"{path}: the file is empty; it needs a header row ({options.TextColumn}, {options.LabelColumn}) and examples.");
        var header = records[0].Fields.Select(f => f.Trim()).ToList();
        int Column(string name, bool required)
        {
            var index = header.IndexOf(name);
            if (index < 0 && required)
            {
                throw new InvalidDataException($"{path}:{records[0].Line}: the header has no '{name}' column (it has: {string.Join(", ", header)}); name the columns {options.TextColumn}, [{options.TextPairColumn},] {options.LabelColumn}.");
            }

            return index;
        }

        var textColumn = Column(options.TextColumn, true);
        var pairColumn = Column(options.TextPairColumn, false);
        var labelColumn = Column(options.LabelColumn, true);
        var examples = new List<RawExample>();
        foreach (var (line, fields) in records.Skip(1))
        {
            if (fields.Count != header.Count)
            {
                throw new InvalidDataException($"{path}:{line}: {fields.Count} fields, but the header has {header.Count}; quote fields that contain '{(delimiter == '\t' ? "\\t" : delimiter.ToString())}'.");
            }

            var label = fields[labelColumn].Trim();
            if (label.Length == 0) throw new InvalidDataException($"{path}:{line}: the '{options.LabelColumn}' field is empty; every example needs a label.");
            RawLabel raw = long.TryParse(label, NumberStyles.Integer, CultureInfo.InvariantCulture, out _)
                ? new RawLabel(label, null, [double.Parse(label, CultureInfo.InvariantCulture)], true)
                : double.TryParse(label, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && options.Problem is null or ClassificationProblem.Regression
                    ? new RawLabel(null, null, [number], false)
                    : new RawLabel(label, null, null, false);
            var pair = pairColumn >= 0 ? fields[pairColumn] : null;
            examples.Add(new RawExample(fields[textColumn], string.IsNullOrEmpty(pair) ? null : pair, raw, line));
        }

        return examples;
    }

    private static List<RawExample> ReadJsonLines(string path, ClassificationReadOptions options)
    {
        var examples = new List<RawExample>();
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonElement root;
            try
            {
                using var document = JsonDocument.Parse(line);
                root = document.RootElement.Clone();
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{path}:{lineNumber}: not valid JSON ({e.Message}); each line must be one object like {{\"text\": \"…\", \"label\": \"…\"}}.", e);
            }

            if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}:{lineNumber}: each line must be a JSON object with '{options.TextColumn}' and '{options.LabelColumn}'.");
            if (!root.TryGetProperty(options.TextColumn, out var text) || text.ValueKind != JsonValueKind.String)
            {
                throw new InvalidDataException($"{path}:{lineNumber}: no string '{options.TextColumn}' field.");
            }

            string? pair = null;
            if (root.TryGetProperty(options.TextPairColumn, out var pairElement) && pairElement.ValueKind != JsonValueKind.Null)
            {
                pair = pairElement.ValueKind == JsonValueKind.String ? pairElement.GetString() : throw new InvalidDataException($"{path}:{lineNumber}: '{options.TextPairColumn}' must be a string.");
            }

            if (!root.TryGetProperty(options.LabelColumn, out var label) || label.ValueKind == JsonValueKind.Null)
            {
                throw new InvalidDataException($"{path}:{lineNumber}: no '{options.LabelColumn}' field; every example needs a label.");
            }

            examples.Add(new RawExample(text.GetString()!, string.IsNullOrEmpty(pair) ? null : pair, JsonLabel(label, path, lineNumber), lineNumber));
        }

        return examples;
    }

    private static RawLabel JsonLabel(JsonElement label, string path, int line)
    {
        switch (label.ValueKind)
        {
            case JsonValueKind.String:
                return new RawLabel(label.GetString()!, null, null, false);
            case JsonValueKind.Number:
                return label.TryGetInt64(out var integer) && !label.GetRawText().Contains('.', StringComparison.Ordinal) && !label.GetRawText().Contains('e', StringComparison.OrdinalIgnoreCase)
                    ? new RawLabel(integer.ToString(CultureInfo.InvariantCulture), null, [integer], true)
                    : new RawLabel(null, null, [label.GetDouble()], false);
            case JsonValueKind.Array:
                {
                    var items = label.EnumerateArray().ToList();
                    if (items.All(i => i.ValueKind == JsonValueKind.String))
                    {
                        return new RawLabel(null, items.Select(i => i.GetString()!).ToList(), null, false);
                    }

                    if (items.Count > 0 && items.All(i => i.ValueKind == JsonValueKind.Number))
                    {
                        return new RawLabel(null, null, items.Select(i => i.GetDouble()).ToList(), false);
                    }

                    throw new InvalidDataException($"{path}:{line}: the label array mixes types; use strings (multi-label) or numbers (regression).");
                }

            default:
                throw new InvalidDataException($"{path}:{line}: the label must be a string, a number, or an array of strings (multi-label) or numbers (regression); got {label.ValueKind}.");
        }
    }

    private static ClassificationDataset Build(string path, List<RawExample> raw, ClassificationReadOptions options)
    {
        var problem = options.Problem ?? Infer(raw, path);
        var examples = new List<ClassificationExample>(raw.Count);
        List<string> labels;
        switch (problem)
        {
            case ClassificationProblem.Regression:
                {
                    var width = -1;
                    foreach (var e in raw)
                    {
                        if (e.Label.Numbers is null)
                        {
                            throw new InvalidDataException($"{path}:{e.Line}: the label '{e.Label.Name ?? string.Join(",", e.Label.Names ?? [])}' is not a number, but this is a regression set; every label must be a number (or an array of numbers).");
                        }

                        if (width >= 0 && e.Label.Numbers.Count != width)
                        {
                            throw new InvalidDataException($"{path}:{e.Line}: {e.Label.Numbers.Count} regression targets, but earlier examples have {width}; every example needs the same number.");
                        }

                        width = e.Label.Numbers.Count;
                        examples.Add(new ClassificationExample(e.Text, e.Pair, [], e.Label.Numbers.Select(v => (float)v).ToList(), e.Line));
                    }

                    labels = options.Labels?.ToList() ?? Enumerable.Range(0, width).Select(i => $"LABEL_{i}").ToList();
                    if (labels.Count != width) throw new InvalidDataException($"{path}: {width} regression targets per example, but {labels.Count} labels were given.");
                    break;
                }

            case ClassificationProblem.MultiLabel:
                foreach (var e in raw)
                {
                    var names = e.Label.Names ?? (e.Label.Name is { } single ? [single] : throw new InvalidDataException($"{path}:{e.Line}: a multi-label set needs label names (a JSON array of strings), got a number."));
                    examples.Add(new ClassificationExample(e.Text, e.Pair, names, null, e.Line));
                }

                labels = LabelList(examples, options, path);
                break;
            default:
                foreach (var e in raw)
                {
                    if (e.Label.Name is null)
                    {
                        throw new InvalidDataException($"{path}:{e.Line}: {(e.Label.Names is not null ? "a list of labels" : "a non-integer number")} in a single-label set; every example needs one class label (or read the file as {(e.Label.Names is not null ? "multi-label" : "regression")}).");
                    }

                    examples.Add(new ClassificationExample(e.Text, e.Pair, [e.Label.Name], null, e.Line));
                }

                labels = LabelList(examples, options, path);
                break;
        }

        return new ClassificationDataset(path, examples, labels, problem);
    }

    private static ClassificationProblem Infer(List<RawExample> raw, string path)
    {
        var first = raw[0];
        var problem = first.Label.Names is not null ? ClassificationProblem.MultiLabel
            : first.Label.Name is null ? ClassificationProblem.Regression
            : ClassificationProblem.SingleLabel;
        foreach (var e in raw)
        {
            var kind = e.Label.Names is not null ? ClassificationProblem.MultiLabel
                : e.Label.Name is null ? ClassificationProblem.Regression
                : ClassificationProblem.SingleLabel;
            // Integers in a regression set are regression targets too (3 among 2.5, 4.0).
            if (kind == ClassificationProblem.SingleLabel && problem == ClassificationProblem.Regression && e.Label.IsInteger) continue;
            if (kind == ClassificationProblem.Regression && problem == ClassificationProblem.SingleLabel && raw.All(r => r.Label.Numbers is not null))
            {
                problem = ClassificationProblem.Regression;
                continue;
            }

            if (kind != problem)
            {
                throw new InvalidDataException($"{path}:{e.Line}: inconsistent labels: this label reads as {Describe(kind)} but line {first.Line} reads as {Describe(problem)}; use one kind of label in the whole file.");
            }
        }

        return problem;
    }

    private static string Describe(ClassificationProblem problem) => problem switch
    {
        ClassificationProblem.MultiLabel => "a list of labels (multi-label)",
        ClassificationProblem.Regression => "a number (regression)",
        _ => "a class label (single-label)",
    };

    private static List<string> LabelList(List<ClassificationExample> examples, ClassificationReadOptions options, string path)
    {
        if (options.Labels is { } fixedLabels)
        {
            var known = new HashSet<string>(fixedLabels, StringComparer.Ordinal);
            foreach (var e in examples)
            {
                foreach (var label in e.Labels)
                {
                    if (!known.Contains(label))
                    {
                        throw new InvalidDataException($"{path}:{e.Line}: unknown label '{label}'; the labels are [{string.Join(", ", fixedLabels)}] (from the training data or the model's id2label).");
                    }
                }
            }

            return fixedLabels.ToList();
        }

        var seen = new List<string>();
        var set = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in examples)
        {
            foreach (var label in e.Labels)
            {
                if (set.Add(label)) seen.Add(label);
            }
        }

        if (options.LabelOrder == LabelOrder.Sorted) SortLabels(seen);
        return seen;
    }

    /// <summary>Sorts labels as HF's <c>sort()</c> does: numerically when all are integers, else ordinally.</summary>
    /// <param name="labels">The labels, sorted in place.</param>
    internal static void SortLabels(List<string> labels)
    {
        if (labels.All(l => long.TryParse(l, NumberStyles.Integer, CultureInfo.InvariantCulture, out _)))
        {
            labels.Sort((a, b) => long.Parse(a, CultureInfo.InvariantCulture).CompareTo(long.Parse(b, CultureInfo.InvariantCulture)));
        }
        else
        {
            labels.Sort(StringComparer.Ordinal);
        }
    }
}

/// <summary>Seeded train/validation splits.</summary>
public static class DataSplit
{
    /// <summary>
    /// Splits <paramref name="items"/> into a training and a validation part: a seeded shuffle of the indices (the same
    /// for the same seed and count), the first ⌈fraction·N⌉ (at least 1) to validation; both parts keep file order.
    /// </summary>
    /// <typeparam name="T">The item type.</typeparam>
    /// <param name="items">The items.</param>
    /// <param name="validationFraction">The share for validation, in (0, 1).</param>
    /// <param name="seed">The seed.</param>
    /// <returns>The two parts.</returns>
    /// <exception cref="ArgumentException">The fraction is outside (0, 1), or there are fewer than 2 items.</exception>
    public static (IReadOnlyList<T> Train, IReadOnlyList<T> Validation) TrainValidation<T>(IReadOnlyList<T> items, double validationFraction, long seed)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (!(validationFraction > 0 && validationFraction < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction, "The validation fraction must be between 0 and 1 (exclusive), e.g. 0.1.");
        }

        if (items.Count < 2) throw new ArgumentException($"Cannot split {items.Count} example(s) into training and validation; give more data or a separate eval file.", nameof(items));
        var order = new int[items.Count];
        for (var i = 0; i < order.Length; i++) order[i] = i;
        var random = Data.DataRandom.For(seed, Data.DataRandom.SplitStream, 0, 0);
        random.Shuffle(order.AsSpan());
        var validationCount = Math.Clamp((int)Math.Ceiling(validationFraction * items.Count), 1, items.Count - 1);
        var validation = new HashSet<int>(order.Take(validationCount));
        var train = new List<T>();
        var held = new List<T>();
        for (var i = 0; i < items.Count; i++)
        {
            (validation.Contains(i) ? held : train).Add(items[i]);
        }

        return (train, held);
    }
}
