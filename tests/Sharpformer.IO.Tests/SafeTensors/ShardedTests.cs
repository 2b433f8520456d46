using System.Text;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Tensors;

namespace Sharpformer.IO.Tests.SafeTensors;

/// <summary>Sharded checkpoints: write with a size cap, read through the index, reject bad indexes; folder loading.</summary>
public sealed class ShardedTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static List<(string, Tensor)> Model() =>
    [
        ("embed.weight", Tensor.RandomNormal(new Shape(16, 8), new Random(1))), // 512 bytes
        ("layer.0.weight", Tensor.RandomNormal(new Shape(8, 8), new Random(2))), // 256
        ("layer.0.bias", Tensor.RandomNormal(new Shape(8), new Random(3)).To(DType.BF16)), // 16
        ("layer.1.weight", Tensor.RandomNormal(new Shape(8, 8), new Random(4))), // 256
        ("head.weight", Tensor.RandomNormal(new Shape(4, 8), new Random(5))), // 128
    ];

    [Fact]
    public void WriteSharded_ThenOpen_BitExactAcrossShards()
    {
        var model = Model();

        var files = SafeTensorsWriter.WriteSharded(_dir.Path, model, maxShardBytes: 300, new Dictionary<string, string> { ["format"] = "pt" });
        using var source = SafeTensorsLoader.Open(_dir.Path);

        // 512 alone (over the cap), 256+16, 256, 128 → 4 shards + index.
        Assert.Equal(
            new[] { "model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors", "model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors", "model.safetensors.index.json" },
            files.Select(Path.GetFileName));
        var sharded = Assert.IsType<ShardedSafeTensors>(source);
        Assert.Equal(4, sharded.Shards.Count);
        Assert.Equal(512 + 256 + 16 + 256 + 128, sharded.TotalSize);
        Assert.Equal("pt", sharded.Metadata["format"]);
        Assert.Equal(model.Count, source.Tensors.Count);
        foreach (var (name, t) in model)
        {
            Assert.Equal(t.DType, source.GetTensor(name).DType);
            Assert.Equal(t.ToArray(), source.GetTensor(name).ToArray());
        }
    }

    [Fact]
    public void WriteSharded_AllFitInOneShard_WritesModelSafetensorsOnly()
    {
        var files = SafeTensorsWriter.WriteSharded(_dir.Path, Model(), maxShardBytes: 1 << 20);

        Assert.Equal(new[] { "model.safetensors" }, files.Select(Path.GetFileName));
        using var source = SafeTensorsLoader.Open(_dir.Path);
        Assert.IsType<SafeTensorsFile>(source);
    }

    [Fact]
    public void WriteSharded_IndexFormat_MatchesHuggingFaceLayout()
    {
        SafeTensorsWriter.WriteSharded(_dir.Path, Model(), maxShardBytes: 600);

        var (map, total) = ShardedSafeTensors.ParseIndex(File.ReadAllBytes(_dir.File("model.safetensors.index.json")), "index");

        Assert.Equal(1168, total);
        Assert.Equal(new[] { "embed.weight", "head.weight", "layer.0.bias", "layer.0.weight", "layer.1.weight" }, map.Select(kv => kv.Key));
        Assert.Equal("model-00001-of-00003.safetensors", map[0].Value);
    }

    private string WriteIndexWithShard(string indexJson)
    {
        SafeTensorsWriter.Write(_dir.File("model-00001-of-00001.safetensors"), [("a", Tensor.Arange(3))]);
        string index = _dir.File("model.safetensors.index.json");
        File.WriteAllText(index, indexJson);
        return index;
    }

    public static TheoryData<string, string, SafeTensorsErrorKind, string?> BadIndexes => new()
    {
        { "not_json", "{", SafeTensorsErrorKind.InvalidIndex, null },
        { "array", "[]", SafeTensorsErrorKind.InvalidIndex, null },
        { "no_weight_map", "{\"metadata\":{}}", SafeTensorsErrorKind.InvalidIndex, null },
        { "empty_weight_map", "{\"weight_map\":{}}", SafeTensorsErrorKind.InvalidIndex, null },
        { "value_not_string", "{\"weight_map\":{\"a\":1}}", SafeTensorsErrorKind.InvalidIndex, "a" },
        { "duplicate_tensor", "{\"weight_map\":{\"a\":\"model-00001-of-00001.safetensors\",\"a\":\"model-00001-of-00001.safetensors\"}}", SafeTensorsErrorKind.DuplicateName, "a" },
        { "duplicate_weight_map", "{\"weight_map\":{\"a\":\"model-00001-of-00001.safetensors\"},\"weight_map\":{}}", SafeTensorsErrorKind.InvalidIndex, null },
        { "total_size_string", "{\"metadata\":{\"total_size\":\"12\"},\"weight_map\":{\"a\":\"model-00001-of-00001.safetensors\"}}", SafeTensorsErrorKind.InvalidIndex, null },
        { "total_size_negative", "{\"metadata\":{\"total_size\":-1},\"weight_map\":{\"a\":\"model-00001-of-00001.safetensors\"}}", SafeTensorsErrorKind.InvalidIndex, null },
        { "missing_shard", "{\"weight_map\":{\"a\":\"model-00002-of-00002.safetensors\"}}", SafeTensorsErrorKind.InvalidIndex, "a" },
        { "tensor_not_in_shard", "{\"weight_map\":{\"b\":\"model-00001-of-00001.safetensors\"}}", SafeTensorsErrorKind.InvalidIndex, "b" },
        { "parent_escape", "{\"weight_map\":{\"a\":\"../model-00001-of-00001.safetensors\"}}", SafeTensorsErrorKind.PathEscape, "a" },
        { "dotdot", "{\"weight_map\":{\"a\":\"..\"}}", SafeTensorsErrorKind.PathEscape, "a" },
        { "absolute", "{\"weight_map\":{\"a\":\"/etc/passwd\"}}", SafeTensorsErrorKind.PathEscape, "a" },
        { "subfolder", "{\"weight_map\":{\"a\":\"sub/x.safetensors\"}}", SafeTensorsErrorKind.PathEscape, "a" },
        { "backslash", "{\"weight_map\":{\"a\":\"..\\\\x.safetensors\"}}", SafeTensorsErrorKind.PathEscape, "a" },
        { "drive", "{\"weight_map\":{\"a\":\"C:x.safetensors\"}}", SafeTensorsErrorKind.PathEscape, "a" },
        { "nul", "{\"weight_map\":{\"a\":\"x\\u0000.safetensors\"}}", SafeTensorsErrorKind.PathEscape, "a" },
        { "empty_name", "{\"weight_map\":{\"a\":\"\"}}", SafeTensorsErrorKind.PathEscape, "a" },
    };

    [Theory]
    [MemberData(nameof(BadIndexes))]
    public void Open_BadIndex_RejectedWithNamedError(string name, string json, SafeTensorsErrorKind kind, string? tensor)
    {
        _ = name;
        string index = WriteIndexWithShard(json);

        var error = Assert.Throws<SafeTensorsException>(() => ShardedSafeTensors.Open(index));

        Assert.Equal(kind, error.Kind);
        Assert.Equal(tensor, error.TensorName);
        Assert.Contains(index, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ParseIndex_InvalidUtf8InsideString_InvalidIndex()
    {
        // Found by the fuzzer: JsonDocument only checks UTF-8 inside strings when they are read, and then throws
        // InvalidOperationException instead of JsonException.
        byte[] json = [.. "{\"metadata\":{\"total_size\":\"m"u8, 0xE3, .. "ds\"}}"u8];

        var error = Assert.Throws<SafeTensorsException>(() => ShardedSafeTensors.ParseIndex(json, "index.json"));

        Assert.Equal(SafeTensorsErrorKind.InvalidIndex, error.Kind);
    }

    [Fact]
    public void ParseIndex_EscapedLoneSurrogate_InvalidIndex()
    {
        var json = Encoding.UTF8.GetBytes("{\"weight_map\":{\"\\ud800\":\"a.safetensors\"}}");

        var error = Assert.Throws<SafeTensorsException>(() => ShardedSafeTensors.ParseIndex(json, "index.json"));

        Assert.Equal(SafeTensorsErrorKind.InvalidIndex, error.Kind);
    }

    [Fact]
    public void Open_ShardSymlinkOutsideFolder_PathEscape()
    {
        using var outside = new TempDir();
        string target = outside.File("evil.safetensors");
        SafeTensorsWriter.Write(target, [("a", Tensor.Arange(3))]);
        File.CreateSymbolicLink(_dir.File("model-00001-of-00001.safetensors"), target);
        string index = _dir.File("model.safetensors.index.json");
        File.WriteAllText(index, "{\"weight_map\":{\"a\":\"model-00001-of-00001.safetensors\"}}");

        var error = Assert.Throws<SafeTensorsException>(() => ShardedSafeTensors.Open(index));

        Assert.Equal(SafeTensorsErrorKind.PathEscape, error.Kind);
    }

    [Fact]
    public void Open_HubCacheSnapshotSymlinkIntoBlobs_Allowed()
    {
        // <repo>/snapshots/<commit>/file -> ../../blobs/<sha>: the Hugging Face cache layout.
        string blobs = Path.Combine(_dir.Path, "blobs");
        string snapshot = Path.Combine(_dir.Path, "snapshots", "0123456789abcdef0123456789abcdef01234567");
        Directory.CreateDirectory(blobs);
        Directory.CreateDirectory(snapshot);
        string blob = Path.Combine(blobs, new string('a', 64));
        SafeTensorsWriter.Write(blob, [("a", Tensor.Arange(3))]);
        File.CreateSymbolicLink(Path.Combine(snapshot, "model-00001-of-00001.safetensors"), Path.Combine("..", "..", "blobs", new string('a', 64)));
        string index = Path.Combine(snapshot, "model.safetensors.index.json");
        File.WriteAllText(index, "{\"weight_map\":{\"a\":\"model-00001-of-00001.safetensors\"}}");

        using var source = ShardedSafeTensors.Open(index);

        Assert.Equal(new float[] { 0, 1, 2 }, source.GetTensor("a").ToArray());
    }

    [Fact]
    public void Open_ShardInvalid_ErrorNamesTheShardFile()
    {
        string shard = _dir.Write("model-00001-of-00001.safetensors", Encoding.UTF8.GetBytes("not a safetensors file"));
        string index = _dir.File("model.safetensors.index.json");
        File.WriteAllText(index, "{\"weight_map\":{\"a\":\"model-00001-of-00001.safetensors\"}}");

        var error = Assert.Throws<SafeTensorsException>(() => ShardedSafeTensors.Open(index));

        Assert.Equal(shard, error.FileName);
    }

    [Fact]
    public void LoaderOpen_FolderWithOnlyPickle_RefusesAndSaysConvert()
    {
        File.WriteAllBytes(_dir.File("pytorch_model.bin"), [0x80, 0x02]);

        var error = Assert.Throws<SafeTensorsException>(() => SafeTensorsLoader.Open(_dir.Path));

        Assert.Equal(SafeTensorsErrorKind.NotFound, error.Kind);
        Assert.Contains("convert to safetensors", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LoaderOpen_FolderWithSeveralUnnamedFiles_AsksWhichOne()
    {
        SafeTensorsWriter.Write(_dir.File("a.safetensors"), [("x", Tensor.Arange(2))]);
        SafeTensorsWriter.Write(_dir.File("b.safetensors"), [("y", Tensor.Arange(2))]);

        var error = Assert.Throws<SafeTensorsException>(() => SafeTensorsLoader.Open(_dir.Path));

        Assert.Equal(SafeTensorsErrorKind.NotFound, error.Kind);
        Assert.Contains("2 .safetensors files", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LoaderOpen_IndexFileOrSingleFilePath_OpensIt()
    {
        SafeTensorsWriter.WriteSharded(_dir.Path, Model(), maxShardBytes: 600);
        string single = _dir.File("single.safetensors");
        SafeTensorsWriter.Write(single, [("x", Tensor.Arange(2))]);

        using var viaIndex = SafeTensorsLoader.Open(_dir.File("model.safetensors.index.json"));
        using var viaFile = SafeTensorsLoader.Open(single);

        Assert.Equal(5, viaIndex.Tensors.Count);
        Assert.True(viaFile.Contains("x"));
    }
}
