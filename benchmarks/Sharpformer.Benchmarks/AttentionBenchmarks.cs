using BenchmarkDotNet.Attributes;
using Sharpformer.Tensors.Kernels;

namespace Sharpformer.Benchmarks;

/// <summary>
/// Fused attention at BERT-base / MiniLM shapes (B = 1, H = 12, T = 128, D = 64 / 32) against the naive double reference,
/// forward with and without returned weights or the log-sum-exp, and both backwards (from saved probabilities, and blocked
/// from the log-sum-exp). Training shapes with interleaved A/B timing: <see cref="AttentionTrainingHarness"/>.
/// </summary>
[MemoryDiagnoser]
public class AttentionBenchmarks
{
    private const int B = 1, H = 12, T = 128;
    private AttentionShape _shape;
    private float[] _q = [];
    private float[] _k = [];
    private float[] _v = [];
    private float[] _o = [];
    private float[] _p = [];
    private float[] _lse = [];
    private float[] _dq = [];
    private float[] _dk = [];
    private float[] _dv = [];

    [Params(32, 64)]
    public int D { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        int n = B * T * H * D;
        float[] Rand() => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        _shape = new AttentionShape(B, H, T, T, D);
        (_q, _k, _v) = (Rand(), Rand(), Rand());
        (_o, _dq, _dk, _dv) = (new float[n], new float[n], new float[n], new float[n]);
        _p = new float[B * H * T * T];
        _lse = new float[B * H * T];
        Attention.Forward(_shape, _q, _k, _v, _o, true, default, null, _p, _lse);
    }

    [Benchmark(Baseline = true)]
    public void NaiveReference() => Attention.ForwardReference(_shape, _q, _k, _v, _o, true, default, 1f / MathF.Sqrt(D), default);

    [Benchmark]
    public void Forward() => Attention.Forward(_shape, _q, _k, _v, _o, causal: true);

    [Benchmark]
    public void ForwardWithWeights() => Attention.Forward(_shape, _q, _k, _v, _o, causal: true, probabilities: _p);

    [Benchmark]
    public void ForwardWithLogSumExp() => Attention.Forward(_shape, _q, _k, _v, _o, causal: true, logSumExp: _lse);

    [Benchmark]
    public void Backward() => Attention.Backward(_shape, _q, _k, _v, _p, _o, _dq, _dk, _dv);

    [Benchmark]
    public void BackwardBlocked() => Attention.Backward(_shape, _q, _k, _v, _o, _lse, _o, _dq, _dk, _dv, causal: true);
}
