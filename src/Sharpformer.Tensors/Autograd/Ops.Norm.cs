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
        var xs = Read(x);
        var w = weight is null ? default : Read(weight);
        var b = bias is null ? default : Read(bias);
        var output = Tensor.Empty(x.Shape);
        var o = output.AsSpan<float>();

        // Saved for backward (only when recording): the normalized input x̂ and 1/σ per row.
        bool record = Autograd.Needs(x, weight, bias);
        var xhat = record ? new float[xs.Length] : [];
        var rstd = record ? new float[rows] : [];
        for (int r = 0; r < rows; r++)
        {
            var row = xs.Slice(r * c, c);
            double mean = 0;
            for (int i = 0; i < c; i++) mean += row[i];
            mean /= c;
            double variance = 0;
            for (int i = 0; i < c; i++) variance += (row[i] - mean) * (row[i] - mean);
            variance /= c;
            float rs = (float)(1.0 / Math.Sqrt(variance + eps));
            if (record) rstd[r] = rs;
            for (int i = 0; i < c; i++)
            {
                float n = (float)((row[i] - mean) * rs);
                if (record) xhat[(r * c) + i] = n;
                o[(r * c) + i] = (n * (w.IsEmpty ? 1f : w[i])) + (b.IsEmpty ? 0f : b[i]);
            }
        }

        if (!record) return output;
        var wc = weight?.Contiguous();
        return Autograd.Record(output, nameof(LayerNorm), [x, weight, bias], g =>
        {
            // Forward: y = x̂·w + b, x̂ = (x − μ)·rstd. With d = dy·w:
            // dx = rstd · (d − mean(d) − x̂ · mean(d·x̂)); dw = Σ_rows dy·x̂; db = Σ_rows dy.
            var gs = g.AsReadOnlySpan<float>();
            var wv = wc is null ? default : wc.AsReadOnlySpan<float>();
            var dx = x.RequiresGrad ? Tensor.Empty(x.Shape) : null;
            var dw = weight is not null && weight.RequiresGrad ? Tensor.Zeros(weight.Shape) : null;
            var db = bias is not null && bias.RequiresGrad ? Tensor.Zeros(bias.Shape) : null;
            var dxs = dx is null ? default : dx.AsSpan<float>();
            var dws = dw is null ? default : dw.AsSpan<float>();
            var dbs = db is null ? default : db.AsSpan<float>();
            for (int r = 0; r < rows; r++)
            {
                double meanD = 0, meanDX = 0;
                for (int i = 0; i < c; i++)
                {
                    int at = (r * c) + i;
                    float d = gs[at] * (wv.IsEmpty ? 1f : wv[i]);
                    meanD += d;
                    meanDX += d * xhat[at];
                    if (dw is not null) dws[i] += gs[at] * xhat[at];
                    if (db is not null) dbs[i] += gs[at];
                }

                if (dx is null) continue;
                meanD /= c;
                meanDX /= c;
                for (int i = 0; i < c; i++)
                {
                    int at = (r * c) + i;
                    float d = gs[at] * (wv.IsEmpty ? 1f : wv[i]);
                    dxs[at] = (float)(rstd[r] * (d - meanD - (xhat[at] * meanDX)));
                }
            }

            return [dx, dw, db];
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
        var xs = Read(x);
        var w = weight is null ? default : Read(weight);
        var output = Tensor.Empty(x.Shape);
        var o = output.AsSpan<float>();
        bool record = Autograd.Needs(x, weight);
        var xhat = record ? new float[xs.Length] : [];
        var rrms = record ? new float[rows] : [];
        for (int r = 0; r < rows; r++)
        {
            double sq = 0;
            for (int i = 0; i < c; i++) sq += (double)xs[(r * c) + i] * xs[(r * c) + i];
            float rs = (float)(1.0 / Math.Sqrt((sq / c) + eps));
            if (record) rrms[r] = rs;
            for (int i = 0; i < c; i++)
            {
                int at = (r * c) + i;
                float n = xs[at] * rs;
                if (record) xhat[at] = n;
                o[at] = n * (w.IsEmpty ? 1f : w[i]);
            }
        }

        if (!record) return output;
        var wc = weight?.Contiguous();
        return Autograd.Record(output, nameof(RmsNorm), [x, weight], g =>
        {
            // Forward: y = x̂·w, x̂ = x·r, r = (mean(x²) + eps)^(−½). With d = dy·w: dx = r · (d − x̂ · mean(d·x̂)).
            var gs = g.AsReadOnlySpan<float>();
            var wv = wc is null ? default : wc.AsReadOnlySpan<float>();
            var dx = x.RequiresGrad ? Tensor.Empty(x.Shape) : null;
            var dw = weight is not null && weight.RequiresGrad ? Tensor.Zeros(weight.Shape) : null;
            var dxs = dx is null ? default : dx.AsSpan<float>();
            var dws = dw is null ? default : dw.AsSpan<float>();
            for (int r = 0; r < rows; r++)
            {
                double meanDX = 0;
                for (int i = 0; i < c; i++)
                {
                    int at = (r * c) + i;
                    meanDX += gs[at] * (wv.IsEmpty ? 1f : wv[i]) * xhat[at];
                    if (dw is not null) dws[i] += gs[at] * xhat[at];
                }

                if (dx is null) continue;
                meanDX /= c;
                for (int i = 0; i < c; i++)
                {
                    int at = (r * c) + i;
                    float d = gs[at] * (wv.IsEmpty ? 1f : wv[i]);
                    dxs[at] = (float)(rrms[r] * (d - (xhat[at] * meanDX)));
                }
            }

            return [dx, dw];
        });
    }

    private static void CheckAffine(string op, Tensor x, Tensor? p, string name, int c)
    {
        if (p is null) return;
        CheckF32(op, p, name);
        if (p.Rank != 1 || p.Shape[0] != c) ShapeError.Mismatch(op, x.Shape, p.Shape, $"{name} must be [{c}], the input's last dimension");
    }
}
