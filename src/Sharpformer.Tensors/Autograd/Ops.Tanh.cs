using System.Numerics.Tensors;

namespace Sharpformer.Tensors;

public static partial class Ops
{
    /// <summary>x[...] → [...]: tanh(x) (the BERT pooler's activation). Backward: dx = dy · (1 − y²) from the saved output.</summary>
    public static Tensor Tanh(Tensor x)
    {
        CheckF32(nameof(Tanh), x, nameof(x));
        var output = Tensor.Empty(x.Shape);
        TensorPrimitives.Tanh(Read(x), output.AsSpan<float>());
        if (!Autograd.Needs(x)) return output;
        return Autograd.Record(output, nameof(Tanh), [x], g =>
        {
            var y = output.AsReadOnlySpan<float>();
            var dy = g.AsReadOnlySpan<float>();
            var dx = Tensor.Empty(x.Shape);
            var d = dx.AsSpan<float>();
            for (int i = 0; i < d.Length; i++) d[i] = dy[i] * (1f - (y[i] * y[i]));
            return [dx];
        });
    }
}
