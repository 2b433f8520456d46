namespace Sharpformer.Tensors;

public static partial class Ops
{
    /// <summary>
    /// Gradient checkpointing: runs <paramref name="block"/>(<paramref name="input"/>) without recording, so none of the
    /// block's activations are kept, and keeps only its input; during Backward the block runs again with recording and
    /// the output gradient is back-propagated through that recomputed graph. Gradients reach <paramref name="input"/>
    /// and the parameters (leaves) the block closes over, equal to those of calling the block directly: the recompute
    /// runs the same F32 ops on the same values. Costs one more forward of the block per Backward; saves its activations.
    /// </summary>
    /// <remarks>
    /// <para>The block must compute the same function both times. Anything random inside it must draw the same values on
    /// the recompute: System.Random's state cannot be captured, so build or reseed the generator at the start of the
    /// block from a value the block captures, e.g. <c>x =&gt; { dropout.Reseed(stepSeed + layer); return ...; }</c> or
    /// <c>Ops.Dropout(x, p, true, new Random(seed))</c>. A generator shared with code outside the block would have
    /// moved on by the time Backward runs, and the recompute would draw a different mask.</para>
    /// <para>While gradients are recorded the output always takes part in the graph, because which parameters the block
    /// uses is known only when it runs again. Tensors that carry gradient from earlier ops should be passed as inputs
    /// (see <see cref="Checkpoint(Func{Tensor[], Tensor}, Tensor[])"/>) rather than captured: a captured non-leaf is
    /// still differentiated, but by a separate pass through its part of the graph inside this node's backward.</para>
    /// <para>Outside recording (<see cref="Autograd.NoGrad"/>) this is just <c>block(input)</c>.</para>
    /// </remarks>
    /// <exception cref="ArgumentNullException">The block or the input is null.</exception>
    /// <exception cref="InvalidOperationException">The block returns a non-F32 tensor, or a different shape on the recompute.</exception>
    public static Tensor Checkpoint(Func<Tensor, Tensor> block, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(block);
        ArgumentNullException.ThrowIfNull(input);
        return Checkpoint(inputs => block(inputs[0]), input);
    }

    /// <summary>
    /// <see cref="Checkpoint(Func{Tensor, Tensor}, Tensor)"/> for a block of several inputs (for example the hidden
    /// states and an encoder's output): each input that requires gradients receives one.
    /// </summary>
    /// <exception cref="ArgumentNullException">The block, the input array or one of the inputs is null.</exception>
    /// <exception cref="ArgumentException">No inputs are given.</exception>
    /// <exception cref="InvalidOperationException">The block returns a non-F32 tensor, or a different shape on the recompute.</exception>
    public static Tensor Checkpoint(Func<Tensor[], Tensor> block, params Tensor[] inputs)
    {
        ArgumentNullException.ThrowIfNull(block);
        ArgumentNullException.ThrowIfNull(inputs);
        if (inputs.Length == 0) throw new ArgumentException("Checkpoint: pass at least one input tensor to the block.", nameof(inputs));
        foreach (var x in inputs) ArgumentNullException.ThrowIfNull(x, nameof(inputs));
        if (!Autograd.IsGradEnabled) return block(inputs);

        Tensor result;
        using (Autograd.NoGrad())
        {
            result = block(inputs);
        }

        CheckBlockOutput(result, null);

        // A fresh tensor object over the result's storage: an unrecorded block may return one of its inputs (an identity,
        // dropout in eval mode), whose own graph node must stay as it is.
        var output = result.Detach();
        var saved = (Tensor[])inputs.Clone();
        return Autograd.Record(output, nameof(Checkpoint), saved, g =>
        {
            // Leaves over the same storage: the recomputed graph ends at them, and their Grad is the inputs' gradient.
            var leaves = new Tensor[saved.Length];
            for (int i = 0; i < saved.Length; i++)
            {
                leaves[i] = saved[i].Detach();
                if (saved[i].RequiresGrad) leaves[i].RequiresGrad = true;
            }

            Tensor recomputed;
            int depth = Autograd.SuspendNoGrad();
            try
            {
                recomputed = block(leaves);
            }
            finally
            {
                Autograd.RestoreNoGrad(depth);
            }

            CheckBlockOutput(recomputed, output.Shape);
            if (recomputed.RequiresGrad) Autograd.RunBackward(recomputed, g, blockInputs: leaves);
            var grads = new Tensor?[saved.Length];
            for (int i = 0; i < saved.Length; i++)
            {
                if (saved[i].RequiresGrad) grads[i] = leaves[i].Grad ?? Tensor.Zeros(saved[i].Shape);
            }

            return grads;
        });
    }

    private static void CheckBlockOutput(Tensor? output, Shape? expected)
    {
        if (output is null) throw new InvalidOperationException("Checkpoint: the block returned null; it must return its output tensor.");
        if (output.DType != DType.F32)
        {
            throw new InvalidOperationException($"Checkpoint: the block must return an F32 tensor (gradients are F32), got {output.DType} of shape {output.Shape}.");
        }

        if (expected is { } shape && output.Shape != shape)
        {
            throw new InvalidOperationException($"Checkpoint: the recomputed block returned shape {output.Shape}, but the first run returned {shape}; the block must compute the same function both times.");
        }
    }
}
