using Sharpformer.Tensors;

namespace Sharpformer.Training.Data;

/// <summary>
/// Causal-LM batches: the stream doc₁ EOS doc₂ EOS … (EOS after every document) cut into consecutive blocks of T
/// tokens (a partial last block is dropped), B blocks per batch; labels are the input ids (the model shifts them,
/// as HF's run_clm does); no attention mask. Block order is shuffled per epoch from (seed, epoch) unless
/// <see cref="BlockDataOptions.Shuffle"/> is off; every training batch has exactly B blocks.
/// </summary>
public sealed class ClmBatchSource : IBatchSource
{
    private readonly TokenBlocks _train;
    private readonly TokenBlocks _eval;
    private readonly BlockPlan _plan;
    private readonly (int Index, int Count, int Rows) _shard;
    private readonly int[] _blocks;
    private DataPosition _position;

    /// <summary>Plans batches over <paramref name="data"/>; evaluation uses <paramref name="evalData"/> if given, else a held-out <see cref="BlockDataOptions.EvalFraction"/>.</summary>
    /// <exception cref="ArgumentException">The tokenizer has no EOS token, options are out of range, or the data does not fill one batch.</exception>
    public ClmBatchSource(TokenCache data, BlockDataOptions options, TokenCache? evalData = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        BlockDataOptionsChecks.Validate(options, 1, nameof(ClmBatchSource));
        if (evalData is not null && options.EvalFraction > 0)
        {
            throw new ArgumentException("ClmBatchSource: give either separate eval data or an EvalFraction, not both.", nameof(evalData));
        }

        EosId = EosOf(data);
        _train = new TokenBlocks(data, options.BlockSize, EosId);
        _eval = evalData is null ? _train : new TokenBlocks(evalData, options.BlockSize, EosOf(evalData));
        var train = _train;
        _plan = new BlockPlan(_train.BlockCount, evalData is null ? null : _eval.BlockCount, options.Global, trainBlocks =>
            $"The data has {train.StreamLength} tokens (with an EOS after each of its {data.DocumentCount} documents), {train.BlockCount} blocks of {options.BlockSize}"
            + (trainBlocks < train.BlockCount ? $", {trainBlocks} left after holding out {train.BlockCount - trainBlocks} for evaluation" : "")
            + $"; one batch needs {options.BatchSize} blocks = {(long)options.BatchSize * options.BlockSize} tokens. Use more text, a smaller BlockSize or BatchSize, or a smaller EvalFraction.");
        _blocks = new int[options.Global.BatchSize];
        _shard = (options.ShardIndex, options.ShardCount, options.BatchSize);
        BlockSize = options.BlockSize;
    }

    /// <summary>The EOS id put after every document.</summary>
    public int EosId { get; }

    /// <summary>T.</summary>
    public int BlockSize { get; }

    /// <inheritdoc/>
    public long BatchesPerEpoch => _plan.BatchesPerEpoch;

    /// <summary>Blocks trained on.</summary>
    public int TrainBlockCount => _plan.TrainBlockCount;

    /// <summary>Blocks evaluated on.</summary>
    public int EvalBlockCount => _plan.EvalBlocks.Count;

    /// <summary>Number of batches <see cref="EvalBatches"/> yields.</summary>
    public long EvalBatchCount => _plan.EvalBatchCount;

    /// <inheritdoc/>
    public DataPosition Position
    {
        get => _position;
        set
        {
            _plan.Validate(value);
            _position = value;
        }
    }

    /// <inheritdoc/>
    public TrainingBatch Next()
    {
        _plan.TrainBlocks(_position, _blocks);
        _position = _plan.Advance(_position);
        return MakeBatch(_train, _blocks.AsSpan(_shard.Index * _shard.Rows, _shard.Rows));
    }

    /// <summary>Every eval block once, in ascending block order, <see cref="BlockDataOptions.EvalBatchSize"/> at a time.</summary>
    public IEnumerable<TrainingBatch> EvalBatches()
    {
        for (long b = 0; b < _plan.EvalBatchCount; b++)
        {
            yield return MakeBatch(_eval, _plan.EvalBatch(b).ToArray());
        }
    }

    private TrainingBatch MakeBatch(TokenBlocks blocks, ReadOnlySpan<int> which)
    {
        var ids = new int[which.Length * BlockSize];
        for (var b = 0; b < which.Length; b++)
        {
            blocks.Copy(which[b], ids.AsSpan(b * BlockSize, BlockSize));
        }

        var shape = new Shape(which.Length, BlockSize);
        return new TrainingBatch(Tensor.FromArray(ids, shape), Tensor.FromArray((int[])ids.Clone(), shape));
    }

    private static int EosOf(TokenCache cache) =>
        cache.Tokenizer.SpecialTokens.Eos is { } eos && cache.Tokenizer.TokenToId(eos) is { } id
            ? id
            : throw new ArgumentException("ClmBatchSource: the tokenizer has no eos_token (or it is not in the vocabulary); causal-LM data puts EOS after every document. Set eos_token in tokenizer_config.json.", nameof(cache));
}
