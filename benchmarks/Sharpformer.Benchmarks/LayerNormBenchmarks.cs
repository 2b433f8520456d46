using BenchmarkDotNet.Attributes;
using Sharpformer.Tensors.Kernels;

namespace Sharpformer.Benchmarks;

/// <summary>LayerNorm over [128, 384] (MiniLM, seq 128) and [128, 768] (BERT-base): SIMD path vs the scalar double reference.</summary>
[MemoryDiagnoser]
public class LayerNormBenchmarks
{
    private const int Rows = 128;
    private float[] _x = [];
    private float[] _y = [];
    private float[] _gamma = [];
    private float[] _beta = [];
    private float[] _mean = [];
    private float[] _rstd = [];
    private float[] _dx = [];
    private float[] _dgamma = [];
    private float[] _dbeta = [];

    [Params(384, 768)]
    public int C { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        _x = Enumerable.Range(0, Rows * C).Select(_ => (float)rng.NextDouble()).ToArray();
        _gamma = Enumerable.Range(0, C).Select(_ => (float)rng.NextDouble()).ToArray();
        _beta = Enumerable.Range(0, C).Select(_ => (float)rng.NextDouble()).ToArray();
        _y = new float[Rows * C];
        _dx = new float[Rows * C];
        _mean = new float[Rows];
        _rstd = new float[Rows];
        _dgamma = new float[C];
        _dbeta = new float[C];
    }

    [Benchmark(Baseline = true)]
    public void ScalarReference() => Norms.LayerNormReference(_x, _gamma, _beta, _y, Rows, C, 1e-12f, _mean, _rstd);

    [Benchmark]
    public void Forward() => Norms.LayerNorm(_x, _gamma, _beta, _y, Rows, C, 1e-12f, _mean, _rstd);

    [Benchmark]
    public void Backward() => Norms.LayerNormBackward(_y, _x, _gamma, _mean, _rstd, _dx, _dgamma, _dbeta, Rows, C);
}
