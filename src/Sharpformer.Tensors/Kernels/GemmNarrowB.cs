using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Kernels;

/// <summary>The storage type of a B that the GEMM widens to F32 while it packs it (<see cref="GemmNarrowB"/>).</summary>
internal enum NarrowB
{
    /// <summary>B is F32: the ordinary packing.</summary>
    None,

    /// <summary>IEEE half precision.</summary>
    F16,

    /// <summary>bfloat16: the upper 16 bits of an F32.</summary>
    BF16,

    /// <summary>Half codes (<see cref="HalfCodes"/>): F16 values re-encoded to widen in three operations.</summary>
    F16Code,
}

public static partial class Gemm
{
    /// <summary>
    /// C = alpha · A · Bᵀ + beta · C (+ bias broadcast over rows), B stored [n, k] in F16 (a Linear weight [out, in]):
    /// the packed GEMM widens B to F32 while packing each panel for the micro-kernel, so B is read once as 2-byte values
    /// and no F32 copy of it is ever written. The result equals widening B to F32 and calling
    /// <see cref="Sgemm(bool, bool, int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, Span{float}, int, ReadOnlySpan{float})"/>
    /// with transB, bit for bit, where that call does not cut k into slices (k &lt; 8192) nor take its thin path (m ≤ 8).
    /// </summary>
    /// <param name="m">Rows of A and C.</param>
    /// <param name="n">Rows of B as stored, columns of C.</param>
    /// <param name="k">Inner dimension.</param>
    /// <param name="alpha">Scale of the product.</param>
    /// <param name="a">A [m, k], row stride <paramref name="lda"/>.</param>
    /// <param name="lda">Row stride of A (≥ k).</param>
    /// <param name="b">B [n, k] in F16, row stride <paramref name="ldb"/>.</param>
    /// <param name="ldb">Row stride of B (≥ k).</param>
    /// <param name="beta">Scale of C's previous contents; 0 overwrites (C is not read).</param>
    /// <param name="c">C [m, n], row stride <paramref name="ldc"/>.</param>
    /// <param name="ldc">Row stride of C (≥ n).</param>
    /// <param name="bias">Empty, or n values added to every row of C.</param>
    /// <exception cref="ArgumentException">A dimension is negative, a leading dimension is too small, or a span is too short.</exception>
    public static void SgemmNarrowB(
        int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<Half> b, int ldb,
        float beta, Span<float> c, int ldc, ReadOnlySpan<float> bias = default)
    {
        Validate(false, true, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc, bias.Length);
        SgemmNarrowBCore(GemmDriver.BestIsa, ParallelFor.MaxDegreeOfParallelism, NarrowB.F16, m, n, k, alpha, a, lda, MemoryMarshal.Cast<Half, ushort>(b), ldb, beta, c, ldc, bias);
    }

    /// <summary>
    /// C = alpha · A · Bᵀ + beta · C (+ bias), B stored [n, k] in BF16, widened while packed: see
    /// <see cref="SgemmNarrowB(int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{Half}, int, float, Span{float}, int, ReadOnlySpan{float})"/>.
    /// </summary>
    /// <param name="m">Rows of A and C.</param>
    /// <param name="n">Rows of B as stored, columns of C.</param>
    /// <param name="k">Inner dimension.</param>
    /// <param name="alpha">Scale of the product.</param>
    /// <param name="a">A [m, k], row stride <paramref name="lda"/>.</param>
    /// <param name="lda">Row stride of A (≥ k).</param>
    /// <param name="b">B [n, k] in BF16, row stride <paramref name="ldb"/>.</param>
    /// <param name="ldb">Row stride of B (≥ k).</param>
    /// <param name="beta">Scale of C's previous contents; 0 overwrites (C is not read).</param>
    /// <param name="c">C [m, n], row stride <paramref name="ldc"/>.</param>
    /// <param name="ldc">Row stride of C (≥ n).</param>
    /// <param name="bias">Empty, or n values added to every row of C.</param>
    /// <exception cref="ArgumentException">A dimension is negative, a leading dimension is too small, or a span is too short.</exception>
    public static void SgemmNarrowB(
        int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<BFloat16> b, int ldb,
        float beta, Span<float> c, int ldc, ReadOnlySpan<float> bias = default)
    {
        Validate(false, true, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc, bias.Length);
        SgemmNarrowBCore(GemmDriver.BestIsa, ParallelFor.MaxDegreeOfParallelism, NarrowB.BF16, m, n, k, alpha, a, lda, MemoryMarshal.Cast<BFloat16, ushort>(b), ldb, beta, c, ldc, bias);
    }

    /// <summary>
    /// C = alpha · A · Bᵀ + beta · C (+ bias), B stored [n, k] as half codes (<see cref="HalfCodes"/>), widened while
    /// packed: bit-equal to
    /// <see cref="SgemmNarrowB(int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{Half}, int, float, Span{float}, int, ReadOnlySpan{float})"/>
    /// on the halves the codes stand for (the panels hold the same F32 values).
    /// </summary>
    /// <param name="m">Rows of A and C.</param>
    /// <param name="n">Rows of B as stored, columns of C.</param>
    /// <param name="k">Inner dimension.</param>
    /// <param name="alpha">Scale of the product.</param>
    /// <param name="a">A [m, k], row stride <paramref name="lda"/>.</param>
    /// <param name="lda">Row stride of A (≥ k).</param>
    /// <param name="b">B [n, k] as half codes, row stride <paramref name="ldb"/>.</param>
    /// <param name="ldb">Row stride of B (≥ k).</param>
    /// <param name="beta">Scale of C's previous contents; 0 overwrites (C is not read).</param>
    /// <param name="c">C [m, n], row stride <paramref name="ldc"/>.</param>
    /// <param name="ldc">Row stride of C (≥ n).</param>
    /// <param name="bias">Empty, or n values added to every row of C.</param>
    /// <exception cref="ArgumentException">A dimension is negative, a leading dimension is too small, or a span is too short.</exception>
    public static void SgemmNarrowB(
        int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<HalfCode> b, int ldb,
        float beta, Span<float> c, int ldc, ReadOnlySpan<float> bias = default)
    {
        Validate(false, true, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc, bias.Length);
        SgemmNarrowBCore(GemmDriver.BestIsa, ParallelFor.MaxDegreeOfParallelism, NarrowB.F16Code, m, n, k, alpha, a, lda, MemoryMarshal.Cast<HalfCode, ushort>(b), ldb, beta, c, ldc, bias);
    }

    /// <summary>The narrow-B product after validation, on <paramref name="isa"/> (tests force each tier).</summary>
    internal static unsafe void SgemmNarrowBCore(
        GemmIsa isa, int maxThreads, NarrowB format, int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda,
        ReadOnlySpan<ushort> b, int ldb, float beta, Span<float> c, int ldc, ReadOnlySpan<float> bias)
    {
        Debug.Assert(format != NarrowB.None, "a narrow B");
        if (isa == GemmIsa.Scalar)
        {
            GemmNarrowB.Reference(format, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias);
            return;
        }

        fixed (float* pa = a, pc = c, pbias = bias)
        fixed (ushort* pb = b)
        {
            GemmDriver.RunNarrowB(isa, maxThreads, format, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc, bias.IsEmpty ? null : pbias);
        }
    }
}

/// <summary>
/// Packing of a B stored [n, k] in F16, half codes or BF16 (a Linear weight) straight into the GEMM's F32 panels
/// (<see cref="GemmDriver.PackBBlock"/>'s layout: d[p · NR + j]), widening on the way. With the panels packed inside
/// the tiles (m ≤ one row tile, a prefill), each panel goes to L1 right before its use, so the weight is read once from
/// memory as 2-byte values; widening the whole weight to an F32 scratch first wrote and read back twice its size.
/// The fast forms take 16 weight rows × 16 k (AVX-512) or 8 × 8 (AVX) at a time: each row's values widened in one
/// vector, then an in-register transpose.
/// </summary>
internal static unsafe class GemmNarrowB
{
    /// <summary>How one narrow element type widens to F32: one value, 8 (AVX), 16 (AVX-512).</summary>
    private interface IFormat
    {
        static abstract float Scalar(ushort bits);

        static abstract Vector256<float> Widen256(Vector128<ushort> bits);

        static abstract Vector512<float> Widen512(Vector256<ushort> bits, in Tables512 tables);
    }

    /// <summary>Packs columns [j0, j0 + cols) of Bᵀ (B stored [n, k] narrow) into one panel per k block, as <see cref="GemmDriver.PackBPanel"/>.</summary>
    public static void PackBPanel(NarrowB format, ushort* b, int ldb, int j0, int cols, int k, int kc, int nr, int nPad, int panel, float* dst)
    {
        for (int p0 = 0; p0 < k; p0 += kc)
        {
            int kcb = Math.Min(kc, k - p0);
            PackBBlock(format, b, ldb, j0, cols, p0, kcb, nr, dst + ((long)p0 * nPad) + ((long)panel * kcb * nr));
        }
    }

    /// <summary>Packs Bᵀ[p0 .. p0 + kcb, j0 .. j0 + cols) widened into one panel d[p · NR + j], zero past cols.</summary>
    public static void PackBBlock(NarrowB format, ushort* b, int ldb, int j0, int cols, int p0, int kcb, int nr, float* d)
    {
        switch (format)
        {
            case NarrowB.F16: PackBBlock<F16>(b, ldb, j0, cols, p0, kcb, nr, d); break;
            case NarrowB.F16Code: PackBBlock<F16Code>(b, ldb, j0, cols, p0, kcb, nr, d); break;
            default: PackBBlock<BF16>(b, ldb, j0, cols, p0, kcb, nr, d); break;
        }
    }

    /// <summary>
    /// The scalar reference of a narrow-B product: <see cref="Gemm.Reference"/>'s loop with each B value widened as it is
    /// read, so it equals widening B and calling the reference, bit for bit.
    /// </summary>
    internal static void Reference(
        NarrowB format, int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<ushort> b, int ldb,
        float beta, Span<float> c, int ldc, ReadOnlySpan<float> bias)
    {
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                float sum = 0f;
                for (int p = 0; p < k; p++)
                {
                    ushort bits = b[(j * ldb) + p];
                    sum += a[(i * lda) + p] * format switch
                    {
                        NarrowB.F16 => F16.Scalar(bits),
                        NarrowB.F16Code => F16Code.Scalar(bits),
                        _ => BF16.Scalar(bits),
                    };
                }

                float prior = beta == 0f ? 0f : beta * c[(i * ldc) + j];
                c[(i * ldc) + j] = (alpha * sum) + prior + (bias.IsEmpty ? 0f : bias[j]);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackBBlock<TF>(ushort* b, int ldb, int j0, int cols, int p0, int kcb, int nr, float* d)
        where TF : struct, IFormat
    {
        int pDone = 0, jDone = 0;
        if (cols == nr && nr % 16 == 0 && Vector512.IsHardwareAccelerated && Avx512F.IsSupported)
        {
            pDone = kcb & ~15;
            var tables = Tables512.Create();
            for (int jj = 0; jj < nr; jj += 16)
            {
                for (int p = 0; p < pDone; p += 16)
                {
                    Transposed16<TF>(b + ((long)(j0 + jj) * ldb) + p0 + p, ldb, d + (p * nr) + jj, nr, tables);
                }
            }

            jDone = nr;
        }
        else if (cols == nr && nr % 8 == 0 && Avx.IsSupported)
        {
            pDone = kcb & ~7;
            for (int jj = 0; jj < nr; jj += 8)
            {
                for (int p = 0; p < pDone; p += 8)
                {
                    Transposed8<TF>(b + ((long)(j0 + jj) * ldb) + p0 + p, ldb, d + (p * nr) + jj, nr);
                }
            }

            jDone = nr;
        }

        // What the vector forms left: the k tail of every column, or every value of a part panel.
        for (int jj = 0; jj < cols; jj++)
        {
            ushort* src = b + ((long)(j0 + jj) * ldb) + p0;
            for (int p = jj < jDone ? pDone : 0; p < kcb; p++) d[(p * nr) + jj] = TF.Scalar(src[p]);
        }

        for (int jj = cols; jj < nr; jj++)
        {
            for (int p = 0; p < kcb; p++) d[(p * nr) + jj] = 0f;
        }
    }

    /// <summary>
    /// 16 weight rows × 16 k values → 16 k steps × 16 columns of the panel: each row's 16 values widened in one vector
    /// (<paramref name="src"/>[r · ldb + p]), then a 16×16 transpose in four shuffle stages, stored at d[p · nr + r].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transposed16<TF>(ushort* src, int ldb, float* d, int nr, in Tables512 t)
        where TF : struct, IFormat
    {
        Vector512<float> r0 = TF.Widen512(Vector256.Load(src), t);
        Vector512<float> r1 = TF.Widen512(Vector256.Load(src + ldb), t);
        Vector512<float> r2 = TF.Widen512(Vector256.Load(src + (2L * ldb)), t);
        Vector512<float> r3 = TF.Widen512(Vector256.Load(src + (3L * ldb)), t);
        Vector512<float> r4 = TF.Widen512(Vector256.Load(src + (4L * ldb)), t);
        Vector512<float> r5 = TF.Widen512(Vector256.Load(src + (5L * ldb)), t);
        Vector512<float> r6 = TF.Widen512(Vector256.Load(src + (6L * ldb)), t);
        Vector512<float> r7 = TF.Widen512(Vector256.Load(src + (7L * ldb)), t);
        Vector512<float> r8 = TF.Widen512(Vector256.Load(src + (8L * ldb)), t);
        Vector512<float> r9 = TF.Widen512(Vector256.Load(src + (9L * ldb)), t);
        Vector512<float> r10 = TF.Widen512(Vector256.Load(src + (10L * ldb)), t);
        Vector512<float> r11 = TF.Widen512(Vector256.Load(src + (11L * ldb)), t);
        Vector512<float> r12 = TF.Widen512(Vector256.Load(src + (12L * ldb)), t);
        Vector512<float> r13 = TF.Widen512(Vector256.Load(src + (13L * ldb)), t);
        Vector512<float> r14 = TF.Widen512(Vector256.Load(src + (14L * ldb)), t);
        Vector512<float> r15 = TF.Widen512(Vector256.Load(src + (15L * ldb)), t);

        // Per 128-bit lane L (k 4L .. 4L + 3): pairs, then 4 rows, of one k.
        Quad(r0, r1, r2, r3, out var u0, out var u1, out var u2, out var u3);
        Quad(r4, r5, r6, r7, out var u4, out var u5, out var u6, out var u7);
        Quad(r8, r9, r10, r11, out var u8, out var u9, out var u10, out var u11);
        Quad(r12, r13, r14, r15, out var u12, out var u13, out var u14, out var u15);

        // u(4g + i) lane L = rows 4g .. 4g + 3 at k = 4L + i; gather the four groups' lane L into one vector.
        Lanes(u0, u4, u8, u12, d, nr);
        Lanes(u1, u5, u9, u13, d + nr, nr);
        Lanes(u2, u6, u10, u14, d + (2 * nr), nr);
        Lanes(u3, u7, u11, u15, d + (3 * nr), nr);
    }

    /// <summary>Four rows → per lane, the four rows' values at each of the lane's four k (k offset 0, 1, 2, 3).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Quad(
        Vector512<float> r0, Vector512<float> r1, Vector512<float> r2, Vector512<float> r3,
        out Vector512<float> k0, out Vector512<float> k1, out Vector512<float> k2, out Vector512<float> k3)
    {
        Vector512<double> t0 = Avx512F.UnpackLow(r0, r1).AsDouble(), t1 = Avx512F.UnpackHigh(r0, r1).AsDouble();
        Vector512<double> t2 = Avx512F.UnpackLow(r2, r3).AsDouble(), t3 = Avx512F.UnpackHigh(r2, r3).AsDouble();
        k0 = Avx512F.UnpackLow(t0, t2).AsSingle();
        k1 = Avx512F.UnpackHigh(t0, t2).AsSingle();
        k2 = Avx512F.UnpackLow(t1, t3).AsSingle();
        k3 = Avx512F.UnpackHigh(t1, t3).AsSingle();
    }

    /// <summary>
    /// Four vectors holding rows 0–3, 4–7, 8–11, 12–15 of one k offset i per lane L (k = 4L + i) → the k steps i, 4 + i,
    /// 8 + i, 12 + i of all 16 rows, stored at d, d + 4 · nr, d + 8 · nr, d + 12 · nr.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Lanes(Vector512<float> g0, Vector512<float> g1, Vector512<float> g2, Vector512<float> g3, float* d, int nr)
    {
        Vector512<float> even01 = Avx512F.Shuffle4x128(g0, g1, 0x88), odd01 = Avx512F.Shuffle4x128(g0, g1, 0xDD);
        Vector512<float> even23 = Avx512F.Shuffle4x128(g2, g3, 0x88), odd23 = Avx512F.Shuffle4x128(g2, g3, 0xDD);
        Avx512F.Shuffle4x128(even01, even23, 0x88).Store(d);
        Avx512F.Shuffle4x128(odd01, odd23, 0x88).Store(d + (4 * nr));
        Avx512F.Shuffle4x128(even01, even23, 0xDD).Store(d + (8 * nr));
        Avx512F.Shuffle4x128(odd01, odd23, 0xDD).Store(d + (12 * nr));
    }

    /// <summary>8 weight rows × 8 k values widened, then <see cref="GemmDriver.Transpose8x8"/>: 8 k steps × 8 columns at d[p · nr + r].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transposed8<TF>(ushort* src, int ldb, float* d, int nr)
        where TF : struct, IFormat
    {
        Vector256<float> r0 = TF.Widen256(Vector128.Load(src));
        Vector256<float> r1 = TF.Widen256(Vector128.Load(src + ldb));
        Vector256<float> r2 = TF.Widen256(Vector128.Load(src + (2L * ldb)));
        Vector256<float> r3 = TF.Widen256(Vector128.Load(src + (3L * ldb)));
        Vector256<float> r4 = TF.Widen256(Vector128.Load(src + (4L * ldb)));
        Vector256<float> r5 = TF.Widen256(Vector128.Load(src + (5L * ldb)));
        Vector256<float> r6 = TF.Widen256(Vector128.Load(src + (6L * ldb)));
        Vector256<float> r7 = TF.Widen256(Vector128.Load(src + (7L * ldb)));
        GemmDriver.Transpose8x8(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
        r0.Store(d);
        r1.Store(d + nr);
        r2.Store(d + (2 * nr));
        r3.Store(d + (3 * nr));
        r4.Store(d + (4 * nr));
        r5.Store(d + (5 * nr));
        r6.Store(d + (6 * nr));
        r7.Store(d + (7 * nr));
    }

    /// <summary>
    /// The F16 widening tables as vectors, made once per packed block (from arrays, so the JIT keeps them in registers):
    /// the magnitude mask, the sign mask, and <see cref="Gemv"/>'s rebias and subtrahend tables by exponent, entries 0–15
    /// and 16–31.
    /// </summary>
    private readonly struct Tables512
    {
        public Vector512<uint> MagnitudeMask { get; init; }

        public Vector512<uint> SignMask { get; init; }

        public Vector512<uint> RebiasLow { get; init; }

        public Vector512<uint> RebiasHigh { get; init; }

        public Vector512<float> OffsetLow { get; init; }

        public Vector512<float> OffsetHigh { get; init; }

        public static Tables512 Create() => new()
        {
            MagnitudeMask = Vector512.Create(0x0FFFE000u),
            SignMask = Vector512.Create(0x80000000u),
            RebiasLow = Vector512.Create(Gemv.HalfRebiasTable.AsSpan(0, 16)),
            RebiasHigh = Vector512.Create(Gemv.HalfRebiasTable.AsSpan(16, 16)),
            OffsetLow = Vector512.Create(Gemv.HalfOffsetTable.AsSpan(0, 16)),
            OffsetHigh = Vector512.Create(Gemv.HalfOffsetTable.AsSpan(16, 16)),
        };
    }

    /// <summary>
    /// F16 → F32, exact (normals, subnormals, zeros, inf, NaN) without forming a subnormal F32 operand (a microcode assist
    /// on x86): the 15 magnitude bits move to F32's place and the exponent is rebiased by an integer add (112; 113 for
    /// exponent 0, from which subtracting 2^-14 leaves the exact subnormal or zero; 224 for inf/NaN), then the sign is
    /// copied. The AVX-512 form looks the add and the subtrahend up by exponent (as <see cref="Gemv"/>'s widening does).
    /// </summary>
    private readonly struct F16 : IFormat
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Scalar(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Widen256(Vector128<ushort> bits)
        {
            var h = Vector256.WidenLower(bits.ToVector256Unsafe());
            var magnitude = Vector256.ShiftRightLogical(Vector256.ShiftLeft(h, 17), 4);
            var normal = magnitude + Vector256.Create(0x38000000u);
            var small = ((normal + Vector256.Create(0x00800000u)).AsSingle() - Vector256.Create(BitConverter.UInt32BitsToSingle(0x38800000))).AsUInt32();
            var value = Vector256.ConditionalSelect(Vector256.LessThan(magnitude, Vector256.Create(0x00800000u)), small, normal);
            value = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(magnitude, Vector256.Create(0x0F800000u)), normal + Vector256.Create(0x38000000u), value);
            return (value | (Vector256.ShiftLeft(h, 16) & Vector256.Create(0x80000000u))).AsSingle();
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Widen512(Vector256<ushort> bits, in Tables512 t)
        {
            var lanes = Vector512.WidenLower(bits.ToVector512Unsafe());
            var exponent = Vector512.ShiftRightLogical(lanes, 10);
            var rebiased = (Vector512.ShiftLeft(lanes, 13) & t.MagnitudeMask) + Avx512F.PermuteVar16x32x2(t.RebiasLow, exponent, t.RebiasHigh);
            var value = rebiased.AsSingle() - Avx512F.PermuteVar16x32x2(t.OffsetLow, exponent.AsInt32(), t.OffsetHigh);
            return (value.AsUInt32() | (Vector512.ShiftLeft(lanes, 16) & t.SignMask)).AsSingle();
        }
    }

    /// <summary>
    /// Half code → F32, exact (<see cref="HalfCodes"/>): sign-extended to 32 bits, shifted left by 13, masked to the sign
    /// and bits 27–13, times 2^102; never a subnormal F32 operand.
    /// </summary>
    private readonly struct F16Code : IFormat
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Scalar(ushort bits) => HalfCodes.Widen(bits);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Widen256(Vector128<ushort> bits)
        {
            var c = Vector256.WidenLower(bits.AsInt16().ToVector256Unsafe());
            return (Vector256.ShiftLeft(c, 13) & Vector256.Create(unchecked((int)HalfCodes.Mask))).AsSingle() * Vector256.Create(HalfCodes.Scale);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Widen512(Vector256<ushort> bits, in Tables512 t)
        {
            var c = Vector512.WidenLower(bits.AsInt16().ToVector512Unsafe());
            return (Vector512.ShiftLeft(c, 13) & Vector512.Create(unchecked((int)HalfCodes.Mask))).AsSingle() * Vector512.Create(HalfCodes.Scale);
        }
    }

    /// <summary>BF16 → F32: the 16 bits become the upper half of the F32 (exact).</summary>
    private readonly struct BF16 : IFormat
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Scalar(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Widen256(Vector128<ushort> bits) => Vector256.ShiftLeft(Vector256.WidenLower(bits.ToVector256Unsafe()), 16).AsSingle();

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Widen512(Vector256<ushort> bits, in Tables512 t) => Vector512.ShiftLeft(Vector512.WidenLower(bits.ToVector512Unsafe()), 16).AsSingle();
    }
}
