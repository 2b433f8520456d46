using Sharpformer.Tensors.Kernels;

namespace Sharpformer.Tensors;

public static partial class Ops
{
    /// <summary>
    /// x[..., C] → [..., C]: layer normalization over the last axis, (x − mean) / √(var + eps) · weight[C] + bias[C], with
    /// the biased variance (as PyTorch). weight and bias are optional (then 1 and 0).
    /// </summary>
    /// <exception cref="ArgumentException">weight or bias is not [C].</exception>
    public static Tensor LayerNorm(Tensor x, Tensor? weight, Tensor? bias, float eps = 1e-5f)
    {
        CheckF32(nameof(LayerNorm), x, nameof(x));
        int c = x.Shape.Last;
        CheckAffine(nameof(LayerNorm), x, weight, nameof(weight), c);
        CheckAffine(nameof(LayerNorm), x, bias, nameof(bias), c);
        int rows = (int)x.Shape.Rows;
        var xc = x.Contiguous();
        var wc = weight?.Contiguous();
        var bc = bias?.Contiguous();
        var output = Tensor.Empty(x.Shape);

        // Per-row mean and 1/σ are saved for the backward only when it will run.
        bool record = Autograd.Needs(x, weight, bias);
        var mean = record ? new float[rows] : [];
        var rstd = record ? new float[rows] : [];
        Norms.LayerNorm(xc.AsReadOnlySpan<float>(), Elements(wc), Elements(bc), output.AsSpan<float>(), rows, c, eps, mean, rstd);
        if (!record) return output;
        return RecordLayerNorm(output, x, xc, weight, wc, bias, mean, rstd, rows, c);
    }

    /// <summary>
    /// a[..., C] + b[..., C] → the sum, and its layer normalization (as <see cref="LayerNorm"/>), in one pass over the
    /// rows (the pre-LN residual step: each row's sum is normalized while it is still in L1). The graph is the one
    /// <c>LayerNorm(Add(a, b), …)</c> records, an Add node for <paramref name="sum"/> and a LayerNorm node on it, and
    /// every value and gradient is the same bit for bit.
    /// </summary>
    /// <param name="a">Left addend.</param>
    /// <param name="b">Right addend, the same shape as <paramref name="a"/>.</param>
    /// <param name="weight">LayerNorm scale [C], or null.</param>
    /// <param name="bias">LayerNorm shift [C], or null.</param>
    /// <param name="eps">Added to the variance.</param>
    /// <param name="sum">Receives a + b.</param>
    /// <returns>LayerNorm(a + b).</returns>
    /// <exception cref="ArgumentException">The shapes differ, or weight or bias is not [C].</exception>
    public static Tensor AddLayerNorm(Tensor a, Tensor b, Tensor? weight, Tensor? bias, float eps, out Tensor sum)
    {
        CheckF32(nameof(AddLayerNorm), a, nameof(a));
        CheckF32(nameof(AddLayerNorm), b, nameof(b));
        if (a.Shape != b.Shape) ShapeError.Mismatch(nameof(AddLayerNorm), a.Shape, b.Shape, "the addends must have the same shape");
        int c = a.Shape.Last;
        CheckAffine(nameof(AddLayerNorm), a, weight, nameof(weight), c);
        CheckAffine(nameof(AddLayerNorm), a, bias, nameof(bias), c);
        int rows = (int)a.Shape.Rows;
        var ac = a.Contiguous();
        var bc = b.Contiguous();
        var wc = weight?.Contiguous();
        var biasc = bias?.Contiguous();
        var s = Tensor.Empty(a.Shape);
        var output = Tensor.Empty(a.Shape);
        bool recordSum = Autograd.Needs(a, b);
        bool record = recordSum || Autograd.Needs(a, weight, bias);
        var mean = record ? new float[rows] : [];
        var rstd = record ? new float[rows] : [];
        Norms.AddLayerNorm(ac.AsReadOnlySpan<float>(), bc.AsReadOnlySpan<float>(), Elements(wc), Elements(biasc), s.AsSpan<float>(), output.AsSpan<float>(), rows, c, eps, mean, rstd);

        // The residual add's node, as Ops.Add records it for equal shapes: the gradient passes to both addends.
        sum = recordSum ? Autograd.Record(s, nameof(Add), [a, b], g => [a.RequiresGrad ? g : null, b.RequiresGrad ? g : null]) : s;
        if (!record) return output;
        return RecordLayerNorm(output, sum, sum, weight, wc, bias, mean, rstd, rows, c);
    }

    /// <summary>Records the LayerNorm node of <paramref name="output"/> = LayerNorm(<paramref name="x"/>) (contiguous <paramref name="xc"/>) from the saved statistics.</summary>
    private static Tensor RecordLayerNorm(Tensor output, Tensor x, Tensor xc, Tensor? weight, Tensor? wc, Tensor? bias, float[] mean, float[] rstd, int rows, int c)
    {
        return Autograd.Record(output, nameof(LayerNorm), [x, weight, bias], g =>
        {
            // Forward: y = x̂·w + b, x̂ = (x − μ)·rstd. With d = dy·w:
            // dx = rstd · (d − mean(d) − x̂ · mean(d·x̂)); dw = Σ_rows dy·x̂; db = Σ_rows dy.
            var dx = Tensor.Empty(x.Shape);
            var dw = weight is not null && weight.RequiresGrad ? Tensor.Empty(weight.Shape) : null;
            var db = bias is not null && bias.RequiresGrad ? Tensor.Empty(bias.Shape) : null;
            Norms.LayerNormBackward(g.AsReadOnlySpan<float>(), xc.AsReadOnlySpan<float>(), Elements(wc), mean, rstd, dx.AsSpan<float>(), Writable(dw), Writable(db), rows, c);
            return [x.RequiresGrad ? dx : null, dw, db];
        });
    }

    /// <summary>
    /// x[..., C] → [..., C]: root-mean-square normalization over the last axis, x / √(mean(x²) + eps) · weight[C]
    /// (Llama, T5). weight is optional (then 1).
    /// </summary>
    /// <exception cref="ArgumentException">weight is not [C].</exception>
    public static Tensor RmsNorm(Tensor x, Tensor? weight, float eps = 1e-6f)
    {
        CheckF32(nameof(RmsNorm), x, nameof(x));
        int c = x.Shape.Last;
        CheckAffine(nameof(RmsNorm), x, weight, nameof(weight), c);
        int rows = (int)x.Shape.Rows;
        var xc = x.Contiguous();
        var wc = weight?.Contiguous();
        var output = Tensor.Empty(x.Shape);
        bool record = Autograd.Needs(x, weight);
        var rstd = record ? new float[rows] : [];
        Norms.RmsNorm(xc.AsReadOnlySpan<float>(), Elements(wc), output.AsSpan<float>(), rows, c, eps, rstd);
        if (!record) return output;

        return Autograd.Record(output, nameof(RmsNorm), [x, weight], g =>
        {
            // Forward: y = x̂·w, x̂ = x·r, r = (mean(x²) + eps)^(−½). With d = dy·w: dx = r · (d − x̂ · mean(d·x̂)).
            var dx = Tensor.Empty(x.Shape);
            var dw = weight is not null && weight.RequiresGrad ? Tensor.Empty(weight.Shape) : null;
            Norms.RmsNormBackward(g.AsReadOnlySpan<float>(), xc.AsReadOnlySpan<float>(), Elements(wc), rstd, dx.AsSpan<float>(), Writable(dw), rows, c);
            return [x.RequiresGrad ? dx : null, dw];
        });
    }

    private static void CheckAffine(string op, Tensor x, Tensor? p, string name, int c)
    {
        if (p is null) return;
        CheckF32(op, p, name);
        if (p.Rank != 1 || p.Shape[0] != c) ShapeError.Mismatch(op, x.Shape, p.Shape, $"{name} must be [{c}], the input's last dimension");
    }

    /// <summary>The elements of an optional contiguous tensor, or an empty span (kernels read empty as "absent").</summary>
    private static ReadOnlySpan<float> Elements(Tensor? t) => t is null ? default : t.AsReadOnlySpan<float>();

    private static Span<float> Writable(Tensor? t) => t is null ? default : t.AsSpan<float>();
}
