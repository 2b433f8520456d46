using Sharpformer.Tensors;

namespace Sharpformer.Training.Optim;

/// <summary>
/// Adam with decoupled weight decay, exactly <c>torch.optim.AdamW</c> (amsgrad false, single-tensor code) in F32. For
/// each parameter with a gradient g, with its own step count t (incremented first) and its group's lr and wd:
/// <code>
/// p ← p · (1 − lr·wd)
/// m ← β1·m + (1 − β1)·g            v ← β2·v + (1 − β2)·g²
/// p ← p − lr / (1 − β1^t) · m / (√v / √(1 − β2^t) + ε)
/// </code>
/// State per parameter: <c>exp_avg</c> (m), <c>exp_avg_sq</c> (v), both zero at the first step, and the step t.
/// A parameter without a gradient is skipped, so its t falls behind the others' (as in PyTorch).
/// </summary>
public sealed class AdamW : Optimizer
{
    private static readonly string[] Buffers = ["exp_avg", "exp_avg_sq"];

    /// <summary>Creates the optimizer. PyTorch's defaults: β = (0.9, 0.999), ε = 1e-8; HF's Trainer uses the same.</summary>
    /// <param name="groups">The parameter groups (learning rate and weight decay per group), e.g. <see cref="ParameterGroup.TrainerGroups"/>.</param>
    /// <param name="beta1">β1, the first-moment decay, in [0, 1).</param>
    /// <param name="beta2">β2, the second-moment decay, in [0, 1).</param>
    /// <param name="epsilon">ε, added to the denominator; ≥ 0.</param>
    /// <exception cref="ArgumentException">A hyperparameter is out of range, the groups are empty or share a parameter.</exception>
    public AdamW(IEnumerable<ParameterGroup> groups, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8)
        : base("AdamW", groups)
    {
        Beta1 = CheckUnitInterval(Name, nameof(beta1), beta1);
        Beta2 = CheckUnitInterval(Name, nameof(beta2), beta2);
        if (!(epsilon >= 0 && double.IsFinite(epsilon)))
        {
            throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "AdamW: epsilon must be finite and ≥ 0.");
        }

        Epsilon = epsilon;
    }

    /// <summary>β1.</summary>
    public double Beta1 { get; }

    /// <summary>β2.</summary>
    public double Beta2 { get; }

    /// <summary>ε.</summary>
    public double Epsilon { get; }

    private protected override IReadOnlyList<string> BufferNames => Buffers;

    private protected override bool CountsParameterSteps => true;

    private protected override ChunkUpdate Prepare(ActiveParameter entry, float gradientScale)
    {
        var (coefficients, parameter, grad, m, v) = Begin(entry, gradientScale);
        return (start, end) =>
        {
            int length = end - start;
            OptimKernels.AdamW(
                coefficients,
                parameter.AsSpan<float>().Slice(start, length),
                grad.AsReadOnlySpan<float>().Slice(start, length),
                m.AsSpan<float>().Slice(start, length),
                v.AsSpan<float>().Slice(start, length));
        };
    }

    /// <summary>The update with the gradient's sum of squares taken inside AdamW's loop (one read of each gradient element).</summary>
    private protected override MeasuredChunkUpdate PrepareMeasured(ActiveParameter entry)
    {
        var (coefficients, parameter, grad, m, v) = Begin(entry, 1f);
        return (start, end) =>
        {
            int length = end - start;
            return OptimKernels.AdamWSumOfSquares(
                coefficients,
                parameter.AsSpan<float>().Slice(start, length),
                grad.AsReadOnlySpan<float>().Slice(start, length),
                m.AsSpan<float>().Slice(start, length),
                v.AsSpan<float>().Slice(start, length));
        };
    }

    /// <summary>Creates the parameter's moments if new, advances its step and computes this step's scalars.</summary>
    private (AdamWCoefficients Coefficients, Tensor Parameter, Tensor Grad, Tensor M, Tensor V) Begin(ActiveParameter entry, float gradientScale)
    {
        var state = entry.State;
        state.Buffers[0] ??= Tensor.Zeros(entry.Parameter.Shape);
        state.Buffers[1] ??= Tensor.Zeros(entry.Parameter.Shape);
        state.Step++;

        // Python-float arithmetic (double), rounded to F32 where it meets the tensors, as in torch's _single_tensor_adamw.
        double lr = entry.Group.LearningRate;
        double biasCorrection1 = 1 - Math.Pow(Beta1, state.Step);
        double biasCorrection2 = 1 - Math.Pow(Beta2, state.Step);
        double stepSize = lr / biasCorrection1;
        var coefficients = new AdamWCoefficients(
            Decay: (float)(1 - (lr * entry.Group.WeightDecay)),
            Beta1: (float)Beta1,
            OneMinusBeta1: (float)(1 - Beta1),
            Beta2: (float)Beta2,
            OneMinusBeta2: (float)(1 - Beta2),
            BiasCorrection2Sqrt: (float)Math.Sqrt(biasCorrection2),
            Epsilon: (float)Epsilon,
            NegativeStepSize: (float)-stepSize,
            GradientScale: gradientScale);
        return (coefficients, entry.Parameter.Value, entry.Grad, state.Buffers[0]!, state.Buffers[1]!);
    }
}
