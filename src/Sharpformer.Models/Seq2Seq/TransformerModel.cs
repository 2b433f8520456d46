// The original encoder-decoder Transformer (Vaswani et al. 2017, "Attention Is All You Need"): one embedding table
// shared by the source, the target and the output projection, embeddings scaled by √C plus the fixed sinusoidal
// table, post-LN layers (x = LayerNorm(x + Dropout(Sublayer(x)))), ReLU feed-forward blocks, a decoder whose layers
// run masked self-attention, cross-attention over the encoder output, then the feed-forward block.
// Tensor names follow BART's layout (one dense layer per projection): encoder.layers.3.self_attn.q_proj.weight,
// decoder.layers.0.encoder_attn.k_proj.bias, shared.weight. tests/fixtures/seq2seq/make_fixture.py maps
// torch.nn.Transformer's packed in_proj weights onto these names.
//
// One module tree, two forwards over the same parameters:
// - the module path (Forward over Tensors: Ops, autograd, dropout) trains, returns logits, the label-smoothed loss
//   and, on request, the cross-attention weights;
// - the inference path (ISeq2SeqLM: Encode once, then DecodeLast steps) runs the encoder once, computes each decoder
//   layer's cross-attention K/V from its output once, and appends target tokens to a self-attention KvCache; every
//   dense layer goes through Linear.Apply and attention through the fused kernel.
using System.Text.Json;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Models.Bert;
using Sharpformer.NN;
using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels;
using Embedding = Sharpformer.NN.Embedding;

namespace Sharpformer.Models.Seq2Seq;

/// <summary>What one module-path forward of <see cref="TransformerForConditionalGeneration"/> returns.</summary>
/// <param name="Logits">[B, T, V] next-token logits at every target position.</param>
/// <param name="Loss">With labels: the mean (label-smoothed) cross-entropy over labels ≠ −100, on the tape when training; else null.</param>
/// <param name="CrossAttentions">When asked: each decoder layer's cross-attention weights [B, H, T, S] (softmax rows over the source positions).</param>
public sealed record Seq2SeqOutput(Tensor Logits, Tensor? Loss, IReadOnlyList<Tensor>? CrossAttentions);

/// <summary>
/// Multi-head attention with separate projections (<c>q_proj</c>, <c>k_proj</c>, <c>v_proj</c>, <c>out_proj</c>, each
/// C → C with bias): queries [B, Tq, C] attend to keys/values [B, Tk, C] → [B, Tq, C]; scores scaled by 1/√D,
/// dropout on the probabilities. Self-attention passes the same tensor twice; cross-attention the encoder output.
/// </summary>
public sealed class TransformerAttention : Module
{
    /// <summary>Loads or creates the four projections under <paramref name="vb"/>.</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="vb">Builder at this module's path ("encoder.layers.0.self_attn").</param>
    public TransformerAttention(TransformerConfig config, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        int c = config.DModel;
        NumHeads = config.NumAttentionHeads;
        HeadDim = config.HeadDim;
        QProj = RegisterModule("q_proj", new Linear(c, c, vb.Push("q_proj")));
        KProj = RegisterModule("k_proj", new Linear(c, c, vb.Push("k_proj")));
        VProj = RegisterModule("v_proj", new Linear(c, c, vb.Push("v_proj")));
        OutProj = RegisterModule("out_proj", new Linear(c, c, vb.Push("out_proj")));
        Dropout = RegisterModule("dropout", new Dropout(config.AttentionDropout));
    }

    /// <summary>H.</summary>
    public int NumHeads { get; }

    /// <summary>D = C / H.</summary>
    public int HeadDim { get; }

    /// <summary>Query projection C → C.</summary>
    public Linear QProj { get; }

    /// <summary>Key projection C → C.</summary>
    public Linear KProj { get; }

    /// <summary>Value projection C → C.</summary>
    public Linear VProj { get; }

    /// <summary>Output projection C → C.</summary>
    public Linear OutProj { get; }

    /// <summary>Dropout on the attention probabilities (training only).</summary>
    public Dropout Dropout { get; }

    /// <summary>[B, Tq, C] queries over [B, Tk, C] keys/values → [B, Tq, C] (before the residual add).</summary>
    /// <param name="query">The query side.</param>
    /// <param name="keyValue">The key/value side (the query itself for self-attention).</param>
    /// <param name="causal">Hide later keys (decoder self-attention).</param>
    /// <param name="keyMask">[B, Tk] F32, 1 = key, 0 = padding; null for none.</param>
    /// <param name="outputAttentions">Whether to return the probabilities.</param>
    /// <param name="probabilities">[B, H, Tq, Tk] when requested, else null.</param>
    /// <returns>The attention output.</returns>
    public Tensor Forward(Tensor query, Tensor keyValue, bool causal, Tensor? keyMask, bool outputAttentions, out Tensor? probabilities)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(keyValue);
        var q = Ops.SplitHeads(QProj.Forward(query), NumHeads);
        var k = Ops.SplitHeads(KProj.Forward(keyValue), NumHeads);
        var v = Ops.SplitHeads(VProj.Forward(keyValue), NumHeads);
        float scale = 1f / MathF.Sqrt(HeadDim);
        Tensor context;
        probabilities = null;
        if (Dropout.Training && Dropout.P > 0f)
        {
            // Dropout on the probabilities needs them as a tensor: scores, masked softmax, dropout, ·V.
            var p = Ops.Softmax(Ops.Scale(Ops.MatMul(q, k, transposeB: true), scale), causal, keyMask);
            probabilities = outputAttentions ? p : null;
            context = Ops.MatMul(Dropout.Forward(p), v);
        }
        else if (outputAttentions)
        {
            context = Ops.ScaledDotProductAttention(q, k, v, out var weights, causal, keyMask, scale);
            probabilities = weights;
        }
        else
        {
            context = Ops.ScaledDotProductAttention(q, k, v, causal, keyMask, scale);
        }

        return OutProj.Forward(Ops.MergeHeads(context));
    }
}

/// <summary>The ReLU feed-forward block <c>fc1</c> (C → ffn), ReLU, dropout, <c>fc2</c> (ffn → C), owned by a layer.</summary>
internal static class TransformerFeedForward
{
    public static Tensor Forward(Linear fc1, Linear fc2, Dropout activationDropout, Tensor x) =>
        fc2.Forward(activationDropout.Forward(Ops.Relu(fc1.Forward(x))));
}

/// <summary>
/// One post-LN encoder layer: h = LN(h + Dropout(SelfAttn(h))); h = LN(h + Dropout(FFN(h))). Children
/// <c>self_attn</c>, <c>self_attn_layer_norm</c>, <c>fc1</c>, <c>fc2</c>, <c>final_layer_norm</c>.
/// </summary>
public sealed class TransformerEncoderLayer : Module
{
    /// <summary>Loads or creates the layer under <paramref name="vb"/> ("encoder.layers.{i}").</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="vb">Builder at this layer's path.</param>
    public TransformerEncoderLayer(TransformerConfig config, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        SelfAttn = RegisterModule("self_attn", new TransformerAttention(config, vb.Push("self_attn")));
        SelfAttnLayerNorm = RegisterModule("self_attn_layer_norm", new LayerNorm(config.DModel, config.LayerNormEps, vb.Push("self_attn_layer_norm")));
        Fc1 = RegisterModule("fc1", new Linear(config.DModel, config.FfnDim, vb.Push("fc1")));
        Fc2 = RegisterModule("fc2", new Linear(config.FfnDim, config.DModel, vb.Push("fc2")));
        FinalLayerNorm = RegisterModule("final_layer_norm", new LayerNorm(config.DModel, config.LayerNormEps, vb.Push("final_layer_norm")));
        Dropout = RegisterModule("dropout", new Dropout(config.Dropout));
        ActivationDropout = RegisterModule("activation_dropout", new Dropout(config.ActivationDropout));
    }

    /// <summary>Self-attention over the source.</summary>
    public TransformerAttention SelfAttn { get; }

    /// <summary>LayerNorm after the attention residual.</summary>
    public LayerNorm SelfAttnLayerNorm { get; }

    /// <summary>Feed-forward expansion C → ffn.</summary>
    public Linear Fc1 { get; }

    /// <summary>Feed-forward contraction ffn → C.</summary>
    public Linear Fc2 { get; }

    /// <summary>LayerNorm after the feed-forward residual.</summary>
    public LayerNorm FinalLayerNorm { get; }

    /// <summary>Dropout on each sub-layer output (training only).</summary>
    public Dropout Dropout { get; }

    /// <summary>Dropout after the ReLU (training only).</summary>
    public Dropout ActivationDropout { get; }

    /// <summary>[B, S, C] → [B, S, C].</summary>
    /// <param name="hidden">The layer's input.</param>
    /// <param name="sourceMask">[B, S] F32 (1 = token) or null.</param>
    /// <returns>The layer's output.</returns>
    public Tensor Forward(Tensor hidden, Tensor? sourceMask)
    {
        var attended = SelfAttn.Forward(hidden, hidden, causal: false, sourceMask, outputAttentions: false, out _);
        hidden = SelfAttnLayerNorm.Forward(Ops.Add(hidden, Dropout.Forward(attended)));
        var ff = TransformerFeedForward.Forward(Fc1, Fc2, ActivationDropout, hidden);
        return FinalLayerNorm.Forward(Ops.Add(hidden, Dropout.Forward(ff)));
    }
}

/// <summary>
/// One post-LN decoder layer: masked self-attention, cross-attention over the encoder output, feed-forward, each
/// followed by Dropout, the residual add and a LayerNorm. Children <c>self_attn</c>, <c>self_attn_layer_norm</c>,
/// <c>encoder_attn</c>, <c>encoder_attn_layer_norm</c>, <c>fc1</c>, <c>fc2</c>, <c>final_layer_norm</c>.
/// </summary>
public sealed class TransformerDecoderLayer : Module
{
    /// <summary>Loads or creates the layer under <paramref name="vb"/> ("decoder.layers.{i}").</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="vb">Builder at this layer's path.</param>
    public TransformerDecoderLayer(TransformerConfig config, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        SelfAttn = RegisterModule("self_attn", new TransformerAttention(config, vb.Push("self_attn")));
        SelfAttnLayerNorm = RegisterModule("self_attn_layer_norm", new LayerNorm(config.DModel, config.LayerNormEps, vb.Push("self_attn_layer_norm")));
        EncoderAttn = RegisterModule("encoder_attn", new TransformerAttention(config, vb.Push("encoder_attn")));
        EncoderAttnLayerNorm = RegisterModule("encoder_attn_layer_norm", new LayerNorm(config.DModel, config.LayerNormEps, vb.Push("encoder_attn_layer_norm")));
        Fc1 = RegisterModule("fc1", new Linear(config.DModel, config.FfnDim, vb.Push("fc1")));
        Fc2 = RegisterModule("fc2", new Linear(config.FfnDim, config.DModel, vb.Push("fc2")));
        FinalLayerNorm = RegisterModule("final_layer_norm", new LayerNorm(config.DModel, config.LayerNormEps, vb.Push("final_layer_norm")));
        Dropout = RegisterModule("dropout", new Dropout(config.Dropout));
        ActivationDropout = RegisterModule("activation_dropout", new Dropout(config.ActivationDropout));
    }

    /// <summary>Causal self-attention over the target.</summary>
    public TransformerAttention SelfAttn { get; }

    /// <summary>LayerNorm after the self-attention residual.</summary>
    public LayerNorm SelfAttnLayerNorm { get; }

    /// <summary>Cross-attention: target queries over the encoder output.</summary>
    public TransformerAttention EncoderAttn { get; }

    /// <summary>LayerNorm after the cross-attention residual.</summary>
    public LayerNorm EncoderAttnLayerNorm { get; }

    /// <summary>Feed-forward expansion C → ffn.</summary>
    public Linear Fc1 { get; }

    /// <summary>Feed-forward contraction ffn → C.</summary>
    public Linear Fc2 { get; }

    /// <summary>LayerNorm after the feed-forward residual.</summary>
    public LayerNorm FinalLayerNorm { get; }

    /// <summary>Dropout on each sub-layer output (training only).</summary>
    public Dropout Dropout { get; }

    /// <summary>Dropout after the ReLU (training only).</summary>
    public Dropout ActivationDropout { get; }

    /// <summary>[B, T, C] target states with the encoder output [B, S, C] → [B, T, C].</summary>
    /// <param name="hidden">The layer's input.</param>
    /// <param name="encoderOutput">The encoder's last hidden state.</param>
    /// <param name="sourceMask">[B, S] F32 (1 = token) or null.</param>
    /// <param name="outputAttentions">Whether to return the cross-attention weights.</param>
    /// <param name="crossAttention">[B, H, T, S] when requested, else null.</param>
    /// <returns>The layer's output.</returns>
    public Tensor Forward(Tensor hidden, Tensor encoderOutput, Tensor? sourceMask, bool outputAttentions, out Tensor? crossAttention)
    {
        var attended = SelfAttn.Forward(hidden, hidden, causal: true, null, outputAttentions: false, out _);
        hidden = SelfAttnLayerNorm.Forward(Ops.Add(hidden, Dropout.Forward(attended)));
        var crossed = EncoderAttn.Forward(hidden, encoderOutput, causal: false, sourceMask, outputAttentions, out crossAttention);
        hidden = EncoderAttnLayerNorm.Forward(Ops.Add(hidden, Dropout.Forward(crossed)));
        var ff = TransformerFeedForward.Forward(Fc1, Fc2, ActivationDropout, hidden);
        return FinalLayerNorm.Forward(Ops.Add(hidden, Dropout.Forward(ff)));
    }
}

/// <summary>A stack of layers registered as <c>layers.{i}</c> (the <c>encoder</c> and <c>decoder</c> children).</summary>
/// <typeparam name="TLayer">The layer type.</typeparam>
public sealed class TransformerStack<TLayer> : Module
    where TLayer : Module
{
    /// <summary>Registers <paramref name="layers"/> as <c>layers.0</c> … <c>layers.{n−1}</c>.</summary>
    /// <param name="layers">The layers, in order.</param>
    public TransformerStack(IReadOnlyList<TLayer> layers)
    {
        ArgumentNullException.ThrowIfNull(layers);
        for (int i = 0; i < layers.Count; i++)
        {
            RegisterModule($"layers.{i}", layers[i]);
        }

        Layers = layers;
    }

    /// <summary>The layers, in order.</summary>
    public IReadOnlyList<TLayer> Layers { get; }
}

/// <summary>
/// The original Transformer for translation (<c>model_type</c> "sharpformer-transformer"): <c>shared</c> [V, C]
/// embeds source and target (scaled by √C, plus the sinusoidal table) and is the output projection
/// (<c>lm_head</c>, tied, no bias); <c>encoder.layers.{i}</c> and <c>decoder.layers.{i}</c> are post-LN layers.
/// Trains through <see cref="Forward"/> (labels → label-smoothed loss) and generates through <see cref="ISeq2SeqLM"/>
/// over the same parameters. Not thread-safe: the inference path reuses its work buffers.
/// </summary>
public sealed class TransformerForConditionalGeneration : Module, ICrossAttentionSeq2SeqLM
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull };
    private readonly float _embedScale;
    private float[] _hidden = [];
    private float[] _q = [];
    private float[] _k = [];
    private float[] _v = [];
    private float[] _attn = [];
    private float[] _ff = [];
    private int[] _positions = [];

    private TransformerForConditionalGeneration(TransformerConfig config, VarBuilder vb)
    {
        Config = config.Validate();
        _embedScale = MathF.Sqrt(config.DModel);
        Shared = RegisterModule("shared", new Embedding(config.VocabSize, config.DModel, vb.Push("shared"), DType.F32, Init.Normal(1f / MathF.Sqrt(config.DModel))));
        Positions = RegisterModule("embed_positions", new SinusoidalPositionalEncoding(config.MaxPositionEmbeddings, config.DModel));
        EmbedDropout = RegisterModule("dropout", new Dropout(config.Dropout));
        var encoder = new TransformerEncoderLayer[config.EncoderLayers];
        for (int i = 0; i < encoder.Length; i++)
        {
            encoder[i] = new TransformerEncoderLayer(config, vb.Push("encoder.layers", i));
        }

        var decoder = new TransformerDecoderLayer[config.DecoderLayers];
        for (int i = 0; i < decoder.Length; i++)
        {
            decoder[i] = new TransformerDecoderLayer(config, vb.Push("decoder.layers", i));
        }

        Encoder = RegisterModule("encoder", new TransformerStack<TransformerEncoderLayer>(encoder));
        Decoder = RegisterModule("decoder", new TransformerStack<TransformerDecoderLayer>(decoder));
        LmHead = RegisterModule("lm_head", Linear.Tied(Shared.Weight));
        SpecialTokens = new Seq2SeqSpecialTokens(config.DecoderStartTokenId, config.EosTokenId, config.PadTokenId);
    }

    /// <summary>The validated configuration.</summary>
    public TransformerConfig Config { get; }

    /// <summary>The embedding table [V, C] shared by source, target and output projection.</summary>
    public Embedding Shared { get; }

    /// <summary>The fixed sinusoidal table (no parameters).</summary>
    public SinusoidalPositionalEncoding Positions { get; }

    /// <summary>Dropout on the summed embeddings (training only).</summary>
    public Dropout EmbedDropout { get; }

    /// <summary>The encoder layers (<c>encoder.layers.{i}</c>).</summary>
    public TransformerStack<TransformerEncoderLayer> Encoder { get; }

    /// <summary>The decoder layers (<c>decoder.layers.{i}</c>).</summary>
    public TransformerStack<TransformerDecoderLayer> Decoder { get; }

    /// <summary>The output projection, tied to <c>shared.weight</c> (listed and saved once, under that name).</summary>
    public Linear LmHead { get; }

    /// <summary>What loading read, lacked and left unused (null when built from a config).</summary>
    public LoadReport? LoadReport { get; private set; }

    /// <inheritdoc/>
    public int VocabSize => Config.VocabSize;

    /// <inheritdoc/>
    public int MaxSourcePositions => Config.MaxPositionEmbeddings;

    /// <inheritdoc/>
    public int MaxTargetPositions => Config.MaxPositionEmbeddings;

    /// <inheritdoc/>
    public Seq2SeqSpecialTokens SpecialTokens { get; }

    /// <summary>
    /// When set, <see cref="DecodeLast"/> keeps each decoder layer's cross-attention weights of the step it ran in
    /// <see cref="LastCrossAttentions"/> ([B, H, T, S] per layer: softmax rows over the source positions). Off by
    /// default: keeping them disables the one-query decoding kernel.
    /// </summary>
    public bool OutputCrossAttentions { get; set; }

    /// <summary>The cross-attention weights of the last <see cref="DecodeLast"/> call when <see cref="OutputCrossAttentions"/> is set; else null.</summary>
    public IReadOnlyList<Tensor>? LastCrossAttentions { get; private set; }

    /// <summary>A fresh model for <paramref name="config"/>, seeded: dense weights normal(0, init_std), shared normal(0, C^−½), biases 0, LayerNorms 1/0; in training mode.</summary>
    /// <param name="config">The configuration.</param>
    /// <param name="seed">The initialisation seed.</param>
    /// <returns>The model.</returns>
    /// <exception cref="IO.Config.ModelConfigException">The config is invalid.</exception>
    public static TransformerForConditionalGeneration FromConfig(TransformerConfig config, int seed)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new TransformerForConditionalGeneration(config, VarBuilder.FromInit(seed, config.InitStd));
    }

    /// <summary>Loads a folder written by <see cref="SavePretrained"/> (config.json + model.safetensors), in evaluation mode.</summary>
    /// <param name="folder">The model folder.</param>
    /// <returns>The model.</returns>
    /// <exception cref="IO.Config.ModelConfigException">config.json is missing or invalid.</exception>
    /// <exception cref="ModelLoadException">A tensor is missing or misshapen; the message names it.</exception>
    public static TransformerForConditionalGeneration FromPretrained(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        var config = TransformerConfig.Load(folder);
        using var weights = SafeTensorsLoader.Open(folder);
        var root = VarBuilder.FromSafeTensors(weights);
        root.MarkUsed("lm_head.weight");
        var model = new TransformerForConditionalGeneration(config, root);
        model.LoadReport = root.Report();
        model.Eval();
        return model;
    }

    /// <summary>Writes config.json and model.safetensors (tensor names = member paths, the tied head once as shared.weight) into <paramref name="folder"/>.</summary>
    /// <param name="folder">The folder (created when missing).</param>
    public void SavePretrained(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), JsonSerializer.Serialize(Config.ToJson(), Indented));
        SaveSafetensors(Path.Combine(folder, "model.safetensors"), new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>
    /// HF's <c>shift_tokens_right</c>: labels [B, T] → decoder inputs [B, T] = decoder start token, then labels[:, :−1]
    /// with −100 replaced by the pad id (teacher forcing).
    /// </summary>
    /// <param name="labels">[B, T] target ids (−100 where ignored).</param>
    /// <param name="batch">B.</param>
    /// <param name="decoderStartTokenId">The first decoder input.</param>
    /// <param name="padTokenId">What −100 becomes.</param>
    /// <returns>[B, T] decoder input ids.</returns>
    /// <exception cref="ArgumentException">The labels do not form B rows.</exception>
    public static int[] ShiftTokensRight(ReadOnlySpan<int> labels, int batch, int decoderStartTokenId, int padTokenId)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        if (labels.Length == 0 || labels.Length % batch != 0)
        {
            throw new ArgumentException($"ShiftTokensRight: {labels.Length} labels do not form [B={batch}, T] with T ≥ 1.", nameof(labels));
        }

        int t = labels.Length / batch;
        var shifted = new int[labels.Length];
        for (int b = 0; b < batch; b++)
        {
            shifted[b * t] = decoderStartTokenId;
            for (int i = 1; i < t; i++)
            {
                int label = labels[(b * t) + i - 1];
                shifted[(b * t) + i] = label == -100 ? padTokenId : label;
            }
        }

        return shifted;
    }

    /// <summary>
    /// The module path (autograd, dropout in training mode): source ids [B, S] and decoder inputs [B, T] → logits
    /// [B, T, V]; with <paramref name="labels"/> [B, T] also the mean cross-entropy over labels ≠ −100, smoothed by
    /// <paramref name="labelSmoothing"/> ε as PyTorch's <c>label_smoothing</c> (target (1 − ε)·onehot + ε/V).
    /// </summary>
    /// <param name="sourceIds">[B, S] I32/I64, right-padded.</param>
    /// <param name="sourceMask">[B, S] (1 = token, 0 = padding), or null: every source token is real.</param>
    /// <param name="decoderInputIds">[B, T] I32/I64, starting with the decoder start token (see <see cref="ShiftTokensRight"/>).</param>
    /// <param name="labels">[B, T] I32/I64 target ids (−100 where not scored), or null.</param>
    /// <param name="labelSmoothing">ε in [0, 1] (the paper used 0.1).</param>
    /// <param name="outputAttentions">Also return each decoder layer's cross-attention weights.</param>
    /// <returns>Logits, the loss when labels were given, and the weights when asked.</returns>
    /// <exception cref="ArgumentException">A shape is wrong, a length exceeds max_position_embeddings, or an id is outside the vocabulary.</exception>
    public Seq2SeqOutput Forward(Tensor sourceIds, Tensor? sourceMask, Tensor decoderInputIds, Tensor? labels = null, float labelSmoothing = 0f, bool outputAttentions = false)
    {
        CheckIds(sourceIds, nameof(sourceIds));
        CheckIds(decoderInputIds, nameof(decoderInputIds));
        int batch = sourceIds.Shape[0];
        if (decoderInputIds.Shape[0] != batch)
        {
            throw new ArgumentException($"Transformer: source_ids has B={batch} rows but decoder_input_ids {decoderInputIds.Shape[0]}; pass one target row per source row.", nameof(decoderInputIds));
        }

        if (sourceMask is not null && sourceMask.Shape != sourceIds.Shape)
        {
            throw new ArgumentException($"Transformer: the source mask {sourceMask.Shape} must have source_ids' shape {sourceIds.Shape}.", nameof(sourceMask));
        }

        if (labels is not null && labels.Shape != decoderInputIds.Shape)
        {
            throw new ArgumentException($"Transformer: labels {labels.Shape} must have decoder_input_ids' shape {decoderInputIds.Shape}.", nameof(labels));
        }

        var mask = sourceMask is null ? null : (sourceMask.DType == DType.F32 ? sourceMask : sourceMask.To(DType.F32));
        var h = Embed(sourceIds);
        foreach (var layer in Encoder.Layers)
        {
            h = layer.Forward(h, mask);
        }

        var encoderOutput = h;
        var crossAttentions = outputAttentions ? new List<Tensor>() : null;
        var y = Embed(decoderInputIds);
        foreach (var layer in Decoder.Layers)
        {
            y = layer.Forward(y, encoderOutput, mask, outputAttentions, out var cross);
            if (cross is not null)
            {
                crossAttentions!.Add(cross);
            }
        }

        var logits = LmHead.Forward(y);
        var loss = labels is null ? null : Ops.CrossEntropy(logits, labels, -100, labelSmoothing);
        return new Seq2SeqOutput(logits, loss, crossAttentions);
    }

    /// <inheritdoc/>
    public int CrossAttentionHeads => Config.NumAttentionHeads;

    /// <inheritdoc/>
    public IReadOnlyList<float[]> CrossAttentionWeights(ReadOnlySpan<int> sourceIds, ReadOnlySpan<int> decoderInputIds)
    {
        if (sourceIds.IsEmpty || decoderInputIds.IsEmpty)
        {
            throw new ArgumentException("CrossAttentionWeights needs at least one source id and one decoder input id (the decoder start token).");
        }

        using var noGrad = Autograd.NoGrad();
        var output = Forward(
            Tensor.FromSpan(sourceIds, new Shape(1, sourceIds.Length)),
            null,
            Tensor.FromSpan(decoderInputIds, new Shape(1, decoderInputIds.Length)),
            outputAttentions: true);
        return [.. output.CrossAttentions!.Select(a => a.ToArray<float>())];
    }

    /// <inheritdoc/>
    public Seq2SeqState Encode(ReadOnlySpan<int> sourceIds, ReadOnlySpan<float> sourceMask, int batch, int targetCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(targetCapacity);
        if (sourceIds.Length == 0 || sourceIds.Length % batch != 0)
        {
            throw new ArgumentException($"Transformer.Encode: {sourceIds.Length} source ids do not form [B={batch}, S] with S ≥ 1.", nameof(sourceIds));
        }

        int s = sourceIds.Length / batch, c = Config.DModel, rows = batch * s;
        if (s > MaxSourcePositions)
        {
            throw new ArgumentException($"Transformer.Encode: the source has {s} tokens, more than max_position_embeddings {MaxSourcePositions}; truncate it.", nameof(sourceIds));
        }

        if (targetCapacity > MaxTargetPositions)
        {
            throw new ArgumentOutOfRangeException(nameof(targetCapacity), targetCapacity, $"Transformer.Encode: the target capacity exceeds max_position_embeddings {MaxTargetPositions}.");
        }

        if (!sourceMask.IsEmpty && sourceMask.Length != sourceIds.Length)
        {
            throw new ArgumentException($"Transformer.Encode: the source mask has {sourceMask.Length} values, [B={batch}, S={s}] needs {sourceIds.Length}.", nameof(sourceMask));
        }

        CheckVocabulary(sourceIds, nameof(sourceIds));
        var mask = new float[rows];
        if (sourceMask.IsEmpty)
        {
            Array.Fill(mask, 1f);
        }
        else
        {
            sourceMask.CopyTo(mask);
        }

        EnsureBuffers(rows);
        var h = _hidden.AsSpan(0, rows * c);
        for (int b = 0; b < batch; b++)
        {
            for (int t = 0; t < s; t++)
            {
                EmbedRow(sourceIds[(b * s) + t], t, h.Slice(((b * s) + t) * c, c));
            }
        }

        var q = _q.AsSpan(0, rows * c);
        var k = _k.AsSpan(0, rows * c);
        var v = _v.AsSpan(0, rows * c);
        var att = _attn.AsSpan(0, rows * c);
        var shape = new AttentionShape(batch, Config.NumAttentionHeads, s, s, Config.HeadDim);
        foreach (var layer in Encoder.Layers)
        {
            layer.SelfAttn.QProj.Apply(h, rows, q, accumulate: false);
            layer.SelfAttn.KProj.Apply(h, rows, k, accumulate: false);
            layer.SelfAttn.VProj.Apply(h, rows, v, accumulate: false);
            Attention.Forward(shape, q, k, v, att, causal: false, keyPaddingMask: mask);
            layer.SelfAttn.OutProj.Apply(att, rows, h, accumulate: true);
            Norm(layer.SelfAttnLayerNorm, h, rows);
            FeedForward(layer.Fc1, layer.Fc2, h, rows);
            Norm(layer.FinalLayerNorm, h, rows);
        }

        // Each decoder layer's cross-attention keys and values, computed from the encoder output once.
        var self = new KvCache(Config.DecoderLayers, batch, targetCapacity, c);
        var cross = new KvCache(Config.DecoderLayers, batch, s, c);
        for (int l = 0; l < Decoder.Layers.Count; l++)
        {
            var layer = Decoder.Layers[l];
            layer.EncoderAttn.KProj.Apply(h, rows, cross.Keys(l), accumulate: false);
            layer.EncoderAttn.VProj.Apply(h, rows, cross.Values(l), accumulate: false);
        }

        cross.Advance(mask, s, new int[rows]);
        return new Seq2SeqState(self, cross, mask, s);
    }

    /// <inheritdoc/>
    public void DecodeLast(ReadOnlySpan<int> targetIds, Seq2SeqState state, Span<float> lastLogits)
    {
        ArgumentNullException.ThrowIfNull(state);
        int batch = state.Batch, c = Config.DModel, heads = Config.NumAttentionHeads, d = Config.HeadDim;
        if (targetIds.Length == 0 || targetIds.Length % batch != 0)
        {
            throw new ArgumentException($"Transformer.DecodeLast: {targetIds.Length} target ids do not form [B={batch}, T] with T ≥ 1.", nameof(targetIds));
        }

        if (state.SelfAttention.Layers != Config.DecoderLayers || state.SelfAttention.Width != c)
        {
            throw new ArgumentException("Transformer.DecodeLast: the state was not made by this model's Encode.", nameof(state));
        }

        if (lastLogits.Length < batch * VocabSize)
        {
            throw new ArgumentException($"Transformer.DecodeLast: the logits span holds {lastLogits.Length} values, [B={batch}, V={VocabSize}] needs {batch * VocabSize}.", nameof(lastLogits));
        }

        CheckVocabulary(targetIds, nameof(targetIds));
        int tokens = targetIds.Length / batch, rows = batch * tokens, s = state.SourceLength;
        var cache = state.SelfAttention;
        int past = cache.Length;
        EnsureBuffers(rows);
        var positions = _positions.AsSpan(0, rows);
        cache.Advance(default, tokens, positions);
        var h = _hidden.AsSpan(0, rows * c);
        for (int r = 0; r < rows; r++)
        {
            EmbedRow(targetIds[r], positions[r], h.Slice(r * c, c));
        }

        var q = _q.AsSpan(0, rows * c);
        var k = _k.AsSpan(0, rows * c);
        var v = _v.AsSpan(0, rows * c);
        var att = _attn.AsSpan(0, rows * c);
        var crossAttentions = OutputCrossAttentions ? new List<Tensor>() : null;
        var crossShape = new AttentionShape(batch, heads, tokens, s, d);
        for (int l = 0; l < Decoder.Layers.Count; l++)
        {
            var layer = Decoder.Layers[l];

            // Masked self-attention: the new K/V rows go into the cache at past … past + T − 1.
            layer.SelfAttn.QProj.Apply(h, rows, q, accumulate: false);
            layer.SelfAttn.KProj.Apply(h, rows, k, accumulate: false);
            layer.SelfAttn.VProj.Apply(h, rows, v, accumulate: false);
            var cacheK = cache.Keys(l);
            var cacheV = cache.Values(l);
            for (int b = 0; b < batch; b++)
            {
                int dst = ((b * cache.Capacity) + past) * c;
                k.Slice(b * tokens * c, tokens * c).CopyTo(cacheK.Slice(dst, tokens * c));
                v.Slice(b * tokens * c, tokens * c).CopyTo(cacheV.Slice(dst, tokens * c));
            }

            int keys = past + tokens;
            for (int b = 0; b < batch; b++)
            {
                // One call per sequence: the cache's batch stride is Tmax rows, not Tk.
                Attention.Forward(
                    new AttentionShape(1, heads, tokens, keys, d),
                    q.Slice(b * tokens * c),
                    cacheK.Slice(b * cache.Capacity * c),
                    cacheV.Slice(b * cache.Capacity * c),
                    att.Slice(b * tokens * c, tokens * c),
                    causal: true,
                    keyPaddingMask: cache.Mask.Slice(b * cache.Capacity, keys));
            }

            layer.SelfAttn.OutProj.Apply(att, rows, h, accumulate: true);
            Norm(layer.SelfAttnLayerNorm, h, rows);

            // Cross-attention over the cached encoder keys and values (S rows per sequence).
            layer.EncoderAttn.QProj.Apply(h, rows, q, accumulate: false);
            float[]? probabilities = crossAttentions is null ? null : new float[batch * heads * tokens * s];
            Attention.Forward(crossShape, q, state.CrossAttention.Keys(l), state.CrossAttention.Values(l), att,
                causal: false, keyPaddingMask: state.SourceMask, probabilities: probabilities);
            if (probabilities is not null)
            {
                crossAttentions!.Add(Tensor.FromArray(probabilities, new Shape(batch, heads, tokens, s)));
            }

            layer.EncoderAttn.OutProj.Apply(att, rows, h, accumulate: true);
            Norm(layer.EncoderAttnLayerNorm, h, rows);

            FeedForward(layer.Fc1, layer.Fc2, h, rows);
            Norm(layer.FinalLayerNorm, h, rows);
        }

        LastCrossAttentions = crossAttentions;
        for (int b = 0; b < batch; b++)
        {
            var last = h.Slice(((b * tokens) + tokens - 1) * c, c);
            LmHead.Apply(last, 1, lastLogits.Slice(b * VocabSize, VocabSize), accumulate: false);
        }
    }

    /// <summary>ids [B, T] → √C · shared[ids] + PE[0 … T − 1], then dropout (module path).</summary>
    private Tensor Embed(Tensor ids)
    {
        int t = ids.Shape[1];
        var tokens = Ops.Scale(Shared.Forward(ids), _embedScale);
        return EmbedDropout.Forward(Ops.Add(tokens, Positions.Forward(t)));
    }

    /// <summary>One embedded row of the inference path: √C · shared[id] + PE[position].</summary>
    private void EmbedRow(int id, int position, Span<float> row)
    {
        Shared.CopyRow(id, row);
        var pe = Positions.Table.AsReadOnlySpan<float>().Slice(position * Config.DModel, Config.DModel);
        for (int i = 0; i < row.Length; i++)
        {
            row[i] = (row[i] * _embedScale) + pe[i];
        }
    }

    /// <summary>h [N, C] ← LayerNorm(h) in place.</summary>
    private static void Norm(LayerNorm norm, Span<float> h, int rows) =>
        Norms.LayerNorm(h, norm.Weight.Value.AsReadOnlySpan<float>(), norm.Bias.Value.AsReadOnlySpan<float>(), h, rows, norm.Dim, norm.Eps);

    /// <summary>h [N, C] += fc2(relu(fc1(h))).</summary>
    private void FeedForward(Linear fc1, Linear fc2, Span<float> h, int rows)
    {
        var ff = _ff.AsSpan(0, rows * Config.FfnDim);
        fc1.Apply(h, rows, ff, accumulate: false);
        Activations.Relu(ff, ff);
        fc2.Apply(ff, rows, h, accumulate: true);
    }

    private void EnsureBuffers(int rows)
    {
        int c = Config.DModel;
        if (_hidden.Length >= rows * c)
        {
            return;
        }

        _hidden = new float[rows * c];
        _q = new float[rows * c];
        _k = new float[rows * c];
        _v = new float[rows * c];
        _attn = new float[rows * c];
        _ff = new float[rows * Config.FfnDim];
        _positions = new int[rows];
    }

    private void CheckIds(Tensor ids, string name)
    {
        ArgumentNullException.ThrowIfNull(ids, name);
        if (ids.Rank != 2 || ids.DType is not (DType.I32 or DType.I64) || ids.Shape[1] == 0)
        {
            throw new ArgumentException($"Transformer: {name} must be an I32/I64 tensor [B, T] with T ≥ 1, got {ids.DType} {ids.Shape}.", name);
        }

        if (ids.Shape[1] > Config.MaxPositionEmbeddings)
        {
            throw new ArgumentException($"Transformer: {name} has {ids.Shape[1]} positions, more than max_position_embeddings {Config.MaxPositionEmbeddings}; truncate it.", name);
        }

        CheckVocabulary(BertLoading.ReadIds(ids), name);
    }

    private void CheckVocabulary(ReadOnlySpan<int> ids, string name)
    {
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)Config.VocabSize)
            {
                throw new ArgumentException($"Transformer: token id {id} in {name} is outside the vocabulary [0, {Config.VocabSize}); use the model's own tokenizer.", name);
            }
        }
    }
}
