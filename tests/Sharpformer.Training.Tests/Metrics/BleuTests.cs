using Sharpformer.Training.Metrics;

namespace Sharpformer.Training.Tests.Metrics;

/// <summary>
/// Our BLEU against the expected values of sacreBLEU's own test suite (test/test_bleu.py and
/// test/test_sentence_bleu.py of mjpost/sacrebleu, which pin the README example and mteval-v13a's behaviour).
/// </summary>
public class BleuTests
{
    private const double Epsilon = 1e-6;

    // sacreBLEU's README example: three segments, two reference streams.
    private static readonly string[] Hyps = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."];

    private static readonly IReadOnlyList<string>[] Refs =
    [
        ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
        ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
    ];

    [Fact]
    public void CorpusBleu_DefaultSettings_IsSacreBleus48_530827()
    {
        var score = Bleu.Corpus(Hyps, Refs);
        Assert.Equal(48.530827, score.Score, Epsilon);
        Assert.Equal(score.Score, Bleu.Corpus(Hyps, Refs, new BleuOptions { Tokenize = BleuTokenizer.Mteval13a }).Score);
        Assert.Equal(48.530827, Bleu.Corpus(Hyps, Refs, new BleuOptions { Smoothing = BleuSmoothing.None }).Score, Epsilon);
        Assert.StartsWith("BLEU = 48.53 ", score.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void CorpusBleu_WithoutTokenization_Is49_1919566()
    {
        Assert.Equal(49.1919566, Bleu.Corpus(Hyps, Refs, new BleuOptions { Tokenize = BleuTokenizer.None }).Score, Epsilon);
    }

    [Fact]
    public void CorpusBleu_EmptyHypothesesAreKept_AndScore0()
    {
        Assert.Equal(0.0, Bleu.Corpus(["", "", ""], Refs).Score);
    }

    [Theory]
    [InlineData(1, "77.65")]
    [InlineData(2, "60.50")]
    [InlineData(3, "53.93")]
    [InlineData(4, "48.53")]
    [InlineData(5, "46.14")]
    [InlineData(6, "43.28")]
    public void CorpusBleu_MaxNgramOrder_MatchesSacreBleu(int order, string expected)
    {
        var score = Bleu.Corpus(Hyps, Refs, new BleuOptions { MaxNgramOrder = order });
        Assert.Equal(expected, score.Score.ToString("F2", System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>sacreBLEU's raw_corpus_bleu: no tokenization, floor smoothing 0.01, effective order.</summary>
    private static readonly BleuOptions Raw = new() { Tokenize = BleuTokenizer.None, Smoothing = BleuSmoothing.Floor, SmoothValue = 0.01, EffectiveOrder = true };

    [Theory]
    [InlineData("this is a test", "this is a test", 1.0)]
    [InlineData("this is a fest", "this is a test", 0.223606797749979)]
    public void RawBleu_MatchesSacreBleu(string hypothesis, string reference, double expected)
    {
        Assert.Equal(expected, Bleu.Corpus([hypothesis], [[reference]], Raw).Score / 100, 1e-8);
    }

    [Fact]
    public void RawBleu_NoMatchAtAll_Is0()
    {
        Assert.Equal(0.0, Bleu.Corpus(["this is a test", "another test"], [["ref1", "ref2"]], Raw).Score);
    }

    [Theory]
    [InlineData("test", "a test", 0.3678794411714425)]
    [InlineData("a test", "a test", 1.0)]
    [InlineData("a little test", "a test", 0.03218297948685433)]
    public void RawBleu_EffectiveOrderCases_MatchSacreBleu(string hypothesis, string reference, double expected)
    {
        // sacreBLEU's test_effective_order runs raw_corpus_bleu.
        Assert.Equal(expected, Bleu.Corpus([hypothesis], [[reference]], Raw).Score / 100, 1e-8);
    }

    [Fact]
    public void Statistics_AndOffset_MatchSacreBleu()
    {
        var floor = Bleu.Corpus(["am I am a character sequence"], [["I am a symbol string sequence a a"]], Raw with { SmoothValue = 0.1 });
        Assert.Equal([4, 2, 1, 0], floor.Counts);
        Assert.Equal([6, 5, 4, 3], floor.Totals);
        Assert.Equal(0.1555722182, floor.Score / 100, 1e-8);
        Assert.Equal(0.0, Bleu.Corpus(["am I am a character sequence"], [["I am a symbol string sequence a a"]], Raw with { SmoothValue = 0.0 }).Score);
    }

    [Fact]
    public void ComputeFromStatistics_MatchesSacreBleu()
    {
        var score = Bleu.Compute([9, 7, 5, 3], [10, 8, 6, 4], 11, 11, new BleuOptions { Smoothing = BleuSmoothing.None });
        Assert.Equal(0.8375922397, score.Score / 100, 1e-8);
    }

    // sacreBLEU test_sentence_bleu.py (issue #98): a Romanian segment with diacritics, effective order on.
    private const string Reference = "producţia de zahăr brut se exprimă în zahăr alb;";
    private const string System_ = "Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;";

    [Theory]
    [InlineData(BleuSmoothing.Exp, null, BleuTokenizer.Mteval13a, 8.493)]
    [InlineData(BleuSmoothing.None, null, BleuTokenizer.Mteval13a, 0.0)]
    [InlineData(BleuSmoothing.Floor, null, BleuTokenizer.Mteval13a, 4.51688)]
    [InlineData(BleuSmoothing.Floor, 0.5, BleuTokenizer.Mteval13a, 10.10)]
    [InlineData(BleuSmoothing.AddK, null, BleuTokenizer.Mteval13a, 14.882)]
    [InlineData(BleuSmoothing.AddK, 2.0, BleuTokenizer.Mteval13a, 21.389)]
    [InlineData(BleuSmoothing.Exp, null, BleuTokenizer.None, 7.347)]
    public void SentenceBleu_MatchesSacreBleu(BleuSmoothing smoothing, double? value, BleuTokenizer tokenizer, double expected)
    {
        var options = new BleuOptions { Smoothing = smoothing, SmoothValue = value, Tokenize = tokenizer, EffectiveOrder = true };
        Assert.Equal(expected, Bleu.Sentence(System_, [Reference], options).Score, 1e-3);
    }

    [Fact]
    public void SentenceBleu_NoMatch_Is0()
    {
        Assert.Equal(0.0, Bleu.Sentence("this is a cat", ["okay thanks"], new BleuOptions { EffectiveOrder = true }).Score);
    }

    [Theory]
    [InlineData("Hello, world.", "Hello , world .")]
    [InlineData("It costs 3.50, or 1,000 in 2020-21.", "It costs 3.50 , or 1,000 in 2020 - 21 .")]
    [InlineData("a &amp; b &quot;c&quot; <skipped>x", "a & b \" c \" x")]
    [InlineData("don't (stop)!", "don't ( stop ) !")]
    public void Tokenize13a_SplitsLikeMteval(string line, string expected)
    {
        Assert.Equal(expected, Bleu.Tokenize13a(line));
    }

    [Fact]
    public void Corpus_MismatchedStreams_SaysSo()
    {
        var e = Assert.Throws<ArgumentException>(() => Bleu.Corpus(["a", "b"], [["a"]]));
        Assert.Contains("reference stream 0", e.Message, StringComparison.Ordinal);
    }
}
