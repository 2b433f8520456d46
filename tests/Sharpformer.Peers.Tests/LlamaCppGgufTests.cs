using LLama;
using LLama.Common;
using LLama.Native;
using Sharpformer.IO.Gguf;
using Sharpformer.Models.Gpt2;
using Sharpformer.Tensors;
using Sharpformer.Text;

namespace Sharpformer.Peers.Tests;

/// <summary>
/// The GGUF export run by llama.cpp (LLamaSharp + its CPU backend) against Sharpformer's GPT-2 on the same weights:
/// tokenization, next-token logits and greedy continuations.
/// </summary>
public sealed class LlamaCppGgufTests
{
    private static readonly string[] Prompts =
    [
        "Hello, world! This is a test.",
        "The quick brown fox jumps over the lazy dog",
        "  leading spaces and trailing   ",
        "Numbers: 3.14159, 2,718 and 1e-10; isn't it?",
        "Unicode: café, naïve, 日本語, emoji 🤖!",
        "def f(x):\n    return x ** 2  # square\n",
        "I'm sure they'll've done it, we'd said so.",
        "<|endoftext|> is written as text here",
    ];

    private static readonly Lazy<string> F32Gguf = new(() => Export(GgufFileType.AllF32));
    private static readonly Lazy<string> F16Gguf = new(() => Export(GgufFileType.MostlyF16));
    private static readonly Lazy<Gpt2LMHeadModel> Model = new(() => Gpt2LMHeadModel.FromPretrained(Gpt2Fixture.Folder));

    // The F16-stored copy of the fixture, exported losslessly at MostlyF16 and loaded by us with F16 matrices.
    private static readonly Lazy<string> F16StoredGguf = new(() => Export(GgufFileType.MostlyF16, Gpt2Fixture.F16Folder));
    private static readonly Lazy<Gpt2LMHeadModel> F16Model = new(() => Gpt2LMHeadModel.FromPretrained(Gpt2Fixture.F16Folder, DType.F16));

    [Fact]
    public void Tokenize_RealGpt2Vocabulary_MatchesSharpformerTokenizer()
    {
        using var peer = new Peer(F32Gguf.Value);
        var ours = AutoTokenizer.FromPretrained(Gpt2Fixture.Folder);
        foreach (var prompt in Prompts)
        {
            Assert.Equal(ours.Encode(prompt).Ids, peer.Tokenize(prompt));
        }
    }

    [Fact]
    public void NextTokenLogits_F32Export_MatchReferenceWithin1e3()
    {
        using var peer = new Peer(F32Gguf.Value);
        var ours = AutoTokenizer.FromPretrained(Gpt2Fixture.Folder);
        foreach (var prompt in Prompts)
        {
            var ids = ours.Encode(prompt).Ids.ToArray();
            var expected = LastLogits(ids);
            var actual = peer.LastLogits(ids);
            var diff = MaxAbsDiff(expected, actual);
            Assert.True(diff <= Tolerances.LogitsVsLlamaCppF32, $"prompt '{prompt}': max |Δlogit| = {diff:E3} > {Tolerances.LogitsVsLlamaCppF32:E0}");
            // Not a trivially zero model: logits spread well beyond the tolerance.
            Assert.True(expected.Max() - expected.Min() > 1f);
        }
    }

    [Fact]
    public void GreedyContinuation_F32Export_MatchesReferenceTokenForToken()
    {
        using var peer = new Peer(F32Gguf.Value);
        var ours = AutoTokenizer.FromPretrained(Gpt2Fixture.Folder);
        foreach (var prompt in Prompts.Take(4))
        {
            var ids = ours.Encode(prompt).Ids.ToList();
            var expected = new List<int>();
            var context = new List<int>(ids);
            for (var step = 0; step < 12; step++)
            {
                var next = ArgMax(LastLogits(context));
                expected.Add(next);
                context.Add(next);
            }

            Assert.Equal(expected, peer.Greedy(ids, 12));
        }
    }

    [Fact]
    public void NextTokenLogits_F16Export_LoadsAndStaysCloseToReference()
    {
        var file = GgufFile.Open(F16Gguf.Value);
        Assert.Equal(GgufTensorType.F16, file.GetTensor("blk.0.attn_qkv.weight").Type);
        Assert.Equal(GgufTensorType.F32, file.GetTensor("blk.0.attn_qkv.bias").Type);
        using var peer = new Peer(F16Gguf.Value);
        var ours = AutoTokenizer.FromPretrained(Gpt2Fixture.Folder);
        var ids = ours.Encode(Prompts[0]).Ids.ToArray();
        var diff = MaxAbsDiff(LastLogits(ids), peer.LastLogits(ids));
        Assert.True(diff <= Tolerances.LogitsVsLlamaCppF16, $"F16 export: max |Δlogit| = {diff:E3}");
        Assert.Equal(12, peer.Greedy(ids, 12).Count);
    }

    [Fact]
    public void NextTokenLogits_F16ExportVsF16Model_MatchWithinActivationRounding()
    {
        var file = GgufFile.Open(F16StoredGguf.Value);
        Assert.Equal(GgufTensorType.F16, file.GetTensor("token_embd.weight").Type);
        Assert.Equal(GgufTensorType.F16, file.GetTensor("blk.1.ffn_down.weight").Type);
        Assert.Equal(DType.F16, F16Model.Value.WeightType);
        using var peer = new Peer(F16StoredGguf.Value);
        var ours = AutoTokenizer.FromPretrained(Gpt2Fixture.F16Folder);
        foreach (var prompt in Prompts)
        {
            var ids = ours.Encode(prompt).Ids.ToArray();
            var expected = LastLogits(F16Model, ids);
            var diff = MaxAbsDiff(expected, peer.LastLogits(ids));
            Assert.True(diff <= Tolerances.LogitsVsLlamaCppF16Weights, $"prompt '{prompt}': max |Δlogit| = {diff:E3} > {Tolerances.LogitsVsLlamaCppF16Weights:E0}");
            Assert.True(expected.Max() - expected.Min() > 1f);
        }
    }

    [Fact]
    public void GreedyContinuation_F16ExportVsF16Model_MatchesTokenForToken()
    {
        using var peer = new Peer(F16StoredGguf.Value);
        var ours = AutoTokenizer.FromPretrained(Gpt2Fixture.F16Folder);
        foreach (var prompt in Prompts.Take(4))
        {
            var ids = ours.Encode(prompt).Ids.ToList();
            var expected = new List<int>();
            var context = new List<int>(ids);
            for (var step = 0; step < 12; step++)
            {
                var next = ArgMax(LastLogits(F16Model, context));
                expected.Add(next);
                context.Add(next);
            }

            Assert.Equal(expected, peer.Greedy(ids, 12));
        }
    }

    /// <summary>Sharpformer's GPT-2 (branch gpt2), whole sequence, no cache. ids: [T] → logits of the last position [V].</summary>
    private static float[] LastLogits(IReadOnlyList<int> ids) => LastLogits(Model, ids);

    /// <summary>As above with the given model. ids: [T] → logits of the last position [V].</summary>
    private static float[] LastLogits(Lazy<Gpt2LMHeadModel> model, IReadOnlyList<int> ids)
    {
        lock (model)
        {
            // The model reuses work buffers (not thread-safe); xUnit runs test classes in parallel.
            var logits = model.Value.Forward(ids.ToArray(), batch: 1).Logits.AsReadOnlySpan<float>();
            return logits[^Gpt2Fixture.Vocab..].ToArray();
        }
    }

    private static string Export(GgufFileType type) => Export(type, Gpt2Fixture.Folder);

    private static string Export(GgufFileType type, string folder)
    {
        var path = Path.Combine(Gpt2Fixture.NewFolder("gguf"), $"model-{type}.gguf");
        Gpt2GgufExporter.Export(folder, path, type);
        return path;
    }

    private static float MaxAbsDiff(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        var max = 0f;
        for (var i = 0; i < a.Length; i++)
        {
            max = Math.Max(max, Math.Abs(a[i] - b[i]));
        }

        return max;
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

    /// <summary>
    /// One llama.cpp model + context over a GGUF file: F32 KV cache and no flash attention, so that only the weights'
    /// type decides the precision.
    /// </summary>
    private sealed class Peer : IDisposable
    {
        private readonly LLamaWeights _weights;
        private readonly LLamaContext _context;

        public Peer(string gguf)
        {
            var parameters = new ModelParams(gguf)
            {
                ContextSize = (uint)Gpt2Fixture.Positions,
                BatchSize = (uint)Gpt2Fixture.Positions,
                Threads = 2,
                TypeK = GGMLType.GGML_TYPE_F32,
                TypeV = GGMLType.GGML_TYPE_F32,
                // llama.cpp's CPU flash attention (on by default: "auto") rounds through fp16 and moved these logits by
                // up to 2.4e-3; the classic attention path agrees to ~2e-4.
                FlashAttention = false,
            };
            _weights = LLamaWeights.LoadFromFile(parameters);
            _context = _weights.CreateContext(parameters);
        }

        public int[] Tokenize(string text) => _context.Tokenize(text, addBos: false, special: true).Select(t => (int)t).ToArray();

        public float[] LastLogits(IReadOnlyList<int> ids)
        {
            _context.NativeHandle.MemoryClear(true);
            var batch = new LLamaBatch();
            for (var i = 0; i < ids.Count; i++)
            {
                batch.Add(ids[i], i, LLamaSeqId.Zero, i == ids.Count - 1);
            }

            Decode(batch);
            return _context.NativeHandle.GetLogitsIth(ids.Count - 1).ToArray();
        }

        public List<int> Greedy(IReadOnlyList<int> ids, int steps)
        {
            var logits = LastLogits(ids);
            var output = new List<int>();
            var position = ids.Count;
            for (var step = 0; step < steps; step++)
            {
                var next = ArgMax(logits);
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
