using System.Buffers.Binary;
using System.Text;

namespace Sharpformer.IO.Tests.Onnx;

/// <summary>Writes protobuf wire format by hand, to build small (and deliberately broken) ONNX files for tests.</summary>
internal sealed class ProtoBuilder
{
    private readonly List<byte> _bytes = [];

    public ProtoBuilder Varint(int field, long value)
    {
        Key(field, 0);
        RawVarint(unchecked((ulong)value));
        return this;
    }

    public ProtoBuilder Float(int field, float value)
    {
        Key(field, 5);
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteSingleLittleEndian(b, value);
        _bytes.AddRange(b);
        return this;
    }

    public ProtoBuilder Bytes(int field, ReadOnlySpan<byte> value)
    {
        Key(field, 2);
        RawVarint((ulong)value.Length);
        _bytes.AddRange(value);
        return this;
    }

    public ProtoBuilder String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

    public ProtoBuilder Message(int field, ProtoBuilder message) => Bytes(field, message.ToArray());

    /// <summary>Appends bytes as they are (to write broken encodings).</summary>
    public ProtoBuilder Raw(params byte[] bytes)
    {
        _bytes.AddRange(bytes);
        return this;
    }

    public byte[] ToArray() => _bytes.ToArray();

    private void Key(int field, int wire) => RawVarint(((ulong)field << 3) | (uint)wire);

    private void RawVarint(ulong value)
    {
        while (value >= 0x80)
        {
            _bytes.Add((byte)(value | 0x80));
            value >>= 7;
        }

        _bytes.Add((byte)value);
    }
}

/// <summary>Builders for the ONNX messages the tests need (field numbers from onnx.proto).</summary>
internal static class Onnx
{
    public const int Float = 1;
    public const int Int64 = 7;

    public static ProtoBuilder Tensor(string name, int dataType, long[] dims, byte[]? raw = null)
    {
        var t = new ProtoBuilder();
        foreach (long d in dims) t.Varint(1, d);
        t.Varint(2, dataType).String(8, name);
        if (raw is not null) t.Bytes(9, raw);
        return t;
    }

    public static ProtoBuilder ExternalTensor(string name, long[] dims, string location, long? offset = null, long? length = null)
    {
        var t = Tensor(name, Float, dims);
        t.Message(13, new ProtoBuilder().String(1, "location").String(2, location));
        if (offset is not null) t.Message(13, new ProtoBuilder().String(1, "offset").String(2, offset.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        if (length is not null) t.Message(13, new ProtoBuilder().String(1, "length").String(2, length.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        return t.Varint(14, 1);
    }

    public static ProtoBuilder Node(string op, string[] inputs, string[] outputs, params ProtoBuilder[] attributes)
    {
        var n = new ProtoBuilder();
        foreach (string i in inputs) n.String(1, i);
        foreach (string o in outputs) n.String(2, o);
        n.String(3, op + "_" + outputs[0]).String(4, op);
        foreach (var a in attributes) n.Message(5, a);
        return n;
    }

    public static ProtoBuilder IntAttribute(string name, long value) => new ProtoBuilder().String(1, name).Varint(3, value).Varint(20, 2);

    public static ProtoBuilder GraphAttribute(string name, ProtoBuilder graph) => new ProtoBuilder().String(1, name).Message(6, graph).Varint(20, 5);

    public static ProtoBuilder ValueInfo(string name) => new ProtoBuilder().String(1, name);

    public static ProtoBuilder Graph(string name, ProtoBuilder[] nodes, ProtoBuilder[] initializers, string[] inputs, string[] outputs)
    {
        var g = new ProtoBuilder();
        foreach (var n in nodes) g.Message(1, n);
        g.String(2, name);
        foreach (var t in initializers) g.Message(5, t);
        foreach (string i in inputs) g.Message(11, ValueInfo(i));
        foreach (string o in outputs) g.Message(12, ValueInfo(o));
        return g;
    }

    public static byte[] Model(ProtoBuilder graph) =>
        new ProtoBuilder().Varint(1, 8).String(2, "test").Message(8, new ProtoBuilder().String(1, string.Empty).Varint(2, 17)).Message(7, graph).ToArray();

    public static byte[] F32(params float[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        return bytes;
    }
}
