using System.Globalization;

namespace Sharpformer.IO.Gguf;

/// <summary>
/// One GGUF metadata value: a scalar (boxed .NET primitive), a string, or a homogeneous array of one of them (a .NET
/// array: <c>string[]</c>, <c>int[]</c>, <c>float[]</c> …). Nested arrays are not supported.
/// </summary>
public sealed class GgufValue
{
    private GgufValue(GgufValueType type, GgufValueType? elementType, object value)
    {
        Type = type;
        ElementType = elementType;
        Value = value;
    }

    /// <summary>The value type tag.</summary>
    public GgufValueType Type { get; }

    /// <summary>The element type when <see cref="Type"/> is <see cref="GgufValueType.Array"/>, else null.</summary>
    public GgufValueType? ElementType { get; }

    /// <summary>The value: a boxed primitive, a string, or a .NET array of the element type.</summary>
    public object Value { get; }

    /// <summary>A uint32 value.</summary>
    public static GgufValue FromUInt32(uint value) => new(GgufValueType.UInt32, null, value);

    /// <summary>An int32 value.</summary>
    public static GgufValue FromInt32(int value) => new(GgufValueType.Int32, null, value);

    /// <summary>A uint64 value.</summary>
    public static GgufValue FromUInt64(ulong value) => new(GgufValueType.UInt64, null, value);

    /// <summary>A float32 value.</summary>
    public static GgufValue FromFloat32(float value) => new(GgufValueType.Float32, null, value);

    /// <summary>A bool value.</summary>
    public static GgufValue FromBool(bool value) => new(GgufValueType.Bool, null, value);

    /// <summary>A string value.</summary>
    public static GgufValue FromString(string value) => new(GgufValueType.String, null, value ?? throw new ArgumentNullException(nameof(value)));

    /// <summary>An array of strings.</summary>
    public static GgufValue FromStrings(IReadOnlyList<string> values) =>
        new(GgufValueType.Array, GgufValueType.String, values?.ToArray() ?? throw new ArgumentNullException(nameof(values)));

    /// <summary>An array of int32.</summary>
    public static GgufValue FromInt32s(IReadOnlyList<int> values) =>
        new(GgufValueType.Array, GgufValueType.Int32, values?.ToArray() ?? throw new ArgumentNullException(nameof(values)));

    /// <summary>An array of float32.</summary>
    public static GgufValue FromFloat32s(IReadOnlyList<float> values) =>
        new(GgufValueType.Array, GgufValueType.Float32, values?.ToArray() ?? throw new ArgumentNullException(nameof(values)));

    /// <summary>Wraps a value read from a file (the reader has already matched <paramref name="value"/> to the types).</summary>
    internal static GgufValue Raw(GgufValueType type, GgufValueType? elementType, object value) => new(type, elementType, value);

    /// <summary>The string, or throws naming <paramref name="key"/> when the value is not a string.</summary>
    /// <exception cref="GgufFormatException">The value has another type.</exception>
    public string AsString(string key) => Value as string ?? throw Mismatch(key, "string");

    /// <summary>The value as an unsigned integer when it is any integer type holding a value ≥ 0.</summary>
    /// <exception cref="GgufFormatException">The value is not an integer, or it is negative.</exception>
    public ulong AsUInt64(string key) => Value switch
    {
        byte v => v,
        ushort v => v,
        uint v => v,
        ulong v => v,
        sbyte v when v >= 0 => (ulong)v,
        short v when v >= 0 => (ulong)v,
        int v when v >= 0 => (ulong)v,
        long v when v >= 0 => (ulong)v,
        _ => throw Mismatch(key, "non-negative integer"),
    };

    /// <summary>The value as a double when it is a float or an integer.</summary>
    /// <exception cref="GgufFormatException">The value is not numeric.</exception>
    public double AsDouble(string key) => Value switch
    {
        float v => v,
        double v => v,
        string or Array or bool => throw Mismatch(key, "number"),
        _ => System.Convert.ToDouble(Value, CultureInfo.InvariantCulture),
    };

    /// <summary>The string array, or throws naming <paramref name="key"/>.</summary>
    /// <exception cref="GgufFormatException">The value is not an array of strings.</exception>
    public string[] AsStrings(string key) => Value as string[] ?? throw Mismatch(key, "array of string");

    /// <summary>The int32 array, or throws naming <paramref name="key"/>.</summary>
    /// <exception cref="GgufFormatException">The value is not an array of int32.</exception>
    public int[] AsInt32s(string key) => Value as int[] ?? throw Mismatch(key, "array of int32");

    /// <inheritdoc/>
    public override string ToString() => Value switch
    {
        string s => s.Length > 80 ? $"\"{s[..77]}...\"" : $"\"{s}\"",
        Array a => $"[{ElementType}; {a.Length}]",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => Value.ToString() ?? "",
    };

    private GgufFormatException Mismatch(string key, string expected) =>
        new($"GGUF metadata '{key}' is {Describe()}, expected {expected}.");

    private string Describe() => Type == GgufValueType.Array ? $"an array of {ElementType}" : $"a {Type}";
}
