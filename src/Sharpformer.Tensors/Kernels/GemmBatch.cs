namespace Sharpformer.Tensors.Kernels;

/// <summary>
/// The state of one <see cref="Gemm.SgemmBatched"/> call on validated, pinned pointers. Instances are cached per
/// calling thread, with the parallel body as a cached delegate, so a batched call allocates nothing once warm.
/// </summary>
internal sealed unsafe class GemmBatch
{
    [ThreadStatic]
    private static GemmBatch? _cached;

    private GemmIsa _isa;
    private bool _transA, _transB;
    private int _m, _n, _k, _lda, _ldb, _ldc;
    private float _alpha, _beta;
    private float* _a, _b, _c, _bias;
    private long _strideA, _strideB, _strideC;

    private GemmBatch() => RunOne = (start, end) => Run(start, end, 1);

    /// <summary>Runs products [start, end) one thread each: the body of the batch-parallel loop.</summary>
    public Action<int, int> RunOne { get; }

    /// <summary>Takes this thread's cached instance (or a new one when a call is nested) and fills it.</summary>
    public static GemmBatch Rent(
        GemmIsa isa, bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, long strideA, float* b, int ldb, long strideB,
        float beta, float* c, int ldc, long strideC, float* bias)
    {
        GemmBatch batch = _cached ?? new GemmBatch();
        _cached = null;
        batch._isa = isa;
        batch._transA = transA;
        batch._transB = transB;
        batch._m = m;
        batch._n = n;
        batch._k = k;
        batch._alpha = alpha;
        batch._beta = beta;
        batch._a = a;
        batch._lda = lda;
        batch._strideA = strideA;
        batch._b = b;
        batch._ldb = ldb;
        batch._strideB = strideB;
        batch._c = c;
        batch._ldc = ldc;
        batch._strideC = strideC;
        batch._bias = bias;
        return batch;
    }

    /// <summary>Forgets the pointers and hands the instance back to this thread's cache.</summary>
    public void Return()
    {
        _a = _b = _c = _bias = null;
        _cached = this;
    }

    /// <summary>Runs products [start, end) one after another, each on up to <paramref name="threads"/> threads.</summary>
    public void Run(int start, int end, int threads)
    {
        for (int i = start; i < end; i++)
        {
            GemmDriver.Run(
                _isa, threads, _transA, _transB, _m, _n, _k, _alpha,
                _a + (i * _strideA), _lda, _b + (i * _strideB), _ldb, _beta, _c + (i * _strideC), _ldc, _bias, null);
        }
    }
}
