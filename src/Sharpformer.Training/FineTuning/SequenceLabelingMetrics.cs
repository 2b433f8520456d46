namespace Sharpformer.Training.FineTuning;

/// <summary>Tagging schemes seqeval's strict mode knows.</summary>
public enum TaggingScheme
{
    /// <summary>IOB1: I- tags, B- only between two adjacent entities of one type.</summary>
    Iob1,

    /// <summary>IOB2 (BIO): every entity starts with B-.</summary>
    Iob2,

    /// <summary>BIOES (IOBES): B-, I-, E- for multi-token entities, S- for single tokens.</summary>
    Bioes,
}

/// <summary>One entity: a typed span of tokens [Start, End) in sentence <see cref="Sentence"/>.</summary>
/// <param name="Sentence">The sentence index.</param>
/// <param name="Type">The entity type (the tag without its prefix; "_" for bare prefixes).</param>
/// <param name="Start">The first token.</param>
/// <param name="End">One past the last token.</param>
public readonly record struct TaggedEntity(int Sentence, string Type, int Start, int End);

/// <summary>Entity-level scores as seqeval reports them.</summary>
/// <param name="Precision">Micro precision over all entities.</param>
/// <param name="Recall">Micro recall.</param>
/// <param name="F1">Micro F1.</param>
/// <param name="Accuracy">Token-level accuracy (seqeval's accuracy_score).</param>
/// <param name="PerType">Scores of each entity type, sorted by type.</param>
public sealed record SequenceLabelingReport(double Precision, double Recall, double F1, double Accuracy, IReadOnlyList<ClassScores> PerType)
{
    /// <summary>The values for the trainer's log: precision, recall, f1, accuracy (HF evaluate's overall_*).</summary>
    /// <returns>The metrics by name.</returns>
    public IReadOnlyDictionary<string, double> ToMetrics() => new Dictionary<string, double>
    {
        ["precision"] = Precision,
        ["recall"] = Recall,
        ["f1"] = F1,
        ["accuracy"] = Accuracy,
    };
}

/// <summary>
/// seqeval's entity-level precision/recall/F1. Default mode is seqeval's <c>get_entities</c> (conlleval-compatible and
/// lenient: I- after O starts an entity; works for IOB1, IOB2, IOE and BIOES alike); strict mode
/// (<c>mode='strict'</c>) extracts entities only where the given <see cref="TaggingScheme"/> allows them, per sentence.
/// An entity counts as correct when type, start and end all match. Zero denominators give 0.
/// </summary>
public static class SequenceLabelingMetrics
{
    /// <summary>Scores predicted tag sequences against the references.</summary>
    /// <param name="references">The true tags of each sentence.</param>
    /// <param name="predictions">The predicted tags of each sentence (same lengths).</param>
    /// <param name="strictScheme">Null for seqeval's default mode; a scheme for strict mode.</param>
    /// <returns>The report.</returns>
    /// <exception cref="ArgumentException">The sentence counts or lengths differ, or (strict) a tag's prefix is not allowed by the scheme.</exception>
    public static SequenceLabelingReport Compute(IReadOnlyList<IReadOnlyList<string>> references, IReadOnlyList<IReadOnlyList<string>> predictions, TaggingScheme? strictScheme = null)
    {
        ArgumentNullException.ThrowIfNull(references);
        ArgumentNullException.ThrowIfNull(predictions);
        if (references.Count != predictions.Count) throw new ArgumentException($"{references.Count} reference sentences but {predictions.Count} predicted ones.");
        int tokens = 0, correct = 0;
        for (var s = 0; s < references.Count; s++)
        {
            if (references[s].Count != predictions[s].Count)
            {
                throw new ArgumentException($"Sentence {s}: {references[s].Count} reference tags but {predictions[s].Count} predicted tags.");
            }

            for (var t = 0; t < references[s].Count; t++)
            {
                tokens++;
                if (references[s][t] == predictions[s][t]) correct++;
            }
        }

        var truth = Extract(references, strictScheme);
        var guess = Extract(predictions, strictScheme);
        var types = truth.Select(e => e.Type).Concat(guess.Select(e => e.Type)).Distinct().OrderBy(t => t, StringComparer.Ordinal).ToList();
        var perType = new List<ClassScores>();
        int tpAll = 0, predAll = 0, trueAll = 0;
        foreach (var type in types)
        {
            var t = truth.Where(e => e.Type == type).ToHashSet();
            var p = guess.Where(e => e.Type == type).ToHashSet();
            var tp = t.Count(p.Contains);
            perType.Add(ClassificationMetrics.Scores(type, tp, p.Count, t.Count));
            tpAll += tp;
            predAll += p.Count;
            trueAll += t.Count;
        }

        var micro = ClassificationMetrics.Scores("micro", tpAll, predAll, trueAll);
        return new SequenceLabelingReport(micro.Precision, micro.Recall, micro.F1, tokens == 0 ? 0 : (double)correct / tokens, perType);
    }

    /// <summary>The entities of <paramref name="sentences"/>: default mode (null scheme) or strict mode.</summary>
    /// <param name="sentences">Tag sequences.</param>
    /// <param name="strictScheme">Null for seqeval's default <c>get_entities</c>; a scheme for strict mode.</param>
    /// <returns>The entities, in order.</returns>
    public static IReadOnlyList<TaggedEntity> Extract(IReadOnlyList<IReadOnlyList<string>> sentences, TaggingScheme? strictScheme = null)
    {
        ArgumentNullException.ThrowIfNull(sentences);
        var entities = new List<TaggedEntity>();
        for (var s = 0; s < sentences.Count; s++)
        {
            entities.AddRange(strictScheme is { } scheme ? StrictEntities(sentences[s], scheme, s) : DefaultEntities(sentences[s], s));
        }

        return entities;
    }

    /// <summary>
    /// seqeval's <c>get_entities</c> on one sentence (entities never span sentences: seqeval joins sentences with an O
    /// between them). The prefix is the first character, the type what follows the first '-'.
    /// </summary>
    private static List<TaggedEntity> DefaultEntities(IReadOnlyList<string> tags, int sentence)
    {
        var chunks = new List<TaggedEntity>();
        var prevTag = 'O';
        var prevType = string.Empty;
        var begin = 0;
        for (var i = 0; i <= tags.Count; i++)
        {
            var chunk = i < tags.Count ? tags[i] : "O";
            var tag = chunk.Length > 0 ? chunk[0] : 'O';
            var rest = chunk.Length > 1 ? chunk[1..] : string.Empty;
            var dash = rest.IndexOf('-', StringComparison.Ordinal);
            var type = dash >= 0 ? rest[(dash + 1)..] : rest;
            if (type.Length == 0) type = "_";
            if (EndOfChunk(prevTag, tag, prevType, type)) chunks.Add(new TaggedEntity(sentence, prevType, begin, i));
            if (StartOfChunk(prevTag, tag, prevType, type)) begin = i;
            prevTag = tag;
            prevType = type;
        }

        return chunks;
    }

    private static bool EndOfChunk(char prevTag, char tag, string prevType, string type) =>
        prevTag == 'E' || prevTag == 'S'
        || (prevTag == 'B' && (tag == 'B' || tag == 'S' || tag == 'O'))
        || (prevTag == 'I' && (tag == 'B' || tag == 'S' || tag == 'O'))
        || (prevTag != 'O' && prevTag != '.' && prevType != type);

    private static bool StartOfChunk(char prevTag, char tag, string prevType, string type) =>
        tag == 'B' || tag == 'S'
        || (prevTag == 'E' && (tag == 'E' || tag == 'I'))
        || (prevTag == 'S' && (tag == 'E' || tag == 'I'))
        || (prevTag == 'O' && (tag == 'E' || tag == 'I'))
        || (tag != 'O' && tag != '.' && prevType != type);

    private enum TagCondition
    {
        Any,
        Same,
        Different,
    }

    private readonly record struct Token(char Prefix, string Type);

    private readonly record struct Pattern(string Previous, string Current, TagCondition Tag);

    private sealed record Scheme(string Allowed, Pattern[] Start, Pattern[] Inside, Pattern[] End);

    private const string AnyPrefix = "IOBES";

    // seqeval.scheme's pattern tables (previous prefixes, current prefixes, tag condition).
    private static readonly Scheme Iob1 = new(
        "IOB",
        [new("O", "I", TagCondition.Any), new("I", "I", TagCondition.Different), new("B", "I", TagCondition.Any), new("I", "B", TagCondition.Same), new("B", "B", TagCondition.Same)],
        [new("B", "I", TagCondition.Same), new("I", "I", TagCondition.Same)],
        [new("I", "I", TagCondition.Different), new("I", "O", TagCondition.Any), new("I", "B", TagCondition.Any), new("B", "O", TagCondition.Any), new("B", "I", TagCondition.Different), new("B", "B", TagCondition.Same)]);

    private static readonly Scheme Iob2 = new(
        "IOB",
        [new(AnyPrefix, "B", TagCondition.Any)],
        [new("B", "I", TagCondition.Same), new("I", "I", TagCondition.Same)],
        [new("I", "O", TagCondition.Any), new("I", "I", TagCondition.Different), new("I", "B", TagCondition.Any), new("B", "O", TagCondition.Any), new("B", "I", TagCondition.Different), new("B", "B", TagCondition.Any)]);

    private static readonly Scheme Bioes = new(
        "IOBES",
        [new(AnyPrefix, "B", TagCondition.Any), new(AnyPrefix, "S", TagCondition.Any)],
        [new("B", "I", TagCondition.Same), new("B", "E", TagCondition.Same), new("I", "I", TagCondition.Same), new("I", "E", TagCondition.Same)],
        [new("S", AnyPrefix, TagCondition.Any), new("E", AnyPrefix, TagCondition.Any)]);

    /// <summary>seqeval.scheme's <c>Tokens.entities</c> for one sentence.</summary>
    private static List<TaggedEntity> StrictEntities(IReadOnlyList<string> tags, TaggingScheme which, int sentence)
    {
        var scheme = which switch
        {
            TaggingScheme.Iob1 => Iob1,
            TaggingScheme.Iob2 => Iob2,
            _ => Bioes,
        };
        var outside = new Token('O', "_");
        var tokens = new List<Token>(tags.Count + 1);
        foreach (var tag in tags)
        {
            if (tag.Length == 0) throw new ArgumentException("An empty tag; every token needs a tag such as O or B-PER.");
            var type = tag[1..].Trim('-');
            tokens.Add(new Token(tag[0], type.Length == 0 ? "_" : type));
        }

        tokens.Add(outside);
        var entities = new List<TaggedEntity>();
        var i = 0;
        var prev = outside;
        while (i < tokens.Count)
        {
            var token = tokens[i];
            if (!scheme.Allowed.Contains(token.Prefix, StringComparison.Ordinal))
            {
                throw new ArgumentException($"Invalid tag '{tags[i]}' for the {which} scheme: its prefix must be one of {string.Join("/", scheme.Allowed.ToCharArray())}.");
            }

            if (Matches(prev, token, scheme.Start))
            {
                var end = Forward(tokens, i + 1, token, scheme);
                if (Matches(tokens[end - 1], tokens[end], scheme.End)) entities.Add(new TaggedEntity(sentence, token.Type, i, end));
                i = end;
            }
            else
            {
                i++;
            }

            prev = tokens[i - 1];
        }

        return entities;
    }

    private static int Forward(List<Token> tokens, int start, Token prev, Scheme scheme)
    {
        for (var i = start; i < tokens.Count; i++)
        {
            if (Matches(prev, tokens[i], scheme.Inside))
            {
                prev = tokens[i];
            }
            else
            {
                return i;
            }
        }

        // seqeval returns len(tokens) - 1 here; the appended O always stops the loop before, so this is unreachable.
        return tokens.Count - 1;
    }

    private static bool Matches(Token prev, Token current, Pattern[] patterns)
    {
        foreach (var p in patterns)
        {
            if (!p.Previous.Contains(prev.Prefix, StringComparison.Ordinal) || !p.Current.Contains(current.Prefix, StringComparison.Ordinal)) continue;
            if (p.Tag == TagCondition.Any || (p.Tag == TagCondition.Same) == (prev.Type == current.Type)) return true;
        }

        return false;
    }
}
