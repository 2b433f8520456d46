using System.Numerics.Tensors;
using BenchmarkDotNet.Attributes;
using Sharpformer.Tensors.Kernels;

namespace Sharpformer.Benchmarks;

/// <summary>Row softmax: ours against TensorPrimitives.SoftMax, one row of 4096 and 128 rows of 128 (attention-shaped).</summary>
[MemoryDiagnoser]
public class SoftmaxBenchmarks
{
    private float[] _x = [];
    private float[] _y = [];

    [Params(1, 128)]
    public int Rows { get; set; }

    public int Cols => Rows == 1 ? 4096 : 128;

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        _x = Enumerable.Range(0, Rows * Cols).Select(_ => (float)((rng.NextDouble() * 20) - 10)).ToArray();
        _y = new float[_x.Length];
    }

    [Benchmark(Baseline = true)]
    public void TensorPrimitivesSoftMax()
    {
        for (int r = 0; r < Rows; r++) TensorPrimitives.SoftMax(_x.AsSpan(r * Cols, Cols), _y.AsSpan(r * Cols, Cols));
    }

    [Benchmark]
    public void Ours() => Softmax.Forward(_x, _y, Rows, Cols);

    [Benchmark]
    public void OursCausal() => Softmax.ForwardMasked(_x, _y, Rows, Cols, true, default);
}
