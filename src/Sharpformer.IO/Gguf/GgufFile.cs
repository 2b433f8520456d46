using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace Sharpformer.IO.Gguf;

/// <summary>One tensor info of a GGUF file.</summary>
/// <param name="Name">The ggml name.</param>
/// <param name="Type">The element type.</param>
/// <param name="Dims">Dimensions innermost first (ne0 is contiguous).</param>
/// <param name="Offset">Offset of the data from the start of the data section (a multiple of the alignment).</param>
/// <param name="ByteLength">The data size in bytes.</param>
public sealed record GgufTensorInfo(string Name, GgufTensorType Type, IReadOnlyList<long> Dims, long Offset, long ByteLength)
{
    /// <summary>The number of elements (product of the dims).</summary>
    public long ElementCount => Dims.Aggregate(1L, (a, d) => a * d);

    /// <inheritdoc/>
    public override string ToString() => $"{Name}: {Type} [{string.Join(", ", Dims)}] @ {Offset} (+{ByteLength})";
}

/// <summary>
/// Safety caps of the GGUF reader (anchors-reliability §2: llama.cpp's parser had heap overflows from header-driven
/// sizes). Every count and length in a file is checked against these and against the bytes actually left in the file
/// before anything is allocated from it.
/// </summary>
public sealed record GgufReadLimits
{
    /// <summary>Most tensors in one file.</summary>
    public long MaxTensors { get; init; } = 1 << 16;

    /// <summary>Most metadata entries.</summary>
    public long MaxMetadataEntries { get; init; } = 1 << 16;

    /// <summary>Longest key in bytes (the spec's limit is 65535).</summary>
    public long MaxKeyBytes { get; init; } = 65535;

    /// <summary>Longest string value in bytes.</summary>
    public long MaxStringBytes { get; init; } = 16 << 20;

    /// <summary>Most elements of one metadata array (a tokenizer vocabulary is a few hundred thousand).</summary>
    public long MaxArrayElements { get; init; } = 16 << 20;
}

/// <summary>
/// A parsed GGUF file (v2 or v3): metadata and tensor infos, every count, length, type, dimension and offset checked
/// (caps in <see cref="GgufReadLimits"/>, checked arithmetic, data inside the file, no overlapping tensors). Tensor
/// data is read on demand from the file.
/// </summary>
public sealed class GgufFile
{
    /// <summary>ggml's longest tensor name in bytes (GGML_MAX_NAME 64 including the terminator).</summary>
    public const int MaxTensorNameBytes = 63;

    /// <summary>ggml's most dimensions per tensor.</summary>
    public const int MaxDims = 4;

    private readonly Dictionary<string, GgufValue> _metadata;
    private readonly Dictionary<string, GgufTensorInfo> _byName;

    private GgufFile(string path, uint version, List<KeyValuePair<string, GgufValue>> metadata, List<GgufTensorInfo> tensors, uint alignment, long dataOffset, long fileLength)
    {
        Path = path;
        Version = version;
        MetadataInOrder = metadata;
        _metadata = metadata.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        Tensors = tensors;
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        Alignment = alignment;
        DataOffset = dataOffset;
        FileLength = fileLength;
    }

    /// <summary>The file read (or the source name given to <see cref="Parse(Stream, string, GgufReadLimits?)"/>).</summary>
    public string Path { get; }

    /// <summary>The format version (2 or 3).</summary>
    public uint Version { get; }

    /// <summary>The metadata entries in file order.</summary>
    public IReadOnlyList<KeyValuePair<string, GgufValue>> MetadataInOrder { get; }

    /// <summary>The metadata by key.</summary>
    public IReadOnlyDictionary<string, GgufValue> Metadata => _metadata;

    /// <summary>The tensor infos in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    /// <summary>The data alignment (<c>general.alignment</c>, default 32).</summary>
    public uint Alignment { get; }

    /// <summary>Absolute file offset of the data section.</summary>
    public long DataOffset { get; }

    /// <summary>The file length in bytes.</summary>
    public long FileLength { get; }

    /// <summary>Reads and validates the header of the GGUF file at <paramref name="path"/>.</summary>
    /// <exception cref="GgufFormatException">The file is malformed or exceeds a limit; the message says which field.</exception>
    public static GgufFile Open(string path, GgufReadLimits? limits = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return Parse(stream, path, limits);
    }

    /// <summary>Parses a GGUF header from a seekable <paramref name="stream"/> positioned at the file's start.</summary>
    /// <exception cref="GgufFormatException">The data is malformed or exceeds a limit.</exception>
    public static GgufFile Parse(Stream stream, string source, GgufReadLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanSeek)
        {
            throw new ArgumentException("The GGUF reader needs a seekable stream (it checks sizes against the length).", nameof(stream));
        }

        return new Parser(stream, source, limits ?? new GgufReadLimits()).Run();
    }

    /// <summary>The metadata value of <paramref name="key"/>.</summary>
    /// <exception cref="GgufFormatException">The key is missing.</exception>
    public GgufValue Get(string key) => _metadata.TryGetValue(key, out var v)
        ? v
        : throw new GgufFormatException($"{Path}: GGUF metadata key '{key}' is missing.");

    /// <summary>The tensor info named <paramref name="name"/>.</summary>
    /// <exception cref="GgufFormatException">No such tensor.</exception>
    public GgufTensorInfo GetTensor(string name) => _byName.TryGetValue(name, out var t)
        ? t
        : throw new GgufFormatException($"{Path}: GGUF tensor '{name}' is missing.");

    /// <summary>True when a tensor named <paramref name="name"/> exists.</summary>
    public bool ContainsTensor(string name) => _byName.ContainsKey(name);

    /// <summary>The raw bytes of <paramref name="tensor"/>, read from the file.</summary>
    /// <exception cref="GgufFormatException">The tensor is larger than an array can hold.</exception>
    public byte[] ReadBytes(GgufTensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.ByteLength > Array.MaxLength)
        {
            throw new GgufFormatException($"{Path}: GGUF tensor '{tensor.Name}' has {tensor.ByteLength} bytes, more than one array can hold.");
        }

        var bytes = new byte[tensor.ByteLength];
        using var stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
        stream.Position = DataOffset + tensor.Offset;
        stream.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>The values of an F32, F16, BF16, Q8_0, Q4_0, Q4_K or Q6_K tensor as float32, in file order (ne0 fastest); blocks are dequantized.</summary>
    /// <exception cref="GgufFormatException">The tensor is missing or of another type.</exception>
    public float[] ReadAsF32(string name)
    {
        var t = GetTensor(name);
        var bytes = ReadBytes(t);
        switch (t.Type)
        {
            case GgufTensorType.F32:
                return MemoryMarshal.Cast<byte, float>(bytes).ToArray();
            case GgufTensorType.F16:
                var halves = MemoryMarshal.Cast<byte, Half>(bytes);
                var f = new float[halves.Length];
                System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(halves, f);
                return f;
            case GgufTensorType.BF16:
                var raw = MemoryMarshal.Cast<byte, ushort>(bytes);
                var b = new float[raw.Length];
                for (var i = 0; i < raw.Length; i++)
                {
                    b[i] = BitConverter.UInt32BitsToSingle((uint)raw[i] << 16);
                }

                return b;
            case GgufTensorType.Q8_0 or GgufTensorType.Q4_0 or GgufTensorType.Q4_K or GgufTensorType.Q6_K:
                // The size was checked against the shape when the header was read: whole blocks.
                var values = new float[t.ElementCount];
                Sharpformer.Tensors.Kernels.Quant.BlockQuant.Dequantize((Sharpformer.Tensors.Kernels.Quant.QuantType)t.Type, bytes, values);
                return values;
            default:
                throw new GgufFormatException($"{Path}: GGUF tensor '{name}' is {t.Type}; only F32, F16, BF16, Q8_0, Q4_0, Q4_K and Q6_K can be read as float32.");
        }
    }

    /// <summary>
    /// A 2-D Q8_0, Q4_0, Q4_K or Q6_K tensor [ne1, ne0] as a <see cref="Sharpformer.Tensors.Kernels.Quant.QuantizedMatrix"/> of ne1
    /// rows of ne0 values, its blocks as stored (no dequantization).
    /// </summary>
    /// <param name="name">The tensor name.</param>
    /// <returns>The matrix.</returns>
    /// <exception cref="GgufFormatException">The tensor is missing, not 2-D, or of another type.</exception>
    public Sharpformer.Tensors.Kernels.Quant.QuantizedMatrix ReadQuantized(string name)
    {
        var t = GetTensor(name);
        if (t.Type is not (GgufTensorType.Q8_0 or GgufTensorType.Q4_0 or GgufTensorType.Q4_K or GgufTensorType.Q6_K))
        {
            throw new GgufFormatException($"{Path}: GGUF tensor '{name}' is {t.Type}; only Q8_0, Q4_0, Q4_K and Q6_K tensors are read as blocks (read others with ReadAsF32).");
        }

        if (t.Dims.Count != 2 || t.Dims[0] > int.MaxValue || t.Dims[1] > int.MaxValue)
        {
            throw new GgufFormatException($"{Path}: GGUF tensor '{name}' has dimensions [{string.Join(", ", t.Dims)}]; a quantized matrix must be 2-D with each dimension below 2^31.");
        }

        return Sharpformer.Tensors.Kernels.Quant.QuantizedMatrix.FromBlocks((Sharpformer.Tensors.Kernels.Quant.QuantType)t.Type, (int)t.Dims[1], (int)t.Dims[0], ReadBytes(t));
    }

    /// <summary>Rounds <paramref name="value"/> up to a multiple of <paramref name="alignment"/> (a power of two).</summary>
    internal static long AlignUp(long value, uint alignment) => checked(value + alignment - 1) & ~((long)alignment - 1);

    /// <summary>The data size of a tensor, with every step checked (bad dims throw <see cref="ArgumentException"/>).</summary>
    internal static long ByteSize(GgufTensorType type, IReadOnlyList<long> dims, string name)
    {
        if (!TrySize(type, dims, out var bytes, out var error))
        {
            throw new ArgumentException($"GGUF tensor '{name}': {error}");
        }

        return bytes;
    }

    private static bool TrySize(GgufTensorType type, IReadOnlyList<long> dims, out long bytes, out string error)
    {
        bytes = 0;
        if (!GgufTensorTypes.TryGetBlock(type, out var block, out var typeSize))
        {
            error = $"unknown tensor type {(uint)type}.";
            return false;
        }

        if (dims.Count is < 1 or > MaxDims)
        {
            error = $"{dims.Count} dimensions; ggml allows 1 to {MaxDims}.";
            return false;
        }

        long elements = 1;
        foreach (var d in dims)
        {
            // A zero dim would make an empty tensor, and would divide by zero in overflow guards elsewhere; refuse it.
            if (d < 1)
            {
                error = $"dimension {d} in [{string.Join(", ", dims)}]; every dimension must be at least 1.";
                return false;
            }

            if (elements > long.MaxValue / d)
            {
                error = $"dimensions [{string.Join(", ", dims)}] overflow a 64-bit element count.";
                return false;
            }

            elements *= d;
        }

        if (dims[0] % block != 0)
        {
            error = $"{type} stores blocks of {block} values, but ne0 = {dims[0]} is not a multiple of it.";
            return false;
        }

        var blocks = elements / block;
        if (blocks > long.MaxValue / typeSize)
        {
            error = $"dimensions [{string.Join(", ", dims)}] overflow a 64-bit byte count.";
            return false;
        }

        bytes = blocks * typeSize;
        error = "";
        return true;
    }

    private sealed class Parser(Stream stream, string source, GgufReadLimits limits)
    {
        private static readonly UTF8Encoding StrictUtf8 = new(false, true);
        private readonly long _length = stream.Length;
        private readonly byte[] _scratch = new byte[8];

        private long Remaining => _length - stream.Position;

        public GgufFile Run()
        {
            if (_length < 24)
            {
                throw Fail($"is {_length} bytes, shorter than a GGUF header (24 bytes).");
            }

            Span<byte> magic = stackalloc byte[4];
            stream.ReadExactly(magic);
            if (!magic.SequenceEqual(GgufWriter.Magic))
            {
                throw Fail($"does not start with the GGUF magic (found bytes {System.Convert.ToHexString(magic)}); is it a GGUF file?");
            }

            var version = U32("version");
            if (version is < 2 or > 3)
            {
                throw Fail($"has GGUF version {version}; only versions 2 and 3 are supported.");
            }

            var tensorCount = Count("tensor count", U64("tensor count"), limits.MaxTensors, minBytesEach: 4 + 8 + 4 + 8 + 8);
            var kvCount = Count("metadata count", U64("metadata count"), limits.MaxMetadataEntries, minBytesEach: 8 + 1 + 4 + 1);

            var metadata = new List<KeyValuePair<string, GgufValue>>();
            var keys = new HashSet<string>(StringComparer.Ordinal);
            for (long i = 0; i < kvCount; i++)
            {
                var key = String($"metadata key #{i}", limits.MaxKeyBytes);
                if (key.Length == 0)
                {
                    throw Fail($"metadata key #{i} is empty.");
                }

                if (!keys.Add(key))
                {
                    throw Fail($"repeats the metadata key '{key}'.");
                }

                var type = (GgufValueType)U32($"type of '{key}'");
                metadata.Add(new(key, Value(key, type)));
            }

            uint alignment = GgufWriter.DefaultAlignment;
            if (metadata.FirstOrDefault(kv => kv.Key == GgufWriter.AlignmentKey).Value is { } align)
            {
                if (align.Type != GgufValueType.UInt32)
                {
                    throw Fail($"has '{GgufWriter.AlignmentKey}' of type {align.Type}; it must be UInt32.");
                }

                alignment = (uint)align.Value;
                if (alignment == 0 || (alignment & (alignment - 1)) != 0)
                {
                    throw Fail($"has '{GgufWriter.AlignmentKey}' = {alignment}; it must be a power of two.");
                }
            }

            var tensors = new List<GgufTensorInfo>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            for (long i = 0; i < tensorCount; i++)
            {
                var name = String($"tensor #{i} name", MaxTensorNameBytes);
                if (name.Length == 0 || !names.Add(name))
                {
                    throw Fail(name.Length == 0 ? $"tensor #{i} has an empty name." : $"repeats the tensor name '{name}'.");
                }

                var nDims = U32($"tensor '{name}' dimension count");
                if (nDims is < 1 or > MaxDims)
                {
                    throw Fail($"tensor '{name}' has {nDims} dimensions; ggml allows 1 to {MaxDims}.");
                }

                var dims = new long[nDims];
                for (var d = 0; d < nDims; d++)
                {
                    var ne = U64($"tensor '{name}' dimension {d}");
                    dims[d] = ne > long.MaxValue ? -1 : (long)ne;
                }

                var rawType = U32($"tensor '{name}' type");
                var type = (GgufTensorType)rawType;
                var offset = U64($"tensor '{name}' offset");
                if (!TrySize(type, dims, out var bytes, out var error))
                {
                    throw Fail($"tensor '{name}': {error}");
                }

                if (offset % alignment != 0)
                {
                    throw Fail($"tensor '{name}' starts at data offset {offset}, not a multiple of the alignment {alignment}.");
                }

                if (offset > long.MaxValue)
                {
                    throw Fail($"tensor '{name}' has data offset {offset}, beyond any file.");
                }

                tensors.Add(new GgufTensorInfo(name, type, dims, (long)offset, bytes));
            }

            var dataOffset = AlignUp(stream.Position, alignment);
            var dataLength = _length - dataOffset;
            long end = 0;
            foreach (var t in tensors.OrderBy(t => t.Offset))
            {
                // Subtraction, not addition: offset + bytes could overflow for hostile values.
                if (t.Offset < end)
                {
                    throw Fail($"tensor '{t.Name}' at data offset {t.Offset} overlaps the tensor before it (which ends at {end}).");
                }

                if (dataLength < 0 || t.ByteLength > dataLength || t.Offset > dataLength - t.ByteLength)
                {
                    throw Fail($"tensor '{t.Name}' needs bytes [{t.Offset}, {t.Offset} + {t.ByteLength}) of the data section, but the file has only {Math.Max(0, dataLength)} data bytes (truncated?).");
                }

                end = t.Offset + t.ByteLength;
            }

            return new GgufFile(source, version, metadata, tensors, alignment, dataOffset, _length);
        }

        private GgufValue Value(string key, GgufValueType type)
        {
            if (type == GgufValueType.Array)
            {
                var elementType = (GgufValueType)U32($"element type of '{key}'");
                if (elementType == GgufValueType.Array)
                {
                    throw Fail($"metadata '{key}' is an array of arrays; nested arrays are not supported.");
                }

                var minBytes = elementType == GgufValueType.String ? 8 : ScalarSize(key, elementType);
                var count = Count($"length of '{key}'", U64($"length of '{key}'"), limits.MaxArrayElements, minBytes);
                return GgufValue.Raw(type, elementType, ReadArray(key, elementType, (int)count));
            }

            return GgufValue.Raw(type, null, Scalar(key, type));
        }

        private Array ReadArray(string key, GgufValueType type, int count)
        {
            switch (type)
            {
                case GgufValueType.String:
                    var strings = new string[count];
                    for (var i = 0; i < count; i++)
                    {
                        strings[i] = String($"'{key}'[{i}]", limits.MaxStringBytes);
                    }

                    return strings;
                case GgufValueType.Bool:
                    var bools = new bool[count];
                    for (var i = 0; i < count; i++)
                    {
                        bools[i] = (bool)Scalar(key, type);
                    }

                    return bools;
                default:
                    var size = ScalarSize(key, type);
                    var bytes = new byte[(long)count * size];
                    stream.ReadExactly(bytes);
                    return type switch
                    {
                        GgufValueType.UInt8 => bytes,
                        GgufValueType.Int8 => MemoryMarshal.Cast<byte, sbyte>(bytes).ToArray(),
                        GgufValueType.UInt16 => MemoryMarshal.Cast<byte, ushort>(bytes).ToArray(),
                        GgufValueType.Int16 => MemoryMarshal.Cast<byte, short>(bytes).ToArray(),
                        GgufValueType.UInt32 => MemoryMarshal.Cast<byte, uint>(bytes).ToArray(),
                        GgufValueType.Int32 => MemoryMarshal.Cast<byte, int>(bytes).ToArray(),
                        GgufValueType.Float32 => MemoryMarshal.Cast<byte, float>(bytes).ToArray(),
                        GgufValueType.UInt64 => MemoryMarshal.Cast<byte, ulong>(bytes).ToArray(),
                        GgufValueType.Int64 => MemoryMarshal.Cast<byte, long>(bytes).ToArray(),
                        _ => MemoryMarshal.Cast<byte, double>(bytes).ToArray(),
                    };
            }
        }

        private object Scalar(string key, GgufValueType type)
        {
            switch (type)
            {
                case GgufValueType.String:
                    return String($"value of '{key}'", limits.MaxStringBytes);
                case GgufValueType.Bool:
                    Read(1, $"value of '{key}'");
                    return _scratch[0] switch
                    {
                        0 => false,
                        1 => true,
                        _ => throw Fail($"metadata '{key}' is a bool with byte value {_scratch[0]}; only 0 and 1 are valid."),
                    };
                default:
                    var size = ScalarSize(key, type);
                    Read(size, $"value of '{key}'");
                    var b = _scratch.AsSpan(0, size);
                    return type switch
                    {
                        GgufValueType.UInt8 => b[0],
                        GgufValueType.Int8 => (sbyte)b[0],
                        GgufValueType.UInt16 => BinaryPrimitives.ReadUInt16LittleEndian(b),
                        GgufValueType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(b),
                        GgufValueType.UInt32 => BinaryPrimitives.ReadUInt32LittleEndian(b),
                        GgufValueType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(b),
                        GgufValueType.Float32 => BinaryPrimitives.ReadSingleLittleEndian(b),
                        GgufValueType.UInt64 => BinaryPrimitives.ReadUInt64LittleEndian(b),
                        GgufValueType.Int64 => BinaryPrimitives.ReadInt64LittleEndian(b),
                        _ => (object)BinaryPrimitives.ReadDoubleLittleEndian(b),
                    };
            }
        }

        private int ScalarSize(string key, GgufValueType type) => type switch
        {
            GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
            GgufValueType.UInt16 or GgufValueType.Int16 => 2,
            GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
            GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 => 8,
            _ => throw Fail($"metadata '{key}' has unknown value type {(uint)type} (valid: 0-12)."),
        };

        /// <summary>A count from the file, capped and checked against the bytes left (each item needs at least minBytesEach).</summary>
        private long Count(string what, ulong value, long cap, int minBytesEach)
        {
            if (value > (ulong)cap)
            {
                throw Fail($"{what} is {value}, above the reader's limit of {cap}.");
            }

            if ((long)value > Remaining / minBytesEach)
            {
                throw Fail($"{what} is {value}, but only {Remaining} bytes remain (each item needs at least {minBytesEach}); truncated or corrupt.");
            }

            return (long)value;
        }

        private string String(string what, long cap)
        {
            var length = U64($"{what} length");
            if (length > (ulong)cap)
            {
                throw Fail($"{what} is {length} bytes long, above the limit of {cap}.");
            }

            if ((long)length > Remaining)
            {
                throw Fail($"{what} is {length} bytes long, but only {Remaining} bytes remain (truncated?).");
            }

            var bytes = new byte[length];
            stream.ReadExactly(bytes);
            try
            {
                return StrictUtf8.GetString(bytes);
            }
            catch (DecoderFallbackException)
            {
                throw Fail($"{what} is not valid UTF-8.");
            }
        }

        private uint U32(string what)
        {
            Read(4, what);
            return BinaryPrimitives.ReadUInt32LittleEndian(_scratch);
        }

        private ulong U64(string what)
        {
            Read(8, what);
            return BinaryPrimitives.ReadUInt64LittleEndian(_scratch);
        }

        private void Read(int count, string what)
        {
            if (Remaining < count)
            {
                throw Fail($"ends inside {what} (at byte {stream.Position} of {_length}; truncated?).");
            }

            stream.ReadExactly(_scratch, 0, count);
        }

        private GgufFormatException Fail(string message) => new($"{source}: {message}");
    }
}
