using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.IO.SafeTensors;
using Sharpformer.NN;
using Sharpformer.Tensors;
using Sharpformer.Training.Checkpoints;
using Sharpformer.Training.Data;
using Sharpformer.Training.Distributed;
using Sharpformer.Training.Optim;

namespace Sharpformer.Training;

/// <summary>What the trainer reports after each optimizer step (for a progress line).</summary>
/// <param name="Record">The step's log record.</param>
/// <param name="MaxSteps">The run's total steps.</param>
/// <param name="Eta">Estimated time to the end at the recent pace.</param>
public sealed record TrainerProgress(StepRecord Record, long MaxSteps, TimeSpan Eta);

/// <summary>The loss diverged (NaN or infinite); the last checkpoint written before it is intact.</summary>
public sealed class TrainingDivergedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TrainingDivergedException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What diverged, at which step, and what to do.</param>
    public TrainingDivergedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public TrainingDivergedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The training loop of a language model, as HF <c>Trainer</c> runs it: per optimizer step, <see
/// cref="TrainerOptions.GradientAccumulationSteps"/> micro-batches forward and backward (each loss divided by that
/// count), the global gradient norm (clipped to <see cref="TrainerOptions.MaxGradNorm"/>), one AdamW update at the
/// scheduled learning rate, a JSONL log line; evaluations and checkpoints at their intervals and at the end.
/// A run resumes exactly from any checkpoint: weights, AdamW moments, step count (hence the learning rate), data position
/// and every random draw (dropout masks are reseeded from (seed, step, layer); data order and MLM masks derive from
/// (seed, epoch, batch)) come back as they were, so k steps + resume + (N − k) steps equal N steps in one run.
/// </summary>
/// <remarks>
/// Generic in the batch type so fine-tuning batches (<see cref="FineTuning.TaskBatch"/>: token types, class labels,
/// answer positions) run through the same loop; <see cref="Trainer"/> is the language-model case.
/// </remarks>
/// <typeparam name="TBatch">The batch type the loss function reads.</typeparam>
public class Trainer<TBatch>
    where TBatch : ITrainerBatch
{
    private const string StateFile = "trainer_state.json";
    private const string OptimizerFile = "optimizer.safetensors";
    private const string OptimizerStateFile = "optimizer.json";

    private readonly Module _model;
    private readonly Func<TBatch, Tensor> _loss;
    private readonly IBatchSource<TBatch> _train;
    private readonly Func<IEnumerable<TBatch>>? _eval;
    private readonly TrainerOptions _options;
    private readonly Action<string> _writeModelFolder;
    private readonly CheckpointStore _store;
    private readonly AdamW _optimizer;
    private readonly LearningRateSchedule _schedule;
    private readonly List<Parameter> _trainable;
    private readonly Dropout[] _dropouts;
    private readonly string _fingerprint;
    private long _tokens;
    private double _elapsedBefore;
    private double? _bestValue;
    private long _bestStep;
    private int _evalsWithoutImprovement;

    /// <summary>Prepares a run.</summary>
    /// <param name="model">The model (its trainable parameters are those with RequiresGrad).</param>
    /// <param name="loss">The scalar loss of a batch through the model (recording gradients).</param>
    /// <param name="train">The training batches.</param>
    /// <param name="eval">The held-out batches, enumerated in full at each evaluation; null for none.</param>
    /// <param name="options">The run's settings.</param>
    /// <param name="outputFolder">Where checkpoints, the log, its plot and the final model go.</param>
    /// <param name="writeModelFolder">Writes the model as a Hugging Face folder (config.json, model.safetensors, tokenizer files) into the folder it is given.</param>
    /// <exception cref="ArgumentException">An option is out of range, or the model has nothing to train.</exception>
    public Trainer(Module model, Func<TBatch, Tensor> loss, IBatchSource<TBatch> train, Func<IEnumerable<TBatch>>? eval, TrainerOptions options, string outputFolder, Action<string> writeModelFolder)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(loss);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(outputFolder);
        ArgumentNullException.ThrowIfNull(writeModelFolder);
        options.Validate();
        _model = model;
        _loss = loss;
        _train = train;
        _eval = eval;
        _options = options;
        _writeModelFolder = writeModelFolder;
        OutputFolder = Path.GetFullPath(outputFolder);
        _store = new CheckpointStore(OutputFolder, options.KeepCheckpoints);
        var groups = ParameterGroup.TrainerGroups(model, options.LearningRate, options.WeightDecay);
        _trainable = groups.SelectMany(g => g.Parameters).Select(p => p.Parameter).ToList();
        if (_trainable.Count == 0)
        {
            throw new ArgumentException("Trainer: the model has no trainable parameters (all are frozen); unfreeze some before training.", nameof(model));
        }

        _optimizer = new AdamW(groups, options.Beta1, options.Beta2, options.Epsilon);
        _schedule = new LearningRateSchedule(LearningRateSchedule.Parse(options.LrSchedule), options.WarmupSteps, checked((int)options.MaxSteps));
        _dropouts = model.NamedModules().Select(m => m.Module).OfType<Dropout>().ToArray();
        _fingerprint = Fingerprint(model);
        LogPath = Path.GetFullPath(options.LogPath ?? Path.Combine(OutputFolder, "train_log.jsonl"));
    }

    /// <summary>The run's output folder.</summary>
    public string OutputFolder { get; }

    /// <summary>The JSONL log (its PNG plot is beside it).</summary>
    public string LogPath { get; }

    /// <summary>The steps done so far.</summary>
    public long Step { get; private set; }

    /// <summary>Called after every optimizer step on the training thread.</summary>
    public Action<TrainerProgress>? Progress { get; set; }

    /// <summary>Called with each evaluation.</summary>
    public Action<EvalRecord>? Evaluated { get; set; }

    /// <summary>The folder the best model is kept in while training (config, weights, tokenizer, best.json).</summary>
    public string BestModelFolder => Path.Combine(OutputFolder, "best-model");

    /// <summary>The best value of <see cref="TrainerOptions.MetricForBestModel"/> so far, or null (no such metric, or no evaluation yet).</summary>
    public double? BestMetricValue => _bestValue;

    /// <summary>The step of the best evaluation so far (0 when none).</summary>
    public long BestStep => _bestStep;

    /// <summary>Whether the last <see cref="Run"/> ended early because the metric stopped improving.</summary>
    public bool StoppedEarly { get; private set; }

    /// <summary>Called with each checkpoint folder once it is in place.</summary>
    public Action<string>? Saved { get; set; }

    /// <summary>
    /// Task metrics computed at each evaluation after the eval loss (e.g. accuracy and macro-F1 from
    /// <see cref="FineTuning.ClassificationMetrics"/>), run in evaluation mode without gradients; they go into the
    /// evaluation's log line and <see cref="EvalRecord.Metrics"/>. Null for none.
    /// </summary>
    public Func<IReadOnlyDictionary<string, double>>? EvalMetrics { get; set; }

    /// <summary>
    /// The data-parallel group this trainer is one rank of (default: a single process). With more than one rank, each
    /// rank's batch source must yield its own shard of the global batch (<see cref="BlockDataOptions.ShardCount"/>);
    /// rank 0's weights are broadcast at the start, gradients are averaged over the ranks in buckets during the last
    /// micro-batch's backward (<see cref="GradientReducer"/>) before clipping and the optimizer step, the logged loss and
    /// token counts are the group's, and only rank 0 writes the log, checkpoints and the final model (every rank resumes
    /// from the same checkpoint folder).
    /// </summary>
    public ICommunicator Communicator { get; set; } = SingleProcessCommunicator.Instance;

    /// <summary>Bytes per gradient all-reduce bucket (data-parallel runs; PyTorch DDP's default 25 MiB).</summary>
    public long GradientBucketBytes { get; set; } = GradientReducer.DefaultBucketBytes;

    /// <summary>All-reduce gradient buckets on a communication thread while backward runs (true), or after backward (false).</summary>
    public bool OverlapCommunication { get; set; } = true;

    /// <summary>
    /// Whether a single-process step runs the last micro-batch's backward and the optimizer through
    /// <see cref="Optimizer.BackwardAndStep"/> (without clipping, the norm taken in the update's pass; bit-identical).
    /// False runs Backward, the norm and Step one after the other (tests compare the two).
    /// </summary>
    internal bool UseBackwardAndStep { get; set; } = true;

    /// <summary>A title for the loss plot.</summary>
    public string PlotTitle { get; set; } = "training loss";

    /// <summary>
    /// Writes the final model into the output folder instead of the constructor's writer (which still writes checkpoints
    /// and the best model, whose weights must reload strictly into this module tree): a LoRA run saves its adapter in
    /// PEFT's layout here, or the merged model. Null uses the constructor's writer.
    /// </summary>
    public Action<string>? WriteFinalModel { get; set; }

    /// <summary>
    /// Restores the state of the checkpoint in <paramref name="checkpointFolder"/>: verifies its manifest, checks it
    /// belongs to this model and these data/batch settings, loads the weights, the optimizer state and the data position.
    /// </summary>
    /// <param name="checkpointFolder">A <c>checkpoint-N</c> folder.</param>
    /// <exception cref="InvalidDataException">The checkpoint is incomplete, corrupt, of another model, or of a run with other data settings; nothing is changed on disk.</exception>
    public void Resume(string checkpointFolder)
    {
        ArgumentException.ThrowIfNullOrEmpty(checkpointFolder);
        CheckpointStore.Verify(checkpointFolder);
        var state = JsonNode.Parse(File.ReadAllText(Path.Combine(checkpointFolder, StateFile)))
            ?? throw new InvalidDataException($"{checkpointFolder}: {StateFile} is empty; resume from another checkpoint.");
        string fingerprint = state["model_fingerprint"]?.GetValue<string>() ?? string.Empty;
        if (fingerprint != _fingerprint)
        {
            throw new InvalidDataException($"{checkpointFolder} was saved from another model (its parameter names and shapes differ from this model's); resume with the --model/--config the run started with, or choose another --out.");
        }

        foreach (var (key, value) in RunSettings())
        {
            string saved = state["settings"]?[key]?.ToString() ?? "(none)";
            if (saved != value)
            {
                throw new InvalidDataException($"{checkpointFolder} was saved by a run with {key} = {saved}, this run has {value}; an exact resume needs the same data and batch settings: pass the same options, or start a new run in another --out.");
            }
        }

        using (var weights = SafeTensorsLoader.Open(checkpointFolder))
        {
            _model.LoadStateDict(weights, strict: true);
        }

        _optimizer.LoadStateDict(OptimizerState.Load(Path.Combine(checkpointFolder, OptimizerFile), Path.Combine(checkpointFolder, OptimizerStateFile)));
        Step = state["global_step"]!.GetValue<long>();
        if (_optimizer.StepCount != Step)
        {
            throw new InvalidDataException($"{checkpointFolder}: the optimizer state has {_optimizer.StepCount} steps but {StateFile} says {Step}; the checkpoint is inconsistent: resume from another one.");
        }

        _train.Position = new DataPosition(state["data_position"]!["epoch"]!.GetValue<int>(), state["data_position"]!["batch"]!.GetValue<long>());
        _tokens = state["tokens"]!.GetValue<long>();
        _elapsedBefore = state["elapsed_s"]!.GetValue<double>();
        _bestValue = state["best_metric"]?.GetValue<double>();
        _bestStep = state["best_step"]?.GetValue<long>() ?? 0;
        _evalsWithoutImprovement = state["evals_without_improvement"]?.GetValue<int>() ?? 0;
    }

    /// <summary>Runs from <see cref="Step"/> to <see cref="TrainerOptions.MaxSteps"/>, then saves the final model into the output folder.</summary>
    /// <param name="cancellationToken">Stops between steps (after saving a checkpoint).</param>
    /// <returns>The log of the whole run.</returns>
    /// <exception cref="TrainingDivergedException">The loss or the gradient norm became NaN or infinite; the message names the step.</exception>
    public IReadOnlyList<StepRecord> Run(CancellationToken cancellationToken = default)
    {
        var communicator = Communicator;
        bool root = communicator.Rank == 0;
        if (root) Directory.CreateDirectory(OutputFolder);
        using var log = root ? TrainingLog.Open(LogPath, Step) : null;
        var steps = new List<StepRecord>();
        using var reducer = communicator.Size > 1 ? new GradientReducer(_trainable, communicator, GradientBucketBytes, OverlapCommunication) : null;
        if (reducer is not null) BroadcastParameters(communicator);
        var clock = Stopwatch.StartNew();
        var recent = new Queue<(double Seconds, long Steps)>();
        int accumulation = _options.GradientAccumulationSteps;
        double epochLength = Math.Max(1, _train.BatchesPerEpoch);
        _model.Train();
        while (Step < _options.MaxSteps)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var stepClock = Stopwatch.StartNew();
            _schedule.Apply(_optimizer);
            double lr = _optimizer.Groups[0].LearningRate;
            Reseed();

            double lossSum = 0;
            long stepTokens = 0;
            BackwardStepResult? stepResult = null;
            reducer?.BeginStep();
            for (int micro = 0; micro < accumulation; micro++)
            {
                var batch = _train.Next();
                var loss = _loss(batch);
                float value = loss.ToArray()[0];
                if (!float.IsFinite(value) && reducer is null)
                {
                    throw Diverged($"the loss is {value} at step {Step + 1} (micro-batch {micro + 1} of {accumulation})");
                }

                var scaled = accumulation == 1 ? loss : Ops.Scale(loss, 1f / accumulation);
                if (reducer is not null && micro == accumulation - 1)
                {
                    // The last micro-batch completes the gradients: ship each bucket as soon as backward has finished it.
                    scaled.Backward(reducer.GradientReady);
                }
                else if (reducer is null && micro == accumulation - 1 && UseBackwardAndStep)
                {
                    // Backward and AdamW together: without clipping the gradient norm is taken in the update's own pass
                    // over the gradients (bit-identical to GlobalNorm then Step); with clipping, the norm first.
                    stepResult = _optimizer.BackwardAndStep(scaled, _options.MaxGradNorm);
                }
                else
                {
                    scaled.Backward();
                }

                lossSum += value;
                stepTokens += batch.TokenCount;
            }

            CommunicationRecord? communication = null;
            if (reducer is not null)
            {
                reducer.Finish();
                communication = new CommunicationRecord(communicator.Size, reducer.BytesPerStep, reducer.BucketCount, reducer.LastCommunicationSeconds, reducer.LastWaitSeconds);

                // The group's loss and tokens; every rank sees the same values, so a NaN stops every rank at the same step.
                Span<double> totals = [lossSum, stepTokens];
                communicator.AllReduceSum(totals);
                lossSum = totals[0] / communicator.Size;
                stepTokens = (long)Math.Round(totals[1]);
                if (!double.IsFinite(lossSum))
                {
                    throw Diverged($"the loss is {lossSum} at step {Step + 1} (averaged over {communicator.Size} ranks)");
                }
            }

            double norm;
            if (stepResult is { } result)
            {
                norm = result.GradientNorm;
            }
            else
            {
                // Data-parallel (the gradients are the group's only now), or UseBackwardAndStep off. clip_grad_norm_ fused into the update: the norm
                // is one read of the gradients, and the optimizer scales each element as it reads it (bit-identical to
                // clipping in place first, one pass over 4·N bytes less).
                norm = GradientClipping.GlobalNorm(_trainable);
                if (double.IsFinite(norm))
                {
                    _optimizer.Step(GradientClipping.ClipCoefficient(norm, _options.MaxGradNorm > 0 ? _options.MaxGradNorm : double.PositiveInfinity));
                }
            }

            if (!double.IsFinite(norm))
            {
                // Without clipping this step's update has already run (the norm is taken in its pass); the last checkpoint is intact.
                throw Diverged($"the gradient norm is {norm} at step {Step + 1}");
            }

            _optimizer.ZeroGrad();

            // The step's graph (activations, their gradients: parameter-scale arrays on the large-object heap) is garbage
            // now. One blocking collection here keeps peak memory at one step's worth (GPT-2 124M: 3.2 GB flat instead of
            // growing to 6 GB before the GC's own trigger) for about 10 ms.
            GC.Collect();
            Step++;
            _tokens += stepTokens;
            double seconds = stepClock.Elapsed.TotalSeconds;
            var position = _train.Position;
            var record = new StepRecord(Step, position.Epoch + (position.Batch / epochLength), lossSum / accumulation, lr, norm, _tokens,
                stepTokens / Math.Max(seconds, 1e-9), _elapsedBefore + clock.Elapsed.TotalSeconds)
            { Communication = communication };
            steps.Add(record);
            log?.Write(record);
            recent.Enqueue((seconds, 1));
            if (recent.Count > 20) recent.Dequeue();
            double pace = recent.Sum(r => r.Seconds) / recent.Count;
            if (root) Progress?.Invoke(new TrainerProgress(record, _options.MaxSteps, TimeSpan.FromSeconds(pace * (_options.MaxSteps - Step))));

            bool last = Step == _options.MaxSteps;
            if (_eval is not null && ((_options.EvalEvery > 0 && Step % _options.EvalEvery == 0) || last))
            {
                var eval = new EvalRecord(Step, record.Epoch, Evaluate()) { Metrics = ComputeEvalMetrics() };
                log?.Write(eval);
                if (root) Evaluated?.Invoke(eval);
                TrackBest(eval, root);
            }

            bool stop = _options.EarlyStoppingPatience > 0 && _evalsWithoutImprovement >= _options.EarlyStoppingPatience;
            if (root && ((_options.SaveEvery > 0 && Step % _options.SaveEvery == 0) || last || stop || cancellationToken.IsCancellationRequested))
            {
                SaveCheckpoint(_elapsedBefore + clock.Elapsed.TotalSeconds);
                log!.SavePlot(PlotTitle);
            }

            if (stop)
            {
                StoppedEarly = true;
                break;
            }
        }

        if (!root)
        {
            // Only rank 0 writes the final model; the others wait for it so the job ends together.
            communicator.Barrier();
            return steps;
        }

        // HF load_best_model_at_end: the final model is the best evaluation's.
        if (_bestValue is not null && File.Exists(Path.Combine(BestModelFolder, "model.safetensors")))
        {
            using var best = SafeTensorsLoader.Open(Path.Combine(BestModelFolder, "model.safetensors"));
            _model.LoadStateDict(best, strict: true);
        }

        // The final model in the output folder itself (HF save_model), file by file through temporary names.
        string final = Path.Combine(OutputFolder, ".tmp-final-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(final);
        try
        {
            (WriteFinalModel ?? _writeModelFolder)(final);
            foreach (var file in Directory.GetFiles(final))
            {
                File.Move(file, Path.Combine(OutputFolder, Path.GetFileName(file)), overwrite: true);
            }
        }
        finally
        {
            Directory.Delete(final, recursive: true);
        }

        log!.SavePlot(PlotTitle);
        if (reducer is not null) communicator.Barrier();
        return log.Steps;
    }

    /// <summary>Copies rank 0's trainable weights to every rank (as DDP does at construction), so all ranks start equal.</summary>
    private void BroadcastParameters(ICommunicator communicator)
    {
        foreach (var parameter in _trainable)
        {
            communicator.Broadcast(parameter.Value.AsSpan<float>(), 0);
            parameter.MarkModified();
        }
    }

    /// <summary>The mean loss over the held-out batches, in evaluation mode (no dropout, no gradients).</summary>
    /// <returns>The mean loss.</returns>
    public double Evaluate()
    {
        if (_eval is null) throw new InvalidOperationException("Trainer.Evaluate: no held-out data was given.");
        _model.Eval();
        try
        {
            double sum = 0;
            int count = 0;
            using (Autograd.NoGrad())
            {
                foreach (var batch in _eval())
                {
                    sum += _loss(batch).ToArray()[0];
                    count++;
                }
            }

            return count == 0 ? double.NaN : sum / count;
        }
        finally
        {
            _model.Train();
        }
    }

    /// <summary>Keeps the model of the best evaluation in <see cref="BestModelFolder"/> and counts evaluations without improvement.</summary>
    private void TrackBest(EvalRecord eval, bool write)
    {
        if (_options.MetricForBestModel is not { } name) return;
        string key = name.StartsWith("eval_", StringComparison.Ordinal) ? name[5..] : name;
        double value;
        if (key == "loss")
        {
            value = eval.EvalLoss;
        }
        else if (eval.Metrics is null || !eval.Metrics.TryGetValue(key, out value))
        {
            throw new ArgumentException($"--metric-for-best-model {name}: the evaluation has no such metric; it has loss{(eval.Metrics is null ? string.Empty : ", " + string.Join(", ", eval.Metrics.Keys))}.");
        }

        bool better = _bestValue is not double best || (_options.GreaterIsBetter ? value > best : value < best);
        if (!better)
        {
            _evalsWithoutImprovement++;
            return;
        }

        _bestValue = value;
        _bestStep = Step;
        _evalsWithoutImprovement = 0;
        if (!write) return;
        string temp = Path.Combine(OutputFolder, ".tmp-best-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(temp);
        _writeModelFolder(temp);
        var note = new JsonObject { ["metric"] = name, ["value"] = value, ["step"] = Step };
        File.WriteAllText(Path.Combine(temp, "best.json"), JsonSerializer.Serialize(note, Indented));
        if (Directory.Exists(BestModelFolder)) Directory.Delete(BestModelFolder, recursive: true);
        Directory.Move(temp, BestModelFolder);
    }

    private IReadOnlyDictionary<string, double>? ComputeEvalMetrics()
    {
        if (EvalMetrics is null) return null;
        _model.Eval();
        try
        {
            using (Autograd.NoGrad())
            {
                return EvalMetrics();
            }
        }
        finally
        {
            _model.Train();
        }
    }

    private void SaveCheckpoint(double elapsed)
    {
        string folder = _store.Save(Step, temp =>
        {
            _writeModelFolder(temp);
            _optimizer.StateDict().Save(Path.Combine(temp, OptimizerFile), Path.Combine(temp, OptimizerStateFile));
            var settings = new JsonObject();
            foreach (var (key, value) in RunSettings()) settings[key] = value;
            var state = new JsonObject
            {
                ["global_step"] = Step,
                ["max_steps"] = _options.MaxSteps,
                ["data_position"] = new JsonObject { ["epoch"] = _train.Position.Epoch, ["batch"] = _train.Position.Batch },
                ["tokens"] = _tokens,
                ["elapsed_s"] = elapsed,
                ["seed"] = _options.Seed,
                ["model_fingerprint"] = _fingerprint,
                ["best_metric"] = _bestValue,
                ["best_step"] = _bestStep,
                ["evals_without_improvement"] = _evalsWithoutImprovement,
                ["settings"] = settings,
                ["lr_schedule"] = new JsonObject { ["name"] = _options.LrSchedule, ["warmup_steps"] = _options.WarmupSteps, ["step"] = Step },
            };
            CheckpointStore.WriteAtomically(Path.Combine(temp, StateFile), s => JsonSerializer.Serialize(s, state, Indented));
        });
        Saved?.Invoke(folder);
    }

    /// <summary>The settings an exact resume needs unchanged (data order, batch shapes, randomness).</summary>
    private IEnumerable<(string Key, string Value)> RunSettings()
    {
        yield return ("seed", _options.Seed.ToString(CultureInfo.InvariantCulture));
        yield return ("grad_accum", _options.GradientAccumulationSteps.ToString(CultureInfo.InvariantCulture));
        yield return ("batches_per_epoch", _train.BatchesPerEpoch.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>Every dropout layer gets a seed from (run seed, step, layer index): the same masks in a resumed run.</summary>
    private void Reseed()
    {
        for (int i = 0; i < _dropouts.Length; i++)
        {
            _dropouts[i].Reseed(SeedMix.Derive(_options.Seed, Step, i));
        }
    }

    private TrainingDivergedException Diverged(string what) =>
        new($"training diverged: {what}. Nothing was saved after the last good checkpoint ({(_store.Latest() is { } c ? c.Folder : "none yet")}); lower --lr, raise --warmup-steps or keep --max-grad-norm on, then --resume.");

    private static string Fingerprint(Module model)
    {
        var text = string.Join(';', model.NamedParameters().Select(p => p.Name + ":" + p.Parameter.Shape));
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text)))[..16];
    }

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
}

/// <summary>The language-model trainer: <see cref="Trainer{TBatch}"/> over <see cref="TrainingBatch"/>.</summary>
public sealed class Trainer : Trainer<TrainingBatch>
{
    /// <summary>Prepares a run.</summary>
    /// <param name="model">The model (its trainable parameters are those with RequiresGrad).</param>
    /// <param name="loss">The scalar loss of a batch through the model (recording gradients).</param>
    /// <param name="train">The training batches.</param>
    /// <param name="eval">The held-out batches, enumerated in full at each evaluation; null for none.</param>
    /// <param name="options">The run's settings.</param>
    /// <param name="outputFolder">Where checkpoints, the log, its plot and the final model go.</param>
    /// <param name="writeModelFolder">Writes the model as a Hugging Face folder into the folder it is given.</param>
    /// <exception cref="ArgumentException">An option is out of range, or the model has nothing to train.</exception>
    public Trainer(Module model, Func<TrainingBatch, Tensor> loss, IBatchSource train, Func<IEnumerable<TrainingBatch>>? eval, TrainerOptions options, string outputFolder, Action<string> writeModelFolder)
        : base(model, loss, train, eval, options, outputFolder, writeModelFolder)
    {
    }
}
