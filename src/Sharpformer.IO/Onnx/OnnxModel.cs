using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Sharpformer.Tensors;

namespace Sharpformer.IO.Onnx;

/// <summary>ONNX TensorProto.DataType values (onnx.proto).</summary>
public enum OnnxDataType
{
    /// <summary>Not set.</summary>
    Undefined = 0,

    /// <summary>float32.</summary>
    Float = 1,

    /// <summary>uint8.</summary>
    UInt8 = 2,

    /// <summary>int8.</summary>
    Int8 = 3,

    /// <summary>uint16.</summary>
    UInt16 = 4,

    /// <summary>int16.</summary>
    Int16 = 5,

    /// <summary>int32.</summary>
    Int32 = 6,

    /// <summary>int64.</summary>
    Int64 = 7,

    /// <summary>Strings (variable size; not supported as tensor data here).</summary>
    String = 8,

    /// <summary>bool, one byte each.</summary>
    Bool = 9,

    /// <summary>IEEE binary16.</summary>
    Float16 = 10,

    /// <summary>float64.</summary>
    Double = 11,

    /// <summary>uint32.</summary>
    UInt32 = 12,

    /// <summary>uint64.</summary>
    UInt64 = 13,

    /// <summary>bfloat16.</summary>
    BFloat16 = 16,
}

/// <summary>A parsed ONNX ModelProto: the parts an importer needs.</summary>
/// <param name="Path">The file it was read from (or a description of the buffer).</param>
/// <param name="IrVersion">ModelProto.ir_version.</param>
/// <param name="ProducerName">ModelProto.producer_name (e.g. "pytorch").</param>
/// <param name="Opsets">ModelProto.opset_import: (domain, version); "" is the default ai.onnx domain.</param>
/// <param name="Graph">The main graph.</param>
public sealed record OnnxModel(string Path, long IrVersion, string ProducerName, IReadOnlyList<(string Domain, long Version)> Opsets, OnnxGraph Graph);

/// <summary>A parsed GraphProto.</summary>
/// <param name="Name">GraphProto.name.</param>
/// <param name="Nodes">The nodes in topological order, as stored.</param>
/// <param name="Initializers">Constant tensors (weights), by name.</param>
/// <param name="Inputs">Names of the graph inputs.</param>
/// <param name="Outputs">Names of the graph outputs.</param>
public sealed record OnnxGraph(string Name, IReadOnlyList<OnnxNode> Nodes, IReadOnlyDictionary<string, OnnxTensor> Initializers, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs);

/// <summary>A parsed NodeProto: one operator application.</summary>
/// <param name="Name">NodeProto.name (may be empty).</param>
/// <param name="OpType">The operator, e.g. "MatMul".</param>
/// <param name="Domain">The operator set domain ("" for ai.onnx).</param>
/// <param name="Inputs">Input value names ("" marks an omitted optional input).</param>
/// <param name="Outputs">Output value names.</param>
/// <param name="Attributes">Attributes by name.</param>
public sealed record OnnxNode(string Name, string OpType, string Domain, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs, IReadOnlyDictionary<string, OnnxAttribute> Attributes)
{
    /// <summary>A name for error messages: the node name, else its op type and first output.</summary>
    public string Label => Name.Length > 0 ? $"node '{Name}' ({OpType})" : $"{OpType} node producing '{(Outputs.Count > 0 ? Outputs[0] : "?")}'";

    /// <summary>Input <paramref name="index"/>, or "" when the node has fewer inputs (pattern matching never indexes out of range).</summary>
    internal string In(int index) => index < Inputs.Count ? Inputs[index] : string.Empty;

    /// <summary>The first output, or "" when the node has none.</summary>
    internal string Out => Outputs.Count > 0 ? Outputs[0] : string.Empty;
}

/// <summary>AttributeProto.AttributeType values.</summary>
public enum OnnxAttributeType
{
    /// <summary>Not set.</summary>
    Undefined = 0,

    /// <summary>One float.</summary>
    Float = 1,

    /// <summary>One int64.</summary>
    Int = 2,

    /// <summary>One byte string.</summary>
    String = 3,

    /// <summary>One tensor.</summary>
    Tensor = 4,

    /// <summary>One graph.</summary>
    Graph = 5,

    /// <summary>A list of floats.</summary>
    Floats = 6,

    /// <summary>A list of int64.</summary>
    Ints = 7,

    /// <summary>A list of byte strings.</summary>
    Strings = 8,

    /// <summary>A list of tensors.</summary>
    Tensors = 9,

    /// <summary>A list of graphs.</summary>
    Graphs = 10,
}

/// <summary>A parsed AttributeProto; only the member matching <see cref="Type"/> is meaningful.</summary>
/// <param name="Name">Attribute name.</param>
/// <param name="Type">Which value it holds.</param>
/// <param name="Float">The float value.</param>
/// <param name="Int">The int value.</param>
/// <param name="String">The string value (UTF-8 decoded).</param>
/// <param name="Tensor">The tensor value (e.g. Constant's "value").</param>
/// <param name="Graph">The graph value (If/Loop bodies).</param>
/// <param name="Floats">The float list.</param>
/// <param name="Ints">The int list.</param>
public sealed record OnnxAttribute(string Name, OnnxAttributeType Type, float Float, long Int, string String, OnnxTensor? Tensor, OnnxGraph? Graph, IReadOnlyList<float> Floats, IReadOnlyList<long> Ints);

/// <summary>
/// A parsed TensorProto with its data as little-endian bytes (raw_data, typed fields and external data are all normalized
/// to this form; the size always equals element size × product(dims)).
/// </summary>
public sealed class OnnxTensor
{
    internal OnnxTensor(string name, OnnxDataType dataType, long[] dims, ReadOnlyMemory<byte> data)
    {
        Name = name;
        DataType = dataType;
        Dims = dims;
        Data = data;
    }

    /// <summary>TensorProto.name (empty for an unnamed Constant value).</summary>
    public string Name { get; }

    /// <summary>Element type.</summary>
    public OnnxDataType DataType { get; }

    /// <summary>Dimensions, outermost first.</summary>
    public IReadOnlyList<long> Dims { get; }

    /// <summary>The elements as little-endian bytes, row-major.</summary>
    public ReadOnlyMemory<byte> Data { get; }

    /// <summary>Number of elements (product of dims; 1 for a scalar).</summary>
    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (long d in Dims) n *= d;
            return n;
        }
    }

    /// <summary>The values of an INT64 or INT32 tensor, widened to long.</summary>
    /// <exception cref="InvalidOperationException">The tensor holds another type.</exception>
    public long[] ToInt64Array()
    {
        var bytes = Data.Span;
        return DataType switch
        {
            OnnxDataType.Int64 => MemoryMarshal.Cast<byte, long>(bytes).ToArray(),
            OnnxDataType.Int32 => Array.ConvertAll(MemoryMarshal.Cast<byte, int>(bytes).ToArray(), v => (long)v),
            _ => throw new InvalidOperationException($"ONNX tensor '{Name}' holds {DataType}, not integers."),
        };
    }

    /// <summary>The values of a FLOAT, FLOAT16, BFLOAT16 or DOUBLE tensor, converted to float.</summary>
    /// <exception cref="InvalidOperationException">The tensor holds another type.</exception>
    public float[] ToFloatArray()
    {
        var bytes = Data.Span;
        return DataType switch
        {
            OnnxDataType.Float => MemoryMarshal.Cast<byte, float>(bytes).ToArray(),
            OnnxDataType.Double => Array.ConvertAll(MemoryMarshal.Cast<byte, double>(bytes).ToArray(), v => (float)v),
            OnnxDataType.Float16 => Array.ConvertAll(MemoryMarshal.Cast<byte, Half>(bytes).ToArray(), v => (float)v),
            OnnxDataType.BFloat16 => Array.ConvertAll(MemoryMarshal.Cast<byte, ushort>(bytes).ToArray(), v => BitConverter.Int32BitsToSingle(v << 16)),
            _ => throw new InvalidOperationException($"ONNX tensor '{Name}' holds {DataType}, not floating-point values."),
        };
    }

    /// <summary>The values of a floating-point tensor as a new F32 <see cref="Tensor"/> of the same shape.</summary>
    /// <exception cref="InvalidOperationException">The tensor does not hold floating-point values.</exception>
    public Tensor ToFloatTensor() => Tensor.FromArray(ToFloatArray(), new Shape(IntDims()));

    /// <summary>Copies the data into a new <see cref="Tensor"/> of the matching dtype (F32, F16, BF16, I32, I64).</summary>
    /// <exception cref="NotSupportedException">The element type has no <see cref="DType"/>, or a dimension exceeds int range.</exception>
    public Tensor ToTensor()
    {
        DType dtype = DataType switch
        {
            OnnxDataType.Float => DType.F32,
            OnnxDataType.Float16 => DType.F16,
            OnnxDataType.BFloat16 => DType.BF16,
            OnnxDataType.Int32 => DType.I32,
            OnnxDataType.Int64 => DType.I64,
            _ => throw new NotSupportedException($"ONNX tensor '{Name}' holds {DataType}, which has no Sharpformer dtype; only FLOAT, FLOAT16, BFLOAT16, INT32 and INT64 convert."),
        };
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("ONNX tensors are little-endian; big-endian hosts are not supported.");
        }

        var tensor = Tensor.Empty(new Shape(IntDims()), dtype);
        Data.Span.CopyTo(tensor.Storage.GetBytes(0, Data.Length));
        return tensor;
    }

    private int[] IntDims()
    {
        var dims = new int[Dims.Count];
        for (int i = 0; i < dims.Length; i++)
        {
            if (Dims[i] > int.MaxValue)
            {
                throw new NotSupportedException($"ONNX tensor '{Name}' has dimension {Dims[i]}, beyond int range.");
            }

            dims[i] = (int)Dims[i];
        }

        return dims;
    }

    /// <summary>Bytes per element of <paramref name="type"/>, or 0 when the type has no fixed size.</summary>
    internal static int ElementSize(OnnxDataType type) => type switch
    {
        OnnxDataType.Float or OnnxDataType.Int32 or OnnxDataType.UInt32 => 4,
        OnnxDataType.UInt8 or OnnxDataType.Int8 or OnnxDataType.Bool => 1,
        OnnxDataType.UInt16 or OnnxDataType.Int16 or OnnxDataType.Float16 or OnnxDataType.BFloat16 => 2,
        OnnxDataType.Int64 or OnnxDataType.Double or OnnxDataType.UInt64 => 8,
        _ => 0,
    };

    /// <summary>Little-endian bytes of <paramref name="values"/> (used when a TensorProto stores typed fields).</summary>
    internal static byte[] ToBytes(List<float> values)
    {
        var bytes = new byte[values.Count * 4];
        for (int i = 0; i < values.Count; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        return bytes;
    }

    /// <summary>Little-endian bytes of <paramref name="values"/> as 64-bit integers.</summary>
    internal static byte[] ToBytes64(List<long> values)
    {
        var bytes = new byte[values.Count * 8];
        for (int i = 0; i < values.Count; i++) BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(i * 8), values[i]);
        return bytes;
    }

    /// <summary>Little-endian bytes of <paramref name="values"/> as 32-bit integers.</summary>
    internal static byte[] ToBytes32(List<long> values)
    {
        var bytes = new byte[values.Count * 4];
        for (int i = 0; i < values.Count; i++) BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(i * 4), unchecked((int)values[i]));
        return bytes;
    }
}
