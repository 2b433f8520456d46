using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Kernels;

/// <summary>
/// W [N, K] quantized per output channel, symmetric: row n holds q[n, k] = clamp(round(W[n, k] / s[n]), −127, 127) with
/// s[n] = max|W[n, :]| / 127, the rows padded with zeros to a multiple of 32 (the VNNI step); each row's sum Σₖ q[n, k]
/// is kept for the activations' zero point.
/// </summary>
public sealed class Int8Weights
{
    private Int8Weights(int n, int k, sbyte[] values, float[] scales, int[] rowSums)
    {
        N = n;
        K = k;
        Values = values;
        ScaleValues = scales;
        RowSums = rowSums;
    }

    /// <summary>N, the output channels.</summary>
    public int N { get; }

    /// <summary>K, the input features.</summary>
    public int K { get; }

    /// <summary>K rounded up to a multiple of 32: the row stride of <see cref="Values"/>.</summary>
    public int PaddedK => Int8Gemm.Pad(K);

    /// <summary>q [N, PaddedK], zeros past K.</summary>
    internal sbyte[] Values { get; }

    /// <summary>s [N]: W[n, k] ≈ s[n] · q[n, k].</summary>
    public IReadOnlyList<float> Scales => ScaleValues;

    /// <summary>s [N] as an array (the kernels' view of <see cref="Scales"/>).</summary>
    internal float[] ScaleValues { get; }

    /// <summary>Σₖ q[n, k] per row.</summary>
    internal int[] RowSums { get; }

    /// <summary>Quantizes W [N, K] (rounding half to even, as ONNX Runtime's quantizer does).</summary>
    /// <param name="weight">N·K values, row-major.</param>
    /// <param name="n">N.</param>
    /// <param name="k">K.</param>
    /// <returns>The quantized weights.</returns>
    /// <exception cref="ArgumentException">A size is not positive or the span is not N·K long.</exception>
    public static Int8Weights Quantize(ReadOnlySpan<float> weight, int n, int k)
    {
        if (n <= 0 || k <= 0 || weight.Length != (long)n * k)
        {
            throw new ArgumentException($"Int8Weights.Quantize: {weight.Length} values are not [N={n}, K={k}] with N, K positive.", nameof(weight));
        }

        int padded = Int8Gemm.Pad(k);
        var values = new sbyte[n * padded];
        var scales = new float[n];
        var sums = new int[n];
        for (int row = 0; row < n; row++)
        {
            var w = weight.Slice(row * k, k);
            float max = 0f;
            foreach (float v in w)
            {
                max = Math.Max(max, Math.Abs(v));
            }

            float scale = max > 0f ? max / 127f : 1f;
            scales[row] = scale;
            int sum = 0;
            for (int i = 0; i < k; i++)
            {
                int q = (int)Math.Clamp(MathF.Round(w[i] / scale), -127f, 127f);
                values[(row * padded) + i] = (sbyte)q;
                sum += q;
            }

            sums[row] = sum;
        }

        return new Int8Weights(n, k, values, scales, sums);
    }

    /// <summary>The dequantized W [N, K] (s[n] · q[n, k]), for tests and error bounds.</summary>
    /// <returns>N·K values.</returns>
    public float[] Dequantize()
    {
        var w = new float[N * K];
        int padded = PaddedK;
        for (int row = 0; row < N; row++)
        {
            for (int i = 0; i < K; i++)
            {
                w[(row * K) + i] = ScaleValues[row] * Values[(row * padded) + i];
            }
        }

        return w;
    }
}

/// <summary>
/// Dynamic int8 linear layers, as ONNX Runtime's <c>quantize_dynamic</c> runs MatMul: weights quantized once per output
/// channel (<see cref="Int8Weights"/>), each activation row quantized at run time to unsigned 8 bits with its own scale
/// and zero point (asymmetric over [min(0, min x), max(0, max x)]), products summed exactly in int32, then
/// y[m, n] = sₓ[m] · s_w[n] · (Σₖ qₓ[m, k] · q_w[n, k] − zₓ[m] · Σₖ q_w[n, k]) + bias[n]. The int32 dot products use
/// <c>VPDPBUSD</c> (AvxVnni: u8 × s8, four products per int32 lane, no saturation) where the CPU has it, else AVX2's
/// widening multiply-add (<c>VPMADDWD</c> on bytes widened to 16 bits), else scalar; all three give the same integers,
/// so the tiers agree bit for bit. <see cref="MatMulReference"/> is the scalar definition.
/// </summary>
public static class Int8Gemm
{
    /// <summary>K rounded up to a multiple of 32.</summary>
    /// <param name="k">K.</param>
    /// <returns>The padded length.</returns>
    public static int Pad(int k) => (k + 31) / 32 * 32;

    /// <summary>The dot-product tier this machine runs: "AvxVnni", "Avx2" or "Scalar".</summary>
    public static string Isa => AvxVnni.IsSupported ? "AvxVnni" : Avx2.IsSupported ? "Avx2" : "Scalar";

    /// <summary>
    /// Row r of x [M, K] → q [PaddedK] bytes, scale and zero point: q = clamp(round(x / s) + z, 0, 255) with
    /// s = (max(0, max x) − min(0, min x)) / 255 and z = clamp(round(−min(0, min x) / s), 0, 255) (ONNX
    /// DynamicQuantizeLinear); a row of zeros gets s = 1, z = 0. Padding bytes are 0.
    /// </summary>
    /// <param name="x">M·K activations.</param>
    /// <param name="m">M.</param>
    /// <param name="k">K.</param>
    /// <param name="q">M·PaddedK bytes.</param>
    /// <param name="scales">M scales.</param>
    /// <param name="zeroPoints">M zero points.</param>
    public static void QuantizeActivations(ReadOnlySpan<float> x, int m, int k, Span<byte> q, Span<float> scales, Span<int> zeroPoints)
    {
        int padded = Pad(k);
        KernelChecks.AtLeast("Int8Gemm.QuantizeActivations", "x", x.Length, (long)m * k, "[M={0}, K={1}]", m, k);
        KernelChecks.AtLeast("Int8Gemm.QuantizeActivations", "q", q.Length, (long)m * padded, "[M={0}, PaddedK={1}]", m, padded);
        for (int row = 0; row < m; row++)
        {
            var values = x.Slice(row * k, k);
            float min = 0f, max = 0f;
            foreach (float v in values)
            {
                min = Math.Min(min, v);
                max = Math.Max(max, v);
            }

            float scale = (max - min) / 255f;
            if (!(scale > 0f))
            {
                scale = 1f;
            }

            int zero = (int)Math.Clamp(MathF.Round(-min / scale), 0f, 255f);
            scales[row] = scale;
            zeroPoints[row] = zero;
            var dst = q.Slice(row * padded, padded);
            float inverse = 1f / scale;
            for (int i = 0; i < k; i++)
            {
                dst[i] = (byte)Math.Clamp(MathF.Round(values[i] * inverse) + zero, 0f, 255f);
            }

            dst[k..].Clear();
        }
    }

    /// <summary>y [M, N] = dynamic-int8(x [M, K]) · Wᵀ + bias (+ y when <paramref name="accumulate"/>), split over the cores by rows of x.</summary>
    /// <param name="x">M·K activations (float32).</param>
    /// <param name="m">M.</param>
    /// <param name="weight">The quantized W [N, K].</param>
    /// <param name="bias">Empty, or N values.</param>
    /// <param name="y">M·N outputs.</param>
    /// <param name="accumulate">Add to y instead of overwriting it.</param>
    /// <exception cref="ArgumentException">M is negative or a span is too short.</exception>
    public static void MatMul(ReadOnlySpan<float> x, int m, Int8Weights weight, ReadOnlySpan<float> bias, Span<float> y, bool accumulate) =>
        Run(x, m, weight, bias, y, accumulate, reference: false);

    /// <summary>The scalar definition of <see cref="MatMul"/>: the same quantization, int32 dot products in index order.</summary>
    /// <param name="x">M·K activations.</param>
    /// <param name="m">M.</param>
    /// <param name="weight">The quantized W [N, K].</param>
    /// <param name="bias">Empty, or N values.</param>
    /// <param name="y">M·N outputs.</param>
    /// <param name="accumulate">Add to y instead of overwriting it.</param>
    /// <exception cref="ArgumentException">M is negative or a span is too short.</exception>
    public static void MatMulReference(ReadOnlySpan<float> x, int m, Int8Weights weight, ReadOnlySpan<float> bias, Span<float> y, bool accumulate) =>
        Run(x, m, weight, bias, y, accumulate, reference: true);

    private static void Run(ReadOnlySpan<float> x, int m, Int8Weights weight, ReadOnlySpan<float> bias, Span<float> y, bool accumulate, bool reference)
    {
        ArgumentNullException.ThrowIfNull(weight);
        int k = weight.K, n = weight.N, padded = weight.PaddedK;
        KernelChecks.Dims("Int8Gemm", m, k);
        KernelChecks.AtLeast("Int8Gemm", "x", x.Length, (long)m * k, "[M={0}, K={1}]", m, k);
        KernelChecks.Optional("Int8Gemm", "bias", bias.Length, n, "[N={0}]", n);
        KernelChecks.AtLeast("Int8Gemm", "y", y.Length, (long)m * n, "[M={0}, N={1}]", m, n);
        if (m == 0)
        {
            return;
        }

        byte[] q = ArrayPool<byte>.Shared.Rent(m * padded);
        float[] scales = ArrayPool<float>.Shared.Rent(m);
        int[] zeros = ArrayPool<int>.Shared.Rent(m);
        try
        {
            QuantizeActivations(x, m, k, q, scales, zeros);
            if (reference)
            {
                for (int row = 0; row < m; row++)
                {
                    OutputRow(q.AsSpan(row * padded, padded), scales[row], zeros[row], weight, bias, y.Slice(row * n, n), accumulate, reference: true);
                }

                return;
            }

            unsafe
            {
                fixed (float* py = y)
                {
                    var yp = (nint)py;
                    var bp = bias.IsEmpty ? null : bias.ToArray();
                    // Work in blocks of 4 rows (the VNNI micro-kernel's height); about 256K multiply-adds per chunk.
                    int blocks = (m + 3) / 4;
                    int grain = Math.Max(1, (1 << 18) / Math.Max(1, 4 * n * padded));
                    ParallelFor.For(blocks, grain, (from, to) =>
                    {
                        for (int block = from; block < to; block++)
                        {
                            int row = block * 4, count = Math.Min(4, m - row);
                            var output = new Span<float>((float*)yp + ((long)row * n), count * n);
                            if (count == 4 && AvxVnni.IsSupported)
                            {
                                OutputRows4(q.AsSpan(row * padded, 4 * padded), scales.AsSpan(row, 4), zeros.AsSpan(row, 4), weight, bp, output, accumulate);
                                continue;
                            }

                            for (int r = 0; r < count; r++)
                            {
                                OutputRow(q.AsSpan((row + r) * padded, padded), scales[row + r], zeros[row + r], weight, bp, output.Slice(r * n, n), accumulate, reference: false);
                            }
                        }
                    });
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(q);
            ArrayPool<float>.Shared.Return(scales);
            ArrayPool<int>.Shared.Return(zeros);
        }
    }

    /// <summary>y[n] for one quantized activation row against every weight row, four weight rows at a time.</summary>
    private static void OutputRow(ReadOnlySpan<byte> xq, float scale, int zero, Int8Weights weight, ReadOnlySpan<float> bias, Span<float> y, bool accumulate, bool reference)
    {
        int n = weight.N, padded = weight.PaddedK;
        ReadOnlySpan<sbyte> w = weight.Values;
        Span<int> dots = stackalloc int[4];
        for (int col = 0; col < n; col += 4)
        {
            int count = Math.Min(4, n - col);
            if (reference)
            {
                for (int j = 0; j < count; j++)
                {
                    dots[j] = DotReference(xq, w.Slice((col + j) * padded, padded));
                }
            }
            else
            {
                Dot4(xq, w, col, count, padded, dots);
            }

            for (int j = 0; j < count; j++)
            {
                int c = col + j;
                float value = scale * weight.ScaleValues[c] * (dots[j] - (zero * weight.RowSums[c]));
                if (!bias.IsEmpty)
                {
                    value += bias[c];
                }

                y[c] = accumulate ? y[c] + value : value;
            }
        }
    }

    /// <summary>
    /// Four quantized activation rows against every weight row: a 4 × 4 block of int32 dot products per step (4 x loads
    /// and 4 w loads feed 16 VPDPBUSD), then the same epilogue as <see cref="OutputRow"/>.
    /// </summary>
    private static void OutputRows4(ReadOnlySpan<byte> xq, ReadOnlySpan<float> scales, ReadOnlySpan<int> zeros, Int8Weights weight, ReadOnlySpan<float> bias, Span<float> y, bool accumulate)
    {
        int n = weight.N, padded = weight.PaddedK;
        ReadOnlySpan<sbyte> w = weight.Values;
        Span<int> dots = stackalloc int[16];
        ref byte x0 = ref MemoryMarshal.GetReference(xq);
        ref byte x1 = ref Unsafe.Add(ref x0, padded);
        ref byte x2 = ref Unsafe.Add(ref x1, padded);
        ref byte x3 = ref Unsafe.Add(ref x2, padded);
        for (int col = 0; col < n; col += 4)
        {
            int count = Math.Min(4, n - col);
            if (count == 4)
            {
                ref sbyte w0 = ref Unsafe.Add(ref MemoryMarshal.GetReference(w), col * padded);
                ref sbyte w1 = ref Unsafe.Add(ref w0, padded);
                ref sbyte w2 = ref Unsafe.Add(ref w1, padded);
                ref sbyte w3 = ref Unsafe.Add(ref w2, padded);
                Vector256<int> a00 = default, a01 = default, a02 = default, a03 = default;
                Vector256<int> a10 = default, a11 = default, a12 = default, a13 = default;
                Vector256<int> a20 = default, a21 = default, a22 = default, a23 = default;
                Vector256<int> a30 = default, a31 = default, a32 = default, a33 = default;
                for (int i = 0; i < padded; i += 32)
                {
                    var b0 = Vector256.LoadUnsafe(ref w0, (nuint)i);
                    var b1 = Vector256.LoadUnsafe(ref w1, (nuint)i);
                    var b2 = Vector256.LoadUnsafe(ref w2, (nuint)i);
                    var b3 = Vector256.LoadUnsafe(ref w3, (nuint)i);
                    var a = Vector256.LoadUnsafe(ref x0, (nuint)i);
                    a00 = AvxVnni.MultiplyWideningAndAdd(a00, a, b0);
                    a01 = AvxVnni.MultiplyWideningAndAdd(a01, a, b1);
                    a02 = AvxVnni.MultiplyWideningAndAdd(a02, a, b2);
                    a03 = AvxVnni.MultiplyWideningAndAdd(a03, a, b3);
                    a = Vector256.LoadUnsafe(ref x1, (nuint)i);
                    a10 = AvxVnni.MultiplyWideningAndAdd(a10, a, b0);
                    a11 = AvxVnni.MultiplyWideningAndAdd(a11, a, b1);
                    a12 = AvxVnni.MultiplyWideningAndAdd(a12, a, b2);
                    a13 = AvxVnni.MultiplyWideningAndAdd(a13, a, b3);
                    a = Vector256.LoadUnsafe(ref x2, (nuint)i);
                    a20 = AvxVnni.MultiplyWideningAndAdd(a20, a, b0);
                    a21 = AvxVnni.MultiplyWideningAndAdd(a21, a, b1);
                    a22 = AvxVnni.MultiplyWideningAndAdd(a22, a, b2);
                    a23 = AvxVnni.MultiplyWideningAndAdd(a23, a, b3);
                    a = Vector256.LoadUnsafe(ref x3, (nuint)i);
                    a30 = AvxVnni.MultiplyWideningAndAdd(a30, a, b0);
                    a31 = AvxVnni.MultiplyWideningAndAdd(a31, a, b1);
                    a32 = AvxVnni.MultiplyWideningAndAdd(a32, a, b2);
                    a33 = AvxVnni.MultiplyWideningAndAdd(a33, a, b3);
                }

                dots[0] = Vector256.Sum(a00);
                dots[1] = Vector256.Sum(a01);
                dots[2] = Vector256.Sum(a02);
                dots[3] = Vector256.Sum(a03);
                dots[4] = Vector256.Sum(a10);
                dots[5] = Vector256.Sum(a11);
                dots[6] = Vector256.Sum(a12);
                dots[7] = Vector256.Sum(a13);
                dots[8] = Vector256.Sum(a20);
                dots[9] = Vector256.Sum(a21);
                dots[10] = Vector256.Sum(a22);
                dots[11] = Vector256.Sum(a23);
                dots[12] = Vector256.Sum(a30);
                dots[13] = Vector256.Sum(a31);
                dots[14] = Vector256.Sum(a32);
                dots[15] = Vector256.Sum(a33);
            }
            else
            {
                for (int r = 0; r < 4; r++)
                {
                    for (int j = 0; j < count; j++)
                    {
                        dots[(r * 4) + j] = DotAvx2(xq.Slice(r * padded, padded), w.Slice((col + j) * padded, padded));
                    }
                }
            }

            for (int r = 0; r < 4; r++)
            {
                var yr = y.Slice(r * n, n);
                for (int j = 0; j < count; j++)
                {
                    int c = col + j;
                    float value = scales[r] * weight.ScaleValues[c] * (dots[(r * 4) + j] - (zeros[r] * weight.RowSums[c]));
                    if (!bias.IsEmpty)
                    {
                        value += bias[c];
                    }

                    yr[c] = accumulate ? yr[c] + value : value;
                }
            }
        }
    }

    /// <summary>Σᵢ x[i] · w[i] as integers (u8 × s8), in index order.</summary>
    internal static int DotReference(ReadOnlySpan<byte> x, ReadOnlySpan<sbyte> w)
    {
        int sum = 0;
        for (int i = 0; i < x.Length; i++)
        {
            sum += x[i] * w[i];
        }

        return sum;
    }

    /// <summary>dots[j] = x · w[col + j] for j &lt; count (rows of length <paramref name="padded"/>, a multiple of 32).</summary>
    private static void Dot4(ReadOnlySpan<byte> xq, ReadOnlySpan<sbyte> w, int col, int count, int padded, Span<int> dots)
    {
        if (count == 4 && AvxVnni.IsSupported)
        {
            ref byte x = ref MemoryMarshal.GetReference(xq);
            ref sbyte w0 = ref Unsafe.Add(ref MemoryMarshal.GetReference(w), col * padded);
            ref sbyte w1 = ref Unsafe.Add(ref w0, padded);
            ref sbyte w2 = ref Unsafe.Add(ref w1, padded);
            ref sbyte w3 = ref Unsafe.Add(ref w2, padded);
            Vector256<int> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int i = 0; i < padded; i += 32)
            {
                var xv = Vector256.LoadUnsafe(ref x, (nuint)i);
                a0 = AvxVnni.MultiplyWideningAndAdd(a0, xv, Vector256.LoadUnsafe(ref w0, (nuint)i));
                a1 = AvxVnni.MultiplyWideningAndAdd(a1, xv, Vector256.LoadUnsafe(ref w1, (nuint)i));
                a2 = AvxVnni.MultiplyWideningAndAdd(a2, xv, Vector256.LoadUnsafe(ref w2, (nuint)i));
                a3 = AvxVnni.MultiplyWideningAndAdd(a3, xv, Vector256.LoadUnsafe(ref w3, (nuint)i));
            }

            dots[0] = Vector256.Sum(a0);
            dots[1] = Vector256.Sum(a1);
            dots[2] = Vector256.Sum(a2);
            dots[3] = Vector256.Sum(a3);
            return;
        }

        for (int j = 0; j < count; j++)
        {
            var row = w.Slice((col + j) * padded, padded);
            dots[j] = Avx2.IsSupported ? DotAvx2(xq, row) : DotReference(xq, row);
        }
    }

    /// <summary>The AVX2 tier: bytes widened to 16 bits (unsigned x, signed w), then VPMADDWD's pairwise int32 sums; exact.</summary>
    private static int DotAvx2(ReadOnlySpan<byte> xq, ReadOnlySpan<sbyte> w)
    {
        ref byte x = ref MemoryMarshal.GetReference(xq);
        ref sbyte wr = ref MemoryMarshal.GetReference(w);
        var acc = Vector256<int>.Zero;
        for (int i = 0; i < xq.Length; i += 16)
        {
            var xs = Avx2.ConvertToVector256Int16(Vector128.LoadUnsafe(ref x, (nuint)i));
            var ws = Avx2.ConvertToVector256Int16(Vector128.LoadUnsafe(ref wr, (nuint)i));
            acc = Avx2.Add(acc, Avx2.MultiplyAddAdjacent(xs, ws));
        }

        return Vector256.Sum(acc);
    }
}
