using static Sharpformer.Pipelines.Tests.TestTokenizers;

namespace Sharpformer.Pipelines.Tests;

public class FillMaskPipelineTests
{
    // "The heart is a [MASK] organ." → [CLS] the heart is a [MASK] organ . [SEP]: the mask sits at position 5.
    private const string Seed = "The heart is a [MASK] organ.";
    private const int SeedMask = 5;

    private static float[] Logits(params (string Token, float Value)[] values)
    {
        var logits = new float[Vocab.Length];
        foreach (var (token, value) in values)
        {
            logits[Id(token)] = value;
        }

        return logits;
    }

    // The softmax in double, independently of the pipeline's float implementation.
    private static double Probability(float[] logits, string token)
    {
        var sum = logits.Sum(l => Math.Exp(l));
        return Math.Exp(logits[Id(token)]) / sum;
    }

    private static (FillMaskPipeline Pipeline, FakeMaskedLm Model, List<string> Warnings) Build(bool truncation = false)
    {
        var model = new FakeMaskedLm(Vocab.Length);
        var warnings = new List<string>();
        var options = new PipelineOptions { Warning = warnings.Add, Truncation = truncation };
        return (new FillMaskPipeline(Tiny, model, options), model, warnings);
    }

    [Fact]
    public void Run_SingleMask_ReturnsTopKByScoreWithHfSequences()
    {
        var (pipeline, model, _) = Build();
        var logits = Logits(("cardiac", 5), ("large", 4), ("major", 3), ("living", 2.5f), ("mechanical", 2), ("small", 1));
        model.LogitsAt[SeedMask] = logits;

        var results = Assert.Single(pipeline.Run(Seed));

        Assert.Equal(["cardiac", "large", "major", "living", "mechanical"], results.Select(r => r.TokenStr));
        Assert.Equal(new[] { "cardiac", "large", "major", "living", "mechanical" }.Select(Id), results.Select(r => r.Token));
        Assert.Equal("the heart is a cardiac organ.", results[0].Sequence);
        Assert.Equal("the heart is a mechanical organ.", results[4].Sequence);
        foreach (var r in results)
        {
            Assert.Equal(Probability(logits, r.TokenStr), r.Score, Tolerances.Rounding);
        }
    }

    [Fact]
    public void Run_TiedScores_LowerTokenIdFirst()
    {
        var (pipeline, model, _) = Build();
        model.LogitsAt[SeedMask] = Logits(("small", 3), ("large", 3), ("cardiac", 3), ("brain", 1));

        var results = Assert.Single(pipeline.Run(Seed, topK: 4));

        Assert.Equal(["cardiac", "large", "small", "brain"], results.Select(r => r.TokenStr));
    }

    [Fact]
    public void Run_TopKAboveVocabulary_ReturnsWholeVocabularySortedAndSumsToOne()
    {
        var (pipeline, model, _) = Build();
        model.LogitsAt[SeedMask] = Logits(("organ", 2), ("heart", 1));

        var results = Assert.Single(pipeline.Run(Seed, topK: 1000));

        Assert.Equal(Vocab.Length, results.Count);
        Assert.Equal(1.0, results.Sum(r => (double)r.Score), 1e-5);
        Assert.True(results.Zip(results.Skip(1)).All(p => p.First.Score >= p.Second.Score));
        Assert.Equal("organ", results[0].TokenStr);
        Assert.Equal("[PAD]", results[2].TokenStr);
    }

    [Fact]
    public void Run_Targets_OnlyTargetsScoredWithFullVocabularyProbabilities()
    {
        var (pipeline, model, warnings) = Build();
        var logits = Logits(("cardiac", 5), ("large", 4), ("small", 4.5f));
        model.LogitsAt[SeedMask] = logits;

        var results = Assert.Single(pipeline.Run(Seed, targets: ["large", "small"]));

        Assert.Equal(["small", "large"], results.Select(r => r.TokenStr));
        Assert.Equal(Probability(logits, "small"), results[0].Score, Tolerances.Rounding);
        Assert.Equal(Probability(logits, "large"), results[1].Score, Tolerances.Rounding);
        Assert.Empty(warnings);
    }

    [Fact]
    public void Run_TargetNotOneToken_UsesFirstSubwordAndWarns()
    {
        var (pipeline, model, warnings) = Build();
        model.LogitsAt[SeedMask] = Logits(("un", 1));

        var results = Assert.Single(pipeline.Run(Seed, targets: ["unreal", "large", "large"]));

        Assert.Equal(["un", "large"], results.Select(r => r.TokenStr));
        var warning = Assert.Single(warnings);
        Assert.Contains("`unreal`", warning, StringComparison.Ordinal);
        Assert.Contains("Replacing with `un`", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_NoUsableTarget_Throws()
    {
        var (pipeline, _, warnings) = Build();

        var error = Assert.Throws<ArgumentException>(() => pipeline.Run(Seed, targets: ["   "]));

        Assert.Contains("targets", error.Message, StringComparison.Ordinal);
        Assert.Contains("ignoring it", Assert.Single(warnings), StringComparison.Ordinal);
    }

    [Fact]
    public void Run_SeveralMasks_OneListPerMaskAndOtherMasksKeptInSequence()
    {
        var (pipeline, model, _) = Build();

        // [CLS] the [MASK] is a [MASK] organ . [SEP]: masks at 2 and 5.
        model.LogitsAt[2] = Logits(("brain", 4), ("heart", 3));
        model.LogitsAt[5] = Logits(("large", 4), ("small", 3));

        var results = pipeline.Run("The [MASK] is a [MASK] organ.", topK: 2);

        Assert.Equal(2, results.Count);
        Assert.Equal(["brain", "heart"], results[0].Select(r => r.TokenStr));
        Assert.Equal(["large", "small"], results[1].Select(r => r.TokenStr));

        // HF keeps special tokens when several masks are present, so the other mask stays visible.
        Assert.Equal("[CLS] the brain is a [MASK] organ. [SEP]", results[0][0].Sequence);
        Assert.Equal("[CLS] the [MASK] is a small organ. [SEP]", results[1][1].Sequence);
    }

    [Fact]
    public void Run_SpecialTokenCandidate_TokenStrShowsIt()
    {
        var (pipeline, model, _) = Build();
        model.LogitsAt[SeedMask] = Logits(("[SEP]", 9));

        var top = Assert.Single(pipeline.Run(Seed, topK: 1))[0];

        Assert.Equal("[SEP]", top.TokenStr);
        Assert.Equal("the heart is a organ.", top.Sequence);
    }

    [Fact]
    public void Run_NoMask_ThrowsNamingTheMaskToken()
    {
        var (pipeline, _, _) = Build();

        var error = Assert.Throws<ArgumentException>(() => pipeline.Run("The heart is a large organ."));

        Assert.Contains("[MASK]", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_TopKBelowOne_Throws()
    {
        var (pipeline, _, _) = Build();

        Assert.Throws<ArgumentOutOfRangeException>(() => pipeline.Run(Seed, topK: 0));
    }

    [Fact]
    public void Run_InputLongerThanModelMaxLength_ThrowsWithLimitAndTruncationHint()
    {
        var (pipeline, _, _) = Build();
        var text = "[MASK] " + string.Join(' ', Enumerable.Repeat("heart", 20));

        var error = Assert.Throws<ArgumentException>(() => pipeline.Run(text));

        Assert.Contains("23 tokens", error.Message, StringComparison.Ordinal);
        Assert.Contains("at most 16", error.Message, StringComparison.Ordinal);
        Assert.Contains("truncation", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_TruncationOn_KeepsTheFirstTokens()
    {
        var (pipeline, model, _) = Build(truncation: true);
        model.LogitsAt[1] = Logits(("brain", 4));
        var text = "[MASK] " + string.Join(' ', Enumerable.Repeat("heart", 20));

        // 16 = [CLS] + [MASK] + 13 × heart + [SEP].
        var top = Assert.Single(pipeline.Run(text, topK: 1))[0];

        Assert.Equal("brain", top.TokenStr);
        Assert.Equal("brain " + string.Join(' ', Enumerable.Repeat("heart", 13)), top.Sequence);
    }
}
