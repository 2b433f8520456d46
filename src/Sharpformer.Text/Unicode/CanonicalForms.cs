using System.Globalization;
using System.Reflection;
using System.Text;

namespace Sharpformer.Text.Unicode;

/// <summary>
/// NFD and NFC over code points without ICU (invariant globalization leaves <see cref="string.Normalize()"/> a no-op):
/// full canonical decomposition (<see cref="UnicodeTables.Decompose"/>), canonical ordering of combining marks by
/// class, and for NFC the canonical composition algorithm of UAX #15 with the pairs of <c>nfc.txt</c>
/// (<c>make_nfc_table.py</c>) plus Hangul composed by arithmetic.
/// </summary>
internal static class CanonicalForms
{
    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
    private const int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

    private static readonly Lazy<Dictionary<(int, int), int>> Pairs = new(Load, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>NFD: full canonical decomposition, then combining marks stably sorted by canonical class.</summary>
    public static List<int> Nfd(IEnumerable<int> codePoints)
    {
        var output = new List<int>();
        foreach (var cp in codePoints)
        {
            UnicodeTables.Decompose(cp, output);
        }

        // Canonical ordering: a stable insertion sort of each run of non-starters by class.
        for (var i = 1; i < output.Count; i++)
        {
            var cc = UnicodeTables.CombiningClass(output[i]);
            if (cc == 0)
            {
                continue;
            }

            var j = i;
            while (j > 0 && UnicodeTables.CombiningClass(output[j - 1]) > cc)
            {
                (output[j - 1], output[j]) = (output[j], output[j - 1]);
                j--;
            }
        }

        return output;
    }

    /// <summary>NFC: NFD, then each character composed with the last starter when it is not blocked and the pair composes.</summary>
    public static List<int> Nfc(IEnumerable<int> codePoints)
    {
        var chars = Nfd(codePoints);
        if (chars.Count == 0)
        {
            return chars;
        }

        var output = new List<int>(chars.Count) { chars[0] };
        var starter = UnicodeTables.CombiningClass(chars[0]) == 0 ? 0 : -1;
        var lastClass = UnicodeTables.CombiningClass(chars[0]);
        for (var i = 1; i < chars.Count; i++)
        {
            var c = chars[i];
            var cc = UnicodeTables.CombiningClass(c);
            // Not blocked: nothing between the starter and c, or everything between has a lower, non-zero class.
            var adjacent = starter == output.Count - 1;
            if (starter >= 0 && (adjacent || (lastClass != 0 && lastClass < cc)) && Compose(output[starter], c) is { } composite)
            {
                output[starter] = composite;
                continue;
            }

            if (cc == 0)
            {
                starter = output.Count;
            }

            lastClass = cc;
            output.Add(c);
        }

        return output;
    }

    private static int? Compose(int first, int second)
    {
        var l = first - LBase;
        if (l is >= 0 and < LCount && second - VBase is >= 0 and < VCount)
        {
            return SBase + (((l * VCount) + (second - VBase)) * TCount);
        }

        var s = first - SBase;
        if (s is >= 0 and < SCount && s % TCount == 0 && second - TBase is > 0 and < TCount)
        {
            return first + (second - TBase);
        }

        return Pairs.Value.TryGetValue((first, second), out var composite) ? composite : null;
    }

    private static Dictionary<(int, int), int> Load()
    {
        var pairs = new Dictionary<(int, int), int>();
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("Sharpformer.Text.Unicode.nfc.txt")
            ?? throw new InvalidOperationException("The embedded Unicode table nfc.txt is missing from Sharpformer.Text; rebuild the project.");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var f = line.Split(' ');
            pairs[(int.Parse(f[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture), int.Parse(f[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture))] =
                int.Parse(f[2], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        }

        return pairs;
    }
}
