using Sharpformer.Training.FineTuning;

namespace Sharpformer.Training.Tests.FineTuning;

public sealed class MetricsTests : IDisposable
{
    private readonly FineTuningKit _kit = new();

    public void Dispose() => _kit.Dispose();

    [Fact]
    public void Classification_HandComputedCase()
    {
        // refs:  a a a b b c      preds: a a b b c c
        // a: TP 2, pred 2, support 3 → P 1, R 2/3, F1 0.8
        // b: TP 1, pred 2, support 2 → P 0.5, R 0.5, F1 0.5
        // c: TP 1, pred 2, support 1 → P 0.5, R 1, F1 2/3
        var report = ClassificationMetrics.Compute([0, 0, 1, 1, 2, 2], [0, 0, 0, 1, 1, 2], ["a", "b", "c"]);

        Assert.Equal(4.0 / 6, report.Accuracy, 12);
        Assert.Equal((0.8 + 0.5 + (2.0 / 3)) / 3, report.MacroF1, 12);
        Assert.Equal((1 + 0.5 + 0.5) / 3, report.MacroPrecision, 12);
        Assert.Equal(((2.0 / 3) + 0.5 + 1) / 3, report.MacroRecall, 12);
        Assert.Equal(3, report.PerClass[0].Support);
        Assert.Equal(new[,] { { 2, 1, 0 }, { 0, 1, 1 }, { 0, 0, 1 } }, report.ConfusionMatrix);
        Assert.Equal(report.MacroF1, report.ToMetrics()["macro_f1"]);
    }

    [Fact]
    public void Classification_MacroAverageSkipsLabelsAbsentFromBoth()
    {
        // Label "unused" never occurs: scikit-learn's macro average runs over the labels seen in y_true ∪ y_pred.
        var report = ClassificationMetrics.Compute([0, 1], [0, 0], ["a", "b", "unused"]);

        // a: P 1, R 0.5, F1 2/3; b: P 0, R 0, F1 0.
        Assert.Equal(((2.0 / 3) + 0) / 2, report.MacroF1, 12);
        Assert.Equal(0, report.PerClass[2].F1);
    }

    [Fact]
    public void ConfusionMatrixPng_IsWritten()
    {
        var report = ClassificationMetrics.Compute([0, 1, 1], [0, 1, 0], ["noun.body", "noun.plant"]);
        var path = Path.Combine(_kit.Folder, "cm.png");

        ClassificationMetrics.SaveConfusionMatrixPng(report, path);

        var bytes = File.ReadAllBytes(path);
        Assert.True(bytes.Length > 1000);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], bytes[..4]);
    }

    // seqeval's documented examples (its docstrings in seqeval/metrics/sequence_labeling.py).
    [Fact]
    public void Seqeval_DocstringExample_PrecisionRecallF1AndAccuracy()
    {
        IReadOnlyList<IReadOnlyList<string>> yTrue = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]];
        IReadOnlyList<IReadOnlyList<string>> yPred = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]];

        var report = SequenceLabelingMetrics.Compute(yTrue, yPred);

        Assert.Equal(0.5, report.Precision, 12);
        Assert.Equal(0.5, report.Recall, 12);
        Assert.Equal(0.5, report.F1, 12);
        Assert.Equal(0.80, report.Accuracy, 12);
        Assert.Equal(["MISC", "PER"], report.PerType.Select(t => t.Label));
        Assert.Equal([0.0, 1.0], report.PerType.Select(t => t.F1));
        Assert.Equal([1, 1], report.PerType.Select(t => t.Support));
    }

    [Fact]
    public void Seqeval_DocstringExample_F1Micro()
    {
        IReadOnlyList<IReadOnlyList<string>> yTrue = [["O", "O", "B-MISC", "I-MISC", "B-MISC", "O", "O"], ["B-PER", "I-PER", "O"]];
        IReadOnlyList<IReadOnlyList<string>> yPred = [["O", "O", "B-MISC", "I-MISC", "B-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]];

        var report = SequenceLabelingMetrics.Compute(yTrue, yPred);

        Assert.Equal(0.6666666666666666, report.F1, 12);
        Assert.Equal(0.6666666666666666, report.Precision, 12);
        // seqeval's macro average (0.75) is the mean of the per-type F1s.
        Assert.Equal(0.75, report.PerType.Average(t => t.F1), 12);
    }

    [Fact]
    public void Seqeval_GetEntitiesDocstring()
    {
        var entities = SequenceLabelingMetrics.Extract([["B-PER", "I-PER", "O", "B-LOC"]]);

        // seqeval: [('PER', 0, 1), ('LOC', 3, 3)] with inclusive ends; ours are exclusive.
        Assert.Equal([new TaggedEntity(0, "PER", 0, 2), new TaggedEntity(0, "LOC", 3, 4)], entities);
    }

    [Fact]
    public void Seqeval_DefaultModeIsLenient_StrictIob2IsNot()
    {
        // An entity opened by I- after O: default mode counts it, strict IOB2 does not.
        IReadOnlyList<IReadOnlyList<string>> yTrue = [["B-PER", "I-PER", "O"]];
        IReadOnlyList<IReadOnlyList<string>> yPred = [["I-PER", "I-PER", "O"]];

        Assert.Equal(1.0, SequenceLabelingMetrics.Compute(yTrue, yPred).F1, 12);
        Assert.Equal(0.0, SequenceLabelingMetrics.Compute(yTrue, yPred, TaggingScheme.Iob2).F1, 12);
    }

    // Expected entities from seqeval's tests/test_scheme.py tables (start, end exclusive).
    public static TheoryData<string[], string> Iob1Cases => new()
    {
        { ["B-PER"], "" },
        { ["I-PER"], "PER 0 1" },
        { ["O", "I-PER"], "PER 1 2" },
        { ["I-PER", "I-ORG"], "PER 0 1;ORG 1 2" },
        { ["I-PER", "B-PER"], "PER 0 1;PER 1 2" },
        { ["I-PER", "B-ORG"], "PER 0 1" },
        { ["B-PER", "I-PER"], "PER 1 2" },
        { ["B-PER", "B-PER"], "PER 1 2" },
        { ["B-PER", "B-ORG"], "" },
    };

    public static TheoryData<string[], string> Iob2Cases => new()
    {
        { ["B-PER"], "PER 0 1" },
        { ["I-PER"], "" },
        { ["I-PER", "B-ORG"], "ORG 1 2" },
        { ["B-PER", "I-PER"], "PER 0 2" },
        { ["B-PER", "I-ORG"], "PER 0 1" },
        { ["B-PER", "B-PER"], "PER 0 1;PER 1 2" },
        { ["B", "I"], "_ 0 2" },
    };

    public static TheoryData<string[], string> BioesCases => new()
    {
        { ["S-PER"], "PER 0 1" },
        { ["B-PER", "E-PER"], "PER 0 2" },
        { ["B-PER", "I-PER"], "" },
        { ["B-PER", "S-PER"], "PER 1 2" },
        { ["I-PER", "S-PER"], "PER 1 2" },
        { ["S-PER", "E-PER"], "PER 0 1" },
        { ["S-PER", "S-PER"], "PER 0 1;PER 1 2" },
        { ["B-PER", "E-ORG"], "" },
    };

    [Theory]
    [MemberData(nameof(Iob1Cases))]
    public void SeqevalStrict_Iob1_MatchesSeqevalTable(string[] tags, string expected) => AssertStrict(tags, TaggingScheme.Iob1, expected);

    [Theory]
    [MemberData(nameof(Iob2Cases))]
    public void SeqevalStrict_Iob2_MatchesSeqevalTable(string[] tags, string expected) => AssertStrict(tags, TaggingScheme.Iob2, expected);

    [Theory]
    [MemberData(nameof(BioesCases))]
    public void SeqevalStrict_Bioes_MatchesSeqevalTable(string[] tags, string expected) => AssertStrict(tags, TaggingScheme.Bioes, expected);

    [Fact]
    public void SeqevalStrict_PrefixOutsideScheme_Throws()
    {
        Assert.Throws<ArgumentException>(() => SequenceLabelingMetrics.Extract([["S-PER"]], TaggingScheme.Iob2));
    }

    private static void AssertStrict(string[] tags, TaggingScheme scheme, string expected)
    {
        var entities = SequenceLabelingMetrics.Extract([tags], scheme);
        Assert.Equal(expected, string.Join(";", entities.Select(e => $"{e.Type} {e.Start} {e.End}")));
    }

    [Theory]
    [InlineData("The Heart!", "heart")]
    [InlineData("an apple, a pear", "apple pear")]
    [InlineData("  the   left\tventricle ", "left ventricle")]
    [InlineData("theatre", "theatre")]
    public void Squad_Normalize_OfficialRules(string text, string expected)
    {
        Assert.Equal(expected, SquadMetrics.Normalize(text));
    }

    [Fact]
    public void Squad_ExactMatchAndF1_HandComputed()
    {
        // q1: "the left ventricle" vs refs "left ventricle" (EM 1) → EM 1, F1 1.
        // q2: "blood cells" vs "red blood cells": 2 common, P 1, R 2/3 → F1 0.8; EM 0.
        // q3 (v2, no answer): "" vs no references → EM 1, F1 1.
        var scores = SquadMetrics.Compute(
            new Dictionary<string, string> { ["q1"] = "the left ventricle", ["q2"] = "blood cells", ["q3"] = string.Empty },
            new Dictionary<string, IReadOnlyList<string>> { ["q1"] = ["Left ventricle", "heart"], ["q2"] = ["red blood cells"], ["q3"] = [] });

        Assert.Equal(100.0 * 2 / 3, scores.ExactMatch, 9);
        Assert.Equal(100.0 * (1 + 0.8 + 1) / 3, scores.F1, 9);
        Assert.Equal((2, 1), (scores.HasAnswerTotal, scores.NoAnswerTotal));
    }

    [Fact]
    public void Squad_FromPredictionsAndExamples_UsesEachQuestionsAnswers()
    {
        QaExample Example(string id, params string[] answers) => new(id, "t", string.Join(" ", answers), "?", answers.Select(a => new QaAnswer(a, 0)).ToList(), answers.Length == 0, "test");
        var scores = SquadMetrics.Compute(
            [new QaPrediction("a", "aorta", [], null), new QaPrediction("b", "vein", [], null)],
            [Example("a", "the aorta"), Example("b", "artery")]);

        Assert.Equal(50.0, scores.ExactMatch, 9);
        Assert.Equal(50.0, scores.F1, 9);
    }

    [Fact]
    public void Squad_F1_RepeatedTokensCountedOnce()
    {
        // pred "the the cat" → tokens [cat]; ref "cat cat" → [cat, cat]: 1 common, P 1, R 0.5 → 2/3.
        Assert.Equal(2.0 / 3, SquadMetrics.F1("the the cat", "cat cat"), 12);
        Assert.Equal(0, SquadMetrics.F1(string.Empty, "cat"));
    }
}
