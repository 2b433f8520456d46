// The fine-tuning heads of Hugging Face's modeling_distilbert.py, with its member names:
// DistilBertForSequenceClassification (first token → pre_classifier → ReLU → dropout(seq_classif_dropout) → classifier),
// DistilBertForTokenClassification (dropout(dropout) → classifier) and DistilBertForQuestionAnswering
// (dropout(qa_dropout) → qa_outputs). Each loads a fine-tuned folder, or a base / MLM checkpoint with the head newly
// initialised and reported, trains through autograd and infers through DistilBertModel's fused path.
using System.Text.Json.Nodes;
using Sharpformer.IO.Config;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Models.Bert;
using Sharpformer.NN;
using Sharpformer.Tensors;

namespace Sharpformer.Models.DistilBert;

/// <summary>
/// DistilBERT for sequence classification (HF DistilBertForSequenceClassification): <c>distilbert.*</c>, the first
/// token's hidden state → <c>pre_classifier</c> [C, C] → ReLU → dropout (seq_classif_dropout) → <c>classifier</c> [L, C]:
/// ids [B, T] → logits [B, L].
/// </summary>
public sealed class DistilBertForSequenceClassification : Module, ISequenceClassifier, IPretrainedModel
{
    private readonly string[] _labels;
    private string? _problemType;

    /// <summary>Builds the model from <paramref name="vb"/> at the checkpoint root (encoder under "distilbert").</summary>
    /// <param name="config">The configuration; num_labels and id2label size the head.</param>
    /// <param name="vb">Root builder.</param>
    public DistilBertForSequenceClassification(DistilBertConfig config, VarBuilder vb)
        : this(config, vb?.Push("distilbert")!, vb!)
    {
    }

    private DistilBertForSequenceClassification(DistilBertConfig config, VarBuilder body, VarBuilder root)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(root);
        Config = config;
        _labels = TaskHeads.Labels(config);
        _problemType = config.ProblemType;
        var init = Init.Normal((float)config.InitializerRange);
        DistilBert = RegisterModule("distilbert", new DistilBertModel(config, body));
        PreClassifier = RegisterModule("pre_classifier", new Linear(config.HiddenSize, config.HiddenSize, root.Push("pre_classifier"), weightInit: init));
        Classifier = RegisterModule("classifier", new Linear(config.HiddenSize, config.NumLabels, root.Push("classifier"), weightInit: init));
        Dropout = RegisterModule("dropout", new Dropout((float)config.SeqClassifDropout));
    }

    /// <summary>The configuration.</summary>
    public DistilBertConfig Config { get; }

    /// <summary>The encoder.</summary>
    public DistilBertModel DistilBert { get; }

    /// <summary>[C, C] dense on the first token, followed by ReLU.</summary>
    public Linear PreClassifier { get; }

    /// <summary>The classifier [L, C] + bias [L].</summary>
    public Linear Classifier { get; }

    /// <summary>Dropout (seq_classif_dropout) before the classifier (training only).</summary>
    public Dropout Dropout { get; }

    /// <summary>What loading read, initialised (pre_classifier, classifier from a base checkpoint) and left unused; null when built otherwise.</summary>
    public LoadReport? LoadReport { get; private set; }

    /// <inheritdoc/>
    public IReadOnlyList<string> Labels => _labels;

    /// <inheritdoc/>
    public ClassificationProblem Problem => TaskHeads.Problem(_problemType, _labels.Length);

    /// <summary>config.json's problem_type: the file's, or the one decided from the first labels; null before that.</summary>
    public string? ProblemType => _problemType;

    /// <inheritdoc/>
    public int MaxPositions => Config.MaxPositionEmbeddings;

    /// <inheritdoc/>
    public bool UsesTokenTypes => false;

    /// <inheritdoc/>
    public string ArchitectureName => "DistilBertForSequenceClassification";

    /// <summary>Loads a fine-tuned folder, or a DistilBertModel / DistilBertForMaskedLM checkpoint with pre_classifier and classifier newly initialised (listed in <see cref="LoadReport"/>).</summary>
    /// <param name="folder">The model folder.</param>
    /// <param name="labels">The classes (overrides config.json's id2label), or null for the file's.</param>
    /// <param name="seed">The seed of the new head's initialisation.</param>
    /// <returns>The model, in evaluation mode.</returns>
    /// <exception cref="ModelLoadException">A tensor outside the head is missing, or a tensor has the wrong shape.</exception>
    public static DistilBertForSequenceClassification FromPretrained(string folder, IReadOnlyList<string>? labels = null, int seed = 0)
    {
        const string name = nameof(DistilBertForSequenceClassification);
        var config = DistilBertHeadLoading.LoadConfig(folder, name, labels);
        using var source = SafeTensorsLoader.Open(folder);
        var root = TaskHeads.OpenHead(source, seed);
        var model = new DistilBertForSequenceClassification(config, DistilBertLoading.ModelRoot(root, source), root);
        model.LoadReport = TaskHeads.CheckMissing(name, folder, root.Report(), "pre_classifier.", "classifier.");
        model.Eval();
        return model;
    }

    /// <summary>A fresh model (training mode): every dense and embedding weight normal(0, initializer_range), biases 0, LayerNorm 1/0.</summary>
    /// <param name="config">The configuration.</param>
    /// <param name="seed">The initialization seed.</param>
    /// <returns>The model.</returns>
    public static DistilBertForSequenceClassification FromConfig(DistilBertConfig config, int seed)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new DistilBertForSequenceClassification(config, VarBuilder.FromInit(seed, (float)config.InitializerRange));
    }

    /// <summary>ids [B, T] → logits [B, L] (+ the loss when <paramref name="labels"/> are given, as HF computes it for <see cref="Problem"/>).</summary>
    /// <param name="inputIds">Token ids [B, T].</param>
    /// <param name="attentionMask">[B, T] 1 = token, 0 = padding; null attends everywhere.</param>
    /// <param name="labels">I32 [B] class ids (single-label), F32 [B, L] (multi-label), F32 [B] or [B, L] (regression), or null.</param>
    /// <param name="outputHiddenStates">Return every block's output.</param>
    /// <param name="outputAttentions">Return every block's attention probabilities.</param>
    /// <returns>The outputs.</returns>
    /// <exception cref="ArgumentException">The inputs or labels have the wrong shape or dtype, or a class id is ≥ num_labels.</exception>
    public SequenceClassifierOutput Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? labels = null, bool outputHiddenStates = false, bool outputAttentions = false)
    {
        var encoded = DistilBert.Forward(inputIds, attentionMask, outputHiddenStates, outputAttentions);
        var hidden = encoded.LastHiddenState;
        var first = Ops.Reshape(Ops.Narrow(hidden, 1, 0, 1), hidden.Shape[0], hidden.Shape[2]);
        var logits = Classifier.Forward(Dropout.Forward(Ops.Relu(PreClassifier.Forward(first))));
        Tensor? loss = null;
        if (labels is not null)
        {
            _problemType ??= TaskHeads.DecideProblemType(_labels.Length, labels);
            loss = TaskHeads.SequenceLoss(ArchitectureName, logits, labels, _problemType);
        }

        return new SequenceClassifierOutput(logits, loss, encoded.HiddenStates, encoded.Attentions);
    }

    /// <inheritdoc/>
    /// <remarks>DistilBERT has no segment embeddings: <paramref name="tokenTypeIds"/> is ignored.</remarks>
    public Tensor ClassificationLogits(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds)
    {
        using var noGrad = Autograd.NoGrad();
        return Forward(inputIds, attentionMask).Logits;
    }

    /// <inheritdoc/>
    public Tensor ClassificationLoss(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds, Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        return Forward(inputIds, attentionMask, labels).Loss!;
    }

    /// <inheritdoc/>
    public JsonObject ConfigJson() => TaskHeads.ConfigJson(Config, ArchitectureName, _problemType);

    /// <inheritdoc/>
    public void SavePretrained(string folder) => TaskHeads.Save(this, ConfigJson(), folder);
}

/// <summary>
/// DistilBERT for token classification (HF DistilBertForTokenClassification): <c>distilbert.*</c>, dropout (the
/// config's <c>dropout</c>), <c>classifier</c> [L, C]: ids [B, T] → logits [B, T, L].
/// </summary>
public sealed class DistilBertForTokenClassification : Module, ITokenClassifier, IPretrainedModel
{
    private readonly string[] _labels;

    /// <summary>Builds the model from <paramref name="vb"/> at the checkpoint root (encoder under "distilbert").</summary>
    /// <param name="config">The configuration; num_labels and id2label size the head.</param>
    /// <param name="vb">Root builder.</param>
    public DistilBertForTokenClassification(DistilBertConfig config, VarBuilder vb)
        : this(config, vb?.Push("distilbert")!, vb!)
    {
    }

    private DistilBertForTokenClassification(DistilBertConfig config, VarBuilder body, VarBuilder root)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(root);
        Config = config;
        _labels = TaskHeads.Labels(config);
        DistilBert = RegisterModule("distilbert", new DistilBertModel(config, body));
        Dropout = RegisterModule("dropout", new Dropout((float)config.Dropout));
        Classifier = RegisterModule("classifier", new Linear(config.HiddenSize, config.NumLabels, root.Push("classifier"), weightInit: Init.Normal((float)config.InitializerRange)));
    }

    /// <summary>The configuration.</summary>
    public DistilBertConfig Config { get; }

    /// <summary>The encoder.</summary>
    public DistilBertModel DistilBert { get; }

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
    public bool UsesTokenTypes => false;

    /// <inheritdoc/>
    public string ArchitectureName => "DistilBertForTokenClassification";

    /// <summary>Loads a fine-tuned folder, or a base / MLM checkpoint with the classifier newly initialised (listed in <see cref="LoadReport"/>).</summary>
    /// <param name="folder">The model folder.</param>
    /// <param name="labels">The classes (overrides config.json's id2label), or null for the file's.</param>
    /// <param name="seed">The seed of the new head's initialisation.</param>
    /// <returns>The model, in evaluation mode.</returns>
    /// <exception cref="ModelLoadException">A tensor outside the head is missing, or a tensor has the wrong shape.</exception>
    public static DistilBertForTokenClassification FromPretrained(string folder, IReadOnlyList<string>? labels = null, int seed = 0)
    {
        const string name = nameof(DistilBertForTokenClassification);
        var config = DistilBertHeadLoading.LoadConfig(folder, name, labels);
        using var source = SafeTensorsLoader.Open(folder);
        var root = TaskHeads.OpenHead(source, seed);
        var model = new DistilBertForTokenClassification(config, DistilBertLoading.ModelRoot(root, source), root);
        model.LoadReport = TaskHeads.CheckMissing(name, folder, root.Report(), "classifier.");
        model.Eval();
        return model;
    }

    /// <summary>A fresh model (training mode) initialised as HF does.</summary>
    /// <param name="config">The configuration.</param>
    /// <param name="seed">The initialization seed.</param>
    /// <returns>The model.</returns>
    public static DistilBertForTokenClassification FromConfig(DistilBertConfig config, int seed)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new DistilBertForTokenClassification(config, VarBuilder.FromInit(seed, (float)config.InitializerRange));
    }

    /// <summary>ids [B, T] → logits [B, T, L] (+ the mean cross-entropy over labels ≠ −100 when <paramref name="labels"/> [B, T] are given).</summary>
    /// <param name="inputIds">Token ids [B, T].</param>
    /// <param name="attentionMask">[B, T] 1 = token, 0 = padding; null attends everywhere.</param>
    /// <param name="labels">I32 [B, T] class ids, −100 where not scored, or null.</param>
    /// <param name="outputHiddenStates">Return every block's output.</param>
    /// <param name="outputAttentions">Return every block's attention probabilities.</param>
    /// <returns>The outputs.</returns>
    /// <exception cref="ArgumentException">The inputs or labels have the wrong shape or dtype, or a class id is ≥ num_labels.</exception>
    public TokenClassifierOutput Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? labels = null, bool outputHiddenStates = false, bool outputAttentions = false)
    {
        var encoded = DistilBert.Forward(inputIds, attentionMask, outputHiddenStates, outputAttentions);
        var logits = Classifier.Forward(Dropout.Forward(encoded.LastHiddenState));
        var loss = labels is null ? null : TaskHeads.TokenLoss(ArchitectureName, logits, labels);
        return new TokenClassifierOutput(logits, loss, encoded.HiddenStates, encoded.Attentions);
    }

    /// <inheritdoc/>
    public Tensor TokenLogits(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds)
    {
        using var noGrad = Autograd.NoGrad();
        return Forward(inputIds, attentionMask).Logits;
    }

    /// <inheritdoc/>
    public Tensor TokenClassificationLoss(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds, Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        return Forward(inputIds, attentionMask, labels).Loss!;
    }

    /// <inheritdoc/>
    public JsonObject ConfigJson() => TaskHeads.ConfigJson(Config, ArchitectureName, Config.ProblemType);

    /// <inheritdoc/>
    public void SavePretrained(string folder) => TaskHeads.Save(this, ConfigJson(), folder);
}

/// <summary>
/// DistilBERT for extractive question answering (HF DistilBertForQuestionAnswering): <c>distilbert.*</c>, dropout
/// (qa_dropout), <c>qa_outputs</c> [2, C]: ids [B, T] → start and end logits [B, T].
/// </summary>
public sealed class DistilBertForQuestionAnswering : Module, IQuestionAnswering, IPretrainedModel
{
    /// <summary>Builds the model from <paramref name="vb"/> at the checkpoint root (encoder under "distilbert").</summary>
    /// <param name="config">The configuration (num_labels 2).</param>
    /// <param name="vb">Root builder.</param>
    /// <exception cref="ArgumentException">num_labels is not 2 (HF raises the same).</exception>
    public DistilBertForQuestionAnswering(DistilBertConfig config, VarBuilder vb)
        : this(config, vb?.Push("distilbert")!, vb!)
    {
    }

    private DistilBertForQuestionAnswering(DistilBertConfig config, VarBuilder body, VarBuilder root)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(root);
        BertHeadLoading.CheckSpanLabels(config, nameof(DistilBertForQuestionAnswering));
        Config = config;
        DistilBert = RegisterModule("distilbert", new DistilBertModel(config, body));
        QaOutputs = RegisterModule("qa_outputs", new Linear(config.HiddenSize, config.NumLabels, root.Push("qa_outputs"), weightInit: Init.Normal((float)config.InitializerRange)));
        Dropout = RegisterModule("dropout", new Dropout((float)config.QaDropout));
    }

    /// <summary>The configuration.</summary>
    public DistilBertConfig Config { get; }

    /// <summary>The encoder.</summary>
    public DistilBertModel DistilBert { get; }

    /// <summary>The span head [2, C] + bias [2]: column 0 start, column 1 end.</summary>
    public Linear QaOutputs { get; }

    /// <summary>Dropout (qa_dropout) on the hidden states (training only).</summary>
    public Dropout Dropout { get; }

    /// <summary>What loading read, initialised and left unused; null when built otherwise.</summary>
    public LoadReport? LoadReport { get; private set; }

    /// <inheritdoc/>
    public int MaxPositions => Config.MaxPositionEmbeddings;

    /// <inheritdoc/>
    public bool UsesTokenTypes => false;

    /// <inheritdoc/>
    public string ArchitectureName => "DistilBertForQuestionAnswering";

    /// <summary>Loads a fine-tuned folder, or a base / MLM checkpoint with qa_outputs newly initialised (listed in <see cref="LoadReport"/>).</summary>
    /// <param name="folder">The model folder.</param>
    /// <param name="seed">The seed of the new head's initialisation.</param>
    /// <returns>The model, in evaluation mode.</returns>
    /// <exception cref="ModelLoadException">A tensor outside the head is missing, or a tensor has the wrong shape.</exception>
    public static DistilBertForQuestionAnswering FromPretrained(string folder, int seed = 0)
    {
        const string name = nameof(DistilBertForQuestionAnswering);
        var config = DistilBertHeadLoading.LoadConfig(folder, name, null);
        using var source = SafeTensorsLoader.Open(folder);
        var root = TaskHeads.OpenHead(source, seed);
        var model = new DistilBertForQuestionAnswering(config, DistilBertLoading.ModelRoot(root, source), root);
        model.LoadReport = TaskHeads.CheckMissing(name, folder, root.Report(), "qa_outputs.");
        model.Eval();
        return model;
    }

    /// <summary>A fresh model (training mode) initialised as HF does.</summary>
    /// <param name="config">The configuration.</param>
    /// <param name="seed">The initialization seed.</param>
    /// <returns>The model.</returns>
    public static DistilBertForQuestionAnswering FromConfig(DistilBertConfig config, int seed)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new DistilBertForQuestionAnswering(config, VarBuilder.FromInit(seed, (float)config.InitializerRange));
    }

    /// <summary>ids [B, T] → start and end logits [B, T] (+ HF's QA loss when both position tensors [B] are given).</summary>
    /// <param name="inputIds">Token ids [B, T].</param>
    /// <param name="attentionMask">[B, T] 1 = token, 0 = padding; null attends everywhere.</param>
    /// <param name="startPositions">I32 [B] answer start tokens (clamped to [0, T], T ignored), or null.</param>
    /// <param name="endPositions">I32 [B] answer end tokens, or null.</param>
    /// <param name="outputHiddenStates">Return every block's output.</param>
    /// <param name="outputAttentions">Return every block's attention probabilities.</param>
    /// <returns>The outputs.</returns>
    /// <exception cref="ArgumentException">The inputs or positions have the wrong shape or dtype, or only one of the position tensors is given.</exception>
    public QuestionAnsweringOutput Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? startPositions = null, Tensor? endPositions = null, bool outputHiddenStates = false, bool outputAttentions = false)
    {
        BertHeadLoading.CheckPositionPair(startPositions, endPositions);
        var encoded = DistilBert.Forward(inputIds, attentionMask, outputHiddenStates, outputAttentions);
        var (start, end) = TaskHeads.SplitSpans(QaOutputs.Forward(Dropout.Forward(encoded.LastHiddenState)));
        var loss = startPositions is null ? null : TaskHeads.QaLoss(ArchitectureName, start, end, startPositions, endPositions!);
        return new QuestionAnsweringOutput(start, end, loss, encoded.HiddenStates, encoded.Attentions);
    }

    /// <inheritdoc/>
    public (Tensor Start, Tensor End) SpanLogits(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds)
    {
        using var noGrad = Autograd.NoGrad();
        var output = Forward(inputIds, attentionMask);
        return (output.StartLogits, output.EndLogits);
    }

    /// <inheritdoc/>
    public Tensor QuestionAnsweringLoss(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds, Tensor startPositions, Tensor endPositions)
    {
        ArgumentNullException.ThrowIfNull(startPositions);
        ArgumentNullException.ThrowIfNull(endPositions);
        return Forward(inputIds, attentionMask, startPositions, endPositions).Loss!;
    }

    /// <inheritdoc/>
    public JsonObject ConfigJson() => TaskHeads.ConfigJson(Config, ArchitectureName, Config.ProblemType);

    /// <inheritdoc/>
    public void SavePretrained(string folder) => TaskHeads.Save(this, ConfigJson(), folder);
}

/// <summary>Config plumbing of the DistilBERT heads.</summary>
internal static class DistilBertHeadLoading
{
    /// <summary>The folder's distilbert config, with <paramref name="labels"/> as its classes when given.</summary>
    public static DistilBertConfig LoadConfig(string folder, string what, IReadOnlyList<string>? labels)
    {
        var config = DistilBertLoading.LoadConfig(folder, what);
        return labels is null ? config : (DistilBertConfig)config.WithLabels(labels);
    }
}
