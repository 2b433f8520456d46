using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Unicode;

namespace Sharpformer.IO.SafeTensors;

/// <summary>
/// The parsed and validated header of a safetensors file: the tensor entries sorted by offset, the optional
/// <c>__metadata__</c> map, and where the data section starts.
/// </summary>
/// <remarks>
/// Layout: bytes 0–7 hold N (u64 little-endian); the next N bytes are a UTF-8 JSON object; the rest is the data section.
/// Validation follows the upstream reference (<c>read_metadata</c> + <c>Metadata::validate</c>) and is stricter on
/// duplicate keys, which upstream's JSON parser would silently resolve last-wins. Nothing is allocated in proportion to
/// a length or shape the header claims: only in proportion to the header bytes actually present.
/// </remarks>
public sealed class SafeTensorsHeader
{
    /// <summary>The largest header accepted, in bytes (the upstream cap against JSON denial of service).</summary>
    public const long MaxHeaderSize = 100_000_000;

    /// <summary>Size of the length prefix.</summary>
    public const int LengthPrefixSize = 8;

    // Our header nests 3 deep ({ name: { shape: [ ... ] } }); a little slack lets unknown fields hold small objects.
    private const int MaxJsonDepth = 16;

    private const string MetadataKey = "__metadata__";

    private readonly Dictionary<string, int> _index;

    private SafeTensorsHeader(List<SafeTensorInfo> tensors, Dictionary<string, string> metadata, long headerLength, long dataLength)
    {
        Tensors = tensors;
        Metadata = metadata;
        HeaderLength = headerLength;
        DataLength = dataLength;
        _index = new Dictionary<string, int>(tensors.Count, StringComparer.Ordinal);
        for (int i = 0; i < tensors.Count; i++)
        {
            _index.Add(tensors[i].Name, i);
        }
    }

    /// <summary>The tensor entries sorted by their begin offset (file order).</summary>
    public IReadOnlyList<SafeTensorInfo> Tensors { get; }

    /// <summary>The <c>__metadata__</c> map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>N: the JSON header length in bytes, padding included.</summary>
    public long HeaderLength { get; }

    /// <summary>Offset of the data section from the start of the file (8 + N).</summary>
    public long DataOffset => LengthPrefixSize + HeaderLength;

    /// <summary>Length of the data section in bytes (the sum of all tensor byte lengths).</summary>
    public long DataLength { get; }

    /// <summary>Finds a tensor entry by name.</summary>
    public bool TryGetInfo(string name, [NotNullWhen(true)] out SafeTensorInfo? info)
    {
        if (_index.TryGetValue(name, out int i))
        {
            info = Tensors[i];
            return true;
        }

        info = null;
        return false;
    }

    /// <summary>Parses and validates the header of a whole safetensors file held in memory.</summary>
    /// <param name="file">Every byte of the file.</param>
    /// <param name="fileName">Used in error messages only.</param>
    /// <exception cref="SafeTensorsException">The bytes break a rule of the format; the message says which.</exception>
    public static SafeTensorsHeader Parse(ReadOnlySpan<byte> file, string fileName) => Parse(file, file.Length, fileName);

    /// <summary>
    /// Parses a header from <paramref name="prefix"/>, the first min(<paramref name="fileLength"/>, 8 + cap) bytes of a
    /// file of <paramref name="fileLength"/> bytes (the reader passes a span over its memory map, so nothing is copied).
    /// </summary>
    internal static SafeTensorsHeader Parse(ReadOnlySpan<byte> prefix, long fileLength, string fileName)
    {
        if (fileLength < LengthPrefixSize || prefix.Length < LengthPrefixSize)
        {
            throw Error(SafeTensorsErrorKind.HeaderTooSmall, fileName, null,
                $"the file has {fileLength} bytes, fewer than the 8-byte header length; it is truncated or not a safetensors file.");
        }

        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (n > MaxHeaderSize)
        {
            throw Error(SafeTensorsErrorKind.HeaderTooLarge, fileName, null,
                $"the header claims {n} bytes, more than the {MaxHeaderSize}-byte cap; the file is corrupt or hostile.");
        }

        long headerLength = (long)n;
        if (headerLength > fileLength - LengthPrefixSize || headerLength > prefix.Length - LengthPrefixSize)
        {
            throw Error(SafeTensorsErrorKind.InvalidHeaderLength, fileName, null,
                $"the header claims {n} bytes but only {fileLength - LengthPrefixSize} follow the length; the file is truncated.");
        }

        var json = prefix.Slice(LengthPrefixSize, (int)headerLength);
        if (!Utf8.IsValid(json))
        {
            throw Error(SafeTensorsErrorKind.InvalidHeader, fileName, null,
                "the header is not valid UTF-8; the file is corrupt or not a safetensors file.");
        }

        var (tensors, metadata) = ParseJson(json, fileName);
        long dataLength = fileLength - LengthPrefixSize - headerLength;
        long end = Validate(tensors, fileName);
        if (end != dataLength)
        {
            string detail = end < dataLength
                ? $"{dataLength - end} bytes follow the last tensor (trailing data, e.g. a polyglot file)"
                : $"the tensors need {end} bytes but the data section has {dataLength} ({end - dataLength} missing: the file is truncated)";
            throw Error(SafeTensorsErrorKind.MetadataIncompleteBuffer, fileName, tensors.Count > 0 ? tensors[^1].Name : null,
                $"the data offsets must cover the data section exactly: {detail}.");
        }

        return new SafeTensorsHeader(tensors, metadata, headerLength, dataLength);
    }

    /// <summary>Sorts by offset and checks contiguity, checked sizes and byte lengths; returns the end of the last tensor.</summary>
    private static long Validate(List<SafeTensorInfo> tensors, string fileName)
    {
        // Sort by (begin, end) as upstream does: files written by other tools may list tensors in any order.
        tensors.Sort(static (a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
        long start = 0;
        foreach (var info in tensors)
        {
            if (info.Begin != start || info.End < info.Begin)
            {
                string why = info.End < info.Begin
                    ? $"it ends ({info.End}) before it begins ({info.Begin})"
                    : info.Begin > start
                        ? $"it begins at {info.Begin} but the previous tensor ends at {start}, leaving a gap"
                        : $"it begins at {info.Begin}, inside the previous tensor which ends at {start} (overlap)";
                throw Error(SafeTensorsErrorKind.InvalidOffset, fileName, info.Name,
                    $"invalid data_offsets [{info.Begin}, {info.End}]: {why}. Tensors must be packed back to back from offset 0.");
            }

            start = info.End;
        }

        // Sizes are checked after offsets, in file order, so the first broken tensor is the one named.
        foreach (var info in tensors)
        {
            long expected = ExpectedByteLength(info, fileName);
            if (info.ByteLength != expected)
            {
                throw Error(SafeTensorsErrorKind.TensorInvalidInfo, fileName, info.Name,
                    $"{info.DType} {info.ShapeString} needs {expected} bytes but data_offsets [{info.Begin}, {info.End}] span {info.ByteLength}.");
            }
        }

        return start;
    }

    private static long ExpectedByteLength(SafeTensorInfo info, string fileName)
    {
        // ElementCount (< 2^63) was computed with checked math at parse time; the bit count is checked in unsigned
        // 64-bit arithmetic, exactly like upstream's usize, so the same files overflow.
        ulong bitSize = (ulong)info.DType.BitSize();
        if ((ulong)info.ElementCount > ulong.MaxValue / bitSize)
        {
            throw Error(SafeTensorsErrorKind.ValidationOverflow, fileName, info.Name,
                $"{info.DType} {info.ShapeString} has more bits than 64-bit arithmetic can count.");
        }

        ulong bits = (ulong)info.ElementCount * bitSize;
        if (bits % 8 != 0)
        {
            throw Error(SafeTensorsErrorKind.MisalignedSlice, fileName, info.Name,
                $"{info.ElementCount} elements of {info.DType} fill {bits} bits, not a whole number of bytes.");
        }

        return (long)(bits / 8);
    }

    private static (List<SafeTensorInfo> Tensors, Dictionary<string, string> Metadata) ParseJson(ReadOnlySpan<byte> json, string fileName)
    {
        var tensors = new List<SafeTensorInfo>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var names = new HashSet<string>(StringComparer.Ordinal);
        bool sawMetadata = false;
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = MaxJsonDepth });
        string? current = null;
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                throw Error(SafeTensorsErrorKind.InvalidHeaderDeserialization, fileName, null,
                    "the header must be a JSON object ({\"name\": {\"dtype\": ..., \"shape\": [...], \"data_offsets\": [b, e]}, ...}).");
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                current = reader.GetString()!;
                reader.Read();
                if (current == MetadataKey)
                {
                    if (sawMetadata)
                    {
                        throw Error(SafeTensorsErrorKind.DuplicateName, fileName, null,
                            "__metadata__ appears twice; a reader could pick either, so the file is ambiguous.");
                    }

                    sawMetadata = true;
                    ReadMetadata(ref reader, metadata, fileName);
                    continue;
                }

                if (!names.Add(current))
                {
                    throw Error(SafeTensorsErrorKind.DuplicateName, fileName, current,
                        "the tensor name appears twice in the header; a reader could pick either, so the file is ambiguous.");
                }

                tensors.Add(ReadTensor(ref reader, current, fileName));
            }

            if (reader.TokenType != JsonTokenType.EndObject)
            {
                throw Error(SafeTensorsErrorKind.InvalidHeaderDeserialization, fileName, current, "unexpected token in the header object.");
            }

            // Only JSON whitespace may follow the object (the writer pads with spaces); the reader rejects anything else.
            if (reader.Read())
            {
                throw Error(SafeTensorsErrorKind.InvalidHeaderDeserialization, fileName, null,
                    "data follows the header's JSON object; only whitespace padding is allowed.");
            }
        }
        catch (JsonException e)
        {
            throw Error(SafeTensorsErrorKind.InvalidHeaderDeserialization, fileName, current == MetadataKey ? null : current,
                $"the header is not valid JSON ({e.Message}).", e);
        }
        catch (InvalidOperationException e)
        {
            // GetString on an escaped lone surrogate ("\ud800"): valid JSON, but not a valid name.
            throw Error(SafeTensorsErrorKind.InvalidHeaderDeserialization, fileName, current == MetadataKey ? null : current,
                $"the header holds a string that is not valid Unicode ({e.Message}).", e);
        }

        return (tensors, metadata);
    }

    private static void ReadMetadata(ref Utf8JsonReader reader, Dictionary<string, string> metadata, string fileName)
    {
        // Upstream types __metadata__ as Option<map>, so null means "no metadata".
        if (reader.TokenType == JsonTokenType.Null)
        {
            return;
        }

        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw Error(SafeTensorsErrorKind.InvalidHeaderDeserialization, fileName, null,
                $"__metadata__ must be an object of string values, found {reader.TokenType}.");
        }

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string key = reader.GetString()!;
            reader.Read();
            if (reader.TokenType != JsonTokenType.String)
            {
                throw Error(SafeTensorsErrorKind.InvalidHeaderDeserialization, fileName, null,
                    $"__metadata__[\"{key}\"] must be a string, found {reader.TokenType}; store numbers and lists as strings.");
            }

            if (!metadata.TryAdd(key, reader.GetString()!))
            {
                throw Error(SafeTensorsErrorKind.DuplicateName, fileName, null, $"__metadata__ has the key \"{key}\" twice.");
            }
        }
    }

    private static SafeTensorInfo ReadTensor(ref Utf8JsonReader reader, string name, string fileName)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw Error(SafeTensorsErrorKind.InvalidHeaderDeserialization, fileName, name,
                $"the entry must be an object with dtype, shape and data_offsets, found {reader.TokenType}.");
        }

        string? dtypeName = null;
        List<ulong>? shape = null;
        List<ulong>? offsets = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("dtype"u8))
            {
                reader.Read();
                if (dtypeName is not null) throw DuplicateField(fileName, name, "dtype");
                if (reader.TokenType != JsonTokenType.String) throw WrongType(fileName, name, "dtype", "a string", reader.TokenType);
                dtypeName = reader.GetString()!;
            }
            else if (reader.ValueTextEquals("shape"u8))
            {
                reader.Read();
                if (shape is not null) throw DuplicateField(fileName, name, "shape");
                shape = ReadUInt64Array(ref reader, fileName, name, "shape");
            }
            else if (reader.ValueTextEquals("data_offsets"u8))
            {
                reader.Read();
                if (offsets is not null) throw DuplicateField(fileName, name, "data_offsets");
                offsets = ReadUInt64Array(ref reader, fileName, name, "data_offsets");
            }
            else
            {
                // Unknown fields are ignored, as upstream's deserializer does.
                reader.Read();
                reader.Skip();
            }
        }

        if (dtypeName is null) throw MissingField(fileName, name, "dtype");
        if (shape is null) throw MissingField(fileName, name, "shape");
        if (offsets is null) throw MissingField(fileName, name, "data_offsets");
        if (!SafeTensorsDTypes.TryParse(dtypeName, out var dtype))
        {
            throw Error(SafeTensorsErrorKind.UnknownDType, fileName, name,
                $"unknown dtype \"{dtypeName}\"; the format defines {string.Join(", ", Enum.GetNames<SafeTensorsDType>())}.");
        }

        if (offsets.Count != 2)
        {
            throw Error(SafeTensorsErrorKind.InvalidHeaderDeserialization, fileName, name,
                $"data_offsets must hold exactly two numbers [begin, end], found {offsets.Count}.");
        }

        // Offsets beyond long range cannot describe any real file; they fail the coverage check as a gap/overrun.
        if (offsets[0] > long.MaxValue || offsets[1] > long.MaxValue)
        {
            throw Error(SafeTensorsErrorKind.ValidationOverflow, fileName, name,
                $"data_offsets [{offsets[0]}, {offsets[1]}] exceed 64-bit signed range.");
        }

        var dims = new long[shape.Count];
        long count = 1;
        for (int i = 0; i < dims.Length; i++)
        {
            if (shape[i] > long.MaxValue)
            {
                throw Overflow(fileName, name, shape);
            }

            dims[i] = (long)shape[i];
            if (dims[i] != 0 && count > long.MaxValue / dims[i])
            {
                // Left to right like upstream's checked product: a later zero does not excuse an earlier overflow.
                throw Overflow(fileName, name, shape);
            }

            count *= dims[i];
        }

        return new SafeTensorInfo(name, dtype, dims, (long)offsets[0], (long)offsets[1], count);
    }

    private static List<ulong> ReadUInt64Array(ref Utf8JsonReader reader, string fileName, string name, string field)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw WrongType(fileName, name, field, "an array of non-negative integers", reader.TokenType);
        }

        var values = new List<ulong>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.Number || !reader.TryGetUInt64(out ulong v))
            {
                throw Error(SafeTensorsErrorKind.InvalidHeaderDeserialization, fileName, name,
                    $"{field} must hold non-negative integers below 2^64; found an element that is not one.");
            }

            values.Add(v);
        }

        return values;
    }

    private static SafeTensorsException Overflow(string fileName, string name, List<ulong> shape) =>
        Error(SafeTensorsErrorKind.ValidationOverflow, fileName, name,
            $"shape [{string.Join(", ", shape)}] has more elements than 64-bit arithmetic can count.");

    private static SafeTensorsException DuplicateField(string fileName, string name, string field) =>
        Error(SafeTensorsErrorKind.DuplicateName, fileName, name, $"the entry has the field \"{field}\" twice.");

    private static SafeTensorsException MissingField(string fileName, string name, string field) =>
        Error(SafeTensorsErrorKind.InvalidHeaderDeserialization, fileName, name,
            $"the entry lacks \"{field}\"; each tensor needs dtype, shape and data_offsets.");

    private static SafeTensorsException WrongType(string fileName, string name, string field, string expected, JsonTokenType found) =>
        Error(SafeTensorsErrorKind.InvalidHeaderDeserialization, fileName, name, $"\"{field}\" must be {expected}, found {found}.");

    internal static SafeTensorsException Error(SafeTensorsErrorKind kind, string? fileName, string? tensor, string message, Exception? inner = null) =>
        new(kind, fileName, tensor, message, inner);
}
