using Sharpformer.Models;
using Sharpformer.Training.FineTuning;

namespace Sharpformer.Training.Tests.FineTuning;

/// <summary>The committed samples of data/wordnet (made by build_wordnet_tasks.py) read with the fine-tuning readers.</summary>
public class WordNetSampleTests
{
    private static string Sample(string name) => Path.Combine(AppContext.BaseDirectory, "data", "wordnet", name);

    [Fact]
    public void ClassifySample_ReadsAsSingleLabelOverTheLexicographerFiles()
    {
        var data = ClassificationData.Read(Sample("classify.jsonl"));

        Assert.Equal(200, data.Examples.Count);
        Assert.Equal(ClassificationProblem.SingleLabel, data.Problem);
        Assert.All(data.LabelNames, l => Assert.StartsWith("noun.", l, StringComparison.Ordinal));
        Assert.Equal(10, data.LabelNames.Count);
        Assert.Contains("noun.body", data.LabelNames);
        Assert.All(data.Examples, e => Assert.False(string.IsNullOrWhiteSpace(e.Text)));
    }

    [Fact]
    public void NerSample_ReadsAsBioWithTheThreeEntityTypes()
    {
        var data = TokenClassificationData.Read(Sample("ner.jsonl"));

        Assert.Equal(200, data.Examples.Count);
        Assert.Equal(["B-ANATOMY", "B-DISEASE", "B-DRUG", "I-ANATOMY", "I-DISEASE", "I-DRUG", "O"], data.LabelNames);
        // Every sentence has a mention, and the tags are valid IOB2 (strict extraction finds as many entities as B- tags).
        foreach (var e in data.Examples)
        {
            var begins = e.Tags.Count(t => t.StartsWith("B-", StringComparison.Ordinal));
            Assert.True(begins > 0);
            Assert.Equal(begins, SequenceLabelingMetrics.Extract([e.Tags], TaggingScheme.Iob2).Count);
        }
    }
}
