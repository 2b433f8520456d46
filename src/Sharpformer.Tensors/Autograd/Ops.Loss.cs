namespace Sharpformer.Tensors;

public static partial class Ops
{
    /// <summary>
    /// logits[N, V] with targets[N] (I32 or I64) → []: mean cross-entropy −log softmax(logits)[target] over the rows whose
    /// target is not <paramref name="ignoreIndex"/>, like PyTorch's cross_entropy (NaN when every row is ignored).
    /// Logits may also be [B, T, V] with targets [B, T]. With <paramref name="labelSmoothing"/> ε the target of each
    /// counted row is (1 − ε)·onehot + ε/V (PyTorch's <c>label_smoothing</c>): loss = Σ_v −target_v · log softmax_v,
    /// still averaged over the rows that are not ignored; ignored rows contribute nothing.
    /// </summary>
    /// <exception cref="ArgumentException">
    /// The shapes disagree, a target is outside [0, V) and not the ignore index, or ε is outside [0, 1].
    /// </exception>
    public static Tensor CrossEntropy(Tensor logits, Tensor targets, int ignoreIndex = -100, float labelSmoothing = 0f)
    {
        CheckF32(nameof(CrossEntropy), logits, nameof(logits));
        ArgumentNullException.ThrowIfNull(targets);
        if (logits.Rank < 2 || !logits.Shape.Dims[..^1].SequenceEqual(targets.Shape.Dims))
        {
            ShapeError.Mismatch(nameof(CrossEntropy), logits.Shape, targets.Shape, "logits must be [N, V] and targets [N] (or [B, T, V] and [B, T])");
        }

        if (!(labelSmoothing >= 0f && labelSmoothing <= 1f))
        {
            throw new ArgumentOutOfRangeException(nameof(labelSmoothing), labelSmoothing, "CrossEntropy: label smoothing must be in [0, 1] (0 = none; 0.1 is the usual choice).");
        }

        var target = ReadIds(nameof(CrossEntropy), targets, nameof(targets));
        int v = logits.Shape.Last;
        int rows = target.Length;
        for (int r = 0; r < rows; r++)
        {
            if (target[r] != ignoreIndex && (uint)target[r] >= (uint)v)
            {
                throw new ArgumentException($"CrossEntropy: target {target[r]} in row {r} is outside [0, {v}) and is not the ignore index {ignoreIndex}; logits {logits.Shape}, targets {targets.Shape}.", nameof(targets));
            }
        }

        var xc = logits.Contiguous();
        var losses = new float[rows];
        int count = Kernels.CrossEntropy.Forward(xc.AsReadOnlySpan<float>(), target, losses, rows, v, ignoreIndex, labelSmoothing);
        double total = 0;
        foreach (float l in losses) total += l;
        var output = Tensor.FromArray([(float)(total / count)], Shape.Scalar);
        if (!Autograd.Needs(logits)) return output;
        return Autograd.Record(output, nameof(CrossEntropy), [logits, targets], g =>
        {
            // d loss / d logits[r] = (softmax(logits[r]) − (1 − ε)·onehot(target_r) − ε/V) / count for counted rows, 0 for ignored ones.
            var dLosses = new float[rows];
            Array.Fill(dLosses, g.AsReadOnlySpan<float>()[0] / count);
            var dx = Tensor.Empty(logits.Shape);
            Kernels.CrossEntropy.Backward(xc.AsReadOnlySpan<float>(), target, dLosses, dx.AsSpan<float>(), rows, v, ignoreIndex, labelSmoothing);
            return [dx, null];
        });
    }
}
