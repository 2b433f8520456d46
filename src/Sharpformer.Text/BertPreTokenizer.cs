using Sharpformer.Text.Unicode;

namespace Sharpformer.Text;

/// <summary>
/// Hugging Face's <c>BertPreTokenizer</c>: split on whitespace (dropped) and on every punctuation character (kept as
/// a word of its own). Punctuation is ASCII 33–47, 58–64, 91–96, 123–126 and every Unicode category P* character.
/// </summary>
public static class BertPreTokenizer
{
    /// <summary>Splits <paramref name="text"/> into words; each word comes with its span in <paramref name="text"/>.</summary>
    public static IReadOnlyList<(string Word, TextSpan Span)> PreTokenize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var chars = AlignedChar.FromText(text, 0, text.Length);
        var words = new List<(string, TextSpan)>();
        foreach (var (start, end) in Split(chars, 0, chars.Count))
        {
            words.Add((AlignedChar.ToText(chars, start, end), new TextSpan(chars[start].Start, chars[end - 1].End)));
        }

        return words;
    }

    /// <summary>The words of <paramref name="chars"/>[<paramref name="from"/>..<paramref name="to"/>) as index ranges into it.</summary>
    internal static List<(int Start, int End)> Split(List<AlignedChar> chars, int from, int to)
    {
        var words = new List<(int, int)>();
        var wordStart = -1;
        for (var i = from; i < to; i++)
        {
            var cp = chars[i].CodePoint;
            if (UnicodeTables.IsWhiteSpace(cp))
            {
                if (wordStart >= 0)
                {
                    words.Add((wordStart, i));
                    wordStart = -1;
                }
            }
            else if (UnicodeTables.IsPunctuation(cp))
            {
                if (wordStart >= 0)
                {
                    words.Add((wordStart, i));
                    wordStart = -1;
                }

                words.Add((i, i + 1));
            }
            else if (wordStart < 0)
            {
                wordStart = i;
            }
        }

        if (wordStart >= 0)
        {
            words.Add((wordStart, to));
        }

        return words;
    }
}
