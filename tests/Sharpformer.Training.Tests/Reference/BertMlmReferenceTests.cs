using Sharpformer.Models.Bert;
using Sharpformer.Tensors;
using Sharpformer.Text;
using Xunit.Abstractions;

namespace Sharpformer.Training.Tests.Reference;

/// <summary>
/// BertForMaskedLM's training path (module path + autograd) against tests/fixtures/train_bert: the step-0 loss and
/// the gradient of every parameter PyTorch computes for the same weights and batch.
/// </summary>
public class BertMlmReferenceTests(ITestOutputHelper output)
{
    private static readonly Lazy<ReferenceFixture> Fixture = new(() => ReferenceFixture.Load("train_bert"));

    [Fact]
    public void Step0_LossAndEveryGradient_MatchPyTorch()
    {
        var fixture = Fixture.Value;
        var model = BertForMaskedLM.FromPretrained(fixture.Folder);
        Assert.Empty(model.LoadReport!.Missing);
        Assert.Empty(model.LoadReport.Unused);
        model.Train(); // dropout is 0 in the config, so training mode changes nothing but the path the trainer uses
        var batch = fixture.Step0Batch;

        var result = model.Forward(batch.InputIds, batch.AttentionMask, batch.TokenTypeIds, labels: batch.Labels);
        double lossError = ReferenceCompare.AssertClose("step-0 loss", result.Loss!.ToArray()[0], fixture.Step0Loss);
        result.Loss.Backward();

        var parameters = model.NamedParameters().ToList();
        (string Name, float Error) worst = ("", 0f);
        Assert.Equal(fixture.ParameterNames.Order(StringComparer.Ordinal), parameters.Select(p => p.Name).Order(StringComparer.Ordinal));
        foreach (var (name, parameter) in parameters)
        {
            var grad = parameter.Value.Grad;
            Assert.True(grad is not null, $"{name} has no gradient after Backward(); PyTorch's is in expected_grads.safetensors.");
            Assert.Equal(fixture.Shapes[name], grad.Shape.Dims.ToArray());
            float error = fixture.AssertGradient(name, grad.ToArray());
            if (error >= worst.Error) worst = (name, error);
        }

        output.WriteLine($"loss relative error {lossError:G3}; worst gradient {worst.Name}: {worst.Error:G3} of its max |PyTorch|");
    }

    [Fact]
    public void Run_TenStepsOfOurGradientsThroughTorchsAdamW_MatchPyTorchLossesNormsAndFinalWeights()
    {
        // Replays the fixture's run with our forward/backward and the oracle transcription of torch's clip + AdamW:
        // shows the run is reproducible within the tolerance in float32, before the trainer lands.
        var fixture = Fixture.Value;
        var run = fixture.Run;
        var model = BertForMaskedLM.FromPretrained(fixture.Folder);
        model.Train();
        var parameters = model.NamedParameters().ToList();
        var adam = new TorchAdamWOracle(run.Beta1, run.Beta2, run.Eps);
        double worstLoss = 0, worstNorm = 0;
        foreach (var step in fixture.Steps)
        {
            var batch = fixture.Batches[step.Batch];
            var loss = model.Forward(batch.InputIds, batch.AttentionMask, batch.TokenTypeIds, labels: batch.Labels).Loss!;
            worstLoss = Math.Max(worstLoss, ReferenceCompare.AssertClose($"step {step.Step} loss", loss.ToArray()[0], step.Loss));
            loss.Backward();
            var grads = parameters.Select(p => p.Parameter.Value.Grad!.ToArray()).ToList();
            double norm = TorchAdamWOracle.ClipGradNorm(grads, run.MaxGradNorm);
            worstNorm = Math.Max(worstNorm, ReferenceCompare.AssertClose($"step {step.Step} grad norm", norm, step.GradNorm));
            adam.BeginStep();
            for (int i = 0; i < parameters.Count; i++)
            {
                var (name, parameter) = parameters[i];
                var values = parameter.Value.ToArray();
                adam.Update(name, values, grads[i], step.Lr, fixture.IsNoDecay(name) ? 0.0 : run.WeightDecay);
                parameter.Value = Tensor.FromArray(values, parameter.Shape); // a fresh leaf: no gradient carried over
            }
        }

        (string Name, float Error) worst = ("", 0f);
        foreach (var (name, parameter) in parameters)
        {
            float error = fixture.AssertFinalWeight(name, parameter.Value.ToArray());
            if (error >= worst.Error) worst = (name, error);
        }

        output.WriteLine($"10 steps: worst loss {worstLoss:G3}, worst grad norm {worstNorm:G3}, worst final weight {worst.Name}: {worst.Error:G3} of its max |PyTorch|");
    }

    [Fact]
    public void Step0_TiedDecoder_GradientHoldsBothUses()
    {
        // The word-embedding gradient PyTorch reports includes the decoder's use of the same matrix: rows of ids that
        // no input holds still get a gradient (through the softmax), which the embedding lookup alone never gives.
        var fixture = Fixture.Value;
        var inputs = fixture.Step0Batch.InputIds.ToArray<int>().ToHashSet();
        var grad = fixture.Step0Gradients["bert.embeddings.word_embeddings.weight"];
        int c = grad.Shape[1];
        int unusedRow = Enumerable.Range(0, grad.Shape[0]).First(id => !inputs.Contains(id));
        Assert.Contains(grad.Data.AsSpan(unusedRow * c, c).ToArray(), g => g != 0f);
        Assert.DoesNotContain("cls.predictions.decoder.weight", fixture.ParameterNames);
        Assert.Contains("cls.predictions.bias", fixture.ParameterNames);
    }

    [Fact]
    public void Batches_TokenizedByAutoTokenizer_MatchTheFixtureIdsBeforeMasking()
    {
        // The script's WordPiece (written by hand) and ours agree on the fixture's sentences, so an MLM collator over
        // our tokenizer can rebuild these batches.
        var fixture = Fixture.Value;
        var tokenizer = AutoTokenizer.FromPretrained(fixture.Folder);
        foreach (var batch in fixture.Batches)
        {
            int t = batch.InputIds.Shape[1];
            var inputs = batch.InputIds.ToArray<int>();
            var labels = batch.Labels.ToArray<int>();
            var mask = batch.AttentionMask.ToArray<int>();
            for (int row = 0; row < batch.Texts.Length; row++)
            {
                var ids = tokenizer.Encode(batch.Texts[row]).Ids;
                var unmasked = new List<int>();
                for (int j = 0; j < t && mask[(row * t) + j] == 1; j++)
                {
                    int label = labels[(row * t) + j];
                    unmasked.Add(label == -100 ? inputs[(row * t) + j] : label);
                }

                Assert.Equal(unmasked, ids);
            }
        }
    }

    [Fact]
    public void Run_Schedule_IsHuggingFaceLinearWithWarmup()
    {
        // The numbers the optimizer branch must reproduce: lr(k) = base · k / warmup, then base · (steps − k) / (steps − warmup).
        var fixture = Fixture.Value;
        var run = fixture.Run;
        Assert.Equal(run.Steps, fixture.Steps.Count);
        foreach (var step in fixture.Steps)
        {
            double lambda = step.Step < run.WarmupSteps
                ? (double)step.Step / run.WarmupSteps
                : Math.Max(0.0, (double)(run.Steps - step.Step) / (run.Steps - run.WarmupSteps));
            Assert.Equal(run.Lr * lambda, step.Lr, 1e-9);
            Assert.Equal(step.Step % fixture.Batches.Count, step.Batch);
        }

        ReferenceCompare.AssertClose("run step 0 loss vs step-0 loss", fixture.Steps[0].Loss, fixture.Step0Loss);
        Assert.Contains(fixture.Steps, s => s.GradNorm > run.MaxGradNorm); // clipping is exercised
    }

    [Fact]
    public void AssertClose_WrongGradient_FailsNamingTensorAndElement()
    {
        var fixture = Fixture.Value;
        var name = "bert.encoder.layer.1.intermediate.dense.weight";
        var grad = (float[])fixture.Step0Gradients[name].Data.Clone();
        grad[37] += 1e-3f * grad.Max(MathF.Abs);
        var e = Assert.ThrowsAny<Exception>(() => fixture.AssertGradient(name, grad));
        Assert.Contains(name, e.Message, StringComparison.Ordinal);
        Assert.Contains("[1, 5]", e.Message, StringComparison.Ordinal); // 37 = row 1, column 5 of [64, 32]
        fixture.AssertGradient(name, fixture.Step0Gradients[name].Data);
    }

    [Fact]
    public void AssertFinalWeight_ZeroGradientBias_ComparedByBoundFromInitialValue()
    {
        var fixture = Fixture.Value;
        var slice = fixture.ZeroGradient[0];
        var initial = fixture.InitialWeights[slice.Name].Data;
        fixture.AssertFinalWeight(slice.Name, initial); // never moved: inside the bound
        var moved = (float[])initial.Clone();
        moved[slice.Start] += 2 * fixture.ZeroGradientBound;
        var e = Assert.ThrowsAny<Exception>(() => fixture.AssertFinalWeight(slice.Name, moved));
        Assert.Contains("exact gradient is 0", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AssertClose_TransposedConv1D_ComparesElementOIWithReferenceIO()
    {
        var expected = new ReferenceTensor("w", [2, 3], [1, 2, 3, 4, 5, 6]); // [in = 2, out = 3]
        ReferenceCompare.AssertClose("w", new float[] { 1, 4, 2, 5, 3, 6 }, expected, transposedConv1D: true);
        Assert.ThrowsAny<Exception>(() => ReferenceCompare.AssertClose("w", new float[] { 1, 2, 3, 4, 5, 6 }, expected, transposedConv1D: true));
        Assert.ThrowsAny<Exception>(() => ReferenceCompare.AssertClose("w", new float[] { 1, 2, 3, 4, 5, float.NaN }, expected));
    }
}
