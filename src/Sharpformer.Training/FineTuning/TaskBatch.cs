using Sharpformer.Tensors;
using Sharpformer.Training.Data;

namespace Sharpformer.Training.FineTuning;

/// <summary>
/// One fine-tuning batch, as HF's collators hand it to a task model: input ids, attention mask and (for models with
/// segments) token type ids [B, T] I32, plus the targets of the task — <see cref="Labels"/> ([B] I32 class ids,
/// [B, L] F32 multi-label 0/1 or regression targets, [B] F32 regression, or [B, T] I32 token labels with −100 where
/// nothing is scored), or <see cref="StartPositions"/>/<see cref="EndPositions"/> ([B] I32) for question answering.
/// Evaluation-only batches may carry no targets.
/// </summary>
public sealed record TaskBatch : ITrainerBatch
{
    /// <summary>Checks the shapes and dtypes.</summary>
    /// <param name="inputIds">[B, T] token ids (I32).</param>
    /// <param name="attentionMask">[B, T] 1 = token, 0 = padding (I32).</param>
    /// <param name="tokenTypeIds">[B, T] segment ids (I32), or null.</param>
    /// <param name="labels">The task's labels (see the type's summary), or null.</param>
    /// <param name="startPositions">[B] answer start token indices (I32), or null.</param>
    /// <param name="endPositions">[B] answer end token indices (I32), or null.</param>
    /// <exception cref="ArgumentException">A tensor has the wrong dtype or shape, or only one of the two positions is given.</exception>
    public TaskBatch(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds = null, Tensor? labels = null, Tensor? startPositions = null, Tensor? endPositions = null)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        ArgumentNullException.ThrowIfNull(attentionMask);
        if (inputIds.DType != DType.I32 || inputIds.Rank != 2)
        {
            throw new ArgumentException($"TaskBatch: input_ids must be I32 [B, T], got {inputIds.DType} {inputIds.Shape}.", nameof(inputIds));
        }

        int b = inputIds.Shape[0], t = inputIds.Shape[1];
        CheckSame(inputIds, attentionMask, nameof(attentionMask));
        if (tokenTypeIds is not null) CheckSame(inputIds, tokenTypeIds, nameof(tokenTypeIds));
        if (labels is not null)
        {
            var ok = (labels.DType, labels.Rank) switch
            {
                (DType.I32, 1) => labels.Shape[0] == b,
                (DType.I32, 2) => labels.Shape == inputIds.Shape,
                (DType.F32, 1) => labels.Shape[0] == b,
                (DType.F32, 2) => labels.Shape[0] == b,
                _ => false,
            };
            if (!ok)
            {
                throw new ArgumentException($"TaskBatch: labels must be I32 [B] (classes), I32 [B, T] (token labels), F32 [B] or F32 [B, L] (multi-label, regression) with B = {b}, T = {t}; got {labels.DType} {labels.Shape}.", nameof(labels));
            }
        }

        if ((startPositions is null) != (endPositions is null))
        {
            throw new ArgumentException("TaskBatch: give both start and end positions for question answering, or neither.", nameof(startPositions));
        }

        foreach (var (positions, name) in new[] { (startPositions, nameof(startPositions)), (endPositions, nameof(endPositions)) })
        {
            if (positions is not null && (positions.DType != DType.I32 || positions.Rank != 1 || positions.Shape[0] != b))
            {
                throw new ArgumentException($"TaskBatch: {name} must be I32 [B] with B = {b}, got {positions.DType} {positions.Shape}.", name);
            }
        }

        InputIds = inputIds;
        AttentionMask = attentionMask;
        TokenTypeIds = tokenTypeIds;
        Labels = labels;
        StartPositions = startPositions;
        EndPositions = endPositions;
    }

    /// <summary>[B, T] token ids (I32).</summary>
    public Tensor InputIds { get; }

    /// <summary>[B, T] 1 = token, 0 = padding (I32).</summary>
    public Tensor AttentionMask { get; }

    /// <summary>[B, T] segment ids (I32), or null for models without segments.</summary>
    public Tensor? TokenTypeIds { get; }

    /// <summary>The task's labels, or null (question answering, or evaluation without targets).</summary>
    public Tensor? Labels { get; }

    /// <summary>[B] answer start token indices (I32), or null.</summary>
    public Tensor? StartPositions { get; }

    /// <summary>[B] answer end token indices (I32), or null.</summary>
    public Tensor? EndPositions { get; }

    /// <summary>B.</summary>
    public int BatchSize => InputIds.Shape[0];

    /// <summary>T.</summary>
    public int SequenceLength => InputIds.Shape[1];

    /// <inheritdoc/>
    public long TokenCount => AttentionMask.ToArray<int>().Sum(v => (long)v);

    private static void CheckSame(Tensor ids, Tensor t, string name)
    {
        if (t.DType != DType.I32 || t.Shape != ids.Shape)
        {
            throw new ArgumentException($"TaskBatch: {name} must be I32 of input_ids' shape {ids.Shape}, got {t.DType} {t.Shape}.", name);
        }
    }
}

/// <summary>
/// Batches of a fixed list of examples (or QA features) in a seeded order: each epoch is a fresh shuffle derived from
/// (seed, epoch) — so <see cref="Position"/> resumes exactly — cut into batches of <see cref="BatchSize"/> (the last
/// one smaller, as HF's DataLoader without drop_last). <see cref="EvalBatches"/> walks the list in order.
/// </summary>
public sealed class TaskBatchSource : IBatchSource<TaskBatch>
{
    private readonly int _count;
    private readonly Func<IReadOnlyList<int>, TaskBatch> _makeBatch;
    private readonly bool _shuffle;
    private readonly long _seed;
    private int[] _order = [];
    private int _orderEpoch = -1;

    /// <summary>Prepares the source.</summary>
    /// <param name="count">Number of items (examples or features).</param>
    /// <param name="batchSize">Items per batch.</param>
    /// <param name="makeBatch">Builds the batch of the given item indices (e.g. <see cref="SequenceClassificationCollator.Collate(IReadOnlyList{int})"/>).</param>
    /// <param name="seed">The run seed.</param>
    /// <param name="shuffle">Reshuffle each epoch (training); false keeps the file order.</param>
    /// <exception cref="ArgumentException">No items, or a batch size below 1.</exception>
    public TaskBatchSource(int count, int batchSize, Func<IReadOnlyList<int>, TaskBatch> makeBatch, long seed, bool shuffle = true)
    {
        ArgumentNullException.ThrowIfNull(makeBatch);
        if (count <= 0) throw new ArgumentException("TaskBatchSource: there are no training examples; check the data file.", nameof(count));
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "The batch size must be at least 1.");
        _count = count;
        BatchSize = batchSize;
        _makeBatch = makeBatch;
        _seed = seed;
        _shuffle = shuffle;
    }

    /// <summary>Items per batch.</summary>
    public int BatchSize { get; }

    /// <inheritdoc/>
    public long BatchesPerEpoch => (_count + BatchSize - 1) / BatchSize;

    /// <inheritdoc/>
    public DataPosition Position { get; set; }

    /// <inheritdoc/>
    public TaskBatch Next()
    {
        var position = Position;
        if (position.Batch >= BatchesPerEpoch) position = new DataPosition(position.Epoch + 1, 0);
        var order = Order(position.Epoch);
        var start = (int)(position.Batch * BatchSize);
        var items = order.AsSpan(start, Math.Min(BatchSize, _count - start)).ToArray();
        Position = position.Batch + 1 >= BatchesPerEpoch ? new DataPosition(position.Epoch + 1, 0) : position with { Batch = position.Batch + 1 };
        return _makeBatch(items);
    }

    /// <summary>All items in order, in batches of <see cref="BatchSize"/> (for evaluation).</summary>
    /// <returns>The batches.</returns>
    public IEnumerable<TaskBatch> EvalBatches()
    {
        for (var start = 0; start < _count; start += BatchSize)
        {
            var items = new int[Math.Min(BatchSize, _count - start)];
            for (var i = 0; i < items.Length; i++) items[i] = start + i;
            yield return _makeBatch(items);
        }
    }

    private int[] Order(int epoch)
    {
        if (_orderEpoch == epoch) return _order;
        var order = new int[_count];
        for (var i = 0; i < order.Length; i++) order[i] = i;
        if (_shuffle)
        {
            var random = DataRandom.For(_seed, DataRandom.ShuffleStream, epoch, 0);
            random.Shuffle(order.AsSpan());
        }

        _order = order;
        _orderEpoch = epoch;
        return order;
    }
}
