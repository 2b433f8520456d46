using Sharpformer.NN;

namespace Sharpformer.Training.Optim;

/// <summary>
/// Parameters that share hyperparameters in an <see cref="Optimizer"/>, as a PyTorch <c>param_group</c>: their names
/// (the dotted checkpoint names, which also name their optimizer state), the learning rate the next step uses (a
/// <see cref="LearningRateSchedule"/> sets it before each step from <see cref="InitialLearningRate"/>), and the weight decay.
/// </summary>
public sealed class ParameterGroup
{
    private readonly (string Name, Parameter Parameter)[] _parameters;
    private double _learningRate;
    private double _weightDecay;

    /// <summary>Creates a group. Names must be unique; the same parameter may not appear twice.</summary>
    /// <param name="parameters">Named parameters, e.g. from <see cref="Module.NamedParameters"/>.</param>
    /// <param name="learningRate">The base learning rate (also <see cref="InitialLearningRate"/>); ≥ 0.</param>
    /// <param name="weightDecay">The weight decay; ≥ 0. AdamW decouples it (p ← p − lr·wd·p), SGD adds wd·p to the gradient.</param>
    /// <exception cref="ArgumentException">A name is empty or repeated, a parameter is repeated, or a rate is negative or not finite.</exception>
    public ParameterGroup(IEnumerable<(string Name, Parameter Parameter)> parameters, double learningRate, double weightDecay = 0)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        _parameters = [.. parameters];
        var names = new HashSet<string>(StringComparer.Ordinal);
        var seen = new HashSet<Parameter>(ReferenceEqualityComparer.Instance);
        foreach (var (name, parameter) in _parameters)
        {
            if (string.IsNullOrEmpty(name))
            {
                throw new ArgumentException("ParameterGroup: every parameter needs a name (its checkpoint name, which also names its optimizer state).", nameof(parameters));
            }

            ArgumentNullException.ThrowIfNull(parameter, nameof(parameters));
            if (!names.Add(name))
            {
                throw new ArgumentException($"ParameterGroup: the name '{name}' appears twice; names key the optimizer state and must be unique.", nameof(parameters));
            }

            if (!seen.Add(parameter))
            {
                throw new ArgumentException($"ParameterGroup: the parameter '{name}' is listed twice under different names; list a tied parameter once (Module.NamedParameters does).", nameof(parameters));
            }
        }

        LearningRate = learningRate;
        InitialLearningRate = learningRate;
        WeightDecay = weightDecay;
    }

    /// <summary>The named parameters, in the order given.</summary>
    public IReadOnlyList<(string Name, Parameter Parameter)> Parameters => _parameters;

    /// <summary>
    /// The learning rate given at construction: the base a <see cref="LearningRateSchedule"/> multiplies (PyTorch's
    /// <c>initial_lr</c>).
    /// </summary>
    public double InitialLearningRate { get; }

    /// <summary>The learning rate the next <see cref="Optimizer.Step()"/> uses; ≥ 0 and finite.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative, NaN or infinite.</exception>
    public double LearningRate
    {
        get => _learningRate;
        set => _learningRate = CheckRate(value, "learning rate");
    }

    /// <summary>The weight decay of this group; ≥ 0 and finite.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative, NaN or infinite.</exception>
    public double WeightDecay
    {
        get => _weightDecay;
        set => _weightDecay = CheckRate(value, "weight decay");
    }

    /// <summary>
    /// One group of every trainable parameter of <paramref name="model"/> (frozen ones, <see cref="Parameter.RequiresGrad"/>
    /// false, are left out), all with the same weight decay.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="learningRate">The base learning rate.</param>
    /// <param name="weightDecay">The weight decay.</param>
    /// <returns>The group.</returns>
    public static ParameterGroup Trainable(Module model, double learningRate, double weightDecay = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        return new ParameterGroup(model.NamedParameters().Where(p => p.Parameter.RequiresGrad), learningRate, weightDecay);
    }

    /// <summary>
    /// The two groups Hugging Face's <c>Trainer</c> builds: every trainable parameter with <paramref name="weightDecay"/>,
    /// except biases (names containing "bias") and the parameters of normalization layers (<see cref="LayerNorm"/>,
    /// <see cref="RmsNorm"/>, found by module type), which get none. Frozen parameters are in neither group.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="learningRate">The base learning rate of both groups.</param>
    /// <param name="weightDecay">The weight decay of the first group.</param>
    /// <returns>[decayed, not decayed] (either may be empty).</returns>
    public static IReadOnlyList<ParameterGroup> TrainerGroups(Module model, double learningRate, double weightDecay)
    {
        ArgumentNullException.ThrowIfNull(model);
        var decay = DecayParameterNames(model);
        var trainable = model.NamedParameters().Where(p => p.Parameter.RequiresGrad).ToList();
        return
        [
            new ParameterGroup(trainable.Where(p => decay.Contains(p.Name)), learningRate, weightDecay),
            new ParameterGroup(trainable.Where(p => !decay.Contains(p.Name)), learningRate, 0),
        ];
    }

    /// <summary>
    /// The names Hugging Face's <c>Trainer.get_decay_parameter_names</c> gives weight decay: every parameter path not
    /// inside a <see cref="LayerNorm"/> or <see cref="RmsNorm"/> module, minus the names containing "bias". Frozen
    /// parameters are included (the groups filter them).
    /// </summary>
    /// <param name="model">The model.</param>
    /// <returns>The names, as <see cref="Module.NamedParameters"/> spells them.</returns>
    public static IReadOnlySet<string> DecayParameterNames(Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var insideNorm = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (prefix, module) in model.NamedModules())
        {
            if (module is not (LayerNorm or RmsNorm)) continue;
            foreach (var (name, _) in module.NamedParameters())
            {
                insideNorm.Add(prefix.Length == 0 ? name : prefix + "." + name);
            }
        }

        var decay = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, _) in model.NamedParameters())
        {
            if (!insideNorm.Contains(name) && !name.Contains("bias", StringComparison.Ordinal))
            {
                decay.Add(name);
            }
        }

        return decay;
    }

    private static double CheckRate(double value, string what)
    {
        if (!double.IsFinite(value) || value < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, $"ParameterGroup: the {what} must be finite and ≥ 0.");
        }

        return value;
    }
}
