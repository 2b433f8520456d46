using Sharpformer.IO.Onnx;

namespace Sharpformer.IO.Tests.Onnx;

public sealed class OnnxReaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpformer-onnx-reader-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // A two-node graph: y = Relu(x · w), with w [2, 3] in raw_data and a Constant node holding an int64 tensor.
    private static byte[] SmallModel(ProtoBuilder? weight = null) => Onnx.Model(Onnx.Graph(
        "small",
        [
            Onnx.Node("MatMul", ["x", "w"], ["xw"]),
            Onnx.Node("Relu", ["xw"], ["y"]),
            Onnx.Node("Constant", [], ["shape"], new ProtoBuilder().String(1, "value").Message(5, Onnx.Tensor(string.Empty, Onnx.Int64, [2], [3, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255])).Varint(20, 4)),
        ],
        [weight ?? Onnx.Tensor("w", Onnx.Float, [2, 3], Onnx.F32(1, 2, 3, 4, 5, 6))],
        ["x"],
        ["y"]));

    [Fact]
    public void Parse_SmallModel_ReadsGraphNodesAttributesAndInitializers()
    {
        var model = OnnxReader.Parse(SmallModel(), "small.onnx", null);

        Assert.Equal(8, model.IrVersion);
        Assert.Equal("test", model.ProducerName);
        Assert.Equal([(string.Empty, 17L)], model.Opsets);
        Assert.Equal("small", model.Graph.Name);
        Assert.Equal(["MatMul", "Relu", "Constant"], model.Graph.Nodes.Select(n => n.OpType));
        Assert.Equal(["x", "w"], model.Graph.Nodes[0].Inputs);
        Assert.Equal(["x"], model.Graph.Inputs);
        Assert.Equal(["y"], model.Graph.Outputs);
        var w = model.Graph.Initializers["w"];
        Assert.Equal([2L, 3L], w.Dims);
        Assert.Equal([1f, 2, 3, 4, 5, 6], w.ToFloatArray());
        var constant = model.Graph.Nodes[2].Attributes["value"];
        Assert.Equal(OnnxAttributeType.Tensor, constant.Type);
        Assert.Equal([3L, -1L], constant.Tensor!.ToInt64Array());
    }

    [Fact]
    public void Parse_TypedFloatAndInt64Fields_NormalizesToLittleEndianData()
    {
        var floats = Onnx.Tensor("w", Onnx.Float, [2, 3]);
        foreach (float f in new[] { 1f, -2, 3, 4, 5, 6.5f }) floats.Float(4, f);
        var model = OnnxReader.Parse(SmallModel(floats), "typed.onnx", null);
        Assert.Equal([1f, -2, 3, 4, 5, 6.5f], model.Graph.Initializers["w"].ToFloatArray());
        Assert.Equal([2, 3], model.Graph.Initializers["w"].ToFloatTensor().Shape.Dims.ToArray());

        var ints = Onnx.Tensor("w", Onnx.Int64, [2]).Varint(7, 5).Varint(7, -7);
        var model2 = OnnxReader.Parse(SmallModel(ints), "typed.onnx", null);
        Assert.Equal([5L, -7L], model2.Graph.Initializers["w"].ToInt64Array());
    }

    [Fact]
    public void Parse_TruncatedModel_ThrowsNamingTruncation()
    {
        var bytes = SmallModel();
        var ex = Assert.Throws<OnnxFormatException>(() => OnnxReader.Parse(bytes.AsMemory(0, bytes.Length - 7), "cut.onnx", null));
        Assert.Contains("cut.onnx", ex.Message, StringComparison.Ordinal);
        Assert.Contains("truncated", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_EveryPrefixOfAModel_FailsOnlyWithOnnxFormatException()
    {
        // Robustness: no prefix may crash the reader with another exception type or read out of bounds.
        var bytes = SmallModel();
        int rejected = 0;
        for (int n = 0; n < bytes.Length; n++)
        {
            try
            {
                OnnxReader.Parse(bytes.AsMemory(0, n), "prefix.onnx", null);
            }
            catch (OnnxFormatException)
            {
                rejected++;
            }
        }

        // Only prefixes that end exactly on a top-level field boundary before the graph could parse, and those lack a graph.
        Assert.Equal(bytes.Length, rejected);
    }

    [Fact]
    public void Parse_RealModelCutInHalf_ThrowsOnnxFormatException()
    {
        var bytes = File.ReadAllBytes(Path.Combine(OnnxTestModels.MiniLm, "model.onnx"));
        var ex = Assert.Throws<OnnxFormatException>(() => OnnxReader.Parse(bytes.AsMemory(0, bytes.Length / 2), "half.onnx", null));
        Assert.Contains("truncated", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new byte[] { 0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02 }, "does not fit in 64 bits")]
    [InlineData(new byte[] { 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F }, "does not fit in 64 bits")]
    [InlineData(new byte[] { 0x08, 0x80, 0x80 }, "truncated")]
    [InlineData(new byte[] { 0x3A, 0xE8, 0x07, 0x01, 0x02, 0x03 }, "claims 1000 bytes but only 3 remain")]
    [InlineData(new byte[] { 0x0B, 0x00 }, "wire type 3")]
    [InlineData(new byte[] { 0x00, 0x00 }, "field number 0")]
    public void Parse_BrokenWireFormat_ThrowsNamingTheRule(byte[] bytes, string rule)
    {
        var ex = Assert.Throws<OnnxFormatException>(() => OnnxReader.Parse(bytes, "broken.onnx", null));
        Assert.Contains(rule, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_NestingBomb_ThrowsDepthError()
    {
        // An If-style attribute holding a graph holding a node holding an attribute holding a graph ..., 100 deep.
        var graph = Onnx.Graph("leaf", [], [], [], []);
        for (int i = 0; i < 100; i++)
        {
            graph = Onnx.Graph($"g{i}", [Onnx.Node("If", ["c"], ["o"], Onnx.GraphAttribute("then_branch", graph))], [], [], []);
        }

        var ex = Assert.Throws<OnnxFormatException>(() => OnnxReader.Parse(Onnx.Model(graph), "bomb.onnx", null));
        Assert.Contains("nested more than", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_ShallowSubgraph_IsAccepted()
    {
        var body = Onnx.Graph("then", [Onnx.Node("Relu", ["a"], ["b"])], [], [], []);
        var graph = Onnx.Graph("main", [Onnx.Node("If", ["c"], ["o"], Onnx.GraphAttribute("then_branch", body))], [], ["c"], ["o"]);
        var model = OnnxReader.Parse(Onnx.Model(graph), "if.onnx", null);
        Assert.Equal("Relu", model.Graph.Nodes[0].Attributes["then_branch"].Graph!.Nodes[0].OpType);
    }

    [Fact]
    public void Parse_TensorSizeMismatch_ThrowsWithExpectedBytes()
    {
        var weight = Onnx.Tensor("w", Onnx.Float, [2, 3], new byte[20]);
        var ex = Assert.Throws<OnnxFormatException>(() => OnnxReader.Parse(SmallModel(weight), "size.onnx", null));
        Assert.Contains("'w'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("holds 20 bytes", ex.Message, StringComparison.Ordinal);
        Assert.Contains("4 × 6 = 24 bytes", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new long[] { 4611686018427387904, 4 }, "overflow")]
    [InlineData(new long[] { 3037000500, 3037000500, 4 }, "overflow")]
    [InlineData(new long[] { -1, 3 }, "negative dimension")]
    public void Parse_HostileDims_Throws(long[] dims, string rule)
    {
        var weight = Onnx.Tensor("w", Onnx.Float, dims, new byte[4]);
        var ex = Assert.Throws<OnnxFormatException>(() => OnnxReader.Parse(SmallModel(weight), "dims.onnx", null));
        Assert.Contains(rule, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_ExternalDataInsideFolder_ReadsTheSlice()
    {
        File.WriteAllBytes(Path.Combine(_dir, "weights.bin"), [.. new byte[8], .. Onnx.F32(1, 2, 3, 4, 5, 6), .. new byte[4]]);
        string path = Path.Combine(_dir, "model.onnx");
        File.WriteAllBytes(path, SmallModel(Onnx.ExternalTensor("w", [2, 3], "weights.bin", offset: 8, length: 24)));

        var model = OnnxReader.Load(path);

        Assert.Equal([1f, 2, 3, 4, 5, 6], model.Graph.Initializers["w"].ToFloatArray());
    }

    [Theory]
    [InlineData("../x.bin", "'..'")]
    [InlineData("sub/../../x.bin", "'..'")]
    [InlineData("/etc/passwd", "absolute")]
    [InlineData("C:/Windows/win.ini", "absolute")]
    [InlineData("", "no 'location'")]
    public void Load_ExternalDataEscapingFolder_IsRejected(string location, string rule)
    {
        string path = Path.Combine(_dir, "model.onnx");
        File.WriteAllBytes(path, SmallModel(Onnx.ExternalTensor("w", [2, 3], location)));

        var ex = Assert.Throws<OnnxFormatException>(() => OnnxReader.Load(path));

        Assert.Contains(rule, ex.Message, StringComparison.Ordinal);
        Assert.Contains("'w'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_ExternalDataThroughSymlinkOutsideFolder_IsRejected()
    {
        string outside = Directory.CreateTempSubdirectory("sharpformer-onnx-outside-").FullName;
        try
        {
            File.WriteAllBytes(Path.Combine(outside, "secret.bin"), new byte[24]);
            string modelDir = Path.Combine(_dir, "model");
            Directory.CreateDirectory(modelDir);
            File.CreateSymbolicLink(Path.Combine(modelDir, "weights.bin"), Path.Combine(outside, "secret.bin"));
            Directory.CreateSymbolicLink(Path.Combine(modelDir, "data"), outside);
            string path = Path.Combine(modelDir, "model.onnx");

            foreach (string location in new[] { "weights.bin", "data/secret.bin" })
            {
                File.WriteAllBytes(path, SmallModel(Onnx.ExternalTensor("w", [2, 3], location)));
                var ex = Assert.Throws<OnnxFormatException>(() => OnnxReader.Load(path));
                Assert.Contains("symbolic link", ex.Message, StringComparison.Ordinal);
            }
        }
        finally
        {
            Directory.Delete(outside, recursive: true);
        }
    }

    [Theory]
    [InlineData(100L, null, "beyond the end")]
    [InlineData(0L, 100L, "runs past the end")]
    [InlineData(0L, 20L, "differs from the 24 bytes")]
    public void Load_ExternalDataOutOfBounds_IsRejected(long offset, long? length, string rule)
    {
        File.WriteAllBytes(Path.Combine(_dir, "weights.bin"), new byte[32]);
        string path = Path.Combine(_dir, "model.onnx");
        File.WriteAllBytes(path, SmallModel(Onnx.ExternalTensor("w", [2, 3], "weights.bin", offset, length)));

        var ex = Assert.Throws<OnnxFormatException>(() => OnnxReader.Load(path));

        Assert.Contains(rule, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_ExternalDataWithoutFolder_IsRejected()
    {
        var bytes = SmallModel(Onnx.ExternalTensor("w", [2, 3], "weights.bin"));
        var ex = Assert.Throws<OnnxFormatException>(() => OnnxReader.Parse(bytes, "memory", null));
        Assert.Contains("not read from a folder", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Import_GraphThatIsNotBert_ThrowsNotABertExport()
    {
        // An embedding lookup followed by a ReLU: a Gather on input_ids exists, but nothing else of BERT does.
        var graph = Onnx.Graph(
            "not-bert",
            [Onnx.Node("Gather", ["table", "input_ids"], ["e"]), Onnx.Node("Relu", ["e"], ["y"])],
            [Onnx.Tensor("table", Onnx.Float, [4, 2], Onnx.F32(1, 2, 3, 4, 5, 6, 7, 8))],
            ["input_ids"],
            ["y"]);
        var model = OnnxReader.Parse(Onnx.Model(graph), "relu.onnx", null);

        var ex = Assert.Throws<OnnxFormatException>(() => BertOnnxImporter.Import(model));

        Assert.Contains("relu.onnx", ex.Message, StringComparison.Ordinal);
        Assert.Contains("not a BERT export", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Import_SmallNonBertGraph_ThrowsNotABertExport()
    {
        var model = OnnxReader.Parse(SmallModel(), "small.onnx", null);
        var ex = Assert.Throws<OnnxFormatException>(() => BertOnnxImporter.Import(model));
        Assert.Contains("not a BERT export", ex.Message, StringComparison.Ordinal);
    }
}
