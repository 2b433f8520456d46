using System.Diagnostics;
using Sharpformer.Tensors.Storage;

namespace Sharpformer.Tensors;

/// <summary>
/// Reverse-mode automatic differentiation: gradient-recording control and the backward pass. Ops in <see cref="Ops"/>
/// record a <see cref="GradNode"/> on their output when an input requires gradients; <see cref="Tensor.Backward()"/>
/// walks the nodes in reverse topological order.
/// </summary>
public static class Autograd
{
    // A plain thread-static counter: checking it is one load and one branch per op, so inference inside NoGrad() costs
    // nothing measurable. It does not flow across threads; open the scope on the thread that runs the forward pass.
    [ThreadStatic]
    private static int _noGradDepth;

    /// <summary>True when ops record gradients on this thread (outside every <see cref="NoGrad"/> scope).</summary>
    public static bool IsGradEnabled => _noGradDepth == 0;

    /// <summary>
    /// Turns gradient recording off on this thread until the returned scope is disposed:
    /// <c>using (Autograd.NoGrad()) { ... }</c>. Scopes nest.
    /// </summary>
    public static NoGradScope NoGrad()
    {
        _noGradDepth++;
        return new NoGradScope(Environment.CurrentManagedThreadId);
    }

    internal static void ExitNoGrad(int threadId)
    {
        if (threadId != Environment.CurrentManagedThreadId || _noGradDepth == 0)
        {
            throw new InvalidOperationException("Autograd.NoGrad(): the scope was disposed twice or on another thread; dispose it with `using` on the thread that opened it.");
        }

        _noGradDepth--;
    }

    /// <summary>
    /// Turns recording on for this thread whatever the enclosing <see cref="NoGrad"/> scopes say, returning the depth to
    /// hand back to <see cref="RestoreNoGrad"/> (used by <see cref="Ops.Checkpoint(Func{Tensor, Tensor}, Tensor)"/>, whose
    /// recompute must record even when Backward runs inside a no-grad scope).
    /// </summary>
    internal static int SuspendNoGrad()
    {
        int depth = _noGradDepth;
        _noGradDepth = 0;
        return depth;
    }

    /// <summary>Restores the no-grad depth saved by <see cref="SuspendNoGrad"/>.</summary>
    internal static void RestoreNoGrad(int depth) => _noGradDepth = depth;

    // The hooked backward pass running on this thread, if any: a checkpointed block's nested pass hands it its leaves.
    [ThreadStatic]
    private static LeafReadiness? _activeReadiness;

    /// <summary>True when an op over <paramref name="a"/> must record a node.</summary>
    internal static bool Needs(Tensor a) => _noGradDepth == 0 && a.RequiresGrad;

    /// <summary>True when an op over <paramref name="a"/>, <paramref name="b"/> must record a node.</summary>
    internal static bool Needs(Tensor a, Tensor? b) => _noGradDepth == 0 && (a.RequiresGrad || (b?.RequiresGrad ?? false));

    /// <summary>True when an op over <paramref name="a"/>, <paramref name="b"/>, <paramref name="c"/> must record a node.</summary>
    internal static bool Needs(Tensor a, Tensor? b, Tensor? c) => _noGradDepth == 0 && (a.RequiresGrad || (b?.RequiresGrad ?? false) || (c?.RequiresGrad ?? false));

    /// <summary>
    /// Attaches a node to <paramref name="output"/>. <paramref name="backward"/> maps the output gradient (contiguous F32)
    /// to one gradient per input, in order (null where an input needs none); it runs only during Backward.
    /// </summary>
    internal static Tensor Record(Tensor output, string op, Tensor?[] inputs, Func<Tensor, Tensor?[]> backward)
    {
        var node = new GradNode(op, inputs, backward);
        output.SetGradFn(node);
        OpProfile.Active?.Forward(node, output);
        return output;
    }

    /// <summary>
    /// Back-propagates <paramref name="seed"/> from <paramref name="root"/>. When <paramref name="leafReady"/> is given it
    /// is called once per leaf that requires gradients, as soon as no node still to run can add to that leaf's gradient
    /// (in reverse order of use: the last layers' parameters first), so a caller can ship finished gradients while the
    /// rest of the backward pass runs. Leaves that a checkpointed block closes over are not node inputs, so while a
    /// <see cref="Ops.Checkpoint(Func{Tensor, Tensor}, Tensor)"/> node is still to run, finished leaves are held back
    /// until it has run; the leaves a checkpointed block's recomputed graph reaches (other than
    /// <paramref name="blockInputs"/>, the block's own input stand-ins) are reported then too.
    /// </summary>
    internal static void RunBackward(Tensor root, Tensor seed, Action<Tensor>? leafReady = null, Tensor[]? blockInputs = null)
    {
        var profile = OpProfile.Active;
        profile?.EnterBackward();
        try
        {
            RunBackwardCore(root, seed, leafReady, blockInputs, profile);
        }
        finally
        {
            profile?.ExitBackward();
        }
    }

    private static void RunBackwardCore(Tensor root, Tensor seed, Action<Tensor>? leafReady, Tensor[]? blockInputs, OpProfile? profile)
    {
        var order = TopologicalOrder(root);
        if (leafReady is null && _activeReadiness is { } outer)
        {
            // A checkpointed block's backward inside a hooked pass: its parameters become the outer pass's to report.
            outer.AddInner(order, blockInputs);
        }

        // Pending gradients of non-leaf tensors, dropped as soon as their node has run so memory follows the frontier.
        var pending = new Dictionary<Tensor, Tensor>(ReferenceEqualityComparer.Instance) { [root] = seed };
        if (root.IsLeaf)
        {
            root.AccumulateGrad(seed);
            leafReady?.Invoke(root);
            return;
        }

        var readiness = leafReady is null ? null : new LeafReadiness(order, leafReady);
        var previous = _activeReadiness;
        if (readiness is not null) _activeReadiness = readiness;
        try
        {
            RunNodes(order, pending, readiness, profile);
        }
        finally
        {
            _activeReadiness = previous;
        }

        readiness?.Finish();
    }

    private static void RunNodes(List<Tensor> order, Dictionary<Tensor, Tensor> pending, LeafReadiness? readiness, OpProfile? profile)
    {
        var buffers = new GradientOwnership(GradientBuffers.Enter());
        try
        {
            for (int i = order.Count - 1; i >= 0; i--)
            {
                var tensor = order[i];
                if (!pending.Remove(tensor, out var grad))
                {
                    readiness?.NodeDone(tensor.GradFn!);
                    continue; // no path from this node to the root's loss
                }

                var node = tensor.GradFn!;
                profile?.BeforeNode();
                buffers.BeginNode();
                var inputGrads = node.Backward(grad);
                Debug.Assert(inputGrads.Length == node.Inputs.Length, $"{node.Op}: backward returned {inputGrads.Length} gradients for {node.Inputs.Length} inputs");
                for (int j = 0; j < node.Inputs.Length; j++)
                {
                    var input = node.Inputs[j];
                    var g = inputGrads[j];
                    if (input is null || g is null || !input.RequiresGrad) continue;
                    if (g.Shape != input.Shape)
                    {
                        throw new InvalidOperationException($"Autograd internal error: {node.Op} returned a gradient of shape {g.Shape} for an input of shape {input.Shape}.");
                    }

                    g = g.Contiguous();
                    buffers.Claim(g);
                    if (input.IsLeaf)
                    {
                        input.AccumulateGrad(g);
                    }
                    else if (pending.TryGetValue(input, out var existing))
                    {
                        // Two uses of one tensor: sum the gradients, in place when one of the two buffers is the engine's alone.
                        pending[input] = buffers.Sum(existing, g);
                    }
                    else
                    {
                        pending[input] = g;
                        buffers.AddUse(g);
                    }
                }

                // The incoming gradient has had its last consumer; so have the new ones that went only to leaves or sums.
                buffers.DropUse(grad);
                buffers.EndNode();
                profile?.AfterNode(node, tensor);
                readiness?.NodeDone(node);
            }
        }
        finally
        {
            GradientBuffers.Exit(buffers.Session);
        }
    }

    /// <summary>
    /// Which gradient buffers the engine owns during one backward pass, and how many pending gradients use each. A
    /// gradient is the engine's when its storage was handed out by <see cref="GradientBuffers"/> during the node call that
    /// returned it (so no saved activation, parameter gradient or caller's tensor can be behind it). Several pending
    /// gradients may share one storage (an Add hands its incoming gradient to both inputs; views return reshaped views of
    /// it), so uses are counted per storage: a buffer is written in place only while one pending gradient uses it, and
    /// goes back to the pool when none does.
    /// </summary>
    private sealed class GradientOwnership(GradientBuffers.Session session)
    {
        private readonly Dictionary<TensorStorage, int> _uses = new(ReferenceEqualityComparer.Instance);
        private readonly List<ManagedStorage<float>> _claimed = [];
        private int _mark;

        public GradientBuffers.Session Session { get; } = session;

        /// <summary>Marks the start of a node's backward call: storages handed out from here on are that call's.</summary>
        public void BeginNode() => _mark = Session.HandedOutCount;

        /// <summary>Takes ownership of <paramref name="g"/>'s storage when the current node call allocated it (with no uses yet).</summary>
        public void Claim(Tensor g)
        {
            if (g.Storage is ManagedStorage<float> storage && !_uses.ContainsKey(storage) && Session.HandedOutSince(_mark, storage))
            {
                _uses[storage] = 0;
                _claimed.Add(storage);
            }
        }

        /// <summary>One more pending gradient uses <paramref name="g"/>'s storage.</summary>
        public void AddUse(Tensor g)
        {
            if (_uses.TryGetValue(g.Storage, out int uses)) _uses[g.Storage] = uses + 1;
        }

        /// <summary>One pending gradient fewer uses <paramref name="g"/>'s storage; the last one gives it back to the pool.</summary>
        public void DropUse(Tensor g)
        {
            if (!_uses.TryGetValue(g.Storage, out int uses)) return;
            if (uses > 1)
            {
                _uses[g.Storage] = uses - 1;
                return;
            }

            _uses.Remove(g.Storage);
            GradientBuffers.Return((ManagedStorage<float>)g.Storage);
        }

        /// <summary>
        /// <paramref name="existing"/> (pending) + <paramref name="g"/> (new, claimed if it can be): written into existing
        /// when that pending gradient is its buffer's only use, else into g when g's buffer is owned and unused, else into
        /// a new buffer. The result is pending in existing's place (float addition commutes, so every case gives the same bits).
        /// </summary>
        public Tensor Sum(Tensor existing, Tensor g)
        {
            bool distinct = !ReferenceEquals(existing.Storage, g.Storage);
            if (distinct && _uses.TryGetValue(existing.Storage, out int existingUses) && existingUses == 1)
            {
                var target = existing.AsSpan<float>();
                Kernels.Elementwise.Add(target, g.AsReadOnlySpan<float>(), target); // split across cores when long
                return existing;
            }

            Tensor sum;
            if (distinct && _uses.TryGetValue(g.Storage, out int gUses) && gUses == 0)
            {
                sum = g;
            }
            else
            {
                sum = Tensor.Empty(existing.Shape);
                Claim(sum);
            }

            Kernels.Elementwise.Add(existing.AsReadOnlySpan<float>(), g.AsReadOnlySpan<float>(), sum.AsSpan<float>());
            AddUse(sum);
            DropUse(existing);
            return sum;
        }

        /// <summary>Ends a node: its claimed buffers that no pending gradient uses (they went to leaves or into sums) go back to the pool.</summary>
        public void EndNode()
        {
            foreach (var storage in _claimed)
            {
                if (_uses.TryGetValue(storage, out int uses) && uses == 0)
                {
                    _uses.Remove(storage);
                    GradientBuffers.Return(storage);
                }
            }

            _claimed.Clear();
            Session.ForgetHandedOutSince(_mark);
        }
    }

    /// <summary>Counts the uses of each leaf by the nodes still to run, and reports a leaf when its count reaches zero.</summary>
    private sealed class LeafReadiness
    {
        private readonly Dictionary<Tensor, int> _uses = new(ReferenceEqualityComparer.Instance);
        private readonly List<Tensor> _held = [];
        private readonly HashSet<Tensor> _inner = new(ReferenceEqualityComparer.Instance);
        private readonly Action<Tensor> _ready;
        private int _checkpointsLeft;

        public LeafReadiness(List<Tensor> order, Action<Tensor> ready)
        {
            _ready = ready;
            foreach (var tensor in order)
            {
                var node = tensor.GradFn!;
                if (node.Op == nameof(Ops.Checkpoint)) _checkpointsLeft++;
                foreach (var input in node.Inputs)
                {
                    if (input is not null && input.IsLeaf && input.RequiresGrad)
                    {
                        _uses[input] = _uses.GetValueOrDefault(input) + 1;
                    }
                }
            }
        }

        /// <summary>Called after <paramref name="node"/> has run (or was skipped): its leaf inputs lose one pending use.</summary>
        public void NodeDone(GradNode node)
        {
            if (node.Op == nameof(Ops.Checkpoint)) _checkpointsLeft--;
            foreach (var input in node.Inputs)
            {
                if (input is null || !input.IsLeaf || !input.RequiresGrad) continue;
                int left = _uses[input] - 1;
                _uses[input] = left;
                if (left == 0) _held.Add(input);
            }

            if (_checkpointsLeft == 0) Release();
        }

        /// <summary>
        /// Takes the leaves of a checkpointed block's recomputed graph (except the block's input stand-ins): those the
        /// outer graph does not use are held until no checkpoint is left, each reported once however many blocks share it.
        /// </summary>
        public void AddInner(List<Tensor> order, Tensor[]? blockInputs)
        {
            foreach (var tensor in order)
            {
                foreach (var input in tensor.GradFn!.Inputs)
                {
                    if (input is null || !input.IsLeaf || !input.RequiresGrad || _uses.ContainsKey(input)) continue;
                    if (blockInputs is not null && Array.Exists(blockInputs, b => ReferenceEquals(b, input))) continue;
                    if (_inner.Add(input)) _held.Add(input);
                }
            }
        }

        /// <summary>Reports whatever is still held (every count is zero once all nodes have run).</summary>
        public void Finish() => Release();

        private void Release()
        {
            foreach (var leaf in _held) _ready(leaf);
            _held.Clear();
        }
    }

    /// <summary>Non-leaf tensors reachable from <paramref name="root"/>, each after all tensors it depends on.</summary>
    private static List<Tensor> TopologicalOrder(Tensor root)
    {
        var order = new List<Tensor>();
        if (root.IsLeaf) return order;
        var visited = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);

        // Iterative depth-first search (deep graphs would overflow the call stack): a tensor is emitted after its inputs.
        var stack = new Stack<(Tensor Tensor, int NextInput)>();
        stack.Push((root, 0));
        visited.Add(root);
        while (stack.Count > 0)
        {
            var (tensor, next) = stack.Pop();
            var inputs = tensor.GradFn!.Inputs;
            if (next < inputs.Length)
            {
                stack.Push((tensor, next + 1));
                var input = inputs[next];
                if (input is not null && !input.IsLeaf && input.RequiresGrad && visited.Add(input))
                {
                    stack.Push((input, 0));
                }
            }
            else
            {
                order.Add(tensor);
            }
        }

        return order;
    }
}

/// <summary>The scope returned by <see cref="Autograd.NoGrad"/>; disposing it turns recording back on.</summary>
public readonly struct NoGradScope : IDisposable, IEquatable<NoGradScope>
{
    private readonly int _threadId;

    internal NoGradScope(int threadId) => _threadId = threadId;

    /// <summary>Leaves the no-grad scope.</summary>
    public void Dispose() => Autograd.ExitNoGrad(_threadId);

    /// <inheritdoc/>
    public bool Equals(NoGradScope other) => _threadId == other._threadId;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is NoGradScope other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => _threadId;

    /// <summary>Same thread.</summary>
    public static bool operator ==(NoGradScope left, NoGradScope right) => left.Equals(right);

    /// <summary>Different thread.</summary>
    public static bool operator !=(NoGradScope left, NoGradScope right) => !left.Equals(right);
}

/// <summary>One recorded op: its name, its inputs and the function that turns the output gradient into input gradients.</summary>
internal sealed class GradNode(string op, Tensor?[] inputs, Func<Tensor, Tensor?[]> backward)
{
    public string Op { get; } = op;

    public Tensor?[] Inputs { get; } = inputs;

    public Func<Tensor, Tensor?[]> Backward { get; } = backward;
}
