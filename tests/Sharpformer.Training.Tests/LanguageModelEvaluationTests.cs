using Sharpformer.Models;
using Sharpformer.Tensors;
using Sharpformer.Training.Data;
using Sharpformer.Training.Tests.Reference;

namespace Sharpformer.Training.Tests;

/// <summary>
/// <see cref="LanguageModelEvaluation"/>: the held-out loss is a mean over scored tokens (so the batch size changes
/// nothing), equal to the model's own loss summed batch by batch, and the unigram baseline is the add-one smoothed
/// frequency model computed by hand from the tokens.
/// </summary>
public sealed class LanguageModelEvaluationTests : IDisposable
{
    private readonly string _cache = Path.Combine(Path.GetTempPath(), "sf-eval-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_cache)) Directory.Delete(_cache, recursive: true);
    }

    private LanguageModelEvaluationOptions Clm(ReferenceFixture fixture, int batchSize) => new()
    {
        Objective = LanguageModelingObjective.CausalLM,
        ModelFolder = fixture.Folder,
        Data = fixture.CorpusPath,
        BaselineData = fixture.CorpusPath,
        BlockSize = 16,
        BatchSize = batchSize,
        CacheFolder = _cache,
    };

    [Fact]
    public void Clm_LossIsATokenMean_IndependentOfBatchSize_AndEqualsTheModelsLossBatchByBatch()
    {
        var fixture = ReferenceFixture.Load("train_gpt2");
        var one = LanguageModelEvaluation.Run(Clm(fixture, 1));
        var three = LanguageModelEvaluation.Run(Clm(fixture, 3));
        Assert.Equal(one.ScoredTokens, three.ScoredTokens);
        Assert.Equal(one.Loss, three.Loss, 5);
        Assert.Equal(one.UnigramLoss!.Value, three.UnigramLoss!.Value, 9);

        // By hand: every block of 16 tokens scores its 15 next tokens; the model's mean loss of each one-block batch.
        var model = AutoModelForCausalLM.FromPretrained(fixture.Folder);
        ((Sharpformer.NN.Module)model).Eval();
        using var cache = TokenCache.Open(Corpus.FromPath(fixture.CorpusPath), fixture.Folder, _cache);
        var source = new ClmBatchSource(cache, new BlockDataOptions { BlockSize = 16, BatchSize = 1 }, cache);
        double sum = 0;
        long tokens = 0;
        using (Autograd.NoGrad())
        {
            foreach (var batch in source.EvalBatches())
            {
                sum += ((ILanguageModel)model).LanguageModelingLoss(batch.InputIds, batch.AttentionMask, batch.Labels).ToArray()[0] * 15;
                tokens += 15;
            }
        }

        Assert.Equal(tokens, one.ScoredTokens);
        Assert.Equal(sum / tokens, one.Loss, 5);
        Assert.Equal(Math.Exp(one.Loss), one.Perplexity, 9);
    }

    [Fact]
    public void UnigramBaseline_IsAddOneSmoothedFrequencies_OverTheScoredTokens()
    {
        var fixture = ReferenceFixture.Load("train_gpt2");
        using var cache = TokenCache.Open(Corpus.FromPath(fixture.CorpusPath), fixture.Folder, _cache);
        var ids = new int[cache.TokenCount];
        cache.CopyTokens(0, ids);
        int vocab = cache.VocabularySize + 7; // ids the text never uses still get a count of one
        var log = LanguageModelEvaluation.UnigramLogProbabilities(cache, vocab);
        Assert.Equal(vocab, log.Length);
        int first = ids[0];
        long count = ids.LongCount(i => i == first);
        Assert.Equal(Math.Log((count + 1.0) / (ids.Length + vocab)), log[first], 12);
        Assert.Equal(Math.Log(1.0 / (ids.Length + vocab)), log[vocab - 1], 12);
        Assert.Equal(1.0, log.Sum(Math.Exp), 9);

        // The evaluation's baseline: the same log-probabilities averaged over the scored (next) tokens of each block.
        var result = LanguageModelEvaluation.Run(Clm(fixture, 2) with { BatchSize = 2 });
        var source = new ClmBatchSource(cache, new BlockDataOptions { BlockSize = 16, BatchSize = 1 }, cache);
        var logModel = LanguageModelEvaluation.UnigramLogProbabilities(cache, AutoModelForCausalLM.FromPretrained(fixture.Folder).VocabSize);
        double sum = 0;
        long n = 0;
        foreach (var batch in source.EvalBatches())
        {
            var labels = batch.Labels.ToArray<int>();
            for (int t = 1; t < labels.Length; t++)
            {
                sum -= logModel[labels[t]];
                n++;
            }
        }

        Assert.Equal(sum / n, result.UnigramLoss!.Value, 9);
    }

    [Fact]
    public void Mlm_ScoresTheSeededMaskedTokens_TheSameOnEveryRun()
    {
        var fixture = ReferenceFixture.Load("train_bert");
        string corpus = Path.Combine(_cache, "corpus.txt");
        Directory.CreateDirectory(_cache);
        File.WriteAllLines(corpus, fixture.Batches.SelectMany(b => b.Texts).Select(t => t.Replace("[MASK]", "the", StringComparison.Ordinal)));
        var options = new LanguageModelEvaluationOptions
        {
            Objective = LanguageModelingObjective.MaskedLM,
            ModelFolder = fixture.Folder,
            Data = corpus,
            BaselineData = corpus,
            BlockSize = 16,
            MaskProbability = 0.3,
            CacheFolder = _cache,
        };
        // The masks are drawn per evaluation batch from the seed (as training's evaluations): same seed and batch size,
        // same tokens.
        var a = LanguageModelEvaluation.Run(options);
        var b = LanguageModelEvaluation.Run(options);
        Assert.True(a.ScoredTokens > 0);
        Assert.Equal(a.ScoredTokens, b.ScoredTokens);
        Assert.Equal(a.Loss, b.Loss, 9);
        Assert.True(a.UnigramLoss > 0);
        var other = LanguageModelEvaluation.Run(options with { Seed = 7 });
        Assert.NotEqual(a.Loss, other.Loss);
    }

    [Fact]
    public void BadInput_NamesTheProblem()
    {
        var fixture = ReferenceFixture.Load("train_gpt2");
        var e = Assert.Throws<ArgumentException>(() => LanguageModelEvaluation.Run(Clm(fixture, 1) with { ModelFolder = _cache }));
        Assert.Contains("no config.json", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => LanguageModelEvaluation.Run(Clm(fixture, 1) with { BlockSize = 100_000 }));
        Assert.Contains("--block-size", e.Message, StringComparison.Ordinal);
    }
}
