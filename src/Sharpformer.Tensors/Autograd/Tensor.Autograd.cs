using System.Diagnostics.CodeAnalysis;

namespace Sharpformer.Tensors;

// Autograd members of Tensor. A tensor produced by an op on inputs that require gradients holds a GradNode (its
// creator); leaves (tensors made directly, e.g. parameters) have none and receive gradients in Grad.
public sealed partial class Tensor
{
    private bool _requiresGrad;

    /// <summary>
    /// True when gradients flow to this tensor. Set it on leaves (parameters, inputs); op outputs get it when any input
    /// requires gradients and gradient recording is on (see <see cref="Autograd.NoGrad"/>). Only <see cref="Ops"/>
    /// record: Tensor's own view methods (<see cref="Reshape"/>, <see cref="Transpose"/>, ...) return plain views, so use
    /// <see cref="Ops.Reshape"/>, <see cref="Ops.Transpose"/>, ... on tensors that are part of a graph.
    /// </summary>
    /// <exception cref="InvalidOperationException">Set on a non-F32 tensor, or cleared on a non-leaf.</exception>
    public bool RequiresGrad
    {
        get => _requiresGrad;
        set
        {
            if (value && DType != DType.F32) ThrowRequiresGradDType(DType, Shape);
            if (!value && !IsLeaf) ThrowClearNonLeaf(Shape);
            _requiresGrad = value;
        }
    }

    /// <summary>
    /// The gradient of the last <see cref="Backward()"/> loss(es) with respect to this leaf: same shape, F32, contiguous.
    /// Successive Backward calls add into it (like PyTorch); <see cref="ZeroGrad"/> clears it. Null until a gradient
    /// arrives. Non-leaf tensors do not keep their gradients.
    /// </summary>
    public Tensor? Grad => _gradStale ? null : _grad;

    // The gradient buffer of a leaf. ZeroGrad marks it stale instead of dropping it, so the next backward overwrites it
    // in place (ops write weight gradients straight into it, see GradTarget) rather than allocating and copying
    // parameter-sized tensors every step.
    private Tensor? _grad;
    private bool _gradStale;

    /// <summary>True for tensors not produced by a recorded op (parameters, data, detached tensors).</summary>
    public bool IsLeaf => GradFn is null;

    /// <summary>The name of the op that recorded this tensor (e.g. <c>Linear</c>, <c>Checkpoint</c>), or null for a leaf: PyTorch's <c>grad_fn</c>, for inspection.</summary>
    public string? GradFnName => GradFn?.Op;

    /// <summary>The recorded op that produced this tensor, or null for a leaf.</summary>
    internal GradNode? GradFn { get; private set; }

    /// <summary>Back-propagates from this scalar (one-element) tensor, seeding its gradient with 1.</summary>
    /// <exception cref="InvalidOperationException">The tensor has more than one element or does not require gradients.</exception>
    public void Backward()
    {
        if (ElementCount != 1)
        {
            throw new InvalidOperationException($"Backward(): the tensor of shape {Shape} is not a scalar; reduce it (Ops.Sum/Ops.Mean) or pass the output gradient to Backward(grad).");
        }

        Backward(Ones(Shape));
    }

    /// <summary>
    /// Back-propagates from this scalar tensor like <see cref="Backward()"/>, and calls <paramref name="leafGradientReady"/>
    /// once per leaf that requires gradients as soon as its <see cref="Grad"/> is final for this pass (no node still to
    /// run adds to it), on the calling thread, roughly in reverse order of use: the hook data-parallel training uses to
    /// start all-reducing the last layers' gradients while the first layers' are still being computed.
    /// </summary>
    /// <param name="leafGradientReady">Called with each finished leaf; it must not change the leaf's gradient buffer before Backward returns unless it owns that leaf's reduction.</param>
    /// <exception cref="InvalidOperationException">The tensor has more than one element or does not require gradients.</exception>
    public void Backward(Action<Tensor> leafGradientReady)
    {
        ArgumentNullException.ThrowIfNull(leafGradientReady);
        if (ElementCount != 1)
        {
            throw new InvalidOperationException($"Backward(): the tensor of shape {Shape} is not a scalar; reduce it (Ops.Sum/Ops.Mean) or pass the output gradient to Backward(grad).");
        }

        if (!RequiresGrad)
        {
            throw new InvalidOperationException($"Backward: the tensor of shape {Shape} does not require gradients; set RequiresGrad on the parameters before the forward pass, outside Autograd.NoGrad().");
        }

        Autograd.RunBackward(this, Ones(Shape), leafGradientReady);
    }

    /// <summary>
    /// Back-propagates <paramref name="grad"/> (same shape as this tensor) through the recorded graph. The graph is kept,
    /// so calling Backward again adds the same gradients once more. Leaves' <see cref="Grad"/> are updated without
    /// locks: do not run Backward concurrently on graphs that share leaves.
    /// </summary>
    /// <exception cref="InvalidOperationException">The tensor does not require gradients.</exception>
    /// <exception cref="ArgumentException"><paramref name="grad"/>'s shape differs from this tensor's.</exception>
    public void Backward(Tensor grad)
    {
        ArgumentNullException.ThrowIfNull(grad);
        if (!RequiresGrad)
        {
            throw new InvalidOperationException($"Backward: the tensor of shape {Shape} does not require gradients; set RequiresGrad on the parameters before the forward pass, outside Autograd.NoGrad().");
        }

        if (grad.Shape != Shape) ShapeError.Mismatch("Backward", Shape, grad.Shape, "the gradient must have the output's shape");
        if (grad.DType != DType.F32) throw new ArgumentException($"Backward: the gradient must be F32, got {grad.DType}.", nameof(grad));
        Autograd.RunBackward(this, grad.Contiguous());
    }

    /// <summary>
    /// Clears <see cref="Grad"/> (it reads null) so the next Backward starts from zero. The buffer is kept and overwritten
    /// by that Backward, so a reference to the old <see cref="Grad"/> tensor sees the new values: copy it to keep it.
    /// </summary>
    public void ZeroGrad()
    {
        if (_grad is not null) _gradStale = true;
    }

    /// <summary>A leaf that shares this tensor's storage but is cut from the graph (no gradient flows through it).</summary>
    public Tensor Detach() => new(Storage, DType, Shape, _strides, Offset);

    /// <summary>Makes this tensor the output of <paramref name="node"/>.</summary>
    internal void SetGradFn(GradNode node)
    {
        GradFn = node;
        _requiresGrad = true;
    }

    /// <summary>Adds <paramref name="grad"/> (contiguous F32, this tensor's shape) into <see cref="Grad"/>.</summary>
    internal void AccumulateGrad(Tensor grad)
    {
        // Copied, never adopted: the incoming gradient may alias another tensor's gradient or a saved activation.
        var target = GradTarget(out bool overwrite).AsSpan<float>();
        if (overwrite)
        {
            grad.AsReadOnlySpan<float>().CopyTo(target);
        }
        else
        {
            System.Numerics.Tensors.TensorPrimitives.Add(target, grad.AsReadOnlySpan<float>(), target);
        }
    }

    /// <summary>
    /// The contiguous F32 buffer a backward function may write this leaf's gradient into directly (a weight gradient
    /// GEMM with β = 0 or 1), instead of returning a new tensor for the engine to accumulate. <paramref name="overwrite"/>
    /// is true when no gradient is pending (a fresh or stale buffer: write it), false when one is (add to it). After the
    /// call the buffer counts as holding a gradient.
    /// </summary>
    internal Tensor GradTarget(out bool overwrite)
    {
        if (_grad is null)
        {
            // On a cache line, so a weight-gradient GEMM can write it with whole-line streaming stores (Ops.Linear).
            _grad = EmptyAligned(Shape);
            overwrite = true;
        }
        else
        {
            overwrite = _gradStale;
        }

        _gradStale = false;
        return _grad;
    }

    [DoesNotReturn]
    private static void ThrowRequiresGradDType(DType dtype, Shape shape) =>
        throw new InvalidOperationException($"RequiresGrad: only F32 tensors can require gradients, but this tensor of shape {shape} is {dtype}; convert with To(DType.F32) first.");

    [DoesNotReturn]
    private static void ThrowClearNonLeaf(Shape shape) =>
        throw new InvalidOperationException($"RequiresGrad: the tensor of shape {shape} is the output of an op; use Detach() to get a tensor without gradients.");
}
