using System.Runtime.InteropServices;
using Sharpformer.Tensors.Kernels;

namespace Sharpformer.Tensors;

public static partial class Ops
{
    /// <summary>
    /// x[..., Tq, Tk] → [..., Tq, Tk]: softmax over the last axis, optionally masked. <paramref name="causal"/> hides key j
    /// from query i when j &gt; i + (Tk − Tq) (queries aligned to the end of the keys, as with a KV cache).
    /// <paramref name="attentionMask"/> is [B, Tk] with x's first dimension B: 1 (or any nonzero) keeps a key, 0 hides it
    /// (Hugging Face's attention_mask). Hidden positions get probability 0; a row with every key hidden is all zeros.
    /// </summary>
    /// <exception cref="ArgumentException">The mask is not [B, Tk], or a mask is given for a rank-1 input.</exception>
    public static Tensor Softmax(Tensor x, bool causal = false, Tensor? attentionMask = null)
    {
        CheckF32(nameof(Softmax), x, nameof(x));
        if (x.Rank < 1 || ((causal || attentionMask is not null) && x.Rank < 2))
        {
            ShapeError.Invalid(nameof(Softmax), x.Shape, "a [..., Tq, Tk] input is required (rank ≥ 2 when masked)");
        }

        int tk = x.Shape.Last;
        int rows = (int)x.Shape.Rows;
        var xs = Read(x);
        var output = Tensor.Empty(x.Shape);
        var o = output.AsSpan<float>();
        if (!causal && attentionMask is null)
        {
            Kernels.Softmax.Forward(xs, o, rows, tk);
        }
        else
        {
            var keep = KeyMask(nameof(Softmax), x.Shape, attentionMask, tk);
            int tq = x.Shape[-2];
            int matrices = tq == 0 ? 0 : rows / tq;
            int matricesPerBatch = matrices / Math.Max(1, x.Shape[0]);

            // One [Tq, Tk] score matrix at a time; the key mask row is the matrix's batch entry.
            for (int m = 0; m < matrices; m++)
            {
                ReadOnlySpan<float> mask = keep.Length == 0 ? default : keep.AsSpan(m / matricesPerBatch * tk, tk);
                Kernels.Softmax.ForwardMasked(xs.Slice(m * tq * tk, tq * tk), o.Slice(m * tq * tk, tq * tk), tq, tk, causal, mask);
            }
        }

        if (!Autograd.Needs(x)) return output;
        return Autograd.Record(output, nameof(Softmax), [x], g =>
        {
            // dx = y ⊙ (g − Σ y ⊙ g) per row; hidden positions have y = 0 and so get no gradient.
            var dx = Tensor.Empty(x.Shape);
            Kernels.Softmax.Backward(output.AsReadOnlySpan<float>(), g.AsReadOnlySpan<float>(), dx.AsSpan<float>(), rows, tk);
            return [dx];
        });
    }

    /// <summary>An attention mask [B, Tk] as floats (1 keep, 0 hide), or empty; validated against scores [B, ..., Tk].</summary>
    private static float[] KeyMask(string op, Shape scores, Tensor? attentionMask, int tk)
    {
        if (attentionMask is null) return [];
        if (attentionMask.Rank != 2 || attentionMask.Shape[0] != scores[0] || attentionMask.Shape[1] != tk)
        {
            ShapeError.Mismatch(op, scores, attentionMask.Shape, "the attention mask must be [B, Tk] for scores [B, ..., Tq, Tk]");
        }

        return attentionMask.ToArray();
    }

    /// <summary>
    /// q[B, H, Tq, D], k[B, H, Tk, D], v[B, H, Tk, Dv] → [B, H, Tq, Dv]: softmax(q·kᵀ · scale + masks) · v, with
    /// scale = 1/√D unless given. Masks as in <see cref="Softmax"/> (causal; attention mask [B, Tk], 1 = keep).
    /// Inputs may be strided views; head views of a [B, T, H·D] tensor (<see cref="SplitHeads"/>, also of a fused
    /// QKV projection narrowed per part) are read in place by the fused kernel, and the output is such a view, so
    /// <see cref="MergeHeads"/> on it copies nothing.
    /// </summary>
    /// <exception cref="ArgumentException">The shapes of q, k, v or the mask do not agree.</exception>
    public static Tensor ScaledDotProductAttention(Tensor q, Tensor k, Tensor v, bool causal = false, Tensor? attentionMask = null, float? scale = null)
    {
        CheckAttention(q, k, v);
        if (v.Shape[3] != q.Shape[3]) return ComposedAttention(q, k, v, out _, causal, attentionMask, scale);
        return FusedAttention(q, k, v, causal, attentionMask, scale, keepProbabilities: false, out _);
    }

    /// <summary>
    /// q[B, H, Tq, D], k[B, H, Tk, D], v[B, H, Tk, Dv] → [B, H, Tq, Dv], also returning the attention probabilities
    /// <paramref name="weights"/>[B, H, Tq, Tk]. While recording gradients this runs the composed ops so that gradients
    /// also flow through <paramref name="weights"/> if a loss uses them; otherwise it runs the fused kernel.
    /// </summary>
    /// <exception cref="ArgumentException">The shapes of q, k, v or the mask do not agree.</exception>
    public static Tensor ScaledDotProductAttention(Tensor q, Tensor k, Tensor v, out Tensor weights, bool causal = false, Tensor? attentionMask = null, float? scale = null)
    {
        CheckAttention(q, k, v);
        if (Autograd.Needs(q, k, v) || v.Shape[3] != q.Shape[3]) return ComposedAttention(q, k, v, out weights, causal, attentionMask, scale);
        var output = FusedAttention(q, k, v, causal, attentionMask, scale, keepProbabilities: true, out var probabilities);
        weights = Tensor.FromArray(probabilities, new Shape(q.Shape[0], q.Shape[1], q.Shape[2], k.Shape[2]));
        return output;
    }

    /// <summary>
    /// qkv[B, T, 3·C] (q, k and v side by side, as a fused QKV projection such as GPT-2's <c>c_attn</c> produces) →
    /// [B, T, C]: softmax(q·kᵀ · scale + masks) · v per head (C = H·D), heads merged. The same function as splitting
    /// qkv into head views and calling <see cref="ScaledDotProductAttention(Tensor, Tensor, Tensor, bool, Tensor?, float?)"/>,
    /// but one node: the kernel reads q, k, v in place, its output is already [B, T, C], and the backward writes dq, dk, dv
    /// straight into one [B, T, 3·C] gradient (no per-part buffers, slices or sums).
    /// </summary>
    /// <exception cref="ArgumentException">qkv is not [B, T, 3·C] with C divisible by <paramref name="heads"/>, or the mask is not [B, T].</exception>
    public static Tensor ScaledDotProductAttentionPacked(Tensor qkv, int heads, bool causal = false, Tensor? attentionMask = null, float? scale = null)
    {
        const string Op = nameof(ScaledDotProductAttentionPacked);
        CheckF32(Op, qkv, nameof(qkv));
        if (qkv.Rank != 3 || heads <= 0 || qkv.Shape[2] % (3 * heads) != 0)
        {
            ShapeError.Invalid(Op, qkv.Shape, $"qkv must be [B, T, 3·C] with C a multiple of heads = {heads}");
        }

        int b = qkv.Shape[0], t = qkv.Shape[1], c = qkv.Shape[2] / 3, d = c / heads;
        var mask = KeyMask(Op, new Shape(b, heads, t, t), attentionMask, t);
        var input = qkv.Contiguous();
        var x = input.AsReadOnlySpan<float>();
        var shape = new AttentionShape(b, heads, t, t, d) { QueryRowStride = 3 * c, KeyRowStride = 3 * c, ValueRowStride = 3 * c };
        var output = Tensor.Empty(new Shape(b, t, c));
        bool record = Autograd.Needs(qkv);
        float[] lse = record ? new float[(long)b * heads * t] : [];
        Attention.Forward(shape, x, x[c..], x[(2 * c)..], output.AsSpan<float>(), causal, mask, scale, default, lse);
        if (!record) return output;

        return Autograd.Record(output, Op, [qkv], g =>
        {
            // Every element is written by the kernel (q, k and v each cover their C columns of every row): no zeroing.
            var dqkv = Tensor.Empty(qkv.Shape);
            var dx = dqkv.AsSpan<float>();
            var xs = input.AsReadOnlySpan<float>();
            Attention.Backward(shape, xs, xs[c..], xs[(2 * c)..], output.AsReadOnlySpan<float>(), lse, g.AsReadOnlySpan<float>(), dx, dx[c..], dx[(2 * c)..], causal, mask, scale);
            return [dqkv];
        });
    }

    /// <summary>
    /// query[B, Tq, C], key[B, Tk, C], value[B, Tk, C] (C = H·D, separate projections as BERT's) → [B, Tq, C]:
    /// softmax(q·kᵀ · scale + masks) · v per head, heads merged. The same function as
    /// <see cref="SplitHeads"/> on each input, <see cref="ScaledDotProductAttention(Tensor, Tensor, Tensor, bool, Tensor?, float?)"/>
    /// and <see cref="MergeHeads"/>, and the same kernel on the same strides (so the same bits), but one node: the
    /// backward writes dq, dk, dv as [B, T, C] tensors the projections take as they are, where the head-view path copies
    /// each gradient twice (to [B, H, T, D] and back).
    /// </summary>
    /// <exception cref="ArgumentException">The inputs are not [B, T, C] with matching B and C, C is not a multiple of heads, or the mask is not [B, Tk].</exception>
    public static Tensor MultiHeadAttention(Tensor query, Tensor key, Tensor value, int heads, bool causal = false, Tensor? attentionMask = null, float? scale = null)
    {
        const string Op = nameof(MultiHeadAttention);
        CheckF32(Op, query, nameof(query));
        CheckF32(Op, key, nameof(key));
        CheckF32(Op, value, nameof(value));
        if (query.Rank != 3 || heads <= 0 || query.Shape[2] % heads != 0)
        {
            ShapeError.Invalid(Op, query.Shape, $"query must be [B, Tq, C] with C a multiple of heads = {heads}");
        }

        if (key.Rank != 3 || key.Shape[0] != query.Shape[0] || key.Shape[2] != query.Shape[2])
        {
            ShapeError.Mismatch(Op, query.Shape, key.Shape, "key must be [B, Tk, C] with query's B and C");
        }

        if (value.Shape != key.Shape) ShapeError.Mismatch(Op, key.Shape, value.Shape, "value must have key's shape [B, Tk, C]");
        int b = query.Shape[0], tq = query.Shape[1], tk = key.Shape[1], c = query.Shape[2], d = c / heads;
        var mask = KeyMask(Op, new Shape(b, heads, tq, tk), attentionMask, tk);
        var qc = query.Contiguous();
        var kc = key.Contiguous();
        var vc = value.Contiguous();
        var shape = new AttentionShape(b, heads, tq, tk, d);
        var output = Tensor.Empty(new Shape(b, tq, c));
        bool record = Autograd.Needs(query, key, value);
        float[] lse = record ? new float[(long)b * heads * tq] : [];
        Attention.Forward(shape, qc.AsReadOnlySpan<float>(), kc.AsReadOnlySpan<float>(), vc.AsReadOnlySpan<float>(), output.AsSpan<float>(), causal, mask, scale, default, lse);
        if (!record) return output;

        return Autograd.Record(output, Op, [query, key, value], g =>
        {
            // The kernel writes every element of the three [B, T, C] gradients: no zeroing.
            var dq = Tensor.Empty(query.Shape);
            var dk = Tensor.Empty(key.Shape);
            var dv = Tensor.Empty(value.Shape);
            var gc = g.Contiguous();
            Attention.Backward(
                shape, qc.AsReadOnlySpan<float>(), kc.AsReadOnlySpan<float>(), vc.AsReadOnlySpan<float>(), output.AsReadOnlySpan<float>(), lse,
                gc.AsReadOnlySpan<float>(), dq.AsSpan<float>(), dk.AsSpan<float>(), dv.AsSpan<float>(), causal, mask, scale);
            return [query.RequiresGrad ? dq : null, key.RequiresGrad ? dk : null, value.RequiresGrad ? dv : null];
        });
    }

    private static void CheckAttention(Tensor q, Tensor k, Tensor v)
    {
        const string Op = nameof(ScaledDotProductAttention);
        CheckF32(Op, q, nameof(q));
        CheckF32(Op, k, nameof(k));
        CheckF32(Op, v, nameof(v));
        if (q.Rank != 4) ShapeError.Invalid(Op, q.Shape, "q must be [B, H, Tq, D]");
        if (k.Rank != 4 || k.Shape[0] != q.Shape[0] || k.Shape[1] != q.Shape[1] || k.Shape[3] != q.Shape[3])
        {
            ShapeError.Mismatch(Op, q.Shape, k.Shape, "k must be [B, H, Tk, D] with q's B, H and D");
        }

        if (v.Rank != 4 || v.Shape[0] != k.Shape[0] || v.Shape[1] != k.Shape[1] || v.Shape[2] != k.Shape[2])
        {
            ShapeError.Mismatch(Op, k.Shape, v.Shape, "v must be [B, H, Tk, Dv] with k's B, H and Tk");
        }
    }

    /// <summary>Reference composition: scores = q·kᵀ·scale, p = masked softmax, out = p·v; the backward is the parts'.</summary>
    private static Tensor ComposedAttention(Tensor q, Tensor k, Tensor v, out Tensor weights, bool causal, Tensor? attentionMask, float? scale)
    {
        float s = scale ?? (1f / MathF.Sqrt(q.Shape[3]));
        var scores = Scale(MatMul(q, k, transposeB: true), s);   // [B, H, Tq, Tk]
        weights = Softmax(scores, causal, attentionMask);         // [B, H, Tq, Tk]
        return MatMul(weights, v);                                 // [B, H, Tq, Dv]
    }

    /// <summary>
    /// The fused kernel over head views. When recording, the forward keeps only the log-sum-exp per query [B, H, Tq]
    /// and the backward recomputes the probabilities a block of keys at a time (<see cref="Attention.Backward(AttentionShape, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, Span{float}, Span{float}, bool, ReadOnlySpan{float}, float?)"/>);
    /// the probabilities [B, H, Tq, Tk] are materialized only when <paramref name="keepProbabilities"/> asks.
    /// </summary>
    private static Tensor FusedAttention(Tensor q, Tensor k, Tensor v, bool causal, Tensor? attentionMask, float? scale, bool keepProbabilities, out float[] probabilities)
    {
        int b = q.Shape[0], h = q.Shape[1], tq = q.Shape[2], tk = k.Shape[2], d = q.Shape[3];
        var mask = KeyMask(nameof(ScaledDotProductAttention), new Shape(b, h, tq, tk), attentionMask, tk);
        var (qv, qStride) = HeadLayout(q);
        var (kv, kStride) = HeadLayout(k);
        var (vv, vStride) = HeadLayout(v);
        var shape = new AttentionShape(b, h, tq, tk, d) { QueryRowStride = qStride, KeyRowStride = kStride, ValueRowStride = vStride };

        // The output is stored [B, Tq, H, D] and returned as its [B, H, Tq, D] view.
        var packed = Tensor.Empty(new Shape(b, tq, h, d));
        bool record = Autograd.Needs(q, k, v);
        probabilities = keepProbabilities ? new float[(long)b * h * tq * tk] : [];
        float[] lse = record ? new float[(long)b * h * tq] : [];
        Attention.Forward(shape, From(qv), From(kv), From(vv), packed.AsSpan<float>(), causal, mask, scale, probabilities, lse);
        var output = packed.Permute(0, 2, 1, 3);
        if (!record) return output;

        return Autograd.Record(output, nameof(ScaledDotProductAttention), [q, k, v], g =>
        {
            // The kernel reads O and dO in the output's [B, Tq, H, D] layout and writes dq, dk, dv in q, k, v's layouts.
            var dOut = g.Permute(0, 2, 1, 3).Contiguous();
            var dq = HeadGradient(q.Shape, qStride);
            var dk = HeadGradient(k.Shape, kStride);
            var dv = HeadGradient(v.Shape, vStride);
            Attention.Backward(
                shape, From(qv), From(kv), From(vv), packed.AsReadOnlySpan<float>(), lse, dOut.AsReadOnlySpan<float>(),
                WritableFrom(dq), WritableFrom(dk), WritableFrom(dv), causal, mask, scale);
            return [q.RequiresGrad ? dq : null, k.RequiresGrad ? dk : null, v.RequiresGrad ? dv : null];
        });
    }

    /// <summary>
    /// Expresses a [B, H, T, D] view the way the attention kernel reads it, element [b, h, t, d] at
    /// (b·T + t)·rowStride + h·D + d from the view's offset. Head views of a [B, T, ≥H·D] tensor qualify as they are;
    /// any other layout is copied once into [B, T, H, D].
    /// </summary>
    private static (Tensor View, int RowStride) HeadLayout(Tensor t)
    {
        int b = t.Shape[0], h = t.Shape[1], n = t.Shape[2], d = t.Shape[3];
        var s = t.Strides;
        long row = n > 1 ? s[2] : (b > 1 ? s[0] : (long)h * d);
        bool fits = (d <= 1 || s[3] == 1)
            && (h <= 1 || s[1] == d)
            && (b <= 1 || s[0] == n * row)
            && row >= (long)h * d && row <= int.MaxValue;
        if (fits) return (t, (int)row);
        var packed = t.Permute(0, 2, 1, 3).Contiguous(); // [B, T, H, D]
        return (packed.Permute(0, 2, 1, 3), h * d);
    }

    /// <summary>
    /// A gradient buffer laid out like a head view with row stride <paramref name="rowStride"/>: left uninitialized when
    /// the view covers every element (row stride H·D; the kernel writes all of them), zeroed when rows have gaps.
    /// </summary>
    private static Tensor HeadGradient(Shape shape, int rowStride)
    {
        int b = shape[0], h = shape[1], n = shape[2], d = shape[3];
        var size = new Shape(Math.Max(1, b * n * rowStride));
        var buffer = rowStride == h * d && b * n * rowStride > 0 ? Tensor.Empty(size) : Tensor.Zeros(size);
        return new Tensor(buffer.Storage, DType.F32, shape, [(long)n * rowStride, d, rowStride, 1], 0);
    }

    /// <summary>The F32 elements of <paramref name="t"/>'s storage from its offset to the end (for strided kernels).</summary>
    private static ReadOnlySpan<float> From(Tensor t)
    {
        long count = (t.Storage.ByteLength / sizeof(float)) - t.Offset;
        return MemoryMarshal.Cast<byte, float>(t.Storage.GetReadOnlyBytes(t.Offset * sizeof(float), checked((int)(count * sizeof(float)))));
    }

    /// <summary>Writable form of <see cref="From"/>.</summary>
    private static Span<float> WritableFrom(Tensor t)
    {
        long count = (t.Storage.ByteLength / sizeof(float)) - t.Offset;
        return MemoryMarshal.Cast<byte, float>(t.Storage.GetBytes(t.Offset * sizeof(float), checked((int)(count * sizeof(float)))));
    }
}
