using Sharpformer.IO.Gguf;
using Sharpformer.IO.Tests.SafeTensors;
using Sharpformer.Tensors.Kernels.Quant;

namespace Sharpformer.IO.Tests.Gguf;

/// <summary>
/// Quantized GGUF tensors: read back as blocks (<see cref="GgufFile.ReadQuantized"/>) and as dequantized F32, size
/// validation against the shape, and the per-tensor types of a quantized GPT-2 export as llama.cpp's quantizer picks
/// them. Exports compared byte for byte with llama.cpp's own quantizer are in Sharpformer.Peers.Tests.
/// </summary>
public sealed class GgufQuantizedTests
{
    private static float[] Values(int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
    }

    [Theory]
    [InlineData(QuantType.Q8_0, 64)]
    [InlineData(QuantType.Q4_0, 96)]
    [InlineData(QuantType.Q4_K, 256)]
    [InlineData(QuantType.Q6_K, 512)]
    public void ReadQuantized_WrittenBlocks_ComeBackAsBlocksAndAsDequantizedValues(QuantType type, int width)
    {
        using var dir = new TempDir();
        const int rows = 3;
        var matrix = QuantizedMatrix.Quantize(Values(rows * width, width), rows, width, type);
        var writer = new GgufWriter();
        writer.AddTensor("w", (GgufTensorType)type, [width, rows], matrix.Data.ToArray());
        var path = Path.Combine(dir.Path, "q.gguf");
        writer.WriteTo(path);

        var file = GgufFile.Open(path);
        Assert.Equal((GgufTensorType)type, file.GetTensor("w").Type);
        var read = file.ReadQuantized("w");
        Assert.Equal((type, rows, width), (read.Type, read.Rows, read.Columns));
        Assert.True(read.Data.SequenceEqual(matrix.Data));
        var expected = new float[rows * width];
        matrix.DequantizeRows(0, rows, expected);
        Assert.Equal(expected, file.ReadAsF32("w"));
    }

    [Fact]
    public void Open_QuantizedWidthNotWholeBlocks_RefusedNamingTheBlock()
    {
        using var dir = new TempDir();
        var writer = new GgufWriter();
        // 300 values per row is not whole 256-value super-blocks: the size cannot be computed, so the file is refused.
        var e = Record.Exception(() =>
        {
            writer.AddTensor("w", GgufTensorType.Q4_K, [300, 2], new byte[2 * 144]);
            writer.WriteTo(Path.Combine(dir.Path, "bad.gguf"));
            GgufFile.Open(Path.Combine(dir.Path, "bad.gguf"));
        });
        Assert.NotNull(e);
        Assert.Contains("256", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadQuantized_F32Tensor_SaysToUseReadAsF32()
    {
        using var dir = new TempDir();
        var writer = new GgufWriter();
        writer.AddTensor("w", GgufTensorType.F32, [4, 2], new byte[32]);
        var path = Path.Combine(dir.Path, "f.gguf");
        writer.WriteTo(path);
        var e = Assert.Throws<GgufFormatException>(() => GgufFile.Open(path).ReadQuantized("w"));
        Assert.Contains("ReadAsF32", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(GgufFileType.MostlyQ8_0, "blk.0.ffn_up.weight", 768, false, GgufTensorType.Q8_0)]
    [InlineData(GgufFileType.MostlyQ8_0, "token_embd.weight", 768, true, GgufTensorType.Q8_0)]
    [InlineData(GgufFileType.MostlyQ4_0, "blk.0.ffn_up.weight", 768, false, GgufTensorType.Q4_0)]
    [InlineData(GgufFileType.MostlyQ4_0, "token_embd.weight", 768, true, GgufTensorType.Q6_K)]
    [InlineData(GgufFileType.MostlyQ4_0, "token_embd.weight", 96, true, GgufTensorType.Q8_0)]
    [InlineData(GgufFileType.MostlyQ4_0, "token_embd.weight", 768, false, GgufTensorType.Q4_0)]
    [InlineData(GgufFileType.MostlyQ4_K, "blk.3.attn_qkv.weight", 768, false, GgufTensorType.Q4_K)]
    [InlineData(GgufFileType.MostlyQ4_K, "blk.3.attn_qkv.weight", 96, false, GgufTensorType.Q8_0)]
    [InlineData(GgufFileType.MostlyQ4_K, "output.weight", 768, false, GgufTensorType.Q6_K)]
    [InlineData(GgufFileType.MostlyQ4_K, "position_embd.weight", 768, false, GgufTensorType.F32)]
    [InlineData(GgufFileType.MostlyQ4_K, "blk.0.ffn_up.weight", 8, false, GgufTensorType.F16)]
    public void TensorType_QuantizedFiles_AsLlamaCppChooses(GgufFileType fileType, string name, long width, bool tied, GgufTensorType expected)
    {
        Assert.Equal(expected, Gpt2GgufExporter.TensorType(fileType, name, [width, 1024], tied));
        Assert.Equal(GgufTensorType.F32, Gpt2GgufExporter.TensorType(fileType, "blk.0.ffn_up.bias", [width], false));
    }

    [Theory]
    [InlineData("q8_0", GgufFileType.MostlyQ8_0)]
    [InlineData("Q4_0", GgufFileType.MostlyQ4_0)]
    [InlineData("q4_k", GgufFileType.MostlyQ4_K)]
    public void ParseFileType_QuantizedNames(string dtype, GgufFileType expected) =>
        Assert.Equal(expected, Gpt2GgufExporter.ParseFileType(dtype));

    [Fact]
    public void Export_TinyQ8_0_NarrowMatricesFallBackToF16()
    {
        // The tiny model's matrices are 8 wide, not whole Q8_0 blocks: llama.cpp falls back for such rows too.
        using var dir = new TempDir();
        var folder = TinyGpt2.Make(dir.Path);
        var output = Path.Combine(folder, "q.gguf");
        Gpt2GgufExporter.Export(folder, output, GgufFileType.MostlyQ8_0);
        var file = GgufFile.Open(output);
        Assert.Equal(7ul, file.Get("general.file_type").AsUInt64(""));
        Assert.Equal(GgufTensorType.F16, file.GetTensor("blk.0.attn_qkv.weight").Type);
        Assert.Equal(GgufTensorType.F32, file.GetTensor("position_embd.weight").Type);
        Assert.Equal(GgufTensorType.F32, file.GetTensor("blk.0.attn_qkv.bias").Type);
    }
}
