using System.CommandLine;
using System.Globalization;
using Sharpformer.Generation;
using Sharpformer.Models.Seq2Seq;
using Sharpformer.Tensors.Threading;
using Sharpformer.Training;
using Sharpformer.Training.Metrics;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer train seq2seq --tokenizer &lt;folder&gt; --data train.tsv [--eval-data valid.tsv] --out &lt;folder&gt; …</c>:
/// trains the original Transformer from scratch (or continues a model folder) on a parallel corpus, with length-grouped
/// batches, label smoothing, the paper's warmup + inverse-square-root schedule, checkpoints/resume, and held-out loss
/// and BLEU (greedy decoding, our sacreBLEU-equal BLEU) at each evaluation.
/// </summary>
internal static class TrainSeq2SeqCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "A sharpformer-transformer folder to continue training (config.json, model.safetensors, tokenizer files)." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "The shared source/target tokenizer folder (vocab.json + merges.txt, vocab.txt or tokenizer.json) for a fresh model." };
        var data = new Option<string>("--data") { Description = "Training pairs: TSV (source<TAB>target per line) or JSONL ({\"source\": …, \"target\": …}).", Required = true };
        var evalData = new Option<string?>("--eval-data") { Description = "Held-out pairs (same formats): loss and BLEU at every evaluation." };
        var evalLimit = new Option<int?>("--eval-limit") { Description = "Evaluate on the first N held-out pairs only (BLEU decodes each of them)." };
        var output = new Option<string>("--out") { Description = "Output folder: checkpoint-N folders, train_log.jsonl and its PNG, and the final model.", Required = true };
        var dModel = new Option<int>("--d-model") { Description = "Fresh model: width C.", DefaultValueFactory = _ => 256 };
        var layers = new Option<int>("--layers") { Description = "Fresh model: encoder and decoder layers each.", DefaultValueFactory = _ => 3 };
        var heads = new Option<int>("--heads") { Description = "Fresh model: attention heads.", DefaultValueFactory = _ => 4 };
        var ffn = new Option<int>("--ffn") { Description = "Fresh model: feed-forward width.", DefaultValueFactory = _ => 1024 };
        var positions = new Option<int>("--max-positions") { Description = "Fresh model: sinusoidal positions (longest source or target).", DefaultValueFactory = _ => 128 };
        var dropout = new Option<float>("--dropout") { Description = "Fresh model: dropout on embeddings and sub-layer outputs.", DefaultValueFactory = _ => 0.1f };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Most padded tokens per batch (batches group pairs of similar length).", DefaultValueFactory = _ => 4096 };
        var maxSentences = new Option<int>("--max-sentences") { Description = "Most pairs per batch.", DefaultValueFactory = _ => 256 };
        var maxLength = new Option<int?>("--max-length") { Description = "Cut sources and targets to this many tokens (default: the model's positions)." };
        var smoothing = new Option<float>("--label-smoothing") { Description = "Label smoothing ε (the paper: 0.1).", DefaultValueFactory = _ => 0.1f };
        var steps = new Option<long?>("--steps") { Description = "Optimizer steps in all (overrides --epochs)." };
        var epochs = new Option<double>("--epochs") { Description = "Epochs when --steps is not given.", DefaultValueFactory = _ => 10 };
        var lr = new Option<double>("--lr") { Description = "Peak learning rate (reached at the end of warmup).", DefaultValueFactory = _ => 7e-4 };
        var schedule = new Option<string>("--lr-schedule") { Description = "inverse_sqrt (the paper's), linear, cosine, constant or constant_with_warmup.", DefaultValueFactory = _ => "inverse_sqrt" };
        schedule.AcceptOnlyFromAmong("inverse_sqrt", "linear", "cosine", "constant", "constant_with_warmup");
        var warmup = new Option<int>("--warmup-steps") { Description = "Linear warmup steps.", DefaultValueFactory = _ => 4000 };
        var weightDecay = new Option<double>("--weight-decay") { Description = "AdamW decoupled weight decay.", DefaultValueFactory = _ => 0 };
        var beta2 = new Option<double>("--beta2") { Description = "Adam β2 (the paper: 0.98).", DefaultValueFactory = _ => 0.98 };
        var maxGradNorm = new Option<double>("--max-grad-norm") { Description = "Clip the global gradient norm (0: off).", DefaultValueFactory = _ => 1.0 };
        var seed = new Option<int>("--seed") { Description = "Seed of batching, dropout and initialisation.", DefaultValueFactory = _ => 42 };
        var noShuffle = new Option<bool>("--no-shuffle") { Description = "Take batches in length order instead of a seeded shuffle per epoch." };
        var evalEvery = new Option<long>("--eval-every") { Description = "Evaluate every N steps (0: at the end only).", DefaultValueFactory = _ => 0 };
        var saveEvery = new Option<long>("--save-every") { Description = "Checkpoint every N steps (0: at the end only).", DefaultValueFactory = _ => 1000 };
        var keep = new Option<int>("--keep-checkpoints") { Description = "Keep the last K checkpoints.", DefaultValueFactory = _ => 2 };
        var threads = new Option<int>("--threads") { Description = "Worker threads (default: every core).", DefaultValueFactory = _ => Environment.ProcessorCount };
        var resume = new Option<bool>("--resume") { Description = "Continue from the newest checkpoint in --out (same options as before)." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Start over in an --out that holds an earlier run." };
        var command = new Command("seq2seq", "Train the original encoder-decoder Transformer on a parallel corpus (translation), with held-out BLEU.")
        {
            model, tokenizer, data, evalData, evalLimit, output, dModel, layers, heads, ffn, positions, dropout, maxTokens, maxSentences, maxLength, smoothing,
            steps, epochs, lr, schedule, warmup, weightDecay, beta2, maxGradNorm, seed, noShuffle, evalEvery, saveEvery, keep, threads, resume, overwrite,
        };
        command.SetAction((parse, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var stdout = parse.InvocationConfiguration.Output;
            return PipelineVerbs.GuardAsync("train seq2seq", error, () =>
            {
                ParallelFor.MaxDegreeOfParallelism = Math.Max(1, parse.GetValue(threads));
                var options = new Seq2SeqRunOptions
                {
                    ModelFolder = parse.GetValue(model),
                    TokenizerFolder = parse.GetValue(tokenizer),
                    Architecture = new TransformerConfig
                    {
                        VocabSize = 1,
                        DModel = parse.GetValue(dModel),
                        EncoderLayers = parse.GetValue(layers),
                        DecoderLayers = parse.GetValue(layers),
                        NumAttentionHeads = parse.GetValue(heads),
                        FfnDim = parse.GetValue(ffn),
                        MaxPositionEmbeddings = parse.GetValue(positions),
                        Dropout = parse.GetValue(dropout),
                    },
                    Data = parse.GetValue(data)!,
                    EvalData = parse.GetValue(evalData),
                    EvalLimit = parse.GetValue(evalLimit),
                    OutputFolder = parse.GetValue(output)!,
                    MaxTokens = parse.GetValue(maxTokens),
                    MaxSentences = parse.GetValue(maxSentences),
                    MaxLength = parse.GetValue(maxLength),
                    LabelSmoothing = parse.GetValue(smoothing),
                    Steps = parse.GetValue(steps),
                    Epochs = parse.GetValue(epochs),
                    NoShuffle = parse.GetValue(noShuffle),
                    Resume = parse.GetValue(resume),
                    Overwrite = parse.GetValue(overwrite),
                    Trainer = new TrainerOptions
                    {
                        MaxSteps = 1,
                        LearningRate = parse.GetValue(lr),
                        LrSchedule = parse.GetValue(schedule)!,
                        WarmupSteps = parse.GetValue(warmup),
                        WeightDecay = parse.GetValue(weightDecay),
                        Beta2 = parse.GetValue(beta2),
                        Epsilon = 1e-9,
                        MaxGradNorm = parse.GetValue(maxGradNorm),
                        Seed = parse.GetValue(seed),
                        EvalEvery = parse.GetValue(evalEvery),
                        SaveEvery = parse.GetValue(saveEvery),
                        KeepCheckpoints = parse.GetValue(keep),
                    },
                };
                return Task.FromResult(Run(options, stdout, error, ct));
            });
        });
        return command;
    }

    internal static int Run(Seq2SeqRunOptions options, TextWriter output, TextWriter error, CancellationToken ct)
    {
        var run = Seq2SeqRun.Prepare(options);
        var trainer = run.Trainer;
        var lines = new TrainCommand.ProgressLines(error);
        error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"training the Transformer ({run.Model.Parameters().Sum(p => p.Shape.ElementCount) / 1e6:F2}M parameters, vocabulary {run.Model.VocabSize}) on {run.Train.PairCount} pairs in {run.Train.BatchesPerEpoch} batches per epoch, {trainer.Step}/{options.Steps?.ToString(CultureInfo.InvariantCulture) ?? "derived"} steps; log {trainer.LogPath}"));
        if (run.ResumedFrom is not null) error.WriteLine($"resuming from {run.ResumedFrom} (step {trainer.Step})");
        if (run.EvalPairs.Count > 0)
        {
            trainer.EvalMetrics = () => new Dictionary<string, double> { ["bleu"] = HeldOutBleu(run, ct).Score };
        }

        trainer.Progress = lines.Step;
        trainer.Evaluated = e => lines.Message(string.Create(CultureInfo.InvariantCulture,
            $"eval at step {e.Step}: loss {e.EvalLoss:F4}{(e.Metrics is { } m && m.TryGetValue("bleu", out double bleu) ? $", BLEU {bleu:F2}" : string.Empty)}"));
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

    /// <summary>Greedy translations of the held-out sources, scored with our sacreBLEU-equal corpus BLEU against the targets.</summary>
    internal static BleuScore HeldOutBleu(Seq2SeqRun run, CancellationToken ct)
    {
        var pipeline = new Text2TextGenerationPipeline(run.Model, run.Tokenizer, Text2TextTask.Translation);
        var options = new GenerationOptions { MaxNewTokens = run.Model.MaxTargetPositions - 1 };
        var hypotheses = new List<string>(run.EvalPairs.Count);
        const int Chunk = 32;
        for (int i = 0; i < run.EvalPairs.Count; i += Chunk)
        {
            var sources = run.EvalPairs.Skip(i).Take(Chunk).Select(p => p.Source).ToList();
            hypotheses.AddRange(pipeline.Run(sources, options, ct).Select(r => r[0].Text));
        }

        return Bleu.Corpus(hypotheses, [[.. run.EvalPairs.Select(p => p.Target)]]);
    }
}
