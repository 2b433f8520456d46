using System.Text.Json;

namespace Sharpformer.Training.FineTuning;

/// <summary>One sentence of token-classification data: words and one tag per word.</summary>
/// <param name="Tokens">The words.</param>
/// <param name="Tags">The tag of each word (B-DISEASE, I-DISEASE, O, …).</param>
/// <param name="Line">The 1-based line where the sentence starts in its file.</param>
public sealed record TokenTagExample(IReadOnlyList<string> Tokens, IReadOnlyList<string> Tags, int Line);

/// <summary>A token-classification (NER) data set.</summary>
public sealed class TokenClassificationDataset
{
    private readonly Dictionary<string, int> _ids;

    internal TokenClassificationDataset(string path, IReadOnlyList<TokenTagExample> examples, IReadOnlyList<string> labels)
    {
        Path = path;
        Examples = examples;
        LabelNames = labels;
        _ids = [];
        for (var i = 0; i < labels.Count; i++) _ids[labels[i]] = i;
    }

    /// <summary>The file read.</summary>
    public string Path { get; }

    /// <summary>The sentences in file order.</summary>
    public IReadOnlyList<TokenTagExample> Examples { get; }

    /// <summary>The tags in id order (id2label).</summary>
    public IReadOnlyList<string> LabelNames { get; }

    /// <summary>The id of <paramref name="tag"/>.</summary>
    /// <param name="tag">A tag of this data set.</param>
    /// <returns>Its id.</returns>
    public int LabelId(string tag) => _ids.TryGetValue(tag, out var id) ? id
        : throw new ArgumentException($"'{tag}' is not one of the tags [{string.Join(", ", LabelNames)}].", nameof(tag));

    /// <summary>A data set over a subset of the sentences, with the same tags.</summary>
    /// <param name="examples">The sentences.</param>
    /// <returns>The subset.</returns>
    public TokenClassificationDataset WithExamples(IReadOnlyList<TokenTagExample> examples) => new(Path, examples, LabelNames);
}

/// <summary>Reads token-classification data: CoNLL-style columns or JSONL with <c>tokens</c> and <c>tags</c>.</summary>
public static class TokenClassificationData
{
    /// <summary>
    /// Reads <paramref name="path"/>: .jsonl/.json as JSON lines (<c>tokens</c>: strings, <c>tags</c>: strings of the
    /// same length), anything else as CoNLL — one word per line, columns separated by whitespace, the tag in the last
    /// column, sentences separated by blank lines, <c>-DOCSTART-</c> lines skipped.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="labels">A fixed tag list (the training file's or the model's id2label); null derives it from the file.</param>
    /// <param name="labelOrder">The order of derived tag ids (sorted by default, as HF's run_ner).</param>
    /// <returns>The data set.</returns>
    /// <exception cref="InvalidDataException">The file is empty, a line has no tag, tokens and tags differ in length, or a tag is unknown; the message names the file and line.</exception>
    public static TokenClassificationDataset Read(string path, IReadOnlyList<string>? labels = null, LabelOrder labelOrder = LabelOrder.Sorted)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Token-classification data '{path}' not found; pass a CoNLL file or a .jsonl with tokens and tags.", path);
        var extension = System.IO.Path.GetExtension(path).ToLowerInvariant();
        var examples = extension is ".jsonl" or ".json" ? ReadJsonLines(path) : ReadConll(path);
        if (examples.Count == 0) throw new InvalidDataException($"{path}: the file has no sentences.");
        List<string> tags;
        if (labels is not null)
        {
            var known = new HashSet<string>(labels, StringComparer.Ordinal);
            foreach (var e in examples)
            {
                foreach (var tag in e.Tags)
                {
                    if (!known.Contains(tag))
                    {
                        throw new InvalidDataException($"{path}:{e.Line}: unknown tag '{tag}' in the sentence starting here; the tags are [{string.Join(", ", labels)}] (from the training data or the model's id2label).");
                    }
                }
            }

            tags = labels.ToList();
        }
        else
        {
            tags = [];
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var e in examples)
            {
                foreach (var tag in e.Tags)
                {
                    if (seen.Add(tag)) tags.Add(tag);
                }
            }

            if (labelOrder == LabelOrder.Sorted) tags.Sort(StringComparer.Ordinal);
        }

        return new TokenClassificationDataset(path, examples, tags);
    }

    private static List<TokenTagExample> ReadConll(string path)
    {
        var examples = new List<TokenTagExample>();
        var tokens = new List<string>();
        var tags = new List<string>();
        var start = 0;
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            var trimmed = line.Trim();
            if (trimmed.Length == 0 || trimmed.StartsWith("-DOCSTART-", StringComparison.Ordinal))
            {
                Flush();
                continue;
            }

            var columns = trimmed.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (columns.Length < 2)
            {
                throw new InvalidDataException($"{path}:{lineNumber}: '{trimmed}' has no tag column; CoNLL lines are 'word [other columns] tag', separated by spaces or tabs.");
            }

            if (tokens.Count == 0) start = lineNumber;
            tokens.Add(columns[0]);
            tags.Add(columns[^1]);
        }

        Flush();
        return examples;

        void Flush()
        {
            if (tokens.Count > 0)
            {
                examples.Add(new TokenTagExample(tokens.ToArray(), tags.ToArray(), start));
                tokens.Clear();
                tags.Clear();
            }
        }
    }

    private static List<TokenTagExample> ReadJsonLines(string path)
    {
        var examples = new List<TokenTagExample>();
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
                throw new InvalidDataException($"{path}:{lineNumber}: not valid JSON ({e.Message}); each line must be {{\"tokens\": [...], \"tags\": [...]}}.", e);
            }

            var tokens = Strings(root, "tokens", path, lineNumber);
            var tags = Strings(root, "tags", path, lineNumber);
            if (tokens.Count != tags.Count)
            {
                throw new InvalidDataException($"{path}:{lineNumber}: {tokens.Count} tokens but {tags.Count} tags; every token needs exactly one tag.");
            }

            if (tokens.Count == 0) continue;
            examples.Add(new TokenTagExample(tokens, tags, lineNumber));
        }

        return examples;
    }

    private static List<string> Strings(JsonElement root, string name, string path, int line)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty(name, out var array) || array.ValueKind != JsonValueKind.Array)
        {
            throw new InvalidDataException($"{path}:{line}: no '{name}' array; each line must be {{\"tokens\": [...], \"tags\": [...]}}.");
        }

        var result = new List<string>();
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String) throw new InvalidDataException($"{path}:{line}: '{name}' must hold strings, found {item.ValueKind}.");
            result.Add(item.GetString()!);
        }

        return result;
    }
}
