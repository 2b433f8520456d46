namespace Sharpformer.Training.Optim;

/// <summary>The schedules of Hugging Face's <c>transformers.get_scheduler</c> that <see cref="LearningRateSchedule"/> implements.</summary>
public enum LearningRateScheduleKind
{
    /// <summary>"constant": the base rate throughout.</summary>
    Constant,

    /// <summary>"constant_with_warmup": linear warmup from 0, then the base rate.</summary>
    ConstantWithWarmup,

    /// <summary>"linear": linear warmup from 0, then linear decay to 0 at the last training step (HF's default).</summary>
    Linear,

    /// <summary>"cosine": linear warmup from 0, then a cosine decay (half a cycle by default) to 0 at the last training step.</summary>
    Cosine,

    /// <summary>
    /// "inverse_sqrt": linear warmup from 0, then 1/√((step + shift) / timescale) with timescale = W (10,000 without
    /// warmup) and shift = timescale − W — "Attention Is All You Need"'s d^−½ · min(step^−½, step · W^−1.5), peaking at the base rate.
    /// </summary>
    InverseSqrt,
}

/// <summary>
/// A learning-rate schedule as Hugging Face's <c>get_scheduler</c> builds it: a multiplier λ(step) of each group's base
/// rate (PyTorch's <c>LambdaLR</c>), with HF's formulas (optimization.py). With W warmup and N training steps:
/// <code>
/// warmup (step &lt; W)    step / max(1, W)                        (not for "constant")
/// constant             1
/// linear               max(0, (N − step) / max(1, N − W))
/// cosine               max(0, ½·(1 + cos(π · cycles · 2 · (step − W) / max(1, N − W))))
/// inverse_sqrt         1 / √((step + shift) / timescale), timescale = W or 10,000 when W = 0, shift = timescale − W
/// </code>
/// HF's Trainer calls <c>scheduler.step()</c> after <c>optimizer.step()</c>, so optimizer step k (0-based) runs with
/// base·λ(k): the first step of a warmup runs with rate 0. <see cref="Apply"/> does exactly that from the optimizer's
/// <see cref="Optimizer.StepCount"/>: call it before every <see cref="Optimizer.Step()"/>, and a resumed optimizer picks up
/// the schedule where it stopped.
/// </summary>
public sealed class LearningRateSchedule
{
    private static readonly (string Name, LearningRateScheduleKind Kind)[] KnownNames =
    [
        ("constant", LearningRateScheduleKind.Constant),
        ("constant_with_warmup", LearningRateScheduleKind.ConstantWithWarmup),
        ("linear", LearningRateScheduleKind.Linear),
        ("cosine", LearningRateScheduleKind.Cosine),
        ("inverse_sqrt", LearningRateScheduleKind.InverseSqrt),
    ];

    /// <summary>Creates a schedule.</summary>
    /// <param name="kind">The schedule.</param>
    /// <param name="warmupSteps">W, steps of linear warmup; ≥ 0 (ignored by <see cref="LearningRateScheduleKind.Constant"/>, as in HF).</param>
    /// <param name="trainingSteps">N, the total number of optimizer steps; &gt; 0 for linear and cosine (ignored by the constant schedules).</param>
    /// <param name="cycles">The number of cosine waves over the decay (HF's <c>num_cycles</c>; 0.5 goes from the top down to 0); finite.</param>
    /// <exception cref="ArgumentOutOfRangeException">A count is negative, N is not positive for a decaying schedule, or cycles is not finite.</exception>
    public LearningRateSchedule(LearningRateScheduleKind kind, int warmupSteps = 0, int trainingSteps = 0, double cycles = 0.5)
    {
        if (!Enum.IsDefined(kind))
        {
            throw new ArgumentOutOfRangeException(nameof(kind), kind, $"LearningRateSchedule: unknown schedule; the known ones are {string.Join(", ", KnownNames.Select(n => n.Name))}.");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(warmupSteps);
        ArgumentOutOfRangeException.ThrowIfNegative(trainingSteps);
        if (kind is LearningRateScheduleKind.Linear or LearningRateScheduleKind.Cosine && trainingSteps == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(trainingSteps), trainingSteps, $"LearningRateSchedule: the {NameOf(kind)} schedule decays to 0 at the last step, so it needs the number of training steps (> 0).");
        }

        if (!double.IsFinite(cycles))
        {
            throw new ArgumentOutOfRangeException(nameof(cycles), cycles, "LearningRateSchedule: cycles must be finite (HF's default is 0.5).");
        }

        Kind = kind;
        WarmupSteps = warmupSteps;
        TrainingSteps = trainingSteps;
        Cycles = cycles;
    }

    /// <summary>The schedule.</summary>
    public LearningRateScheduleKind Kind { get; }

    /// <summary>W, the warmup steps.</summary>
    public int WarmupSteps { get; }

    /// <summary>N, the training steps.</summary>
    public int TrainingSteps { get; }

    /// <summary>The number of cosine waves (cosine only).</summary>
    public double Cycles { get; }

    /// <summary>HF's name of the schedule ("constant", "constant_with_warmup", "linear", "cosine").</summary>
    public string Name => NameOf(Kind);

    /// <summary>Reads HF's name of a schedule (<c>lr_scheduler_type</c>), ignoring case.</summary>
    /// <param name="name">"constant", "constant_with_warmup", "linear" or "cosine".</param>
    /// <returns>The kind.</returns>
    /// <exception cref="ArgumentException">Another name; the message lists the known ones.</exception>
    public static LearningRateScheduleKind Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        foreach (var (known, kind) in KnownNames)
        {
            if (string.Equals(known, name.Trim(), StringComparison.OrdinalIgnoreCase)) return kind;
        }

        throw new ArgumentException($"LearningRateSchedule: unknown schedule '{name}'; the known ones are {string.Join(", ", KnownNames.Select(n => n.Name))}.", nameof(name));
    }

    /// <summary>λ(step): the multiplier of the base rate that optimizer step <paramref name="step"/> (0-based) uses.</summary>
    /// <param name="step">The 0-based optimizer step; ≥ 0.</param>
    /// <returns>The multiplier (0 at the first warmup step; it may exceed the decay's end after N steps for cosine with more than half a cycle, as in HF).</returns>
    public double Multiplier(long step)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        if (Kind == LearningRateScheduleKind.Constant) return 1.0;
        if (step < WarmupSteps) return (double)step / Math.Max(1, WarmupSteps);
        switch (Kind)
        {
            case LearningRateScheduleKind.ConstantWithWarmup:
                return 1.0;
            case LearningRateScheduleKind.Linear:
                return Math.Max(0.0, (double)(TrainingSteps - step) / Math.Max(1, TrainingSteps - WarmupSteps));
            case LearningRateScheduleKind.InverseSqrt:
                double timescale = WarmupSteps > 0 ? WarmupSteps : 10_000;
                double shift = timescale - WarmupSteps;
                return 1.0 / Math.Sqrt((step + shift) / timescale);
            default:
                double progress = (double)(step - WarmupSteps) / Math.Max(1, TrainingSteps - WarmupSteps);
                return Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * Cycles * 2.0 * progress)));
        }
    }

    /// <summary>The rate step <paramref name="step"/> uses for a group whose base rate is <paramref name="baseLearningRate"/>: base·λ(step).</summary>
    /// <param name="baseLearningRate">The base rate (<see cref="ParameterGroup.InitialLearningRate"/>).</param>
    /// <param name="step">The 0-based optimizer step.</param>
    /// <returns>The learning rate.</returns>
    public double LearningRate(double baseLearningRate, long step) => baseLearningRate * Multiplier(step);

    /// <summary>
    /// Sets every group's <see cref="ParameterGroup.LearningRate"/> to its <see cref="ParameterGroup.InitialLearningRate"/>
    /// · λ(<paramref name="optimizer"/>.<see cref="Optimizer.StepCount"/>): the rate of the step about to run. Call it
    /// right before each <see cref="Optimizer.Step()"/>.
    /// </summary>
    /// <param name="optimizer">The optimizer.</param>
    public void Apply(Optimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        double multiplier = Multiplier(optimizer.StepCount);
        foreach (var group in optimizer.Groups)
        {
            group.LearningRate = group.InitialLearningRate * multiplier;
        }
    }

    private static string NameOf(LearningRateScheduleKind kind) => KnownNames.First(n => n.Kind == kind).Name;
}
