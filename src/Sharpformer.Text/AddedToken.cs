using Sharpformer.Text.Unicode;

namespace Sharpformer.Text;

/// <summary>A token matched as a whole in the text before the model sees it, like HF's <c>AddedToken</c> ("[MASK]", "&lt;|endoftext|&gt;").</summary>
/// <param name="Content">The exact text that is matched (case-sensitively).</param>
/// <param name="Id">Its id in the vocabulary.</param>
/// <param name="Special">Whether it is a special token (skipped by <c>Decode(skipSpecialTokens: true)</c>).</param>
/// <param name="LStrip">Whether the match absorbs whitespace on its left.</param>
/// <param name="RStrip">Whether the match absorbs whitespace on its right.</param>
/// <param name="SingleWord">Whether it only matches when not inside a word.</param>
/// <param name="Normalized">Whether it is matched in the normalized text (true) or in the original text (false).</param>
public sealed record AddedToken(
    string Content, int Id, bool Special, bool LStrip = false, bool RStrip = false, bool SingleWord = false, bool Normalized = false);

/// <summary>A stretch of aligned characters: either text for the model or one added token.</summary>
internal readonly record struct Segment(int Start, int End, AddedToken? Token);

/// <summary>Finds added tokens in text, leftmost first and longest at a position, like HF's added vocabulary.</summary>
internal sealed class AddedTokenMatcher
{
    private readonly Dictionary<int, List<(int[] CodePoints, AddedToken Token)>> _byFirst = [];

    public AddedTokenMatcher(IEnumerable<AddedToken> tokens, Func<string, string>? normalize = null)
    {
        foreach (var token in tokens)
        {
            var content = normalize is null ? token.Content : normalize(token.Content);
            var chars = AlignedChar.FromText(content, 0, content.Length);
            if (chars.Count == 0)
            {
                continue;
            }

            var cps = chars.Select(c => c.CodePoint).ToArray();
            if (!_byFirst.TryGetValue(cps[0], out var list))
            {
                _byFirst[cps[0]] = list = [];
            }

            list.Add((cps, token));
        }

        foreach (var list in _byFirst.Values)
        {
            list.Sort((a, b) => b.CodePoints.Length.CompareTo(a.CodePoints.Length));
        }
    }

    public bool IsEmpty => _byFirst.Count == 0;

    /// <summary>Splits chars[from..to) into text segments and added-token segments.</summary>
    public List<Segment> Split(List<AlignedChar> chars, int from, int to)
    {
        var segments = new List<Segment>();
        var textStart = from;
        var i = from;
        while (i < to)
        {
            var match = MatchAt(chars, i, to);
            if (match is null)
            {
                i++;
                continue;
            }

            var (token, length) = match.Value;
            var start = i;
            var end = i + length;
            if (token.LStrip)
            {
                while (start > textStart && UnicodeTables.IsWhiteSpace(chars[start - 1].CodePoint))
                {
                    start--;
                }
            }

            if (token.RStrip)
            {
                while (end < to && UnicodeTables.IsWhiteSpace(chars[end].CodePoint))
                {
                    end++;
                }
            }

            if (start > textStart)
            {
                segments.Add(new Segment(textStart, start, null));
            }

            segments.Add(new Segment(start, end, token));
            textStart = i = end;
        }

        if (textStart < to)
        {
            segments.Add(new Segment(textStart, to, null));
        }

        return segments;
    }

    private (AddedToken Token, int Length)? MatchAt(List<AlignedChar> chars, int i, int to)
    {
        if (!_byFirst.TryGetValue(chars[i].CodePoint, out var candidates))
        {
            return null;
        }

        foreach (var (cps, token) in candidates)
        {
            if (i + cps.Length > to)
            {
                continue;
            }

            var equal = true;
            for (var k = 1; k < cps.Length && equal; k++)
            {
                equal = chars[i + k].CodePoint == cps[k];
            }

            if (!equal)
            {
                continue;
            }

            if (token.SingleWord && ((i > 0 && IsWordChar(chars[i - 1].CodePoint)) || (i + cps.Length < chars.Count && IsWordChar(chars[i + cps.Length].CodePoint))))
            {
                continue;
            }

            return (token, cps.Length);
        }

        return null;
    }

    private static bool IsWordChar(int cp) => cp == '_' || System.Text.Rune.IsLetterOrDigit(new System.Text.Rune(cp));
}
