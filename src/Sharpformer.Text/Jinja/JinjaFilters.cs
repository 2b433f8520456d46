using System.Globalization;
using System.Text;

namespace Sharpformer.Text.Jinja;

/// <summary>The filters, tests and Python methods chat templates use.</summary>
internal static class JinjaFilters
{
    public static object? Apply(JinjaRuntime runtime, FilterExpr at, object? value, List<object?> args, Dictionary<string, object?> kwargs)
    {
        object? Arg(int index, string name, object? defaultValue) =>
            index < args.Count ? args[index] : kwargs.TryGetValue(name, out var v) ? v : defaultValue;

        switch (at.Name)
        {
            case "safe":
            case "string":
                return PyValues.Str(value);
            case "trim":
                return Strip(PyValues.Str(value), Arg(0, "chars", null) as string, true, true);
            case "upper":
                return PyValues.Str(value).ToUpperInvariant();
            case "lower":
                return PyValues.Str(value).ToLowerInvariant();
            case "capitalize":
                return Capitalize(PyValues.Str(value));
            case "title":
                return JinjaTitle(PyValues.Str(value));
            case "replace":
                return Replace(PyValues.Str(value), PyValues.Str(Arg(0, "old", "")), PyValues.Str(Arg(1, "new", "")), Arg(2, "count", null));
            case "length":
            case "count":
                return value switch
                {
                    string s => (long)s.Length,
                    List<object?> list => (long)list.Count,
                    Dictionary<string, object?> dictionary => (long)dictionary.Count,
                    Undefined => 0L,
                    _ => throw new InvalidOperationException($"object of type '{PyValues.TypeName(value)}' has no len()"),
                };
            case "default":
            case "d":
                {
                    bool boolean = PyValues.Truthy(Arg(1, "boolean", false));
                    return value is Undefined || (boolean && !PyValues.Truthy(value)) ? Arg(0, "default_value", "") : value;
                }

            case "first":
                {
                    var items = Items(value);
                    return items.Count > 0 ? items[0] : new Undefined("first of an empty sequence");
                }

            case "last":
                {
                    var items = Items(value);
                    return items.Count > 0 ? items[^1] : new Undefined("last of an empty sequence");
                }

            case "list":
                return Items(value);
            case "reverse":
                return value is string text ? new string(text.Reverse().ToArray()) : Enumerable.Reverse(Items(value)).ToList();
            case "items":
                return value switch
                {
                    Dictionary<string, object?> dictionary => dictionary.Select(p => (object?)new PyTuple { p.Key, p.Value }).ToList(),
                    Undefined => new List<object?>(),
                    _ => throw new InvalidOperationException($"the items filter needs a mapping, got {PyValues.TypeName(value)}"),
                };
            case "join":
                {
                    string separator = PyValues.Str(Arg(0, "d", ""));
                    var items = Items(value);
                    if (Arg(1, "attribute", null) is string attribute)
                    {
                        items = items.Select(item => JinjaRuntime.GetAttribute(item, attribute, at)).ToList();
                    }

                    return string.Join(separator, items.Select(PyValues.Str));
                }

            case "int":
                return ToInt(value, Arg(0, "default", 0L));
            case "float":
                return value switch
                {
                    double d => d,
                    long or bool => PyValues.ToDouble(value),
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double parsed) => parsed,
                    _ => Arg(0, "default", 0.0),
                };
            case "abs":
                return value switch
                {
                    long l => (object?)Math.Abs(l),
                    double d => Math.Abs(d),
                    _ => throw new InvalidOperationException($"bad operand type for abs(): '{PyValues.TypeName(value)}'"),
                };
            case "tojson":
                {
                    var indent = Arg(0, "indent", null);
                    string? itemSeparator = null, keySeparator = null;
                    if (Arg(2, "separators", null) is List<object?> { Count: 2 } separators)
                    {
                        itemSeparator = PyValues.Str(separators[0]);
                        keySeparator = PyValues.Str(separators[1]);
                    }

                    return PyValues.ToJson(value, indent is null ? null : (int)PyValues.ToLong(indent), itemSeparator, keySeparator,
                        PyValues.Truthy(Arg(3, "sort_keys", false)));
                }

            case "escape":
            case "e":
                return Escape(PyValues.Str(value));
            case "map":
                {
                    var items = Items(value);
                    if (kwargs.TryGetValue("attribute", out var attributeValue))
                    {
                        string attribute = PyValues.Str(attributeValue);
                        return items.Select(item => item is Dictionary<string, object?> d && d.TryGetValue(attribute, out var v) ? v
                            : JinjaRuntime.GetAttribute(item, attribute, at) is Undefined && kwargs.TryGetValue("default", out var fallback) ? fallback
                            : JinjaRuntime.GetAttribute(item, attribute, at)).ToList();
                    }

                    if (args.Count == 0)
                    {
                        throw new InvalidOperationException("map needs a filter name or attribute=");
                    }

                    string filter = PyValues.Str(args[0]);
                    return items.Select(item => runtime.CallFilter(filter, item, args.Skip(1).ToList(), at)).ToList();
                }

            case "select":
            case "reject":
                {
                    bool keep = at.Name == "select";
                    var items = Items(value);
                    return items.Where(item => (args.Count == 0 ? PyValues.Truthy(item) : Test(PyValues.Str(args[0]), item, args.Skip(1).ToList(), at, null)) == keep).ToList();
                }

            case "selectattr":
            case "rejectattr":
                {
                    bool keep = at.Name == "selectattr";
                    if (args.Count == 0)
                    {
                        throw new InvalidOperationException($"{at.Name} needs an attribute name");
                    }

                    string attribute = PyValues.Str(args[0]);
                    return Items(value).Where(item =>
                    {
                        var field = JinjaRuntime.GetAttribute(item, attribute, at);
                        bool passed = args.Count < 2 ? PyValues.Truthy(field) : Test(PyValues.Str(args[1]), field, args.Skip(2).ToList(), at, null);
                        return passed == keep;
                    }).ToList();
                }

            case "unique":
                {
                    var result = new List<object?>();
                    foreach (var item in Items(value))
                    {
                        if (!result.Any(x => PyValues.Equals(x, item)))
                        {
                            result.Add(item);
                        }
                    }

                    return result;
                }

            case "sum":
                {
                    object? total = Arg(1, "start", 0L);
                    foreach (var item in Items(value))
                    {
                        total = total is double || item is double ? PyValues.ToDouble(total) + PyValues.ToDouble(item) : (object?)(PyValues.ToLong(total) + PyValues.ToLong(item));
                    }

                    return total;
                }

            default:
                throw new JinjaException($"Unsupported Jinja filter '{at.Name}' at line {at.Line}, column {at.Column}", at.Line, at.Column);
        }
    }

    public static bool Test(string name, object? value, List<object?> args, Node at, Scope? scope)
    {
        object? Arg0() => args.Count > 0 ? args[0] : throw new InvalidOperationException($"test '{name}' needs an argument");
        return name switch
        {
            "defined" => value is not Undefined,
            "undefined" => value is Undefined,
            "none" => value is null,
            "string" => value is string,
            "mapping" => value is Dictionary<string, object?>,
            "iterable" => value is string or List<object?> or Dictionary<string, object?> or Undefined,
            "sequence" => value is string or List<object?> or Dictionary<string, object?>,
            "number" => value is long or double,
            "integer" => value is long,
            "float" => value is double,
            "boolean" => value is bool,
            "true" => value is true,
            "false" => value is false,
            "callable" => value is Callable,
            "odd" => PyValues.ToLong(value) % 2 != 0,
            "even" => PyValues.ToLong(value) % 2 == 0,
            "divisibleby" => PyValues.ToLong(value) % PyValues.ToLong(Arg0()) == 0,
            "eq" or "equalto" or "==" => PyValues.Equals(value, Arg0()),
            "ne" or "!=" => !PyValues.Equals(value, Arg0()),
            "lt" or "lessthan" or "<" => JinjaRuntime.Compare("<", value, Arg0()),
            "le" or "<=" => JinjaRuntime.Compare("<=", value, Arg0()),
            "gt" or "greaterthan" or ">" => JinjaRuntime.Compare(">", value, Arg0()),
            "ge" or ">=" => JinjaRuntime.Compare(">=", value, Arg0()),
            "in" => JinjaRuntime.Compare("in", value, Arg0()),
            "sameas" => ReferenceEquals(value, Arg0()) || (value is null && Arg0() is null) || (value is bool or string && PyValues.Equals(value, Arg0()) && value.GetType() == Arg0()?.GetType()),
            "lower" => value is string s && s.Any(char.IsLetter) && string.Equals(s, s.ToLowerInvariant(), StringComparison.Ordinal),
            "upper" => value is string u && u.Any(char.IsLetter) && string.Equals(u, u.ToUpperInvariant(), StringComparison.Ordinal),
            _ => throw new JinjaException($"Unsupported Jinja test '{name}' at line {at.Line}, column {at.Column}", at.Line, at.Column),
        };
    }

    /// <summary>The dict methods templates call (items, keys, values, get), bound to <paramref name="dictionary"/>.</summary>
    public static Callable? DictionaryMethod(Dictionary<string, object?> dictionary, string name) => name switch
    {
        "items" => new Callable("dict.items", (_, _) => dictionary.Select(p => (object?)new PyTuple { p.Key, p.Value }).ToList()),
        "keys" => new Callable("dict.keys", (_, _) => dictionary.Keys.Cast<object?>().ToList()),
        "values" => new Callable("dict.values", (_, _) => dictionary.Values.ToList()),
        "get" => new Callable("dict.get", (args, _) => args.Count == 0
            ? throw new InvalidOperationException("dict.get() needs a key")
            : args[0] is string key && dictionary.TryGetValue(key, out var v) ? v : args.Count > 1 ? args[1] : null),
        _ => null,
    };

    /// <summary>The str methods templates call, bound to <paramref name="s"/>.</summary>
    public static Callable? StringMethod(string s, string name)
    {
        Func<List<object?>, Dictionary<string, object?>, object?>? method = name switch
        {
            "strip" => (args, _) => Strip(s, args.Count > 0 ? args[0] as string : null, true, true),
            "lstrip" => (args, _) => Strip(s, args.Count > 0 ? args[0] as string : null, true, false),
            "rstrip" => (args, _) => Strip(s, args.Count > 0 ? args[0] as string : null, false, true),
            "upper" => (_, _) => s.ToUpperInvariant(),
            "lower" => (_, _) => s.ToLowerInvariant(),
            "title" => (_, _) => PythonTitle(s),
            "capitalize" => (_, _) => Capitalize(s),
            "startswith" => (args, _) => Affix(s, args, start: true),
            "endswith" => (args, _) => Affix(s, args, start: false),
            "replace" => (args, _) => args.Count < 2
                ? throw new InvalidOperationException("str.replace() needs old and new")
                : Replace(s, PyValues.Str(args[0]), PyValues.Str(args[1]), args.Count > 2 ? args[2] : null),
            "split" => (args, kwargs) => Split(s, args.Count > 0 ? args[0] : kwargs.GetValueOrDefault("sep"),
                args.Count > 1 ? PyValues.ToLong(args[1]) : kwargs.TryGetValue("maxsplit", out var m) ? PyValues.ToLong(m) : -1),
            "find" => (args, _) => (long)s.IndexOf(PyValues.Str(args.Count > 0 ? args[0] : ""), StringComparison.Ordinal),
            "join" => (args, _) => string.Join(s, (args.Count > 0 && args[0] is List<object?> items ? items : []).Select(PyValues.Str)),
            _ => null,
        };
        return method is null ? null : new Callable("str." + name, method);
    }

    private static bool Affix(string s, List<object?> args, bool start)
    {
        if (args.Count == 0)
        {
            throw new InvalidOperationException($"str.{(start ? "startswith" : "endswith")}() needs an argument");
        }

        var candidates = args[0] is List<object?> list ? list.Select(PyValues.Str) : [PyValues.Str(args[0])];
        return candidates.Any(c => start ? s.StartsWith(c, StringComparison.Ordinal) : s.EndsWith(c, StringComparison.Ordinal));
    }

    private static List<object?> Items(object? value) => value switch
    {
        List<object?> list => list,
        string s => s.Select(c => (object?)c.ToString()).ToList(),
        Dictionary<string, object?> dictionary => dictionary.Keys.Cast<object?>().ToList(),
        Undefined => [],
        _ => throw new InvalidOperationException($"'{PyValues.TypeName(value)}' object is not iterable"),
    };

    private static bool IsPythonSpace(char c) => char.IsWhiteSpace(c) || c is '\x1c' or '\x1d' or '\x1e' or '\x1f';

    private static string Strip(string s, string? chars, bool left, bool right)
    {
        int start = 0, end = s.Length;
        bool Strippable(char c) => chars is null ? IsPythonSpace(c) : chars.Contains(c);
        while (left && start < end && Strippable(s[start]))
        {
            start++;
        }

        while (right && end > start && Strippable(s[end - 1]))
        {
            end--;
        }

        return s[start..end];
    }

    private static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    /// <summary>Python's str.title(): a letter after a non-letter is upper-cased, other letters lower-cased.</summary>
    private static string PythonTitle(string s)
    {
        var result = new StringBuilder(s.Length);
        bool previousCased = false;
        foreach (char c in s)
        {
            result.Append(previousCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            previousCased = char.IsLetter(c);
        }

        return result.ToString();
    }

    /// <summary>Jinja's title filter: words split at whitespace, '-', and opening brackets; each capitalised.</summary>
    private static string JinjaTitle(string s)
    {
        var result = new StringBuilder(s.Length);
        bool wordStart = true;
        foreach (char c in s)
        {
            bool separator = char.IsWhiteSpace(c) || c is '-' or '(' or '{' or '[' or '<';
            result.Append(separator ? c : wordStart ? char.ToUpperInvariant(c) : char.ToLowerInvariant(c));
            wordStart = separator;
        }

        return result.ToString();
    }

    private static string Replace(string s, string oldValue, string newValue, object? count)
    {
        long limit = count is null ? -1 : PyValues.ToLong(count);
        if (limit < 0)
        {
            return oldValue.Length == 0 ? string.Join(newValue, ["", .. s.Select(c => c.ToString()), ""]) : s.Replace(oldValue, newValue, StringComparison.Ordinal);
        }

        var result = new StringBuilder();
        int position = 0;
        for (long done = 0; done < limit && oldValue.Length > 0; done++)
        {
            int found = s.IndexOf(oldValue, position, StringComparison.Ordinal);
            if (found < 0)
            {
                break;
            }

            result.Append(s, position, found - position).Append(newValue);
            position = found + oldValue.Length;
        }

        return result.Append(s, position, s.Length - position).ToString();
    }

    private static List<object?> Split(string s, object? separator, long maxSplit)
    {
        var parts = new List<object?>();
        if (separator is null)
        {
            int i = 0;
            while (true)
            {
                while (i < s.Length && IsPythonSpace(s[i]))
                {
                    i++;
                }

                if (i >= s.Length)
                {
                    break;
                }

                if (maxSplit >= 0 && parts.Count == maxSplit)
                {
                    parts.Add(s[i..].TrimEnd());
                    break;
                }

                int start = i;
                while (i < s.Length && !IsPythonSpace(s[i]))
                {
                    i++;
                }

                parts.Add(s[start..i]);
            }

            return parts;
        }

        string sep = PyValues.Str(separator);
        if (sep.Length == 0)
        {
            throw new InvalidOperationException("str.split(): empty separator");
        }

        int position = 0;
        while (maxSplit < 0 || parts.Count < maxSplit)
        {
            int found = s.IndexOf(sep, position, StringComparison.Ordinal);
            if (found < 0)
            {
                break;
            }

            parts.Add(s[position..found]);
            position = found + sep.Length;
        }

        parts.Add(s[position..]);
        return parts;
    }

    private static object? ToInt(object? value, object? defaultValue) => value switch
    {
        long l => l,
        bool b => b ? 1L : 0L,
        double d => (long)Math.Truncate(d),
        string s when long.TryParse(s.Trim().Replace("_", "", StringComparison.Ordinal), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long parsed) => parsed,
        string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double parsed) => (long)Math.Truncate(parsed),
        _ => defaultValue,
    };

    private static string Escape(string s) => s.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal)
        .Replace(">", "&gt;", StringComparison.Ordinal).Replace("\"", "&#34;", StringComparison.Ordinal).Replace("'", "&#39;", StringComparison.Ordinal);
}
