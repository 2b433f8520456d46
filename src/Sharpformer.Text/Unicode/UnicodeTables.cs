using System.Globalization;
using System.Reflection;
using System.Text;

namespace Sharpformer.Text.Unicode;

/// <summary>
/// The character classes Hugging Face's <c>tokenizers</c> uses, and canonical decomposition (NFD) without ICU.
/// </summary>
/// <remarks>
/// The build runs with invariant globalization, where <see cref="string.Normalize()"/> leaves text unchanged, so NFD
/// comes from <c>nfd.txt</c> (made by <c>make_nfd_table.py</c> from UnicodeData.txt). Categories come from
/// <see cref="CharUnicodeInfo"/>, which .NET carries in managed code.
/// </remarks>
internal static class UnicodeTables
{
    private const int HangulSBase = 0xAC00, HangulLBase = 0x1100, HangulVBase = 0x1161, HangulTBase = 0x11A7;
    private const int HangulLCount = 19, HangulVCount = 21, HangulTCount = 28;
    private const int HangulNCount = HangulVCount * HangulTCount, HangulSCount = HangulLCount * HangulNCount;

    private static readonly Lazy<(Dictionary<int, int[]> Decompositions, Dictionary<int, byte> Classes)> Tables =
        new(Load, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Rust's <c>char::is_whitespace</c> (the Unicode White_Space property).</summary>
    public static bool IsWhiteSpace(int cp) => cp switch
    {
        >= 0x09 and <= 0x0D => true,
        0x20 or 0x85 or 0xA0 or 0x1680 => true,
        >= 0x2000 and <= 0x200A => true,
        0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000 => true,
        _ => false,
    };

    /// <summary>HF BertNormalizer's control test: categories Cc, Cf and Co, except tab, newline and carriage return.</summary>
    public static bool IsControl(int cp)
    {
        if (cp is '\t' or '\n' or '\r')
        {
            return false;
        }

        var category = Category(cp);
        return category is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.PrivateUse;
    }

    /// <summary>HF BertPreTokenizer's punctuation: any ASCII punctuation (33–47, 58–64, 91–96, 123–126) or category P*.</summary>
    public static bool IsPunctuation(int cp)
    {
        if (cp is (>= 33 and <= 47) or (>= 58 and <= 64) or (>= 91 and <= 96) or (>= 123 and <= 126))
        {
            return true;
        }

        return Category(cp) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation
            or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation
            or UnicodeCategory.OtherPunctuation;
    }

    /// <summary>HF BertNormalizer's "Chinese character": the CJK ideograph blocks, with its exact ranges.</summary>
    public static bool IsChineseChar(int cp) => cp is
        (>= 0x4E00 and <= 0x9FFF) or (>= 0x3400 and <= 0x4DBF) or (>= 0x20000 and <= 0x2A6DF)
        or (>= 0x2A700 and <= 0x2B73F) or (>= 0x2B740 and <= 0x2B81F) or (>= 0x2B920 and <= 0x2CEAF)
        or (>= 0xF900 and <= 0xFAFF) or (>= 0x2F800 and <= 0x2FA1F);

    /// <summary>Whether the code point is a non-spacing mark (category Mn), the marks that strip-accents removes.</summary>
    public static bool IsNonSpacingMark(int cp) => Category(cp) == UnicodeCategory.NonSpacingMark;

    /// <summary>The general category of a code point (surrogate code points report <see cref="UnicodeCategory.Surrogate"/>).</summary>
    public static UnicodeCategory Category(int cp) => CharUnicodeInfo.GetUnicodeCategory(cp);

    /// <summary>The canonical combining class (0 for starters).</summary>
    public static int CombiningClass(int cp) => Tables.Value.Classes.TryGetValue(cp, out var c) ? c : 0;

    /// <summary>Appends the full canonical decomposition of <paramref name="cp"/> (itself when it has none).</summary>
    public static void Decompose(int cp, List<int> output)
    {
        var s = cp - HangulSBase;
        if (s is >= 0 and < HangulSCount)
        {
            // Hangul syllables decompose by arithmetic into leading consonant, vowel and optional trailing consonant.
            output.Add(HangulLBase + (s / HangulNCount));
            output.Add(HangulVBase + (s % HangulNCount / HangulTCount));
            if (s % HangulTCount != 0)
            {
                output.Add(HangulTBase + (s % HangulTCount));
            }

            return;
        }

        if (Tables.Value.Decompositions.TryGetValue(cp, out var parts))
        {
            output.AddRange(parts);
        }
        else
        {
            output.Add(cp);
        }
    }

    private static (Dictionary<int, int[]>, Dictionary<int, byte>) Load()
    {
        var decompositions = new Dictionary<int, int[]>();
        var classes = new Dictionary<int, byte>();
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("Sharpformer.Text.Unicode.nfd.txt")
            ?? throw new InvalidOperationException("The embedded Unicode table nfd.txt is missing from Sharpformer.Text; rebuild the project.");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var fields = line.Split(' ');
            var cp = int.Parse(fields[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            if (fields[0] == "c")
            {
                classes[cp] = byte.Parse(fields[2], CultureInfo.InvariantCulture);
            }
            else
            {
                var parts = new int[fields.Length - 2];
                for (var i = 0; i < parts.Length; i++)
                {
                    parts[i] = int.Parse(fields[i + 2], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                }

                decompositions[cp] = parts;
            }
        }

        return (decompositions, classes);
    }
}
