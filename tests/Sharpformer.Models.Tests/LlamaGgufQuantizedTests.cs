using Sharpformer.IO.Gguf;
using Sharpformer.Models.Llama;
using Sharpformer.NN;
using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels.Quant;
using Xunit.Abstractions;

namespace Sharpformer.Models.Tests;

/// <summary>
/// Llama-family models through quantized GGUF files (LlamaGguf.Export at q8_0 / q4_0 / q4_k, loaded back by
/// AutoModelForCausalLM): every quantized Linear multiplies by blocks equal byte for byte to quantizing the Hugging Face
/// weight row by row (so the llama q/k row permutation moved whole block rows correctly), the token embedding is the
/// dequantized table, and the logits stay within <see cref="Tolerances.QuantizedGgufVsF32"/> of the logits' spread
/// from the F32 safetensors model. The tiny PyTorch fixtures (hidden 32) exercise Q8_0/Q4_0 and the F16 fallback for
/// rows that are not whole blocks; <see cref="WideLlama"/> (hidden 256) exercises Q4_K and the Q6_K output layer.
/// llama.cpp on the same files: Sharpformer.Peers.Tests (LlamaCppLlamaQuantizedTests).
/// </summary>
public sealed class LlamaGgufQuantizedTests(ITestOutputHelper output) : IDisposable
{
    private static readonly int[] Prompt = [60, 12, 9, 88, 45, 3, 27, 50, 14, 77, 31];
    private readonly string _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "sf-llama-gguf-q-" + Guid.NewGuid().ToString("N"))).FullName;

    public static TheoryData<string, GgufFileType> TinyCases
    {
        get
        {
            var data = new TheoryData<string, GgufFileType>();
            foreach (var name in new[] { "llama", "llama_bias", "mistral", "qwen2", "phi3" })
            {
                data.Add(name, GgufFileType.MostlyQ8_0);
                data.Add(name, GgufFileType.MostlyQ4_0);
            }

            return data;
        }
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "llama", name);

    [Theory]
    [MemberData(nameof(TinyCases))]
    public void TinyFixture_QuantizedExport_LoadsOnTheFilesBlocks(string name, GgufFileType fileType)
    {
        var path = Path.Combine(_dir, $"{name}-{fileType}.gguf");
        LlamaGguf.Export(Fixture(name), path, fileType);
        var file = GgufFile.Open(path);
        var type = fileType == GgufFileType.MostlyQ8_0 ? GgufTensorType.Q8_0 : GgufTensorType.Q4_0;
        // Rows of 32 values are whole blocks; ffn_down's rows of 48 are not, so it stays F16 (as llama.cpp falls back).
        Assert.Equal(type, file.GetTensor(name == "phi3" ? "blk.0.attn_qkv.weight" : "blk.0.attn_q.weight").Type);
        Assert.Equal(GgufTensorType.F16, file.GetTensor("blk.1.ffn_down.weight").Type);
        Assert.Equal(GgufTensorType.F32, file.GetTensor("blk.0.attn_norm.weight").Type);

        var reference = LlamaForCausalLM.FromPretrained(Fixture(name));
        var loaded = (LlamaForCausalLM)AutoModelForCausalLM.FromPretrained(path);
        Assert.Empty(loaded.LoadReport!.Missing);
        Assert.Empty(loaded.LoadReport.Unused);
        Assert.Null(loaded.Model.Layers[1].Mlp.DownProj.QuantizedWeight);
        int quantized = CheckBlocks(reference, loaded, file);
        // q, k, v, o, gate, up in each of 2 layers (phi3: qkv, o, gate_up), and the head.
        Assert.True(quantized >= (name == "phi3" ? 7 : 13), $"{name}: only {quantized} quantized layers");
        CheckLogits(reference, loaded, fileType, $"{name} {fileType}");
    }

    [Theory]
    [InlineData(GgufFileType.MostlyQ8_0, false)]
    [InlineData(GgufFileType.MostlyQ4_0, false)]
    [InlineData(GgufFileType.MostlyQ4_K, false)]
    [InlineData(GgufFileType.MostlyQ4_K, true)]
    public void WideModel_QuantizedExport_TypesAsLlamaCppPicksAndLogitsClose(GgufFileType fileType, bool tied)
    {
        var folder = WideLlama.Create(Path.Combine(_dir, tied ? "tied" : "untied"), tied);
        var path = Path.Combine(_dir, $"wide-{fileType}-{tied}.gguf");
        LlamaGguf.Export(folder, path, fileType);
        var file = GgufFile.Open(path);
        var body = fileType switch
        {
            GgufFileType.MostlyQ8_0 => GgufTensorType.Q8_0,
            GgufFileType.MostlyQ4_0 => GgufTensorType.Q4_0,
            _ => GgufTensorType.Q4_K,
        };
        var head = fileType == GgufFileType.MostlyQ8_0 ? GgufTensorType.Q8_0 : GgufTensorType.Q6_K;
        foreach (var info in file.Tensors)
        {
            var expected = info.Dims.Count == 1 ? GgufTensorType.F32
                : info.Name == "output.weight" || (tied && info.Name == "token_embd.weight") ? head
                : body;
            Assert.True(expected == info.Type, $"{info.Name}: {info.Type}, expected {expected}");
        }

        var reference = LlamaForCausalLM.FromPretrained(folder);
        var loaded = (LlamaForCausalLM)AutoModelForCausalLM.FromPretrained(path);
        Assert.Equal((QuantType)head, loaded.LmHead.QuantizedWeight!.Type);
        Assert.Equal((QuantType)body, loaded.Model.Layers[0].SelfAttn.KProj!.QuantizedWeight!.Type);
        // q, k, v, o, gate, up, down in each of 2 layers, and the head (the tied head on token_embd's blocks).
        Assert.Equal(15, CheckBlocks(reference, loaded, file));
        // Decode through the KV cache on the blocks: the last step's logits agree with the full forward's.
        var cache = loaded.CreateCache(1, Prompt.Length);
        var step = new float[loaded.VocabSize];
        loaded.ForwardLast(Prompt.AsSpan(0, Prompt.Length - 1), default, cache, step);
        loaded.ForwardLast(Prompt.AsSpan(Prompt.Length - 1), default, cache, step);
        var full = Last(loaded.Forward(Prompt, 1).Logits.ToArray(), loaded.VocabSize);
        float diff = step.Select((v, i) => Math.Abs(v - full[i])).Max();
        float spread = full.Max() - full.Min();
        output.WriteLine($"wide {fileType} tied={tied}: decode vs full forward max |Δlogit| = {diff:E3} of a spread of {spread:F3} ({diff / spread:F4})");
        Assert.True(diff <= Tolerances.QuantizedDecodeVsFullForward * spread, $"decode vs full forward on the same blocks: max |Δlogit| = {diff} of a spread of {spread}");
        CheckLogits(reference, loaded, fileType, $"wide {fileType} tied={tied}");
    }

    [Fact]
    public void Load_UnsupportedBlockType_NamesTypeAndTensor()
    {
        var path = Path.Combine(_dir, "q41.gguf");
        var source = Path.Combine(_dir, "plain.gguf");
        LlamaGguf.Export(Fixture("qwen2"), source);
        var file = GgufFile.Open(source);
        var writer = new GgufWriter();
        foreach (var (key, value) in file.MetadataInOrder)
        {
            if (key != GgufWriter.AlignmentKey)
            {
                writer.Add(key, value);
            }
        }

        foreach (var info in file.Tensors)
        {
            // Q4_1: blocks of 32 values in 20 bytes (F16 d and m, 16 bytes of nibbles), not a type Sharpformer multiplies by.
            var bytes = info.Name == "blk.1.ffn_gate.weight" ? new byte[info.ElementCount / 32 * 20] : file.ReadBytes(info);
            writer.AddTensor(info.Name, info.Name == "blk.1.ffn_gate.weight" ? GgufTensorType.Q4_1 : info.Type, info.Dims, bytes);
        }

        writer.WriteTo(path);
        var e = Assert.Throws<NotSupportedException>(() => LlamaForCausalLM.FromGguf(path));
        Assert.Contains("Q4_1", e.Message, StringComparison.Ordinal);
        Assert.Contains("blk.1.ffn_gate.weight", e.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Each quantized Linear of <paramref name="loaded"/> holds exactly the blocks of quantizing the reference layer's
    /// weight row by row (ggml's quantizers are row-local, so a q/k row permutation commutes with quantizing), in the
    /// file's type; the embedding table is the dequantized token_embd. Returns how many layers were quantized.
    /// </summary>
    private static int CheckBlocks(LlamaForCausalLM reference, LlamaForCausalLM loaded, GgufFile file)
    {
        var references = reference.NamedModules().Where(m => m.Module is Linear).ToDictionary(m => m.Name, m => (Linear)m.Module);
        int count = 0;
        foreach (var (name, module) in loaded.NamedModules())
        {
            if (module is not Linear { QuantizedWeight: { } blocks } linear)
            {
                continue;
            }

            var dense = references[name].Weight.Value.Contiguous().ToArray();
            var expected = QuantizedMatrix.Quantize(dense, linear.OutFeatures, linear.InFeatures, blocks.Type);
            Assert.True(expected.Data.SequenceEqual(blocks.Data), $"{name}: {blocks.Type} blocks differ from quantizing the Hugging Face weight");
            count++;
        }

        var embd = file.GetTensor("token_embd.weight");
        var table = reference.Model.EmbedTokens.Weight.Value.Contiguous().ToArray();
        if (embd.Type is GgufTensorType.Q8_0 or GgufTensorType.Q4_0 or GgufTensorType.Q4_K or GgufTensorType.Q6_K)
        {
            var q = QuantizedMatrix.Quantize(table, reference.Config.VocabSize, reference.Config.HiddenSize, (QuantType)embd.Type);
            table = new float[table.Length];
            q.DequantizeRows(0, q.Rows, table);
        }

        Assert.Equal(table, loaded.Model.EmbedTokens.Weight.Value.To(DType.F32).ToArray());
        return count;
    }

    /// <summary>
    /// The loaded model's logits against the F32 reference (the weights' 4- or 8-bit rounding; per-type tolerance), then
    /// against the same model with its blocks dropped (<see cref="Linear.Dequantize"/>: F32 products on the dequantized
    /// values), which isolates the block kernels: only the 8-bit quantization of the activations differs. Drops the
    /// blocks of <paramref name="loaded"/>.
    /// </summary>
    private void CheckLogits(LlamaForCausalLM reference, LlamaForCausalLM loaded, GgufFileType fileType, string label)
    {
        var expected = reference.Forward(Prompt, 1).Logits.ToArray();
        var actual = loaded.Forward(Prompt, 1).Logits.ToArray();
        float spread = expected.Max() - expected.Min();
        float worst = expected.Select((v, i) => Math.Abs(v - actual[i])).Max();
        output.WriteLine($"{label}: vs F32 max |Δlogit| = {worst:E3} of a spread of {spread:F3} ({worst / spread:F4})");
        Assert.True(worst > 0f && worst <= Tolerances.QuantizedLlamaGgufVsF32[fileType.ToString()] * spread, $"{label}: max |Δlogit| = {worst:E3}, spread {spread:F3}");

        foreach (var (_, module) in loaded.NamedModules())
        {
            if (module is Linear { QuantizedWeight: not null } linear)
            {
                linear.Dequantize();
            }
        }

        var dense = loaded.Forward(Prompt, 1).Logits.ToArray();
        float kernel = dense.Select((v, i) => Math.Abs(v - actual[i])).Max();
        output.WriteLine($"{label}: blocks vs dequantized weights max |Δlogit| = {kernel:E3} ({kernel / spread:F4} of the spread)");
        Assert.True(kernel > 0f && kernel <= Tolerances.QuantizedBlocksVsDequantized * spread, $"{label}: blocks vs dequantized weights max |Δlogit| = {kernel:E3}, spread {spread:F3}");
    }

    private static float[] Last(float[] logits, int vocab) => logits[^vocab..];
}
