using System.Text.Json;
using Sharpformer.IO.Gguf;
using Sharpformer.IO.SafeTensors;
using Sharpformer.IO.Tests.Onnx;
using Sharpformer.Tensors;

namespace Sharpformer.Cli.Tests;

/// <summary>Console.SetOut is process-wide: these tests run alone, never beside another class that captures it.</summary>
[CollectionDefinition("InspectConsole", DisableParallelization = true)]
public sealed class InspectConsoleCollection;

[Collection("InspectConsole")]
public sealed class InspectCommandTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sharpformer-cli-" + Guid.NewGuid().ToString("N"));

    public InspectCommandTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var (prevOut, prevErr) = (Console.Out, Console.Error);
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try
        {
            int exit = Program.Main(args);
            return (exit, stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetOut(prevOut);
            Console.SetError(prevErr);
        }
    }

    private static List<(string, Tensor)> Tensors() =>
    [
        ("encoder.weight", Tensor.Zeros(new Shape(3, 4))),
        ("encoder.bias", Tensor.Zeros(new Shape(5), DType.BF16)),
        ("position_ids", Tensor.Zeros(new Shape(1, 7), DType.I64)),
    ];

    [Fact]
    public void Inspect_SafetensorsFile_PrintsTensorsDTypesAndTotals()
    {
        string path = Path.Combine(_dir, "weights.safetensors");
        SafeTensorsWriter.Write(path, Tensors(), new Dictionary<string, string> { ["format"] = "pt" });

        var (exit, output, _) = Run("inspect", path);

        Assert.Equal(0, exit);
        Assert.Matches(@"encoder\.weight\s+F32\s+\[3, 4\]\s+12", output);
        Assert.Matches(@"encoder\.bias\s+BF16\s+\[5\]\s+5", output);
        Assert.Matches(@"position_ids\s+I64\s+\[1, 7\]\s+7", output);
        Assert.Contains("metadata: format=pt", output, StringComparison.Ordinal);
        Assert.Matches(@"F32\s+1 tensors\s+12 params\s+48 B", output);
        Assert.Contains("total: 3 tensors, 24 parameters (24), 114 B of tensor data", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Inspect_FolderWithConfigJson_JsonCarriesConfigSummaryAndTotals()
    {
        SafeTensorsWriter.Write(Path.Combine(_dir, "model.safetensors"), Tensors());
        File.WriteAllText(Path.Combine(_dir, "config.json"),
            "{\"model_type\":\"gpt2\",\"architectures\":[\"GPT2LMHeadModel\"],\"n_embd\":768,\"n_layer\":12,\"vocab_size\":50257,\"unrelated\":1}");

        var (exit, output, _) = Run("inspect", _dir, "--json");

        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        var root = doc.RootElement;
        Assert.Equal(24, root.GetProperty("total_parameters").GetInt64());
        Assert.Equal(3, root.GetProperty("total_tensors").GetInt32());
        var fields = root.GetProperty("config").GetProperty("fields");
        Assert.Equal("gpt2", fields.GetProperty("model_type").GetString());
        Assert.Equal(768, fields.GetProperty("n_embd").GetInt32());
        Assert.False(fields.TryGetProperty("unrelated", out _));
        Assert.Equal(5, root.GetProperty("dtypes").GetProperty("BF16").GetProperty("parameters").GetInt64());
        var first = root.GetProperty("tensors")[0];
        Assert.Equal("position_ids", first.GetProperty("name").GetString()); // file order: I64 first (largest alignment)
        Assert.Equal(new[] { 1, 7 }, first.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()));
    }

    [Fact]
    public void Inspect_ShardedFolder_ListsShardsAndOwningFiles()
    {
        SafeTensorsWriter.WriteSharded(_dir, Tensors(), maxShardBytes: 60); // 48 + 10 bytes, then 56

        var (exit, output, _) = Run("inspect", _dir);

        Assert.Equal(0, exit);
        Assert.Contains("sharded safetensors (2 shards)", output, StringComparison.Ordinal);
        Assert.Contains("model.safetensors.index.json", output, StringComparison.Ordinal);
        Assert.Matches(@"encoder\.weight\s+F32\s+\[3, 4\]\s+12\s+model-00001-of-00002\.safetensors", output);
        Assert.Matches(@"position_ids\s+I64\s+\[1, 7\]\s+7\s+model-00002-of-00002\.safetensors", output);
    }

    [Fact]
    public void Inspect_TruncatedFile_ExitsNonZeroNamingFileAndLength()
    {
        string path = Path.Combine(_dir, "broken.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);

        var (exit, output, error) = Run("inspect", path);

        Assert.Equal(1, exit);
        Assert.Empty(output);
        Assert.Contains(path, error, StringComparison.Ordinal);
        Assert.Contains("3 bytes long: too short", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Inspect_CorruptSafetensorsHeader_ExitsNonZeroNamingFileAndRule()
    {
        string path = Path.Combine(_dir, "broken.safetensors");
        byte[] header = System.Text.Encoding.ASCII.GetBytes("{not json at all!!!!");
        File.WriteAllBytes(path, [.. BitConverter.GetBytes((ulong)header.Length), .. header]);

        var (exit, output, error) = Run("inspect", path);

        Assert.Equal(1, exit);
        Assert.Empty(output);
        Assert.Contains(path, error, StringComparison.Ordinal);
        Assert.Contains("InvalidHeaderDeserialization", error, StringComparison.Ordinal);
    }

    /// <summary>A small GGUF file as llama.cpp's tools write one: architecture, file type, a tokenizer, F32 and Q8_0 tensors.</summary>
    private string WriteGguf(string name)
    {
        var writer = new GgufWriter();
        writer.Add("general.architecture", GgufValue.FromString("gpt2"));
        writer.Add("general.file_type", GgufValue.FromUInt32(7));
        writer.Add("gpt2.context_length", GgufValue.FromUInt32(64));
        writer.Add("tokenizer.ggml.model", GgufValue.FromString("gpt2"));
        writer.Add("tokenizer.ggml.tokens", GgufValue.FromStrings(["a", "b", "c", "ab"]));
        writer.Add("tokenizer.ggml.merges", GgufValue.FromStrings(["a b"]));
        writer.Add("tokenizer.chat_template", GgufValue.FromString(new string('x', 500)));
        writer.AddTensor("token_embd.weight", GgufTensorType.F32, [8, 4], new byte[8 * 4 * 4]);
        writer.AddTensor("blk.0.attn_qkv.weight", GgufTensorType.Q8_0, [64, 3], new byte[2 * 3 * 34]);
        string path = Path.Combine(_dir, name);
        writer.WriteTo(path);
        return path;
    }

    [Fact]
    public void Inspect_GgufFile_ShowsMetadataQuantTypesRowMajorShapesAndTokenizer()
    {
        string path = WriteGguf("model.gguf");

        var (exit, output, error) = Run("inspect", path);

        Assert.True(exit == 0, error);
        Assert.Contains("GGUF v3", output, StringComparison.Ordinal);
        Assert.Contains("file type: MOSTLY_Q8_0 (7)", output, StringComparison.Ordinal);
        Assert.Contains("tokenizer: gpt2 (4 tokens, 1 merges)", output, StringComparison.Ordinal);
        Assert.Contains("tokenizer.ggml.tokens=[4 × string]", output, StringComparison.Ordinal);
        Assert.Contains("(500 chars)", output, StringComparison.Ordinal);
        Assert.Matches(@"token_embd\.weight\s+F32\s+\[4, 8\]\s+32", output);
        Assert.Matches(@"blk\.0\.attn_qkv\.weight\s+Q8_0\s+\[3, 64\]\s+192", output);
        Assert.Matches(@"Q8_0\s+1 tensors\s+192 params\s+204 B", output);
    }

    [Fact]
    public void Inspect_GgufNamedSafetensors_DetectedByContent()
    {
        string path = WriteGguf("misnamed.safetensors");

        var (exit, output, _) = Run("inspect", path, "--json");

        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal("gguf", doc.RootElement.GetProperty("format").GetString());
        Assert.Equal(new string('x', 500), doc.RootElement.GetProperty("metadata").GetProperty("tokenizer.chat_template").GetString());
    }

    [Fact]
    public void Inspect_OnnxModel_ShowsOpsetsInputsOutputsInitializersAndOperators()
    {
        string model = Path.Combine(OnnxTestModels.MiniLm, "model.onnx");

        var (exit, output, error) = Run("inspect", model, "--json");

        Assert.True(exit == 0, error);
        using var doc = JsonDocument.Parse(output);
        var root = doc.RootElement;
        Assert.Equal("onnx", root.GetProperty("format").GetString());
        Assert.Contains("ai.onnx:", root.GetProperty("metadata").GetProperty("opsets").GetString(), StringComparison.Ordinal);
        var details = root.GetProperty("details");
        Assert.Contains("input_ids", details.GetProperty("inputs").GetString(), StringComparison.Ordinal);
        Assert.Contains("MatMul×", details.GetProperty("nodes").GetString(), StringComparison.Ordinal);
        // all-MiniLM-L6-v2: 384-wide embeddings over the 30522-token vocabulary, about 22.7 M parameters in all.
        Assert.Contains(root.GetProperty("tensors").EnumerateArray(), t => t.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).SequenceEqual([30522L, 384L]));
        Assert.InRange(root.GetProperty("total_parameters").GetInt64(), 22_000_000, 23_500_000);
    }

    [Fact]
    public void Inspect_ForeignFormat_NamesTheBytesAndTheFormatsRead()
    {
        string path = Path.Combine(_dir, "notes.safetensors");
        File.WriteAllText(path, "PK\u0003\u0004 a zip, not weights");

        var (exit, output, error) = Run("inspect", path);

        Assert.Equal(1, exit);
        Assert.Empty(output);
        Assert.Contains("is not a safetensors, GGUF or ONNX file", error, StringComparison.Ordinal);
        Assert.Contains("504B0304", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Inspect_MissingPath_SaysNoSuchFileOrFolder()
    {
        var (exit, _, error) = Run("inspect", Path.Combine(_dir, "nope"));

        Assert.Equal(1, exit);
        Assert.Contains("no such file or folder", error, StringComparison.Ordinal);
    }
}
