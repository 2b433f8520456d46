using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Kernels;

public static partial class Attention
{
    /// <summary>
    /// The tiled forward on the GEMM micro-kernels directly (AVX2 / AVX-512 tiers), as the blocked backward runs: per
    /// (b, h) K is packed once as Kᵀ B panels (D × NR keys) and V once as B panels (keys × NR of D); then per tile of MR
    /// queries, S = scale · Q·Kᵀ over the key panels the tile's last query may see (a causal head skips the rest: at
    /// T = 64 the two products take 30 % fewer multiply-adds than one 64-query tile over every key), the masked softmax of each row in place (one max pass, one exp-and-sum
    /// pass, one scaling pass, masked lanes instead of a scalar tail; the log-sum-exp when asked), P re-packed as one A
    /// panel and O = P·V over the keys the tile sees. No per-product packing, no per-row library calls, and no [Tq, Tk]
    /// scores: a worker holds [MR, Tk] of them. The next head's Q, K and V rows are asked for in L2 a few rows per query
    /// tile (<see cref="HeadPrefetch"/>).
    /// </summary>
    private sealed unsafe class ForwardTilesJob(
        AttentionShape shape, float scale, bool causal, float* q, float* k, float* v, float* output, float* mask, float* lse)
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run<TKernel>(int start, int end)
            where TKernel : struct, IGemmKernel
        {
            int mr = TKernel.MR, nr = TKernel.NR;
            int tk = shape.KeyLength, d = shape.HeadDim;
            int keyPanels = (tk + nr - 1) / nr, dnPanels = (d + nr - 1) / nr;
            int ldS = keyPanels * nr;

            // Scratch, each part 64-byte aligned (16 floats of slack per part).
            long kBFloats = (long)keyPanels * d * nr, vBFloats = (long)dnPanels * tk * nr, qAFloats = (long)d * mr;
            long sFloats = (long)mr * ldS, pAFloats = (long)ldS * mr;
            long total = kBFloats + vBFloats + qAFloats + sFloats + pAFloats + ldS + (mr * nr) + (16 * 8);
            float[] scratch = ArrayPool<float>.Shared.Rent(checked((int)total));
            try
            {
                fixed (float* raw = scratch)
                {
                    float* kB = GemmDriver.Align64(raw);
                    float* vB = GemmDriver.Align64(kB + kBFloats);
                    float* qA = GemmDriver.Align64(vB + vBFloats);
                    float* s = GemmDriver.Align64(qA + qAFloats);
                    float* pA = GemmDriver.Align64(s + sFloats);
                    float* keep = GemmDriver.Align64(pA + pAFloats);
                    float* edge = GemmDriver.Align64(keep + ldS);
                    for (int bh = start; bh < end; bh++)
                    {
                        Head<TKernel>(bh, kB, vB, qA, s, pA, keep, edge, bh + 1 < shape.Batch * shape.Heads ? bh + 1 : -1);
                    }
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(scratch);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Head<TKernel>(int bh, float* kB, float* vB, float* qA, float* s, float* pA, float* keep, float* edge, int nextBh)
            where TKernel : struct, IGemmKernel
        {
            int mr = TKernel.MR, nr = TKernel.NR;
            int b = bh / shape.Heads, h = bh % shape.Heads;
            int tq = shape.QueryLength, tk = shape.KeyLength, d = shape.HeadDim;
            int qs = shape.QStride, ks = shape.KStride, vs = shape.VStride, os = shape.OStride;
            int keyPanels = (tk + nr - 1) / nr, dnPanels = (d + nr - 1) / nr;
            int ldS = keyPanels * nr;
            float* qh = q + ((long)b * tq * qs) + ((long)h * d);
            float* kh = k + ((long)b * tk * ks) + ((long)h * d);
            float* vh = v + ((long)b * tk * vs) + ((long)h * d);
            float* oh = output + ((long)b * tq * os) + ((long)h * d);
            float* lseh = lse == null ? null : lse + ((long)bh * tq);

            // The keys kept by the padding mask, or none when it keeps every key (or there is none).
            float* maskRow = mask == null ? null : mask + ((long)b * tk);
            bool masked = false;
            if (maskRow != null)
            {
                for (int j = 0; j < tk; j++) masked |= maskRow[j] != 1f;
            }

            if (masked)
            {
                for (int j = 0; j < ldS; j++) keep[j] = j < tk && maskRow[j] != 0f ? 1f : 0f;
            }

            for (int kp = 0; kp < keyPanels; kp++)
            {
                int j0 = kp * nr;
                GemmDriver.PackBBlock(true, kh, ks, j0, Math.Min(nr, tk - j0), 0, d, nr, kB + ((long)kp * d * nr));
            }

            for (int dn = 0; dn < dnPanels; dn++)
            {
                GemmDriver.PackBBlock(false, vh, vs, dn * nr, Math.Min(nr, d - (dn * nr)), 0, tk, nr, vB + ((long)dn * tk * nr));
            }

            // The next head's Q, K and V rows are asked for a few at a time between this head's query tiles.
            var prefetch = default(HeadPrefetch);
            if (nextBh >= 0)
            {
                int nb = nextBh / shape.Heads;
                long nh = (long)(nextBh % shape.Heads) * d;
                prefetch.Add(q + ((long)nb * tq * qs) + nh, qs, tq);
                prefetch.Add(k + ((long)nb * tk * ks) + nh, ks, tk);
                prefetch.Add(v + ((long)nb * tk * vs) + nh, vs, tk);
            }

            int qTiles = (tq + mr - 1) / mr;
            int prefetchChunk = (prefetch.Total + qTiles - 1) / qTiles;
            int shift = tk - tq; // causal: query i sees keys j ≤ i + shift
            for (int i0 = 0; i0 < tq; i0 += mr)
            {
                int rows = Math.Min(mr, tq - i0);
                if (prefetch.Done < prefetch.Total) prefetch.Step(prefetchChunk, d);
                int keys = causal ? Math.Clamp(i0 + rows + shift, 0, tk) : tk;
                if (keys == 0)
                {
                    // No query of the tile sees a key: zero outputs.
                    for (int r = 0; r < rows; r++)
                    {
                        new Span<float>(oh + ((long)(i0 + r) * os), d).Clear();
                        if (lseh != null) lseh[i0 + r] = float.NegativeInfinity;
                    }

                    continue;
                }

                // S [rows, keys] = scale · Q·Kᵀ over the panels the tile's last query sees (columns past keys are masked).
                GemmDriver.PackAPanel(false, qh, qs, i0, rows, d, d, mr, 0, 0, qA);
                int panels = (keys + nr - 1) / nr;
                for (int kp = 0; kp < panels; kp++)
                {
                    TKernel.Tile(qA, kB + ((long)kp * d * nr), d, s + (kp * nr), ldS, rows, nr, scale, 0f, null, edge, false);
                }

                for (int r = 0; r < rows; r++)
                {
                    int i = i0 + r;
                    int visible = causal ? Math.Clamp(i + shift + 1, 0, tk) : tk;
                    float l = SoftmaxRow(s + ((long)r * ldS), keys, visible, masked ? keep : null);
                    if (lseh != null) lseh[i] = l;
                }

                // O [rows, D] = P [rows, keys] · V [keys, D]; P is 0 past each row's visible keys.
                GemmDriver.PackAPanel(false, s, ldS, 0, rows, keys, keys, mr, 0, 0, pA);
                for (int dn = 0; dn < dnPanels; dn++)
                {
                    int cols = Math.Min(nr, d - (dn * nr));
                    TKernel.Tile(pA, vB + ((long)dn * tk * nr), keys, oh + ((long)i0 * os) + (dn * nr), os, rows, cols, 1f, 0f, null, edge, false);
                }
            }
        }

        /// <summary>
        /// One row of scores in place: the softmax over the keys below <paramref name="visible"/> (≤ <paramref name="keys"/>)
        /// that <paramref name="keep"/> (null: all) keeps, 0 elsewhere up to <paramref name="keys"/> (the row may be written
        /// up to <paramref name="keys"/> rounded up to a vector; vectors wholly past <paramref name="visible"/> are only
        /// zeroed); returns the log-sum-exp, or −∞ (and a zero row) when no key is kept.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static float SoftmaxRow(float* x, int keys, int visible, float* keep)
        {
            float max = float.NegativeInfinity, sum = 0f;
            if (Vector512.IsHardwareAccelerated)
            {
                var lane = Vector512.Create(0f, 1f, 2f, 3f, 4f, 5f, 6f, 7f, 8f, 9f, 10f, 11f, 12f, 13f, 14f, 15f);
                var limit = Vector512.Create((float)visible);
                int used = Math.Min(keys, (visible + 15) & ~15); // whole vectors past it are all masked
                var ninf = Vector512.Create(float.NegativeInfinity);
                var m = ninf;
                for (int j = 0; j < used; j += 16)
                {
                    var kept = Vector512.LessThan(lane + Vector512.Create((float)j), limit);
                    if (keep != null) kept &= Vector512.GreaterThan(Vector512.Load(keep + j), Vector512<float>.Zero);
                    m = Vector512.Max(m, Vector512.ConditionalSelect(kept, Vector512.Load(x + j), ninf));
                }

                var m256 = Vector256.Max(m.GetLower(), m.GetUpper());
                var m128 = Vector128.Max(m256.GetLower(), m256.GetUpper());
                m128 = Vector128.Max(m128, Vector128.Shuffle(m128, Vector128.Create(2, 3, 0, 1)));
                max = Vector128.Max(m128, Vector128.Shuffle(m128, Vector128.Create(1, 0, 3, 2))).ToScalar();
                if (float.IsNegativeInfinity(max)) return ClearRow(x, keys);
                var mv = Vector512.Create(max);
                var acc = Vector512<float>.Zero;
                for (int j = 0; j < used; j += 16)
                {
                    var kept = Vector512.LessThan(lane + Vector512.Create((float)j), limit);
                    if (keep != null) kept &= Vector512.GreaterThan(Vector512.Load(keep + j), Vector512<float>.Zero);
                    var e = Vector512.ConditionalSelect(kept, FastMath.Exp(Vector512.Load(x + j) - mv), Vector512<float>.Zero);
                    e.Store(x + j);
                    acc += e;
                }

                sum = Vector512.Sum(acc);
                var inv = Vector512.Create(1f / sum);
                for (int j = 0; j < used; j += 16) (Vector512.Load(x + j) * inv).Store(x + j);
                for (int j = used; j < keys; j += 16) Vector512<float>.Zero.Store(x + j);
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                var lane = Vector256.Create(0f, 1f, 2f, 3f, 4f, 5f, 6f, 7f);
                var limit = Vector256.Create((float)visible);
                int used = Math.Min(keys, (visible + 7) & ~7); // whole vectors past it are all masked
                var ninf = Vector256.Create(float.NegativeInfinity);
                var m = ninf;
                for (int j = 0; j < used; j += 8)
                {
                    var kept = Vector256.LessThan(lane + Vector256.Create((float)j), limit);
                    if (keep != null) kept &= Vector256.GreaterThan(Vector256.Load(keep + j), Vector256<float>.Zero);
                    m = Vector256.Max(m, Vector256.ConditionalSelect(kept, Vector256.Load(x + j), ninf));
                }

                var m128 = Vector128.Max(m.GetLower(), m.GetUpper());
                m128 = Vector128.Max(m128, Vector128.Shuffle(m128, Vector128.Create(2, 3, 0, 1)));
                max = Vector128.Max(m128, Vector128.Shuffle(m128, Vector128.Create(1, 0, 3, 2))).ToScalar();
                if (float.IsNegativeInfinity(max)) return ClearRow(x, keys);
                var mv = Vector256.Create(max);
                var acc = Vector256<float>.Zero;
                for (int j = 0; j < used; j += 8)
                {
                    var kept = Vector256.LessThan(lane + Vector256.Create((float)j), limit);
                    if (keep != null) kept &= Vector256.GreaterThan(Vector256.Load(keep + j), Vector256<float>.Zero);
                    var e = Vector256.ConditionalSelect(kept, FastMath.Exp(Vector256.Load(x + j) - mv), Vector256<float>.Zero);
                    e.Store(x + j);
                    acc += e;
                }

                sum = Vector256.Sum(acc);
                var inv = Vector256.Create(1f / sum);
                for (int j = 0; j < used; j += 8) (Vector256.Load(x + j) * inv).Store(x + j);
                for (int j = used; j < keys; j += 8) Vector256<float>.Zero.Store(x + j);
            }

            return max + MathF.Log(sum);
        }

        /// <summary>Zeroes a row none of whose keys is kept and returns its log-sum-exp, −∞.</summary>
        private static float ClearRow(float* x, int keys)
        {
            new Span<float>(x, keys).Clear();
            return float.NegativeInfinity;
        }
    }

    /// <summary>
    /// Whether <see cref="Forward"/> runs <see cref="ForwardTilesJob"/> on <paramref name="isa"/>: the AVX2 and AVX-512
    /// micro-kernels, from <see cref="MinQueriesForTiles"/> queries, with keys and a head width (probabilities kept for
    /// the caller, decoding steps and the tiers below take the other paths).
    /// </summary>
    internal static bool UsesForwardTiles(GemmIsa isa, AttentionShape shape) =>
        isa >= GemmIsa.Vector256 && shape.QueryLength >= MinQueriesForTiles && shape.KeyLength > 0 && shape.HeadDim > 0 && shape.Batch * shape.Heads > 0;

    /// <summary>
    /// The tiled forward after validation with <paramref name="isa"/>'s micro-kernel (tests force each tier; the caller
    /// checks <see cref="UsesForwardTiles"/>). <paramref name="logSumExp"/> is empty or [B, H, Tq].
    /// </summary>
    internal static unsafe void ForwardTilesCore(
        GemmIsa isa, AttentionShape shape, float scale, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        Span<float> output, bool causal, ReadOnlySpan<float> keyPaddingMask, Span<float> logSumExp)
    {
        int bh = shape.Batch * shape.Heads;
        fixed (float* pq = q, pk = k, pv = v, po = output, pm = keyPaddingMask, pl = logSumExp)
        {
            var job = new ForwardTilesJob(
                shape, scale, causal, pq, pk, pv, po, keyPaddingMask.IsEmpty ? null : pm, logSumExp.IsEmpty ? null : pl);

            // Runs of consecutive heads per chunk (about four chunks per thread), so a worker rents its scratch once per run;
            // each thread takes its own share of the chunks front to back (ForShares), so the head after a chunk's last,
            // which that chunk prefetches, is most often the thread's next.
            int grain = Math.Max(1, bh / (4 * ParallelFor.MaxDegreeOfParallelism));
            if (isa == GemmIsa.Vector512)
            {
                ParallelFor.ForShares(bh, grain, job.Run<Kernel512>);
            }
            else
            {
                ParallelFor.ForShares(bh, grain, job.Run<Kernel256>);
            }
        }
    }
}
