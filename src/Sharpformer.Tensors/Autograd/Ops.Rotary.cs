namespace Sharpformer.Tensors;

public static partial class Ops
{
    /// <summary>
    /// x [B, T, H·D] → [B, T, H·D]: rotary position embedding of every head (Hugging Face's rotate_half layout, see
    /// <see cref="Kernels.Rotary"/>), token [b, t] at position <paramref name="positions"/>[b, t], with the tables
    /// cos/sin [P, D] (constants: no gradient flows into them). Backward: the inverse rotation of the gradient.
    /// </summary>
    /// <param name="x">Queries or keys before the head split, [B, T, H·D] (any rank ≥ 2 whose last axis is H·D).</param>
    /// <param name="heads">H.</param>
    /// <param name="positions">I32 positions, one per row of x (x's shape without its last axis).</param>
    /// <param name="cos">cos table [P, D].</param>
    /// <param name="sin">sin table [P, D].</param>
    /// <returns>The rotated tensor.</returns>
    /// <exception cref="ArgumentException">The shapes do not fit, or a position is outside the tables.</exception>
    public static Tensor Rotary(Tensor x, int heads, Tensor positions, Tensor cos, Tensor sin)
    {
        CheckF32(nameof(Rotary), x, nameof(x));
        CheckF32(nameof(Rotary), cos, nameof(cos));
        CheckF32(nameof(Rotary), sin, nameof(sin));
        ArgumentNullException.ThrowIfNull(positions);
        if (heads <= 0 || x.Rank < 2 || x.Shape.Last % heads != 0 || cos.Rank != 2 || cos.Shape != sin.Shape || cos.Shape[1] * heads != x.Shape.Last)
        {
            throw new ArgumentException($"Ops.Rotary: x {x.Shape} must be [..., H·D] with H={heads} and cos/sin [P, D] (got {cos.Shape} and {sin.Shape}).", nameof(x));
        }

        int rows = (int)x.Shape.Rows;
        if (positions.DType != DType.I32 || positions.ElementCount != rows)
        {
            throw new ArgumentException($"Ops.Rotary: positions must be I32 with one value per row of x ({rows}), got {positions.DType} {positions.Shape}.", nameof(positions));
        }

        int width = x.Shape.Last, d = cos.Shape[1];
        var pos = positions.Contiguous().AsReadOnlySpan<int>().ToArray();
        var cc = cos.Contiguous();
        var sc = sin.Contiguous();
        var output = x.Contiguous().Clone();
        Kernels.Rotary.Apply(output.AsSpan<float>(), rows, width, heads, d, pos, cc.AsReadOnlySpan<float>(), sc.AsReadOnlySpan<float>());
        if (!Autograd.Needs(x)) return output;

        return Autograd.Record(output, nameof(Rotary), [x], g =>
        {
            var dx = g.Contiguous().Clone();
            Kernels.Rotary.Apply(dx.AsSpan<float>(), rows, width, heads, d, pos, cc.AsReadOnlySpan<float>(), sc.AsReadOnlySpan<float>(), inverse: true);
            return [dx];
        });
    }
}
