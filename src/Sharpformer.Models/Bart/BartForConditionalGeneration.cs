// BART (Lewis et al. 2019), and through the same module tree MarianMT and mBART, with the module and tensor names of
// Hugging Face transformers' modeling_bart.py / modeling_marian.py / modeling_mbart.py: BartForConditionalGeneration.
// Model.Encoder.Layers[3].SelfAttn.QProj.Weight is the tensor "model.encoder.layers.3.self_attn.q_proj.weight".
// The three families differ only where their config says so:
//   bart    learned positions at offset 2, layernorm_embedding, post-LN layers;
//   marian  static sinusoidal positions from 0 (MarianMTModel.cs lays them out), no layernorm_embedding, post-LN;
//   mbart   learned positions at offset 2, layernorm_embedding, pre-LN layers and a final layer_norm per stack.
// Each has embeddings · √d_model when scale_embedding, queries scaled by head_dim^-0.5, one shared embedding table
// (model.shared = encoder/decoder embed_tokens = lm_head) and logits = h · sharedᵀ + final_logits_bias.
//
// One module tree, two forwards over the same parameters: Forward(Tensor ...) through Ops (autograd, dropout: training
// and the reference), and the fused ISeq2SeqLM path (Encode / DecodeLast: no tape, Linear.Apply, the attention kernel,
// cross-attention K/V computed once, a self-attention KvCache).
using Sharpformer.IO.Config;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Models.Bert;
using Sharpformer.Models.Marian;
using Sharpformer.NN;
using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels;
using Embedding = Sharpformer.NN.Embedding;

namespace Sharpformer.Models.Bart;

/// <summary>
/// Multi-head attention of BART and Marian (HF <c>BartAttention</c>): <c>q_proj</c>, <c>k_proj</c>, <c>v_proj</c>,
/// <c>out_proj</c> (C → C with bias), queries scaled by head_dim^-0.5, dropout on the probabilities.
/// </summary>
public sealed class BartAttention : Module
{
    /// <summary>Loads the four projections under <paramref name="vb"/> ("…self_attn" or "…encoder_attn").</summary>
    /// <param name="dim">C.</param>
    /// <param name="heads">H.</param>
    /// <param name="dropout">attention_dropout.</param>
    /// <param name="vb">Builder at this module's path.</param>
    /// <param name="dtype">The matrices' type: F32 (trainable), F16 or BF16 (inference only).</param>
    public BartAttention(int dim, int heads, float dropout, VarBuilder vb, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(vb);
        NumHeads = heads;
        HeadDim = dim / heads;
        Scale = 1f / MathF.Sqrt(HeadDim);
        KProj = RegisterModule("k_proj", new Linear(dim, dim, vb.Push("k_proj"), dtype: dtype));
        VProj = RegisterModule("v_proj", new Linear(dim, dim, vb.Push("v_proj"), dtype: dtype));
        QProj = RegisterModule("q_proj", new Linear(dim, dim, vb.Push("q_proj"), dtype: dtype));
        OutProj = RegisterModule("out_proj", new Linear(dim, dim, vb.Push("out_proj"), dtype: dtype));
        Dropout = RegisterModule("dropout", new Dropout(dropout));
    }

    /// <summary>H.</summary>
    public int NumHeads { get; }

    /// <summary>D = C / H.</summary>
    public int HeadDim { get; }

    /// <summary>head_dim^-0.5.</summary>
    public float Scale { get; }

    /// <summary>Key projection.</summary>
    public Linear KProj { get; }

    /// <summary>Value projection.</summary>
    public Linear VProj { get; }

    /// <summary>Query projection.</summary>
    public Linear QProj { get; }

    /// <summary>Output projection.</summary>
    public Linear OutProj { get; }

    /// <summary>Dropout on the probabilities (training only).</summary>
    public Dropout Dropout { get; }

    /// <summary>queries [B, Tq, C], keys/values from [B, Tk, C] → [B, Tq, C] (before the residual add).</summary>
    /// <param name="query">The attending states.</param>
    /// <param name="keyValue">The attended states (the same tensor for self-attention, the encoder output for cross-attention).</param>
    /// <param name="keyMask">[B, Tk] 1 = attend, 0 = padding; or null.</param>
    /// <param name="causal">Hide later keys (decoder self-attention).</param>
    /// <returns>The attention output.</returns>
    public Tensor Forward(Tensor query, Tensor keyValue, Tensor? keyMask, bool causal)
    {
        var q = Ops.SplitHeads(QProj.Forward(query), NumHeads);
        var k = Ops.SplitHeads(KProj.Forward(keyValue), NumHeads);
        var v = Ops.SplitHeads(VProj.Forward(keyValue), NumHeads);
        Tensor context;
        if (Dropout.Training && Dropout.P > 0f)
        {
            var probabilities = Ops.Softmax(Ops.Scale(Ops.MatMul(q, k, transposeB: true), Scale), causal, keyMask);
            context = Ops.MatMul(Dropout.Forward(probabilities), v);
        }
        else
        {
            context = Ops.ScaledDotProductAttention(q, k, v, causal, keyMask, Scale);
        }

        return OutProj.Forward(Ops.MergeHeads(context));
    }
}

/// <summary>
/// One encoder or decoder layer (HF <c>BartEncoderLayer</c> / <c>BartDecoderLayer</c>): self-attention, for the decoder
/// cross-attention (<c>encoder_attn</c>), and <c>fc1</c> → activation → <c>fc2</c>, each with a residual add and a
/// LayerNorm after it (BART, Marian) or before it (mBART).
/// </summary>
public sealed class BartLayer : Module
{
    /// <summary>Loads the layer under <paramref name="vb"/> ("model.encoder.layers.{i}" or "model.decoder.layers.{i}").</summary>
    /// <param name="config">The config.</param>
    /// <param name="decoder">A decoder layer (with cross-attention and the decoder's sizes).</param>
    /// <param name="vb">Builder at this module's path.</param>
    /// <param name="dtype">The matrices' type.</param>
    public BartLayer(BartConfig config, bool decoder, VarBuilder vb, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        int c = config.HiddenSize;
        int heads = decoder ? config.DecoderAttentionHeads : config.NumAttentionHeads;
        int ffn = decoder ? config.DecoderFfnDim : config.IntermediateSize;
        Activation = BertActivation.Parse(config.ActivationFunction, "activation_function");
        PreNorm = config.Family == "mbart";
        SelfAttn = RegisterModule("self_attn", new BartAttention(c, heads, (float)config.AttentionDropout, vb.Push("self_attn"), dtype));
        SelfAttnLayerNorm = RegisterModule("self_attn_layer_norm", new LayerNorm(c, 1e-5f, vb.Push("self_attn_layer_norm")));
        if (decoder)
        {
            EncoderAttn = RegisterModule("encoder_attn", new BartAttention(c, heads, (float)config.AttentionDropout, vb.Push("encoder_attn"), dtype));
            EncoderAttnLayerNorm = RegisterModule("encoder_attn_layer_norm", new LayerNorm(c, 1e-5f, vb.Push("encoder_attn_layer_norm")));
        }

        Fc1 = RegisterModule("fc1", new Linear(c, ffn, vb.Push("fc1"), dtype: dtype));
        Fc2 = RegisterModule("fc2", new Linear(ffn, c, vb.Push("fc2"), dtype: dtype));
        FinalLayerNorm = RegisterModule("final_layer_norm", new LayerNorm(c, 1e-5f, vb.Push("final_layer_norm")));
        Dropout = RegisterModule("dropout", new Dropout((float)config.Dropout));
        ActivationDropout = RegisterModule("activation_dropout", new Dropout((float)config.ActivationDropout));
    }

    /// <summary>The activation of <c>activation_function</c>.</summary>
    public BertActivationKind Activation { get; }

    /// <summary>True for mBART's pre-LN layers.</summary>
    public bool PreNorm { get; }

    /// <summary>Self-attention.</summary>
    public BartAttention SelfAttn { get; }

    /// <summary>LayerNorm of the self-attention sublayer.</summary>
    public LayerNorm SelfAttnLayerNorm { get; }

    /// <summary>Cross-attention over the encoder output (decoder layers only).</summary>
    public BartAttention? EncoderAttn { get; }

    /// <summary>LayerNorm of the cross-attention sublayer (decoder layers only).</summary>
    public LayerNorm? EncoderAttnLayerNorm { get; }

    /// <summary>Expansion C → ffn.</summary>
    public Linear Fc1 { get; }

    /// <summary>Contraction ffn → C.</summary>
    public Linear Fc2 { get; }

    /// <summary>LayerNorm of the feed-forward sublayer.</summary>
    public LayerNorm FinalLayerNorm { get; }

    /// <summary>Dropout on each sublayer's output (training only).</summary>
    public Dropout Dropout { get; }

    /// <summary>Dropout after the activation (training only).</summary>
    public Dropout ActivationDropout { get; }

    /// <summary>[B, T, C] → [B, T, C].</summary>
    /// <param name="hidden">The layer's input.</param>
    /// <param name="selfMask">Encoder: the source mask [B, S]; decoder: null (causal).</param>
    /// <param name="encoderOutput">Decoder: the encoder output [B, S, C]; encoder: null.</param>
    /// <param name="encoderMask">Decoder: the source mask [B, S] or null.</param>
    /// <returns>The layer's output.</returns>
    public Tensor Forward(Tensor hidden, Tensor? selfMask, Tensor? encoderOutput, Tensor? encoderMask)
    {
        bool causal = EncoderAttn is not null;
        hidden = Sublayer(hidden, SelfAttnLayerNorm, x => SelfAttn.Forward(x, x, selfMask, causal));
        if (EncoderAttn is not null && encoderOutput is not null)
        {
            hidden = Sublayer(hidden, EncoderAttnLayerNorm!, x => EncoderAttn.Forward(x, encoderOutput, encoderMask, causal: false));
        }

        return Sublayer(hidden, FinalLayerNorm, x => Fc2.Forward(ActivationDropout.Forward(BertActivation.Apply(Activation, Fc1.Forward(x)))));
    }

    private Tensor Sublayer(Tensor hidden, LayerNorm norm, Func<Tensor, Tensor> body)
    {
        if (PreNorm)
        {
            return Ops.Add(hidden, Dropout.Forward(body(norm.Forward(hidden))));
        }

        return norm.Forward(Ops.Add(hidden, Dropout.Forward(body(hidden))));
    }
}

/// <summary>
/// The encoder or decoder stack (HF <c>BartEncoder</c> / <c>BartDecoder</c>): token embeddings (the shared table,
/// · √d_model when scale_embedding), positions (learned at offset 2, or Marian's sinusoids), <c>layernorm_embedding</c>
/// (BART, mBART), the layers, and mBART's final <c>layer_norm</c>.
/// </summary>
public sealed class BartStack : Module
{
    /// <summary>Loads the stack under <paramref name="vb"/> ("model.encoder" / "model.decoder").</summary>
    /// <param name="config">The config.</param>
    /// <param name="decoder">The decoder stack.</param>
    /// <param name="shared">The shared token embeddings (<c>model.shared</c>).</param>
    /// <param name="vb">Builder at this module's path.</param>
    /// <param name="dtype">The matrices' type.</param>
    public BartStack(BartConfig config, bool decoder, Embedding shared, VarBuilder vb, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(shared);
        ArgumentNullException.ThrowIfNull(vb);
        int c = config.HiddenSize;
        EmbedTokens = shared;
        vb.MarkUsed("embed_tokens.weight");
        EmbedScale = config.ScaleEmbedding ? MathF.Sqrt(c) : 1f;
        if (config.Family == "marian")
        {
            // A fixed table, not a parameter: checkpoints may carry it (computed the same way), and it is never trained.
            vb.MarkUsed("embed_positions.weight");
            SinusoidalPositions = MarianMTModel.SinusoidalPositions(config.MaxPositionEmbeddings, c);
        }
        else
        {
            EmbedPositions = RegisterModule("embed_positions", new Embedding(config.MaxPositionEmbeddings + PositionOffset, c, vb.Push("embed_positions")));
            LayernormEmbedding = RegisterModule("layernorm_embedding", new LayerNorm(c, 1e-5f, vb.Push("layernorm_embedding")));
        }

        var layers = new BartLayer[decoder ? config.DecoderLayers : config.NumHiddenLayers];
        for (int i = 0; i < layers.Length; i++)
        {
            layers[i] = RegisterModule($"layers.{i}", new BartLayer(config, decoder, vb.Push("layers", i), dtype));
        }

        Layers = layers;
        if (config.Family == "mbart")
        {
            FinalNorm = RegisterModule("layer_norm", new LayerNorm(c, 1e-5f, vb.Push("layer_norm")));
        }

        Dropout = RegisterModule("dropout", new Dropout((float)config.Dropout));
        MaxPositions = config.MaxPositionEmbeddings;
    }

    /// <summary>BART's learned positions start at row 2 of the table (HF <c>BartLearnedPositionalEmbedding.offset</c>).</summary>
    public const int PositionOffset = 2;

    /// <summary>The shared token table (not a child: it belongs to <c>model.shared</c>).</summary>
    public Embedding EmbedTokens { get; }

    /// <summary>√d_model when scale_embedding, else 1.</summary>
    public float EmbedScale { get; }

    /// <summary>Learned positions [max_position_embeddings + 2, C] (BART, mBART), or null.</summary>
    public Embedding? EmbedPositions { get; }

    /// <summary>Marian's fixed sinusoids [max_position_embeddings, C], or null.</summary>
    public Tensor? SinusoidalPositions { get; }

    /// <summary>LayerNorm after the embeddings (BART, mBART), or null.</summary>
    public LayerNorm? LayernormEmbedding { get; }

    /// <summary>The layers.</summary>
    public IReadOnlyList<BartLayer> Layers { get; }

    /// <summary>mBART's final LayerNorm, or null.</summary>
    public LayerNorm? FinalNorm { get; }

    /// <summary>Dropout on the embeddings (training only).</summary>
    public Dropout Dropout { get; }

    /// <summary>The most positions the table covers.</summary>
    public int MaxPositions { get; }

    /// <summary>ids [B, T] → [B, T, C] through the module path.</summary>
    /// <param name="ids">[B, T] I32 token ids.</param>
    /// <param name="selfMask">Encoder: [B, T] source mask or null; decoder: null.</param>
    /// <param name="encoderOutput">Decoder: [B, S, C]; encoder: null.</param>
    /// <param name="encoderMask">Decoder: [B, S] or null.</param>
    /// <returns>The stack's output.</returns>
    public Tensor Forward(Tensor ids, Tensor? selfMask, Tensor? encoderOutput, Tensor? encoderMask)
    {
        int tokens = ids.Shape[1], c = EmbedTokens.Dim;
        var h = Ops.Scale(EmbedTokens.Forward(ids), EmbedScale);
        var positions = new int[tokens];
        for (int t = 0; t < tokens; t++)
        {
            positions[t] = t + (EmbedPositions is null ? 0 : PositionOffset);
        }

        var table = EmbedPositions is not null
            ? EmbedPositions.Forward(Tensor.FromArray(positions, new Shape(tokens)))
            : Tensor.FromSpan<float>(SinusoidalPositions!.AsReadOnlySpan<float>()[..(tokens * c)], new Shape(tokens, c));
        h = Ops.Add(h, table);
        if (LayernormEmbedding is not null)
        {
            h = LayernormEmbedding.Forward(h);
        }

        h = Dropout.Forward(h);
        foreach (var layer in Layers)
        {
            h = layer.Forward(h, selfMask, encoderOutput, encoderMask);
        }

        return FinalNorm is null ? h : FinalNorm.Forward(h);
    }

    /// <summary>Embeds rows for the fused path: out[r] = table[ids[r]] · scale + position(first + r % tokens), then layernorm_embedding.</summary>
    internal void EmbedRows(ReadOnlySpan<int> ids, int tokens, int firstPosition, Span<float> output)
    {
        int c = EmbedTokens.Dim, rows = ids.Length;
        for (int r = 0; r < rows; r++)
        {
            var row = output.Slice(r * c, c);
            EmbedTokens.CopyRow(ids[r], row);
            if (EmbedScale != 1f)
            {
                Elementwise.Scale(row, EmbedScale, row);
            }

            int position = firstPosition + (r % tokens);
            var table = EmbedPositions is not null
                ? EmbedPositions.Weight.Value.AsReadOnlySpan<float>().Slice((position + PositionOffset) * c, c)
                : SinusoidalPositions!.AsReadOnlySpan<float>().Slice(position * c, c);
            Elementwise.Add(row, table, row);
        }

        if (LayernormEmbedding is not null)
        {
            Norms.LayerNorm(output, LayernormEmbedding.Weight.Value.AsReadOnlySpan<float>(), LayernormEmbedding.Bias.Value.AsReadOnlySpan<float>(), output, rows, c, LayernormEmbedding.Eps);
        }
    }
}

/// <summary>The encoder-decoder body (HF <c>BartModel</c> / <c>MarianModel</c>): <c>shared</c>, <c>encoder</c>, <c>decoder</c>.</summary>
public sealed class BartModel : Module
{
    /// <summary>Loads the body under <paramref name="vb"/> ("model").</summary>
    /// <param name="config">The config.</param>
    /// <param name="vb">Builder at this module's path.</param>
    /// <param name="dtype">The matrices' type (the shared table included).</param>
    public BartModel(BartConfig config, VarBuilder vb, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        Shared = RegisterModule("shared", new Embedding(config.VocabSize, config.HiddenSize, vb.Push("shared"), dtype));
        Encoder = RegisterModule("encoder", new BartStack(config, decoder: false, Shared, vb.Push("encoder"), dtype));
        Decoder = RegisterModule("decoder", new BartStack(config, decoder: true, Shared, vb.Push("decoder"), dtype));
    }

    /// <summary>The token table shared by both stacks and the LM head.</summary>
    public Embedding Shared { get; }

    /// <summary>The encoder stack.</summary>
    public BartStack Encoder { get; }

    /// <summary>The decoder stack.</summary>
    public BartStack Decoder { get; }
}

/// <summary>
/// BART, MarianMT or mBART with its language-model head (HF <c>BartForConditionalGeneration</c> /
/// <c>MarianMTModel</c> / <c>MBartForConditionalGeneration</c>): the <see cref="BartModel"/> body (<c>model</c>),
/// <c>lm_head</c> tied to <c>model.shared.weight</c> and <c>final_logits_bias</c> [1, V]. Trains through
/// <see cref="Forward"/> (labels → loss) and generates through <see cref="ISeq2SeqLM"/> over the same parameters.
/// Not thread-safe: the fused path reuses its buffers.
/// </summary>
public sealed class BartForConditionalGeneration : Module, ITrainableSeq2SeqLM
{
    private float[] _h = [];
    private float[] _q = [];
    private float[] _k = [];
    private float[] _v = [];
    private float[] _att = [];
    private float[] _ff = [];
    private float[] _last = [];
    private float[] _normed = [];
    private int[] _positions = [];

    private BartForConditionalGeneration(BartConfig config, VarBuilder vb, DType dtype)
    {
        Config = config;
        Model = RegisterModule("model", new BartModel(config, vb.Push("model"), dtype));
        FinalLogitsBias = RegisterParameter("final_logits_bias", vb.GetParameter(new Shape(1, config.VocabSize), "final_logits_bias", Init.Zeros));
        vb.MarkUsed("lm_head.weight");
        LmHead = RegisterModule("lm_head", Linear.Tied(Model.Shared.Weight));
        SpecialTokens = new Seq2SeqSpecialTokens(config.DecoderStartTokenId, config.EosTokenIds[0], config.PadTokenId!.Value, config.ForcedBosTokenId, config.ForcedEosTokenId);
    }

    /// <summary>The validated config.json.</summary>
    public BartConfig Config { get; }

    /// <summary>The body.</summary>
    public BartModel Model { get; }

    /// <summary>The LM head [V, C], tied to <c>model.shared.weight</c>.</summary>
    public Linear LmHead { get; }

    /// <summary><c>final_logits_bias</c> [1, V], added to every logit row.</summary>
    public Parameter FinalLogitsBias { get; }

    /// <summary>What loading read and what the checkpoint lacked (null when built from a VarBuilder directly).</summary>
    public LoadReport? LoadReport { get; private set; }

    /// <inheritdoc/>
    public int VocabSize => Config.VocabSize;

    /// <inheritdoc/>
    public int MaxSourcePositions => Config.MaxPositionEmbeddings;

    /// <inheritdoc/>
    public int MaxTargetPositions => Config.MaxPositionEmbeddings;

    /// <inheritdoc/>
    public Seq2SeqSpecialTokens SpecialTokens { get; }

    /// <summary>Loads an HF folder of model_type bart, marian or mbart (config.json + safetensors), in evaluation mode.</summary>
    /// <param name="folder">The model folder.</param>
    /// <param name="dtype">The matrices' type: F32 (default, trainable), F16 or BF16 (inference only); compute stays F32.</param>
    /// <returns>The model.</returns>
    /// <exception cref="ArgumentException"><paramref name="dtype"/> is not F32, F16 or BF16.</exception>
    /// <exception cref="ModelConfigException">config.json is missing or invalid.</exception>
    /// <exception cref="InvalidDataException">config.json is not a bart/marian/mbart config.</exception>
    /// <exception cref="ModelLoadException">A tensor is missing or misshapen; the message names it.</exception>
    public static BartForConditionalGeneration FromPretrained(string folder, DType dtype = DType.F32)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        var config = ModelConfig.Load(folder) as BartConfig
            ?? throw new InvalidDataException($"{Path.Combine(folder, "config.json")}: model_type is not bart, marian or mbart; AutoModelForSeq2SeqLM picks the class for other types.");
        using var weights = SafeTensorsLoader.Open(folder);
        return FromWeights(config, weights, dtype);
    }

    /// <summary>Builds the model from a config and an open checkpoint, in evaluation mode.</summary>
    /// <param name="config">The config.</param>
    /// <param name="weights">The checkpoint; it may be disposed afterwards.</param>
    /// <param name="dtype">The matrices' type.</param>
    /// <returns>The model.</returns>
    public static BartForConditionalGeneration FromWeights(BartConfig config, ISafeTensorsSource weights, DType dtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(weights);
        var root = VarBuilder.FromSafeTensors(weights);
        var model = FromVarBuilder(config, root, dtype);
        model.LoadReport = root.Report();
        return model;
    }

    /// <summary>Builds the model through <paramref name="vb"/> (e.g. <see cref="VarBuilder.FromInit"/> for a random model), in evaluation mode.</summary>
    /// <param name="config">The config.</param>
    /// <param name="vb">The builder, rooted above <c>model.</c>.</param>
    /// <param name="dtype">The matrices' type.</param>
    /// <returns>The model.</returns>
    public static BartForConditionalGeneration FromVarBuilder(BartConfig config, VarBuilder vb, DType dtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        if (dtype is not (DType.F32 or DType.F16 or DType.BF16))
        {
            throw new ArgumentException($"{config.Family}: weight dtype {dtype} is not supported; use DType.F32, DType.F16 or DType.BF16.", nameof(dtype));
        }

        var model = new BartForConditionalGeneration(config, vb, dtype);
        model.Eval();
        return model;
    }

    /// <inheritdoc/>
    /// <remarks>logits = h · sharedᵀ + final_logits_bias.</remarks>
    /// <exception cref="ArgumentException">A shape disagrees, an id is outside the vocabulary, or a length exceeds max_position_embeddings.</exception>
    public Seq2SeqLMOutput Forward(Tensor inputIds, Tensor? attentionMask, Tensor decoderInputIds, Tensor? labels = null)
    {
        var source = ReadIds(inputIds, nameof(inputIds), MaxSourcePositions, "source");
        var target = ReadIds(decoderInputIds, nameof(decoderInputIds), MaxTargetPositions, "target");
        if (source.Shape[0] != target.Shape[0])
        {
            throw new ArgumentException($"{Config.Family}: input_ids has B={source.Shape[0]} rows but decoder_input_ids B={target.Shape[0]}; pass one target per source.", nameof(decoderInputIds));
        }

        var mask = attentionMask is null ? null : (attentionMask.DType == DType.F32 ? attentionMask : attentionMask.To(DType.F32));
        if (mask is not null && mask.Shape != source.Shape)
        {
            throw new ArgumentException($"{Config.Family}: attention_mask {mask.Shape} must have input_ids' shape {source.Shape}.", nameof(attentionMask));
        }

        var encoded = Model.Encoder.Forward(source, mask, null, null);
        var decoded = Model.Decoder.Forward(target, null, encoded, mask);
        var logits = Ops.Add(LmHead.Forward(decoded), Ops.Reshape(FinalLogitsBias.Value, VocabSize));
        Tensor? loss = null;
        if (labels is not null)
        {
            if (labels.Shape != target.Shape || labels.DType is not (DType.I32 or DType.I64))
            {
                throw new ArgumentException($"{Config.Family}: labels must be I32/I64 with decoder_input_ids' shape {target.Shape}, got {labels.DType} {labels.Shape}.", nameof(labels));
            }

            loss = Ops.CrossEntropy(logits, labels.DType == DType.I32 ? labels : Tensor.FromArray(BertLoading.ReadIds(labels), labels.Shape));
        }

        return new Seq2SeqLMOutput(logits, loss, encoded);
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">The source is longer than max_position_embeddings (the message names the limit), an id is outside the vocabulary, or the shapes disagree.</exception>
    public Seq2SeqState Encode(ReadOnlySpan<int> sourceIds, ReadOnlySpan<float> sourceMask, int batch, int targetCapacity)
    {
        int sourceLength = Seq2SeqChecks.Source(Config.Family, sourceIds, sourceMask, batch, VocabSize, MaxSourcePositions);
        Seq2SeqChecks.Capacity(Config.Family, targetCapacity, MaxTargetPositions);
        int c = Config.HiddenSize, rows = batch * sourceLength;
        var mask = sourceMask.IsEmpty ? Filled(rows) : sourceMask.ToArray();
        var h = RunEncoder(sourceIds, mask, batch, sourceLength);
        var decoderLayers = Model.Decoder.Layers;
        var cross = new KvCache(decoderLayers.Count, batch, sourceLength, c);
        for (int l = 0; l < decoderLayers.Count; l++)
        {
            decoderLayers[l].EncoderAttn!.KProj.Forward(h, rows, cross.Keys(l)[..(rows * c)]);
            decoderLayers[l].EncoderAttn!.VProj.Forward(h, rows, cross.Values(l)[..(rows * c)]);
        }

        cross.Advance(mask, sourceLength, new int[rows]);
        return new Seq2SeqState(new KvCache(decoderLayers.Count, batch, targetCapacity, c), cross, mask, sourceLength);
    }

    /// <summary>The encoder output [B, S, C] of the fused path (what <see cref="Encode"/> computes before the cross-attention K/V).</summary>
    /// <param name="sourceIds">[B, S] source ids.</param>
    /// <param name="sourceMask">Empty or [B, S].</param>
    /// <param name="batch">B.</param>
    /// <returns>The encoder's last hidden state.</returns>
    public Tensor EncoderOutput(ReadOnlySpan<int> sourceIds, ReadOnlySpan<float> sourceMask, int batch)
    {
        int sourceLength = Seq2SeqChecks.Source(Config.Family, sourceIds, sourceMask, batch, VocabSize, MaxSourcePositions);
        int c = Config.HiddenSize, rows = batch * sourceLength;
        var mask = sourceMask.IsEmpty ? Filled(rows) : sourceMask.ToArray();
        var h = RunEncoder(sourceIds, mask, batch, sourceLength);
        return Tensor.FromSpan<float>(h, new Shape(batch, sourceLength, c));
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">The ids do not form [B, T], an id is outside the vocabulary, the cache is full, or the logits span is too small.</exception>
    public void DecodeLast(ReadOnlySpan<int> targetIds, Seq2SeqState state, Span<float> lastLogits)
    {
        ArgumentNullException.ThrowIfNull(state);
        int batch = state.Batch, c = Config.HiddenSize, v = VocabSize;
        int tokens = Seq2SeqChecks.Target(Config.Family, targetIds, state, lastLogits, v);
        var cache = state.SelfAttention;
        int past = cache.Length, rows = batch * tokens, s = state.SourceLength;
        Ensure(rows, Math.Max(Config.IntermediateSize, Config.DecoderFfnDim));
        var positions = _positions.AsSpan(0, rows);
        cache.Advance(default, tokens, positions);
        var h = _h.AsSpan(0, rows * c);
        var decoder = Model.Decoder;
        decoder.EmbedRows(targetIds, tokens, past, h);
        var q = _q.AsSpan(0, rows * c);
        var att = _att.AsSpan(0, rows * c);
        for (int l = 0; l < decoder.Layers.Count; l++)
        {
            var layer = decoder.Layers[l];

            // Self-attention over the cache (new K/V appended at rows past..past+T).
            var x = Normed(layer, layer.SelfAttnLayerNorm, h, rows);
            var attn = layer.SelfAttn;
            attn.QProj.Forward(x, rows, q);
            attn.KProj.Forward(x, rows, _k.AsSpan(0, rows * c));
            attn.VProj.Forward(x, rows, _v.AsSpan(0, rows * c));
            var keys = cache.Keys(l);
            var values = cache.Values(l);
            for (int b = 0; b < batch; b++)
            {
                _k.AsSpan(b * tokens * c, tokens * c).CopyTo(keys.Slice(((b * cache.Capacity) + past) * c));
                _v.AsSpan(b * tokens * c, tokens * c).CopyTo(values.Slice(((b * cache.Capacity) + past) * c));
            }

            for (int b = 0; b < batch; b++)
            {
                var shape = new AttentionShape(1, attn.NumHeads, tokens, past + tokens, attn.HeadDim);
                Attention.Forward(shape, q.Slice(b * tokens * c, tokens * c), keys.Slice(b * cache.Capacity * c), values.Slice(b * cache.Capacity * c),
                    att.Slice(b * tokens * c, tokens * c), causal: true, keyPaddingMask: cache.Mask.Slice(b * cache.Capacity, past + tokens), scale: attn.Scale);
            }

            Residual(layer, layer.SelfAttnLayerNorm, attn.OutProj, att, h, rows);

            // Cross-attention through the K/V Encode computed.
            x = Normed(layer, layer.EncoderAttnLayerNorm!, h, rows);
            var crossAttn = layer.EncoderAttn!;
            crossAttn.QProj.Forward(x, rows, q);
            for (int b = 0; b < batch; b++)
            {
                var shape = new AttentionShape(1, crossAttn.NumHeads, tokens, s, crossAttn.HeadDim);
                Attention.Forward(shape, q.Slice(b * tokens * c, tokens * c), state.CrossAttention.Keys(l).Slice(b * s * c, s * c), state.CrossAttention.Values(l).Slice(b * s * c, s * c),
                    att.Slice(b * tokens * c, tokens * c), causal: false, keyPaddingMask: state.SourceMask.Slice(b * s, s), scale: crossAttn.Scale);
            }

            Residual(layer, layer.EncoderAttnLayerNorm!, crossAttn.OutProj, att, h, rows);
            FeedForward(layer, h, rows);
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

        if (decoder.FinalNorm is { } norm)
        {
            Norms.LayerNorm(last, norm.Weight.Value.AsReadOnlySpan<float>(), norm.Bias.Value.AsReadOnlySpan<float>(), last, batch, c, norm.Eps);
        }

        LmHead.Forward(last, batch, lastLogits);
        Elementwise.AddBroadcast(lastLogits[..(batch * v)], FinalLogitsBias.Value.AsReadOnlySpan<float>(), lastLogits, batch, v);
    }

    /// <summary>The encoder through the fused path; its output [B·S, C] is left in the hidden buffer.</summary>
    private Span<float> RunEncoder(ReadOnlySpan<int> sourceIds, float[] mask, int batch, int sourceLength)
    {
        int c = Config.HiddenSize, rows = batch * sourceLength;
        Ensure(rows, Math.Max(Config.IntermediateSize, Config.DecoderFfnDim));
        var h = _h.AsSpan(0, rows * c);
        var encoder = Model.Encoder;
        encoder.EmbedRows(sourceIds, sourceLength, 0, h);
        foreach (var layer in encoder.Layers)
        {
            SelfAttentionEncoder(layer, h, mask, batch, sourceLength);
            FeedForward(layer, h, rows);
        }

        if (encoder.FinalNorm is { } norm)
        {
            Norms.LayerNorm(h, norm.Weight.Value.AsReadOnlySpan<float>(), norm.Bias.Value.AsReadOnlySpan<float>(), h, rows, c, norm.Eps);
        }

        return h;
    }

    private void SelfAttentionEncoder(BartLayer layer, Span<float> h, float[] mask, int batch, int tokens)
    {
        int c = Config.HiddenSize, rows = batch * tokens;
        var x = Normed(layer, layer.SelfAttnLayerNorm, h, rows);
        var attn = layer.SelfAttn;
        var q = _q.AsSpan(0, rows * c);
        var k = _k.AsSpan(0, rows * c);
        var v = _v.AsSpan(0, rows * c);
        var att = _att.AsSpan(0, rows * c);
        attn.QProj.Forward(x, rows, q);
        attn.KProj.Forward(x, rows, k);
        attn.VProj.Forward(x, rows, v);
        var shape = new AttentionShape(batch, attn.NumHeads, tokens, tokens, attn.HeadDim);
        Attention.Forward(shape, q, k, v, att, causal: false, keyPaddingMask: mask, scale: attn.Scale);
        Residual(layer, layer.SelfAttnLayerNorm, attn.OutProj, att, h, rows);
    }

    private void FeedForward(BartLayer layer, Span<float> h, int rows)
    {
        int ffn = layer.Fc1.OutFeatures;
        var x = Normed(layer, layer.FinalLayerNorm, h, rows);
        var ff = _ff.AsSpan(0, rows * ffn);
        layer.Fc1.Forward(x, rows, ff);
        switch (layer.Activation)
        {
            case BertActivationKind.Gelu: Activations.Gelu(ff, ff); break;
            case BertActivationKind.GeluTanh: Activations.GeluTanh(ff, ff); break;
            case BertActivationKind.Relu: Activations.Relu(ff, ff); break;
            default: Activations.Silu(ff, ff); break;
        }

        Residual(layer, layer.FinalLayerNorm, layer.Fc2, ff, h, rows);
    }

    /// <summary>The sublayer's input: h itself (post-LN) or LN(h) in a scratch buffer (mBART's pre-LN).</summary>
    private ReadOnlySpan<float> Normed(BartLayer layer, LayerNorm norm, Span<float> h, int rows)
    {
        if (!layer.PreNorm)
        {
            return h;
        }

        int c = Config.HiddenSize;
        var x = _normed.AsSpan(0, rows * c);
        Norms.LayerNorm(h, norm.Weight.Value.AsReadOnlySpan<float>(), norm.Bias.Value.AsReadOnlySpan<float>(), x, rows, c, norm.Eps);
        return x;
    }

    /// <summary>h += projection(input), then (post-LN) h = LN(h).</summary>
    private void Residual(BartLayer layer, LayerNorm norm, Linear projection, ReadOnlySpan<float> input, Span<float> h, int rows)
    {
        projection.Apply(input, rows, h, accumulate: true);
        if (!layer.PreNorm)
        {
            Norms.LayerNorm(h, norm.Weight.Value.AsReadOnlySpan<float>(), norm.Bias.Value.AsReadOnlySpan<float>(), h, rows, Config.HiddenSize, norm.Eps);
        }
    }

    private void Ensure(int rows, int ffn)
    {
        int c = Config.HiddenSize;
        if (_h.Length < rows * c)
        {
            _h = new float[rows * c];
            _q = new float[rows * c];
            _k = new float[rows * c];
            _v = new float[rows * c];
            _att = new float[rows * c];
            _normed = new float[rows * c];
            _positions = new int[rows];
        }

        if (_ff.Length < rows * ffn)
        {
            _ff = new float[rows * ffn];
        }
    }

    private static float[] Filled(int count)
    {
        var mask = new float[count];
        Array.Fill(mask, 1f);
        return mask;
    }

    private Tensor ReadIds(Tensor ids, string name, int limit, string what)
    {
        ArgumentNullException.ThrowIfNull(ids, name);
        if (ids.Rank != 2 || ids.DType is not (DType.I32 or DType.I64) || ids.Shape[1] == 0)
        {
            throw new ArgumentException($"{Config.Family}: {name} must be an I32/I64 tensor [B, T] with T ≥ 1, got {ids.DType} {ids.Shape}.", name);
        }

        if (ids.Shape[1] > limit)
        {
            throw new ArgumentException($"{Config.Family}: the {what} has {ids.Shape[1]} tokens but the model's positions stop at max_position_embeddings = {limit}; truncate it (the pipelines' truncation option does so).", name);
        }

        var values = BertLoading.ReadIds(ids);
        foreach (int id in values)
        {
            if ((uint)id >= (uint)VocabSize)
            {
                throw new ArgumentException($"{Config.Family}: token id {id} in {name} is outside the vocabulary [0, {VocabSize}); use the model's own tokenizer.", name);
            }
        }

        return ids.DType == DType.I32 ? ids : Tensor.FromArray(values, ids.Shape);
    }
}
