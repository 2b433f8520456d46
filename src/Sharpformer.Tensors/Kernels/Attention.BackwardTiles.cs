using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Kernels;

public static partial class Attention
{
    /// <summary>
    /// The blocked backward on the GEMM micro-kernels directly (AVX2 / AVX-512 tiers). The AVX-512 tier runs
    /// <see cref="Head512"/>, whose tile products read the P and dS tiles and the Q, K and dO rows in place (its own
    /// 12 × 32 micro-kernel, <see cref="Tile512{TA, TCols}"/>). The AVX2 tier (<see cref="Head{TKernel}"/>) packs every
    /// operand once per (b, h) instead of once per tile product. Per head: Q and dO as A panels (queries × D) for the
    /// scores and dP, Kᵀ and Vᵀ as B panels (D × keys), Qᵀ and dOᵀ as A panels (D × queries) for dKᵀ and dVᵀ, K rows as
    /// B panels for dQ. Then per panel of NR keys and tile of MR queries: S = scale · Q·Kᵀ and dP = dO·Vᵀ straight into [query][NR] buffers, one
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
                        if (typeof(TKernel) == typeof(Kernel512))
                        {
                            Head512(bh, buffers, bh + 1 < end ? bh + 1 : -1);
                        }
                        else
                        {
                            Head<TKernel>(bh, buffers, bh + 1 < end ? bh + 1 : -1);
                        }
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

        /// <summary>
        /// One (b, h) on the AVX-512 tier with <see cref="Tile512{TA, TCols}"/>: as <see cref="Head{TKernel}"/>'s direct
        /// path, for every mask and length, but the tile products read their operands in place. S = scale · Q·Kᵀ and
        /// dP = dO·Vᵀ take the Q and dO rows (a last query tile of other than 4, 8 or 12 rows packed), and compute only
        /// 16 keys of a panel when the tile's last query sees no more; dQ = scale · dS·K takes the rows of the dS tile
        /// and K's rows; dV = Pᵀ·dO and dK = scale · dSᵀ·Q take columns of the P and dS tiles and dO's and Q's rows. No
        /// Q/dO A panels, no dS re-pack, no column copies, no K, Q or dO row panels (packed only when D is not a whole
        /// number of 32-float vectors), no dKᵀ or dVᵀ transposes: only Kᵀ and Vᵀ are packed (B panels). A row of 32
        /// keys all visible and kept skips the masks. Gradients bit-identical to <see cref="Head{TKernel}"/> on Kernel512
        /// (the same products in the same order). Measured on the AMD EPYC dev machine against it (alternated in one
        /// process, medians of per-round ratios): GPT-2's head (B=4, T=64, causal) 0.77 hot at 2 threads, 0.76 at 1,
        /// 0.82 cold; BERT-base's (B=8, T=128, padding mask) 0.86 hot at 2 threads, 0.88 at 1, 0.93 cold; T=128 and 256
        /// causal 0.80 and 0.85; T=512 causal level (1.007).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Head512(int bh, Buffers s, int nextBh)
        {
            const int mr = 12, nr = 32;
            int b = bh / shape.Heads, h = bh % shape.Heads;
            int tq = shape.QueryLength, tk = shape.KeyLength, d = shape.HeadDim;
            int qs = shape.QStride, ks = shape.KStride, vs = shape.VStride, os = shape.OStride;
            int qTiles = (tq + mr - 1) / mr, keyPanels = (tk + nr - 1) / nr, dnPanels = (d + nr - 1) / nr;
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

            for (int i = 0; i < tq; i++)
            {
                s.RowDot[i] = ShortDot(new ReadOnlySpan<float>(doh + ((long)i * os), d), new ReadOnlySpan<float>(oh + ((long)i * os), d));
            }

            float* maskRow = mask == null ? null : mask + ((long)b * tk);
            for (int j = 0; j < ldT; j++)
            {
                s.Keep[j] = j < tk && (maskRow == null || maskRow[j] != 0f) ? 1f : 0f;
            }

            // Q and dO rows are the A operands of S and dP in place, except in a last query tile of other than 4, 8 or 12
            // rows (the micro-kernel reads 4, 8 or 12 rows): that one is packed as an A panel.
            int lastRows = tq - ((qTiles - 1) * mr);
            bool packLast = lastRows is not (4 or 8 or 12);
            if (packLast)
            {
                GemmDriver.PackAPanel(false, qh, qs, (qTiles - 1) * mr, lastRows, d, d, mr, 0, 0, s.QA);
                GemmDriver.PackAPanel(false, doh, os, (qTiles - 1) * mr, lastRows, d, d, mr, 0, 0, s.DoA);
            }

            // The K, Q and dO rows are B operands in place when every 32-float panel of D is whole; else packed.
            bool inPlace = d % nr == 0;
            for (int kp = 0; kp < keyPanels; kp++)
            {
                int j0 = kp * nr, nk = Math.Min(nr, tk - j0);
                GemmDriver.PackBBlock(true, kh, ks, j0, nk, 0, d, nr, s.KB + ((long)kp * d * nr));
                GemmDriver.PackBBlock(true, vh, vs, j0, nk, 0, d, nr, s.VB + ((long)kp * d * nr));
                if (inPlace) continue;
                for (int dn = 0; dn < dnPanels; dn++)
                {
                    GemmDriver.PackBBlock(false, kh, ks, dn * nr, Math.Min(nr, d - (dn * nr)), j0, nk, nr, s.KRowB + ((long)((kp * dnPanels) + dn) * nr * nr));
                }
            }

            if (!inPlace)
            {
                for (int dn = 0; dn < dnPanels; dn++)
                {
                    int cols = Math.Min(nr, d - (dn * nr));
                    GemmDriver.PackBBlock(false, qh, qs, dn * nr, cols, 0, tq, nr, s.QT + ((long)dn * tq * nr));
                    GemmDriver.PackBBlock(false, doh, os, dn * nr, cols, 0, tq, nr, s.DoT + ((long)dn * tq * nr));
                }
            }

            int shift = tk - tq; // causal: query i sees keys j ≤ i + shift
            var prefetch = default(HeadPrefetch);
            if (nextBh >= 0) StartPrefetch(nextBh, ref prefetch);
            int prefetchChunk = (prefetch.Total + (keyPanels * qTiles) - 1) / (keyPanels * qTiles);
            bool firstPanelWritesDq = !causal || shift >= 0;
            if (!firstPanelWritesDq) ClearRows(dqh, qs, tq, d);
            for (int kp = 0; kp < keyPanels; kp++)
            {
                int j0 = kp * nr, nk = Math.Min(nr, tk - j0);
                int first = causal ? Math.Max(0, j0 - shift) : 0;
                if (first >= tq)
                {
                    ClearRows(dvh + ((long)j0 * vs), vs, nk, d);
                    ClearRows(dkh + ((long)j0 * ks), ks, nk, d);
                    continue;
                }

                int rowStart = first / mr * mr;
                bool allKept = nk == nr;
                for (int j = j0; j < j0 + nk && allKept; j++) allKept = s.Keep[j] > 0f;
                for (int i0 = rowStart; i0 < tq; i0 += mr)
                {
                    int rows = Math.Min(mr, tq - i0);
                    float* pTile = s.P + ((long)i0 * nr);
                    float* dsTile = s.Ds + ((long)i0 * nr);

                    // S = scale · Q·Kᵀ and dP = dO·Vᵀ, [rows, NR], or [rows, 16] when the tile's last query sees no key past
                    // the panel's 16th (the other columns are masked below whatever they hold).
                    int seen = causal ? Math.Clamp(i0 + rows + shift - j0, 1, nk) : nk;
                    if (!packLast || i0 + rows < tq)
                    {
                        if (seen <= 16)
                        {
                            Tile512<ARowsInPlace, Cols16>(qh + ((long)i0 * qs), s.KB + ((long)kp * d * nr), nr, d, pTile, nr, rows, 16, scale, 0f, s.Edge, qs);
                            Tile512<ARowsInPlace, Cols16>(doh + ((long)i0 * os), s.VB + ((long)kp * d * nr), nr, d, dsTile, nr, rows, 16, 1f, 0f, s.Edge, os);
                        }
                        else
                        {
                            Tile512<ARowsInPlace, Cols32>(qh + ((long)i0 * qs), s.KB + ((long)kp * d * nr), nr, d, pTile, nr, rows, nr, scale, 0f, s.Edge, qs);
                            Tile512<ARowsInPlace, Cols32>(doh + ((long)i0 * os), s.VB + ((long)kp * d * nr), nr, d, dsTile, nr, rows, nr, 1f, 0f, s.Edge, os);
                        }
                    }
                    else if (seen <= 16)
                    {
                        Tile512<APacked, Cols16>(s.QA, s.KB + ((long)kp * d * nr), nr, d, pTile, nr, rows, 16, scale, 0f, s.Edge);
                        Tile512<APacked, Cols16>(s.DoA, s.VB + ((long)kp * d * nr), nr, d, dsTile, nr, rows, 16, 1f, 0f, s.Edge);
                    }
                    else
                    {
                        Tile512<APacked, Cols32>(s.QA, s.KB + ((long)kp * d * nr), nr, d, pTile, nr, rows, nr, scale, 0f, s.Edge);
                        Tile512<APacked, Cols32>(s.DoA, s.VB + ((long)kp * d * nr), nr, d, dsTile, nr, rows, nr, 1f, 0f, s.Edge);
                    }

                    if (prefetch.Done < prefetch.Total) prefetch.Step(prefetchChunk, d);
                    for (int r = 0; r < rows; r++)
                    {
                        int i = i0 + r;
                        float l = lseh[i];
                        int visible = float.IsNegativeInfinity(l) ? 0 : (causal ? Math.Clamp(i + shift + 1 - j0, 0, nr) : nr);
                        if (visible == nr && allKept)
                        {
                            ProbabilityAndScoreGradient512(pTile + ((long)r * nr), dsTile + ((long)r * nr), l, s.RowDot[i]);
                        }
                        else
                        {
                            ProbabilityAndScoreGradient(pTile + ((long)r * nr), dsTile + ((long)r * nr), s.Keep + j0, nr, visible, l, s.RowDot[i]);
                        }
                    }

                    // dQ_tile += scale · dS [rows, seen] · K [seen, D], dS read in place as rows.
                    float beta = kp == 0 && firstPanelWritesDq ? 0f : 1f;
                    for (int dn = 0; dn < dnPanels; dn++)
                    {
                        int cols = Math.Min(nr, d - (dn * nr));
                        float* kRows = inPlace ? kh + ((long)j0 * ks) + (dn * nr) : s.KRowB + ((long)((kp * dnPanels) + dn) * nr * nr);
                        Tile512<ATileRows, Cols32>(dsTile, kRows, inPlace ? ks : nr, seen, dqh + ((long)i0 * qs) + (dn * nr), qs, rows, cols, scale, beta, s.Edge);
                    }
                }

                // Per tile of MR keys, over the queries from the first that sees its first key: dV = Pᵀ·dO and
                // dK = scale · dSᵀ·Q straight into their rows, Pᵀ and dSᵀ read in place as columns of the P and dS tiles.
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
                    float* pCols = s.P + ((long)firstQ * nr) + (jt - j0);
                    float* dsCols = s.Ds + ((long)firstQ * nr) + (jt - j0);
                    for (int dn = 0; dn < dnPanels; dn++)
                    {
                        int cols = Math.Min(nr, d - (dn * nr));
                        float* doRows = inPlace ? doh + ((long)firstQ * os) + (dn * nr) : s.DoT + ((long)dn * tq * nr) + ((long)firstQ * nr);
                        float* qRows = inPlace ? qh + ((long)firstQ * qs) + (dn * nr) : s.QT + ((long)dn * tq * nr) + ((long)firstQ * nr);
                        Tile512<ATileColumns, Cols32>(pCols, doRows, inPlace ? os : nr, kcv, dvh + ((long)jt * vs) + (dn * nr), vs, keys, cols, 1f, 0f, s.Edge);
                        Tile512<ATileColumns, Cols32>(dsCols, qRows, inPlace ? qs : nr, kcv, dkh + ((long)jt * ks) + (dn * nr), ks, keys, cols, scale, 0f, s.Edge);
                    }
                }
            }

            if (prefetch.Done < prefetch.Total) prefetch.Step(prefetch.Total - prefetch.Done, d);
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

        /// <summary>
        /// <see cref="ProbabilityAndScoreGradient"/> for a row of 32 keys that are all visible and kept (AVX-512, or
        /// the same element formulas without it): no masks.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void ProbabilityAndScoreGradient512(float* p, float* ds, float lse, float rowDot)
        {
            if (Vector512.IsHardwareAccelerated)
            {
                var l = Vector512.Create(lse);
                var dot = Vector512.Create(rowDot);
                var e0 = FastMath.Exp(Vector512.Load(p) - l);
                var e1 = FastMath.Exp(Vector512.Load(p + 16) - l);
                (e0 * (Vector512.Load(ds) - dot)).Store(ds);
                (e1 * (Vector512.Load(ds + 16) - dot)).Store(ds + 16);
                e0.Store(p);
                e1.Store(p + 16);
                return;
            }

            for (int j = 0; j < 32; j++)
            {
                float e = FastMath.Exp(p[j] - lse);
                ds[j] = e * (ds[j] - rowDot);
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

    /// <summary>Where a backward tile product's A operand lies: element (r, p) of the MR × kc block is ap[r·RStep + p·KStep].</summary>
    private interface IALayout
    {
        /// <summary>Floats from one row of the block to the next.</summary>
        static abstract int RStep { get; }

        /// <summary>Floats from one step of the inner dimension to the next.</summary>
        static abstract int KStep { get; }
    }

    /// <summary>A packed A panel [kc][12] (GemmDriver.PackAPanel).</summary>
    private readonly struct APacked : IALayout
    {
        public static int RStep => 1;

        public static int KStep => 12;
    }

    /// <summary>Up to 12 consecutive columns of a [query][32 keys] P or dS tile, as Pᵀ or dSᵀ: rows are keys, the inner dimension queries.</summary>
    private readonly struct ATileColumns : IALayout
    {
        public static int RStep => 1;

        public static int KStep => 32;
    }

    /// <summary>Up to 12 rows of a [query][32 keys] dS tile, as dS: rows are queries, the inner dimension keys.</summary>
    private readonly struct ATileRows : IALayout
    {
        public static int RStep => 32;

        public static int KStep => 1;
    }

    /// <summary>Rows of Q or dO lda floats apart, read in place.</summary>
    private readonly struct ARowsInPlace : IALayout
    {
        public static int RStep => 0;

        public static int KStep => 1;
    }

    /// <summary>One 16-float vector of columns per row.</summary>
    private readonly struct Cols16 : IRowCount
    {
        public static int Count => 16;
    }

    /// <summary>Two 16-float vectors of columns per row.</summary>
    private readonly struct Cols32 : IRowCount
    {
        public static int Count => 32;
    }

    /// <summary>
    /// The AVX-512 12 × 32 micro-kernel of the backward (the same multiply-adds, in the same order, as Kernel512's), with
    /// A read in place in any <see cref="IALayout"/> and B rows <paramref name="ldb"/> floats apart, so P and dS tiles and
    /// the Q, K and dO rows serve as operands without copies; <typeparamref name="TCols"/> 16 computes only the first
    /// vector of columns (<paramref name="nr"/> ≤ 16). C = alpha · A·B + beta · C over mr × nr (beta 0 never reads C).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Tile512<TA, TCols>(float* ap, float* bp, int ldb, int kc, float* c, int ldc, int mr, int nr, float alpha, float beta, float* edge, int lda = 0)
        where TA : struct, IALayout
        where TCols : struct, IRowCount
    {
        if (mr > 8)
        {
            Rows512<Rows12, TA, TCols>(ap, bp, ldb, kc, c, ldc, mr, nr, alpha, beta, edge, lda);
        }
        else if (mr > 4)
        {
            Rows512<Rows8, TA, TCols>(ap, bp, ldb, kc, c, ldc, mr, nr, alpha, beta, edge, lda);
        }
        else
        {
            Rows512<Rows4, TA, TCols>(ap, bp, ldb, kc, c, ldc, mr, nr, alpha, beta, edge, lda);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Rows512<TRows, TA, TCols>(float* ap, float* bp, int ldb, int kc, float* c, int ldc, int mr, int nr, float alpha, float beta, float* edge, int lda)
        where TRows : struct, IRowCount
        where TA : struct, IALayout
        where TCols : struct, IRowCount
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
        bool two = TCols.Count > 16;
        bool rowsA = TA.RStep == 0; // A rows lda floats apart, read in place: three row pointers and three strides
        nint l1 = rowsA ? lda : 0, l2 = 2 * l1, l3 = 3 * l1;
        float* a4 = ap + (4 * l1), a8 = ap + (8 * l1);
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(bp);
            Vector512<float> b1 = two ? Vector512.Load(bp + 16) : default;
            Vector512<float> a;
            a = Vector512.Create(rowsA ? ap[0] : ap[0 * TA.RStep]);
            acc0a = Vector512.FusedMultiplyAdd(a, b0, acc0a);
            if (two) acc0b = Vector512.FusedMultiplyAdd(a, b1, acc0b);
            a = Vector512.Create(rowsA ? ap[l1] : ap[1 * TA.RStep]);
            acc1a = Vector512.FusedMultiplyAdd(a, b0, acc1a);
            if (two) acc1b = Vector512.FusedMultiplyAdd(a, b1, acc1b);
            a = Vector512.Create(rowsA ? ap[l2] : ap[2 * TA.RStep]);
            acc2a = Vector512.FusedMultiplyAdd(a, b0, acc2a);
            if (two) acc2b = Vector512.FusedMultiplyAdd(a, b1, acc2b);
            a = Vector512.Create(rowsA ? ap[l3] : ap[3 * TA.RStep]);
            acc3a = Vector512.FusedMultiplyAdd(a, b0, acc3a);
            if (two) acc3b = Vector512.FusedMultiplyAdd(a, b1, acc3b);

            if (TRows.Count > 4)
            {
                a = Vector512.Create(rowsA ? a4[0] : ap[4 * TA.RStep]);
                acc4a = Vector512.FusedMultiplyAdd(a, b0, acc4a);
                if (two) acc4b = Vector512.FusedMultiplyAdd(a, b1, acc4b);
                a = Vector512.Create(rowsA ? a4[l1] : ap[5 * TA.RStep]);
                acc5a = Vector512.FusedMultiplyAdd(a, b0, acc5a);
                if (two) acc5b = Vector512.FusedMultiplyAdd(a, b1, acc5b);
                a = Vector512.Create(rowsA ? a4[l2] : ap[6 * TA.RStep]);
                acc6a = Vector512.FusedMultiplyAdd(a, b0, acc6a);
                if (two) acc6b = Vector512.FusedMultiplyAdd(a, b1, acc6b);
                a = Vector512.Create(rowsA ? a4[l3] : ap[7 * TA.RStep]);
                acc7a = Vector512.FusedMultiplyAdd(a, b0, acc7a);
                if (two) acc7b = Vector512.FusedMultiplyAdd(a, b1, acc7b);
            }

            if (TRows.Count > 8)
            {
                a = Vector512.Create(rowsA ? a8[0] : ap[8 * TA.RStep]);
                acc8a = Vector512.FusedMultiplyAdd(a, b0, acc8a);
                if (two) acc8b = Vector512.FusedMultiplyAdd(a, b1, acc8b);
                a = Vector512.Create(rowsA ? a8[l1] : ap[9 * TA.RStep]);
                acc9a = Vector512.FusedMultiplyAdd(a, b0, acc9a);
                if (two) acc9b = Vector512.FusedMultiplyAdd(a, b1, acc9b);
                a = Vector512.Create(rowsA ? a8[l2] : ap[10 * TA.RStep]);
                acc10a = Vector512.FusedMultiplyAdd(a, b0, acc10a);
                if (two) acc10b = Vector512.FusedMultiplyAdd(a, b1, acc10b);
                a = Vector512.Create(rowsA ? a8[l3] : ap[11 * TA.RStep]);
                acc11a = Vector512.FusedMultiplyAdd(a, b0, acc11a);
                if (two) acc11b = Vector512.FusedMultiplyAdd(a, b1, acc11b);
            }

            ap += TA.KStep;
            if (rowsA)
            {
                a4++;
                a8++;
            }

            bp += ldb;
        }

        if (mr == TRows.Count && nr == TCols.Count)
        {
            StoreRow512<TCols>(c + (0 * ldc), acc0a, acc0b, alpha, beta);
            StoreRow512<TCols>(c + (1 * ldc), acc1a, acc1b, alpha, beta);
            StoreRow512<TCols>(c + (2 * ldc), acc2a, acc2b, alpha, beta);
            StoreRow512<TCols>(c + (3 * ldc), acc3a, acc3b, alpha, beta);
            if (TRows.Count > 4)
            {
                StoreRow512<TCols>(c + (4 * ldc), acc4a, acc4b, alpha, beta);
                StoreRow512<TCols>(c + (5 * ldc), acc5a, acc5b, alpha, beta);
                StoreRow512<TCols>(c + (6 * ldc), acc6a, acc6b, alpha, beta);
                StoreRow512<TCols>(c + (7 * ldc), acc7a, acc7b, alpha, beta);
            }

            if (TRows.Count > 8)
            {
                StoreRow512<TCols>(c + (8 * ldc), acc8a, acc8b, alpha, beta);
                StoreRow512<TCols>(c + (9 * ldc), acc9a, acc9b, alpha, beta);
                StoreRow512<TCols>(c + (10 * ldc), acc10a, acc10b, alpha, beta);
                StoreRow512<TCols>(c + (11 * ldc), acc11a, acc11b, alpha, beta);
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

            GemmEdge.Store(edge, 32, c, ldc, mr, nr, alpha, beta, null);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreRow512<TCols>(float* c, Vector512<float> x, Vector512<float> y, float alpha, float beta)
        where TCols : struct, IRowCount
    {
        x *= alpha;
        if (beta != 0f) x = Vector512.FusedMultiplyAdd(Vector512.Load(c), Vector512.Create(beta), x);
        x.Store(c);
        if (TCols.Count > 16)
        {
            y *= alpha;
            if (beta != 0f) y = Vector512.FusedMultiplyAdd(Vector512.Load(c + 16), Vector512.Create(beta), y);
            y.Store(c + 16);
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
