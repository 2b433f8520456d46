using Sharpformer.Text;

namespace Sharpformer.Pipelines.Tests;

/// <summary>
/// HF's question-answering span selection on hand-built cases: a fake model gives each token id chosen start and end
/// logits over a real (small, uncased) WordPiece tokenizer; expected scores are computed by hand from HF's rules
/// (question and special tokens but CLS masked, softmax per window, P(start)·P(end)).
/// </summary>
public class QuestionAnsweringPipelineTests
{
    private static readonly string[] Vocab =
    [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "where", "do", "i", "live", "?", "my", "name", "is", "wolf",
        "##gang", "and", "in", "berlin", "who",
    ];

    private static readonly Lazy<TextTokenizer> Tokenizer = new(() => TestTokenizers.Load(Vocab, modelMaxLength: 64));

    // Context tokens: my name is wolf ##gang and i live in berlin (10); "Where do I live?" is 5 tokens.
    private const string Context = "My name is Wolfgang and I live in Berlin";
    private const string Question = "Where do I live?";

    private static int Id(string token) => Array.IndexOf(Vocab, token);

    private static (QuestionAnsweringPipeline Pipeline, FakeQuestionAnswering Model) Build()
    {
        var model = new FakeQuestionAnswering();
        return (new QuestionAnsweringPipeline(Tokenizer.Value, model), model);
    }

    // P of a token with logit x among n other desired tokens at logit 0.
    private static double P(double x, int others) => Math.Exp(x) / (Math.Exp(x) + others);

    [Fact]
    public void Run_BestSpan_CharOffsetsIntoTheContext_ScoreIsPStartTimesPEnd()
    {
        var (pipeline, model) = Build();
        model.StartById[Id("berlin")] = 5;
        model.EndById[Id("berlin")] = 5;

        var answer = Assert.Single(pipeline.Run(Question, Context));

        // Desired: CLS and the 10 context tokens, so berlin competes with 10 tokens at logit 0.
        Assert.Equal(("Berlin", 34, 40), (answer.Answer, answer.Start, answer.End));
        Assert.Equal(P(5, 10) * P(5, 10), answer.Score, Tolerances.Rounding);
    }

    [Fact]
    public void Run_QuestionTokensAreMasked_TheContextOccurrenceIsChosen()
    {
        // "i" and "live" are in the question too; only the context's may be chosen.
        var (pipeline, model) = Build();
        model.StartById[Id("i")] = 6;
        model.EndById[Id("live")] = 6;

        var answer = Assert.Single(pipeline.Run(Question, Context));

        Assert.Equal(("I live", 24, 30), (answer.Answer, answer.Start, answer.End));
        Assert.Equal(P(6, 10) * P(6, 10), answer.Score, Tolerances.Rounding);
    }

    [Fact]
    public void Run_SubwordSpan_WidenedToTheWord_UnlessAlignToWordsIsOff()
    {
        var (pipeline, model) = Build();
        model.StartById[Id("##gang")] = 5;
        model.EndById[Id("##gang")] = 5;

        var aligned = Assert.Single(pipeline.Run(Question, Context));
        var raw = Assert.Single(pipeline.Run(Question, Context, new QuestionAnsweringOptions { AlignToWords = false }));

        Assert.Equal(("Wolfgang", 11, 19), (aligned.Answer, aligned.Start, aligned.End));
        Assert.Equal(("gang", 15, 19), (raw.Answer, raw.Start, raw.End));
    }

    [Fact]
    public void Run_MaxAnswerLen_BandsTheSpans()
    {
        var (pipeline, model) = Build();
        model.StartById[Id("wolf")] = 5;
        model.EndById[Id("berlin")] = 5;

        var whole = Assert.Single(pipeline.Run(Question, Context));
        var banded = Assert.Single(pipeline.Run(Question, Context, new QuestionAnsweringOptions { MaxAnswerLen = 3 }));

        // wolf … berlin is 7 tokens: allowed by the default 15. With 3, every end in reach has the same probability,
        // and the first such span (wolf, wolf) wins, widened to its word.
        Assert.Equal(("Wolfgang and I live in Berlin", 11, 40), (whole.Answer, whole.Start, whole.End));
        Assert.Equal(("Wolfgang", 11, 19), (banded.Answer, banded.Start, banded.End));
        Assert.Equal(P(5, 10) * (1 / (Math.Exp(5) + 10)), banded.Score, Tolerances.Rounding);
    }

    [Fact]
    public void Run_HandleImpossibleAnswer_TheClsScoreCompetes()
    {
        var (pipeline, model) = Build();
        model.StartById[Id("[CLS]")] = 6;
        model.EndById[Id("[CLS]")] = 6;
        model.StartById[Id("berlin")] = 2;
        model.EndById[Id("berlin")] = 2;

        var plain = Assert.Single(pipeline.Run(Question, Context));
        var both = pipeline.Run(Question, Context, new QuestionAnsweringOptions { HandleImpossibleAnswer = true, TopK = 2 });

        // Without it, CLS is zeroed and berlin wins; with it, the empty answer scores P(CLS)² (CLS against 10 tokens,
        // berlin among them at logit 2).
        Assert.Equal("Berlin", plain.Answer);
        var pCls = Math.Exp(6) / (Math.Exp(6) + Math.Exp(2) + 9);
        Assert.Equal(("", 0, 0), (both[0].Answer, both[0].Start, both[0].End));
        Assert.Equal(pCls * pCls, both[0].Score, Tolerances.Rounding);
        Assert.Equal("Berlin", both[1].Answer);
    }

    [Fact]
    public void Run_LongContext_OverlappingWindowsWithTheQuestionInEach_AnswersRankedAcrossWindows()
    {
        var (pipeline, model) = Build();
        model.StartById[Id("berlin")] = 5;
        model.EndById[Id("berlin")] = 5;
        model.StartById[Id("my")] = 4;
        model.EndById[Id("my")] = 4;

        // "Who?" is 2 tokens, so a window of 12 holds 12 − 2 − 3 = 7 context tokens; a stride of 3 starts the next
        // window 4 tokens on: [0, 7) then [4, 10), which reaches the end.
        var answers = pipeline.Run("Who?", Context, new QuestionAnsweringOptions { MaxSeqLen = 12, DocStride = 3, TopK = 2 });

        var seen = Assert.Single(model.Calls);
        int[] Ids(params string[] tokens) => tokens.Select(Id).ToArray();
        Assert.Equal(Ids("[CLS]", "who", "?", "[SEP]", "my", "name", "is", "wolf", "##gang", "and", "i", "[SEP]"), seen.Ids[0]);
        Assert.Equal(Ids("[CLS]", "who", "?", "[SEP]", "##gang", "and", "i", "live", "in", "berlin", "[SEP]", "[PAD]"), seen.Ids[1]);
        Assert.Equal([0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1], seen.Types![0]);
        Assert.Equal([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0], seen.Mask[1]);

        // berlin is in the second window (CLS + 6 context tokens), my in the first (CLS + 7).
        Assert.Equal([("Berlin", 34, 40), ("My", 0, 2)], answers.Select(a => (a.Answer, a.Start, a.End)));
        Assert.Equal(P(5, 6) * P(5, 6), answers[0].Score, Tolerances.Rounding);
        Assert.Equal(P(4, 7) * P(4, 7), answers[1].Score, Tolerances.Rounding);
    }

    [Fact]
    public void Run_SpanStartingInsideAWordCutByTheWindow_StartsAtTheTokenInThatWindow()
    {
        var (pipeline, model) = Build();
        model.StartById[Id("##gang")] = 5;
        model.EndById[Id("berlin")] = 5;

        // Window 2 starts at ##gang (its "wolf" is in window 1 only); berlin is only in window 2.
        var answer = Assert.Single(pipeline.Run("Who?", Context, new QuestionAnsweringOptions { MaxSeqLen = 12, DocStride = 3 }));

        Assert.Equal(("gang and I live in Berlin", 15, 40), (answer.Answer, answer.Start, answer.End));
    }

    [Theory]
    [InlineData("", Context, "question")]
    [InlineData(Question, " ", "context")]
    public void Run_EmptyInput_OneClearError(string question, string context, string named)
    {
        var (pipeline, _) = Build();

        var error = Assert.Throws<ArgumentException>(() => pipeline.Run(question, context));

        Assert.Contains($"the {named} is empty", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_BadOptions_ClearErrors()
    {
        var (pipeline, _) = Build();

        Assert.Throws<ArgumentOutOfRangeException>(() => pipeline.Run(Question, Context, new QuestionAnsweringOptions { TopK = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => pipeline.Run(Question, Context, new QuestionAnsweringOptions { MaxAnswerLen = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => pipeline.Run(Question, Context, new QuestionAnsweringOptions { MaxSeqLen = 100 }));
        var tooLong = Assert.Throws<ArgumentException>(() => pipeline.Run(Question, Context, new QuestionAnsweringOptions { MaxSeqLen = 8 }));
        Assert.Contains("max_seq_len 8", tooLong.Message, StringComparison.Ordinal);
        var stride = Assert.Throws<ArgumentException>(() => pipeline.Run(Question, Context, new QuestionAnsweringOptions { MaxSeqLen = 12, DocStride = 5 }));
        Assert.Contains("doc_stride 5", stride.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_MaxQuestionLen_CutsTheQuestion()
    {
        var (pipeline, model) = Build();

        pipeline.Run(Question, Context, new QuestionAnsweringOptions { MaxQuestionLen = 2 });

        int[] expected = [Id("[CLS]"), Id("where"), Id("do"), Id("[SEP]"), Id("my")];
        Assert.Equal(expected, Assert.Single(model.Calls).Ids[0].Take(5));
    }
}
