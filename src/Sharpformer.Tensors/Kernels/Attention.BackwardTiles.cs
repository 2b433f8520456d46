using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Kernels;

public static partial class Attention
{
    /// <summary>
    /// The blocked backward on the GEMM micro-kernels directly (AVX2 / AVX-512 tiers), every operand packed once per
    /// (b, h) instead of once per tile product. Per head: Q and dO as A panels (queries × D) for the scores and dP, Kᵀ and
    /// Vᵀ as B panels (D × keys), Qᵀ and dOᵀ as A panels (D × queries) for dKᵀ and dVᵀ, K rows as B panels for dQ. Then per
    /// panel of NR keys and tile of MR queries: S = scale · Q·Kᵀ and dP = dO·Vᵀ straight into [query][NR] buffers, one
    /// pass P = exp(S − lse) (masked to 0) and dS = P ⊙ (dP − D_i), dQ += scale · dS·K (dS re-packed, one [NR, MR] panel);
    /// after the panel's last query tile, dVᵀ = dOᵀ·P and dKᵀ = scale · Qᵀ·dS over all its queries at once (the P and dS
    /// buffers are the packed B panels of those products). dKᵀ and dVᵀ [D, Tk] are transposed into dK and dV at the end
    /// (measured ahead of writing dK, dV rows directly from re-packed Pᵀ, dSᵀ panels: 6.9 against 7.6 ms at BERT-base's
    /// shape, 1 thread), except for a causal head with Tk ≤ 2·D, which writes them directly, MR keys at a time over only
    /// the queries that see them (see Head). Under a causal mask a (query tile, key panel) pair no query of which sees a
    /// key is skipped, and a tile's dQ product stops at the last key its last query sees.
    /// </summary>
    private sealed unsafe class BackwardTilesJob(
        AttentionShape shape, float scale, bool causal, float* q, float* k, float* v, float* output, float* lse, float* dOutput,
        float* mask, float* dq, float* dk, float* dv)
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run<TKernel>(int start, int end)
            where TKernel : struct, IGemmKernel
        {
            int mr = TKernel.MR, nr = TKernel.NR;
            int tq = shape.QueryLength, tk = shape.KeyLength, d = shape.HeadDim;
            int qTiles = (tq + mr - 1) / mr, keyPanels = (tk + nr - 1) / nr, dPanels = (d + mr - 1) / mr, dnPanels = (d + nr - 1) / nr;
            int ldT = keyPanels * nr;

            // Scratch, each part 64-byte aligned (16 floats of slack per part).
            long qAFloats = (long)qTiles * d * mr, kBFloats = (long)keyPanels * d * nr, qTFloats = Math.Max((long)dPanels * tq * mr, (long)dnPanels * tq * nr);
            long kRowFloats = (long)keyPanels * dnPanels * nr * nr, tileFloats = (long)qTiles * mr * nr, tFloats = Math.Max((long)dPanels * mr * ldT, (long)tq * mr);
            long total = (2 * qAFloats) + (2 * kBFloats) + (2 * qTFloats) + kRowFloats + (2 * tileFloats) + (nr * mr) + (2 * tFloats)
                + ldT + tq + (mr * nr) + (16 * 16);
            float[] scratch = ArrayPool<float>.Shared.Rent(checked((int)total));
            try
            {
                fixed (float* raw = scratch)
                {
                    float* qA = GemmDriver.Align64(raw);
                    float* doA = GemmDriver.Align64(qA + qAFloats);
                    float* kB = GemmDriver.Align64(doA + qAFloats);
                    float* vB = GemmDriver.Align64(kB + kBFloats);
                    float* qT = GemmDriver.Align64(vB + kBFloats);
                    float* doT = GemmDriver.Align64(qT + qTFloats);
                    float* kRowB = GemmDriver.Align64(doT + qTFloats);
                    float* p = GemmDriver.Align64(kRowB + kRowFloats);
                    float* ds = GemmDriver.Align64(p + tileFloats);
                    float* dsA = GemmDriver.Align64(ds + tileFloats);
                    float* dvT = GemmDriver.Align64(dsA + (nr * mr));
                    float* dkT = GemmDriver.Align64(dvT + tFloats);
                    float* keep = GemmDriver.Align64(dkT + tFloats);
                    float* rowDot = GemmDriver.Align64(keep + ldT);
                    float* edge = GemmDriver.Align64(rowDot + tq);
                    var buffers = new Buffers
                    {
                        QA = qA,
                        DoA = doA,
                        KB = kB,
                        VB = vB,
                        QT = qT,
                        DoT = doT,
                        KRowB = kRowB,
                        P = p,
                        Ds = ds,
                        DsA = dsA,
                        DvT = dvT,
                        DkT = dkT,
                        Keep = keep,
                        RowDot = rowDot,
                        Edge = edge,
                    };
                    for (int bh = start; bh < end; bh++)
                    {
                        Head<TKernel>(bh, buffers, bh + 1 < end ? bh + 1 : -1);
                    }
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(scratch);
            }
        }

        /// <summary>One worker's packed operands and tiles (see <see cref="Run{TKernel}"/>).</summary>
        private readonly struct Buffers
        {
            public float* QA { get; init; }

            public float* DoA { get; init; }

            public float* KB { get; init; }

            public float* VB { get; init; }

            public float* QT { get; init; }

            public float* DoT { get; init; }

            public float* KRowB { get; init; }

            public float* P { get; init; }

            public float* Ds { get; init; }

            public float* DsA { get; init; }

            public float* DvT { get; init; }

            public float* DkT { get; init; }

            public float* Keep { get; init; }

            public float* RowDot { get; init; }

            public float* Edge { get; init; }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Head<TKernel>(int bh, Buffers s, int nextBh)
            where TKernel : struct, IGemmKernel
        {
            int mr = TKernel.MR, nr = TKernel.NR;
            int b = bh / shape.Heads, h = bh % shape.Heads;
            int tq = shape.QueryLength, tk = shape.KeyLength, d = shape.HeadDim;
            int qs = shape.QStride, ks = shape.KStride, vs = shape.VStride, os = shape.OStride;
            int qTiles = (tq + mr - 1) / mr, keyPanels = (tk + nr - 1) / nr, dPanels = (d + mr - 1) / mr, dnPanels = (d + nr - 1) / nr;
            int ldT = keyPanels * nr;
            float* qh = q + ((long)b * tq * qs) + ((long)h * d);
            float* kh = k + ((long)b * tk * ks) + ((long)h * d);
            float* vh = v + ((long)b * tk * vs) + ((long)h * d);
            float* oh = output + ((long)b * tq * os) + ((long)h * d);
            float* doh = dOutput + ((long)b * tq * os) + ((long)h * d);
            float* dqh = dq + ((long)b * tq * qs) + ((long)h * d);
            float* dkh = dk + ((long)b * tk * ks) + ((long)h * d);
            float* dvh = dv + ((long)b * tk * vs) + ((long)h * d);
            float* lseh = lse + ((long)bh * tq);

            // D_i = dO_i·O_i; the keys kept by the padding mask (1, or 0 for padding and for the panel's tail past Tk).
            for (int i = 0; i < tq; i++)
            {
                s.RowDot[i] = ShortDot(new ReadOnlySpan<float>(doh + ((long)i * os), d), new ReadOnlySpan<float>(oh + ((long)i * os), d));
            }

            float* maskRow = mask == null ? null : mask + ((long)b * tk);
            for (int j = 0; j < ldT; j++)
            {
                s.Keep[j] = j < tk && (maskRow == null || maskRow[j] != 0f) ? 1f : 0f;
            }

            // Every operand packed once for all the head's tile products.
            for (int t = 0; t < qTiles; t++)
            {
                int rows = Math.Min(mr, tq - (t * mr));
                GemmDriver.PackAPanel(false, qh, qs, t * mr, rows, d, d, mr, 0, 0, s.QA + ((long)t * d * mr));
                GemmDriver.PackAPanel(false, doh, os, t * mr, rows, d, d, mr, 0, 0, s.DoA + ((long)t * d * mr));
            }

            for (int kp = 0; kp < keyPanels; kp++)
            {
                int j0 = kp * nr, nk = Math.Min(nr, tk - j0);
                GemmDriver.PackBBlock(true, kh, ks, j0, nk, 0, d, nr, s.KB + ((long)kp * d * nr));
                GemmDriver.PackBBlock(true, vh, vs, j0, nk, 0, d, nr, s.VB + ((long)kp * d * nr));
                for (int dn = 0; dn < dnPanels; dn++)
                {
                    GemmDriver.PackBBlock(false, kh, ks, dn * nr, Math.Min(nr, d - (dn * nr)), j0, nk, nr, s.KRowB + ((long)((kp * dnPanels) + dn) * nr * nr));
                }
            }

            // A causal head of few keys (GPT-2's T = 64) writes dK and dV rows straight from Pᵀ and dSᵀ panels of MR keys,
            // each over the queries that see its first key: fewer multiply-adds than the NR-key panels of dKᵀ and dVᵀ, and
            // no transposes at the end, for more packing (MR-wide copies of P and dS columns: Tk/D times the Qᵀ and dOᵀ
            // copies). Measured on the AMD EPYC dev machine, 2 threads, against dKᵀ and dVᵀ: 0.90 at T = 64 causal, 0.956
            // at T = 128 causal, 1.016 at T = 256 causal, 1.007 at T = 64 and 1.029 at T = 128 (BERT-base) unmasked.
            bool direct = causal && tk <= 2 * d;
            if (direct)
            {
                // Q and dO rows as B panels [query][NR of D] for dK = scale · dSᵀ·Q and dV = Pᵀ·dO.
                for (int dn = 0; dn < dnPanels; dn++)
                {
                    int cols = Math.Min(nr, d - (dn * nr));
                    GemmDriver.PackBBlock(false, qh, qs, dn * nr, cols, 0, tq, nr, s.QT + ((long)dn * tq * nr));
                    GemmDriver.PackBBlock(false, doh, os, dn * nr, cols, 0, tq, nr, s.DoT + ((long)dn * tq * nr));
                }
            }
            else
            {
                for (int dp = 0; dp < dPanels; dp++)
                {
                    int cols = Math.Min(mr, d - (dp * mr));
                    CopyColumnPanel(qh, qs, tq, dp * mr, cols, mr, s.QT + ((long)dp * tq * mr));
                    CopyColumnPanel(doh, os, tq, dp * mr, cols, mr, s.DoT + ((long)dp * tq * mr));
                }
            }

            int shift = tk - tq; // causal: query i sees keys j ≤ i + shift

            // The next head's rows are asked for a few at a time between this head's tile products (see HeadPrefetch).
            var prefetch = default(HeadPrefetch);
            if (nextBh >= 0) StartPrefetch(nextBh, ref prefetch);
            int prefetchChunk = (prefetch.Total + (keyPanels * qTiles) - 1) / (keyPanels * qTiles);

            // The first key panel's tiles cover every query unless a causal Tq > Tk hides it from the first ones: then
            // they write dQ (β = 0) and nothing needs clearing first.
            bool firstPanelWritesDq = !causal || shift >= 0;
            if (!firstPanelWritesDq) ClearRows(dqh, qs, tq, d);
            for (int kp = 0; kp < keyPanels; kp++)
            {
                int j0 = kp * nr, nk = Math.Min(nr, tk - j0);
                int first = causal ? Math.Max(0, j0 - shift) : 0;
                if (first >= tq && direct)
                {
                    ClearRows(dvh + ((long)j0 * vs), vs, nk, d);
                    ClearRows(dkh + ((long)j0 * ks), ks, nk, d);
                    continue;
                }

                if (first >= tq)
                {
                    // No query sees these keys: their columns of dKᵀ and dVᵀ are zero.
                    for (int e = 0; e < d; e++)
                    {
                        new Span<float>(s.DvT + ((long)e * ldT) + j0, nk).Clear();
                        new Span<float>(s.DkT + ((long)e * ldT) + j0, nk).Clear();
                    }

                    continue;
                }

                int rowStart = first / mr * mr;
                for (int i0 = rowStart; i0 < tq; i0 += mr)
                {
                    int rows = Math.Min(mr, tq - i0);
                    float* pTile = s.P + ((long)i0 * nr);
                    float* dsTile = s.Ds + ((long)i0 * nr);

                    // S = scale · Q·Kᵀ and dP = dO·Vᵀ, [rows, NR] (columns past Tk read zero keys and are masked below).
                    TKernel.Tile(s.QA + ((long)(i0 / mr) * d * mr), s.KB + ((long)kp * d * nr), d, pTile, nr, rows, nr, scale, 0f, null, s.Edge, false);
                    TKernel.Tile(s.DoA + ((long)(i0 / mr) * d * mr), s.VB + ((long)kp * d * nr), d, dsTile, nr, rows, nr, 1f, 0f, null, s.Edge, false);
                    if (prefetch.Done < prefetch.Total) prefetch.Step(prefetchChunk, d);
                    for (int r = 0; r < rows; r++)
                    {
                        int i = i0 + r;
                        float l = lseh[i];
                        int visible = float.IsNegativeInfinity(l) ? 0 : (causal ? Math.Clamp(i + shift + 1 - j0, 0, nr) : nr);
                        ProbabilityAndScoreGradient(pTile + ((long)r * nr), dsTile + ((long)r * nr), s.Keep + j0, nr, visible, l, s.RowDot[i]);
                    }

                    // dQ_tile += scale · dS [rows, seen] · K [seen, D] over the keys of the panel the tile's last query sees
                    // (a causal diagonal panel: its later keys have dS = 0 for every row): dS re-packed as one A panel [seen][MR].
                    int seen = causal ? Math.Clamp(i0 + rows + shift - j0, 1, nk) : nk;
                    GemmDriver.PackAPanel(false, dsTile, nr, 0, rows, seen, seen, mr, 0, 0, s.DsA);
                    for (int dn = 0; dn < dnPanels; dn++)
                    {
                        int cols = Math.Min(nr, d - (dn * nr));
                        float beta = kp == 0 && firstPanelWritesDq ? 0f : 1f;
                        TKernel.Tile(s.DsA, s.KRowB + ((long)((kp * dnPanels) + dn) * nr * nr), seen, dqh + ((long)i0 * qs) + (dn * nr), qs, rows, cols, scale, beta, null, s.Edge, false);
                    }
                }

                if (direct)
                {
                    // Per tile of MR keys, over the queries from the first that sees its first key: dV = Pᵀ·dO and
                    // dK = scale · dSᵀ·Q straight into their rows, Pᵀ and dSᵀ packed as A panels [query][MR] from the
                    // panel's P and dS columns.
                    for (int jt = j0; jt < j0 + nk; jt += mr)
                    {
                        int keys = Math.Min(mr, j0 + nk - jt);
                        int firstQ = causal ? Math.Max(0, jt - shift) : 0;
                        if (firstQ >= tq)
                        {
                            ClearRows(dvh + ((long)jt * vs), vs, keys, d);
                            ClearRows(dkh + ((long)jt * ks), ks, keys, d);
                            continue;
                        }

                        int kcv = tq - firstQ;
                        CopyColumnPanel(s.P + ((long)firstQ * nr), nr, kcv, jt - j0, keys, mr, s.DvT);
                        CopyColumnPanel(s.Ds + ((long)firstQ * nr), nr, kcv, jt - j0, keys, mr, s.DkT);
                        for (int dn = 0; dn < dnPanels; dn++)
                        {
                            int cols = Math.Min(nr, d - (dn * nr));
                            long bOff = ((long)dn * tq * nr) + ((long)firstQ * nr);
                            TKernel.Tile(s.DvT, s.DoT + bOff, kcv, dvh + ((long)jt * vs) + (dn * nr), vs, keys, cols, 1f, 0f, null, s.Edge, false);
                            TKernel.Tile(s.DkT, s.QT + bOff, kcv, dkh + ((long)jt * ks) + (dn * nr), ks, keys, cols, scale, 0f, null, s.Edge, false);
                        }
                    }

                    continue;
                }

                // dVᵀ [D, nk] = dOᵀ·P and dKᵀ = scale · Qᵀ·dS over the queries from the first tile that sees the panel.
                int kq = tq - rowStart;
                for (int dp = 0; dp < dPanels; dp++)
                {
                    int rows = Math.Min(mr, d - (dp * mr));
                    long aOff = ((long)dp * tq * mr) + ((long)rowStart * mr);
                    TKernel.Tile(s.DoT + aOff, s.P + ((long)rowStart * nr), kq, s.DvT + ((long)dp * mr * ldT) + j0, ldT, rows, nk, 1f, 0f, null, s.Edge, false);
                    TKernel.Tile(s.QT + aOff, s.Ds + ((long)rowStart * nr), kq, s.DkT + ((long)dp * mr * ldT) + j0, ldT, rows, nk, scale, 0f, null, s.Edge, false);
                }
            }

            // Under a causal mask skipped tiles leave some rows unasked: ask for them now.
            if (prefetch.Done < prefetch.Total) prefetch.Step(prefetch.Total - prefetch.Done, d);
            if (direct) return;
            TransposeOut(s.DvT, ldT, d, tk, dvh, vs);
            TransposeOut(s.DkT, ldT, d, tk, dkh, ks);
        }

        /// <summary>Points <paramref name="cursor"/> at the first row of head <paramref name="bh"/>'s streams Q, O, dO, K, V.</summary>
        private void StartPrefetch(int bh, ref HeadPrefetch cursor)
        {
            int b = bh / shape.Heads, h = bh % shape.Heads;
            int tq = shape.QueryLength, tk = shape.KeyLength;
            long hd = (long)h * shape.HeadDim;
            cursor.Add(q + ((long)b * tq * shape.QStride) + hd, shape.QStride, tq);
            cursor.Add(output + ((long)b * tq * shape.OStride) + hd, shape.OStride, tq);
            cursor.Add(dOutput + ((long)b * tq * shape.OStride) + hd, shape.OStride, tq);
            cursor.Add(k + ((long)b * tk * shape.KStride) + hd, shape.KStride, tk);
            cursor.Add(v + ((long)b * tk * shape.VStride) + hd, shape.VStride, tk);
        }

        /// <summary>
        /// One row of a [query][NR keys] tile: p ← exp(p − lse) on the kept keys below <paramref name="visible"/>, else 0;
        /// ds (dP on entry) ← p ⊙ (dP − D_i), 0 where p is masked (the tile's unused columns may hold anything).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void ProbabilityAndScoreGradient(float* p, float* ds, float* keep, int nr, int visible, float lse, float rowDot)
        {
            int j = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var limit = Vector512.Create((float)visible);
                var l = Vector512.Create(lse);
                var dot = Vector512.Create(rowDot);
                var lane = Vector512.Create(0f, 1f, 2f, 3f, 4f, 5f, 6f, 7f, 8f, 9f, 10f, 11f, 12f, 13f, 14f, 15f);
                for (; j + 16 <= nr; j += 16)
                {
                    var kept = Vector512.LessThan(lane + Vector512.Create((float)j), limit) & Vector512.GreaterThan(Vector512.Load(keep + j), Vector512<float>.Zero);
                    var e = Vector512.ConditionalSelect(kept, FastMath.Exp(Vector512.Load(p + j) - l), Vector512<float>.Zero);
                    var g = Vector512.ConditionalSelect(kept, e * (Vector512.Load(ds + j) - dot), Vector512<float>.Zero);
                    e.Store(p + j);
                    g.Store(ds + j);
                }
            }

            if (Vector256.IsHardwareAccelerated)
            {
                var limit = Vector256.Create((float)visible);
                var l = Vector256.Create(lse);
                var dot = Vector256.Create(rowDot);
                var lane = Vector256.Create(0f, 1f, 2f, 3f, 4f, 5f, 6f, 7f);
                for (; j + 8 <= nr; j += 8)
                {
                    var kept = Vector256.LessThan(lane + Vector256.Create((float)j), limit) & Vector256.GreaterThan(Vector256.Load(keep + j), Vector256<float>.Zero);
                    var e = Vector256.ConditionalSelect(kept, FastMath.Exp(Vector256.Load(p + j) - l), Vector256<float>.Zero);
                    var g = Vector256.ConditionalSelect(kept, e * (Vector256.Load(ds + j) - dot), Vector256<float>.Zero);
                    e.Store(p + j);
                    g.Store(ds + j);
                }
            }

            for (; j < nr; j++)
            {
                bool kept = j < visible && keep[j] > 0f;
                float e = kept ? FastMath.Exp(p[j] - lse) : 0f;
                ds[j] = kept ? e * (ds[j] - rowDot) : 0f;
                p[j] = e;
            }
        }

        /// <summary>Columns [c0, c0 + cols) of <paramref name="rows"/> rows (stride <paramref name="ld"/>) into dst [rows][mr], zero past cols.</summary>
        private static void CopyColumnPanel(float* src, int ld, int rows, int c0, int cols, int mr, float* dst)
        {
            for (int r = 0; r < rows; r++)
            {
                float* from = src + ((long)r * ld) + c0;
                float* to = dst + ((long)r * mr);
                int c = 0;
                if (Vector256.IsHardwareAccelerated)
                {
                    for (; c + 8 <= cols; c += 8) Vector256.Store(Vector256.Load(from + c), to + c);
                }

                if (Vector128.IsHardwareAccelerated)
                {
                    for (; c + 4 <= cols; c += 4) Vector128.Store(Vector128.Load(from + c), to + c);
                }

                for (; c < cols; c++) to[c] = from[c];
                for (; c < mr; c++) to[c] = 0f;
            }
        }

        /// <summary>dst [n, m] (row stride <paramref name="ldd"/>) = src [m, n]ᵀ (row stride <paramref name="lds"/>): 8×8 blocks in registers, the rest one element at a time.</summary>
        private static void TransposeOut(float* src, int lds, int m, int n, float* dst, int ldd)
        {
            int mEnd = 0, nEnd = 0;
            if (Avx.IsSupported)
            {
                mEnd = m & ~7;
                nEnd = n & ~7;
                // Destination rows outermost: each row's line is written whole by consecutive stores.
                for (int c = 0; c < nEnd; c += 8)
                {
                    for (int r = 0; r < mEnd; r += 8)
                    {
                        float* from = src + ((long)r * lds) + c;
                        var r0 = Vector256.Load(from);
                        var r1 = Vector256.Load(from + lds);
                        var r2 = Vector256.Load(from + (2L * lds));
                        var r3 = Vector256.Load(from + (3L * lds));
                        var r4 = Vector256.Load(from + (4L * lds));
                        var r5 = Vector256.Load(from + (5L * lds));
                        var r6 = Vector256.Load(from + (6L * lds));
                        var r7 = Vector256.Load(from + (7L * lds));
                        GemmDriver.Transpose8x8(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
                        float* to = dst + ((long)c * ldd) + r;
                        r0.Store(to);
                        r1.Store(to + ldd);
                        r2.Store(to + (2L * ldd));
                        r3.Store(to + (3L * ldd));
                        r4.Store(to + (4L * ldd));
                        r5.Store(to + (5L * ldd));
                        r6.Store(to + (6L * ldd));
                        r7.Store(to + (7L * ldd));
                    }
                }
            }

            for (int c = 0; c < n; c++)
            {
                // Rows the blocks wrote keep their first mEnd columns; everything else goes here.
                float* to = dst + ((long)c * ldd);
                for (int r = c < nEnd ? mEnd : 0; r < m; r++) to[r] = src[((long)r * lds) + c];
            }
        }

        private static void ClearRows(float* x, int stride, int rows, int width)
        {
            for (int r = 0; r < rows; r++) new Span<float>(x + ((long)r * stride), width).Clear();
        }
    }

    /// <summary>
    /// Where a tiled kernel is in asking for the next head's operands in L2: up to <see cref="MaxStreams"/> streams of
    /// rows (each its first element, row stride and row count), walked a few rows at a time by <see cref="Step"/>. A
    /// head's rows sit a whole row stride apart (3·H·D floats in a fused projection), which the hardware prefetchers do
    /// not follow from memory; asked for all at once the requests queue behind each other, so the head's tile products
    /// each carry a few (the blocked backward at BERT-base's shape, 1 thread: about 6 % off against the whole head asked
    /// for up front; asking for dQ, dK and dV's rows too measured slower at GPT-2's shape).
    /// </summary>
    private unsafe struct HeadPrefetch
    {
        private const int MaxStreams = 5;

        private fixed long _start[MaxStreams];

        private fixed int _stride[MaxStreams];

        private fixed int _rows[MaxStreams];

        private int _streams;

        private int _stream;

        private int _row;

        /// <summary>Rows asked for so far.</summary>
        public int Done;

        /// <summary>Rows of all the streams.</summary>
        public int Total;

        /// <summary>Appends a stream of <paramref name="rows"/> rows from <paramref name="start"/>, <paramref name="stride"/> floats apart.</summary>
        public void Add(float* start, int stride, int rows)
        {
            if (rows <= 0) return;
            _start[_streams] = (long)start;
            _stride[_streams] = stride;
            _rows[_streams] = rows;
            _streams++;
            Total += rows;
        }

        /// <summary>Asks for the next <paramref name="count"/> rows (each <paramref name="width"/> floats) in L2 (PREFETCHT1; without SSE it only counts them).</summary>
        public void Step(int count, int width)
        {
            int end = Math.Min(Total, Done + count);
            if (!Sse.IsSupported)
            {
                Done = end;
                return;
            }

            while (Done < end)
            {
                int stream = _stream;
                int rows = Math.Min(_rows[stream] - _row, end - Done);
                int stride = _stride[stream];
                float* x = (float*)_start[stream] + ((long)_row * stride);
                for (int r = 0; r < rows; r++)
                {
                    for (int c = 0; c < width; c += 16) Sse.Prefetch1(x + c);
                    Sse.Prefetch1(x + width - 1);
                    x += stride;
                }

                _row += rows;
                Done += rows;
                if (_row == _rows[stream])
                {
                    _stream++;
                    _row = 0;
                }
            }
        }
    }

    /// <summary>
    /// The blocked backward after validation with <paramref name="isa"/>'s micro-kernel (tests force each tier): the
    /// AVX2 and AVX-512 tiers run <see cref="BackwardTilesJob"/>; below them, and for empty sizes, the tile products go
    /// through the generic GEMM (<see cref="HeadBackwardBlocked"/>).
    /// </summary>
    internal static unsafe void BackwardCore(
        GemmIsa isa, AttentionShape shape, float scale, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<float> output, ReadOnlySpan<float> logSumExp, ReadOnlySpan<float> dOutput,
        Span<float> dq, Span<float> dk, Span<float> dv, bool causal, ReadOnlySpan<float> keyPaddingMask)
    {
        int b = shape.Batch, h = shape.Heads;
        if (isa < GemmIsa.Vector256 || shape.QueryLength == 0 || shape.KeyLength == 0 || shape.HeadDim == 0)
        {
            BackwardGeneric(shape, scale, q, k, v, output, logSumExp, dOutput, dq, dk, dv, causal, keyPaddingMask);
            return;
        }

        fixed (float* pq = q, pk = k, pv = v, po = output, pl = logSumExp, pdo = dOutput, pdq = dq, pdk = dk, pdv = dv, pm = keyPaddingMask)
        {
            var job = new BackwardTilesJob(shape, scale, causal, pq, pk, pv, po, pl, pdo, keyPaddingMask.IsEmpty ? null : pm, pdq, pdk, pdv);

            // Runs of consecutive heads per chunk (about four chunks per thread): a worker prefetches the next head of its
            // run while it computes one, which one head per chunk never does, and rents its scratch once per run.
            int grain = Math.Max(1, b * h / (4 * ParallelFor.MaxDegreeOfParallelism));
            if (isa == GemmIsa.Vector512)
            {
                ParallelFor.For(b * h, grain, job.Run<Kernel512>);
            }
            else
            {
                ParallelFor.For(b * h, grain, job.Run<Kernel256>);
            }
        }
    }
}
