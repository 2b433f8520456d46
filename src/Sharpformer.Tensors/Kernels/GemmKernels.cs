using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Sharpformer.Tensors.Kernels;

/// <summary>
/// A register-blocked GEMM micro-kernel: multiplies a packed A panel [kc][MR] by a packed B panel [kc][NR] into an
/// MR×NR tile of C held in registers, then writes C = alpha · acc + beta · C (+ bias) once per tile.
/// </summary>
internal unsafe interface IGemmKernel
{
    /// <summary>Rows of C per tile (the A panel's width): the values broadcast from A.</summary>
    static abstract int MR { get; }

    /// <summary>Columns of C per tile (the B panel's width): the values loaded from B as vectors.</summary>
    static abstract int NR { get; }

    /// <summary>
    /// One tile: <paramref name="mr"/> ≤ MR rows and <paramref name="nr"/> ≤ NR columns of C are written; beta 0 never
    /// reads C; <paramref name="bias"/> is null or points at the tile's first column. <paramref name="edge"/> is
    /// MR·NR floats of scratch for partial tiles. With <paramref name="streamC"/>, a tile that the vector epilogue stores
    /// (all NR columns, and as many rows as the kernel's row count) is written with non-temporal stores of whole cache
    /// lines, past the caches and without reading the lines in first: only for a C that nothing reads soon, and only
    /// where every row's NR columns are whole 64-byte lines that start on a line (the caller checks). Tiles stored
    /// through the scratch, and kernels whose rows are narrower than a line, store as usual. The caller fences
    /// (<c>Sse.StoreFence</c>) before C is read.
    /// </summary>
    static abstract void Tile(float* ap, float* bp, int kc, float* c, int ldc, int mr, int nr, float alpha, float beta, float* bias, float* edge, bool streamC);
}

/// <summary>A compile-time row count: the JIT specializes a generic kernel per struct and drops the unused rows.</summary>
internal interface IRowCount
{
    static abstract int Count { get; }
}

internal readonly struct Rows4 : IRowCount
{
    public static int Count => 4;
}

internal readonly struct Rows8 : IRowCount
{
    public static int Count => 8;
}

internal readonly struct Rows12 : IRowCount
{
    public static int Count => 12;
}

/// <summary>
/// AVX-512: 12×32 tile in 24 zmm accumulators (+ 2 for the B row and 1 broadcast of A = 27 of 32 registers).
/// Per k step: 2 vector loads of B, 12 broadcasts of A, 24 FMAs — FMA-bound on two 512-bit FMA ports.
/// Partial panels of ≤ 4 or ≤ 8 rows run a 4- or 8-row copy, so the m tail (128 = 10·12 + 8) wastes no FMAs.
/// </summary>
internal readonly unsafe struct Kernel512 : IGemmKernel
{
    public static int MR => 12;

    public static int NR => 32;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tile(float* ap, float* bp, int kc, float* c, int ldc, int mr, int nr, float alpha, float beta, float* bias, float* edge, bool streamC)
    {
        if (mr > 8)
        {
            Rows<Rows12>(ap, bp, kc, c, ldc, mr, nr, alpha, beta, bias, edge, streamC);
        }
        else if (mr > 4)
        {
            Rows<Rows8>(ap, bp, kc, c, ldc, mr, nr, alpha, beta, bias, edge, streamC);
        }
        else
        {
            Rows<Rows4>(ap, bp, kc, c, ldc, mr, nr, alpha, beta, bias, edge, streamC);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows<TRows>(float* ap, float* bp, int kc, float* c, int ldc, int mr, int nr, float alpha, float beta, float* bias, float* edge, bool streamC)
        where TRows : struct, IRowCount
    {
        Vector512<float> acc0a = default, acc0b = default,
            acc1a = default, acc1b = default,
            acc2a = default, acc2b = default,
            acc3a = default, acc3b = default,
            acc4a = default, acc4b = default,
            acc5a = default, acc5b = default,
            acc6a = default, acc6b = default,
            acc7a = default, acc7b = default,
            acc8a = default, acc8b = default,
            acc9a = default, acc9b = default,
            acc10a = default, acc10b = default,
            acc11a = default, acc11b = default;
        for (int p = 0; p < kc; p++)
        {
            // b0, b1: B[p, 0..32); each row r adds A[r, p] · B[p, :].
            Vector512<float> b0 = Vector512.Load(bp);
            Vector512<float> b1 = Vector512.Load(bp + 16);
            Vector512<float> a;
            a = Vector512.Create(ap[0]);
            acc0a = Vector512.FusedMultiplyAdd(a, b0, acc0a);
            acc0b = Vector512.FusedMultiplyAdd(a, b1, acc0b);
            a = Vector512.Create(ap[1]);
            acc1a = Vector512.FusedMultiplyAdd(a, b0, acc1a);
            acc1b = Vector512.FusedMultiplyAdd(a, b1, acc1b);
            a = Vector512.Create(ap[2]);
            acc2a = Vector512.FusedMultiplyAdd(a, b0, acc2a);
            acc2b = Vector512.FusedMultiplyAdd(a, b1, acc2b);
            a = Vector512.Create(ap[3]);
            acc3a = Vector512.FusedMultiplyAdd(a, b0, acc3a);
            acc3b = Vector512.FusedMultiplyAdd(a, b1, acc3b);

            if (TRows.Count > 4)
            {
                a = Vector512.Create(ap[4]);
                acc4a = Vector512.FusedMultiplyAdd(a, b0, acc4a);
                acc4b = Vector512.FusedMultiplyAdd(a, b1, acc4b);
                a = Vector512.Create(ap[5]);
                acc5a = Vector512.FusedMultiplyAdd(a, b0, acc5a);
                acc5b = Vector512.FusedMultiplyAdd(a, b1, acc5b);
                a = Vector512.Create(ap[6]);
                acc6a = Vector512.FusedMultiplyAdd(a, b0, acc6a);
                acc6b = Vector512.FusedMultiplyAdd(a, b1, acc6b);
                a = Vector512.Create(ap[7]);
                acc7a = Vector512.FusedMultiplyAdd(a, b0, acc7a);
                acc7b = Vector512.FusedMultiplyAdd(a, b1, acc7b);
            }

            if (TRows.Count > 8)
            {
                a = Vector512.Create(ap[8]);
                acc8a = Vector512.FusedMultiplyAdd(a, b0, acc8a);
                acc8b = Vector512.FusedMultiplyAdd(a, b1, acc8b);
                a = Vector512.Create(ap[9]);
                acc9a = Vector512.FusedMultiplyAdd(a, b0, acc9a);
                acc9b = Vector512.FusedMultiplyAdd(a, b1, acc9b);
                a = Vector512.Create(ap[10]);
                acc10a = Vector512.FusedMultiplyAdd(a, b0, acc10a);
                acc10b = Vector512.FusedMultiplyAdd(a, b1, acc10b);
                a = Vector512.Create(ap[11]);
                acc11a = Vector512.FusedMultiplyAdd(a, b0, acc11a);
                acc11b = Vector512.FusedMultiplyAdd(a, b1, acc11b);
            }

            ap += 12;
            bp += 32;
        }

        if (mr == TRows.Count && nr == 32)
        {
            Store(c + (0 * ldc), acc0a, acc0b, alpha, beta, bias, streamC);
            Store(c + (1 * ldc), acc1a, acc1b, alpha, beta, bias, streamC);
            Store(c + (2 * ldc), acc2a, acc2b, alpha, beta, bias, streamC);
            Store(c + (3 * ldc), acc3a, acc3b, alpha, beta, bias, streamC);

            if (TRows.Count > 4)
            {
                Store(c + (4 * ldc), acc4a, acc4b, alpha, beta, bias, streamC);
                Store(c + (5 * ldc), acc5a, acc5b, alpha, beta, bias, streamC);
                Store(c + (6 * ldc), acc6a, acc6b, alpha, beta, bias, streamC);
                Store(c + (7 * ldc), acc7a, acc7b, alpha, beta, bias, streamC);
            }

            if (TRows.Count > 8)
            {
                Store(c + (8 * ldc), acc8a, acc8b, alpha, beta, bias, streamC);
                Store(c + (9 * ldc), acc9a, acc9b, alpha, beta, bias, streamC);
                Store(c + (10 * ldc), acc10a, acc10b, alpha, beta, bias, streamC);
                Store(c + (11 * ldc), acc11a, acc11b, alpha, beta, bias, streamC);
            }
        }
        else
        {
            acc0a.Store(edge + 0);
            acc0b.Store(edge + 16);
            acc1a.Store(edge + 32);
            acc1b.Store(edge + 48);
            acc2a.Store(edge + 64);
            acc2b.Store(edge + 80);
            acc3a.Store(edge + 96);
            acc3b.Store(edge + 112);

            if (TRows.Count > 4)
            {
                acc4a.Store(edge + 128);
                acc4b.Store(edge + 144);
                acc5a.Store(edge + 160);
                acc5b.Store(edge + 176);
                acc6a.Store(edge + 192);
                acc6b.Store(edge + 208);
                acc7a.Store(edge + 224);
                acc7b.Store(edge + 240);
            }

            if (TRows.Count > 8)
            {
                acc8a.Store(edge + 256);
                acc8b.Store(edge + 272);
                acc9a.Store(edge + 288);
                acc9b.Store(edge + 304);
                acc10a.Store(edge + 320);
                acc10b.Store(edge + 336);
                acc11a.Store(edge + 352);
                acc11b.Store(edge + 368);
            }

            GemmEdge.Store(edge, 32, c, ldc, mr, nr, alpha, beta, bias);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, Vector512<float> x, Vector512<float> y, float alpha, float beta, float* bias, bool streamC)
    {
        x *= alpha;
        y *= alpha;
        if (beta != 0f)
        {
            x = Vector512.FusedMultiplyAdd(Vector512.Load(c), Vector512.Create(beta), x);
            y = Vector512.FusedMultiplyAdd(Vector512.Load(c + 16), Vector512.Create(beta), y);
        }

        if (bias != null)
        {
            x += Vector512.Load(bias);
            y += Vector512.Load(bias + 16);
        }

        if (streamC)
        {
            // Two whole 64-byte lines: written past the caches, without first reading them in.
            x.StoreAlignedNonTemporal(c);
            y.StoreAlignedNonTemporal(c + 16);
        }
        else
        {
            x.Store(c);
            y.Store(c + 16);
        }
    }
}

/// <summary>AVX2+FMA: 6×16 tile in 12 ymm accumulators (+ 2 B + 1 broadcast = 15 of 16 registers).</summary>
internal readonly unsafe struct Kernel256 : IGemmKernel
{
    public static int MR => 6;

    public static int NR => 16;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tile(float* ap, float* bp, int kc, float* c, int ldc, int mr, int nr, float alpha, float beta, float* bias, float* edge, bool streamC)
    {
        Vector256<float> acc0a = default, acc0b = default,
            acc1a = default, acc1b = default,
            acc2a = default, acc2b = default,
            acc3a = default, acc3b = default,
            acc4a = default, acc4b = default,
            acc5a = default, acc5b = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(bp);
            Vector256<float> b1 = Vector256.Load(bp + 8);
            Vector256<float> a;
            a = Vector256.Create(ap[0]);
            acc0a = Vector256.FusedMultiplyAdd(a, b0, acc0a);
            acc0b = Vector256.FusedMultiplyAdd(a, b1, acc0b);
            a = Vector256.Create(ap[1]);
            acc1a = Vector256.FusedMultiplyAdd(a, b0, acc1a);
            acc1b = Vector256.FusedMultiplyAdd(a, b1, acc1b);
            a = Vector256.Create(ap[2]);
            acc2a = Vector256.FusedMultiplyAdd(a, b0, acc2a);
            acc2b = Vector256.FusedMultiplyAdd(a, b1, acc2b);
            a = Vector256.Create(ap[3]);
            acc3a = Vector256.FusedMultiplyAdd(a, b0, acc3a);
            acc3b = Vector256.FusedMultiplyAdd(a, b1, acc3b);
            a = Vector256.Create(ap[4]);
            acc4a = Vector256.FusedMultiplyAdd(a, b0, acc4a);
            acc4b = Vector256.FusedMultiplyAdd(a, b1, acc4b);
            a = Vector256.Create(ap[5]);
            acc5a = Vector256.FusedMultiplyAdd(a, b0, acc5a);
            acc5b = Vector256.FusedMultiplyAdd(a, b1, acc5b);

            ap += 6;
            bp += 16;
        }

        if (mr == 6 && nr == 16)
        {
            Store(c + (0 * ldc), acc0a, acc0b, alpha, beta, bias, streamC);
            Store(c + (1 * ldc), acc1a, acc1b, alpha, beta, bias, streamC);
            Store(c + (2 * ldc), acc2a, acc2b, alpha, beta, bias, streamC);
            Store(c + (3 * ldc), acc3a, acc3b, alpha, beta, bias, streamC);
            Store(c + (4 * ldc), acc4a, acc4b, alpha, beta, bias, streamC);
            Store(c + (5 * ldc), acc5a, acc5b, alpha, beta, bias, streamC);
        }
        else
        {
            acc0a.Store(edge + 0);
            acc0b.Store(edge + 8);
            acc1a.Store(edge + 16);
            acc1b.Store(edge + 24);
            acc2a.Store(edge + 32);
            acc2b.Store(edge + 40);
            acc3a.Store(edge + 48);
            acc3b.Store(edge + 56);
            acc4a.Store(edge + 64);
            acc4b.Store(edge + 72);
            acc5a.Store(edge + 80);
            acc5b.Store(edge + 88);

            GemmEdge.Store(edge, 16, c, ldc, mr, nr, alpha, beta, bias);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, Vector256<float> x, Vector256<float> y, float alpha, float beta, float* bias, bool streamC)
    {
        x *= alpha;
        y *= alpha;
        if (beta != 0f)
        {
            x = Vector256.FusedMultiplyAdd(Vector256.Load(c), Vector256.Create(beta), x);
            y = Vector256.FusedMultiplyAdd(Vector256.Load(c + 8), Vector256.Create(beta), y);
        }

        if (bias != null)
        {
            x += Vector256.Load(bias);
            y += Vector256.Load(bias + 8);
        }

        if (streamC)
        {
            // The two halves of one 64-byte line, written past the caches.
            x.StoreAlignedNonTemporal(c);
            y.StoreAlignedNonTemporal(c + 8);
        }
        else
        {
            x.Store(c);
            y.Store(c + 8);
        }
    }
}

/// <summary>
/// SSE/NEON: 6×8 tile in 12 xmm accumulators; fused multiply-add where the hardware has it. A row of 8 floats is half a
/// cache line, so it never streams C (a half line written past the caches is merged with memory's other half).
/// </summary>
internal readonly unsafe struct Kernel128 : IGemmKernel
{
    public static int MR => 6;

    public static int NR => 8;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tile(float* ap, float* bp, int kc, float* c, int ldc, int mr, int nr, float alpha, float beta, float* bias, float* edge, bool streamC)
    {
        Vector128<float> acc0a = default, acc0b = default,
            acc1a = default, acc1b = default,
            acc2a = default, acc2b = default,
            acc3a = default, acc3b = default,
            acc4a = default, acc4b = default,
            acc5a = default, acc5b = default;
        for (int p = 0; p < kc; p++)
        {
            Vector128<float> b0 = Vector128.Load(bp);
            Vector128<float> b1 = Vector128.Load(bp + 4);
            Vector128<float> a;
            a = Vector128.Create(ap[0]);
            acc0a = Vector128.MultiplyAddEstimate(a, b0, acc0a);
            acc0b = Vector128.MultiplyAddEstimate(a, b1, acc0b);
            a = Vector128.Create(ap[1]);
            acc1a = Vector128.MultiplyAddEstimate(a, b0, acc1a);
            acc1b = Vector128.MultiplyAddEstimate(a, b1, acc1b);
            a = Vector128.Create(ap[2]);
            acc2a = Vector128.MultiplyAddEstimate(a, b0, acc2a);
            acc2b = Vector128.MultiplyAddEstimate(a, b1, acc2b);
            a = Vector128.Create(ap[3]);
            acc3a = Vector128.MultiplyAddEstimate(a, b0, acc3a);
            acc3b = Vector128.MultiplyAddEstimate(a, b1, acc3b);
            a = Vector128.Create(ap[4]);
            acc4a = Vector128.MultiplyAddEstimate(a, b0, acc4a);
            acc4b = Vector128.MultiplyAddEstimate(a, b1, acc4b);
            a = Vector128.Create(ap[5]);
            acc5a = Vector128.MultiplyAddEstimate(a, b0, acc5a);
            acc5b = Vector128.MultiplyAddEstimate(a, b1, acc5b);

            ap += 6;
            bp += 8;
        }

        if (mr == 6 && nr == 8)
        {
            Store(c + (0 * ldc), acc0a, acc0b, alpha, beta, bias);
            Store(c + (1 * ldc), acc1a, acc1b, alpha, beta, bias);
            Store(c + (2 * ldc), acc2a, acc2b, alpha, beta, bias);
            Store(c + (3 * ldc), acc3a, acc3b, alpha, beta, bias);
            Store(c + (4 * ldc), acc4a, acc4b, alpha, beta, bias);
            Store(c + (5 * ldc), acc5a, acc5b, alpha, beta, bias);
        }
        else
        {
            acc0a.Store(edge + 0);
            acc0b.Store(edge + 4);
            acc1a.Store(edge + 8);
            acc1b.Store(edge + 12);
            acc2a.Store(edge + 16);
            acc2b.Store(edge + 20);
            acc3a.Store(edge + 24);
            acc3b.Store(edge + 28);
            acc4a.Store(edge + 32);
            acc4b.Store(edge + 36);
            acc5a.Store(edge + 40);
            acc5b.Store(edge + 44);

            GemmEdge.Store(edge, 8, c, ldc, mr, nr, alpha, beta, bias);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, Vector128<float> x, Vector128<float> y, float alpha, float beta, float* bias)
    {
        x *= alpha;
        y *= alpha;
        if (beta != 0f)
        {
            x = Vector128.MultiplyAddEstimate(Vector128.Load(c), Vector128.Create(beta), x);
            y = Vector128.MultiplyAddEstimate(Vector128.Load(c + 4), Vector128.Create(beta), y);
        }

        if (bias != null)
        {
            x += Vector128.Load(bias);
            y += Vector128.Load(bias + 4);
        }

        x.Store(c);
        y.Store(c + 4);
    }
}

/// <summary>The scalar epilogue for partial tiles: the kernel parks its accumulators in a scratch tile first.</summary>
internal static unsafe class GemmEdge
{
    /// <summary>C[r, j] = alpha · tile[r, j] + beta · C[r, j] + bias[j] for r &lt; mr, j &lt; nr; beta 0 never reads C.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Store(float* tile, int tileStride, float* c, int ldc, int mr, int nr, float alpha, float beta, float* bias)
    {
        for (int r = 0; r < mr; r++)
        {
            float* cRow = c + ((long)r * ldc);
            float* tRow = tile + (r * tileStride);
            for (int j = 0; j < nr; j++)
            {
                // The same rounding as the vector epilogue: alpha · acc, then fused beta · C + that.
                float v = alpha * tRow[j];
                if (beta != 0f) v = MathF.FusedMultiplyAdd(cRow[j], beta, v);
                if (bias != null) v += bias[j];
                cRow[j] = v;
            }
        }
    }
}
