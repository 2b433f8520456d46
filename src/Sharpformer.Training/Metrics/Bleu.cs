using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Sharpformer.Training.Metrics;

/// <summary>How BLEU treats an n-gram order with no match (sacreBLEU's <c>smooth_method</c>).</summary>
public enum BleuSmoothing
{
    /// <summary>mteval-v13a's: the k-th order with no match gets precision 1 / (2^k · total) (sacreBLEU's default, <c>exp</c>).</summary>
    Exp,

    /// <summary>No smoothing: a zero precision makes BLEU 0 (<c>none</c>).</summary>
    None,

    /// <summary>Zero counts replaced by the smoothing value (default 0.1) (<c>floor</c>).</summary>
    Floor,

    /// <summary>The smoothing value (default 1) added to the counts and totals of orders ≥ 2 (<c>add-k</c>).</summary>
    AddK,
}

/// <summary>How segments are split into words before counting n-grams (sacreBLEU's <c>tokenize</c>).</summary>
public enum BleuTokenizer
{
    /// <summary>mteval-v13a's tokenizer, WMT's standard (sacreBLEU's default, <c>13a</c>).</summary>
    Mteval13a,

    /// <summary>Whitespace only (<c>none</c>).</summary>
    None,
}

/// <summary>BLEU settings; the defaults are sacreBLEU's corpus-BLEU defaults (13a, exp smoothing, cased, order 4).</summary>
public sealed record BleuOptions
{
    /// <summary>The tokenizer.</summary>
    public BleuTokenizer Tokenize { get; init; } = BleuTokenizer.Mteval13a;

    /// <summary>The smoothing method.</summary>
    public BleuSmoothing Smoothing { get; init; } = BleuSmoothing.Exp;

    /// <summary>The value of <see cref="BleuSmoothing.Floor"/> (default 0.1) and <see cref="BleuSmoothing.AddK"/> (default 1); null takes the default.</summary>
    public double? SmoothValue { get; init; }

    /// <summary>Lowercase hypotheses and references first.</summary>
    public bool Lowercase { get; init; }

    /// <summary>The highest n-gram order (default 4).</summary>
    public int MaxNgramOrder { get; init; } = 4;

    /// <summary>Average only over the orders that have hypothesis n-grams (sacreBLEU recommends it for sentence-level BLEU).</summary>
    public bool EffectiveOrder { get; init; }
}

/// <summary>A BLEU result with sacreBLEU's statistics.</summary>
/// <param name="Score">BLEU in [0, 100].</param>
/// <param name="Counts">Matched n-grams per order.</param>
/// <param name="Totals">Hypothesis n-grams per order.</param>
/// <param name="Precisions">Precision per order in percent (smoothed).</param>
/// <param name="BrevityPenalty">exp(1 − ref_len / hyp_len) when the hypotheses are shorter, else 1.</param>
/// <param name="HypothesisLength">Tokens in all hypotheses.</param>
/// <param name="ReferenceLength">Sum of each segment's closest reference length.</param>
public sealed record BleuScore(double Score, IReadOnlyList<int> Counts, IReadOnlyList<int> Totals, IReadOnlyList<double> Precisions,
    double BrevityPenalty, int HypothesisLength, int ReferenceLength)
{
    /// <summary>sacreBLEU's line: <c>BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)</c>.</summary>
    /// <returns>The text.</returns>
    public override string ToString()
    {
        var inv = CultureInfo.InvariantCulture;
        double ratio = ReferenceLength == 0 ? 0 : (double)HypothesisLength / ReferenceLength;
        string precisions = string.Join("/", Precisions.Select(p => p.ToString("F1", inv)));
        return string.Create(inv, $"BLEU = {Score:F2} {precisions} (BP = {BrevityPenalty:F3} ratio = {ratio:F3} hyp_len = {HypothesisLength} ref_len = {ReferenceLength})");
    }
}

/// <summary>
/// BLEU (Papineni et al. 2002) as sacreBLEU computes it: each segment tokenized (13a by default), n-grams of orders
/// 1…4 clipped by their highest count in any reference, the closest reference length (the shorter on ties) for the
/// brevity penalty, statistics summed over the corpus, then BP · exp(mean log precision) with exp smoothing.
/// </summary>
public static partial class Bleu
{
    /// <summary>
    /// Corpus BLEU of <paramref name="hypotheses"/> against one or more reference streams (sacreBLEU's
    /// <c>corpus_bleu(hyps, [refs1, refs2, …])</c>): stream k holds the k-th reference of every segment.
    /// </summary>
    /// <param name="hypotheses">One system output per segment.</param>
    /// <param name="references">Reference streams, each with one string per segment.</param>
    /// <param name="options">Settings; null = sacreBLEU's defaults.</param>
    /// <returns>The score and its statistics.</returns>
    /// <exception cref="ArgumentException">No reference stream, or a stream's length differs from the hypotheses'.</exception>
    public static BleuScore Corpus(IReadOnlyList<string> hypotheses, IReadOnlyList<IReadOnlyList<string>> references, BleuOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(hypotheses);
        ArgumentNullException.ThrowIfNull(references);
        options ??= new BleuOptions();
        if (options.MaxNgramOrder < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxNgramOrder, "BLEU: MaxNgramOrder must be at least 1.");
        }

        if (references.Count == 0)
        {
            throw new ArgumentException("BLEU: no reference stream given; pass at least one list of references (one per hypothesis).", nameof(references));
        }

        for (int k = 0; k < references.Count; k++)
        {
            if (references[k].Count != hypotheses.Count)
            {
                throw new ArgumentException($"BLEU: reference stream {k} has {references[k].Count} segments but there are {hypotheses.Count} hypotheses; every stream needs one reference per hypothesis.", nameof(references));
            }
        }

        int order = options.MaxNgramOrder;
        var correct = new int[order];
        var total = new int[order];
        int hypLength = 0, refLength = 0;
        for (int i = 0; i < hypotheses.Count; i++)
        {
            var refNgrams = new Dictionary<string, int>(StringComparer.Ordinal);
            var refLengths = new List<int>(references.Count);
            foreach (var stream in references)
            {
                var (ngrams, length) = Ngrams(Preprocess(stream[i], options), order);
                refLengths.Add(length);
                foreach (var (ngram, count) in ngrams)
                {
                    refNgrams[ngram] = Math.Max(refNgrams.GetValueOrDefault(ngram), count);
                }
            }

            var (hypNgrams, hypLen) = Ngrams(Preprocess(hypotheses[i], options), order);
            hypLength += hypLen;
            refLength += ClosestReferenceLength(hypLen, refLengths);
            foreach (var (ngram, count) in hypNgrams)
            {
                int n = NgramOrder(ngram) - 1;
                total[n] += count;
                if (refNgrams.TryGetValue(ngram, out int refCount))
                {
                    correct[n] += Math.Min(count, refCount);
                }
            }
        }

        return Compute(correct, total, hypLength, refLength, options);
    }

    /// <summary>Sentence BLEU of one hypothesis against its references (sacreBLEU's <c>sentence_bleu</c>; pass EffectiveOrder = true as it recommends).</summary>
    /// <param name="hypothesis">The system output.</param>
    /// <param name="references">Its references.</param>
    /// <param name="options">Settings; null = the defaults.</param>
    /// <returns>The score.</returns>
    public static BleuScore Sentence(string hypothesis, IReadOnlyList<string> references, BleuOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(hypothesis);
        ArgumentNullException.ThrowIfNull(references);
        return Corpus([hypothesis], [.. references.Select(r => (IReadOnlyList<string>)[r])], options);
    }

    /// <summary>BLEU from its sufficient statistics (sacreBLEU's <c>BLEU.compute_bleu</c>).</summary>
    /// <param name="correct">Matched n-grams per order.</param>
    /// <param name="total">Hypothesis n-grams per order.</param>
    /// <param name="hypothesisLength">The system length.</param>
    /// <param name="referenceLength">The reference length.</param>
    /// <param name="options">Smoothing and order; null = the defaults.</param>
    /// <returns>The score.</returns>
    /// <exception cref="ArgumentException">The count lists are shorter than the n-gram order.</exception>
    public static BleuScore Compute(IReadOnlyList<int> correct, IReadOnlyList<int> total, int hypothesisLength, int referenceLength, BleuOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(correct);
        ArgumentNullException.ThrowIfNull(total);
        options ??= new BleuOptions();
        int order = options.MaxNgramOrder;
        if (correct.Count < order || total.Count < order)
        {
            throw new ArgumentException($"BLEU: {correct.Count} matched and {total.Count} total counts given for n-gram order {order}.", nameof(correct));
        }

        double bp = 1.0;
        if (hypothesisLength < referenceLength)
        {
            bp = hypothesisLength > 0 ? Math.Exp(1.0 - ((double)referenceLength / hypothesisLength)) : 0.0;
        }

        var precisions = new double[order];
        var counts = correct.Take(order).ToArray();
        var totals = total.Take(order).ToArray();
        if (counts.All(c => c == 0))
        {
            return new BleuScore(0.0, counts, totals, precisions, bp, hypothesisLength, referenceLength);
        }

        double smoothValue = options.SmoothValue ?? (options.Smoothing == BleuSmoothing.Floor ? 0.1 : 1.0);
        double smoothMteval = 1.0;
        int effectiveOrder = order;
        for (int n = 1; n <= order; n++)
        {
            double c = counts[n - 1], t = totals[n - 1];
            if (options.Smoothing == BleuSmoothing.AddK && n > 1)
            {
                c += smoothValue;
                t += smoothValue;
            }

            if (t == 0)
            {
                break;
            }

            if (options.EffectiveOrder)
            {
                effectiveOrder = n;
            }

            if (c == 0)
            {
                if (options.Smoothing == BleuSmoothing.Exp)
                {
                    smoothMteval *= 2;
                    precisions[n - 1] = 100.0 / (smoothMteval * t);
                }
                else if (options.Smoothing == BleuSmoothing.Floor)
                {
                    precisions[n - 1] = 100.0 * smoothValue / t;
                }
            }
            else
            {
                precisions[n - 1] = 100.0 * c / t;
            }
        }

        double logSum = 0;
        for (int n = 0; n < effectiveOrder; n++)
        {
            // sacreBLEU floors log(0) at −9999999999, which drives the score to 0.
            logSum += precisions[n] == 0.0 ? -9999999999.0 : Math.Log(precisions[n]);
        }

        return new BleuScore(bp * Math.Exp(logSum / effectiveOrder), counts, totals, precisions, bp, hypothesisLength, referenceLength);
    }

    /// <summary>
    /// mteval-v13a's tokenization as sacreBLEU implements it: drop <c>&lt;skipped&gt;</c>, join hyphenated line breaks,
    /// unescape &amp;quot; &amp;amp; &amp;lt; &amp;gt;, split off punctuation and symbols (ASCII ranges { – ~, [ – `,
    /// space – &amp;, ( – +, : – @, /), periods and commas unless between digits, and a dash after a digit.
    /// </summary>
    /// <param name="line">A segment.</param>
    /// <returns>The tokens joined by single spaces.</returns>
    public static string Tokenize13a(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        line = line.Replace("<skipped>", string.Empty, StringComparison.Ordinal)
            .Replace("-\n", string.Empty, StringComparison.Ordinal)
            .Replace("\n", " ", StringComparison.Ordinal);
        if (line.Contains('&', StringComparison.Ordinal))
        {
            line = line.Replace("&quot;", "\"", StringComparison.Ordinal)
                .Replace("&amp;", "&", StringComparison.Ordinal)
                .Replace("&lt;", "<", StringComparison.Ordinal)
                .Replace("&gt;", ">", StringComparison.Ordinal);
        }

        line = $" {line} ";
        line = Symbols().Replace(line, " $1 ");
        line = PeriodCommaAfterNonDigit().Replace(line, "$1 $2 ");
        line = PeriodCommaBeforeNonDigit().Replace(line, " $1 $2");
        line = DashAfterDigit().Replace(line, "$1 $2 ");
        return string.Join(' ', SplitWhitespace(line));
    }

    private static string Preprocess(string segment, BleuOptions options)
    {
        ArgumentNullException.ThrowIfNull(segment);
        if (options.Lowercase)
        {
            segment = segment.ToLowerInvariant();
        }

        return options.Tokenize == BleuTokenizer.Mteval13a ? Tokenize13a(segment) : segment;
    }

    /// <summary>All n-grams of orders 1…<paramref name="order"/> (tokens joined by a space) with counts, and the token count.</summary>
    private static (Dictionary<string, int> Ngrams, int Length) Ngrams(string line, int order)
    {
        var tokens = SplitWhitespace(line);
        var ngrams = new Dictionary<string, int>(StringComparer.Ordinal);
        var builder = new StringBuilder();
        for (int n = 1; n <= order; n++)
        {
            for (int i = 0; i + n <= tokens.Count; i++)
            {
                builder.Clear();
                for (int j = 0; j < n; j++)
                {
                    if (j > 0)
                    {
                        builder.Append(' ');
                    }

                    builder.Append(tokens[i + j]);
                }

                string key = builder.ToString();
                ngrams[key] = ngrams.GetValueOrDefault(key) + 1;
            }
        }

        return (ngrams, tokens.Count);
    }

    private static int NgramOrder(string ngram)
    {
        int spaces = 0;
        foreach (char ch in ngram)
        {
            if (ch == ' ')
            {
                spaces++;
            }
        }

        return spaces + 1;
    }

    /// <summary>sacreBLEU's closest reference length: the smallest |hyp − ref|, the shorter reference on ties.</summary>
    private static int ClosestReferenceLength(int hypothesisLength, List<int> referenceLengths)
    {
        int closestDiff = -1, closest = -1;
        foreach (int length in referenceLengths)
        {
            int diff = Math.Abs(hypothesisLength - length);
            if (closestDiff == -1 || diff < closestDiff)
            {
                closestDiff = diff;
                closest = length;
            }
            else if (diff == closestDiff && length < closest)
            {
                closest = length;
            }
        }

        return closest;
    }

    /// <summary>Python's str.split(): runs of whitespace (including the separators U+001C–U+001F) separate tokens.</summary>
    private static List<string> SplitWhitespace(string line)
    {
        var tokens = new List<string>();
        int start = -1;
        for (int i = 0; i <= line.Length; i++)
        {
            bool space = i == line.Length || char.IsWhiteSpace(line[i]) || (line[i] >= '\u001C' && line[i] <= '\u001F');
            if (space)
            {
                if (start >= 0)
                {
                    tokens.Add(line[start..i]);
                    start = -1;
                }
            }
            else if (start < 0)
            {
                start = i;
            }
        }

        return tokens;
    }

    [GeneratedRegex(@"([\{-\~\[-\` -\&\(-\+\:-\@\/])", RegexOptions.CultureInvariant)]
    private static partial Regex Symbols();

    [GeneratedRegex(@"([^0-9])([\.,])", RegexOptions.CultureInvariant)]
    private static partial Regex PeriodCommaAfterNonDigit();

    [GeneratedRegex(@"([\.,])([^0-9])", RegexOptions.CultureInvariant)]
    private static partial Regex PeriodCommaBeforeNonDigit();

    [GeneratedRegex(@"([0-9])(-)", RegexOptions.CultureInvariant)]
    private static partial Regex DashAfterDigit();
}
