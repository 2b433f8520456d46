using BenchmarkDotNet.Attributes;
using Sharpformer.Tensors.Kernels;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Benchmarks;

/// <summary>
/// SGEMM on the transformer shapes (M×K×N, Linear layout: B stored [N, K], C = A·Bᵀ) and 1024³ (C = A·B), with 1 thread
/// and all cores, plain (B packed per call) and with B packed once. Report GFLOP/s as 2·M·K·N / mean; compare only
/// ratios within one run (the host is shared). <c>sharpformer bench gemm</c> prints the same against the FMA peak.
/// </summary>
[MemoryDiagnoser]
public class GemmBenchmarks
{
    private float[] _a = [], _b = [], _c = [];
    private GemmPackedB? _packed;
    private int _savedDegree;

    /// <summary>M×K×N; a trailing t is the Linear layout.</summary>
    [Params("128x384x1536t", "128x1536x384t", "8x384x1536t", "1024x1024x1024")]
    public string Shape { get; set; } = "";

    /// <summary>1, or 0 for every core.</summary>
    [Params(1, 0)]
    public int Threads { get; set; }

    private int M { get; set; }

    private int K { get; set; }

    private int N { get; set; }

    private bool Linear { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        Linear = Shape.EndsWith('t');
        int[] dims = Shape.TrimEnd('t').Split('x').Select(int.Parse).ToArray();
        (M, K, N) = (dims[0], dims[1], dims[2]);
        var random = new Random(1);
        _a = Enumerable.Range(0, M * K).Select(_ => (float)random.NextDouble()).ToArray();
        _b = Enumerable.Range(0, K * N).Select(_ => (float)random.NextDouble()).ToArray();
        _c = new float[M * N];
        _packed = Gemm.PackB(Linear, K, N, _b, Linear ? K : N);
        _savedDegree = ParallelFor.MaxDegreeOfParallelism;
        ParallelFor.MaxDegreeOfParallelism = Threads == 0 ? Environment.ProcessorCount : Threads;
    }

    [GlobalCleanup]
    public void Cleanup() => ParallelFor.MaxDegreeOfParallelism = _savedDegree;

    [Benchmark(Baseline = true)]
    public void Sgemm() => Gemm.Sgemm(false, Linear, M, N, K, 1f, _a, K, _b, Linear ? K : N, 0f, _c, N);

    [Benchmark]
    public void SgemmPackedB() => Gemm.Sgemm(false, M, 1f, _a, K, _packed!, 0f, _c, N);
}

/// <summary>Fast path vs the scalar reference on small products, where the reference is still affordable to time.</summary>
[MemoryDiagnoser]
public class GemmSmallBenchmarks
{
    private float[] _a = [], _b = [], _c = [];

    [Params(8, 32, 64)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(1);
        _a = Enumerable.Range(0, Size * Size).Select(_ => (float)random.NextDouble()).ToArray();
        _b = Enumerable.Range(0, Size * Size).Select(_ => (float)random.NextDouble()).ToArray();
        _c = new float[Size * Size];
    }

    [Benchmark(Baseline = true)]
    public void Reference() => Gemm.Reference(false, true, Size, Size, Size, 1f, _a, Size, _b, Size, 0f, _c, Size, default);

    [Benchmark]
    public void Fast() => Gemm.Sgemm(false, true, Size, Size, Size, 1f, _a, Size, _b, Size, 0f, _c, Size);
}
