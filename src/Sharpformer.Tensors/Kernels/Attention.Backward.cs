using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Kernels;

public static partial class Attention
{
    // Tile of the blocked backward: BackwardQueryBlock queries × BackwardKeyBlock keys. Larger tiles make the five GEMM
    // products more efficient than the causal work they waste (a diagonal tile is computed whole and half of it masked):
    // on the AMD EPYC dev machine, key blocks of 64 beat 32 and 16 even at GPT-2's causal T = 64 (interleaved medians,
    // AttentionTrainingHarness), and 128 queries let a BERT head (T = 128) run as one tile per key block.
    private const int BackwardKeyBlock = 64;
    private const int BackwardQueryBlock = 128;

    /// <summary>
    /// Backward of <see cref="Forward"/> from the saved log-sum-exp (FlashAttention-2): with dO [B, H, Tq, D] and the
    /// forward's O and lse, per tile of queries × a block of keys it recomputes P = exp(scale · Q·Kᵀ − lse) (masked
    /// entries 0), then dV += Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − D) with D_i = dO_i·O_i, dQ += scale · dS·K and
    /// dK += scale · dSᵀ·Q; heads run in parallel. On the AVX2 / AVX-512 tiers the products run on micro-kernels directly
    /// (Attention.BackwardTiles.cs: AVX2 packs every operand once per head, AVX-512 reads most of them in place); no more
    /// than [Tq, NR] scores (and as many dS) exist per worker. Below them the tile products go through the generic GEMM.
    /// dQ, dK and dV may be views of one fused gradient buffer (each is written only inside its own view). A query that
    /// saw no key (lse = −∞) and a key no query saw get zero gradients.
    /// </summary>
    /// <param name="shape">The forward's sizes and strides; dQ, dK, dV use the Q, K, V strides, O and dO the output stride.</param>
    /// <param name="q">The forward queries.</param>
    /// <param name="k">The forward keys.</param>
    /// <param name="v">The forward values.</param>
    /// <param name="output">The forward output O.</param>
    /// <param name="logSumExp">The forward's log-sum-exp per query [B, H, Tq] (see <see cref="Forward"/>).</param>
    /// <param name="dOutput">Gradient with respect to the output view.</param>
    /// <param name="dq">Gradient with respect to Q (its view's elements are overwritten).</param>
    /// <param name="dk">Gradient with respect to K (overwritten).</param>
    /// <param name="dv">Gradient with respect to V (overwritten).</param>
    /// <param name="causal">The forward's causal flag.</param>
    /// <param name="keyPaddingMask">The forward's key padding mask: empty, or [B, Tk] with 1 = attend, 0 = padding.</param>
    /// <param name="scale">The forward's score scale; null means 1/√D.</param>
    /// <exception cref="ArgumentException">A size or stride is invalid or a span is too short.</exception>
    public static void Backward(
        AttentionShape shape, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<float> output, ReadOnlySpan<float> logSumExp, ReadOnlySpan<float> dOutput,
        Span<float> dq, Span<float> dk, Span<float> dv,
        bool causal = false, ReadOnlySpan<float> keyPaddingMask = default, float? scale = null)
    {
        const string Op = "Attention.Backward";
        Validate(Op, shape, q.Length, k.Length, v.Length, output.Length, nameof(output));
        Validate(Op, shape, dq.Length, dk.Length, dv.Length, dOutput.Length, nameof(dOutput), "dq", "dk", "dv");
        int b = shape.Batch, h = shape.Heads, tq = shape.QueryLength, tk = shape.KeyLength;
        KernelChecks.AtLeast(Op, nameof(logSumExp), logSumExp.Length, (long)b * h * tq, "[B={0}, H={1}, Tq={2}]", b, h, tq);
        KernelChecks.Optional(Op, nameof(keyPaddingMask), keyPaddingMask.Length, (long)b * tk, "[B={0}, Tk={1}]", b, tk);
        BackwardCore(GemmDriver.BestIsa, shape, scale ?? ScaleFor(shape.HeadDim), q, k, v, output, logSumExp, dOutput, dq, dk, dv, causal, keyPaddingMask);
    }

    /// <summary>
    /// The blocked backward through the generic GEMM (the tile products pack their operands per call): the path below
    /// the AVX2 tier (Vector128 and scalar) and for empty sizes.
    /// </summary>
    private static unsafe void BackwardGeneric(
        AttentionShape shape, float s, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<float> output, ReadOnlySpan<float> logSumExp, ReadOnlySpan<float> dOutput,
        Span<float> dq, Span<float> dk, Span<float> dv, bool causal, ReadOnlySpan<float> keyPaddingMask)
    {
        int b = shape.Batch, h = shape.Heads, tq = shape.QueryLength, tk = shape.KeyLength;
        fixed (float* pq = q, pk = k, pv = v, po = output, pl = logSumExp, pdo = dOutput, pdq = dq, pdk = dk, pdv = dv, pm = keyPaddingMask)
        {
            nint aq = (nint)pq, ak = (nint)pk, av = (nint)pv, ao = (nint)po, al = (nint)pl, ado = (nint)pdo;
            nint adq = (nint)pdq, adk = (nint)pdk, adv = (nint)pdv, am = (nint)pm;
            int lq = q.Length, lk = k.Length, lv = v.Length, lo = output.Length, ll = logSumExp.Length, ldo = dOutput.Length;
            int ldq = dq.Length, ldk = dk.Length, ldv = dv.Length, lm = keyPaddingMask.Length;
            ParallelFor.For(b * h, 1, (start, end) =>
            {
                // Per worker: D [Tq], then the P and dP/dS tiles.
                int tile = BackwardQueryBlock * BackwardKeyBlock;
                float[] scratch = ArrayPool<float>.Shared.Rent(tq + (2 * tile));
                var mask = new ReadOnlySpan<float>((void*)am, lm);
                for (int bh = start; bh < end; bh++)
                {
                    HeadBackwardBlocked(
                        shape, bh, s, causal,
                        new ReadOnlySpan<float>((void*)aq, lq), new ReadOnlySpan<float>((void*)ak, lk), new ReadOnlySpan<float>((void*)av, lv),
                        new ReadOnlySpan<float>((void*)ao, lo), new ReadOnlySpan<float>((void*)al, ll).Slice(bh * tq, tq),
                        new ReadOnlySpan<float>((void*)ado, ldo),
                        KeyMaskRow(mask, bh / h, tk),
                        new Span<float>((void*)adq, ldq), new Span<float>((void*)adk, ldk), new Span<float>((void*)adv, ldv),
                        scratch.AsSpan(0, tq), scratch.AsSpan(tq, tile), scratch.AsSpan(tq + tile, tile));
                }

                ArrayPool<float>.Shared.Return(scratch);
            });
        }
    }

    /// <summary>
    /// One (b, h) of the blocked backward: D_i = dO_i·O_i once, then key blocks of <see cref="BackwardKeyBlock"/>, and
    /// inside each the query tiles from the first query that sees the block (causal). dK and dV of a block are written
    /// by its first tile and accumulated by the rest; dQ is cleared once and accumulated by every block.
    /// </summary>
    private static void HeadBackwardBlocked(
        AttentionShape shape, int bh, float scale, bool causal, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<float> output, ReadOnlySpan<float> lse, ReadOnlySpan<float> dOutput, ReadOnlySpan<float> keyMask,
        Span<float> dq, Span<float> dk, Span<float> dv, Span<float> rowDot, Span<float> pTile, Span<float> dsTile)
    {
        int b = bh / shape.Heads, h = bh % shape.Heads;
        int tq = shape.QueryLength, tk = shape.KeyLength, d = shape.HeadDim;
        int qs = shape.QStride, ks = shape.KStride, vs = shape.VStride, os = shape.OStride;
        long qOff = ((long)b * tq * qs) + ((long)h * d);
        long kOff = ((long)b * tk * ks) + ((long)h * d);
        long vOff = ((long)b * tk * vs) + ((long)h * d);
        long oOff = ((long)b * tq * os) + ((long)h * d);
        ClearRows(dq, qOff, tq, qs, d);
        if (tq == 0 || tk == 0 || d == 0)
        {
            ClearRows(dk, kOff, tk, ks, d);
            ClearRows(dv, vOff, tk, vs, d);
            return;
        }

        var qh = q[qOff.ToInt()..];
        var kh = k[kOff.ToInt()..];
        var vh = v[vOff.ToInt()..];
        var oh = output[oOff.ToInt()..];
        var dOh = dOutput[oOff.ToInt()..];
        var dqh = dq[qOff.ToInt()..];
        var dkh = dk[kOff.ToInt()..];
        var dvh = dv[vOff.ToInt()..];
        for (int i = 0; i < tq; i++)
        {
            rowDot[i] = TensorPrimitives.Dot(dOh.Slice(i * os, d), oh.Slice(i * os, d));
        }

        int shift = tk - tq; // causal: query i sees keys j ≤ i + shift
        for (int j0 = 0; j0 < tk; j0 += BackwardKeyBlock)
        {
            int nk = Math.Min(BackwardKeyBlock, tk - j0);
            int first = causal ? Math.Max(0, j0 - shift) : 0;
            if (first >= tq)
            {
                // No query sees these keys: their gradients are zero.
                ClearRows(dkh, (long)j0 * ks, nk, ks, d);
                ClearRows(dvh, (long)j0 * vs, nk, vs, d);
                continue;
            }

            for (int i0 = first; i0 < tq; i0 += BackwardQueryBlock)
            {
                int nq = Math.Min(BackwardQueryBlock, tq - i0);
                float accumulate = i0 == first ? 0f : 1f;
                var p = pTile[..(nq * nk)];
                var ds = dsTile[..(nq * nk)];

                // P [nq, nk] = exp(scale · Q_i·K_jᵀ − lse_i) on visible keys, 0 elsewhere.
                Product(false, true, nq, nk, d, scale, qh[(i0 * qs)..], qs, kh[(j0 * ks)..], ks, 0f, p, nk);
                for (int r = 0; r < nq; r++)
                {
                    int i = i0 + r;
                    var row = p.Slice(r * nk, nk);
                    float l = lse[i];
                    int visible = float.IsNegativeInfinity(l) ? 0 : (causal ? Math.Clamp(i + shift + 1 - j0, 0, nk) : nk);
                    Softmax.ExpSubtractSum(row[..visible], l, row[..visible]);
                    row[visible..].Clear();
                    if (!keyMask.IsEmpty)
                    {
                        for (int c = 0; c < visible; c++)
                        {
                            if (keyMask[j0 + c] == 0f) row[c] = 0f;
                        }
                    }
                }

                // dP [nq, nk] = dO_i·V_jᵀ, then dS = P ⊙ (dP − D_i) in place.
                Product(false, true, nq, nk, d, 1f, dOh[(i0 * os)..], os, vh[(j0 * vs)..], vs, 0f, ds, nk);
                for (int r = 0; r < nq; r++)
                {
                    ScoreGradient(p.Slice(r * nk, nk), ds.Slice(r * nk, nk), rowDot[i0 + r]);
                }

                // dV_j (+)= Pᵀ·dO_i;  dK_j (+)= scale · dSᵀ·Q_i;  dQ_i += scale · dS·K_j.
                Product(true, false, nk, d, nq, 1f, p, nk, dOh[(i0 * os)..], os, accumulate, dvh[(j0 * vs)..], vs);
                Product(true, false, nk, d, nq, scale, ds, nk, qh[(i0 * qs)..], qs, accumulate, dkh[(j0 * ks)..], ks);
                Product(false, false, nq, d, nk, scale, ds, nk, kh[(j0 * ks)..], ks, 1f, dqh[(i0 * qs)..], qs);
            }
        }
    }

    /// <summary>dS = P ⊙ (dP − D) over one row, in place in <paramref name="ds"/> (which holds dP on entry).</summary>
    private static void ScoreGradient(ReadOnlySpan<float> p, Span<float> ds, float rowDot)
    {
        int n = ds.Length, j = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var dot = new Vector<float>(rowDot);
            for (; j <= n - Vector<float>.Count; j += Vector<float>.Count)
            {
                var x = (new Vector<float>(ds[j..]) - dot) * new Vector<float>(p[j..]);
                x.CopyTo(ds[j..]);
            }
        }

        for (; j < n; j++)
        {
            ds[j] = (ds[j] - rowDot) * p[j];
        }
    }

    /// <summary>One tile product on this thread: the GEMM micro-kernels (or the scalar reference without SIMD).</summary>
    private static void Product(
        bool transA, bool transB, int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc) =>
        Gemm.SgemmCore(GemmDriver.BestIsa, 1, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, default);

    /// <summary>
    /// Naive reference of both backward kernels: per (b, h) the masked probabilities in double from Q and K, then
    /// dV = Pᵀ·dO, dS = P ⊙ (dO·Vᵀ − rowsum(P ⊙ dO·Vᵀ)), dQ = scale · dS·K, dK = scale · dSᵀ·Q, all in double, written
    /// through the same strides as the kernels.
    /// </summary>
    internal static void BackwardReference(
        AttentionShape shape, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> dOutput,
        Span<float> dq, Span<float> dk, Span<float> dv, bool causal, ReadOnlySpan<float> keyPaddingMask, float scale)
    {
        int tq = shape.QueryLength, tk = shape.KeyLength, d = shape.HeadDim;
        for (int b = 0; b < shape.Batch; b++)
        {
            for (int h = 0; h < shape.Heads; h++)
            {
                var p = new double[tq, tk];
                var dqAcc = new double[tq, d];
                var dkAcc = new double[tk, d];
                var dvAcc = new double[tk, d];
                int Qi(int i, int e) => (((b * tq) + i) * shape.QStride) + (h * d) + e;
                int Ki(int j, int e) => (((b * tk) + j) * shape.KStride) + (h * d) + e;
                int Vi(int j, int e) => (((b * tk) + j) * shape.VStride) + (h * d) + e;
                int Oi(int i, int e) => (((b * tq) + i) * shape.OStride) + (h * d) + e;
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
                            for (int e = 0; e < d; e++) sc += (double)q[Qi(i, e)] * k[Ki(j, e)];
                            sc *= scale;
                        }

                        p[i, j] = sc;
                        max = Math.Max(max, sc);
                    }

                    double sum = 0;
                    for (int j = 0; j < tk; j++)
                    {
                        p[i, j] = double.IsNegativeInfinity(p[i, j]) ? 0 : Math.Exp(p[i, j] - max);
                        sum += p[i, j];
                    }

                    var dp = new double[tk];
                    double rowDot = 0;
                    for (int j = 0; j < tk; j++)
                    {
                        if (sum > 0) p[i, j] /= sum;
                        for (int e = 0; e < d; e++) dp[j] += (double)dOutput[Oi(i, e)] * v[Vi(j, e)];
                        rowDot += p[i, j] * dp[j];
                    }

                    for (int j = 0; j < tk; j++)
                    {
                        double ds = scale * p[i, j] * (dp[j] - rowDot);
                        for (int e = 0; e < d; e++)
                        {
                            dvAcc[j, e] += p[i, j] * dOutput[Oi(i, e)];
                            dqAcc[i, e] += ds * k[Ki(j, e)];
                            dkAcc[j, e] += ds * q[Qi(i, e)];
                        }
                    }
                }

                for (int e = 0; e < d; e++)
                {
                    for (int i = 0; i < tq; i++) dq[Qi(i, e)] = (float)dqAcc[i, e];
                    for (int j = 0; j < tk; j++)
                    {
                        dk[Ki(j, e)] = (float)dkAcc[j, e];
                        dv[Vi(j, e)] = (float)dvAcc[j, e];
                    }
                }
            }
        }
    }
}
