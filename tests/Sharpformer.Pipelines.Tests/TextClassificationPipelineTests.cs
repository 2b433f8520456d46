using Sharpformer.Models;
using static Sharpformer.Pipelines.Tests.TestTokenizers;

namespace Sharpformer.Pipelines.Tests;

public class TextClassificationPipelineTests
{
    private static readonly string[] Sentiment = ["NEGATIVE", "NEUTRAL", "POSITIVE"];

    private static (TextClassificationPipeline Pipeline, FakeSequenceClassifier Model) Build(
        string[] labels, ClassificationProblem problem = ClassificationProblem.SingleLabel, bool usesTokenTypes = true, Func<int[], float[]>? logits = null)
    {
        var model = new FakeSequenceClassifier(labels, problem, usesTokenTypes);
        if (logits is not null)
        {
            model.LogitsFor = logits;
        }

        return (new TextClassificationPipeline(Tiny, model), model);
    }

    [Fact]
    public void Run_Default_TheBestLabelWithItsSoftmaxProbability()
    {
        float[] logits = [0.5f, -1f, 2f];
        var (pipeline, _) = Build(Sentiment, logits: _ => logits);

        var result = Assert.Single(pipeline.Run("the heart is large"));

        var expected = Reference.Softmax([0.5, -1, 2]);
        Assert.Equal("POSITIVE", result.Label);
        Assert.Equal(expected[2], result.Score, Tolerances.Rounding);
    }

    [Fact]
    public void Run_TopKNull_EveryLabelBestFirst_TopKCuts()
    {
        var (pipeline, _) = Build(Sentiment, logits: _ => [0.5f, -1f, 2f]);

        var all = pipeline.Run("the heart is large", topK: null);
        var two = pipeline.Run("the heart is large", topK: 2);

        var expected = Reference.Softmax([0.5, -1, 2]);
        Assert.Equal(["POSITIVE", "NEGATIVE", "NEUTRAL"], all.Select(r => r.Label));
        Assert.Equal([expected[2], expected[0], expected[1]], all.Select(r => (double)r.Score), new ToleranceComparer(Tolerances.Rounding));
        Assert.Equal(all.Take(2), two);
    }

    [Fact]
    public void Run_TiedScores_KeepLabelOrder()
    {
        var (pipeline, _) = Build(Sentiment, logits: _ => [1f, 3f, 3f]);

        var all = pipeline.Run("the heart", topK: null);

        Assert.Equal(["NEUTRAL", "POSITIVE", "NEGATIVE"], all.Select(r => r.Label));
    }

    [Fact]
    public void Run_MultiLabelModel_SigmoidByDefault()
    {
        var (pipeline, _) = Build(["cardiac", "brain"], ClassificationProblem.MultiLabel, logits: _ => [1.5f, -0.25f]);

        var all = pipeline.Run("the heart", topK: null);

        Assert.Equal(ClassificationFunction.Sigmoid, pipeline.DefaultFunction);
        Assert.Equal(["cardiac", "brain"], all.Select(r => r.Label));
        Assert.Equal(Reference.Sigmoid(1.5), all[0].Score, Tolerances.Rounding);
        Assert.Equal(Reference.Sigmoid(-0.25), all[1].Score, Tolerances.Rounding);
    }

    [Fact]
    public void Run_OneLabel_SigmoidByDefault_EvenForRegression()
    {
        var (pipeline, _) = Build(["LABEL_0"], ClassificationProblem.Regression, logits: _ => [-2f]);

        var result = Assert.Single(pipeline.Run("the heart"));

        Assert.Equal(Reference.Sigmoid(-2), result.Score, Tolerances.Rounding);
    }

    [Fact]
    public void Run_FunctionOverride_SoftmaxOnMultiLabel_NoneReturnsLogits()
    {
        var (pipeline, _) = Build(["cardiac", "brain"], ClassificationProblem.MultiLabel, logits: _ => [1.5f, -0.25f]);

        var softmax = pipeline.Run("the heart", topK: null, function: ClassificationFunction.Softmax);
        var none = pipeline.Run("the heart", topK: null, function: ClassificationFunction.None);

        Assert.Equal(Reference.Softmax([1.5, -0.25])[0], softmax[0].Score, Tolerances.Rounding);
        Assert.Equal([1.5f, -0.25f], none.Select(r => r.Score));
    }

    [Fact]
    public void Run_TextPair_EncodedWithThePairTemplateAndTokenTypes()
    {
        var (pipeline, model) = Build(Sentiment);

        pipeline.Run("the heart", "a brain");

        var seen = Assert.Single(model.Calls);
        int[] expectedIds = [Id("[CLS]"), Id("the"), Id("heart"), Id("[SEP]"), Id("a"), Id("brain"), Id("[SEP]")];
        Assert.Equal(expectedIds, seen.Ids[0]);
        Assert.Equal([0, 0, 0, 0, 1, 1, 1], seen.Types![0]);
    }

    [Fact]
    public void Run_TextPairForModelWithoutTokenTypes_OneClearError()
    {
        var (pipeline, model) = Build(Sentiment, usesTokenTypes: false);

        var error = Assert.Throws<ArgumentException>(() => pipeline.Run("the heart", "a brain"));

        Assert.Contains("token_type_ids", error.Message, StringComparison.Ordinal);
        Assert.Empty(model.Calls);
    }

    [Fact]
    public void Run_ModelWithoutTokenTypes_GetsNone()
    {
        var (pipeline, model) = Build(Sentiment, usesTokenTypes: false);

        pipeline.Run("the heart");

        Assert.Null(Assert.Single(model.Calls).Types);
    }

    [Fact]
    public void RunBatch_PadsToTheLongest_ResultsInInputOrder()
    {
        // The logits depend on the input's length, so each result shows which input it came from.
        var (pipeline, model) = Build(Sentiment, logits: ids => ids.Length == 3 ? [5f, 0f, 0f] : [0f, 0f, 5f]);

        var results = pipeline.RunBatch(["heart", "the heart is a large organ", "brain"]);

        // Sorted by length, longest first (ties keep input order): "heart" is the batch's second row.
        var seen = Assert.Single(model.Calls);
        Assert.Equal(3, seen.Ids.Length);
        Assert.Equal([1, 1, 1, 0, 0, 0, 0, 0], seen.Mask[1]);
        Assert.Equal([Id("[CLS]"), Id("heart"), Id("[SEP]"), Id("[PAD]"), Id("[PAD]"), Id("[PAD]"), Id("[PAD]"), Id("[PAD]")], seen.Ids[1]);
        Assert.Equal(["NEGATIVE", "POSITIVE", "NEGATIVE"], results.Select(r => Assert.Single(r).Label));
    }

    [Fact]
    public void RunBatch_MixedLengths_PaddedPerLengthBucket_SameAsOneByOne_InInputOrder()
    {
        // The logits depend on the unpadded ids, so each result shows which input it came from.
        var (pipeline, model) = Build(Sentiment, logits: ids => [ids.Length, ids.Sum() % 7, ids[1]]);
        string[] texts = ["heart", "the heart is a large organ", "brain", "the large organ", "a heart"];

        var batched = pipeline.RunBatch(texts, topK: null, batchSize: 2);
        var calls = model.Calls.ToList();
        var single = texts.Select(t => pipeline.Run(t, topK: null)).ToList();

        // Token counts 3, 8, 3, 5, 4: batches {8, 5}, {4, 3}, {3}, each padded to its own longest, not all to 8.
        Assert.Equal([8, 4, 3], calls.Select(c => c.Ids[0].Length));
        Assert.Equal([2, 2, 1], calls.Select(c => c.Ids.Length));
        Assert.Equal(texts.Length, batched.Count);
        for (var i = 0; i < texts.Length; i++)
        {
            Assert.Equal(single[i], batched[i]);
        }
    }

    [Fact]
    public void RunBatch_SplitsIntoBatchesOfTheGivenSize()
    {
        var (pipeline, model) = Build(Sentiment);

        var results = pipeline.RunBatch(["heart", "brain", "organ"], batchSize: 2);

        Assert.Equal([2, 1], model.Calls.Select(c => c.Ids.Length));
        Assert.Equal(3, results.Count);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public void Run_EmptyText_OneClearError(string text)
    {
        var (pipeline, _) = Build(Sentiment);

        var error = Assert.Throws<ArgumentException>(() => pipeline.Run(text));

        Assert.Contains("empty", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_TopKZero_Refused()
    {
        var (pipeline, _) = Build(Sentiment);

        Assert.Throws<ArgumentOutOfRangeException>(() => pipeline.Run("the heart", topK: 0));
    }

    [Fact]
    public void Run_TooLong_ErrorNamesTheLimit_TruncationCuts()
    {
        // The tiny tokenizer's model_max_length is 16.
        var text = string.Join(' ', Enumerable.Repeat("heart", 20));
        var model = new FakeSequenceClassifier(Sentiment);

        var error = Assert.Throws<ArgumentException>(() => new TextClassificationPipeline(Tiny, model).Run(text));
        new TextClassificationPipeline(Tiny, model, new PipelineOptions { Truncation = true }).Run(text);

        Assert.Contains("16", error.Message, StringComparison.Ordinal);
        Assert.Equal(16, Assert.Single(model.Calls).Ids[0].Length);
    }
}

/// <summary>Compares doubles within an absolute tolerance (for sequence asserts).</summary>
internal sealed class ToleranceComparer(double tolerance) : IEqualityComparer<double>
{
    public bool Equals(double x, double y) => Math.Abs(x - y) <= tolerance;

    public int GetHashCode(double obj) => 0;
}
