using System.Numerics.Tensors;
using BenchmarkDotNet.Attributes;
using Sharpformer.Tensors.Kernels;

namespace Sharpformer.Benchmarks;

/// <summary>Our exp (FastMath.Exp) against TensorPrimitives.Exp on the same 4096 floats (L1-resident).</summary>
[MemoryDiagnoser]
public class ExpBenchmarks
{
    private float[] _x = [];
    private float[] _y = [];

    [Params(4096)]
    public int N { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        _x = Enumerable.Range(0, N).Select(_ => (float)((rng.NextDouble() * 40) - 30)).ToArray();
        _y = new float[N];
    }

    [Benchmark(Baseline = true)]
    public void TensorPrimitivesExp() => TensorPrimitives.Exp(_x, _y);

    [Benchmark]
    public void FastMathExp() => FastMath.Exp(_x, _y);

    [Benchmark]
    public void GeluErf() => Activations.Gelu(_x, _y);

    [Benchmark]
    public void GeluTanh() => Activations.GeluTanh(_x, _y);
}
