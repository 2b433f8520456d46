using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sharpformer.Tensors.Kernels;

/// <summary>
/// Fast, accurate float transcendentals for the kernels: exp (≤ 2 ulp over the whole float range, -inf → 0, large → +inf,
/// NaN → NaN) and erf (absolute error below 1e-6). Each has a scalar form, which is the reference, and Vector128/256/512
/// forms that the other kernels (softmax, GELU, SiLU, cross-entropy) call inside their own loops.
/// </summary>
/// <remarks>
/// exp(x) = 2ⁿ · exp(r) with n = round(x / ln 2) and |r| ≤ ln 2 / 2. r is computed with a two-part ln 2 (Cody–Waite) so it
/// stays exact to float precision; exp(r) is the degree-7 Taylor polynomial (truncation error below 6e-9, well under
/// half an ulp), evaluated by Horner with fused multiply-adds. 2ⁿ is built from exponent bits in two halves so results
/// that are subnormal (n down to -150) or overflow (n = 128) come out right without a special case.
/// </remarks>
public static class FastMath
{
    // Inputs are clamped into [MinInput, MaxInput]: below, exp underflows to 0; above, it overflows to +inf.
    private const float MinInput = -104f;
    private const float MaxInput = 89f;
    private const float Log2E = 1.44269504088896341f;

    // ln 2 split so that n · Ln2Hi is exact for |n| ≤ 2⁸ (Ln2Hi has 15 significant bits).
    private const float Ln2Hi = 0.693145751953125f;
    private const float Ln2Lo = 1.42860682030941723212e-6f;

    // 1.5 · 2²³: adding it rounds a float of magnitude < 2²² to an integer held in the low mantissa bits.
    private const float RoundMagic = 12582912f;
    private const int RoundMagicBits = 0x4B400000;

    private const float C2 = 1f / 2f;
    private const float C3 = 1f / 6f;
    private const float C4 = 1f / 24f;
    private const float C5 = 1f / 120f;
    private const float C6 = 1f / 720f;
    private const float C7 = 1f / 5040f;

    // Abramowitz & Stegun 7.1.26: erf(a) ≈ 1 − t·(A1 + t·(A2 + t·(A3 + t·(A4 + t·A5))))·exp(−a²), t = 1 / (1 + P·a),
    // a = |x|, with absolute error ≤ 1.5e-7 before float rounding.
    private const float ErfP = 0.3275911f;
    private const float A1 = 0.254829592f;
    private const float A2 = -0.284496736f;
    private const float A3 = 1.421413741f;
    private const float A4 = -1.453152027f;
    private const float A5 = 1.061405429f;

    /// <summary>e^x for one float (the scalar reference of the vector forms): ≤ 2 ulp, exp(-inf) = 0, NaN → NaN.</summary>
    /// <param name="x">The exponent.</param>
    /// <returns>e raised to <paramref name="x"/>.</returns>
    public static float Exp(float x)
    {
        if (float.IsNaN(x)) return x;
        float xc = Math.Clamp(x, MinInput, MaxInput);
        float kf = MathF.FusedMultiplyAdd(xc, Log2E, RoundMagic);
        int n = BitConverter.SingleToInt32Bits(kf) - RoundMagicBits;
        kf -= RoundMagic;
        float r = MathF.FusedMultiplyAdd(kf, -Ln2Hi, xc);
        r = MathF.FusedMultiplyAdd(kf, -Ln2Lo, r);
        float p = MathF.FusedMultiplyAdd(C7, r, C6);
        p = MathF.FusedMultiplyAdd(p, r, C5);
        p = MathF.FusedMultiplyAdd(p, r, C4);
        p = MathF.FusedMultiplyAdd(p, r, C3);
        p = MathF.FusedMultiplyAdd(p, r, C2);
        p = MathF.FusedMultiplyAdd(p, r, 1f);
        p = MathF.FusedMultiplyAdd(p, r, 1f);
        int n1 = n >> 1, n2 = n - n1;
        return p * BitConverter.Int32BitsToSingle((n1 + 127) << 23) * BitConverter.Int32BitsToSingle((n2 + 127) << 23);
    }

    /// <summary>[N] → [N]: destination[i] = e^x[i] (SIMD; in place allowed).</summary>
    /// <param name="x">Exponents.</param>
    /// <param name="destination">Results; at least as long as <paramref name="x"/>.</param>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <paramref name="x"/>.</exception>
    public static void Exp(ReadOnlySpan<float> x, Span<float> destination)
    {
        KernelChecks.SameLength("FastMath.Exp", "x", x.Length, "destination", destination.Length);
        SimdDriver.UnaryParallel<ExpOp>(x, destination);
    }

    /// <summary>erf(x) for one float (the scalar reference of the vector forms), absolute error below 1e-6.</summary>
    /// <param name="x">The argument.</param>
    /// <returns>The error function of <paramref name="x"/>; ±1 for ±inf, NaN for NaN.</returns>
    public static float Erf(float x)
    {
        float a = MathF.Abs(x);
        float t = 1f / MathF.FusedMultiplyAdd(ErfP, a, 1f);
        float poly = MathF.FusedMultiplyAdd(A5, t, A4);
        poly = MathF.FusedMultiplyAdd(poly, t, A3);
        poly = MathF.FusedMultiplyAdd(poly, t, A2);
        poly = MathF.FusedMultiplyAdd(poly, t, A1);
        poly *= t;
        float y = MathF.FusedMultiplyAdd(-poly, Exp(-a * a), 1f);
        return MathF.CopySign(y, x);
    }

    /// <summary>[N] → [N]: destination[i] = erf(x[i]) (SIMD; in place allowed).</summary>
    /// <param name="x">Arguments.</param>
    /// <param name="destination">Results; at least as long as <paramref name="x"/>.</param>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <paramref name="x"/>.</exception>
    public static void Erf(ReadOnlySpan<float> x, Span<float> destination)
    {
        KernelChecks.SameLength("FastMath.Erf", "x", x.Length, "destination", destination.Length);
        SimdDriver.UnaryParallel<ErfOp>(x, destination);
    }

    /// <summary>Scalar reference of the span <see cref="Exp(ReadOnlySpan{float}, Span{float})"/>.</summary>
    internal static void ExpReference(ReadOnlySpan<float> x, Span<float> destination) => SimdDriver.UnaryReference<ExpOp>(x, destination);

    /// <summary>Scalar reference of the span <see cref="Erf(ReadOnlySpan{float}, Span{float})"/>.</summary>
    internal static void ErfReference(ReadOnlySpan<float> x, Span<float> destination) => SimdDriver.UnaryReference<ErfOp>(x, destination);

    /// <summary>e^x, 16 lanes; same algorithm and rounding as <see cref="Exp(float)"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Exp(Vector512<float> x)
    {
        var xc = Vector512.MinNative(Vector512.MaxNative(x, Vector512.Create(MinInput)), Vector512.Create(MaxInput));
        var kf = Vector512.FusedMultiplyAdd(xc, Vector512.Create(Log2E), Vector512.Create(RoundMagic));
        var n = kf.AsInt32() - Vector512.Create(RoundMagicBits);
        kf -= Vector512.Create(RoundMagic);
        var r = Vector512.FusedMultiplyAdd(kf, Vector512.Create(-Ln2Hi), xc);
        r = Vector512.FusedMultiplyAdd(kf, Vector512.Create(-Ln2Lo), r);
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(C7), r, Vector512.Create(C6));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C5));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C3));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C2));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        Vector512<float> result;
        if (Avx512F.IsSupported)
        {
            // vscalefps computes p · 2^kf with one rounding, subnormal and overflow results included.
            result = Avx512F.Scale(p, kf);
        }
        else
        {
            var n1 = Vector512.ShiftRightArithmetic(n, 1);
            var n2 = n - n1;
            var bias = Vector512.Create(127);
            result = p * Vector512.ShiftLeft(n1 + bias, 23).AsSingle() * Vector512.ShiftLeft(n2 + bias, 23).AsSingle();
        }

        return Vector512.ConditionalSelect(Vector512.Equals(x, x), result, x);
    }

    /// <summary>e^x, 8 lanes; same algorithm and rounding as <see cref="Exp(float)"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Exp(Vector256<float> x)
    {
        var xc = Vector256.MinNative(Vector256.MaxNative(x, Vector256.Create(MinInput)), Vector256.Create(MaxInput));
        var kf = Vector256.FusedMultiplyAdd(xc, Vector256.Create(Log2E), Vector256.Create(RoundMagic));
        var n = kf.AsInt32() - Vector256.Create(RoundMagicBits);
        kf -= Vector256.Create(RoundMagic);
        var r = Vector256.FusedMultiplyAdd(kf, Vector256.Create(-Ln2Hi), xc);
        r = Vector256.FusedMultiplyAdd(kf, Vector256.Create(-Ln2Lo), r);
        var p = Vector256.FusedMultiplyAdd(Vector256.Create(C7), r, Vector256.Create(C6));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C5));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C4));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C3));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C2));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256<float>.One);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256<float>.One);
        var n1 = Vector256.ShiftRightArithmetic(n, 1);
        var n2 = n - n1;
        var bias = Vector256.Create(127);
        var result = p * Vector256.ShiftLeft(n1 + bias, 23).AsSingle() * Vector256.ShiftLeft(n2 + bias, 23).AsSingle();
        return Vector256.ConditionalSelect(Vector256.Equals(x, x), result, x);
    }

    /// <summary>e^x, 4 lanes; same algorithm and rounding as <see cref="Exp(float)"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<float> Exp(Vector128<float> x)
    {
        var xc = Vector128.MinNative(Vector128.MaxNative(x, Vector128.Create(MinInput)), Vector128.Create(MaxInput));
        var kf = Vector128.FusedMultiplyAdd(xc, Vector128.Create(Log2E), Vector128.Create(RoundMagic));
        var n = kf.AsInt32() - Vector128.Create(RoundMagicBits);
        kf -= Vector128.Create(RoundMagic);
        var r = Vector128.FusedMultiplyAdd(kf, Vector128.Create(-Ln2Hi), xc);
        r = Vector128.FusedMultiplyAdd(kf, Vector128.Create(-Ln2Lo), r);
        var p = Vector128.FusedMultiplyAdd(Vector128.Create(C7), r, Vector128.Create(C6));
        p = Vector128.FusedMultiplyAdd(p, r, Vector128.Create(C5));
        p = Vector128.FusedMultiplyAdd(p, r, Vector128.Create(C4));
        p = Vector128.FusedMultiplyAdd(p, r, Vector128.Create(C3));
        p = Vector128.FusedMultiplyAdd(p, r, Vector128.Create(C2));
        p = Vector128.FusedMultiplyAdd(p, r, Vector128<float>.One);
        p = Vector128.FusedMultiplyAdd(p, r, Vector128<float>.One);
        var n1 = Vector128.ShiftRightArithmetic(n, 1);
        var n2 = n - n1;
        var bias = Vector128.Create(127);
        var result = p * Vector128.ShiftLeft(n1 + bias, 23).AsSingle() * Vector128.ShiftLeft(n2 + bias, 23).AsSingle();
        return Vector128.ConditionalSelect(Vector128.Equals(x, x), result, x);
    }

    /// <summary>erf(x), 16 lanes; same algorithm as <see cref="Erf(float)"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Erf(Vector512<float> x)
    {
        var a = Vector512.Abs(x);
        var t = Vector512<float>.One / Vector512.FusedMultiplyAdd(Vector512.Create(ErfP), a, Vector512<float>.One);
        var poly = Vector512.FusedMultiplyAdd(Vector512.Create(A5), t, Vector512.Create(A4));
        poly = Vector512.FusedMultiplyAdd(poly, t, Vector512.Create(A3));
        poly = Vector512.FusedMultiplyAdd(poly, t, Vector512.Create(A2));
        poly = Vector512.FusedMultiplyAdd(poly, t, Vector512.Create(A1));
        poly *= t;
        var y = Vector512.FusedMultiplyAdd(-poly, Exp(-(a * a)), Vector512<float>.One);
        return Vector512.CopySign(y, x);
    }

    /// <summary>erf(x), 8 lanes; same algorithm as <see cref="Erf(float)"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Erf(Vector256<float> x)
    {
        var a = Vector256.Abs(x);
        var t = Vector256<float>.One / Vector256.FusedMultiplyAdd(Vector256.Create(ErfP), a, Vector256<float>.One);
        var poly = Vector256.FusedMultiplyAdd(Vector256.Create(A5), t, Vector256.Create(A4));
        poly = Vector256.FusedMultiplyAdd(poly, t, Vector256.Create(A3));
        poly = Vector256.FusedMultiplyAdd(poly, t, Vector256.Create(A2));
        poly = Vector256.FusedMultiplyAdd(poly, t, Vector256.Create(A1));
        poly *= t;
        var y = Vector256.FusedMultiplyAdd(-poly, Exp(-(a * a)), Vector256<float>.One);
        return Vector256.CopySign(y, x);
    }

    /// <summary>erf(x), 4 lanes; same algorithm as <see cref="Erf(float)"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<float> Erf(Vector128<float> x)
    {
        var a = Vector128.Abs(x);
        var t = Vector128<float>.One / Vector128.FusedMultiplyAdd(Vector128.Create(ErfP), a, Vector128<float>.One);
        var poly = Vector128.FusedMultiplyAdd(Vector128.Create(A5), t, Vector128.Create(A4));
        poly = Vector128.FusedMultiplyAdd(poly, t, Vector128.Create(A3));
        poly = Vector128.FusedMultiplyAdd(poly, t, Vector128.Create(A2));
        poly = Vector128.FusedMultiplyAdd(poly, t, Vector128.Create(A1));
        poly *= t;
        var y = Vector128.FusedMultiplyAdd(-poly, Exp(-(a * a)), Vector128<float>.One);
        return Vector128.CopySign(y, x);
    }

    /// <summary>The exp operator for the generic driver.</summary>
    internal readonly struct ExpOp : IUnaryOp
    {
        public static float Invoke(float x) => Exp(x);

        public static Vector128<float> Invoke(Vector128<float> x) => Exp(x);

        public static Vector256<float> Invoke(Vector256<float> x) => Exp(x);

        public static Vector512<float> Invoke(Vector512<float> x) => Exp(x);
    }

    /// <summary>The erf operator for the generic driver.</summary>
    internal readonly struct ErfOp : IUnaryOp
    {
        public static float Invoke(float x) => Erf(x);

        public static Vector128<float> Invoke(Vector128<float> x) => Erf(x);

        public static Vector256<float> Invoke(Vector256<float> x) => Erf(x);

        public static Vector512<float> Invoke(Vector512<float> x) => Erf(x);
    }
}
