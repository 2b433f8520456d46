using System.Text.Json;
using Sharpformer.IO.Config;
using Sharpformer.IO.Gguf;
using Sharpformer.Models.Gpt2;
using Sharpformer.Tensors.Kernels.Quant;

namespace Sharpformer.Models.Tests.Gpt2;

/// <summary>
/// GPT-2 loaded from a GGUF file (AutoModelForCausalLM → Gpt2Gguf) against the same model loaded from its Hugging Face
/// folder: an F32 export gives the same logits; a Q8_0 / Q4_0 export gives layers that multiply by the file's blocks,
/// with logits close to the F32 model's. The comparison with llama.cpp on the same quantized files is in
/// Sharpformer.Peers.Tests (LlamaCppQuantizedModelTests).
/// </summary>
public sealed class Gpt2GgufTests : IDisposable
{
    private const int C = 64;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sf-gpt2-gguf-" + Guid.NewGuid().ToString("N"));

    public Gpt2GgufTests()
    {
        Directory.CreateDirectory(_dir);
        // A random GPT-2 (C = 64: two Q8_0/Q4_0 blocks per row) with a toy byte-level vocabulary of 8 tokens.
        var dto = new Gpt2ConfigJson { ModelType = "gpt2", VocabSize = 8, NPositions = 16, NEmbd = C, NLayer = 2, NHead = 4, ActivationFunction = "gelu_new", BosTokenId = 6, EosTokenId = [6] };
        var model = Gpt2LMHeadModel.FromConfig(Gpt2Config.FromJson(dto), seed: 11);
        model.SaveSafetensors(Path.Combine(_dir, "model.safetensors"));
        File.WriteAllText(Path.Combine(_dir, "config.json"), JsonSerializer.Serialize(dto));
        File.WriteAllText(Path.Combine(_dir, "vocab.json"), """{"a": 0, "b": 1, "Ġ": 2, "ab": 3, "Ġa": 4, "Ġab": 5, "<|endoftext|>": 6}""");
        File.WriteAllText(Path.Combine(_dir, "merges.txt"), "#version: 0.2\na b\nĠ a\nĠa b\n");
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static float[] Logits(Gpt2LMHeadModel model) => model.Forward([0, 3, 2, 5, 1, 4], batch: 1).Logits.ToArray();

    private string Export(GgufFileType type)
    {
        var path = Path.Combine(_dir, $"model-{type}.gguf");
        Gpt2GgufExporter.Export(_dir, path, type);
        return path;
    }

    [Fact]
    public void Load_F32Export_SameLogitsAsTheFolder()
    {
        var expected = Logits(Gpt2LMHeadModel.FromPretrained(_dir));
        var loaded = (Gpt2LMHeadModel)AutoModelForCausalLM.FromPretrained(Export(GgufFileType.AllF32));
        Assert.Equal(2, loaded.Config.NumHiddenLayers);
        Assert.Equal(8, loaded.Config.VocabSize);
        Assert.Null(loaded.Transformer.H[0].Attn.CAttn.QuantizedWeight);
        // The same F32 values through the same kernels: bit for bit.
        Assert.Equal(expected, Logits(loaded));
    }

    [Theory]
    [InlineData(GgufFileType.MostlyQ8_0, QuantType.Q8_0)]
    [InlineData(GgufFileType.MostlyQ4_0, QuantType.Q4_0)]
    public void Load_QuantizedExport_LayersMultiplyByTheFilesBlocks(GgufFileType fileType, QuantType type)
    {
        var path = Export(fileType);
        var loaded = (Gpt2LMHeadModel)AutoModelForCausalLM.FromPretrained(path);
        var file = GgufFile.Open(path);
        var block = loaded.Transformer.H[1];
        Assert.Equal(type, block.Mlp.CProj.QuantizedWeight!.Type);
        Assert.True(block.Mlp.CProj.QuantizedWeight.Data.SequenceEqual(file.ReadBytes(file.GetTensor("blk.1.ffn_down.weight"))));
        Assert.Equal(type, block.Attn.CAttn.QuantizedWeight!.Type);
        // The tied head: token_embd is 64 wide (not whole Q6_K super-blocks), so Q8_0 as llama.cpp would choose.
        Assert.Equal(QuantType.Q8_0, loaded.LmHead.QuantizedWeight!.Type);

        var expected = Logits(Gpt2LMHeadModel.FromPretrained(_dir));
        var actual = Logits(loaded);
        var spread = expected.Max() - expected.Min();
        var worst = expected.Select((v, i) => Math.Abs(v - actual[i])).Max();
        Assert.InRange(worst, 1e-6, Tolerances.QuantizedGgufVsF32 * spread);
    }

    [Fact]
    public void Load_NotGpt2_SaysWhichArchitecture()
    {
        var path = Path.Combine(_dir, "llama.gguf");
        var writer = new GgufWriter();
        writer.Add("general.architecture", GgufValue.FromString("llama"));
        writer.WriteTo(path);
        var e = Assert.Throws<GgufFormatException>(() => Gpt2Gguf.Load(path));
        Assert.Contains("'llama'", e.Message, StringComparison.Ordinal);
    }
}
