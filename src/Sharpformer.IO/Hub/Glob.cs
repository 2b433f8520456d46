using System.Text;
using System.Text.RegularExpressions;

namespace Sharpformer.IO.Hub;

/// <summary>
/// Python fnmatch semantics, as huggingface_hub's allow_patterns use them: <c>*</c> matches any run of characters
/// including '/', <c>?</c> one character, <c>[abc]</c> / <c>[!abc]</c> a set. A pattern ending in '/' matches
/// everything below that folder.
/// </summary>
internal static class Glob
{
    public static bool IsMatch(string path, string pattern)
    {
        if (pattern.EndsWith('/'))
            pattern += "*";
        return ToRegex(pattern).IsMatch(path);
    }

    public static bool MatchesAny(string path, IReadOnlyList<string>? patterns) =>
        patterns is null || patterns.Count == 0 || patterns.Any(p => IsMatch(path, p));

    private static Regex ToRegex(string pattern)
    {
        var sb = new StringBuilder("^");
        for (var i = 0; i < pattern.Length; i++)
        {
            var ch = pattern[i];
            if (ch == '*')
            {
                sb.Append(".*");
            }
            else if (ch == '?')
            {
                sb.Append('.');
            }
            else if (ch == '[')
            {
                var close = pattern.IndexOf(']', i + 2 <= pattern.Length ? i + 2 : i + 1);
                if (close < 0)
                {
                    sb.Append(@"\[");
                    continue;
                }
                var body = pattern[(i + 1)..close];
                var negate = body.StartsWith('!');
                if (negate)
                    body = body[1..];
                sb.Append('[').Append(negate ? "^" : "").Append(body.Replace(@"\", @"\\", StringComparison.Ordinal).Replace("^", @"\^", StringComparison.Ordinal)).Append(']');
                i = close;
            }
            else
            {
                sb.Append(Regex.Escape(ch.ToString()));
            }
        }
        sb.Append('$');
        return new Regex(sb.ToString(), RegexOptions.Singleline | RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
    }
}
