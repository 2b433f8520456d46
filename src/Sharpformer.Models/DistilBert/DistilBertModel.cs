// DistilBERT (Sanh et al. 2019) with the class and tensor names of Hugging Face transformers' modeling_distilbert.py, so
// a checkpoint loads with no rename table: DistilBertModel.transformer.layer.0.attention.q_lin.weight is the tensor
// "transformer.layer.0.attention.q_lin.weight" (MLM checkpoints add the "distilbert." prefix).
//
// The network is BERT's post-LN encoder under other names, without token-type embeddings or pooler:
// attention.{q,k,v,out}_lin = attention.self.{query,key,value} + attention.output.dense, sa_layer_norm =
// attention.output.LayerNorm, ffn.lin1/lin2 = intermediate.dense/output.dense, output_layer_norm = output.LayerNorm.
// So both forward paths reuse BERT's: the module path calls BertSelfAttention.Attend, and the fused eval path is
// PostLnEncoderInference (BertInference.cs) fed with these layers' weights.
using System.Numerics.Tensors;
using Sharpformer.IO.Config;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Models.Bert;
using Sharpformer.NN;
using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels;
using Embedding = Sharpformer.NN.Embedding;
using Tensor = Sharpformer.Tensors.Tensor;

namespace Sharpformer.Models.DistilBert;

/// <summary>Word + position embeddings, then LayerNorm and dropout: ids [B, T] → [B, T, C] (no token types).</summary>
public sealed class DistilBertEmbeddings : Module
{
    /// <summary>
    /// Loads <c>word_embeddings</c>, <c>position_embeddings</c> and <c>LayerNorm</c> under <paramref name="vb"/>. With
    /// <c>sinusoidal_pos_embds</c> the position table is HF's fixed sinusoidal one, frozen; a table in the checkpoint
    /// still wins, as in transformers' from_pretrained.
    /// </summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="vb">Builder at this module's path ("embeddings").</param>
    public DistilBertEmbeddings(DistilBertConfig config, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        int c = config.HiddenSize, positions = config.MaxPositionEmbeddings;
        WordEmbeddings = RegisterModule("word_embeddings", new Embedding(config.VocabSize, c, vb.Push("word_embeddings")));
        var positionVb = vb.Push("position_embeddings");
        if (config.SinusoidalPosEmbds && !positionVb.Contains("weight"))
        {
            var table = new Dictionary<string, Tensor>(StringComparer.Ordinal) { ["weight"] = SinusoidalTable(positions, c) };
            positionVb = VarBuilder.FromTensors(table);
        }

        PositionEmbeddings = RegisterModule("position_embeddings", new Embedding(positions, c, positionVb));
        if (config.SinusoidalPosEmbds) PositionEmbeddings.Weight.RequiresGrad = false;
        LayerNorm = RegisterModule("LayerNorm", new LayerNorm(c, DistilBertModel.LayerNormEps, vb.Push("LayerNorm")));
        Dropout = RegisterModule("dropout", new Dropout((float)config.Dropout));
    }

    /// <summary>[V, C] token table.</summary>
    public Embedding WordEmbeddings { get; }

    /// <summary>[P, C] absolute positions: learned, or the fixed sinusoidal table (then frozen).</summary>
    public Embedding PositionEmbeddings { get; }

    /// <summary>Normalization of the summed embeddings.</summary>
    public LayerNorm LayerNorm { get; }

    /// <summary>Dropout after the LayerNorm (training only).</summary>
    public Dropout Dropout { get; }

    /// <summary>
    /// HF's create_sinusoidal_embeddings as a [P, C] table: angle(p, j) = p / 10000^(2·⌊j/2⌋ / C) in double precision,
    /// sine in the even columns, cosine in the odd ones, stored as float (the NN layer's table is this formula).
    /// </summary>
    /// <param name="positions">P.</param>
    /// <param name="dim">C.</param>
    /// <returns>A new [P, C] F32 tensor.</returns>
    public static Tensor SinusoidalTable(int positions, int dim) => new SinusoidalPositionalEncoding(positions, dim).Table;

    /// <summary>ids [B, T] → [B, T, C] = dropout(LN(word[id] + position[t])).</summary>
    /// <param name="inputIds">Token ids [B, T], I32 or I64.</param>
    /// <returns>The normalized embeddings.</returns>
    public Tensor Forward(Tensor inputIds)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        int b = inputIds.Shape[0], t = inputIds.Shape[1];
        var positions = new int[b * t];
        for (int i = 0; i < positions.Length; i++) positions[i] = i % t;
        var position = PositionEmbeddings.Forward(Tensor.FromArray(positions, new Shape(b, t)));
        return Dropout.Forward(LayerNorm.Forward(Ops.Add(WordEmbeddings.Forward(inputIds), position)));
    }
}

/// <summary>Multi-head self-attention with its output projection: [B, T, C] → [B, T, C] = out_lin(attention(q_lin x, k_lin x, v_lin x)).</summary>
public sealed class DistilBertMultiHeadSelfAttention : Module
{
    /// <summary>Loads <c>q_lin</c>, <c>k_lin</c>, <c>v_lin</c>, <c>out_lin</c> [C, C] (+ biases).</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="vb">Builder at "attention".</param>
    public DistilBertMultiHeadSelfAttention(DistilBertConfig config, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        int c = config.HiddenSize;
        NumHeads = config.NumAttentionHeads;
        QLin = RegisterModule("q_lin", new Linear(c, c, vb.Push("q_lin")));
        KLin = RegisterModule("k_lin", new Linear(c, c, vb.Push("k_lin")));
        VLin = RegisterModule("v_lin", new Linear(c, c, vb.Push("v_lin")));
        OutLin = RegisterModule("out_lin", new Linear(c, c, vb.Push("out_lin")));
        Dropout = RegisterModule("dropout", new Dropout((float)config.AttentionDropout));
    }

    /// <summary>H.</summary>
    public int NumHeads { get; }

    /// <summary>Q projection.</summary>
    public Linear QLin { get; }

    /// <summary>K projection.</summary>
    public Linear KLin { get; }

    /// <summary>V projection.</summary>
    public Linear VLin { get; }

    /// <summary>Output projection (heads merged → C).</summary>
    public Linear OutLin { get; }

    /// <summary>Dropout on the attention probabilities (training only).</summary>
    public Dropout Dropout { get; }

    /// <summary>[B, T, C] → [B, T, C]: out_lin(softmax(Q·Kᵀ/√D, padded keys excluded)·V), heads merged.</summary>
    /// <param name="hidden">Input [B, T, C].</param>
    /// <param name="attentionMask">[B, T] F32, 1 = attend, 0 = padding; null attends everywhere.</param>
    /// <param name="outputAttentions">Whether to return the probabilities.</param>
    /// <param name="probabilities">[B, H, T, T] when requested, else null.</param>
    /// <returns>The attention output [B, T, C].</returns>
    public Tensor Forward(Tensor hidden, Tensor? attentionMask, bool outputAttentions, out Tensor? probabilities)
    {
        var context = BertSelfAttention.Attend(QLin.Forward(hidden), KLin.Forward(hidden), VLin.Forward(hidden), NumHeads, attentionMask, Dropout, outputAttentions, out probabilities);
        return OutLin.Forward(context);
    }
}

/// <summary>The feed-forward block: [B, T, C] → [B, T, C] = dropout(lin2(act(lin1(x)))).</summary>
public sealed class DistilBertFfn : Module
{
    /// <summary>Loads <c>lin1</c> [I, C] and <c>lin2</c> [C, I].</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="vb">Builder at "ffn".</param>
    public DistilBertFfn(DistilBertConfig config, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        Activation = BertActivation.Parse(config.Activation, "activation");
        Lin1 = RegisterModule("lin1", new Linear(config.HiddenSize, config.IntermediateSize, vb.Push("lin1")));
        Lin2 = RegisterModule("lin2", new Linear(config.IntermediateSize, config.HiddenSize, vb.Push("lin2")));
        Dropout = RegisterModule("dropout", new Dropout((float)config.Dropout));
    }

    /// <summary>[I, C] expansion.</summary>
    public Linear Lin1 { get; }

    /// <summary>[C, I] contraction.</summary>
    public Linear Lin2 { get; }

    /// <summary>The activation named by the config's <c>activation</c> (gelu or relu).</summary>
    public BertActivationKind Activation { get; }

    /// <summary>Dropout after lin2 (training only).</summary>
    public Dropout Dropout { get; }

    /// <summary>[B, T, C] → [B, T, C].</summary>
    /// <param name="hidden">Input.</param>
    /// <returns>dropout(lin2(act(lin1(hidden)))).</returns>
    public Tensor Forward(Tensor hidden) => Dropout.Forward(Lin2.Forward(BertActivation.Apply(Activation, Lin1.Forward(hidden))));
}

/// <summary>One post-LN block: x1 = sa_layer_norm(attention(x) + x), out = output_layer_norm(ffn(x1) + x1); [B, T, C] → [B, T, C].</summary>
public sealed class DistilBertTransformerBlock : Module
{
    /// <summary>Loads <c>attention</c>, <c>sa_layer_norm</c>, <c>ffn</c>, <c>output_layer_norm</c>.</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="vb">Builder at "transformer.layer.i".</param>
    public DistilBertTransformerBlock(DistilBertConfig config, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        Attention = RegisterModule("attention", new DistilBertMultiHeadSelfAttention(config, vb.Push("attention")));
        SaLayerNorm = RegisterModule("sa_layer_norm", new LayerNorm(config.HiddenSize, DistilBertModel.LayerNormEps, vb.Push("sa_layer_norm")));
        Ffn = RegisterModule("ffn", new DistilBertFfn(config, vb.Push("ffn")));
        OutputLayerNorm = RegisterModule("output_layer_norm", new LayerNorm(config.HiddenSize, DistilBertModel.LayerNormEps, vb.Push("output_layer_norm")));
    }

    /// <summary>Self-attention with its output projection.</summary>
    public DistilBertMultiHeadSelfAttention Attention { get; }

    /// <summary>LayerNorm after the attention residual.</summary>
    public LayerNorm SaLayerNorm { get; }

    /// <summary>Feed-forward block.</summary>
    public DistilBertFfn Ffn { get; }

    /// <summary>LayerNorm after the feed-forward residual.</summary>
    public LayerNorm OutputLayerNorm { get; }

    /// <summary>[B, T, C] → [B, T, C].</summary>
    /// <param name="hidden">Block input.</param>
    /// <param name="attentionMask">[B, T] F32 or null.</param>
    /// <param name="outputAttentions">Whether to return the probabilities.</param>
    /// <param name="probabilities">[B, H, T, T] when requested.</param>
    /// <returns>Block output.</returns>
    public Tensor Forward(Tensor hidden, Tensor? attentionMask, bool outputAttentions, out Tensor? probabilities)
    {
        var attended = SaLayerNorm.Forward(Ops.Add(Attention.Forward(hidden, attentionMask, outputAttentions, out probabilities), hidden));
        return OutputLayerNorm.Forward(Ops.Add(Ffn.Forward(attended), attended));
    }
}

/// <summary>The stack of <see cref="DistilBertTransformerBlock"/>s ("transformer.layer.0" …).</summary>
public sealed class DistilBertTransformer : Module
{
    /// <summary>Loads <c>layer.0</c> … <c>layer.{L−1}</c>.</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="vb">Builder at "transformer".</param>
    public DistilBertTransformer(DistilBertConfig config, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        var layers = new DistilBertTransformerBlock[config.NumHiddenLayers];
        for (int i = 0; i < layers.Length; i++)
        {
            layers[i] = RegisterModule($"layer.{i}", new DistilBertTransformerBlock(config, vb.Push("layer", i)));
        }

        Layers = layers;
    }

    /// <summary>The blocks, in order.</summary>
    public IReadOnlyList<DistilBertTransformerBlock> Layers { get; }

    /// <summary>[B, T, C] → [B, T, C] through every block, collecting hidden states and attentions when asked.</summary>
    /// <param name="hidden">The embeddings output.</param>
    /// <param name="attentionMask">[B, T] F32 or null.</param>
    /// <param name="hiddenStates">Receives the input and every block's output, or null.</param>
    /// <param name="attentions">Receives every block's probabilities, or null.</param>
    /// <returns>The last block's output.</returns>
    public Tensor Forward(Tensor hidden, Tensor? attentionMask, List<Tensor>? hiddenStates, List<Tensor>? attentions)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        hiddenStates?.Add(hidden);
        foreach (var layer in Layers)
        {
            hidden = layer.Forward(hidden, attentionMask, attentions is not null, out var probabilities);
            hiddenStates?.Add(hidden);
            if (probabilities is not null) attentions?.Add(probabilities);
        }

        return hidden;
    }
}

/// <summary>
/// The DistilBERT encoder (Hugging Face DistilBertModel): embeddings → L blocks. ids [B, T] → [B, T, C].
/// In evaluation mode with no gradient to record, <see cref="Forward"/> runs BERT's fused inference path on these
/// weights; otherwise the module path with autograd and dropout. The output's PoolerOutput is always null.
/// </summary>
public sealed partial class DistilBertModel : Module, ITextEncoder
{
    /// <summary>The epsilon of every DistilBERT LayerNorm (fixed in transformers, not a config key).</summary>
    public const float LayerNormEps = 1e-12f;

    private DistilBertInference? _inference;

    /// <summary>Builds the model from <paramref name="vb"/> (a checkpoint, or <see cref="VarBuilder.FromInit"/> for random weights).</summary>
    /// <param name="config">The configuration.</param>
    /// <param name="vb">Builder at the model root ("" or "distilbert").</param>
    public DistilBertModel(DistilBertConfig config, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        Config = config;
        Embeddings = RegisterModule("embeddings", new DistilBertEmbeddings(config, vb.Push("embeddings")));
        Transformer = RegisterModule("transformer", new DistilBertTransformer(config, vb.Push("transformer")));
    }

    /// <summary>The configuration.</summary>
    public DistilBertConfig Config { get; }

    /// <summary>Embeddings.</summary>
    public DistilBertEmbeddings Embeddings { get; }

    /// <summary>Block stack.</summary>
    public DistilBertTransformer Transformer { get; }

    /// <summary>The report of the checkpoint load (null when built otherwise).</summary>
    public LoadReport? LoadReport { get; private set; }

    /// <summary>True when <see cref="Forward"/> would take the fused inference path (eval mode, nothing to record).</summary>
    public bool UsesFastPath => !Training && !(Autograd.IsGradEnabled && Parameters().Any(p => p.RequiresGrad));

    /// <inheritdoc/>
    int ITextEncoder.HiddenSize => Config.HiddenSize;

    /// <inheritdoc/>
    int ITextEncoder.MaxPositions => Config.MaxPositionEmbeddings;

    /// <inheritdoc/>
    /// <remarks>DistilBERT has no segment embeddings: <paramref name="tokenTypeIds"/> is ignored.</remarks>
    Tensor ITextEncoder.Encode(Tensor inputIds, Tensor attentionMask, Tensor tokenTypeIds) =>
        TaskInterfaces.Encode(() => Forward(inputIds, attentionMask).LastHiddenState);

    /// <summary>
    /// Loads a Hugging Face folder: config.json (model_type distilbert) and its safetensors weights, with or without the
    /// "distilbert." prefix (a DistilBertForMaskedLM checkpoint's head is then reported unused). Returns the model in
    /// evaluation mode.
    /// </summary>
    /// <param name="folder">The model folder.</param>
    /// <returns>The model.</returns>
    /// <exception cref="ModelLoadException">The weights do not fit the configuration; the message names the tensor.</exception>
    /// <exception cref="ModelConfigException">config.json is missing or invalid.</exception>
    /// <exception cref="NotSupportedException">config.json is not a distilbert config.</exception>
    public static DistilBertModel FromPretrained(string folder)
    {
        var config = DistilBertLoading.LoadConfig(folder, "DistilBertModel");
        using var source = SafeTensorsLoader.Open(folder);
        var root = VarBuilder.FromSafeTensors(source);
        var model = new DistilBertModel(config, DistilBertLoading.ModelRoot(root, source));
        model.LoadReport = root.Report();
        model.Eval();
        return model;
    }

    /// <summary>ids [B, T] → last hidden state [B, T, C] (+ hidden states and attentions [B, H, T, T] when asked).</summary>
    /// <param name="inputIds">Token ids [B, T], I32 or I64.</param>
    /// <param name="attentionMask">[B, T], 1 for tokens and 0 for padding (any numeric dtype); null attends everywhere.</param>
    /// <param name="outputHiddenStates">Return the embeddings output and every block's output.</param>
    /// <param name="outputAttentions">Return every block's attention probabilities (padded keys get 0).</param>
    /// <returns>The outputs (PoolerOutput null: DistilBERT has no pooler).</returns>
    /// <exception cref="ArgumentException">The inputs are not [B, T] of matching shapes, T exceeds max_position_embeddings, or an id is out of range.</exception>
    public BertModelOutput Forward(Tensor inputIds, Tensor? attentionMask = null, bool outputHiddenStates = false, bool outputAttentions = false)
    {
        BertLoading.CheckInputs("DistilBERT", Config.MaxPositionEmbeddings, inputIds, attentionMask, tokenTypeIds: null);
        if (UsesFastPath)
        {
            _inference ??= new DistilBertInference(this);
            return _inference.Forward(inputIds, attentionMask, null, outputHiddenStates, outputAttentions);
        }

        return ForwardModules(inputIds, attentionMask, outputHiddenStates, outputAttentions);
    }

    /// <summary>The module path (autograd, dropout), whatever the mode: the reference for the fast path.</summary>
    internal BertModelOutput ForwardModules(Tensor inputIds, Tensor? attentionMask, bool outputHiddenStates, bool outputAttentions)
    {
        var hiddenStates = outputHiddenStates ? new List<Tensor>() : null;
        var attentions = outputAttentions ? new List<Tensor>() : null;
        var maskF = attentionMask?.DType == DType.F32 ? attentionMask : attentionMask?.To(DType.F32);
        var last = Transformer.Forward(Embeddings.Forward(inputIds), maskF, hiddenStates, attentions);
        return new BertModelOutput(last, null, hiddenStates, attentions);
    }
}

/// <summary>
/// DistilBERT with the masked-language-model head (Hugging Face DistilBertForMaskedLM): <c>distilbert.*</c>, then
/// <c>vocab_transform</c> [C, C] → activation → <c>vocab_layer_norm</c> → <c>vocab_projector</c> (weight tied to the
/// word embeddings unless tie_weights_ is false, its own bias [V]): ids [B, T] → logits [B, T, V].
/// </summary>
public sealed partial class DistilBertForMaskedLM : Module, IMaskedLanguageModel, ILanguageModel
{
    private readonly Parameter _projectorWeight;

    /// <summary>Builds the model from <paramref name="vb"/> at the checkpoint root.</summary>
    /// <param name="config">The configuration.</param>
    /// <param name="vb">Root builder; the encoder is read under "distilbert".</param>
    public DistilBertForMaskedLM(DistilBertConfig config, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        Config = config;
        int c = config.HiddenSize;
        Activation = BertActivation.Parse(config.Activation, "activation");
        DistilBert = RegisterModule("distilbert", new DistilBertModel(config, vb.Push("distilbert")));
        VocabTransform = RegisterModule("vocab_transform", new Linear(c, c, vb.Push("vocab_transform")));
        VocabLayerNorm = RegisterModule("vocab_layer_norm", new LayerNorm(c, DistilBertModel.LayerNormEps, vb.Push("vocab_layer_norm")));
        var projector = vb.Push("vocab_projector");
        if (config.TieWordEmbeddings)
        {
            // The projector weight is the word-embedding table; a checkpoint copy of it is not used.
            _projectorWeight = DistilBert.Embeddings.WordEmbeddings.Weight;
            projector.MarkUsed("weight");
        }
        else
        {
            _projectorWeight = RegisterParameter("vocab_projector.weight", projector.GetParameter(new Shape(config.VocabSize, c), "weight"));
        }

        VocabProjectorBias = RegisterParameter("vocab_projector.bias", projector.GetParameter(new Shape(config.VocabSize), "bias", Init.Zeros));
    }

    /// <summary>The configuration.</summary>
    public DistilBertConfig Config { get; }

    /// <summary>The encoder.</summary>
    public DistilBertModel DistilBert { get; }

    /// <summary>[C, C] head projection.</summary>
    public Linear VocabTransform { get; }

    /// <summary>The activation named by the config's <c>activation</c>, applied after <see cref="VocabTransform"/>.</summary>
    public BertActivationKind Activation { get; }

    /// <summary>Normalization before the projection.</summary>
    public LayerNorm VocabLayerNorm { get; }

    /// <summary>The projection weight [V, C]: the same parameter as <c>distilbert.embeddings.word_embeddings.weight</c> when tied.</summary>
    public Parameter VocabProjectorWeight => _projectorWeight;

    /// <summary>The projection bias [V] (<c>vocab_projector.bias</c>).</summary>
    public Parameter VocabProjectorBias { get; }

    /// <inheritdoc/>
    int ITextEncoder.HiddenSize => Config.HiddenSize;

    /// <inheritdoc/>
    int ITextEncoder.MaxPositions => Config.MaxPositionEmbeddings;

    /// <inheritdoc/>
    int IMaskedLanguageModel.VocabSize => Config.VocabSize;

    /// <inheritdoc/>
    /// <remarks>DistilBERT has no segment embeddings: <paramref name="tokenTypeIds"/> is ignored.</remarks>
    Tensor ITextEncoder.Encode(Tensor inputIds, Tensor attentionMask, Tensor tokenTypeIds) =>
        TaskInterfaces.Encode(() => DistilBert.Forward(inputIds, attentionMask).LastHiddenState);

    /// <inheritdoc/>
    Tensor IMaskedLanguageModel.PredictLogits(Tensor hidden) => TaskInterfaces.PredictLogits(hidden, Config.HiddenSize, PredictionHead);

    /// <inheritdoc/>
    /// <remarks>As <see cref="Forward"/> with labels, with the prediction head run on the labelled rows only.</remarks>
    Tensor ILanguageModel.LanguageModelingLoss(Tensor inputIds, Tensor? attentionMask, Tensor labels) =>
        TaskInterfaces.SparseMaskedLoss(DistilBert.Forward(inputIds, attentionMask).LastHiddenState, labels, PredictionHead);

    /// <summary>The report of the checkpoint load (null when built otherwise).</summary>
    public LoadReport? LoadReport { get; private set; }

    /// <summary>Loads a Hugging Face DistilBertForMaskedLM folder (config.json + safetensors); returns it in evaluation mode.</summary>
    /// <param name="folder">The model folder.</param>
    /// <returns>The model.</returns>
    /// <exception cref="ModelLoadException">The weights do not fit; the message names the tensor.</exception>
    /// <exception cref="NotSupportedException">config.json is not a distilbert config.</exception>
    public static DistilBertForMaskedLM FromPretrained(string folder)
    {
        var config = DistilBertLoading.LoadConfig(folder, "DistilBertForMaskedLM");
        using var source = SafeTensorsLoader.Open(folder);
        var root = VarBuilder.FromSafeTensors(source);
        var model = new DistilBertForMaskedLM(config, root);
        model.LoadReport = root.Report();
        model.Eval();
        return model;
    }

    /// <summary>ids [B, T] → logits [B, T, V] (+ loss when <paramref name="labels"/> [B, T] are given; −100 is ignored).</summary>
    /// <param name="inputIds">Token ids [B, T].</param>
    /// <param name="attentionMask">[B, T] 1 = token, 0 = padding; null attends everywhere.</param>
    /// <param name="labels">Target ids [B, T] (−100 where no prediction is scored), or null.</param>
    /// <param name="outputHiddenStates">Return every block's output.</param>
    /// <param name="outputAttentions">Return every block's attention probabilities.</param>
    /// <returns>The outputs.</returns>
    public MaskedLMOutput Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? labels = null, bool outputHiddenStates = false, bool outputAttentions = false)
    {
        var encoded = DistilBert.Forward(inputIds, attentionMask, outputHiddenStates, outputAttentions);
        var logits = PredictionHead(encoded.LastHiddenState);
        var loss = labels is null ? null : Ops.CrossEntropy(logits, labels);
        return new MaskedLMOutput(logits, loss, encoded.HiddenStates, encoded.Attentions);
    }

    /// <summary>[B, T, C] → [B, T, V] = vocab_projector(vocab_layer_norm(act(vocab_transform(hidden)))).</summary>
    /// <param name="hidden">Encoder output [B, T, C].</param>
    /// <returns>Logits.</returns>
    public Tensor PredictionHead(Tensor hidden)
    {
        var transformed = VocabLayerNorm.Forward(BertActivation.Apply(Activation, VocabTransform.Forward(hidden)));
        return Ops.Linear(transformed, VocabProjectorWeight.Value, VocabProjectorBias.Value);
    }
}

/// <summary>Config and checkpoint plumbing shared by the DistilBERT entry points.</summary>
internal static class DistilBertLoading
{
    public static DistilBertConfig LoadConfig(string folder, string what)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        var config = ModelConfig.Load(folder);
        return config as DistilBertConfig
            ?? throw new NotSupportedException($"{what}.FromPretrained('{folder}'): model_type '{config.ModelType}' is not distilbert; use AutoModel.FromPretrained, which supports: {string.Join(", ", AutoModel.SupportedModelTypes)}.");
    }

    /// <summary>The builder at the encoder root: "" for a bare DistilBertModel checkpoint, "distilbert." when the tensors carry that prefix.</summary>
    public static VarBuilder ModelRoot(VarBuilder root, ISafeTensorsSource source) =>
        !source.Contains("embeddings.word_embeddings.weight") && source.Contains("distilbert.embeddings.word_embeddings.weight") ? root.Push("distilbert") : root;
}

/// <summary>The fused inference path of a <see cref="DistilBertModel"/>: BERT's layer runner, DistilBERT's embeddings (no token types).</summary>
internal sealed class DistilBertInference(DistilBertModel model)
    : PostLnEncoderInference(model, model.Config.HiddenSize, model.Config.NumAttentionHeads, model.Config.IntermediateSize)
{
    protected override IEnumerable<EncoderLayerWeights> ReadLayers() => model.Transformer.Layers.Select(l => new EncoderLayerWeights(
        l.Attention.QLin, l.Attention.KLin, l.Attention.VLin, l.Attention.OutLin, l.SaLayerNorm,
        l.Ffn.Lin1, l.Ffn.Activation, l.Ffn.Lin2, l.OutputLayerNorm));

    /// <summary>x [N, C] = LN(word[id] + position[t]) per token.</summary>
    protected override void Embed(int[] ids, Tensor? tokenTypeIds, int b, int t, Span<float> x)
    {
        var emb = model.Embeddings;
        int c = HiddenSize, vocab = emb.WordEmbeddings.Count;
        var word = emb.WordEmbeddings.Weight.Value.AsReadOnlySpan<float>();
        var position = emb.PositionEmbeddings.Weight.Value.AsReadOnlySpan<float>();
        for (int i = 0; i < ids.Length; i++)
        {
            if ((uint)ids[i] >= (uint)vocab) ThrowId(ids[i], i, vocab);
            TensorPrimitives.Add(word.Slice(ids[i] * c, c), position.Slice(i % t * c, c), x.Slice(i * c, c));
        }

        Norms.LayerNorm(x, emb.LayerNorm.Weight.Value.AsReadOnlySpan<float>(), emb.LayerNorm.Bias.Value.AsReadOnlySpan<float>(), x, ids.Length, c, emb.LayerNorm.Eps);
    }

    private static void ThrowId(int id, int position, int vocab) => throw new ArgumentException(
        $"DistilBERT: token id {id} at flat position {position} is outside the model's vocab_size {vocab}; the tokenizer does not match the model.");
}
