// GPT2ForSequenceClassification of Hugging Face's modeling_gpt2.py with its member names: the transformer body, then
// `score` (bias-free [L, C]) on the hidden state of each row's last non-padding token.
using System.Text.Json.Nodes;
using Sharpformer.IO.Config;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Models.Bert;
using Sharpformer.NN;
using Sharpformer.Tensors;

namespace Sharpformer.Models.Gpt2;

/// <summary>
/// GPT-2 for sequence classification (HF GPT2ForSequenceClassification): <c>transformer.*</c>, then <c>score</c>
/// [L, C] without bias on the last hidden state of each row's last non-padding token (the rightmost id ≠
/// pad_token_id, found in input_ids as HF does; with no pad token, the last position, and only for batch 1).
/// ids [B, T] → logits [B, L].
/// </summary>
public sealed class Gpt2ForSequenceClassification : Module, ISequenceClassifier, IPretrainedModel, ISupportsGradientCheckpointing
{
    private readonly string[] _labels;
    private string? _problemType;

    /// <summary>Builds the model: the body through <paramref name="body"/> (rooted at the body, HF's <c>transformer.</c> already pushed when the checkpoint has it), <c>score</c> through <paramref name="root"/>.</summary>
    /// <param name="config">The configuration; num_labels and id2label size the head.</param>
    /// <param name="body">The body's builder.</param>
    /// <param name="root">The checkpoint root's builder.</param>
    public Gpt2ForSequenceClassification(Gpt2Config config, VarBuilder body, VarBuilder root)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(body);
        ArgumentNullException.ThrowIfNull(root);
        Config = config;
        _labels = TaskHeads.Labels(config);
        _problemType = config.ProblemType;
        Transformer = RegisterModule("transformer", new Gpt2Model(config, body));
        Score = RegisterModule("score", new Linear(config.HiddenSize, config.NumLabels, root.Push("score"), bias: false, weightInit: Init.Normal((float)config.InitializerRange)));
    }

    /// <summary>The configuration.</summary>
    public Gpt2Config Config { get; }

    /// <summary>The transformer body.</summary>
    public Gpt2Model Transformer { get; }

    /// <summary>The score head [L, C], no bias.</summary>
    public Linear Score { get; }

    /// <summary>What loading read, initialised (score from an LM checkpoint) and left unused; null when built otherwise.</summary>
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
    public string ArchitectureName => "GPT2ForSequenceClassification";

    /// <inheritdoc/>
    public bool GradientCheckpointing
    {
        get => Transformer.GradientCheckpointing;
        set => Transformer.GradientCheckpointing = value;
    }

    /// <summary>Loads a fine-tuned folder, or a GPT2Model / GPT2LMHeadModel checkpoint with <c>score</c> newly initialised (listed in <see cref="LoadReport"/>).</summary>
    /// <param name="folder">The model folder.</param>
    /// <param name="labels">The classes (overrides config.json's id2label), or null for the file's.</param>
    /// <param name="seed">The seed of the new head's initialisation.</param>
    /// <returns>The model, in evaluation mode.</returns>
    /// <exception cref="ModelLoadException">A tensor outside the head is missing, or a tensor has the wrong shape.</exception>
    public static Gpt2ForSequenceClassification FromPretrained(string folder, IReadOnlyList<string>? labels = null, int seed = 0)
    {
        const string name = nameof(Gpt2ForSequenceClassification);
        ArgumentException.ThrowIfNullOrEmpty(folder);
        var loaded = ModelConfig.Load(folder);
        var config = loaded as Gpt2Config
            ?? throw new NotSupportedException($"{name}.FromPretrained('{folder}'): model_type '{loaded.ModelType}' is not gpt2; AutoModelForSequenceClassification picks the class for other types.");
        if (labels is not null) config = (Gpt2Config)config.WithLabels(labels);
        using var source = SafeTensorsLoader.Open(folder);
        var root = TaskHeads.OpenHead(source, seed);
        var body = source.Contains("transformer.wte.weight") ? root.Push("transformer") : root;
        var model = new Gpt2ForSequenceClassification(config, body, root);
        model.LoadReport = TaskHeads.CheckMissing(name, folder, root.Report(), "score.");
        model.Eval();
        return model;
    }

    /// <summary>A fresh model (training mode) initialised as HF does (see <see cref="Gpt2LMHeadModel.FromConfig"/>); score normal(0, initializer_range).</summary>
    /// <param name="config">The configuration.</param>
    /// <param name="seed">The initialization seed.</param>
    /// <returns>The model.</returns>
    public static Gpt2ForSequenceClassification FromConfig(Gpt2Config config, int seed)
    {
        ArgumentNullException.ThrowIfNull(config);
        var root = VarBuilder.FromInit(seed, (float)config.InitializerRange);
        return new Gpt2ForSequenceClassification(config, root.Push("transformer"), root);
    }

    /// <summary>ids [B, T] → logits [B, L] at each row's last non-padding token (+ the loss when <paramref name="labels"/> are given).</summary>
    /// <param name="inputIds">Token ids [B, T].</param>
    /// <param name="attentionMask">[B, T] 1 = token, 0 = padding; null attends to every earlier token.</param>
    /// <param name="labels">I32 [B] class ids (single-label), F32 [B, L] (multi-label), F32 [B] or [B, L] (regression), or null.</param>
    /// <param name="outputAttentions">Return every layer's attention weights.</param>
    /// <param name="outputHiddenStates">Return the hidden states.</param>
    /// <returns>The outputs.</returns>
    /// <exception cref="ArgumentException">B > 1 without pad_token_id in config.json, or the inputs or labels have the wrong shape or dtype.</exception>
    public SequenceClassifierOutput Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? labels = null, bool outputAttentions = false, bool outputHiddenStates = false)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        if (inputIds.Rank != 2 || inputIds.DType is not (DType.I32 or DType.I64))
        {
            throw new ArgumentException($"{ArchitectureName}: input_ids must be I32/I64 [B, T], got {inputIds.DType} {inputIds.Shape}.", nameof(inputIds));
        }

        int b = inputIds.Shape[0], t = inputIds.Shape[1], c = Config.HiddenSize;
        var last = LastTokens(BertLoading.ReadIds(inputIds), b, t);
        var body = Transformer.Forward(inputIds, attentionMask, outputAttentions, outputHiddenStates);

        // HF scores every position and picks the rows; picking the rows first gives the same logits and gradients.
        var flat = new int[b];
        for (int i = 0; i < b; i++) flat[i] = (i * t) + last[i];
        var picked = Ops.Embedding(Tensor.FromArray(flat, new Shape(b)), Ops.Reshape(body.Logits, b * t, c));
        var logits = Score.Forward(picked);
        Tensor? loss = null;
        if (labels is not null)
        {
            _problemType ??= TaskHeads.DecideProblemType(_labels.Length, labels);
            loss = TaskHeads.SequenceLoss(ArchitectureName, logits, labels, _problemType);
        }

        return new SequenceClassifierOutput(logits, loss, body.HiddenStates, body.Attentions);
    }

    /// <inheritdoc/>
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

    /// <summary>
    /// Each row's pooled position: the rightmost token whose id is not pad_token_id (0 when every token is padding,
    /// as HF's argmax gives); without pad_token_id the last position, for batch 1 only (HF refuses more).
    /// </summary>
    private int[] LastTokens(int[] inputIds, int b, int t)
    {
        var last = new int[b];
        if (Config.PadTokenId is not int pad)
        {
            if (b != 1)
            {
                throw new ArgumentException($"{ArchitectureName}: cannot handle batch size {b} > 1 without a padding token: set pad_token_id in config.json (e.g. to eos_token_id {string.Join(", ", Config.EosTokenIds)}) so the last real token of each row can be found, or classify one sequence at a time.", nameof(inputIds));
            }

            last[0] = t - 1;
            return last;
        }

        for (int i = 0; i < b; i++)
        {
            for (int j = 0; j < t; j++)
            {
                if (inputIds[(i * t) + j] != pad) last[i] = j;
            }
        }

        return last;
    }
}
