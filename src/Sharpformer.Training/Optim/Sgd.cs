using Sharpformer.Tensors;

namespace Sharpformer.Training.Optim;

/// <summary>
/// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and (coupled) weight decay, exactly
/// <c>torch.optim.SGD</c> (single-tensor code) in F32. For each parameter with a gradient g, with its group's lr and wd:
/// <code>
/// d ← g + wd·p                                  (when wd ≠ 0)
/// b ← d at the first step, else μ·b + (1 − dampening)·d   (when μ ≠ 0)
/// d ← d + μ·b (Nesterov) or b                   (when μ ≠ 0)
/// p ← p − lr·d
/// </code>
/// State per parameter (only with momentum): <c>momentum_buffer</c> (b). A parameter without a gradient is skipped.
/// </summary>
public sealed class Sgd : Optimizer
{
    private static readonly string[] MomentumBuffers = ["momentum_buffer"];

    /// <summary>Creates the optimizer (PyTorch's defaults: no momentum, no dampening, no Nesterov).</summary>
    /// <param name="groups">The parameter groups (learning rate and weight decay per group).</param>
    /// <param name="momentum">μ, in [0, 1); 0 keeps no state.</param>
    /// <param name="dampening">Dampening of the momentum update, in [0, 1).</param>
    /// <param name="nesterov">Nesterov momentum (needs μ &gt; 0 and dampening 0, as in PyTorch).</param>
    /// <exception cref="ArgumentException">A hyperparameter is out of range, Nesterov is asked without momentum or with dampening, or the groups are empty or share a parameter.</exception>
    public Sgd(IEnumerable<ParameterGroup> groups, double momentum = 0, double dampening = 0, bool nesterov = false)
        : base("SGD", groups)
    {
        Momentum = CheckUnitInterval(Name, nameof(momentum), momentum);
        Dampening = CheckUnitInterval(Name, nameof(dampening), dampening);
        if (nesterov && (momentum <= 0 || dampening != 0))
        {
            throw new ArgumentException($"SGD: Nesterov momentum requires momentum > 0 and dampening 0 (got momentum {momentum}, dampening {dampening}).", nameof(nesterov));
        }

        Nesterov = nesterov;
    }

    /// <summary>μ.</summary>
    public double Momentum { get; }

    /// <summary>Dampening.</summary>
    public double Dampening { get; }

    /// <summary>Whether the update uses Nesterov momentum.</summary>
    public bool Nesterov { get; }

    private protected override IReadOnlyList<string> BufferNames => Momentum != 0 ? MomentumBuffers : [];

    private protected override bool CountsParameterSteps => false;

    private protected override ChunkUpdate Prepare(ActiveParameter entry, float gradientScale)
    {
        bool first = false;
        if (Momentum != 0 && entry.State.Buffers[0] is null)
        {
            // PyTorch clones d into the buffer at a parameter's first step; the kernel writes it.
            entry.State.Buffers[0] = Tensor.Empty(entry.Parameter.Shape);
            first = true;
        }

        double weightDecay = entry.Group.WeightDecay;
        var coefficients = new SgdCoefficients(
            WeightDecay: (float)weightDecay,
            HasWeightDecay: weightDecay != 0,
            Momentum: (float)Momentum,
            HasMomentum: Momentum != 0,
            OneMinusDampening: (float)(1 - Dampening),
            Nesterov: Nesterov,
            NegativeLearningRate: (float)-entry.Group.LearningRate,
            GradientScale: gradientScale);
        var parameter = entry.Parameter.Value;
        var grad = entry.Grad;
        var momentumBuffer = entry.State.Buffers.Length > 0 ? entry.State.Buffers[0] : null;
        return (start, end) =>
        {
            int length = end - start;
            OptimKernels.Sgd(
                coefficients,
                first,
                parameter.AsSpan<float>().Slice(start, length),
                grad.AsReadOnlySpan<float>().Slice(start, length),
                momentumBuffer is null ? default : momentumBuffer.AsSpan<float>().Slice(start, length));
        };
    }
}
