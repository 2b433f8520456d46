namespace Sharpformer.Training.Data;

/// <summary>A token stream cut into blocks of one length: the cache's ids, with EOS after every document when asked.</summary>
internal sealed class TokenBlocks
{
    private readonly TokenCache _cache;
    private readonly int? _eos;

    /// <summary>Blocks of <paramref name="blockLength"/> ids of <paramref name="cache"/>; <paramref name="eos"/> after each document if set.</summary>
    public TokenBlocks(TokenCache cache, int blockLength, int? eos)
    {
        _cache = cache;
        _eos = eos;
        BlockLength = blockLength;
        StreamLength = cache.TokenCount + (eos is null ? 0 : cache.DocumentCount);
        BlockCount = StreamLength / blockLength;
    }

    /// <summary>Ids per block.</summary>
    public int BlockLength { get; }

    /// <summary>Ids in the stream (documents plus the EOS after each).</summary>
    public long StreamLength { get; }

    /// <summary>Whole blocks in the stream (a partial last block is dropped).</summary>
    public long BlockCount { get; }

    /// <summary>Copies block <paramref name="block"/> (stream ids [block·L, (block+1)·L)) into <paramref name="destination"/>.</summary>
    public void Copy(long block, Span<int> destination)
    {
        System.Diagnostics.Debug.Assert(destination.Length == BlockLength && block >= 0 && block < BlockCount);
        var position = block * BlockLength;
        if (_eos is not { } eos)
        {
            _cache.CopyTokens(position, destination);
            return;
        }

        // Document d occupies stream positions [start_d + d, end_d + d) and its EOS sits at end_d + d.
        var ends = _cache.DocumentEnds;
        var d = FirstDocumentEndingAfter(ends, position);
        var written = 0;
        while (written < destination.Length)
        {
            var eosAt = ends[d] + d;
            if (position < eosAt)
            {
                var n = (int)Math.Min(eosAt - position, destination.Length - written);
                _cache.CopyTokens(position - d, destination.Slice(written, n));
                written += n;
                position += n;
            }
            else
            {
                destination[written++] = eos;
                position++;
                d++;
            }
        }
    }

    /// <summary>The first document d whose EOS (at stream position ends[d] + d) is at or after <paramref name="position"/>.</summary>
    private static int FirstDocumentEndingAfter(ReadOnlySpan<long> ends, long position)
    {
        var lo = 0;
        var hi = ends.Length - 1;
        while (lo < hi)
        {
            var mid = lo + ((hi - lo) / 2);
            if (ends[mid] + mid >= position)
            {
                hi = mid;
            }
            else
            {
                lo = mid + 1;
            }
        }

        return lo;
    }
}

/// <summary>
/// Which blocks make which batch: the held-out eval blocks, and for each (epoch, batch) the training blocks, from
/// the seed alone, so any position can be recomputed on resume.
/// </summary>
internal sealed class BlockPlan
{
    private readonly int[] _train;
    private readonly int[] _eval;
    private readonly bool _shuffle;
    private readonly long _seed;
    private int _permutationEpoch = -1;
    private int[] _permutation = [];

    /// <summary>Plans <paramref name="blocks"/> (and optionally a separate eval stream of <paramref name="separateEvalBlocks"/> blocks).</summary>
    /// <param name="blocks">The training stream's blocks.</param>
    /// <param name="separateEvalBlocks">Blocks of separate eval data, or null to hold out <see cref="BlockDataOptions.EvalFraction"/>.</param>
    /// <param name="options">Batch size, seed, shuffle, eval split.</param>
    /// <param name="tooSmall">The error message when the training blocks do not fill one batch.</param>
    public BlockPlan(long blocks, long? separateEvalBlocks, BlockDataOptions options, Func<long, string> tooSmall)
    {
        if (blocks > Array.MaxLength)
        {
            throw new ArgumentException($"The data has {blocks} blocks, more than this planner can index ({Array.MaxLength}); use a larger block size.", nameof(options));
        }

        _shuffle = options.Shuffle;
        _seed = options.Seed;
        BatchSize = options.BatchSize;
        EvalBatchSize = options.EvalBatchSize ?? options.BatchSize;
        var all = new int[blocks];
        for (var i = 0; i < all.Length; i++)
        {
            all[i] = i;
        }

        if (separateEvalBlocks is { } evalBlocks)
        {
            if (evalBlocks > Array.MaxLength)
            {
                throw new ArgumentException($"The eval data has {evalBlocks} blocks, more than this planner can index; use a larger block size.", nameof(options));
            }

            _train = all;
            _eval = new int[evalBlocks];
            for (var i = 0; i < _eval.Length; i++)
            {
                _eval[i] = i;
            }
        }
        else if (options.EvalFraction > 0)
        {
            // HF's train_test_split rounds the test share up; the choice is a seeded permutation's first blocks.
            var evalCount = (int)Math.Min(all.Length, Math.Ceiling(options.EvalFraction * all.Length));
            var random = DataRandom.For(_seed, DataRandom.SplitStream, 0, 0);
            random.Shuffle(all.AsSpan());
            _eval = all[..evalCount];
            _train = all[evalCount..];
            Array.Sort(_eval);
            Array.Sort(_train);
        }
        else
        {
            _train = all;
            _eval = [];
        }

        if (_train.Length < BatchSize)
        {
            throw new ArgumentException(tooSmall(_train.Length), nameof(options));
        }

        BatchesPerEpoch = _train.Length / BatchSize;
    }

    /// <summary>B of training batches.</summary>
    public int BatchSize { get; }

    /// <summary>B of eval batches (the last may be smaller).</summary>
    public int EvalBatchSize { get; }

    /// <summary>Full training batches per epoch.</summary>
    public long BatchesPerEpoch { get; }

    /// <summary>Blocks trained on.</summary>
    public int TrainBlockCount => _train.Length;

    /// <summary>Blocks held out (or of the separate eval data), in ascending order.</summary>
    public IReadOnlyList<int> EvalBlocks => _eval;

    /// <summary>Number of eval batches.</summary>
    public long EvalBatchCount => (_eval.Length + EvalBatchSize - 1) / EvalBatchSize;

    /// <summary>Checks a position given to a source's setter.</summary>
    public void Validate(DataPosition position)
    {
        if (position.Epoch < 0 || position.Batch < 0 || position.Batch >= BatchesPerEpoch)
        {
            throw new ArgumentOutOfRangeException(nameof(position), $"Data position {position} is outside the data: epoch must be ≥ 0 and batch in [0, {BatchesPerEpoch}); restore a position this source (same data and options) produced.");
        }
    }

    /// <summary>The position after <paramref name="position"/>.</summary>
    public DataPosition Advance(DataPosition position) =>
        position.Batch + 1 < BatchesPerEpoch ? position with { Batch = position.Batch + 1 } : new DataPosition(position.Epoch + 1, 0);

    /// <summary>Fills <paramref name="blocks"/> (length B) with the training blocks of the batch at <paramref name="position"/>.</summary>
    public void TrainBlocks(DataPosition position, Span<int> blocks)
    {
        System.Diagnostics.Debug.Assert(blocks.Length == BatchSize);
        if (_shuffle)
        {
            var permutation = Permutation(position.Epoch);
            for (var j = 0; j < blocks.Length; j++)
            {
                blocks[j] = _train[permutation[(position.Batch * BatchSize) + j]];
            }

            return;
        }

        // In order, continuing across epochs: global batch g starts at block g·B (mod the block count).
        var n = _train.Length;
        var global = ((long)position.Epoch * BatchesPerEpoch) + position.Batch;
        var start = (global % n) * BatchSize % n;
        for (var j = 0; j < blocks.Length; j++)
        {
            blocks[j] = _train[(start + j) % n];
        }
    }

    /// <summary>The eval blocks of eval batch <paramref name="batch"/>.</summary>
    public ReadOnlySpan<int> EvalBatch(long batch)
    {
        var start = (int)(batch * EvalBatchSize);
        return _eval.AsSpan(start, Math.Min(EvalBatchSize, _eval.Length - start));
    }

    /// <summary>Epoch <paramref name="epoch"/>'s order of the training blocks (Fisher–Yates from (seed, epoch)); the last one is kept.</summary>
    private int[] Permutation(int epoch)
    {
        if (_permutationEpoch != epoch)
        {
            var permutation = new int[_train.Length];
            for (var i = 0; i < permutation.Length; i++)
            {
                permutation[i] = i;
            }

            var random = DataRandom.For(_seed, DataRandom.ShuffleStream, epoch, 0);
            random.Shuffle(permutation.AsSpan());
            _permutation = permutation;
            _permutationEpoch = epoch;
        }

        return _permutation;
    }
}
