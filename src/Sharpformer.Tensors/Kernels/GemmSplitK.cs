using System.Buffers;
using System.Numerics;
using System.Runtime.Intrinsics.X86;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Kernels;

/// <summary>
/// Split-K for a long inner dimension and a small C, such as the input gradient of a language-model head
/// (dLogits [256, 50257] · W [50257, 768]: m = 256, n = 768, k = 50257). The blocked driver cuts such a product into
/// row and column chunks of at most 16 MiB packed, and repacks all of A for every column chunk (12 times there) and
/// all of B for every row chunk, while every chunk's C tiles are too few to share between threads. Here k is cut
/// instead into slices of about <see cref="SliceK"/>; each slice is one single-threaded product of the whole C
/// shape into its own partial buffer (A and B packed exactly once overall), threads claim whole slices, and a final
/// pass adds the partials in slice order and applies alpha, beta and the bias. The slices depend on the shape
/// alone, so the result is the same bit for bit for every thread count.
/// </summary>
internal sealed unsafe class GemmSplitK
{
    /// <summary>Smallest k that is split: below it the blocked driver packs each operand once anyway.</summary>
    public const int MinK = 8192;

    /// <summary>Target slice length: one slice's packed B (SliceK · n floats) stays within a few MiB for n ≤ 1024.</summary>
    public const int SliceK = 2048;

    /// <summary>
    /// Slice counts of 8 and more are rounded to a multiple of this, within the partial-buffer limit: a language-model
    /// head's dX (256 × 768, k = 50257) ran 21 slices of 2400 (the most partials that fit), so on two threads one ran the
    /// 21st alone while the other waited; 20 slices of 2528 took it from 47.6 to 45.5 ms on 2 threads.
    /// </summary>
    public const int SliceMultiple = 4;

    /// <summary>Rows of C summed together over the partials in the final pass (see ReduceRows).</summary>
    private const int ReduceRowsBlock = 4;

    /// <summary>Largest total of partial C buffers in floats (16 MiB); a larger C gets fewer, longer slices or no split.</summary>
    private const long PartialFloatsMax = 1 << 22;

    [ThreadStatic]
    private static GemmSplitK? _cached;

    private readonly Action<int, int> _sliceBody;
    private readonly Action<int, int> _reduceBody;

    private GemmIsa _isa;
    private bool _transA, _transB;
    private int _m, _n, _k, _lda, _ldb, _ldc, _sliceLength, _slices;
    private float _alpha, _beta;
    private float* _a, _b, _c, _bias, _partials;

    private GemmSplitK()
    {
        _sliceBody = SliceRange;
        _reduceBody = ReduceRows;
    }

    /// <summary>
    /// The slice length for C [m, n] over k, or 0 when the product is not split: k below <see cref="MinK"/>, or C so
    /// large that even two partial buffers would pass <see cref="PartialFloatsMax"/>. A multiple of 16; from 8 slices
    /// on, their count is a multiple of <see cref="SliceMultiple"/>.
    /// </summary>
    public static int SliceLength(int m, int n, int k)
    {
        if (k < MinK) return 0;
        long cFloats = (long)m * n;
        long most = PartialFloatsMax / Math.Max(1, cFloats);
        long slices = Math.Min((k + SliceK - 1) / SliceK, most);
        if (slices >= 2 * SliceMultiple)
        {
            // Threads claim whole slices: with a count that 2 and 4 divide, no thread runs the last slice alone.
            long rounded = (slices + (SliceMultiple / 2)) / SliceMultiple * SliceMultiple;
            slices = rounded <= most ? rounded : rounded - SliceMultiple;
        }

        if (slices < 2) return 0;
        int length = GemmDriver.RoundUp((int)((k + slices - 1) / slices), 16);
        return length < k ? length : 0;
    }

    /// <summary>
    /// C = alpha · op(A) · op(B) + beta · C (+ bias) with k cut into slices of <paramref name="sliceLength"/> (from
    /// <see cref="SliceLength"/>), on up to <paramref name="threads"/> threads.
    /// </summary>
    public static void Run(
        GemmIsa isa, int threads, int sliceLength, bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, float* bias)
    {
        GemmSplitK job = _cached ?? new GemmSplitK();
        _cached = null; // a nested call on this thread gets its own instance
        int slices = (k + sliceLength - 1) / sliceLength;
        float[] partials = GemmDriver.RentAligned((long)slices * m * n);
        try
        {
            fixed (float* raw = partials)
            {
                job._isa = isa;
                job._transA = transA;
                job._transB = transB;
                job._m = m;
                job._n = n;
                job._k = k;
                job._alpha = alpha;
                job._beta = beta;
                job._a = a;
                job._lda = lda;
                job._b = b;
                job._ldb = ldb;
                job._c = c;
                job._ldc = ldc;
                job._bias = bias;
                job._sliceLength = sliceLength;
                job._slices = slices;
                job._partials = GemmDriver.Align64(raw);
                if (threads > 1)
                {
                    ParallelFor.For(slices, 1, job._sliceBody);
                    ParallelFor.For(m, Math.Max(1, m / (4 * threads)), job._reduceBody);
                }
                else
                {
                    job.SliceRange(0, slices);
                    job.ReduceRows(0, m);
                }
            }
        }
        finally
        {
            job._a = job._b = job._c = job._bias = job._partials = null;
            ArrayPool<float>.Shared.Return(partials);
            _cached = job;
        }
    }

    /// <summary>Partial s = op(A)[:, slice s] · op(B)[slice s, :], each slice on the calling thread alone.</summary>
    private void SliceRange(int start, int end)
    {
        for (int s = start; s < end; s++)
        {
            int p0 = s * _sliceLength;
            int length = Math.Min(_sliceLength, _k - p0);
            float* aSlice = _transA ? _a + ((long)p0 * _lda) : _a + p0;
            float* bSlice = _transB ? _b + p0 : _b + ((long)p0 * _ldb);
            float* partial = _partials + ((long)s * _m * _n);
            GemmDriver.Run(_isa, 1, _transA, _transB, _m, _n, length, 1f, aSlice, _lda, bSlice, _ldb, 0f, partial, _n, null, null);
        }
    }

    /// <summary>
    /// Rows [start, end) of C = alpha · (partial 0 + partial 1 + …, added in slice order into partial 0) + beta · C
    /// (+ bias); beta 0 never reads C.
    /// </summary>
    private void ReduceRows(int start, int end)
    {
        int width = Vector<float>.Count;
        for (int i0 = start; i0 < end; i0 += ReduceRowsBlock)
        {
            // A few rows at a time, partial by partial: each partial's rows are one sequential stream (12 KiB for
            // n = 768) rather than a row of every partial in turn, 20 short streams at once; the next partial's rows are
            // asked for in L1 while these are added. A language-model head's input gradient (20 partials of 256 × 768,
            // 2 threads, Zen 5): 0.75 → 0.5 ms. Each element still adds the partials in slice order, so the sums are
            // unchanged bit for bit.
            int i1 = Math.Min(end, i0 + ReduceRowsBlock);
            long length = (long)(i1 - i0) * _n;
            float* sum = _partials + ((long)i0 * _n);
            for (int s = 1; s < _slices; s++)
            {
                float* add = _partials + ((((long)s * _m) + i0) * _n);
                if (s + 1 < _slices && Sse.IsSupported)
                {
                    byte* next = (byte*)(add + ((long)_m * _n));
                    for (long off = 0; off < length * sizeof(float); off += 64) Sse.Prefetch0(next + off);
                }

                long j = 0;
                if (Vector.IsHardwareAccelerated)
                {
                    // Element-wise adds: the same roundings as the scalar loop below, only several at a time.
                    for (; j + width <= length; j += width)
                    {
                        Vector.Store(Vector.Load(sum + j) + Vector.Load(add + j), sum + j);
                    }
                }

                for (; j < length; j++) sum[j] += add[j];
            }

            for (int i = i0; i < i1; i++)
            {
                float* total = _partials + ((long)i * _n);
                float* row = _c + ((long)i * _ldc);
                for (int j = 0; j < _n; j++)
                {
                    float prior = _beta == 0f ? 0f : _beta * row[j];
                    row[j] = (_alpha * total[j]) + prior + (_bias == null ? 0f : _bias[j]);
                }
            }
        }
    }
}
