using System.Text;
using System.Text.RegularExpressions;

namespace Sharpformer.Training.FineTuning;

/// <summary>SQuAD scores in percent, as the official evaluation scripts report them.</summary>
/// <param name="ExactMatch">Mean exact match (best over each question's answers) × 100.</param>
/// <param name="F1">Mean token F1 (best over each question's answers) × 100.</param>
/// <param name="Total">Questions scored.</param>
/// <param name="HasAnswerTotal">Questions with an answer (v2).</param>
/// <param name="NoAnswerTotal">Unanswerable questions (v2).</param>
public sealed record SquadScores(double ExactMatch, double F1, int Total, int HasAnswerTotal, int NoAnswerTotal)
{
    /// <summary>The values for the trainer's log: exact_match and f1.</summary>
    /// <returns>The metrics by name.</returns>
    public IReadOnlyDictionary<string, double> ToMetrics() => new Dictionary<string, double> { ["exact_match"] = ExactMatch, ["f1"] = F1 };
}

/// <summary>
/// The official SQuAD metrics: answers normalised (lower case, ASCII punctuation removed, the articles a/an/the removed,
/// whitespace collapsed), exact match and bag-of-tokens F1, the best over a question's reference answers. SQuAD v2
/// scores an unanswerable question (no references) against the empty answer, and F1 with an empty side is 1 only when
/// both are empty.
/// </summary>
public static partial class SquadMetrics
{
    // Python's string.punctuation.
    private const string Punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

    /// <summary>The official <c>normalize_answer</c>.</summary>
    /// <param name="text">An answer.</param>
    /// <returns>The normalised answer.</returns>
    public static string Normalize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var lower = text.ToLowerInvariant();
        var noPunctuation = new StringBuilder(lower.Length);
        foreach (var c in lower)
        {
            if (!Punctuation.Contains(c, StringComparison.Ordinal)) noPunctuation.Append(c);
        }

        var noArticles = Articles().Replace(noPunctuation.ToString(), " ");
        return string.Join(' ', noArticles.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
    }

    /// <summary>1 when the normalised answers are equal, else 0.</summary>
    /// <param name="prediction">The predicted answer.</param>
    /// <param name="reference">A reference answer.</param>
    /// <returns>0 or 1.</returns>
    public static double ExactMatch(string prediction, string reference) => Normalize(prediction) == Normalize(reference) ? 1 : 0;

    /// <summary>Token F1 of the normalised answers (v2 rule: an empty side scores 1 only against an empty side).</summary>
    /// <param name="prediction">The predicted answer.</param>
    /// <param name="reference">A reference answer.</param>
    /// <returns>F1 in [0, 1].</returns>
    public static double F1(string prediction, string reference)
    {
        var predicted = Tokens(prediction);
        var gold = Tokens(reference);
        if (predicted.Length == 0 || gold.Length == 0) return predicted.Length == gold.Length ? 1 : 0;
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var t in gold) counts[t] = counts.GetValueOrDefault(t) + 1;
        var same = 0;
        foreach (var t in predicted)
        {
            if (counts.GetValueOrDefault(t) > 0)
            {
                counts[t]--;
                same++;
            }
        }

        if (same == 0) return 0;
        var precision = (double)same / predicted.Length;
        var recall = (double)same / gold.Length;
        return 2 * precision * recall / (precision + recall);
    }

    /// <summary>Scores predictions against each question's reference answers.</summary>
    /// <param name="predictions">Question id → predicted text ("" for no answer).</param>
    /// <param name="references">Question id → reference answer texts (empty for an unanswerable v2 question).</param>
    /// <returns>The scores in percent.</returns>
    /// <exception cref="ArgumentException">A question has no prediction.</exception>
    public static SquadScores Compute(IReadOnlyDictionary<string, string> predictions, IReadOnlyDictionary<string, IReadOnlyList<string>> references)
    {
        ArgumentNullException.ThrowIfNull(predictions);
        ArgumentNullException.ThrowIfNull(references);
        double exact = 0, f1 = 0;
        int hasAnswer = 0, noAnswer = 0;
        foreach (var (id, answers) in references)
        {
            if (!predictions.TryGetValue(id, out var prediction)) throw new ArgumentException($"No prediction for question '{id}'.", nameof(predictions));

            // As the v2 script: references that normalise to nothing are dropped; none left means "no answer".
            var gold = answers.Where(a => Normalize(a).Length > 0).ToList();
            if (gold.Count == 0)
            {
                gold = [string.Empty];
                noAnswer++;
            }
            else
            {
                hasAnswer++;
            }

            exact += gold.Max(g => ExactMatch(prediction, g));
            f1 += gold.Max(g => F1(prediction, g));
        }

        var total = references.Count;
        return total == 0 ? new SquadScores(0, 0, 0, 0, 0) : new SquadScores(100 * exact / total, 100 * f1 / total, total, hasAnswer, noAnswer);
    }

    /// <summary>Scores post-processed predictions against the questions they answer (references: each question's answer texts).</summary>
    /// <param name="predictions">The predictions (<see cref="QuestionAnsweringFeatures.Postprocess"/>).</param>
    /// <param name="examples">The questions, with their answers (none for unanswerable v2 questions).</param>
    /// <returns>The scores in percent.</returns>
    public static SquadScores Compute(IReadOnlyList<QaPrediction> predictions, IReadOnlyList<QaExample> examples)
    {
        ArgumentNullException.ThrowIfNull(predictions);
        ArgumentNullException.ThrowIfNull(examples);
        var predicted = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in predictions) predicted[p.Id] = p.Text;
        var references = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var e in examples) references[e.Id] = e.Answers.Select(a => a.Text).ToList();
        return Compute(predicted, references);
    }

    private static string[] Tokens(string text) => Normalize(text).Split(' ', StringSplitOptions.RemoveEmptyEntries);

    [GeneratedRegex(@"\b(a|an|the)\b")]
    private static partial Regex Articles();
}
