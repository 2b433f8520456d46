using System.Buffers;
using System.Diagnostics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Kernels;

/// <summary>
/// Sizes and strides of one attention call. Q is read as a strided [B, H, Tq, D] view of a [B, Tq, H·D] projection
/// (element [b, h, i, d] at (b·Tq + i)·QueryRowStride + h·D + d), and likewise K and V over Tk rows and the output over
/// Tq rows, so head splits are never materialized. A row stride of 0 means the packed default H·D; a fused QKV projection
/// [B, T, 3·H·D] passes 3·H·D and slices the spans at offsets 0, H·D and 2·H·D.
/// </summary>
/// <param name="Batch">B.</param>
/// <param name="Heads">H.</param>
/// <param name="QueryLength">Tq, the number of queries (new tokens).</param>
/// <param name="KeyLength">Tk, the number of keys and values (cached plus new tokens).</param>
/// <param name="HeadDim">D, the width of one head.</param>
public readonly record struct AttentionShape(int Batch, int Heads, int QueryLength, int KeyLength, int HeadDim)
{
    /// <summary>Elements between consecutive query rows (tokens) of Q; 0 means H·D.</summary>
    public int QueryRowStride { get; init; }

    /// <summary>Elements between consecutive key rows of K; 0 means H·D.</summary>
    public int KeyRowStride { get; init; }

    /// <summary>Elements between consecutive value rows of V; 0 means H·D.</summary>
    public int ValueRowStride { get; init; }

    /// <summary>Elements between consecutive rows of the output (and of its gradient); 0 means H·D.</summary>
    public int OutputRowStride { get; init; }

    internal int Width => Heads * HeadDim;

    internal int QStride => QueryRowStride == 0 ? Width : QueryRowStride;

    internal int KStride => KeyRowStride == 0 ? Width : KeyRowStride;

    internal int VStride => ValueRowStride == 0 ? Width : ValueRowStride;

    internal int OStride => OutputRowStride == 0 ? Width : OutputRowStride;
}

/// <summary>
/// Fused scaled-dot-product attention per head: O = softmax(Q·Kᵀ · scale + mask) · V over strided [B, H, T, D] views,
/// with a causal mask (query i sees keys j ≤ i + (Tk − Tq), so a KV cache works), an optional key-padding mask per batch,
/// optional returned probabilities or per-query log-sum-exp, and two backwards: the blocked one from the log-sum-exp
/// (Attention.Backward.cs, what training uses: O(B·H·Tq) saved state, probabilities recomputed a tile at a time) and one
/// from saved probabilities [B, H, Tq, Tk].
/// Each (b, h) is one task for <see cref="ParallelFor"/>; inside it, a prefill or training step runs as GEMM tiles: on the
/// AVX2 / AVX-512 tiers straight on the micro-kernels, a tile of MR queries at a time (Attention.ForwardTiles.cs), below
/// them and when the probabilities are kept through the generic GEMM, 64 queries at a time (S = Q·Kᵀ over the keys the
/// tile may see, masked softmax, O = P·V); a few queries run row by row, and a decoding step (one query, nothing saved)
/// is split over blocks of keys instead, all heads at once.
/// </summary>
public static partial class Attention
{
    /// <summary>
    /// Q [B, H, Tq, D], K [B, H, Tk, D], V [B, H, Tk, D] → O [B, H, Tq, D] (strided views, see <see cref="AttentionShape"/>):
    /// O = softmax(Q·Kᵀ · scale + mask) · V. A query whose keys are all masked gets a zero output row.
    /// </summary>
    /// <param name="shape">Sizes and row strides.</param>
    /// <param name="q">Queries, starting at Q[0, 0, 0, 0].</param>
    /// <param name="k">Keys, starting at K[0, 0, 0, 0].</param>
    /// <param name="v">Values, starting at V[0, 0, 0, 0].</param>
    /// <param name="output">Output view, starting at O[0, 0, 0, 0]; only its [B, H, Tq, D] elements are written.</param>
    /// <param name="causal">Apply the causal mask with offset Tk − Tq.</param>
    /// <param name="keyPaddingMask">Empty, or [B, Tk]: 1 = attend, 0 = padding.</param>
    /// <param name="scale">Score scale; null means 1/√D.</param>
    /// <param name="probabilities">Empty, or [B, H, Tq, Tk] contiguous to receive the attention weights.</param>
    /// <param name="logSumExp">
    /// Empty, or [B, H, Tq] contiguous to receive each query's log Σ_j exp(scale · q·k_j) over its visible keys (−∞ when
    /// it sees none): all the blocked backward needs to recompute the probabilities.
    /// </param>
    /// <exception cref="ArgumentException">A size or stride is invalid or a span is too short.</exception>
    public static unsafe void Forward(
        AttentionShape shape, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> output,
        bool causal = false, ReadOnlySpan<float> keyPaddingMask = default, float? scale = null, Span<float> probabilities = default,
        Span<float> logSumExp = default)
    {
        const string Op = "Attention.Forward";
        Validate(Op, shape, q.Length, k.Length, v.Length, output.Length, "output");
        int b = shape.Batch, h = shape.Heads, tq = shape.QueryLength, tk = shape.KeyLength;
        KernelChecks.Optional(Op, nameof(keyPaddingMask), keyPaddingMask.Length, (long)b * tk, "[B={0}, Tk={1}]", b, tk);
        KernelChecks.Optional(Op, nameof(probabilities), probabilities.Length, (long)b * h * tq * tk, "[B={0}, H={1}, Tq={2}, Tk={3}]", b, h, tq, tk);
        KernelChecks.Optional(Op, nameof(logSumExp), logSumExp.Length, (long)b * h * tq, "[B={0}, H={1}, Tq={2}]", b, h, tq);
        float s = scale ?? ScaleFor(shape.HeadDim);
        if (tq == 1 && probabilities.IsEmpty && logSumExp.IsEmpty && tk > 0 && shape.HeadDim > 0)
        {
            // A decoding step: every key is visible to the one query, whatever the causal flag.
            DecodeStep(shape, s, q, k, v, output, keyPaddingMask);
            return;
        }

        if (probabilities.IsEmpty && UsesForwardTiles(GemmDriver.BestIsa, shape))
        {
            ForwardTilesCore(GemmDriver.BestIsa, shape, s, q, k, v, output, causal, keyPaddingMask, logSumExp);
            return;
        }

        fixed (float* pq = q, pk = k, pv = v, po = output, pm = keyPaddingMask, pp = probabilities, pl = logSumExp)
        {
            nint aq = (nint)pq, ak = (nint)pk, av = (nint)pv, ao = (nint)po, am = (nint)pm, ap = (nint)pp, al = (nint)pl;
            int lq = q.Length, lk = k.Length, lv = v.Length, lo = output.Length, lm = keyPaddingMask.Length, lp = probabilities.Length;
            int ll = logSumExp.Length;
            ParallelFor.For(b * h, 1, (start, end) =>
            {
                var qs = new ReadOnlySpan<float>((void*)aq, lq);
                var ks = new ReadOnlySpan<float>((void*)ak, lk);
                var vs = new ReadOnlySpan<float>((void*)av, lv);
                var os = new Span<float>((void*)ao, lo);
                var ms = new ReadOnlySpan<float>((void*)am, lm);
                var ps = new Span<float>((void*)ap, lp);
                var ls = new Span<float>((void*)al, ll);
                // Per worker: the scores [Tq, Tk] when the caller does not keep the probabilities.
                float[] scratch = ArrayPool<float>.Shared.Rent(Math.Max(1, ps.IsEmpty ? tq * tk : 0));
                for (int bh = start; bh < end; bh++)
                {
                    var scores = ps.IsEmpty ? scratch.AsSpan(0, tq * tk) : ps.Slice(bh * tq * tk, tq * tk);
                    var lse = ls.IsEmpty ? ls : ls.Slice(bh * tq, tq);
                    Head(shape, bh, s, causal, qs, ks, vs, os, ms, scores, lse);
                }

                ArrayPool<float>.Shared.Return(scratch);
            });
        }
    }

    /// <summary>
    /// Backward of <see cref="Forward"/> from the saved probabilities P [B, H, Tq, Tk]: with dO [B, H, Tq, D],
    /// dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(P ⊙ dP)), dQ = scale · dS·K, dK = scale · dSᵀ·Q.
    /// dQ, dK and dV may be views of one fused gradient buffer (they are written only inside their own views).
    /// Masks need no repeating: masked entries of P are 0, so they pass no gradient. Training uses the blocked backward
    /// from the log-sum-exp instead, which keeps no [Tq, Tk] state and at BERT-base shapes runs in about half the time.
    /// </summary>
    /// <param name="shape">The forward's sizes and strides; dQ, dK, dV use the Q, K, V strides and dO the output stride.</param>
    /// <param name="q">The forward queries.</param>
    /// <param name="k">The forward keys.</param>
    /// <param name="v">The forward values.</param>
    /// <param name="probabilities">The forward's attention weights [B, H, Tq, Tk], contiguous.</param>
    /// <param name="dOutput">Gradient with respect to the output view.</param>
    /// <param name="dq">Gradient with respect to Q (its view's elements are overwritten).</param>
    /// <param name="dk">Gradient with respect to K (overwritten).</param>
    /// <param name="dv">Gradient with respect to V (overwritten).</param>
    /// <param name="scale">The forward's score scale; null means 1/√D.</param>
    /// <exception cref="ArgumentException">A size or stride is invalid or a span is too short.</exception>
    public static unsafe void Backward(
        AttentionShape shape, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> probabilities,
        ReadOnlySpan<float> dOutput, Span<float> dq, Span<float> dk, Span<float> dv, float? scale = null)
    {
        const string Op = "Attention.Backward";
        Validate(Op, shape, q.Length, k.Length, v.Length, dOutput.Length, nameof(dOutput));
        Validate(Op, shape, dq.Length, dk.Length, dv.Length, dOutput.Length, nameof(dOutput), "dq", "dk", "dv");
        int b = shape.Batch, h = shape.Heads, tq = shape.QueryLength, tk = shape.KeyLength;
        KernelChecks.AtLeast(Op, nameof(probabilities), probabilities.Length, (long)b * h * tq * tk, "[B={0}, H={1}, Tq={2}, Tk={3}]", b, h, tq, tk);
        float s = scale ?? ScaleFor(shape.HeadDim);
        fixed (float* pq = q, pk = k, pv = v, pp = probabilities, pdo = dOutput, pdq = dq, pdk = dk, pdv = dv)
        {
            nint aq = (nint)pq, ak = (nint)pk, av = (nint)pv, ap = (nint)pp, ado = (nint)pdo, adq = (nint)pdq, adk = (nint)pdk, adv = (nint)pdv;
            int lq = q.Length, lk = k.Length, lv = v.Length, lp = probabilities.Length, ldo = dOutput.Length, ldq = dq.Length, ldk = dk.Length, ldv = dv.Length;
            ParallelFor.For(b * h, 1, (start, end) =>
            {
                int scratchLength = (shape.HeadDim * tk) + (2 * tq * tk);
                float[] scratch = ArrayPool<float>.Shared.Rent(Math.Max(1, scratchLength));
                for (int bh = start; bh < end; bh++)
                {
                    HeadBackward(
                        shape, bh, s,
                        new ReadOnlySpan<float>((void*)aq, lq), new ReadOnlySpan<float>((void*)ak, lk), new ReadOnlySpan<float>((void*)av, lv),
                        new ReadOnlySpan<float>((void*)ap, lp), new ReadOnlySpan<float>((void*)ado, ldo),
                        new Span<float>((void*)adq, ldq), new Span<float>((void*)adk, ldk), new Span<float>((void*)adv, ldv),
                        scratch.AsSpan(0, scratchLength));
                }

                ArrayPool<float>.Shared.Return(scratch);
            });
        }
    }

    // From this many queries per head (a prefill, a training step) the head runs as GEMM tiles (HeadTiles); below it
    // (a short chunk against a cache), row by row. On the AMD EPYC dev machine (H = 12, D = 64, causal) tiles took
    // 51 µs against 91 µs for rows at Tq = 8, Tk = 64 and 463 against 3257 µs at Tk = 512; rows won at Tq = 2..6.
    private const int MinQueriesForTiles = 8;

    // Queries per GEMM tile of the forward: 64 measured ahead of 32 at GPT-2 and BERT training shapes.
    private const int ForwardQueryBlock = 64;

    /// <summary>
    /// Batch entry <paramref name="b"/>'s key mask [Tk], or empty when there is no mask or it keeps every key (an unpadded
    /// sequence), so the kernels skip the per-key checks.
    /// </summary>
    private static ReadOnlySpan<float> KeyMaskRow(ReadOnlySpan<float> keyPaddingMask, int b, int tk)
    {
        if (keyPaddingMask.IsEmpty) return keyPaddingMask;
        var row = keyPaddingMask.Slice(b * tk, tk);
        return row.ContainsAnyExcept(1f) ? row : default;
    }

    /// <summary>1/√D, the default score scale.</summary>
    internal static float ScaleFor(int headDim) => headDim == 0 ? 1f : 1f / MathF.Sqrt(headDim);

    /// <summary>
    /// One (b, h). Many queries run as GEMM tiles (<see cref="HeadTiles"/>); a few run row by row: scores_i =
    /// scale · q_i·Kᵀ over the keys query i may see (one short dot product per key), masked softmax in place,
    /// o_i = p_i·V (<see cref="VecMat"/>). Keys past the causal limit are never touched. When
    /// <paramref name="logSumExp"/> is not empty it receives each row's log-sum-exp [Tq].
    /// </summary>
    private static void Head(
        AttentionShape shape, int bh, float scale, bool causal, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        Span<float> output, ReadOnlySpan<float> keyPaddingMask, Span<float> scores, Span<float> logSumExp)
    {
        int b = bh / shape.Heads, h = bh % shape.Heads;
        int tq = shape.QueryLength, tk = shape.KeyLength, d = shape.HeadDim;
        if (tq == 0 || d == 0) return;
        long qOff = ((long)b * tq * shape.QStride) + ((long)h * d);
        long kOff = ((long)b * tk * shape.KStride) + ((long)h * d);
        long vOff = ((long)b * tk * shape.VStride) + ((long)h * d);
        long oOff = ((long)b * tq * shape.OStride) + ((long)h * d);
        if (tk == 0)
        {
            // No keys at all: every query is fully masked, so its output is zero.
            ClearRows(output, oOff, tq, shape.OStride, d);
            logSumExp.Fill(float.NegativeInfinity);
            return;
        }

        var mask = KeyMaskRow(keyPaddingMask, b, tk);
        if (tq >= MinQueriesForTiles)
        {
            HeadTiles(shape, scale, causal, q[qOff.ToInt()..], k[kOff.ToInt()..], v[vOff.ToInt()..], output[oOff.ToInt()..], mask, scores, logSumExp);
            return;
        }

        var kh = k[kOff.ToInt()..];
        var vh = v[vOff.ToInt()..];
        for (int i = 0; i < tq; i++)
        {
            var qi = q.Slice((qOff + ((long)i * shape.QStride)).ToInt(), d);
            var oi = output.Slice((oOff + ((long)i * shape.OStride)).ToInt(), d);
            var row = scores.Slice(i * tk, tk);
            int visible = Softmax.VisibleKeys(i, tq, tk, causal);

            // scores_i [visible] = scale · q_i [D] · K [visible, D]ᵀ
            KeyScores(qi, kh, shape.KStride, visible, row, scale);

            if (logSumExp.IsEmpty)
            {
                Softmax.MaskedRow(row, row, visible, mask);
            }
            else
            {
                logSumExp[i] = MaskedRowLogSumExp(row, visible, mask);
            }

            // o_i [D] = p_i [visible] · V [visible, D]
            VecMat(row[..visible], vh, shape.VStride, d, oi, 1f);
        }
    }

    /// <summary>
    /// One (b, h) of a prefill through the generic GEMM (the Vector128 and scalar tiers, and kept probabilities; the AVX2
    /// and AVX-512 tiers run ForwardTilesJob), as GEMM tiles: per tile of <see cref="ForwardQueryBlock"/> queries,
    /// S = scale · Q·Kᵀ over the keys the tile's last query may see, the masked softmax row by row, then O = P·V. The GEMM micro-kernels reuse
    /// each loaded element across a register tile, where the row-at-a-time vector-times-matrix loop reloads K (and V)
    /// for every query; causal waste is at most the masked part of one tile's last keys. <paramref name="q"/>,
    /// <paramref name="k"/>, <paramref name="v"/>, <paramref name="output"/> start at the head's first element.
    /// </summary>
    private static void HeadTiles(
        AttentionShape shape, float scale, bool causal, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        Span<float> output, ReadOnlySpan<float> mask, Span<float> scores, Span<float> logSumExp)
    {
        int tq = shape.QueryLength, tk = shape.KeyLength, d = shape.HeadDim;
        for (int i0 = 0; i0 < tq; i0 += ForwardQueryBlock)
        {
            int nq = Math.Min(ForwardQueryBlock, tq - i0);
            int keys = Softmax.VisibleKeys(i0 + nq - 1, tq, tk, causal);
            var tile = scores[(i0 * tk)..];

            // S [nq, keys] = scale · Q [nq, D] · K [keys, D]ᵀ, rows at stride Tk in the scores.
            Product(false, true, nq, keys, d, scale, q[(i0 * shape.QStride)..], shape.QStride, k, shape.KStride, 0f, tile, tk);
            for (int r = 0; r < nq; r++)
            {
                int i = i0 + r;
                var row = scores.Slice(i * tk, tk);
                int visible = Softmax.VisibleKeys(i, tq, tk, causal);
                if (logSumExp.IsEmpty)
                {
                    Softmax.MaskedRow(row, row, visible, mask);
                }
                else
                {
                    logSumExp[i] = MaskedRowLogSumExp(row, visible, mask);
                }
            }

            // O [nq, D] = P [nq, keys] · V [keys, D]; P is 0 past each row's visible keys.
            Product(false, false, nq, d, keys, 1f, tile, tk, v, shape.VStride, 0f, output[(i0 * shape.OStride)..], shape.OStride);
        }
    }

    /// <summary>
    /// <see cref="Softmax.MaskedRow"/> in place that also returns the row's log-sum-exp max + log Σ exp(x − max) over the
    /// kept keys, or −∞ (and a zero row) when no key is kept.
    /// </summary>
    private static float MaskedRowLogSumExp(Span<float> row, int visible, ReadOnlySpan<float> keyMask)
    {
        var kept = row[..visible];
        if (!keyMask.IsEmpty)
        {
            for (int j = 0; j < visible; j++)
            {
                if (keyMask[j] == 0f) kept[j] = float.NegativeInfinity;
            }
        }

        row[visible..].Clear();
        float max = visible == 0 ? float.NegativeInfinity : Softmax.RowMax(kept);
        if (float.IsNegativeInfinity(max))
        {
            kept.Clear();
            return float.NegativeInfinity;
        }

        float sum = Softmax.ExpSubtractSum(kept, max, kept);
        TensorPrimitives.Multiply(kept, 1f / sum, kept);
        return max + MathF.Log(sum);
    }

    /// <summary>
    /// One (b, h) of the backward. Per query row: dP_i = do_i·Vᵀ, dS_i = scale · p_i ⊙ (dP_i − p_i·dP_i), dq_i = dS_i·K.
    /// Then, over the transposed P and dS: dV = Pᵀ·dO and dK = dSᵀ·Q, row by row. <paramref name="scratch"/> holds
    /// Vᵀ [D, Tk], dS [Tq, Tk] and one [Tk, Tq] transpose.
    /// </summary>
    private static void HeadBackward(
        AttentionShape shape, int bh, float scale, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<float> probabilities, ReadOnlySpan<float> dOutput, Span<float> dq, Span<float> dk, Span<float> dv, Span<float> scratch)
    {
        int b = bh / shape.Heads, h = bh % shape.Heads;
        int tq = shape.QueryLength, tk = shape.KeyLength, d = shape.HeadDim;
        if (d == 0) return;
        long qOff = ((long)b * tq * shape.QStride) + ((long)h * d);
        long kOff = ((long)b * tk * shape.KStride) + ((long)h * d);
        long vOff = ((long)b * tk * shape.VStride) + ((long)h * d);
        long oOff = ((long)b * tq * shape.OStride) + ((long)h * d);
        if (tq == 0 || tk == 0)
        {
            // Nothing was attended: every gradient this head owns is zero.
            ClearRows(dq, qOff, tq, shape.QStride, d);
            ClearRows(dk, kOff, tk, shape.KStride, d);
            ClearRows(dv, vOff, tk, shape.VStride, d);
            return;
        }

        var vt = scratch[..(d * tk)];
        var ds = scratch.Slice(d * tk, tq * tk);
        var tr = scratch.Slice((d * tk) + (tq * tk), tq * tk);
        var p = probabilities.Slice(bh * tq * tk, tq * tk);
        var dO = dOutput[oOff.ToInt()..];
        var qh = q[qOff.ToInt()..];
        var kh = k[kOff.ToInt()..];
        Transpose(v[vOff.ToInt()..], shape.VStride, tk, d, vt);
        for (int i = 0; i < tq; i++)
        {
            var pi = p.Slice(i * tk, tk);
            var dsi = ds.Slice(i * tk, tk);

            // Masked keys have p = 0 and so dS = 0; only the keys up to the last non-zero weight need work.
            int used = tk;
            while (used > 0 && pi[used - 1] == 0f) used--;
            dsi[used..].Clear();

            // dP_i [used] = do_i [D] · Vᵀ [D, used]; dS_i = scale · p_i ⊙ (dP_i − p_i·dP_i)
            VecMat(dO.Slice(i * shape.OStride, d), vt, tk, used, dsi, 1f);
            float dot = TensorPrimitives.Dot(pi[..used], dsi[..used]);
            TensorPrimitives.Subtract(dsi[..used], dot, dsi[..used]);
            TensorPrimitives.Multiply(dsi[..used], pi[..used], dsi[..used]);
            TensorPrimitives.Multiply(dsi[..used], scale, dsi[..used]);

            // dq_i [D] = dS_i [used] · K [used, D]
            VecMat(dsi[..used], kh, shape.KStride, d, dq.Slice((qOff + ((long)i * shape.QStride)).ToInt(), d), 1f);
        }

        // dV [Tk, D] = Pᵀ [Tk, Tq] · dO [Tq, D], one key row at a time.
        Transpose(p, tk, tq, tk, tr);
        for (int j = 0; j < tk; j++)
        {
            // Under a causal mask the column's leading queries never saw key j: start at the first non-zero weight.
            var col = tr.Slice(j * tq, tq);
            int first = FirstNonZero(col);
            if (first == tq)
            {
                // No query attended to key j (padding): its value gradient is zero.
                dv.Slice((vOff + ((long)j * shape.VStride)).ToInt(), d).Clear();
                continue;
            }

            VecMat(col[first..], dO[(first * shape.OStride)..], shape.OStride, d, dv.Slice((vOff + ((long)j * shape.VStride)).ToInt(), d), 1f);
        }

        // dK [Tk, D] = dSᵀ [Tk, Tq] · Q [Tq, D]
        Transpose(ds, tk, tq, tk, tr);
        for (int j = 0; j < tk; j++)
        {
            var col = tr.Slice(j * tq, tq);
            int first = FirstNonZero(col);
            if (first == tq)
            {
                dk.Slice((kOff + ((long)j * shape.KStride)).ToInt(), d).Clear();
                continue;
            }

            VecMat(col[first..], qh[(first * shape.QStride)..], shape.QStride, d, dk.Slice((kOff + ((long)j * shape.KStride)).ToInt(), d), 1f);
        }
    }

    /// <summary>Index of the first non-zero element, or the length when all are zero.</summary>
    private static int FirstNonZero(ReadOnlySpan<float> x)
    {
        int i = 0;
        while (i < x.Length && x[i] == 0f) i++;
        return i;
    }

    /// <summary>dst [cols, rows] = src [rows, cols]ᵀ, src with row stride <paramref name="lds"/>, dst packed.</summary>
    private static void Transpose(ReadOnlySpan<float> src, int lds, int rows, int cols, Span<float> dst)
    {
        for (int r = 0; r < rows; r++)
        {
            var row = src.Slice(r * lds, cols);
            for (int c = 0; c < cols; c++) dst[(c * rows) + r] = row[c];
        }
    }

    /// <summary>
    /// Keys per block of a decoding step: one block per thread (at least 16 keys). Each block costs its thread a ramp
    /// before its prefetches run ahead of it, so fewer, longer blocks stream faster, and merging a few blocks is cheap.
    /// </summary>
    private static int DecodeBlockKeys(int tk) =>
        Math.Max(16, (tk + ParallelFor.MaxDegreeOfParallelism - 1) / ParallelFor.MaxDegreeOfParallelism);

    /// <summary>
    /// One query per sequence (Tq = 1, a decoding step), all heads at once, split over blocks of keys instead of heads
    /// (split-K, as in flash-decoding): each block reads its K rows and then its V rows front to back (a row holds every
    /// head, so a block is two sequential streams, where a head at a time strides through the cache at the row stride)
    /// and leaves per head its score maximum m, its sum of exp(score − m) and its unnormalized output; the blocks are then
    /// merged with the rescaling exp(m_block − m).
    /// </summary>
    private static unsafe void DecodeStep(
        AttentionShape shape, float scale, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> output,
        ReadOnlySpan<float> keyPaddingMask)
    {
        int batch = shape.Batch, heads = shape.Heads, tk = shape.KeyLength, d = shape.HeadDim, width = shape.Width;
        int blockKeys = DecodeBlockKeys(tk);
        int blocks = (tk + blockKeys - 1) / blockKeys;

        // Per (sequence, block): the unnormalized outputs [H·D], then per head its maximum, then per head its sum.
        int slot = width + (2 * heads);
        float[] partials = ArrayPool<float>.Shared.Rent(batch * blocks * slot);
        try
        {
            fixed (float* pq = q, pk = k, pv = v, pm = keyPaddingMask, pp = partials)
            {
                nint aq = (nint)pq, ak = (nint)pk, av = (nint)pv, am = (nint)pm, ap = (nint)pp;
                bool masked = !keyPaddingMask.IsEmpty;
                ParallelFor.For(batch * blocks, 1, (start, end) =>
                {
                    bool lanes = HeadLanesFit(heads, d);
                    float[] scores = ArrayPool<float>.Shared.Rent((lanes ? 16 : heads) * blockKeys);
                    for (int task = start; task < end; task++)
                    {
                        int b = task / blocks, first = task % blocks * blockKeys, count = Math.Min(blockKeys, tk - first);
                        long keyRow = ((long)b * tk) + first;
                        if (lanes)
                        {
                            DecodeBlockLanes(
                                shape,
                                scale,
                                (float*)aq + ((long)b * shape.QStride),
                                (float*)ak + (keyRow * shape.KStride),
                                (float*)av + (keyRow * shape.VStride),
                                masked ? (float*)am + keyRow : null,
                                count,
                                scores,
                                (float*)ap + ((long)task * slot));
                            continue;
                        }

                        DecodeBlock(
                            shape,
                            scale,
                            (float*)aq + ((long)b * shape.QStride),
                            (float*)ak + (keyRow * shape.KStride),
                            (float*)av + (keyRow * shape.VStride),
                            masked ? (float*)am + keyRow : null,
                            count,
                            scores,
                            new Span<float>((float*)ap + ((long)task * slot), slot));
                    }

                    ArrayPool<float>.Shared.Return(scores);
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
        }
    }

    /// <summary>
    /// One block of <paramref name="count"/> keys for all heads: scores [H, count] = scale · q_h·k_j (−inf where the mask
    /// is 0), per head m = max and p = exp(score − m), and o_h = Σ_j p_j · v_j,h; into <paramref name="partial"/>: o [H·D],
    /// then the H maxima, then the H sums of p.
    /// </summary>
    private static unsafe void DecodeBlock(
        AttentionShape shape, float scale, float* q, float* k, float* v, float* mask, int count, float[] scoreBuffer, Span<float> partial)
    {
        int heads = shape.Heads, d = shape.HeadDim, width = shape.Width;
        var scores = scoreBuffer.AsSpan(0, heads * count);
        var qs = new ReadOnlySpan<float>(q, width);
        for (int j = 0; j < count; j++)
        {
            PrefetchDecodeRow(shape, k, v, j, count);
            var row = new ReadOnlySpan<float>(k + ((long)j * shape.KStride), width);
            bool keep = mask == null || mask[j] != 0f;
            for (int h = 0; h < heads; h++)
            {
                scores[(h * count) + j] = keep ? scale * ShortDot(qs.Slice(h * d, d), row.Slice(h * d, d)) : float.NegativeInfinity;
            }
        }

        for (int h = 0; h < heads; h++)
        {
            var row = scores.Slice(h * count, count);
            float max = Softmax.RowMax(row);
            partial[width + h] = max;
            if (float.IsNegativeInfinity(max))
            {
                // Every key of this block is masked for the head: it adds nothing.
                partial[width + heads + h] = 0f;
                row.Clear();
            }
            else
            {
                partial[width + heads + h] = Softmax.ExpSubtractSum(row, max, row);
            }
        }

        // o_h = p_h [count] · V_h [count, D], a head at a time with its outputs in registers (VecMat); the block's V rows
        // were asked for during the scores, so these strided reads come from cache.
        int vLength = ((count - 1) * shape.VStride) + width;
        for (int h = 0; h < heads; h++)
        {
            VecMat(scores.Slice(h * count, count), new ReadOnlySpan<float>(v + (h * d), vLength - (h * d)), shape.VStride, d, partial.Slice(h * d, d), 1f);
        }
    }

    /// <summary>Whether <see cref="DecodeBlockLanes"/> serves the shape: AVX-512, at most 16 heads of 64 values.</summary>
    private static bool HeadLanesFit(int heads, int d) => Vector512.IsHardwareAccelerated && Avx512F.IsSupported && heads <= 16 && d == 64;

    /// <summary>
    /// <see cref="DecodeBlock"/> with the heads in the lanes of one vector (AVX-512, H ≤ 16, D = 64): each key's H dot
    /// products are reduced together by a transpose tree (15 shuffle-add steps for 16 heads instead of one horizontal
    /// sum per head), the block's softmax runs for all heads at once down the keys, and the V pass accumulates two heads
    /// at a time (eight independent FMA chains). The scores are kept as [count, 16] with head h in lane
    /// <see cref="HeadLane"/>(h). Each score's dot product sums in <see cref="ShortDot"/>'s order up to its last
    /// 16 partial sums, which are added in a different order, so the results differ from <see cref="DecodeBlock"/> in
    /// the last bits.
    /// </summary>
    private static unsafe void DecodeBlockLanes(
        AttentionShape shape, float scale, float* q, float* k, float* v, float* mask, int count, float[] scoreBuffer, float* partial)
    {
        int heads = shape.Heads, width = shape.Width;
        fixed (float* sc = scoreBuffer)
        {
            var scaleV = Vector512.Create(scale);
            var negInf = Vector512.Create(float.NegativeInfinity);
            var max = negInf;
            for (int j = 0; j < count; j++)
            {
                PrefetchDecodeRow(shape, k, v, j, count);

                Vector512<float> row;
                if (mask != null && mask[j] == 0f)
                {
                    row = negInf;
                }
                else
                {
                    float* kr = k + ((long)j * shape.KStride);
                    row = scaleV * HeadSums(q, kr, heads);
                }

                row.Store(sc + (16 * j));
                max = Vector512.Max(max, row);
            }

            // Per head (lane): m = max, p = exp(score − m), sum p; a head with every key of the block masked gets p = 0.
            var valid = ~Vector512.Equals(max, negInf);
            var shift = max & valid;
            var sum = Vector512<float>.Zero;
            for (int j = 0; j < count; j++)
            {
                var p = FastMath.Exp(Vector512.Load(sc + (16 * j)) - shift) & valid;
                p.Store(sc + (16 * j));
                sum += p;
            }

            for (int h = 0; h < heads; h++)
            {
                int lane = HeadLane(h);
                partial[width + h] = max.GetElement(lane);
                partial[width + heads + h] = sum.GetElement(lane);
            }

            // o_h = Σ_j p_j,h · V[j, h·64 .. h·64 + 64), two heads at a time.
            int h0 = 0;
            for (; h0 + 1 < heads; h0 += 2)
            {
                int l0 = HeadLane(h0), l1 = HeadLane(h0 + 1);
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
                float* vr = v + (h0 * 64);
                for (int j = 0; j < count; j++, vr += shape.VStride)
                {
                    var p0 = Vector512.Create(sc[(16 * j) + l0]);
                    var p1 = Vector512.Create(sc[(16 * j) + l1]);
                    a0 = Vector512.FusedMultiplyAdd(p0, Vector512.Load(vr), a0);
                    a1 = Vector512.FusedMultiplyAdd(p0, Vector512.Load(vr + 16), a1);
                    a2 = Vector512.FusedMultiplyAdd(p0, Vector512.Load(vr + 32), a2);
                    a3 = Vector512.FusedMultiplyAdd(p0, Vector512.Load(vr + 48), a3);
                    b0 = Vector512.FusedMultiplyAdd(p1, Vector512.Load(vr + 64), b0);
                    b1 = Vector512.FusedMultiplyAdd(p1, Vector512.Load(vr + 80), b1);
                    b2 = Vector512.FusedMultiplyAdd(p1, Vector512.Load(vr + 96), b2);
                    b3 = Vector512.FusedMultiplyAdd(p1, Vector512.Load(vr + 112), b3);
                }

                float* o = partial + (h0 * 64);
                a0.Store(o);
                a1.Store(o + 16);
                a2.Store(o + 32);
                a3.Store(o + 48);
                b0.Store(o + 64);
                b1.Store(o + 80);
                b2.Store(o + 96);
                b3.Store(o + 112);
            }

            if (h0 < heads)
            {
                int l0 = HeadLane(h0);
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                float* vr = v + (h0 * 64);
                for (int j = 0; j < count; j++, vr += shape.VStride)
                {
                    var p0 = Vector512.Create(sc[(16 * j) + l0]);
                    a0 = Vector512.FusedMultiplyAdd(p0, Vector512.Load(vr), a0);
                    a1 = Vector512.FusedMultiplyAdd(p0, Vector512.Load(vr + 16), a1);
                    a2 = Vector512.FusedMultiplyAdd(p0, Vector512.Load(vr + 32), a2);
                    a3 = Vector512.FusedMultiplyAdd(p0, Vector512.Load(vr + 48), a3);
                }

                float* o = partial + (h0 * 64);
                a0.Store(o);
                a1.Store(o + 16);
                a2.Store(o + 32);
                a3.Store(o + 48);
            }
        }
    }

    /// <summary>The lane of <see cref="TransposeSum8"/>'s result (and so <see cref="HeadSums"/>') that holds input h: the transpose tree leaves input i + 4t in lane 4i + t.</summary>
    private static int HeadLane(int h) => (4 * (h & 3)) + (h >> 2);

    /// <summary>
    /// The H ≤ 16 dot products q_h · k_h over 64 values each, in one vector (head h in lane <see cref="HeadLane"/>(h),
    /// the lanes past H zero): per head one FMA chain over its four vectors as <see cref="ShortDot"/> forms it, then
    /// the 16 partial sums of all heads reduced together, halving the width at each of four levels.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe Vector512<float> HeadSums(float* q, float* k, int heads)
    {
        // Level 1: heads 2i and 2i + 1 → one vector, 8 partial sums each (lanes 0–7 and 8–15).
        var w0 = PairHalves(q, k, 0, heads);
        var w1 = PairHalves(q, k, 2, heads);
        var w2 = PairHalves(q, k, 4, heads);
        var w3 = PairHalves(q, k, 6, heads);
        var w4 = PairHalves(q, k, 8, heads);
        var w5 = PairHalves(q, k, 10, heads);
        var w6 = PairHalves(q, k, 12, heads);
        var w7 = PairHalves(q, k, 14, heads);

        return TransposeSum8(w0, w1, w2, w3, w4, w5, w6, w7);
    }

    /// <summary>
    /// Two vectors of 16 partial sums folded to 8 each, side by side: lanes 0–7 hold <paramref name="a"/>'s 128-bit
    /// blocks 0 + 2 and 1 + 3, lanes 8–15 <paramref name="b"/>'s (the first level of the 16-input transpose-sum tree
    /// that <see cref="TransposeSum8"/> finishes).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> FoldPair(Vector512<float> a, Vector512<float> b) =>
        Avx512F.Shuffle4x128(a, b, 0x44) + Avx512F.Shuffle4x128(a, b, 0xEE);

    /// <summary>
    /// The rest of the transpose-sum tree over 16 vectors, from the eight <see cref="FoldPair"/>s of inputs (2i, 2i + 1):
    /// one vector whose lane <see cref="HeadLane"/>(n) holds input n's total (the sum of its 16 lanes), halving the width
    /// at each of three levels (15 shuffle-add steps in all with the first level, instead of one horizontal sum per input).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> TransposeSum8(
        Vector512<float> w0, Vector512<float> w1, Vector512<float> w2, Vector512<float> w3, Vector512<float> w4, Vector512<float> w5, Vector512<float> w6, Vector512<float> w7)
    {
        // Four inputs per vector, 4 partial sums each, input 4m + i in 128-bit block i.
        var x0 = Avx512F.Shuffle4x128(w0, w1, 0x88) + Avx512F.Shuffle4x128(w0, w1, 0xDD);
        var x1 = Avx512F.Shuffle4x128(w2, w3, 0x88) + Avx512F.Shuffle4x128(w2, w3, 0xDD);
        var x2 = Avx512F.Shuffle4x128(w4, w5, 0x88) + Avx512F.Shuffle4x128(w4, w5, 0xDD);
        var x3 = Avx512F.Shuffle4x128(w6, w7, 0x88) + Avx512F.Shuffle4x128(w6, w7, 0xDD);

        // Inside each 128-bit block, 2 partial sums of two inputs.
        var y0 = Avx512F.Shuffle(x0, x1, 0x44) + Avx512F.Shuffle(x0, x1, 0xEE);
        var y1 = Avx512F.Shuffle(x2, x3, 0x44) + Avx512F.Shuffle(x2, x3, 0xEE);

        // Block i holds inputs i, 4 + i, 8 + i, 12 + i.
        return Avx512F.Shuffle(y0, y1, 0x88) + Avx512F.Shuffle(y0, y1, 0xDD);
    }

    /// <summary>Heads h and h + 1 (zero past H): their 16-lane FMA chains, folded to 8 lanes each, side by side.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe Vector512<float> PairHalves(float* q, float* k, int h, int heads)
    {
        var a = h < heads ? HeadChain(q + (h * 64), k + (h * 64)) : Vector512<float>.Zero;
        var b = h + 1 < heads ? HeadChain(q + ((h + 1) * 64), k + ((h + 1) * 64)) : Vector512<float>.Zero;
        return FoldPair(a, b);
    }

    /// <summary>One head's chain Σ q[16i..16i+16) · k[16i..16i+16) over its four vectors, in <see cref="ShortDot"/>'s order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe Vector512<float> HeadChain(float* q, float* k)
    {
        var acc = Vector512.Load(q) * Vector512.Load(k);
        acc = Vector512.FusedMultiplyAdd(Vector512.Load(q + 16), Vector512.Load(k + 16), acc);
        acc = Vector512.FusedMultiplyAdd(Vector512.Load(q + 32), Vector512.Load(k + 32), acc);
        return Vector512.FusedMultiplyAdd(Vector512.Load(q + 48), Vector512.Load(k + 48), acc);
    }

    /// <summary>
    /// o_h = Σ_blocks exp(m_block,h − m_h) · o_block,h / Σ_blocks exp(m_block,h − m_h) · sum_block,h, m_h the largest
    /// block maximum; a head whose keys are all masked gets zeros.
    /// </summary>
    private static void MergeBlocks(ReadOnlySpan<float> partials, int blocks, int heads, int d, Span<float> output)
    {
        int width = heads * d, slot = width + (2 * heads);
        for (int h = 0; h < heads; h++)
        {
            float max = float.NegativeInfinity;
            for (int c = 0; c < blocks; c++)
            {
                max = MathF.Max(max, partials[(c * slot) + width + h]);
            }

            var o = output.Slice(h * d, d);
            o.Clear();
            if (float.IsNegativeInfinity(max))
            {
                continue;
            }

            float total = 0f;
            for (int c = 0; c < blocks; c++)
            {
                float m = partials[(c * slot) + width + h];
                if (!float.IsNegativeInfinity(m))
                {
                    float weight = MathF.Exp(m - max);
                    total += weight * partials[(c * slot) + width + heads + h];
                    TensorPrimitives.MultiplyAdd(partials.Slice((c * slot) + (h * d), d), weight, o, o);
                }
            }

            TensorPrimitives.Multiply(o, 1f / total, o);
        }
    }

    /// <summary>How many K rows ahead a decoding block asks for into L1.</summary>
    private const int KeyPrefetchRows = 2;

    /// <summary>How many K rows ahead a decoding block asks for into L2 (36 KiB for GPT-2's 3 KiB rows).</summary>
    private const int KeyPrefetchFarRows = 12;

    /// <summary>
    /// The software prefetches for key row <paramref name="j"/> of a decoding block (a block is too short a stream for
    /// the hardware prefetchers to ramp up on): K <see cref="KeyPrefetchRows"/> rows ahead into L1 and
    /// <see cref="KeyPrefetchFarRows"/> rows ahead into L2 (at j = 0, every row up to there), and row j of V into L2,
    /// where the V pass after the block's scores finds it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void PrefetchDecodeRow(in AttentionShape shape, float* k, float* v, int j, int count)
    {
        int width = shape.Width;
        if (j == 0)
        {
            for (int r = 0; r < Math.Min(KeyPrefetchRows, count); r++)
            {
                Prefetch(k + ((long)r * shape.KStride), width);
            }

            for (int r = KeyPrefetchRows; r < Math.Min(KeyPrefetchFarRows, count); r++)
            {
                PrefetchL2(k + ((long)r * shape.KStride), width);
            }
        }

        if (j + KeyPrefetchRows < count)
        {
            Prefetch(k + ((long)(j + KeyPrefetchRows) * shape.KStride), width);
        }

        if (j + KeyPrefetchFarRows < count)
        {
            PrefetchL2(k + ((long)(j + KeyPrefetchFarRows) * shape.KStride), width);
        }

        PrefetchL2(v + ((long)j * shape.VStride), width);
    }

    /// <summary>Software prefetch into L2 (PREFETCHT1) of the cache lines of <paramref name="count"/> floats (x86; elsewhere nothing).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void PrefetchL2(float* p, int count)
    {
        if (Sse.IsSupported)
        {
            for (int i = 0; i < count; i += 16)
            {
                Sse.Prefetch1(p + i);
            }
        }
    }

    /// <summary>Software prefetch of the cache lines of <paramref name="count"/> floats (x86; elsewhere nothing).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Prefetch(float* p, int count)
    {
        if (Sse.IsSupported)
        {
            for (int i = 0; i < count; i += 16)
            {
                Sse.Prefetch0(p + i);
            }
        }
    }

    /// <summary>
    /// Σ q[i]·k[i] over a short span (one head's D values), inlined: a decoding step makes tens of thousands of them per
    /// GPT-2 token, where a library call's fixed cost was a visible share of the step. Vector512 → 256 → 128 → scalar.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ShortDot(ReadOnlySpan<float> q, ReadOnlySpan<float> k)
    {
        int d = q.Length, i = 0;
        ref float qr = ref MemoryMarshal.GetReference(q);
        ref float kr = ref MemoryMarshal.GetReference(k);
        float s = 0f;
        if (Vector512.IsHardwareAccelerated && d >= 16)
        {
            var acc = Vector512<float>.Zero;
            for (; i <= d - 16; i += 16)
            {
                acc = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref qr, (nuint)i), Vector512.LoadUnsafe(ref kr, (nuint)i), acc);
            }

            var half = acc.GetLower() + acc.GetUpper();
            s = Vector128.Sum(half.GetLower() + half.GetUpper());
        }
        else if (Vector256.IsHardwareAccelerated && d >= 8)
        {
            var acc = Vector256<float>.Zero;
            for (; i <= d - 8; i += 8)
            {
                acc = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref qr, (nuint)i), Vector256.LoadUnsafe(ref kr, (nuint)i), acc);
            }

            s = Vector128.Sum(acc.GetLower() + acc.GetUpper());
        }
        else if (Vector128.IsHardwareAccelerated && d >= 4)
        {
            var acc = Vector128<float>.Zero;
            for (; i <= d - 4; i += 4)
            {
                acc = Vector128.FusedMultiplyAdd(Vector128.LoadUnsafe(ref qr, (nuint)i), Vector128.LoadUnsafe(ref kr, (nuint)i), acc);
            }

            s = Vector128.Sum(acc);
        }

        for (; i < d; i++)
        {
            s += Unsafe.Add(ref qr, i) * Unsafe.Add(ref kr, i);
        }

        return s;
    }

    /// <summary>
    /// scores [visible] = scale · q [D] · K[j]ᵀ for the keys j &lt; <paramref name="visible"/> at row stride
    /// <paramref name="kStride"/>: one inlined short dot product per key (<see cref="ShortDot"/>).
    /// </summary>
    internal static void KeyScores(ReadOnlySpan<float> q, ReadOnlySpan<float> k, int kStride, int visible, Span<float> scores, float scale)
    {
        int d = q.Length;
        Debug.Assert(scores.Length >= visible && (visible == 0 || k.Length >= ((long)(visible - 1) * kStride) + d));
        for (int j = 0; j < visible; j++)
        {
            scores[j] = scale * ShortDot(q, k.Slice(j * kStride, d));
        }
    }

    /// <summary>
    /// c [n] = alpha · a [m] · B [m, n] (B with row stride <paramref name="ldb"/>): each output vector block stays in a
    /// register while a[t] is broadcast and the B rows stream through, four (then two, then one) blocks at a time so
    /// independent FMA chains hide the FMA latency; Vector512 → 256 → 128 → scalar over n.
    /// </summary>
    internal static void VecMat(ReadOnlySpan<float> a, ReadOnlySpan<float> bm, int ldb, int n, Span<float> c, float alpha)
    {
        int m = a.Length;
        Debug.Assert(c.Length >= n && (m == 0 || bm.Length >= ((m - 1) * ldb) + n));
        ref float ar = ref MemoryMarshal.GetReference(a);
        ref float br = ref MemoryMarshal.GetReference(bm);
        ref float cr = ref MemoryMarshal.GetReference(c);
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            // Four output blocks at once: four independent FMA chains hide the FMA latency and share each broadcast.
            for (; j <= n - 64; j += 64)
            {
                var acc0 = Vector512<float>.Zero;
                var acc1 = Vector512<float>.Zero;
                var acc2 = Vector512<float>.Zero;
                var acc3 = Vector512<float>.Zero;
                for (int t = 0; t < m; t++)
                {
                    var at = Vector512.Create(Unsafe.Add(ref ar, t));
                    ref float bt = ref Unsafe.Add(ref br, (t * ldb) + j);
                    acc0 = Vector512.FusedMultiplyAdd(at, Vector512.LoadUnsafe(ref bt), acc0);
                    acc1 = Vector512.FusedMultiplyAdd(at, Vector512.LoadUnsafe(ref bt, 16), acc1);
                    acc2 = Vector512.FusedMultiplyAdd(at, Vector512.LoadUnsafe(ref bt, 32), acc2);
                    acc3 = Vector512.FusedMultiplyAdd(at, Vector512.LoadUnsafe(ref bt, 48), acc3);
                }

                (acc0 * alpha).StoreUnsafe(ref cr, (nuint)j);
                (acc1 * alpha).StoreUnsafe(ref cr, (nuint)(j + 16));
                (acc2 * alpha).StoreUnsafe(ref cr, (nuint)(j + 32));
                (acc3 * alpha).StoreUnsafe(ref cr, (nuint)(j + 48));
            }

            for (; j <= n - 32; j += 32)
            {
                var acc0 = Vector512<float>.Zero;
                var acc1 = Vector512<float>.Zero;
                for (int t = 0; t < m; t++)
                {
                    var at = Vector512.Create(Unsafe.Add(ref ar, t));
                    ref float bt = ref Unsafe.Add(ref br, (t * ldb) + j);
                    acc0 = Vector512.FusedMultiplyAdd(at, Vector512.LoadUnsafe(ref bt), acc0);
                    acc1 = Vector512.FusedMultiplyAdd(at, Vector512.LoadUnsafe(ref bt, 16), acc1);
                }

                (acc0 * alpha).StoreUnsafe(ref cr, (nuint)j);
                (acc1 * alpha).StoreUnsafe(ref cr, (nuint)(j + 16));
            }

            for (; j <= n - 16; j += 16)
            {
                var acc = Vector512<float>.Zero;
                for (int t = 0; t < m; t++)
                {
                    acc = Vector512.FusedMultiplyAdd(Vector512.Create(Unsafe.Add(ref ar, t)), Vector512.LoadUnsafe(ref br, (nuint)((t * ldb) + j)), acc);
                }

                (acc * alpha).StoreUnsafe(ref cr, (nuint)j);
            }
        }

        if (Vector256.IsHardwareAccelerated)
        {
            for (; j <= n - 32; j += 32)
            {
                var acc0 = Vector256<float>.Zero;
                var acc1 = Vector256<float>.Zero;
                var acc2 = Vector256<float>.Zero;
                var acc3 = Vector256<float>.Zero;
                for (int t = 0; t < m; t++)
                {
                    var at = Vector256.Create(Unsafe.Add(ref ar, t));
                    ref float bt = ref Unsafe.Add(ref br, (t * ldb) + j);
                    acc0 = Vector256.FusedMultiplyAdd(at, Vector256.LoadUnsafe(ref bt), acc0);
                    acc1 = Vector256.FusedMultiplyAdd(at, Vector256.LoadUnsafe(ref bt, 8), acc1);
                    acc2 = Vector256.FusedMultiplyAdd(at, Vector256.LoadUnsafe(ref bt, 16), acc2);
                    acc3 = Vector256.FusedMultiplyAdd(at, Vector256.LoadUnsafe(ref bt, 24), acc3);
                }

                (acc0 * alpha).StoreUnsafe(ref cr, (nuint)j);
                (acc1 * alpha).StoreUnsafe(ref cr, (nuint)(j + 8));
                (acc2 * alpha).StoreUnsafe(ref cr, (nuint)(j + 16));
                (acc3 * alpha).StoreUnsafe(ref cr, (nuint)(j + 24));
            }

            for (; j <= n - 8; j += 8)
            {
                var acc = Vector256<float>.Zero;
                for (int t = 0; t < m; t++)
                {
                    acc = Vector256.FusedMultiplyAdd(Vector256.Create(Unsafe.Add(ref ar, t)), Vector256.LoadUnsafe(ref br, (nuint)((t * ldb) + j)), acc);
                }

                (acc * alpha).StoreUnsafe(ref cr, (nuint)j);
            }
        }

        if (Vector128.IsHardwareAccelerated)
        {
            for (; j <= n - 4; j += 4)
            {
                var acc = Vector128<float>.Zero;
                for (int t = 0; t < m; t++)
                {
                    acc = Vector128.FusedMultiplyAdd(Vector128.Create(Unsafe.Add(ref ar, t)), Vector128.LoadUnsafe(ref br, (nuint)((t * ldb) + j)), acc);
                }

                (acc * alpha).StoreUnsafe(ref cr, (nuint)j);
            }
        }

        for (; j < n; j++)
        {
            float acc = 0f;
            for (int t = 0; t < m; t++) acc = MathF.FusedMultiplyAdd(Unsafe.Add(ref ar, t), Unsafe.Add(ref br, (t * ldb) + j), acc);
            Unsafe.Add(ref cr, j) = acc * alpha;
        }
    }

    /// <summary>Naive reference of <see cref="Forward"/>: per (b, h, i) scores, masked softmax and weighted sum in double.</summary>
    internal static void ForwardReference(
        AttentionShape shape, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> output,
        bool causal, ReadOnlySpan<float> keyPaddingMask, float scale, Span<float> probabilities)
    {
        int tq = shape.QueryLength, tk = shape.KeyLength, d = shape.HeadDim;
        var p = new double[tk];
        for (int b = 0; b < shape.Batch; b++)
        {
            for (int h = 0; h < shape.Heads; h++)
            {
                for (int i = 0; i < tq; i++)
                {
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < tk; j++)
                    {
                        bool keep = (!causal || j <= i + tk - tq) && (keyPaddingMask.IsEmpty || keyPaddingMask[(b * tk) + j] != 0f);
                        double sc = double.NegativeInfinity;
                        if (keep)
                        {
                            sc = 0;
                            for (int e = 0; e < d; e++)
                            {
                                sc += (double)q[((b * tq) + i) * shape.QStride + (h * d) + e] * k[((b * tk) + j) * shape.KStride + (h * d) + e];
                            }

                            sc *= scale;
                        }

                        p[j] = sc;
                        max = Math.Max(max, sc);
                    }

                    double sum = 0;
                    for (int j = 0; j < tk; j++)
                    {
                        p[j] = double.IsNegativeInfinity(max) || double.IsNegativeInfinity(p[j]) ? 0 : Math.Exp(p[j] - max);
                        sum += p[j];
                    }

                    for (int j = 0; j < tk; j++)
                    {
                        if (sum > 0) p[j] /= sum;
                        if (!probabilities.IsEmpty) probabilities[((((b * shape.Heads) + h) * tq) + i) * tk + j] = (float)p[j];
                    }

                    for (int e = 0; e < d; e++)
                    {
                        double o = 0;
                        for (int j = 0; j < tk; j++) o += p[j] * v[((b * tk) + j) * shape.VStride + (h * d) + e];
                        output[((b * tq) + i) * shape.OStride + (h * d) + e] = (float)o;
                    }
                }
            }
        }
    }

    private static void Validate(
        string op, AttentionShape shape, int qLength, int kLength, int vLength, int oLength, string oName,
        string qName = "q", string kName = "k", string vName = "v")
    {
        if (shape.Batch < 0 || shape.Heads < 0 || shape.QueryLength < 0 || shape.KeyLength < 0 || shape.HeadDim < 0)
        {
            KernelChecks.Invalid(op, nameof(shape), $"sizes must be non-negative, got {shape}.");
        }

        if (shape.QStride < shape.Width || shape.KStride < shape.Width || shape.VStride < shape.Width || shape.OStride < shape.Width)
        {
            KernelChecks.Invalid(
                op, nameof(shape), $"every row stride must be at least H·D = {shape.Width} (or 0 for that default), got {shape}.");
        }

        const string Dims = "[B={0}, H={1}, T={2}, D={3}] with row stride {4}";
        int bb = shape.Batch, hh = shape.Heads, d = shape.HeadDim, tq = shape.QueryLength, tk = shape.KeyLength;
        KernelChecks.AtLeast(op, qName, qLength, Needed(shape, tq, shape.QStride), Dims, bb, hh, tq, d, shape.QStride);
        KernelChecks.AtLeast(op, kName, kLength, Needed(shape, tk, shape.KStride), Dims, bb, hh, tk, d, shape.KStride);
        KernelChecks.AtLeast(op, vName, vLength, Needed(shape, tk, shape.VStride), Dims, bb, hh, tk, d, shape.VStride);
        KernelChecks.AtLeast(op, oName, oLength, Needed(shape, tq, shape.OStride), Dims, bb, hh, tq, d, shape.OStride);
    }

    private static long Needed(AttentionShape shape, int tokens, int stride)
    {
        long rows = (long)shape.Batch * tokens;
        return rows == 0 || shape.Width == 0 ? 0 : ((rows - 1) * stride) + shape.Width;
    }

    private static void ClearRows(Span<float> x, long offset, int rows, int stride, int width)
    {
        for (int r = 0; r < rows; r++) x.Slice((offset + ((long)r * stride)).ToInt(), width).Clear();
    }

    private static int ToInt(this long value) => checked((int)value);
}
