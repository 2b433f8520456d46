using System.Globalization;
using System.Text;

namespace Sharpformer.Text.Jinja;

/// <summary>The kinds of token the lexer produces.</summary>
internal enum TokenKind
{
    Text,
    VariableBegin,
    VariableEnd,
    BlockBegin,
    BlockEnd,
    Name,
    String,
    Integer,
    Float,
    Operator,
    End,
}

/// <summary>One token with the line and column (1-based) where it starts.</summary>
internal readonly record struct Token(TokenKind Kind, string Value, int Line, int Column);

/// <summary>
/// Splits a template into text and tag tokens the way Jinja does with <c>trim_blocks</c> and <c>lstrip_blocks</c> on
/// (as transformers renders chat templates): <c>-</c> strips whitespace beside a tag, the first newline after a block
/// or comment tag is dropped, and spaces and tabs before a block or comment tag at the start of a line are dropped.
/// </summary>
internal sealed class JinjaLexer
{
    private static readonly string[] Operators =
    [
        "//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", "=", "<", ">",
    ];

    private readonly string _source;
    private readonly List<Token> _tokens = [];
    private readonly List<int> _lineStarts = [0];
    private int _pos;

    private JinjaLexer(string source)
    {
        _source = source;
        for (int i = 0; i < source.Length; i++)
        {
            if (source[i] == '\n')
            {
                _lineStarts.Add(i + 1);
            }
        }
    }

    /// <summary>
    /// Tokenizes <paramref name="source"/>. As Jinja does by default, line endings become "\n" and one newline at the
    /// very end of the template is dropped (keep_trailing_newline = False).
    /// </summary>
    public static List<Token> Tokenize(string source)
    {
        source = source.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');
        if (source.EndsWith('\n'))
        {
            source = source[..^1];
        }

        var lexer = new JinjaLexer(source);
        lexer.Run();
        return lexer._tokens;
    }

    /// <summary>Line and column (1-based) of an offset.</summary>
    private (int Line, int Column) Position(int offset)
    {
        int index = _lineStarts.BinarySearch(offset);
        int line = index >= 0 ? index : ~index - 1;
        return (line + 1, offset - _lineStarts[line] + 1);
    }

    private JinjaException Error(string message, int offset)
    {
        var (line, column) = Position(offset);
        return new JinjaException($"{message} at line {line}, column {column}", line, column);
    }

    private void Add(TokenKind kind, string value, int offset)
    {
        var (line, column) = Position(offset);
        _tokens.Add(new Token(kind, value, line, column));
    }

    private void Run()
    {
        bool stripNextLeading = false;
        while (_pos < _source.Length)
        {
            int textStart = _pos;
            int tag = FindTagStart(_pos);
            string text = _source[textStart..(tag < 0 ? _source.Length : tag)];
            if (stripNextLeading)
            {
                text = text.TrimStart();
                stripNextLeading = false;
            }

            if (tag < 0)
            {
                AddText(text, textStart);
                _pos = _source.Length;
                break;
            }

            char kind = _source[tag + 1];
            char sign = tag + 2 < _source.Length ? _source[tag + 2] : '\0';
            if (sign == '-')
            {
                text = text.TrimEnd();
            }
            else if (sign != '+' && kind != '{')
            {
                // lstrip_blocks: drop spaces and tabs between the start of the line and a block or comment tag.
                int lineStart = text.LastIndexOf('\n') + 1;
                bool lineStarting = lineStart > 0 || textStart == 0 || _source[textStart - 1] == '\n';
                if (lineStarting && IsBlank(text, lineStart))
                {
                    text = text[..lineStart];
                }
            }

            AddText(text, textStart);
            _pos = tag + 2 + (sign is '-' or '+' ? 1 : 0);
            if (kind == '#')
            {
                stripNextLeading = LexComment(tag);
            }
            else
            {
                stripNextLeading = LexTag(kind == '{', tag);
            }
        }

        Add(TokenKind.End, "", _source.Length);
    }

    private static bool IsBlank(string text, int from)
    {
        for (int i = from; i < text.Length; i++)
        {
            if (text[i] is not (' ' or '\t'))
            {
                return false;
            }
        }

        return true;
    }

    private void AddText(string text, int offset)
    {
        if (text.Length > 0)
        {
            Add(TokenKind.Text, text, offset);
        }
    }

    private int FindTagStart(int from)
    {
        for (int i = from; i + 1 < _source.Length; i++)
        {
            if (_source[i] == '{' && _source[i + 1] is '{' or '%' or '#')
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Skips a comment; returns whether whitespace after it is stripped.</summary>
    private bool LexComment(int start)
    {
        int end = _source.IndexOf("#}", _pos, StringComparison.Ordinal);
        if (end < 0)
        {
            throw Error("Unclosed comment: '{#' has no matching '#}'", start);
        }

        bool strip = end > _pos && _source[end - 1] == '-';
        _pos = end + 2;
        SkipTrimBlocksNewline();
        return strip;
    }

    private void SkipTrimBlocksNewline()
    {
        if (_pos < _source.Length && _source[_pos] == '\n')
        {
            _pos++;
        }
    }

    /// <summary>Lexes the inside of <c>{{ }}</c> or <c>{% %}</c>; returns whether whitespace after it is stripped.</summary>
    private bool LexTag(bool variable, int start)
    {
        Add(variable ? TokenKind.VariableBegin : TokenKind.BlockBegin, variable ? "{{" : "{%", start);
        string close = variable ? "}}" : "%}";
        int depth = 0;
        while (true)
        {
            while (_pos < _source.Length && char.IsWhiteSpace(_source[_pos]))
            {
                _pos++;
            }

            if (_pos >= _source.Length)
            {
                throw Error($"Unclosed tag: '{(variable ? "{{" : "{%")}' has no matching '{close}'", start);
            }

            if (depth == 0)
            {
                bool dash = _source[_pos] == '-' && string.CompareOrdinal(_source, _pos + 1, close, 0, 2) == 0;
                if (dash || string.CompareOrdinal(_source, _pos, close, 0, 2) == 0)
                {
                    Add(variable ? TokenKind.VariableEnd : TokenKind.BlockEnd, close, _pos);
                    _pos += dash ? 3 : 2;
                    if (!variable)
                    {
                        SkipTrimBlocksNewline();
                    }

                    return dash;
                }
            }

            char c = _source[_pos];
            int tokenStart = _pos;
            if (char.IsLetter(c) || c == '_')
            {
                while (_pos < _source.Length && (char.IsLetterOrDigit(_source[_pos]) || _source[_pos] == '_'))
                {
                    _pos++;
                }

                Add(TokenKind.Name, _source[tokenStart.._pos], tokenStart);
            }
            else if (char.IsAsciiDigit(c))
            {
                LexNumber(tokenStart);
            }
            else if (c is '\'' or '"')
            {
                Add(TokenKind.String, LexString(c), tokenStart);
            }
            else
            {
                string? op = null;
                foreach (var candidate in Operators)
                {
                    if (string.CompareOrdinal(_source, _pos, candidate, 0, candidate.Length) == 0)
                    {
                        op = candidate;
                        break;
                    }
                }

                if (op is null)
                {
                    throw Error($"Unexpected character '{c}' in a tag", tokenStart);
                }

                depth += op is "(" or "[" or "{" ? 1 : op is ")" or "]" or "}" ? -1 : 0;
                if (depth < 0)
                {
                    throw Error($"Unbalanced '{op}' in a tag", tokenStart);
                }

                _pos += op.Length;
                Add(TokenKind.Operator, op, tokenStart);
            }
        }
    }

    private void LexNumber(int start)
    {
        while (_pos < _source.Length && (char.IsAsciiDigit(_source[_pos]) || _source[_pos] == '_'))
        {
            _pos++;
        }

        bool isFloat = false;
        if (_pos + 1 < _source.Length && _source[_pos] == '.' && char.IsAsciiDigit(_source[_pos + 1]))
        {
            isFloat = true;
            _pos++;
            while (_pos < _source.Length && (char.IsAsciiDigit(_source[_pos]) || _source[_pos] == '_'))
            {
                _pos++;
            }
        }

        if (_pos < _source.Length && _source[_pos] is 'e' or 'E')
        {
            int save = _pos;
            _pos++;
            if (_pos < _source.Length && _source[_pos] is '+' or '-')
            {
                _pos++;
            }

            if (_pos < _source.Length && char.IsAsciiDigit(_source[_pos]))
            {
                isFloat = true;
                while (_pos < _source.Length && char.IsAsciiDigit(_source[_pos]))
                {
                    _pos++;
                }
            }
            else
            {
                _pos = save;
            }
        }

        string text = _source[start.._pos].Replace("_", "", StringComparison.Ordinal);
        Add(isFloat ? TokenKind.Float : TokenKind.Integer, text, start);
    }

    private string LexString(char quote)
    {
        int start = _pos;
        _pos++;
        var value = new StringBuilder();
        while (true)
        {
            if (_pos >= _source.Length)
            {
                throw Error("Unterminated string literal", start);
            }

            char c = _source[_pos++];
            if (c == quote)
            {
                return value.ToString();
            }

            if (c != '\\')
            {
                value.Append(c);
                continue;
            }

            if (_pos >= _source.Length)
            {
                throw Error("Unterminated string literal", start);
            }

            char e = _source[_pos++];
            switch (e)
            {
                case 'n': value.Append('\n'); break;
                case 't': value.Append('\t'); break;
                case 'r': value.Append('\r'); break;
                case '0': value.Append('\0'); break;
                case '\\': value.Append('\\'); break;
                case '\'': value.Append('\''); break;
                case '"': value.Append('"'); break;
                case '\n': break;
                case 'u' or 'x' or 'U':
                    {
                        int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                        if (_pos + digits > _source.Length
                            || !int.TryParse(_source.AsSpan(_pos, digits), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int code)
                            || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
                        {
                            throw Error($"Bad \\{e} escape in a string literal", _pos - 2);
                        }

                        value.Append(char.ConvertFromUtf32(code));
                        _pos += digits;
                        break;
                    }

                default:
                    // Python keeps unknown escapes as written.
                    value.Append('\\').Append(e);
                    break;
            }
        }
    }
}
