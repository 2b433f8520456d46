namespace Sharpformer.Tensors;

public static partial class Ops
{
    /// <summary>x[...] → [dims]: the same elements in a new shape (one dimension may be -1); a view when x is contiguous.</summary>
    /// <exception cref="ArgumentException">The element counts differ.</exception>
    public static Tensor Reshape(Tensor x, params int[] dims)
    {
        ArgumentNullException.ThrowIfNull(x);
        var output = x.Reshape(dims);
        if (!Autograd.Needs(x)) return output;
        return Autograd.Record(output, nameof(Reshape), [x], g => [g.Reshape(x.Shape.Dims)]);
    }

    /// <summary>x[..., A, ..., B, ...] → [..., B, ..., A, ...]: swaps two axes (a view, no copy).</summary>
    public static Tensor Transpose(Tensor x, int axis0, int axis1)
    {
        ArgumentNullException.ThrowIfNull(x);
        int a = x.Shape.NormalizeAxis(axis0), b = x.Shape.NormalizeAxis(axis1);
        int[] order = Enumerable.Range(0, x.Rank).ToArray();
        (order[a], order[b]) = (order[b], order[a]);
        return Permute(x, order);
    }

    /// <summary>x → y with y's axis i = x's axis <paramref name="order"/>[i] (a view, no copy; e.g. [B, T, H, D] → [B, H, T, D]).</summary>
    /// <exception cref="ArgumentException"><paramref name="order"/> is not a permutation of x's axes.</exception>
    public static Tensor Permute(Tensor x, params int[] order)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(order);
        var output = x.Permute(order);
        if (!Autograd.Needs(x)) return output;
        return Autograd.Record(output, nameof(Permute), [x], g =>
        {
            // The gradient travels back through the inverse permutation.
            var inverse = new int[order.Length];
            for (int i = 0; i < order.Length; i++) inverse[x.Shape.NormalizeAxis(order[i])] = i;
            return [g.Permute(inverse)];
        });
    }

    /// <summary>x[..., A, ...] → [..., length, ...]: indices [start, start + length) of <paramref name="axis"/> (a view).</summary>
    /// <exception cref="ArgumentException">The range does not lie within the axis.</exception>
    public static Tensor Narrow(Tensor x, int axis, int start, int length)
    {
        ArgumentNullException.ThrowIfNull(x);
        var output = x.Narrow(axis, start, length);
        if (!Autograd.Needs(x)) return output;
        return Autograd.Record(output, nameof(Narrow), [x], g =>
        {
            // Elements outside the window did not reach the output: their gradient is zero.
            var dx = Tensor.Zeros(x.Shape);
            g.CopyTo(dx.Narrow(axis, start, length));
            return [dx];
        });
    }

    /// <summary>x[B, T, H·D] → [B, H, T, D]: splits channels into heads (a view, no copy, when the last axis is dense).</summary>
    /// <exception cref="ArgumentException">x is not rank 3 or its last dimension does not divide by <paramref name="heads"/>.</exception>
    public static Tensor SplitHeads(Tensor x, int heads)
    {
        ArgumentNullException.ThrowIfNull(x);
        var output = x.SplitHeads(heads);
        if (!Autograd.Needs(x)) return output;
        return Autograd.Record(output, nameof(SplitHeads), [x], g => [g.MergeHeads()]);
    }

    /// <summary>x[B, H, T, D] → [B, T, H·D]: joins heads back into channels (copies unless already laid out that way).</summary>
    /// <exception cref="ArgumentException">x is not rank 4.</exception>
    public static Tensor MergeHeads(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        var output = x.MergeHeads();
        if (!Autograd.Needs(x)) return output;
        int heads = x.Shape[1];
        return Autograd.Record(output, nameof(MergeHeads), [x], g => [g.SplitHeads(heads)]);
    }

    /// <summary>[..., A₁, ...], [..., A₂, ...], ... → [..., A₁ + A₂ + ..., ...]: joins tensors along <paramref name="axis"/>.</summary>
    /// <exception cref="ArgumentException">No tensors are given, or their shapes differ outside <paramref name="axis"/>.</exception>
    public static Tensor Concat(IReadOnlyList<Tensor> tensors, int axis)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        if (tensors.Count == 0) throw new ArgumentException("Concat: at least one tensor is required.", nameof(tensors));
        var first = tensors[0];
        CheckF32(nameof(Concat), first, nameof(tensors));
        int a = first.Shape.NormalizeAxis(axis);
        int total = 0;
        foreach (var t in tensors)
        {
            CheckF32(nameof(Concat), t, nameof(tensors));
            bool same = t.Rank == first.Rank;
            for (int i = 0; same && i < t.Rank; i++) same = i == a || t.Shape[i] == first.Shape[i];
            if (!same) ShapeError.Mismatch(nameof(Concat), first.Shape, t.Shape, $"all dimensions except axis {a} must match");
            total += t.Shape[a];
        }

        var dims = first.Shape.Dims.ToArray();
        dims[a] = total;
        var output = Tensor.Empty(new Shape(dims));
        var starts = new int[tensors.Count];
        int at = 0;
        for (int i = 0; i < tensors.Count; i++)
        {
            starts[i] = at;
            tensors[i].CopyTo(output.Narrow(a, at, tensors[i].Shape[a]));
            at += tensors[i].Shape[a];
        }

        var inputs = tensors.ToArray();
        bool needs = false;
        foreach (var t in inputs) needs |= Autograd.Needs(t);
        if (!needs) return output;
        return Autograd.Record(output, nameof(Concat), inputs, g =>
        {
            var grads = new Tensor?[inputs.Length];
            for (int i = 0; i < inputs.Length; i++)
            {
                if (inputs[i].RequiresGrad) grads[i] = g.Narrow(a, starts[i], inputs[i].Shape[a]);
            }

            return grads;
        });
    }
}
