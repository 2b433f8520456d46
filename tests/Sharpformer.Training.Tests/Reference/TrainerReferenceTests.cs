using Sharpformer.Models;
using Sharpformer.Models.Bert;
using Sharpformer.NN;
using Xunit.Abstractions;

namespace Sharpformer.Training.Tests.Reference;

/// <summary>
/// The trainer (our AdamW, clipping, HF schedule and parameter groups) against the 10-step PyTorch run of
/// tests/fixtures/train_bert, and its resume: k steps + resume + (N − k) steps equal N steps in one run, bit for bit.
/// </summary>
public sealed class TrainerReferenceTests(ITestOutputHelper output) : IDisposable
{
    private static readonly Lazy<ReferenceFixture> Fixture = new(() => ReferenceFixture.Load("train_bert"));

    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sf-trainer-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static TrainerOptions Options(long saveEvery = 0)
    {
        var run = Fixture.Value.Run;
        return new TrainerOptions
        {
            MaxSteps = run.Steps,
            LearningRate = run.Lr,
            LrSchedule = run.LrSchedule,
            WarmupSteps = run.WarmupSteps,
            WeightDecay = run.WeightDecay,
            MaxGradNorm = run.MaxGradNorm,
            Beta1 = run.Beta1,
            Beta2 = run.Beta2,
            Epsilon = run.Eps,
            SaveEvery = saveEvery,
            KeepCheckpoints = 5,
        };
    }

    private static Trainer NewTrainer(BertForMaskedLM model, TrainerOptions options, string output) =>
        new(model, batch => ((ILanguageModel)model).LanguageModelingLoss(batch.InputIds, batch.AttentionMask, batch.Labels), new FixtureBatches(Fixture.Value), null, options, output,
            folder => model.SaveSafetensors(Path.Combine(folder, "model.safetensors")));

    [Fact]
    public void Run_TenSteps_MatchesPyTorchLossesLearningRatesNormsAndFinalWeights()
    {
        var fixture = Fixture.Value;
        var model = BertForMaskedLM.FromPretrained(fixture.Folder);
        var log = NewTrainer(model, Options(), _dir).Run();

        Assert.Equal(fixture.Steps.Count, log.Count);
        for (int i = 0; i < log.Count; i++)
        {
            var expected = fixture.Steps[i];
            ReferenceCompare.AssertClose($"step {expected.Step} loss", log[i].Loss, expected.Loss);
            ReferenceCompare.AssertClose($"step {expected.Step} grad norm", log[i].GradNorm, expected.GradNorm);
            Assert.Equal(expected.Lr, log[i].LearningRate, 7);
        }

        (string Name, float Error) worst = ("", 0f);
        foreach (var (name, parameter) in model.NamedParameters())
        {
            float error = fixture.AssertFinalWeight(name, parameter.Value.ToArray());
            if (error >= worst.Error) worst = (name, error);
        }

        output.WriteLine($"worst final weight {worst.Name}: {worst.Error:G3} of its max |PyTorch|");
        Assert.True(File.Exists(Path.Combine(_dir, "model.safetensors")), "the final model is saved in the output folder");
        Assert.True(File.Exists(Path.Combine(_dir, "train_log.png")), "the loss curve is drawn beside the log");
    }

    [Fact]
    public void Resume_KStepsThenTheRest_EqualsOneRun_BitForBit_WithDropoutOn()
    {
        var fixture = Fixture.Value;
        static BertForMaskedLM WithDropout(string folder)
        {
            var model = BertForMaskedLM.FromPretrained(folder);
            foreach (var dropout in model.NamedModules().Select(m => m.Module).OfType<Dropout>()) dropout.P = 0.1f;
            return model;
        }

        var whole = WithDropout(fixture.Folder);
        var wholeLog = NewTrainer(whole, Options(), Path.Combine(_dir, "whole")).Run();

        // First session: killed (here: cancelled) after step 4, right after the checkpoint of step 4.
        string split = Path.Combine(_dir, "split");
        var first = WithDropout(fixture.Folder);
        using var cancel = new CancellationTokenSource();
        var trainer = NewTrainer(first, Options(saveEvery: 4), split);
        trainer.Saved = _ => cancel.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => trainer.Run(cancel.Token));
        Assert.Equal(4, trainer.Step);

        // Second session: a fresh process would build the model from the original folder, then resume.
        var second = WithDropout(fixture.Folder);
        var resumed = NewTrainer(second, Options(saveEvery: 4), split);
        resumed.Resume(Path.Combine(split, "checkpoint-4"));
        var resumedLog = resumed.Run();

        Assert.Equal(wholeLog.Select(s => s.Loss), resumedLog.Select(s => s.Loss));
        Assert.Equal(wholeLog.Select(s => s.GradNorm), resumedLog.Select(s => s.GradNorm));
        var expected = whole.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Value.ToArray());
        foreach (var (name, parameter) in second.NamedParameters())
        {
            Assert.True(expected[name].AsSpan().SequenceEqual(parameter.Value.ToArray()), $"{name} differs between the one-run and the resumed run");
        }

        // The dropout really drew masks: the same run without dropout ends elsewhere.
        Assert.NotEqual(fixture.Steps[^1].Loss, wholeLog[^1].Loss, 3);
    }

    [Fact]
    public void Resume_CheckpointOfAnotherModelOrOtherSettings_IsRefusedAndNothingChanges()
    {
        var fixture = Fixture.Value;
        string run = Path.Combine(_dir, "run");
        NewTrainer(BertForMaskedLM.FromPretrained(fixture.Folder), Options() with { MaxSteps = 2 }, run).Run();
        string checkpoint = Path.Combine(run, "checkpoint-2");
        var before = Directory.GetFiles(checkpoint).ToDictionary(f => f, File.ReadAllBytes);

        var other = NewTrainer(BertForMaskedLM.FromPretrained(fixture.Folder), Options() with { Seed = 7 }, run);
        var ex = Assert.Throws<InvalidDataException>(() => other.Resume(checkpoint));
        Assert.Contains("seed", ex.Message, StringComparison.Ordinal);

        // Another architecture: the same config with one layer less.
        var config = (Sharpformer.IO.Config.BertConfig)Sharpformer.IO.Config.ModelConfig.Load(fixture.Folder);
        var smaller = new BertForMaskedLM(config with { NumHiddenLayers = 1 }, VarBuilder.FromInit(seed: 1));
        var mismatched = new Trainer(smaller, batch => ((ILanguageModel)smaller).LanguageModelingLoss(batch.InputIds, batch.AttentionMask, batch.Labels),
            new FixtureBatches(fixture), null, Options(), run, _ => { });
        ex = Assert.Throws<InvalidDataException>(() => mismatched.Resume(checkpoint));
        Assert.Contains("another model", ex.Message, StringComparison.Ordinal);

        // A corrupted file is named, and nothing on disk changed.
        File.WriteAllBytes(Path.Combine(checkpoint, "optimizer.json"), "{}"u8.ToArray());
        ex = Assert.Throws<InvalidDataException>(() => NewTrainer(BertForMaskedLM.FromPretrained(fixture.Folder), Options(), run).Resume(checkpoint));
        Assert.Contains("optimizer.json", ex.Message, StringComparison.Ordinal);
        File.WriteAllBytes(Path.Combine(checkpoint, "optimizer.json"), before[Path.Combine(checkpoint, "optimizer.json")]);
        foreach (var (file, bytes) in before) Assert.Equal(bytes, File.ReadAllBytes(file));
    }

    [Fact]
    public void Run_NaNLoss_StopsNamingTheStep_LastCheckpointIntact()
    {
        var fixture = Fixture.Value;
        var model = BertForMaskedLM.FromPretrained(fixture.Folder);
        int calls = 0;
        var trainer = new Trainer(model, batch =>
        {
            var loss = ((ILanguageModel)model).LanguageModelingLoss(batch.InputIds, batch.AttentionMask, batch.Labels);
            return ++calls == 4 ? Sharpformer.Tensors.Ops.Scale(loss, float.NaN) : loss;
        }, new FixtureBatches(fixture), null, Options(saveEvery: 2), _dir, folder => model.SaveSafetensors(Path.Combine(folder, "model.safetensors")));
        var ex = Assert.Throws<TrainingDivergedException>(() => trainer.Run());
        Assert.Contains("at step 4", ex.Message, StringComparison.Ordinal);
        Assert.Equal(2, Sharpformer.Training.Checkpoints.CheckpointStore.Verify(Path.Combine(_dir, "checkpoint-2")));
        Assert.False(Directory.Exists(Path.Combine(_dir, "checkpoint-4")));
    }
}
