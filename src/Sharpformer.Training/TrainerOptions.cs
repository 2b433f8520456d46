namespace Sharpformer.Training;

/// <summary>
/// What the trainer does, with Hugging Face <c>TrainingArguments</c>' defaults: AdamW at lr 5e-5, betas 0.9/0.999,
/// eps 1e-8, no weight decay, gradient clipping at global norm 1.0, a linear schedule without warmup.
/// </summary>
public sealed record TrainerOptions
{
    /// <summary>Optimizer steps to run in all (including those done before a resume).</summary>
    public long MaxSteps { get; init; }

    /// <summary>Micro-batches whose gradients are summed into one optimizer step (the loss of each is divided by it, as HF does).</summary>
    public int GradientAccumulationSteps { get; init; } = 1;

    /// <summary>The peak learning rate.</summary>
    public double LearningRate { get; init; } = 5e-5;

    /// <summary>The schedule's name as HF's <c>get_scheduler</c>: constant, constant_with_warmup, linear, cosine.</summary>
    public string LrSchedule { get; init; } = "linear";

    /// <summary>Steps of linear warmup from 0 to <see cref="LearningRate"/>.</summary>
    public int WarmupSteps { get; init; }

    /// <summary>Decoupled weight decay (AdamW), applied to every trainable tensor except biases and LayerNorm parameters.</summary>
    public double WeightDecay { get; init; }

    /// <summary>Adam β1.</summary>
    public double Beta1 { get; init; } = 0.9;

    /// <summary>Adam β2.</summary>
    public double Beta2 { get; init; } = 0.999;

    /// <summary>Adam ε.</summary>
    public double Epsilon { get; init; } = 1e-8;

    /// <summary>Clip gradients to this global L2 norm; 0 turns clipping off (the norm is still logged).</summary>
    public double MaxGradNorm { get; init; } = 1.0;

    /// <summary>The run's seed: data order, MLM masks and dropout masks all derive from it.</summary>
    public int Seed { get; init; } = 42;

    /// <summary>Evaluate on the held-out batches every this many steps (0: only at the end, when there is held-out data).</summary>
    public long EvalEvery { get; init; }

    /// <summary>Save a checkpoint every this many steps (0: only at the end).</summary>
    public long SaveEvery { get; init; } = 500;

    /// <summary>The JSONL log's path (its PNG plot goes beside it); null for <c>train_log.jsonl</c> in the output folder.</summary>
    public string? LogPath { get; init; }

    /// <summary>How many checkpoints to keep (HF <c>save_total_limit</c>).</summary>
    public int KeepCheckpoints { get; init; } = 3;

    /// <summary>
    /// The evaluation metric that picks the best model (HF <c>metric_for_best_model</c>): a key of the task metrics
    /// (e.g. <c>accuracy</c>, <c>f1</c>) or <c>loss</c>. When set, the model of the best evaluation is kept in
    /// <c>best-model/</c> and becomes the final model (HF <c>load_best_model_at_end</c>). Null keeps the last model.
    /// </summary>
    public string? MetricForBestModel { get; init; }

    /// <summary>Whether a higher <see cref="MetricForBestModel"/> is better (HF <c>greater_is_better</c>: false for loss).</summary>
    public bool GreaterIsBetter { get; init; } = true;

    /// <summary>Stop after this many evaluations in a row without improvement of <see cref="MetricForBestModel"/> (HF EarlyStoppingCallback); 0 never stops early.</summary>
    public int EarlyStoppingPatience { get; init; }

    /// <summary>Checks the values; the messages name the command-line option.</summary>
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    public void Validate()
    {
        Require(MaxSteps >= 1, $"--steps must be at least 1 (got {MaxSteps}); give --steps N or --epochs E.");
        Require(GradientAccumulationSteps >= 1, $"--grad-accum must be at least 1 (got {GradientAccumulationSteps}).");
        Require(LearningRate > 0 && double.IsFinite(LearningRate), $"--lr must be a positive number (got {LearningRate}).");
        Require(WarmupSteps >= 0, $"--warmup-steps must be 0 or more (got {WarmupSteps}).");
        Require(WeightDecay >= 0 && double.IsFinite(WeightDecay), $"--weight-decay must be 0 or more (got {WeightDecay}).");
        Require(Beta1 is >= 0 and < 1, $"--beta1 must be in [0, 1) (got {Beta1}).");
        Require(Beta2 is >= 0 and < 1, $"--beta2 must be in [0, 1) (got {Beta2}).");
        Require(Epsilon > 0, $"--eps must be positive (got {Epsilon}).");
        Require(MaxGradNorm >= 0 && double.IsFinite(MaxGradNorm), $"--max-grad-norm must be 0 (off) or positive (got {MaxGradNorm}).");
        Require(EvalEvery >= 0, $"--eval-every must be 0 or more (got {EvalEvery}).");
        Require(SaveEvery >= 0, $"--save-every must be 0 or more (got {SaveEvery}).");
        Require(EarlyStoppingPatience >= 0, $"--early-stopping-patience must be 0 (off) or more (got {EarlyStoppingPatience}).");
        Require(EarlyStoppingPatience == 0 || MetricForBestModel is not null, "--early-stopping-patience needs --metric-for-best-model (the metric whose lack of improvement stops the run).");
        Require(EarlyStoppingPatience == 0 || EvalEvery > 0, "--early-stopping-patience needs --eval-every N: with one evaluation at the end there is nothing to stop.");
        Require(KeepCheckpoints >= 1, $"--keep-checkpoints must be at least 1 (got {KeepCheckpoints}).");
    }

    private static void Require(bool condition, string message)
    {
        if (!condition) throw new ArgumentException(message);
    }
}
