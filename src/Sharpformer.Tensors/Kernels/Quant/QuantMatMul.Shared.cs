using System.Runtime.Intrinsics.X86;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Kernels.Quant;

/// <summary>
/// One product of a group that <see cref="QuantMatMul.Multiply(ReadOnlySpan{float}, int, in QuantProduct, in QuantProduct, in QuantProduct, bool)"/>
/// runs on one input: y [N, Out] = x [N, In] · Wᵀ + bias for a block-quantized W [Out, In].
/// </summary>
/// <param name="weight">W [Out, In].</param>
/// <param name="y">[N, Out] row-major.</param>
/// <param name="bias">[Out], or empty for none.</param>
public readonly ref struct QuantProduct(QuantizedMatrix weight, Span<float> y, ReadOnlySpan<float> bias = default)
{
    /// <summary>W [Out, In]; null in a default (absent) product.</summary>
    public QuantizedMatrix? Weight { get; } = weight;

    /// <summary>[N, Out] row-major.</summary>
    public Span<float> Y { get; } = y;

    /// <summary>[Out], or empty for none.</summary>
    public ReadOnlySpan<float> Bias { get; } = bias;
}

/// <summary>
/// Several products that share their input (a decoder layer's q, k and v projections, or its gate and up projections)
/// as one parallel region: x is quantized once per kind of activation the weights need (Q8_0 blocks for Q8_0/Q4_0
/// weights, Q8_K for Q4_K/Q6_K; per weight type for the token-lane kernels), and the rows of all the matrices are dealt
/// to the threads as one range of chunks, so a small matrix (k and v under grouped-query attention) is no longer a
/// fork-join of its own. Each row goes through the same kernel, on the same activation codes, as in a call per matrix:
/// the outputs are bit-equal to those calls.
/// </summary>
public static unsafe partial class QuantMatMul
{
    /// <summary>
    /// y_i [N, Out_i] = x [N, In] · W_iᵀ + bias_i (+ y_i when <paramref name="accumulate"/>) for two or three matrices with
    /// the same In, in one parallel region with one quantization of x per activation kind. The same outputs, bit for bit,
    /// as <see cref="Multiply(ReadOnlySpan{float}, int, QuantizedMatrix, ReadOnlySpan{float}, Span{float}, bool)"/> per product.
    /// </summary>
    /// <param name="x">[N, In] row-major.</param>
    /// <param name="rows">N ≥ 1.</param>
    /// <param name="first">The first product.</param>
    /// <param name="second">The second product.</param>
    /// <param name="third">A third product, or default for none.</param>
    /// <param name="accumulate">Add to every y instead of overwriting it.</param>
    /// <exception cref="ArgumentException">A matrix is missing or has another In, or a span is shorter than its shape needs.</exception>
    public static void Multiply(ReadOnlySpan<float> x, int rows, scoped in QuantProduct first, scoped in QuantProduct second, scoped in QuantProduct third = default, bool accumulate = false) =>
        RunShared(x, rows, first, second, third, accumulate, Avx2.IsSupported);

    /// <summary>The scalar reference path of the grouped <see cref="Multiply(ReadOnlySpan{float}, int, in QuantProduct, in QuantProduct, in QuantProduct, bool)"/> (for tests).</summary>
    internal static void MultiplySharedReference(ReadOnlySpan<float> x, int rows, scoped in QuantProduct first, scoped in QuantProduct second, scoped in QuantProduct third, bool accumulate) =>
        RunShared(x, rows, first, second, third, accumulate, simd: false);

    /// <summary>
    /// Rows per chunk of a matrix of <paramref name="rowBytes"/> bytes per row in a batch-1 region of
    /// <paramref name="regionBytes"/> bytes of weights: about <see cref="DecodeChunkBytes"/>, less when the region is small,
    /// so that it still has about <see cref="DecodeChunksPerThread"/> chunks per thread (what <see cref="DecodeGrain"/> asks of
    /// one matrix); at least 4 rows.
    /// </summary>
    private static int SharedDecodeGrain(long regionBytes, int rowBytes)
    {
        var threads = (long)DecodeChunksPerThread * ParallelFor.MaxDegreeOfParallelism;
        var target = Math.Min(DecodeChunkBytes, (regionBytes + threads - 1) / threads);
        return (int)Math.Max(4, target / rowBytes);
    }

    private static void RunShared(ReadOnlySpan<float> x, int rows, scoped in QuantProduct first, scoped in QuantProduct second, scoped in QuantProduct third, bool accumulate, bool simd)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        var w0 = first.Weight ?? throw new ArgumentException("QuantMatMul: the first product has no matrix.", nameof(first));
        var w1 = second.Weight ?? throw new ArgumentException("QuantMatMul: the second product has no matrix.", nameof(second));
        var w2 = third.Weight;
        int n = w0.Columns;
        CheckProduct(x, rows, n, w0, first.Bias, first.Y);
        CheckProduct(x, rows, n, w1, second.Bias, second.Y);
        if (w2 is not null)
        {
            CheckProduct(x, rows, n, w2, third.Bias, third.Y);
        }

        // One activation per kind: the token-lane kernels' interleaved codes depend on the weight type, the others only
        // on Q8_0 (blocks of 32) against Q8_K (super-blocks of 256).
        var groups = LaneGroups(rows, simd);
        var a0 = Activations.Rent(w0.Type, rows, n);
        var a1 = SameActivations(w0.Type, w1.Type, groups) ? null : Activations.Rent(w1.Type, rows, n);
        var a2 = w2 is null || SameActivations(w0.Type, w2.Type, groups) || (a1 is not null && SameActivations(w1.Type, w2.Type, groups)) ? null : Activations.Rent(w2.Type, rows, n);
        try
        {
            QuantizeFor(a0, w0.Type, x, rows, n, groups, simd);
            if (a1 is not null)
            {
                QuantizeFor(a1, w1.Type, x, rows, n, groups, simd);
            }

            if (a2 is not null)
            {
                QuantizeFor(a2, w2!.Type, x, rows, n, groups, simd);
            }

            // The activations each product reads.
            var s1 = a1 ?? a0;
            var s2 = w2 is null ? null : a2 ?? (SameActivations(w0.Type, w2.Type, groups) ? a0 : a1);
            fixed (byte* pw0 = w0.Blocks, pw1 = w1.Blocks, pw2 = w2 is null ? default : w2.Blocks)
            fixed (float* pb0 = first.Bias, pb1 = second.Bias, pb2 = third.Bias, py0 = first.Y, py1 = second.Y, py2 = third.Y)
            fixed (sbyte* c0 = a0.Codes, c1 = s1.Codes, c2 = s2?.Codes, l0 = a0.Lanes, l1 = s1.Lanes, l2 = s2?.Lanes)
            fixed (float* d0 = a0.Scales, d1 = s1.Scales, d2 = s2?.Scales, ls0 = a0.LaneScales, ls1 = s1.LaneScales, ls2 = s2?.LaneScales)
            fixed (short* m0 = a0.Sums, m1 = s1.Sums, m2 = s2?.Sums, lm0 = a0.LaneSums, lm1 = s1.LaneSums, lm2 = s2?.LaneSums)
            fixed (int* li0 = a0.LaneStarts, li1 = s1.LaneStarts, li2 = s2?.LaneStarts)
            {
                var j0 = new Job(
                    w0.Type, (nint)pw0, w0.RowBytes, n, w0.Rows, rows, (nint)c0, (nint)d0, (nint)m0, first.Bias.IsEmpty ? 0 : (nint)pb0, (nint)py0, accumulate, simd,
                    groups, (nint)(l0 + a0.LaneOffset), (nint)ls0, (nint)li0, (nint)lm0);
                var j1 = new Job(
                    w1.Type, (nint)pw1, w1.RowBytes, n, w1.Rows, rows, (nint)c1, (nint)d1, (nint)m1, second.Bias.IsEmpty ? 0 : (nint)pb1, (nint)py1, accumulate, simd,
                    groups, (nint)(l1 + s1.LaneOffset), (nint)ls1, (nint)li1, (nint)lm1);
                var j2 = w2 is null ? default : new Job(
                    w2.Type, (nint)pw2, w2.RowBytes, n, w2.Rows, rows, (nint)c2, (nint)d2, (nint)m2, third.Bias.IsEmpty ? 0 : (nint)pb2, (nint)py2, accumulate, simd,
                    groups, (nint)(l2 + s2!.LaneOffset), (nint)ls2, (nint)li2, (nint)lm2);

                // One token: each kernel's activation setup made once here (see Run), and once for all the products
                // of one weight type that read the same activations (q, k and v; gate and up).
                int p0 = rows == 1 ? DecodePreparedBytes(j0) : 0;
                bool share1 = j1.Type == j0.Type && s1 == a0, share2 = w2 is not null && ((j2.Type == j0.Type && s2 == a0) || (j2.Type == j1.Type && s2 == s1));
                int p1 = rows == 1 && !share1 ? DecodePreparedBytes(j1) : 0, p2 = rows == 1 && w2 is not null && !share2 ? DecodePreparedBytes(j2) : 0;
                var buffer = stackalloc byte[p0 + p1 + p2];
                j0 = WithPrepared(j0, p0, buffer);
                j1 = share1 ? j1 with { Prepared = j0.Prepared } : WithPrepared(j1, p1, buffer + p0);
                j2 = !share2 ? WithPrepared(j2, p2, buffer + p0 + p1) : j2 with { Prepared = j2.Type == j0.Type && s2 == a0 ? j0.Prepared : j1.Prepared };

                // Rows per chunk of each matrix, and where each matrix's chunks start in the one range.
                int g0, g1, g2;
                if (rows == 1)
                {
                    var bytes = ((long)w0.Rows * w0.RowBytes) + ((long)w1.Rows * w1.RowBytes) + (w2 is null ? 0 : (long)w2.Rows * w2.RowBytes);
                    g0 = SharedDecodeGrain(bytes, w0.RowBytes);
                    g1 = SharedDecodeGrain(bytes, w1.RowBytes);
                    g2 = w2 is null ? 1 : SharedDecodeGrain(bytes, w2.RowBytes);
                }
                else
                {
                    g0 = TileGrain(w0.RowBytes);
                    g1 = TileGrain(w1.RowBytes);
                    g2 = w2 is null ? 1 : TileGrain(w2.RowBytes);
                }

                int e0 = (w0.Rows + g0 - 1) / g0, e1 = e0 + ((w1.Rows + g1 - 1) / g1), e2 = e1 + (w2 is null ? 0 : (w2.Rows + g2 - 1) / g2);
                Action<int, int> body = (start, end) =>
                {
                    for (var c = start; c < end; c++)
                    {
                        if (c < e0)
                        {
                            RowsOf(j0, c * g0, Math.Min(j0.Out, (c + 1) * g0));
                        }
                        else if (c < e1)
                        {
                            RowsOf(j1, (c - e0) * g1, Math.Min(j1.Out, (c - e0 + 1) * g1));
                        }
                        else
                        {
                            RowsOf(j2, (c - e1) * g2, Math.Min(j2.Out, (c - e1 + 1) * g2));
                        }
                    }
                };

                // One token: each thread streams a contiguous share of the chunks (see Run).
                if (rows == 1)
                {
                    ParallelFor.ForShares(e2, 1, body);
                }
                else
                {
                    ParallelFor.For(e2, 1, body);
                }
            }
        }
        finally
        {
            a0.Return();
            a1?.Return();
            a2?.Return();
        }
    }

    /// <summary>Rows per chunk for more than one token: whole tiles of four rows, about <see cref="ChunkBytes"/> of blocks (as in a call per matrix).</summary>
    private static int TileGrain(int rowBytes) => Math.Max(LaneRowsPerTile, ChunkBytes / rowBytes / LaneRowsPerTile * LaneRowsPerTile);

    /// <summary>Whether <paramref name="a"/> and <paramref name="b"/> weights read the same quantized activations.</summary>
    private static bool SameActivations(QuantType a, QuantType b, int groups) =>
        groups > 0 ? a == b : (a is QuantType.Q4_K or QuantType.Q6_K) == (b is QuantType.Q4_K or QuantType.Q6_K);

    private static void CheckProduct(ReadOnlySpan<float> x, int rows, int n, QuantizedMatrix w, ReadOnlySpan<float> bias, ReadOnlySpan<float> y)
    {
        int outs = w.Rows;
        if (w.Columns != n || x.Length < (long)rows * n || y.Length < (long)rows * outs || (!bias.IsEmpty && bias.Length < outs))
        {
            throw new ArgumentException(
                $"QuantMatMul: a product of x [N={rows}, In={n}] ({x.Length} values) by W [{w.Rows}, {w.Columns}] with y [N, Out] {y.Length} and bias [Out] {bias.Length}: the matrices must share In and every span hold its shape.", nameof(x));
        }
    }
}
