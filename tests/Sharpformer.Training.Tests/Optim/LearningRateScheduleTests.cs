using Sharpformer.NN;
using Sharpformer.Tensors;
using Sharpformer.Training.Optim;

namespace Sharpformer.Training.Tests.Optim;

public class LearningRateScheduleTests
{
    public static TheoryData<int> CaseIndices() => [.. Enumerable.Range(0, OptimFixture.Cases("schedule").Count())];

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void Apply_BeforeEachStep_GivesTheRateTorchLambdaLrGivesThatStep(int index)
    {
        var c = OptimFixture.Cases("schedule").ElementAt(index);
        var schedule = new LearningRateSchedule(
            LearningRateSchedule.Parse(c.GetProperty("name").GetString()!),
            c.GetProperty("warmup").GetInt32(),
            c.GetProperty("training_steps").GetInt32(),
            c.GetProperty("num_cycles").GetDouble());
        double baseLr = c.GetProperty("base_lr").GetDouble();
        var w = new Parameter(Tensor.Zeros(new Shape(1)));
        var optimizer = new Sgd([new ParameterGroup([("w", w)], baseLr)]);
        var expected = OptimFixture.Doubles(c.GetProperty("lrs"));
        for (int step = 0; step < expected.Length; step++)
        {
            schedule.Apply(optimizer);
            double lr = optimizer.Groups[0].LearningRate;
            Assert.True(Math.Abs(lr - expected[step]) <= 1e-12 * baseLr, $"{schedule.Name} W={schedule.WarmupSteps} N={schedule.TrainingSteps} step {step}: expected {expected[step]:R}, got {lr:R}");
            Assert.Equal(schedule.LearningRate(baseLr, step), lr);
            OptimFixture.SetGrad(w, [0f]);
            optimizer.Step();
        }
    }

    [Fact]
    public void Multiplier_LinearWithWarmup_FirstStepZeroPeakAfterWarmupZeroAtEnd()
    {
        var schedule = new LearningRateSchedule(LearningRateScheduleKind.Linear, warmupSteps: 2, trainingSteps: 6);
        Assert.Equal([0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0], Enumerable.Range(0, 8).Select(s => schedule.Multiplier(s)));
    }

    [Theory]
    [InlineData("constant", LearningRateScheduleKind.Constant)]
    [InlineData("constant_with_warmup", LearningRateScheduleKind.ConstantWithWarmup)]
    [InlineData("Linear", LearningRateScheduleKind.Linear)]
    [InlineData("cosine", LearningRateScheduleKind.Cosine)]
    public void Parse_KnownName_ReturnsKindAndNameRoundTrips(string name, LearningRateScheduleKind kind)
    {
        Assert.Equal(kind, LearningRateSchedule.Parse(name));
        Assert.Equal(name.ToLowerInvariant(), new LearningRateSchedule(kind, 1, 10).Name);
    }

    [Fact]
    public void Parse_UnknownName_ThrowsListingKnownNames()
    {
        var e = Assert.Throws<ArgumentException>(() => LearningRateSchedule.Parse("cosine_with_restarts"));
        Assert.Contains("cosine_with_restarts", e.Message, StringComparison.Ordinal);
        foreach (string known in new[] { "constant", "constant_with_warmup", "linear", "cosine" })
        {
            Assert.Contains(known, e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Constructor_DecayWithoutTrainingSteps_Throws()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new LearningRateSchedule(LearningRateScheduleKind.Cosine, warmupSteps: 10));
        Assert.Contains("training steps", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => new LearningRateSchedule(LearningRateScheduleKind.Linear, -1, 10));
        Assert.Equal(1.0, new LearningRateSchedule(LearningRateScheduleKind.ConstantWithWarmup, 3).Multiplier(3));
    }

    [Fact]
    public void Apply_ResumedOptimizer_ContinuesTheSchedule()
    {
        var schedule = new LearningRateSchedule(LearningRateScheduleKind.Linear, 2, 10);
        var w = new Parameter(Tensor.Zeros(new Shape(1)));
        var optimizer = new AdamW([new ParameterGroup([("w", w)], 1e-3)]);
        for (int step = 0; step < 4; step++)
        {
            OptimFixture.SetGrad(w, [1f]);
            schedule.Apply(optimizer);
            optimizer.Step();
        }

        var resumed = new AdamW([new ParameterGroup([("w", w)], 1e-3)]);
        resumed.LoadStateDict(optimizer.StateDict());
        schedule.Apply(resumed);
        Assert.Equal(1e-3 * schedule.Multiplier(4), resumed.Groups[0].LearningRate);
    }
}
