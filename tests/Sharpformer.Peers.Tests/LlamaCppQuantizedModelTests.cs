using LLama;
using LLama.Common;
using LLama.Native;
using Sharpformer.IO.Gguf;
using Sharpformer.Models;
using Sharpformer.Models.Gpt2;
using Sharpformer.Text;

namespace Sharpformer.Peers.Tests;

/// <summary>
/// A quantized GPT-2 GGUF file (our `convert gguf --dtype q8_0|q4_0|q4_k` export of a width-256 random GPT-2) run by
/// llama.cpp and by Sharpformer loading the same file (AutoModelForCausalLM → Gpt2Gguf: the layers multiply by the
/// file's blocks, activations quantized to 8 bits per block as llama.cpp does): next-token logits within each type's
/// tolerance and greedy continuations token for token.
/// </summary>
public sealed class LlamaCppQuantizedModelTests
{
    private static readonly string[] Prompts =
    [
        "Hello, world! This is a test.",
        "The quick brown fox jumps over the lazy dog",
        "Numbers: 3.14159, 2,718 and 1e-10; isn't it?",
        "def f(x):\n    return x ** 2  # square\n",
    ];

    [Theory]
    [InlineData(GgufFileType.MostlyQ8_0)]
    [InlineData(GgufFileType.MostlyQ4_0)]
    [InlineData(GgufFileType.MostlyQ4_K)]
    public void SameQuantizedFile_LogitsWithinToleranceAndGreedyTextEqual(GgufFileType fileType)
    {
        var folder = LlamaCppQuantizeTests.WideFolder;
        var path = Path.Combine(Gpt2Fixture.NewFolder("quantized-model"), $"model-{fileType}.gguf");
        Gpt2GgufExporter.Export(folder, path, fileType);
        var ours = (Gpt2LMHeadModel)AutoModelForCausalLM.FromPretrained(path);
        ours.KvCacheType = Tensors.DType.F32; // as llama.cpp's cache below: the comparison is of the blocks' math
        Assert.NotNull(ours.Transformer.H[0].Mlp.CFc.QuantizedWeight);
        Assert.NotNull(ours.LmHead.QuantizedWeight);
        var tokenizer = AutoTokenizer.FromPretrained(folder);
        var tolerance = Tolerances.LogitsVsLlamaCppQuantized[fileType.ToString()];

        NativeApi.llama_empty_call();
        var parameters = new ModelParams(path)
        {
            ContextSize = 128,
            BatchSize = 128,
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
            var ids = tokenizer.Encode(prompt).Ids.ToList();
            var expected = Last(ours, ids);
            var actual = PeerLogits(context, ids, 0);
            var diff = expected.Select((v, i) => Math.Abs(v - actual[i])).Max();
            worst = Math.Max(worst, diff);
            Assert.True(expected.Max() - expected.Min() > 1f, "the logits should spread well beyond the tolerance");

            // Greedy: 12 tokens, ours on the whole sequence each step, llama.cpp through its KV cache.
            var context1 = new List<int>(ids);
            var mine = new List<int>();
            for (var step = 0; step < 12; step++)
            {
                var next = ArgMax(Last(ours, context1));
                mine.Add(next);
                context1.Add(next);
            }

            var theirs = new List<int>();
            var logits = actual;
            for (var step = 0; step < 12; step++)
            {
                var next = ArgMax(logits);
                theirs.Add(next);
                var batch = new LLamaBatch();
                batch.Add(next, ids.Count + step, LLamaSeqId.Zero, true);
                Assert.Equal(DecodeResult.Ok, context.NativeHandle.Decode(batch));
                logits = context.NativeHandle.GetLogitsIth(0).ToArray();
            }

            Assert.Equal(theirs, mine);
        }

        Assert.True(worst <= tolerance, $"{fileType}: max |Δlogit| = {worst:E3}");
    }

    private static float[] Last(Gpt2LMHeadModel model, IReadOnlyList<int> ids)
    {
        var logits = model.Forward(ids.ToArray(), batch: 1).Logits.AsReadOnlySpan<float>();
        return logits[^Gpt2Fixture.Vocab..].ToArray();
    }

    private static float[] PeerLogits(LLamaContext context, List<int> ids, int start)
    {
        context.NativeHandle.MemoryClear(true);
        var batch = new LLamaBatch();
        for (var i = start; i < ids.Count; i++)
        {
            batch.Add(ids[i], i, LLamaSeqId.Zero, i == ids.Count - 1);
        }

        Assert.Equal(DecodeResult.Ok, context.NativeHandle.Decode(batch));
        return context.NativeHandle.GetLogitsIth(ids.Count - 1 - start).ToArray();
    }

    private static int ArgMax(ReadOnlySpan<float> values)
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
