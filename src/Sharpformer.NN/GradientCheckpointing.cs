using Sharpformer.Tensors;

namespace Sharpformer.NN;

/// <summary>
/// Gradient checkpointing of one block of a model (HF <c>gradient_checkpointing_enable()</c>): the block's forward keeps
/// none of its activations, only its input, and the backward runs it again (<see cref="Ops.Checkpoint(Func{Tensor, Tensor}, Tensor)"/>),
/// trading about one more forward for the memory of every activation inside the block — what long sequences need.
/// Dropout inside the block draws the same masks on the recomputation: one seed is drawn from the block's first dropout
/// layer when the block runs, and every dropout layer in it is reseeded from that seed at the start of both runs.
/// </summary>
public static class GradientCheckpointing
{
    /// <summary>Runs <paramref name="forward"/>(input) as a checkpointed block.</summary>
    /// <param name="block">The block's module (its dropout layers are reseeded).</param>
    /// <param name="forward">The block's forward over one tensor; anything else it needs (masks) is captured.</param>
    /// <param name="input">The block's input.</param>
    /// <returns>The block's output, recorded as one node.</returns>
    public static Tensor Run(Module block, Func<Tensor, Tensor> forward, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(block);
        ArgumentNullException.ThrowIfNull(forward);
        var dropouts = block.NamedModules().Select(m => m.Module).OfType<Dropout>().Where(d => d.Training && d.P > 0f).ToArray();
        if (dropouts.Length == 0) return Ops.Checkpoint(forward, input);
        int seed = dropouts[0].DrawSeed();
        return Ops.Checkpoint(
            x =>
            {
                for (int i = 0; i < dropouts.Length; i++) dropouts[i].Reseed(HashSeed(seed, i));
                return forward(x);
            },
            input);
    }

    private static int HashSeed(int seed, int index) => (int)((((uint)seed * 0x9E3779B9u) ^ ((uint)index * 0x85EBCA6Bu)) >> 1);
}

/// <summary>A model whose transformer blocks can run under <see cref="GradientCheckpointing"/>.</summary>
public interface ISupportsGradientCheckpointing
{
    /// <summary>When true (and training with gradients), every block is checkpointed: less memory, about a third more compute.</summary>
    bool GradientCheckpointing { get; set; }
}
