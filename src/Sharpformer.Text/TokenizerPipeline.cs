using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Sharpformer.Text;

/// <summary>
/// The normalizers, pre-tokenizers and decoders of a Hugging Face tokenizer.json that Llama-, Mistral-, Qwen2- and
/// Phi-3-style tokenizers use, each with the semantics of HF's Rust <c>tokenizers</c>. Text travels as
/// <see cref="AlignedChar"/> lists, so every token keeps the span of the original text it came from (a character a
/// normalizer inserts gets an empty span where it was inserted; a Unicode normal form that changes a segment aligns
/// each output character to the whole segment).
/// </summary>
internal static class TokenizerPipeline
{
    /// <summary>A normalizer: aligned chars in, aligned chars out.</summary>
    public delegate List<AlignedChar> Normalizer(List<AlignedChar> chars);

    /// <summary>A pre-tokenizer: pieces (runs of aligned chars) in, pieces out.</summary>
    public delegate List<List<AlignedChar>> PreTokenizer(List<List<AlignedChar>> pieces);

    /// <summary>A decoder step: token strings in, token strings out (HF's decode_chain).</summary>
    public delegate List<string> Decoder(List<string> tokens);

    public static Normalizer? ParseNormalizer(JsonElement element, string source)
    {
        if (element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        var type = TokenizerFiles.GetString(element, "type");
        switch (type)
        {
            case "Sequence":
                {
                    var steps = element.GetProperty("normalizers").EnumerateArray().Select(e => ParseNormalizer(e, source)).OfType<Normalizer>().ToList();
                    return chars =>
                    {
                        foreach (var step in steps)
                        {
                            chars = step(chars);
                        }

                        return chars;
                    };
                }

            case "Prepend":
                {
                    var prepend = TokenizerFiles.GetString(element, "prepend") ?? throw Unsupported(source, "normalizer Prepend without 'prepend'");
                    return chars =>
                    {
                        if (chars.Count == 0)
                        {
                            return chars;
                        }

                        int at = chars[0].Start;
                        var result = CodePoints(prepend).Select(cp => new AlignedChar(cp, at, at)).ToList();
                        result.AddRange(chars);
                        return result;
                    };
                }

            case "Replace":
                {
                    var (pattern, content) = ReadReplace(element, source);
                    return chars => Replace(chars, pattern, content);
                }

            case "NFC":
                return chars => UnicodeForm(chars, compose: true);
            case "NFD":
                return chars => UnicodeForm(chars, compose: false);
            case "Lowercase":
                return chars => chars.Select(c => c with { CodePoint = Rune.ToLowerInvariant(new Rune(c.CodePoint)).Value }).ToList();
            default:
                throw Unsupported(source, $"normalizer '{type}'");
        }
    }

    public static PreTokenizer? ParsePreTokenizer(JsonElement element, string source)
    {
        if (element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        var type = TokenizerFiles.GetString(element, "type");
        switch (type)
        {
            case "Sequence":
                {
                    var steps = element.GetProperty("pretokenizers").EnumerateArray().Select(e => ParsePreTokenizer(e, source)).OfType<PreTokenizer>().ToList();
                    return pieces =>
                    {
                        foreach (var step in steps)
                        {
                            pieces = step(pieces);
                        }

                        return pieces;
                    };
                }

            case "Split":
                {
                    var regex = ReadPattern(element, source);
                    var behavior = TokenizerFiles.GetString(element, "behavior") ?? "Isolated";
                    bool invert = TokenizerFiles.GetBool(element, "invert") ?? false;
                    if (behavior is not ("Isolated" or "Removed" or "MergedWithPrevious" or "MergedWithNext"))
                    {
                        throw Unsupported(source, $"Split behavior '{behavior}'");
                    }

                    return pieces => pieces.SelectMany(p => Split(p, regex, behavior, invert)).ToList();
                }

            case "ByteLevel":
                {
                    bool prefix = TokenizerFiles.GetBool(element, "add_prefix_space") ?? true;
                    bool useRegex = TokenizerFiles.GetBool(element, "use_regex") ?? true;
                    return pieces => ByteLevel(pieces, prefix, useRegex);
                }

            case "Metaspace":
                {
                    var replacement = CodePoints(TokenizerFiles.GetString(element, "replacement") ?? "▁").Single();
                    var scheme = TokenizerFiles.GetString(element, "prepend_scheme")
                        ?? ((TokenizerFiles.GetBool(element, "add_prefix_space") ?? true) ? "always" : "never");
                    bool split = TokenizerFiles.GetBool(element, "split") ?? true;
                    return pieces => pieces.SelectMany(p => Metaspace(p, replacement, scheme, split)).ToList();
                }

            default:
                throw Unsupported(source, $"pre-tokenizer '{type}'");
        }
    }

    public static Decoder? ParseDecoder(JsonElement element, string source)
    {
        if (element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        var type = TokenizerFiles.GetString(element, "type");
        switch (type)
        {
            case "Sequence":
                {
                    var steps = element.GetProperty("decoders").EnumerateArray().Select(e => ParseDecoder(e, source)).OfType<Decoder>().ToList();
                    return tokens =>
                    {
                        foreach (var step in steps)
                        {
                            tokens = step(tokens);
                        }

                        return tokens;
                    };
                }

            case "Replace":
                {
                    var (pattern, content) = ReadReplace(element, source);
                    var from = string.Concat(pattern.Select(char.ConvertFromUtf32));
                    var to = string.Concat(content.Select(char.ConvertFromUtf32));
                    return tokens => tokens.Select(t => t.Replace(from, to, StringComparison.Ordinal)).ToList();
                }

            case "ByteFallback":
                return DecodeByteFallback;
            case "Fuse":
                return tokens => [string.Concat(tokens)];
            case "Strip":
                {
                    var content = CodePoints(TokenizerFiles.GetString(element, "content") ?? " ").Single();
                    int start = TokenizerFiles.GetInt(element, "start") ?? 0, stop = TokenizerFiles.GetInt(element, "stop") ?? 0;
                    return tokens => tokens.Select(t => Strip(t, content, start, stop)).ToList();
                }

            case "ByteLevel":
                return tokens => [DecodeByteLevel(tokens)];
            case "Metaspace":
                {
                    var replacement = char.ConvertFromUtf32(CodePoints(TokenizerFiles.GetString(element, "replacement") ?? "▁").Single());
                    var scheme = TokenizerFiles.GetString(element, "prepend_scheme")
                        ?? ((TokenizerFiles.GetBool(element, "add_prefix_space") ?? true) ? "always" : "never");
                    return tokens => tokens.Select((t, i) =>
                    {
                        var text = t.Replace(replacement, " ", StringComparison.Ordinal);
                        return i == 0 && scheme != "never" && text.StartsWith(' ') ? text[1..] : text;
                    }).ToList();
                }

            default:
                throw Unsupported(source, $"decoder '{type}'");
        }
    }

    /// <summary>HF's ByteFallback decoder: runs of &lt;0xXX&gt; tokens become their UTF-8 text, or one U+FFFD per byte when invalid.</summary>
    private static List<string> DecodeByteFallback(List<string> tokens)
    {
        var output = new List<string>();
        var bytes = new List<byte>();
        var strict = new UTF8Encoding(false, throwOnInvalidBytes: true);
        foreach (var token in tokens)
        {
            if (token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>' && byte.TryParse(token.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out var b))
            {
                bytes.Add(b);
                continue;
            }

            Flush();
            output.Add(token);
        }

        Flush();
        return output;

        void Flush()
        {
            if (bytes.Count == 0)
            {
                return;
            }

            try
            {
                output.Add(strict.GetString(bytes.ToArray()));
            }
            catch (DecoderFallbackException)
            {
                for (var i = 0; i < bytes.Count; i++)
                {
                    output.Add("\uFFFD");
                }
            }

            bytes.Clear();
        }
    }

    /// <summary>HF's Strip decoder: up to <paramref name="start"/> leading and <paramref name="stop"/> trailing <paramref name="content"/> chars removed from a token.</summary>
    private static string Strip(string token, int content, int start, int stop)
    {
        var cps = CodePoints(token);
        int first = 0, last = cps.Count;
        while (first < Math.Min(start, cps.Count) && cps[first] == content)
        {
            first++;
        }

        int stripped = 0;
        while (stripped < stop && last > first && cps[last - 1] == content)
        {
            last--;
            stripped++;
        }

        return string.Concat(cps.Skip(first).Take(last - first).Select(char.ConvertFromUtf32));
    }

    /// <summary>HF's ByteLevel decoder: every char of the byte-to-unicode table is its byte (others their own UTF-8), read as UTF-8 with U+FFFD for invalid sequences.</summary>
    public static string DecodeByteLevel(IEnumerable<string> tokens)
    {
        var byteOf = new Dictionary<char, byte>(256);
        for (var b = 0; b < 256; b++)
        {
            byteOf[BytePairMerger.ByteToChar[b]] = (byte)b;
        }

        var bytes = new List<byte>();
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var token in tokens)
        {
            foreach (var rune in token.EnumerateRunes())
            {
                if (rune.IsBmp && byteOf.TryGetValue((char)rune.Value, out var b))
                {
                    bytes.Add(b);
                }
                else
                {
                    int n = rune.EncodeToUtf8(utf8);
                    for (var i = 0; i < n; i++)
                    {
                        bytes.Add(utf8[i]);
                    }
                }
            }
        }

        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static List<AlignedChar> Replace(List<AlignedChar> chars, List<int> pattern, List<int> content)
    {
        if (pattern.Count == 0)
        {
            return chars;
        }

        var result = new List<AlignedChar>(chars.Count);
        var i = 0;
        while (i < chars.Count)
        {
            var match = i + pattern.Count <= chars.Count;
            for (var k = 0; match && k < pattern.Count; k++)
            {
                match = chars[i + k].CodePoint == pattern[k];
            }

            if (!match)
            {
                result.Add(chars[i]);
                i++;
                continue;
            }

            int start = chars[i].Start, end = chars[i + pattern.Count - 1].End;
            result.AddRange(content.Select(cp => new AlignedChar(cp, start, end)));
            i += pattern.Count;
        }

        return result;
    }

    /// <summary>
    /// NFC or NFD of a segment (without ICU: <see cref="Unicode.CanonicalForms"/>). Characters before the first and after
    /// the last change keep their alignment; the changed middle is aligned to the span it came from.
    /// </summary>
    private static List<AlignedChar> UnicodeForm(List<AlignedChar> chars, bool compose)
    {
        if (chars.Count == 0)
        {
            return chars;
        }

        var input = chars.Select(c => c.CodePoint).ToList();
        var output = compose ? Unicode.CanonicalForms.Nfc(input) : Unicode.CanonicalForms.Nfd(input);
        if (output.SequenceEqual(input))
        {
            return chars;
        }

        int prefix = 0;
        while (prefix < input.Count && prefix < output.Count && input[prefix] == output[prefix])
        {
            prefix++;
        }

        int suffix = 0;
        while (suffix < input.Count - prefix && suffix < output.Count - prefix && input[^(suffix + 1)] == output[^(suffix + 1)])
        {
            suffix++;
        }

        var result = chars.GetRange(0, prefix);
        int start = prefix < chars.Count ? chars[prefix].Start : chars[^1].End;
        int end = chars.Count - suffix > prefix ? chars[chars.Count - suffix - 1].End : start;
        for (var i = prefix; i < output.Count - suffix; i++)
        {
            result.Add(new AlignedChar(output[i], start, end));
        }

        result.AddRange(chars.GetRange(chars.Count - suffix, suffix));
        return result;
    }

    /// <summary>
    /// HF's Split pre-tokenizer with a regex over code points. .NET's regex reads UTF-16, where a character outside the
    /// BMP is two surrogates (not <c>\p{L}</c>); the search runs on a copy in which every such character is replaced by a
    /// BMP stand-in of its class (letter, number, space, other), one UTF-16 unit per code point, so the split points
    /// are those of the code-point regex the tokenizer.json means (its classes are \p{L}, \p{N}, \s and literals).
    /// </summary>
    private static IEnumerable<List<AlignedChar>> Split(List<AlignedChar> piece, Regex regex, string behavior, bool invert)
    {
        var search = new StringBuilder(piece.Count);
        foreach (var c in piece)
        {
            search.Append(StandIn(c.CodePoint));
        }

        // (start, end, isMatch) runs covering the piece.
        var runs = new List<(int Start, int End, bool Match)>();
        var at = 0;
        for (var m = regex.Match(search.ToString()); m.Success; m = m.NextMatch())
        {
            if (m.Length == 0)
            {
                continue;
            }

            if (m.Index > at)
            {
                runs.Add((at, m.Index, false));
            }

            runs.Add((m.Index, m.Index + m.Length, true));
            at = m.Index + m.Length;
        }

        if (at < piece.Count)
        {
            runs.Add((at, piece.Count, false));
        }

        if (invert)
        {
            runs = runs.Select(r => (r.Start, r.End, !r.Match)).ToList();
        }

        // As HF's SplitDelimiterBehavior: a match joins the run before it (MergedWithPrevious) or after it
        // (MergedWithNext) only when that run is not itself a match.
        var output = new List<(int Start, int End)>();
        switch (behavior)
        {
            case "Isolated":
                output.AddRange(runs.Select(r => (r.Start, r.End)));
                break;
            case "Removed":
                output.AddRange(runs.Where(r => !r.Match).Select(r => (r.Start, r.End)));
                break;
            case "MergedWithPrevious":
                {
                    var previousMatch = false;
                    foreach (var (start, end, match) in runs)
                    {
                        if (match && !previousMatch && output.Count > 0)
                        {
                            output[^1] = (output[^1].Start, end);
                        }
                        else
                        {
                            output.Add((start, end));
                        }

                        previousMatch = match;
                    }

                    break;
                }

            default:
                {
                    var nextMatch = false;
                    for (var i = runs.Count - 1; i >= 0; i--)
                    {
                        var (start, end, match) = runs[i];
                        if (match && !nextMatch && output.Count > 0)
                        {
                            output[^1] = (start, output[^1].End);
                        }
                        else
                        {
                            output.Add((start, end));
                        }

                        nextMatch = match;
                    }

                    output.Reverse();
                    break;
                }
        }

        return output.Where(r => r.End > r.Start).Select(r => piece.GetRange(r.Start, r.End - r.Start));
    }

    private static char StandIn(int cp)
    {
        if (cp < 0x10000)
        {
            return (char)cp;
        }

        var rune = new Rune(cp);
        if (Rune.IsLetter(rune))
        {
            return 'ª';
        }

        if (Rune.IsNumber(rune))
        {
            return '²';
        }

        return Rune.IsWhiteSpace(rune) ? '\u2003' : '¤';
    }

    /// <summary>HF's ByteLevel pre-tokenizer: optional prefix space, optional GPT-2 regex split, then each UTF-8 byte as its byte-to-unicode char.</summary>
    private static List<List<AlignedChar>> ByteLevel(List<List<AlignedChar>> pieces, bool addPrefixSpace, bool useRegex)
    {
        var output = new List<List<AlignedChar>>();
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var original in pieces)
        {
            var piece = original;
            if (addPrefixSpace && (piece.Count == 0 || piece[0].CodePoint != ' '))
            {
                int at = piece.Count == 0 ? 0 : piece[0].Start;
                piece = [new AlignedChar(' ', at, at), .. piece];
            }

            var ranges = useRegex ? Gpt2PreTokenizer.Split(piece, 0, piece.Count) : [(0, piece.Count)];
            foreach (var (start, end) in ranges)
            {
                var mapped = new List<AlignedChar>();
                for (var i = start; i < end; i++)
                {
                    int n = new Rune(piece[i].CodePoint).EncodeToUtf8(utf8);
                    for (var k = 0; k < n; k++)
                    {
                        mapped.Add(piece[i] with { CodePoint = BytePairMerger.ByteToChar[utf8[k]] });
                    }
                }

                if (mapped.Count > 0)
                {
                    output.Add(mapped);
                }
            }
        }

        return output;
    }

    /// <summary>HF's Metaspace pre-tokenizer: spaces become the replacement, which is prepended per the scheme; split before each replacement.</summary>
    private static List<List<AlignedChar>> Metaspace(List<AlignedChar> piece, int replacement, string scheme, bool split)
    {
        var replaced = piece.Select(c => c.CodePoint == ' ' ? c with { CodePoint = replacement } : c).ToList();
        bool prepend = scheme switch
        {
            "always" => true,
            "first" => replaced.Count > 0 && replaced[0].Start == 0,
            _ => false,
        };
        if (prepend && replaced.Count > 0 && replaced[0].CodePoint != replacement)
        {
            replaced.Insert(0, new AlignedChar(replacement, replaced[0].Start, replaced[0].Start));
        }

        if (!split)
        {
            return [replaced];
        }

        var output = new List<List<AlignedChar>>();
        var start = 0;
        for (var i = 1; i <= replaced.Count; i++)
        {
            if (i == replaced.Count || replaced[i].CodePoint == replacement)
            {
                if (i > start)
                {
                    output.Add(replaced.GetRange(start, i - start));
                }

                start = i;
            }
        }

        return output;
    }

    private static Regex ReadPattern(JsonElement element, string source)
    {
        if (!element.TryGetProperty("pattern", out var pattern) || pattern.ValueKind != JsonValueKind.Object)
        {
            throw Unsupported(source, "Split without a pattern object");
        }

        if (TokenizerFiles.GetString(pattern, "Regex") is { } regex)
        {
            return new Regex(regex, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(5));
        }

        if (TokenizerFiles.GetString(pattern, "String") is { } literal)
        {
            return new Regex(Regex.Escape(literal), RegexOptions.CultureInvariant);
        }

        throw Unsupported(source, "Split pattern that is neither Regex nor String");
    }

    private static (List<int> Pattern, List<int> Content) ReadReplace(JsonElement element, string source)
    {
        if (!element.TryGetProperty("pattern", out var pattern) || TokenizerFiles.GetString(pattern, "String") is not { } literal)
        {
            throw Unsupported(source, "Replace with a Regex pattern (only String patterns are supported)");
        }

        return (CodePoints(literal), CodePoints(TokenizerFiles.GetString(element, "content") ?? ""));
    }

    public static List<int> CodePoints(string text) => text.EnumerateRunes().Select(r => r.Value).ToList();

    private static NotSupportedException Unsupported(string source, string what) =>
        new($"{source}: {what} is not supported; supported are normalizers Sequence/Prepend/Replace/NFC/NFD/Lowercase, pre-tokenizers Sequence/Split/ByteLevel/Metaspace, decoders Sequence/Replace/ByteFallback/Fuse/Strip/ByteLevel/Metaspace.");
}
