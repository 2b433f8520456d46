using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Sharpformer.IO.Gguf;
using Sharpformer.IO.Tests.SafeTensors;

namespace Sharpformer.IO.Tests.Gguf;

public sealed class GgufFileTests
{
    private static GgufFile Parse(byte[] bytes) => GgufFile.Parse(new MemoryStream(bytes), "test.gguf");

    private static byte[] WriteSmall(uint alignment = 32)
    {
        var writer = new GgufWriter(alignment);
        writer.Add("general.architecture", GgufValue.FromString("gpt2"));
        writer.Add("u32", GgufValue.FromUInt32(uint.MaxValue));
        writer.Add("i32", GgufValue.FromInt32(-7));
        writer.Add("u64", GgufValue.FromUInt64(1UL << 40));
        writer.Add("f32", GgufValue.FromFloat32(1e-5f));
        writer.Add("flag", GgufValue.FromBool(true));
        writer.Add("tokens", GgufValue.FromStrings(["Ġt", "é", "<|endoftext|>", ""]));
        writer.Add("types", GgufValue.FromInt32s([1, 1, 3, 5]));
        writer.Add("scores", GgufValue.FromFloat32s([0.5f, -1f]));
        // 3 floats = 12 bytes: the next tensor must be padded to the alignment.
        writer.AddTensor("a", GgufTensorType.F32, [3], MemoryMarshal.AsBytes<float>([1f, 2f, 3f]).ToArray());
        writer.AddTensor("b", GgufTensorType.F16, [2, 3], MemoryMarshal.AsBytes<Half>([(Half)1, (Half)(-2), (Half)0.5, (Half)4, (Half)5, (Half)6]).ToArray());
        var stream = new MemoryStream();
        writer.WriteTo(stream);
        return stream.ToArray();
    }

    [Fact]
    public void WriteTo_SmallFile_HeaderFieldsAtSpecOffsets()
    {
        var bytes = WriteSmall();
        Assert.Equal("GGUF"u8.ToArray(), bytes[..4]);
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(4)));
        Assert.Equal(2ul, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(8)));
        Assert.Equal(10ul, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(16)));
        // First KV: key "general.alignment" (17 bytes), type UINT32 (4), value 32.
        Assert.Equal(17ul, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(24)));
        Assert.Equal("general.alignment"u8.ToArray(), bytes[32..49]);
        Assert.Equal(4u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(49)));
        Assert.Equal(32u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(53)));
        Assert.Equal(0, bytes.Length % 32);
    }

    [Fact]
    public void Parse_WrittenFile_RoundTripsMetadataAndTensors()
    {
        var file = Parse(WriteSmall());
        Assert.Equal(3u, file.Version);
        Assert.Equal(32u, file.Alignment);
        Assert.Equal("gpt2", file.Get("general.architecture").AsString("general.architecture"));
        Assert.Equal(uint.MaxValue, file.Get("u32").Value);
        Assert.Equal(-7, file.Get("i32").Value);
        Assert.Equal(1UL << 40, file.Get("u64").Value);
        Assert.Equal(1e-5f, file.Get("f32").Value);
        Assert.Equal(true, file.Get("flag").Value);
        Assert.Equal(["Ġt", "é", "<|endoftext|>", ""], file.Get("tokens").AsStrings("tokens"));
        Assert.Equal([1, 1, 3, 5], file.Get("types").AsInt32s("types"));
        Assert.Equal([0.5f, -1f], (float[])file.Get("scores").Value);
        Assert.Equal(["general.alignment", "general.architecture"], file.MetadataInOrder.Take(2).Select(kv => kv.Key));

        var a = file.GetTensor("a");
        var b = file.GetTensor("b");
        Assert.Equal((GgufTensorType.F32, "3", 0L, 12L), (a.Type, string.Join(",", a.Dims), a.Offset, a.ByteLength));
        Assert.Equal((GgufTensorType.F16, "2,3", 32L, 12L), (b.Type, string.Join(",", b.Dims), b.Offset, b.ByteLength));
        Assert.Equal(0, file.DataOffset % 32);
    }

    [Fact]
    public void ReadAsF32_FileOnDisk_ReturnsF32AndWidenedF16Values()
    {
        using var dir = new TempDir();
        var path = dir.Write("small.gguf", WriteSmall());
        var file = GgufFile.Open(path);
        Assert.Equal([1f, 2f, 3f], file.ReadAsF32("a"));
        Assert.Equal([1f, -2f, 0.5f, 4f, 5f, 6f], file.ReadAsF32("b"));
    }

    [Fact]
    public void Parse_Alignment64_TensorsAndDataAlignedTo64()
    {
        var file = Parse(WriteSmall(64));
        Assert.Equal(64u, file.Alignment);
        Assert.Equal(64L, file.GetTensor("b").Offset);
        Assert.Equal(0, file.DataOffset % 64);
    }

    [Fact]
    public void Parse_EveryTruncation_ThrowsGgufFormatException()
    {
        var bytes = WriteSmall();
        // The data section ends at the last tensor's end; the trailing padding may be cut without harm.
        var file = Parse(bytes);
        var needed = file.DataOffset + file.GetTensor("b").Offset + file.GetTensor("b").ByteLength;
        for (var length = 0; length < needed; length++)
        {
            var ex = Assert.Throws<GgufFormatException>(() => Parse(bytes[..length]));
            Assert.StartsWith("test.gguf: ", ex.Message, StringComparison.Ordinal);
        }

        Assert.NotNull(Parse(bytes[..(int)needed]));
    }

    public static TheoryData<string, byte[], string> Malformed()
    {
        const ulong huge = ulong.MaxValue;
        var data = new TheoryData<string, byte[], string>
        {
            { "bad magic", new RawGguf().Bytes("GGUX"u8).U32(3).U64(0).U64(0).ToArray(), "magic" },
            { "version 1", new RawGguf().Header(0, 0, version: 1).ToArray(), "version 1" },
            { "future version", new RawGguf().Header(0, 0, version: 4).ToArray(), "version 4" },
            { "tensor count -1", new RawGguf().Header(huge, 0).ToArray(), "tensor count" },
            { "tensor count beyond file", new RawGguf().Header(1000, 0).ToArray(), "remain" },
            { "kv count -1", new RawGguf().Header(0, huge).ToArray(), "metadata count" },
            { "key size -1", new RawGguf().Header(0, 1).U64(huge).Zeros(16).ToArray(), "limit" },
            { "key longer than file", new RawGguf().Header(0, 1).U64(1000).Zeros(16).ToArray(), "remain" },
            { "bad value type", new RawGguf().Header(0, 1).Str("k").U32(13).U32(0).ToArray(), "unknown value type 13" },
            { "duplicate key", new RawGguf().Header(0, 2).KvU32("k", 1).KvU32("k", 2).ToArray(), "repeats the metadata key 'k'" },
            { "alignment 13", new RawGguf().Header(0, 1).KvU32("general.alignment", 13).ToArray(), "power of two" },
            { "alignment 0", new RawGguf().Header(0, 1).KvU32("general.alignment", 0).ToArray(), "power of two" },
            { "alignment as string", new RawGguf().Header(0, 1).Str("general.alignment").U32(8).Str("32").ToArray(), "must be UInt32" },
            { "bool 2", new RawGguf().Header(0, 1).Str("b").U32(7).U8(2).Zeros(8).ToArray(), "bool" },
            { "nested array", new RawGguf().Header(0, 1).Str("a").U32(9).U32(9).U64(1).Zeros(16).ToArray(), "nested" },
            { "array length -1", new RawGguf().Header(0, 1).Str("a").U32(9).U32(4).U64(huge).Zeros(16).ToArray(), "limit" },
            { "array longer than file", new RawGguf().Header(0, 1).Str("a").U32(9).U32(4).U64(1000).Zeros(16).ToArray(), "remain" },
            { "invalid UTF-8", new RawGguf().Header(0, 1).Str([0xC3, 0x28]).U32(4).U32(1).ToArray(), "UTF-8" },
            { "tensor name too long", new RawGguf().Header(1, 0).Tensor(new string('x', 64), [4], 0, 0).Align().Zeros(16).ToArray(), "limit" },
            { "5 dims", new RawGguf().Header(1, 0).Tensor("t", [1, 1, 1, 1, 1], 0, 0).Align().Zeros(16).ToArray(), "5 dimensions" },
            { "0 dims", new RawGguf().Header(1, 0).Tensor("t", [], 0, 0).Align().Zeros(16).ToArray(), "0 dimensions" },
            { "dim -1", new RawGguf().Header(1, 0).Tensor("t", [huge], 0, 0).Align().Zeros(16).ToArray(), "at least 1" },
            { "dim 0", new RawGguf().Header(1, 0).Tensor("t", [4, 0], 0, 0).Align().Zeros(16).ToArray(), "at least 1" },
            { "element count overflow", new RawGguf().Header(1, 0).Tensor("t", [1UL << 40, 1UL << 40], 0, 0).Align().Zeros(16).ToArray(), "overflow" },
            { "byte count overflow", new RawGguf().Header(1, 0).Tensor("t", [1UL << 31, 1UL << 31, 4], 0, 0).Align().Zeros(16).ToArray(), "overflow" },
            { "bad tensor type", new RawGguf().Header(1, 0).Tensor("t", [4], 99, 0).Align().Zeros(16).ToArray(), "unknown tensor type 99" },
            { "block size mismatch", new RawGguf().Header(1, 0).Tensor("t", [31], 8, 0).Align().Zeros(64).ToArray(), "multiple" },
            { "offset unaligned", new RawGguf().Header(1, 0).Tensor("t", [4], 0, 4).Align().Zeros(32).ToArray(), "alignment" },
            { "offset beyond file", new RawGguf().Header(1, 0).Tensor("t", [4], 0, 1UL << 62).Align().Zeros(32).ToArray(), "data bytes" },
            { "one byte short", new RawGguf().Header(1, 0).Tensor("t", [4], 0, 0).Align().Zeros(15).ToArray(), "data bytes" },
            { "duplicate tensor", new RawGguf().Header(2, 0).Tensor("t", [4], 0, 0).Tensor("t", [4], 0, 32).Align().Zeros(64).ToArray(), "repeats the tensor name 't'" },
            { "overlapping tensors", new RawGguf().Header(2, 0).Tensor("t", [16], 0, 0).Tensor("u", [4], 0, 32).Align().Zeros(96).ToArray(), "overlaps" },
        };
        return data;
    }

    [Theory]
    [MemberData(nameof(Malformed))]
    public void Parse_MalformedFile_ThrowsNamingTheField(string scenario, byte[] bytes, string expected)
    {
        var ex = Assert.Throws<GgufFormatException>(() => Parse(bytes));
        Assert.True(ex.Message.Contains(expected, StringComparison.Ordinal), $"{scenario}: '{ex.Message}' should mention '{expected}'");
    }

    [Fact]
    public void Parse_WellFormedHandcraftedFile_Accepted()
    {
        // The same builder as the malformed cases, with nothing wrong: shows those failures come from the one bad field.
        var bytes = new RawGguf().Header(2, 1).KvU32("general.alignment", 32).Tensor("t", [16], 0, 0).Tensor("u", [4], 0, 64).Align().Zeros(96).ToArray();
        var file = Parse(bytes);
        Assert.Equal(["t", "u"], file.Tensors.Select(t => t.Name));
    }

    [Fact]
    public void AddTensor_WrongByteCount_Throws()
    {
        var writer = new GgufWriter();
        Assert.Throws<ArgumentException>(() => writer.AddTensor("t", GgufTensorType.F32, [4], new byte[15]));
        Assert.Throws<ArgumentException>(() => writer.AddTensor("t", GgufTensorType.F32, [4, 0], Array.Empty<byte>()));
        Assert.Throws<ArgumentException>(() => writer.Add("general.alignment", GgufValue.FromUInt32(64)));
    }

    [Fact]
    public void WriteTo_CallbackWritesWrongCount_Throws()
    {
        var writer = new GgufWriter();
        writer.AddTensor("t", GgufTensorType.F32, [4], s => s.Write(new byte[12]));
        var ex = Assert.Throws<GgufFormatException>(() => writer.WriteTo(new MemoryStream()));
        Assert.Contains("'t'", ex.Message, StringComparison.Ordinal);
    }
}
