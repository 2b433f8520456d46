namespace Sharpformer.Tensors;

public static partial class Ops
{
    /// <summary>
    /// x[..., Tq, Tk] → [..., Tq, Tk]: softmax over the last axis, optionally masked. <paramref name="causal"/> hides key j
    /// from query i when j &gt; i + (Tk − Tq) (queries aligned to the end of the keys, as with a KV cache).
    /// <paramref name="attentionMask"/> is [B, Tk] with x's first dimension B: 1 (or any nonzero) keeps a key, 0 hides it
    /// (Hugging Face's attention_mask). Hidden positions get probability 0; a row with every key hidden is all zeros.
    /// </summary>
    /// <exception cref="ArgumentException">The mask is not [B, Tk], or <paramref name="causal"/> is set on a rank-1 input.</exception>
    public static Tensor Softmax(Tensor x, bool causal = false, Tensor? attentionMask = null)
    {
        CheckF32(nameof(Softmax), x, nameof(x));
        if (x.Rank < 1 || (causal && x.Rank < 2)) ShapeError.Invalid(nameof(Softmax), x.Shape, "a [..., Tq, Tk] input is required (rank ≥ 2 for a causal mask)");
        int tk = x.Shape.Last;
        int tq = x.Rank >= 2 ? x.Shape[-2] : 1;
        int rows = (int)x.Shape.Rows;
        float[]? keep = null;
        int rowsPerBatch = rows;
        if (attentionMask is not null)
        {
            if (attentionMask.Rank != 2 || x.Rank < 2 || attentionMask.Shape[0] != x.Shape[0] || attentionMask.Shape[1] != tk)
            {
                ShapeError.Mismatch(nameof(Softmax), x.Shape, attentionMask.Shape, "the attention mask must be [B, Tk] for scores [B, ..., Tq, Tk]");
            }

            keep = attentionMask.ToArray();
            rowsPerBatch = rows / x.Shape[0];
        }

        var xs = Read(x);
        var output = Tensor.Empty(x.Shape);
        var o = output.AsSpan<float>();
        for (int r = 0; r < rows; r++)
        {
            var row = xs.Slice(r * tk, tk);
            var outRow = o.Slice(r * tk, tk);

            // Keys visible to this row: [0, limit) under the causal mask, minus padded keys.
            int limit = causal ? Math.Clamp((r % tq) + (tk - tq) + 1, 0, tk) : tk;
            ReadOnlySpan<float> rowKeep = keep is null ? default : keep.AsSpan((r / rowsPerBatch) * tk, tk);
            float max = float.NegativeInfinity;
            for (int j = 0; j < limit; j++)
            {
                if (rowKeep.IsEmpty || rowKeep[j] != 0f) max = MathF.Max(max, row[j]);
            }

            outRow.Clear();
            if (float.IsNegativeInfinity(max)) continue; // every key hidden: no distribution, zeros

            // Subtracting the row max only guards exp against overflow; it cancels in the ratio.
            double sum = 0;
            for (int j = 0; j < limit; j++)
            {
                if (!rowKeep.IsEmpty && rowKeep[j] == 0f) continue;
                float e = MathF.Exp(row[j] - max);
                outRow[j] = e;
                sum += e;
            }

            float inv = (float)(1.0 / sum);
            for (int j = 0; j < limit; j++) outRow[j] *= inv;
        }

        if (!Autograd.Needs(x)) return output;
        return Autograd.Record(output, nameof(Softmax), [x], g =>
        {
            // dx_j = y_j · (g_j − Σ_i g_i y_i); hidden positions have y = 0 and so get no gradient.
            var gs = g.AsReadOnlySpan<float>();
            var ys = output.AsReadOnlySpan<float>();
            var dx = Tensor.Empty(x.Shape);
            var d = dx.AsSpan<float>();
            for (int r = 0; r < rows; r++)
            {
                double dot = 0;
                for (int j = 0; j < tk; j++) dot += gs[(r * tk) + j] * ys[(r * tk) + j];
                for (int j = 0; j < tk; j++) d[(r * tk) + j] = ys[(r * tk) + j] * (float)(gs[(r * tk) + j] - dot);
            }

            return [dx];
        });
    }

    /// <summary>
    /// q[B, H, Tq, D], k[B, H, Tk, D], v[B, H, Tk, Dv] → [B, H, Tq, Dv]: softmax(q·kᵀ · scale + masks) · v, with
    /// scale = 1/√D unless given. Masks as in <see cref="Softmax"/> (causal; attention mask [B, Tk], 1 = keep).
    /// Inputs may be strided views (e.g. from <see cref="SplitHeads"/>).
    /// </summary>
    /// <exception cref="ArgumentException">The shapes of q, k and v do not agree.</exception>
    public static Tensor ScaledDotProductAttention(Tensor q, Tensor k, Tensor v, bool causal = false, Tensor? attentionMask = null, float? scale = null) =>
        ScaledDotProductAttention(q, k, v, out _, causal, attentionMask, scale);

    /// <summary>
    /// q[B, H, Tq, D], k[B, H, Tk, D], v[B, H, Tk, Dv] → [B, H, Tq, Dv], also returning the attention probabilities
    /// <paramref name="weights"/>[B, H, Tq, Tk] (gradients flow through them if they are used in a loss).
    /// </summary>
    /// <exception cref="ArgumentException">The shapes of q, k and v do not agree.</exception>
    public static Tensor ScaledDotProductAttention(Tensor q, Tensor k, Tensor v, out Tensor weights, bool causal = false, Tensor? attentionMask = null, float? scale = null)
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

        // Composed from differentiable ops, so the backward pass is theirs: scores = q·kᵀ·scale, p = softmax, out = p·v.
        float s = scale ?? (1f / MathF.Sqrt(q.Shape[3]));
        var scores = Scale(MatMul(q, k, transposeB: true), s);   // [B, H, Tq, Tk]
        weights = Softmax(scores, causal, attentionMask);         // [B, H, Tq, Tk]
        return MatMul(weights, v);                                 // [B, H, Tq, Dv]
    }
}
