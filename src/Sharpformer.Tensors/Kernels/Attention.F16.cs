using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Kernels;

/// <summary>Attention over F16 K/V (an F16 KV cache).</summary>
public static partial class Attention
{
    /// <summary>2^112: a half's 15 magnitude bits shifted to F32's place read as the value times 2^-112.</summary>
    private const float HalfScale = 5.192296858534828e33f;

    /// <summary>
    /// <see cref="Forward(AttentionShape, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, bool, ReadOnlySpan{float}, float?, Span{float}, Span{float})"/>
    /// with K and V in F16 (an F16 KV cache): a decoding step (Tq = 1, no probabilities) reads the halves directly and
    /// widens them in registers; anything else widens the K and V views to F32 first and runs the F32 kernel. The result
    /// is the F32 kernel's on the widened values, up to the order of the sums. K and V must be finite, as
    /// <see cref="Convert.F32ToF16Cache"/> writes them: the decoding kernel may read an infinite or NaN half as a finite
    /// value of magnitude at least 65536, and it is fastest without subnormal halves.
    /// </summary>
    /// <param name="shape">Sizes and row strides (the K and V strides in halves).</param>
    /// <param name="q">Queries, starting at Q[0, 0, 0, 0].</param>
    /// <param name="k">Keys in F16, starting at K[0, 0, 0, 0].</param>
    /// <param name="v">Values in F16, starting at V[0, 0, 0, 0].</param>
    /// <param name="output">Output view, starting at O[0, 0, 0, 0]; only its [B, H, Tq, D] elements are written.</param>
    /// <param name="causal">Apply the causal mask with offset Tk − Tq.</param>
    /// <param name="keyPaddingMask">Empty, or [B, Tk]: 1 = attend, 0 = padding.</param>
    /// <param name="scale">Score scale; null means 1/√D.</param>
    /// <param name="probabilities">Empty, or [B, H, Tq, Tk] contiguous to receive the attention weights.</param>
    /// <exception cref="ArgumentException">A size or stride is invalid or a span is too short.</exception>
    public static void ForwardHalf(
        AttentionShape shape, ReadOnlySpan<float> q, ReadOnlySpan<Half> k, ReadOnlySpan<Half> v, Span<float> output,
        bool causal = false, ReadOnlySpan<float> keyPaddingMask = default, float? scale = null, Span<float> probabilities = default)
    {
        const string Op = "Attention.ForwardHalf";
        Validate(Op, shape, q.Length, k.Length, v.Length, output.Length, "output");
        int b = shape.Batch, h = shape.Heads, tq = shape.QueryLength, tk = shape.KeyLength;
        KernelChecks.Optional(Op, nameof(keyPaddingMask), keyPaddingMask.Length, (long)b * tk, "[B={0}, Tk={1}]", b, tk);
        KernelChecks.Optional(Op, nameof(probabilities), probabilities.Length, (long)b * h * tq * tk, "[B={0}, H={1}, Tq={2}, Tk={3}]", b, h, tq, tk);
        float s = scale ?? ScaleFor(shape.HeadDim);
        if (tq == 1 && probabilities.IsEmpty && tk > 0 && shape.HeadDim > 0)
        {
            DecodeStepHalf(shape, s, q, k, v, output, keyPaddingMask);
            return;
        }

        int kLength = Needed(shape, tk, shape.KStride).ToInt(), vLength = Needed(shape, tk, shape.VStride).ToInt();
        float[] wide = ArrayPool<float>.Shared.Rent(Math.Max(1, kLength + vLength));
        try
        {
            var kw = wide.AsSpan(0, kLength);
            var vw = wide.AsSpan(kLength, vLength);
            TensorPrimitives.ConvertToSingle(k[..kLength], kw);
            TensorPrimitives.ConvertToSingle(v[..vLength], vw);
            Forward(shape, q, kw, vw, output, causal, keyPaddingMask, s, probabilities);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(wide);
        }
    }

    /// <summary>
    /// <see cref="DecodeStep"/> over F16 K/V. With AVX-512, H ≤ 16, D = 64 and |q| &lt; 2^15 the blocks run
    /// <see cref="DecodeBlockLanesHalf"/>, which reads the halves in place; otherwise each block's K and V rows are widened
    /// exactly into F32 scratch for <see cref="DecodeBlock"/>.
    /// </summary>
    private static unsafe void DecodeStepHalf(
        AttentionShape shape, float scale, ReadOnlySpan<float> q, ReadOnlySpan<Half> k, ReadOnlySpan<Half> v, Span<float> output,
        ReadOnlySpan<float> keyPaddingMask)
    {
        int batch = shape.Batch, heads = shape.Heads, tk = shape.KeyLength, d = shape.HeadDim, width = shape.Width;
        int blockKeys = DecodeBlockKeys(tk);
        int blocks = (tk + blockKeys - 1) / blockKeys;
        int slot = width + (2 * heads);
        bool lanes = HeadLanesFit(heads, d);
        for (int b = 0; b < batch && lanes; b++)
        {
            // q · 2^112 must stay finite (and a NaN query takes the exact path).
            lanes = TensorPrimitives.MaxMagnitude(q.Slice(b * shape.QStride, width)) < HalfQueryLimit;
        }

        float[] partials = ArrayPool<float>.Shared.Rent(batch * blocks * slot);
        float[] queries = ArrayPool<float>.Shared.Rent(lanes ? batch * width : 1);
        try
        {
            if (lanes)
            {
                for (int b = 0; b < batch; b++)
                {
                    HalfLaneQuery(q.Slice(b * shape.QStride, width), queries.AsSpan(b * width, width));
                }
            }

            fixed (float* pq = q, pl = queries, pm = keyPaddingMask, pp = partials)
            fixed (Half* pk = k, pv = v)
            {
                nint aq = (nint)pq, al = (nint)pl, ak = (nint)pk, av = (nint)pv, am = (nint)pm, ap = (nint)pp;
                bool masked = !keyPaddingMask.IsEmpty;
                ParallelFor.For(batch * blocks, 1, (start, end) =>
                {
                    // Per worker: the lanes kernel's scores [count, 16], or the widened K and V rows and DecodeBlock's scores.
                    float[] scores = ArrayPool<float>.Shared.Rent(lanes ? (16 * blockKeys) + width + 16 : heads * blockKeys);
                    float[] wide = ArrayPool<float>.Shared.Rent(lanes ? 1 : 2 * blockKeys * width);
                    for (int task = start; task < end; task++)
                    {
                        int b = task / blocks, first = task % blocks * blockKeys, count = Math.Min(blockKeys, tk - first);
                        long keyRow = ((long)b * tk) + first;
                        ushort* kr = (ushort*)ak + (keyRow * shape.KStride), vr = (ushort*)av + (keyRow * shape.VStride);
                        float* mask = masked ? (float*)am + keyRow : null;
                        float* partial = (float*)ap + ((long)task * slot);
                        if (lanes)
                        {
                            DecodeBlockLanesHalf(shape, scale, (float*)al + ((long)b * width), kr, vr, mask, count, scores, partial);
                            continue;
                        }

                        fixed (float* ps = wide)
                        {
                            DecodeBlockWidened(shape, scale, (float*)aq + ((long)b * shape.QStride), kr, vr, mask, count, ps, ps + (blockKeys * width), scores, partial);
                        }
                    }

                    ArrayPool<float>.Shared.Return(scores);
                    ArrayPool<float>.Shared.Return(wide);
                });
            }

            for (int b = 0; b < batch; b++)
            {
                MergeBlocks(partials.AsSpan(b * blocks * slot, blocks * slot), blocks, heads, d, output.Slice(b * shape.OStride, width));
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(partials);
            ArrayPool<float>.Shared.Return(queries);
        }
    }

    /// <summary>
    /// One decoding step (B = 1, Tq = 1) over an F16 KV cache that first stores the step's own key and value: row Tk − 1
    /// of <paramref name="k"/> and <paramref name="v"/> receives <paramref name="newKey"/> and <paramref name="newValue"/>
    /// rounded as <see cref="Convert.F32ToF16Cache"/> rounds them, and then the query attends to keys 0 … Tk − 1 as
    /// <see cref="ForwardHalf"/> would after that write (with the decoding kernel's contract on the halves). Inside the
    /// kernel the caller's thread writes the row and attends to the last block of keys, which holds it, while a helper
    /// thread wakes and takes the older keys; each thread widens its own copy of the query, and the blocks' V rows
    /// stream in a pass of their own.
    /// </summary>
    /// <param name="shape">Sizes and row strides (the K and V strides in halves); B and Tq must be 1.</param>
    /// <param name="q">The query, [H·D].</param>
    /// <param name="newKey">The step's key, [H·D] F32.</param>
    /// <param name="newValue">The step's value, [H·D] F32.</param>
    /// <param name="k">Keys in F16, starting at K[0, 0, 0, 0]; row Tk − 1 is overwritten.</param>
    /// <param name="v">Values in F16, starting at V[0, 0, 0, 0]; row Tk − 1 is overwritten.</param>
    /// <param name="output">[H·D], overwritten.</param>
    /// <param name="keyPaddingMask">Empty, or [Tk]: 1 = attend, 0 = padding.</param>
    /// <param name="scale">Score scale; null means 1/√D.</param>
    /// <exception cref="ArgumentException">A size or stride is invalid or a span is too short.</exception>
    public static unsafe void ForwardHalfAppend(
        AttentionShape shape, ReadOnlySpan<float> q, ReadOnlySpan<float> newKey, ReadOnlySpan<float> newValue, Span<Half> k, Span<Half> v,
        Span<float> output, ReadOnlySpan<float> keyPaddingMask = default, float? scale = null)
    {
        const string Op = "Attention.ForwardHalfAppend";
        Validate(Op, shape, q.Length, k.Length, v.Length, output.Length, "output");
        int tk = shape.KeyLength, d = shape.HeadDim, width = shape.Width;
        if (shape.Batch != 1 || shape.QueryLength != 1 || tk < 1 || d < 1)
        {
            throw new ArgumentException($"{Op}: need B = 1, Tq = 1, Tk ≥ 1 and D ≥ 1; got B={shape.Batch}, Tq={shape.QueryLength}, Tk={tk}, D={d}.", nameof(shape));
        }

        KernelChecks.Optional(Op, nameof(keyPaddingMask), keyPaddingMask.Length, tk, "[Tk={0}]", tk);
        if (newKey.Length < width || newValue.Length < width)
        {
            throw new ArgumentException($"{Op}: newKey and newValue need H·D = {width} values; got {newKey.Length} and {newValue.Length}.", nameof(newKey));
        }

        float s = scale ?? ScaleFor(d);
        long kRow = (long)(tk - 1) * shape.KStride, vRow = (long)(tk - 1) * shape.VStride;
        if (!HeadLanesFit(shape.Heads, d))
        {
            Convert.F32ToF16Cache(newKey[..width], k.Slice((int)kRow, width));
            Convert.F32ToF16Cache(newValue[..width], v.Slice((int)vRow, width));
            DecodeStepHalf(shape, s, q, k, v, output, keyPaddingMask);
            return;
        }

        int heads = shape.Heads;
        int blockKeys = DecodeBlockKeys(tk);
        int blocks = (tk + blockKeys - 1) / blockKeys;
        int slot = width + (2 * heads);
        float[] partials = ArrayPool<float>.Shared.Rent(blocks * slot);
        try
        {
            fixed (float* pq = q, pnk = newKey, pnv = newValue, pm = keyPaddingMask, pp = partials)
            fixed (Half* pk = k, pv = v)
            {
                nint aq = (nint)pq, ank = (nint)pnk, anv = (nint)pnv, ak = (nint)pk, av = (nint)pv, am = (nint)pm, ap = (nint)pp;
                bool masked = !keyPaddingMask.IsEmpty;
                ParallelFor.For(blocks, 1, (start, end) =>
                {
                    // Each thread widens its own copy of the query (no serial step before the fork, no cross-core read of it).
                    var qs = new ReadOnlySpan<float>((float*)aq, width);
                    bool lanes = TensorPrimitives.MaxMagnitude(qs) < HalfQueryLimit;
                    float[] scratch = ArrayPool<float>.Shared.Rent(
                        lanes ? (16 * (blockKeys + 1)) + (2 * width) + 32 : (heads * blockKeys) + (2 * blockKeys * width));
                    fixed (float* ps = scratch)
                    {
                        float* ql = (float*)(((nint)ps + 63) & ~(nint)63);
                        if (lanes)
                        {
                            HalfLaneQueryVector((float*)aq, ql, width);
                        }

                        for (int task = start; task < end; task++)
                        {
                            // Task 0 (which the caller takes first, before a helper wakes) is the last block: the one holding
                            // row Tk − 1, which it writes before reading.
                            int block = blocks - 1 - task;
                            int first = block * blockKeys, count = Math.Min(blockKeys, tk - first);
                            if (task == 0)
                            {
                                Convert.F32ToF16Cache(
                                    new ReadOnlySpan<float>((float*)ank, width), new Span<Half>((Half*)ak + kRow, width));
                                Convert.F32ToF16Cache(
                                    new ReadOnlySpan<float>((float*)anv, width), new Span<Half>((Half*)av + vRow, width));
                            }

                            ushort* kr = (ushort*)ak + (first * (long)shape.KStride), vr = (ushort*)av + (first * (long)shape.VStride);
                            float* mask = masked ? (float*)am + first : null;
                            float* partial = (float*)ap + ((long)task * slot);
                            if (lanes)
                            {
                                DecodeBlockLanesHalf(shape, s, ql, kr, vr, mask, count, scratch, partial, width + 16);
                                continue;
                            }

                            float* kw = ps + (heads * blockKeys);
                            DecodeBlockWidened(shape, s, (float*)aq, kr, vr, mask, count, kw, kw + (blockKeys * width), scratch, partial);
                        }
                    }

                    ArrayPool<float>.Shared.Return(scratch);
                });

                MergeGroupedBlocks((float*)ap, blocks, heads, 64, output[..width], fastExp: false);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(partials);
        }
    }

    /// <summary>
    /// One block of a decoding step over F16 rows for the shapes the lanes kernel does not take: the block's K and V rows
    /// widened exactly into <paramref name="kw"/> and <paramref name="vw"/> ([count, H·D] each), then <see cref="DecodeBlock"/>
    /// into <paramref name="partial"/> (H·D + 2·H floats).
    /// </summary>
    private static unsafe void DecodeBlockWidened(
        AttentionShape shape, float scale, float* q, ushort* kr, ushort* vr, float* mask, int count, float* kw, float* vw, float[] scores, float* partial)
    {
        int width = shape.Width;
        for (int j = 0; j < count; j++)
        {
            TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(kr + ((long)j * shape.KStride), width), new Span<float>(kw + ((long)j * width), width));
            TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(vr + ((long)j * shape.VStride), width), new Span<float>(vw + ((long)j * width), width));
        }

        var wideShape = shape with { KeyRowStride = width, ValueRowStride = width };
        DecodeBlock(wideShape, scale, q, kw, vw, mask, count, scores, new Span<float>(partial, width + (2 * shape.Heads)));
    }

    /// <summary><see cref="HalfLaneQuery"/> with AVX-512 permutes, into <paramref name="lanes"/> [<paramref name="width"/>] (a multiple of 32).</summary>
    private static unsafe void HalfLaneQueryVector(float* q, float* lanes, int width)
    {
        var even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        var odd = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        var up = Vector512.Create(HalfScale);
        for (int i = 0; i < width; i += 32)
        {
            var lo = Vector512.Load(q + i);
            var hi = Vector512.Load(q + i + 16);
            (Avx512F.PermuteVar16x32x2(lo, even, hi) * up).Store(lanes + i);
            (Avx512F.PermuteVar16x32x2(lo, odd, hi) * up).Store(lanes + i + 16);
        }
    }

    /// <summary>
    /// <see cref="DecodeGrouped"/> with K and V in F16 (an F16 KV cache). With AVX-512, D a multiple of 16 and at least
    /// 16 keys, the blocks are <see cref="DecodeGrouped"/>'s (one per thread, whole 16-key groups); per group the 16 K rows
    /// are widened once into a small F32 scratch that stays in L1 and scored there by the F32 group kernel for every
    /// query head, and the V pass widens the V rows in registers. Otherwise the K and V rows are widened whole and the
    /// F32 <see cref="DecodeGrouped"/> runs. The halves must be finite, as <see cref="Convert.F32ToF16Cache"/> writes
    /// them: the fast path may read an infinite or NaN half as a finite value of magnitude at least 65536.
    /// </summary>
    /// <param name="heads">H, a multiple of <paramref name="kvHeads"/>.</param>
    /// <param name="kvHeads">Hkv.</param>
    /// <param name="headDim">D.</param>
    /// <param name="keys">Tk ≥ 1.</param>
    /// <param name="rowStride">Halves between consecutive K rows and between consecutive V rows, at least Hkv·D.</param>
    /// <param name="q">[H·D].</param>
    /// <param name="k">K rows in F16.</param>
    /// <param name="v">V rows in F16.</param>
    /// <param name="keyMask">Empty (every key visible) or [Tk]: 1 = attend, 0 = padding.</param>
    /// <param name="output">[H·D], overwritten; a head whose keys are all masked gets zeros.</param>
    /// <param name="scale">Score scale.</param>
    /// <exception cref="ArgumentException">A size is invalid or a span is too short.</exception>
    public static unsafe void DecodeGroupedHalf(
        int heads, int kvHeads, int headDim, int keys, int rowStride, ReadOnlySpan<float> q, ReadOnlySpan<Half> k, ReadOnlySpan<Half> v,
        ReadOnlySpan<float> keyMask, Span<float> output, float scale)
    {
        int d = headDim, width = heads * d, kvWidth = kvHeads * d;
        long rows = ((long)(keys - 1) * rowStride) + ((long)kvHeads * d);
        if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0 || d <= 0 || keys <= 0 || rowStride < kvHeads * d
            || q.Length < width || output.Length < width || k.Length < rows || v.Length < rows || (!keyMask.IsEmpty && keyMask.Length < keys))
        {
            throw new ArgumentException(
                $"Attention.DecodeGroupedHalf: need H > 0 a multiple of Hkv > 0, D > 0, Tk > 0, a row stride ≥ Hkv·D, q and output of H·D, K and V of (Tk − 1)·stride + Hkv·D values and an empty or [Tk] mask; got H={heads}, Hkv={kvHeads}, D={d}, Tk={keys}, stride={rowStride}, q {q.Length}, K {k.Length}, V {v.Length}, mask {keyMask.Length}, output {output.Length}.",
                nameof(heads));
        }

        if (!Vector512.IsHardwareAccelerated || !Avx512F.IsSupported || d % 16 != 0 || keys < 16)
        {
            float[] wide = ArrayPool<float>.Shared.Rent(2 * keys * kvWidth);
            try
            {
                var kw = wide.AsSpan(0, keys * kvWidth);
                var vw = wide.AsSpan(keys * kvWidth, keys * kvWidth);
                for (int j = 0; j < keys; j++)
                {
                    TensorPrimitives.ConvertToSingle(k.Slice(j * rowStride, kvWidth), kw.Slice(j * kvWidth, kvWidth));
                    TensorPrimitives.ConvertToSingle(v.Slice(j * rowStride, kvWidth), vw.Slice(j * kvWidth, kvWidth));
                }

                DecodeGrouped(heads, kvHeads, d, keys, kvWidth, q, kw, vw, keyMask, output, scale);
            }
            finally
            {
                ArrayPool<float>.Shared.Return(wide);
            }

            return;
        }

        fixed (float* pq = q, pm = keyMask, po = output)
        fixed (Half* pk = k, pv = v)
        {
            GroupedHalfRegion(heads, kvHeads, d, keys, rowStride, pq, (ushort*)pk, (ushort*)pv, keyMask.IsEmpty ? null : pm, po, scale, null, null);
        }
    }

    /// <summary>
    /// One decoding step of grouped-query attention over an F16 cache that first stores the step's own key and value:
    /// row Tk − 1 of <paramref name="k"/> and <paramref name="v"/> (its first Hkv·D halves) receives
    /// <paramref name="newKey"/> and <paramref name="newValue"/> rounded as <see cref="Convert.F32ToF16Cache"/> rounds
    /// them, and then the query attends to keys 0 … Tk − 1 as <see cref="DecodeGroupedHalf"/> would after that write.
    /// Inside the kernel the caller's thread writes the row and attends to the last block of keys, which holds it, while a
    /// helper thread wakes and takes the older keys (no serial write before the fork, and the new row is not read across
    /// cores). The output is bit for bit that of <see cref="DecodeGroupedHalf"/> after the write (the same blocks, merged
    /// in the same order).
    /// </summary>
    /// <param name="heads">H, a multiple of <paramref name="kvHeads"/>.</param>
    /// <param name="kvHeads">Hkv.</param>
    /// <param name="headDim">D.</param>
    /// <param name="keys">Tk ≥ 1, the new row included.</param>
    /// <param name="rowStride">Halves between consecutive K rows and between consecutive V rows, at least Hkv·D.</param>
    /// <param name="q">[H·D].</param>
    /// <param name="newKey">The step's key, [Hkv·D] F32.</param>
    /// <param name="newValue">The step's value, [Hkv·D] F32.</param>
    /// <param name="k">K rows in F16; row Tk − 1 is overwritten.</param>
    /// <param name="v">V rows in F16; row Tk − 1 is overwritten.</param>
    /// <param name="keyMask">Empty (every key visible) or [Tk]: 1 = attend, 0 = padding.</param>
    /// <param name="output">[H·D], overwritten; a head whose keys are all masked gets zeros.</param>
    /// <param name="scale">Score scale.</param>
    /// <exception cref="ArgumentException">A size is invalid or a span is too short.</exception>
    public static unsafe void DecodeGroupedHalfAppend(
        int heads, int kvHeads, int headDim, int keys, int rowStride, ReadOnlySpan<float> q, ReadOnlySpan<float> newKey, ReadOnlySpan<float> newValue,
        Span<Half> k, Span<Half> v, ReadOnlySpan<float> keyMask, Span<float> output, float scale)
    {
        int d = headDim, width = heads * d, kvWidth = kvHeads * d;
        long rows = ((long)(keys - 1) * rowStride) + ((long)kvHeads * d);
        if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0 || d <= 0 || keys <= 0 || rowStride < kvHeads * d
            || q.Length < width || output.Length < width || k.Length < rows || v.Length < rows || (!keyMask.IsEmpty && keyMask.Length < keys)
            || newKey.Length < kvWidth || newValue.Length < kvWidth)
        {
            throw new ArgumentException(
                $"Attention.DecodeGroupedHalfAppend: need H > 0 a multiple of Hkv > 0, D > 0, Tk > 0, a row stride ≥ Hkv·D, q and output of H·D, newKey and newValue of Hkv·D, K and V of (Tk − 1)·stride + Hkv·D values and an empty or [Tk] mask; got H={heads}, Hkv={kvHeads}, D={d}, Tk={keys}, stride={rowStride}, q {q.Length}, newKey {newKey.Length}, newValue {newValue.Length}, K {k.Length}, V {v.Length}, mask {keyMask.Length}, output {output.Length}.",
                nameof(heads));
        }

        long row = (long)(keys - 1) * rowStride;
        if (!Vector512.IsHardwareAccelerated || !Avx512F.IsSupported || d % 16 != 0 || keys < 16)
        {
            Convert.F32ToF16Cache(newKey[..kvWidth], k.Slice((int)row, kvWidth));
            Convert.F32ToF16Cache(newValue[..kvWidth], v.Slice((int)row, kvWidth));
            DecodeGroupedHalf(heads, kvHeads, d, keys, rowStride, q, k, v, keyMask, output, scale);
            return;
        }

        fixed (float* pq = q, pm = keyMask, po = output, pnk = newKey, pnv = newValue)
        fixed (Half* pk = k, pv = v)
        {
            GroupedHalfRegion(heads, kvHeads, d, keys, rowStride, pq, (ushort*)pk, (ushort*)pv, keyMask.IsEmpty ? null : pm, po, scale, pnk, pnv);
        }
    }

    /// <summary>
    /// The blocks of <see cref="DecodeGroupedHalf"/> (AVX-512, D a multiple of 16, Tk ≥ 16) in one region, the last block
    /// first (task 0, the caller's): when <paramref name="newKey"/> is not null that task first stores row Tk − 1 from
    /// <paramref name="newKey"/> and <paramref name="newValue"/> (Hkv·D values each, as <see cref="Convert.F32ToF16Cache"/>).
    /// </summary>
    private static unsafe void GroupedHalfRegion(
        int heads, int kvHeads, int d, int keys, int rowStride, float* q, ushort* k, ushort* v, float* keyMask, float* output, float scale,
        float* newKey, float* newValue)
    {
        int width = heads * d, kvWidth = kvHeads * d, rep = heads / kvHeads;
        int groups = (keys + 15) / 16;
        int blocks = Math.Min(ParallelFor.MaxDegreeOfParallelism, Math.Max(1, groups / 2));
        int blockKeys = 16 * ((groups + blocks - 1) / blocks);
        int slot = width + (2 * heads);
        long row = (long)(keys - 1) * rowStride;
        float[] scratch = ArrayPool<float>.Shared.Rent(blocks * slot);
        try
        {
            fixed (float* ps = scratch)
            {
                nint aq = (nint)q, ak = (nint)k, av = (nint)v, am = (nint)keyMask, asc = (nint)ps, ank = (nint)newKey, anv = (nint)newValue;
                ParallelFor.For(blocks, 1, (start, end) =>
                {
                    // This thread's widened K group [16, Hkv·D], then its block's scores [H, blockKeys]: in its own scratch,
                    // not in the array the partials share with the other core's block (attention 0.974 of that at a
                    // ~80 GB/s probe, 0.990 at ~52; token level; ~1B Llama Q4_K, token by token, AMD EPYC Zen 5 class).
                    var wide = WideScratch((16 * kvWidth) + (heads * blockKeys));
                    fixed (float* pw = wide.AsSpan())
                    {
                        for (int task = start; task < end; task++)
                        {
                            // Task 0 (which the caller takes first, before a helper wakes) is the last block: the one holding
                            // row Tk − 1, which it writes before reading.
                            int block = blocks - 1 - task;
                            if (task == 0 && ank != 0)
                            {
                                Convert.F32ToF16Cache(new ReadOnlySpan<float>((float*)ank, kvWidth), new Span<Half>((Half*)ak + row, kvWidth));
                                Convert.F32ToF16Cache(new ReadOnlySpan<float>((float*)anv, kvWidth), new Span<Half>((Half*)av + row, kvWidth));
                            }

                            int first = 16 * (block * groups / blocks), count = Math.Min(keys, 16 * ((block + 1) * groups / blocks)) - first;
                            float* partial = (float*)asc + ((long)block * slot);
                            float* scores = pw + (16 * kvWidth);
                            float* mask = am == 0 ? null : (float*)am + first;
                            GroupedBlockHalf(
                                (float*)aq, (ushort*)ak + ((long)first * rowStride), (ushort*)av + ((long)first * rowStride), rowStride, mask,
                                kvHeads, rep, d, count, scale, scores, pw, partial, partial + width, partial + width + heads);
                        }
                    }
                });

                MergeGroupedBlocks((float*)asc, blocks, heads, d, new Span<float>(output, width));
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(scratch);
        }
    }

    /// <summary>
    /// <see cref="GroupedBlock"/> over F16 rows, <paramref name="count"/> ≥ 16 keys: per 16-key group, its K rows widened
    /// into <paramref name="wide"/> [16, Hkv·D] (the next group's K rows and this group's V rows asked for meanwhile) and
    /// scored by <see cref="GroupedScores16"/>; the softmax as there; the V pass reads the halves in place
    /// (<see cref="GroupedValues4Half"/>, or one head at a time widening each vector exactly).
    /// </summary>
    private static unsafe void GroupedBlockHalf(
        float* q, ushort* k, ushort* v, int stride, float* mask, int kvHeads, int rep, int d, int count, float scale, float* scores, float* wide,
        float* o, float* maxima, float* sums)
    {
        int vectors = d / 16, heads = kvHeads * rep, kvWidth = kvHeads * d;
        for (int j = 0; j < count; j += 16)
        {
            int j0 = Math.Min(j, count - 16);
            WidenHalfRows(k + ((long)j0 * stride), v + ((long)j0 * stride), stride, count - j0, kvWidth, wide);
            GroupedScores16(q, wide, null, mask == null ? null : mask + j0, kvHeads, rep, d, kvWidth, 0, scale, scores + j0, count);
        }

        BlockSoftmaxRows(scores, heads, count, maxima, sums);

        for (int g = 0; g < kvHeads; g++)
        {
            ushort* vg = v + (g * d);
            for (int r = 0; r < rep; r += 4)
            {
                int n = Math.Min(4, rep - r), h0 = (g * rep) + r;
                if (vectors == 4 && n == 4)
                {
                    GroupedValues4Half(scores + (h0 * count), count, vg, stride, o + (h0 * d));
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
                            acc = Vector512.FusedMultiplyAdd(Vector512.Create(p[j]), WidenHalves(Vector256.Load(vg + ((long)j * stride) + (16 * c))), acc);
                        }

                        acc.Store(oh + (16 * c));
                    }
                }
            }
        }
    }

    /// <summary>
    /// <see cref="GroupedValues4"/> over F16 rows: four heads' o [4, 64] = p [4, count] · V [count, 64], each V row read
    /// as two vectors of 16 half pairs and widened in place as <see cref="DecodeBlockLanesHalf"/> does (the halves read
    /// as their values times 2^-112, the probabilities taken times 2^112); the accumulators hold even and odd positions
    /// and are interleaved back at the end.
    /// </summary>
    private static unsafe void GroupedValues4Half(float* p, int count, ushort* v, int rowStride, float* o)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default;
        Vector512<float> e0 = default, e1 = default, e2 = default, e3 = default;
        for (int j = 0; j < count; j++)
        {
            uint* vr = (uint*)(v + ((long)j * rowStride));
            var w0 = Vector512.Load(vr);
            var w1 = Vector512.Load(vr + 16);
            Vector512<float> v0 = EvenHalves(w0), v1 = OddHalves(w0), v2 = EvenHalves(w1), v3 = OddHalves(w1);
            var pa = Vector512.Create(p[j] * HalfScale);
            a0 = Vector512.FusedMultiplyAdd(pa, v0, a0);
            a1 = Vector512.FusedMultiplyAdd(pa, v1, a1);
            a2 = Vector512.FusedMultiplyAdd(pa, v2, a2);
            a3 = Vector512.FusedMultiplyAdd(pa, v3, a3);
            var pb = Vector512.Create(p[count + j] * HalfScale);
            b0 = Vector512.FusedMultiplyAdd(pb, v0, b0);
            b1 = Vector512.FusedMultiplyAdd(pb, v1, b1);
            b2 = Vector512.FusedMultiplyAdd(pb, v2, b2);
            b3 = Vector512.FusedMultiplyAdd(pb, v3, b3);
            var pc = Vector512.Create(p[(2 * count) + j] * HalfScale);
            c0 = Vector512.FusedMultiplyAdd(pc, v0, c0);
            c1 = Vector512.FusedMultiplyAdd(pc, v1, c1);
            c2 = Vector512.FusedMultiplyAdd(pc, v2, c2);
            c3 = Vector512.FusedMultiplyAdd(pc, v3, c3);
            var pe = Vector512.Create(p[(3 * count) + j] * HalfScale);
            e0 = Vector512.FusedMultiplyAdd(pe, v0, e0);
            e1 = Vector512.FusedMultiplyAdd(pe, v1, e1);
            e2 = Vector512.FusedMultiplyAdd(pe, v2, e2);
            e3 = Vector512.FusedMultiplyAdd(pe, v3, e3);
        }

        StoreInterleaved(a0, a1, a2, a3, o);
        StoreInterleaved(b0, b1, b2, b3, o + 64);
        StoreInterleaved(c0, c1, c2, c3, o + 128);
        StoreInterleaved(e0, e1, e2, e3, o + 192);
    }

    /// <summary>One head's 64 outputs from accumulators of even (<paramref name="even0"/>, <paramref name="even1"/>) and odd positions of its two 32-value blocks.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreInterleaved(Vector512<float> even0, Vector512<float> odd0, Vector512<float> even1, Vector512<float> odd1, float* o)
    {
        var low = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        var high = Vector512.Create(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        Avx512F.PermuteVar16x32x2(even0, low, odd0).Store(o);
        Avx512F.PermuteVar16x32x2(even0, high, odd0).Store(o + 16);
        Avx512F.PermuteVar16x32x2(even1, low, odd1).Store(o + 32);
        Avx512F.PermuteVar16x32x2(even1, high, odd1).Store(o + 48);
    }

    /// <summary>How many rows ahead <see cref="WidenHalfRows"/> asks for K lines (the next 16-key group).</summary>
    private const int WidenAheadRows = 16;

    [ThreadStatic]
    private static ArraySegment<float> _threadWide;

    /// <summary>This thread's 64-byte aligned scratch of at least <paramref name="length"/> floats for widened K rows.</summary>
    private static ArraySegment<float> WideScratch(int length)
    {
        if (_threadWide.Count < length)
        {
            _threadWide = Storage.AlignedBuffer.Allocate<float>(length);
        }

        return _threadWide;
    }

    /// <summary>
    /// 16 K rows of <paramref name="width"/> halves (a multiple of 16; rows <paramref name="stride"/> apart) → packed F32
    /// rows in <paramref name="wide"/> (AVX-512), exactly (<see cref="WidenHalves"/>). Meanwhile the K rows
    /// <see cref="WidenAheadRows"/> further on (of the <paramref name="available"/> rows from here) are asked for into L1,
    /// and these 16 V rows into L2 for the V pass.
    /// </summary>
    private static unsafe void WidenHalfRows(ushort* k, ushort* v, int stride, int available, int width, float* wide)
    {
        for (int j = 0; j < 16; j++)
        {
            ushort* kr = k + ((long)j * stride), vr = v + ((long)j * stride);
            float* ko = wide + ((long)j * width);
            bool ahead = j + WidenAheadRows < available;
            for (int i = 0; i < width; i += 16)
            {
                if ((i & 31) == 0)
                {
                    if (ahead)
                    {
                        Sse.Prefetch0(kr + i + (WidenAheadRows * stride));
                    }

                    Sse.Prefetch1(vr + i);
                }

                WidenHalves(Vector256.Load(kr + i)).Store(ko + i);
            }
        }
    }

    /// <summary>16 finite halves → F32, exactly: sign, exponent and mantissa shifted into F32's fields (the value times 2^-112), times 2^112.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> WidenHalves(Vector256<ushort> h) =>
        OddHalves(Vector512.ShiftLeft(Vector512.WidenLower(h.ToVector512Unsafe()), 16)) * Vector512.Create(HalfScale);

    /// <summary>A query's largest magnitude for <see cref="DecodeBlockLanesHalf"/>: q · 2^112 stays below F32's 2^128.</summary>
    private const float HalfQueryLimit = 32768f;

    /// <summary>
    /// q [H·64] as <see cref="DecodeBlockLanesHalf"/> reads it: times 2^112 (so that a product with a half read as its
    /// value times 2^-112 is the exact product), each 32-value block split into its 16 even then its 16 odd positions
    /// (the order in which a vector of 16 half pairs widens).
    /// </summary>
    private static void HalfLaneQuery(ReadOnlySpan<float> q, Span<float> lanes)
    {
        for (int i = 0; i < q.Length; i += 32)
        {
            for (int j = 0; j < 16; j++)
            {
                lanes[i + j] = q[i + (2 * j)] * HalfScale;
                lanes[i + 16 + j] = q[i + (2 * j) + 1] * HalfScale;
            }
        }
    }

    /// <summary>
    /// <see cref="DecodeBlockLanes"/> over F16 rows. A vector of 16 half pairs is widened in place: shifted so that each
    /// half's sign, exponent and mantissa sit in F32's fields (an arithmetic shift right by 3 of the half in the upper 16
    /// bits, then a mask), which reads a normal half or zero exactly as its value times 2^-112 (a subnormal as well, but
    /// as a subnormal F32 operand). The 2^112 is folded into the inputs: <paramref name="q"/> comes times 2^112
    /// (<see cref="HalfLaneQuery"/>, in the even/odd order of the widened lanes) and the probabilities are stored times
    /// 2^112 for the V pass, so every product is the exact product with the widened half. The V accumulators come out in
    /// even/odd order and are interleaved back once per head. The score sums are in another order than
    /// <see cref="DecodeBlockLanes"/>' (even and odd positions in separate steps of the chain).
    /// </summary>
    private static unsafe void DecodeBlockLanesHalf(
        AttentionShape shape, float scale, float* q, ushort* k, ushort* v, float* mask, int count, float[] scoreBuffer, float* partial, int scoreOffset = 0)
    {
        int heads = shape.Heads, width = shape.Width;
        fixed (float* scratch = scoreBuffer)
        {
            float* sc = scratch + scoreOffset;
            var scaleV = Vector512.Create(scale);
            var negInf = Vector512.Create(float.NegativeInfinity);
            var max = negInf;
            for (int j = 0; j < count; j++)
            {
                PrefetchDecodeRowHalf(shape, k, v, j, count);

                Vector512<float> row;
                if (mask != null && mask[j] == 0f)
                {
                    row = negInf;
                }
                else
                {
                    ushort* kr = k + ((long)j * shape.KStride);
                    row = scaleV * HeadSumsHalf(q, kr, heads);
                }

                row.Store(sc + (16 * j));
                max = Vector512.Max(max, row);
            }

            var valid = ~Vector512.Equals(max, negInf);
            var shift = max & valid;
            var sum = Vector512<float>.Zero;
            var up = Vector512.Create(HalfScale);
            for (int j = 0; j < count; j++)
            {
                var p = FastMath.Exp(Vector512.Load(sc + (16 * j)) - shift) & valid;
                (p * up).Store(sc + (16 * j));
                sum += p;
            }

            for (int h = 0; h < heads; h++)
            {
                int lane = HeadLane(h);
                partial[width + h] = max.GetElement(lane);
                partial[width + heads + h] = sum.GetElement(lane);
            }

            // o_h = Σ_j p_j,h · V[j, h·64 .. h·64 + 64), four key rows at a time, the accumulators in 64-byte aligned scratch.
            float* accumulators = (float*)(((nint)(sc + (16 * count)) + 63) & ~(nint)63);
            ValuesRowBlocksHalf(sc, v, shape.VStride, heads, count, accumulators, partial);
        }
    }

    /// <summary>The halves in the low 16 bits of each lane, as F32 times 2^-112 (exact for normal halves and zeros).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> EvenHalves(Vector512<uint> w) =>
        (Vector512.ShiftRightArithmetic(Vector512.ShiftLeft(w, 16).AsInt32(), 3).AsUInt32() & Vector512.Create(0x8FFFE000u)).AsSingle();

    /// <summary>The halves in the high 16 bits of each lane, as F32 times 2^-112.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> OddHalves(Vector512<uint> w) =>
        (Vector512.ShiftRightArithmetic(w.AsInt32(), 3).AsUInt32() & Vector512.Create(0x8FFFE000u)).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe Vector512<float> HeadSumsHalf(float* q, ushort* k, int heads)
    {
        var w0 = FoldPair(HeadChainHalf(q, k, 0, heads), HeadChainHalf(q, k, 1, heads));
        var w1 = FoldPair(HeadChainHalf(q, k, 2, heads), HeadChainHalf(q, k, 3, heads));
        var w2 = FoldPair(HeadChainHalf(q, k, 4, heads), HeadChainHalf(q, k, 5, heads));
        var w3 = FoldPair(HeadChainHalf(q, k, 6, heads), HeadChainHalf(q, k, 7, heads));
        var w4 = FoldPair(HeadChainHalf(q, k, 8, heads), HeadChainHalf(q, k, 9, heads));
        var w5 = FoldPair(HeadChainHalf(q, k, 10, heads), HeadChainHalf(q, k, 11, heads));
        var w6 = FoldPair(HeadChainHalf(q, k, 12, heads), HeadChainHalf(q, k, 13, heads));
        var w7 = FoldPair(HeadChainHalf(q, k, 14, heads), HeadChainHalf(q, k, 15, heads));
        return TransposeSum8(w0, w1, w2, w3, w4, w5, w6, w7);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe Vector512<float> HeadChainHalf(float* q, ushort* k, int h, int heads)
    {
        if (h >= heads)
        {
            return Vector512<float>.Zero;
        }

        q += h * 64;
        var w0 = Vector512.Load((uint*)(k + (h * 64)));
        var w1 = Vector512.Load((uint*)(k + (h * 64)) + 16);
        var acc = Vector512.Load(q) * EvenHalves(w0);
        acc = Vector512.FusedMultiplyAdd(Vector512.Load(q + 16), OddHalves(w0), acc);
        acc = Vector512.FusedMultiplyAdd(Vector512.Load(q + 32), EvenHalves(w1), acc);
        return Vector512.FusedMultiplyAdd(Vector512.Load(q + 48), OddHalves(w1), acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void PrefetchDecodeRowHalf(in AttentionShape shape, ushort* k, ushort* v, int j, int count)
    {
        int width = shape.Width;
        if (!Sse.IsSupported)
        {
            return;
        }

        if (j == 0)
        {
            for (int r = 0; r < Math.Min(KeyPrefetchRows, count); r++)
            {
                PrefetchHalfRow(k + ((long)r * shape.KStride), width, false);
            }

            for (int r = KeyPrefetchRows; r < Math.Min(KeyPrefetchFarRows, count); r++)
            {
                PrefetchHalfRow(k + ((long)r * shape.KStride), width, true);
            }
        }

        if (j + KeyPrefetchRows < count)
        {
            PrefetchHalfRow(k + ((long)(j + KeyPrefetchRows) * shape.KStride), width, false);
        }

        if (j + KeyPrefetchFarRows < count)
        {
            PrefetchHalfRow(k + ((long)(j + KeyPrefetchFarRows) * shape.KStride), width, true);
        }

        // V streams in its own pass (ValuesRowBlocksHalf); its first rows are asked for into L2 during the last keys.
        int valueRow = j - Math.Max(0, count - ValuePrefetchFarRows);
        if (valueRow >= 0)
        {
            PrefetchHalfRow(v + ((long)valueRow * shape.VStride), width, true);
        }
    }

    /// <summary>How many V rows ahead <see cref="ValuesRowBlocksHalf"/> asks for into L1.</summary>
    private const int ValuePrefetchRows = 8;

    /// <summary>
    /// How many V rows ahead <see cref="ValuesRowBlocksHalf"/> asks for into L2; the score loop asks for the first this
    /// many during its last this many keys.
    /// </summary>
    private const int ValuePrefetchFarRows = 16;

    /// <summary>
    /// The V pass of <see cref="DecodeBlockLanesHalf"/>: o_h = Σ_j p_j,h · V[j, h·64 .. h·64 + 64) over
    /// <paramref name="count"/> rows of probabilities <paramref name="sc"/> [count, 16] (head h in lane
    /// <see cref="HeadLane"/>(h), times 2^112), four key rows at a time: per row block every head (two at a time, eight
    /// FMA chains) in turn, so that the V rows are read as sequential streams, whole rows asked for
    /// <see cref="ValuePrefetchRows"/> ahead into L1 and <see cref="ValuePrefetchFarRows"/> ahead into L2. The
    /// accumulators wait between row blocks in <paramref name="acc"/> [H·64] (64-byte aligned, even/odd order); the
    /// result is interleaved into <paramref name="partial"/>. Each accumulator sums its rows in order, as one pass per
    /// head pair does.
    /// </summary>
    private static unsafe void ValuesRowBlocksHalf(float* sc, ushort* v, long vstride, int heads, int count, float* acc, float* partial)
    {
        int width = heads * 64;
        new Span<float>(acc, width).Clear();
        for (int j0 = 0; j0 < count; j0 += 4)
        {
            int n = Math.Min(4, count - j0);
            for (int r = 0; r < n; r++)
            {
                if (j0 + ValuePrefetchRows + r < count)
                {
                    PrefetchHalfRow(v + ((j0 + ValuePrefetchRows + r) * vstride), width, false);
                }

                if (j0 + ValuePrefetchFarRows + r < count)
                {
                    PrefetchHalfRow(v + ((j0 + ValuePrefetchFarRows + r) * vstride), width, true);
                }
            }

            ushort* vb = v + (j0 * vstride);
            float* sb = sc + (16 * j0);
            int hStart = 0;
            for (; hStart + 1 < heads; hStart += 2)
            {
                int l0 = HeadLane(hStart), l1 = HeadLane(hStart + 1);
                float* ac = acc + (hStart * 64);
                var a0 = Vector512.Load(ac);
                var a1 = Vector512.Load(ac + 16);
                var a2 = Vector512.Load(ac + 32);
                var a3 = Vector512.Load(ac + 48);
                var b0 = Vector512.Load(ac + 64);
                var b1 = Vector512.Load(ac + 80);
                var b2 = Vector512.Load(ac + 96);
                var b3 = Vector512.Load(ac + 112);
                ushort* vr = vb + (hStart * 64);
                for (int j = 0; j < n; j++, vr += vstride)
                {
                    var p0 = Vector512.Create(sb[(16 * j) + l0]);
                    var p1 = Vector512.Create(sb[(16 * j) + l1]);
                    var w0 = Vector512.Load((uint*)vr);
                    var w1 = Vector512.Load((uint*)vr + 16);
                    var w2 = Vector512.Load((uint*)vr + 32);
                    var w3 = Vector512.Load((uint*)vr + 48);
                    a0 = Vector512.FusedMultiplyAdd(p0, EvenHalves(w0), a0);
                    a1 = Vector512.FusedMultiplyAdd(p0, OddHalves(w0), a1);
                    a2 = Vector512.FusedMultiplyAdd(p0, EvenHalves(w1), a2);
                    a3 = Vector512.FusedMultiplyAdd(p0, OddHalves(w1), a3);
                    b0 = Vector512.FusedMultiplyAdd(p1, EvenHalves(w2), b0);
                    b1 = Vector512.FusedMultiplyAdd(p1, OddHalves(w2), b1);
                    b2 = Vector512.FusedMultiplyAdd(p1, EvenHalves(w3), b2);
                    b3 = Vector512.FusedMultiplyAdd(p1, OddHalves(w3), b3);
                }

                a0.Store(ac);
                a1.Store(ac + 16);
                a2.Store(ac + 32);
                a3.Store(ac + 48);
                b0.Store(ac + 64);
                b1.Store(ac + 80);
                b2.Store(ac + 96);
                b3.Store(ac + 112);
            }

            if (hStart < heads)
            {
                int l0 = HeadLane(hStart);
                float* ac = acc + (hStart * 64);
                var a0 = Vector512.Load(ac);
                var a1 = Vector512.Load(ac + 16);
                var a2 = Vector512.Load(ac + 32);
                var a3 = Vector512.Load(ac + 48);
                ushort* vr = vb + (hStart * 64);
                for (int j = 0; j < n; j++, vr += vstride)
                {
                    var p0 = Vector512.Create(sb[(16 * j) + l0]);
                    var w0 = Vector512.Load((uint*)vr);
                    var w1 = Vector512.Load((uint*)vr + 16);
                    a0 = Vector512.FusedMultiplyAdd(p0, EvenHalves(w0), a0);
                    a1 = Vector512.FusedMultiplyAdd(p0, OddHalves(w0), a1);
                    a2 = Vector512.FusedMultiplyAdd(p0, EvenHalves(w1), a2);
                    a3 = Vector512.FusedMultiplyAdd(p0, OddHalves(w1), a3);
                }

                a0.Store(ac);
                a1.Store(ac + 16);
                a2.Store(ac + 32);
                a3.Store(ac + 48);
            }
        }

        for (int h = 0; h < heads; h++)
        {
            float* ac = acc + (h * 64);
            StoreInterleaved(Vector512.Load(ac), Vector512.Load(ac + 16), Vector512.Load(ac + 32), Vector512.Load(ac + 48), partial + (h * 64));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void PrefetchHalfRow(ushort* p, int count, bool l2)
    {
        for (int i = 0; i < count; i += 32)
        {
            if (l2)
            {
                Sse.Prefetch1(p + i);
            }
            else
            {
                Sse.Prefetch0(p + i);
            }
        }
    }
}
