using System.Buffers;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Kernels;

/// <summary>
/// One product of a group that <see cref="Gemv"/> runs on one input: y [R, Out] = x [R, In] · Wᵀ + bias for W [Out, In]
/// stored in <typeparamref name="T"/> (F32, F16, half codes or BF16).
/// </summary>
/// <typeparam name="T">The weight's element type: float, Half, HalfCode or BFloat16.</typeparam>
/// <param name="weight">W [Out, In] row-major.</param>
/// <param name="outFeatures">Out.</param>
/// <param name="y">[R, Out] row-major.</param>
/// <param name="bias">[Out], or empty for none.</param>
public readonly ref struct GemvProduct<T>(ReadOnlySpan<T> weight, int outFeatures, Span<float> y, ReadOnlySpan<float> bias = default)
    where T : unmanaged
{
    /// <summary>W [Out, In] row-major; empty in a default (absent) product.</summary>
    public ReadOnlySpan<T> Weight { get; } = weight;

    /// <summary>Out; 0 in a default (absent) product.</summary>
    public int OutFeatures { get; } = outFeatures;

    /// <summary>[R, Out] row-major.</summary>
    public Span<float> Y { get; } = y;

    /// <summary>[Out], or empty for none.</summary>
    public ReadOnlySpan<float> Bias { get; } = bias;
}

/// <summary>
/// Several products that share their input (a decoder layer's q, k and v projections, or its gate and up projections)
/// as one parallel region: x is prepared once for all of them (split into even and odd positions for the F16 loop, or
/// regrouped for R ≥ 3), and the rows of all the matrices are dealt to the threads as one range of chunks, each about
/// <see cref="ChunkBytes"/> (less when the whole group is small, so every thread still gets about
/// <see cref="ChunksPerThread"/>). Each output
/// goes through the same loop as in a call per matrix: the results are bit-equal to those calls.
/// </summary>
public static unsafe partial class Gemv
{
    /// <summary>
    /// y_i [R, Out_i] = x [R, in] · W_iᵀ + bias_i (+ y_i when <paramref name="accumulate"/>) for two or three F16 matrices, in
    /// one parallel region; bit-equal to <see cref="MatVec(ReadOnlySpan{float}, int, ReadOnlySpan{Half}, int, int, ReadOnlySpan{float}, Span{float}, bool)"/> per product.
    /// </summary>
    /// <param name="x">[R, in] row-major.</param>
    /// <param name="rows">R, 1 to <see cref="MaxRows"/>.</param>
    /// <param name="inFeatures">in, shared by the matrices.</param>
    /// <param name="first">The first product.</param>
    /// <param name="second">The second product.</param>
    /// <param name="third">A third product, or default for none.</param>
    /// <param name="accumulate">Add to every y instead of overwriting it.</param>
    /// <exception cref="ArgumentException">A span is shorter than its shape needs, or R is out of range.</exception>
    public static void MatVec(ReadOnlySpan<float> x, int rows, int inFeatures, scoped in GemvProduct<Half> first, scoped in GemvProduct<Half> second, scoped in GemvProduct<Half> third = default, bool accumulate = false) =>
        MatVecSharedPaired<Half, F16>(x, rows, inFeatures, first, second, third, accumulate);

    /// <summary>
    /// y_i [R, Out_i] = x [R, in] · W_iᵀ + bias_i (+ y_i when <paramref name="accumulate"/>) for two or three matrices of half
    /// codes (<see cref="HalfCodes"/>), in one parallel region; bit-equal to
    /// <see cref="MatVec(ReadOnlySpan{float}, int, ReadOnlySpan{HalfCode}, int, int, ReadOnlySpan{float}, Span{float}, bool)"/>
    /// per product, and so to the F16 products on the halves the codes stand for.
    /// </summary>
    /// <param name="x">[R, in] row-major.</param>
    /// <param name="rows">R, 1 to <see cref="MaxRows"/>.</param>
    /// <param name="inFeatures">in, shared by the matrices.</param>
    /// <param name="first">The first product.</param>
    /// <param name="second">The second product.</param>
    /// <param name="third">A third product, or default for none.</param>
    /// <param name="accumulate">Add to every y instead of overwriting it.</param>
    /// <exception cref="ArgumentException">A span is shorter than its shape needs, or R is out of range.</exception>
    public static void MatVec(ReadOnlySpan<float> x, int rows, int inFeatures, scoped in GemvProduct<HalfCode> first, scoped in GemvProduct<HalfCode> second, scoped in GemvProduct<HalfCode> third = default, bool accumulate = false) =>
        MatVecSharedPaired<HalfCode, F16Code>(x, rows, inFeatures, first, second, third, accumulate);

    /// <summary>The F16 and half-code groups: x split into even and odd positions once for every matrix (as in Run).</summary>
    private static void MatVecSharedPaired<T, TW>(ReadOnlySpan<float> x, int rows, int inFeatures, scoped in GemvProduct<T> first, scoped in GemvProduct<T> second, scoped in GemvProduct<T> third, bool accumulate)
        where T : unmanaged
        where TW : struct, IWeightFormat
    {
        var blocks = inFeatures / 32;
        var paired = Vector512.IsHardwareAccelerated && Avx512F.IsSupported && rows is >= 1 and <= SequentialMaxRows && blocks > 0;
        var pairs = paired ? ArrayPool<float>.Shared.Rent(rows * blocks * 32) : null;
        try
        {
            fixed (float* pp = pairs)
            {
                MatVecShared<T, TW>(x, rows, inFeatures, first, second, third, accumulate, pp);
            }
        }
        finally
        {
            if (pairs is not null)
            {
                ArrayPool<float>.Shared.Return(pairs);
            }
        }
    }

    /// <summary>
    /// y_i [R, Out_i] = x [R, in] · W_iᵀ + bias_i (+ y_i when <paramref name="accumulate"/>) for two or three BF16 matrices, in
    /// one parallel region; bit-equal to <see cref="MatVec(ReadOnlySpan{float}, int, ReadOnlySpan{BFloat16}, int, int, ReadOnlySpan{float}, Span{float}, bool)"/> per product.
    /// </summary>
    /// <param name="x">[R, in] row-major.</param>
    /// <param name="rows">R, 1 to <see cref="MaxRows"/>.</param>
    /// <param name="inFeatures">in, shared by the matrices.</param>
    /// <param name="first">The first product.</param>
    /// <param name="second">The second product.</param>
    /// <param name="third">A third product, or default for none.</param>
    /// <param name="accumulate">Add to every y instead of overwriting it.</param>
    /// <exception cref="ArgumentException">A span is shorter than its shape needs, or R is out of range.</exception>
    public static void MatVec(ReadOnlySpan<float> x, int rows, int inFeatures, scoped in GemvProduct<BFloat16> first, scoped in GemvProduct<BFloat16> second, scoped in GemvProduct<BFloat16> third = default, bool accumulate = false)
        => MatVecShared<BFloat16, BF16>(x, rows, inFeatures, first, second, third, accumulate, null);

    /// <summary>
    /// y_i [R, Out_i] = x [R, in] · W_iᵀ + bias_i (+ y_i when <paramref name="accumulate"/>) for two or three F32 matrices, in
    /// one parallel region; bit-equal to <see cref="MatVec(ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, int, ReadOnlySpan{float}, Span{float}, bool)"/> per product.
    /// </summary>
    /// <param name="x">[R, in] row-major.</param>
    /// <param name="rows">R, 1 to <see cref="MaxRows"/>.</param>
    /// <param name="inFeatures">in, shared by the matrices.</param>
    /// <param name="first">The first product.</param>
    /// <param name="second">The second product.</param>
    /// <param name="third">A third product, or default for none.</param>
    /// <param name="accumulate">Add to every y instead of overwriting it.</param>
    /// <exception cref="ArgumentException">A span is shorter than its shape needs, or R is out of range.</exception>
    public static void MatVec(ReadOnlySpan<float> x, int rows, int inFeatures, scoped in GemvProduct<float> first, scoped in GemvProduct<float> second, scoped in GemvProduct<float> third = default, bool accumulate = false)
        => MatVecShared<float, F32>(x, rows, inFeatures, first, second, third, accumulate, null);

    /// <summary>
    /// The grouped products for weights in <typeparamref name="T"/> read by <typeparamref name="TW"/>: checked, pinned,
    /// and run as one region; <paramref name="pairs"/> (F16 and half codes only, or null) receives x split into even and odd positions.
    /// </summary>
    private static void MatVecShared<T, TW>(
        ReadOnlySpan<float> x, int rows, int inFeatures, scoped in GemvProduct<T> first, scoped in GemvProduct<T> second, scoped in GemvProduct<T> third, bool accumulate, float* pairs)
        where T : unmanaged
        where TW : struct, IWeightFormat
    {
        var count = CheckShared(x.Length, rows, inFeatures, first.Weight.Length, first.OutFeatures, first.Bias.Length, first.Y.Length, second.Weight.Length, second.OutFeatures, second.Bias.Length, second.Y.Length, third.Weight.Length, third.OutFeatures, third.Bias.Length, third.Y.Length);
        fixed (float* px = x, pb0 = first.Bias, pb1 = second.Bias, pb2 = third.Bias, py0 = first.Y, py1 = second.Y, py2 = third.Y)
        fixed (T* pw0 = first.Weight, pw1 = second.Weight, pw2 = third.Weight)
        {
            if (pairs is not null)
            {
                SplitEvenOdd(px, rows, inFeatures, inFeatures / 32, pairs);
            }

            var j0 = new Job((nint)px, rows, (nint)pw0, inFeatures, first.OutFeatures, first.Bias.IsEmpty ? 0 : (nint)pb0, (nint)py0, accumulate) { XPairs = (nint)pairs };
            var j1 = new Job((nint)px, rows, (nint)pw1, inFeatures, second.OutFeatures, second.Bias.IsEmpty ? 0 : (nint)pb1, (nint)py1, accumulate) { XPairs = (nint)pairs };
            var j2 = new Job((nint)px, rows, (nint)pw2, inFeatures, third.OutFeatures, third.Bias.IsEmpty ? 0 : (nint)pb2, (nint)py2, accumulate) { XPairs = (nint)pairs };
            RunShared<TW>(j0, j1, j2, count);
        }
    }

    /// <summary>Checks every product (a third with no weight and Out = 0 is absent); returns how many there are.</summary>
    private static int CheckShared(
        int x, int rows, int inFeatures, int w0, int out0, int bias0, int y0, int w1, int out1, int bias1, int y1, int w2, int out2, int bias2, int y2)
    {
        Check(x, rows, w0, inFeatures, out0, bias0, y0);
        Check(x, rows, w1, inFeatures, out1, bias1, y1);
        if (w2 == 0 && out2 == 0)
        {
            return 2;
        }

        Check(x, rows, w2, inFeatures, out2, bias2, y2);
        return 3;
    }

    private static void RunShared<TW>(Job j0, Job j1, Job j2, int count)
        where TW : struct, IWeightFormat
    {
        switch (j0.Rows)
        {
            case 1: RunShared<TW, R1>(j0, j1, j2, count); break;
            case 2: RunShared<TW, R2>(j0, j1, j2, count); break;
            case 3: RunShared<TW, R3>(j0, j1, j2, count); break;
            case 4: RunShared<TW, R4>(j0, j1, j2, count); break;
            case 5: RunShared<TW, R5>(j0, j1, j2, count); break;
            case 6: RunShared<TW, R6>(j0, j1, j2, count); break;
            case 7: RunShared<TW, R7>(j0, j1, j2, count); break;
            default: RunShared<TW, R8>(j0, j1, j2, count); break;
        }
    }

    private static void RunShared<TW, TR>(Job j0, Job j1, Job j2, int count)
        where TW : struct, IWeightFormat
        where TR : struct, IRowCount
    {
        var rowBytes = TW.Offset(0, j0.In);
        var outs = j0.Out + j1.Out + (count > 2 ? j2.Out : 0);
        var rowsPerChunk = SharedRowsPerChunk((long)outs * rowBytes, rowBytes);

        // R ≥ 3 with AVX-512: x regrouped once for every matrix that GroupedPairs takes (as in Run).
        var groups = j0.In / 16;
        var grouped = TR.Count > SequentialMaxRows && Vector512.IsHardwareAccelerated && groups > 0 && j0.In <= GroupedMaxIn;
        var buffer = grouped && Math.Max(j0.Out, Math.Max(j1.Out, count > 2 ? j2.Out : 0)) >= GroupedMinOut ? ArrayPool<float>.Shared.Rent(TR.Count * groups * 16) : null;
        try
        {
            fixed (float* pg = buffer)
            {
                if (buffer is not null)
                {
                    Interleave((float*)j0.X, TR.Count, j0.In, groups, pg);
                }

                var r0 = j0 with { XGroups = buffer is not null && j0.Out >= GroupedMinOut ? (nint)pg : 0 };
                var r1 = j1 with { XGroups = buffer is not null && j1.Out >= GroupedMinOut ? (nint)pg : 0 };
                var r2 = j2 with { XGroups = buffer is not null && j2.Out >= GroupedMinOut ? (nint)pg : 0 };
                int e0 = (r0.Out + rowsPerChunk - 1) / rowsPerChunk, e1 = e0 + ((r1.Out + rowsPerChunk - 1) / rowsPerChunk);
                var e2 = e1 + (count > 2 ? (r2.Out + rowsPerChunk - 1) / rowsPerChunk : 0);
                ParallelFor.For(e2, 1, (start, end) =>
                {
                    for (var c = start; c < end; c++)
                    {
                        if (c < e0)
                        {
                            Outputs<TW, TR>(r0, c * rowsPerChunk, Math.Min(r0.Out, (c + 1) * rowsPerChunk));
                        }
                        else if (c < e1)
                        {
                            Outputs<TW, TR>(r1, (c - e0) * rowsPerChunk, Math.Min(r1.Out, (c - e0 + 1) * rowsPerChunk));
                        }
                        else
                        {
                            Outputs<TW, TR>(r2, (c - e1) * rowsPerChunk, Math.Min(r2.Out, (c - e1 + 1) * rowsPerChunk));
                        }
                    }
                });
            }
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<float>.Shared.Return(buffer);
            }
        }
    }

    /// <summary>
    /// Output rows per chunk in a region of <paramref name="regionBytes"/> bytes of weights of <paramref name="rowBytes"/>
    /// bytes per row: about <see cref="ChunkBytes"/>, less when the region is small so it still has about
    /// <see cref="ChunksPerThread"/> chunks per thread (what <see cref="RowsPerChunk"/> asks of one matrix); at least 2, even.
    /// </summary>
    private static int SharedRowsPerChunk(long regionBytes, long rowBytes)
    {
        var threads = (long)ChunksPerThread * ParallelFor.MaxDegreeOfParallelism;
        var target = Math.Min(ChunkBytes, (regionBytes + threads - 1) / threads);
        return (int)Math.Max(2, Math.Min(int.MaxValue, target / rowBytes)) & ~1;
    }
}
