using BenchmarkDotNet.Attributes;
using Sharpformer.Tensors;

namespace Sharpformer.Benchmarks;

/// <summary>
/// Cost of the tape on one pre-norm transformer block (B=2, T=32, C=64, H=4, MLP 4C): forward under
/// <see cref="Autograd.NoGrad"/> (the baseline: inference), forward while recording, and forward + backward.
/// The Ratio column compares them within one run. Run:
/// <c>dotnet run -c Release --project benchmarks/Sharpformer.Benchmarks -- --filter '*Autograd*' --job short</c>.
/// </summary>
[MemoryDiagnoser]
public class AutogradBenchmarks
{
    private const int B = 2, T = 32, C = 64, H = 4, V = 50;
    private readonly Dictionary<string, Tensor> _p = [];
    private Tensor _ids = null!;
    private Tensor _targets = null!;

    /// <summary>Deterministic weights and inputs.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(42);
        Tensor Param(params int[] dims)
        {
            var t = Tensor.RandomNormal(new Shape(dims), random, 0f, 0.1f);
            t.RequiresGrad = true;
            return t;
        }

        _p["emb"] = Param(V, C);
        _p["ln1.w"] = Param(C);
        _p["ln1.b"] = Param(C);
        _p["qkv.w"] = Param(3 * C, C);
        _p["qkv.b"] = Param(3 * C);
        _p["proj.w"] = Param(C, C);
        _p["ln2.w"] = Param(C);
        _p["fc1.w"] = Param(4 * C, C);
        _p["fc2.w"] = Param(C, 4 * C);
        _p["head.w"] = Param(V, C);
        var ids = new int[B * T];
        for (int i = 0; i < ids.Length; i++) ids[i] = random.Next(V);
        _ids = Tensor.FromArray(ids, new Shape(B, T));
        _targets = Tensor.FromArray(ids.Select(i => (i + 1) % V).ToArray(), new Shape(B, T));
    }

    private Tensor Loss()
    {
        var x = Ops.Embedding(_ids, _p["emb"]);
        var qkv = Ops.Linear(Ops.LayerNorm(x, _p["ln1.w"], _p["ln1.b"]), _p["qkv.w"], _p["qkv.b"]);
        var q = Ops.SplitHeads(Ops.Narrow(qkv, 2, 0, C), H);
        var k = Ops.SplitHeads(Ops.Narrow(qkv, 2, C, C), H);
        var v = Ops.SplitHeads(Ops.Narrow(qkv, 2, 2 * C, C), H);
        var h = Ops.Add(x, Ops.Linear(Ops.MergeHeads(Ops.ScaledDotProductAttention(q, k, v, causal: true)), _p["proj.w"]));
        var m = Ops.Linear(Ops.Gelu(Ops.Linear(Ops.RmsNorm(h, _p["ln2.w"]), _p["fc1.w"])), _p["fc2.w"]);
        var logits = Ops.Linear(Ops.Add(h, m), _p["head.w"]);
        return Ops.CrossEntropy(logits, _targets);
    }

    /// <summary>Inference: nothing recorded.</summary>
    [Benchmark(Baseline = true)]
    public float ForwardNoGrad()
    {
        using var scope = Autograd.NoGrad();
        return Loss().GetFloat();
    }

    /// <summary>Training forward: nodes and saved activations recorded.</summary>
    [Benchmark]
    public float ForwardRecording() => Loss().GetFloat();

    /// <summary>Training step without the optimizer: forward, backward, then clear the gradients.</summary>
    [Benchmark]
    public float ForwardBackward()
    {
        var loss = Loss();
        loss.Backward();
        foreach (var p in _p.Values) p.ZeroGrad();
        return loss.GetFloat();
    }
}
