using Sharpformer.IO.Config;
using Sharpformer.Models;
using Sharpformer.Tensors;
using Sharpformer.Training.Data;

namespace Sharpformer.Training;

/// <summary>What <see cref="LanguageModelEvaluation.Run"/> measures on held-out text.</summary>
public sealed record LanguageModelEvaluationOptions
{
    /// <summary>Next-token (clm) or masked-token (mlm) prediction.</summary>
    public required LanguageModelingObjective Objective { get; init; }

    /// <summary>A local model folder (config.json, model.safetensors and the tokenizer files).</summary>
    public required string ModelFolder { get; init; }

    /// <summary>The held-out text: a .txt file, a folder of .txt files, or a .jsonl file with a "text" field.</summary>
    public required string Data { get; init; }

    /// <summary>
    /// Text whose token frequencies make the unigram baseline (normally the training data), or null for no baseline.
    /// </summary>
    public string? BaselineData { get; init; }

    /// <summary>Tokens per sequence (default: min(1024, positions) for clm, min(512, positions) for mlm, as train).</summary>
    public int? BlockSize { get; init; }

    /// <summary>Sequences per batch. The loss is a mean over tokens, so for clm this changes only speed and memory; mlm draws its masks per batch, so seed and batch size together fix the scored tokens.</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>The seed of the masks (mlm): the same seed and batch size score the same tokens.</summary>
    public int Seed { get; init; } = 42;

    /// <summary>mlm: probability of choosing a token.</summary>
    public double MaskProbability { get; init; } = 0.15;

    /// <summary>mlm: how sequences are cut (as in training).</summary>
    public MlmLayout MlmLayout { get; init; } = MlmLayout.Lines;

    /// <summary>Where tokenized corpora are cached (default ~/.cache/sharpformer/token-cache).</summary>
    public string? CacheFolder { get; init; }
}

/// <summary>
/// The held-out cross-entropy of a language model, in nats per scored token, and the same for a unigram model of the
/// baseline text's token frequencies (add-one smoothed over the vocabulary) on exactly the same tokens.
/// </summary>
/// <param name="Objective">clm or mlm.</param>
/// <param name="ScoredTokens">Tokens scored: every next token (clm) or every chosen token (mlm).</param>
/// <param name="Loss">The model's mean cross-entropy over the scored tokens.</param>
/// <param name="UnigramLoss">The unigram baseline's, or null without baseline data.</param>
public sealed record LanguageModelEvaluationResult(LanguageModelingObjective Objective, long ScoredTokens, double Loss, double? UnigramLoss)
{
    /// <summary>exp(<see cref="Loss"/>).</summary>
    public double Perplexity => Math.Exp(Loss);

    /// <summary>exp(<see cref="UnigramLoss"/>), or null.</summary>
    public double? UnigramPerplexity => UnigramLoss is { } u ? Math.Exp(u) : null;
}

/// <summary>
/// <c>sharpformer evaluate clm|mlm</c>: held-out loss and perplexity of a trained language model, beside a unigram
/// baseline — the number that says whether a model learned more than word frequencies.
/// </summary>
public static class LanguageModelEvaluation
{
    /// <summary>Scores the held-out text with the model and, when asked, with the unigram baseline.</summary>
    /// <param name="options">What to measure.</param>
    /// <param name="tokenizing">Progress while corpora are tokenized, or null.</param>
    /// <param name="batches">Called after each batch with (done, total), or null.</param>
    /// <param name="cancellationToken">Stops between batches.</param>
    /// <returns>The losses.</returns>
    /// <exception cref="ArgumentException">The folder, data or block size is unusable (the message says how to fix it).</exception>
    public static LanguageModelEvaluationResult Run(LanguageModelEvaluationOptions options, IProgress<CorpusProgress>? tokenizing = null, Action<long, long>? batches = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!File.Exists(Path.Combine(options.ModelFolder, "config.json")))
        {
            throw new ArgumentException($"{options.ModelFolder}: no config.json; pass a model folder (config.json, model.safetensors and the tokenizer files).");
        }

        if (options.BatchSize < 1) throw new ArgumentException($"the batch size must be at least 1 (got {options.BatchSize}).");
        var config = ModelConfig.Load(options.ModelFolder);
        int positions = config.MaxPositionEmbeddings;
        int blockSize = options.BlockSize ?? Math.Min(options.Objective == LanguageModelingObjective.CausalLM ? 1024 : 512, positions);
        if (blockSize < 2 || blockSize > positions)
        {
            throw new ArgumentException($"--block-size {blockSize} is outside [2, {positions}] (the model's positions); use --block-size {Math.Min(positions, 128)}.");
        }

        string cacheFolder = options.CacheFolder ?? TokenCache.DefaultDirectory;
        using var data = TokenCache.Open(Corpus.FromPath(options.Data), options.ModelFolder, cacheFolder, tokenizing, cancellationToken);
        double[]? logUnigram = null;
        if (options.BaselineData is not null)
        {
            using var baseline = TokenCache.Open(Corpus.FromPath(options.BaselineData), options.ModelFolder, cacheFolder, tokenizing, cancellationToken);
            logUnigram = UnigramLogProbabilities(baseline, config.VocabSize);
        }

        var model = LanguageModelRun.Load(options.Objective, options.ModelFolder);
        var task = model as ILanguageModel
            ?? throw new ArgumentException($"{options.ModelFolder}: model_type '{config.ModelType}' has no {options.Objective} loss here.");

        var (source, count) = EvalBatches(options, data, blockSize);
        model.Eval();
        double lossSum = 0, baselineSum = 0;
        long scored = 0, done = 0;
        using (Autograd.NoGrad())
        {
            foreach (var batch in source())
            {
                cancellationToken.ThrowIfCancellationRequested();
                var labels = batch.Labels.ToArray<int>();
                int t = batch.Labels.Shape[1];
                long n = 0;
                double baselineBatch = 0;
                for (int i = 0; i < labels.Length; i++)
                {
                    // A causal LM scores labels[b, t] from position t − 1: the first column of each row is never a target.
                    bool target = labels[i] != -100 && (options.Objective == LanguageModelingObjective.MaskedLM || i % t != 0);
                    if (!target) continue;
                    n++;
                    if (logUnigram is not null) baselineBatch -= logUnigram[labels[i]];
                }

                if (n == 0) continue;
                double mean = task.LanguageModelingLoss(batch.InputIds, batch.AttentionMask, batch.Labels).ToArray()[0];
                lossSum += mean * n;
                baselineSum += baselineBatch;
                scored += n;
                batches?.Invoke(++done, count);
            }
        }

        if (scored == 0)
        {
            throw new ArgumentException($"{options.Data}: no token was scored (the text is empty or shorter than one block); give more held-out text.");
        }

        return new LanguageModelEvaluationResult(options.Objective, scored, lossSum / scored, logUnigram is null ? null : baselineSum / scored);
    }

    /// <summary>log p(token) of the add-one smoothed unigram model of every token in <paramref name="cache"/>.</summary>
    /// <param name="cache">The baseline text's tokens.</param>
    /// <param name="vocabSize">V: every id in [0, V) gets a count of at least one.</param>
    /// <returns>[V] natural-log probabilities.</returns>
    public static double[] UnigramLogProbabilities(TokenCache cache, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(cache);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(vocabSize);
        var counts = new long[vocabSize];
        var chunk = new int[1 << 16];
        for (long start = 0; start < cache.TokenCount; start += chunk.Length)
        {
            int length = (int)Math.Min(chunk.Length, cache.TokenCount - start);
            cache.CopyTokens(start, chunk.AsSpan(0, length));
            foreach (int id in chunk.AsSpan(0, length))
            {
                if ((uint)id < (uint)vocabSize) counts[id]++;
            }
        }

        double total = cache.TokenCount + (double)vocabSize;
        var log = new double[vocabSize];
        for (int v = 0; v < vocabSize; v++) log[v] = Math.Log((counts[v] + 1) / total);
        return log;
    }

    private static (Func<IEnumerable<TrainingBatch>> Batches, long Count) EvalBatches(LanguageModelEvaluationOptions options, TokenCache data, int blockSize)
    {
        // The held-out cache is given as the batch sources' eval data: the blocks training evaluates on, cut the same way.
        // (The sources also plan training batches over their first argument; one sequence per batch keeps that plan
        // valid for any amount of held-out text.)
        if (options.Objective == LanguageModelingObjective.CausalLM)
        {
            var clm = new ClmBatchSource(data, new BlockDataOptions { BlockSize = blockSize, BatchSize = 1, EvalBatchSize = options.BatchSize, Seed = options.Seed }, data);
            return (clm.EvalBatches, clm.EvalBatchCount);
        }

        var mlm = new MlmBatchSource(data, new MlmDataOptions
        {
            BlockSize = blockSize,
            BatchSize = 1,
            EvalBatchSize = options.BatchSize,
            Seed = options.Seed,
            MaskProbability = options.MaskProbability,
            Layout = options.MlmLayout,
        }, data);
        return (mlm.EvalBatches, mlm.EvalBatchCount);
    }
}
