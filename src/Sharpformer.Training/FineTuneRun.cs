using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.IO.Config;
using Sharpformer.Models;
using Sharpformer.Models.Bert;
using Sharpformer.Models.DistilBert;
using Sharpformer.Models.Gpt2;
using Sharpformer.NN;
using Sharpformer.NN.Lora;
using Sharpformer.Tensors;
using Sharpformer.Text;
using Sharpformer.Training.Checkpoints;
using Sharpformer.Training.FineTuning;
using Sharpformer.Training.Optim;

namespace Sharpformer.Training;

/// <summary>The task a fine-tuning run trains a head for.</summary>
public enum FineTuneTask
{
    /// <summary>Sequence classification (<c>finetune classify</c>): text [+ text_pair] → one label.</summary>
    Classify,

    /// <summary>Token classification (<c>finetune ner</c>): one tag per word.</summary>
    Ner,

    /// <summary>Extractive question answering (<c>finetune qa</c>): the answer span in a context.</summary>
    Qa,
}

/// <summary>Everything <c>sharpformer finetune classify|ner|qa</c> takes, with HF's defaults; <see cref="FineTuneRun.Prepare"/> turns it into a ready trainer.</summary>
public sealed record FineTuneRunOptions
{
    /// <summary>The task.</summary>
    public FineTuneTask Task { get; init; }

    /// <summary>A local model folder (config.json, weights, tokenizer): a fine-tuned head, or a base / MLM checkpoint that gets a new head.</summary>
    public string ModelFolder { get; init; } = string.Empty;

    /// <summary>Training data: CSV/TSV/JSONL (classify), CoNLL or JSONL tokens/tags (ner), SQuAD JSON (qa).</summary>
    public string Data { get; init; } = string.Empty;

    /// <summary>Held-out data in the same format (else <see cref="ValidationSplit"/> of the training data, else no evaluation).</summary>
    public string? EvalData { get; init; }

    /// <summary>Fraction of the training examples held out for evaluation (a split seeded by <see cref="TrainerOptions.Seed"/>) when there is no <see cref="EvalData"/>; 0 for none.</summary>
    public double ValidationSplit { get; init; }

    /// <summary>Test data scored once with the final model after training (written to <c>test_results.json</c>); null for none.</summary>
    public string? TestData { get; init; }

    /// <summary>The output folder.</summary>
    public string OutputFolder { get; init; } = string.Empty;

    /// <summary>classify: the text column.</summary>
    public string TextColumn { get; init; } = "text";

    /// <summary>classify: the second-text column.</summary>
    public string TextPairColumn { get; init; } = "text_pair";

    /// <summary>classify: the label column.</summary>
    public string LabelColumn { get; init; } = "label";

    /// <summary>Tokens per sequence (special tokens included); null for HF's defaults: 128 (classify, ner), 384 (qa), capped by the model's positions.</summary>
    public int? MaxLength { get; init; }

    /// <summary>Examples (QA: features) per micro-batch (HF per_device_train_batch_size, default 8).</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>Optimizer steps; when null, <see cref="Epochs"/> decides.</summary>
    public long? Steps { get; init; }

    /// <summary>Epochs over the training examples when <see cref="Steps"/> is null (HF default 3).</summary>
    public double Epochs { get; init; } = 3;

    /// <summary>Share of the steps spent in linear warmup (HF warmup_ratio), used when <see cref="TrainerOptions.WarmupSteps"/> is 0.</summary>
    public double WarmupRatio { get; init; }

    /// <summary>Overrides every dropout probability of the config (null keeps them).</summary>
    public float? Dropout { get; init; }

    /// <summary>Glob patterns of parameter names to freeze (e.g. <c>bert.embeddings.*</c>).</summary>
    public IReadOnlyList<string> Freeze { get; init; } = [];

    /// <summary>ner: label every sub-token of a word, not only the first (HF label_all_tokens).</summary>
    public bool LabelAllTokens { get; init; }

    /// <summary>ner: score entities in seqeval's strict mode with this scheme; null for seqeval's default (lenient) mode.</summary>
    public TaggingScheme? TaggingScheme { get; init; }

    /// <summary>qa: overlap between context windows (HF doc_stride, default 128).</summary>
    public int DocStride { get; init; } = 128;

    /// <summary>qa: the longest answer in tokens (HF max_answer_length, default 30).</summary>
    public int MaxAnswerLength { get; init; } = 30;

    /// <summary>Continue from the newest checkpoint in the output folder.</summary>
    public bool Resume { get; init; }

    /// <summary>Start over in an output folder that holds an earlier run.</summary>
    public bool Overwrite { get; init; }

    /// <summary>
    /// LoRA instead of full fine-tuning: adapters on the config's target modules, only they and the task head are trained,
    /// and the output folder holds the adapter in PEFT's layout (adapter_config.json + adapter_model.safetensors); null
    /// for full fine-tuning. The task type and base model name are filled in from the run.
    /// </summary>
    public LoraConfig? Lora { get; init; }

    /// <summary>With <see cref="Lora"/>: write the adapter merged into the base weights as a plain Hugging Face folder instead.</summary>
    public bool MergeLora { get; init; }

    /// <summary>The optimizer, schedule, logging, checkpoint, best-model and early-stopping settings (MaxSteps and warmup are computed here).</summary>
    public TrainerOptions Trainer { get; init; } = new() { MaxSteps = 1 };
}

/// <summary>
/// The glue of <c>sharpformer finetune</c>: reads and checks the data, loads the model with the task's head (a new head
/// on a base or MLM checkpoint, with HF's load report), checks the output folder, and returns a
/// <see cref="Trainer{TBatch}"/> over <see cref="TaskBatch"/> whose evaluations compute the task metrics through the
/// model (accuracy and macro-F1 with a confusion-matrix PNG; seqeval entity P/R/F1; SQuAD EM/F1). Every mistake a user
/// can make is reported before anything on disk changes.
/// </summary>
public sealed class FineTuneRun
{
    /// <summary>The confusion-matrix PNG a classification run writes at each evaluation (the latest one).</summary>
    public const string ConfusionMatrixFile = "confusion_matrix.png";

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
    private readonly FineTuneRunOptions _options;
    private readonly TextTokenizer _tokenizer;
    private readonly int _padId;
    private readonly int _maxLength;
    private readonly IReadOnlyList<string> _labels;

    private FineTuneRun(FineTuneRunOptions options, Module model, TextTokenizer tokenizer, int maxLength, IReadOnlyList<string> labels, string? loadReport)
    {
        _options = options;
        Model = model;
        _tokenizer = tokenizer;
        _maxLength = maxLength;
        _labels = labels;
        LoadReport = loadReport;
        _padId = tokenizer.PadTokenId ?? throw new ArgumentException($"the tokenizer in {options.ModelFolder} has no pad token; set pad_token in its tokenizer_config.json.");
        Trainer = null!;
    }

    /// <summary>The prepared trainer.</summary>
    public Trainer<TaskBatch> Trainer { get; private set; }

    /// <summary>The model being trained (a task head).</summary>
    public Module Model { get; }

    /// <summary>The load report when the checkpoint lacked tensors of the head (newly initialised) or had unused ones; null when it loaded whole.</summary>
    public string? LoadReport { get; }

    /// <summary>The labels (classify) or tags (ner) in id order; empty for qa.</summary>
    public IReadOnlyList<string> Labels => _labels;

    /// <summary>The checkpoint the run continues from, or null.</summary>
    public string? ResumedFrom { get; private set; }

    /// <summary>The LoRA adapters of a LoRA run (their trainable parameters, the adapter save), else null.</summary>
    public LoraModel? Lora { get; private set; }

    /// <summary>Training examples (QA: questions).</summary>
    public int TrainExamples { get; private set; }

    /// <summary>Training items per epoch (QA: context windows).</summary>
    public int TrainItems { get; private set; }

    /// <summary>Evaluation examples (0 without evaluation).</summary>
    public int EvalExamples { get; private set; }

    /// <summary>Tokens per sequence.</summary>
    public int MaxLength => _maxLength;

    /// <summary>The metric names the task's evaluations report (beside loss).</summary>
    /// <param name="task">The task.</param>
    /// <returns>The names.</returns>
    public static IReadOnlyList<string> MetricNames(FineTuneTask task) => task switch
    {
        FineTuneTask.Classify => ["accuracy", "macro_f1", "macro_precision", "macro_recall"],
        FineTuneTask.Ner => ["precision", "recall", "f1", "accuracy"],
        _ => ["exact_match", "f1"],
    };

    /// <summary>Prepares a run.</summary>
    /// <param name="options">The run's options.</param>
    /// <returns>The run; call <c>Trainer.Run</c>, then <see cref="Evaluate"/> for test data.</returns>
    /// <exception cref="ArgumentException">An option is invalid or inconsistent; the message names it.</exception>
    /// <exception cref="InvalidDataException">A data file is empty or malformed; the message names the file and line.</exception>
    /// <exception cref="IOException">The output folder holds something else and neither --resume nor --overwrite was given.</exception>
    public static FineTuneRun Prepare(FineTuneRunOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.ModelFolder)) throw new ArgumentException("--model is required: a model folder or Hub repo id (config.json, model.safetensors, tokenizer files).");
        if (string.IsNullOrWhiteSpace(options.Data)) throw new ArgumentException($"--data is required: {DataHint(options.Task)}");
        if (string.IsNullOrWhiteSpace(options.OutputFolder)) throw new ArgumentException("--out is required: the folder the checkpoints, the log and the fine-tuned model go to.");
        if (options.Resume && options.Overwrite) throw new ArgumentException("--resume and --overwrite contradict each other: continue the run, or start it over.");
        if (options.EvalData is not null && options.ValidationSplit != 0)
        {
            throw new ArgumentException("--eval-data and --validation-split both name the evaluation set; give one of them.");
        }

        if (options.ValidationSplit != 0 && !(options.ValidationSplit > 0 && options.ValidationSplit < 1))
        {
            throw new ArgumentException($"--validation-split must be a fraction between 0 and 1, e.g. 0.1 (got {options.ValidationSplit.ToString(CultureInfo.InvariantCulture)}).");
        }

        if (options.BatchSize < 1) throw new ArgumentException($"--batch-size must be at least 1 (got {options.BatchSize}).");
        if (options.Steps is < 1) throw new ArgumentException($"--steps must be at least 1 (got {options.Steps}).");
        if (options.Steps is null && !(options.Epochs > 0)) throw new ArgumentException($"--epochs must be positive (got {options.Epochs.ToString(CultureInfo.InvariantCulture)}); or give --steps.");
        if (!(options.WarmupRatio is >= 0 and < 1)) throw new ArgumentException($"--warmup-ratio must be in [0, 1) (got {options.WarmupRatio.ToString(CultureInfo.InvariantCulture)}).");
        if (options.Task == FineTuneTask.Qa && options.DocStride < 1) throw new ArgumentException($"--doc-stride must be at least 1 (got {options.DocStride}).");
        if (options.Task == FineTuneTask.Qa && options.MaxAnswerLength < 1) throw new ArgumentException($"--max-answer-length must be at least 1 (got {options.MaxAnswerLength}).");
        if (options.LabelAllTokens && options.Task != FineTuneTask.Ner) throw new ArgumentException("--label-all-tokens is for finetune ner only.");
        bool evaluates = options.EvalData is not null || options.ValidationSplit > 0;
        if (options.Trainer.MetricForBestModel is { } metric)
        {
            var known = MetricNames(options.Task);
            string key = metric.StartsWith("eval_", StringComparison.Ordinal) ? metric[5..] : metric;
            if (key != "loss" && !known.Contains(key))
            {
                throw new ArgumentException($"--metric-for-best-model {metric}: finetune {Verb(options.Task)} reports {string.Join(", ", known)} and loss; choose one of them.");
            }

            if (!evaluates) throw new ArgumentException("--metric-for-best-model needs an evaluation set: pass --eval-data <file> or --validation-split 0.1.");
        }

        if (options.Trainer.EvalEvery > 0 && !evaluates) throw new ArgumentException("--eval-every needs an evaluation set: pass --eval-data <file> or --validation-split 0.1.");
        if (!File.Exists(Path.Combine(options.ModelFolder, "config.json")))
        {
            throw new ArgumentException($"--model {options.ModelFolder}: no config.json there; pass a Hugging Face model folder (config.json, model.safetensors, tokenizer files) or a Hub repo id.");
        }

        string output = Path.GetFullPath(options.OutputFolder);
        var store = new CheckpointStore(output, options.Trainer.KeepCheckpoints);
        var resume = options.Resume ? store.Latest() : null;
        if (options.Resume && resume is null)
        {
            throw new ArgumentException($"--resume: {output} holds no complete checkpoint-N folder; drop --resume to start a new run there.");
        }

        if (!options.Resume) RunFolder.Check(output, options.Overwrite, IsRunFile, "fine-tuning");

        var config = ModelConfig.Load(options.ModelFolder);
        var tokenizer = AutoTokenizer.FromPretrained(options.ModelFolder);
        int positions = config.MaxPositionEmbeddings;
        int maxLength = options.MaxLength ?? Math.Min(options.Task == FineTuneTask.Qa ? 384 : 128, positions);
        if (maxLength < 8) throw new ArgumentException($"--max-length must be at least 8 (got {maxLength}).");
        if (maxLength > positions)
        {
            throw new ArgumentException($"--max-length {maxLength} exceeds the model's {positions} positions (max_position_embeddings); use --max-length {positions} or less.");
        }

        if (options.Task == FineTuneTask.Qa && options.DocStride >= maxLength)
        {
            throw new ArgumentException($"--doc-stride {options.DocStride} must be below --max-length {maxLength} (the windows overlap by the stride).");
        }

        return options.Task switch
        {
            FineTuneTask.Classify => PrepareClassify(options, config, tokenizer, maxLength, output, resume?.Folder),
            FineTuneTask.Ner => PrepareNer(options, config, tokenizer, maxLength, output, resume?.Folder),
            _ => PrepareQa(options, config, tokenizer, maxLength, output, resume?.Folder),
        };
    }

    /// <summary>
    /// Scores the model as it is now on <paramref name="path"/> (same format and labels as the training data), through
    /// the same code as the evaluations; writes nothing.
    /// </summary>
    /// <param name="path">The data file.</param>
    /// <returns>The metrics by name (loss not included).</returns>
    /// <exception cref="InvalidDataException">The file is empty, malformed, or has a label the model does not know; the message names the file and line.</exception>
    public IReadOnlyDictionary<string, double> Evaluate(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return WithEvalMode(() => _options.Task switch
        {
            FineTuneTask.Classify => ScoreClassify(ReadClassify(path, _labels), null).ToMetrics(),
            FineTuneTask.Ner => ScoreNer(TokenClassificationData.Read(path, _labels)).ToMetrics(),
            _ => ScoreQa(SquadData.Read(path)).Scores.ToMetrics(),
        });
    }

    /// <summary>Predicted class ids of <paramref name="data"/>'s examples through the model as it is now (classify).</summary>
    /// <param name="data">The examples.</param>
    /// <returns>One class id per example.</returns>
    public IReadOnlyList<int> PredictClasses(ClassificationDataset data)
    {
        ArgumentNullException.ThrowIfNull(data);
        return WithEvalMode(() => ClassifyPredictions(data));
    }

    /// <summary>Predicted answers of <paramref name="examples"/> through the model as it is now (qa).</summary>
    /// <param name="examples">The questions.</param>
    /// <returns>One prediction per question.</returns>
    public IReadOnlyList<QaPrediction> PredictAnswers(IReadOnlyList<QaExample> examples)
    {
        ArgumentNullException.ThrowIfNull(examples);
        return WithEvalMode(() => ScoreQa(examples).Predictions);
    }

    /// <summary>Predicted word tags of <paramref name="data"/>'s sentences (first sub-token of each word) through the model as it is now (ner).</summary>
    /// <param name="data">The sentences.</param>
    /// <returns>Per sentence, one tag per scored word.</returns>
    public IReadOnlyList<IReadOnlyList<string>> PredictTags(TokenClassificationDataset data)
    {
        ArgumentNullException.ThrowIfNull(data);
        return WithEvalMode(() => NerTags(data).Predicted);
    }

    private static string Verb(FineTuneTask task) => task switch
    {
        FineTuneTask.Classify => "classify",
        FineTuneTask.Ner => "ner",
        _ => "qa",
    };

    private static string DataHint(FineTuneTask task) => task switch
    {
        FineTuneTask.Classify => "a .csv, .tsv or .jsonl file with text[, text_pair] and label.",
        FineTuneTask.Ner => "a CoNLL file (word … tag per line, blank line between sentences) or a .jsonl with tokens and tags.",
        _ => "a SQuAD-format .json file.",
    };

    // ---- classification ----------------------------------------------------------------------------------------

    private static ClassificationDataset ReadClassify(string path, IReadOnlyList<string>? labels, FineTuneRunOptions? options = null) => ClassificationData.Read(path, new ClassificationReadOptions
    {
        TextColumn = options?.TextColumn ?? "text",
        TextPairColumn = options?.TextPairColumn ?? "text_pair",
        LabelColumn = options?.LabelColumn ?? "label",
        Labels = labels,
        Problem = ClassificationProblem.SingleLabel,
    });

    private ClassificationDataset ReadClassify(string path, IReadOnlyList<string> labels) => ReadClassify(path, labels, _options);

    private static FineTuneRun PrepareClassify(FineTuneRunOptions options, ModelConfig config, TextTokenizer tokenizer, int maxLength, string output, string? resume)
    {
        var train = ReadClassify(options.Data, null, options);
        if (train.LabelNames.Count < 2)
        {
            throw new InvalidDataException($"{options.Data}: every example has the label '{train.LabelNames[0]}'; classification needs at least two labels.");
        }

        ClassificationDataset? eval = null;
        if (options.EvalData is not null)
        {
            eval = ReadClassify(options.EvalData, train.LabelNames, options);
        }
        else if (options.ValidationSplit > 0)
        {
            var (part, held) = DataSplit.TrainValidation(train.Examples, options.ValidationSplit, options.Trainer.Seed);
            eval = train.WithExamples(held);
            train = train.WithExamples(part);
        }

        if (options.TestData is not null) ReadClassify(options.TestData, train.LabelNames, options);
        var model = (Module)AutoModelForSequenceClassification.FromPretrained(options.ModelFolder, train.LabelNames, options.Trainer.Seed);
        var classifier = (ISequenceClassifier)model;
        ClassificationData.CheckTextPairs(train, classifier.UsesTokenTypes);
        if (eval is not null) ClassificationData.CheckTextPairs(eval, classifier.UsesTokenTypes);
        var run = new FineTuneRun(options, model, tokenizer, maxLength, train.LabelNames, Report(model));
        var collator = new SequenceClassificationCollator(tokenizer, train, maxLength, classifier.UsesTokenTypes, run._padId);
        var source = new TaskBatchSource(train.Examples.Count, options.BatchSize, collator.Collate, options.Trainer.Seed);
        Func<IEnumerable<TaskBatch>>? evalBatches = null;
        if (eval is not null)
        {
            var evalCollator = new SequenceClassificationCollator(tokenizer, eval, maxLength, classifier.UsesTokenTypes, run._padId);
            evalBatches = new TaskBatchSource(eval.Examples.Count, options.BatchSize, evalCollator.Collate, options.Trainer.Seed, shuffle: false).EvalBatches;
        }

        run.TrainExamples = run.TrainItems = train.Examples.Count;
        run.EvalExamples = eval?.Examples.Count ?? 0;
        run.Finish(config, output, resume, source, evalBatches,
            b => classifier.ClassificationLoss(b.InputIds, b.AttentionMask, b.TokenTypeIds, b.Labels!),
            eval is null ? null : () => run.ScoreClassify(eval, Path.Combine(output, ConfusionMatrixFile)).ToMetrics(),
            $"{config.ModelType} sequence classification, {train.LabelNames.Count} labels");
        return run;
    }

    private List<int> ClassifyPredictions(ClassificationDataset data)
    {
        var classifier = (ISequenceClassifier)Model;
        var collator = new SequenceClassificationCollator(_tokenizer, data, _maxLength, classifier.UsesTokenTypes, _padId);
        var predictions = new List<int>(data.Examples.Count);
        foreach (var batch in new TaskBatchSource(data.Examples.Count, _options.BatchSize, collator.Collate, 0, shuffle: false).EvalBatches())
        {
            var logits = classifier.ClassificationLogits(batch.InputIds, batch.AttentionMask, batch.TokenTypeIds).ToArray();
            int classes = logits.Length / batch.BatchSize;
            for (var row = 0; row < batch.BatchSize; row++) predictions.Add(ArgMax(logits.AsSpan(row * classes, classes)));
        }

        return predictions;
    }

    private ClassificationReport ScoreClassify(ClassificationDataset data, string? confusionPng, string what = "validation", long? modelStep = null)
    {
        var predictions = ClassifyPredictions(data);
        var references = data.Examples.Select(e => data.LabelId(e.Labels[0])).ToList();
        var report = ClassificationMetrics.Compute(predictions, references, data.LabelNames);
        if (confusionPng is not null)
        {
            ClassificationMetrics.SaveConfusionMatrixPng(report, confusionPng, string.Create(CultureInfo.InvariantCulture,
                $"{what}, model of step {modelStep ?? Trainer.Step}: accuracy {report.Accuracy:F3}, macro-F1 {report.MacroF1:F3}"));
        }

        return report;
    }

    // ---- token classification -----------------------------------------------------------------------------------

    private static FineTuneRun PrepareNer(FineTuneRunOptions options, ModelConfig config, TextTokenizer tokenizer, int maxLength, string output, string? resume)
    {
        var train = TokenClassificationData.Read(options.Data);
        TokenClassificationDataset? eval = null;
        if (options.EvalData is not null)
        {
            eval = TokenClassificationData.Read(options.EvalData, train.LabelNames);
        }
        else if (options.ValidationSplit > 0)
        {
            var (part, held) = DataSplit.TrainValidation(train.Examples, options.ValidationSplit, options.Trainer.Seed);
            eval = train.WithExamples(held);
            train = train.WithExamples(part);
        }

        if (options.TestData is not null) TokenClassificationData.Read(options.TestData, train.LabelNames);
        var model = (Module)AutoModelForTokenClassification.FromPretrained(options.ModelFolder, train.LabelNames, options.Trainer.Seed);
        var classifier = (ITokenClassifier)model;
        var run = new FineTuneRun(options, model, tokenizer, maxLength, train.LabelNames, Report(model));
        var collator = new TokenClassificationCollator(tokenizer, train, maxLength, classifier.UsesTokenTypes, options.LabelAllTokens, run._padId);
        var source = new TaskBatchSource(train.Examples.Count, options.BatchSize, collator.Collate, options.Trainer.Seed);
        Func<IEnumerable<TaskBatch>>? evalBatches = null;
        if (eval is not null)
        {
            // The eval loss and tags score the first sub-token of each word, as HF's run_ner evaluates.
            var evalCollator = new TokenClassificationCollator(tokenizer, eval, maxLength, classifier.UsesTokenTypes, labelAllTokens: false, padId: run._padId);
            evalBatches = new TaskBatchSource(eval.Examples.Count, options.BatchSize, evalCollator.Collate, options.Trainer.Seed, shuffle: false).EvalBatches;
        }

        run.TrainExamples = run.TrainItems = train.Examples.Count;
        run.EvalExamples = eval?.Examples.Count ?? 0;
        run.Finish(config, output, resume, source, evalBatches,
            b => classifier.TokenClassificationLoss(b.InputIds, b.AttentionMask, b.TokenTypeIds, b.Labels!),
            eval is null ? null : () => run.ScoreNer(eval).ToMetrics(),
            $"{config.ModelType} token classification, {train.LabelNames.Count} tags");
        return run;
    }

    private (List<List<string>> Predicted, List<List<string>> Reference) NerTags(TokenClassificationDataset data)
    {
        var classifier = (ITokenClassifier)Model;
        var collator = new TokenClassificationCollator(_tokenizer, data, _maxLength, classifier.UsesTokenTypes, labelAllTokens: false, padId: _padId);
        var predicted = new List<List<string>>();
        var reference = new List<List<string>>();
        foreach (var batch in new TaskBatchSource(data.Examples.Count, _options.BatchSize, collator.Collate, 0, shuffle: false).EvalBatches())
        {
            var logits = classifier.TokenLogits(batch.InputIds, batch.AttentionMask, batch.TokenTypeIds).ToArray();
            int b = batch.BatchSize, t = batch.SequenceLength, c = logits.Length / (b * t);
            var labels = batch.Labels!.ToArray<int>();
            var predictions = new int[b, t];
            var gold = new int[b, t];
            for (var row = 0; row < b; row++)
            {
                for (var i = 0; i < t; i++)
                {
                    predictions[row, i] = ArgMax(logits.AsSpan(((row * t) + i) * c, c));
                    gold[row, i] = labels[(row * t) + i];
                }
            }

            var (p, r) = TokenClassificationCollator.ScoredTags(predictions, gold, data.LabelNames);
            predicted.AddRange(p);
            reference.AddRange(r);
        }

        return (predicted, reference);
    }

    private SequenceLabelingReport ScoreNer(TokenClassificationDataset data)
    {
        var (predicted, reference) = NerTags(data);
        return SequenceLabelingMetrics.Compute(reference, predicted, _options.TaggingScheme);
    }

    // ---- question answering ---------------------------------------------------------------------------------------

    private static FineTuneRun PrepareQa(FineTuneRunOptions options, ModelConfig config, TextTokenizer tokenizer, int maxLength, string output, string? resume)
    {
        var train = SquadData.Read(options.Data);
        IReadOnlyList<QaExample>? eval = null;
        if (options.EvalData is not null)
        {
            eval = SquadData.Read(options.EvalData);
        }
        else if (options.ValidationSplit > 0)
        {
            (train, eval) = DataSplit.TrainValidation(train, options.ValidationSplit, options.Trainer.Seed);
        }

        if (options.TestData is not null) SquadData.Read(options.TestData);
        var model = (Module)AutoModelForQuestionAnswering.FromPretrained(options.ModelFolder, options.Trainer.Seed);
        var qa = (IQuestionAnswering)model;
        var run = new FineTuneRun(options, model, tokenizer, maxLength, [], Report(model));
        var features = QuestionAnsweringFeatures.PrepareTrain(tokenizer, train, maxLength, options.DocStride);
        int padId = run._padId;
        var source = new TaskBatchSource(features.Count, options.BatchSize, items => QuestionAnsweringFeatures.Collate(features, items, padId, qa.UsesTokenTypes), options.Trainer.Seed);
        Func<IEnumerable<TaskBatch>>? evalBatches = null;
        if (eval is not null)
        {
            // The eval loss uses the training-style labelled windows of the eval questions; the metrics use HF's eval features.
            var evalFeatures = QuestionAnsweringFeatures.PrepareTrain(tokenizer, eval, maxLength, options.DocStride);
            evalBatches = new TaskBatchSource(evalFeatures.Count, options.BatchSize, items => QuestionAnsweringFeatures.Collate(evalFeatures, items, padId, qa.UsesTokenTypes), options.Trainer.Seed, shuffle: false).EvalBatches;
        }

        run.TrainExamples = train.Count;
        run.TrainItems = features.Count;
        run.EvalExamples = eval?.Count ?? 0;
        run.Finish(config, output, resume, source, evalBatches,
            b => qa.QuestionAnsweringLoss(b.InputIds, b.AttentionMask, b.TokenTypeIds, b.StartPositions!, b.EndPositions!),
            eval is null ? null : () => run.ScoreQa(eval).Scores.ToMetrics(),
            $"{config.ModelType} question answering, max length {maxLength}, stride {options.DocStride}");
        return run;
    }

    private (IReadOnlyList<QaPrediction> Predictions, SquadScores Scores) ScoreQa(IReadOnlyList<QaExample> examples)
    {
        var qa = (IQuestionAnswering)Model;
        var features = QuestionAnsweringFeatures.PrepareEval(_tokenizer, examples, _maxLength, _options.DocStride);
        var starts = new List<float[]>(features.Count);
        var ends = new List<float[]>(features.Count);
        for (var first = 0; first < features.Count; first += _options.BatchSize)
        {
            var items = Enumerable.Range(first, Math.Min(_options.BatchSize, features.Count - first)).ToArray();
            var batch = QuestionAnsweringFeatures.Collate(features, items, _padId, qa.UsesTokenTypes, withPositions: false);
            var (start, end) = qa.SpanLogits(batch.InputIds, batch.AttentionMask, batch.TokenTypeIds);
            var s = start.ToArray();
            var e = end.ToArray();
            int t = batch.SequenceLength;
            for (var row = 0; row < items.Length; row++)
            {
                int count = features[items[row]].Encoding.Count;
                starts.Add(s.AsSpan(row * t, count).ToArray());
                ends.Add(e.AsSpan(row * t, count).ToArray());
            }
        }

        bool impossible = examples.Any(x => x.IsImpossible);
        var predictions = QuestionAnsweringFeatures.Postprocess(examples, features, starts, ends, maxAnswerLength: _options.MaxAnswerLength, versionWithNegative: impossible);
        return (predictions, SquadMetrics.Compute(predictions, examples));
    }

    // ---- shared ---------------------------------------------------------------------------------------------------

    private void Finish(ModelConfig config, string output, string? resume, TaskBatchSource source, Func<IEnumerable<TaskBatch>>? evalBatches,
        Func<TaskBatch, Tensor> loss, Func<IReadOnlyDictionary<string, double>>? metrics, string title)
    {
        var options = _options;
        if (options.Dropout is float p)
        {
            foreach (var dropout in Model.NamedModules().Select(m => m.Module).OfType<Dropout>()) dropout.P = p;
        }

        if (options.Freeze.Count > 0) Freezing.Freeze(Model, options.Freeze);
        if (options.Lora is { } loraConfig)
        {
            string taskType = options.Task switch
            {
                FineTuneTask.Classify => "SEQ_CLS",
                FineTuneTask.Ner => "TOKEN_CLS",
                _ => "QUESTION_ANS",
            };
            Lora = LoraModel.Apply(Model, loraConfig with { TaskType = taskType, BaseModelNameOrPath = options.ModelFolder }, options.Trainer.Seed);
        }
        else if (options.MergeLora)
        {
            throw new ArgumentException("--merge-lora needs --lora-r (a LoRA run); a full fine-tune already writes a plain model folder.");
        }

        long steps = options.Steps ?? (long)Math.Ceiling(options.Epochs * source.BatchesPerEpoch / options.Trainer.GradientAccumulationSteps);
        int warmup = options.Trainer.WarmupSteps > 0 ? options.Trainer.WarmupSteps : (int)Math.Ceiling(options.WarmupRatio * steps);
        var trainerOptions = options.Trainer with { MaxSteps = steps, WarmupSteps = warmup };
        trainerOptions.Validate();
        if (options.Overwrite) RunFolder.Clear(output, IsRunFile);

        var configJson = ModelFolder.SavedConfig(null, config, Model, options.Dropout);
        string tokenizerFolder = options.ModelFolder;
        Trainer = new Trainer<TaskBatch>(Model, loss, source, evalBatches, trainerOptions, output, folder => ModelFolder.Write(folder, Model, configJson, tokenizerFolder))
        {
            PlotTitle = $"{title}{(Lora is null ? "" : $", LoRA r={Lora.Config.R}")}, batch {options.BatchSize}×{options.Trainer.GradientAccumulationSteps}",
            EvalMetrics = metrics,
            WriteFinalModel = Lora is { } lora ? folder => WriteLoraModel(folder, lora, config, tokenizerFolder, options.MergeLora) : null,
        };
        if (resume is not null)
        {
            Trainer.Resume(resume);
            ResumedFrom = resume;
        }
    }

    /// <summary>
    /// The final output of a LoRA run: the adapter in PEFT's layout (adapter_config.json, adapter_model.safetensors with
    /// the trained head as modules_to_save) plus the tokenizer files, or with <paramref name="merge"/> the adapter merged
    /// into the base weights as a plain Hugging Face folder (config.json with the labels, model.safetensors).
    /// </summary>
    private static void WriteLoraModel(string folder, LoraModel lora, ModelConfig config, string tokenizerFolder, bool merge)
    {
        if (merge)
        {
            var merged = lora.MergeAndUnload();
            ModelFolder.Write(folder, merged, ModelFolder.SavedConfig(null, config, merged, null), tokenizerFolder);
            return;
        }

        lora.SaveAdapter(folder, lora.Config.BaseModelNameOrPath);
        foreach (var name in ModelFolder.TokenizerFiles)
        {
            string source = Path.Combine(tokenizerFolder, name);
            if (File.Exists(source)) File.Copy(source, Path.Combine(folder, name), overwrite: true);
        }
    }

    private T WithEvalMode<T>(Func<T> body)
    {
        Model.Eval();
        try
        {
            using (Autograd.NoGrad())
            {
                return body();
            }
        }
        finally
        {
            Model.Train();
        }
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best]) best = i;
        }

        return best;
    }

    /// <summary>HF's load report of a head loaded from a checkpoint: the newly initialised and the unused tensors; null when the checkpoint fit exactly.</summary>
    private static string? Report(Module model)
    {
        var report = model switch
        {
            BertForSequenceClassification m => m.LoadReport,
            BertForTokenClassification m => m.LoadReport,
            BertForQuestionAnswering m => m.LoadReport,
            DistilBertForSequenceClassification m => m.LoadReport,
            DistilBertForTokenClassification m => m.LoadReport,
            DistilBertForQuestionAnswering m => m.LoadReport,
            Gpt2ForSequenceClassification m => m.LoadReport,
            _ => null,
        };
        if (report is null || (report.Missing.Count == 0 && report.Unused.Count == 0)) return null;
        var lines = new List<string>();
        if (report.Missing.Count > 0)
        {
            lines.Add($"Some weights of {model.GetType().Name} were not initialized from the model checkpoint and are newly initialized: [{string.Join(", ", report.Missing)}]. You should train this model on a down-stream task to use it for predictions and inference.");
        }

        if (report.Unused.Count > 0)
        {
            lines.Add($"Some weights of the model checkpoint were not used when initializing {model.GetType().Name}: [{string.Join(", ", report.Unused)}].");
        }

        return string.Join(Environment.NewLine, lines);
    }

    private static bool IsRunFile(string name) =>
        name.StartsWith("checkpoint-", StringComparison.Ordinal) || name.StartsWith(".tmp-", StringComparison.Ordinal)
        || name is "config.json" or "model.safetensors" or "train_log.jsonl" or "train_log.png" or "best-model" or ConfusionMatrixFile or TestResultsFile or TestConfusionMatrixFile
            or LoraConfig.FileName or LoraModel.WeightsFileName
        || ModelFolder.TokenizerFiles.Contains(name);

    /// <summary>The confusion-matrix PNG of the final model on --test-data (classify).</summary>
    public const string TestConfusionMatrixFile = "test_confusion_matrix.png";

    /// <summary>Where the final model's scores on --test-data are written.</summary>
    public const string TestResultsFile = "test_results.json";

    /// <summary>Scores the final model on the test data and writes <see cref="TestResultsFile"/> into the output folder.</summary>
    /// <returns>The metrics, or null without --test-data.</returns>
    public IReadOnlyDictionary<string, double>? EvaluateTest()
    {
        if (_options.TestData is null) return null;
        string test = _options.TestData;
        var metrics = _options.Task == FineTuneTask.Classify
            ? WithEvalMode(() => ScoreClassify(ReadClassify(test, _labels), Path.Combine(Trainer.OutputFolder, TestConfusionMatrixFile), "test set", Trainer.BestStep > 0 ? Trainer.BestStep : Trainer.Step).ToMetrics())
            : Evaluate(test);
        var json = new JsonObject { ["test_data"] = Path.GetFullPath(_options.TestData), ["step"] = Trainer.Step, ["best_step"] = Trainer.BestStep };
        foreach (var (name, value) in metrics) json["test_" + name] = value;
        CheckpointStore.WriteAtomically(Path.Combine(Trainer.OutputFolder, TestResultsFile), s => JsonSerializer.Serialize(s, json, Indented));
        return metrics;
    }
}
