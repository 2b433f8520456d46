using Sharpformer.IO.SafeTensors;

namespace Sharpformer.IO.Tests.SafeTensors;

/// <summary>
/// Every negative (and the positive edge) vector of upstream safetensors' <c>tensor.rs</c> tests, byte for byte, plus the
/// serializer's byte-exact goldens. Each rejection must carry the upstream error kind, name the file (and the tensor when
/// one is involved), and allocate nothing in proportion to what the header claims.
/// </summary>
public sealed class UpstreamVectorTests : IDisposable
{
    // Opening maps the file and builds an exception message: a few KB. Anything header-proportional would be far more.
    internal const long AllocationBudget = 64 * 1024;

    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    public static TheoryData<string, string, SafeTensorsErrorKind, string?> Rejected => new()
    {
        // test_header_too_large: the length bytes claim ~2^63.
        { "header_too_large", "<\\x00\\x00\\x00\\x00\\xff\\xff\\xff{\\\"test\\\":{\\\"dtype\\\":\\\"I32\\\",\\\"shape\\\":[2,2],\\\"data_offsets\\\":[0,16]}}" + Zeros(16), SafeTensorsErrorKind.HeaderTooLarge, null },
        // test_header_too_small: an empty file.
        { "header_too_small", "", SafeTensorsErrorKind.HeaderTooSmall, null },
        // test_invalid_header_length: 8 bytes claiming a 60-byte header.
        { "invalid_header_length", "<\\x00\\x00\\x00\\x00\\x00\\x00\\x00", SafeTensorsErrorKind.InvalidHeaderLength, null },
        // test_invalid_header_non_utf8.
        { "non_utf8", "\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\xff", SafeTensorsErrorKind.InvalidHeader, null },
        // test_invalid_header_not_json.
        { "not_json", "\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00{", SafeTensorsErrorKind.InvalidHeaderDeserialization, null },
        // test_metadata_incomplete_buffer (1): trailing polyglot bytes.
        { "polyglot", "<\\x00\\x00\\x00\\x00\\x00\\x00\\x00{\\\"test\\\":{\\\"dtype\\\":\\\"I32\\\",\\\"shape\\\":[2,2],\\\"data_offsets\\\":[0,16]}}" + Zeros(16) + "extra_bogus_data_for_polyglot_file", SafeTensorsErrorKind.MetadataIncompleteBuffer, "test" },
        // test_metadata_incomplete_buffer (2): two data bytes missing.
        { "missing_bytes", "<\\x00\\x00\\x00\\x00\\x00\\x00\\x00{\\\"test\\\":{\\\"dtype\\\":\\\"I32\\\",\\\"shape\\\":[2,2],\\\"data_offsets\\\":[0,16]}}" + Zeros(14), SafeTensorsErrorKind.MetadataIncompleteBuffer, "test" },
        // test_invalid_info: shape [2,2] I32 in 4 bytes.
        { "invalid_info", "<\\x00\\x00\\x00\\x00\\x00\\x00\\x00{\\\"test\\\":{\\\"dtype\\\":\\\"I32\\\",\\\"shape\\\":[2,2],\\\"data_offsets\\\":[0, 4]}}", SafeTensorsErrorKind.TensorInvalidInfo, "test" },
        // test_validation_overflow (1): the element count overflows.
        { "overflow_shape", "O\\x00\\x00\\x00\\x00\\x00\\x00\\x00{\\\"test\\\":{\\\"dtype\\\":\\\"I32\\\",\\\"shape\\\":[2,18446744073709551614],\\\"data_offsets\\\":[0,16]}}" + Zeros(16), SafeTensorsErrorKind.ValidationOverflow, "test" },
        // test_validation_overflow (2): the byte count overflows.
        { "overflow_bytes", "N\\x00\\x00\\x00\\x00\\x00\\x00\\x00{\\\"test\\\":{\\\"dtype\\\":\\\"I32\\\",\\\"shape\\\":[2,9223372036854775807],\\\"data_offsets\\\":[0,16]}}" + Zeros(16), SafeTensorsErrorKind.ValidationOverflow, "test" },
    };

    [Theory]
    [MemberData(nameof(Rejected))]
    public void Open_UpstreamNegativeVector_RejectedWithNamedErrorAndNoBigAllocation(string name, string literal, SafeTensorsErrorKind kind, string? tensor)
    {
        string path = _dir.Write(name + ".safetensors", TempDir.RustBytes(literal));

        var (error, allocated) = OpenExpectingError(path);

        Assert.Equal(kind, error.Kind);
        Assert.Equal(path, error.FileName);
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.Equal(tensor, error.TensorName);
        Assert.True(allocated < AllocationBudget, $"allocated {allocated} bytes");
    }

    [Fact]
    public void Open_JsonAttackTenTensorsAtSameOffsets_InvalidOffsetNamingATensor()
    {
        // test_json_attack: ten F32 [2,2] entries all at [0,16] over 16 bytes of data.
        var entries = Enumerable.Range(0, 10).Select(i => $"\"weight_{i}\":{{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}");
        string path = _dir.Write("attack.safetensors", TempDir.Build("{" + string.Join(",", entries) + "}", 16));

        var (error, _) = OpenExpectingError(path);

        Assert.Equal(SafeTensorsErrorKind.InvalidOffset, error.Kind);
        Assert.StartsWith("weight_", error.TensorName, StringComparison.Ordinal);
        Assert.Contains("overlap", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("U8", "1152921504606846976", SafeTensorsErrorKind.MetadataIncompleteBuffer)] // 2^60 bytes claimed, 16 present
    [InlineData("F32", "4611686018427387904", SafeTensorsErrorKind.ValidationOverflow)] // 2^65 bits: overflows like upstream
    public void Open_HeaderClaims2To60Elements_FailsFastWithoutAllocating(string dtype, string end, SafeTensorsErrorKind kind)
    {
        // A 2^60-element tensor claimed over 16 real bytes: must fail on arithmetic, never by trying to reserve memory.
        string header = $"{{\"w\":{{\"dtype\":\"{dtype}\",\"shape\":[1073741824,1073741824],\"data_offsets\":[0,{end}]}}}}";
        string path = _dir.Write("huge.safetensors", TempDir.Build(header, 16));

        var (error, allocated) = OpenExpectingError(path);

        Assert.Equal(kind, error.Kind);
        Assert.Equal("w", error.TensorName);
        Assert.True(allocated < AllocationBudget, $"allocated {allocated} bytes");
    }

    [Fact]
    public void Open_EmptyShape_IsRank0Scalar()
    {
        // test_empty_shapes_allowed.
        string path = _dir.Write("scalar.safetensors", TempDir.RustBytes("8\\x00\\x00\\x00\\x00\\x00\\x00\\x00{\\\"test\\\":{\\\"dtype\\\":\\\"I32\\\",\\\"shape\\\":[],\\\"data_offsets\\\":[0,4]}}\\x00\\x00\\x00\\x00"));

        using var file = SafeTensorsFile.Open(path);
        var t = file.GetTensor("test");

        Assert.Equal(0, t.Rank);
        Assert.Equal([0], t.ToArray<int>());
    }

    [Fact]
    public void Open_ZeroSizedTensor_LoadsEmpty()
    {
        // test_zero_sized_tensor.
        string path = _dir.Write("zero.safetensors", TempDir.RustBytes("<\\x00\\x00\\x00\\x00\\x00\\x00\\x00{\\\"test\\\":{\\\"dtype\\\":\\\"I32\\\",\\\"shape\\\":[2,0],\\\"data_offsets\\\":[0, 0]}}"));

        using var file = SafeTensorsFile.Open(path);
        var t = file.GetTensor("test");

        Assert.Equal(new long[] { 2, 0 }, file.GetInfo("test").Shape);
        Assert.Equal(0, t.ElementCount);
    }

    [Fact]
    public void Open_Deserialization_ReadsI32Values()
    {
        // test_deserialization.
        string path = _dir.Write("d.safetensors", TempDir.RustBytes("<\\x00\\x00\\x00\\x00\\x00\\x00\\x00{\\\"test\\\":{\\\"dtype\\\":\\\"I32\\\",\\\"shape\\\":[2,2],\\\"data_offsets\\\":[0,16]}}" + Zeros(16)));

        using var file = SafeTensorsFile.Open(path);

        Assert.Equal(new[] { "test" }, file.Tensors.Select(t => t.Name));
        Assert.Equal(new[] { 0, 0, 0, 0 }, file.GetTensor("test").ToArray<int>());
    }

    [Theory]
    [InlineData("\\x06\\x00\\x00\\x00\\x00\\x00\\x00\\x00{}\\x0D\\x20\\x09\\x0A")] // test_whitespace_padded_header
    [InlineData("\\x06\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x09\\x0A{}\\x0D\\x20")] // test_whitespace_leading_padded_header
    public void Open_WhitespacePaddedHeader_Accepted(string literal)
    {
        string path = _dir.Write("ws.safetensors", TempDir.RustBytes(literal));

        using var file = SafeTensorsFile.Open(path);

        Assert.Empty(file.Tensors);
    }

    public static TheoryData<string, int[]> SerializerGoldens => new()
    {
        // test_serialization: F32 [1,2,3] "attn.0" = 0..5.
        { "serialization", [64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64] },
        // test_serialization_forced_alignement: F32 [1,1,2,3] "attn0" needs 7 pad spaces.
        { "forced_alignment", [72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32, 32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64] },
        // test_serialization_fp4: F4 [1,2] "attn.0" in one byte.
        { "fp4", [64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34, 70, 52, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 49, 93, 125, 125, 32, 32, 32, 32, 0] },
        // test_empty: no tensors.
        { "empty", [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32] },
        // test_empty with metadata {"framework": "pt"}.
        { "empty_metadata", [40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95, 95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112, 116, 34, 125, 125, 32, 32, 32, 32, 32] },
    };

    [Theory]
    [MemberData(nameof(SerializerGoldens))]
    public void WriteRaw_UpstreamSerializerGolden_ByteExact(string name, int[] expected)
    {
        var floats = new float[] { 0, 1, 2, 3, 4, 5 };
        byte[] f32 = new byte[24];
        Buffer.BlockCopy(floats, 0, f32, 0, 24);
        var (tensors, metadata) = name switch
        {
            "serialization" => (new[] { new SafeTensorsRawTensor("attn.0", SafeTensorsDType.F32, [1, 2, 3], f32) }, null),
            "forced_alignment" => (new[] { new SafeTensorsRawTensor("attn0", SafeTensorsDType.F32, [1, 1, 2, 3], f32) }, null),
            "fp4" => (new[] { new SafeTensorsRawTensor("attn.0", SafeTensorsDType.F4, [1, 2], new byte[1]) }, null),
            "empty" => (Array.Empty<SafeTensorsRawTensor>(), null),
            _ => (Array.Empty<SafeTensorsRawTensor>(), new Dictionary<string, string> { ["framework"] = "pt" }),
        };
        string path = _dir.File(name + ".safetensors");

        SafeTensorsWriter.WriteRaw(path, tensors, metadata);

        Assert.Equal(expected.Select(b => (byte)b).ToArray(), File.ReadAllBytes(path));
        using var reread = SafeTensorsFile.Open(path);
        Assert.Equal(tensors.Length, reread.Tensors.Count);
    }

    internal static (SafeTensorsException Error, long Allocated) OpenExpectingError(string path)
    {
        // Warm the code paths once so JIT and type loading do not count against the measured call.
        try
        {
            SafeTensorsFile.Open(path).Dispose();
        }
        catch (SafeTensorsException)
        {
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        SafeTensorsException? error = null;
        try
        {
            SafeTensorsFile.Open(path).Dispose();
        }
        catch (SafeTensorsException e)
        {
            error = e;
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.NotNull(error);
        return (error, allocated);
    }

    private static string Zeros(int n) => string.Concat(Enumerable.Repeat("\\x00", n));
}
