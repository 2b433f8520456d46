namespace Sharpformer.Generation.Tests;

public class LogitsProcessorTests
{
    private const float Inf = float.NegativeInfinity;

    [Fact]
    public void RepetitionPenalty_SeenTokens_PositiveDividedNegativeMultiplied()
    {
        float[] scores = [2f, -1f, 3f, 0.5f];
        LogitsProcessors.RepetitionPenalty(scores, [0, 1, 1], 2f);
        Assert.Equal([1f, -2f, 3f, 0.5f], scores);
    }

    [Fact]
    public void Temperature_DividesEveryScore()
    {
        float[] scores = [1f, -2f, 4f];
        LogitsProcessors.Temperature(scores, 0.5f);
        Assert.Equal([2f, -4f, 8f], scores);
    }

    [Fact]
    public void TopK_KeepsTheKLargestAndTies()
    {
        float[] scores = [1f, 5f, 3f, 3f, 0f];
        LogitsProcessors.TopK(scores, 2);
        // The 2nd largest is 3, so both 3s stay (HF compares against the k-th value).
        Assert.Equal([Inf, 5f, 3f, 3f, Inf], scores);
    }

    [Fact]
    public void TopP_KeepsSmallestSetReachingP()
    {
        // Probabilities 0.5, 0.25, 0.125, 0.125 (log-space): top-p 0.7 keeps 0.5 and 0.25 (cumulative from the
        // bottom: 0.125, 0.25 ≤ 0.3 removed; 0.5 > 0.3 kept).
        float[] scores = [MathF.Log(0.5f), MathF.Log(0.25f), MathF.Log(0.125f), MathF.Log(0.125f)];
        var expected = new[] { scores[0], scores[1], Inf, Inf };
        LogitsProcessors.TopP(scores, 0.7f);
        Assert.Equal(expected, scores);
    }

    [Fact]
    public void TopP_TinyP_KeepsTheTopToken()
    {
        float[] scores = [0f, 1f, 2f];
        LogitsProcessors.TopP(scores, 0.01f);
        Assert.Equal([Inf, Inf, 2f], scores);
    }

    [Fact]
    public void MinP_RemovesBelowFractionOfTop()
    {
        // Probabilities 0.5, 0.3, 0.15, 0.05; min-p 0.2 → threshold 0.1: the 0.05 token goes.
        float[] scores = [MathF.Log(0.5f), MathF.Log(0.3f), MathF.Log(0.15f), MathF.Log(0.05f)];
        var expected = new[] { scores[0], scores[1], scores[2], Inf };
        LogitsProcessors.MinP(scores, 0.2f);
        Assert.Equal(expected, scores);
    }

    [Fact]
    public void Apply_Greedy_OnlyRepetitionPenalty()
    {
        float[] scores = [4f, 2f, 1f];
        LogitsProcessors.Apply(scores, [0], new GenerationOptions { RepetitionPenalty = 2f, Temperature = 0.5f, TopK = 1 });
        Assert.Equal([2f, 2f, 1f], scores);
    }

    [Fact]
    public void Apply_Sampling_HfOrderPenaltyTemperatureTopK()
    {
        // Penalty first (4 → 2), then temperature (÷ 0.5), then top-k 2 on the tempered scores.
        float[] scores = [4f, 3f, 1f];
        LogitsProcessors.Apply(scores, [0], new GenerationOptions { DoSample = true, RepetitionPenalty = 2f, Temperature = 0.5f, TopK = 2 });
        Assert.Equal([4f, 6f, Inf], scores);
    }

    [Fact]
    public void Sample_OnlyFiniteScoresAreDrawn()
    {
        var sampler = new TokenSampler(5);
        for (int i = 0; i < 200; i++)
        {
            int token = sampler.Sample([Inf, 0f, Inf, 0f]);
            Assert.True(token is 1 or 3);
        }
    }

    [Fact]
    public void Sample_AllRemoved_ClearError()
    {
        var error = Assert.Throws<ArgumentException>(() => new TokenSampler(1).Sample([Inf, Inf]));
        Assert.Contains("removed all tokens", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Sample_Frequencies_FollowSoftmax()
    {
        // p = 0.75 / 0.25; 4000 draws: a 5σ band is about ±0.034.
        var sampler = new TokenSampler(123);
        int ones = 0;
        for (int i = 0; i < 4000; i++)
        {
            ones += sampler.Sample([MathF.Log(3f), 0f]) == 0 ? 1 : 0;
        }

        Assert.InRange(ones / 4000.0, 0.75 - 0.034, 0.75 + 0.034);
    }
}
