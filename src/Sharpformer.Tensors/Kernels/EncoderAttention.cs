using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Kernels;

/// <summary>
/// Bidirectional (encoder) attention read in place from fused QKV rows, blocked for small head widths and long
/// sequences: per (sequence, head), K and V are packed once into GEMM micro-kernel panels, then each block of NR queries
/// (32 with AVX-512) computes its scores transposed, Sᵀ [T, NR] = scale · K · Q_blockᵀ, takes the masked softmax down
/// each column (one SIMD lane per query), and multiplies Oᵀ [D, NR] = Vᵀ · Sᵀ. The transposed scores are already the
/// packed B panel of that second product, so no score matrix is ever transposed or repacked, and a block's scores
/// ([T, NR], 64 KiB at T = 512) stay in L1/L2 instead of a [T, T] matrix per head. The 1/Σ of the softmax is applied to
/// the [D, NR] output, not to the [T, NR] probabilities.
/// </summary>
public static unsafe class EncoderAttention
{
    /// <summary>
    /// ctx [B·T, H·D] = softmax(scale · Q·Kᵀ + key mask) · V per (sequence, head), where Q, K, V are read from
    /// qkv [B·T, 3·H·D] (each token's row holds Q, then K, then V; head h at columns h·D) and scale = 1/√D.
    /// </summary>
    /// <param name="qkv">The fused projection [B·T, 3·H·D].</param>
    /// <param name="keyPaddingMask">Empty (every key visible), or [B·T] with 0 for a masked key.</param>
    /// <param name="output">ctx [B·T, H·D], overwritten.</param>
    /// <param name="batch">B.</param>
    /// <param name="length">T, queries and keys per sequence.</param>
    /// <param name="heads">H.</param>
    /// <param name="headDim">D.</param>
    /// <exception cref="ArgumentException">A size is not positive, or a span is shorter than its shape.</exception>
    /// <remarks>
    /// Runs the AVX-512 (NR 32) or AVX2 (NR 16) micro-kernels; elsewhere, <see cref="Attention.Forward"/> over the same
    /// strided views (its scalar path is the reference). Pairs are dealt out over <see cref="ParallelFor"/>, one thread
    /// each, so the result does not depend on the thread count. A query whose keys are all masked gets zeros, as
    /// <see cref="Attention.Forward"/> gives it.
    /// </remarks>
    public static void Forward(ReadOnlySpan<float> qkv, ReadOnlySpan<float> keyPaddingMask, Span<float> output, int batch, int length, int heads, int headDim)
    {
        if (batch < 1 || length < 1 || heads < 1 || headDim < 1)
        {
            throw new ArgumentException($"EncoderAttention.Forward: batch {batch}, length {length}, heads {heads} and headDim {headDim} must all be at least 1.");
        }

        long tokens = (long)batch * length, width = (long)heads * headDim;
        KernelChecks.AtLeast("EncoderAttention.Forward", nameof(qkv), qkv.Length, tokens * 3 * width, "[B·T={0}, 3·H·D={1}]", tokens, 3 * width);
        KernelChecks.AtLeast("EncoderAttention.Forward", nameof(output), output.Length, tokens * width, "[B·T={0}, H·D={1}]", tokens, width);
        KernelChecks.Optional("EncoderAttention.Forward", nameof(keyPaddingMask), keyPaddingMask.Length, tokens, "[B·T={0}]", tokens);
        ForwardCore(GemmDriver.BestIsa, qkv, keyPaddingMask, output, batch, length, heads, headDim);
    }

    /// <summary>The fast path after validation, with <paramref name="isa"/>'s micro-kernel (tests force each tier).</summary>
    internal static void ForwardCore(GemmIsa isa, ReadOnlySpan<float> qkv, ReadOnlySpan<float> keyPaddingMask, Span<float> output, int batch, int length, int heads, int headDim)
    {
        int c = heads * headDim;
        if (isa < GemmIsa.Vector256)
        {
            var shape = new AttentionShape(batch, heads, length, length, headDim) { QueryRowStride = 3 * c, KeyRowStride = 3 * c, ValueRowStride = 3 * c, OutputRowStride = c };
            Attention.Forward(shape, qkv, qkv[c..], qkv[(2 * c)..], output, keyPaddingMask: keyPaddingMask);
            return;
        }

        fixed (float* pq = qkv, pm = keyPaddingMask, po = output)
        {
            var job = new Job(pq, keyPaddingMask.IsEmpty ? null : pm, po, length, heads, headDim);
            if (isa == GemmIsa.Vector512)
            {
                ParallelFor.For(batch * heads, 1, job.Run<Kernel512>);
            }
            else
            {
                ParallelFor.For(batch * heads, 1, job.Run<Kernel256>);
            }
        }
    }

    /// <summary>One call's operands; each participant of the parallel loop rents its own scratch.</summary>
    private sealed class Job(float* qkv, float* mask, float* output, int t, int h, int d)
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run<TKernel>(int start, int end)
            where TKernel : struct, IGemmKernel
        {
            int mr = TKernel.MR, nr = TKernel.NR, c = h * d, row = 3 * c;
            int keyPanels = (t + mr - 1) / mr, dPanels = (d + mr - 1) / mr;
            float scale = 1f / MathF.Sqrt(d);

            // Scratch, 64-byte aligned: K panels [keyPanels][D][MR], V panels [dPanels][T][MR], the query block
            // [D][NR], the scores Sᵀ [T][NR], the output Oᵀ [dPanels·MR][NR], the column sums, the edge tile.
            long kFloats = (long)keyPanels * d * mr, vFloats = (long)dPanels * t * mr, qFloats = (long)d * nr;
            long sFloats = (long)keyPanels * mr * nr, oFloats = (long)dPanels * mr * nr;
            long total = kFloats + vFloats + qFloats + sFloats + oFloats + nr + (12 * 32) + (6 * 16);
            float[] scratch = ArrayPool<float>.Shared.Rent(checked((int)total));
            try
            {
                fixed (float* raw = scratch)
                {
                    float* kPack = GemmDriver.Align64(raw);
                    float* vPack = GemmDriver.Align64(kPack + kFloats);
                    float* qBlock = GemmDriver.Align64(vPack + vFloats);
                    float* scores = GemmDriver.Align64(qBlock + qFloats);
                    float* outT = GemmDriver.Align64(scores + sFloats);
                    float* colSum = GemmDriver.Align64(outT + oFloats);
                    float* edge = GemmDriver.Align64(colSum + nr);
                    for (int pair = start; pair < end; pair++)
                    {
                        int s = pair / h, head = pair % h;
                        float* q = qkv + ((long)s * t * row) + (head * d);
                        float* k = q + c;
                        float* v = q + (2 * c);
                        float* keyMask = mask == null ? null : mask + ((long)s * t);
                        float* ctx = output + ((long)s * t * c) + (head * d);
                        if (pair + 1 < end) PrefetchPair(qkv, pair + 1, t, h, d);
                        // K as the A operand of Sᵀ = K·Qᵀ (panels of MR keys, k = D, one k block), Vᵀ as the A
                        // operand of Oᵀ = Vᵀ·Sᵀ (panels of MR head columns, k = T, one k block): the GEMM's own packers.
                        for (int panel = 0; panel < keyPanels; panel++)
                        {
                            GemmDriver.PackAPanel(false, k, row, panel * mr, Math.Min(mr, t - (panel * mr)), d, d, mr, 0, panel, kPack);
                        }

                        PackValues(v, row, t, d, mr, vPack);
                        for (int q0 = 0; q0 < t; q0 += nr)
                        {
                            int queries = Math.Min(nr, t - q0);
                            GemmDriver.PackBBlock(true, q, row, q0, queries, 0, d, nr, qBlock);

                            // Sᵀ [T, NR] = scale · K · Qᵀ: one tile per panel of MR keys, k = D.
                            for (int panel = 0; panel < keyPanels; panel++)
                            {
                                int key0 = panel * mr;
                                TKernel.Tile(kPack + ((long)panel * d * mr), qBlock, d, scores + ((long)key0 * nr), nr, Math.Min(mr, t - key0), nr, scale, 0f, null, edge, false);
                            }

                            if (nr == 32)
                            {
                                SoftmaxColumns512(scores, t, keyMask, colSum);
                            }
                            else
                            {
                                SoftmaxColumns256(scores, t, keyMask, colSum);
                            }

                            // Oᵀ [D, NR] = Vᵀ · Sᵀ: one tile per panel of MR head columns, k = T.
                            for (int panel = 0; panel < dPanels; panel++)
                            {
                                int d0 = panel * mr;
                                TKernel.Tile(vPack + ((long)panel * t * mr), scores, t, outT + ((long)d0 * nr), nr, Math.Min(mr, d - d0), nr, 1f, 0f, null, edge, false);
                            }

                            WriteContext(outT, nr, colSum, queries, d, ctx + ((long)q0 * c), c);
                        }
                    }
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(scratch);
            }
        }
    }

    /// <summary>
    /// Asks for the Q, K and V rows of pair <paramref name="pair"/> (sequence pair / H, head pair % H) in L2 while this
    /// pair computes: its T rows sit 3·C floats apart, a stride the hardware prefetcher does not follow from memory.
    /// </summary>
    private static void PrefetchPair(float* qkv, int pair, int t, int h, int d)
    {
        if (!Sse.IsSupported) return;
        int c = h * d, row = 3 * c;
        float* q = qkv + ((long)(pair / h) * t * row) + ((pair % h) * d);
        for (int key = 0; key < t; key++)
        {
            float* r = q + ((long)key * row);
            for (int part = 0; part < 3; part++)
            {
                float* operand = r + (part * c);
                for (int p = 0; p < d; p += 16) Sse.Prefetch1(operand + p);
                Sse.Prefetch1(operand + d - 1);
            }
        }
    }

    /// <summary>
    /// ctx rows [queries, D] (row stride <paramref name="ldc"/>) = Oᵀ [D][NR] transposed, column j scaled by 1/Σ_j (0 when
    /// every key of the sequence is masked): 8×8 blocks through in-register transposes, the rest one element at a time.
    /// </summary>
    private static void WriteContext(float* outT, int nr, float* colSum, int queries, int d, float* ctx, int ldc)
    {
        float* inverse = stackalloc float[nr];
        for (int j = 0; j < nr; j++) inverse[j] = colSum[j] > 0f ? 1f / colSum[j] : 0f;
        int jEnd = 0, pEnd = 0;
        if (Avx.IsSupported)
        {
            jEnd = queries & ~7;
            pEnd = d & ~7;
            for (int j = 0; j < jEnd; j += 8)
            {
                for (int p = 0; p < pEnd; p += 8)
                {
                    float* src = outT + (p * nr) + j;
                    Vector256<float> r0 = Vector256.Load(src);
                    Vector256<float> r1 = Vector256.Load(src + nr);
                    Vector256<float> r2 = Vector256.Load(src + (2 * nr));
                    Vector256<float> r3 = Vector256.Load(src + (3 * nr));
                    Vector256<float> r4 = Vector256.Load(src + (4 * nr));
                    Vector256<float> r5 = Vector256.Load(src + (5 * nr));
                    Vector256<float> r6 = Vector256.Load(src + (6 * nr));
                    Vector256<float> r7 = Vector256.Load(src + (7 * nr));
                    GemmDriver.Transpose8x8(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
                    float* dst = ctx + ((long)j * ldc) + p;
                    (r0 * inverse[j]).Store(dst);
                    (r1 * inverse[j + 1]).Store(dst + ldc);
                    (r2 * inverse[j + 2]).Store(dst + (2L * ldc));
                    (r3 * inverse[j + 3]).Store(dst + (3L * ldc));
                    (r4 * inverse[j + 4]).Store(dst + (4L * ldc));
                    (r5 * inverse[j + 5]).Store(dst + (5L * ldc));
                    (r6 * inverse[j + 6]).Store(dst + (6L * ldc));
                    (r7 * inverse[j + 7]).Store(dst + (7L * ldc));
                }
            }
        }

        for (int j = 0; j < queries; j++)
        {
            float* dst = ctx + ((long)j * ldc);
            // Rows the blocks wrote keep their first pEnd columns; the rest of every row goes here.
            for (int p = j < jEnd ? pEnd : 0; p < d; p++) dst[p] = outT[(p * nr) + j] * inverse[j];
        }
    }

    /// <summary>V [T, D] → Vᵀ in panels of MR head columns, panel i element (key, r) at [i·T·MR + key·MR + r]; columns past D are 0.</summary>
    private static void PackValues(float* v, int ld, int t, int d, int mr, float* dst)
    {
        for (int d0 = 0; d0 < d; d0 += mr)
        {
            float* panel = dst + ((long)(d0 / mr) * t * mr);
            int cols = Math.Min(mr, d - d0);
            for (int key = 0; key < t; key++)
            {
                float* src = v + ((long)key * ld) + d0;
                float* to = panel + ((long)key * mr);
                int r = 0;
                if (Vector128.IsHardwareAccelerated)
                {
                    for (; r + 4 <= cols; r += 4) Vector128.Store(Vector128.Load(src + r), to + r);
                }

                for (; r < cols; r++) to[r] = src[r];
                for (; r < mr; r++) to[r] = 0f;
            }
        }
    }

    /// <summary>
    /// Softmax down each of the 32 columns of s [T][32] without the final 1/Σ: s ← exp(s − max) (0 for masked keys),
    /// sums ← Σ over keys. A column with every key masked gets all 0 and sum 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SoftmaxColumns512(float* s, int t, float* keyMask, float* colSum)
    {
        var max0 = Vector512.Create(float.NegativeInfinity);
        var max1 = max0;
        for (int key = 0; key < t; key++)
        {
            if (keyMask != null && keyMask[key] == 0f) continue;
            float* r = s + (key * 32);
            max0 = Vector512.Max(max0, Vector512.Load(r));
            max1 = Vector512.Max(max1, Vector512.Load(r + 16));
        }

        // An all-masked column: subtract 0 instead of −∞ (every entry is then zeroed by the mask anyway).
        var negInf = Vector512.Create(float.NegativeInfinity);
        max0 = Vector512.ConditionalSelect(Vector512.Equals(max0, negInf), Vector512<float>.Zero, max0);
        max1 = Vector512.ConditionalSelect(Vector512.Equals(max1, negInf), Vector512<float>.Zero, max1);
        var sum0 = Vector512<float>.Zero;
        var sum1 = Vector512<float>.Zero;
        for (int key = 0; key < t; key++)
        {
            float* r = s + (key * 32);
            if (keyMask != null && keyMask[key] == 0f)
            {
                Vector512<float>.Zero.Store(r);
                Vector512<float>.Zero.Store(r + 16);
                continue;
            }

            var e0 = FastMath.Exp(Vector512.Load(r) - max0);
            var e1 = FastMath.Exp(Vector512.Load(r + 16) - max1);
            e0.Store(r);
            e1.Store(r + 16);
            sum0 += e0;
            sum1 += e1;
        }

        sum0.Store(colSum);
        sum1.Store(colSum + 16);
    }

    /// <summary><see cref="SoftmaxColumns512"/> for the 16 columns of the AVX2 kernel's panel.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SoftmaxColumns256(float* s, int t, float* keyMask, float* colSum)
    {
        Debug.Assert(Vector256.IsHardwareAccelerated, "the AVX2 kernel's tier");
        var max0 = Vector256.Create(float.NegativeInfinity);
        var max1 = max0;
        for (int key = 0; key < t; key++)
        {
            if (keyMask != null && keyMask[key] == 0f) continue;
            float* r = s + (key * 16);
            max0 = Vector256.Max(max0, Vector256.Load(r));
            max1 = Vector256.Max(max1, Vector256.Load(r + 8));
        }

        var negInf = Vector256.Create(float.NegativeInfinity);
        max0 = Vector256.ConditionalSelect(Vector256.Equals(max0, negInf), Vector256<float>.Zero, max0);
        max1 = Vector256.ConditionalSelect(Vector256.Equals(max1, negInf), Vector256<float>.Zero, max1);
        var sum0 = Vector256<float>.Zero;
        var sum1 = Vector256<float>.Zero;
        for (int key = 0; key < t; key++)
        {
            float* r = s + (key * 16);
            if (keyMask != null && keyMask[key] == 0f)
            {
                Vector256<float>.Zero.Store(r);
                Vector256<float>.Zero.Store(r + 8);
                continue;
            }

            var e0 = FastMath.Exp(Vector256.Load(r) - max0);
            var e1 = FastMath.Exp(Vector256.Load(r + 8) - max1);
            e0.Store(r);
            e1.Store(r + 8);
            sum0 += e0;
            sum1 += e1;
        }

        sum0.Store(colSum);
        sum1.Store(colSum + 8);
    }
}
