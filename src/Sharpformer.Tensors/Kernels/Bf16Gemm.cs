using System.Buffers;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Kernels;

/// <summary>
/// y [M, N] = bf16(x) [M, K] · W [N, K]ᵀ (+ bias) (+ y): a linear layer in BF16 — weights stored as bfloat16, the
/// activations rounded to bfloat16 (nearest even) on the way in, every product of two bfloat16 values accumulated in
/// float32. That is what the BF16 dot-product instruction (<c>VDPBF16PS</c>, AVX512_BF16) computes; .NET 10 exposes no
/// intrinsic for it (System.Runtime.Intrinsics.X86 has no Avx512Bf16 class, and Avx10v1/Avx10v2 carry no BF16 dot
/// product), so the fast path widens instead: bfloat16 → float32 is exact (a 16-bit shift), so a block of weight rows
/// widened into a scratch buffer and multiplied by the rounded activations with the float32 GEMM gives the same
/// products, summed in another order. Rows up to <see cref="Gemv.MaxRows"/> stream the bfloat16 weights through the
/// GEMV, which widens in registers. <see cref="MatMulReference"/> is the scalar definition.
/// </summary>
public static class Bf16Gemm
{
    /// <summary>Weight rows widened per block: 2 Mi floats (8 MiB) of scratch at most, whole 64-row panels.</summary>
    private const int MaxScratchFloats = 1 << 21;

    /// <summary>W [N, K] float32 → bfloat16, rounded to nearest even (the layer's stored weights).</summary>
    /// <param name="weight">N·K values.</param>
    /// <returns>N·K bfloat16 values.</returns>
    public static BFloat16[] QuantizeWeights(ReadOnlySpan<float> weight)
    {
        var narrow = new BFloat16[weight.Length];
        Convert.F32ToBF16(weight, narrow);
        return narrow;
    }

    /// <summary>x → x rounded to the nearest bfloat16 (ties to even), kept as float32: exactly the values a BF16 operand holds.</summary>
    /// <param name="source">Values.</param>
    /// <param name="destination">The rounded values (may be <paramref name="source"/>).</param>
    public static void RoundToBf16(ReadOnlySpan<float> source, Span<float> destination)
    {
        KernelChecks.AtLeast("Bf16Gemm.RoundToBf16", "destination", destination.Length, source.Length, "[{0}]", source.Length);
        const int Chunk = 4096;
        Span<BFloat16> narrow = stackalloc BFloat16[Chunk];
        for (int i = 0; i < source.Length; i += Chunk)
        {
            int count = Math.Min(Chunk, source.Length - i);
            Convert.F32ToBF16(source.Slice(i, count), narrow[..count]);
            Convert.BF16ToF32(narrow[..count], destination.Slice(i, count));
        }
    }

    /// <summary>
    /// y [M, N] = bf16(x) [M, K] · Wᵀ + bias (+ y when <paramref name="accumulate"/>), float32 accumulation (see the
    /// class remarks for the path taken).
    /// </summary>
    /// <param name="x">M·K activations, row-major (float32; rounded to bfloat16 here).</param>
    /// <param name="m">M.</param>
    /// <param name="k">K.</param>
    /// <param name="weight">W [N, K] in bfloat16.</param>
    /// <param name="n">N.</param>
    /// <param name="bias">Empty, or N values.</param>
    /// <param name="y">M·N outputs.</param>
    /// <param name="accumulate">Add to y instead of overwriting it.</param>
    /// <exception cref="ArgumentException">A size is negative or a span is too short.</exception>
    public static void MatMul(ReadOnlySpan<float> x, int m, int k, ReadOnlySpan<BFloat16> weight, int n, ReadOnlySpan<float> bias, Span<float> y, bool accumulate)
    {
        Check(x.Length, m, k, weight.Length, n, bias.Length, y.Length);
        if (m == 0 || n == 0)
        {
            return;
        }

        float[] rounded = ArrayPool<float>.Shared.Rent(m * k);
        try
        {
            var xr = rounded.AsSpan(0, m * k);
            RoundToBf16(x[..(m * k)], xr);
            if (m <= Gemv.MaxRows)
            {
                Gemv.MatVec(xr, m, weight, k, n, bias, y, accumulate);
                return;
            }

            int block = k == 0 ? n : Math.Max(1, MaxScratchFloats / k);
            block = block >= n ? n : Math.Max(64, block / 64 * 64);
            float[] scratch = ArrayPool<float>.Shared.Rent(Math.Min(block, n) * Math.Max(k, 1));
            try
            {
                for (int n0 = 0; n0 < n; n0 += block)
                {
                    int count = Math.Min(block, n - n0);
                    var wide = scratch.AsSpan(0, count * k);
                    var source = weight.Slice(n0 * k, count * k);
                    WidenParallel(source, wide, k);
                    Gemm.Sgemm(false, true, m, count, k, 1f, xr, k, wide, k, accumulate ? 1f : 0f, y[n0..], n, bias.IsEmpty ? default : bias.Slice(n0, count));
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(scratch);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rounded);
        }
    }

    /// <summary>
    /// The scalar definition of <see cref="MatMul"/>: each activation rounded to bfloat16, each weight widened, products
    /// summed in float32 in index order, then the bias added.
    /// </summary>
    /// <param name="x">M·K activations.</param>
    /// <param name="m">M.</param>
    /// <param name="k">K.</param>
    /// <param name="weight">W [N, K] in bfloat16.</param>
    /// <param name="n">N.</param>
    /// <param name="bias">Empty, or N values.</param>
    /// <param name="y">M·N outputs.</param>
    /// <param name="accumulate">Add to y instead of overwriting it.</param>
    /// <exception cref="ArgumentException">A size is negative or a span is too short.</exception>
    public static void MatMulReference(ReadOnlySpan<float> x, int m, int k, ReadOnlySpan<BFloat16> weight, int n, ReadOnlySpan<float> bias, Span<float> y, bool accumulate)
    {
        Check(x.Length, m, k, weight.Length, n, bias.Length, y.Length);
        for (int row = 0; row < m; row++)
        {
            for (int col = 0; col < n; col++)
            {
                float sum = 0f;
                for (int i = 0; i < k; i++)
                {
                    float a = BFloat16.FromSingle(x[(row * k) + i]).ToSingle();
                    float b = weight[(col * k) + i].ToSingle();
                    sum += a * b;
                }

                if (!bias.IsEmpty)
                {
                    sum += bias[col];
                }

                y[(row * n) + col] = accumulate ? y[(row * n) + col] + sum : sum;
            }
        }
    }

    private static void WidenParallel(ReadOnlySpan<BFloat16> source, Span<float> destination, int k)
    {
        int rows = source.Length / Math.Max(k, 1);
        if (rows * (long)k < (1 << 16))
        {
            Convert.BF16ToF32(source, destination);
            return;
        }

        unsafe
        {
            fixed (BFloat16* s = source)
            fixed (float* d = destination)
            {
                var sp = (nint)s;
                var dp = (nint)d;
                int grain = Math.Max(1, (1 << 16) / k);
                ParallelFor.For(rows, grain, (from, to) =>
                    Convert.BF16ToF32(new ReadOnlySpan<BFloat16>((BFloat16*)sp + ((long)from * k), (to - from) * k), new Span<float>((float*)dp + ((long)from * k), (to - from) * k)));
            }
        }
    }

    private static void Check(int xLength, int m, int k, int wLength, int n, int biasLength, int yLength)
    {
        KernelChecks.Dims("Bf16Gemm", m, k);
        KernelChecks.Dims("Bf16Gemm", n, k);
        KernelChecks.AtLeast("Bf16Gemm", "x", xLength, (long)m * k, "[M={0}, K={1}]", m, k);
        KernelChecks.AtLeast("Bf16Gemm", "weight", wLength, (long)n * k, "[N={0}, K={1}]", n, k);
        KernelChecks.Optional("Bf16Gemm", "bias", biasLength, n, "[N={0}]", n);
        KernelChecks.AtLeast("Bf16Gemm", "y", yLength, (long)m * n, "[M={0}, N={1}]", m, n);
    }
}
