using Sharpformer.Models;
using Sharpformer.Models.Bert;
using Sharpformer.Models.Gpt2;
using Sharpformer.NN;
using Sharpformer.Tensors;
using Sharpformer.Tensors.Threading;
using Sharpformer.Training.Optim;
using Sharpformer.Training.Tests.Reference;

namespace Sharpformer.Training.Tests.Optim;

/// <summary>These tests set <see cref="ParallelFor.MaxDegreeOfParallelism"/>, a process-wide setting: they run alone.</summary>
[CollectionDefinition(nameof(ThreadCountCollection), DisableParallelization = true)]
public sealed class ThreadCountCollection;

/// <summary>
/// <see cref="Optimizer.BackwardAndStep"/> (the gradient norm taken in AdamW's pass) gives, bit for bit, what Backward,
/// GlobalNorm and Step give (weights, moments, step counts, gradients, the norm), over several steps of the tiny GPT-2
/// (tied wte / lm_head) and BERT fixtures, with a warmup schedule, weight-decay groups, a frozen parameter and a
/// parameter that gets no gradient, on 1 and 2 threads, with and without checkpointed blocks; the same for SGD (Nesterov
/// momentum), for clipping (norm first, clip inside the update) and for gradients accumulated over two micro-batches.
/// </summary>
[Collection(nameof(ThreadCountCollection))]
public sealed class BackwardAndStepTests
{
    private const int Steps = 3;

    [Theory]
    [InlineData("gpt2", 1, false, false)]
    [InlineData("gpt2", 2, false, false)]
    [InlineData("gpt2", 1, true, false)]
    [InlineData("gpt2", 2, true, false)]
    [InlineData("bert", 1, false, false)]
    [InlineData("bert", 2, false, false)]
    [InlineData("bert", 2, true, false)]
    [InlineData("gpt2", 1, false, true)] // SGD takes the optimizer's default measured update (the chunk's sum of squares, then the update)
    [InlineData("gpt2", 2, false, true)]
    [InlineData("bert", 2, false, true)]
    public void BackwardAndStep_NoClipping_EqualsBackwardNormThenStep_BitForBit(string model, int threads, bool checkpointing, bool sgd)
    {
        WithThreads(threads, () =>
        {
            var fused = Setup.Create(model, checkpointing, sgd);
            var plain = Setup.Create(model, checkpointing, sgd);
            for (int step = 0; step < Steps; step++)
            {
                fused.Schedule.Apply(fused.Optimizer);
                plain.Schedule.Apply(plain.Optimizer);

                var result = fused.Optimizer.BackwardAndStep(fused.Loss(step));
                plain.Loss(step).Backward();
                double norm = GradientClipping.GlobalNorm(plain.Optimizer.Groups.SelectMany(g => g.Parameters).Select(p => p.Parameter));
                plain.Optimizer.Step();

                Assert.True(result.Stepped);
                Assert.Equal(BitConverter.DoubleToInt64Bits(norm), BitConverter.DoubleToInt64Bits(result.GradientNorm));
                AssertSameState(plain, fused, $"{(sgd ? "SGD" : "AdamW")} {model}, {threads} thread(s), checkpointing {checkpointing}, step {step + 1}");
                fused.Optimizer.ZeroGrad();
                plain.Optimizer.ZeroGrad();
            }

            Assert.Null(fused.Unused.Value.Grad);
            Assert.DoesNotContain(fused.Optimizer.StateDict().Tensors.Keys, k => k.EndsWith(".unused", StringComparison.Ordinal));
        });
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void BackwardAndStep_WithClipping_EqualsClipThenStep(int threads)
    {
        WithThreads(threads, () =>
        {
            var fused = Setup.Create("gpt2", checkpointing: false);
            var plain = Setup.Create("gpt2", checkpointing: false);
            for (int step = 0; step < Steps; step++)
            {
                fused.Schedule.Apply(fused.Optimizer);
                plain.Schedule.Apply(plain.Optimizer);
                var result = fused.Optimizer.BackwardAndStep(fused.Loss(step), maxGradNorm: 0.05);
                plain.Loss(step).Backward();
                double norm = GradientClipping.ClipGradNorm(plain.Optimizer.Groups.SelectMany(g => g.Parameters).Select(p => p.Parameter), 0.05);
                plain.Optimizer.Step();

                Assert.True(result.Stepped);
                Assert.True(norm > 0.05, $"the norm {norm} must exceed the clip for this test to clip");
                Assert.Equal(BitConverter.DoubleToInt64Bits(norm), BitConverter.DoubleToInt64Bits(result.GradientNorm));

                // The separate form scales inside the update and leaves the gradients unscaled: compare weights and moments.
                AssertSameState(plain, fused, $"clipped step {step + 1}", compareGradients: false);
                fused.Optimizer.ZeroGrad();
                plain.Optimizer.ZeroGrad();
            }
        });
    }

    [Fact]
    public void BackwardAndStep_AfterAnEarlierBackward_AccumulatesThenSteps()
    {
        var fused = Setup.Create("bert", checkpointing: false);
        var plain = Setup.Create("bert", checkpointing: false);
        for (int step = 0; step < 2; step++)
        {
            fused.Schedule.Apply(fused.Optimizer);
            plain.Schedule.Apply(plain.Optimizer);
            fused.Loss(2 * step).Backward();
            var result = fused.Optimizer.BackwardAndStep(fused.Loss((2 * step) + 1));
            plain.Loss(2 * step).Backward();
            plain.Loss((2 * step) + 1).Backward();
            plain.Optimizer.Step();

            Assert.True(result.Stepped);
            AssertSameState(plain, fused, $"accumulated step {step + 1}");
            fused.Optimizer.ZeroGrad();
            plain.Optimizer.ZeroGrad();
        }
    }

    [Fact]
    public void BackwardAndStep_NaNMaxNorm_IsRefusedBeforeBackward()
    {
        var setup = Setup.Create("gpt2", checkpointing: false);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => setup.Optimizer.BackwardAndStep(setup.Loss(0), double.NaN));
        Assert.Contains("maxGradNorm", e.Message, StringComparison.Ordinal);
        Assert.All(setup.Model.Parameters(), p => Assert.Null(p.Value.Grad));
    }

    private static void WithThreads(int threads, Action body)
    {
        int saved = ParallelFor.MaxDegreeOfParallelism;
        ParallelFor.MaxDegreeOfParallelism = threads;
        try
        {
            body();
        }
        finally
        {
            ParallelFor.MaxDegreeOfParallelism = saved;
        }
    }

    private static void AssertSameState(Setup expected, Setup actual, string what, bool compareGradients = true)
    {
        Assert.Equal(expected.Optimizer.StepCount, actual.Optimizer.StepCount);
        var expectedParameters = expected.Model.NamedParameters().ToList();
        var actualParameters = actual.Model.NamedParameters().ToList();
        Assert.Equal(expectedParameters.Select(p => p.Name), actualParameters.Select(p => p.Name));
        for (int i = 0; i < expectedParameters.Count; i++)
        {
            var (name, e) = expectedParameters[i];
            var a = actualParameters[i].Parameter;
            Assert.True(e.Value.ToArray().AsSpan().SequenceEqual(a.Value.ToArray()), $"{what}: {name} differs");
            if (compareGradients)
            {
                Assert.Equal(e.Value.Grad is null, a.Value.Grad is null);
                if (e.Value.Grad is { } grad) Assert.True(grad.ToArray().AsSpan().SequenceEqual(a.Value.Grad!.ToArray()), $"{what}: the gradient of {name} differs");
            }
        }

        var expectedState = expected.Optimizer.StateDict();
        var actualState = actual.Optimizer.StateDict();
        Assert.Equal(expectedState.Tensors.Keys.Order(StringComparer.Ordinal), actualState.Tensors.Keys.Order(StringComparer.Ordinal));
        foreach (var (key, tensor) in expectedState.Tensors)
        {
            Assert.True(tensor.ToArray().AsSpan().SequenceEqual(actualState.Tensors[key].ToArray()), $"{what}: optimizer state {key} differs");
        }

        Assert.Equal(expectedState.ParameterSteps.OrderBy(p => p.Key, StringComparer.Ordinal), actualState.ParameterSteps.OrderBy(p => p.Key, StringComparer.Ordinal));
    }

    /// <summary>A fixture model in training mode with AdamW over HF's groups, one frozen parameter, one parameter outside the graph and a warmup schedule.</summary>
    private sealed record Setup(Module Model, Func<int, Tensor> Loss, Optimizer Optimizer, LearningRateSchedule Schedule, Parameter Unused)
    {
        public static Setup Create(string model, bool checkpointing, bool sgd = false)
        {
            Module module;
            Func<int, Tensor> loss;
            string frozen;
            if (model == "gpt2")
            {
                var fixture = ReferenceFixture.Load("train_gpt2");
                var gpt = Gpt2LMHeadModel.FromPretrained(fixture.Folder);
                gpt.GradientCheckpointing = checkpointing;
                module = gpt;
                loss = step =>
                {
                    var ids = fixture.ClmBatch(step);
                    return gpt.Forward(ids, labels: ids).Loss!;
                };
                frozen = "transformer.wpe.weight";
            }
            else
            {
                var fixture = ReferenceFixture.Load("train_bert");
                var bert = BertForMaskedLM.FromPretrained(fixture.Folder);
                bert.GradientCheckpointing = checkpointing;
                module = bert;
                loss = step =>
                {
                    var b = fixture.Batches[step % fixture.Batches.Count];
                    return ((ILanguageModel)bert).LanguageModelingLoss(b.InputIds, b.AttentionMask, b.Labels);
                };
                frozen = "bert.embeddings.position_embeddings.weight";
            }

            module.Train();
            module.NamedParameters().Single(p => p.Name == frozen).Parameter.RequiresGrad = false;
            var unused = new Parameter(Tensor.FromArray(Enumerable.Range(0, 8).Select(i => i * 0.25f).ToArray(), new Shape(8)));
            var groups = ParameterGroup.TrainerGroups(module, 1e-2, 0.01).Append(new ParameterGroup([("unused", unused)], 1e-2, 0.01));
            Optimizer optimizer = sgd ? new Sgd(groups, momentum: 0.9, nesterov: true) : new AdamW(groups);
            var schedule = new LearningRateSchedule(LearningRateScheduleKind.Linear, warmupSteps: 2, trainingSteps: 10);
            return new Setup(module, loss, optimizer, schedule, unused);
        }
    }
}
