using LLama;
using LLama.Common;
using LLama.Native;
using Sharpformer.IO.Gguf;
using Sharpformer.Models;
using Sharpformer.Models.Llama;
using Sharpformer.Models.Tests;
using Sharpformer.Tensors.Kernels.Quant;
using Xunit.Abstractions;

namespace Sharpformer.Peers.Tests;

/// <summary>
/// Quantized Llama GGUF files (our <c>convert gguf --dtype q8_0|q4_0|q4_k</c> export of <see cref="WideLlama"/>: grouped-query
/// attention, q/k rows permuted for llama.cpp, an untied Q6_K head) run by llama.cpp and by Sharpformer loading the same
/// file (AutoModelForCausalLM → LlamaGguf: every projection multiplies by the file's blocks): next-token logits within
/// each type's tolerance (also at every step of the greedy continuation) and greedy continuations token for token
/// (up to a near-tie within the tolerance). And the export against llama.cpp's own quantizer
/// (llama_model_quantize) on our F32 export of the same model: the same tensor types, except where its Q4_K_S mix uses
/// Q5_K, and the same bytes.
/// </summary>
public sealed class LlamaCppLlamaQuantizedTests(ITestOutputHelper output)
{
    private static readonly Lazy<string> Folder = new(() => WideLlama.Create(Gpt2Fixture.NewFolder("llama-wide"), tied: false));

    private static readonly int[][] Prompts =
    [
        [1, 60, 12, 9, 88, 45, 3, 27, 50, 14, 77, 31],
        [1, 5, 17, 42, 8, 33, 71, 2],
        [1, 90, 90, 90, 4, 4, 4, 61, 62, 63, 64, 65, 66, 67],
        [1, 30],
    ];

    [Theory]
    [InlineData(GgufFileType.MostlyQ8_0)]
    [InlineData(GgufFileType.MostlyQ4_0)]
    [InlineData(GgufFileType.MostlyQ4_K)]
    public void SameQuantizedFile_LogitsWithinToleranceAndGreedyEqual(GgufFileType fileType)
    {
        var path = Path.Combine(Gpt2Fixture.NewFolder("llama-quantized"), $"model-{fileType}.gguf");
        LlamaGguf.Export(Folder.Value, path, fileType);
        var ours = (LlamaForCausalLM)AutoModelForCausalLM.FromPretrained(path);
        ours.KvCacheType = Tensors.DType.F32; // as llama.cpp's cache below: the comparison is of the blocks' math
        Assert.NotNull(ours.Model.Layers[0].SelfAttn.QProj!.QuantizedWeight);
        Assert.NotNull(ours.Model.Layers[1].Mlp.DownProj.QuantizedWeight);
        Assert.NotNull(ours.LmHead.QuantizedWeight);
        var tolerance = Tolerances.LlamaLogitsVsLlamaCppQuantized[fileType.ToString()];

        NativeApi.llama_empty_call();
        var parameters = new ModelParams(path)
        {
            ContextSize = (uint)ours.MaxPositions,
            BatchSize = (uint)ours.MaxPositions,
            Threads = 2,
            TypeK = GGMLType.GGML_TYPE_F32,
            TypeV = GGMLType.GGML_TYPE_F32,
            FlashAttention = false,
        };
        using var weights = LLamaWeights.LoadFromFile(parameters);
        using var context = weights.CreateContext(parameters);
        var worst = 0f;
        foreach (var prompt in Prompts)
        {
            var expected = Last(ours, prompt);
            var actual = PeerLogits(context, prompt);
            worst = Math.Max(worst, expected.Select((v, i) => Math.Abs(v - actual[i])).Max());
            Assert.True(expected.Max() - expected.Min() > 1f, "the logits should spread well beyond the tolerance");

            // Greedy: 10 tokens, llama.cpp through its KV cache, ours on the whole sequence each step. The texts must be
            // equal, except that a step whose two best logits (ours) lie within the tolerance is a tie the engines may
            // break either way: the comparison of that prompt ends there.
            var sequence = prompt.ToList();
            var logits = actual;
            for (var step = 0; step < 10; step++)
            {
                var theirs = ArgMax(logits);
                var mine = Last(ours, sequence.ToArray());
                var next = ArgMax(mine);
                if (next != theirs)
                {
                    Assert.True(mine[next] - mine[theirs] <= tolerance, $"{fileType}, prompt of {prompt.Length} tokens, step {step}: ours {next}, llama.cpp {theirs}, logit gap {mine[next] - mine[theirs]:E3} > {tolerance:E0}");
                    output.WriteLine($"{fileType}, prompt of {prompt.Length}: a tie at step {step} (gap {mine[next] - mine[theirs]:E3}); equal before it");
                    break;
                }

                sequence.Add(next);
                var batch = new LLamaBatch();
                batch.Add(next, prompt.Length + step, LLamaSeqId.Zero, true);
                Assert.Equal(DecodeResult.Ok, context.NativeHandle.Decode(batch));
                logits = context.NativeHandle.GetLogitsIth(0).ToArray();
                worst = Math.Max(worst, Last(ours, sequence.ToArray()).Select((v, i) => Math.Abs(v - logits[i])).Max());
            }
        }

        output.WriteLine($"{fileType}: max |Δlogit| vs llama.cpp = {worst:E3}");
        Assert.True(worst <= tolerance, $"{fileType}: max |Δlogit| = {worst:E3} > {tolerance:E0}");
    }

    [Theory]
    [InlineData(GgufFileType.MostlyQ8_0, LLamaFtype.MOSTLY_Q8_0)]
    [InlineData(GgufFileType.MostlyQ4_0, LLamaFtype.MOSTLY_Q4_0)]
    [InlineData(GgufFileType.MostlyQ4_K, LLamaFtype.MOSTLY_Q4_K_S)]
    public void Export_Quantized_SameTypesAndBytesAsLlamaCppQuantize(GgufFileType fileType, LLamaFtype ftype)
    {
        var dir = Gpt2Fixture.NewFolder("llama-quantize");
        var f32 = Path.Combine(dir, "model-f32.gguf");
        LlamaGguf.Export(Folder.Value, f32);
        var theirsPath = Path.Combine(dir, $"model-{ftype}.gguf");
        NativeApi.llama_empty_call();
        var parameters = LLamaModelQuantizeParams.Default();
        parameters.ftype = ftype;
        parameters.nthread = 2;
        parameters.pure = false;
        parameters.quantize_output_tensor = true;
        Assert.Equal(0u, NativeApi.llama_model_quantize(f32, theirsPath, ref parameters));
        var oursPath = Path.Combine(dir, $"model-{fileType}.gguf");
        LlamaGguf.Export(Folder.Value, oursPath, fileType);

        var theirs = GgufFile.Open(theirsPath);
        var mine = GgufFile.Open(oursPath);
        Assert.Equal(theirs.Tensors.Select(t => t.Name).Order(), mine.Tensors.Select(t => t.Name).Order());
        var compared = 0;
        foreach (var tensor in theirs.Tensors)
        {
            var own = mine.GetTensor(tensor.Name);
            if (fileType == GgufFileType.MostlyQ4_K && tensor.Type == GgufTensorType.Q5_K)
            {
                // llama.cpp's Q4_K_S gives attn_v of the first four layers Q5_K, a type Sharpformer does not implement;
                // our export keeps it Q4_K (LlamaGguf.TensorType says so).
                Assert.EndsWith(".attn_v.weight", tensor.Name, StringComparison.Ordinal);
                Assert.Equal(GgufTensorType.Q4_K, own.Type);
                continue;
            }

            Assert.True(tensor.Type == own.Type, $"{tensor.Name}: ours {own.Type}, llama.cpp {tensor.Type}");
            Assert.True(mine.ReadBytes(own).AsSpan().SequenceEqual(theirs.ReadBytes(tensor)), $"{tensor.Name} ({own.Type}): bytes differ from llama.cpp's");
            if (Enum.IsDefined((QuantType)tensor.Type))
            {
                compared++;
            }
        }

        // token_embd, output and the seven matrices of each layer, less what llama.cpp made Q5_K.
        Assert.True(compared >= (fileType == GgufFileType.MostlyQ4_K ? 14 : 16), $"only {compared} quantized tensors compared");
    }

    private static float[] Last(LlamaForCausalLM model, int[] ids) =>
        model.Forward(ids, 1).Logits.ToArray()[^model.VocabSize..];

    private static float[] PeerLogits(LLamaContext context, int[] ids)
    {
        context.NativeHandle.MemoryClear(true);
        var batch = new LLamaBatch();
        for (var i = 0; i < ids.Length; i++)
        {
            batch.Add(ids[i], i, LLamaSeqId.Zero, i == ids.Length - 1);
        }

        Assert.Equal(DecodeResult.Ok, context.NativeHandle.Decode(batch));
        return context.NativeHandle.GetLogitsIth(ids.Length - 1).ToArray();
    }

    private static int ArgMax(float[] values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }
}
