using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Sharpformer.Tensors.Kernels;

/// <summary>
/// op(B)[k, n] packed once into the GEMM micro-kernel's panel layout, for weights that multiply many inputs
/// (a Linear layer: pack W [out, in] once, then y = x · Wᵀ per call without the transpose). Made by
/// <see cref="Gemm.PackB"/>, used by
/// <see cref="Gemm.Sgemm(bool, int, float, ReadOnlySpan{float}, int, GemmPackedB, float, Span{float}, int, ReadOnlySpan{float})"/>.
/// Immutable and safe to share between threads.
/// </summary>
public sealed unsafe class GemmPackedB
{
    private readonly GemmIsa _isa;

    // Pinned (pinned object heap), so the 64-byte-aligned start computed once stays valid.
    private readonly float[] _data;
    private readonly int _offset;

    private GemmPackedB(GemmIsa isa, int k, int n, float[] data, int offset)
    {
        _isa = isa;
        K = k;
        N = n;
        _data = data;
        _offset = offset;
    }

    /// <summary>Inner dimension: rows of op(B).</summary>
    public int K { get; }

    /// <summary>Columns of op(B) and of every C it produces.</summary>
    public int N { get; }

    /// <summary>Packs validated <paramref name="b"/> for <paramref name="isa"/>: NR-column panels per k block, or op(B) row-major [k, n] for the scalar tier.</summary>
    internal static GemmPackedB Create(GemmIsa isa, bool transB, int k, int n, ReadOnlySpan<float> b, int ldb)
    {
        int nr = GemmDriver.Nr(isa);
        long floats = isa == GemmIsa.Scalar ? (long)k * n : (long)k * GemmDriver.RoundUp(Math.Max(n, 1), nr);
        float[] data = GC.AllocateUninitializedArray<float>(checked((int)floats + 16), pinned: true);
        float* raw = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(data));
        float* dst = GemmDriver.Align64(raw);
        var packed = new GemmPackedB(isa, k, n, data, (int)(dst - raw));
        if (k == 0 || n == 0) return packed;

        fixed (float* pb = b)
        {
            if (isa == GemmIsa.Scalar)
            {
                for (int p = 0; p < k; p++)
                {
                    for (int j = 0; j < n; j++) dst[((long)p * n) + j] = transB ? pb[((long)j * ldb) + p] : pb[((long)p * ldb) + j];
                }
            }
            else
            {
                int kc = GemmDriver.KBlock(k), nPad = GemmDriver.RoundUp(n, nr);
                for (int panel = 0; panel < nPad / nr; panel++)
                {
                    int j0 = panel * nr;
                    GemmDriver.PackBPanel(transB, pb, ldb, j0, Math.Min(nr, n - j0), k, kc, nr, nPad, panel, dst);
                }
            }
        }

        return packed;
    }

    /// <summary>C = alpha · op(A) · B + beta · C (+ bias) on validated arguments.</summary>
    internal void Multiply(
        int maxThreads, bool transA, int m, float alpha, ReadOnlySpan<float> a, int lda,
        float beta, Span<float> c, int ldc, ReadOnlySpan<float> bias)
    {
        ReadOnlySpan<float> data = _data.AsSpan(_offset);
        if (_isa == GemmIsa.Scalar)
        {
            Gemm.Reference(transA, false, m, N, K, alpha, a, lda, data, Math.Max(N, 1), beta, c, ldc, bias);
            return;
        }

        fixed (float* pa = a, pc = c, pbias = bias, pb = data)
        {
            GemmDriver.Run(_isa, maxThreads, transA, false, m, N, K, alpha, pa, lda, null, 0, beta, pc, ldc, bias.IsEmpty ? null : pbias, pb);
        }
    }
}
