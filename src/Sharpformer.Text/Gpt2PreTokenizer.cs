using System.Globalization;
using Sharpformer.Text.Unicode;

namespace Sharpformer.Text;

/// <summary>
/// GPT-2's pre-tokenizer, the regex <c>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</c>
/// written out as a linear scan over code points.
/// </summary>
/// <remarks>
/// A hand-written scan instead of <see cref="System.Text.RegularExpressions.Regex"/> for two reasons: .NET's regex
/// classes see a non-BMP letter as two surrogates (not <c>\p{L}</c>), which splits words differently from HF's
/// Oniguruma; and a scan cannot backtrack, so no input makes it slow (tiktoken #15/#195-style inputs).
/// </remarks>
public static class Gpt2PreTokenizer
{
    private static readonly string[] Contractions = ["s", "t", "re", "ve", "m", "ll", "d"];

    /// <summary>Splits <paramref name="text"/> into GPT-2 pre-tokens; returns their spans (UTF-16 indices) in order.</summary>
    public static IReadOnlyList<TextSpan> Split(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var chars = AlignedChar.FromText(text, 0, text.Length);
        return Split(chars, 0, chars.Count).Select(r => new TextSpan(chars[r.Start].Start, chars[r.End - 1].End)).ToList();
    }

    /// <summary>The pre-tokens of chars[from..to) as index ranges into chars.</summary>
    internal static List<(int Start, int End)> Split(List<AlignedChar> chars, int from, int to)
    {
        var pieces = new List<(int, int)>();
        var i = from;
        while (i < to)
        {
            var end = MatchAt(chars, i, to);
            pieces.Add((i, end));
            i = end;
        }

        return pieces;
    }

    /// <summary>End of the regex match that starts at <paramref name="i"/> (alternatives tried in the regex's order).</summary>
    private static int MatchAt(List<AlignedChar> chars, int i, int to)
    {
        var c = chars[i].CodePoint;

        // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive, ASCII)
        if (c == '\'')
        {
            foreach (var suffix in Contractions)
            {
                if (i + suffix.Length < to && Matches(chars, i + 1, suffix))
                {
                    return i + 1 + suffix.Length;
                }
            }
        }

        // ' ?' then one class: the optional space is taken only when the class follows it.
        var classStart = c == ' ' && i + 1 < to ? i + 1 : i;
        var first = chars[classStart].CodePoint;
        if (IsLetter(first))
        {
            return RunEnd(chars, classStart, to, IsLetter);
        }

        if (IsNumber(first))
        {
            return RunEnd(chars, classStart, to, IsNumber);
        }

        if (IsOther(first))
        {
            return RunEnd(chars, classStart, to, IsOther);
        }

        if (IsOther(c))
        {
            return RunEnd(chars, i, to, IsOther);
        }

        // \s+(?!\S): the whitespace run, less its last char when a non-space follows (that char then leads the next
        // piece, e.g. " world"); \s+ when the run is a single char followed by a non-space.
        var runEnd = RunEnd(chars, i, to, UnicodeTables.IsWhiteSpace);
        if (runEnd == to || runEnd - 1 == i)
        {
            return runEnd;
        }

        return runEnd - 1;
    }

    private static bool Matches(List<AlignedChar> chars, int at, string ascii)
    {
        for (var k = 0; k < ascii.Length; k++)
        {
            if (chars[at + k].CodePoint != ascii[k])
            {
                return false;
            }
        }

        return true;
    }

    private static int RunEnd(List<AlignedChar> chars, int start, int to, Func<int, bool> inClass)
    {
        var end = start;
        while (end < to && inClass(chars[end].CodePoint))
        {
            end++;
        }

        return end;
    }

    private static bool IsLetter(int cp) => UnicodeTables.Category(cp) is UnicodeCategory.UppercaseLetter
        or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter or UnicodeCategory.ModifierLetter
        or UnicodeCategory.OtherLetter;

    private static bool IsNumber(int cp) => UnicodeTables.Category(cp) is UnicodeCategory.DecimalDigitNumber
        or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;

    private static bool IsOther(int cp) => !UnicodeTables.IsWhiteSpace(cp) && !IsLetter(cp) && !IsNumber(cp);
}
