using System.Buffers.Binary;
using System.Text;

namespace Sharpformer.IO.Gguf;

/// <summary>
/// Writes GGUF v3 files: header, typed key/value metadata, tensor infos (dimensions innermost first, as ggml lists
/// them), then the tensor data, each tensor starting at a multiple of the alignment. Tensor data is produced by a
/// callback at write time, so a large model never has to sit in memory whole.
/// </summary>
public sealed class GgufWriter
{
    /// <summary>The GGUF magic, "GGUF" in file order.</summary>
    public static ReadOnlySpan<byte> Magic => "GGUF"u8;

    /// <summary>The format version this writer produces.</summary>
    public const uint Version = 3;

    /// <summary>The alignment ggml assumes when <c>general.alignment</c> is absent.</summary>
    public const uint DefaultAlignment = 32;

    /// <summary>The metadata key that sets the alignment.</summary>
    public const string AlignmentKey = "general.alignment";

    private readonly List<KeyValuePair<string, GgufValue>> _metadata = [];
    private readonly HashSet<string> _keys = new(StringComparer.Ordinal);
    private readonly List<PendingTensor> _tensors = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    /// <summary>Creates a writer; <paramref name="alignment"/> (a power of two) is also written as <c>general.alignment</c>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The alignment is not a power of two.</exception>
    public GgufWriter(uint alignment = DefaultAlignment)
    {
        if (alignment == 0 || (alignment & (alignment - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(alignment), alignment, "GGUF alignment must be a power of two (ggml's default is 32).");
        }

        Alignment = alignment;
        Add(AlignmentKey, GgufValue.FromUInt32(alignment));
    }

    /// <summary>The data alignment in bytes.</summary>
    public uint Alignment { get; }

    /// <summary>Adds one metadata entry.</summary>
    /// <exception cref="ArgumentException">The key is empty or already present.</exception>
    public void Add(string key, GgufValue value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        if (!_keys.Add(key))
        {
            throw new ArgumentException($"GGUF metadata key '{key}' was added twice; each key may appear once.", nameof(key));
        }

        _metadata.Add(new(key, value));
    }

    /// <summary>Adds a tensor whose bytes <paramref name="writeData"/> writes at write time.</summary>
    /// <param name="name">The ggml tensor name (at most 63 UTF-8 bytes).</param>
    /// <param name="type">The element type.</param>
    /// <param name="dims">Dimensions innermost first (ne0 is the contiguous one), 1 to 4 of them.</param>
    /// <param name="writeData">Writes exactly the tensor's bytes to the given stream.</param>
    /// <exception cref="ArgumentException">A bad name, duplicate name, bad dims, or dims that don't fit the type's blocks.</exception>
    public void AddTensor(string name, GgufTensorType type, IReadOnlyList<long> dims, Action<Stream> writeData)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(dims);
        ArgumentNullException.ThrowIfNull(writeData);
        if (Encoding.UTF8.GetByteCount(name) > GgufFile.MaxTensorNameBytes)
        {
            throw new ArgumentException($"GGUF tensor name '{name}' is longer than {GgufFile.MaxTensorNameBytes} bytes (ggml's limit).", nameof(name));
        }

        if (!_names.Add(name))
        {
            throw new ArgumentException($"GGUF tensor '{name}' was added twice.", nameof(name));
        }

        var bytes = GgufFile.ByteSize(type, dims, name);
        _tensors.Add(new PendingTensor(name, type, dims.ToArray(), bytes, writeData));
    }

    /// <summary>Adds a tensor from its bytes (little-endian, row-major with ne0 fastest).</summary>
    /// <exception cref="ArgumentException">As the callback overload, or the byte count does not match the dims.</exception>
    public void AddTensor(string name, GgufTensorType type, IReadOnlyList<long> dims, ReadOnlyMemory<byte> data)
    {
        ArgumentNullException.ThrowIfNull(dims);
        var expected = GgufFile.ByteSize(type, dims, name);
        if (expected != data.Length)
        {
            throw new ArgumentException($"GGUF tensor '{name}': {type} [{string.Join(", ", dims)}] needs {expected} bytes, got {data.Length}.", nameof(data));
        }

        AddTensor(name, type, dims, s => s.Write(data.Span));
    }

    /// <summary>Writes the file to <paramref name="path"/> (through a temporary file, renamed when complete).</summary>
    /// <exception cref="GgufFormatException">A tensor callback wrote the wrong number of bytes.</exception>
    public void WriteTo(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = Path.GetFullPath(path);
        var temp = full + ".partial";
        try
        {
            using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                WriteTo(file);
            }

            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }

    /// <summary>Writes the file to <paramref name="stream"/> from its current position.</summary>
    /// <exception cref="GgufFormatException">A tensor callback wrote the wrong number of bytes.</exception>
    public void WriteTo(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var counter = new CountingStream(stream);
        counter.Write(Magic);
        WriteU32(counter, Version);
        WriteU64(counter, (ulong)_tensors.Count);
        WriteU64(counter, (ulong)_metadata.Count);
        foreach (var (key, value) in _metadata)
        {
            WriteString(counter, key);
            WriteU32(counter, (uint)value.Type);
            WriteValue(counter, value.Type, value.ElementType, value.Value);
        }

        // Offsets are relative to the start of the data section; each tensor starts aligned.
        long offset = 0;
        var offsets = new long[_tensors.Count];
        for (var i = 0; i < _tensors.Count; i++)
        {
            var t = _tensors[i];
            offsets[i] = offset;
            WriteString(counter, t.Name);
            WriteU32(counter, (uint)t.Dims.Length);
            foreach (var d in t.Dims)
            {
                WriteU64(counter, (ulong)d);
            }

            WriteU32(counter, (uint)t.Type);
            WriteU64(counter, (ulong)offset);
            offset = GgufFile.AlignUp(checked(offset + t.ByteLength), Alignment);
        }

        Pad(counter);
        var dataStart = counter.Count;
        for (var i = 0; i < _tensors.Count; i++)
        {
            var t = _tensors[i];
            var before = counter.Count;
            Pad(counter, dataStart + offsets[i] - before);
            t.WriteData(counter);
            var written = counter.Count - dataStart - offsets[i];
            if (written != t.ByteLength)
            {
                throw new GgufFormatException($"GGUF tensor '{t.Name}': its data callback wrote {written} bytes, but {t.Type} [{string.Join(", ", t.Dims)}] needs {t.ByteLength}.");
            }
        }

        Pad(counter);
        counter.Flush();
    }

    private void Pad(CountingStream s) => Pad(s, GgufFile.AlignUp(s.Count, Alignment) - s.Count);

    private static void Pad(CountingStream s, long count)
    {
        Span<byte> zeros = stackalloc byte[64];
        zeros.Clear();
        while (count > 0)
        {
            var n = (int)Math.Min(count, zeros.Length);
            s.Write(zeros[..n]);
            count -= n;
        }
    }

    private static void WriteValue(Stream s, GgufValueType type, GgufValueType? elementType, object value)
    {
        switch (type)
        {
            case GgufValueType.Array:
                var array = (Array)value;
                WriteU32(s, (uint)elementType!.Value);
                WriteU64(s, (ulong)array.Length);
                foreach (var item in array)
                {
                    WriteValue(s, elementType.Value, null, item!);
                }

                break;
            case GgufValueType.String:
                WriteString(s, (string)value);
                break;
            case GgufValueType.UInt32:
                WriteU32(s, (uint)value);
                break;
            case GgufValueType.Int32:
                WriteU32(s, unchecked((uint)(int)value));
                break;
            case GgufValueType.UInt64:
                WriteU64(s, (ulong)value);
                break;
            case GgufValueType.Float32:
                WriteU32(s, BitConverter.SingleToUInt32Bits((float)value));
                break;
            case GgufValueType.Bool:
                s.WriteByte((bool)value ? (byte)1 : (byte)0);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, "The writer's GgufValue factories make no values of this type.");
        }
    }

    private static void WriteString(Stream s, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        WriteU64(s, (ulong)bytes.Length);
        s.Write(bytes);
    }

    private static void WriteU32(Stream s, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        s.Write(b);
    }

    private static void WriteU64(Stream s, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        s.Write(b);
    }

    private sealed record PendingTensor(string Name, GgufTensorType Type, long[] Dims, long ByteLength, Action<Stream> WriteData);

    /// <summary>A write-only pass-through that counts bytes, so offsets work on non-seekable streams too.</summary>
    private sealed class CountingStream(Stream inner) : Stream
    {
        public long Count { get; private set; }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => Count;

        public override long Position { get => Count; set => throw new NotSupportedException(); }

        public override void Flush() => inner.Flush();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            Count += buffer.Length;
        }

        public override void WriteByte(byte value)
        {
            inner.WriteByte(value);
            Count++;
        }
    }
}
