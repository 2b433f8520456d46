namespace Sharpformer.Tensors;

public static partial class Ops
{
    /// <summary>
    /// logits[N, V] with targets[N] (I32 or I64) → []: mean cross-entropy −log softmax(logits)[target] over the rows whose
    /// target is not <paramref name="ignoreIndex"/>, like PyTorch's cross_entropy (NaN when every row is ignored).
    /// Logits may also be [B, T, V] with targets [B, T].
    /// </summary>
    /// <exception cref="ArgumentException">The shapes disagree, or a target is outside [0, V) and not the ignore index.</exception>
    public static Tensor CrossEntropy(Tensor logits, Tensor targets, int ignoreIndex = -100)
    {
        CheckF32(nameof(CrossEntropy), logits, nameof(logits));
        ArgumentNullException.ThrowIfNull(targets);
        if (logits.Rank < 2 || !logits.Shape.Dims[..^1].SequenceEqual(targets.Shape.Dims))
        {
            ShapeError.Mismatch(nameof(CrossEntropy), logits.Shape, targets.Shape, "logits must be [N, V] and targets [N] (or [B, T, V] and [B, T])");
        }

        var target = ReadIds(nameof(CrossEntropy), targets, nameof(targets));
        int v = logits.Shape.Last;
        int rows = target.Length;
        var xs = Read(logits);

        // Saved for backward (only when recording): the softmax of each counted row.
        bool record = Autograd.Needs(logits);
        var probs = record ? new float[xs.Length] : [];
        double total = 0;
        int count = 0;
        for (int r = 0; r < rows; r++)
        {
            if (target[r] == ignoreIndex) continue;
            if ((uint)target[r] >= (uint)v)
            {
                throw new ArgumentException($"CrossEntropy: target {target[r]} in row {r} is outside [0, {v}) and is not the ignore index {ignoreIndex}.", nameof(targets));
            }

            var row = xs.Slice(r * v, v);
            float max = float.NegativeInfinity;
            for (int j = 0; j < v; j++) max = MathF.Max(max, row[j]);
            double sum = 0;
            for (int j = 0; j < v; j++) sum += Math.Exp(row[j] - max);
            double logSumExp = max + Math.Log(sum);
            total += logSumExp - row[target[r]];
            if (record)
            {
                for (int j = 0; j < v; j++) probs[(r * v) + j] = (float)(Math.Exp(row[j] - max) / sum);
            }

            count++;
        }

        var output = Tensor.FromArray([(float)(total / count)], Shape.Scalar);
        if (!record) return output;
        return Autograd.Record(output, nameof(CrossEntropy), [logits, targets], g =>
        {
            // d loss / d logits[r, j] = (softmax[r, j] − [j = target_r]) / count for counted rows, 0 for ignored rows.
            float scale = g.AsReadOnlySpan<float>()[0] / count;
            var dx = Tensor.Zeros(logits.Shape);
            var d = dx.AsSpan<float>();
            for (int r = 0; r < rows; r++)
            {
                if (target[r] == ignoreIndex) continue;
                for (int j = 0; j < v; j++) d[(r * v) + j] = probs[(r * v) + j] * scale;
                d[(r * v) + target[r]] -= scale;
            }

            return [dx, null];
        });
    }
}
