using System.Buffers;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Kernels;

public static partial class Attention
{
    /// <summary>
    /// One decoding step (one query per head) of grouped-query attention: query head h (D values of
    /// <paramref name="q"/>) against K/V head h / (H / Hkv) of each of the <paramref name="keys"/> cached rows, every key
    /// visible unless <paramref name="keyMask"/> holds 0 for it; out [H·D]. K and V are [Tk, ≥ Hkv·D] at row stride
    /// <paramref name="rowStride"/>. With 512-bit vectors and D a multiple of 16 the step is split over blocks of keys
    /// (as in flash-decoding), one per thread, each of whole 16-key groups: a block takes its consecutive K rows and then
    /// its V rows front to back for every K/V head (two sequential streams, where a head at a time strides through the
    /// cache), computes per group of 16 keys and per query head the 16 scores together (16 vector dot products reduced
    /// by one transposing shuffle tree, not one horizontal sum per key and head), and leaves per head its maximum, its
    /// sum of exp(score − max) and its unnormalized output; the blocks are merged with the rescaling
    /// exp(max_block − max). (The ~1B Llama's decode, H = 32, Hkv = 4, D = 64, ~130–190 keys, 2 threads, AMD EPYC Zen 5
    /// class: 15–17 µs per layer at a ~50 GB/s probe, against 17–19 µs with a horizontal sum per key and head and two
    /// blocks per thread.)
    /// Otherwise each head is one single-query <see cref="Forward"/> on its K/V head, the heads split between the threads
    /// (the form the ~1B Llama used before, whose per-head strided reads of the cache came from memory at a fraction of
    /// its bandwidth and whose per-head calls had a fixed cost each: inside its decode, 2 threads, AMD EPYC Zen 5 class,
    /// attention took 47–63 µs per layer against 19 µs this way; 7–10 % of the Q4_K step against 3 %).
    /// </summary>
    /// <param name="heads">H, a multiple of <paramref name="kvHeads"/>.</param>
    /// <param name="kvHeads">Hkv.</param>
    /// <param name="headDim">D.</param>
    /// <param name="keys">Tk ≥ 1.</param>
    /// <param name="rowStride">Elements between consecutive K rows and between consecutive V rows, at least Hkv·D.</param>
    /// <param name="q">[H·D].</param>
    /// <param name="k">K rows.</param>
    /// <param name="v">V rows.</param>
    /// <param name="keyMask">Empty (every key visible) or [Tk]: 1 = attend, 0 = padding.</param>
    /// <param name="output">[H·D], overwritten; a head whose keys are all masked gets zeros.</param>
    /// <param name="scale">Score scale.</param>
    /// <exception cref="ArgumentException">A size is invalid or a span is too short.</exception>
    public static unsafe void DecodeGrouped(
        int heads, int kvHeads, int headDim, int keys, int rowStride, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<float> keyMask, Span<float> output, float scale)
    {
        int d = headDim, width = heads * d;
        long rows = ((long)(keys - 1) * rowStride) + ((long)kvHeads * d);
        if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0 || d <= 0 || keys <= 0 || rowStride < kvHeads * d
            || q.Length < width || output.Length < width || k.Length < rows || v.Length < rows || (!keyMask.IsEmpty && keyMask.Length < keys))
        {
            throw new ArgumentException(
                $"Attention.DecodeGrouped: need H > 0 a multiple of Hkv > 0, D > 0, Tk > 0, a row stride ≥ Hkv·D, q and output of H·D, K and V of (Tk − 1)·stride + Hkv·D values and an empty or [Tk] mask; got H={heads}, Hkv={kvHeads}, D={d}, Tk={keys}, stride={rowStride}, q {q.Length}, K {k.Length}, V {v.Length}, mask {keyMask.Length}, output {output.Length}.",
                nameof(heads));
        }

        int rep = heads / kvHeads;
        if (!Vector512.IsHardwareAccelerated || d % 16 != 0)
        {
            DecodeGroupedHeads(heads, rep, d, keys, rowStride, q, k, v, keyMask, output, scale);
            return;
        }

        // Blocks of whole 16-key groups (the last block ends at Tk), one per thread, at least two groups each.
        int groups = (keys + 15) / 16;
        int blocks = Math.Min(ParallelFor.MaxDegreeOfParallelism, Math.Max(1, groups / 2));
        int blockKeys = 16 * ((groups + blocks - 1) / blocks);

        // Per block: the unnormalized outputs [H·D], then per head its maximum, then per head its sum; after all
        // blocks, each block's scores [H, blockKeys].
        int slot = width + (2 * heads);
        float[] scratch = ArrayPool<float>.Shared.Rent((blocks * slot) + (blocks * heads * blockKeys));
        try
        {
            fixed (float* pq = q, pk = k, pv = v, pm = keyMask, ps = scratch)
            {
                nint aq = (nint)pq, ak = (nint)pk, av = (nint)pv, am = (nint)pm, asc = (nint)ps;
                ParallelFor.For(blocks, 1, (start, end) =>
                {
                    for (int block = start; block < end; block++)
                    {
                        int first = 16 * (block * groups / blocks), count = Math.Min(keys, 16 * ((block + 1) * groups / blocks)) - first;
                        float* partial = (float*)asc + ((long)block * slot);
                        float* scores = (float*)asc + ((long)blocks * slot) + ((long)block * heads * blockKeys);
                        float* mask = am == 0 ? null : (float*)am + first;
                        GroupedBlock(
                            (float*)aq, (float*)ak + ((long)first * rowStride), (float*)av + ((long)first * rowStride), mask,
                            kvHeads, rep, d, rowStride, count, scale, scores, partial, partial + width, partial + width + heads);
                    }
                });

                MergeGroupedBlocks((float*)asc, blocks, heads, d, output[..width]);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(scratch);
        }
    }

    /// <summary>
    /// One block of <paramref name="count"/> consecutive keys for every head (512-bit, D a multiple of 16): the K rows
    /// front to back, 16 at a time (<see cref="GroupedScores16"/>; one row at a time below 16 keys), their D values of
    /// K/V head g against the <paramref name="rep"/> query heads of its group (scores [H, count]), the block's V rows
    /// asked for meanwhile; then per head its maximum and sum of exp(score − max),
    /// and its unnormalized output o [H·D] from the V rows (in cache by then). Maximum −∞ and sum 0 when the block's keys
    /// are all masked.
    /// </summary>
    private static unsafe void GroupedBlock(
        float* q, float* k, float* v, float* mask, int kvHeads, int rep, int d, int rowStride, int count, float scale, float* scores, float* o, float* maxima, float* sums)
    {
        int vectors = d / 16, heads = kvHeads * rep, rowBytes = kvHeads * d * sizeof(float);
        int scored = 0;
        if (count >= 16 && Avx512F.IsSupported)
        {
            // Groups of 16 keys; a last partial group is taken as the 16 keys that end the block (the scores it shares
            // with the group before are computed again, to the same values).
            scored = count;
            for (int j = 0; j < count; j += 16)
            {
                int j0 = Math.Min(j, count - 16);
                GroupedScores16(q, k + ((long)j0 * rowStride), v + ((long)j0 * rowStride), mask == null ? null : mask + j0, kvHeads, rep, d, rowStride,
                    Math.Clamp(count - j0 - 16, 0, 16), scale, scores + j0, count);
            }
        }

        // Fewer than 16 keys: one key row at a time, a horizontal sum per head.
        for (int j = scored; j < count; j++)
        {
            float* kr = k + ((long)j * rowStride);
            if (Sse.IsSupported)
            {
                byte* next = (byte*)(kr + (2L * rowStride)), vr = (byte*)(v + ((long)j * rowStride));
                for (int line = 0; line < rowBytes; line += 64)
                {
                    if (j + 2 < count)
                    {
                        Sse.Prefetch0(next + line);
                    }

                    Sse.Prefetch0(vr + line);
                }
            }

            bool keep = mask == null || mask[j] != 0f;
            for (int h = 0; h < heads; h++)
            {
                float* qh = q + (h * d), kh = kr + (h / rep * d);
                var acc = Vector512.Load(qh) * Vector512.Load(kh);
                for (int c = 1; c < vectors; c++)
                {
                    acc = Vector512.FusedMultiplyAdd(Vector512.Load(qh + (16 * c)), Vector512.Load(kh + (16 * c)), acc);
                }

                scores[(h * count) + j] = keep ? scale * Vector512.Sum(acc) : float.NegativeInfinity;
            }
        }

        BlockSoftmaxRows(scores, heads, count, maxima, sums);

        // o_h = Σ_j p_h,j · v_j,g: each V row's slice for group g read once for up to four of its heads (16 accumulators at D = 64).
        for (int g = 0; g < kvHeads; g++)
        {
            float* vg = v + (g * d);
            for (int r = 0; r < rep; r += 4)
            {
                int n = Math.Min(4, rep - r), h0 = (g * rep) + r;
                if (vectors == 4 && n == 4)
                {
                    GroupedValues4(scores + (h0 * count), count, vg, rowStride, o + (h0 * d));
                    continue;
                }

                for (int i = 0; i < n; i++)
                {
                    float* p = scores + ((h0 + i) * count), oh = o + ((h0 + i) * d);
                    for (int c = 0; c < vectors; c++)
                    {
                        var acc = Vector512<float>.Zero;
                        for (int j = 0; j < count; j++)
                        {
                            acc = Vector512.FusedMultiplyAdd(Vector512.Create(p[j]), Vector512.Load(vg + ((long)j * rowStride) + (16 * c)), acc);
                        }

                        acc.Store(oh + (16 * c));
                    }
                }
            }
        }
    }

    /// <summary>
    /// A block's softmax numerators per head, in place: row h of <paramref name="scores"/> ([heads, count]) becomes
    /// exp(score − max), its max goes to <paramref name="maxima"/>[h] and its sum to <paramref name="sums"/>[h]; a head
    /// whose every key in the block is masked (max −∞) gets zeros and sum 0.
    /// </summary>
    private static unsafe void BlockSoftmaxRows(float* scores, int heads, int count, float* maxima, float* sums)
    {
        for (int h = 0; h < heads; h++)
        {
            var row = new Span<float>(scores + (h * count), count);
            float max = Softmax.RowMax(row);
            maxima[h] = max;
            if (float.IsNegativeInfinity(max))
            {
                sums[h] = 0f;
                row.Clear();
            }
            else
            {
                sums[h] = Softmax.ExpSubtractSum(row, max, row);
            }
        }
    }

    /// <summary>
    /// Scores of 16 consecutive keys for every head (512-bit): head h's row gets scale · q_h · k_j,g at
    /// scores[h · stride + j], −∞ where the mask holds 0. Per head, 16 dot products are accumulated as 16 vectors and
    /// reduced together (a transposing tree of 128-bit and in-lane shuffles, 15 adds), rather than one horizontal sum per
    /// key; the next <paramref name="ahead"/> K rows and these 16 V rows are asked for meanwhile (nothing when <paramref name="v"/> is null).
    /// </summary>
    private static unsafe void GroupedScores16(
        float* q, float* k, float* v, float* mask, int kvHeads, int rep, int d, int rowStride, int ahead, float scale, float* scores, int stride)
    {
        int vectors = d / 16;
        long rs = rowStride;
        var order = Vector512.Create(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        var scaleV = Vector512.Create(scale);
        var keep = Vector512<float>.AllBitsSet;
        if (mask != null)
        {
            keep = ~Vector512.Equals(Vector512.Load(mask), Vector512<float>.Zero);
        }

        for (int g = 0; g < kvHeads; g++)
        {
            float* kg = k + (g * d);
            if (Sse.IsSupported && v != null)
            {
                // The g-slices of the next K rows and of these V rows (the F16 kernel passes no V: it asks for its rows itself).
                for (int t = 0; t < 16; t++)
                {
                    byte* vr = (byte*)(v + (t * rs) + (g * d));
                    for (int line = 0; line < d * sizeof(float); line += 64)
                    {
                        Sse.Prefetch0(vr + line);
                    }

                    if (t < ahead)
                    {
                        byte* kr = (byte*)(kg + ((16 + t) * rs));
                        for (int line = 0; line < d * sizeof(float); line += 64)
                        {
                            Sse.Prefetch0(kr + line);
                        }
                    }
                }
            }

            for (int i = 0; i < rep; i++)
            {
                int h = (g * rep) + i;
                float* qh = q + (h * d);
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
                Vector512<float> a8 = default, a9 = default, a10 = default, a11 = default, a12 = default, a13 = default, a14 = default, a15 = default;
                for (int c = 0; c < vectors; c++)
                {
                    var qc = Vector512.Load(qh + (16 * c));
                    float* p = kg + (16 * c);
                    a0 = Vector512.FusedMultiplyAdd(qc, Vector512.Load(p), a0);
                    a1 = Vector512.FusedMultiplyAdd(qc, Vector512.Load(p + rs), a1);
                    a2 = Vector512.FusedMultiplyAdd(qc, Vector512.Load(p + (2 * rs)), a2);
                    a3 = Vector512.FusedMultiplyAdd(qc, Vector512.Load(p + (3 * rs)), a3);
                    p += 4 * rs;
                    a4 = Vector512.FusedMultiplyAdd(qc, Vector512.Load(p), a4);
                    a5 = Vector512.FusedMultiplyAdd(qc, Vector512.Load(p + rs), a5);
                    a6 = Vector512.FusedMultiplyAdd(qc, Vector512.Load(p + (2 * rs)), a6);
                    a7 = Vector512.FusedMultiplyAdd(qc, Vector512.Load(p + (3 * rs)), a7);
                    p += 4 * rs;
                    a8 = Vector512.FusedMultiplyAdd(qc, Vector512.Load(p), a8);
                    a9 = Vector512.FusedMultiplyAdd(qc, Vector512.Load(p + rs), a9);
                    a10 = Vector512.FusedMultiplyAdd(qc, Vector512.Load(p + (2 * rs)), a10);
                    a11 = Vector512.FusedMultiplyAdd(qc, Vector512.Load(p + (3 * rs)), a11);
                    p += 4 * rs;
                    a12 = Vector512.FusedMultiplyAdd(qc, Vector512.Load(p), a12);
                    a13 = Vector512.FusedMultiplyAdd(qc, Vector512.Load(p + rs), a13);
                    a14 = Vector512.FusedMultiplyAdd(qc, Vector512.Load(p + (2 * rs)), a14);
                    a15 = Vector512.FusedMultiplyAdd(qc, Vector512.Load(p + (3 * rs)), a15);
                }

                // The 16 dot products' totals in one vector (the transpose-sum tree of HeadSums), input n in lane
                // HeadLane(n), then put in key order.
                var r = TransposeSum8(
                    FoldPair(a0, a1), FoldPair(a2, a3), FoldPair(a4, a5), FoldPair(a6, a7),
                    FoldPair(a8, a9), FoldPair(a10, a11), FoldPair(a12, a13), FoldPair(a14, a15));
                r = Avx512F.PermuteVar16x32(r, order) * scaleV;
                Vector512.ConditionalSelect(keep, r, Vector512.Create(float.NegativeInfinity)).Store(scores + (h * stride));
            }
        }
    }

    /// <summary>
    /// The blocks of <see cref="DecodeGrouped"/> merged per head (D a multiple of 16): o_h = Σ_blocks exp(m_block,h − m_h)
    /// · o_block,h / Σ_blocks exp(m_block,h − m_h) · sum_block,h, m_h the largest block maximum; a head whose keys are all
    /// masked gets zeros. <paramref name="partials"/> as <see cref="MergeBlocks"/> reads them. The grouped decodes take
    /// the weights from <see cref="FastMath.Exp(float)"/>; GPT-2's F16 decode (<see cref="ForwardHalfAppend"/>) from
    /// <see cref="MathF.Exp"/> (<paramref name="fastExp"/> false), as it always has. With MathF.Exp the ~1B Llama's write +
    /// attention ran 5 % slower (token-by-token A/B, 2 threads, AMD EPYC Zen 5 class, ~78 GB/s probe).
    /// </summary>
    private static unsafe void MergeGroupedBlocks(float* partials, int blocks, int heads, int d, Span<float> output, bool fastExp = true)
    {
        int width = heads * d, slot = width + (2 * heads);
        fixed (float* po = output)
        {
            for (int h = 0; h < heads; h++)
            {
                float max = float.NegativeInfinity;
                for (int b = 0; b < blocks; b++)
                {
                    max = MathF.Max(max, partials[((long)b * slot) + width + h]);
                }

                float* o = po + (h * d);
                if (float.IsNegativeInfinity(max))
                {
                    for (int c = 0; c < d; c += 16)
                    {
                        Vector512<float>.Zero.Store(o + c);
                    }

                    continue;
                }

                float total = 0f;
                for (int c = 0; c < d; c += 16)
                {
                    Vector512<float>.Zero.Store(o + c);
                }

                for (int b = 0; b < blocks; b++)
                {
                    float* part = partials + ((long)b * slot);
                    float m = part[width + h];
                    if (float.IsNegativeInfinity(m))
                    {
                        continue;
                    }

                    float weight = fastExp ? FastMath.Exp(m - max) : MathF.Exp(m - max);
                    total += weight * part[width + heads + h];
                    var w = Vector512.Create(weight);
                    for (int c = 0; c < d; c += 16)
                    {
                        Vector512.FusedMultiplyAdd(Vector512.Load(part + (h * d) + c), w, Vector512.Load(o + c)).Store(o + c);
                    }
                }

                var inverse = Vector512.Create(1f / total);
                for (int c = 0; c < d; c += 16)
                {
                    (Vector512.Load(o + c) * inverse).Store(o + c);
                }
            }
        }
    }

    /// <summary>Four heads' o [4, 64] = p [4, count] · V [count, 64] (rows at <paramref name="rowStride"/>), the outputs in 16 registers.</summary>
    private static unsafe void GroupedValues4(float* p, int count, float* v, int rowStride, float* o)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default;
        Vector512<float> e0 = default, e1 = default, e2 = default, e3 = default;
        for (int j = 0; j < count; j++)
        {
            float* vr = v + ((long)j * rowStride);
            Vector512<float> v0 = Vector512.Load(vr), v1 = Vector512.Load(vr + 16), v2 = Vector512.Load(vr + 32), v3 = Vector512.Load(vr + 48);
            var pa = Vector512.Create(p[j]);
            a0 = Vector512.FusedMultiplyAdd(pa, v0, a0);
            a1 = Vector512.FusedMultiplyAdd(pa, v1, a1);
            a2 = Vector512.FusedMultiplyAdd(pa, v2, a2);
            a3 = Vector512.FusedMultiplyAdd(pa, v3, a3);
            var pb = Vector512.Create(p[count + j]);
            b0 = Vector512.FusedMultiplyAdd(pb, v0, b0);
            b1 = Vector512.FusedMultiplyAdd(pb, v1, b1);
            b2 = Vector512.FusedMultiplyAdd(pb, v2, b2);
            b3 = Vector512.FusedMultiplyAdd(pb, v3, b3);
            var pc = Vector512.Create(p[(2 * count) + j]);
            c0 = Vector512.FusedMultiplyAdd(pc, v0, c0);
            c1 = Vector512.FusedMultiplyAdd(pc, v1, c1);
            c2 = Vector512.FusedMultiplyAdd(pc, v2, c2);
            c3 = Vector512.FusedMultiplyAdd(pc, v3, c3);
            var pe = Vector512.Create(p[(3 * count) + j]);
            e0 = Vector512.FusedMultiplyAdd(pe, v0, e0);
            e1 = Vector512.FusedMultiplyAdd(pe, v1, e1);
            e2 = Vector512.FusedMultiplyAdd(pe, v2, e2);
            e3 = Vector512.FusedMultiplyAdd(pe, v3, e3);
        }

        a0.Store(o);
        a1.Store(o + 16);
        a2.Store(o + 32);
        a3.Store(o + 48);
        b0.Store(o + 64);
        b1.Store(o + 80);
        b2.Store(o + 96);
        b3.Store(o + 112);
        c0.Store(o + 128);
        c1.Store(o + 144);
        c2.Store(o + 160);
        c3.Store(o + 176);
        e0.Store(o + 192);
        e1.Store(o + 208);
        e2.Store(o + 224);
        e3.Store(o + 240);
    }

    /// <summary>
    /// <see cref="DecodeGrouped"/> without 512-bit vectors (or D not a multiple of 16): each query head one single-query
    /// <see cref="Forward"/> on its shared K/V head (no copies), the heads in chunks claimed by the threads; each head's own
    /// parallel loop then runs inline.
    /// </summary>
    private static unsafe void DecodeGroupedHeads(
        int heads, int rep, int d, int keys, int rowStride, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<float> keyMask, Span<float> output, float scale)
    {
        fixed (float* pq = q, pk = k, pv = v, pm = keyMask, po = output)
        {
            nint aq = (nint)pq, ak = (nint)pk, av = (nint)pv, am = (nint)pm, ao = (nint)po;
            int kLength = k.Length, vLength = v.Length, maskLength = keyMask.Length;
            ParallelFor.For(heads, Math.Max(1, heads / (4 * ParallelFor.MaxDegreeOfParallelism)), (start, end) =>
            {
                var shape = new AttentionShape(1, 1, 1, keys, d) { KeyRowStride = rowStride, ValueRowStride = rowStride };
                for (int h = start; h < end; h++)
                {
                    int offset = h / rep * d;
                    Forward(
                        shape,
                        new ReadOnlySpan<float>((float*)aq + (h * d), d),
                        new ReadOnlySpan<float>((float*)ak + offset, kLength - offset),
                        new ReadOnlySpan<float>((float*)av + offset, vLength - offset),
                        new Span<float>((float*)ao + (h * d), d),
                        causal: true,
                        keyPaddingMask: new ReadOnlySpan<float>((float*)am, maskLength),
                        scale: scale);
                }
            });
        }
    }

    /// <summary>Scalar reference of <see cref="DecodeGrouped"/> (double sums, plain loops).</summary>
    internal static void DecodeGroupedReference(
        int heads, int kvHeads, int headDim, int keys, int rowStride, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<float> keyMask, Span<float> output, float scale)
    {
        int d = headDim, rep = heads / kvHeads;
        var scores = new double[keys];
        for (int h = 0; h < heads; h++)
        {
            int offset = h / rep * d;
            double max = double.NegativeInfinity;
            for (int j = 0; j < keys; j++)
            {
                double dot = 0;
                for (int i = 0; i < d; i++)
                {
                    dot += (double)q[(h * d) + i] * k[(j * rowStride) + offset + i];
                }

                scores[j] = !keyMask.IsEmpty && keyMask[j] == 0f ? double.NegativeInfinity : scale * dot;
                max = Math.Max(max, scores[j]);
            }

            var o = output.Slice(h * d, d);
            o.Clear();
            if (double.IsNegativeInfinity(max))
            {
                continue;
            }

            double total = 0;
            for (int j = 0; j < keys; j++)
            {
                scores[j] = Math.Exp(scores[j] - max);
                total += scores[j];
            }

            for (int i = 0; i < d; i++)
            {
                double sum = 0;
                for (int j = 0; j < keys; j++)
                {
                    sum += scores[j] * v[(j * rowStride) + offset + i];
                }

                o[i] = (float)(sum / total);
            }
        }
    }
}
