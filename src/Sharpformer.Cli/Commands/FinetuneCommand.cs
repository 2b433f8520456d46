using System.CommandLine;
using System.Globalization;
using Sharpformer.IO.Config;
using Sharpformer.NN.Lora;
using Sharpformer.Pipelines;
using Sharpformer.Tensors.Threading;
using Sharpformer.Training;
using Sharpformer.Training.FineTuning;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer finetune classify|ner|qa --model &lt;repo-or-folder&gt; --data &lt;file&gt; --out &lt;folder&gt; ...</c>:
/// fine-tunes a task head (HF's run_glue / run_ner / run_qa) with HF <c>TrainingArguments</c>' defaults, the task
/// metrics at each evaluation in the JSONL log, the best model kept, early stopping, and resumable checkpoints.
/// </summary>
internal static class FinetuneCommand
{
    private const string FolderHint = "pass --model a local folder with config.json, model.safetensors and the tokenizer files (a base, MLM or fine-tuned checkpoint).";

    public static Command Create()
    {
        var finetune = new Command("finetune", "Fine-tune a model on a task: text classification, token classification (NER) or extractive question answering.");
        finetune.Subcommands.Add(Task("classify", "Sequence classification from CSV/TSV/JSONL (text[, text_pair], label): accuracy, macro-F1 and a confusion-matrix PNG at each evaluation.", FineTuneTask.Classify));
        finetune.Subcommands.Add(Task("ner", "Token classification from CoNLL or JSONL (tokens, tags): seqeval entity precision/recall/F1 at each evaluation.", FineTuneTask.Ner));
        finetune.Subcommands.Add(Task("qa", "Extractive question answering from SQuAD-format JSON: exact match and F1 at each evaluation.", FineTuneTask.Qa));
        return finetune;
    }

    private static Command Task(string name, string description, FineTuneTask task)
    {
        var model = new Option<string>("--model") { Description = "Hub repo id or local folder: a base or MLM checkpoint (a new head is initialised) or a fine-tuned one.", Required = true };
        var data = new Option<string>("--data") { Description = "Training data (classify: .csv/.tsv/.jsonl; ner: CoNLL or .jsonl with tokens and tags; qa: SQuAD .json).", Required = true };
        var evalData = new Option<string?>("--eval-data") { Description = "Evaluation data in the same format (labels must be among the training data's)." };
        var validationSplit = new Option<double>("--validation-split") { Description = "Hold out this fraction of the training examples for evaluation instead (seeded by --seed).", DefaultValueFactory = _ => 0 };
        var testData = new Option<string?>("--test-data") { Description = "Test data scored once with the final (best) model after training; written to test_results.json." };
        var output = new Option<string>("--out") { Description = "Output folder: checkpoint-N folders, best-model/, train_log.jsonl and its PNG, and the final model.", Required = true };
        var textColumn = new Option<string>("--text-column") { Description = "classify: the text column.", DefaultValueFactory = _ => "text" };
        var textPairColumn = new Option<string>("--text-pair-column") { Description = "classify: the second-text column (read when present).", DefaultValueFactory = _ => "text_pair" };
        var labelColumn = new Option<string>("--label-column") { Description = "classify: the label column.", DefaultValueFactory = _ => "label" };
        var maxLength = new Option<int?>("--max-length") { Description = "Tokens per sequence, special tokens included (default 128, qa 384; at most the model's positions)." };
        var batchSize = new Option<int>("--batch-size") { Description = "Examples (qa: windows) per micro-batch.", DefaultValueFactory = _ => 8 };
        var gradAccum = new Option<int>("--grad-accum") { Description = "Micro-batches per optimizer step.", DefaultValueFactory = _ => 1 };
        var steps = new Option<long?>("--steps") { Description = "Optimizer steps in all (overrides --epochs)." };
        var epochs = new Option<double>("--epochs") { Description = "Epochs over the training examples when --steps is not given.", DefaultValueFactory = _ => 3 };
        var lr = new Option<double>("--lr") { Description = "Peak learning rate.", DefaultValueFactory = _ => 5e-5 };
        var schedule = new Option<string>("--lr-schedule") { Description = "constant, constant_with_warmup, linear or cosine (HF get_scheduler).", DefaultValueFactory = _ => "linear" };
        schedule.AcceptOnlyFromAmong("constant", "constant_with_warmup", "linear", "cosine");
        var warmupSteps = new Option<int>("--warmup-steps") { Description = "Linear warmup steps (overrides --warmup-ratio).", DefaultValueFactory = _ => 0 };
        var warmupRatio = new Option<double>("--warmup-ratio") { Description = "Share of the steps spent in linear warmup.", DefaultValueFactory = _ => 0 };
        var weightDecay = new Option<double>("--weight-decay") { Description = "AdamW decoupled weight decay (not on biases or LayerNorm parameters).", DefaultValueFactory = _ => 0 };
        var maxGradNorm = new Option<double>("--max-grad-norm") { Description = "Clip the global gradient norm to this (0: no clipping).", DefaultValueFactory = _ => 1.0 };
        var dropout = new Option<float?>("--dropout") { Description = "Override every dropout probability of the config (e.g. 0 for deterministic runs)." };
        var seed = new Option<int>("--seed") { Description = "Seed of the new head, data order, validation split and dropout.", DefaultValueFactory = _ => 42 };
        var evalEvery = new Option<long>("--eval-every") { Description = "Evaluate every N steps (0: at the end only).", DefaultValueFactory = _ => 0 };
        var saveEvery = new Option<long>("--save-every") { Description = "Save a checkpoint every N steps (0: at the end only).", DefaultValueFactory = _ => 500 };
        var keep = new Option<int>("--keep-checkpoints") { Description = "Keep the last K checkpoints.", DefaultValueFactory = _ => 2 };
        var metric = new Option<string?>("--metric-for-best-model") { Description = MetricHelp(task) };
        var patience = new Option<int>("--early-stopping-patience") { Description = "Stop after this many evaluations without improvement of --metric-for-best-model (0: never).", DefaultValueFactory = _ => 0 };
        var log = new Option<string?>("--log") { Description = "The JSONL log (one object per step and per evaluation, metrics as eval_*); its loss-curve PNG goes beside it. Default: <out>/train_log.jsonl." };
        var threads = new Option<int>("--threads") { Description = "Worker threads (default: every core).", DefaultValueFactory = _ => Environment.ProcessorCount };
        var resume = new Option<bool>("--resume") { Description = "Continue from the newest checkpoint in --out (same options as the run that saved it)." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Start over in an --out that holds an earlier run (its checkpoints are deleted)." };
        var freeze = new Option<string[]>("--freeze") { Description = "Freeze parameters whose names match these globs (e.g. 'bert.embeddings.*').", AllowMultipleArgumentsPerToken = true };
        var labelAll = new Option<bool>("--label-all-tokens") { Description = "ner: label every sub-token of a word (B- becomes I- after the first), not only the first." };
        var scheme = new Option<string?>("--tagging-scheme") { Description = "ner: score entities in seqeval's strict mode with IOB1, IOB2 or BIOES (default: seqeval's lenient default mode)." };
        scheme.AcceptOnlyFromAmong("IOB1", "IOB2", "BIOES");
        var docStride = new Option<int>("--doc-stride") { Description = "qa: overlap in tokens between windows of a long context.", DefaultValueFactory = _ => 128 };
        var maxAnswer = new Option<int>("--max-answer-length") { Description = "qa: the longest answer in tokens.", DefaultValueFactory = _ => 30 };
        var loraR = new Option<int?>("--lora-r") { Description = "Fine-tune with LoRA adapters of this rank instead of every weight: only the adapters and the head train; --out gets adapter_config.json + adapter_model.safetensors in PEFT's layout." };
        var loraAlpha = new Option<float?>("--lora-alpha") { Description = "LoRA alpha (the update is scaled by alpha / r; default: r, as PEFT's defaults r=8, alpha=8)." };
        var loraDropout = new Option<float>("--lora-dropout") { Description = "Dropout on the adapters' input.", DefaultValueFactory = _ => 0 };
        var loraTargets = new Option<string[]>("--lora-target-modules")
        {
            Description = "Linear layers to adapt, by name suffix (default as PEFT's for the model type: bert query value; distilbert q_lin v_lin; gpt2 c_attn), or all-linear.",
            AllowMultipleArgumentsPerToken = true,
        };
        var mergeLora = new Option<bool>("--merge-lora") { Description = "With --lora-r: write the adapter merged into the base weights as a plain Hugging Face folder instead." };

        var command = new Command(name, description)
        {
            model, data, evalData, validationSplit, testData, output, maxLength, batchSize, gradAccum, steps, epochs, lr, schedule, warmupSteps, warmupRatio,
            weightDecay, maxGradNorm, dropout, seed, evalEvery, saveEvery, keep, metric, patience, log, threads, resume, overwrite, freeze,
            loraR, loraAlpha, loraDropout, loraTargets, mergeLora,
        };
        switch (task)
        {
            case FineTuneTask.Classify:
                command.Options.Add(textColumn);
                command.Options.Add(textPairColumn);
                command.Options.Add(labelColumn);
                break;
            case FineTuneTask.Ner:
                command.Options.Add(labelAll);
                command.Options.Add(scheme);
                break;
            default:
                command.Options.Add(docStride);
                command.Options.Add(maxAnswer);
                break;
        }

        command.SetAction((parse, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var stdout = parse.InvocationConfiguration.Output;
            return PipelineVerbs.GuardAsync("finetune " + name, error, async () =>
            {
                ParallelFor.MaxDegreeOfParallelism = Math.Max(1, parse.GetValue(threads));
                // The bundled all-MiniLM-L6-v2 stands in when the Hub cannot give it (as embed does).
                string modelFolder = await BundledModels.LoadWithFallbackAsync(parse.GetValue(model)!, error, async id =>
                    (await ModelFolders.ResolveAsync(id, PipelineVerbs.Options(error, truncate: false), FolderHint, ct).ConfigureAwait(false)).Directory).ConfigureAwait(false);
                var options = new FineTuneRunOptions
                {
                    Task = task,
                    ModelFolder = modelFolder,
                    Data = parse.GetValue(data)!,
                    EvalData = parse.GetValue(evalData),
                    ValidationSplit = parse.GetValue(validationSplit),
                    TestData = parse.GetValue(testData),
                    OutputFolder = parse.GetValue(output)!,
                    TextColumn = parse.GetValue(textColumn) ?? "text",
                    TextPairColumn = parse.GetValue(textPairColumn) ?? "text_pair",
                    LabelColumn = parse.GetValue(labelColumn) ?? "label",
                    MaxLength = parse.GetValue(maxLength),
                    BatchSize = parse.GetValue(batchSize),
                    Steps = parse.GetValue(steps),
                    Epochs = parse.GetValue(epochs),
                    WarmupRatio = parse.GetValue(warmupRatio),
                    Dropout = parse.GetValue(dropout),
                    Freeze = parse.GetValue(freeze) ?? [],
                    LabelAllTokens = parse.GetValue(labelAll),
                    TaggingScheme = parse.GetValue(scheme) switch
                    {
                        "IOB1" => TaggingScheme.Iob1,
                        "IOB2" => TaggingScheme.Iob2,
                        "BIOES" => TaggingScheme.Bioes,
                        _ => null,
                    },
                    DocStride = task == FineTuneTask.Qa ? parse.GetValue(docStride) : 128,
                    MaxAnswerLength = task == FineTuneTask.Qa ? parse.GetValue(maxAnswer) : 30,
                    Resume = parse.GetValue(resume),
                    Overwrite = parse.GetValue(overwrite),
                    Lora = LoraOptions(parse.GetValue(loraR), parse.GetValue(loraAlpha), parse.GetValue(loraDropout), parse.GetValue(loraTargets), modelFolder),
                    MergeLora = parse.GetValue(mergeLora),
                    Trainer = new TrainerOptions
                    {
                        MaxSteps = 1,
                        GradientAccumulationSteps = parse.GetValue(gradAccum),
                        LearningRate = parse.GetValue(lr),
                        LrSchedule = parse.GetValue(schedule)!,
                        WarmupSteps = parse.GetValue(warmupSteps),
                        WeightDecay = parse.GetValue(weightDecay),
                        MaxGradNorm = parse.GetValue(maxGradNorm),
                        Seed = parse.GetValue(seed),
                        EvalEvery = parse.GetValue(evalEvery),
                        SaveEvery = parse.GetValue(saveEvery),
                        KeepCheckpoints = parse.GetValue(keep),
                        LogPath = parse.GetValue(log),
                        MetricForBestModel = parse.GetValue(metric),
                        GreaterIsBetter = parse.GetValue(metric) is not ("loss" or "eval_loss"),
                        EarlyStoppingPatience = parse.GetValue(patience),
                    },
                };
                return Run(options, stdout, error, ct);
            });
        });
        return command;
    }

    /// <summary>The LoRA settings of the flags, or null without --lora-r; target modules default to PEFT's for the model type.</summary>
    internal static LoraConfig? LoraOptions(int? r, float? alpha, float dropout, string[]? targets, string modelFolder)
    {
        if (r is null)
        {
            if (alpha is not null || targets is { Length: > 0 })
            {
                throw new ArgumentException("--lora-alpha and --lora-target-modules need --lora-r (the adapters' rank, e.g. 8).");
            }

            return null;
        }

        if (r < 1) throw new ArgumentException($"--lora-r must be at least 1 (got {r}).");
        if (dropout is < 0 or >= 1 || !float.IsFinite(dropout)) throw new ArgumentException($"--lora-dropout must be in [0, 1) (got {dropout}).");
        IReadOnlyList<string> modules = targets is { Length: > 0 }
            ? targets
            : ModelConfig.Load(modelFolder).ModelType switch
            {
                "bert" or "roberta" => ["query", "value"],
                "distilbert" => ["q_lin", "v_lin"],
                "gpt2" => ["c_attn"],
                var type => throw new ArgumentException($"--lora-target-modules: no PEFT default for model_type '{type}'; name the Linear layers to adapt, or pass all-linear."),
            };
        return new LoraConfig
        {
            R = r.Value,
            LoraAlpha = alpha ?? r.Value,
            LoraDropout = dropout,
            TargetModules = modules,
        };
    }

    private static string MetricHelp(FineTuneTask task) => task switch
    {
        FineTuneTask.Classify => "Keep the model of the best evaluation by this metric as the final one: accuracy or macro_f1 (or loss).",
        FineTuneTask.Ner => "Keep the model of the best evaluation by this metric as the final one: f1, precision, recall or accuracy (or loss).",
        _ => "Keep the model of the best evaluation by this metric as the final one: f1 or exact_match (or loss).",
    };

    internal static int Run(FineTuneRunOptions options, TextWriter output, TextWriter error, CancellationToken ct)
    {
        var lines = new TrainCommand.ProgressLines(error);
        var run = FineTuneRun.Prepare(options);
        var trainer = run.Trainer;
        if (run.LoadReport is not null) error.WriteLine(run.LoadReport);
        string items = options.Task == FineTuneTask.Qa ? $"{run.TrainExamples} questions ({run.TrainItems} windows)" : $"{run.TrainExamples} examples";
        error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"fine-tuning {run.Model.GetType().Name} ({run.Model.Parameters().Where(p => p.RequiresGrad).Sum(p => p.Shape.ElementCount) / 1e6:F2}M trainable parameters) on {items}, max length {run.MaxLength}; {(run.EvalExamples > 0 ? $"evaluating on {run.EvalExamples}" : "no evaluation set")}; log {trainer.LogPath}"));
        if (run.ResumedFrom is not null) error.WriteLine($"resuming from {run.ResumedFrom} (step {trainer.Step})");
        trainer.Progress = lines.Step;
        trainer.Evaluated = e => lines.Message(string.Create(CultureInfo.InvariantCulture,
            $"eval at step {e.Step}: loss {e.EvalLoss:F4}{(e.Metrics is null ? string.Empty : ", " + string.Join(", ", e.Metrics.Select(m => $"{m.Key} {m.Value:F4}")))}"));
        trainer.Saved = folder => lines.Message($"saved {folder}");
        try
        {
            trainer.Run(ct);
        }
        catch (TrainingDivergedException e)
        {
            error.WriteLine();
            error.WriteLine("error: " + e.Message);
            return ExitCodes.InputOrModel;
        }

        error.WriteLine();
        if (trainer.StoppedEarly) error.WriteLine($"stopped early at step {trainer.Step}: {options.Trainer.MetricForBestModel} did not improve in {options.Trainer.EarlyStoppingPatience} evaluations");
        if (trainer.BestMetricValue is double best)
        {
            error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"best {options.Trainer.MetricForBestModel} {best:F4} at step {trainer.BestStep}: that model is the final one"));
        }

        if (run.EvaluateTest() is { } test)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"test ({options.TestData}): {string.Join(", ", test.Select(m => $"{m.Key} {m.Value:F4}"))}"));
        }

        output.WriteLine($"saved the fine-tuned model to {trainer.OutputFolder} (loss curve: {Path.ChangeExtension(trainer.LogPath, ".png")})");
        return ExitCodes.Ok;
    }
}
