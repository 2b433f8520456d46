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
        if (!Autograd.Needs(logits))
        {
            int counted = Kernels.CrossEntropy.Forward(xc.AsReadOnlySpan<float>(), target, losses, rows, v, ignoreIndex, labelSmoothing);
            return MeanLoss(losses, counted);
        }

        // Recording: the gradient for the usual seed (d loss = 1, so d row loss = 1 / count) is computed with the loss, in
        // the same pass over the logits while each row is in cache; the backward then has nothing left to do. Another
        // incoming gradient (a scaled loss) recomputes it from the logits, exactly as before.
        int count = 0;
        foreach (int t in target)
        {
            if (t != ignoreIndex) count++;
        }

        var gradient = Tensor.Empty(logits.Shape);
        Kernels.CrossEntropy.ForwardWithGradient(xc.AsReadOnlySpan<float>(), target, losses, 1f / count, gradient.AsSpan<float>(), rows, v, ignoreIndex, labelSmoothing);
        return Autograd.Record(MeanLoss(losses, count), nameof(CrossEntropy), [logits, targets], g =>
        {
            // d loss / d logits[r] = (softmax(logits[r]) − (1 − ε)·onehot(target_r) − ε/V) · g / count for counted rows, 0 for ignored ones.
            float seed = g.AsReadOnlySpan<float>()[0];
            if (seed == 1f) return [gradient, null]; // only read downstream: the engine owns (and so writes) only what a node allocates during its run
            var dLosses = new float[rows];
            Array.Fill(dLosses, seed / count);
            var dx = Tensor.Empty(logits.Shape);
            Kernels.CrossEntropy.Backward(xc.AsReadOnlySpan<float>(), target, dLosses, dx.AsSpan<float>(), rows, v, ignoreIndex, labelSmoothing);
            return [dx, null];
        });
    }

    /// <summary>The mean of the per-row losses over the counted rows, as a scalar tensor (NaN when none is counted).</summary>
    private static Tensor MeanLoss(float[] losses, int count)
    {
        double total = 0;
        foreach (float l in losses) total += l;
        return Tensor.FromArray([(float)(total / count)], Shape.Scalar);
    }

    /// <summary>
    /// logits [*] and targets [*] (same shape, F32) → []: the mean binary cross-entropy of sigmoid(logits) against
    /// targets, as PyTorch's <c>binary_cross_entropy_with_logits</c> (reduction mean) computes it in its stable form:
    /// loss_i = max(x_i, 0) − x_i·y_i + log(1 + exp(−|x_i|)). Gradients: d/dx = (sigmoid(x) − y) / N, d/dy = −x / N.
    /// </summary>
    /// <exception cref="ArgumentException">The shapes differ, a tensor is not F32, or the tensors are empty.</exception>
    public static Tensor BinaryCrossEntropyWithLogits(Tensor logits, Tensor targets)
    {
        const string op = nameof(BinaryCrossEntropyWithLogits);
        CheckPairwiseLoss(op, logits, targets);
        var x = Read(logits).ToArray();
        var y = Read(targets).ToArray();
        int n = x.Length;
        double total = 0;
        for (int i = 0; i < n; i++)
        {
            double xi = x[i];
            total += Math.Max(xi, 0) - (xi * y[i]) + Math.Log(1 + Math.Exp(-Math.Abs(xi)));
        }

        var output = Tensor.FromArray([(float)(total / n)], Shape.Scalar);
        if (!Autograd.Needs(logits, targets)) return output;
        return Autograd.Record(output, op, [logits, targets], g =>
        {
            float scale = g.AsReadOnlySpan<float>()[0] / n;
            var dx = new float[n];
            var dy = new float[n];
            for (int i = 0; i < n; i++)
            {
                double sigmoid = 1 / (1 + Math.Exp(-x[i]));
                dx[i] = (float)((sigmoid - y[i]) * scale);
                dy[i] = -x[i] * scale;
            }

            return [Tensor.FromArray(dx, logits.Shape), Tensor.FromArray(dy, targets.Shape)];
        });
    }

    /// <summary>
    /// input [*] and target [*] (same shape, F32) → []: the mean squared error mean((x − y)²), PyTorch's
    /// <c>mse_loss</c> with reduction mean. Gradients: d/dx = 2(x − y) / N, d/dy = −2(x − y) / N.
    /// </summary>
    /// <exception cref="ArgumentException">The shapes differ, a tensor is not F32, or the tensors are empty.</exception>
    public static Tensor MseLoss(Tensor input, Tensor target)
    {
        const string op = nameof(MseLoss);
        CheckPairwiseLoss(op, input, target);
        var x = Read(input).ToArray();
        var y = Read(target).ToArray();
        int n = x.Length;
        double total = 0;
        for (int i = 0; i < n; i++)
        {
            double d = (double)x[i] - y[i];
            total += d * d;
        }

        var output = Tensor.FromArray([(float)(total / n)], Shape.Scalar);
        if (!Autograd.Needs(input, target)) return output;
        return Autograd.Record(output, op, [input, target], g =>
        {
            float scale = 2f * g.AsReadOnlySpan<float>()[0] / n;
            var dx = new float[n];
            var dy = new float[n];
            for (int i = 0; i < n; i++)
            {
                float d = (x[i] - y[i]) * scale;
                dx[i] = d;
                dy[i] = -d;
            }

            return [Tensor.FromArray(dx, input.Shape), Tensor.FromArray(dy, target.Shape)];
        });
    }

    private static void CheckPairwiseLoss(string op, Tensor input, Tensor target)
    {
        CheckF32(op, input, nameof(input));
        CheckF32(op, target, nameof(target));
        if (input.Shape != target.Shape)
        {
            ShapeError.Mismatch(op, input.Shape, target.Shape, "the input and the target must have the same shape (reshape one of them)");
        }

        if (input.Shape.ElementCount == 0)
        {
            ShapeError.Invalid(op, input.Shape, "the mean over zero elements is undefined; pass at least one element");
        }
    }
}
