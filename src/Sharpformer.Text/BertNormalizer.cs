using System.Text;
using Sharpformer.Text.Unicode;

namespace Sharpformer.Text;

/// <summary>
/// Hugging Face's <c>BertNormalizer</c>, rule for rule: clean text, spaces around CJK ideographs, strip accents (NFD,
/// then drop category Mn), lowercase. Every output character remembers the span of the original text it came from.
/// </summary>
public sealed class BertNormalizer
{
    /// <summary>Drop NUL, U+FFFD and control/format/private-use characters; map every whitespace to a space.</summary>
    public bool CleanText { get; init; } = true;

    /// <summary>Put spaces around CJK ideographs so that each becomes its own word.</summary>
    public bool HandleChineseChars { get; init; } = true;

    /// <summary>Strip accents; <see langword="null"/> follows <see cref="Lowercase"/> (HF's default).</summary>
    public bool? StripAccents { get; init; }

    /// <summary>Lowercase every character (Unicode full lowercase mapping, char by char).</summary>
    public bool Lowercase { get; init; } = true;

    /// <summary>Normalizes <paramref name="text"/> the way HF's BertNormalizer does (alignment dropped).</summary>
    public string Normalize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var chars = Normalize(AlignedChar.FromText(text, 0, text.Length));
        return AlignedChar.ToText(chars, 0, chars.Count);
    }

    /// <summary>The aligned form: each output code point keeps the original span it came from.</summary>
    internal List<AlignedChar> Normalize(List<AlignedChar> chars)
    {
        if (CleanText)
        {
            chars = Clean(chars);
        }

        if (HandleChineseChars)
        {
            chars = SpaceChineseChars(chars);
        }

        // HF strips accents before lowercasing, and only when asked (or, by default, when lowercasing).
        if (StripAccents ?? Lowercase)
        {
            chars = StripNonSpacingMarks(chars);
        }

        if (Lowercase)
        {
            chars = ToLower(chars);
        }

        return chars;
    }

    private static List<AlignedChar> Clean(List<AlignedChar> chars)
    {
        var output = new List<AlignedChar>(chars.Count);
        foreach (var c in chars)
        {
            // The removal test runs first, so \v, \f and U+0085 (controls that are also whitespace) are dropped.
            if (c.CodePoint == 0 || c.CodePoint == 0xFFFD || UnicodeTables.IsControl(c.CodePoint))
            {
                continue;
            }

            output.Add(UnicodeTables.IsWhiteSpace(c.CodePoint) ? c with { CodePoint = ' ' } : c);
        }

        return output;
    }

    private static List<AlignedChar> SpaceChineseChars(List<AlignedChar> chars)
    {
        var output = new List<AlignedChar>(chars.Count);
        foreach (var c in chars)
        {
            if (UnicodeTables.IsChineseChar(c.CodePoint))
            {
                output.Add(c with { CodePoint = ' ' });
                output.Add(c);
                output.Add(c with { CodePoint = ' ' });
            }
            else
            {
                output.Add(c);
            }
        }

        return output;
    }

    private static List<AlignedChar> StripNonSpacingMarks(List<AlignedChar> chars)
    {
        // NFD: decompose every character, then put each run of non-starters in canonical (combining class) order.
        var decomposed = new List<AlignedChar>(chars.Count);
        var parts = new List<int>(4);
        foreach (var c in chars)
        {
            parts.Clear();
            UnicodeTables.Decompose(c.CodePoint, parts);
            foreach (var p in parts)
            {
                decomposed.Add(c with { CodePoint = p });
            }
        }

        CanonicalOrder(decomposed);
        decomposed.RemoveAll(c => UnicodeTables.IsNonSpacingMark(c.CodePoint));
        return decomposed;
    }

    /// <summary>Stable sort of each run of characters with non-zero combining class by that class (Unicode §3.11).</summary>
    private static void CanonicalOrder(List<AlignedChar> chars)
    {
        for (var i = 1; i < chars.Count; i++)
        {
            var cc = UnicodeTables.CombiningClass(chars[i].CodePoint);
            if (cc == 0)
            {
                continue;
            }

            // Insertion step: move chars[i] left past non-starters with a greater class.
            var j = i;
            while (j > 0)
            {
                var prev = UnicodeTables.CombiningClass(chars[j - 1].CodePoint);
                if (prev <= cc)
                {
                    break;
                }

                (chars[j - 1], chars[j]) = (chars[j], chars[j - 1]);
                j--;
            }
        }
    }

    private static List<AlignedChar> ToLower(List<AlignedChar> chars)
    {
        var output = new List<AlignedChar>(chars.Count);
        foreach (var c in chars)
        {
            if (c.CodePoint == 0x130)
            {
                // U+0130 is the one unconditional multi-character lowercase mapping (SpecialCasing.txt): i + U+0307.
                output.Add(c with { CodePoint = 'i' });
                output.Add(c with { CodePoint = 0x307 });
            }
            else if (Rune.IsValid(c.CodePoint))
            {
                output.Add(c with { CodePoint = Rune.ToLowerInvariant(new Rune(c.CodePoint)).Value });
            }
            else
            {
                output.Add(c);
            }
        }

        return output;
    }
}
