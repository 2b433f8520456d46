using Sharpformer.Tensors;

namespace Sharpformer.Training.Data;

/// <summary>
/// One batch of language-model training data, as Hugging Face's collators hand it to a model: input ids [B, T] (I32),
/// labels [B, T] (I32; −100 where no prediction is scored), and an attention mask [B, T] (I32, 1 = token, 0 = padding)
/// or null when every position is a token. For causal LM the labels are the input ids themselves (the model shifts
/// them, as HF does); for masked LM they hold the original ids at the masked positions.
/// </summary>
public sealed record TrainingBatch : ITrainerBatch
{
    /// <summary>Checks that the tensors are I32 and of one [B, T] shape.</summary>
    /// <param name="inputIds">[B, T] token ids.</param>
    /// <param name="labels">[B, T] target ids or −100.</param>
    /// <param name="attentionMask">[B, T] 1/0, or null for no padding.</param>
    /// <exception cref="ArgumentException">A tensor is not I32 or the shapes differ.</exception>
    public TrainingBatch(Tensor inputIds, Tensor labels, Tensor? attentionMask = null)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        ArgumentNullException.ThrowIfNull(labels);
        Check(inputIds, inputIds, nameof(inputIds));
        Check(inputIds, labels, nameof(labels));
        if (attentionMask is not null) Check(inputIds, attentionMask, nameof(attentionMask));
        InputIds = inputIds;
        Labels = labels;
        AttentionMask = attentionMask;
    }

    /// <summary>[B, T] token ids (I32).</summary>
    public Tensor InputIds { get; }

    /// <summary>[B, T] target ids, −100 where nothing is scored (I32).</summary>
    public Tensor Labels { get; }

    /// <summary>[B, T] 1 = token, 0 = padding (I32), or null when there is no padding.</summary>
    public Tensor? AttentionMask { get; }

    /// <summary>B.</summary>
    public int BatchSize => InputIds.Shape[0];

    /// <summary>T.</summary>
    public int SequenceLength => InputIds.Shape[1];

    /// <summary>The number of real (unpadded) tokens: B·T without a mask, else the mask's sum (the trainer's tokens/s).</summary>
    public long TokenCount => AttentionMask is null ? InputIds.ElementCount : AttentionMask.ToArray<int>().Sum(v => (long)v);

    /// <summary>Rows [<paramref name="start"/>, <paramref name="start"/> + <paramref name="count"/>) of this batch: one data-parallel rank's shard.</summary>
    internal TrainingBatch Rows(int start, int count)
    {
        int t = SequenceLength;
        var shape = new Shape(count, t);
        Tensor Slice(Tensor x) => Tensor.FromArray(x.ToArray<int>().AsSpan(start * t, count * t).ToArray(), shape);
        return new TrainingBatch(Slice(InputIds), Slice(Labels), AttentionMask is null ? null : Slice(AttentionMask));
    }

    private static void Check(Tensor ids, Tensor t, string name)
    {
        if (t.DType != DType.I32 || t.Rank != 2 || t.Shape != ids.Shape)
        {
            throw new ArgumentException($"TrainingBatch: {name} must be an I32 tensor [B, T] of input_ids' shape {ids.Shape}, got {t.DType} {t.Shape}.", name);
        }
    }
}

/// <summary>Where a batch source stands: the epoch and the index of the next batch within it (saved in checkpoints).</summary>
/// <param name="Epoch">0-based epoch.</param>
/// <param name="Batch">0-based index of the next batch in that epoch.</param>
public readonly record struct DataPosition(int Epoch, long Batch);

/// <summary>What the trainer needs of any batch type (language-model <see cref="TrainingBatch"/>, fine-tuning <see cref="FineTuning.TaskBatch"/>).</summary>
public interface ITrainerBatch
{
    /// <summary>The number of real (unpadded) tokens, for the trainer's token count and tokens/s.</summary>
    long TokenCount { get; }
}

/// <summary>
/// An endless, deterministic stream of training batches: after the last batch of an epoch it starts the next epoch
/// (reshuffled from the seed and the epoch number unless shuffling is off). Everything random about a batch (its order,
/// MLM masks) is a function of (seed, epoch, batch index), so setting <see cref="Position"/> resumes a run exactly.
/// </summary>
/// <typeparam name="TBatch">The batch type.</typeparam>
public interface IBatchSource<out TBatch>
    where TBatch : ITrainerBatch
{
    /// <summary>Batches in one epoch.</summary>
    long BatchesPerEpoch { get; }

    /// <summary>The position of the batch <see cref="Next"/> returns next; settable to resume.</summary>
    DataPosition Position { get; set; }

    /// <summary>Returns the batch at <see cref="Position"/> and advances it (into the next epoch after the last batch).</summary>
    /// <returns>The batch.</returns>
    TBatch Next();
}

/// <summary>A stream of language-model batches (<see cref="IBatchSource{TBatch}"/> of <see cref="TrainingBatch"/>).</summary>
public interface IBatchSource : IBatchSource<TrainingBatch>
{
}
