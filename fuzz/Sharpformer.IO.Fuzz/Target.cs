using System.Diagnostics.CodeAnalysis;
using Sharpformer.IO.Gguf;
using Sharpformer.IO.Onnx;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Tensors;

namespace Sharpformer.IO.Fuzz;

/// <summary>
/// One fuzz iteration. Every input goes to the safetensors reader, the sharded-index parser, the GGUF reader and the ONNX
/// reader (and, when it parses, the BERT ONNX importer); the only exceptions allowed out of them are
/// <see cref="SafeTensorsException"/>, <see cref="GgufFormatException"/> and <see cref="OnnxFormatException"/>; anything
/// else escapes and afl-fuzz records a crash. Inputs that parse as a valid file are also read tensor by tensor (and a
/// safetensors file re-written and re-read), and any disagreement throws (a crash too).
/// </summary>
internal static class Target
{
    private static readonly string Scratch = Path.Combine(
        Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath(), $"sharpformer-fuzz-{Environment.ProcessId}");

    /// <summary>Bytes parsing may allocate for an input of <paramref name="length"/> bytes: linear in the input, never in what it claims.</summary>
    public static long ParseAllocationBudget(long length) => (32 * length) + (64 * 1024);

    /// <summary>Managed bytes allocated by parsing <paramref name="bytes"/> as a header, as a sharded index and as a GGUF header.</summary>
    public static long MeasureParseAllocation(byte[] bytes)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        ParseBoth(bytes);
        ParseGguf(bytes);
        ParseOnnx(bytes);
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    public static void Run(byte[] bytes)
    {
        var header = ParseBoth(bytes);
        if (header is not null)
        {
            CheckValidFile(bytes, header);
        }

        StructuredRoundTrip(bytes);
        if (ParseGguf(bytes) is not null)
        {
            CheckValidGguf(bytes);
        }

        if (ParseOnnx(bytes) is { } onnx)
        {
            CheckValidOnnx(onnx);
        }
    }

    /// <summary>The ONNX model in <paramref name="bytes"/> (external data refused), or null when the reader rejects it.</summary>
    private static OnnxModel? ParseOnnx(byte[] bytes)
    {
        try
        {
            return OnnxReader.Parse(bytes, "fuzz-input.onnx", null);
        }
        catch (OnnxFormatException)
        {
            return null;
        }
    }

    /// <summary>An ONNX model the reader accepts: its float initializers convert with their element count, and the BERT importer either imports it or rejects it with <see cref="OnnxFormatException"/>.</summary>
    private static void CheckValidOnnx(OnnxModel model)
    {
        foreach (var t in model.Graph.Initializers.Values)
        {
            if (t.DataType == OnnxDataType.Float)
            {
                Require(t.ToFloatArray().LongLength == t.ElementCount, $"initializer '{t.Name}' converts to the wrong element count");
            }
        }

        try
        {
            BertOnnxImporter.Import(model);
        }
        catch (OnnxFormatException)
        {
        }
    }

    /// <summary>The GGUF header of <paramref name="bytes"/> from memory, or null when the reader rejects it.</summary>
    private static GgufFile? ParseGguf(byte[] bytes)
    {
        try
        {
            using var stream = new MemoryStream(bytes, writable: false);
            return GgufFile.Parse(stream, "fuzz-input.gguf");
        }
        catch (GgufFormatException)
        {
            return null;
        }
    }

    /// <summary>
    /// A GGUF input the reader accepts, opened again from a file: same header, every tensor's bytes equal to the input's
    /// bytes at its offset, and F32/F16/BF16 tensors readable as float32 with their element count.
    /// </summary>
    private static void CheckValidGguf(byte[] bytes)
    {
        Directory.CreateDirectory(Scratch);
        string input = Path.Combine(Scratch, "input.gguf");
        File.WriteAllBytes(input, bytes);
        var file = GgufFile.Open(input); // must not throw: the same bytes parsed from memory
        // With no tensors the (empty) data section may start past the end: a header-only file, as vocabulary-only GGUFs are.
        Require(file.DataOffset % file.Alignment == 0, "the GGUF data section is unaligned");
        Require(file.Tensors.Count == 0 || file.DataOffset <= bytes.Length, "the GGUF data section starts past the end of a file with tensors");
        foreach (var t in file.Tensors)
        {
            Require(file.DataOffset + t.Offset + t.ByteLength <= bytes.Length, $"GGUF tensor '{t.Name}' ends past the file");
            var raw = file.ReadBytes(t);
            Require(raw.AsSpan().SequenceEqual(bytes.AsSpan((int)(file.DataOffset + t.Offset), (int)t.ByteLength)), $"ReadBytes('{t.Name}') differs from the file bytes");
            if (t.Type is GgufTensorType.F32 or GgufTensorType.F16 or GgufTensorType.BF16
                or GgufTensorType.Q8_0 or GgufTensorType.Q4_0 or GgufTensorType.Q4_K or GgufTensorType.Q6_K)
            {
                Require(file.ReadAsF32(t.Name).LongLength == t.ElementCount, $"ReadAsF32('{t.Name}') has the wrong element count");
            }

            // Quantized matrices: read as blocks, or refused with GgufFormatException (not 2-D, too large).
            if (t.Type is GgufTensorType.Q8_0 or GgufTensorType.Q4_0 or GgufTensorType.Q4_K or GgufTensorType.Q6_K)
            {
                try
                {
                    var q = file.ReadQuantized(t.Name);
                    Require(q.Data.SequenceEqual(raw) && (long)q.Rows * q.Columns == t.ElementCount, $"ReadQuantized('{t.Name}') differs from the file's blocks");
                }
                catch (GgufFormatException)
                {
                }
            }
        }
    }

    /// <summary>
    /// Reads the input as a recipe (like upstream's structured_roundtrip target): up to 8 tensors of any dtype, rank ≤ 4,
    /// dimensions ≤ 8, filled from the input; serializes them, parses the bytes back, and demands identical dtype,
    /// shape and data. Most random inputs are invalid files, so this keeps the writer and the valid path under pressure.
    /// </summary>
    private static void StructuredRoundTrip(byte[] recipe)
    {
        var dtypes = Enum.GetValues<SafeTensorsDType>();
        var raws = new List<SafeTensorsRawTensor>();
        int pos = 0;
        byte Next() => pos < recipe.Length ? recipe[pos++] : (byte)0;
        int count = Next() % 9;
        for (int i = 0; i < count; i++)
        {
            var dtype = dtypes[Next() % dtypes.Length];
            var shape = new long[Next() % 5];
            long elements = 1;
            for (int d = 0; d < shape.Length; d++)
            {
                shape[d] = Next() % 9;
                elements *= shape[d];
            }

            if (elements * dtype.BitSize() % 8 != 0)
            {
                continue; // sub-byte dtypes need a whole number of bytes; the writer rightly refuses the rest
            }

            var data = new byte[elements * dtype.BitSize() / 8];
            for (int b = 0; b < data.Length; b++)
            {
                data[b] = Next();
            }

            raws.Add(new SafeTensorsRawTensor($"t{i}.{dtype}", dtype, shape, data));
        }

        var entries = raws.Select(SafeTensorsWriter.Entry.FromRaw).ToList();
        using var buffer = new MemoryStream();
        SafeTensorsWriter.WriteTo(buffer, entries, null, "structured");
        var bytes = buffer.ToArray();
        var header = SafeTensorsHeader.Parse(bytes, "structured"); // must not throw: we wrote it
        Require(header.DataOffset % 8 == 0, "the writer left the data section unaligned");
        foreach (var raw in raws)
        {
            Require(header.TryGetInfo(raw.Name, out var info), $"'{raw.Name}' vanished in the structured round trip");
            Require(info.DType == raw.DType && info.Shape.SequenceEqual(raw.Shape), $"'{raw.Name}' changed dtype or shape");
            Require(bytes.AsSpan((int)(header.DataOffset + info.Begin), (int)info.ByteLength).SequenceEqual(raw.Data.Span), $"'{raw.Name}' changed bytes");
            long alignment = Math.Max(1, raw.DType.BitSize() / 8);
            Require((header.DataOffset + info.Begin) % alignment == 0, $"'{raw.Name}' is not aligned to its element size");
        }
    }

    private static SafeTensorsHeader? ParseBoth(byte[] bytes)
    {
        try
        {
            ShardedSafeTensors.ParseIndex(bytes, "fuzz-index.json");
        }
        catch (SafeTensorsException)
        {
        }

        try
        {
            return SafeTensorsHeader.Parse(bytes, "fuzz-input.safetensors");
        }
        catch (SafeTensorsException)
        {
            return null;
        }
    }

    private static void CheckValidFile(byte[] bytes, SafeTensorsHeader header)
    {
        Directory.CreateDirectory(Scratch);
        string input = Path.Combine(Scratch, "input.safetensors");
        string rewritten = Path.Combine(Scratch, "rewritten.safetensors");
        File.WriteAllBytes(input, bytes);
        var raws = new List<SafeTensorsRawTensor>();
        using (var file = SafeTensorsFile.Open(input))
        {
            Require(file.Tensors.Count == header.Tensors.Count, "mapped file and in-memory parse disagree on the tensor count");
            foreach (var info in file.Tensors)
            {
                var raw = file.GetBytes(info.Name).ToArray();
                var expected = bytes.AsSpan((int)(header.DataOffset + info.Begin), (int)info.ByteLength);
                Require(expected.SequenceEqual(raw), $"GetBytes('{info.Name}') differs from the file bytes");
                ReadAsTensors(file, info, raw);
                raws.Add(new SafeTensorsRawTensor(info.Name, info.DType, info.Shape, raw));
            }
        }

        SafeTensorsWriter.WriteRaw(rewritten, raws, header.Metadata.ToDictionary());
        using var again = SafeTensorsFile.Open(rewritten);
        Require(again.Tensors.Count == raws.Count, "the rewritten file lost tensors");
        foreach (var raw in raws)
        {
            var info = again.GetInfo(raw.Name);
            Require(info.DType == raw.DType && info.Shape.SequenceEqual(raw.Shape), $"'{raw.Name}' changed dtype or shape in the round trip");
            Require(again.GetBytes(raw.Name).SequenceEqual(raw.Data.Span), $"'{raw.Name}' changed bytes in the round trip");
        }

        Require(again.Metadata.Count == header.Metadata.Count && header.Metadata.All(kv => again.Metadata.TryGetValue(kv.Key, out var v) && v == kv.Value),
            "metadata changed in the round trip");
    }

    private static void ReadAsTensors(SafeTensorsFile file, SafeTensorInfo info, byte[] raw)
    {
        try
        {
            var t = file.GetTensor(info.Name);
            Require(t.ElementCount == info.ElementCount, $"GetTensor('{info.Name}') has the wrong element count");
            if (t.ElementCount > 0)
            {
                var bytes = t.Storage.GetReadOnlyBytes(t.Offset * t.DType.SizeOf(), raw.Length);
                Require(bytes.SequenceEqual(raw), $"GetTensor('{info.Name}') views the wrong bytes");
            }
        }
        catch (SafeTensorsException e) when (e.Kind == SafeTensorsErrorKind.UnsupportedDType)
        {
        }

        try
        {
            var f = file.GetTensorAsF32(info.Name);
            Require(f.ElementCount == info.ElementCount, $"GetTensorAsF32('{info.Name}') has the wrong element count");
        }
        catch (SafeTensorsException e) when (e.Kind == SafeTensorsErrorKind.UnsupportedDType)
        {
        }
    }

    private static void Require([DoesNotReturnIf(false)] bool condition, string what)
    {
        if (!condition)
        {
            throw new InvalidOperationException("fuzz invariant broken: " + what);
        }
    }
}
