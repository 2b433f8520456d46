using System.Diagnostics.CodeAnalysis;

namespace Sharpformer.Tensors;

/// <summary>
/// Tensor-level ops with reverse-mode gradients. Each op computes its forward result and, when an input requires
/// gradients and recording is on (<see cref="Autograd.IsGradEnabled"/>), records a backward function written beside it.
/// Inputs may be strided views; outputs are new contiguous F32 tensors unless the op is a view op.
/// Dimension vocabulary: B batch, T time (sequence), C channels, H heads, D head size, V vocabulary, N rows.
/// </summary>
public static partial class Ops
{
    /// <summary>Contiguous F32 elements of <paramref name="t"/> (copies a strided view once).</summary>
    private static ReadOnlySpan<float> Read(Tensor t) => t.Contiguous().AsReadOnlySpan<float>();

    private static void CheckF32(string op, Tensor t, string name)
    {
        ArgumentNullException.ThrowIfNull(t, name);
        if (t.DType != DType.F32) ThrowDType(op, name, t);
    }

    [DoesNotReturn]
    private static void ThrowDType(string op, string name, Tensor t) =>
        throw new ArgumentException($"{op}: {name} of shape {t.Shape} is {t.DType}, but F32 is required; convert with To(DType.F32).", name);

    /// <summary>The dims of <paramref name="shape"/> with the last one replaced by <paramref name="last"/>.</summary>
    private static Shape WithLast(Shape shape, int last)
    {
        var dims = shape.Dims.ToArray();
        dims[^1] = last;
        return new Shape(dims);
    }
}
