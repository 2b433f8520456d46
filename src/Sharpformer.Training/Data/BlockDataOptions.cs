namespace Sharpformer.Training.Data;

/// <summary>How a token stream becomes batches of fixed-length blocks (causal LM; the base of <see cref="MlmDataOptions"/>).</summary>
public record BlockDataOptions
{
    /// <summary>T: tokens per sequence (for masked LM this includes [CLS] and [SEP]).</summary>
    public required int BlockSize { get; init; }

    /// <summary>B: sequences per training batch. Every training batch is full: an epoch's last partial batch is not made.</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>The seed of every random choice: the eval split, each epoch's shuffle, MLM masks.</summary>
    public long Seed { get; init; } = 42;

    /// <summary>
    /// Shuffle block order each epoch (a permutation from (seed, epoch); the blocks of an epoch's partial last batch
    /// are skipped that epoch and land elsewhere in the next). Off: blocks in corpus order, and an epoch that ends
    /// inside the data continues from there, wrapping round, so no block is skipped for good.
    /// </summary>
    public bool Shuffle { get; init; } = true;

    /// <summary>Fraction of blocks held out for evaluation (a seeded choice, never trained on); 0 for none. In [0, 1).</summary>
    public double EvalFraction { get; init; }

    /// <summary>Sequences per evaluation batch; <see cref="BatchSize"/> when null. The last eval batch may be smaller.</summary>
    public int? EvalBatchSize { get; init; }

    /// <summary>
    /// Data-parallel runs: how many processes share each batch. The data is planned as if one process took batches of
    /// <see cref="BatchSize"/> × ShardCount sequences (the same order, epochs and MLM masks for the same seed), and this
    /// process gets rows [<see cref="ShardIndex"/> × BatchSize, (ShardIndex + 1) × BatchSize) of each. Evaluation batches
    /// are not sharded. 1 (the default) is a single process.
    /// </summary>
    public int ShardCount { get; init; } = 1;

    /// <summary>This process's shard (its MPI rank), 0 … <see cref="ShardCount"/> − 1.</summary>
    public int ShardIndex { get; init; }

    /// <summary>The options of the whole group's batch: <see cref="BatchSize"/> × <see cref="ShardCount"/> sequences.</summary>
    internal BlockDataOptions Global => ShardCount == 1
        ? this
        : this with { BatchSize = BatchSize * ShardCount, EvalBatchSize = EvalBatchSize ?? (BatchSize * ShardCount), ShardCount = 1, ShardIndex = 0 };
}

/// <summary>How masked-LM sequences are cut from the corpus.</summary>
public enum MlmLayout
{
    /// <summary>
    /// [CLS] + as many consecutive whole lines of one document as fit in T − 2 tokens + [SEP], right-padded with [PAD]
    /// (attention mask 0, label −100); a new sequence at every document; a line longer than T − 2 is cut into pieces
    /// of T − 2, each its own sequence; empty lines are skipped.
    /// </summary>
    Lines,

    /// <summary>HF run_mlm's group_texts: all tokens concatenated and cut into full blocks of T − 2 (a partial last block dropped), no padding.</summary>
    Grouped,
}

/// <summary>Masked-LM data: sequences of at most <see cref="BlockDataOptions.BlockSize"/> − 2 tokens wrapped in [CLS] … [SEP], masked like HF's collators.</summary>
public sealed record MlmDataOptions : BlockDataOptions
{
    /// <summary>How sequences are cut: whole lines packed and padded (the default), or the concatenated stream grouped.</summary>
    public MlmLayout Layout { get; init; } = MlmLayout.Lines;

    /// <summary>Probability that a token (or, with <see cref="WholeWordMask"/>, the share of tokens) is chosen for prediction (HF's mlm_probability).</summary>
    public double MaskProbability { get; init; } = 0.15;

    /// <summary>Choose whole words (a token and its following "##" pieces) like HF's DataCollatorForWholeWordMask.</summary>
    public bool WholeWordMask { get; init; }
}

/// <summary>Checks of the options at the sources' constructors.</summary>
internal static class BlockDataOptionsChecks
{
    /// <summary>Throws with a message naming the bad option and its valid range.</summary>
    public static void Validate(BlockDataOptions options, int minimumBlockSize, string source)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.BlockSize < minimumBlockSize)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.BlockSize, $"{source}: BlockSize must be at least {minimumBlockSize}.");
        }

        if (options.BatchSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.BatchSize, $"{source}: BatchSize must be at least 1.");
        }

        if (options.ShardCount < 1 || options.ShardIndex < 0 || options.ShardIndex >= options.ShardCount)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.ShardIndex, $"{source}: ShardIndex must be in [0, ShardCount) and ShardCount at least 1 (got shard {options.ShardIndex} of {options.ShardCount}).");
        }

        if (options.EvalBatchSize is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.EvalBatchSize, $"{source}: EvalBatchSize must be at least 1 (or null for BatchSize).");
        }

        if (!(options.EvalFraction >= 0 && options.EvalFraction < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.EvalFraction, $"{source}: EvalFraction must be in [0, 1); 0 holds nothing out.");
        }
    }
}
