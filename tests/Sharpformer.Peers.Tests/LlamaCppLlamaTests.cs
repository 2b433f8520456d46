using System.Text.Json;
using LLama;
using LLama.Common;
using LLama.Native;
using Sharpformer.IO.Gguf;
using Sharpformer.Models.Llama;

namespace Sharpformer.Peers.Tests;

/// <summary>
/// llama.cpp (LLamaSharp + its CPU backend) on our GGUF export of the PyTorch tiny Llama models, against Sharpformer on
/// the same file: next-token logits of the fixture prompts and greedy continuations. "llama" has grouped-query
/// attention, an untied head and Llama 3 rope scaling (rope_freqs.weight); "llama_bias" has attention and MLP biases,
/// a tied head and linear rope scaling. Mistral/Qwen2 (sliding window) are left out: llama.cpp's llama and qwen2 graphs
/// have no window.
/// </summary>
public sealed class LlamaCppLlamaTests
{
    public static TheoryData<string, GgufFileType> Cases => new()
    {
        { "llama", GgufFileType.AllF32 },
        { "llama_bias", GgufFileType.AllF32 },
        { "llama", GgufFileType.MostlyF16 },
    };

    private static string Folder(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "llama", name);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Logits_AndGreedy_MatchLlamaCppOnTheSameFile(string name, GgufFileType type)
    {
        var path = Path.Combine(Path.GetTempPath(), $"sharpformer-peer-{name}-{Guid.NewGuid():N}.gguf");
        try
        {
            LlamaGguf.Export(Folder(name), path, type);
            var ours = LlamaForCausalLM.FromGguf(path, type == GgufFileType.MostlyF16 ? Tensors.DType.F16 : Tensors.DType.F32);
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder(name), "expected.json")));
            var prompts = doc.RootElement.GetProperty("prompts").EnumerateArray().Select(p => p.EnumerateArray().Select(e => e.GetInt32()).ToArray()).ToArray();
            float tolerance = type == GgufFileType.AllF32 ? Tolerances.LogitsVsLlamaCppF32 : Tolerances.LogitsVsLlamaCppF16Weights;
            using var peer = new Peer(path, ours.MaxPositions);
            foreach (var prompt in prompts)
            {
                var expected = Last(ours.Forward(prompt, 1).Logits.ToArray(), ours.VocabSize);
                var actual = peer.LastLogits(prompt);
                float diff = expected.Zip(actual, (a, b) => Math.Abs(a - b)).Max();
                Assert.True(diff <= tolerance, $"{name} {type}: max |Δlogit| = {diff:E3} > {tolerance:E0}");
                Assert.True(expected.Max() - expected.Min() > 1f);

                var context = prompt.ToList();
                var greedy = new List<int>();
                for (int step = 0; step < 10; step++)
                {
                    int next = ArgMax(Last(ours.Forward(context.ToArray(), 1).Logits.ToArray(), ours.VocabSize));
                    greedy.Add(next);
                    context.Add(next);
                }

                Assert.Equal(greedy, peer.Greedy(prompt, 10));
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static float[] Last(float[] logits, int vocab) => logits[^vocab..];

    private static int ArgMax(float[] values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }

    /// <summary>llama.cpp over one GGUF file: F32 KV cache, no flash attention.</summary>
    private sealed class Peer : IDisposable
    {
        private readonly LLamaWeights _weights;
        private readonly LLamaContext _context;

        public Peer(string gguf, int context)
        {
            var parameters = new ModelParams(gguf)
            {
                ContextSize = (uint)context,
                BatchSize = (uint)context,
                Threads = 2,
                TypeK = GGMLType.GGML_TYPE_F32,
                TypeV = GGMLType.GGML_TYPE_F32,
                FlashAttention = false,
            };
            _weights = LLamaWeights.LoadFromFile(parameters);
            _context = _weights.CreateContext(parameters);
        }

        public float[] LastLogits(int[] ids)
        {
            _context.NativeHandle.MemoryClear(true);
            var batch = new LLamaBatch();
            for (int i = 0; i < ids.Length; i++)
            {
                batch.Add(ids[i], i, LLamaSeqId.Zero, i == ids.Length - 1);
            }

            Decode(batch);
            return _context.NativeHandle.GetLogitsIth(ids.Length - 1).ToArray();
        }

        public List<int> Greedy(int[] ids, int steps)
        {
            var logits = LastLogits(ids);
            var output = new List<int>();
            int position = ids.Length;
            for (int step = 0; step < steps; step++)
            {
                int next = ArgMax(logits);
                output.Add(next);
                var batch = new LLamaBatch();
                batch.Add(next, position++, LLamaSeqId.Zero, true);
                Decode(batch);
                logits = _context.NativeHandle.GetLogitsIth(0).ToArray();
            }

            return output;
        }

        public void Dispose()
        {
            _context.Dispose();
            _weights.Dispose();
        }

        private void Decode(LLamaBatch batch)
        {
            var result = _context.NativeHandle.Decode(batch);
            Assert.True(result == DecodeResult.Ok, $"llama_decode returned {result}");
        }
    }
}
