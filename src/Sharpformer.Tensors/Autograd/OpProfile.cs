using System.Diagnostics;

namespace Sharpformer.Tensors;

/// <summary>Which part of a training step a <see cref="OpTiming"/> row measured.</summary>
public enum OpPhase
{
    /// <summary>An op's forward (the time since the previous recorded op or mark, up to this op's node).</summary>
    Forward,

    /// <summary>An op's backward node, with the accumulation of the gradients it returned.</summary>
    Backward,

    /// <summary>A span the caller named with <see cref="OpProfile.Mark"/> (an optimizer step, a collection), or the backward's own bookkeeping.</summary>
    Other,
}

/// <summary>The time one op kind (or named span) took over a profile.</summary>
/// <param name="Name">The op's node name (<c>Linear</c>, <c>LayerNorm</c>, ...), with its first input's and its output's shapes when the profile was started by shape, or the span's name.</param>
/// <param name="Phase">Forward, backward, or a named span.</param>
/// <param name="Milliseconds">Total wall time over the profile.</param>
/// <param name="Calls">How many times it ran.</param>
public readonly record struct OpTiming(string Name, OpPhase Phase, double Milliseconds, long Calls);

/// <summary>
/// A per-op wall-clock profile of the autograd ops run on this thread: <c>using var profile = OpProfile.Start();</c>
/// around training steps, then <see cref="Timings"/>. Every moment from <see cref="Start"/> on is counted once: a
/// forward op gets the time since the previous event (its kernels plus any untracked work just before it, such as
/// views and no-grad ops), each backward node the time of its backward function and gradient accumulation, the
/// backward's own bookkeeping a row of its own, and the caller names everything else with <see cref="Mark"/>
/// (the optimizer, a collection). The sum of all rows is therefore the wall time profiled. A checkpointed block's
/// recomputation and inner backward count as its <c>Checkpoint</c> node. While no profile is open this costs one
/// thread-static load per op.
/// </summary>
public sealed class OpProfile : IDisposable
{
    /// <summary>The row that collects the backward pass's work outside the nodes (ordering, bookkeeping).</summary>
    public const string BackwardBookkeeping = "autograd bookkeeping";

    [ThreadStatic]
    private static OpProfile? _active;

    private readonly Dictionary<(string Name, OpPhase Phase), (long Ticks, long Calls)> _rows = [];
    private readonly bool _byShape;
    private readonly int _threadId;
    private long _last;
    private int _backwardDepth;
    private bool _disposed;

    private OpProfile(bool byShape)
    {
        _byShape = byShape;
        _threadId = Environment.CurrentManagedThreadId;
        _last = Stopwatch.GetTimestamp();
    }

    /// <summary>The profile open on this thread, or null.</summary>
    internal static OpProfile? Active => _active;

    /// <summary>
    /// Opens a profile on this thread (run the forward and backward passes on it). Dispose it to stop recording; the
    /// timings stay readable.
    /// </summary>
    /// <param name="byShape">Key forward and backward rows by op, first input's shape and output shape (e.g. <c>Linear [4, 64, 768] → [4, 64, 2304]</c>), which tells the layers apart.</param>
    /// <exception cref="InvalidOperationException">A profile is already open on this thread.</exception>
    public static OpProfile Start(bool byShape = false)
    {
        if (_active is not null)
        {
            throw new InvalidOperationException("OpProfile.Start: a profile is already open on this thread; dispose it first.");
        }

        var profile = new OpProfile(byShape);
        _active = profile;
        return profile;
    }

    /// <summary>
    /// Charges the time since the previous event to the span <paramref name="name"/> (<see cref="OpPhase.Other"/>),
    /// e.g. <c>profile.Mark("AdamW")</c> right after the optimizer step.
    /// </summary>
    /// <param name="name">The span's name.</param>
    public void Mark(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        Charge(name, OpPhase.Other, Stopwatch.GetTimestamp());
    }

    /// <summary>Every row so far, largest total first.</summary>
    public IReadOnlyList<OpTiming> Timings =>
        [.. _rows.Select(r => new OpTiming(r.Key.Name, r.Key.Phase, r.Value.Ticks * 1000.0 / Stopwatch.Frequency, r.Value.Calls))
            .OrderByDescending(r => r.Milliseconds)];

    /// <summary>Stops recording on this thread (the timings stay readable).</summary>
    /// <exception cref="InvalidOperationException">Disposed on another thread than the one that started it.</exception>
    public void Dispose()
    {
        if (_disposed) return;
        if (_threadId != Environment.CurrentManagedThreadId)
        {
            throw new InvalidOperationException("OpProfile.Dispose: dispose the profile on the thread that started it.");
        }

        _disposed = true;
        if (ReferenceEquals(_active, this)) _active = null;
    }

    /// <summary>A forward op recorded its node on <paramref name="output"/>: it gets the time since the previous event.</summary>
    internal void Forward(GradNode node, Tensor output)
    {
        if (_backwardDepth > 0) return; // a checkpoint's recomputation: part of its backward node
        Charge(Key(node, output), OpPhase.Forward, Stopwatch.GetTimestamp());
    }

    /// <summary>A backward pass begins: the time since the previous event goes to the forward's tail (untracked work).</summary>
    internal void EnterBackward()
    {
        if (_backwardDepth++ == 0) Charge("(untracked forward)", OpPhase.Forward, Stopwatch.GetTimestamp());
    }

    /// <summary>The outermost backward pass ends: what its nodes did not take is bookkeeping.</summary>
    internal void ExitBackward()
    {
        if (--_backwardDepth == 0) Charge(BackwardBookkeeping, OpPhase.Other, Stopwatch.GetTimestamp());
    }

    /// <summary>Before an outermost backward node: the time since the previous event is bookkeeping.</summary>
    internal void BeforeNode()
    {
        if (_backwardDepth == 1) Charge(BackwardBookkeeping, OpPhase.Other, Stopwatch.GetTimestamp());
    }

    /// <summary>After an outermost backward <paramref name="node"/> that produced <paramref name="output"/>.</summary>
    internal void AfterNode(GradNode node, Tensor output)
    {
        if (_backwardDepth == 1) Charge(Key(node, output), OpPhase.Backward, Stopwatch.GetTimestamp());
    }

    private string Key(GradNode node, Tensor output)
    {
        if (!_byShape) return node.Op;
        var first = node.Inputs.Length > 0 ? node.Inputs[0] : null;
        return first is null ? $"{node.Op} → {output.Shape}" : $"{node.Op} {first.Shape} → {output.Shape}";
    }

    private void Charge(string name, OpPhase phase, long now)
    {
        var key = (name, phase);
        var (ticks, calls) = _rows.GetValueOrDefault(key);
        _rows[key] = (ticks + (now - _last), calls + 1);
        _last = now;
    }
}
