// The fine-tuning heads of Hugging Face's modeling_bert.py, with its member names: BertForSequenceClassification
// (bert with pooler → dropout → classifier), BertForTokenClassification (bert without pooler → dropout → classifier)
// and BertForQuestionAnswering (bert without pooler → qa_outputs, split into start and end logits). Each loads a
// fine-tuned folder, or a base / MLM checkpoint with the head newly initialised (reported as missing, the MLM head as
// unused, as HF's load report does), trains through autograd and infers through BertModel's fused path.
using System.Text.Json.Nodes;
using Sharpformer.IO.Config;
using Sharpformer.IO.SafeTensors;
using Sharpformer.NN;
using Sharpformer.Tensors;

namespace Sharpformer.Models.Bert;

/// <summary>
/// BERT for sequence classification (HF BertForSequenceClassification): <c>bert.*</c> with its pooler, dropout
/// (classifier_dropout, else hidden_dropout_prob), <c>classifier</c> [L, C]: ids [B, T] → logits [B, L].
/// </summary>
public sealed class BertForSequenceClassification : Module, ISequenceClassifier, IPretrainedModel, ISupportsGradientCheckpointing
{
    private readonly string[] _labels;
    private string? _problemType;

    /// <summary>Builds the model from <paramref name="vb"/> at the checkpoint root (encoder under "bert").</summary>
    /// <param name="config">The configuration (bert); num_labels and id2label size the head.</param>
    /// <param name="vb">Root builder.</param>
    public BertForSequenceClassification(BertConfig config, VarBuilder vb)
        : this(config, vb?.Push("bert")!, vb!)
    {
    }

    private BertForSequenceClassification(BertConfig config, VarBuilder body, VarBuilder root)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(root);
        Config = config;
        _labels = TaskHeads.Labels(config);
        _problemType = config.ProblemType;
        Bert = RegisterModule("bert", new BertModel(config, body, addPoolingLayer: true));
        Dropout = RegisterModule("dropout", new Dropout((float)config.ClassifierDropout));
        Classifier = RegisterModule("classifier", new Linear(config.HiddenSize, config.NumLabels, root.Push("classifier"), weightInit: Init.Normal((float)config.InitializerRange)));
    }

    /// <summary>The configuration.</summary>
    public BertConfig Config { get; }

    /// <summary>The encoder, with pooler.</summary>
    public BertModel Bert { get; }

    /// <summary>Dropout on the pooled output (training only).</summary>
    public Dropout Dropout { get; }

    /// <summary>The classifier [L, C] + bias [L].</summary>
    public Linear Classifier { get; }

    /// <summary>What loading read, initialised (the head, and the pooler when the checkpoint has none) and left unused (e.g. cls.predictions.*); null when built otherwise.</summary>
    public LoadReport? LoadReport { get; private set; }

    /// <inheritdoc/>
    public IReadOnlyList<string> Labels => _labels;

    /// <inheritdoc/>
    public ClassificationProblem Problem => TaskHeads.Problem(_problemType, _labels.Length);

    /// <summary>config.json's problem_type: the file's, or the one decided from the first labels (as HF records it); null before that.</summary>
    public string? ProblemType => _problemType;

    /// <inheritdoc/>
    public int MaxPositions => Config.MaxPositionEmbeddings;

    /// <inheritdoc/>
    public bool UsesTokenTypes => true;

    /// <inheritdoc/>
    public string ArchitectureName => "BertForSequenceClassification";

    /// <inheritdoc/>
    public bool GradientCheckpointing
    {
        get => Bert.Encoder.GradientCheckpointing;
        set => Bert.Encoder.GradientCheckpointing = value;
    }

    /// <summary>
    /// Loads a folder (config.json + safetensors): a fine-tuned BertForSequenceClassification, or a BertModel /
    /// BertForMaskedLM checkpoint whose classifier (and pooler, when absent) is initialised as HF does and listed in
    /// <see cref="LoadReport"/>. Returns the model in evaluation mode.
    /// </summary>
    /// <param name="folder">The model folder.</param>
    /// <param name="labels">The classes (overrides config.json's id2label, as HF's <c>from_pretrained(id2label=...)</c>), or null for the file's.</param>
    /// <param name="seed">The seed of the new head's initialisation.</param>
    /// <returns>The model.</returns>
    /// <exception cref="ModelLoadException">A tensor outside the head is missing, or a tensor has the wrong shape (e.g. a classifier for another num_labels).</exception>
    public static BertForSequenceClassification FromPretrained(string folder, IReadOnlyList<string>? labels = null, int seed = 0)
    {
        const string name = nameof(BertForSequenceClassification);
        var config = BertHeadLoading.LoadConfig(folder, name, labels);
        using var source = SafeTensorsLoader.Open(folder);
        var root = TaskHeads.OpenHead(source, seed);
        var model = new BertForSequenceClassification(config, BertHeadLoading.Body(root, source), root);
        model.LoadReport = TaskHeads.CheckMissing(name, folder, root.Report(), "classifier.", "bert.pooler.", "pooler.");
        model.Eval();
        return model;
    }

    /// <summary>A fresh model (training mode) initialised as HF's <c>_init_weights</c> does: see <see cref="BertModel.FromConfig"/>; the classifier normal(0, initializer_range), bias 0.</summary>
    /// <param name="config">The configuration.</param>
    /// <param name="seed">The initialization seed.</param>
    /// <returns>The model.</returns>
    public static BertForSequenceClassification FromConfig(BertConfig config, int seed)
    {
        ArgumentNullException.ThrowIfNull(config);
        var model = new BertForSequenceClassification(config, VarBuilder.FromInit(seed, (float)config.InitializerRange));
        BertLoading.ZeroPaddingRows(model.Bert.Embeddings, config);
        return model;
    }

    /// <summary>ids [B, T] → logits [B, L] (+ the loss when <paramref name="labels"/> are given, as HF computes it for <see cref="Problem"/>).</summary>
    /// <param name="inputIds">Token ids [B, T].</param>
    /// <param name="attentionMask">[B, T] 1 = token, 0 = padding; null attends everywhere.</param>
    /// <param name="tokenTypeIds">Segment ids [B, T] or null.</param>
    /// <param name="labels">I32 [B] class ids (single-label), F32 [B, L] (multi-label), F32 [B] or [B, L] (regression), or null.</param>
    /// <param name="outputHiddenStates">Return every layer's output.</param>
    /// <param name="outputAttentions">Return every layer's attention probabilities.</param>
    /// <returns>The outputs.</returns>
    /// <exception cref="ArgumentException">The inputs or labels have the wrong shape or dtype, or a class id is ≥ num_labels.</exception>
    public SequenceClassifierOutput Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null, Tensor? labels = null, bool outputHiddenStates = false, bool outputAttentions = false)
    {
        var encoded = Bert.Forward(inputIds, attentionMask, tokenTypeIds, outputHiddenStates, outputAttentions);
        var logits = Classifier.Forward(Dropout.Forward(encoded.PoolerOutput!));
        Tensor? loss = null;
        if (labels is not null)
        {
            _problemType ??= TaskHeads.DecideProblemType(_labels.Length, labels);
            loss = TaskHeads.SequenceLoss(ArchitectureName, logits, labels, _problemType);
        }

        return new SequenceClassifierOutput(logits, loss, encoded.HiddenStates, encoded.Attentions);
    }

    /// <inheritdoc/>
    public Tensor ClassificationLogits(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds)
    {
        using var noGrad = Autograd.NoGrad();
        return Forward(inputIds, attentionMask, tokenTypeIds).Logits;
    }

    /// <inheritdoc/>
    public Tensor ClassificationLoss(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds, Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        return Forward(inputIds, attentionMask, tokenTypeIds, labels).Loss!;
    }

    /// <inheritdoc/>
    public JsonObject ConfigJson() => TaskHeads.ConfigJson(Config, ArchitectureName, _problemType);

    /// <inheritdoc/>
    public void SavePretrained(string folder) => TaskHeads.Save(this, ConfigJson(), folder);
}

/// <summary>
/// BERT for token classification (HF BertForTokenClassification): <c>bert.*</c> without pooler, dropout
/// (classifier_dropout, else hidden_dropout_prob), <c>classifier</c> [L, C]: ids [B, T] → logits [B, T, L].
/// </summary>
public sealed class BertForTokenClassification : Module, ITokenClassifier, IPretrainedModel, ISupportsGradientCheckpointing
{
    private readonly string[] _labels;

    /// <summary>Builds the model from <paramref name="vb"/> at the checkpoint root (encoder under "bert").</summary>
    /// <param name="config">The configuration (bert); num_labels and id2label size the head.</param>
    /// <param name="vb">Root builder.</param>
    public BertForTokenClassification(BertConfig config, VarBuilder vb)
        : this(config, vb?.Push("bert")!, vb!)
    {
    }

    private BertForTokenClassification(BertConfig config, VarBuilder body, VarBuilder root)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(root);
        Config = config;
        _labels = TaskHeads.Labels(config);
        Bert = RegisterModule("bert", new BertModel(config, body, addPoolingLayer: false));
        Dropout = RegisterModule("dropout", new Dropout((float)config.ClassifierDropout));
        Classifier = RegisterModule("classifier", new Linear(config.HiddenSize, config.NumLabels, root.Push("classifier"), weightInit: Init.Normal((float)config.InitializerRange)));
    }

    /// <summary>The configuration.</summary>
    public BertConfig Config { get; }

    /// <summary>The encoder (no pooler).</summary>
    public BertModel Bert { get; }

    /// <summary>Dropout on the hidden states (training only).</summary>
    public Dropout Dropout { get; }

    /// <summary>The classifier [L, C] + bias [L].</summary>
    public Linear Classifier { get; }

    /// <summary>What loading read, initialised and left unused; null when built otherwise.</summary>
    public LoadReport? LoadReport { get; private set; }

    /// <inheritdoc/>
    public IReadOnlyList<string> Labels => _labels;

    /// <inheritdoc/>
    public int MaxPositions => Config.MaxPositionEmbeddings;

    /// <inheritdoc/>
    public bool UsesTokenTypes => true;

    /// <inheritdoc/>
    public string ArchitectureName => "BertForTokenClassification";

    /// <inheritdoc/>
    public bool GradientCheckpointing
    {
        get => Bert.Encoder.GradientCheckpointing;
        set => Bert.Encoder.GradientCheckpointing = value;
    }

    /// <summary>Loads a fine-tuned folder, or a base / MLM checkpoint with the classifier newly initialised (see <see cref="BertForSequenceClassification.FromPretrained"/>).</summary>
    /// <param name="folder">The model folder.</param>
    /// <param name="labels">The classes (overrides config.json's id2label), or null for the file's.</param>
    /// <param name="seed">The seed of the new head's initialisation.</param>
    /// <returns>The model, in evaluation mode.</returns>
    /// <exception cref="ModelLoadException">A tensor outside the head is missing, or a tensor has the wrong shape.</exception>
    public static BertForTokenClassification FromPretrained(string folder, IReadOnlyList<string>? labels = null, int seed = 0)
    {
        const string name = nameof(BertForTokenClassification);
        var config = BertHeadLoading.LoadConfig(folder, name, labels);
        using var source = SafeTensorsLoader.Open(folder);
        var root = TaskHeads.OpenHead(source, seed);
        var model = new BertForTokenClassification(config, BertHeadLoading.Body(root, source), root);
        model.LoadReport = TaskHeads.CheckMissing(name, folder, root.Report(), "classifier.");
        model.Eval();
        return model;
    }

    /// <summary>A fresh model (training mode) initialised as HF does; the classifier normal(0, initializer_range), bias 0.</summary>
    /// <param name="config">The configuration.</param>
    /// <param name="seed">The initialization seed.</param>
    /// <returns>The model.</returns>
    public static BertForTokenClassification FromConfig(BertConfig config, int seed)
    {
        ArgumentNullException.ThrowIfNull(config);
        var model = new BertForTokenClassification(config, VarBuilder.FromInit(seed, (float)config.InitializerRange));
        BertLoading.ZeroPaddingRows(model.Bert.Embeddings, config);
        return model;
    }

    /// <summary>ids [B, T] → logits [B, T, L] (+ the mean cross-entropy over labels ≠ −100 when <paramref name="labels"/> [B, T] are given).</summary>
    /// <param name="inputIds">Token ids [B, T].</param>
    /// <param name="attentionMask">[B, T] 1 = token, 0 = padding; null attends everywhere.</param>
    /// <param name="tokenTypeIds">Segment ids [B, T] or null.</param>
    /// <param name="labels">I32 [B, T] class ids, −100 where not scored, or null.</param>
    /// <param name="outputHiddenStates">Return every layer's output.</param>
    /// <param name="outputAttentions">Return every layer's attention probabilities.</param>
    /// <returns>The outputs.</returns>
    /// <exception cref="ArgumentException">The inputs or labels have the wrong shape or dtype, or a class id is ≥ num_labels.</exception>
    public TokenClassifierOutput Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null, Tensor? labels = null, bool outputHiddenStates = false, bool outputAttentions = false)
    {
        var encoded = Bert.Forward(inputIds, attentionMask, tokenTypeIds, outputHiddenStates, outputAttentions);
        var logits = Classifier.Forward(Dropout.Forward(encoded.LastHiddenState));
        var loss = labels is null ? null : TaskHeads.TokenLoss(ArchitectureName, logits, labels);
        return new TokenClassifierOutput(logits, loss, encoded.HiddenStates, encoded.Attentions);
    }

    /// <inheritdoc/>
    public Tensor TokenLogits(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds)
    {
        using var noGrad = Autograd.NoGrad();
        return Forward(inputIds, attentionMask, tokenTypeIds).Logits;
    }

    /// <inheritdoc/>
    public Tensor TokenClassificationLoss(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds, Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        return Forward(inputIds, attentionMask, tokenTypeIds, labels).Loss!;
    }

    /// <inheritdoc/>
    public JsonObject ConfigJson() => TaskHeads.ConfigJson(Config, ArchitectureName, Config.ProblemType);

    /// <inheritdoc/>
    public void SavePretrained(string folder) => TaskHeads.Save(this, ConfigJson(), folder);
}

/// <summary>
/// BERT for extractive question answering (HF BertForQuestionAnswering): <c>bert.*</c> without pooler, then
/// <c>qa_outputs</c> [2, C]: ids [B, T] → start and end logits [B, T].
/// </summary>
public sealed class BertForQuestionAnswering : Module, IQuestionAnswering, IPretrainedModel, ISupportsGradientCheckpointing
{
    /// <summary>Builds the model from <paramref name="vb"/> at the checkpoint root (encoder under "bert").</summary>
    /// <param name="config">The configuration (bert, num_labels 2).</param>
    /// <param name="vb">Root builder.</param>
    /// <exception cref="ArgumentException">num_labels is not 2.</exception>
    public BertForQuestionAnswering(BertConfig config, VarBuilder vb)
        : this(config, vb?.Push("bert")!, vb!)
    {
    }

    private BertForQuestionAnswering(BertConfig config, VarBuilder body, VarBuilder root)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(root);
        BertHeadLoading.CheckSpanLabels(config, nameof(BertForQuestionAnswering));
        Config = config;
        Bert = RegisterModule("bert", new BertModel(config, body, addPoolingLayer: false));
        QaOutputs = RegisterModule("qa_outputs", new Linear(config.HiddenSize, config.NumLabels, root.Push("qa_outputs"), weightInit: Init.Normal((float)config.InitializerRange)));
    }

    /// <summary>The configuration.</summary>
    public BertConfig Config { get; }

    /// <summary>The encoder (no pooler).</summary>
    public BertModel Bert { get; }

    /// <summary>The span head [2, C] + bias [2]: column 0 start, column 1 end.</summary>
    public Linear QaOutputs { get; }

    /// <summary>What loading read, initialised and left unused; null when built otherwise.</summary>
    public LoadReport? LoadReport { get; private set; }

    /// <inheritdoc/>
    public int MaxPositions => Config.MaxPositionEmbeddings;

    /// <inheritdoc/>
    public bool UsesTokenTypes => true;

    /// <inheritdoc/>
    public string ArchitectureName => "BertForQuestionAnswering";

    /// <inheritdoc/>
    public bool GradientCheckpointing
    {
        get => Bert.Encoder.GradientCheckpointing;
        set => Bert.Encoder.GradientCheckpointing = value;
    }

    /// <summary>Loads a fine-tuned folder, or a base / MLM checkpoint with qa_outputs newly initialised (reported as missing).</summary>
    /// <param name="folder">The model folder.</param>
    /// <param name="seed">The seed of the new head's initialisation.</param>
    /// <returns>The model, in evaluation mode.</returns>
    /// <exception cref="ModelLoadException">A tensor outside the head is missing, or a tensor has the wrong shape.</exception>
    public static BertForQuestionAnswering FromPretrained(string folder, int seed = 0)
    {
        const string name = nameof(BertForQuestionAnswering);
        var config = BertHeadLoading.LoadConfig(folder, name, null);
        using var source = SafeTensorsLoader.Open(folder);
        var root = TaskHeads.OpenHead(source, seed);
        var model = new BertForQuestionAnswering(config, BertHeadLoading.Body(root, source), root);
        model.LoadReport = TaskHeads.CheckMissing(name, folder, root.Report(), "qa_outputs.");
        model.Eval();
        return model;
    }

    /// <summary>A fresh model (training mode) initialised as HF does; qa_outputs normal(0, initializer_range), bias 0.</summary>
    /// <param name="config">The configuration.</param>
    /// <param name="seed">The initialization seed.</param>
    /// <returns>The model.</returns>
    public static BertForQuestionAnswering FromConfig(BertConfig config, int seed)
    {
        ArgumentNullException.ThrowIfNull(config);
        var model = new BertForQuestionAnswering(config, VarBuilder.FromInit(seed, (float)config.InitializerRange));
        BertLoading.ZeroPaddingRows(model.Bert.Embeddings, config);
        return model;
    }

    /// <summary>ids [B, T] → start and end logits [B, T] (+ HF's QA loss when both position tensors [B] are given).</summary>
    /// <param name="inputIds">Token ids [B, T].</param>
    /// <param name="attentionMask">[B, T] 1 = token, 0 = padding; null attends everywhere.</param>
    /// <param name="tokenTypeIds">Segment ids [B, T] or null.</param>
    /// <param name="startPositions">I32 [B] answer start tokens (clamped to [0, T], T ignored), or null.</param>
    /// <param name="endPositions">I32 [B] answer end tokens, or null.</param>
    /// <param name="outputHiddenStates">Return every layer's output.</param>
    /// <param name="outputAttentions">Return every layer's attention probabilities.</param>
    /// <returns>The outputs.</returns>
    /// <exception cref="ArgumentException">The inputs or positions have the wrong shape or dtype, or only one of the position tensors is given.</exception>
    public QuestionAnsweringOutput Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null, Tensor? startPositions = null, Tensor? endPositions = null, bool outputHiddenStates = false, bool outputAttentions = false)
    {
        BertHeadLoading.CheckPositionPair(startPositions, endPositions);
        var encoded = Bert.Forward(inputIds, attentionMask, tokenTypeIds, outputHiddenStates, outputAttentions);
        var (start, end) = TaskHeads.SplitSpans(QaOutputs.Forward(encoded.LastHiddenState));
        var loss = startPositions is null ? null : TaskHeads.QaLoss(ArchitectureName, start, end, startPositions, endPositions!);
        return new QuestionAnsweringOutput(start, end, loss, encoded.HiddenStates, encoded.Attentions);
    }

    /// <inheritdoc/>
    public (Tensor Start, Tensor End) SpanLogits(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds)
    {
        using var noGrad = Autograd.NoGrad();
        var output = Forward(inputIds, attentionMask, tokenTypeIds);
        return (output.StartLogits, output.EndLogits);
    }

    /// <inheritdoc/>
    public Tensor QuestionAnsweringLoss(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds, Tensor startPositions, Tensor endPositions)
    {
        ArgumentNullException.ThrowIfNull(startPositions);
        ArgumentNullException.ThrowIfNull(endPositions);
        return Forward(inputIds, attentionMask, tokenTypeIds, startPositions, endPositions).Loss!;
    }

    /// <inheritdoc/>
    public JsonObject ConfigJson() => TaskHeads.ConfigJson(Config, ArchitectureName, Config.ProblemType);

    /// <inheritdoc/>
    public void SavePretrained(string folder) => TaskHeads.Save(this, ConfigJson(), folder);
}

/// <summary>Config and checkpoint plumbing of the BERT heads.</summary>
internal static class BertHeadLoading
{
    /// <summary>The folder's bert config, with <paramref name="labels"/> as its classes when given.</summary>
    public static BertConfig LoadConfig(string folder, string what, IReadOnlyList<string>? labels)
    {
        var config = BertLoading.LoadConfig(folder, what) as BertConfig
            ?? throw new NotSupportedException($"{what}.FromPretrained('{folder}'): model_type is roberta; RoBERTa's heads are not implemented here, only BERT's (model_type bert).");
        return labels is null ? config : (BertConfig)config.WithLabels(labels);
    }

    /// <summary>The encoder's builder: the root for a bare BertModel checkpoint, "bert." otherwise.</summary>
    public static VarBuilder Body(VarBuilder root, ISafeTensorsSource source) =>
        source.Contains("embeddings.word_embeddings.weight") ? root : root.Push("bert");

    /// <summary>QA heads split their two outputs into start and end: num_labels must be 2 (HF's default).</summary>
    public static void CheckSpanLabels(ModelConfig config, string what)
    {
        if (config.NumLabels != 2)
        {
            throw new ArgumentException($"{what}: question answering needs num_labels 2 (start and end logits), but the config has {config.NumLabels} (id2label: {string.Join(", ", config.Id2Label.Values)}); remove num_labels / id2label from config.json or set num_labels to 2.", nameof(config));
        }
    }

    /// <summary>HF computes the QA loss only with both positions; one without the other is a caller's mistake.</summary>
    public static void CheckPositionPair(Tensor? startPositions, Tensor? endPositions)
    {
        if ((startPositions is null) != (endPositions is null))
        {
            throw new ArgumentException("question answering: give both start_positions and end_positions (or neither for logits only).", startPositions is null ? nameof(startPositions) : nameof(endPositions));
        }
    }
}
