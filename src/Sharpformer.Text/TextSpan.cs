namespace Sharpformer.Text;

/// <summary>A half-open range [<see cref="Start"/>, <see cref="End"/>) of UTF-16 indices into the original text.</summary>
/// <param name="Start">Index of the first char covered.</param>
/// <param name="End">Index one past the last char covered; equal to <see cref="Start"/> for tokens with no source text.</param>
public readonly record struct TextSpan(int Start, int End)
{
    /// <summary>Number of chars covered.</summary>
    public int Length => End - Start;

    /// <inheritdoc />
    public override string ToString() => $"({Start}, {End})";
}

/// <summary>One code point of a transformed text and the span of the original text it came from.</summary>
/// <param name="CodePoint">The Unicode scalar value.</param>
/// <param name="Start">Start of its source in the original text (UTF-16 index).</param>
/// <param name="End">End of its source in the original text (UTF-16 index, exclusive).</param>
internal readonly record struct AlignedChar(int CodePoint, int Start, int End)
{
    /// <summary>Reads <paramref name="text"/>[<paramref name="start"/>..<paramref name="end"/>) as code points with identity alignment; a lone surrogate reads as U+FFFD.</summary>
    public static List<AlignedChar> FromText(string text, int start, int end)
    {
        var chars = new List<AlignedChar>(end - start);
        var i = start;
        while (i < end)
        {
            var cp = (int)text[i];
            var width = 1;
            if (char.IsHighSurrogate(text[i]) && i + 1 < end && char.IsLowSurrogate(text[i + 1]))
            {
                cp = char.ConvertToUtf32(text[i], text[i + 1]);
                width = 2;
            }
            else if (char.IsSurrogate(text[i]))
            {
                // A lone surrogate is not a Unicode scalar value; HF (Rust strings) could never see one.
                cp = 0xFFFD;
            }

            chars.Add(new AlignedChar(cp, i, i + width));
            i += width;
        }

        return chars;
    }

    /// <summary>Builds the UTF-16 string of <paramref name="chars"/>[<paramref name="start"/>..<paramref name="end"/>).</summary>
    public static string ToText(List<AlignedChar> chars, int start, int end)
    {
        var builder = new System.Text.StringBuilder(end - start);
        for (var i = start; i < end; i++)
        {
            builder.Append(char.ConvertFromUtf32(chars[i].CodePoint));
        }

        return builder.ToString();
    }
}
