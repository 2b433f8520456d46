using System.Globalization;

namespace Sharpformer.IO.Onnx;

/// <summary>
/// Reads ONNX models (ModelProto) with a small bounds-checked protobuf reader. Only what importers need is kept:
/// opset imports, and the graph's nodes, attributes, initializers, inputs and outputs. Every length and varint is checked
/// against the remaining bytes, nesting (subgraphs in attributes) is capped, tensor sizes are checked with 64-bit math
/// against dtype size × product(dims), and external data must stay inside the model's folder.
/// </summary>
public static class OnnxReader
{
    /// <summary>Deepest nesting of messages accepted (model → graph → node → attribute → graph → ...).</summary>
    public const int MaxDepth = 32;

    /// <summary>Largest .onnx file read into memory (the largest byte array); bigger models keep their weights in external data files.</summary>
    public static readonly long MaxFileBytes = Array.MaxLength;

    /// <summary>Reads the ONNX model at <paramref name="path"/>; external data is resolved against its folder.</summary>
    /// <exception cref="OnnxFormatException">The file breaks the format or one of the safety rules.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static OnnxModel Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new FileNotFoundException($"ONNX model '{path}' does not exist.", path);
        }

        if (info.Length > MaxFileBytes)
        {
            throw new OnnxFormatException(path, "file", $"is {info.Length} bytes; files over {MaxFileBytes} bytes are not read into memory (export with external data instead)");
        }

        byte[] bytes = File.ReadAllBytes(path);
        return Parse(bytes, path, info.DirectoryName);
    }

    /// <summary>
    /// Parses a ModelProto held in memory. <paramref name="sourceName"/> names it in errors; external data is resolved
    /// against <paramref name="baseDirectory"/> and rejected when that is null or empty.
    /// </summary>
    /// <exception cref="OnnxFormatException">The bytes break the format or one of the safety rules.</exception>
    public static OnnxModel Parse(ReadOnlyMemory<byte> data, string sourceName, string? baseDirectory)
    {
        ArgumentNullException.ThrowIfNull(sourceName);
        if (data.IsEmpty)
        {
            throw new OnnxFormatException(sourceName, "model", "the file is empty");
        }

        var ctx = new Context(data, sourceName, baseDirectory);

        var r = new ProtoReader(data.Span, sourceName, "model", 0);
        long irVersion = 0;
        string producer = string.Empty;
        var opsets = new List<(string, long)>();
        OnnxGraph? graph = null;
        while (r.HasMore)
        {
            var (field, wire) = r.ReadKey();
            switch (field)
            {
                case 1:
                    r.Expect(field, wire, WireType.Varint);
                    irVersion = r.ReadInt64();
                    break;
                case 2:
                    r.Expect(field, wire, WireType.LengthDelimited);
                    producer = r.ReadString();
                    break;
                case 7:
                    r.Expect(field, wire, WireType.LengthDelimited);
                    var graphBytes = r.ReadBytes(out long graphOffset);
                    graph = ReadGraph(ctx, graphBytes, graphOffset, depth: 1);
                    break;
                case 8:
                    r.Expect(field, wire, WireType.LengthDelimited);
                    var opsetBytes = r.ReadBytes(out long opsetOffset);
                    opsets.Add(ReadOpset(ctx, opsetBytes, opsetOffset));
                    break;
                default:
                    r.Skip(wire);
                    break;
            }
        }

        if (graph is null)
        {
            throw new OnnxFormatException(sourceName, "model", "has no graph (ModelProto field 7); this is not an ONNX model");
        }

        return new OnnxModel(sourceName, irVersion, producer, opsets, graph);
    }

    private static (string, long) ReadOpset(Context ctx, ReadOnlySpan<byte> bytes, long offset)
    {
        var r = new ProtoReader(bytes, ctx.File, "opset_import", offset);
        string domain = string.Empty;
        long version = 0;
        while (r.HasMore)
        {
            var (field, wire) = r.ReadKey();
            if (field == 1 && wire == WireType.LengthDelimited) domain = r.ReadString();
            else if (field == 2 && wire == WireType.Varint) version = r.ReadInt64();
            else r.Skip(wire);
        }

        return (domain, version);
    }

    private static OnnxGraph ReadGraph(Context ctx, ReadOnlySpan<byte> bytes, long offset, int depth)
    {
        CheckDepth(ctx, depth, "graph");

        // Read the name first so errors inside the graph can name it: scan once for field 2.
        string name = string.Empty;
        var scan = new ProtoReader(bytes, ctx.File, "graph", offset);
        while (scan.HasMore)
        {
            var (field, wire) = scan.ReadKey();
            if (field == 2 && wire == WireType.LengthDelimited) name = scan.ReadString();
            else scan.Skip(wire);
        }

        string where = $"graph '{name}'";
        var r = new ProtoReader(bytes, ctx.File, where, offset);
        var nodes = new List<OnnxNode>();
        var initializers = new Dictionary<string, OnnxTensor>(StringComparer.Ordinal);
        var inputs = new List<string>();
        var outputs = new List<string>();
        while (r.HasMore)
        {
            var (field, wire) = r.ReadKey();
            switch (field)
            {
                case 1:
                    r.Expect(field, wire, WireType.LengthDelimited);
                    var nodeBytes = r.ReadBytes(out long nodeOffset);
                    nodes.Add(ReadNode(ctx, nodeBytes, nodeOffset, depth + 1, where));
                    break;
                case 5:
                    r.Expect(field, wire, WireType.LengthDelimited);
                    var tensorBytes = r.ReadBytes(out long tensorOffset);
                    var tensor = ReadTensor(ctx, tensorBytes, tensorOffset, depth + 1, $"{where} / initializer #{initializers.Count}");
                    if (!initializers.TryAdd(tensor.Name, tensor))
                    {
                        throw new OnnxFormatException(ctx.File, $"{where} / initializer '{tensor.Name}'", "the name is used by two initializers; names must be unique");
                    }

                    break;
                case 11:
                case 12:
                    r.Expect(field, wire, WireType.LengthDelimited);
                    var valueBytes = r.ReadBytes(out long valueOffset);
                    (field == 11 ? inputs : outputs).Add(ReadValueInfoName(ctx, valueBytes, valueOffset, where));
                    break;
                default:
                    r.Skip(wire);
                    break;
            }
        }

        return new OnnxGraph(name, nodes, initializers, inputs, outputs);
    }

    private static string ReadValueInfoName(Context ctx, ReadOnlySpan<byte> bytes, long offset, string where)
    {
        var r = new ProtoReader(bytes, ctx.File, $"{where} / value_info", offset);
        string name = string.Empty;
        while (r.HasMore)
        {
            var (field, wire) = r.ReadKey();
            if (field == 1 && wire == WireType.LengthDelimited) name = r.ReadString();
            else r.Skip(wire);
        }

        return name;
    }

    private static OnnxNode ReadNode(Context ctx, ReadOnlySpan<byte> bytes, long offset, int depth, string graphWhere)
    {
        CheckDepth(ctx, depth, "node");
        string name = string.Empty, opType = string.Empty, domain = string.Empty;
        var inputs = new List<string>();
        var outputs = new List<string>();
        var attributeSpans = new List<(long Offset, int Length)>();
        var r = new ProtoReader(bytes, ctx.File, $"{graphWhere} / node at byte {offset}", offset);
        while (r.HasMore)
        {
            var (field, wire) = r.ReadKey();
            switch (field)
            {
                case 1: r.Expect(field, wire, WireType.LengthDelimited); inputs.Add(r.ReadString()); break;
                case 2: r.Expect(field, wire, WireType.LengthDelimited); outputs.Add(r.ReadString()); break;
                case 3: r.Expect(field, wire, WireType.LengthDelimited); name = r.ReadString(); break;
                case 4: r.Expect(field, wire, WireType.LengthDelimited); opType = r.ReadString(); break;
                case 7: r.Expect(field, wire, WireType.LengthDelimited); domain = r.ReadString(); break;
                case 5:
                    r.Expect(field, wire, WireType.LengthDelimited);
                    var attrBytes = r.ReadBytes(out long attrOffset);
                    attributeSpans.Add((attrOffset, attrBytes.Length));
                    break;
                default: r.Skip(wire); break;
            }
        }

        if (opType.Length == 0)
        {
            throw new OnnxFormatException(ctx.File, $"{graphWhere} / node '{name}'", "has no op_type");
        }

        string where = $"{graphWhere} / node '{(name.Length > 0 ? name : opType)}'";
        var attributes = new Dictionary<string, OnnxAttribute>(StringComparer.Ordinal);
        foreach (var (attrOffset, length) in attributeSpans)
        {
            var attr = ReadAttribute(ctx, ctx.Data.Span.Slice((int)attrOffset, length), attrOffset, depth + 1, where);
            if (!attributes.TryAdd(attr.Name, attr))
            {
                throw new OnnxFormatException(ctx.File, $"{where} / attribute '{attr.Name}'", "appears twice on one node");
            }
        }

        return new OnnxNode(name, opType, domain, inputs, outputs, attributes);
    }

    private static OnnxAttribute ReadAttribute(Context ctx, ReadOnlySpan<byte> bytes, long offset, int depth, string nodeWhere)
    {
        CheckDepth(ctx, depth, "attribute");
        string name = string.Empty, str = string.Empty;
        var type = OnnxAttributeType.Undefined;
        float f = 0;
        long i = 0;
        OnnxTensor? tensor = null;
        OnnxGraph? graph = null;
        var floats = new List<float>();
        var ints = new List<long>();
        string where = $"{nodeWhere} / attribute";
        var r = new ProtoReader(bytes, ctx.File, where, offset);
        while (r.HasMore)
        {
            var (field, wire) = r.ReadKey();
            switch (field)
            {
                case 1: r.Expect(field, wire, WireType.LengthDelimited); name = r.ReadString(); break;
                case 20: r.Expect(field, wire, WireType.Varint); type = (OnnxAttributeType)r.ReadInt64(); break;
                case 2: r.Expect(field, wire, WireType.Fixed32); f = r.ReadFloat(); break;
                case 3: r.Expect(field, wire, WireType.Varint); i = r.ReadInt64(); break;
                case 4: r.Expect(field, wire, WireType.LengthDelimited); str = r.ReadString(); break;
                case 5:
                    r.Expect(field, wire, WireType.LengthDelimited);
                    var tb = r.ReadBytes(out long to);
                    tensor = ReadTensor(ctx, tb, to, depth + 1, $"{where} '{name}' / tensor");
                    break;
                case 6:
                case 11:
                    r.Expect(field, wire, WireType.LengthDelimited);
                    var gb = r.ReadBytes(out long go);
                    graph = ReadGraph(ctx, gb, go, depth + 1);
                    break;
                case 7:
                    if (wire == WireType.LengthDelimited)
                    {
                        var packed = r.ReadBytes(out long po);
                        var pr = new ProtoReader(packed, ctx.File, where, po);
                        while (pr.HasMore) floats.Add(pr.ReadFloat());
                    }
                    else
                    {
                        r.Expect(field, wire, WireType.Fixed32);
                        floats.Add(r.ReadFloat());
                    }

                    break;
                case 8:
                    if (wire == WireType.LengthDelimited)
                    {
                        var packed = r.ReadBytes(out long po);
                        var pr = new ProtoReader(packed, ctx.File, where, po);
                        while (pr.HasMore) ints.Add(pr.ReadInt64());
                    }
                    else
                    {
                        r.Expect(field, wire, WireType.Varint);
                        ints.Add(r.ReadInt64());
                    }

                    break;
                default:
                    r.Skip(wire);
                    break;
            }
        }

        return new OnnxAttribute(name, type, f, i, str, tensor, graph, floats, ints);
    }

    private static OnnxTensor ReadTensor(Context ctx, ReadOnlySpan<byte> bytes, long offset, int depth, string where)
    {
        CheckDepth(ctx, depth, "tensor");
        string name = string.Empty;
        var dims = new List<long>();
        var dataType = OnnxDataType.Undefined;
        ReadOnlyMemory<byte>? raw = null;
        var floatData = new List<float>();
        var int64Data = new List<long>();
        var int32Data = new List<long>();
        var external = new Dictionary<string, string>(StringComparer.Ordinal);
        long dataLocation = 0;
        var r = new ProtoReader(bytes, ctx.File, where, offset);
        while (r.HasMore)
        {
            var (field, wire) = r.ReadKey();
            switch (field)
            {
                case 1: ReadPackedVarints(ref r, field, wire, dims, ctx, where); break;
                case 2: r.Expect(field, wire, WireType.Varint); dataType = (OnnxDataType)r.ReadInt64(); break;
                case 8: r.Expect(field, wire, WireType.LengthDelimited); name = r.ReadString(); break;
                case 9:
                    r.Expect(field, wire, WireType.LengthDelimited);
                    var rb = r.ReadBytes(out long ro);
                    raw = ctx.Data.Slice((int)ro, rb.Length);
                    break;
                case 4:
                    if (wire == WireType.LengthDelimited)
                    {
                        var packed = r.ReadBytes(out long po);
                        var pr = new ProtoReader(packed, ctx.File, where, po);
                        while (pr.HasMore) floatData.Add(pr.ReadFloat());
                    }
                    else
                    {
                        r.Expect(field, wire, WireType.Fixed32);
                        floatData.Add(r.ReadFloat());
                    }

                    break;
                case 5: ReadPackedVarints(ref r, field, wire, int32Data, ctx, where); break;
                case 7: ReadPackedVarints(ref r, field, wire, int64Data, ctx, where); break;
                case 13:
                    r.Expect(field, wire, WireType.LengthDelimited);
                    var eb = r.ReadBytes(out long eo);
                    var (key, value) = ReadStringEntry(ctx, eb, eo, where);
                    external[key] = value;
                    break;
                case 14: r.Expect(field, wire, WireType.Varint); dataLocation = r.ReadInt64(); break;
                default: r.Skip(wire); break;
            }
        }

        string label = name.Length > 0 ? $"{where} '{name}'" : where;

        // Element count and byte size with overflow-checked 64-bit math.
        long count = 1;
        foreach (long d in dims)
        {
            if (d < 0)
            {
                throw new OnnxFormatException(ctx.File, label, $"has a negative dimension in dims [{string.Join(", ", dims)}]");
            }

            if (d != 0 && count > long.MaxValue / d)
            {
                throw new OnnxFormatException(ctx.File, label, $"dims [{string.Join(", ", dims)}] overflow a 64-bit element count");
            }

            count *= d;
        }

        int elementSize = OnnxTensor.ElementSize(dataType);
        if (elementSize == 0)
        {
            throw new OnnxFormatException(ctx.File, label, $"has data_type {(int)dataType} ({dataType}); only fixed-size numeric types are supported");
        }

        if (count > long.MaxValue / elementSize)
        {
            throw new OnnxFormatException(ctx.File, label, $"dims [{string.Join(", ", dims)}] × {elementSize} bytes overflow a 64-bit size");
        }

        long expectedBytes = count * elementSize;
        ReadOnlyMemory<byte> data;
        if (dataLocation == 1)
        {
            data = ReadExternal(ctx, external, expectedBytes, label);
        }
        else if (dataLocation != 0)
        {
            throw new OnnxFormatException(ctx.File, label, $"has data_location {dataLocation}; only DEFAULT (0) and EXTERNAL (1) exist");
        }
        else if (raw is not null)
        {
            data = raw.Value;
        }
        else if (floatData.Count > 0)
        {
            RequireType(ctx, label, dataType, OnnxDataType.Float, "float_data");
            data = OnnxTensor.ToBytes(floatData);
        }
        else if (int64Data.Count > 0)
        {
            RequireType(ctx, label, dataType, OnnxDataType.Int64, "int64_data");
            data = OnnxTensor.ToBytes64(int64Data);
        }
        else if (int32Data.Count > 0)
        {
            RequireType(ctx, label, dataType, OnnxDataType.Int32, "int32_data");
            data = OnnxTensor.ToBytes32(int32Data);
        }
        else
        {
            data = ReadOnlyMemory<byte>.Empty;
        }

        if (data.Length != expectedBytes)
        {
            throw new OnnxFormatException(ctx.File, label, $"holds {data.Length} bytes of data but {dataType} dims [{string.Join(", ", dims)}] need {elementSize} × {count} = {expectedBytes} bytes");
        }

        return new OnnxTensor(name, dataType, dims.ToArray(), data);
    }

    private static void RequireType(Context ctx, string label, OnnxDataType actual, OnnxDataType expected, string field)
    {
        if (actual != expected)
        {
            throw new OnnxFormatException(ctx.File, label, $"stores {field}, which this reader accepts only for {expected} tensors, but data_type is {actual}; store the values in raw_data");
        }
    }

    private static void ReadPackedVarints(ref ProtoReader r, int field, WireType wire, List<long> into, Context ctx, string where)
    {
        if (wire == WireType.LengthDelimited)
        {
            var packed = r.ReadBytes(out long po);
            var pr = new ProtoReader(packed, ctx.File, where, po);
            while (pr.HasMore) into.Add(pr.ReadInt64());
        }
        else
        {
            r.Expect(field, wire, WireType.Varint);
            into.Add(r.ReadInt64());
        }
    }

    private static (string Key, string Value) ReadStringEntry(Context ctx, ReadOnlySpan<byte> bytes, long offset, string where)
    {
        var r = new ProtoReader(bytes, ctx.File, $"{where} / external_data", offset);
        string key = string.Empty, value = string.Empty;
        while (r.HasMore)
        {
            var (field, wire) = r.ReadKey();
            if (field == 1 && wire == WireType.LengthDelimited) key = r.ReadString();
            else if (field == 2 && wire == WireType.LengthDelimited) value = r.ReadString();
            else r.Skip(wire);
        }

        return (key, value);
    }

    private static ReadOnlyMemory<byte> ReadExternal(Context ctx, Dictionary<string, string> entries, long expectedBytes, string label)
    {
        if (!entries.TryGetValue("location", out string? location) || location.Length == 0)
        {
            throw new OnnxFormatException(ctx.File, label, "has data_location EXTERNAL but no 'location' entry in external_data");
        }

        string path = ExternalDataPath.Resolve(ctx.BaseDirectory, location, ctx.File, label);
        long offset = ParseNonNegative(ctx, label, entries, "offset", 0);
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new OnnxFormatException(ctx.File, label, $"external data file '{location}' does not exist next to the model (looked for '{path}')");
        }

        long fileLength = info.Length;
        if (offset > fileLength)
        {
            throw new OnnxFormatException(ctx.File, label, $"external data offset {offset} lies beyond the end of '{location}' ({fileLength} bytes)");
        }

        long length = ParseNonNegative(ctx, label, entries, "length", fileLength - offset);
        if (length > fileLength - offset)
        {
            throw new OnnxFormatException(ctx.File, label, $"external data [{offset}, {offset} + {length}) runs past the end of '{location}' ({fileLength} bytes)");
        }

        if (length != expectedBytes)
        {
            throw new OnnxFormatException(ctx.File, label, $"external data length {length} differs from the {expectedBytes} bytes its dtype and dims need");
        }

        if (length > int.MaxValue)
        {
            throw new OnnxFormatException(ctx.File, label, $"external data of {length} bytes exceeds the 2 GiB a single tensor may have here");
        }

        var buffer = new byte[length];
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        stream.Position = offset;
        stream.ReadExactly(buffer);
        return buffer;
    }

    private static long ParseNonNegative(Context ctx, string label, Dictionary<string, string> entries, string key, long fallback)
    {
        if (!entries.TryGetValue(key, out string? text))
        {
            return fallback;
        }

        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long value))
        {
            throw new OnnxFormatException(ctx.File, label, $"external data '{key}' is '{text}', not a non-negative integer");
        }

        return value;
    }

    private static void CheckDepth(Context ctx, int depth, string what)
    {
        if (depth > MaxDepth)
        {
            throw new OnnxFormatException(ctx.File, what, $"messages are nested more than {MaxDepth} deep (subgraphs inside subgraphs); the file is hostile or corrupt");
        }
    }

    private sealed record Context(ReadOnlyMemory<byte> Data, string File, string? BaseDirectory);
}
