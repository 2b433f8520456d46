using Sharpformer.Tensors;
using Sharpformer.Training.Data;
using Sharpformer.Training.FineTuning;

namespace Sharpformer.Training.Tests.FineTuning;

public sealed class BatchingTests : IDisposable
{
    private readonly FineTuningKit _kit = new();

    public void Dispose() => _kit.Dispose();

    [Fact]
    public void SequenceClassification_PadsToLongestWithTypesAndClassIds()
    {
        var data = ClassificationData.Read(_kit.Write("c.jsonl", "{\"text\": \"the heart\", \"text_pair\": \"blood\", \"label\": \"good\"}\n{\"text\": \"lung\", \"label\": \"bad\"}\n"));
        var collator = new SequenceClassificationCollator(FineTuningKit.Tokenizer(), data, maxLength: 16, tokenTypes: true);

        var batch = collator.Collate([0, 1]);

        // [CLS] the heart [SEP] blood [SEP] / [CLS] lung [SEP] + 3 padding.
        int cls = FineTuningKit.Id("[CLS]"), sep = FineTuningKit.Id("[SEP]");
        Assert.Equal(new Shape(2, 6), batch.InputIds.Shape);
        Assert.Equal([cls, FineTuningKit.Id("the"), FineTuningKit.Id("heart"), sep, FineTuningKit.Id("blood"), sep, cls, FineTuningKit.Id("lung"), sep, 0, 0, 0], batch.InputIds.ToArray<int>());
        Assert.Equal([1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0], batch.AttentionMask.ToArray<int>());
        Assert.Equal([0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0], batch.TokenTypeIds!.ToArray<int>());
        Assert.Equal([1, 0], batch.Labels!.ToArray<int>()); // sorted labels: bad = 0, good = 1
        Assert.Equal(9, batch.TokenCount);
    }

    [Fact]
    public void SequenceClassification_MultiLabelAndRegressionLabelShapes()
    {
        var multi = ClassificationData.Read(_kit.Write("m.jsonl", "{\"text\": \"a\", \"label\": [\"y\"]}\n{\"text\": \"b\", \"label\": [\"x\", \"y\"]}\n"));
        var regression = ClassificationData.Read(_kit.Write("r.jsonl", "{\"text\": \"a\", \"label\": 0.25}\n{\"text\": \"b\", \"label\": 1.5}\n"));
        var tokenizer = FineTuningKit.Tokenizer();

        var m = new SequenceClassificationCollator(tokenizer, multi, 8, tokenTypes: false).Collate([0, 1]);
        var r = new SequenceClassificationCollator(tokenizer, regression, 8, tokenTypes: false).Collate([0, 1]);

        Assert.Null(m.TokenTypeIds);
        Assert.Equal(new Shape(2, 2), m.Labels!.Shape);
        Assert.Equal([0f, 1f, 1f, 1f], m.Labels.ToArray());
        Assert.Equal(new Shape(2), r.Labels!.Shape);
        Assert.Equal([0.25f, 1.5f], r.Labels.ToArray());
    }

    [Fact]
    public void AlignLabels_FirstSubTokenOnly_OrAllWithBeginTurnedInside()
    {
        // Words the | pumps | heart → [CLS] the pump ##s heart [SEP]; tags O B-BODY I-BODY; sorted ids B-BODY 0, I-BODY 1, O 2.
        var data = TokenClassificationData.Read(_kit.Write("n.jsonl", "{\"tokens\": [\"the\", \"pumps\", \"heart\"], \"tags\": [\"O\", \"B-BODY\", \"I-BODY\"]}\n"));
        var tokenizer = FineTuningKit.Tokenizer();

        var first = new TokenClassificationCollator(tokenizer, data, 16, tokenTypes: true).Collate([0]);
        var all = new TokenClassificationCollator(tokenizer, data, 16, tokenTypes: true, labelAllTokens: true).Collate([0]);

        Assert.Equal([-100, 2, 0, -100, 1, -100], first.Labels!.ToArray<int>());
        Assert.Equal([-100, 2, 0, 1, 1, -100], all.Labels!.ToArray<int>());
    }

    [Fact]
    public void BeginToInside_OnlyWhereTheInsideTagExists()
    {
        Assert.Equal([1, 1, 2, 3], TokenClassificationCollator.BeginToInside(["B-A", "I-A", "B-C", "O"]));
    }

    [Fact]
    public void ScoredTags_DropMinus100Positions()
    {
        var (predicted, reference) = TokenClassificationCollator.ScoredTags(new[,] { { 0, 1, 2, 2 } }, new[,] { { -100, 1, -100, 0 } }, ["B-X", "I-X", "O"]);

        Assert.Equal([["I-X", "O"]], predicted);
        Assert.Equal([["I-X", "B-X"]], reference);
    }

    private static QaExample Example(string question, string context, string answer)
    {
        var start = context.IndexOf(answer, StringComparison.Ordinal);
        return new QaExample("q", "t", context, question, [new QaAnswer(answer, start)], false, "test");
    }

    [Fact]
    public void QaTrainFeatures_AnswerInWindowGetsItsTokens_ElsewhereCls()
    {
        // Question: what does the heart pump ? (6 tokens). Context tokens: the heart pump ##s blood . a b c d e f g h (14).
        // max_length 14 → 14 − 3 − 6 = 5 context tokens per window, stride 2 → windows at context tokens 0, 3, 6, 9.
        // "blood" is context token 4; context starts at position 8 ([CLS] + 6 + [SEP]).
        var example = Example("  what does the heart pump ?", "the heart pumps blood . a b c d e f g h", "blood");

        var features = QuestionAnsweringFeatures.PrepareTrain(FineTuningKit.Tokenizer(), [example], maxLength: 14, docStride: 2);

        Assert.Equal(4, features.Count);
        Assert.All(features, f => Assert.Equal(0, f.ExampleIndex));
        Assert.Equal((12, 12), (features[0].StartPosition, features[0].EndPosition)); // blood is the window's last context token
        Assert.Equal((9, 9), (features[1].StartPosition, features[1].EndPosition));
        Assert.Equal((0, 0), (features[2].StartPosition, features[2].EndPosition));
        Assert.Equal((0, 0), (features[3].StartPosition, features[3].EndPosition));
        Assert.Equal(FineTuningKit.Id("what"), features[0].Encoding.Ids[1]); // the question's leading spaces are stripped
        Assert.Null(features[0].ContextOffsets[1]);
        Assert.Equal(new Text.TextSpan(16, 21), features[0].ContextOffsets[12]);
    }

    [Fact]
    public void QaTrainFeatures_MultiTokenAnswer_SpansItsSubTokens()
    {
        var example = Example("what does the heart pump ?", "the heart pumps blood .", "heart pumps");

        var feature = Assert.Single(QuestionAnsweringFeatures.PrepareTrain(FineTuningKit.Tokenizer(), [example], maxLength: 32, docStride: 8));

        // [CLS] q×6 [SEP] the(8) heart(9) pump(10) ##s(11) blood(12) .(13) [SEP]
        Assert.Equal((9, 11), (feature.StartPosition, feature.EndPosition));
        var batch = QuestionAnsweringFeatures.Collate([feature], [0], padId: 0, tokenTypes: true);
        Assert.Equal([9], batch.StartPositions!.ToArray<int>());
        Assert.Equal([11], batch.EndPositions!.ToArray<int>());
    }

    [Fact]
    public void QaPostprocess_BestValidSpanAcrossFeatures_AndNullAnswerForV2()
    {
        var example = Example("what does the heart pump ?", "the heart pumps blood . a b c d e f g h", "blood");
        var features = QuestionAnsweringFeatures.PrepareEval(FineTuningKit.Tokenizer(), [example], maxLength: 14, docStride: 2);
        var starts = features.Select(f => new float[f.Encoding.Count]).ToList();
        var ends = features.Select(f => new float[f.Encoding.Count]).ToList();
        // Feature 1 points at "blood" (position 9) with the highest score; a higher start in the question is not a valid span.
        starts[1][9] = 5;
        ends[1][9] = 4;
        starts[0][2] = 9;
        ends[0][2] = 9;
        // A reversed span (end before start) scores high but is dropped.
        starts[2][10] = 6;
        ends[2][9] = 6;

        var v1 = Assert.Single(QuestionAnsweringFeatures.Postprocess([example], features, starts, ends));
        Assert.Equal("blood", v1.Text);
        Assert.Equal(9.0, v1.NBest[0].Score);
        Assert.Null(v1.NullScoreDiff);

        // SQuAD v2: make every feature's [CLS] score 12 > 9 → no answer.
        foreach (var s in starts) s[0] = 6;
        foreach (var e in ends) e[0] = 6;
        var v2 = Assert.Single(QuestionAnsweringFeatures.Postprocess([example], features, starts, ends, versionWithNegative: true));
        Assert.Equal(string.Empty, v2.Text);
        Assert.Equal(3.0, v2.NullScoreDiff!.Value, 6);
        Assert.Equal(1.0, v2.NBest.Sum(c => c.Probability), 9);
    }

    [Fact]
    public void QaPostprocess_MaxAnswerLength_DropsLongSpans()
    {
        var example = Example("what ?", "a b c d e", "a");
        var features = QuestionAnsweringFeatures.PrepareEval(FineTuningKit.Tokenizer(), [example], maxLength: 32, docStride: 4);
        // [CLS] what ? [SEP] a(4) b c d e(8) [SEP]
        var starts = new float[features[0].Encoding.Count];
        var ends = new float[features[0].Encoding.Count];
        starts[4] = 10;
        ends[8] = 10;
        ends[5] = 1;

        var prediction = QuestionAnsweringFeatures.Postprocess([example], features, [starts], [ends], maxAnswerLength: 3).Single();

        Assert.Equal("a b", prediction.Text);
    }

    [Fact]
    public void TaskBatch_RejectsWrongShapes()
    {
        var ids = Tensor.FromArray(new int[6], new Shape(2, 3));
        Assert.Throws<ArgumentException>(() => new TaskBatch(ids, Tensor.FromArray(new int[3], new Shape(1, 3))));
        Assert.Throws<ArgumentException>(() => new TaskBatch(ids, ids, labels: Tensor.FromArray(new int[3], new Shape(3))));
        Assert.Throws<ArgumentException>(() => new TaskBatch(ids, ids, startPositions: Tensor.FromArray(new int[2], new Shape(2))));
    }

    [Fact]
    public void TaskBatchSource_SeededEpochsAndExactResume()
    {
        TaskBatch Make(IReadOnlyList<int> items) => new(Tensor.FromArray(items.ToArray(), new Shape(items.Count, 1)), Tensor.FromArray(Enumerable.Repeat(1, items.Count).ToArray(), new Shape(items.Count, 1)));
        var source = new TaskBatchSource(7, 3, Make, seed: 5);
        var epoch0 = Enumerable.Range(0, 3).SelectMany(_ => source.Next().InputIds.ToArray<int>()).ToList();
        var epoch1 = Enumerable.Range(0, 3).SelectMany(_ => source.Next().InputIds.ToArray<int>()).ToList();
        var resumed = new TaskBatchSource(7, 3, Make, seed: 5) { Position = new DataPosition(1, 1) };

        Assert.Equal(3, source.BatchesPerEpoch);
        Assert.Equal(Enumerable.Range(0, 7), epoch0.Order());
        Assert.Equal(Enumerable.Range(0, 7), epoch1.Order());
        Assert.NotEqual(epoch0, epoch1);
        Assert.Equal(epoch1.Skip(3).Take(3), resumed.Next().InputIds.ToArray<int>());
        Assert.Equal([0, 1, 2, 3, 4, 5, 6], source.EvalBatches().SelectMany(b => b.InputIds.ToArray<int>()));
    }
}
