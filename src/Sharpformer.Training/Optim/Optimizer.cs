using System.Diagnostics.CodeAnalysis;
using Sharpformer.NN;
using Sharpformer.Tensors;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Training.Optim;

/// <summary>
/// Updates parameters in place from their gradients, as <c>torch.optim</c> does: <see cref="ParameterGroup"/>s with
/// their own learning rate and weight decay, per-parameter state created at a parameter's first gradient, and a state
/// dict for checkpoints. Implementations: <see cref="AdamW"/>, <see cref="Sgd"/>.
/// </summary>
/// <remarks>
/// One training step, as Hugging Face's <c>Trainer</c> runs it with gradient accumulation over N micro-batches:
/// <list type="number">
/// <item>for each micro-batch: forward, divide the loss by N (so the accumulated gradient is the mean over the N
/// micro-batches, as HF does), <c>Backward()</c> — gradients add up in <see cref="Tensor.Grad"/>;</item>
/// <item><see cref="GradientClipping.ClipGradNorm"/> on the model's parameters (skip the step if the returned norm is
/// not finite);</item>
/// <item><see cref="LearningRateSchedule.Apply"/> (sets each group's rate for step <see cref="StepCount"/>), then
/// <see cref="Step()"/>, then <see cref="ZeroGrad"/>.</item>
/// </list>
/// Steps 2 and 3 can be one pass over the gradients instead of two: <see cref="GradientClipping.GlobalNorm(IEnumerable{Parameter})"/>,
/// then <see cref="Step(float)"/> with <see cref="GradientClipping.ClipCoefficient"/>, which scales each gradient
/// element as it reads it (the same F32 product the in-place clip writes, so the update is bit-identical) and leaves
/// the gradients unscaled (the trainer does this).
/// Step updates a parameter's elements in place and calls <see cref="Parameter.MarkModified"/>, so layers rebuild any
/// packed copy of it. Chunks of every parameter run in parallel on <see cref="ParallelFor"/>.
/// </remarks>
public abstract class Optimizer
{
    /// <summary>Elements per parallel work item: 128 KiB of each array, so a chunk's four streams stay in L2.</summary>
    private const int ChunkElements = 1 << 15;

    private readonly ParameterGroup[] _groups;
    private readonly Dictionary<string, (Parameter Parameter, ParameterGroup Group)> _byName = new(StringComparer.Ordinal);
    private readonly Dictionary<Parameter, ParameterState> _state = new(ReferenceEqualityComparer.Instance);

    /// <summary>Checks that the groups hold at least one parameter and share none.</summary>
    private protected Optimizer(string name, IEnumerable<ParameterGroup> groups)
    {
        ArgumentNullException.ThrowIfNull(groups);
        Name = name;
        _groups = [.. groups];
        var seen = new HashSet<Parameter>(ReferenceEqualityComparer.Instance);
        foreach (var group in _groups)
        {
            ArgumentNullException.ThrowIfNull(group, nameof(groups));
            foreach (var (parameterName, parameter) in group.Parameters)
            {
                if (!seen.Add(parameter) || !_byName.TryAdd(parameterName, (parameter, group)))
                {
                    throw new ArgumentException($"{name}: the parameter '{parameterName}' is in more than one group; put each parameter in exactly one.", nameof(groups));
                }
            }
        }

        if (_byName.Count == 0)
        {
            throw new ArgumentException($"{name}: the groups hold no parameter; is every parameter frozen? Unfreeze some (RequiresGrad = true) before building the optimizer.", nameof(groups));
        }
    }

    /// <summary>The optimizer's name as PyTorch spells its class ("AdamW", "SGD"); stored in <see cref="OptimizerState"/>.</summary>
    public string Name { get; }

    /// <summary>The parameter groups, in the order given.</summary>
    public IReadOnlyList<ParameterGroup> Groups => _groups;

    /// <summary>
    /// How many times <see cref="Step()"/> has run (restored by <see cref="LoadStateDict"/>): the 0-based index of the next
    /// step, which <see cref="LearningRateSchedule.Apply"/> uses.
    /// </summary>
    public long StepCount { get; private set; }

    /// <summary>The names of the per-parameter state tensors this optimizer keeps (e.g. "exp_avg", "exp_avg_sq").</summary>
    private protected abstract IReadOnlyList<string> BufferNames { get; }

    /// <summary>Whether each parameter keeps its own step count (Adam's bias correction needs it).</summary>
    private protected abstract bool CountsParameterSteps { get; }

    /// <summary>
    /// Updates every parameter that has a gradient, with its group's current <see cref="ParameterGroup.LearningRate"/>
    /// and weight decay; parameters without a gradient are skipped and keep their state (PyTorch does the same).
    /// Then increments <see cref="StepCount"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">A parameter's value is not contiguous or its storage is read-only (checked for every parameter before any is changed).</exception>
    public void Step() => Step(1f);

    /// <summary>
    /// <see cref="Step()"/> with every gradient taken as <paramref name="gradientScale"/> · g (F32), without writing the
    /// gradients: gradient clipping fused into the update (pass <see cref="GradientClipping.ClipCoefficient"/>), one
    /// read of each gradient instead of a scaling pass and then the update.
    /// </summary>
    /// <param name="gradientScale">The factor each gradient element is multiplied by before it is used; finite and &gt; 0 (1 uses the gradients as they are).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="gradientScale"/> is not finite and &gt; 0.</exception>
    /// <exception cref="InvalidOperationException">A parameter's value is not contiguous or its storage is read-only (checked for every parameter before any is changed).</exception>
    public void Step(float gradientScale)
    {
        if (!(gradientScale > 0f && float.IsFinite(gradientScale)))
        {
            throw new ArgumentOutOfRangeException(nameof(gradientScale), gradientScale, $"{Name}.Step: the gradient scale must be finite and > 0 (a non-finite gradient norm means: skip the step).");
        }

        StepCore(gradientScale, measureNorm: false);
    }

    /// <summary>
    /// One training step's backward pass and update as the trainer runs them: <c>loss.Backward()</c>, then, without
    /// clipping, <see cref="Step()"/> with the gradients' global norm taken in the same pass over the gradients (each
    /// chunk's sum of squares inside AdamW's loop, or just before the update while the chunk is in cache, instead of a
    /// pass of its own); with clipping, <see cref="GradientClipping.GlobalNorm(IEnumerable{Parameter})"/> and then
    /// <see cref="Step(float)"/> with <see cref="GradientClipping.ClipCoefficient"/> (clipping needs the norm before any
    /// update). Either way the weights, the optimizer state and the norm are bit for bit those of Backward, GlobalNorm and
    /// Step one after the other. Set the rates first (<see cref="LearningRateSchedule.Apply"/>); call <see cref="ZeroGrad"/> after.
    /// Gradients pending from earlier Backward calls (accumulation over micro-batches) are summed in as usual: call
    /// plain <c>Backward()</c> on all micro-batches but the last, and this on the last.
    /// </summary>
    /// <remarks>
    /// Without clipping the norm is known only once the update has run: a gradient holding an overflow or a NaN has
    /// already reached its parameter when <see cref="BackwardStepResult.GradientNorm"/> says so; stop training (the
    /// trainer does) or reload the weights and the optimizer state. With clipping a non-finite norm skips the update
    /// (<see cref="BackwardStepResult.Stepped"/> is false, <see cref="StepCount"/> stays).
    /// </remarks>
    /// <param name="loss">The scalar loss to back-propagate (its graph recorded with gradients).</param>
    /// <param name="maxGradNorm">Clip the gradients' global L2 norm to this before the update; ≤ 0 or positive infinity: no clipping.</param>
    /// <returns>The gradients' global norm before clipping, and whether the parameters were updated.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxGradNorm"/> is NaN.</exception>
    /// <exception cref="InvalidOperationException">The loss is not a scalar or does not require gradients; or a parameter cannot be updated, as <see cref="Step()"/> reports it (then none is).</exception>
    public BackwardStepResult BackwardAndStep(Tensor loss, double maxGradNorm = 0)
    {
        ArgumentNullException.ThrowIfNull(loss);
        if (double.IsNaN(maxGradNorm))
        {
            throw new ArgumentOutOfRangeException(nameof(maxGradNorm), maxGradNorm, $"{Name}.BackwardAndStep: maxGradNorm is NaN; pass a norm > 0 to clip, or 0 for no clipping.");
        }

        loss.Backward();
        if (maxGradNorm > 0 && !double.IsPositiveInfinity(maxGradNorm))
        {
            double norm = GradientClipping.GlobalNorm(_groups.SelectMany(g => g.Parameters).Select(p => p.Parameter));
            if (!double.IsFinite(norm)) return new BackwardStepResult(norm, Stepped: false);
            Step(GradientClipping.ClipCoefficient(norm, maxGradNorm));
            return new BackwardStepResult(norm, Stepped: true);
        }

        return new BackwardStepResult(StepCore(1f, measureNorm: true), Stepped: true);
    }

    /// <summary>
    /// The update of <see cref="Step(float)"/>: every parameter with a gradient (checked first, state created after),
    /// then <see cref="StepCount"/> + 1. With <paramref name="measureNorm"/> (gradient scale 1) each work item is one of
    /// <see cref="GradientClipping"/>'s norm chunks and takes its gradient's sum of squares as it updates it
    /// (<see cref="PrepareMeasured"/>).
    /// </summary>
    /// <returns>The gradients' global norm when measured (as GlobalNorm computes it: chunk sums added in parameter order), else 0.</returns>
    private double StepCore(float gradientScale, bool measureNorm)
    {
        var withGrad = new List<(string Name, Parameter Parameter, ParameterGroup Group, Tensor Grad)>();
        foreach (var group in _groups)
        {
            foreach (var (name, parameter) in group.Parameters)
            {
                if (parameter.Value.Grad is not { } grad) continue;
                CheckWritable(name, parameter);
                withGrad.Add((name, parameter, group, grad));
            }
        }

        // State is created only once every parameter passed its checks.
        var active = new List<ActiveParameter>(withGrad.Count);
        foreach (var (name, parameter, group, grad) in withGrad)
        {
            if (!_state.TryGetValue(parameter, out var state))
            {
                state = new ParameterState(BufferNames.Count);
                _state.Add(parameter, state);
            }

            active.Add(new ActiveParameter(name, parameter, group, grad, state));
        }

        double norm = 0;
        if (active.Count > 0)
        {
            if (measureNorm)
            {
                var measured = new MeasuredChunkUpdate[active.Count];
                for (int i = 0; i < active.Count; i++)
                {
                    measured[i] = PrepareMeasured(active[i]);
                }

                norm = UpdateMeasuringNorm(active, measured);
            }
            else
            {
                var updates = new ChunkUpdate[active.Count];
                for (int i = 0; i < active.Count; i++)
                {
                    updates[i] = Prepare(active[i], gradientScale);
                }

                ForEachChunk(active, ChunkElements, (index, start, end) => updates[index](start, end));
            }

            foreach (var entry in active)
            {
                entry.Parameter.MarkModified();
            }
        }

        StepCount++;
        return norm;
    }

    /// <summary>Runs the updates in <see cref="GradientClipping"/>'s norm chunks, each returning its chunk's sum of squares; returns the norm.</summary>
    private static double UpdateMeasuringNorm(List<ActiveParameter> active, MeasuredChunkUpdate[] updates)
    {
        int chunk = GradientClipping.NormChunkElements;
        var firstChunk = new int[active.Count + 1];
        for (int i = 0; i < active.Count; i++)
        {
            long length = active[i].Grad.ElementCount;
            firstChunk[i + 1] = checked(firstChunk[i] + (int)((length + chunk - 1) / chunk));
        }

        var sums = new double[firstChunk[^1]];
        ForEachChunk(active, chunk, (index, start, end) =>
        {
            sums[firstChunk[index] + (start / chunk)] = updates[index](start, end);
        });

        return GradientClipping.Norm(sums);
    }

    /// <summary>Clears the gradient of every parameter in the groups (the next backward starts from zero).</summary>
    public void ZeroGrad()
    {
        foreach (var group in _groups)
        {
            foreach (var (_, parameter) in group.Parameters)
            {
                parameter.Value.ZeroGrad();
            }
        }
    }

    /// <summary>
    /// The optimizer's state: <see cref="StepCount"/>, each parameter's state tensors named
    /// <c>&lt;buffer&gt;.&lt;parameter name&gt;</c> (<c>exp_avg.bert.pooler.dense.weight</c>) and, for optimizers that
    /// count them, each parameter's step. Parameters that never had a gradient have no state. The tensors are the live
    /// buffers, not copies: write them out before the next <see cref="Step()"/>. Hyperparameters (rates, betas) are not
    /// state: build the optimizer that loads this with the same arguments.
    /// </summary>
    /// <returns>The state.</returns>
    public OptimizerState StateDict()
    {
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var steps = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (name, (parameter, _)) in _byName)
        {
            if (!_state.TryGetValue(parameter, out var state)) continue;
            for (int b = 0; b < BufferNames.Count; b++)
            {
                if (state.Buffers[b] is { } buffer) tensors[BufferNames[b] + "." + name] = buffer;
            }

            if (CountsParameterSteps) steps[name] = state.Step;
        }

        return new OptimizerState(Name, StepCount, tensors, steps);
    }

    /// <summary>
    /// Replaces this optimizer's state with a copy of <paramref name="state"/>, after checking all of it: it comes from
    /// the same kind of optimizer, every tensor names a buffer of a parameter of these groups with that parameter's shape,
    /// and every parameter with state has all of it. Nothing changes when a check fails.
    /// </summary>
    /// <param name="state">A state from <see cref="StateDict"/> (possibly through <see cref="OptimizerState.Save"/> and <see cref="OptimizerState.Load"/>).</param>
    /// <exception cref="ArgumentException">The state is from another optimizer, another model or another grouping; the message names the offending tensor.</exception>
    public void LoadStateDict(OptimizerState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Optimizer != Name)
        {
            throw new ArgumentException($"{Name}.LoadStateDict: the state was saved by {state.Optimizer}; load it into a {state.Optimizer} optimizer.", nameof(state));
        }

        var loaded = new Dictionary<Parameter, ParameterState>(ReferenceEqualityComparer.Instance);
        var bufferNames = BufferNames;
        foreach (var (key, tensor) in state.Tensors)
        {
            int dot = key.IndexOf('.', StringComparison.Ordinal);
            int buffer = dot < 0 ? -1 : IndexOf(bufferNames, key[..dot]);
            if (buffer < 0)
            {
                string known = bufferNames.Count == 0
                    ? "with these settings it keeps no state tensors"
                    : "its state tensors are named " + string.Join(", ", bufferNames.Select(b => b + ".<parameter name>"));
                throw StateError(key, $"is not a state tensor of {Name} ({known})");
            }

            string name = key[(dot + 1)..];
            if (!_byName.TryGetValue(name, out var entry))
            {
                throw StateError(key, $"belongs to a parameter '{name}' that this optimizer does not hold; the state is from another model or another parameter grouping");
            }

            if (tensor.DType != DType.F32 || tensor.Shape != entry.Parameter.Shape)
            {
                throw StateError(key, $"is {tensor.DType} {tensor.Shape} but the parameter '{name}' is F32 {entry.Parameter.Shape}; the state is from another model");
            }

            if (!loaded.TryGetValue(entry.Parameter, out var parameterState))
            {
                parameterState = new ParameterState(bufferNames.Count);
                loaded.Add(entry.Parameter, parameterState);
            }

            parameterState.Buffers[buffer] = tensor;
        }

        foreach (var (name, step) in state.ParameterSteps)
        {
            if (!CountsParameterSteps)
            {
                throw StateError($"step of '{name}'", $"is not state of {Name}, which keeps no per-parameter step");
            }

            if (!_byName.TryGetValue(name, out var entry) || !loaded.TryGetValue(entry.Parameter, out var parameterState))
            {
                throw StateError($"step of '{name}'", "has no state tensors beside it in the state (or names no parameter of this optimizer)");
            }

            if (step < 1)
            {
                throw StateError($"step of '{name}'", $"is {step}; a parameter with state has taken at least one step");
            }

            parameterState.Step = step;
        }

        foreach (var (name, (parameter, _)) in _byName)
        {
            if (!loaded.TryGetValue(parameter, out var parameterState)) continue;
            for (int b = 0; b < bufferNames.Count; b++)
            {
                if (parameterState.Buffers[b] is null)
                {
                    throw StateError($"{bufferNames[b]}.{name}", "is missing while other state of that parameter is present");
                }
            }

            if (CountsParameterSteps && parameterState.Step == 0)
            {
                throw StateError($"step of '{name}'", "is missing while its state tensors are present");
            }
        }

        _state.Clear();
        foreach (var (parameter, parameterState) in loaded)
        {
            for (int b = 0; b < parameterState.Buffers.Length; b++)
            {
                parameterState.Buffers[b] = parameterState.Buffers[b]!.Contiguous().Clone();
            }

            _state.Add(parameter, parameterState);
        }

        StepCount = state.StepCount;
    }

    /// <summary>Updates elements [<paramref name="start"/>, <paramref name="end"/>) of one parameter, as <see cref="Prepare"/> set it up.</summary>
    /// <param name="start">The first element.</param>
    /// <param name="end">One past the last element.</param>
    private protected delegate void ChunkUpdate(int start, int end);

    /// <summary>
    /// Readies one parameter's update for this step (<paramref name="entry"/> has a gradient and a state, possibly
    /// fresh): creates its state buffers, advances its step count, computes its scalars, and returns the element loop,
    /// each gradient element multiplied by <paramref name="gradientScale"/> first unless it is 1. Called once per updated
    /// parameter per step; the loop may then run over disjoint ranges on several threads at once.
    /// </summary>
    private protected abstract ChunkUpdate Prepare(ActiveParameter entry, float gradientScale);

    /// <summary>
    /// Updates elements [<paramref name="start"/>, <paramref name="end"/>) of one parameter (gradient scale 1) and returns
    /// the sum of squares of their gradient elements, bit for bit as <see cref="OptimKernels.SumOfSquares"/> computes it.
    /// </summary>
    /// <param name="start">The first element.</param>
    /// <param name="end">One past the last element.</param>
    /// <returns>Σ g² over the range, accumulated in double.</returns>
    private protected delegate double MeasuredChunkUpdate(int start, int end);

    /// <summary>
    /// Readies one parameter's update as <see cref="Prepare"/> does (gradient scale 1) for a step that also measures the
    /// gradients' norm. The default takes each range's sum of squares and then updates it (the range is in cache for the
    /// second read); an optimizer whose loop can take the sum in its own single read overrides this (<see cref="AdamW"/>).
    /// </summary>
    private protected virtual MeasuredChunkUpdate PrepareMeasured(ActiveParameter entry)
    {
        var update = Prepare(entry, 1f);
        var grad = entry.Grad;
        return (start, end) =>
        {
            double sum = OptimKernels.SumOfSquares(grad.AsReadOnlySpan<float>()[start..end]);
            update(start, end);
            return sum;
        };
    }

    /// <summary>
    /// Runs <paramref name="body"/>(index into <paramref name="active"/>, start, end) over every parameter's elements in
    /// chunks, the chunks of all parameters spread over the cores together. Chunks are disjoint, so bodies never race.
    /// </summary>
    private static void ForEachChunk(IReadOnlyList<ActiveParameter> active, int chunkElements, Action<int, int, int> body)
    {
        var owners = new List<int>();
        var starts = new List<int>();
        for (int i = 0; i < active.Count; i++)
        {
            int length = checked((int)active[i].Parameter.Shape.ElementCount);
            for (int start = 0; start < length; start += chunkElements)
            {
                owners.Add(i);
                starts.Add(start);
            }
        }

        ParallelFor.For(owners.Count, 1, (from, to) =>
        {
            for (int c = from; c < to; c++)
            {
                int owner = owners[c];
                int length = (int)active[owner].Parameter.Shape.ElementCount;
                body(owner, starts[c], Math.Min(length, starts[c] + chunkElements));
            }
        });
    }

    /// <summary>Checks a β-like coefficient: finite, in [0, 1).</summary>
    private protected static double CheckUnitInterval(string optimizer, string what, double value)
    {
        if (!(value >= 0 && value < 1))
        {
            throw new ArgumentOutOfRangeException(what, value, $"{optimizer}: {what} must be in [0, 1).");
        }

        return value;
    }

    private static int IndexOf(IReadOnlyList<string> names, string name)
    {
        for (int i = 0; i < names.Count; i++)
        {
            if (names[i] == name) return i;
        }

        return -1;
    }

    private ArgumentException StateError(string what, string problem) =>
        new($"{Name}.LoadStateDict: '{what}' {problem}.");

    private void CheckWritable(string name, Parameter parameter)
    {
        if (!parameter.Value.IsContiguous)
        {
            ThrowNotUpdatable(name, "its value is a non-contiguous view; give it a contiguous value (Contiguous())");
        }

        if (parameter.Value.Storage.IsReadOnly)
        {
            ThrowNotUpdatable(name, "its value is a read-only memory-mapped view; load the model with copied weights or set Value to a Clone()");
        }

        if (parameter.Value.Grad!.Shape != parameter.Shape)
        {
            ThrowNotUpdatable(name, $"its gradient is {parameter.Value.Grad.Shape} but the value is {parameter.Shape}");
        }
    }

    [DoesNotReturn]
    private void ThrowNotUpdatable(string name, string why) =>
        throw new InvalidOperationException($"{Name}.Step: cannot update '{name}': {why}.");

    /// <summary>One parameter's optimizer state: its step count and its buffers (null until created).</summary>
    private protected sealed class ParameterState(int buffers)
    {
        /// <summary>Steps this parameter has taken (optimizers that count them).</summary>
        public long Step { get; set; }

        /// <summary>The state tensors, in <see cref="BufferNames"/> order; null until first needed.</summary>
        public Tensor?[] Buffers { get; } = new Tensor?[buffers];
    }

    /// <summary>A parameter that takes part in this step.</summary>
    private protected sealed record ActiveParameter(string Name, Parameter Parameter, ParameterGroup Group, Tensor Grad, ParameterState State);
}
