using System.Text;
using Sharpformer.IO.SafeTensors;

namespace Sharpformer.IO.Tests.SafeTensors;

/// <summary>Header rules beyond the upstream vectors: structure, duplicates, metadata, dtypes, offsets.</summary>
public sealed class ValidationTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string T(string name, string dtype, string shape, long begin, long end) =>
        $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":[{begin},{end}]}}";

    public static TheoryData<string, string, int, SafeTensorsErrorKind, string?> Bad => new()
    {
        { "array_root", "[]", 0, SafeTensorsErrorKind.InvalidHeaderDeserialization, null },
        { "string_root", "\"x\"", 0, SafeTensorsErrorKind.InvalidHeaderDeserialization, null },
        { "trailing_garbage", "{}x", 0, SafeTensorsErrorKind.InvalidHeaderDeserialization, null },
        { "two_objects", "{}{}", 0, SafeTensorsErrorKind.InvalidHeaderDeserialization, null },
        { "trailing_comma", "{" + T("a", "F32", "[1]", 0, 4) + ",}", 4, SafeTensorsErrorKind.InvalidHeaderDeserialization, "a" },
        { "nul_padding", "{}\0\0", 0, SafeTensorsErrorKind.InvalidHeaderDeserialization, null },
        { "duplicate_tensor", "{" + T("a", "F32", "[1]", 0, 4) + "," + T("a", "U8", "[4]", 0, 4) + "}", 4, SafeTensorsErrorKind.DuplicateName, "a" },
        { "duplicate_metadata", "{\"__metadata__\":{\"a\":\"1\"},\"__metadata__\":{\"a\":\"2\"}}", 0, SafeTensorsErrorKind.DuplicateName, null },
        { "duplicate_metadata_key", "{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", 0, SafeTensorsErrorKind.DuplicateName, null },
        { "duplicate_field", "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, SafeTensorsErrorKind.DuplicateName, "a" },
        { "metadata_number", "{\"__metadata__\":{\"a\":1}}", 0, SafeTensorsErrorKind.InvalidHeaderDeserialization, null },
        { "metadata_array", "{\"__metadata__\":[\"a\"]}", 0, SafeTensorsErrorKind.InvalidHeaderDeserialization, null },
        { "metadata_nested", "{\"__metadata__\":{\"a\":{\"b\":\"c\"}}}", 0, SafeTensorsErrorKind.InvalidHeaderDeserialization, null },
        { "unknown_dtype", "{" + T("a", "F128", "[1]", 0, 16) + "}", 16, SafeTensorsErrorKind.UnknownDType, "a" },
        { "lowercase_dtype", "{" + T("a", "f32", "[1]", 0, 4) + "}", 4, SafeTensorsErrorKind.UnknownDType, "a" },
        { "missing_dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, SafeTensorsErrorKind.InvalidHeaderDeserialization, "a" },
        { "missing_shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, SafeTensorsErrorKind.InvalidHeaderDeserialization, "a" },
        { "missing_offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, SafeTensorsErrorKind.InvalidHeaderDeserialization, "a" },
        { "entry_not_object", "{\"a\":[1,2]}", 0, SafeTensorsErrorKind.InvalidHeaderDeserialization, "a" },
        { "negative_dim", "{" + T("a", "F32", "[-1]", 0, 4) + "}", 4, SafeTensorsErrorKind.InvalidHeaderDeserialization, "a" },
        { "fractional_dim", "{" + T("a", "F32", "[1.5]", 0, 4) + "}", 4, SafeTensorsErrorKind.InvalidHeaderDeserialization, "a" },
        { "dim_too_big", "{" + T("a", "F32", "[18446744073709551616]", 0, 4) + "}", 4, SafeTensorsErrorKind.InvalidHeaderDeserialization, "a" },
        { "shape_string", "{\"a\":{\"dtype\":\"F32\",\"shape\":\"[1]\",\"data_offsets\":[0,4]}}", 4, SafeTensorsErrorKind.InvalidHeaderDeserialization, "a" },
        { "three_offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4, SafeTensorsErrorKind.InvalidHeaderDeserialization, "a" },
        { "one_offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}}", 4, SafeTensorsErrorKind.InvalidHeaderDeserialization, "a" },
        { "offset_overflow", "{" + T("a", "U8", "[1]", 0, -1).Replace("-1", "18446744073709551615", StringComparison.Ordinal) + "}", 1, SafeTensorsErrorKind.ValidationOverflow, "a" },
        { "gap_at_start", "{" + T("a", "F32", "[1]", 4, 8) + "}", 8, SafeTensorsErrorKind.InvalidOffset, "a" },
        { "gap_between", "{" + T("a", "F32", "[1]", 0, 4) + "," + T("b", "F32", "[1]", 8, 12) + "}", 12, SafeTensorsErrorKind.InvalidOffset, "b" },
        { "overlap", "{" + T("a", "F32", "[2]", 0, 8) + "," + T("b", "F32", "[1]", 4, 8) + "}", 8, SafeTensorsErrorKind.InvalidOffset, "b" },
        { "end_before_begin", "{" + T("a", "F32", "[1]", 0, 4) + "," + T("b", "F32", "[0]", 4, 0) + "}", 4, SafeTensorsErrorKind.InvalidOffset, "b" },
        { "too_short_for_shape", "{" + T("a", "F32", "[3]", 0, 8) + "}", 8, SafeTensorsErrorKind.TensorInvalidInfo, "a" },
        { "too_long_for_shape", "{" + T("a", "BF16", "[3]", 0, 8) + "}", 8, SafeTensorsErrorKind.TensorInvalidInfo, "a" },
        { "subbyte_misaligned", "{" + T("a", "F4", "[3]", 0, 2) + "}", 2, SafeTensorsErrorKind.MisalignedSlice, "a" },
        { "data_past_end", "{" + T("a", "F32", "[4]", 0, 16) + "}", 12, SafeTensorsErrorKind.MetadataIncompleteBuffer, "a" },
        { "lone_surrogate_name", "{\"\\ud800\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, SafeTensorsErrorKind.InvalidHeaderDeserialization, null },
        { "lone_surrogate_metadata", "{\"__metadata__\":{\"k\":\"\\udc00\"}}", 0, SafeTensorsErrorKind.InvalidHeaderDeserialization, null },
        { "deep_nesting", "{\"a\":{\"x\":" + new string('[', 100) + new string(']', 100) + "}}", 0, SafeTensorsErrorKind.InvalidHeaderDeserialization, "a" },
    };

    [Theory]
    [MemberData(nameof(Bad))]
    public void Open_MalformedHeader_RejectedWithNamedError(string name, string header, int dataBytes, SafeTensorsErrorKind kind, string? tensor)
    {
        string path = _dir.Write(name + ".safetensors", TempDir.Build(header, dataBytes));

        var (error, allocated) = UpstreamVectorTests.OpenExpectingError(path);

        Assert.Equal(kind, error.Kind);
        Assert.Equal(tensor, error.TensorName);
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.True(allocated < UpstreamVectorTests.AllocationBudget, $"allocated {allocated} bytes");
        if (tensor is not null)
        {
            Assert.Contains($"'{tensor}'", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Open_UnknownFieldsAndNullMetadata_Ignored()
    {
        // Upstream's deserializer ignores unknown fields and reads "__metadata__": null as "none".
        string header = "{\"__metadata__\":null,\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":{\"k\":[1,2]}}}";
        string path = _dir.Write("extra.safetensors", TempDir.Build(header, 4));

        using var file = SafeTensorsFile.Open(path);

        Assert.Empty(file.Metadata);
        Assert.Equal([0f], file.GetTensor("a").ToArray());
    }

    [Fact]
    public void Open_TensorsListedOutOfOrder_SortedByOffset()
    {
        string header = "{" + T("b", "U8", "[2]", 2, 4) + "," + T("a", "U8", "[2]", 0, 2) + "}";
        var bytes = TempDir.Build(Encoding.UTF8.GetBytes(header), [1, 2, 3, 4]);
        string path = _dir.Write("order.safetensors", bytes);

        using var file = SafeTensorsFile.Open(path);

        Assert.Equal(new[] { "a", "b" }, file.Tensors.Select(t => t.Name));
        Assert.Equal(new byte[] { 3, 4 }, file.GetBytes("b").ToArray());
    }

    [Fact]
    public void Open_FileShorterThan8Bytes_HeaderTooSmall()
    {
        string path = _dir.Write("short.safetensors", [1, 2, 3]);

        var (error, _) = UpstreamVectorTests.OpenExpectingError(path);

        Assert.Equal(SafeTensorsErrorKind.HeaderTooSmall, error.Kind);
    }

    [Fact]
    public void GetTensor_UnknownName_TensorNotFoundSuggestsNearMiss()
    {
        string path = _dir.Write("n.safetensors", TempDir.Build("{" + T("model.w", "F32", "[1]", 0, 4) + "}", 4));
        using var file = SafeTensorsFile.Open(path);

        var error = Assert.Throws<SafeTensorsException>(() => file.GetTensor("w"));

        Assert.Equal(SafeTensorsErrorKind.TensorNotFound, error.Kind);
        Assert.Contains("model.w", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_InMemoryBytes_MatchesFileReader()
    {
        var bytes = TempDir.Build("{" + T("a", "I64", "[2]", 0, 16) + "}", 16);

        var header = SafeTensorsHeader.Parse(bytes, "memory");

        Assert.Equal(16, header.DataLength);
        Assert.True(header.TryGetInfo("a", out var info));
        Assert.Equal(SafeTensorsDType.I64, info.DType);
    }

    [Fact]
    public void ReadHeader_ValidFile_ReadsWithoutMapping()
    {
        string path = _dir.Write("h.safetensors", TempDir.Build("{\"__metadata__\":{\"format\":\"pt\"}," + T("a", "F16", "[2,2]", 0, 8) + "}", 8));

        var header = SafeTensorsFile.ReadHeader(path);

        Assert.Equal("pt", header.Metadata["format"]);
        Assert.Equal(new long[] { 2, 2 }, header.Tensors[0].Shape);
    }

    [Fact]
    public void ReadHeader_LengthBeyondFile_InvalidHeaderLength()
    {
        var bytes = new byte[16];
        bytes[0] = 200;
        string path = _dir.Write("h.safetensors", bytes);

        var error = Assert.Throws<SafeTensorsException>(() => SafeTensorsFile.ReadHeader(path));

        Assert.Equal(SafeTensorsErrorKind.InvalidHeaderLength, error.Kind);
    }
}
