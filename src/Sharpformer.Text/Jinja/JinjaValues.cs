using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Sharpformer.Text.Jinja;

/// <summary>Jinja's default Undefined: prints as "", is falsy, iterates as empty; using it any other way is an error.</summary>
internal sealed class Undefined(string name)
{
    public string Name { get; } = name;
}

/// <summary>A function a template can call: a global, a bound method, a macro or <c>loop.cycle</c>.</summary>
internal sealed class Callable(string name, Func<List<object?>, Dictionary<string, object?>, object?> invoke)
{
    public string Name { get; } = name;

    public object? Invoke(List<object?> args, Dictionary<string, object?> kwargs) => invoke(args, kwargs);
}

/// <summary>A Python tuple: a list that prints with parentheses (from <c>(a, b)</c> literals and the items filter).</summary>
internal sealed class PyTuple : List<object?>
{
    public PyTuple()
    {
    }

    public PyTuple(IEnumerable<object?> items)
        : base(items)
    {
    }
}

/// <summary>The mutable object <c>namespace()</c> makes (<c>set ns.x = ...</c> works across loop scopes).</summary>
internal sealed class Namespace : Dictionary<string, object?>
{
}

/// <summary>Python semantics for the values templates handle: truth, equality, str(), repr() and json.dumps.</summary>
internal static class PyValues
{
    /// <summary>Turns caller data (CLR primitives, strings, dictionaries, sequences, JsonElement) into template values.</summary>
    public static object? FromClr(object? value) => value switch
    {
        null => null,
        string or bool or long or double or Undefined or Callable or Namespace => value,
        int i => (long)i,
        short s => (long)s,
        byte b => (long)b,
        uint u => (long)u,
        float f => (double)f,
        decimal m => (double)m,
        JsonElement element => FromJson(element),
        IDictionary dictionary => FromDictionary(dictionary),
        IEnumerable sequence => sequence.Cast<object?>().Select(FromClr).ToList(),
        _ => throw new ArgumentException($"A template value of type {value.GetType().Name} is not supported; pass strings, numbers, booleans, null, dictionaries, lists or JsonElement."),
    };

    private static Dictionary<string, object?> FromDictionary(IDictionary dictionary)
    {
        var result = new Dictionary<string, object?>();
        foreach (DictionaryEntry entry in dictionary)
        {
            result[Convert.ToString(entry.Key, CultureInfo.InvariantCulture) ?? ""] = FromClr(entry.Value);
        }

        return result;
    }

    /// <summary>A JSON value as a template value (objects keep their key order).</summary>
    public static object? FromJson(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.String => element.GetString(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        JsonValueKind.Number => element.TryGetInt64(out long l) ? (object?)l : element.GetDouble(),
        JsonValueKind.Array => element.EnumerateArray().Select(FromJson).ToList(),
        _ => element.EnumerateObject().ToDictionary(p => p.Name, p => FromJson(p.Value)),
    };

    /// <summary>Python's type name, for error messages.</summary>
    public static string TypeName(object? value) => value switch
    {
        null => "NoneType",
        PyTuple => "tuple",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        List<object?> => "list",
        Namespace => "Namespace",
        Dictionary<string, object?> => "dict",
        Undefined => "Undefined",
        Callable => "function",
        _ => value.GetType().Name,
    };

    public static bool Truthy(object? value) => value switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> list => list.Count > 0,
        Dictionary<string, object?> dictionary => dictionary.Count > 0,
        _ => true,
    };

    public static bool IsNumber(object? value) => value is long or double or bool;

    public static double ToDouble(object? value) => value switch
    {
        long l => l,
        double d => d,
        bool b => b ? 1 : 0,
        _ => throw new InvalidOperationException($"expected a number, got {TypeName(value)}"),
    };

    public static new bool Equals(object? a, object? b)
    {
        if (a is Undefined || b is Undefined)
        {
            return a is Undefined && b is Undefined;
        }

        if (IsNumber(a) && IsNumber(b))
        {
            return a is double || b is double ? ToDouble(a) == ToDouble(b) : ToLong(a) == ToLong(b);
        }

        return (a, b) switch
        {
            (null, null) => true,
            (string x, string y) => x == y,
            (List<object?> x, List<object?> y) => x.Count == y.Count && x.Zip(y).All(p => Equals(p.First, p.Second)),
            (Dictionary<string, object?> x, Dictionary<string, object?> y) =>
                x.Count == y.Count && x.All(p => y.TryGetValue(p.Key, out var v) && Equals(p.Value, v)),
            _ => ReferenceEquals(a, b),
        };
    }

    public static long ToLong(object? value) => value switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        double d => (long)Math.Truncate(d),
        _ => throw new InvalidOperationException($"expected an integer, got {TypeName(value)}"),
    };

    /// <summary>Python's <c>str()</c>, with Undefined as "" (what <c>{{ }}</c> prints).</summary>
    public static string Str(object? value) => value switch
    {
        string s => s,
        Undefined => "",
        _ => Repr(value),
    };

    /// <summary>Python's <c>repr()</c> (how lists and dicts print their items).</summary>
    public static string Repr(object? value)
    {
        switch (value)
        {
            case null:
                return "None";
            case bool b:
                return b ? "True" : "False";
            case long l:
                return l.ToString(CultureInfo.InvariantCulture);
            case double d:
                return FloatRepr(d);
            case string s:
                return StringRepr(s);
            case Undefined:
                return "";
            case PyTuple tuple:
                return tuple.Count == 1 ? "(" + Repr(tuple[0]) + ",)" : "(" + string.Join(", ", tuple.Select(Repr)) + ")";
            case List<object?> list:
                return "[" + string.Join(", ", list.Select(Repr)) + "]";
            case Namespace ns:
                return "<Namespace " + string.Join(", ", ns.Select(p => p.Key + "=" + Repr(p.Value))) + ">";
            case Dictionary<string, object?> dictionary:
                return "{" + string.Join(", ", dictionary.Select(p => StringRepr(p.Key) + ": " + Repr(p.Value))) + "}";
            case Callable callable:
                return $"<function {callable.Name}>";
            default:
                return value.ToString() ?? "";
        }
    }

    private static string StringRepr(string s)
    {
        char quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        var result = new StringBuilder().Append(quote);
        foreach (char c in s)
        {
            switch (c)
            {
                case '\\': result.Append("\\\\"); break;
                case '\n': result.Append("\\n"); break;
                case '\r': result.Append("\\r"); break;
                case '\t': result.Append("\\t"); break;
                default:
                    if (c == quote)
                    {
                        result.Append('\\').Append(c);
                    }
                    else if (c < 0x20 || c == 0x7f)
                    {
                        result.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        result.Append(c);
                    }

                    break;
            }
        }

        return result.Append(quote).ToString();
    }

    /// <summary>Python's <c>repr(float)</c>: the shortest round-trip digits, exponent form below 1e-4 and from 1e16.</summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d))
        {
            return "nan";
        }

        if (double.IsInfinity(d))
        {
            return d > 0 ? "inf" : "-inf";
        }

        if (d == 0)
        {
            return double.IsNegative(d) ? "-0.0" : "0.0";
        }

        // "E16" is not shortest; "R" is, so split its digits and exponent.
        string r = Math.Abs(d).ToString("R", CultureInfo.InvariantCulture);
        int exponent = 0;
        int e = r.IndexOf('E', StringComparison.Ordinal);
        if (e >= 0)
        {
            exponent = int.Parse(r.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            r = r[..e];
        }

        int dot = r.IndexOf('.', StringComparison.Ordinal);
        string digits = dot < 0 ? r : r[..dot] + r[(dot + 1)..];
        int pointPosition = (dot < 0 ? r.Length : dot) + exponent;
        int leadingZeros = 0;
        while (leadingZeros < digits.Length - 1 && digits[leadingZeros] == '0')
        {
            leadingZeros++;
        }

        digits = digits[leadingZeros..].TrimEnd('0');
        if (digits.Length == 0)
        {
            digits = "0";
        }

        int decpt = pointPosition - leadingZeros;
        string sign = d < 0 ? "-" : "";
        if (decpt > 16 || decpt < -3)
        {
            string mantissa = digits.Length == 1 ? digits : digits[0] + "." + digits[1..];
            int exp = decpt - 1;
            return sign + mantissa + "e" + (exp < 0 ? "-" : "+") + Math.Abs(exp).ToString("00", CultureInfo.InvariantCulture);
        }

        if (decpt <= 0)
        {
            return sign + "0." + new string('0', -decpt) + digits;
        }

        if (decpt >= digits.Length)
        {
            return sign + digits + new string('0', decpt - digits.Length) + ".0";
        }

        return sign + digits[..decpt] + "." + digits[decpt..];
    }

    /// <summary>
    /// transformers' <c>tojson</c>: <c>json.dumps(x, ensure_ascii=False, indent=indent, separators=separators,
    /// sort_keys=sort_keys)</c>.
    /// </summary>
    public static string ToJson(object? value, int? indent, string? itemSeparator, string? keySeparator, bool sortKeys)
    {
        itemSeparator ??= indent is null ? ", " : ",";
        keySeparator ??= ": ";
        var output = new StringBuilder();
        WriteJson(output, value, indent, itemSeparator, keySeparator, sortKeys, 0);
        return output.ToString();
    }

    private static void WriteJson(StringBuilder output, object? value, int? indent, string itemSeparator, string keySeparator, bool sortKeys, int level)
    {
        switch (value)
        {
            case null:
                output.Append("null");
                return;
            case bool b:
                output.Append(b ? "true" : "false");
                return;
            case long l:
                output.Append(l.ToString(CultureInfo.InvariantCulture));
                return;
            case double d:
                output.Append(double.IsNaN(d) ? "NaN" : double.IsInfinity(d) ? (d > 0 ? "Infinity" : "-Infinity") : FloatRepr(d));
                return;
            case string s:
                WriteJsonString(output, s);
                return;
            case List<object?> list:
                WriteJsonContainer(output, '[', ']', list.Count, indent, itemSeparator, level, i => WriteJson(output, list[i], indent, itemSeparator, keySeparator, sortKeys, level + 1));
                return;
            case Dictionary<string, object?> dictionary:
                {
                    var pairs = dictionary.ToList();
                    if (sortKeys)
                    {
                        pairs.Sort((x, y) => string.CompareOrdinal(x.Key, y.Key));
                    }

                    WriteJsonContainer(output, '{', '}', pairs.Count, indent, itemSeparator, level, i =>
                    {
                        WriteJsonString(output, pairs[i].Key);
                        output.Append(keySeparator);
                        WriteJson(output, pairs[i].Value, indent, itemSeparator, keySeparator, sortKeys, level + 1);
                    });
                    return;
                }

            default:
                throw new InvalidOperationException($"Object of type {TypeName(value)} is not JSON serializable");
        }
    }

    private static void WriteJsonContainer(StringBuilder output, char open, char close, int count, int? indent, string itemSeparator, int level, Action<int> writeItem)
    {
        output.Append(open);
        if (count == 0)
        {
            output.Append(close);
            return;
        }

        for (int i = 0; i < count; i++)
        {
            if (i > 0)
            {
                output.Append(itemSeparator);
            }

            if (indent is { } width)
            {
                output.Append('\n').Append(' ', width * (level + 1));
            }

            writeItem(i);
        }

        if (indent is { } closingWidth)
        {
            output.Append('\n').Append(' ', closingWidth * level);
        }

        output.Append(close);
    }

    private static void WriteJsonString(StringBuilder output, string s)
    {
        output.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': output.Append("\\\""); break;
                case '\\': output.Append("\\\\"); break;
                case '\n': output.Append("\\n"); break;
                case '\r': output.Append("\\r"); break;
                case '\t': output.Append("\\t"); break;
                case '\b': output.Append("\\b"); break;
                case '\f': output.Append("\\f"); break;
                default:
                    if (c < 0x20)
                    {
                        output.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        output.Append(c);
                    }

                    break;
            }
        }

        output.Append('"');
    }
}
