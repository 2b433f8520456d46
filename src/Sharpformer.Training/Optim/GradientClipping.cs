using Sharpformer.NN;
using Sharpformer.Tensors;
using Sharpformer.Tensors.Threading;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace Sharpformer.Training.Optim;

/// <summary>Gradient-norm clipping, as <c>torch.nn.utils.clip_grad_norm_</c> with the L2 norm.</summary>
public static class GradientClipping
{
    /// <summary>Elements per parallel work item, and per partial sum of the norm (the norm's bits depend on it).</summary>
    internal const int NormChunkElements = 1 << 16;

    /// <summary>
    /// Computes the L2 norm of all gradients together (as if concatenated into one vector; accumulated in double) and,
    /// when it exceeds <paramref name="maxNorm"/>, scales every gradient in place by maxNorm / (norm + 1e-6), as PyTorch
    /// does. Parameters without a gradient are ignored; with none at all the norm is 0.
    /// A non-finite norm (an overflow or a NaN somewhere) is returned with the gradients left untouched — PyTorch would
    /// scale them by NaN or 0 — so the caller can skip the step (zero the gradients) and go on, or stop.
    /// </summary>
    /// <param name="parameters">The parameters whose gradients to clip, e.g. <see cref="Module.Parameters"/>.</param>
    /// <param name="maxNorm">The largest allowed norm; &gt; 0 (positive infinity only measures).</param>
    /// <returns>The total norm before clipping (check <see cref="double.IsFinite"/>).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxNorm"/> is not &gt; 0.</exception>
    public static double ClipGradNorm(IEnumerable<Parameter> parameters, double maxNorm)
    {
        CheckMaxNorm(maxNorm);
        var grads = Gradients(parameters);
        double total = GlobalNorm(grads);
        if (!double.IsFinite(total)) return total;
        float coefficient = ClipCoefficient(total, maxNorm);
        if (coefficient < 1f)
        {
            var (owners, starts) = Chunks(grads);
            ParallelFor.For(owners.Length, 1, (from, to) =>
            {
                for (int c = from; c < to; c++)
                {
                    var slice = Slice(grads[owners[c]], starts[c]);
                    TensorPrimitives.Multiply(slice, coefficient, slice);
                }
            });
        }

        return total;
    }

    /// <summary>
    /// The L2 norm of all gradients together, as <see cref="ClipGradNorm"/> measures it (in double, summed in a fixed
    /// order whatever the thread count), without changing them. Parameters without a gradient are ignored.
    /// </summary>
    /// <param name="parameters">The parameters whose gradients to measure.</param>
    /// <returns>The norm (0 without gradients; not finite when a gradient holds an overflow or a NaN).</returns>
    public static double GlobalNorm(IEnumerable<Parameter> parameters) => GlobalNorm(Gradients(parameters));

    /// <summary>
    /// The factor <see cref="ClipGradNorm"/> scales the gradients by for a measured <paramref name="norm"/>:
    /// (float)(maxNorm / (norm + 1e-6)) when that is below 1, else 1 (no clipping). Pass it to
    /// <see cref="Optimizer.Step(float)"/> to clip inside the update, in one pass over the gradients.
    /// </summary>
    /// <param name="norm">The finite norm from <see cref="GlobalNorm(IEnumerable{Parameter})"/>.</param>
    /// <param name="maxNorm">The largest allowed norm; &gt; 0 (positive infinity never clips).</param>
    /// <returns>The factor, in (0, 1].</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxNorm"/> is not &gt; 0, or <paramref name="norm"/> is negative or not finite.</exception>
    public static float ClipCoefficient(double norm, double maxNorm)
    {
        CheckMaxNorm(maxNorm);
        if (!(norm >= 0 && double.IsFinite(norm)))
        {
            throw new ArgumentOutOfRangeException(nameof(norm), norm, "ClipCoefficient: the norm must be finite and ≥ 0 (skip the step when GlobalNorm is not finite).");
        }

        float coefficient = (float)(maxNorm / (norm + 1e-6));
        return coefficient < 1f ? coefficient : 1f;
    }

    private static void CheckMaxNorm(double maxNorm)
    {
        if (!(maxNorm > 0))
        {
            throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "ClipGradNorm: maxNorm must be > 0 (HF's Trainer skips clipping when max_grad_norm is 0; do the same).");
        }
    }

    private static List<Tensor> Gradients(IEnumerable<Parameter> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var grads = new List<Tensor>();
        foreach (var parameter in parameters)
        {
            ArgumentNullException.ThrowIfNull(parameter, nameof(parameters));
            if (parameter.Value.Grad is { } grad) grads.Add(grad);
        }

        return grads;
    }

    private static double GlobalNorm(List<Tensor> grads)
    {
        var (owners, starts) = Chunks(grads);
        var partial = new double[owners.Length];
        ParallelFor.For(owners.Length, 1, (from, to) =>
        {
            for (int c = from; c < to; c++)
            {
                partial[c] = OptimKernels.SumOfSquares(Slice(grads[owners[c]], starts[c]));
            }
        });

        return Norm(partial);
    }

    /// <summary>
    /// The norm from the sums of squares of the gradients' <see cref="NormChunkElements"/>-element chunks, added in the
    /// order given (gradient by gradient, chunk by chunk), so the result does not depend on which thread did what.
    /// </summary>
    internal static double Norm(IEnumerable<double> chunkSumsOfSquares)
    {
        double sumOfSquares = 0;
        foreach (double value in chunkSumsOfSquares)
        {
            sumOfSquares += value;
        }

        return Math.Sqrt(sumOfSquares);
    }

    private static (int[] Owners, int[] Starts) Chunks(List<Tensor> grads)
    {
        var owners = new List<int>();
        var starts = new List<int>();
        for (int i = 0; i < grads.Count; i++)
        {
            int length = checked((int)grads[i].ElementCount);
            for (int start = 0; start < length; start += NormChunkElements)
            {
                owners.Add(i);
                starts.Add(start);
            }
        }

        return ([.. owners], [.. starts]);
    }

    private static Span<float> Slice(Tensor grad, int start)
    {
        var span = grad.AsSpan<float>();
        return span.Slice(start, Math.Min(NormChunkElements, span.Length - start));
    }
}
