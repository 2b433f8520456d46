// T5 (Raffel et al. 2019) — v1.0, v1.1 and flan-t5 — with the module and tensor names of Hugging Face transformers'
// modeling_t5.py: T5ForConditionalGeneration.Encoder.Block[1].Layer[0].SelfAttention.Q.Weight is the tensor
// "encoder.block.1.layer.0.SelfAttention.q.weight". What makes T5 T5:
//   - T5LayerNorm: x / √(mean(x²) + eps) · weight — RMS, no mean, no bias (our RmsNorm);
//   - pre-norm sublayers: h += sublayer(norm(h)); a final_layer_norm per stack;
//   - attention without 1/√d and without biases; H·d_kv may differ from d_model;
//   - relative position buckets: block 0's SelfAttention.relative_attention_bias [buckets, H] gives a bias [H, Tq, Tk]
//     that every block of the stack adds (bidirectional in the encoder, causal in the decoder, none in cross-attention);
//   - DenseReluDense (wi → relu → wo, v1.0) or gated (gelu_new(wi_0 x) ⊙ wi_1 x → wo, v1.1/flan);
//   - lm_head tied to shared with h · d_model^-0.5 first (v1.0), or its own lm_head.weight (v1.1/flan);
//   - decoder_start_token_id = pad (0); no position table, so any length.
// One module tree, two forwards: Forward(Tensor ...) through Ops (autograd), and the fused ISeq2SeqLM path (no tape,
// Linear.Apply, a scalar attention loop for the biased self-attention, the attention kernel for cross-attention).
using Sharpformer.IO.Config;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Models.Bert;
using Sharpformer.NN;
using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels;
using Embedding = Sharpformer.NN.Embedding;

namespace Sharpformer.Models.T5;

/// <summary>
/// T5's attention (HF <c>T5Attention</c>): <c>q</c>, <c>k</c>, <c>v</c> (C → H·d_kv) and <c>o</c> (H·d_kv → C), no
/// biases, no 1/√d scaling; the first self-attention of each stack also owns <c>relative_attention_bias</c>.
/// </summary>
public sealed class T5Attention : Module
{
    /// <summary>Loads the projections under <paramref name="vb"/> ("…layer.0.SelfAttention" / "…layer.1.EncDecAttention").</summary>
    /// <param name="config">The config.</param>
    /// <param name="hasRelativeBias">Whether this attention owns the stack's bucket table (block 0's self-attention).</param>
    /// <param name="vb">Builder at this module's path.</param>
    /// <param name="dtype">The matrices' type.</param>
    public T5Attention(T5Config config, bool hasRelativeBias, VarBuilder vb, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        int c = config.HiddenSize, inner = config.NumAttentionHeads * config.DKv;
        NumHeads = config.NumAttentionHeads;
        HeadDim = config.DKv;
        Q = RegisterModule("q", new Linear(c, inner, vb.Push("q"), bias: false, dtype: dtype));
        K = RegisterModule("k", new Linear(c, inner, vb.Push("k"), bias: false, dtype: dtype));
        V = RegisterModule("v", new Linear(c, inner, vb.Push("v"), bias: false, dtype: dtype));
        O = RegisterModule("o", new Linear(inner, c, vb.Push("o"), bias: false, dtype: dtype));
        if (hasRelativeBias)
        {
            RelativeAttentionBias = RegisterModule("relative_attention_bias", new Embedding(config.RelativeAttentionNumBuckets, NumHeads, vb.Push("relative_attention_bias")));
        }

        Dropout = RegisterModule("dropout", new Dropout((float)config.DropoutRate));
    }

    /// <summary>H.</summary>
    public int NumHeads { get; }

    /// <summary>d_kv.</summary>
    public int HeadDim { get; }

    /// <summary>Query projection.</summary>
    public Linear Q { get; }

    /// <summary>Key projection.</summary>
    public Linear K { get; }

    /// <summary>Value projection.</summary>
    public Linear V { get; }

    /// <summary>Output projection.</summary>
    public Linear O { get; }

    /// <summary>The bucket table [buckets, H] (block 0's self-attention only), or null.</summary>
    public Embedding? RelativeAttentionBias { get; }

    /// <summary>Dropout on the probabilities (training only).</summary>
    public Dropout Dropout { get; }

    /// <summary>queries [B, Tq, C], keys/values from [B, Tk, C] → [B, Tq, C]: softmax(q·kᵀ + bias, masks)·v, projected.</summary>
    /// <param name="query">The normed attending states.</param>
    /// <param name="keyValue">The attended states.</param>
    /// <param name="positionBias">[H, Tq, Tk] or null.</param>
    /// <param name="keyMask">[B, Tk] 1 = attend, or null.</param>
    /// <param name="causal">Hide later keys.</param>
    /// <returns>The output before the residual add.</returns>
    public Tensor Forward(Tensor query, Tensor keyValue, Tensor? positionBias, Tensor? keyMask, bool causal)
    {
        var q = Ops.SplitHeads(Q.Forward(query), NumHeads);
        var k = Ops.SplitHeads(K.Forward(keyValue), NumHeads);
        var v = Ops.SplitHeads(V.Forward(keyValue), NumHeads);
        var scores = Ops.MatMul(q, k, transposeB: true);
        if (positionBias is not null)
        {
            scores = Ops.Add(scores, positionBias);
        }

        var probabilities = Dropout.Forward(Ops.Softmax(scores, causal, keyMask));
        return O.Forward(Ops.MergeHeads(Ops.MatMul(probabilities, v)));
    }
}

/// <summary>T5's feed-forward (HF <c>T5DenseActDense</c> / <c>T5DenseGatedActDense</c>): <c>wi</c> or <c>wi_0</c>/<c>wi_1</c>, then <c>wo</c>.</summary>
public sealed class T5DenseReluDense : Module
{
    /// <summary>Loads the projections under <paramref name="vb"/> ("…DenseReluDense").</summary>
    /// <param name="config">The config.</param>
    /// <param name="vb">Builder at this module's path.</param>
    /// <param name="dtype">The matrices' type.</param>
    public T5DenseReluDense(T5Config config, VarBuilder vb, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        int c = config.HiddenSize, ff = config.IntermediateSize;
        Activation = BertActivation.Parse(config.DenseActivation, "feed_forward_proj");
        if (config.IsGatedActivation)
        {
            Wi0 = RegisterModule("wi_0", new Linear(c, ff, vb.Push("wi_0"), bias: false, dtype: dtype));
            Wi1 = RegisterModule("wi_1", new Linear(c, ff, vb.Push("wi_1"), bias: false, dtype: dtype));
        }
        else
        {
            Wi = RegisterModule("wi", new Linear(c, ff, vb.Push("wi"), bias: false, dtype: dtype));
        }

        Wo = RegisterModule("wo", new Linear(ff, c, vb.Push("wo"), bias: false, dtype: dtype));
        Dropout = RegisterModule("dropout", new Dropout((float)config.DropoutRate));
    }

    /// <summary>The activation (relu for v1.0, gelu_new for gated-gelu).</summary>
    public BertActivationKind Activation { get; }

    /// <summary>v1.0's expansion, or null.</summary>
    public Linear? Wi { get; }

    /// <summary>The gated form's activated expansion, or null.</summary>
    public Linear? Wi0 { get; }

    /// <summary>The gated form's linear expansion, or null.</summary>
    public Linear? Wi1 { get; }

    /// <summary>The contraction d_ff → C.</summary>
    public Linear Wo { get; }

    /// <summary>Dropout before <c>wo</c> (training only).</summary>
    public Dropout Dropout { get; }

    /// <summary>[B, T, C] → [B, T, C].</summary>
    /// <param name="x">The normed input.</param>
    /// <returns>The output before the residual add.</returns>
    public Tensor Forward(Tensor x)
    {
        var hidden = Wi is not null
            ? BertActivation.Apply(Activation, Wi.Forward(x))
            : Ops.Mul(BertActivation.Apply(Activation, Wi0!.Forward(x)), Wi1!.Forward(x));
        return Wo.Forward(Dropout.Forward(hidden));
    }
}

/// <summary>One T5 sublayer: <c>layer_norm</c> (RMS) and its body (SelfAttention, EncDecAttention or DenseReluDense): h += body(norm(h)).</summary>
public sealed class T5Sublayer : Module
{
    /// <summary>Creates the sublayer under <paramref name="vb"/> ("…block.{i}.layer.{k}").</summary>
    /// <param name="config">The config.</param>
    /// <param name="kind">"SelfAttention", "EncDecAttention" or "DenseReluDense".</param>
    /// <param name="hasRelativeBias">Whether this self-attention owns the bucket table.</param>
    /// <param name="vb">Builder at this module's path.</param>
    /// <param name="dtype">The matrices' type.</param>
    public T5Sublayer(T5Config config, string kind, bool hasRelativeBias, VarBuilder vb, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        Kind = kind;
        if (kind == "DenseReluDense")
        {
            DenseReluDense = RegisterModule(kind, new T5DenseReluDense(config, vb.Push(kind), dtype));
        }
        else
        {
            Attention = RegisterModule(kind, new T5Attention(config, hasRelativeBias, vb.Push(kind), dtype));
        }

        LayerNorm = RegisterModule("layer_norm", new RmsNorm(config.HiddenSize, (float)config.LayerNormEpsilon, vb.Push("layer_norm")));
        Dropout = RegisterModule("dropout", new Dropout((float)config.DropoutRate));
    }

    /// <summary>The HF name of the body.</summary>
    public string Kind { get; }

    /// <summary>The attention body, or null.</summary>
    public T5Attention? Attention { get; }

    /// <summary>The feed-forward body, or null.</summary>
    public T5DenseReluDense? DenseReluDense { get; }

    /// <summary>T5LayerNorm.</summary>
    public RmsNorm LayerNorm { get; }

    /// <summary>Dropout on the body's output (training only).</summary>
    public Dropout Dropout { get; }
}

/// <summary>One T5 block (HF <c>T5Block</c>): <c>layer.0</c> self-attention, (decoder) <c>layer.1</c> cross-attention, then the feed-forward.</summary>
public sealed class T5Block : Module
{
    /// <summary>Loads the block under <paramref name="vb"/> ("encoder.block.{i}" / "decoder.block.{i}").</summary>
    /// <param name="config">The config.</param>
    /// <param name="decoder">A decoder block.</param>
    /// <param name="index">The block's index (block 0 owns the bucket table).</param>
    /// <param name="vb">Builder at this module's path.</param>
    /// <param name="dtype">The matrices' type.</param>
    public T5Block(T5Config config, bool decoder, int index, VarBuilder vb, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(vb);
        var layers = new List<T5Sublayer> { RegisterModule("layer.0", new T5Sublayer(config, "SelfAttention", index == 0, vb.Push("layer", 0), dtype)) };
        if (decoder)
        {
            layers.Add(RegisterModule("layer.1", new T5Sublayer(config, "EncDecAttention", false, vb.Push("layer", 1), dtype)));

            // The original checkpoints carry a bucket table for block 0's cross-attention that T5 never uses (HF ignores
            // it on load too): count it as read so the load report stays clean.
            vb.Push("layer", 1).Push("EncDecAttention").MarkUsed("relative_attention_bias.weight");
        }

        layers.Add(RegisterModule($"layer.{layers.Count}", new T5Sublayer(config, "DenseReluDense", false, vb.Push("layer", layers.Count), dtype)));
        Layer = layers;
    }

    /// <summary>The sublayers in order.</summary>
    public IReadOnlyList<T5Sublayer> Layer { get; }

    /// <summary>The self-attention sublayer.</summary>
    public T5Sublayer SelfAttention => Layer[0];

    /// <summary>The cross-attention sublayer (decoder), or null.</summary>
    public T5Sublayer? CrossAttention => Layer.Count == 3 ? Layer[1] : null;

    /// <summary>The feed-forward sublayer.</summary>
    public T5Sublayer FeedForward => Layer[^1];
}

/// <summary>The encoder or decoder stack (HF <c>T5Stack</c>): the shared embeddings, the blocks, <c>final_layer_norm</c>.</summary>
public sealed class T5Stack : Module
{
    /// <summary>Loads the stack under <paramref name="vb"/> ("encoder" / "decoder").</summary>
    /// <param name="config">The config.</param>
    /// <param name="decoder">The decoder stack (causal, with cross-attention).</param>
    /// <param name="shared">The shared embeddings.</param>
    /// <param name="vb">Builder at this module's path.</param>
    /// <param name="dtype">The matrices' type.</param>
    public T5Stack(T5Config config, bool decoder, Embedding shared, VarBuilder vb, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        EmbedTokens = shared;
        vb.MarkUsed("embed_tokens.weight");
        IsDecoder = decoder;
        var blocks = new T5Block[decoder ? config.NumDecoderLayers : config.NumHiddenLayers];
        for (int i = 0; i < blocks.Length; i++)
        {
            blocks[i] = RegisterModule($"block.{i}", new T5Block(config, decoder, i, vb.Push("block", i), dtype));
        }

        Block = blocks;
        FinalLayerNorm = RegisterModule("final_layer_norm", new RmsNorm(config.HiddenSize, (float)config.LayerNormEpsilon, vb.Push("final_layer_norm")));
        Dropout = RegisterModule("dropout", new Dropout((float)config.DropoutRate));
        NumBuckets = config.RelativeAttentionNumBuckets;
        MaxDistance = config.RelativeAttentionMaxDistance;
    }

    /// <summary>The shared token table (owned by <c>shared</c>).</summary>
    public Embedding EmbedTokens { get; }

    /// <summary>True for the decoder.</summary>
    public bool IsDecoder { get; }

    /// <summary>The blocks.</summary>
    public IReadOnlyList<T5Block> Block { get; }

    /// <summary>The stack's last RMS norm.</summary>
    public RmsNorm FinalLayerNorm { get; }

    /// <summary>Dropout on the embeddings and the output (training only).</summary>
    public Dropout Dropout { get; }

    /// <summary>relative_attention_num_buckets.</summary>
    public int NumBuckets { get; }

    /// <summary>relative_attention_max_distance.</summary>
    public int MaxDistance { get; }

    /// <summary>The bucket table of block 0.</summary>
    public Embedding BiasTable => Block[0].SelfAttention.Attention!.RelativeAttentionBias!;

    /// <summary>
    /// HF's <c>_relative_position_bucket</c>: relative = key position − query position → a bucket in [0, buckets).
    /// Bidirectional (encoder): half the buckets for keys after the query; then exact buckets for distances below
    /// half of the rest, logarithmic ones up to <paramref name="maxDistance"/>, the last bucket beyond. Causal
    /// (decoder): only distances to earlier keys count. The logarithm is taken in float32, as torch does.
    /// </summary>
    /// <param name="relative">Key position minus query position.</param>
    /// <param name="bidirectional">Encoder (true) or decoder (false).</param>
    /// <param name="numBuckets">relative_attention_num_buckets.</param>
    /// <param name="maxDistance">relative_attention_max_distance.</param>
    /// <returns>The bucket.</returns>
    public static int RelativePositionBucket(int relative, bool bidirectional, int numBuckets, int maxDistance)
    {
        int bucket = 0;
        if (bidirectional)
        {
            numBuckets /= 2;
            if (relative > 0)
            {
                bucket += numBuckets;
            }

            relative = Math.Abs(relative);
        }
        else
        {
            relative = -Math.Min(relative, 0);
        }

        int maxExact = numBuckets / 2;
        if (relative < maxExact)
        {
            return bucket + relative;
        }

        float scaled = MathF.Log((float)relative / maxExact) / (float)Math.Log((double)maxDistance / maxExact) * (numBuckets - maxExact);
        int large = Math.Min(maxExact + (int)scaled, numBuckets - 1);
        return bucket + large;
    }

    /// <summary>The bucket ids [Tq, Tk] of queries at firstQuery … firstQuery + Tq − 1 over keys 0 … Tk − 1.</summary>
    internal int[] Buckets(int queries, int keys, int firstQuery)
    {
        var buckets = new int[queries * keys];
        for (int i = 0; i < queries; i++)
        {
            for (int j = 0; j < keys; j++)
            {
                buckets[(i * keys) + j] = RelativePositionBucket(j - (firstQuery + i), !IsDecoder, NumBuckets, MaxDistance);
            }
        }

        return buckets;
    }

    /// <summary>ids [B, T] → [B, T, C] through the module path.</summary>
    /// <param name="ids">[B, T] I32 ids.</param>
    /// <param name="selfMask">Encoder: the source mask [B, S] or null; decoder: null.</param>
    /// <param name="encoderOutput">Decoder: [B, S, C]; encoder: null.</param>
    /// <param name="encoderMask">Decoder: [B, S] or null.</param>
    /// <returns>The stack's output after final_layer_norm.</returns>
    public Tensor Forward(Tensor ids, Tensor? selfMask, Tensor? encoderOutput, Tensor? encoderMask)
    {
        int tokens = ids.Shape[1];
        var h = Dropout.Forward(EmbedTokens.Forward(ids));

        // The bias [H, T, T] of block 0's table, shared by every block: table[buckets] [T, T, H] → [H, T, T].
        var bias = Ops.Permute(BiasTable.Forward(Tensor.FromArray(Buckets(tokens, tokens, 0), new Shape(tokens, tokens))), 2, 0, 1);
        foreach (var block in Block)
        {
            var self = block.SelfAttention;
            h = Ops.Add(h, self.Dropout.Forward(self.Attention!.Forward(self.LayerNorm.Forward(h), self.LayerNorm.Forward(h), bias, selfMask, IsDecoder)));
            if (block.CrossAttention is { } cross && encoderOutput is not null)
            {
                h = Ops.Add(h, cross.Dropout.Forward(cross.Attention!.Forward(cross.LayerNorm.Forward(h), encoderOutput, null, encoderMask, causal: false)));
            }

            var ff = block.FeedForward;
            h = Ops.Add(h, ff.Dropout.Forward(ff.DenseReluDense!.Forward(ff.LayerNorm.Forward(h))));
        }

        return Dropout.Forward(FinalLayerNorm.Forward(h));
    }
}

/// <summary>
/// T5 with its language-model head (HF <c>T5ForConditionalGeneration</c>): <c>shared</c>, <c>encoder</c>,
/// <c>decoder</c>, <c>lm_head</c> (tied to <c>shared.weight</c> with the d_model^-0.5 rescale, or its own). Trains
/// through <see cref="Forward"/> and generates through <see cref="ISeq2SeqLM"/> over the same parameters. Not
/// thread-safe: the fused path reuses its buffers.
/// </summary>
public sealed class T5ForConditionalGeneration : Module, ITrainableSeq2SeqLM
{
    private float[] _h = [];
    private float[] _x = [];
    private float[] _q = [];
    private float[] _k = [];
    private float[] _v = [];
    private float[] _att = [];
    private float[] _ff = [];
    private float[] _gate = [];
    private float[] _last = [];

    private T5ForConditionalGeneration(T5Config config, VarBuilder vb, DType dtype)
    {
        Config = config;
        Shared = RegisterModule("shared", new Embedding(config.VocabSize, config.HiddenSize, vb.Push("shared"), dtype));
        Encoder = RegisterModule("encoder", new T5Stack(config, decoder: false, Shared, vb.Push("encoder"), dtype));
        Decoder = RegisterModule("decoder", new T5Stack(config, decoder: true, Shared, vb.Push("decoder"), dtype));
        if (config.TieWordEmbeddings)
        {
            vb.MarkUsed("lm_head.weight");
            LmHead = RegisterModule("lm_head", Linear.Tied(Shared.Weight));
        }
        else
        {
            LmHead = RegisterModule("lm_head", new Linear(config.HiddenSize, config.VocabSize, vb.Push("lm_head"), bias: false, dtype: dtype));
        }

        SpecialTokens = new Seq2SeqSpecialTokens(config.DecoderStartTokenId, config.EosTokenIds.Count > 0 ? config.EosTokenIds[0] : 1, config.PadTokenId ?? 0);
    }

    /// <summary>The validated config.json.</summary>
    public T5Config Config { get; }

    /// <summary>The token table of both stacks (and of the head when tied).</summary>
    public Embedding Shared { get; }

    /// <summary>The encoder stack.</summary>
    public T5Stack Encoder { get; }

    /// <summary>The decoder stack.</summary>
    public T5Stack Decoder { get; }

    /// <summary>The LM head [V, C].</summary>
    public Linear LmHead { get; }

    /// <summary>What loading read and what the checkpoint lacked (null when built from a VarBuilder directly).</summary>
    public LoadReport? LoadReport { get; private set; }

    /// <summary>The scale of the decoder output before a tied head: d_model^-0.5 (1 when untied).</summary>
    public float HeadScale => Config.TieWordEmbeddings ? 1f / MathF.Sqrt(Config.HiddenSize) : 1f;

    /// <inheritdoc/>
    public int VocabSize => Config.VocabSize;

    /// <inheritdoc/>
    public int MaxSourcePositions => int.MaxValue;

    /// <inheritdoc/>
    public int MaxTargetPositions => int.MaxValue;

    /// <inheritdoc/>
    public Seq2SeqSpecialTokens SpecialTokens { get; }

    /// <summary>Loads an HF T5 folder (config.json of model_type t5 + safetensors), in evaluation mode.</summary>
    /// <param name="folder">The model folder.</param>
    /// <param name="dtype">The matrices' type: F32 (default, trainable), F16 or BF16 (inference only); compute stays F32.</param>
    /// <returns>The model.</returns>
    /// <exception cref="ArgumentException"><paramref name="dtype"/> is not F32, F16 or BF16.</exception>
    /// <exception cref="ModelConfigException">config.json is missing or invalid.</exception>
    /// <exception cref="InvalidDataException">config.json is not a T5 config.</exception>
    /// <exception cref="ModelLoadException">A tensor is missing or misshapen; the message names it.</exception>
    public static T5ForConditionalGeneration FromPretrained(string folder, DType dtype = DType.F32)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        var config = ModelConfig.Load(folder) as T5Config
            ?? throw new InvalidDataException($"{Path.Combine(folder, "config.json")}: model_type is not t5; AutoModelForSeq2SeqLM picks the class for other types.");
        using var weights = SafeTensorsLoader.Open(folder);
        return FromWeights(config, weights, dtype);
    }

    /// <summary>Builds the model from a config and an open checkpoint, in evaluation mode.</summary>
    /// <param name="config">The config.</param>
    /// <param name="weights">The checkpoint; it may be disposed afterwards.</param>
    /// <param name="dtype">The matrices' type.</param>
    /// <returns>The model.</returns>
    public static T5ForConditionalGeneration FromWeights(T5Config config, ISafeTensorsSource weights, DType dtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(weights);
        var root = VarBuilder.FromSafeTensors(weights);
        var model = FromVarBuilder(config, root, dtype);
        model.LoadReport = root.Report();
        return model;
    }

    /// <summary>Builds the model through <paramref name="vb"/> (e.g. <see cref="VarBuilder.FromInit"/>), in evaluation mode.</summary>
    /// <param name="config">The config.</param>
    /// <param name="vb">The builder.</param>
    /// <param name="dtype">The matrices' type.</param>
    /// <returns>The model.</returns>
    public static T5ForConditionalGeneration FromVarBuilder(T5Config config, VarBuilder vb, DType dtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        if (dtype is not (DType.F32 or DType.F16 or DType.BF16))
        {
            throw new ArgumentException($"t5: weight dtype {dtype} is not supported; use DType.F32, DType.F16 or DType.BF16.", nameof(dtype));
        }

        var model = new T5ForConditionalGeneration(config, vb, dtype);
        model.Eval();
        return model;
    }

    /// <summary>
    /// A hint when <paramref name="text"/> starts with none of the task prefixes the config's
    /// <c>task_specific_params</c> lists (T5 was trained with "summarize: ", "translate English to German: ", …):
    /// the message names the expected prefixes. Null when the text has one, or the config lists none.
    /// </summary>
    /// <param name="text">The source text.</param>
    /// <returns>The hint, or null.</returns>
    public string? TaskPrefixHint(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (Config.TaskPrefixes.Count == 0 || Config.TaskPrefixes.Values.Any(p => text.StartsWith(p, StringComparison.Ordinal)))
        {
            return null;
        }

        var listed = string.Join("; ", Config.TaskPrefixes.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}: '{p.Value}'"));
        return $"T5 expects its input to start with a task prefix, and this text has none; the model's config lists {listed}. Prepend the prefix of the task you want.";
    }

    /// <inheritdoc/>
    /// <remarks>logits = (h · d_model^-0.5 when tied) · lm_headᵀ.</remarks>
    /// <exception cref="ArgumentException">A shape disagrees or an id is outside the vocabulary.</exception>
    public Seq2SeqLMOutput Forward(Tensor inputIds, Tensor? attentionMask, Tensor decoderInputIds, Tensor? labels = null)
    {
        var source = ReadIds(inputIds, nameof(inputIds));
        var target = ReadIds(decoderInputIds, nameof(decoderInputIds));
        if (source.Shape[0] != target.Shape[0])
        {
            throw new ArgumentException($"t5: input_ids has B={source.Shape[0]} rows but decoder_input_ids B={target.Shape[0]}; pass one target per source.", nameof(decoderInputIds));
        }

        var mask = attentionMask is null ? null : (attentionMask.DType == DType.F32 ? attentionMask : attentionMask.To(DType.F32));
        if (mask is not null && mask.Shape != source.Shape)
        {
            throw new ArgumentException($"t5: attention_mask {mask.Shape} must have input_ids' shape {source.Shape}.", nameof(attentionMask));
        }

        var encoded = Encoder.Forward(source, mask, null, null);
        var decoded = Decoder.Forward(target, null, encoded, mask);
        if (Config.TieWordEmbeddings)
        {
            decoded = Ops.Scale(decoded, HeadScale);
        }

        var logits = LmHead.Forward(decoded);
        Tensor? loss = null;
        if (labels is not null)
        {
            if (labels.Shape != target.Shape || labels.DType is not (DType.I32 or DType.I64))
            {
                throw new ArgumentException($"t5: labels must be I32/I64 with decoder_input_ids' shape {target.Shape}, got {labels.DType} {labels.Shape}.", nameof(labels));
            }

            loss = Ops.CrossEntropy(logits, labels.DType == DType.I32 ? labels : Tensor.FromArray(BertLoading.ReadIds(labels), labels.Shape));
        }

        return new Seq2SeqLMOutput(logits, loss, encoded);
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">An id is outside the vocabulary or the shapes disagree.</exception>
    public Seq2SeqState Encode(ReadOnlySpan<int> sourceIds, ReadOnlySpan<float> sourceMask, int batch, int targetCapacity)
    {
        int sourceLength = Seq2SeqChecks.Source("t5", sourceIds, sourceMask, batch, VocabSize, MaxSourcePositions);
        Seq2SeqChecks.Capacity("t5", targetCapacity, MaxTargetPositions);
        int rows = batch * sourceLength, inner = Config.NumAttentionHeads * Config.DKv;
        var mask = sourceMask.IsEmpty ? Filled(rows) : sourceMask.ToArray();
        var h = RunEncoder(sourceIds, mask, batch, sourceLength);
        var cross = new KvCache(Decoder.Block.Count, batch, sourceLength, inner);
        for (int l = 0; l < Decoder.Block.Count; l++)
        {
            var attention = Decoder.Block[l].CrossAttention!.Attention!;
            attention.K.Forward(h, rows, cross.Keys(l)[..(rows * inner)]);
            attention.V.Forward(h, rows, cross.Values(l)[..(rows * inner)]);
        }

        cross.Advance(mask, sourceLength, new int[rows]);
        return new Seq2SeqState(new KvCache(Decoder.Block.Count, batch, targetCapacity, inner), cross, mask, sourceLength);
    }

    /// <summary>The encoder output [B, S, C] of the fused path.</summary>
    /// <param name="sourceIds">[B, S] source ids.</param>
    /// <param name="sourceMask">Empty or [B, S].</param>
    /// <param name="batch">B.</param>
    /// <returns>The encoder's last hidden state.</returns>
    public Tensor EncoderOutput(ReadOnlySpan<int> sourceIds, ReadOnlySpan<float> sourceMask, int batch)
    {
        int sourceLength = Seq2SeqChecks.Source("t5", sourceIds, sourceMask, batch, VocabSize, MaxSourcePositions);
        var mask = sourceMask.IsEmpty ? Filled(batch * sourceLength) : sourceMask.ToArray();
        var h = RunEncoder(sourceIds, mask, batch, sourceLength);
        return Tensor.FromSpan<float>(h, new Shape(batch, sourceLength, Config.HiddenSize));
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">The ids do not form [B, T], an id is outside the vocabulary, the cache is full, or the logits span is too small.</exception>
    public void DecodeLast(ReadOnlySpan<int> targetIds, Seq2SeqState state, Span<float> lastLogits)
    {
        ArgumentNullException.ThrowIfNull(state);
        int batch = state.Batch, c = Config.HiddenSize, inner = Config.NumAttentionHeads * Config.DKv;
        int tokens = Seq2SeqChecks.Target("t5", targetIds, state, lastLogits, VocabSize);
        var cache = state.SelfAttention;
        int past = cache.Length, rows = batch * tokens, s = state.SourceLength;
        Ensure(rows);
        cache.Advance(default, tokens, new int[rows]);
        var h = _h.AsSpan(0, rows * c);
        for (int r = 0; r < rows; r++)
        {
            Shared.CopyRow(targetIds[r], h.Slice(r * c, c));
        }

        var x = _x.AsSpan(0, rows * c);
        var q = _q.AsSpan(0, rows * inner);
        var att = _att.AsSpan(0, rows * inner);
        var bias = BiasTable(Decoder, tokens, past + tokens, past);
        for (int l = 0; l < Decoder.Block.Count; l++)
        {
            var block = Decoder.Block[l];

            // Self-attention with the relative bias over the cache.
            var self = block.SelfAttention;
            var attention = self.Attention!;
            Norm(self.LayerNorm, h, x, rows);
            attention.Q.Forward(x, rows, q);
            attention.K.Forward(x, rows, _k.AsSpan(0, rows * inner));
            attention.V.Forward(x, rows, _v.AsSpan(0, rows * inner));
            var keys = cache.Keys(l);
            var values = cache.Values(l);
            for (int b = 0; b < batch; b++)
            {
                _k.AsSpan(b * tokens * inner, tokens * inner).CopyTo(keys.Slice(((b * cache.Capacity) + past) * inner));
                _v.AsSpan(b * tokens * inner, tokens * inner).CopyTo(values.Slice(((b * cache.Capacity) + past) * inner));
                BiasedAttention(attention.NumHeads, attention.HeadDim, tokens, past + tokens, q.Slice(b * tokens * inner, tokens * inner),
                    keys.Slice(b * cache.Capacity * inner), values.Slice(b * cache.Capacity * inner), bias, cache.Mask.Slice(b * cache.Capacity, past + tokens), causal: true, att.Slice(b * tokens * inner, tokens * inner));
            }

            attention.O.Apply(att, rows, h, accumulate: true);

            // Cross-attention: no bias, no scaling: the attention kernel with scale 1.
            var crossLayer = block.CrossAttention!;
            var crossAttention = crossLayer.Attention!;
            Norm(crossLayer.LayerNorm, h, x, rows);
            crossAttention.Q.Forward(x, rows, q);
            for (int b = 0; b < batch; b++)
            {
                var shape = new AttentionShape(1, crossAttention.NumHeads, tokens, s, crossAttention.HeadDim);
                Attention.Forward(shape, q.Slice(b * tokens * inner, tokens * inner), state.CrossAttention.Keys(l).Slice(b * s * inner, s * inner), state.CrossAttention.Values(l).Slice(b * s * inner, s * inner),
                    att.Slice(b * tokens * inner, tokens * inner), causal: false, keyPaddingMask: state.SourceMask.Slice(b * s, s), scale: 1f);
            }

            crossAttention.O.Apply(att, rows, h, accumulate: true);
            FeedForward(block.FeedForward, h, x, rows);
        }

        if (_last.Length < batch * c)
        {
            _last = new float[batch * c];
        }

        var last = _last.AsSpan(0, batch * c);
        for (int b = 0; b < batch; b++)
        {
            h.Slice(((b * tokens) + tokens - 1) * c, c).CopyTo(last.Slice(b * c, c));
        }

        Norm(Decoder.FinalLayerNorm, last, last, batch);
        if (Config.TieWordEmbeddings)
        {
            Elementwise.Scale(last, HeadScale, last);
        }

        LmHead.Forward(last, batch, lastLogits);
    }

    private Span<float> RunEncoder(ReadOnlySpan<int> ids, float[] mask, int batch, int tokens)
    {
        int c = Config.HiddenSize, inner = Config.NumAttentionHeads * Config.DKv, rows = batch * tokens;
        Ensure(rows);
        var h = _h.AsSpan(0, rows * c);
        for (int r = 0; r < rows; r++)
        {
            Shared.CopyRow(ids[r], h.Slice(r * c, c));
        }

        var x = _x.AsSpan(0, rows * c);
        var q = _q.AsSpan(0, rows * inner);
        var k = _k.AsSpan(0, rows * inner);
        var v = _v.AsSpan(0, rows * inner);
        var att = _att.AsSpan(0, rows * inner);
        var bias = BiasTable(Encoder, tokens, tokens, 0);
        foreach (var block in Encoder.Block)
        {
            var self = block.SelfAttention;
            var attention = self.Attention!;
            Norm(self.LayerNorm, h, x, rows);
            attention.Q.Forward(x, rows, q);
            attention.K.Forward(x, rows, k);
            attention.V.Forward(x, rows, v);
            for (int b = 0; b < batch; b++)
            {
                BiasedAttention(attention.NumHeads, attention.HeadDim, tokens, tokens, q.Slice(b * tokens * inner, tokens * inner), k.Slice(b * tokens * inner, tokens * inner),
                    v.Slice(b * tokens * inner, tokens * inner), bias, mask.AsSpan(b * tokens, tokens), causal: false, att.Slice(b * tokens * inner, tokens * inner));
            }

            attention.O.Apply(att, rows, h, accumulate: true);
            FeedForward(block.FeedForward, h, x, rows);
        }

        Norm(Encoder.FinalLayerNorm, h, h, rows);
        return h;
    }

    /// <summary>The position bias [H, Tq, Tk] of queries from <paramref name="firstQuery"/> over keys 0 … Tk − 1 (block 0's table).</summary>
    private static float[] BiasTable(T5Stack stack, int queries, int keys, int firstQuery)
    {
        var table = stack.BiasTable;
        int heads = table.Dim;
        var buckets = stack.Buckets(queries, keys, firstQuery);
        var row = new float[heads];
        var bias = new float[heads * queries * keys];
        for (int i = 0; i < queries * keys; i++)
        {
            table.CopyRow(buckets[i], row);
            for (int hd = 0; hd < heads; hd++)
            {
                bias[(hd * queries * keys) + i] = row[hd];
            }
        }

        return bias;
    }

    /// <summary>
    /// One sequence's attention with an additive bias, in plain loops (the attention kernel has no bias input):
    /// q [Tq, H·D], k/v rows [Tk, H·D], bias [H, Tq, Tk] → out [Tq, H·D] = softmax(q·kᵀ + bias, masks)·v per head,
    /// no scaling. Hidden keys (mask 0, or later ones when causal with queries aligned to the end) get probability 0.
    /// </summary>
    private static void BiasedAttention(int heads, int d, int queries, int keys, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        float[] bias, ReadOnlySpan<float> keyMask, bool causal, Span<float> output)
    {
        int width = heads * d;
        var scores = new float[keys];
        for (int hd = 0; hd < heads; hd++)
        {
            for (int i = 0; i < queries; i++)
            {
                var qi = q.Slice((i * width) + (hd * d), d);
                float max = float.NegativeInfinity;
                int lastVisible = causal ? keys - queries + i : keys - 1;
                for (int j = 0; j < keys; j++)
                {
                    if (j > lastVisible || keyMask[j] == 0f)
                    {
                        scores[j] = float.NegativeInfinity;
                        continue;
                    }

                    float dot = 0f;
                    var kj = k.Slice((j * width) + (hd * d), d);
                    for (int e = 0; e < d; e++)
                    {
                        dot += qi[e] * kj[e];
                    }

                    scores[j] = dot + bias[(((hd * queries) + i) * keys) + j];
                    max = Math.Max(max, scores[j]);
                }

                var oi = output.Slice((i * width) + (hd * d), d);
                oi.Clear();
                if (float.IsNegativeInfinity(max))
                {
                    continue;
                }

                float sum = 0f;
                for (int j = 0; j < keys; j++)
                {
                    scores[j] = float.IsNegativeInfinity(scores[j]) ? 0f : MathF.Exp(scores[j] - max);
                    sum += scores[j];
                }

                for (int j = 0; j < keys; j++)
                {
                    if (scores[j] == 0f)
                    {
                        continue;
                    }

                    float p = scores[j] / sum;
                    var vj = v.Slice((j * width) + (hd * d), d);
                    for (int e = 0; e < d; e++)
                    {
                        oi[e] += p * vj[e];
                    }
                }
            }
        }
    }

    private void FeedForward(T5Sublayer layer, Span<float> h, Span<float> x, int rows)
    {
        var dense = layer.DenseReluDense!;
        int ff = Config.IntermediateSize;
        Norm(layer.LayerNorm, h, x, rows);
        var hidden = _ff.AsSpan(0, rows * ff);
        (dense.Wi ?? dense.Wi0!).Forward(x, rows, hidden);
        switch (dense.Activation)
        {
            case BertActivationKind.Gelu: Activations.Gelu(hidden, hidden); break;
            case BertActivationKind.GeluTanh: Activations.GeluTanh(hidden, hidden); break;
            case BertActivationKind.Relu: Activations.Relu(hidden, hidden); break;
            default: Activations.Silu(hidden, hidden); break;
        }

        if (dense.Wi1 is not null)
        {
            var gate = _gate.AsSpan(0, rows * ff);
            dense.Wi1.Forward(x, rows, gate);
            Elementwise.Multiply(hidden, gate, hidden);
        }

        dense.Wo.Apply(hidden, rows, h, accumulate: true);
    }

    private void Norm(RmsNorm norm, ReadOnlySpan<float> input, Span<float> output, int rows) =>
        Norms.RmsNorm(input, norm.Weight.Value.AsReadOnlySpan<float>(), output, rows, Config.HiddenSize, norm.Eps);

    private void Ensure(int rows)
    {
        int c = Config.HiddenSize, inner = Config.NumAttentionHeads * Config.DKv, ff = Config.IntermediateSize;
        if (_h.Length >= rows * c && _q.Length >= rows * inner && _ff.Length >= rows * ff)
        {
            return;
        }

        _h = new float[rows * c];
        _x = new float[rows * c];
        _q = new float[rows * inner];
        _k = new float[rows * inner];
        _v = new float[rows * inner];
        _att = new float[rows * inner];
        _ff = new float[rows * ff];
        _gate = new float[rows * ff];
    }

    private static float[] Filled(int count)
    {
        var mask = new float[count];
        Array.Fill(mask, 1f);
        return mask;
    }

    private Tensor ReadIds(Tensor ids, string name)
    {
        ArgumentNullException.ThrowIfNull(ids, name);
        if (ids.Rank != 2 || ids.DType is not (DType.I32 or DType.I64) || ids.Shape[1] == 0)
        {
            throw new ArgumentException($"t5: {name} must be an I32/I64 tensor [B, T] with T ≥ 1, got {ids.DType} {ids.Shape}.", name);
        }

        var values = BertLoading.ReadIds(ids);
        foreach (int id in values)
        {
            if ((uint)id >= (uint)VocabSize)
            {
                throw new ArgumentException($"t5: token id {id} in {name} is outside the vocabulary [0, {VocabSize}); use the model's own tokenizer.", name);
            }
        }

        return ids.DType == DType.I32 ? ids : Tensor.FromArray(values, ids.Shape);
    }
}
