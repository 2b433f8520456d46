using Sharpformer.Tensors;
using Sharpformer.Text;

namespace Sharpformer.Training.Data;

/// <summary>
/// Masked-LM batches. With <see cref="MlmLayout.Lines"/> (the default) each sequence is [CLS] + consecutive whole lines
/// of one document, as many as fit in T − 2 tokens, + [SEP], right-padded with [PAD] to T; the batch carries an
/// attention mask (1 = token, 0 = padding) and labels −100 on padding (see <see cref="MlmLayout.Lines"/> for long
/// lines and document ends). With <see cref="MlmLayout.Grouped"/>, as HF's run_mlm groups texts: the documents' tokens
/// concatenated and cut into blocks of T − 2 tokens (a partial last block is dropped), each wrapped as [CLS] … [SEP],
/// so every sequence is full and there is no attention mask. Then masked by <see cref="MlmDataOptions.MaskProbability"/>
/// like HF's DataCollatorForLanguageModeling (or DataCollatorForWholeWordMask) over the [CLS] … [SEP] part only, so
/// padding is never chosen (nor, with whole-word masking, counted in the budget: HF counts padding there). Special
/// tokens (all of the tokenizer's named ones, as HF's get_special_tokens_mask) are never chosen. The masks of a
/// training batch come from (seed, epoch, batch index), so a resumed run sees the same masks; eval masks are fixed per
/// eval batch. Shuffling, the eval split and batching work over sequences as over blocks.
/// </summary>
public sealed class MlmBatchSource : IBatchSource
{
    private readonly TokenBlocks? _trainBlocks;
    private readonly TokenBlocks? _evalBlocks;
    private readonly LineSequences? _trainLines;
    private readonly LineSequences? _evalLines;
    private readonly BlockPlan _plan;
    private readonly (int Index, int Count, int Rows) _shard;
    private readonly MlmMasker _masker;
    private readonly long _seed;
    private readonly int[] _blocks;
    private DataPosition _position;

    /// <summary>Plans batches over <paramref name="data"/>; evaluation uses <paramref name="evalData"/> if given, else a held-out <see cref="BlockDataOptions.EvalFraction"/>.</summary>
    /// <exception cref="ArgumentException">The tokenizer lacks [CLS], [SEP] or [MASK] (or [PAD] for the Lines layout), whole-word masking is asked of a tokenizer without "##" pieces, options are out of range, or the data does not fill one batch.</exception>
    public MlmBatchSource(TokenCache data, MlmDataOptions options, TokenCache? evalData = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        BlockDataOptionsChecks.Validate(options, 3, nameof(MlmBatchSource));
        if (!Enum.IsDefined(options.Layout))
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.Layout, "MlmBatchSource: Layout must be MlmLayout.Lines or MlmLayout.Grouped.");
        }

        if (!(options.MaskProbability > 0 && options.MaskProbability <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaskProbability, "MlmBatchSource: MaskProbability must be in (0, 1]; HF's default is 0.15.");
        }

        if (evalData is not null && options.EvalFraction > 0)
        {
            throw new ArgumentException("MlmBatchSource: give either separate eval data or an EvalFraction, not both.", nameof(evalData));
        }

        if (evalData is not null && evalData.VocabularySize != data.VocabularySize)
        {
            throw new ArgumentException($"MlmBatchSource: the eval data's vocabulary ({evalData.VocabularySize}) differs from the training data's ({data.VocabularySize}); tokenize both with the same tokenizer.", nameof(evalData));
        }

        var tokenizer = data.Tokenizer;
        ClsId = Require(tokenizer, tokenizer.SpecialTokens.Cls, "cls_token");
        SepId = Require(tokenizer, tokenizer.SpecialTokens.Sep, "sep_token");
        MaskId = Require(tokenizer, tokenizer.SpecialTokens.Mask, "mask_token");
        Layout = options.Layout;
        PadId = Layout == MlmLayout.Lines ? Require(tokenizer, tokenizer.SpecialTokens.Pad, "pad_token") : null;
        var vocabularySize = data.VocabularySize;
        var special = new bool[vocabularySize];
        foreach (var id in SpecialIds(tokenizer))
        {
            special[id] = true;
        }

        bool[]? continuation = null;
        if (options.WholeWordMask)
        {
            continuation = new bool[vocabularySize];
            var any = false;
            for (var id = 0; id < vocabularySize; id++)
            {
                continuation[id] = tokenizer.IdToToken(id) is { } token && token.StartsWith("##", StringComparison.Ordinal);
                any |= continuation[id];
            }

            if (!any)
            {
                throw new ArgumentException("MlmBatchSource: whole-word masking needs a WordPiece vocabulary (words continue with \"##\" tokens), and this tokenizer has none; turn WholeWordMask off.", nameof(options));
            }
        }

        _masker = new MlmMasker(special, continuation, ClsId, SepId, MaskId, vocabularySize, options.MaskProbability);
        _seed = options.Seed;
        BlockSize = options.BlockSize;
        if (Layout == MlmLayout.Grouped)
        {
            var train = new TokenBlocks(data, BlockSize - 2, eos: null);
            _trainBlocks = train;
            _evalBlocks = evalData is null ? train : new TokenBlocks(evalData, BlockSize - 2, eos: null);
            _plan = new BlockPlan(train.BlockCount, evalData is null ? null : _evalBlocks.BlockCount, options.Global, trainBlocks =>
                $"The data has {train.StreamLength} tokens, {train.BlockCount} blocks of {BlockSize - 2} (BlockSize {BlockSize} less [CLS] and [SEP])"
                + (trainBlocks < train.BlockCount ? $", {trainBlocks} left after holding out {train.BlockCount - trainBlocks} for evaluation" : "")
                + $"; one batch needs {options.BatchSize} blocks = {(long)options.BatchSize * (BlockSize - 2)} tokens. Use more text, a smaller BlockSize or BatchSize, or a smaller EvalFraction.");
        }
        else
        {
            var train = new LineSequences(data, BlockSize - 2);
            _trainLines = train;
            _evalLines = evalData is null ? train : new LineSequences(evalData, BlockSize - 2);
            _plan = new BlockPlan(train.Count, evalData is null ? null : _evalLines.Count, options.Global, trainSequences =>
                $"The data has {train.TokenCount} tokens in {data.LineCount} lines, packed into {train.Count} sequences of at most {BlockSize - 2} tokens (BlockSize {BlockSize} less [CLS] and [SEP])"
                + (trainSequences < train.Count ? $", {trainSequences} left after holding out {train.Count - trainSequences} for evaluation" : "")
                + $"; one batch needs {options.BatchSize} sequences. Use more text, a smaller BatchSize or a smaller EvalFraction (or MlmLayout.Grouped, which cuts the stream without regard to lines).");
        }

        _blocks = new int[options.Global.BatchSize];
        _shard = (options.ShardIndex, options.ShardCount, options.BatchSize);
    }

    /// <summary>[CLS] id.</summary>
    public int ClsId { get; }

    /// <summary>[SEP] id.</summary>
    public int SepId { get; }

    /// <summary>[MASK] id.</summary>
    public int MaskId { get; }

    /// <summary>[PAD] id for the <see cref="MlmLayout.Lines"/> layout; null for <see cref="MlmLayout.Grouped"/>, which never pads.</summary>
    public int? PadId { get; }

    /// <summary>How sequences are cut.</summary>
    public MlmLayout Layout { get; }

    /// <summary>T, [CLS] and [SEP] included.</summary>
    public int BlockSize { get; }

    /// <inheritdoc/>
    public long BatchesPerEpoch => _plan.BatchesPerEpoch;

    /// <summary>Sequences (blocks for <see cref="MlmLayout.Grouped"/>) trained on.</summary>
    public int TrainBlockCount => _plan.TrainBlockCount;

    /// <summary>Sequences (blocks for <see cref="MlmLayout.Grouped"/>) evaluated on.</summary>
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
        var random = DataRandom.For(_seed, DataRandom.TrainMaskStream, _position.Epoch, _position.Batch);
        _position = _plan.Advance(_position);
        // The whole group's batch (its masks drawn in one sequence, as one process would), then this shard's rows.
        var batch = MakeBatch(train: true, _blocks, ref random);
        return _shard.Count == 1 ? batch : batch.Rows(_shard.Index * _shard.Rows, _shard.Rows);
    }

    /// <summary>Every eval sequence (or block) once, in ascending order, masked the same way on every call.</summary>
    public IEnumerable<TrainingBatch> EvalBatches()
    {
        for (long b = 0; b < _plan.EvalBatchCount; b++)
        {
            var random = DataRandom.For(_seed, DataRandom.EvalMaskStream, 0, b);
            yield return MakeBatch(train: false, _plan.EvalBatch(b).ToArray(), ref random);
        }
    }

    private TrainingBatch MakeBatch(bool train, ReadOnlySpan<int> which, ref DataRandom random)
    {
        var t = BlockSize;
        var ids = new int[which.Length * t];
        var labels = new int[which.Length * t];
        var shape = new Shape(which.Length, t);
        if (Layout == MlmLayout.Grouped)
        {
            var blocks = train ? _trainBlocks! : _evalBlocks!;
            for (var b = 0; b < which.Length; b++)
            {
                var row = ids.AsSpan(b * t, t);
                row[0] = ClsId;
                blocks.Copy(which[b], row[1..^1]);
                row[^1] = SepId;
                _masker.Apply(row, labels.AsSpan(b * t, t), ref random);
            }

            return new TrainingBatch(Tensor.FromArray(ids, shape), Tensor.FromArray(labels, shape));
        }

        // Lines: [CLS] content [SEP] then [PAD]s; only the first n + 2 positions are tokens, and only they are masked.
        var sequences = train ? _trainLines! : _evalLines!;
        var attention = new int[which.Length * t];
        for (var b = 0; b < which.Length; b++)
        {
            var row = ids.AsSpan(b * t, t);
            row[0] = ClsId;
            var n = sequences.Copy(which[b], row[1..^1]);
            row[n + 1] = SepId;
            row[(n + 2)..].Fill(PadId!.Value);
            attention.AsSpan(b * t, n + 2).Fill(1);
            var rowLabels = labels.AsSpan(b * t, t);
            _masker.Apply(row[..(n + 2)], rowLabels[..(n + 2)], ref random);
            rowLabels[(n + 2)..].Fill(MlmMasker.Ignore);
        }

        return new TrainingBatch(Tensor.FromArray(ids, shape), Tensor.FromArray(labels, shape), Tensor.FromArray(attention, shape));
    }

    private static IEnumerable<int> SpecialIds(TextTokenizer tokenizer)
    {
        foreach (var token in tokenizer.SpecialTokens.All())
        {
            if (tokenizer.TokenToId(token) is { } id && id >= 0 && id < tokenizer.VocabularySize)
            {
                yield return id;
            }
        }

        foreach (var added in tokenizer.AddedTokens)
        {
            if (added.Special && added.Id >= 0 && added.Id < tokenizer.VocabularySize)
            {
                yield return added.Id;
            }
        }
    }

    private static int Require(TextTokenizer tokenizer, string? token, string name) =>
        token is not null && tokenizer.TokenToId(token) is { } id
            ? id
            : throw new ArgumentException($"MlmBatchSource: the tokenizer has no {name} (or it is not in the vocabulary); masked-LM data needs [CLS], [SEP] and [MASK], and [PAD] for the Lines layout (a BERT-style tokenizer).", nameof(tokenizer));
}
