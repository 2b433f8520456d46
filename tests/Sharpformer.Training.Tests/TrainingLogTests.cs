using System.Text.Json.Nodes;

namespace Sharpformer.Training.Tests;

public sealed class TrainingLogTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sf-log-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static StepRecord Step(long step, double loss) => new(step, step / 10.0, loss, 1e-4, 0.5, step * 128, 1000, step * 0.1);

    [Fact]
    public void Write_OneJsonObjectPerLine_WithTheIssueFields()
    {
        string path = Path.Combine(_dir, "train_log.jsonl");
        using (var log = TrainingLog.Open(path, resumeStep: 0))
        {
            log.Write(Step(1, 5.5));
            log.Write(new EvalRecord(1, 0.1, Math.Log(20)));
        }

        var lines = File.ReadAllLines(path);
        Assert.Equal(2, lines.Length);
        var step = JsonNode.Parse(lines[0])!.AsObject();
        Assert.Equal(["step", "epoch", "loss", "lr", "grad_norm", "tokens", "tokens_per_s", "elapsed_s"], step.Select(p => p.Key));
        Assert.Equal(5.5, step["loss"]!.GetValue<double>());
        var eval = JsonNode.Parse(lines[1])!.AsObject();
        Assert.Equal(20, eval["perplexity"]!.GetValue<double>(), 9);
        Assert.Equal(Math.Log(20), eval["eval_loss"]!.GetValue<double>(), 12);
    }

    [Fact]
    public void Open_Resume_DropsRecordsAfterTheCheckpointStep_AndCutLines()
    {
        string path = Path.Combine(_dir, "train_log.jsonl");
        using (var log = TrainingLog.Open(path, resumeStep: 0))
        {
            for (int s = 1; s <= 5; s++) log.Write(Step(s, 10 - s));
            log.Write(new EvalRecord(4, 0.4, 3.0));
        }

        File.AppendAllText(path, "{\"step\": 6, \"loss\": 3."); // a line cut by a kill
        using (var resumed = TrainingLog.Open(path, resumeStep: 3))
        {
            Assert.Equal([1L, 2L, 3L], resumed.Steps.Select(s => s.Step));
            Assert.Empty(resumed.Evals);
            resumed.Write(Step(4, 1.0));
        }

        var steps = File.ReadAllLines(path).Select(l => JsonNode.Parse(l)!["step"]!.GetValue<long>()).ToArray();
        Assert.Equal([1L, 2L, 3L, 4L], steps);
    }

    [Fact]
    public void SavePlot_WritesAPng()
    {
        string path = Path.Combine(_dir, "train_log.jsonl");
        using var log = TrainingLog.Open(path, resumeStep: 0);
        for (int s = 1; s <= 20; s++) log.Write(Step(s, 5.0 / s));
        log.Write(new EvalRecord(10, 1.0, 0.7));
        log.SavePlot("tiny GPT-2, causal LM");
        var bytes = File.ReadAllBytes(log.PlotPath);
        Assert.True(bytes.Length > 1000);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
    }
}
