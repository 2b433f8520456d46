using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Numerics.Tensors;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Kernels;

/// <summary>
/// Fused cross-entropy per row: log-softmax over the V logits of each of N rows plus the negative log-likelihood of the
/// target, loss[n] = logsumexp(logits[n, :]) − logits[n, target[n]], and its backward dlogits = (softmax − onehot) · dloss.
/// Rows whose target equals the ignore index (padding, prompt tokens) have loss 0 and gradient 0.
/// With label smoothing ε (PyTorch's <c>label_smoothing</c>) the target distribution is (1 − ε)·onehot + ε/V, so
/// loss[n] = logsumexp(logits[n]) − (1 − ε)·logits[n, target] − (ε/V)·Σ_v logits[n, v] and
/// dlogits = (softmax − (1 − ε)·onehot − ε/V) · dloss. Rows run in parallel when a row block is worth a thread
/// (a [B·T, 50257] GPT-2 batch is).
/// </summary>
public static class CrossEntropy
{
    /// <summary>Hugging Face / PyTorch default ignore index.</summary>
    public const int DefaultIgnoreIndex = -100;

    /// <summary>
    /// [N, V] logits, [N] targets → [N] losses: loss[n] = logsumexp(logits[n]) − (1 − ε)·logits[n, targets[n]]
    /// − (ε/V)·Σ_v logits[n, v] (ε = <paramref name="labelSmoothing"/>, 0 gives the plain negative log-likelihood);
    /// 0 for ignored rows. The mean loss is Σ losses / (returned count).
    /// </summary>
    /// <param name="logits">Unnormalized scores, N · V elements.</param>
    /// <param name="targets">Target class per row, in [0, V) or equal to <paramref name="ignoreIndex"/>.</param>
    /// <param name="losses">Per-row losses [N] (overwritten).</param>
    /// <param name="rows">N.</param>
    /// <param name="vocab">V.</param>
    /// <param name="ignoreIndex">Target value that marks a row to skip.</param>
    /// <param name="labelSmoothing">ε in [0, 1]: the share of the target mass spread evenly over all V classes.</param>
    /// <returns>The number of rows that were not ignored.</returns>
    /// <exception cref="ArgumentException">A size is negative, a span is too short, a target is out of range, or ε is outside [0, 1].</exception>
    public static int Forward(
        ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, Span<float> losses, int rows, int vocab, int ignoreIndex = DefaultIgnoreIndex,
        float labelSmoothing = 0f)
    {
        const string Op = "CrossEntropy.Forward";
        Check(Op, logits.Length, targets, rows, vocab, ignoreIndex, labelSmoothing);
        KernelChecks.AtLeast(Op, nameof(losses), losses.Length, rows, "[N={0}]", rows);
        if (!RowParallel.Worth(rows, vocab)) return ForwardRows(logits, targets, losses, 0, rows, vocab, ignoreIndex, labelSmoothing);
        return ForwardParallel(logits, targets, losses, rows, vocab, ignoreIndex, labelSmoothing);
    }

    // Separate so the lambda's captured state is allocated only when the rows are actually split.
    private static unsafe int ForwardParallel(
        ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, Span<float> losses, int rows, int vocab, int ignoreIndex, float labelSmoothing)
    {
        int counted = 0;
        fixed (float* pl = logits, ploss = losses)
        fixed (int* pt = targets)
        {
            nint al = (nint)pl, at = (nint)pt, aloss = (nint)ploss;
            int ll = logits.Length, lt = targets.Length, lloss = losses.Length;
            ParallelFor.For(rows, RowParallel.Grain(vocab), (start, end) =>
            {
                int c = ForwardRows(
                    new ReadOnlySpan<float>((void*)al, ll), new ReadOnlySpan<int>((void*)at, lt), new Span<float>((void*)aloss, lloss),
                    start, end, vocab, ignoreIndex, labelSmoothing);
                Interlocked.Add(ref counted, c);
            });
        }

        return counted;
    }

    private static int ForwardRows(
        ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, Span<float> losses, int start, int end, int vocab, int ignoreIndex,
        float labelSmoothing)
    {
        float[] scratch = ArrayPool<float>.Shared.Rent(Math.Max(vocab, 1));
        var e = scratch.AsSpan(0, vocab);
        int counted = 0;
        for (int n = start; n < end; n++)
        {
            if (targets[n] == ignoreIndex)
            {
                losses[n] = 0f;
                continue;
            }

            var row = logits.Slice(n * vocab, vocab);
            float max = Softmax.RowMax(row);
            losses[n] = RowLoss(row, targets[n], max, Softmax.ExpSubtractSum(row, max, e), labelSmoothing);
            counted++;
        }

        ArrayPool<float>.Shared.Return(scratch);
        return counted;
    }

    /// <summary>One row's loss from its max and its sum of exp(x − max): lse − (1 − ε)·x_t − (ε/V)·Σ_v x_v.</summary>
    private static float RowLoss(ReadOnlySpan<float> row, int target, float max, float sum, float labelSmoothing)
    {
        float loss = MathF.Log(sum) + max - ((1f - labelSmoothing) * row[target]);
        if (labelSmoothing != 0f)
        {
            // (1 − ε)·(lse − x_t) + (ε/V)·Σ_v (lse − x_v) = lse − (1 − ε)·x_t − (ε/V)·Σ_v x_v.
            loss -= labelSmoothing / row.Length * TensorPrimitives.Sum(row);
        }

        return loss;
    }

    /// <summary>A row's softmax in <paramref name="d"/> → its gradient: (softmax − (1 − ε)·onehot(target) − ε/V) · dLoss.</summary>
    private static void SoftmaxToGradient(Span<float> d, int target, float dLoss, float labelSmoothing)
    {
        TensorPrimitives.Multiply(d, dLoss, d);
        if (labelSmoothing != 0f) TensorPrimitives.Subtract(d, labelSmoothing / d.Length * dLoss, d);
        d[target] -= (1f - labelSmoothing) * dLoss;
    }

    /// <summary>
    /// <see cref="Forward"/> and <see cref="Backward"/> with dLosses[n] = <paramref name="dLoss"/> for every row, in one
    /// pass over the logits: each row's exponentials go straight into its gradient row, which is then normalised and
    /// scaled while it is still in cache, instead of a second read of the logits (and a second max, exp and sum) in the
    /// backward. The losses, the count and the gradient are bit for bit those of the two calls.
    /// </summary>
    /// <param name="logits">Unnormalized scores, N · V elements.</param>
    /// <param name="targets">Target class per row, in [0, V) or equal to <paramref name="ignoreIndex"/>.</param>
    /// <param name="losses">Per-row losses [N] (overwritten).</param>
    /// <param name="dLoss">The gradient of the final loss with respect to every row's loss (1 / count for the mean loss).</param>
    /// <param name="dLogits">Gradient with respect to the logits (overwritten), N · V elements; must not overlap <paramref name="logits"/>.</param>
    /// <param name="rows">N.</param>
    /// <param name="vocab">V.</param>
    /// <param name="ignoreIndex">Target value that marks a row to skip.</param>
    /// <param name="labelSmoothing">ε in [0, 1].</param>
    /// <returns>The number of rows that were not ignored.</returns>
    /// <exception cref="ArgumentException">A size is negative, a span is too short, a target is out of range, or ε is outside [0, 1].</exception>
    public static int ForwardWithGradient(
        ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, Span<float> losses, float dLoss, Span<float> dLogits,
        int rows, int vocab, int ignoreIndex = DefaultIgnoreIndex, float labelSmoothing = 0f)
    {
        const string Op = "CrossEntropy.ForwardWithGradient";
        Check(Op, logits.Length, targets, rows, vocab, ignoreIndex, labelSmoothing);
        KernelChecks.AtLeast(Op, nameof(losses), losses.Length, rows, "[N={0}]", rows);
        KernelChecks.AtLeast(Op, nameof(dLogits), dLogits.Length, (long)rows * vocab, "[N={0}, V={1}]", rows, vocab);
        if (!RowParallel.Worth(rows, vocab)) return ForwardWithGradientRows(logits, targets, losses, dLoss, dLogits, 0, rows, vocab, ignoreIndex, labelSmoothing);
        return ForwardWithGradientParallel(logits, targets, losses, dLoss, dLogits, rows, vocab, ignoreIndex, labelSmoothing);
    }

    // Separate so the lambda's captured state is allocated only when the rows are actually split.
    private static unsafe int ForwardWithGradientParallel(
        ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, Span<float> losses, float dLoss, Span<float> dLogits,
        int rows, int vocab, int ignoreIndex, float labelSmoothing)
    {
        int counted = 0;
        fixed (float* pl = logits, ploss = losses, pd = dLogits)
        fixed (int* pt = targets)
        {
            nint al = (nint)pl, at = (nint)pt, aloss = (nint)ploss, ad = (nint)pd;
            int ll = logits.Length, lt = targets.Length, lloss = losses.Length, ld = dLogits.Length;
            ParallelFor.For(rows, RowParallel.Grain(vocab), (start, end) =>
            {
                int c = ForwardWithGradientRows(
                    new ReadOnlySpan<float>((void*)al, ll), new ReadOnlySpan<int>((void*)at, lt), new Span<float>((void*)aloss, lloss),
                    dLoss, new Span<float>((void*)ad, ld), start, end, vocab, ignoreIndex, labelSmoothing);
                Interlocked.Add(ref counted, c);
            });
        }

        return counted;
    }

    private static int ForwardWithGradientRows(
        ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, Span<float> losses, float dLoss, Span<float> dLogits,
        int start, int end, int vocab, int ignoreIndex, float labelSmoothing)
    {
        int counted = 0;
        for (int n = start; n < end; n++)
        {
            var d = dLogits.Slice(n * vocab, vocab);
            if (targets[n] == ignoreIndex)
            {
                losses[n] = 0f;
                d.Clear();
                continue;
            }

            // The loss as ForwardRows computes it, the exponentials kept in d; then the gradient as BackwardRows does
            // (Softmax.Row's scaling by 1/sum, then the scale and the target), over the same exponentials.
            var row = logits.Slice(n * vocab, vocab);
            float max = Softmax.RowMax(row);
            float sum = Softmax.ExpSubtractSum(row, max, d);
            losses[n] = RowLoss(row, targets[n], max, sum, labelSmoothing);
            counted++;
            if (float.IsNegativeInfinity(max))
            {
                d.Clear();
            }
            else
            {
                TensorPrimitives.Multiply(d, 1f / sum, d);
            }

            SoftmaxToGradient(d, targets[n], dLoss, labelSmoothing);
        }

        return counted;
    }

    /// <summary>
    /// [N, V] logits, [N] targets, [N] dloss → [N, V]: dlogits[n] = (softmax(logits[n]) − (1 − ε)·onehot(targets[n]) − ε/V)
    /// · dLosses[n] (ε = <paramref name="labelSmoothing"/>); zero for ignored rows. For a mean loss pass dLosses[n] = 1 / count.
    /// </summary>
    /// <param name="logits">The forward logits, N · V elements.</param>
    /// <param name="targets">The forward targets [N].</param>
    /// <param name="dLosses">Gradient of the final loss with respect to each row's loss [N].</param>
    /// <param name="dLogits">Gradient with respect to the logits (overwritten), N · V elements; may be <paramref name="logits"/>.</param>
    /// <param name="rows">N.</param>
    /// <param name="vocab">V.</param>
    /// <param name="ignoreIndex">Target value that marks a row to skip.</param>
    /// <param name="labelSmoothing">The forward's ε in [0, 1].</param>
    /// <exception cref="ArgumentException">A size is negative, a span is too short, a target is out of range, or ε is outside [0, 1].</exception>
    public static void Backward(
        ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, ReadOnlySpan<float> dLosses, Span<float> dLogits,
        int rows, int vocab, int ignoreIndex = DefaultIgnoreIndex, float labelSmoothing = 0f)
    {
        const string Op = "CrossEntropy.Backward";
        Check(Op, logits.Length, targets, rows, vocab, ignoreIndex, labelSmoothing);
        KernelChecks.AtLeast(Op, nameof(dLosses), dLosses.Length, rows, "[N={0}]", rows);
        KernelChecks.AtLeast(Op, nameof(dLogits), dLogits.Length, (long)rows * vocab, "[N={0}, V={1}]", rows, vocab);
        if (!RowParallel.Worth(rows, vocab))
        {
            BackwardRows(logits, targets, dLosses, dLogits, 0, rows, vocab, ignoreIndex, labelSmoothing);
            return;
        }

        BackwardParallel(logits, targets, dLosses, dLogits, rows, vocab, ignoreIndex, labelSmoothing);
    }

    // Separate so the lambda's captured state is allocated only when the work is actually split.
    private static unsafe void BackwardParallel(
        ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, ReadOnlySpan<float> dLosses, Span<float> dLogits,
        int rows, int vocab, int ignoreIndex, float labelSmoothing)
    {
        fixed (float* pl = logits, pdl = dLosses, pd = dLogits)
        fixed (int* pt = targets)
        {
            nint al = (nint)pl, at = (nint)pt, adl = (nint)pdl, ad = (nint)pd;
            int ll = logits.Length, lt = targets.Length, ldl = dLosses.Length, ld = dLogits.Length;
            ParallelFor.For(rows, RowParallel.Grain(vocab), (start, end) => BackwardRows(
                new ReadOnlySpan<float>((void*)al, ll), new ReadOnlySpan<int>((void*)at, lt), new ReadOnlySpan<float>((void*)adl, ldl),
                new Span<float>((void*)ad, ld), start, end, vocab, ignoreIndex, labelSmoothing));
        }
    }

    private static void BackwardRows(
        ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, ReadOnlySpan<float> dLosses, Span<float> dLogits,
        int start, int end, int vocab, int ignoreIndex, float labelSmoothing)
    {
        for (int n = start; n < end; n++)
        {
            var d = dLogits.Slice(n * vocab, vocab);
            if (targets[n] == ignoreIndex)
            {
                d.Clear();
                continue;
            }

            Softmax.Row(logits.Slice(n * vocab, vocab), d);
            SoftmaxToGradient(d, targets[n], dLosses[n], labelSmoothing);
        }
    }

    /// <summary>Scalar reference of <see cref="Forward"/> in double: Σ_v −q_v·log p_v with q = (1 − ε)·onehot + ε/V.</summary>
    internal static int ForwardReference(
        ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, Span<float> losses, int rows, int vocab, int ignoreIndex, float labelSmoothing = 0f)
    {
        int counted = 0;
        for (int n = 0; n < rows; n++)
        {
            if (targets[n] == ignoreIndex)
            {
                losses[n] = 0f;
                continue;
            }

            double max = double.NegativeInfinity;
            for (int v = 0; v < vocab; v++) max = Math.Max(max, logits[(n * vocab) + v]);
            double sum = 0;
            for (int v = 0; v < vocab; v++) sum += Math.Exp(logits[(n * vocab) + v] - max);
            double lse = Math.Log(sum) + max, loss = 0;
            for (int v = 0; v < vocab; v++)
            {
                double target = ((v == targets[n] ? 1.0 : 0.0) * (1.0 - labelSmoothing)) + ((double)labelSmoothing / vocab);
                loss += target * (lse - logits[(n * vocab) + v]);
            }

            losses[n] = (float)loss;
            counted++;
        }

        return counted;
    }

    /// <summary>Scalar reference of <see cref="Backward"/> (double softmax minus the smoothed target).</summary>
    internal static void BackwardReference(
        ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, ReadOnlySpan<float> dLosses, Span<float> dLogits, int rows, int vocab, int ignoreIndex,
        float labelSmoothing = 0f)
    {
        for (int n = 0; n < rows; n++)
        {
            bool ignored = targets[n] == ignoreIndex;
            double max = double.NegativeInfinity;
            for (int v = 0; v < vocab; v++) max = Math.Max(max, logits[(n * vocab) + v]);
            double sum = 0;
            for (int v = 0; v < vocab; v++) sum += Math.Exp(logits[(n * vocab) + v] - max);
            for (int v = 0; v < vocab; v++)
            {
                double p = Math.Exp(logits[(n * vocab) + v] - max) / sum;
                double target = ((v == targets[n] ? 1.0 : 0.0) * (1.0 - labelSmoothing)) + ((double)labelSmoothing / vocab);
                dLogits[(n * vocab) + v] = ignored ? 0f : (float)((p - target) * dLosses[n]);
            }
        }
    }

    private static void Check(string op, int logitsLength, ReadOnlySpan<int> targets, int rows, int vocab, int ignoreIndex, float labelSmoothing)
    {
        KernelChecks.Dims(op, rows, vocab);
        if (!(labelSmoothing >= 0f && labelSmoothing <= 1f))
        {
            KernelChecks.Invalid(op, nameof(labelSmoothing), $"label smoothing must be in [0, 1] (0 = none, 0.1 is common), got {labelSmoothing}.");
        }

        KernelChecks.AtLeast(op, "logits", logitsLength, (long)rows * vocab, "[N={0}, V={1}]", rows, vocab);
        KernelChecks.AtLeast(op, nameof(targets), targets.Length, rows, "[N={0}]", rows);
        for (int n = 0; n < rows; n++)
        {
            int t = targets[n];
            if (t != ignoreIndex && (uint)t >= (uint)vocab) ThrowTarget(op, n, t, vocab, ignoreIndex);
        }
    }

    [DoesNotReturn]
    private static void ThrowTarget(string op, int n, int target, int vocab, int ignoreIndex) =>
        KernelChecks.Invalid(
            op, "targets", $"targets[{n}] = {target} is neither a class in [0, {vocab}) nor the ignore index {ignoreIndex}; check the labels and the vocabulary size.");
}
