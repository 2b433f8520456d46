using System.Buffers.Binary;
using System.Text;

namespace Sharpformer.IO.Tests.Gguf;

/// <summary>Emits GGUF bytes field by field, so tests can write files our writer never would (malformed ones).</summary>
internal sealed class RawGguf
{
    private readonly List<byte> _bytes = [];

    public long Length => _bytes.Count;

    public RawGguf Bytes(ReadOnlySpan<byte> b)
    {
        _bytes.AddRange(b);
        return this;
    }

    public RawGguf U8(byte v) => Bytes([v]);

    public RawGguf U32(uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        return Bytes(b);
    }

    public RawGguf U64(ulong v)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, v);
        return Bytes(b);
    }

    public RawGguf Str(string s) => Str(Encoding.UTF8.GetBytes(s));

    public RawGguf Str(byte[] utf8) => U64((ulong)utf8.Length).Bytes(utf8);

    /// <summary>Magic, version, tensor count, KV count.</summary>
    public RawGguf Header(ulong tensors, ulong kvs, uint version = 3) => Bytes("GGUF"u8).U32(version).U64(tensors).U64(kvs);

    /// <summary>A key with a uint32 value.</summary>
    public RawGguf KvU32(string key, uint value) => Str(key).U32(4).U32(value);

    /// <summary>A tensor info.</summary>
    public RawGguf Tensor(string name, ulong[] dims, uint type, ulong offset)
    {
        Str(name).U32((uint)dims.Length);
        foreach (var d in dims)
        {
            U64(d);
        }

        return U32(type).U64(offset);
    }

    /// <summary>Zero bytes up to the next multiple of <paramref name="alignment"/>.</summary>
    public RawGguf Align(int alignment = 32)
    {
        while (_bytes.Count % alignment != 0)
        {
            _bytes.Add(0);
        }

        return this;
    }

    public RawGguf Zeros(int count)
    {
        _bytes.AddRange(new byte[count]);
        return this;
    }

    public byte[] ToArray() => _bytes.ToArray();
}
