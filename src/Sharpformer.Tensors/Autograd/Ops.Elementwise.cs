using System.Numerics.Tensors;

namespace Sharpformer.Tensors;

public static partial class Ops
{
    /// <summary>
    /// a[..., S] + b[S] → [..., S]: elementwise sum where b has a's shape or a suffix of it and repeats over a's leading
    /// dimensions (a bias [C] over [B, T, C], a position table [T, C] over [B, T, C]).
    /// </summary>
    /// <exception cref="ArgumentException">b's shape is not a suffix of a's.</exception>
    public static Tensor Add(Tensor a, Tensor b) => Binary(nameof(Add), a, b, BinaryKind.Add);

    /// <summary>a[..., S] − b[S] → [..., S]: elementwise difference; b broadcasts over a's leading dimensions as in <see cref="Add"/>.</summary>
    /// <exception cref="ArgumentException">b's shape is not a suffix of a's.</exception>
    public static Tensor Sub(Tensor a, Tensor b) => Binary(nameof(Sub), a, b, BinaryKind.Sub);

    /// <summary>a[..., S] ⊙ b[S] → [..., S]: elementwise product; b broadcasts over a's leading dimensions as in <see cref="Add"/>.</summary>
    /// <exception cref="ArgumentException">b's shape is not a suffix of a's.</exception>
    public static Tensor Mul(Tensor a, Tensor b) => Binary(nameof(Mul), a, b, BinaryKind.Mul);

    private enum BinaryKind
    {
        Add,
        Sub,
        Mul,
    }

    private static Tensor Binary(string op, Tensor a, Tensor b, BinaryKind kind)
    {
        CheckF32(op, a, nameof(a));
        CheckF32(op, b, nameof(b));
        if (b.Rank > a.Rank || !a.Shape.Dims[(a.Rank - b.Rank)..].SequenceEqual(b.Shape.Dims))
        {
            ShapeError.Mismatch(op, a.Shape, b.Shape, "the second shape must equal the first or a suffix of it (it repeats over the leading dimensions)");
        }

        var ac = a.Contiguous();
        var bc = b.Contiguous();
        int inner = (int)b.ElementCount;
        int outer = inner == 0 ? 0 : (int)(a.ElementCount / inner);
        var output = Tensor.Empty(a.Shape);
        var ov = output.AsSpan<float>();
        for (int r = 0; r < outer; r++)
        {
            var ar = ac.AsReadOnlySpan<float>().Slice(r * inner, inner);
            var bv = bc.AsReadOnlySpan<float>();
            var or = ov.Slice(r * inner, inner);
            switch (kind)
            {
                case BinaryKind.Add: TensorPrimitives.Add(ar, bv, or); break;
                case BinaryKind.Sub: TensorPrimitives.Subtract(ar, bv, or); break;
                default: TensorPrimitives.Multiply(ar, bv, or); break;
            }
        }

        if (!Autograd.Needs(a, b)) return output;

        return Autograd.Record(output, op, [a, b], g =>
        {
            // d(a ± b)/da = 1, d/db = ±1 summed over the repeats; d(a·b)/da = b, d/db = Σ a·g over the repeats.
            var gs = g.AsReadOnlySpan<float>();
            var av = ac.AsReadOnlySpan<float>();
            var bv = bc.AsReadOnlySpan<float>();
            Tensor? da = null, db = null;
            if (a.RequiresGrad)
            {
                if (kind == BinaryKind.Mul)
                {
                    da = Tensor.Empty(a.Shape);
                    var d = da.AsSpan<float>();
                    for (int r = 0; r < outer; r++) TensorPrimitives.Multiply(gs.Slice(r * inner, inner), bv, d.Slice(r * inner, inner));
                }
                else
                {
                    da = g;
                }
            }

            if (b.RequiresGrad)
            {
                db = Tensor.Zeros(b.Shape);
                var d = db.AsSpan<float>();
                for (int r = 0; r < outer; r++)
                {
                    var gr = gs.Slice(r * inner, inner);
                    switch (kind)
                    {
                        case BinaryKind.Add: TensorPrimitives.Add(d, gr, d); break;
                        case BinaryKind.Sub: TensorPrimitives.Subtract(d, gr, d); break;
                        default: TensorPrimitives.FusedMultiplyAdd(gr, av.Slice(r * inner, inner), d, d); break;
                    }
                }
            }

            return [da, db];
        });
    }

    /// <summary>x[...] · s → [...]: multiplies every element by the constant <paramref name="s"/>.</summary>
    public static Tensor Scale(Tensor x, float s)
    {
        CheckF32(nameof(Scale), x, nameof(x));
        var output = Tensor.Empty(x.Shape);
        TensorPrimitives.Multiply(Read(x), s, output.AsSpan<float>());
        if (!Autograd.Needs(x)) return output;
        return Autograd.Record(output, nameof(Scale), [x], g =>
        {
            var dx = Tensor.Empty(x.Shape);
            TensorPrimitives.Multiply(g.AsReadOnlySpan<float>(), s, dx.AsSpan<float>());
            return [dx];
        });
    }

    /// <summary>x[...] → [...]: max(x, 0). The gradient at exactly 0 is 0, as in PyTorch.</summary>
    public static Tensor Relu(Tensor x)
    {
        CheckF32(nameof(Relu), x, nameof(x));
        var xc = x.Contiguous();
        var output = Tensor.Empty(x.Shape);
        TensorPrimitives.Max(xc.AsReadOnlySpan<float>(), 0f, output.AsSpan<float>());
        if (!Autograd.Needs(x)) return output;
        return Autograd.Record(output, nameof(Relu), [x], g =>
        {
            var xs = xc.AsReadOnlySpan<float>();
            var gs = g.AsReadOnlySpan<float>();
            var dx = Tensor.Empty(x.Shape);
            var d = dx.AsSpan<float>();
            for (int i = 0; i < d.Length; i++) d[i] = xs[i] > 0f ? gs[i] : 0f;
            return [dx];
        });
    }

    /// <summary>x[...] → [...]: x·σ(x) (SiLU / swish, the Llama MLP activation).</summary>
    public static Tensor Silu(Tensor x)
    {
        CheckF32(nameof(Silu), x, nameof(x));
        var xc = x.Contiguous();
        var output = Tensor.Empty(x.Shape);
        var xs = xc.AsReadOnlySpan<float>();
        var o = output.AsSpan<float>();
        for (int i = 0; i < o.Length; i++) o[i] = xs[i] / (1f + MathF.Exp(-xs[i]));
        if (!Autograd.Needs(x)) return output;
        return Autograd.Record(output, nameof(Silu), [x], g =>
        {
            // d/dx x·σ(x) = σ(x) · (1 + x · (1 − σ(x))).
            var xv = xc.AsReadOnlySpan<float>();
            var gs = g.AsReadOnlySpan<float>();
            var dx = Tensor.Empty(x.Shape);
            var d = dx.AsSpan<float>();
            for (int i = 0; i < d.Length; i++)
            {
                float sig = 1f / (1f + MathF.Exp(-xv[i]));
                d[i] = gs[i] * sig * (1f + (xv[i] * (1f - sig)));
            }

            return [dx];
        });
    }

    /// <summary>x[...] → [...]: the Gaussian error linear unit, exact (erf, BERT) or the tanh approximation (GPT-2).</summary>
    public static Tensor Gelu(Tensor x, GeluApproximation approximation = GeluApproximation.None)
    {
        CheckF32(nameof(Gelu), x, nameof(x));
        var xc = x.Contiguous();
        var output = Tensor.Empty(x.Shape);
        var xs = xc.AsReadOnlySpan<float>();
        var o = output.AsSpan<float>();
        bool tanh = approximation == GeluApproximation.Tanh;
        for (int i = 0; i < o.Length; i++) o[i] = (float)(tanh ? GeluTanh(xs[i], out _) : GeluErf(xs[i], out _));
        if (!Autograd.Needs(x)) return output;
        return Autograd.Record(output, nameof(Gelu), [x], g =>
        {
            var xv = xc.AsReadOnlySpan<float>();
            var gs = g.AsReadOnlySpan<float>();
            var dx = Tensor.Empty(x.Shape);
            var d = dx.AsSpan<float>();
            for (int i = 0; i < d.Length; i++)
            {
                double derivative;
                _ = tanh ? GeluTanh(xv[i], out derivative) : GeluErf(xv[i], out derivative);
                d[i] = (float)(gs[i] * derivative);
            }

            return [dx];
        });
    }

    // GELU(x) = x·Φ(x) with Φ(x) = ½(1 + erf(x/√2)); GELU'(x) = Φ(x) + x·φ(x), φ the standard normal density.
    private static double GeluErf(double x, out double derivative)
    {
        double cdf = 0.5 * (1.0 + Erf(x / Math.Sqrt(2.0)));
        derivative = cdf + (x * Math.Exp(-0.5 * x * x) / Math.Sqrt(2.0 * Math.PI));
        return x * cdf;
    }

    // tanh form: ½x(1 + tanh(u)), u = √(2/π)(x + 0.044715x³); derivative by the chain rule through u.
    private static double GeluTanh(double x, out double derivative)
    {
        const double K = 0.7978845608028654; // √(2/π)
        double u = K * (x + (0.044715 * x * x * x));
        double t = Math.Tanh(u);
        derivative = (0.5 * (1.0 + t)) + (0.5 * x * (1.0 - (t * t)) * K * (1.0 + (3.0 * 0.044715 * x * x)));
        return 0.5 * x * (1.0 + t);
    }

    /// <summary>
    /// The error function in double, accurate to ~1e-15 for |x| &lt; 3 (Maclaurin series) and to ~1e-8 absolute beyond
    /// (asymptotic erfc series), which is far below float resolution. .NET has no Math.Erf.
    /// </summary>
    internal static double Erf(double x)
    {
        double ax = Math.Abs(x);
        if (ax < 3.0)
        {
            // erf(x) = 2/√π Σ (−1)ⁿ x^(2n+1) / (n! (2n+1)).
            double term = ax, sum = ax, x2 = ax * ax;
            for (int n = 1; n < 80; n++)
            {
                term *= -x2 / n;
                double add = term / ((2 * n) + 1);
                sum += add;
                if (Math.Abs(add) < 1e-17 * Math.Abs(sum)) break;
            }

            return Math.CopySign(sum * 2.0 / Math.Sqrt(Math.PI), x);
        }

        // erfc(x) ≈ e^(−x²)/(x√π) · (1 − 1/(2x²) + 3/(4x⁴) − 15/(8x⁶) + 105/(16x⁸)).
        double inv = 1.0 / (2.0 * ax * ax);
        double series = 1.0 - inv + (3.0 * inv * inv) - (15.0 * inv * inv * inv) + (105.0 * inv * inv * inv * inv);
        double erfc = Math.Exp(-ax * ax) / (ax * Math.Sqrt(Math.PI)) * series;
        return Math.CopySign(1.0 - erfc, x);
    }

    /// <summary>
    /// x[...] → [...]: inverted dropout. In training each element is zeroed with probability <paramref name="p"/> and the
    /// survivors are scaled by 1/(1−p), so evaluation needs no rescaling; outside training the input is returned as is.
    /// The mask comes from <paramref name="random"/>, so a seeded generator reproduces it.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="p"/> is outside [0, 1).</exception>
    public static Tensor Dropout(Tensor x, float p, bool training, Random random)
    {
        CheckF32(nameof(Dropout), x, nameof(x));
        ArgumentNullException.ThrowIfNull(random);
        if (!(p >= 0f && p < 1f))
        {
            throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout: the drop probability must be in [0, 1).");
        }

        if (!training || p == 0f) return x;
        float keepScale = 1f / (1f - p);
        var mask = new float[x.ElementCount];
        for (int i = 0; i < mask.Length; i++) mask[i] = random.NextSingle() >= p ? keepScale : 0f;
        var output = Tensor.Empty(x.Shape);
        TensorPrimitives.Multiply(Read(x), mask, output.AsSpan<float>());
        if (!Autograd.Needs(x)) return output;
        return Autograd.Record(output, nameof(Dropout), [x], g =>
        {
            var dx = Tensor.Empty(x.Shape);
            TensorPrimitives.Multiply(g.AsReadOnlySpan<float>(), mask, dx.AsSpan<float>());
            return [dx];
        });
    }
}

/// <summary>Which form of GELU <see cref="Ops.Gelu"/> computes.</summary>
public enum GeluApproximation
{
    /// <summary>Exact: x·Φ(x) with the erf-based normal CDF (BERT, PyTorch's default).</summary>
    None,

    /// <summary>½x(1 + tanh(√(2/π)(x + 0.044715x³))) (GPT-2's "gelu_new", PyTorch approximate='tanh').</summary>
    Tanh,
}
