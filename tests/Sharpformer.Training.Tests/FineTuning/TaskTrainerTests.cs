using System.Text.Json.Nodes;
using Sharpformer.NN;
using Sharpformer.Tensors;
using Sharpformer.Training.FineTuning;

namespace Sharpformer.Training.Tests.FineTuning;

public sealed class TaskTrainerTests : IDisposable
{
    private readonly FineTuningKit _kit = new();

    public void Dispose() => _kit.Dispose();

    /// <summary>A two-class classifier over one float feature per example (the first input id): logits = x·w + b.</summary>
    private sealed class TinyClassifier : Module
    {
        public TinyClassifier()
        {
            Classifier = RegisterModule("classifier", new Linear(1, 2, VarBuilder.FromInit(seed: 3).Push("classifier")));
        }

        public Linear Classifier { get; }

        public Tensor Logits(TaskBatch batch)
        {
            var x = batch.InputIds.ToArray<int>().Where((_, i) => i % batch.SequenceLength == 0).Select(v => (float)v).ToArray();
            return Classifier.Forward(Tensor.FromArray(x, new Shape(1, batch.BatchSize, 1)));
        }

        public Tensor Loss(TaskBatch batch) => Ops.CrossEntropy(Logits(batch), batch.Labels!.Reshape(1, batch.BatchSize));
    }

    [Fact]
    public void TrainerOfTaskBatches_TrainsAndLogsEvalMetrics()
    {
        // Feature 1 → class 1, feature −1 → class 0: learnable in a few steps.
        var features = new[] { 1, -1, 1, -1, 1, -1, 1, -1 };
        TaskBatch Make(IReadOnlyList<int> items) => new(
            Tensor.FromArray(items.Select(i => features[i]).ToArray(), new Shape(items.Count, 1)),
            Tensor.FromArray(Enumerable.Repeat(1, items.Count).ToArray(), new Shape(items.Count, 1)),
            labels: Tensor.FromArray(items.Select(i => features[i] > 0 ? 1 : 0).ToArray(), new Shape(items.Count)));
        var model = new TinyClassifier();
        var source = new TaskBatchSource(features.Length, 4, Make, seed: 1);
        var options = new TrainerOptions { MaxSteps = 30, LearningRate = 0.5, EvalEvery = 15, SaveEvery = 0, MaxGradNorm = 0, LrSchedule = "constant" };
        var trainer = new Trainer<TaskBatch>(model, model.Loss, source, source.EvalBatches, options, _kit.Folder, folder => File.WriteAllText(Path.Combine(folder, "config.json"), "{}"))
        {
            EvalMetrics = () =>
            {
                var predictions = new List<int>();
                var references = new List<int>();
                foreach (var batch in source.EvalBatches())
                {
                    var logits = model.Logits(batch).ToArray();
                    for (var b = 0; b < batch.BatchSize; b++) predictions.Add(logits[(2 * b) + 1] > logits[2 * b] ? 1 : 0);
                    references.AddRange(batch.Labels!.ToArray<int>());
                }

                return ClassificationMetrics.Compute(predictions, references, ["neg", "pos"]).ToMetrics();
            },
        };

        var steps = trainer.Run();

        Assert.Equal(30, steps.Count);
        Assert.True(steps[^1].Loss < steps[0].Loss);
        var evals = File.ReadAllLines(trainer.LogPath).Select(l => JsonNode.Parse(l)!).Where(n => n["eval_loss"] is not null).ToList();
        Assert.Equal(2, evals.Count);
        Assert.Equal(1.0, evals[^1]["eval_accuracy"]!.GetValue<double>());
        Assert.Equal(1.0, evals[^1]["eval_macro_f1"]!.GetValue<double>());
    }
}

public sealed class EvalMetricsLogTests : IDisposable
{
    private readonly FineTuningKit _kit = new();

    public void Dispose() => _kit.Dispose();

    [Fact]
    public void EvalRecordMetrics_WrittenAsEvalFields_AndReadBackOnResume()
    {
        var path = Path.Combine(_kit.Folder, "log.jsonl");
        using (var log = TrainingLog.Open(path, resumeStep: 0))
        {
            log.Write(new EvalRecord(5, 0.5, 0.7) { Metrics = new Dictionary<string, double> { ["accuracy"] = 0.75, ["macro_f1"] = 0.5 } });
            log.Write(new EvalRecord(10, 1.0, 0.6));
        }

        var first = JsonNode.Parse(File.ReadLines(path).First())!;
        Assert.Equal(0.75, first["eval_accuracy"]!.GetValue<double>());
        Assert.Equal(0.5, first["eval_macro_f1"]!.GetValue<double>());

        using var resumed = TrainingLog.Open(path, resumeStep: 10);
        Assert.Equal(0.75, resumed.Evals[0].Metrics!["accuracy"]);
        Assert.Null(resumed.Evals[1].Metrics);
    }
}
