using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;

namespace Sharpformer.IO.Onnx;

/// <summary>Protobuf wire types (the low three bits of a field key).</summary>
internal enum WireType
{
    Varint = 0,
    Fixed64 = 1,
    LengthDelimited = 2,
    StartGroup = 3,
    EndGroup = 4,
    Fixed32 = 5,
}

/// <summary>
/// A bounds-checked reader of the protobuf wire format over one message's bytes. Every varint, length and fixed-size
/// value is checked against the bytes that remain, so a truncated or hostile buffer gives an
/// <see cref="OnnxFormatException"/> and never reads outside the span. Groups (deprecated) are rejected.
/// </summary>
internal ref struct ProtoReader
{
    private static readonly System.Text.UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
    private readonly ReadOnlySpan<byte> _data;
    private readonly string _file;
    private readonly string _where;
    private int _pos;

    /// <param name="data">The bytes of one message (without its own length prefix).</param>
    /// <param name="file">The file name, for error messages.</param>
    /// <param name="where">The message being read (e.g. "graph 'main' / node 'MatMul_3'"), for error messages.</param>
    /// <param name="baseOffset">Offset of <paramref name="data"/> in the file, for error messages.</param>
    public ProtoReader(ReadOnlySpan<byte> data, string file, string where, long baseOffset)
    {
        _data = data;
        _file = file;
        _where = where;
        BaseOffset = baseOffset;
        _pos = 0;
    }

    /// <summary>Offset of this message's first byte in the file.</summary>
    public long BaseOffset { get; }

    /// <summary>True while bytes remain.</summary>
    public readonly bool HasMore => _pos < _data.Length;

    /// <summary>File offset of the next byte (for nested readers and messages).</summary>
    public readonly long FileOffset => BaseOffset + _pos;

    /// <summary>Reads a field key; returns the field number and wire type.</summary>
    public (int Field, WireType Wire) ReadKey()
    {
        ulong key = ReadVarint();
        ulong field = key >> 3;
        var wire = (WireType)(key & 7);
        if (field == 0 || field > 536_870_911)
        {
            Fail($"field number {field} at byte {FileOffset} is outside 1..2^29-1 (the file is corrupt or not ONNX)");
        }

        if (wire is WireType.StartGroup or WireType.EndGroup || (int)wire > 5)
        {
            Fail($"field {field} uses wire type {(int)wire}, which ONNX never writes (the file is corrupt or not ONNX)");
        }

        return ((int)field, wire);
    }

    /// <summary>Reads a base-128 varint of at most 10 bytes whose value fits in 64 bits.</summary>
    public ulong ReadVarint()
    {
        ulong result = 0;
        for (int shift = 0; ; shift += 7)
        {
            if (_pos >= _data.Length)
            {
                Fail($"a varint runs past the end of the message at byte {FileOffset} (the file is truncated)");
            }

            byte b = _data[_pos++];

            // The 10th byte carries bit 63 only: anything more (or a continuation bit) overflows 64 bits.
            if (shift == 63 && b > 1)
            {
                Fail($"a varint ending at byte {FileOffset} does not fit in 64 bits");
            }

            result |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return result;
            }
        }
    }

    /// <summary>Reads a varint as a signed 64-bit value (two's complement, as protobuf int64/int32 fields are written).</summary>
    public long ReadInt64() => unchecked((long)ReadVarint());

    /// <summary>Reads a little-endian 32-bit float (wire type 5).</summary>
    public float ReadFloat() => BinaryPrimitives.ReadSingleLittleEndian(ReadFixed(4));

    /// <summary>Reads the payload of a length-delimited field, checking the length against the remaining bytes.</summary>
    public ReadOnlySpan<byte> ReadBytes() => ReadBytes(out _);

    /// <summary>Reads the payload of a length-delimited field; <paramref name="fileOffset"/> receives where it starts.</summary>
    public ReadOnlySpan<byte> ReadBytes(out long fileOffset)
    {
        ulong length = ReadVarint();
        int remaining = _data.Length - _pos;
        if (length > (ulong)remaining)
        {
            Fail($"a field at byte {FileOffset} claims {length} bytes but only {remaining} remain in its message (the file is truncated or corrupt)");
        }

        fileOffset = FileOffset;
        var slice = _data.Slice(_pos, (int)length);
        _pos += (int)length;
        return slice;
    }

    /// <summary>Reads a length-delimited UTF-8 string.</summary>
    public string ReadString()
    {
        var bytes = ReadBytes();
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (System.Text.DecoderFallbackException)
        {
            Fail($"a string field before byte {FileOffset} is not valid UTF-8");
            return string.Empty;
        }
    }

    /// <summary>Skips a field of wire type <paramref name="wire"/> (an unknown or unneeded field).</summary>
    public void Skip(WireType wire)
    {
        switch (wire)
        {
            case WireType.Varint: ReadVarint(); break;
            case WireType.Fixed64: ReadFixed(8); break;
            case WireType.Fixed32: ReadFixed(4); break;
            case WireType.LengthDelimited: ReadBytes(); break;
            default: Fail($"wire type {(int)wire} cannot be skipped"); break;
        }
    }

    /// <summary>Throws unless <paramref name="actual"/> is <paramref name="expected"/>.</summary>
    public readonly void Expect(int field, WireType actual, WireType expected)
    {
        if (actual != expected)
        {
            Fail($"field {field} has wire type {(int)actual} but the ONNX schema says {(int)expected}");
        }
    }

    private ReadOnlySpan<byte> ReadFixed(int size)
    {
        if (_data.Length - _pos < size)
        {
            Fail($"a {size}-byte value at byte {FileOffset} runs past the end of the message (the file is truncated)");
        }

        var slice = _data.Slice(_pos, size);
        _pos += size;
        return slice;
    }

    [DoesNotReturn]
    public readonly void Fail(string rule) => throw new OnnxFormatException(_file, _where, rule);
}
