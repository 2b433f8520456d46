// BERT (Devlin et al. 2018) with the class and tensor names of Hugging Face transformers' modeling_bert.py, so a
// checkpoint loads with no rename table: BertModel.embeddings.word_embeddings.weight is the tensor
// "embeddings.word_embeddings.weight" (MLM checkpoints add the "bert." prefix). RoBERTa is the same network with
// position ids that start after the padding id, so it runs through these classes too.
//
// Two forward paths compute the same function:
// - the module path below (Ops, autograd, dropout): training, and the reference the fast path is tested against;
// - BertInference (BertInference.cs): eval-mode inference without a tape, fused and allocation-free per layer.
// BertModel.Forward picks the fast path whenever no gradient would be recorded.
using Sharpformer.IO.Config;
using Sharpformer.IO.SafeTensors;
using Sharpformer.NN;
using Sharpformer.Tensors;
using Sharpformer.Text;

namespace Sharpformer.Models.Bert;

/// <summary>What a BERT encoder returns, as Hugging Face's BaseModelOutputWithPooling.</summary>
/// <param name="LastHiddenState">[B, T, C], the output of the last layer.</param>
/// <param name="PoolerOutput">[B, C], tanh(dense(first token)), or null when the model has no pooler.</param>
/// <param name="HiddenStates">When requested: L + 1 tensors [B, T, C], the embeddings output then every layer's output.</param>
/// <param name="Attentions">When requested: L tensors [B, H, T, T], every layer's attention probabilities (padded keys get 0).</param>
public sealed record BertModelOutput(Tensor LastHiddenState, Tensor? PoolerOutput, IReadOnlyList<Tensor>? HiddenStates, IReadOnlyList<Tensor>? Attentions);

/// <summary>What <see cref="BertForMaskedLM"/> returns.</summary>
/// <param name="Logits">[B, T, V] prediction scores over the vocabulary.</param>
/// <param name="Loss">Mean cross-entropy over labelled positions when labels were given, else null.</param>
/// <param name="HiddenStates">As in <see cref="BertModelOutput.HiddenStates"/>.</param>
/// <param name="Attentions">As in <see cref="BertModelOutput.Attentions"/>.</param>
public sealed record MaskedLMOutput(Tensor Logits, Tensor? Loss, IReadOnlyList<Tensor>? HiddenStates, IReadOnlyList<Tensor>? Attentions);

/// <summary>A padded batch of model inputs, each [B, T] I32: token ids, attention mask (1 = token, 0 = padding), token types.</summary>
/// <param name="InputIds">Token ids [B, T].</param>
/// <param name="AttentionMask">1 for real tokens, 0 for padding [B, T].</param>
/// <param name="TokenTypeIds">Segment ids [B, T] (0 for the first sentence, 1 for the second).</param>
public sealed record BertBatch(Tensor InputIds, Tensor AttentionMask, Tensor TokenTypeIds)
{
    /// <summary>Pads tokenizer encodings on the right to the longest one and stacks them into [B, T] tensors.</summary>
    /// <param name="encodings">One encoding per sequence (from <see cref="TextTokenizer.Encode"/>).</param>
    /// <param name="padId">The id written into padded positions ([PAD] is 0 in BERT vocabularies, 1 in RoBERTa's).</param>
    /// <returns>The batch.</returns>
    /// <exception cref="ArgumentException">The list is empty or an encoding is empty.</exception>
    public static BertBatch FromEncodings(IReadOnlyList<TokenEncoding> encodings, int padId = 0)
    {
        ArgumentNullException.ThrowIfNull(encodings);
        if (encodings.Count == 0 || encodings.Any(e => e.Count == 0))
        {
            throw new ArgumentException("BertBatch.FromEncodings: need at least one encoding, each with at least one token.", nameof(encodings));
        }

        int b = encodings.Count, t = encodings.Max(e => e.Count);
        var ids = new int[b * t];
        var mask = new int[b * t];
        var types = new int[b * t];
        Array.Fill(ids, padId);
        for (int i = 0; i < b; i++)
        {
            var e = encodings[i];
            for (int j = 0; j < e.Count; j++)
            {
                ids[(i * t) + j] = e.Ids[j];
                mask[(i * t) + j] = e.AttentionMask.Count > j ? e.AttentionMask[j] : 1;
                types[(i * t) + j] = e.TypeIds.Count > j ? e.TypeIds[j] : 0;
            }
        }

        var shape = new Shape(b, t);
        return new BertBatch(Tensor.FromArray(ids, shape), Tensor.FromArray(mask, shape), Tensor.FromArray(types, shape));
    }
}

/// <summary>Word + position + token-type embeddings, then LayerNorm and dropout: ids [B, T] → [B, T, C].</summary>
public sealed class BertEmbeddings : Module
{
    /// <summary>Loads <c>word_embeddings</c>, <c>position_embeddings</c>, <c>token_type_embeddings</c>, <c>LayerNorm</c> under <paramref name="vb"/>.</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="vb">Builder at this module's path ("embeddings").</param>
    public BertEmbeddings(BertStyleConfig config, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        WordEmbeddings = RegisterModule("word_embeddings", new Embedding(config.VocabSize, config.HiddenSize, vb.Push("word_embeddings")));
        PositionEmbeddings = RegisterModule("position_embeddings", new Embedding(config.MaxPositionEmbeddings, config.HiddenSize, vb.Push("position_embeddings")));
        TokenTypeEmbeddings = RegisterModule("token_type_embeddings", new Embedding(Math.Max(1, config.TypeVocabSize), config.HiddenSize, vb.Push("token_type_embeddings")));
        LayerNorm = RegisterModule("LayerNorm", new LayerNorm(config.HiddenSize, (float)config.LayerNormEps, vb.Push("LayerNorm")));
        Dropout = RegisterModule("dropout", new Dropout((float)config.HiddenDropoutProb));
        if (config is RobertaConfig)
        {
            PaddingIdx = config.PadTokenId ?? 1;
        }
    }

    /// <summary>[V, C] token table.</summary>
    public Embedding WordEmbeddings { get; }

    /// <summary>[P, C] learned absolute positions.</summary>
    public Embedding PositionEmbeddings { get; }

    /// <summary>[type_vocab_size, C] segment table.</summary>
    public Embedding TokenTypeEmbeddings { get; }

    /// <summary>Normalization of the summed embeddings.</summary>
    public LayerNorm LayerNorm { get; }

    /// <summary>Dropout after the LayerNorm (training only).</summary>
    public Dropout Dropout { get; }

    /// <summary>
    /// RoBERTa's padding id when position ids follow RoBERTa (real tokens get padding_idx + 1, + 2, …; padding keeps
    /// padding_idx); null for BERT (positions 0 … T − 1).
    /// </summary>
    public int? PaddingIdx { get; }

    /// <summary>ids [B, T] (+ token types [B, T]) → [B, T, C].</summary>
    /// <param name="inputIds">Token ids [B, T], I32 or I64.</param>
    /// <param name="tokenTypeIds">Segment ids [B, T], or null for all zeros.</param>
    /// <returns>The normalized embeddings.</returns>
    public Tensor Forward(Tensor inputIds, Tensor? tokenTypeIds = null)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        int b = inputIds.Shape[0], t = inputIds.Shape[1];
        var positions = Tensor.FromArray(PositionIds(BertLoading.ReadIds(inputIds), b, t), new Shape(b, t));
        var types = tokenTypeIds ?? Tensor.Zeros(new Shape(b, t), DType.I32);
        var sum = Ops.Add(Ops.Add(WordEmbeddings.Forward(inputIds), PositionEmbeddings.Forward(positions)), TokenTypeEmbeddings.Forward(types));
        return Dropout.Forward(LayerNorm.Forward(sum));
    }

    /// <summary>Position ids [B·T] for ids [B·T]: 0 … T − 1 per row for BERT, RoBERTa's padding-aware numbering otherwise.</summary>
    internal int[] PositionIds(ReadOnlySpan<int> ids, int b, int t)
    {
        var positions = new int[b * t];
        for (int i = 0; i < b; i++)
        {
            int count = 0;
            for (int j = 0; j < t; j++)
            {
                if (PaddingIdx is int pad)
                {
                    bool real = ids[(i * t) + j] != pad;
                    if (real) count++;
                    positions[(i * t) + j] = real ? pad + count : pad;
                }
                else
                {
                    positions[(i * t) + j] = j;
                }
            }
        }

        return positions;
    }
}

/// <summary>Multi-head self-attention projections and scaled dot-product attention: [B, T, C] → [B, T, C] (heads merged, before the output dense).</summary>
public sealed class BertSelfAttention : Module
{
    /// <summary>Loads <c>query</c>, <c>key</c>, <c>value</c> [C, C] (+ biases).</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="vb">Builder at "attention.self".</param>
    public BertSelfAttention(BertStyleConfig config, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        NumHeads = config.NumAttentionHeads;
        HeadDim = config.HiddenSize / config.NumAttentionHeads;
        Query = RegisterModule("query", new Linear(config.HiddenSize, config.HiddenSize, vb.Push("query")));
        Key = RegisterModule("key", new Linear(config.HiddenSize, config.HiddenSize, vb.Push("key")));
        Value = RegisterModule("value", new Linear(config.HiddenSize, config.HiddenSize, vb.Push("value")));
        Dropout = RegisterModule("dropout", new Dropout((float)config.AttentionProbsDropoutProb));
    }

    /// <summary>H.</summary>
    public int NumHeads { get; }

    /// <summary>D = C / H.</summary>
    public int HeadDim { get; }

    /// <summary>Q projection.</summary>
    public Linear Query { get; }

    /// <summary>K projection.</summary>
    public Linear Key { get; }

    /// <summary>V projection.</summary>
    public Linear Value { get; }

    /// <summary>Dropout on the attention probabilities (training only).</summary>
    public Dropout Dropout { get; }

    /// <summary>[B, T, C] → [B, T, C]: softmax(Q·Kᵀ/√D + mask)·V per head, heads merged.</summary>
    /// <param name="hidden">Input [B, T, C].</param>
    /// <param name="attentionMask">[B, T] 1 = attend, 0 = padding; null attends everywhere.</param>
    /// <param name="outputAttentions">Whether to return the probabilities.</param>
    /// <param name="probabilities">[B, H, T, T] when requested, else null.</param>
    /// <returns>The attention context [B, T, C].</returns>
    public Tensor Forward(Tensor hidden, Tensor? attentionMask, bool outputAttentions, out Tensor? probabilities) =>
        Attend(Query.Forward(hidden), Key.Forward(hidden), Value.Forward(hidden), NumHeads, attentionMask, Dropout, outputAttentions, out probabilities);

    /// <summary>
    /// Projected q, k, v [B, T, C] → context [B, T, C] = softmax(Q·Kᵀ/√D + mask)·V per head, heads merged; the module
    /// path of every BERT-style encoder (DistilBERT's MultiHeadSelfAttention computes the same).
    /// </summary>
    internal static Tensor Attend(Tensor query, Tensor key, Tensor value, int numHeads, Tensor? attentionMask, Dropout dropout, bool outputAttentions, out Tensor? probabilities)
    {
        if (!outputAttentions && !(dropout.Training && dropout.P > 0f))
        {
            // One node over the [B, T, C] projections: its gradients need no head-layout copies.
            probabilities = null;
            return Ops.MultiHeadAttention(query, key, value, numHeads, attentionMask: attentionMask);
        }

        var q = Ops.SplitHeads(query, numHeads);
        var k = Ops.SplitHeads(key, numHeads);
        var v = Ops.SplitHeads(value, numHeads);
        int headDim = q.Shape[q.Rank - 1];
        Tensor context;
        probabilities = null;
        if (dropout.Training && dropout.P > 0f)
        {
            // Dropout on the probabilities needs them as a tensor: the composed form (scores, softmax, dropout, ·V).
            // q, k, v go in as the head views: Ops.MatMul copies them itself and records the gradient back to them
            // (Tensor.Contiguous() is a plain copy off the tape, which cut Wq, Wk, Wv off from every gradient).
            var scores = Ops.Scale(Ops.MatMul(q, k, transposeB: true), 1f / MathF.Sqrt(headDim));
            var p = Ops.Softmax(scores, attentionMask: attentionMask);
            probabilities = outputAttentions ? p : null;
            context = Ops.MatMul(dropout.Forward(p), v);
        }
        else
        {
            context = Ops.ScaledDotProductAttention(q, k, v, out var weights, attentionMask: attentionMask);
            probabilities = weights;
        }

        return Ops.MergeHeads(context);
    }
}

/// <summary>Output dense + dropout + residual + LayerNorm after attention: LN(dropout(dense(x)) + input).</summary>
public sealed class BertSelfOutput : Module
{
    /// <summary>Loads <c>dense</c> [C, C] and <c>LayerNorm</c>.</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="vb">Builder at "attention.output".</param>
    public BertSelfOutput(BertStyleConfig config, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        Dense = RegisterModule("dense", new Linear(config.HiddenSize, config.HiddenSize, vb.Push("dense")));
        LayerNorm = RegisterModule("LayerNorm", new LayerNorm(config.HiddenSize, (float)config.LayerNormEps, vb.Push("LayerNorm")));
        Dropout = RegisterModule("dropout", new Dropout((float)config.HiddenDropoutProb));
    }

    /// <summary>[C, C] projection.</summary>
    public Linear Dense { get; }

    /// <summary>Post-residual LayerNorm.</summary>
    public LayerNorm LayerNorm { get; }

    /// <summary>Dropout before the residual.</summary>
    public Dropout Dropout { get; }

    /// <summary>[B, T, C] context and [B, T, C] residual → [B, T, C].</summary>
    /// <param name="hidden">The attention context.</param>
    /// <param name="input">The layer input (residual).</param>
    /// <returns>LN(dropout(dense(hidden)) + input).</returns>
    public Tensor Forward(Tensor hidden, Tensor input) => LayerNorm.Forward(Ops.Add(Dropout.Forward(Dense.Forward(hidden)), input));
}

/// <summary>Self-attention followed by its output block: [B, T, C] → [B, T, C].</summary>
public sealed class BertAttention : Module
{
    /// <summary>Loads <c>self</c> and <c>output</c>.</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="vb">Builder at "attention".</param>
    public BertAttention(BertStyleConfig config, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(vb);
        Self = RegisterModule("self", new BertSelfAttention(config, vb.Push("self")));
        Output = RegisterModule("output", new BertSelfOutput(config, vb.Push("output")));
    }

    /// <summary>The attention proper.</summary>
    public BertSelfAttention Self { get; }

    /// <summary>Dense + residual + LayerNorm.</summary>
    public BertSelfOutput Output { get; }

    /// <summary>[B, T, C] → [B, T, C].</summary>
    /// <param name="hidden">Layer input.</param>
    /// <param name="attentionMask">[B, T] or null.</param>
    /// <param name="outputAttentions">Whether to return the probabilities.</param>
    /// <param name="probabilities">[B, H, T, T] when requested.</param>
    /// <returns>The attention block output.</returns>
    public Tensor Forward(Tensor hidden, Tensor? attentionMask, bool outputAttentions, out Tensor? probabilities) =>
        Output.Forward(Self.Forward(hidden, attentionMask, outputAttentions, out probabilities), hidden);
}

/// <summary>The feed-forward expansion: [B, T, C] → [B, T, I] = act(dense(x)).</summary>
public sealed class BertIntermediate : Module
{
    /// <summary>Loads <c>dense</c> [I, C].</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="vb">Builder at "intermediate".</param>
    public BertIntermediate(BertStyleConfig config, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        Activation = BertActivation.Parse(config.HiddenAct);
        Dense = RegisterModule("dense", new Linear(config.HiddenSize, config.IntermediateSize, vb.Push("dense")));
    }

    /// <summary>[I, C] expansion.</summary>
    public Linear Dense { get; }

    /// <summary>The activation named by hidden_act.</summary>
    public BertActivationKind Activation { get; }

    /// <summary>[B, T, C] → [B, T, I].</summary>
    /// <param name="hidden">Input.</param>
    /// <returns>act(dense(hidden)).</returns>
    public Tensor Forward(Tensor hidden) => BertActivation.Apply(Activation, Dense.Forward(hidden));
}

/// <summary>The feed-forward contraction + residual + LayerNorm: [B, T, I], [B, T, C] → [B, T, C].</summary>
public sealed class BertOutput : Module
{
    /// <summary>Loads <c>dense</c> [C, I] and <c>LayerNorm</c>.</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="vb">Builder at "output".</param>
    public BertOutput(BertStyleConfig config, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        Dense = RegisterModule("dense", new Linear(config.IntermediateSize, config.HiddenSize, vb.Push("dense")));
        LayerNorm = RegisterModule("LayerNorm", new LayerNorm(config.HiddenSize, (float)config.LayerNormEps, vb.Push("LayerNorm")));
        Dropout = RegisterModule("dropout", new Dropout((float)config.HiddenDropoutProb));
    }

    /// <summary>[C, I] contraction.</summary>
    public Linear Dense { get; }

    /// <summary>Post-residual LayerNorm.</summary>
    public LayerNorm LayerNorm { get; }

    /// <summary>Dropout before the residual.</summary>
    public Dropout Dropout { get; }

    /// <summary>[B, T, I] and residual [B, T, C] → [B, T, C].</summary>
    /// <param name="hidden">The intermediate activations.</param>
    /// <param name="input">The attention block output (residual).</param>
    /// <returns>LN(dropout(dense(hidden)) + input).</returns>
    public Tensor Forward(Tensor hidden, Tensor input) => LayerNorm.Forward(Ops.Add(Dropout.Forward(Dense.Forward(hidden)), input));
}

/// <summary>One transformer encoder layer (post-LN): attention block, then feed-forward block.</summary>
public sealed class BertLayer : Module
{
    /// <summary>Loads <c>attention</c>, <c>intermediate</c>, <c>output</c>.</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="vb">Builder at "encoder.layer.i".</param>
    public BertLayer(BertStyleConfig config, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(vb);
        Attention = RegisterModule("attention", new BertAttention(config, vb.Push("attention")));
        Intermediate = RegisterModule("intermediate", new BertIntermediate(config, vb.Push("intermediate")));
        Output = RegisterModule("output", new BertOutput(config, vb.Push("output")));
    }

    /// <summary>Attention block.</summary>
    public BertAttention Attention { get; }

    /// <summary>Feed-forward expansion.</summary>
    public BertIntermediate Intermediate { get; }

    /// <summary>Feed-forward contraction + residual + LayerNorm.</summary>
    public BertOutput Output { get; }

    /// <summary>[B, T, C] → [B, T, C].</summary>
    /// <param name="hidden">Layer input.</param>
    /// <param name="attentionMask">[B, T] or null.</param>
    /// <param name="outputAttentions">Whether to return the probabilities.</param>
    /// <param name="probabilities">[B, H, T, T] when requested.</param>
    /// <returns>Layer output.</returns>
    public Tensor Forward(Tensor hidden, Tensor? attentionMask, bool outputAttentions, out Tensor? probabilities)
    {
        var attended = Attention.Forward(hidden, attentionMask, outputAttentions, out probabilities);
        return Output.Forward(Intermediate.Forward(attended), attended);
    }
}

/// <summary>The stack of <see cref="BertLayer"/>s ("encoder.layer.0" …).</summary>
public sealed class BertEncoder : Module
{
    /// <summary>Loads <c>layer.0</c> … <c>layer.{L−1}</c>.</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="vb">Builder at "encoder".</param>
    public BertEncoder(BertStyleConfig config, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        var layers = new BertLayer[config.NumHiddenLayers];
        for (int i = 0; i < layers.Length; i++)
        {
            layers[i] = RegisterModule($"layer.{i}", new BertLayer(config, vb.Push("layer", i)));
        }

        Layers = layers;
    }

    /// <summary>The layers, in order.</summary>
    public IReadOnlyList<BertLayer> Layers { get; }

    /// <summary>Checkpoint every layer in the autograd path (see <see cref="NN.GradientCheckpointing"/>).</summary>
    public bool GradientCheckpointing { get; set; }

    /// <summary>[B, T, C] → [B, T, C] through every layer, collecting hidden states and attentions when asked.</summary>
    /// <param name="hidden">The embeddings output.</param>
    /// <param name="attentionMask">[B, T] or null.</param>
    /// <param name="hiddenStates">Receives the input and every layer's output, or null.</param>
    /// <param name="attentions">Receives every layer's probabilities, or null.</param>
    /// <returns>The last layer's output.</returns>
    public Tensor Forward(Tensor hidden, Tensor? attentionMask, List<Tensor>? hiddenStates, List<Tensor>? attentions)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        hiddenStates?.Add(hidden);
        bool checkpoint = GradientCheckpointing && attentions is null && Autograd.IsGradEnabled;
        foreach (var layer in Layers)
        {
            Tensor? probabilities = null;
            hidden = checkpoint
                ? NN.GradientCheckpointing.Run(layer, x => layer.Forward(x, attentionMask, false, out _), hidden)
                : layer.Forward(hidden, attentionMask, attentions is not null, out probabilities);
            hiddenStates?.Add(hidden);
            if (probabilities is not null) attentions?.Add(probabilities);
        }

        return hidden;
    }
}

/// <summary>The sentence-level head: [B, T, C] → [B, C] = tanh(dense(hidden[:, 0])).</summary>
public sealed class BertPooler : Module
{
    /// <summary>Loads <c>dense</c> [C, C].</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="vb">Builder at "pooler".</param>
    public BertPooler(BertStyleConfig config, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        Dense = RegisterModule("dense", new Linear(config.HiddenSize, config.HiddenSize, vb.Push("dense")));
    }

    /// <summary>[C, C] projection.</summary>
    public Linear Dense { get; }

    /// <summary>[B, T, C] → [B, C].</summary>
    /// <param name="hidden">The last hidden state.</param>
    /// <returns>tanh(dense(first token)).</returns>
    public Tensor Forward(Tensor hidden) => Ops.Tanh(Dense.Forward(Ops.Reshape(Ops.Narrow(hidden, 1, 0, 1), hidden.Shape[0], hidden.Shape[2])));
}

/// <summary>
/// The BERT encoder (Hugging Face BertModel): embeddings → L layers → optional pooler. ids [B, T] → [B, T, C].
/// In evaluation mode with no gradient to record (inside <see cref="Autograd.NoGrad"/>, or with frozen parameters),
/// <see cref="Forward(Tensor, Tensor?, Tensor?, bool, bool)"/> runs the fused inference path; otherwise the module path with autograd and dropout.
/// </summary>
public sealed partial class BertModel : Module, ITextEncoder
{
    private BertInference? _inference;

    /// <summary>Builds the model from <paramref name="vb"/> (a checkpoint, or <see cref="VarBuilder.FromInit"/> for random weights).</summary>
    /// <param name="config">The configuration (BertConfig or RobertaConfig).</param>
    /// <param name="vb">Builder at the model root ("" or "bert").</param>
    /// <param name="addPoolingLayer">Whether to build <c>pooler</c>.</param>
    public BertModel(BertStyleConfig config, VarBuilder vb, bool addPoolingLayer = true)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        if (config.HiddenSize % config.NumAttentionHeads != 0)
        {
            throw new ArgumentException($"BertModel: hidden_size {config.HiddenSize} is not a multiple of num_attention_heads {config.NumAttentionHeads}; fix config.json.", nameof(config));
        }

        Config = config;
        Embeddings = RegisterModule("embeddings", new BertEmbeddings(config, vb.Push("embeddings")));
        Encoder = RegisterModule("encoder", new BertEncoder(config, vb.Push("encoder")));
        if (addPoolingLayer)
        {
            Pooler = RegisterModule("pooler", new BertPooler(config, vb.Push("pooler")));
        }
    }

    /// <summary>The configuration.</summary>
    public BertStyleConfig Config { get; }

    /// <summary>Embeddings.</summary>
    public BertEmbeddings Embeddings { get; }

    /// <summary>Layer stack.</summary>
    public BertEncoder Encoder { get; }

    /// <summary>Pooler, or null.</summary>
    public BertPooler? Pooler { get; }

    /// <summary>The report of the checkpoint load (null when built otherwise).</summary>
    public LoadReport? LoadReport { get; private set; }

    /// <summary>
    /// Loads a Hugging Face folder: config.json (model_type bert or roberta) and its safetensors weights, with or
    /// without the "bert."/"roberta." prefix; builds the pooler when the checkpoint has one. Returns the model in
    /// evaluation mode.
    /// </summary>
    /// <param name="folder">The model folder.</param>
    /// <returns>The model.</returns>
    /// <exception cref="ModelLoadException">The weights do not fit the configuration; the message names the tensor.</exception>
    /// <exception cref="ModelConfigException">config.json is missing or invalid.</exception>
    public static BertModel FromPretrained(string folder)
    {
        var config = BertLoading.LoadConfig(folder, "BertModel");
        using var source = SafeTensorsLoader.Open(folder);
        var root = VarBuilder.FromSafeTensors(source);
        var vb = BertLoading.ModelRoot(root, source, config);
        var model = new BertModel(config, vb, addPoolingLayer: vb.Contains("pooler.dense.weight"));
        model.LoadReport = root.Report();
        model.Eval();
        return model;
    }

    /// <summary>
    /// A freshly initialized encoder (training mode) as HF's <c>BertPreTrainedModel._init_weights</c> makes it: dense
    /// and embedding weights normal(0, initializer_range), the padding_idx row of the word embeddings zeroed (HF's
    /// <c>nn.Embedding(padding_idx=pad_token_id)</c>; RoBERTa's position embeddings too), biases 0, LayerNorm weight 1
    /// and bias 0. Seeded (not PyTorch's numbers: the generators differ).
    /// </summary>
    /// <param name="config">The configuration (BertConfig or RobertaConfig).</param>
    /// <param name="seed">The initialization seed.</param>
    /// <param name="addPoolingLayer">Whether to build <c>pooler</c>.</param>
    /// <returns>The model, in training mode.</returns>
    public static BertModel FromConfig(BertStyleConfig config, int seed, bool addPoolingLayer = true)
    {
        ArgumentNullException.ThrowIfNull(config);
        var model = new BertModel(config, VarBuilder.FromInit(seed, (float)config.InitializerRange), addPoolingLayer);
        BertLoading.ZeroPaddingRows(model.Embeddings, config);
        return model;
    }

    /// <summary>ids [B, T] → last hidden state [B, T, C] (+ pooled [B, C], + hidden states and attentions when asked).</summary>
    /// <param name="inputIds">Token ids [B, T], I32 or I64.</param>
    /// <param name="attentionMask">[B, T], 1 for tokens and 0 for padding (any numeric dtype); null attends everywhere.</param>
    /// <param name="tokenTypeIds">Segment ids [B, T]; null for all zeros.</param>
    /// <param name="outputHiddenStates">Return the embeddings output and every layer's output.</param>
    /// <param name="outputAttentions">Return every layer's attention probabilities [B, H, T, T].</param>
    /// <returns>The outputs.</returns>
    /// <exception cref="ArgumentException">The inputs are not [B, T] of matching shapes, T exceeds max_position_embeddings, or an id is out of range.</exception>
    public BertModelOutput Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null, bool outputHiddenStates = false, bool outputAttentions = false)
    {
        BertLoading.CheckInputs(Config, inputIds, attentionMask, tokenTypeIds);
        if (UsesFastPath)
        {
            _inference ??= new BertInference(this);
            return _inference.Forward(inputIds, attentionMask, tokenTypeIds, outputHiddenStates, outputAttentions);
        }

        return ForwardModules(inputIds, attentionMask, tokenTypeIds, outputHiddenStates, outputAttentions);
    }

    /// <summary>As <see cref="Forward(Tensor, Tensor?, Tensor?, bool, bool)"/> on a tokenized batch.</summary>
    /// <param name="batch">Ids, mask and token types.</param>
    /// <param name="outputHiddenStates">Return every layer's output.</param>
    /// <param name="outputAttentions">Return every layer's attention probabilities.</param>
    /// <returns>The outputs.</returns>
    public BertModelOutput Forward(BertBatch batch, bool outputHiddenStates = false, bool outputAttentions = false)
    {
        ArgumentNullException.ThrowIfNull(batch);
        return Forward(batch.InputIds, batch.AttentionMask, batch.TokenTypeIds, outputHiddenStates, outputAttentions);
    }

    /// <summary>True when <see cref="Forward(Tensor, Tensor?, Tensor?, bool, bool)"/> would take the fused inference path (eval mode, nothing to record).</summary>
    public bool UsesFastPath => !Training && !(Autograd.IsGradEnabled && Parameters().Any(p => p.RequiresGrad));

    /// <inheritdoc/>
    int ITextEncoder.HiddenSize => Config.HiddenSize;

    /// <inheritdoc/>
    int ITextEncoder.MaxPositions => Config.MaxPositionEmbeddings;

    /// <inheritdoc/>
    Tensor ITextEncoder.Encode(Tensor inputIds, Tensor attentionMask, Tensor tokenTypeIds) =>
        TaskInterfaces.Encode(() => Forward(inputIds, attentionMask, tokenTypeIds).LastHiddenState);

    /// <summary>The module path (autograd, dropout), whatever the mode: the reference for the fast path.</summary>
    internal BertModelOutput ForwardModules(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds, bool outputHiddenStates, bool outputAttentions)
    {
        var hiddenStates = outputHiddenStates ? new List<Tensor>() : null;
        var attentions = outputAttentions ? new List<Tensor>() : null;
        var maskF = attentionMask?.DType == DType.F32 ? attentionMask : attentionMask?.To(DType.F32);
        var embedded = Embeddings.Forward(inputIds, tokenTypeIds);
        var last = Encoder.Forward(embedded, maskF, hiddenStates, attentions);
        return new BertModelOutput(last, Pooler?.Forward(last), hiddenStates, attentions);
    }
}

/// <summary>
/// BERT with the masked-language-model head (Hugging Face BertForMaskedLM): <c>bert.*</c>, then
/// <c>cls.predictions.transform.dense</c> + activation + <c>cls.predictions.transform.LayerNorm</c>, then a decoder
/// tied to the word embeddings plus <c>cls.predictions.bias</c>: ids [B, T] → logits [B, T, V].
/// </summary>
public sealed partial class BertForMaskedLM : Module, IMaskedLanguageModel, ILanguageModel, ISupportsGradientCheckpointing
{
    private readonly Embedding _tiedDecoder;

    /// <summary>Builds the model (no pooler, as in HF) from <paramref name="vb"/> at the checkpoint root.</summary>
    /// <param name="config">The configuration.</param>
    /// <param name="vb">Root builder; the encoder is read under "bert" and the head under "cls".</param>
    public BertForMaskedLM(BertStyleConfig config, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        Config = config;
        Bert = RegisterModule("bert", new BertModel(config, vb.Push("bert"), addPoolingLayer: false));
        Cls = RegisterModule("cls", new BertOnlyMLMHead(config, vb.Push("cls")));
        _tiedDecoder = Bert.Embeddings.WordEmbeddings;

        // The decoder weight is the word-embedding table (tie_word_embeddings); a checkpoint copy of it is not used.
        vb.Push("cls.predictions.decoder").MarkUsed("weight");
        vb.Push("cls.predictions.decoder").MarkUsed("bias");
    }

    /// <summary>The configuration.</summary>
    public BertStyleConfig Config { get; }

    /// <summary>The encoder (without pooler).</summary>
    public BertModel Bert { get; }

    /// <summary>The prediction head.</summary>
    public BertOnlyMLMHead Cls { get; }

    /// <summary>The report of the checkpoint load (null when built otherwise).</summary>
    public LoadReport? LoadReport { get; private set; }

    /// <summary>The decoder weight [V, C]: the same parameter as <c>bert.embeddings.word_embeddings.weight</c>.</summary>
    public Parameter DecoderWeight => _tiedDecoder.Weight;

    /// <inheritdoc/>
    public bool GradientCheckpointing
    {
        get => Bert.Encoder.GradientCheckpointing;
        set => Bert.Encoder.GradientCheckpointing = value;
    }

    /// <inheritdoc/>
    int ITextEncoder.HiddenSize => Config.HiddenSize;

    /// <inheritdoc/>
    int ITextEncoder.MaxPositions => Config.MaxPositionEmbeddings;

    /// <inheritdoc/>
    int IMaskedLanguageModel.VocabSize => Config.VocabSize;

    /// <inheritdoc/>
    Tensor ITextEncoder.Encode(Tensor inputIds, Tensor attentionMask, Tensor tokenTypeIds) =>
        TaskInterfaces.Encode(() => Bert.Forward(inputIds, attentionMask, tokenTypeIds).LastHiddenState);

    /// <inheritdoc/>
    Tensor IMaskedLanguageModel.PredictLogits(Tensor hidden) =>
        TaskInterfaces.PredictLogits(hidden, Config.HiddenSize, states => Cls.Forward(states, DecoderWeight.Value));

    /// <inheritdoc/>
    /// <remarks>
    /// The same loss as <see cref="Forward"/> with labels, but the prediction head (transform, then the [V, C] decoder)
    /// runs only on the labelled rows — 15 % of them in MLM pretraining — instead of on every position: the decoder is
    /// the largest matrix of the model, and the unlabelled rows' logits would be thrown away.
    /// </remarks>
    Tensor ILanguageModel.LanguageModelingLoss(Tensor inputIds, Tensor? attentionMask, Tensor labels) =>
        TaskInterfaces.SparseMaskedLoss(Bert.Forward(inputIds, attentionMask).LastHiddenState, labels, rows => Cls.Forward(rows, DecoderWeight.Value));

    /// <summary>Loads a Hugging Face BertForMaskedLM folder (config.json + safetensors); returns it in evaluation mode.</summary>
    /// <param name="folder">The model folder.</param>
    /// <returns>The model.</returns>
    /// <exception cref="ModelLoadException">The weights do not fit; the message names the tensor.</exception>
    public static BertForMaskedLM FromPretrained(string folder)
    {
        var config = BertLoading.LoadConfig(folder, "BertForMaskedLM");
        using var source = SafeTensorsLoader.Open(folder);
        var root = VarBuilder.FromSafeTensors(source);
        var model = new BertForMaskedLM(config, root);
        model.LoadReport = root.Report();
        model.Eval();
        return model;
    }

    /// <summary>
    /// A freshly initialized BertForMaskedLM (training mode) as HF's <c>_init_weights</c> makes it: the encoder as in
    /// <see cref="BertModel.FromConfig"/>, the head's dense weight normal(0, initializer_range), its biases, LayerNorm
    /// and <c>cls.predictions.bias</c> as 0 / 1 / 0 / 0; the decoder is tied to the word embeddings.
    /// </summary>
    /// <param name="config">The configuration.</param>
    /// <param name="seed">The initialization seed.</param>
    /// <returns>The model, in training mode.</returns>
    public static BertForMaskedLM FromConfig(BertStyleConfig config, int seed)
    {
        ArgumentNullException.ThrowIfNull(config);
        var model = new BertForMaskedLM(config, VarBuilder.FromInit(seed, (float)config.InitializerRange));
        BertLoading.ZeroPaddingRows(model.Bert.Embeddings, config);
        return model;
    }

    /// <summary>ids [B, T] → logits [B, T, V] (+ loss when <paramref name="labels"/> [B, T] are given; −100 is ignored).</summary>
    /// <param name="inputIds">Token ids [B, T].</param>
    /// <param name="attentionMask">[B, T] 1 = token, 0 = padding; null attends everywhere.</param>
    /// <param name="tokenTypeIds">Segment ids [B, T] or null.</param>
    /// <param name="labels">Target ids [B, T] (−100 where no prediction is scored), or null.</param>
    /// <param name="outputHiddenStates">Return every layer's output.</param>
    /// <param name="outputAttentions">Return every layer's attention probabilities.</param>
    /// <returns>The outputs.</returns>
    public MaskedLMOutput Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null, Tensor? labels = null, bool outputHiddenStates = false, bool outputAttentions = false)
    {
        var encoded = Bert.Forward(inputIds, attentionMask, tokenTypeIds, outputHiddenStates, outputAttentions);
        var logits = Cls.Forward(encoded.LastHiddenState, DecoderWeight.Value);
        var loss = labels is null ? null : Ops.CrossEntropy(logits, labels);
        return new MaskedLMOutput(logits, loss, encoded.HiddenStates, encoded.Attentions);
    }
}

/// <summary>The "cls" module of BertForMaskedLM: holds <c>predictions</c>.</summary>
public sealed class BertOnlyMLMHead : Module
{
    /// <summary>Loads <c>predictions</c>.</summary>
    /// <param name="config">The configuration.</param>
    /// <param name="vb">Builder at "cls".</param>
    public BertOnlyMLMHead(BertStyleConfig config, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(vb);
        Predictions = RegisterModule("predictions", new BertLMPredictionHead(config, vb.Push("predictions")));
    }

    /// <summary>The prediction head.</summary>
    public BertLMPredictionHead Predictions { get; }

    /// <summary>[B, T, C] → [B, T, V].</summary>
    /// <param name="hidden">Encoder output.</param>
    /// <param name="decoderWeight">The tied decoder weight [V, C].</param>
    /// <returns>Logits.</returns>
    public Tensor Forward(Tensor hidden, Tensor decoderWeight) => Predictions.Forward(hidden, decoderWeight);
}

/// <summary>transform (dense + activation + LayerNorm) then the tied decoder + <c>bias</c> [V]: [B, T, C] → [B, T, V].</summary>
public sealed class BertLMPredictionHead : Module
{
    /// <summary>Loads <c>transform.dense</c>, <c>transform.LayerNorm</c> and <c>bias</c> [V].</summary>
    /// <param name="config">The configuration.</param>
    /// <param name="vb">Builder at "cls.predictions".</param>
    public BertLMPredictionHead(BertStyleConfig config, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        Transform = RegisterModule("transform", new BertPredictionHeadTransform(config, vb.Push("transform")));
        Bias = RegisterParameter("bias", vb.GetParameter(new Shape(config.VocabSize), "bias", Init.Zeros));
    }

    /// <summary>dense + activation + LayerNorm.</summary>
    public BertPredictionHeadTransform Transform { get; }

    /// <summary>Output bias [V].</summary>
    public Parameter Bias { get; }

    /// <summary>[B, T, C] → [B, T, V].</summary>
    /// <param name="hidden">Encoder output.</param>
    /// <param name="decoderWeight">The tied decoder weight [V, C].</param>
    /// <returns>Logits.</returns>
    public Tensor Forward(Tensor hidden, Tensor decoderWeight) => Ops.Linear(Transform.Forward(hidden), decoderWeight, Bias.Value);
}

/// <summary>[B, T, C] → [B, T, C] = LayerNorm(act(dense(x))).</summary>
public sealed class BertPredictionHeadTransform : Module
{
    /// <summary>Loads <c>dense</c> [C, C] and <c>LayerNorm</c>.</summary>
    /// <param name="config">The configuration.</param>
    /// <param name="vb">Builder at "cls.predictions.transform".</param>
    public BertPredictionHeadTransform(BertStyleConfig config, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        Activation = BertActivation.Parse(config.HiddenAct);
        Dense = RegisterModule("dense", new Linear(config.HiddenSize, config.HiddenSize, vb.Push("dense")));
        LayerNorm = RegisterModule("LayerNorm", new LayerNorm(config.HiddenSize, (float)config.LayerNormEps, vb.Push("LayerNorm")));
    }

    /// <summary>[C, C] projection.</summary>
    public Linear Dense { get; }

    /// <summary>The activation named by hidden_act.</summary>
    public BertActivationKind Activation { get; }

    /// <summary>Normalization.</summary>
    public LayerNorm LayerNorm { get; }

    /// <summary>[B, T, C] → [B, T, C].</summary>
    /// <param name="hidden">Encoder output.</param>
    /// <returns>LN(act(dense(hidden))).</returns>
    public Tensor Forward(Tensor hidden) => LayerNorm.Forward(BertActivation.Apply(Activation, Dense.Forward(hidden)));
}

/// <summary>The activations a BERT config can name in hidden_act.</summary>
public enum BertActivationKind
{
    /// <summary>"gelu": exact GELU with erf.</summary>
    Gelu,

    /// <summary>"gelu_new", "gelu_pytorch_tanh", "gelu_fast": the tanh approximation.</summary>
    GeluTanh,

    /// <summary>"relu".</summary>
    Relu,

    /// <summary>"silu" / "swish".</summary>
    Silu,
}

/// <summary>Parsing and applying <see cref="BertActivationKind"/>.</summary>
internal static class BertActivation
{
    /// <summary>The kind named <paramref name="name"/>; <paramref name="key"/> is the config key it came from (for the error).</summary>
    public static BertActivationKind Parse(string name, string key = "hidden_act") => name switch
    {
        "gelu" => BertActivationKind.Gelu,
        "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => BertActivationKind.GeluTanh,
        "relu" => BertActivationKind.Relu,
        "silu" or "swish" => BertActivationKind.Silu,
        _ => throw new NotSupportedException($"{key} '{name}' is not supported; supported: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, silu, swish."),
    };

    public static Tensor Apply(BertActivationKind kind, Tensor x) => kind switch
    {
        BertActivationKind.Gelu => Ops.Gelu(x),
        BertActivationKind.GeluTanh => Ops.Gelu(x, GeluApproximation.Tanh),
        BertActivationKind.Relu => Ops.Relu(x),
        _ => Ops.Silu(x),
    };
}

/// <summary>Config and checkpoint plumbing shared by the BERT entry points.</summary>
internal static class BertLoading
{
    public static BertStyleConfig LoadConfig(string folder, string what)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        var config = ModelConfig.Load(folder);
        return config as BertStyleConfig
            ?? throw new NotSupportedException($"{what}.FromPretrained('{folder}'): model_type '{config.ModelType}' is not a BERT-style model; use AutoModel.FromPretrained, which supports: {string.Join(", ", AutoModel.SupportedModelTypes)}.");
    }

    /// <summary>The builder at the encoder root: "" for a bare BertModel checkpoint, else "bert." / "roberta." when the tensors carry that prefix.</summary>
    public static VarBuilder ModelRoot(VarBuilder root, ISafeTensorsSource source, BertStyleConfig config)
    {
        if (source.Contains("embeddings.word_embeddings.weight")) return root;
        string prefix = config is RobertaConfig ? "roberta" : "bert";
        return source.Contains(prefix + ".embeddings.word_embeddings.weight") ? root.Push(prefix) : root;
    }

    /// <summary>Zeroes the padding_idx rows HF's init zeroes: word_embeddings[pad_token_id]; for RoBERTa also position_embeddings[padding_idx].</summary>
    public static void ZeroPaddingRows(BertEmbeddings embeddings, BertStyleConfig config)
    {
        ZeroRow(embeddings.WordEmbeddings, config.PadTokenId);
        if (embeddings.PaddingIdx is int pad)
        {
            ZeroRow(embeddings.PositionEmbeddings, pad);
        }
    }

    private static void ZeroRow(Embedding table, int? row)
    {
        if (row is not int r || (uint)r >= (uint)table.Count) return;
        table.Weight.Value.AsSpan<float>().Slice(r * table.Dim, table.Dim).Clear();
        table.Weight.MarkModified();
    }

    /// <summary>Ids of an I32 or I64 tensor as int (I64 values outside int become −1, which the range checks reject).</summary>
    public static int[] ReadIds(Tensor ids) => ids.DType == DType.I32
        ? ids.ToArray<int>()
        : Array.ConvertAll(ids.ToArray<long>(), v => v is < int.MinValue or > int.MaxValue ? -1 : (int)v);

    public static void CheckInputs(BertStyleConfig config, Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds) =>
        CheckInputs("BERT", config.MaxPositionEmbeddings, inputIds, attentionMask, tokenTypeIds);

    /// <summary>Validates [B, T] inputs of an encoder named <paramref name="model"/> whose position table has <paramref name="maxPositions"/> rows.</summary>
    public static void CheckInputs(string model, int maxPositions, Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        if (inputIds.Rank != 2 || inputIds.DType is not (DType.I32 or DType.I64))
        {
            throw new ArgumentException($"{model}: input_ids must be an I32/I64 tensor [B, T], got {inputIds.DType} {inputIds.Shape}.", nameof(inputIds));
        }

        if (inputIds.Shape[1] > maxPositions)
        {
            throw new ArgumentException($"{model}: sequence length {inputIds.Shape[1]} exceeds max_position_embeddings {maxPositions}; truncate the input (EncodeOptions.Truncation).", nameof(inputIds));
        }

        if (attentionMask is not null && attentionMask.Shape != inputIds.Shape)
        {
            throw new ArgumentException($"{model}: attention_mask {attentionMask.Shape} must have input_ids' shape {inputIds.Shape}.", nameof(attentionMask));
        }

        if (tokenTypeIds is not null && (tokenTypeIds.Shape != inputIds.Shape || tokenTypeIds.DType is not (DType.I32 or DType.I64)))
        {
            throw new ArgumentException($"{model}: token_type_ids must be I32/I64 with input_ids' shape {inputIds.Shape}, got {tokenTypeIds.DType} {tokenTypeIds.Shape}.", nameof(tokenTypeIds));
        }
    }
}
