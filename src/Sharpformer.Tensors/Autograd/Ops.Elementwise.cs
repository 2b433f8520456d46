using System.Numerics.Tensors;
using Sharpformer.Tensors.Kernels;

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

        // a viewed as [rows, cols] with b one row of cols (rows = 1 when the shapes are equal).
        var ac = a.Contiguous();
        var bc = b.Contiguous();
        int cols = (int)b.ElementCount;
        int rows = cols == 0 ? 0 : (int)(a.ElementCount / cols);
        var output = Tensor.Empty(a.Shape);
        var av = ac.AsReadOnlySpan<float>();
        var bv = bc.AsReadOnlySpan<float>();
        var ov = output.AsSpan<float>();
        switch (kind)
        {
            case BinaryKind.Add: Elementwise.AddBroadcast(av, bv, ov, rows, cols); break;
            case BinaryKind.Sub: Elementwise.SubtractBroadcast(av, bv, ov, rows, cols); break;
            default: Elementwise.MultiplyBroadcast(av, bv, ov, rows, cols); break;
        }

        if (!Autograd.Needs(a, b)) return output;

        return Autograd.Record(output, op, [a, b], g =>
        {
            // d(a ± b)/da = 1, d/db = ±1 summed over the repeated rows; d(a·b)/da = b, d/db = Σ_rows a·g.
            var gs = g.AsReadOnlySpan<float>();
            Tensor? da = null, db = null;
            if (a.RequiresGrad)
            {
                if (kind == BinaryKind.Mul)
                {
                    da = Tensor.Empty(a.Shape);
                    Elementwise.MultiplyBroadcast(gs, bc.AsReadOnlySpan<float>(), da.AsSpan<float>(), rows, cols);
                }
                else
                {
                    da = g;
                }
            }

            if (b.RequiresGrad && kind == BinaryKind.Add && rows == 1)
            {
                // Equal shapes (a residual add): d/db is g itself, shared with da like the engine shares any returned
                // gradient (backward functions only read their incoming gradient; sums make new tensors).
                db = g;
            }
            else if (b.RequiresGrad)
            {
                db = Tensor.Empty(b.Shape);
                var d = db.AsSpan<float>();
                if (kind == BinaryKind.Mul)
                {
                    var product = new float[gs.Length];
                    Elementwise.Multiply(gs, ac.AsReadOnlySpan<float>(), product);
                    Reductions.SumColumns(product, d, rows, cols);
                }
                else
                {
                    Reductions.SumColumns(gs, d, rows, cols);
                    if (kind == BinaryKind.Sub) Elementwise.Scale(d, -1f, d);
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
        Elementwise.Scale(Read(x), s, output.AsSpan<float>());
        if (!Autograd.Needs(x)) return output;
        return Autograd.Record(output, nameof(Scale), [x], g =>
        {
            var dx = Tensor.Empty(x.Shape);
            Elementwise.Scale(g.AsReadOnlySpan<float>(), s, dx.AsSpan<float>());
            return [dx];
        });
    }

    /// <summary>x[...] → [...]: max(x, 0). The gradient at exactly 0 is 0, as in PyTorch.</summary>
    public static Tensor Relu(Tensor x) => Activation(nameof(Relu), x, Activations.Relu, Activations.ReluBackward);

    /// <summary>x[...] → [...]: x·σ(x) (SiLU / swish, the Llama MLP activation).</summary>
    public static Tensor Silu(Tensor x) => Activation(nameof(Silu), x, Activations.Silu, Activations.SiluBackward);

    /// <summary>x[...] → [...]: the Gaussian error linear unit, exact (erf, BERT) or the tanh approximation (GPT-2).</summary>
    public static Tensor Gelu(Tensor x, GeluApproximation approximation = GeluApproximation.None) =>
        approximation == GeluApproximation.Tanh
            ? Activation(nameof(Gelu), x, Activations.GeluTanh, Activations.GeluTanhBackward)
            : Activation(nameof(Gelu), x, Activations.Gelu, Activations.GeluBackward);

    private delegate void ForwardKernel(ReadOnlySpan<float> x, Span<float> y);

    private delegate void BackwardKernel(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx);

    /// <summary>An elementwise activation: y = f(x) forward, dx = dy · f′(x) backward from the saved input.</summary>
    private static Tensor Activation(string op, Tensor x, ForwardKernel forward, BackwardKernel backward)
    {
        CheckF32(op, x, nameof(x));
        var xc = x.Contiguous();
        var output = Tensor.Empty(x.Shape);
        forward(xc.AsReadOnlySpan<float>(), output.AsSpan<float>());
        if (!Autograd.Needs(x)) return output;
        return Autograd.Record(output, op, [x], g =>
        {
            var dx = Tensor.Empty(x.Shape);
            backward(xc.AsReadOnlySpan<float>(), g.AsReadOnlySpan<float>(), dx.AsSpan<float>());
            return [dx];
        });
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
