using System.Text.Json;
using Sharpformer.IO.SafeTensors;
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
    public void Inspect_CorruptFile_ExitsNonZeroNamingFileAndRule()
    {
        string path = Path.Combine(_dir, "broken.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);

        var (exit, output, error) = Run("inspect", path);

        Assert.Equal(1, exit);
        Assert.Empty(output);
        Assert.Contains(path, error, StringComparison.Ordinal);
        Assert.Contains("HeaderTooSmall", error, StringComparison.Ordinal);
    }
}
