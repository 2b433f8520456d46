using System.CommandLine;
using System.Globalization;
using Sharpformer.Pipelines;
using Sharpformer.Tensors.Threading;
using Sharpformer.Training;
using Sharpformer.Training.Data;
using Sharpformer.Training.Distributed;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer train clm|mlm --model &lt;repo-or-folder&gt; | --config &lt;config.json&gt; --tokenizer &lt;folder&gt;
/// --data &lt;path&gt; --out &lt;folder&gt; ...</c>: pretraining or continued training of a causal (GPT) or masked (BERT)
/// language model, with HF <c>TrainingArguments</c>' defaults, a JSONL log and loss plot, and resumable checkpoints.
/// </summary>
internal static class TrainCommand
{
    private const string FolderHint = "pass --model a local folder with config.json, model.safetensors and the tokenizer files, or train from scratch with --config and --tokenizer.";

    public static Command Create()
    {
        var train = new Command("train", "Train a language model: next-token prediction (clm, GPT) or masked-token prediction (mlm, BERT).");
        train.Subcommands.Add(Objective("clm", "Causal LM (next-token prediction, GPT-2): the corpus as one token stream, EOS between documents, cut into blocks.", LanguageModelingObjective.CausalLM));
        train.Subcommands.Add(TrainSeq2SeqCommand.Create());
        train.Subcommands.Add(Objective("mlm", "Masked LM (BERT): blocks wrapped in [CLS] … [SEP], 15 % of tokens chosen (80 % [MASK], 10 % random, 10 % kept).", LanguageModelingObjective.MaskedLM));
        return train;
    }

    private static Command Objective(string name, string description, LanguageModelingObjective objective)
    {
        var model = new Option<string?>("--model") { Description = "Hub repo id or local folder to continue training from (config.json, model.safetensors, tokenizer files)." };
        var config = new Option<string?>("--config") { Description = "A config.json to build a fresh model from, initialised as HF does (needs --tokenizer)." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer folder (vocab.txt, vocab.json + merges.txt or tokenizer.json) for --config." };
        var data = new Option<string>("--data") { Description = "Training text: a .txt file, a folder of .txt files, or a .jsonl file with a \"text\" field.", Required = true };
        var evalData = new Option<string?>("--eval-data") { Description = "Held-out text, same formats as --data." };
        var evalFraction = new Option<double>("--eval-fraction") { Description = "Hold out this fraction of the training blocks instead (a seeded choice).", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--out") { Description = "Output folder: checkpoint-N folders, train_log.jsonl and its PNG, and the final model.", Required = true };
        var blockSize = new Option<int?>("--block-size") { Description = "Tokens per sequence (default: min(1024, positions) for clm, min(512, positions) for mlm)." };
        var batchSize = new Option<int>("--batch-size") { Description = "Sequences per micro-batch.", DefaultValueFactory = _ => 8 };
        var gradAccum = new Option<int>("--grad-accum") { Description = "Micro-batches per optimizer step.", DefaultValueFactory = _ => 1 };
        var steps = new Option<long?>("--steps") { Description = "Optimizer steps in all (overrides --epochs)." };
        var epochs = new Option<double>("--epochs") { Description = "Epochs over the training blocks when --steps is not given.", DefaultValueFactory = _ => 3 };
        var lr = new Option<double>("--lr") { Description = "Peak learning rate.", DefaultValueFactory = _ => 5e-5 };
        var schedule = new Option<string>("--lr-schedule") { Description = "constant, constant_with_warmup, linear or cosine (HF get_scheduler).", DefaultValueFactory = _ => "linear" };
        schedule.AcceptOnlyFromAmong("constant", "constant_with_warmup", "linear", "cosine");
        var warmup = new Option<int>("--warmup-steps") { Description = "Linear warmup steps.", DefaultValueFactory = _ => 0 };
        var weightDecay = new Option<double>("--weight-decay") { Description = "AdamW decoupled weight decay (not on biases or LayerNorm parameters).", DefaultValueFactory = _ => 0 };
        var beta1 = new Option<double>("--beta1") { Description = "Adam β1.", DefaultValueFactory = _ => 0.9 };
        var beta2 = new Option<double>("--beta2") { Description = "Adam β2.", DefaultValueFactory = _ => 0.999 };
        var eps = new Option<double>("--eps") { Description = "Adam ε.", DefaultValueFactory = _ => 1e-8 };
        var maxGradNorm = new Option<double>("--max-grad-norm") { Description = "Clip the global gradient norm to this (0: no clipping).", DefaultValueFactory = _ => 1.0 };
        var dropout = new Option<float?>("--dropout") { Description = "Override every dropout probability of the config (e.g. 0 for deterministic runs)." };
        var seed = new Option<int>("--seed") { Description = "Seed of data order, masks, dropout and fresh initialisation.", DefaultValueFactory = _ => 42 };
        var noShuffle = new Option<bool>("--no-shuffle") { Description = "Take blocks in corpus order (wrapping into the next epoch) instead of a seeded shuffle per epoch." };
        var evalEvery = new Option<long>("--eval-every") { Description = "Evaluate every N steps (0: at the end only).", DefaultValueFactory = _ => 0 };
        var saveEvery = new Option<long>("--save-every") { Description = "Save a checkpoint every N steps (0: at the end only).", DefaultValueFactory = _ => 500 };
        var keep = new Option<int>("--keep-checkpoints") { Description = "Keep the last K checkpoints.", DefaultValueFactory = _ => 2 };
        var log = new Option<string?>("--log") { Description = "The JSONL log (one object per step and per evaluation); its loss-curve PNG goes beside it. Default: <out>/train_log.jsonl." };
        var threads = new Option<int>("--threads") { Description = "Worker threads (default: every core; under mpirun, the cores divided among the ranks on this machine).", DefaultValueFactory = _ => Environment.ProcessorCount };
        var resume = new Option<bool>("--resume") { Description = "Continue from the newest checkpoint in --out (same options as the run that saved it)." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Start over in an --out that holds an earlier run (its checkpoints are deleted)." };
        var freeze = new Option<string[]>("--freeze") { Description = "Freeze parameters whose names match these globs (e.g. 'bert.embeddings.*').", AllowMultipleArgumentsPerToken = true };
        var checkpointing = new Option<bool>("--gradient-checkpointing") { Description = "Recompute each block's activations in backward instead of storing them: less memory for long sequences, about a third more compute." };
        var cacheDir = new Option<string?>("--cache-dir") { Description = "Where tokenized corpora are cached (default ~/.cache/sharpformer/token-cache)." };
        var maskProbability = new Option<double>("--mlm-probability") { Description = "mlm: probability of choosing a token.", DefaultValueFactory = _ => 0.15 };
        var wholeWord = new Option<bool>("--whole-word-mask") { Description = "mlm: choose whole words (a token and its ## pieces)." };
        var distributed = DistributedVerb.Option();
        var bucketMb = new Option<double>("--bucket-mb") { Description = "Data-parallel runs: MiB of gradients per all-reduce bucket (PyTorch DDP's 25 by default).", DefaultValueFactory = _ => 25 };
        var layout = new Option<string>("--mlm-layout") { Description = "mlm: 'lines' packs whole lines into each sequence up to --block-size (padded); 'grouped' cuts the corpus into equal blocks.", DefaultValueFactory = _ => "lines" };
        layout.AcceptOnlyFromAmong("lines", "grouped");

        var command = new Command(name, description)
        {
            model, config, tokenizer, data, evalData, evalFraction, output, blockSize, batchSize, gradAccum, steps, epochs, lr, schedule, warmup,
            weightDecay, beta1, beta2, eps, maxGradNorm, dropout, seed, noShuffle, evalEvery, saveEvery, keep, log, threads, resume, overwrite, freeze, checkpointing, cacheDir, distributed, bucketMb,
        };
        if (objective == LanguageModelingObjective.MaskedLM)
        {
            command.Options.Add(maskProbability);
            command.Options.Add(wholeWord);
            command.Options.Add(layout);
        }

        command.SetAction((parse, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var stdout = parse.InvocationConfiguration.Output;
            string afterFailure = $"the last checkpoint in {parse.GetValue(output)} is intact: rerun with --resume.";
            return DistributedVerb.RunAsync("train " + name, parse.GetValue(distributed), error, afterFailure, communicator => PipelineVerbs.GuardAsync("train " + name, error, async () =>
            {
                // Under mpirun the ranks on one machine share its cores: unless --threads says otherwise, each takes its share.
                bool threadsGiven = parse.GetResult(threads) is { Implicit: false };
                ParallelFor.MaxDegreeOfParallelism = Math.Max(1, threadsGiven ? parse.GetValue(threads) : Environment.ProcessorCount / Communicators.LocalRanks);
                if (!(parse.GetValue(bucketMb) > 0)) throw new ArgumentException($"--bucket-mb must be a positive number of MiB (got {parse.GetValue(bucketMb)}).");
                string? modelFolder = parse.GetValue(model) is { } m
                    ? (await ModelFolders.ResolveAsync(m, PipelineVerbs.Options(error, truncate: false), FolderHint, ct).ConfigureAwait(false)).Directory
                    : null;
                var options = new LanguageModelRunOptions
                {
                    Objective = objective,
                    ModelFolder = modelFolder,
                    ConfigPath = parse.GetValue(config),
                    TokenizerFolder = parse.GetValue(tokenizer),
                    Data = [parse.GetValue(data)!],
                    EvalData = parse.GetValue(evalData),
                    EvalFraction = parse.GetValue(evalFraction),
                    OutputFolder = parse.GetValue(output)!,
                    BlockSize = parse.GetValue(blockSize),
                    BatchSize = parse.GetValue(batchSize),
                    Steps = parse.GetValue(steps),
                    Epochs = parse.GetValue(epochs),
                    Dropout = parse.GetValue(dropout),
                    NoShuffle = parse.GetValue(noShuffle),
                    Resume = parse.GetValue(resume),
                    Overwrite = parse.GetValue(overwrite),
                    MaskProbability = parse.GetValue(maskProbability),
                    WholeWordMask = parse.GetValue(wholeWord),
                    MlmLayout = parse.GetValue(layout) == "grouped" ? MlmLayout.Grouped : MlmLayout.Lines,
                    Freeze = parse.GetValue(freeze) ?? [],
                    GradientCheckpointing = parse.GetValue(checkpointing),
                    CacheFolder = parse.GetValue(cacheDir),
                    Communicator = communicator,
                    GradientBucketBytes = (long)Math.Max(1, parse.GetValue(bucketMb) * 1024 * 1024),
                    Trainer = new TrainerOptions
                    {
                        MaxSteps = 1,
                        GradientAccumulationSteps = parse.GetValue(gradAccum),
                        LearningRate = parse.GetValue(lr),
                        LrSchedule = parse.GetValue(schedule)!,
                        WarmupSteps = parse.GetValue(warmup),
                        WeightDecay = parse.GetValue(weightDecay),
                        Beta1 = parse.GetValue(beta1),
                        Beta2 = parse.GetValue(beta2),
                        Epsilon = parse.GetValue(eps),
                        MaxGradNorm = parse.GetValue(maxGradNorm),
                        Seed = parse.GetValue(seed),
                        EvalEvery = parse.GetValue(evalEvery),
                        SaveEvery = parse.GetValue(saveEvery),
                        KeepCheckpoints = parse.GetValue(keep),
                        LogPath = parse.GetValue(log),
                    },
                };
                // Rank 0 speaks for the job; the other ranks print only their errors.
                bool root = communicator.Rank == 0;
                return Run(options, root ? stdout : TextWriter.Null, root ? error : TextWriter.Null, ct);
            }));
        });
        return command;
    }

    internal static int Run(LanguageModelRunOptions options, TextWriter output, TextWriter error, CancellationToken ct)
    {
        var lines = new ProgressLines(error);
        using var run = LanguageModelRun.Prepare(options, new Progress<CorpusProgress>(lines.Tokenizing), ct);
        var trainer = run.Trainer;
        error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"training {run.Model.GetType().Name} ({run.Model.Parameters().Where(p => p.RequiresGrad).Sum(p => p.Shape.ElementCount) / 1e6:F2}M trainable parameters) on {run.TrainBlocks} blocks of {run.BlockSize} tokens; log {trainer.LogPath}"));
        if (run.ResumedFrom is not null) error.WriteLine($"resuming from {run.ResumedFrom} (step {trainer.Step})");
        if (options.Communicator is { Size: > 1 } group)
        {
            error.WriteLine($"data-parallel over {group.Size} MPI ranks: {options.BatchSize} sequences per rank × {group.Size} ranks × {options.Trainer.GradientAccumulationSteps} accumulation = {options.BatchSize * group.Size * options.Trainer.GradientAccumulationSteps} per step; rank 0 writes the log and checkpoints");
        }

        trainer.Progress = lines.Step;
        trainer.Evaluated = e => lines.Message(string.Create(CultureInfo.InvariantCulture, $"eval at step {e.Step}: loss {e.EvalLoss:F4}, perplexity {e.Perplexity:F2}"));
        trainer.Saved = folder => lines.Message($"saved {folder}");
        try
        {
            trainer.Run(ct);
        }
        catch (TrainingDivergedException e)
        {
            error.WriteLine();
            error.WriteLine("error: " + e.Message);
            return 3;
        }

        error.WriteLine();
        output.WriteLine($"saved the trained model to {trainer.OutputFolder} (loss curve: {Path.ChangeExtension(trainer.LogPath, ".png")})");
        return 0;
    }

    /// <summary>One progress line per step on stderr: step/total, loss, lr, tokens/s, ETA (rewritten in place on a terminal).</summary>
    internal sealed class ProgressLines(TextWriter error)
    {
        private readonly bool _terminal = !Console.IsErrorRedirected;

        public void Tokenizing(CorpusProgress p) =>
            error.Write(string.Create(CultureInfo.InvariantCulture, $"tokenizing: {p.BytesDone / 1e6:F1}/{p.BytesTotal / 1e6:F1} MB, {p.Documents} documents, {p.Tokens} tokens{(_terminal ? "\r" : "\n")}"));

        public void Message(string text) => error.WriteLine(_terminal ? "\r" + text.PadRight(100) : text);

        public void Step(TrainerProgress p)
        {
            var r = p.Record;
            string line = string.Create(CultureInfo.InvariantCulture,
                $"step {r.Step}/{p.MaxSteps} | loss {r.Loss:F4} | lr {r.LearningRate:0.00e+00} | grad norm {r.GradNorm:F3} | {r.TokensPerSecond:F0} tok/s | ETA {p.Eta:hh\\:mm\\:ss}");
            error.Write(_terminal ? "\r" + line.PadRight(100) : line + "\n");
        }
    }
}
