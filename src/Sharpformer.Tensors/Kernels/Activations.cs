using System.Runtime.Intrinsics;

namespace Sharpformer.Tensors.Kernels;

/// <summary>
/// Activations and their backward passes, elementwise over any shape (pass the flattened [N] span). Forward:
/// y = f(x); backward: dx = dy · f′(x) from the saved input x. In place is allowed (y may be x; dx may be dy or x).
/// Every op is a small operator struct run by the generic SIMD driver; its scalar form is the reference.
/// ±inf and NaN follow IEEE arithmetic as PyTorch does (e.g. GELU(−inf) = NaN, GELU(+inf) = +inf).
/// </summary>
public static class Activations
{
    private const float InvSqrt2 = 0.7071067811865475f;
    private const float InvSqrt2Pi = 0.3989422804014327f;
    private const float SqrtTwoOverPi = 0.7978845608028654f;
    private const float GeluCubic = 0.044715f;

    /// <summary>[N] → [N]: GELU, exact erf form (BERT, GPT-2's "gelu" in HF is the tanh form: see GeluTanh).</summary>
    /// <param name="x">Input.</param>
    /// <param name="y">Output, at least as long as <paramref name="x"/>; may be <paramref name="x"/>.</param>
    /// <exception cref="ArgumentException"><paramref name="y"/> is shorter than <paramref name="x"/>.</exception>
    public static void Gelu(ReadOnlySpan<float> x, Span<float> y)
    {
        KernelChecks.SameLength("Activations.Gelu", "x", x.Length, "y", y.Length);
        SimdDriver.UnaryParallel<GeluOp>(x, y);
    }

    /// <summary>[N], [N] → [N]: backward of <see cref="Gelu"/>, dx = dy · f′(x) from the forward input x.</summary>
    /// <param name="x">The forward input.</param>
    /// <param name="dy">Gradient of the loss with respect to the output, as long as <paramref name="x"/>.</param>
    /// <param name="dx">Gradient with respect to x (overwritten), as long as <paramref name="x"/>; may alias either input.</param>
    /// <exception cref="ArgumentException">A span is shorter than <paramref name="x"/>.</exception>
    public static void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        KernelChecks.SameLength("Activations.GeluBackward", "x", x.Length, "dy", dy.Length);
        KernelChecks.SameLength("Activations.GeluBackward", "x", x.Length, "dx", dx.Length);
        SimdDriver.BinaryParallel<GeluBackwardOp>(x, dy, dx);
    }

    /// <summary>[N] → [N]: GELU, tanh approximation (GPT-2 "gelu_new", "gelu_pytorch_tanh").</summary>
    /// <param name="x">Input.</param>
    /// <param name="y">Output, at least as long as <paramref name="x"/>; may be <paramref name="x"/>.</param>
    /// <exception cref="ArgumentException"><paramref name="y"/> is shorter than <paramref name="x"/>.</exception>
    public static void GeluTanh(ReadOnlySpan<float> x, Span<float> y)
    {
        KernelChecks.SameLength("Activations.GeluTanh", "x", x.Length, "y", y.Length);
        SimdDriver.UnaryParallel<GeluTanhOp>(x, y);
    }

    /// <summary>[N], [N] → [N]: backward of <see cref="GeluTanh"/>, dx = dy · f′(x) from the forward input x.</summary>
    /// <param name="x">The forward input.</param>
    /// <param name="dy">Gradient of the loss with respect to the output, as long as <paramref name="x"/>.</param>
    /// <param name="dx">Gradient with respect to x (overwritten), as long as <paramref name="x"/>; may alias either input.</param>
    /// <exception cref="ArgumentException">A span is shorter than <paramref name="x"/>.</exception>
    public static void GeluTanhBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        KernelChecks.SameLength("Activations.GeluTanhBackward", "x", x.Length, "dy", dy.Length);
        KernelChecks.SameLength("Activations.GeluTanhBackward", "x", x.Length, "dx", dx.Length);
        SimdDriver.BinaryParallel<GeluTanhBackwardOp>(x, dy, dx);
    }

    /// <summary>[N] → [N]: SiLU / swish: x · sigmoid(x) (Llama MLP).</summary>
    /// <param name="x">Input.</param>
    /// <param name="y">Output, at least as long as <paramref name="x"/>; may be <paramref name="x"/>.</param>
    /// <exception cref="ArgumentException"><paramref name="y"/> is shorter than <paramref name="x"/>.</exception>
    public static void Silu(ReadOnlySpan<float> x, Span<float> y)
    {
        KernelChecks.SameLength("Activations.Silu", "x", x.Length, "y", y.Length);
        SimdDriver.UnaryParallel<SiluOp>(x, y);
    }

    /// <summary>[N], [N] → [N]: backward of <see cref="Silu"/>, dx = dy · f′(x) from the forward input x.</summary>
    /// <param name="x">The forward input.</param>
    /// <param name="dy">Gradient of the loss with respect to the output, as long as <paramref name="x"/>.</param>
    /// <param name="dx">Gradient with respect to x (overwritten), as long as <paramref name="x"/>; may alias either input.</param>
    /// <exception cref="ArgumentException">A span is shorter than <paramref name="x"/>.</exception>
    public static void SiluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        KernelChecks.SameLength("Activations.SiluBackward", "x", x.Length, "dy", dy.Length);
        KernelChecks.SameLength("Activations.SiluBackward", "x", x.Length, "dx", dx.Length);
        SimdDriver.BinaryParallel<SiluBackwardOp>(x, dy, dx);
    }

    /// <summary>[N] → [N]: ReLU: max(x, 0), NaN propagates.</summary>
    /// <param name="x">Input.</param>
    /// <param name="y">Output, at least as long as <paramref name="x"/>; may be <paramref name="x"/>.</param>
    /// <exception cref="ArgumentException"><paramref name="y"/> is shorter than <paramref name="x"/>.</exception>
    public static void Relu(ReadOnlySpan<float> x, Span<float> y)
    {
        KernelChecks.SameLength("Activations.Relu", "x", x.Length, "y", y.Length);
        SimdDriver.UnaryParallel<ReluOp>(x, y);
    }

    /// <summary>[N], [N] → [N]: backward of <see cref="Relu"/>, dx = dy · f′(x) from the forward input x.</summary>
    /// <param name="x">The forward input.</param>
    /// <param name="dy">Gradient of the loss with respect to the output, as long as <paramref name="x"/>.</param>
    /// <param name="dx">Gradient with respect to x (overwritten), as long as <paramref name="x"/>; may alias either input.</param>
    /// <exception cref="ArgumentException">A span is shorter than <paramref name="x"/>.</exception>
    public static void ReluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        KernelChecks.SameLength("Activations.ReluBackward", "x", x.Length, "dy", dy.Length);
        KernelChecks.SameLength("Activations.ReluBackward", "x", x.Length, "dx", dx.Length);
        SimdDriver.BinaryParallel<ReluBackwardOp>(x, dy, dx);
    }

    /// <summary>Gelu (exact erf form): y = x · Φ(x) = 0.5 · x · (1 + erf(x / √2)).</summary>
    internal readonly struct GeluOp : IUnaryOp
    {
        public static float Invoke(float x)
        {
            return 0.5f * x * (1f + FastMath.Erf(x * InvSqrt2));
        }

        public static Vector128<float> Invoke(Vector128<float> x)
        {
            return Vector128.Create(0.5f) * x * (Vector128<float>.One + FastMath.Erf(x * Vector128.Create(InvSqrt2)));
        }

        public static Vector256<float> Invoke(Vector256<float> x)
        {
            return Vector256.Create(0.5f) * x * (Vector256<float>.One + FastMath.Erf(x * Vector256.Create(InvSqrt2)));
        }

        public static Vector512<float> Invoke(Vector512<float> x)
        {
            return Vector512.Create(0.5f) * x * (Vector512<float>.One + FastMath.Erf(x * Vector512.Create(InvSqrt2)));
        }
    }

    /// <summary>Gelu (tanh form): y = 0.5 · x · (1 + tanh(u)) = x · sigmoid(2u), u = √(2/π) · (x + 0.044715 · x³).</summary>
    internal readonly struct GeluTanhOp : IUnaryOp
    {
        public static float Invoke(float x)
        {
            float u2 = 2f * SqrtTwoOverPi * MathF.FusedMultiplyAdd(GeluCubic * x * x, x, x);
            return x / (1f + FastMath.Exp(-u2));
        }

        public static Vector128<float> Invoke(Vector128<float> x)
        {
            var u2 = Vector128.Create(2f * SqrtTwoOverPi) * Vector128.FusedMultiplyAdd(Vector128.Create(GeluCubic) * x * x, x, x);
            return x / (Vector128<float>.One + FastMath.Exp(-u2));
        }

        public static Vector256<float> Invoke(Vector256<float> x)
        {
            var u2 = Vector256.Create(2f * SqrtTwoOverPi) * Vector256.FusedMultiplyAdd(Vector256.Create(GeluCubic) * x * x, x, x);
            return x / (Vector256<float>.One + FastMath.Exp(-u2));
        }

        public static Vector512<float> Invoke(Vector512<float> x)
        {
            var u2 = Vector512.Create(2f * SqrtTwoOverPi) * Vector512.FusedMultiplyAdd(Vector512.Create(GeluCubic) * x * x, x, x);
            return x / (Vector512<float>.One + FastMath.Exp(-u2));
        }
    }

    /// <summary>SiLU: y = x · sigmoid(x) = x / (1 + e^(−x)).</summary>
    internal readonly struct SiluOp : IUnaryOp
    {
        public static float Invoke(float x)
        {
            return x / (1f + FastMath.Exp(-x));
        }

        public static Vector128<float> Invoke(Vector128<float> x)
        {
            return x / (Vector128<float>.One + FastMath.Exp(-x));
        }

        public static Vector256<float> Invoke(Vector256<float> x)
        {
            return x / (Vector256<float>.One + FastMath.Exp(-x));
        }

        public static Vector512<float> Invoke(Vector512<float> x)
        {
            return x / (Vector512<float>.One + FastMath.Exp(-x));
        }
    }

    /// <summary>ReLU: y = max(x, 0); NaN stays NaN.</summary>
    internal readonly struct ReluOp : IUnaryOp
    {
        public static float Invoke(float x)
        {
            return x < 0f ? 0f : x;
        }

        public static Vector128<float> Invoke(Vector128<float> x)
        {
            return Vector128.ConditionalSelect(Vector128.LessThan(x, Vector128<float>.Zero), Vector128<float>.Zero, x);
        }

        public static Vector256<float> Invoke(Vector256<float> x)
        {
            return Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256<float>.Zero), Vector256<float>.Zero, x);
        }

        public static Vector512<float> Invoke(Vector512<float> x)
        {
            return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero), Vector512<float>.Zero, x);
        }
    }

    /// <summary>dx = dy · (Φ(x) + x · φ(x)); the x · φ(x) term uses x clamped to ±20, where it is already 0, so ±inf gives 1 or 0.</summary>
    internal readonly struct GeluBackwardOp : IBinaryOp
    {
        public static float Invoke(float x, float dy)
        {
            float xc = Math.Clamp(x, -20f, 20f);
            float cdf = 0.5f * (1f + FastMath.Erf(x * InvSqrt2));
            float pdf = InvSqrt2Pi * FastMath.Exp(-0.5f * xc * xc);
            return dy * MathF.FusedMultiplyAdd(xc, pdf, cdf);
        }

        public static Vector128<float> Invoke(Vector128<float> x, Vector128<float> dy)
        {
            var xc = Vector128.MinNative(Vector128.MaxNative(x, Vector128.Create(-20f)), Vector128.Create(20f));
            var cdf = Vector128.Create(0.5f) * (Vector128<float>.One + FastMath.Erf(x * Vector128.Create(InvSqrt2)));
            var pdf = Vector128.Create(InvSqrt2Pi) * FastMath.Exp(Vector128.Create(-0.5f) * xc * xc);
            return dy * Vector128.FusedMultiplyAdd(xc, pdf, cdf);
        }

        public static Vector256<float> Invoke(Vector256<float> x, Vector256<float> dy)
        {
            var xc = Vector256.MinNative(Vector256.MaxNative(x, Vector256.Create(-20f)), Vector256.Create(20f));
            var cdf = Vector256.Create(0.5f) * (Vector256<float>.One + FastMath.Erf(x * Vector256.Create(InvSqrt2)));
            var pdf = Vector256.Create(InvSqrt2Pi) * FastMath.Exp(Vector256.Create(-0.5f) * xc * xc);
            return dy * Vector256.FusedMultiplyAdd(xc, pdf, cdf);
        }

        public static Vector512<float> Invoke(Vector512<float> x, Vector512<float> dy)
        {
            var xc = Vector512.MinNative(Vector512.MaxNative(x, Vector512.Create(-20f)), Vector512.Create(20f));
            var cdf = Vector512.Create(0.5f) * (Vector512<float>.One + FastMath.Erf(x * Vector512.Create(InvSqrt2)));
            var pdf = Vector512.Create(InvSqrt2Pi) * FastMath.Exp(Vector512.Create(-0.5f) * xc * xc);
            return dy * Vector512.FusedMultiplyAdd(xc, pdf, cdf);
        }
    }

    /// <summary>dx = dy · (s + 2 · x · u′ · s · (1 − s)), s = sigmoid(2u), u′ = √(2/π) · (1 + 3 · 0.044715 · x²); the second term uses x clamped to ±10, where it is already 0.</summary>
    internal readonly struct GeluTanhBackwardOp : IBinaryOp
    {
        public static float Invoke(float x, float dy)
        {
            float s = 1f / (1f + FastMath.Exp(-2f * SqrtTwoOverPi * MathF.FusedMultiplyAdd(GeluCubic * x * x, x, x)));
            float xc = Math.Clamp(x, -10f, 10f);
            float du = 2f * SqrtTwoOverPi * MathF.FusedMultiplyAdd(3f * GeluCubic * xc, xc, 1f);
            return dy * MathF.FusedMultiplyAdd(xc * du, s * (1f - s), s);
        }

        public static Vector128<float> Invoke(Vector128<float> x, Vector128<float> dy)
        {
            var s = Vector128<float>.One / (Vector128<float>.One + FastMath.Exp(Vector128.Create(-2f * SqrtTwoOverPi) * Vector128.FusedMultiplyAdd(Vector128.Create(GeluCubic) * x * x, x, x)));
            var xc = Vector128.MinNative(Vector128.MaxNative(x, Vector128.Create(-10f)), Vector128.Create(10f));
            var du = Vector128.Create(2f * SqrtTwoOverPi) * Vector128.FusedMultiplyAdd(Vector128.Create(3f * GeluCubic) * xc, xc, Vector128<float>.One);
            return dy * Vector128.FusedMultiplyAdd(xc * du, s * (Vector128<float>.One - s), s);
        }

        public static Vector256<float> Invoke(Vector256<float> x, Vector256<float> dy)
        {
            var s = Vector256<float>.One / (Vector256<float>.One + FastMath.Exp(Vector256.Create(-2f * SqrtTwoOverPi) * Vector256.FusedMultiplyAdd(Vector256.Create(GeluCubic) * x * x, x, x)));
            var xc = Vector256.MinNative(Vector256.MaxNative(x, Vector256.Create(-10f)), Vector256.Create(10f));
            var du = Vector256.Create(2f * SqrtTwoOverPi) * Vector256.FusedMultiplyAdd(Vector256.Create(3f * GeluCubic) * xc, xc, Vector256<float>.One);
            return dy * Vector256.FusedMultiplyAdd(xc * du, s * (Vector256<float>.One - s), s);
        }

        public static Vector512<float> Invoke(Vector512<float> x, Vector512<float> dy)
        {
            var s = Vector512<float>.One / (Vector512<float>.One + FastMath.Exp(Vector512.Create(-2f * SqrtTwoOverPi) * Vector512.FusedMultiplyAdd(Vector512.Create(GeluCubic) * x * x, x, x)));
            var xc = Vector512.MinNative(Vector512.MaxNative(x, Vector512.Create(-10f)), Vector512.Create(10f));
            var du = Vector512.Create(2f * SqrtTwoOverPi) * Vector512.FusedMultiplyAdd(Vector512.Create(3f * GeluCubic) * xc, xc, Vector512<float>.One);
            return dy * Vector512.FusedMultiplyAdd(xc * du, s * (Vector512<float>.One - s), s);
        }
    }

    /// <summary>dx = dy · s · (1 + x · (1 − s)), s = sigmoid(x); x is clamped to ±100 inside, where the x · (1 − s) term is already 0.</summary>
    internal readonly struct SiluBackwardOp : IBinaryOp
    {
        public static float Invoke(float x, float dy)
        {
            float s = 1f / (1f + FastMath.Exp(-x));
            float xc = Math.Clamp(x, -100f, 100f);
            return dy * s * MathF.FusedMultiplyAdd(xc, 1f - s, 1f);
        }

        public static Vector128<float> Invoke(Vector128<float> x, Vector128<float> dy)
        {
            var s = Vector128<float>.One / (Vector128<float>.One + FastMath.Exp(-x));
            var xc = Vector128.MinNative(Vector128.MaxNative(x, Vector128.Create(-100f)), Vector128.Create(100f));
            return dy * s * Vector128.FusedMultiplyAdd(xc, Vector128<float>.One - s, Vector128<float>.One);
        }

        public static Vector256<float> Invoke(Vector256<float> x, Vector256<float> dy)
        {
            var s = Vector256<float>.One / (Vector256<float>.One + FastMath.Exp(-x));
            var xc = Vector256.MinNative(Vector256.MaxNative(x, Vector256.Create(-100f)), Vector256.Create(100f));
            return dy * s * Vector256.FusedMultiplyAdd(xc, Vector256<float>.One - s, Vector256<float>.One);
        }

        public static Vector512<float> Invoke(Vector512<float> x, Vector512<float> dy)
        {
            var s = Vector512<float>.One / (Vector512<float>.One + FastMath.Exp(-x));
            var xc = Vector512.MinNative(Vector512.MaxNative(x, Vector512.Create(-100f)), Vector512.Create(100f));
            return dy * s * Vector512.FusedMultiplyAdd(xc, Vector512<float>.One - s, Vector512<float>.One);
        }
    }

    /// <summary>dx = dy where x > 0, else 0.</summary>
    internal readonly struct ReluBackwardOp : IBinaryOp
    {
        public static float Invoke(float x, float dy)
        {
            return x > 0f ? dy : 0f;
        }

        public static Vector128<float> Invoke(Vector128<float> x, Vector128<float> dy)
        {
            return Vector128.ConditionalSelect(Vector128.GreaterThan(x, Vector128<float>.Zero), dy, Vector128<float>.Zero);
        }

        public static Vector256<float> Invoke(Vector256<float> x, Vector256<float> dy)
        {
            return Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), dy, Vector256<float>.Zero);
        }

        public static Vector512<float> Invoke(Vector512<float> x, Vector512<float> dy)
        {
            return Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), dy, Vector512<float>.Zero);
        }
    }
}
