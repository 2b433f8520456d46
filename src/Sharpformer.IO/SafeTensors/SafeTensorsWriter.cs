using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Sharpformer.Tensors;

namespace Sharpformer.IO.SafeTensors;

/// <summary>A tensor given to the writer as raw little-endian bytes, for dtypes that have no Sharpformer tensor type.</summary>
/// <param name="Name">The tensor's key.</param>
/// <param name="DType">Element type of <paramref name="Data"/>.</param>
/// <param name="Shape">Dimension sizes, outermost first (empty for a scalar).</param>
/// <param name="Data">Exactly ⌈numel × bits / 8⌉ bytes, row-major.</param>
public sealed record SafeTensorsRawTensor(string Name, SafeTensorsDType DType, IReadOnlyList<long> Shape, ReadOnlyMemory<byte> Data);

/// <summary>
/// Writes safetensors files the way the upstream serializer does: header padded with spaces to a multiple of 8 bytes,
/// tensors ordered by dtype alignment (largest first) then by name (UTF-8 byte order), data packed back to back.
/// Every file is written to a temporary file in the same folder and renamed over the target, so a crash never leaves a
/// half-written checkpoint under the final name (and readers that have the old file mapped keep their mapping).
/// </summary>
public static class SafeTensorsWriter
{
    /// <summary>The index file name of a sharded checkpoint.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    /// <summary>The file name of a single-file checkpoint.</summary>
    public const string SingleFileName = "model.safetensors";

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    // Span-based copies move at most this many bytes at once (spans are int-indexed; tensors may exceed 2 GiB).
    private const int ChunkBytes = 1 << 30;

    /// <summary>Writes <paramref name="tensors"/> (any layout; views are materialized) to <paramref name="path"/>.</summary>
    /// <exception cref="SafeTensorsException">A name repeats or is <c>__metadata__</c>, or the header would exceed 100 MB.</exception>
    public static void Write(string path, IEnumerable<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        WriteEntries(path, tensors.Select(t => Entry.FromTensor(t.Name, t.Tensor)).ToList(), metadata);
    }

    /// <summary>Writes raw tensors of any safetensors dtype to <paramref name="path"/>.</summary>
    /// <exception cref="SafeTensorsException">A name repeats, a byte length does not match dtype × shape, or the header is too large.</exception>
    public static void WriteRaw(string path, IEnumerable<SafeTensorsRawTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        WriteEntries(path, tensors.Select(Entry.FromRaw).ToList(), metadata);
    }

    /// <summary>
    /// Writes a sharded checkpoint into <paramref name="directory"/>: <c>model-00001-of-0000N.safetensors</c> files of at
    /// most <paramref name="maxShardBytes"/> tensor bytes each (a larger tensor gets a shard of its own) plus
    /// <c>model.safetensors.index.json</c>, written last. When everything fits in one shard, writes
    /// <c>model.safetensors</c> and no index, as Hugging Face does. Returns the files written.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxShardBytes"/> is not positive.</exception>
    /// <exception cref="SafeTensorsException">A name repeats, or a header would exceed 100 MB.</exception>
    public static IReadOnlyList<string> WriteSharded(string directory, IEnumerable<(string Name, Tensor Tensor)> tensors, long maxShardBytes, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardBytes);
        var entries = tensors.Select(t => Entry.FromTensor(t.Name, t.Tensor)).ToList();
        CheckNames(entries, directory);
        Directory.CreateDirectory(directory);

        // Greedy in the order given, as transformers' split_torch_state_dict_into_shards does.
        var shards = new List<List<Entry>>();
        var current = new List<Entry>();
        long currentBytes = 0;
        foreach (var e in entries)
        {
            if (current.Count > 0 && currentBytes + e.ByteLength > maxShardBytes)
            {
                shards.Add(current);
                current = [];
                currentBytes = 0;
            }

            current.Add(e);
            currentBytes += e.ByteLength;
        }

        shards.Add(current);
        if (shards.Count == 1)
        {
            string single = Path.Combine(directory, SingleFileName);
            WriteEntries(single, shards[0], metadata);
            return [single];
        }

        var written = new List<string>();
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        long totalSize = 0;
        for (int i = 0; i < shards.Count; i++)
        {
            string name = ShardFileName(i + 1, shards.Count);
            string path = Path.Combine(directory, name);
            WriteEntries(path, shards[i], metadata);
            written.Add(path);
            foreach (var e in shards[i])
            {
                weightMap.Add(e.Name, name);
                totalSize += e.ByteLength;
            }
        }

        // The index goes last: a reader that finds it can trust every shard it names is complete.
        string indexPath = Path.Combine(directory, IndexFileName);
        WriteAtomically(indexPath, stream =>
        {
            using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
            json.WriteStartObject();
            json.WriteStartObject("metadata");
            json.WriteNumber("total_size", totalSize);
            json.WriteEndObject();
            json.WriteStartObject("weight_map");
            foreach (var (tensor, file) in weightMap)
            {
                json.WriteString(tensor, file);
            }

            json.WriteEndObject();
            json.WriteEndObject();
        });
        written.Add(indexPath);
        return written;
    }

    /// <summary>The Hugging Face shard name: <c>model-00001-of-00003.safetensors</c>.</summary>
    public static string ShardFileName(int index, int count) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"model-{index:D5}-of-{count:D5}.safetensors");

    /// <summary>Serializes to a stream (used by the file writers and by tests that need bytes in memory).</summary>
    internal static void WriteTo(Stream stream, IReadOnlyList<Entry> entries, IReadOnlyDictionary<string, string>? metadata, string target)
    {
        var ordered = Order(entries);
        var header = BuildHeader(ordered, metadata, target);
        Span<byte> prefix = stackalloc byte[SafeTensorsHeader.LengthPrefixSize];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
        stream.Write(prefix);
        stream.Write(header);
        foreach (var e in ordered)
        {
            e.WriteData(stream);
        }
    }

    private static void WriteEntries(string path, List<Entry> entries, IReadOnlyDictionary<string, string>? metadata)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        CheckNames(entries, path);
        WriteAtomically(path, stream => WriteTo(stream, entries, metadata, path));
    }

    private static void WriteAtomically(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(full)!;
        string temp = Path.Combine(directory, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    private static void CheckNames(List<Entry> entries, string target)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in entries)
        {
            if (e.Name == "__metadata__")
            {
                throw new SafeTensorsException(SafeTensorsErrorKind.InvalidWriteRequest, target, e.Name,
                    "\"__metadata__\" is reserved for the metadata map; rename the tensor.");
            }

            RequireValidUnicode(e.Name, target, e.Name, "the tensor name");
            if (!seen.Add(e.Name))
            {
                throw new SafeTensorsException(SafeTensorsErrorKind.InvalidWriteRequest, target, e.Name,
                    "two tensors share this name; every name must be unique.");
            }
        }
    }

    private static void RequireValidUnicode(string text, string target, string? tensor, string what)
    {
        // A lone surrogate has no UTF-8 form; encoding it would silently write U+FFFD and change the name.
        try
        {
            _ = StrictUtf8.GetByteCount(text);
        }
        catch (EncoderFallbackException)
        {
            throw new SafeTensorsException(SafeTensorsErrorKind.InvalidWriteRequest, target, tensor,
                $"{what} holds an unpaired UTF-16 surrogate, which UTF-8 JSON cannot represent; fix the string.");
        }
    }

    private static List<Entry> Order(IReadOnlyList<Entry> entries)
    {
        // Upstream: descending dtype (its enum is in increasing alignment), then names compared as UTF-8 bytes.
        var ordered = entries.ToList();
        ordered.Sort(static (a, b) =>
        {
            int byType = b.DType.CompareTo(a.DType);
            return byType != 0 ? byType : a.NameUtf8.AsSpan().SequenceCompareTo(b.NameUtf8);
        });
        return ordered;
    }

    private static byte[] BuildHeader(List<Entry> ordered, IReadOnlyDictionary<string, string>? metadata, string target)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                {
                    RequireValidUnicode(key, target, null, "a metadata key");
                    RequireValidUnicode(value, target, null, $"metadata[\"{key}\"]");
                    json.WriteString(key, value);
                }

                json.WriteEndObject();
            }

            long offset = 0;
            foreach (var e in ordered)
            {
                json.WriteStartObject(e.Name);
                json.WriteString("dtype", e.DType.HeaderName());
                json.WriteStartArray("shape");
                foreach (long d in e.Shape)
                {
                    json.WriteNumberValue(d);
                }

                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + e.ByteLength);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += e.ByteLength;
            }

            json.WriteEndObject();
        }

        // Pad with spaces so the data section starts 8-byte aligned (every dtype is then aligned in a mapping).
        int padded = (buffer.WrittenCount + 7) / 8 * 8;
        if (padded > SafeTensorsHeader.MaxHeaderSize)
        {
            throw new SafeTensorsException(SafeTensorsErrorKind.HeaderTooLarge, target, null,
                $"the header would be {padded} bytes, over the {SafeTensorsHeader.MaxHeaderSize}-byte cap readers enforce; shrink the metadata or shard the checkpoint.");
        }

        var header = new byte[padded];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(buffer.WrittenCount).Fill((byte)' ');
        return header;
    }

    /// <summary>One tensor to write: header facts and a way to stream its bytes.</summary>
    internal sealed class Entry
    {
        private readonly Tensor? _tensor;
        private readonly ReadOnlyMemory<byte> _raw;

        private Entry(string name, SafeTensorsDType dtype, long[] shape, long byteLength, Tensor? tensor, ReadOnlyMemory<byte> raw)
        {
            Name = name;
            NameUtf8 = Encoding.UTF8.GetBytes(name);
            DType = dtype;
            Shape = shape;
            ByteLength = byteLength;
            _tensor = tensor;
            _raw = raw;
        }

        public string Name { get; }

        public byte[] NameUtf8 { get; }

        public SafeTensorsDType DType { get; }

        public long[] Shape { get; }

        public long ByteLength { get; }

        public static Entry FromTensor(string name, Tensor tensor)
        {
            ArgumentNullException.ThrowIfNull(name);
            ArgumentNullException.ThrowIfNull(tensor);
            var dims = new long[tensor.Rank];
            for (int i = 0; i < dims.Length; i++)
            {
                dims[i] = tensor.Shape.Dims[i];
            }

            // Views (transposes, narrows) are materialized: the format has no strides.
            var contiguous = tensor.Contiguous();
            return new Entry(name, SafeTensorsDTypes.FromTensorDType(tensor.DType), dims, checked(tensor.ElementCount * tensor.DType.SizeOf()), contiguous, default);
        }

        public static Entry FromRaw(SafeTensorsRawTensor raw)
        {
            ArgumentNullException.ThrowIfNull(raw);
            ArgumentNullException.ThrowIfNull(raw.Name);
            var dims = raw.Shape.ToArray();
            long count = 1;
            foreach (long d in dims)
            {
                if (d < 0)
                {
                    throw new SafeTensorsException(SafeTensorsErrorKind.InvalidWriteRequest, null, raw.Name, $"shape [{string.Join(", ", dims)}] has a negative dimension.");
                }

                count = checked(count * d);
            }

            long bits = checked(count * raw.DType.BitSize());
            if (bits % 8 != 0 || bits / 8 != raw.Data.Length)
            {
                throw new SafeTensorsException(SafeTensorsErrorKind.InvalidWriteRequest, null, raw.Name,
                    $"{raw.DType} [{string.Join(", ", dims)}] needs {bits / 8.0} bytes but {raw.Data.Length} were given.");
            }

            return new Entry(raw.Name, raw.DType, dims, raw.Data.Length, null, raw.Data);
        }

        public void WriteData(Stream stream)
        {
            if (_tensor is null)
            {
                stream.Write(_raw.Span);
                return;
            }

            long start = _tensor.Offset * _tensor.DType.SizeOf();
            for (long done = 0; done < ByteLength; done += ChunkBytes)
            {
                int n = (int)Math.Min(ChunkBytes, ByteLength - done);
                stream.Write(_tensor.Storage.GetReadOnlyBytes(start + done, n));
            }
        }
    }
}
