using Sharpformer.Models.Gpt2;

namespace Sharpformer.Generation.Tests;

public class GenerationTests
{
    private static readonly Lazy<Gpt2LMHeadModel> Model = new(Fixture.LoadModel);

    private static readonly object Gate = new();

    private static T WithModel<T>(Func<TextGenerator, T> run)
    {
        lock (Gate)
        {
            return run(new TextGenerator(Model.Value));
        }
    }

    [Fact]
    public void Generate_Greedy_MatchesPyTorchContinuations()
    {
        var expected = Fixture.Expected.GetProperty("greedy").EnumerateArray().Select(Fixture.Ints).ToArray();
        var prompts = Fixture.Prompts;
        for (int i = 0; i < prompts.Length; i++)
        {
            var result = WithModel(g => g.Generate(prompts[i], new GenerationOptions { MaxNewTokens = 20 }));
            Assert.Equal(expected[i], result.Tokens);
            Assert.Equal(FinishReason.Length, result.Reason);
        }
    }

    [Fact]
    public void GenerateBatch_LeftPaddedGreedy_EqualsEachPromptAlone()
    {
        var expected = Fixture.Expected.GetProperty("greedy").EnumerateArray().Select(Fixture.Ints).ToArray();
        var results = WithModel(g => g.GenerateBatch([.. Fixture.Prompts], new GenerationOptions { MaxNewTokens = 20 }, padTokenId: 0));
        Assert.Equal(expected[0], results[0].Tokens);
        Assert.Equal(expected[1], results[1].Tokens);
    }

    [Fact]
    public void Generate_StopToken_EndsWithIt()
    {
        var greedy = Fixture.Ints(Fixture.Expected.GetProperty("greedy")[1]);
        var stop = greedy[3];
        var result = WithModel(g => g.Generate(Fixture.Prompts[1], new GenerationOptions { MaxNewTokens = 20, StopTokenIds = [stop] }));
        Assert.Equal(greedy[..4], result.Tokens);
        Assert.Equal(FinishReason.StopToken, result.Reason);
    }

    [Fact]
    public void Generate_BeamSearch_MatchesPyTorchHfScorer()
    {
        foreach (var c in Fixture.Expected.GetProperty("beams").EnumerateArray())
        {
            var options = new GenerationOptions
            {
                NumBeams = c.GetProperty("num_beams").GetInt32(),
                MaxNewTokens = c.GetProperty("max_new_tokens").GetInt32(),
                StopTokenIds = [c.GetProperty("eos").GetInt32()],
                LengthPenalty = c.GetProperty("length_penalty").GetSingle(),
            };
            var result = WithModel(g => g.Generate(Fixture.Ints(c.GetProperty("prompt")), options));
            Assert.Equal(Fixture.Ints(c.GetProperty("tokens")), result.Tokens);
            Assert.Equal(c.GetProperty("score").GetDouble(), result.Score!.Value, Tolerances.BeamScore);
        }
    }

    [Fact]
    public void Generate_BeamSearchWideEnough_FindsBruteForceBest()
    {
        // With NumBeams = V² every 2-token prefix survives, so after 3 steps the best beam is the exact arg max of
        // sum log p over all V³ continuations (no stop token: every hypothesis has the same length).
        const int V = 5;
        var model = MarkovModel.Random(V, seed: 3);
        var result = new TextGenerator(model).Generate([0], new GenerationOptions { NumBeams = V * V, MaxNewTokens = 3 });

        double LogP(int from, int to)
        {
            var logits = new float[V];
            model.ForwardLast([from], default, model.CreateCache(1, 1), logits);
            double max = logits.Max(), sum = logits.Sum(x => Math.Exp(x - max));
            return logits[to] - max - Math.Log(sum);
        }

        var best = (Score: double.NegativeInfinity, Tokens: Array.Empty<int>());
        for (int a = 0; a < V; a++)
        {
            for (int b = 0; b < V; b++)
            {
                for (int c = 0; c < V; c++)
                {
                    double s = LogP(0, a) + LogP(a, b) + LogP(b, c);
                    if (s > best.Score)
                    {
                        best = (s, [a, b, c]);
                    }
                }
            }
        }

        Assert.Equal(best.Tokens, result.Tokens);
        Assert.Equal(best.Score / 3, result.Score!.Value, 1e-5);
    }

    [Fact]
    public void Generate_SameSeed_SameTokens_OtherSeedDiffers()
    {
        var options = new GenerationOptions { DoSample = true, Temperature = 1.5f, TopK = 0, MaxNewTokens = 20, Seed = 7 };
        var first = WithModel(g => g.Generate(Fixture.Prompts[1], options));
        var again = WithModel(g => g.Generate(Fixture.Prompts[1], options));
        var other = WithModel(g => g.Generate(Fixture.Prompts[1], options with { Seed = 8 }));
        Assert.Equal(first.Tokens, again.Tokens);
        Assert.NotEqual(first.Tokens, other.Tokens);
    }

    [Fact]
    public void Generate_SamplingWithTopK1_IsGreedy()
    {
        var greedy = Fixture.Ints(Fixture.Expected.GetProperty("greedy")[1]);
        var result = WithModel(g => g.Generate(Fixture.Prompts[1], new GenerationOptions { DoSample = true, TopK = 1, MaxNewTokens = 20, Seed = 1 }));
        Assert.Equal(greedy, result.Tokens);
    }

    [Fact]
    public void Generate_SamplingWithTopK3_DrawsOnlyFromTheTop3()
    {
        // A Markov model makes the allowed set easy to check token by token.
        var model = MarkovModel.Random(12, seed: 5);
        var result = new TextGenerator(model).Generate([0], new GenerationOptions { DoSample = true, TopK = 3, MaxNewTokens = 30, Seed = 11 });
        int previous = 0;
        foreach (int token in result.Tokens)
        {
            var logits = new float[12];
            model.ForwardLast([previous], default, model.CreateCache(1, 1), logits);
            var top3 = logits.Select((x, i) => (x, i)).OrderByDescending(p => p.x).Take(3).Select(p => p.i);
            Assert.Contains(token, top3);
            previous = token;
        }
    }

    [Fact]
    public void Generate_RepetitionPenalty_ChangesDegenerateGreedy()
    {
        // Prompt 0's greedy continuation repeats one token (not in the prompt): the first step is unchanged (only prompt
        // tokens are penalized, which lowers rivals), the second must leave the now-penalized token.
        var greedy = Fixture.Ints(Fixture.Expected.GetProperty("greedy")[0]);
        Assert.Equal(greedy[0], greedy[1]);
        var result = WithModel(g => g.Generate(Fixture.Prompts[0], new GenerationOptions { MaxNewTokens = 5, RepetitionPenalty = 100f }));
        Assert.Equal(greedy[0], result.Tokens[0]);
        Assert.NotEqual(greedy[0], result.Tokens[1]);
    }

    [Fact]
    public void Generate_PromptLongerThanContext_SaysByHowMuch()
    {
        var error = Assert.Throws<ArgumentException>(() => WithModel(g => g.Generate(new int[50], new GenerationOptions())));
        Assert.Contains("50 tokens", error.Message, StringComparison.Ordinal);
        Assert.Contains("2 tokens too long", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Generate_MaxNewTokensPastContext_SaysTheLimit()
    {
        var error = Assert.Throws<ArgumentException>(() => WithModel(g => g.Generate(new int[40], new GenerationOptions { MaxNewTokens = 20 })));
        Assert.Contains("MaxNewTokens to at most 8", error.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, GenerationOptions> InvalidOptions => new()
    {
        { "MaxNewTokens", new GenerationOptions { MaxNewTokens = 0 } },
        { "Temperature", new GenerationOptions { Temperature = 0f } },
        { "Temperature", new GenerationOptions { Temperature = float.NaN } },
        { "TopK", new GenerationOptions { TopK = -1 } },
        { "TopP", new GenerationOptions { TopP = 0f } },
        { "TopP", new GenerationOptions { TopP = 1.5f } },
        { "MinP", new GenerationOptions { MinP = -0.1f } },
        { "RepetitionPenalty", new GenerationOptions { RepetitionPenalty = 0f } },
        { "NumBeams", new GenerationOptions { NumBeams = 0 } },
        { "NumBeams > 1 with DoSample", new GenerationOptions { NumBeams = 2, DoSample = true } },
        { "StopSequences", new GenerationOptions { StopSequences = [""] } },
    };

    [Theory]
    [MemberData(nameof(InvalidOptions))]
    public void Validate_InvalidOption_ErrorNamesIt(string name, GenerationOptions options)
    {
        var error = Assert.ThrowsAny<ArgumentException>(options.Validate);
        Assert.Contains(name, error.Message, StringComparison.Ordinal);
    }
}
