using Sharpformer.Models;
using Sharpformer.Models.Bert;
using Sharpformer.NN;
using Sharpformer.Training.Optim;

namespace Sharpformer.Training.Tests.Reference;

/// <summary>
/// The trainer's step through <see cref="Optimizer.BackwardAndStep"/> (without clipping the gradient norm taken in
/// AdamW's pass): its log (losses, rates, gradient norms, tokens) and its final weights equal, bit for bit, those of the
/// same run with Backward, the norm and Step one after the other, with and without clipping.
/// </summary>
public sealed class TrainerBackwardAndStepTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sf-trainer-bs-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.5)]
    public void Run_FusedAndSeparate_SameLogAndWeightsBitForBit(double maxGradNorm)
    {
        var fixture = ReferenceFixture.Load("train_bert");
        var options = new TrainerOptions
        {
            MaxSteps = 5,
            LearningRate = 1e-3,
            LrSchedule = "linear",
            WarmupSteps = 2,
            WeightDecay = 0.01,
            MaxGradNorm = maxGradNorm,
            KeepCheckpoints = 1,
        };

        (BertForMaskedLM Model, IReadOnlyList<StepRecord> Log) Train(bool fuse, string output)
        {
            var model = BertForMaskedLM.FromPretrained(fixture.Folder);
            foreach (var dropout in model.NamedModules().Select(m => m.Module).OfType<Dropout>()) dropout.P = 0.1f;
            var trainer = new Trainer(model, batch => ((ILanguageModel)model).LanguageModelingLoss(batch.InputIds, batch.AttentionMask, batch.Labels), new FixtureBatches(fixture), null, options,
                output, folder => model.SaveSafetensors(Path.Combine(folder, "model.safetensors")))
            {
                UseBackwardAndStep = fuse,
            };
            return (model, trainer.Run());
        }

        var (fusedModel, fusedLog) = Train(fuse: true, Path.Combine(_dir, "fused"));
        var (plainModel, plainLog) = Train(fuse: false, Path.Combine(_dir, "plain"));

        Assert.Equal(plainLog.Count, fusedLog.Count);
        for (int i = 0; i < plainLog.Count; i++)
        {
            var (p, f) = (plainLog[i], fusedLog[i]);
            Assert.Equal((p.Step, p.Epoch, p.Loss, p.LearningRate, p.Tokens), (f.Step, f.Epoch, f.Loss, f.LearningRate, f.Tokens));
            Assert.Equal(BitConverter.DoubleToInt64Bits(p.GradNorm), BitConverter.DoubleToInt64Bits(f.GradNorm));
            Assert.True(p.GradNorm > 0 && double.IsFinite(p.GradNorm), $"step {p.Step}: the log holds the gradient norm ({p.GradNorm})");
        }

        var expected = plainModel.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Value.ToArray());
        foreach (var (name, parameter) in fusedModel.NamedParameters())
        {
            Assert.True(expected[name].AsSpan().SequenceEqual(parameter.Value.ToArray()), $"{name} differs between the fused and the separate trainer");
        }

        // The runs really trained: the weights moved.
        var initial = BertForMaskedLM.FromPretrained(fixture.Folder).NamedParameters().First();
        Assert.False(initial.Parameter.Value.ToArray().AsSpan().SequenceEqual(expected[initial.Name]), "the weights did not move");
    }
}
