using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ScottPlot;

namespace Sharpformer.Training;

/// <summary>One optimizer step as the JSONL log records it.</summary>
/// <param name="Step">The 1-based number of optimizer steps done (HF's <c>global_step</c>).</param>
/// <param name="Epoch">Fractional epochs done (batches consumed / batches per epoch), as HF logs it.</param>
/// <param name="Loss">The mean training loss over the step's micro-batches (before the update).</param>
/// <param name="LearningRate">The learning rate the step used.</param>
/// <param name="GradNorm">The global gradient norm before clipping.</param>
/// <param name="Tokens">Tokens consumed so far in the run (all steps, including those before a resume).</param>
/// <param name="TokensPerSecond">Tokens of this step over its wall time.</param>
/// <param name="ElapsedSeconds">Training wall time so far (including earlier sessions of a resumed run).</param>
public sealed record StepRecord(long Step, double Epoch, double Loss, double LearningRate, double GradNorm, long Tokens, double TokensPerSecond, double ElapsedSeconds)
{
    /// <summary>Data-parallel runs only: what the step's gradient all-reduce cost; null in a single process.</summary>
    public CommunicationRecord? Communication { get; init; }
}

/// <summary>The gradient all-reduce of one data-parallel step, as the log records it.</summary>
/// <param name="Ranks">The number of processes.</param>
/// <param name="Bytes">Gradient bytes each rank all-reduced (4 × trainable parameters).</param>
/// <param name="Buckets">The number of buckets they were sent in.</param>
/// <param name="AllReduceSeconds">Seconds inside all-reduce calls (on the communication thread when overlapped with backward).</param>
/// <param name="WaitSeconds">Seconds the step waited for communication after backward had finished (the part not hidden behind compute).</param>
public sealed record CommunicationRecord(int Ranks, long Bytes, int Buckets, double AllReduceSeconds, double WaitSeconds);

/// <summary>One evaluation on the held-out split.</summary>
/// <param name="Step">The optimizer step after which it ran.</param>
/// <param name="Epoch">Fractional epochs done.</param>
/// <param name="EvalLoss">Mean loss over the held-out batches.</param>
public sealed record EvalRecord(long Step, double Epoch, double EvalLoss)
{
    /// <summary>Task metrics of this evaluation by name (<c>accuracy</c>, <c>macro_f1</c>, <c>f1</c>, <c>exact_match</c>, …), logged as <c>eval_&lt;name&gt;</c>; null for none.</summary>
    public IReadOnlyDictionary<string, double>? Metrics { get; init; }

    /// <summary>exp(eval loss).</summary>
    public double Perplexity => Math.Exp(EvalLoss);
}

/// <summary>
/// The run's log: one JSON object per line (<c>step</c>, <c>epoch</c>, <c>loss</c>, <c>lr</c>, <c>grad_norm</c>,
/// <c>tokens</c>, <c>tokens_per_s</c>, <c>elapsed_s</c> per optimizer step; <c>step</c>, <c>epoch</c>, <c>eval_loss</c>,
/// <c>perplexity</c> per evaluation), flushed after every line, and the loss curve drawn from it as a PNG beside it.
/// </summary>
public sealed class TrainingLog : IDisposable
{
    private readonly StreamWriter _writer;
    private readonly List<StepRecord> _steps = [];
    private readonly List<EvalRecord> _evals = [];

    private TrainingLog(string path, StreamWriter writer, IEnumerable<StepRecord> steps, IEnumerable<EvalRecord> evals)
    {
        Path = path;
        _writer = writer;
        _steps.AddRange(steps);
        _evals.AddRange(evals);
    }

    /// <summary>The JSONL file.</summary>
    public string Path { get; }

    /// <summary>The PNG of the loss curve, beside the log (<c>train_log.jsonl</c> → <c>train_log.png</c>).</summary>
    public string PlotPath => System.IO.Path.ChangeExtension(Path, ".png");

    /// <summary>The step records so far.</summary>
    public IReadOnlyList<StepRecord> Steps => _steps;

    /// <summary>The evaluation records so far.</summary>
    public IReadOnlyList<EvalRecord> Evals => _evals;

    /// <summary>
    /// Opens the log for a run that has done <paramref name="resumeStep"/> steps: records after that step (written by a
    /// session that died before its next checkpoint, and about to be recomputed) are dropped, earlier ones kept; with
    /// <paramref name="resumeStep"/> 0 the file starts empty.
    /// </summary>
    /// <param name="path">The JSONL file.</param>
    /// <param name="resumeStep">Steps already done by the checkpoint being resumed (0 for a new run).</param>
    /// <returns>The open log.</returns>
    public static TrainingLog Open(string path, long resumeStep)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var steps = new List<StepRecord>();
        var evals = new List<EvalRecord>();
        var keptLines = new List<string>();
        if (resumeStep > 0 && File.Exists(path))
        {
            foreach (var line in File.ReadLines(path))
            {
                if (string.IsNullOrWhiteSpace(line)) continue;
                JsonNode? node;
                try
                {
                    node = JsonNode.Parse(line);
                }
                catch (JsonException)
                {
                    continue; // a line cut by a kill: it belongs to a step that is recomputed anyway
                }

                long step = node?["step"]?.GetValue<long>() ?? long.MaxValue;
                if (step > resumeStep) continue;
                keptLines.Add(line);
                if (node!["eval_loss"] is not null)
                {
                    var metrics = new Dictionary<string, double>();
                    foreach (var (key, value) in node.AsObject())
                    {
                        if (key.StartsWith("eval_", StringComparison.Ordinal) && key != "eval_loss" && value is JsonValue number && number.TryGetValue<double>(out var metric))
                        {
                            metrics[key["eval_".Length..]] = metric;
                        }
                    }

                    evals.Add(new EvalRecord(step, node["epoch"]!.GetValue<double>(), node["eval_loss"]!.GetValue<double>()) { Metrics = metrics.Count > 0 ? metrics : null });
                }
                else if (node["loss"] is not null)
                {
                    steps.Add(new StepRecord(step, node["epoch"]!.GetValue<double>(), node["loss"]!.GetValue<double>(), node["lr"]!.GetValue<double>(),
                        node["grad_norm"]!.GetValue<double>(), node["tokens"]!.GetValue<long>(), node["tokens_per_s"]!.GetValue<double>(), node["elapsed_s"]!.GetValue<double>()));
                }
            }
        }

        var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        if (directory is not null) Directory.CreateDirectory(directory);
        Rewrite(path, keptLines);
        var writer = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read), new UTF8Encoding(false));
        return new TrainingLog(path, writer, steps, evals);
    }

    /// <summary>Appends a step record.</summary>
    /// <param name="record">The step.</param>
    public void Write(StepRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        _steps.Add(record);
        var line = new JsonObject
        {
            ["step"] = record.Step,
            ["epoch"] = Round(record.Epoch),
            ["loss"] = record.Loss,
            ["lr"] = record.LearningRate,
            ["grad_norm"] = record.GradNorm,
            ["tokens"] = record.Tokens,
            ["tokens_per_s"] = Round(record.TokensPerSecond),
            ["elapsed_s"] = Round(record.ElapsedSeconds),
        };
        if (record.Communication is { } c)
        {
            line["ranks"] = c.Ranks;
            line["allreduce_bytes"] = c.Bytes;
            line["allreduce_buckets"] = c.Buckets;
            line["allreduce_s"] = Round(c.AllReduceSeconds);
            line["allreduce_wait_s"] = Round(c.WaitSeconds);
        }

        WriteLine(line);
    }

    /// <summary>Appends an evaluation record.</summary>
    /// <param name="record">The evaluation.</param>
    public void Write(EvalRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        _evals.Add(record);
        var json = new JsonObject
        {
            ["step"] = record.Step,
            ["epoch"] = Round(record.Epoch),
            ["eval_loss"] = record.EvalLoss,
            ["perplexity"] = record.Perplexity,
        };
        if (record.Metrics is not null)
        {
            foreach (var (name, value) in record.Metrics)
            {
                json["eval_" + name] = value;
            }
        }

        WriteLine(json);
    }

    /// <summary>Draws the training loss (and the evaluation loss, when there is any) against the step into <see cref="PlotPath"/>.</summary>
    /// <param name="title">The plot title (e.g. the model and task).</param>
    public void SavePlot(string title)
    {
        if (_steps.Count == 0 && _evals.Count == 0) return;
        var plot = new Plot();
        if (_steps.Count > 0)
        {
            var train = plot.Add.ScatterLine(_steps.Select(s => (double)s.Step).ToArray(), _steps.Select(s => s.Loss).ToArray());
            train.LegendText = "training loss";
            train.LineWidth = 1.5f;
        }

        if (_evals.Count > 0)
        {
            var eval = plot.Add.Scatter(_evals.Select(s => (double)s.Step).ToArray(), _evals.Select(s => s.EvalLoss).ToArray());
            eval.LegendText = "eval loss";
            eval.MarkerSize = 8;
            eval.LineWidth = 1.5f;
        }

        plot.Title(title);
        plot.XLabel("optimizer step");
        plot.YLabel("cross-entropy loss (nats)");
        plot.ShowLegend(Alignment.UpperRight);
        string temp = PlotPath + ".tmp";
        plot.SavePng(temp, 900, 540);
        File.Move(temp, PlotPath, overwrite: true);
    }

    /// <inheritdoc/>
    public void Dispose() => _writer.Dispose();

    private void WriteLine(JsonObject json)
    {
        _writer.Write(json.ToJsonString());
        _writer.Write('\n');
        _writer.Flush();
    }

    private static double Round(double value) => Math.Round(value, 4);

    private static void Rewrite(string path, List<string> lines)
    {
        var text = new StringBuilder();
        foreach (var line in lines) text.Append(line).Append('\n');
        Checkpoints.CheckpointStore.WriteAtomically(path, s =>
        {
            var bytes = Encoding.UTF8.GetBytes(text.ToString());
            s.Write(bytes);
        });
    }
}
