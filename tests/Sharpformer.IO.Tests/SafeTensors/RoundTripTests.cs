using System.Runtime.InteropServices;
using System.Text;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Tensors;

namespace Sharpformer.IO.Tests.SafeTensors;

/// <summary>write → read is bit-exact for every dtype and shape kind; reads are zero-copy; files are written atomically.</summary>
public sealed class RoundTripTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static Tensor RandomTensor(DType dtype, int[] dims, int seed)
    {
        // Random bit patterns, not random values: NaN payloads, subnormals and -0 must survive too.
        var t = Tensor.Zeros(new Shape(dims), dtype);
        if (t.ElementCount > 0)
        {
            new Random(seed).NextBytes(t.Storage.GetBytes(0, checked((int)t.Storage.ByteLength)));
        }

        return t;
    }

    private static byte[] BytesOf(Tensor t) =>
        t.ElementCount == 0 ? [] : t.Contiguous().Storage.GetReadOnlyBytes(t.Contiguous().Offset * t.DType.SizeOf(), (int)(t.ElementCount * t.DType.SizeOf())).ToArray();

    public static TheoryData<DType, int[]> Cases()
    {
        var data = new TheoryData<DType, int[]>();
        foreach (var dtype in Enum.GetValues<DType>())
        {
            data.Add(dtype, []);          // rank-0 scalar
            data.Add(dtype, [0]);         // empty
            data.Add(dtype, [3, 0, 2]);   // empty with other dims
            data.Add(dtype, [7]);
            data.Add(dtype, [2, 3, 5]);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Write_ThenOpen_BitExact(DType dtype, int[] dims)
    {
        var t = RandomTensor(dtype, dims, seed: dims.Length * 31 + (int)dtype);
        string path = _dir.File("t.safetensors");

        SafeTensorsWriter.Write(path, [("x", t)]);
        using var file = SafeTensorsFile.Open(path);
        var back = file.GetTensor("x");

        Assert.Equal(dtype, back.DType);
        Assert.Equal(t.Shape, back.Shape);
        Assert.Equal(BytesOf(t), BytesOf(back));
    }

    [Fact]
    public void Write_ManyTensorsWithMetadata_AllBitExactAndMetadataKept()
    {
        var tensors = new List<(string, Tensor)>
        {
            ("layer.1.bias", RandomTensor(DType.BF16, [5], 1)),
            ("layer.0.weight", RandomTensor(DType.F32, [4, 3], 2)),
            ("ids", RandomTensor(DType.I64, [3], 3)),
            ("mask", RandomTensor(DType.I32, [2, 2], 4)),
            ("half", RandomTensor(DType.F16, [1, 9], 5)),
            ("scalar", RandomTensor(DType.F32, [], 6)),
            ("ünïcode/名前", RandomTensor(DType.F32, [2], 7)),
        };
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ä \"quoted\" \n" };
        string path = _dir.File("m.safetensors");

        SafeTensorsWriter.Write(path, tensors, metadata);
        using var file = SafeTensorsFile.Open(path);

        Assert.Equal(metadata, file.Metadata);
        foreach (var (name, t) in tensors)
        {
            Assert.Equal(BytesOf(t), BytesOf(file.GetTensor(name)));
        }
    }

    [Fact]
    public void Write_Order_DescendingAlignmentThenUtf8Name()
    {
        var tensors = new (string, Tensor)[]
        {
            ("b", Tensor.Zeros(new Shape(1), DType.F16)),
            ("a", Tensor.Zeros(new Shape(1), DType.F16)),
            ("z", Tensor.Zeros(new Shape(1), DType.I64)),
            ("m", Tensor.Zeros(new Shape(1), DType.F32)),
            ("\uE000", Tensor.Zeros(new Shape(1), DType.I32)), // U+E000 sorts before U+10000 in UTF-16 but after it in UTF-8
            ("\U00010000", Tensor.Zeros(new Shape(1), DType.I32)),
        };
        string path = _dir.File("o.safetensors");

        SafeTensorsWriter.Write(path, tensors);
        using var file = SafeTensorsFile.Open(path);

        Assert.Equal(new[] { "z", "m", "\uE000", "\U00010000", "a", "b" }, file.Tensors.Select(t => t.Name));
        Assert.Equal(0, file.Header.DataOffset % 8);
        string header = Encoding.UTF8.GetString(File.ReadAllBytes(path), 8, (int)file.Header.HeaderLength);
        Assert.Matches("^\\{.*\\} *$", header);
    }

    [Fact]
    public void Write_LargeTensor_BitExact()
    {
        var t = RandomTensor(DType.F32, [1024, 1024], 42); // 4 MiB
        string path = _dir.File("large.safetensors");

        SafeTensorsWriter.Write(path, [("big", t)]);
        using var file = SafeTensorsFile.Open(path);

        Assert.Equal(BytesOf(t), BytesOf(file.GetTensor("big")));
    }

    [Fact]
    public void Write_NonContiguousView_Materialized()
    {
        var t = Tensor.FromArray(new float[] { 1, 2, 3, 4, 5, 6 }, new Shape(2, 3)).Transpose(0, 1);
        string path = _dir.File("view.safetensors");

        SafeTensorsWriter.Write(path, [("t", t)]);
        using var file = SafeTensorsFile.Open(path);

        Assert.Equal(new Shape(3, 2), file.GetTensor("t").Shape);
        Assert.Equal(new float[] { 1, 4, 2, 5, 3, 6 }, file.GetTensor("t").ToArray());
    }

    [Fact]
    public void GetTensor_F32_IsZeroCopyViewOfTheMap()
    {
        string path = _dir.File("z.safetensors");
        SafeTensorsWriter.Write(path, [("a", Tensor.Arange(10)), ("b", RandomTensor(DType.BF16, [4], 1))]);

        using var file = SafeTensorsFile.Open(path);
        var a = file.GetTensor("a");
        var b = file.GetTensor("b");

        Assert.Same(file.Storage, a.Storage);
        Assert.Same(file.Storage, b.Storage);
        Assert.True(a.Storage.IsReadOnly);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (float)i), a.ToArray());
        Assert.Equal(DType.BF16, b.DType); // kept as stored; To(F32) converts on demand
        Assert.Equal(DType.F32, file.GetTensorAsF32("b").DType);
    }

    [Fact]
    public void GetTensor_AfterDispose_ThrowsObjectDisposed()
    {
        string path = _dir.File("d.safetensors");
        SafeTensorsWriter.Write(path, [("a", Tensor.Arange(4))]);
        var file = SafeTensorsFile.Open(path);
        file.Dispose();

        Assert.Throws<ObjectDisposedException>(() => file.GetTensor("a"));
    }

    public static TheoryData<SafeTensorsDType> AllDTypes()
    {
        var data = new TheoryData<SafeTensorsDType>();
        foreach (var d in Enum.GetValues<SafeTensorsDType>())
        {
            data.Add(d);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(AllDTypes))]
    public void WriteRaw_EveryFormatDType_BitExact(SafeTensorsDType dtype)
    {
        // 8 elements fill whole bytes for every bit width (4, 6, 8, ..., 64).
        var bytes = new byte[8 * dtype.BitSize() / 8];
        new Random((int)dtype).NextBytes(bytes);
        var scalarBytes = dtype.BitSize() % 8 == 0 ? new byte[dtype.BitSize() / 8] : null;
        var raw = new List<SafeTensorsRawTensor> { new("x", dtype, [2, 4], bytes), new("empty", dtype, [0, 3], Array.Empty<byte>()) };
        if (scalarBytes is not null)
        {
            raw.Add(new("s", dtype, [], scalarBytes));
        }

        string path = _dir.File("raw.safetensors");

        SafeTensorsWriter.WriteRaw(path, raw);
        using var file = SafeTensorsFile.Open(path);

        Assert.Equal(dtype, file.GetInfo("x").DType);
        Assert.Equal(bytes, file.GetBytes("x").ToArray());
        Assert.Equal(0, file.GetBytes("empty").Length);
        if (scalarBytes is not null)
        {
            Assert.Empty(file.GetInfo("s").Shape);
        }
    }

    [Theory]
    [InlineData(SafeTensorsDType.U8, new byte[] { 0, 7, 255 }, new float[] { 0, 7, 255 })]
    [InlineData(SafeTensorsDType.I8, new byte[] { 0, 7, 255 }, new float[] { 0, 7, -1 })]
    [InlineData(SafeTensorsDType.BOOL, new byte[] { 0, 1, 1 }, new float[] { 0, 1, 1 })]
    [InlineData(SafeTensorsDType.F8_E4M3, new byte[] { 0x7E, 0x01, 0xB8 }, new float[] { 448, 0.001953125f, -1 })] // max, min subnormal 2^-9, -1
    [InlineData(SafeTensorsDType.F8_E5M2, new byte[] { 0x7B, 0x3C, 0x7C }, new float[] { 57344, 1, float.PositiveInfinity })]
    [InlineData(SafeTensorsDType.F8_E8M0, new byte[] { 127, 128, 0 }, new float[] { 1, 2, 5.877472e-39f })] // 2^-127 is subnormal
    public void GetTensorAsF32_NarrowDTypes_DecodedExactly(SafeTensorsDType dtype, byte[] bytes, float[] expected)
    {
        string path = _dir.File("narrow.safetensors");
        SafeTensorsWriter.WriteRaw(path, [new("x", dtype, [3], bytes)]);
        using var file = SafeTensorsFile.Open(path);

        var t = file.GetTensorAsF32("x");

        Assert.Equal(expected, t.ToArray());
    }

    [Fact]
    public void GetTensorAsF32_WideDTypes_Decoded()
    {
        var f64 = MemoryMarshal.AsBytes(new double[] { 1.5, -2.25 }.AsSpan()).ToArray();
        var i16 = MemoryMarshal.AsBytes(new short[] { -3, 300 }.AsSpan()).ToArray();
        var u64 = MemoryMarshal.AsBytes(new ulong[] { 5, 1UL << 40 }.AsSpan()).ToArray();
        string path = _dir.File("wide.safetensors");
        SafeTensorsWriter.WriteRaw(path, [new("d", SafeTensorsDType.F64, [2], f64), new("s", SafeTensorsDType.I16, [2], i16), new("u", SafeTensorsDType.U64, [2], u64)]);
        using var file = SafeTensorsFile.Open(path);

        Assert.Equal(new float[] { 1.5f, -2.25f }, file.GetTensorAsF32("d").ToArray());
        Assert.Equal(new float[] { -3, 300 }, file.GetTensorAsF32("s").ToArray());
        Assert.Equal(new float[] { 5, 1UL << 40 }, file.GetTensorAsF32("u").ToArray());
    }

    [Fact]
    public void GetTensor_DTypeWithoutTensorType_ErrorNamesDType()
    {
        string path = _dir.File("u8.safetensors");
        SafeTensorsWriter.WriteRaw(path, [new("q", SafeTensorsDType.U8, [2], new byte[2]), new("f4", SafeTensorsDType.F4, [2], new byte[1])]);
        using var file = SafeTensorsFile.Open(path);

        var direct = Assert.Throws<SafeTensorsException>(() => file.GetTensor("q"));
        var convert = Assert.Throws<SafeTensorsException>(() => file.GetTensorAsF32("f4"));

        Assert.Equal(SafeTensorsErrorKind.UnsupportedDType, direct.Kind);
        Assert.Contains("U8", direct.Message, StringComparison.Ordinal);
        Assert.Contains("GetTensorAsF32", direct.Message, StringComparison.Ordinal);
        Assert.Equal(SafeTensorsErrorKind.UnsupportedDType, convert.Kind);
        Assert.Contains("F4", convert.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GetTensor_MisalignedForeignFile_CopiedCorrectly()
    {
        // A U8 tensor first pushes the F32 tensor to data offset 1: legal, but not mappable as floats in place.
        var data = new byte[5];
        data[0] = 9;
        BitConverter.TryWriteBytes(data.AsSpan(1), 3.5f);
        string header = "{\"u\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"f\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[1,5]}}";
        string path = _dir.Write("mis.safetensors", TempDir.Build(Encoding.UTF8.GetBytes(header), data));

        using var file = SafeTensorsFile.Open(path);

        Assert.Equal([3.5f], file.GetTensor("f").ToArray());
    }

    [Fact]
    public void Write_DuplicateOrReservedName_Rejected()
    {
        string path = _dir.File("dup.safetensors");

        var dup = Assert.Throws<SafeTensorsException>(() => SafeTensorsWriter.Write(path, [("a", Tensor.Arange(2)), ("a", Tensor.Arange(3))]));
        var reserved = Assert.Throws<SafeTensorsException>(() => SafeTensorsWriter.Write(path, [("__metadata__", Tensor.Arange(2))]));

        Assert.Equal("a", dup.TensorName);
        Assert.Equal(SafeTensorsErrorKind.InvalidWriteRequest, reserved.Kind);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void Write_LoneSurrogateInNameOrMetadata_Rejected()
    {
        string path = _dir.File("s.safetensors");

        var name = Assert.Throws<SafeTensorsException>(() => SafeTensorsWriter.Write(path, [("a\uD800", Tensor.Arange(2))]));
        var meta = Assert.Throws<SafeTensorsException>(() => SafeTensorsWriter.Write(path, [], new Dictionary<string, string> { ["k"] = "\uDC00" }));

        Assert.Equal(SafeTensorsErrorKind.InvalidWriteRequest, name.Kind);
        Assert.Equal(SafeTensorsErrorKind.InvalidWriteRequest, meta.Kind);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void WriteRaw_WrongByteLength_Rejected()
    {
        var error = Assert.Throws<SafeTensorsException>(() =>
            SafeTensorsWriter.WriteRaw(_dir.File("bad.safetensors"), [new("x", SafeTensorsDType.F32, [2], new byte[7])]));

        Assert.Equal("x", error.TensorName);
    }

    [Fact]
    public void Write_HeaderOverCap_HeaderTooLargeAndNoFileLeft()
    {
        // test_invalid_header_size_serialization: metadata alone exceeds the 100 MB cap.
        var metadata = new Dictionary<string, string> { ["very_large_metadata"] = new string('a', (int)SafeTensorsHeader.MaxHeaderSize) };
        string path = _dir.File("big.safetensors");

        var error = Assert.Throws<SafeTensorsException>(() => SafeTensorsWriter.Write(path, [], metadata));

        Assert.Equal(SafeTensorsErrorKind.HeaderTooLarge, error.Kind);
        Assert.Empty(Directory.GetFiles(_dir.Path));
    }

    [Fact]
    public void Write_OverFileThatIsMapped_OldMappingStaysValidAndNoTempLeft()
    {
        string path = _dir.File("w.safetensors");
        SafeTensorsWriter.Write(path, [("a", Tensor.Arange(4))]);
        using var old = SafeTensorsFile.Open(path);
        var before = old.GetTensor("a");

        SafeTensorsWriter.Write(path, [("a", Tensor.Full(new Shape(4), 7f))]);
        using var fresh = SafeTensorsFile.Open(path);

        Assert.Equal(new float[] { 0, 1, 2, 3 }, before.ToArray());
        Assert.Equal(new float[] { 7, 7, 7, 7 }, fresh.GetTensor("a").ToArray());
        Assert.Equal(new[] { path }, Directory.GetFiles(_dir.Path));
    }
}
