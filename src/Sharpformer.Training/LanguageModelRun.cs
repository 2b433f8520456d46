using Sharpformer.IO.Config;
using Sharpformer.Models;
using Sharpformer.NN;
using Sharpformer.Text;
using Sharpformer.Training.Checkpoints;
using Sharpformer.Training.Data;
using Sharpformer.Training.Distributed;
using Sharpformer.Training.Optim;

namespace Sharpformer.Training;

/// <summary>Which language-modeling objective a run trains.</summary>
public enum LanguageModelingObjective
{
    /// <summary>Next-token prediction (GPT): <c>train clm</c>.</summary>
    CausalLM,

    /// <summary>Masked-token prediction (BERT): <c>train mlm</c>.</summary>
    MaskedLM,
}

/// <summary>Everything <c>sharpformer train clm|mlm</c> takes, with HF's defaults; <see cref="LanguageModelRun.Prepare"/> turns it into a ready <see cref="Trainer"/>.</summary>
public sealed record LanguageModelRunOptions
{
    /// <summary>The objective.</summary>
    public LanguageModelingObjective Objective { get; init; }

    /// <summary>A local model folder (config.json, weights, tokenizer) to continue training from; or null with <see cref="ConfigPath"/>.</summary>
    public string? ModelFolder { get; init; }

    /// <summary>A config.json to build a fresh model from (initialised as HF does); needs <see cref="TokenizerFolder"/>.</summary>
    public string? ConfigPath { get; init; }

    /// <summary>The tokenizer folder for a fresh model (or to override the model folder's).</summary>
    public string? TokenizerFolder { get; init; }

    /// <summary>Training data: text files, folders of them, or JSONL files with a "text" field.</summary>
    public IReadOnlyList<string> Data { get; init; } = [];

    /// <summary>Held-out data (else <see cref="EvalFraction"/> of the training blocks, else none).</summary>
    public string? EvalData { get; init; }

    /// <summary>Fraction of the training blocks held out when there is no <see cref="EvalData"/>.</summary>
    public double EvalFraction { get; init; }

    /// <summary>The run's output folder.</summary>
    public string OutputFolder { get; init; } = string.Empty;

    /// <summary>Tokens per block; null for HF's default: min(1024, positions) for CLM, min(512, positions) for MLM.</summary>
    public int? BlockSize { get; init; }

    /// <summary>Sequences per micro-batch (HF per_device_train_batch_size).</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>Optimizer steps; when null, <see cref="Epochs"/> decides.</summary>
    public long? Steps { get; init; }

    /// <summary>Epochs over the training blocks when <see cref="Steps"/> is null (HF num_train_epochs, default 3).</summary>
    public double Epochs { get; init; } = 3;

    /// <summary>Overrides every dropout probability of the config (null keeps them).</summary>
    public float? Dropout { get; init; }

    /// <summary>Take blocks in corpus order instead of a seeded shuffle per epoch.</summary>
    public bool NoShuffle { get; init; }

    /// <summary>Continue from the newest checkpoint in the output folder.</summary>
    public bool Resume { get; init; }

    /// <summary>Start over in an output folder that holds an earlier run.</summary>
    public bool Overwrite { get; init; }

    /// <summary>MLM: probability of choosing a token for prediction.</summary>
    public double MaskProbability { get; init; } = 0.15;

    /// <summary>MLM: choose whole words.</summary>
    public bool WholeWordMask { get; init; }

    /// <summary>MLM: whole lines packed into each sequence up to the block size (default), or the corpus cut into equal blocks.</summary>
    public MlmLayout MlmLayout { get; init; } = MlmLayout.Lines;

    /// <summary>Recompute each block's activations in backward instead of keeping them (less memory for long sequences).</summary>
    public bool GradientCheckpointing { get; init; }

    /// <summary>Glob patterns of parameter names to freeze (e.g. <c>bert.embeddings.*</c>).</summary>
    public IReadOnlyList<string> Freeze { get; init; } = [];

    /// <summary>Where tokenized corpora are cached; null for ~/.cache/sharpformer/token-cache.</summary>
    public string? CacheFolder { get; init; }

    /// <summary>
    /// Data-parallel training (<c>mpirun -np N sharpformer train …</c>): the group this process is a rank of, e.g.
    /// <see cref="Communicators.FromEnvironment"/>. Each rank trains on its shard of every batch (<see cref="BatchSize"/>
    /// is per rank, so the global batch is ranks × BatchSize × grad-accum); gradients are averaged across ranks; rank 0
    /// tokenizes the corpus, writes the log and checkpoints. Null (the default) is a single process.
    /// </summary>
    public ICommunicator? Communicator { get; init; }

    /// <summary>Data-parallel runs: bytes of gradients per all-reduce bucket (PyTorch DDP's 25 MiB by default).</summary>
    public long GradientBucketBytes { get; init; } = GradientReducer.DefaultBucketBytes;

    /// <summary>The optimizer, schedule, logging and checkpoint settings (MaxSteps is computed here).</summary>
    public TrainerOptions Trainer { get; init; } = new() { MaxSteps = 1 };
}

/// <summary>
/// The glue of <c>sharpformer train</c>: loads or builds the model through the Auto factories, the tokenizer, the data
/// (tokenized once into the cache), checks the output folder, and returns a <see cref="Trainer"/> ready to run
/// (resumed when asked). Every mistake a user can make is reported before anything on disk changes.
/// </summary>
public sealed class LanguageModelRun : IDisposable
{
    private readonly List<IDisposable> _owned = [];

    private LanguageModelRun(Trainer trainer, Module model, string? resumedFrom, long blocks, int blockSize)
    {
        Trainer = trainer;
        Model = model;
        ResumedFrom = resumedFrom;
        TrainBlocks = blocks;
        BlockSize = blockSize;
    }

    /// <summary>The prepared trainer.</summary>
    public Trainer Trainer { get; }

    /// <summary>The model being trained.</summary>
    public Module Model { get; }

    /// <summary>The checkpoint the run continues from, or null.</summary>
    public string? ResumedFrom { get; }

    /// <summary>Training blocks in one epoch.</summary>
    public long TrainBlocks { get; }

    /// <summary>Tokens per block.</summary>
    public int BlockSize { get; }

    /// <summary>Prepares a run.</summary>
    /// <param name="options">The run's options.</param>
    /// <param name="tokenizing">Progress of tokenizing the corpus (only when it is not cached yet).</param>
    /// <param name="cancellationToken">Cancels tokenization.</param>
    /// <returns>The run, ready for <see cref="Trainer{TBatch}.Run"/>.</returns>
    /// <exception cref="ArgumentException">An option is invalid or inconsistent; the message names it.</exception>
    /// <exception cref="IOException">The output folder holds something else and neither --resume nor --overwrite was given.</exception>
    public static LanguageModelRun Prepare(LanguageModelRunOptions options, IProgress<CorpusProgress>? tokenizing = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Data.Count == 0) throw new ArgumentException("--data is required: a text file, a folder of .txt files, or a JSONL file with a \"text\" field.");
        if (string.IsNullOrWhiteSpace(options.OutputFolder)) throw new ArgumentException("--out is required: the folder the checkpoints, the log and the trained model go to.");
        if ((options.ModelFolder is null) == (options.ConfigPath is null))
        {
            throw new ArgumentException("give either --model <repo-or-folder> (continue training a model) or --config <config.json> --tokenizer <folder> (train one from scratch), not both and not neither.");
        }

        if (options.ConfigPath is not null && options.TokenizerFolder is null)
        {
            throw new ArgumentException("--config needs --tokenizer <folder> (vocab.txt, vocab.json + merges.txt or tokenizer.json): a fresh model has no tokenizer of its own.");
        }

        if (options.Resume && options.Overwrite) throw new ArgumentException("--resume and --overwrite contradict each other: continue the run, or start it over.");
        string output = Path.GetFullPath(options.OutputFolder);
        var store = new CheckpointStore(output, options.Trainer.KeepCheckpoints);
        var resume = options.Resume ? store.Latest() : null;
        if (options.Resume && resume is null)
        {
            throw new ArgumentException($"--resume: {output} holds no complete checkpoint-N folder; drop --resume to start a new run there.");
        }

        var communicator = options.Communicator ?? SingleProcessCommunicator.Instance;
        bool root = communicator.Rank == 0;
        if (!options.Resume) RunFolder.Check(output, options.Overwrite, IsRunFile, "training");

        // Config and tokenizer.
        string configSource = options.ConfigPath ?? Path.Combine(options.ModelFolder!, "config.json");
        var config = ModelConfig.Load(configSource);
        string tokenizerFolder = options.TokenizerFolder ?? options.ModelFolder!;
        var tokenizer = AutoTokenizer.FromPretrained(tokenizerFolder);
        if (tokenizer.VocabularySize > config.VocabSize)
        {
            throw new ArgumentException($"the tokenizer in {tokenizerFolder} has {tokenizer.VocabularySize} tokens but the model's vocab_size is {config.VocabSize}; set vocab_size ≥ {tokenizer.VocabularySize} in the config.");
        }

        int positions = config.MaxPositionEmbeddings;
        int blockSize = options.BlockSize ?? Math.Min(options.Objective == LanguageModelingObjective.CausalLM ? 1024 : 512, positions);
        if (blockSize > positions)
        {
            throw new ArgumentException($"--block-size {blockSize} exceeds the model's {positions} positions (max_position_embeddings / n_positions); use --block-size {positions} or less.");
        }

        // The model, through the Auto factories: a folder's weights, or a fresh HF-style initialisation from the config.
        var model = options.ModelFolder is not null
            ? Load(options.Objective, options.ModelFolder)
            : Create(options.Objective, config, options.Trainer.Seed);
        var task = model as ILanguageModel
            ?? throw new NotSupportedException($"model_type '{config.ModelType}' cannot be trained for {options.Objective} here.");
        if (options.Dropout is float p)
        {
            foreach (var dropout in model.NamedModules().Select(m => m.Module).OfType<Sharpformer.NN.Dropout>()) dropout.P = p;
        }

        if (options.Freeze.Count > 0) Freezing.Freeze(model, options.Freeze);
        if (options.GradientCheckpointing)
        {
            var checkpointed = model as ISupportsGradientCheckpointing
                ?? throw new NotSupportedException($"--gradient-checkpointing: model_type '{config.ModelType}' does not support it yet (gpt2 and bert do); drop the option.");
            checkpointed.GradientCheckpointing = true;
        }


        // Data, tokenized once into the cache.
        string cacheFolder = options.CacheFolder ?? TokenCache.DefaultDirectory;
        // With several ranks, rank 0 fills the cache first and the others then open what it wrote.
        bool group = communicator.Size > 1;
        if (group && !root) communicator.Barrier();
        var run = new List<IDisposable>();
        var train = OpenCache(options.Data, tokenizerFolder, cacheFolder, root ? tokenizing : null, cancellationToken);
        run.Add(train);
        TokenCache? eval = null;
        if (options.EvalData is not null)
        {
            eval = OpenCache([options.EvalData], tokenizerFolder, cacheFolder, root ? tokenizing : null, cancellationToken);
            run.Add(eval);
        }

        if (group && root) communicator.Barrier();

        IBatchSource source;
        Func<IEnumerable<TrainingBatch>>? evalBatches;
        long blocks;
        if (options.Objective == LanguageModelingObjective.CausalLM)
        {
            var clm = new ClmBatchSource(train, new BlockDataOptions
            {
                BlockSize = blockSize,
                BatchSize = options.BatchSize,
                Seed = options.Trainer.Seed,
                Shuffle = !options.NoShuffle,
                EvalFraction = options.EvalFraction,
                ShardCount = communicator.Size,
                ShardIndex = communicator.Rank,
            }, eval);
            source = clm;
            evalBatches = clm.EvalBatchCount > 0 ? clm.EvalBatches : null;
            blocks = clm.TrainBlockCount;
        }
        else
        {
            var mlm = new MlmBatchSource(train, new MlmDataOptions
            {
                BlockSize = blockSize,
                BatchSize = options.BatchSize,
                Seed = options.Trainer.Seed,
                Shuffle = !options.NoShuffle,
                EvalFraction = options.EvalFraction,
                MaskProbability = options.MaskProbability,
                WholeWordMask = options.WholeWordMask,
                ShardCount = communicator.Size,
                ShardIndex = communicator.Rank,
            }, eval);
            source = mlm;
            evalBatches = mlm.EvalBatchCount > 0 ? mlm.EvalBatches : null;
            blocks = mlm.TrainBlockCount;
        }

        long steps = options.Steps ?? (long)Math.Ceiling(options.Epochs * source.BatchesPerEpoch / options.Trainer.GradientAccumulationSteps);
        var trainerOptions = options.Trainer with { MaxSteps = steps };
        if (options.Overwrite && root) RunFolder.Clear(output, IsRunFile);

        var configJson = ModelFolder.SavedConfig(configSource, config, model, options.Dropout);
        var trainer = new Trainer(model, batch => task.LanguageModelingLoss(batch.InputIds, batch.AttentionMask, batch.Labels), source, evalBatches, trainerOptions, output,
            folder => ModelFolder.Write(folder, model, configJson, tokenizerFolder))
        {
            Communicator = communicator,
            GradientBucketBytes = options.GradientBucketBytes,
            PlotTitle = $"{config.ModelType} {(options.Objective == LanguageModelingObjective.CausalLM ? "causal LM" : "masked LM")}, block {blockSize}, batch {(communicator.Size > 1 ? $"{communicator.Size} ranks × " : "")}{options.BatchSize}×{options.Trainer.GradientAccumulationSteps}",
        };
        if (resume is { } checkpoint) trainer.Resume(checkpoint.Folder);
        var prepared = new LanguageModelRun(trainer, model, resume?.Folder, blocks, blockSize);
        prepared._owned.AddRange(run);
        return prepared;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var owned in _owned) owned.Dispose();
        _owned.Clear();
    }

    /// <summary>A folder's causal or masked LM through the Auto factories.</summary>
    internal static Module Load(LanguageModelingObjective objective, string folder) => objective == LanguageModelingObjective.CausalLM
        ? (Module)AutoModelForCausalLM.FromPretrained(folder)
        : AutoModelForMaskedLM.FromPretrained(folder);

    private static Module Create(LanguageModelingObjective objective, ModelConfig config, int seed) => objective == LanguageModelingObjective.CausalLM
        ? (Module)AutoModelForCausalLM.FromConfig(config, seed)
        : AutoModelForMaskedLM.FromConfig(config, seed);

    private static TokenCache OpenCache(IReadOnlyList<string> paths, string tokenizerFolder, string cacheFolder, IProgress<CorpusProgress>? progress, CancellationToken ct)
    {
        if (paths.Count != 1) throw new ArgumentException("--data takes one path (a file, a folder of .txt files, or a JSONL file); put several files in one folder.");
        return TokenCache.Open(Corpus.FromPath(paths[0]), tokenizerFolder, cacheFolder, progress, ct);
    }

    private static bool IsRunFile(string name) =>
        name.StartsWith("checkpoint-", StringComparison.Ordinal) || name.StartsWith(".tmp-", StringComparison.Ordinal)
        || name is "config.json" or "model.safetensors" or "train_log.jsonl" or "train_log.png" || ModelFolder.TokenizerFiles.Contains(name);

}
