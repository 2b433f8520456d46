namespace Sharpformer.Tensors;

public static partial class Ops
{
    /// <summary>x[...] → []: the sum of all elements, accumulated in double.</summary>
    public static Tensor Sum(Tensor x) => ReduceAll(nameof(Sum), x, mean: false);

    /// <summary>x[...] → []: the mean of all elements, accumulated in double (NaN for an empty tensor).</summary>
    public static Tensor Mean(Tensor x) => ReduceAll(nameof(Mean), x, mean: true);

    /// <summary>x[..., A, ...] → [..., ...] (or [..., 1, ...] with <paramref name="keepDim"/>): sums over <paramref name="axis"/>.</summary>
    public static Tensor Sum(Tensor x, int axis, bool keepDim = false) => ReduceAxis(nameof(Sum), x, axis, keepDim, mean: false);

    /// <summary>x[..., A, ...] → [..., ...] (or [..., 1, ...] with <paramref name="keepDim"/>): averages over <paramref name="axis"/>.</summary>
    public static Tensor Mean(Tensor x, int axis, bool keepDim = false) => ReduceAxis(nameof(Mean), x, axis, keepDim, mean: true);

    private static Tensor ReduceAll(string op, Tensor x, bool mean)
    {
        CheckF32(op, x, nameof(x));
        var xs = Read(x);
        double sum = 0;
        for (int i = 0; i < xs.Length; i++) sum += xs[i];
        long n = x.ElementCount;
        var output = Tensor.FromArray([(float)(mean ? sum / n : sum)], Shape.Scalar);
        if (!Autograd.Needs(x)) return output;
        return Autograd.Record(output, op, [x], g =>
        {
            // Every element contributes with weight 1 (or 1/n): the gradient is the scalar spread over x's shape.
            float v = g.AsReadOnlySpan<float>()[0];
            return [Tensor.Full(x.Shape, mean ? v / n : v)];
        });
    }

    private static Tensor ReduceAxis(string op, Tensor x, int axis, bool keepDim, bool mean)
    {
        CheckF32(op, x, nameof(x));
        int a = x.Shape.NormalizeAxis(axis);
        int size = x.Shape[a];
        long outer = 1, inner = 1;
        for (int i = 0; i < a; i++) outer *= x.Shape[i];
        for (int i = a + 1; i < x.Rank; i++) inner *= x.Shape[i];
        var dims = x.Shape.Dims.ToArray().ToList();
        if (keepDim) dims[a] = 1;
        else dims.RemoveAt(a);
        var output = Tensor.Empty(new Shape(dims.ToArray()));
        var xs = Read(x);
        var o = output.AsSpan<float>();
        float scale = mean ? 1f / size : 1f;

        // View x as [outer, size, inner]; the output is [outer, inner].
        for (long p = 0; p < outer; p++)
        {
            for (long q = 0; q < inner; q++)
            {
                double sum = 0;
                for (int s = 0; s < size; s++) sum += xs[(int)((((p * size) + s) * inner) + q)];
                o[(int)((p * inner) + q)] = (float)(sum * scale);
            }
        }

        if (!Autograd.Needs(x)) return output;
        return Autograd.Record(output, op, [x], g =>
        {
            var gs = g.AsReadOnlySpan<float>();
            var dx = Tensor.Empty(x.Shape);
            var d = dx.AsSpan<float>();
            for (long p = 0; p < outer; p++)
            {
                for (int s = 0; s < size; s++)
                {
                    for (long q = 0; q < inner; q++) d[(int)((((p * size) + s) * inner) + q)] = gs[(int)((p * inner) + q)] * scale;
                }
            }

            return [dx];
        });
    }
}
