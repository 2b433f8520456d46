using System.Text.Json;
using Sharpformer.IO.Gguf;
using Sharpformer.IO.SafeTensors;
using Sharpformer.IO.Tests.Gguf;
using Sharpformer.IO.Tests.Onnx;

namespace Sharpformer.Cli.Tests;

public sealed class ConvertCommandTests : IDisposable
{
    private readonly string _out = Path.Combine(Path.GetTempPath(), $"sharpformer-cli-convert-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_out)) Directory.Delete(_out, recursive: true);
    }

    [Fact]
    public void ConvertOnnxBert_MiniLm_WritesHuggingFaceFolderAndSummary()
    {
        string model = Path.Combine(OnnxTestModels.MiniLm, "model.onnx");
        var (code, stdout, stderr) = Invoke(["convert", "onnx-bert", model, _out]);

        Assert.True(code == 0, stderr);
        Assert.Contains("6 layers, hidden 384, 12 heads", stdout, StringComparison.Ordinal);
        Assert.Contains("103 tensors", stdout, StringComparison.Ordinal);
        foreach (string file in new[] { "config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json" })
        {
            Assert.True(File.Exists(Path.Combine(_out, file)), $"{file} was not written");
        }

        using var weights = SafeTensorsFile.Open(Path.Combine(_out, "model.safetensors"));
        Assert.Equal([1536L, 384L], weights.GetInfo("encoder.layer.5.intermediate.dense.weight").Shape);
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(_out, "config.json")));
        Assert.Equal(12, config.RootElement.GetProperty("num_attention_heads").GetInt32());
    }

    [Fact]
    public void ConvertOnnxBert_ExplicitVocab_IsCopied()
    {
        string model = Path.Combine(OnnxTestModels.MiniLm, "model.onnx");
        string vocab = Path.Combine(OnnxTestModels.MiniLm, "vocab.txt");
        var (code, _, stderr) = Invoke(["convert", "onnx-bert", model, _out, "--vocab", vocab]);

        Assert.True(code == 0, stderr);
        Assert.Equal(File.ReadAllBytes(vocab), File.ReadAllBytes(Path.Combine(_out, "vocab.txt")));
    }

    [Fact]
    public void ConvertOnnxBert_Json_PrintsConfigAndCounts()
    {
        string model = Path.Combine(OnnxTestModels.MiniLm, "model.onnx");
        var (code, stdout, stderr) = Invoke(["convert", "onnx-bert", model, _out, "--json"]);

        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        Assert.Equal(103, root.GetProperty("tensors").GetInt32());
        Assert.Equal(22_713_216, root.GetProperty("parameters").GetInt64());
        Assert.Equal(6, root.GetProperty("config").GetProperty("num_hidden_layers").GetInt32());
        Assert.True(root.GetProperty("config").GetProperty("has_pooler").GetBoolean());
        Assert.Equal(4, root.GetProperty("files").GetArrayLength());
    }

    [Fact]
    public void ConvertOnnxBert_MissingModel_FailsWithOneLineError()
    {
        var (code, _, stderr) = Invoke(["convert", "onnx-bert", Path.Combine(_out, "nope.onnx"), _out, "--vocab", Path.Combine(OnnxTestModels.MiniLm, "vocab.txt")]);

        Assert.NotEqual(0, code);
        Assert.Contains("nope.onnx", stderr, StringComparison.Ordinal);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void ConvertOnnxBert_MissingModelAndNoVocab_NamesTheModelNotTheVocab()
    {
        var (code, _, stderr) = Invoke(["convert", "onnx-bert", Path.Combine(_out, "missing.onnx"), Path.Combine(_out, "hf")]);

        Assert.Equal(1, code);
        Assert.Contains("no such file", stderr, StringComparison.Ordinal);
        Assert.Contains("missing.onnx", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("vocab", stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_out, "hf")));
    }

    [Fact]
    public void ConvertOnnxBert_NonEmptyOutput_RefusedWithoutForceAndLeftAlone()
    {
        Directory.CreateDirectory(_out);
        string mine = Path.Combine(_out, "config.json");
        File.WriteAllText(mine, "{\"mine\": true}");
        string model = Path.Combine(OnnxTestModels.MiniLm, "model.onnx");

        var (code, _, stderr) = Invoke(["convert", "onnx-bert", model, _out]);

        Assert.Equal(1, code);
        Assert.Contains("--force", stderr, StringComparison.Ordinal);
        Assert.Equal("{\"mine\": true}", File.ReadAllText(mine));
        Assert.Single(Directory.EnumerateFileSystemEntries(_out));

        var (forced, _, forcedErr) = Invoke(["convert", "onnx-bert", model, _out, "--force"]);
        Assert.True(forced == 0, forcedErr);
        Assert.Contains("\"num_attention_heads\"", File.ReadAllText(mine), StringComparison.Ordinal);
    }

    [Fact]
    public void ConvertGguf_ExistingFile_RefusedWithoutForce()
    {
        Directory.CreateDirectory(_out);
        var folder = TinyGpt2.Make(_out);
        var gguf = Path.Combine(_out, "model.gguf");
        File.WriteAllText(gguf, "keep me");

        var (code, _, stderr) = Invoke(["convert", "gguf", folder, gguf]);

        Assert.Equal(1, code);
        Assert.Contains("--force", stderr, StringComparison.Ordinal);
        Assert.Equal("keep me", File.ReadAllText(gguf));
        var (forced, _, forcedErr) = Invoke(["convert", "gguf", folder, gguf, "--force"]);
        Assert.True(forced == 0, forcedErr);
        Assert.Equal(GgufMagic, File.ReadAllBytes(gguf)[..4]);
    }

    private static readonly byte[] GgufMagic = "GGUF"u8.ToArray();

    [Fact]
    public void ConvertOnnxBert_NotAnOnnxFile_FailsWithOneLineError()
    {
        Directory.CreateDirectory(_out);
        string bogus = Path.Combine(_out, "model.onnx");
        File.WriteAllText(bogus, "this is not protobuf\n");
        File.WriteAllText(Path.Combine(_out, "vocab.txt"), "[PAD]\n");

        var (code, _, stderr) = Invoke(["convert", "onnx-bert", bogus, Path.Combine(_out, "hf")]);

        Assert.NotEqual(0, code);
        Assert.StartsWith("error: convert onnx-bert:", stderr, StringComparison.Ordinal);
        Assert.Contains("model.onnx", stderr, StringComparison.Ordinal);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Theory]
    [InlineData("f32", GgufTensorType.F32)]
    [InlineData("f16", GgufTensorType.F16)]
    [InlineData("q8_0", GgufTensorType.Q8_0)] // ffn_down rows are 4·8 = 32 values: one Q8_0 block each
    public void ConvertGguf_TinyGpt2_WritesVerifiedFile(string dtype, GgufTensorType matrixType)
    {
        Directory.CreateDirectory(_out);
        var folder = TinyGpt2.Make(_out);
        var gguf = Path.Combine(_out, "model.gguf");
        var (code, stdout, stderr) = Invoke(["convert", "gguf", folder, gguf, "--dtype", dtype]);

        Assert.True(code == 0, stderr);
        Assert.Contains("2 layers, n_embd 8, 2 heads", stdout, StringComparison.Ordinal);
        Assert.Contains("verified: GGUF v3", stdout, StringComparison.Ordinal);
        var file = GgufFile.Open(gguf);
        Assert.Equal(matrixType, file.GetTensor("blk.1.ffn_down.weight").Type);
        Assert.Equal(GgufTensorType.F32, file.GetTensor("blk.1.ffn_down.bias").Type);
    }

    [Theory]
    [InlineData("q8_0", GgufTensorType.Q8_0)]
    [InlineData("q4_0", GgufTensorType.Q4_0)]
    public void ConvertGguf_TinyLlama_WritesQuantizedVerifiedFile(string dtype, GgufTensorType matrixType)
    {
        Directory.CreateDirectory(_out);
        var folder = Path.Combine(GenerateCommandTests.RepoRoot(), "tests", "fixtures", "llama", "llama");
        var gguf = Path.Combine(_out, "llama.gguf");
        var (code, stdout, stderr) = Invoke(["convert", "gguf", folder, gguf, "--dtype", dtype, "--name", "tiny"]);

        Assert.True(code == 0, stderr);
        Assert.Contains("llama: 2 layers, hidden 32, 4 heads (2 kv)", stdout, StringComparison.Ordinal);
        Assert.Contains("verified: GGUF v3", stdout, StringComparison.Ordinal);
        var file = GgufFile.Open(gguf);
        Assert.Equal("tiny", file.Get("general.name").AsString("general.name"));
        Assert.Equal(matrixType, file.GetTensor("blk.0.attn_q.weight").Type);
        // Rows of 48 values are not whole blocks of 32: F16, as llama.cpp's quantizer falls back.
        Assert.Equal(GgufTensorType.F16, file.GetTensor("blk.0.ffn_down.weight").Type);
        Assert.Equal(GgufTensorType.F32, file.GetTensor("output_norm.weight").Type);
    }

    [Fact]
    public void ConvertGguf_UnknownDtype_Rejected()
    {
        var (code, _, stderr) = Invoke(["convert", "gguf", _out, Path.Combine(_out, "x.gguf"), "--dtype", "q4"]);

        Assert.NotEqual(0, code);
        Assert.Contains("q4", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void ConvertGguf_NotAGpt2Folder_FailsWithOneLineError()
    {
        Directory.CreateDirectory(_out);
        var (code, _, stderr) = Invoke(["convert", "gguf", _out, Path.Combine(_out, "x.gguf")]);

        Assert.NotEqual(0, code);
        Assert.StartsWith("error: convert gguf:", stderr, StringComparison.Ordinal);
        Assert.Contains("config.json", stderr, StringComparison.Ordinal);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    private static (int Code, string Stdout, string Stderr) Invoke(string[] args) => ConsoleCli.Invoke(args);

    [Fact]
    public void ConvertDType_Bf16_RoundsEveryFloatTensorToNearestEven_AndCopiesTheModelFilesOnly()
    {
        string source = Path.Combine(_out, "src");
        Directory.CreateDirectory(source);
        string fixture = Path.Combine(Text2TextCommandTests.RepoRoot(), "tests", "fixtures", "gpt2_tiny");
        foreach (var file in Directory.EnumerateFiles(fixture))
        {
            File.Copy(file, Path.Combine(source, Path.GetFileName(file)));
        }

        File.WriteAllText(Path.Combine(source, "trainer_state.json"), "{}");
        string target = Path.Combine(_out, "bf16");
        var (code, stdout, stderr) = Invoke(["convert", "dtype", source, target, "--dtype", "bf16"]);
        Assert.True(code == 0, stderr);
        Assert.Contains("as bf16", stdout, StringComparison.Ordinal);

        using (var before = SafeTensorsLoader.Open(source))
        using (var after = SafeTensorsLoader.Open(target))
        {
            Assert.Equal(before.Tensors.Select(t => t.Name).Order(), after.Tensors.Select(t => t.Name).Order());
            foreach (var info in before.Tensors.Where(t => t.DType == SafeTensorsDType.F32))
            {
                Assert.Equal(SafeTensorsDType.BF16, after.GetInfo(info.Name).DType);
                var f32 = before.GetTensorAsF32(info.Name).ToArray<float>();
                var bytes = after.GetBytes(info.Name);
                for (int i = 0; i < f32.Length; i++)
                {
                    uint bits = BitConverter.SingleToUInt32Bits(f32[i]);
                    ushort expected = (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
                    Assert.Equal(expected, BitConverter.ToUInt16(bytes.Slice(2 * i, 2)));
                }
            }
        }

        Assert.Equal("bfloat16", JsonDocument.Parse(File.ReadAllText(Path.Combine(target, "config.json"))).RootElement.GetProperty("torch_dtype").GetString());
        Assert.True(File.Exists(Path.Combine(target, "vocab.json")));
        Assert.False(File.Exists(Path.Combine(target, "trainer_state.json")));

        var again = Invoke(["convert", "dtype", source, target, "--dtype", "f16"]);
        Assert.Equal(1, again.Code);
        Assert.Contains("--force", again.Stderr, StringComparison.Ordinal);
        var same = Invoke(["convert", "dtype", source, source, "--dtype", "f16"]);
        Assert.Equal(2, same.Code);
        Assert.Contains("out-dir is the input folder", same.Stderr, StringComparison.Ordinal);
    }
}
