using Sharpformer.IO.Gguf;
using Sharpformer.IO.SafeTensors;
using Sharpformer.IO.Tests.SafeTensors;
using Sharpformer.Tensors;

namespace Sharpformer.IO.Tests.Gguf;

public sealed class Gpt2GgufExporterTests
{
    private const int C = TinyGpt2.C;
    private const int Layers = TinyGpt2.Layers;
    private const int Positions = TinyGpt2.Positions;
    private static readonly string[] Merges = TinyGpt2.Merges;

    private static string MakeModel(TempDir dir, TokenizerLayout layout = TokenizerLayout.VocabAndMerges, bool hubNames = false, string activation = "gelu_new", Action<Dictionary<string, Tensor>>? edit = null) =>
        TinyGpt2.Make(dir.Path, layout, hubNames, activation, edit);

    private static float[] Hf(string folder, string name)
    {
        using var file = SafeTensorsFile.Open(Path.Combine(folder, "model.safetensors"));
        return file.GetTensorAsF32(name).ToArray();
    }

    [Theory]
    [InlineData(TokenizerLayout.VocabAndMerges)]
    [InlineData(TokenizerLayout.TokenizerJson)]
    [InlineData(TokenizerLayout.LegacyTokenizerJson)]
    public void Export_EachTokenizerLayout_WritesLlamaCppTokenizerKeys(TokenizerLayout layout)
    {
        using var dir = new TempDir();
        var folder = MakeModel(dir, layout);
        var output = Path.Combine(folder, "out.gguf");
        Gpt2GgufExporter.Export(folder, output);
        var file = GgufFile.Open(output);
        Assert.Equal("gpt2", file.Get("tokenizer.ggml.model").AsString(""));
        Assert.Equal("gpt-2", file.Get("tokenizer.ggml.pre").AsString(""));
        Assert.Equal(["a", "b", "Ġ", "ab", "Ġa", "Ġab", "<|endoftext|>", "[PAD7]"], file.Get("tokenizer.ggml.tokens").AsStrings(""));
        Assert.Equal([1, 1, 1, 1, 1, 1, 3, 5], file.Get("tokenizer.ggml.token_type").AsInt32s(""));
        Assert.Equal(Merges, file.Get("tokenizer.ggml.merges").AsStrings(""));
        Assert.Equal(6ul, file.Get("tokenizer.ggml.bos_token_id").AsUInt64(""));
        Assert.Equal(6ul, file.Get("tokenizer.ggml.eos_token_id").AsUInt64(""));
    }

    [Fact]
    public void Export_F32_WritesGpt2HyperparametersAndTensorMap()
    {
        using var dir = new TempDir();
        var folder = MakeModel(dir);
        var output = Path.Combine(folder, "out.gguf");
        var result = Gpt2GgufExporter.Export(folder, output, name: "tiny");
        var file = GgufFile.Open(output);
        Assert.Equal("gpt2", file.Get("general.architecture").AsString(""));
        Assert.Equal("tiny", file.Get("general.name").AsString(""));
        Assert.Equal(0ul, file.Get("general.file_type").AsUInt64(""));
        Assert.Equal((ulong)Positions, file.Get("gpt2.context_length").AsUInt64(""));
        Assert.Equal((ulong)C, file.Get("gpt2.embedding_length").AsUInt64(""));
        Assert.Equal(4ul * C, file.Get("gpt2.feed_forward_length").AsUInt64(""));
        Assert.Equal((ulong)Layers, file.Get("gpt2.block_count").AsUInt64(""));
        Assert.Equal(2ul, file.Get("gpt2.attention.head_count").AsUInt64(""));
        Assert.Equal(1e-5, file.Get("gpt2.attention.layer_norm_epsilon").AsDouble(""), 1e-9);

        Assert.Equal(4 + (12 * Layers), file.Tensors.Count);
        Assert.Equal(result.TensorCount, file.Tensors.Count);
        Assert.True(result.TiedOutput);
        Assert.False(file.ContainsTensor("output.weight"));
        Assert.All(file.Tensors, t => Assert.Equal(GgufTensorType.F32, t.Type));
        // Dims innermost first: embeddings [V, C] → ne = (C, V); Conv1D [in, out] → ne = (in, out).
        Assert.Equal([C, 8L], file.GetTensor("token_embd.weight").Dims);
        Assert.Equal([C, (long)Positions], file.GetTensor("position_embd.weight").Dims);
        Assert.Equal([C, 3L * C], file.GetTensor("blk.1.attn_qkv.weight").Dims);
        Assert.Equal([4L * C, C], file.GetTensor("blk.1.ffn_down.weight").Dims);
        Assert.Equal([4L * C], file.GetTensor("blk.0.ffn_up.bias").Dims);
        Assert.Equal(Hf(folder, "transformer.wte.weight"), file.ReadAsF32("token_embd.weight"));
        Assert.Equal(Hf(folder, "transformer.h.1.ln_2.bias"), file.ReadAsF32("blk.1.ffn_norm.bias"));
        Assert.Equal(Hf(folder, "transformer.ln_f.weight"), file.ReadAsF32("output_norm.weight"));
    }

    [Fact]
    public void Export_Conv1DWeight_StoredTransposedAsOutRowsOfIn()
    {
        using var dir = new TempDir();
        var folder = MakeModel(dir);
        var output = Path.Combine(folder, "out.gguf");
        Gpt2GgufExporter.Export(folder, output);
        var hf = Hf(folder, "transformer.h.0.mlp.c_fc.weight"); // [in = C, out = 4C]
        var gguf = GgufFile.Open(output).ReadAsF32("blk.0.ffn_up.weight"); // rows of ne0 = C, one per output
        for (var i = 0; i < C; i++)
        {
            for (var o = 0; o < 4 * C; o++)
            {
                Assert.Equal(hf[(i * 4 * C) + o], gguf[(o * C) + i]);
            }
        }
    }

    [Fact]
    public void Export_F16_MatricesHalfNormsAndBiasesF32()
    {
        using var dir = new TempDir();
        var folder = MakeModel(dir);
        var output = Path.Combine(folder, "out.gguf");
        var result = Gpt2GgufExporter.Export(folder, output, GgufFileType.MostlyF16);
        var file = GgufFile.Open(output);
        Assert.Equal(1ul, file.Get("general.file_type").AsUInt64(""));
        Assert.All(file.Tensors, t => Assert.Equal(t.Dims.Count == 2 ? GgufTensorType.F16 : GgufTensorType.F32, t.Type));
        var hf = Hf(folder, "transformer.wte.weight");
        Assert.Equal(hf.Select(v => (float)(Half)v), file.ReadAsF32("token_embd.weight"));
        Assert.Equal(Hf(folder, "transformer.h.0.attn.c_attn.bias"), file.ReadAsF32("blk.0.attn_qkv.bias"));
        Assert.True(result.FileBytes < new FileInfo(Path.Combine(folder, "model.safetensors")).Length);
    }

    [Fact]
    public void Export_HubNamesWithMaskBuffers_ExportsParametersOnly()
    {
        using var dir = new TempDir();
        var folder = MakeModel(dir, hubNames: true);
        var output = Path.Combine(folder, "out.gguf");
        var result = Gpt2GgufExporter.Export(folder, output);
        var file = GgufFile.Open(output);
        Assert.Equal(4 + (12 * Layers), file.Tensors.Count);
        Assert.Equal(Hf(folder, "h.1.attn.c_proj.bias"), file.ReadAsF32("blk.1.attn_output.bias"));
        Assert.Equal(file.Tensors.Sum(t => t.ElementCount), result.ParameterCount);
    }

    [Fact]
    public void Export_UntiedLmHead_WritesOutputWeight()
    {
        using var dir = new TempDir();
        var folder = MakeModel(dir, edit: w => w["lm_head.weight"] = Tensor.RandomNormal(new int[] { 8, C }, new Random(3)));
        var output = Path.Combine(folder, "out.gguf");
        Assert.False(Gpt2GgufExporter.Export(folder, output).TiedOutput);
        Assert.Equal(Hf(folder, "lm_head.weight"), GgufFile.Open(output).ReadAsF32("output.weight"));
    }

    [Fact]
    public void Export_MissingTensor_ThrowsNamingIt()
    {
        using var dir = new TempDir();
        var folder = MakeModel(dir, edit: w => w.Remove("transformer.h.1.mlp.c_fc.bias"));
        var ex = Assert.Throws<GgufFormatException>(() => Gpt2GgufExporter.Export(folder, Path.Combine(folder, "out.gguf")));
        Assert.Contains("transformer.h.1.mlp.c_fc.bias", ex.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(folder, "out.gguf")));
    }

    [Fact]
    public void Export_MisshapedTensor_ThrowsWithBothShapes()
    {
        using var dir = new TempDir();
        var folder = MakeModel(dir, edit: w => w["transformer.h.0.attn.c_attn.weight"] = Tensor.Zeros(new int[] { 3 * C, C }));
        var ex = Assert.Throws<GgufFormatException>(() => Gpt2GgufExporter.Export(folder, Path.Combine(folder, "out.gguf")));
        Assert.Contains("[24, 8]", ex.Message, StringComparison.Ordinal);
        Assert.Contains("[8, 24]", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Export_ExactGelu_RefusedBecauseLlamaCppUsesTanh()
    {
        using var dir = new TempDir();
        var folder = MakeModel(dir, activation: "gelu");
        var ex = Assert.Throws<GgufFormatException>(() => Gpt2GgufExporter.Export(folder, Path.Combine(folder, "out.gguf")));
        Assert.Contains("activation_function", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Export_NoTokenizerFiles_ThrowsSayingWhichAreNeeded()
    {
        using var dir = new TempDir();
        var folder = MakeModel(dir);
        File.Delete(Path.Combine(folder, "merges.txt"));
        var ex = Assert.Throws<GgufFormatException>(() => Gpt2GgufExporter.Export(folder, Path.Combine(folder, "out.gguf")));
        Assert.Contains("merges.txt", ex.Message, StringComparison.Ordinal);
    }
}
