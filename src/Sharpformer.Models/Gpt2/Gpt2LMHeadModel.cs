// GPT-2 (Radford et al. 2019) with the module and tensor names of Hugging Face transformers' modeling_gpt2.py, so a
// checkpoint loads with no rename table: Gpt2LMHeadModel.Transformer.H[3].Attn.CAttn.Weight is the tensor
// "transformer.h.3.attn.c_attn.weight". HF's Conv1D keeps its weight [In, Out]; our dense layer holds [Out, In] (the
// layout the GEMV streams) and the parameter says the checkpoint is transposed (Linear.Conv1D), so StateDict and
// SaveSafetensors write HF's layout back.
//
// One module tree, two forwards over the same parameters:
// - the module path (Ops, autograd, dropout): training, and the reference the fast path is tested against;
// - the fused inference path (Gpt2Model.Run): no tape, reused buffers, a KV cache, each dense layer through
//   Linear.Apply (GEMV for decode steps, packed GEMM or widened F16/BF16 blocks for prefills).
// Forward(Tensor ...) picks the fast path whenever no gradient would be recorded (the rule BertModel.UsesFastPath
// uses); Forward(int[] ...) and ForwardLast (generation) are always the fast path.
using System.Diagnostics;
using Sharpformer.IO.Config;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Models.Bert;
using Sharpformer.NN;
using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels;
using Embedding = Sharpformer.NN.Embedding;

namespace Sharpformer.Models.Gpt2;

/// <summary>What one GPT-2 forward returns.</summary>
/// <param name="Logits">[B, T, V] next-token logits (from <see cref="Gpt2LMHeadModel"/>), or the last hidden state [B, T, C] (from <see cref="Gpt2Model"/>).</param>
/// <param name="Loss">With labels: the mean next-token cross-entropy (a scalar, on the tape when training); else null.</param>
/// <param name="HiddenStates">When asked: the embeddings and the input of every later block, then the final ln_f output (n_layer + 1 tensors [B, T, C]), as HF returns them.</param>
/// <param name="Attentions">When asked: every layer's attention weights [B, H, T, Tk].</param>
public sealed record Gpt2Output(Tensor Logits, Tensor? Loss, IReadOnlyList<Tensor>? HiddenStates, IReadOnlyList<Tensor>? Attentions);

/// <summary>
/// GPT-2's causal self-attention (HF <c>GPT2Attention</c>): <c>c_attn</c> (Conv1D C → 3C: Q, K, V side by side),
/// causal scaled dot-product attention over H heads, <c>c_proj</c> (Conv1D C → C), dropout on the probabilities
/// (<c>attn_dropout</c>) and on the output (<c>resid_dropout</c>): [B, T, C] → [B, T, C].
/// </summary>
public sealed class Gpt2Attention : Module
{
    /// <summary>Loads <c>c_attn</c> and <c>c_proj</c> under <paramref name="vb"/> ("h.{i}.attn").</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="layerIndex">The block's index (for <c>scale_attn_by_inverse_layer_idx</c>).</param>
    /// <param name="vb">Builder at this module's path.</param>
    /// <param name="dtype">The matrices' type: F32 (trainable), F16 or BF16 (inference only).</param>
    public Gpt2Attention(Gpt2Config config, int layerIndex, VarBuilder vb, DType dtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        int c = config.HiddenSize;
        NumHeads = config.NumAttentionHeads;
        HeadDim = c / NumHeads;
        Scale = (config.ScaleAttnWeights ? 1f / MathF.Sqrt(HeadDim) : 1f) / (config.ScaleAttnByInverseLayerIdx ? layerIndex + 1 : 1);

        // The causal-mask buffers old checkpoints carry are not weights: count them as used so the report stays clean.
        vb.MarkUsed("bias");
        vb.MarkUsed("masked_bias");
        CAttn = RegisterModule("c_attn", Linear.Conv1D(c, 3 * c, vb.Push("c_attn"), dtype));
        CProj = RegisterModule("c_proj", Linear.Conv1D(c, c, vb.Push("c_proj"), dtype, Gpt2Model.ResidualProjectionInit(config)));
        AttnDropout = RegisterModule("attn_dropout", new Dropout((float)config.AttnPdrop));
        ResidDropout = RegisterModule("resid_dropout", new Dropout((float)config.ResidPdrop));
    }

    /// <summary>H.</summary>
    public int NumHeads { get; }

    /// <summary>D = C / H.</summary>
    public int HeadDim { get; }

    /// <summary>The score scale: 1/√D when <c>scale_attn_weights</c> (else 1), divided by (layer + 1) when <c>scale_attn_by_inverse_layer_idx</c>.</summary>
    public float Scale { get; }

    /// <summary>The fused Q, K, V projection C → 3C.</summary>
    public Linear CAttn { get; }

    /// <summary>The output projection C → C.</summary>
    public Linear CProj { get; }

    /// <summary>Dropout on the attention probabilities (training only).</summary>
    public Dropout AttnDropout { get; }

    /// <summary>Dropout on the output (training only).</summary>
    public Dropout ResidDropout { get; }

    /// <summary>[B, T, C] → [B, T, C]: causal attention, keys hidden where <paramref name="attentionMask"/> is 0.</summary>
    /// <param name="hidden">ln_1's output [B, T, C].</param>
    /// <param name="attentionMask">[B, T] F32, 1 = token, 0 = padding; null attends to every earlier token.</param>
    /// <param name="outputAttentions">Whether to return the probabilities.</param>
    /// <param name="probabilities">[B, H, T, T] when requested, else null.</param>
    /// <returns>The attention block's output (before the residual add).</returns>
    public Tensor Forward(Tensor hidden, Tensor? attentionMask, bool outputAttentions, out Tensor? probabilities)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        int c = NumHeads * HeadDim;
        var qkv = CAttn.Forward(hidden);
        bool dropoutOnProbabilities = AttnDropout.Training && AttnDropout.P > 0f;
        if (!dropoutOnProbabilities && !outputAttentions)
        {
            // The common training case: one fused node reads q, k, v in place and writes one [B, T, 3C] gradient.
            probabilities = null;
            return ResidDropout.Forward(CProj.Forward(Ops.ScaledDotProductAttentionPacked(qkv, NumHeads, causal: true, attentionMask: attentionMask, scale: Scale)));
        }

        var q = Ops.SplitHeads(Ops.Narrow(qkv, 2, 0, c), NumHeads);
        var k = Ops.SplitHeads(Ops.Narrow(qkv, 2, c, c), NumHeads);
        var v = Ops.SplitHeads(Ops.Narrow(qkv, 2, 2 * c, c), NumHeads);
        Tensor context;
        probabilities = null;
        if (dropoutOnProbabilities)
        {
            // Dropout on the probabilities needs them as a tensor: the composed form (scores, softmax, dropout, ·V).
            var scores = Ops.Scale(Ops.MatMul(q, k, transposeB: true), Scale);
            var p = Ops.Softmax(scores, causal: true, attentionMask: attentionMask);
            probabilities = outputAttentions ? p : null;
            context = Ops.MatMul(AttnDropout.Forward(p), v);
        }
        else
        {
            context = Ops.ScaledDotProductAttention(q, k, v, out var weights, causal: true, attentionMask: attentionMask, scale: Scale);
            probabilities = weights;
        }

        return ResidDropout.Forward(CProj.Forward(Ops.MergeHeads(context)));
    }
}

/// <summary>GPT-2's feed-forward block (HF <c>GPT2MLP</c>): <c>c_fc</c> (C → I), activation, <c>c_proj</c> (I → C), dropout.</summary>
public sealed class Gpt2Mlp : Module
{
    /// <summary>Loads <c>c_fc</c> and <c>c_proj</c> under <paramref name="vb"/> ("h.{i}.mlp").</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="vb">Builder at this module's path.</param>
    /// <param name="dtype">The matrices' type: F32 (trainable), F16 or BF16 (inference only).</param>
    public Gpt2Mlp(Gpt2Config config, VarBuilder vb, DType dtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        Activation = BertActivation.Parse(config.ActivationFunction, "activation_function");
        CFc = RegisterModule("c_fc", Linear.Conv1D(config.HiddenSize, config.IntermediateSize, vb.Push("c_fc"), dtype));
        CProj = RegisterModule("c_proj", Linear.Conv1D(config.IntermediateSize, config.HiddenSize, vb.Push("c_proj"), dtype, Gpt2Model.ResidualProjectionInit(config)));
        Dropout = RegisterModule("dropout", new Dropout((float)config.ResidPdrop));
    }

    /// <summary>The activation named by <c>activation_function</c> (gelu_new: the tanh form).</summary>
    public BertActivationKind Activation { get; }

    /// <summary>The expansion C → I.</summary>
    public Linear CFc { get; }

    /// <summary>The contraction I → C.</summary>
    public Linear CProj { get; }

    /// <summary>Dropout on the output (training only).</summary>
    public Dropout Dropout { get; }

    /// <summary>[B, T, C] → [B, T, C] = dropout(c_proj(act(c_fc(x)))).</summary>
    /// <param name="hidden">ln_2's output.</param>
    /// <returns>The block's output (before the residual add).</returns>
    public Tensor Forward(Tensor hidden) => Dropout.Forward(CProj.Forward(BertActivation.Apply(Activation, CFc.Forward(hidden))));
}

/// <summary>One pre-LN GPT-2 block (HF <c>GPT2Block</c>): h += attn(ln_1(h)); h += mlp(ln_2(h)).</summary>
public sealed class Gpt2Block : Module
{
    /// <summary>Loads <c>ln_1</c>, <c>attn</c>, <c>ln_2</c>, <c>mlp</c> under <paramref name="vb"/> ("h.{i}").</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="layerIndex">The block's index.</param>
    /// <param name="vb">Builder at this module's path.</param>
    /// <param name="dtype">The matrices' type: F32 (trainable), F16 or BF16 (inference only). LayerNorms stay F32.</param>
    public Gpt2Block(Gpt2Config config, int layerIndex, VarBuilder vb, DType dtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        float eps = (float)config.LayerNormEpsilon;
        Ln1 = RegisterModule("ln_1", new LayerNorm(config.HiddenSize, eps, vb.Push("ln_1")));
        Attn = RegisterModule("attn", new Gpt2Attention(config, layerIndex, vb.Push("attn"), dtype));
        Ln2 = RegisterModule("ln_2", new LayerNorm(config.HiddenSize, eps, vb.Push("ln_2")));
        Mlp = RegisterModule("mlp", new Gpt2Mlp(config, vb.Push("mlp"), dtype));
    }

    /// <summary>LayerNorm before attention.</summary>
    public LayerNorm Ln1 { get; }

    /// <summary>Causal self-attention.</summary>
    public Gpt2Attention Attn { get; }

    /// <summary>LayerNorm before the MLP.</summary>
    public LayerNorm Ln2 { get; }

    /// <summary>The feed-forward block.</summary>
    public Gpt2Mlp Mlp { get; }

    /// <summary>[B, T, C] → [B, T, C].</summary>
    /// <param name="hidden">The block's input.</param>
    /// <param name="attentionMask">[B, T] F32 or null.</param>
    /// <param name="outputAttentions">Whether to return the probabilities.</param>
    /// <param name="probabilities">[B, H, T, T] when requested.</param>
    /// <returns>The block's output.</returns>
    public Tensor Forward(Tensor hidden, Tensor? attentionMask, bool outputAttentions, out Tensor? probabilities)
    {
        var attn = Attn.Forward(Ln1.Forward(hidden), attentionMask, outputAttentions, out probabilities);
        // The residual add and ln_2 in one pass (the same graph and bits as Ln2.Forward(Ops.Add(hidden, attn))).
        var normed = Ops.AddLayerNorm(hidden, attn, Ln2.Weight.Value, Ln2.Bias.Value, Ln2.Eps, out var attended);
        return Ops.Add(attended, Mlp.Forward(normed));
    }
}

/// <summary>
/// GPT-2's transformer body (HF <c>GPT2Model</c>): <c>wte</c> + <c>wpe</c> embeddings, <c>drop</c>, n_layer pre-LN
/// blocks <c>h.{i}</c>, and the final LayerNorm <c>ln_f</c>. <see cref="Forward(Tensor, Tensor?, bool, bool)"/> records
/// gradients (module path) in training mode or when a parameter requires gradients, and otherwise takes the fused
/// inference path, as <see cref="Forward(int[], int, float[], KvCache, bool, bool)"/> and the KV-cache entry points
/// always do. Not thread-safe: the inference path reuses its work buffers between calls.
/// </summary>
public sealed class Gpt2Model : Module
{
    // Inference work buffers, grown to the largest B·T seen and reused (decode steps allocate nothing).
    private float[] _hidden = [];
    private float[] _normed = [];
    private float[] _qkv = [];
    private float[] _attn = [];
    private float[] _mlp = [];
    private int[] _positions = [];
    private int[] _slotRows = [];
    private int[] _slotPast = [];
    private DType? _kvCacheType;

    /// <summary>
    /// Builds the body through <paramref name="vb"/>, rooted at the body (HF's <c>transformer.</c> prefix already
    /// pushed when the checkpoint has it); <see cref="VarBuilder.FromInit"/> gives a random model.
    /// </summary>
    /// <param name="config">The model's config.</param>
    /// <param name="vb">The weights' builder.</param>
    /// <param name="dtype">
    /// The type the matrices (wte, which is also the tied LM head, c_attn, attn.c_proj, c_fc, mlp.c_proj) are kept in,
    /// like HF's <c>torch_dtype</c>: F32 (trainable), F16 or BF16 (inference only). LayerNorm parameters, biases and
    /// wpe stay F32; compute is F32.
    /// </param>
    /// <exception cref="ArgumentException"><paramref name="dtype"/> is not F32, F16 or BF16, or the config's activation is unknown.</exception>
    /// <exception cref="ModelLoadException">A tensor is missing or has the wrong shape; the message names it.</exception>
    public Gpt2Model(Gpt2Config config, VarBuilder vb, DType dtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        CheckWeightType(dtype);
        Config = config;
        int c = config.HiddenSize;
        Wte = RegisterModule("wte", new Embedding(config.VocabSize, c, vb.Push("wte"), dtype));
        Wpe = RegisterModule("wpe", new Embedding(config.MaxPositionEmbeddings, c, vb.Push("wpe")));
        Drop = RegisterModule("drop", new Dropout((float)config.EmbdPdrop));
        var blocks = new Gpt2Block[config.NumHiddenLayers];
        for (int i = 0; i < blocks.Length; i++)
        {
            blocks[i] = RegisterModule($"h.{i}", new Gpt2Block(config, i, vb.Push("h", i), dtype));
        }

        H = blocks;
        LnF = RegisterModule("ln_f", new LayerNorm(c, (float)config.LayerNormEpsilon, vb.Push("ln_f")));
    }

    /// <summary>The validated config.json.</summary>
    public Gpt2Config Config { get; }

    /// <summary>Token embeddings [V, C] in <see cref="WeightType"/>; the LM head is tied to this parameter.</summary>
    public Embedding Wte { get; }

    /// <summary>Learned position embeddings [n_positions, C] (F32).</summary>
    public Embedding Wpe { get; }

    /// <summary>Dropout on the summed embeddings (training only).</summary>
    public Dropout Drop { get; }

    /// <summary>The blocks, in order.</summary>
    public IReadOnlyList<Gpt2Block> H { get; }

    /// <summary>The final LayerNorm.</summary>
    public LayerNorm LnF { get; }

    /// <summary>The type the matrices (wte, c_attn, c_proj, c_fc) are kept in: F32, F16 or BF16.</summary>
    public DType WeightType => Wte.Weight.DType;

    /// <summary>True when <see cref="Forward(Tensor, Tensor?, bool, bool)"/> takes the fused inference path: eval mode and nothing to record.</summary>
    public bool UsesFastPath => !Training && !(Autograd.IsGradEnabled && Parameters().Any(p => p.RequiresGrad));

    /// <summary>Checkpoint every block in the autograd path (see <see cref="NN.GradientCheckpointing"/>): activations inside the blocks are recomputed in backward.</summary>
    public bool GradientCheckpointing { get; set; }

    /// <summary>
    /// ids [B, T] → last hidden state [B, T, C] after ln_f (HF <c>last_hidden_state</c>), through the module path
    /// (autograd, dropout) or the fused path (<see cref="UsesFastPath"/>). Position ids are 0 … T − 1 without a mask;
    /// with one they count real tokens (cumsum(mask) − 1, padding at 1) as HF generate computes them, which equals
    /// 0 … T − 1 for every right-padded or unpadded row.
    /// </summary>
    /// <param name="inputIds">Token ids [B, T], I32 or I64.</param>
    /// <param name="attentionMask">[B, T] (any numeric type): 1 = token, 0 = padding; null attends to every earlier token.</param>
    /// <param name="outputAttentions">Also return each layer's attention weights [B, H, T, T].</param>
    /// <param name="outputHiddenStates">Also return the hidden states (n_layer + 1 tensors [B, T, C]).</param>
    /// <returns>The hidden state in <see cref="Gpt2Output.Logits"/>, plus what was asked.</returns>
    /// <exception cref="ArgumentException">The inputs are not [B, T] of matching shapes, T exceeds n_positions, or an id is outside the vocabulary.</exception>
    /// <exception cref="InvalidOperationException">The module path is needed (training, or gradients wanted) but the weights are F16/BF16.</exception>
    public Gpt2Output Forward(Tensor inputIds, Tensor? attentionMask = null, bool outputAttentions = false, bool outputHiddenStates = false)
    {
        var (ids, mask, batch) = ReadInputs(inputIds, attentionMask);
        if (UsesFastPath)
        {
            return Forward(ids, batch, mask, null, outputAttentions, outputHiddenStates);
        }

        return ForwardModules(inputIds, ids, mask, batch, outputAttentions, outputHiddenStates);
    }

    /// <summary>
    /// ids [B, T] → last hidden state [B, T, C] after ln_f through the fused inference path (no tape, no dropout, in
    /// any mode). Position ids come from the mask as in HF generate.
    /// </summary>
    /// <param name="ids">[B, T] token ids, row-major.</param>
    /// <param name="batch">B.</param>
    /// <param name="attentionMask">Null (no padding) or [B, T]: 1 = token, 0 = left padding.</param>
    /// <param name="cache">Null for a stand-alone run, or a cache holding earlier tokens; it grows by T.</param>
    /// <param name="outputAttentions">Also return each layer's attention weights.</param>
    /// <param name="outputHiddenStates">Also return the hidden states.</param>
    /// <returns>The hidden state in <see cref="Gpt2Output.Logits"/>, plus what was asked.</returns>
    /// <exception cref="ArgumentException">The ids or mask do not match B, an id is outside the vocabulary, or the cache is full.</exception>
    public Gpt2Output Forward(int[] ids, int batch, float[]? attentionMask = null, KvCache? cache = null, bool outputAttentions = false, bool outputHiddenStates = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        int tokens = CheckInputs(ids, batch, attentionMask);
        cache ??= CreateCache(batch, tokens);
        var hiddenStates = outputHiddenStates ? new List<Tensor>() : null;
        var attentions = outputAttentions ? new List<Tensor>() : null;
        Run(ids, attentionMask ?? [], batch, tokens, cache, hiddenStates, attentions);
        int c = Config.HiddenSize;
        var last = Tensor.FromSpan<float>(_hidden.AsSpan(0, batch * tokens * c), new Shape(batch, tokens, c));
        hiddenStates?.Add(last);
        return new Gpt2Output(last, null, hiddenStates, attentions);
    }

    /// <summary>The module path (autograd, dropout), whatever the mode: the reference the fast path is tested against.</summary>
    internal Gpt2Output ForwardModules(Tensor inputIds, int[] ids, float[]? mask, int batch, bool outputAttentions, bool outputHiddenStates)
    {
        if (WeightType != DType.F32)
        {
            throw new InvalidOperationException(
                $"GPT-2: the weights were loaded as {WeightType}, which serves inference only; training (or a forward that records gradients) needs F32. Load with FromPretrained(folder, DType.F32) to train, or call Eval() and run under Autograd.NoGrad() for the fast path.");
        }

        int tokens = ids.Length / batch;
        var positions = new int[ids.Length];
        PositionIds(mask, batch, tokens, positions);
        var maskTensor = mask is null ? null : Tensor.FromArray(mask, new Shape(batch, tokens));
        var hiddenStates = outputHiddenStates ? new List<Tensor>() : null;
        var attentions = outputAttentions ? new List<Tensor>() : null;

        var h = Drop.Forward(Ops.Add(Wte.Forward(inputIds), Wpe.Forward(Tensor.FromArray(positions, new Shape(batch, tokens)))));
        bool checkpoint = GradientCheckpointing && !outputAttentions && Autograd.IsGradEnabled;
        foreach (var block in H)
        {
            hiddenStates?.Add(h);
            Tensor? probabilities = null;
            h = checkpoint
                ? NN.GradientCheckpointing.Run(block, x => block.Forward(x, maskTensor, false, out _), h)
                : block.Forward(h, maskTensor, outputAttentions, out probabilities);
            if (probabilities is not null)
            {
                attentions!.Add(probabilities);
            }
        }

        h = LnF.Forward(h);
        hiddenStates?.Add(h);
        return new Gpt2Output(h, null, hiddenStates, attentions);
    }

    /// <summary>Position ids [B·T] from a [B, T] mask, as the KV cache assigns them: real tokens count up from 0, padding gets 1; no mask: 0 … T − 1.</summary>
    internal static void PositionIds(ReadOnlySpan<float> mask, int batch, int tokens, Span<int> positions)
    {
        for (int b = 0; b < batch; b++)
        {
            int next = 0;
            for (int t = 0; t < tokens; t++)
            {
                bool real = mask.IsEmpty || mask[b * tokens + t] != 0f;
                positions[b * tokens + t] = real ? next++ : 1;
            }
        }
    }

    /// <summary>Validates [B, T] tensor inputs and reads them as arrays (mask null when absent).</summary>
    internal (int[] Ids, float[]? Mask, int Batch) ReadInputs(Tensor inputIds, Tensor? attentionMask)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        if (inputIds.Rank != 2 || inputIds.DType is not (DType.I32 or DType.I64) || inputIds.Shape[1] == 0)
        {
            throw new ArgumentException($"GPT-2: input_ids must be an I32/I64 tensor [B, T] with T ≥ 1, got {inputIds.DType} {inputIds.Shape}.", nameof(inputIds));
        }

        if (inputIds.Shape[1] > Config.MaxPositionEmbeddings)
        {
            throw new ArgumentException($"GPT-2: sequence length {inputIds.Shape[1]} exceeds n_positions {Config.MaxPositionEmbeddings}; truncate the input.", nameof(inputIds));
        }

        if (attentionMask is not null && attentionMask.Shape != inputIds.Shape)
        {
            throw new ArgumentException($"GPT-2: attention_mask {attentionMask.Shape} must have input_ids' shape {inputIds.Shape}.", nameof(attentionMask));
        }

        var ids = BertLoading.ReadIds(inputIds);
        var mask = attentionMask is null ? null : (attentionMask.DType == DType.F32 ? attentionMask : attentionMask.To(DType.F32)).ToArray();
        CheckInputs(ids, inputIds.Shape[0], mask);
        return (ids, mask, inputIds.Shape[0]);
    }

    /// <summary>Allocates a KV cache for this model.</summary>
    /// <param name="batch">B.</param>
    /// <param name="capacity">Tmax, at most n_positions.</param>
    /// <returns>An empty cache.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The capacity exceeds n_positions or a size is not positive.</exception>
    public KvCache CreateCache(int batch, int capacity)
    {
        if (capacity > Config.MaxPositionEmbeddings)
        {
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity,
                $"GPT-2 cache capacity {capacity} exceeds the model's context n_positions={Config.MaxPositionEmbeddings}.");
        }

        return new KvCache(Config.NumHiddenLayers, batch, capacity, Config.HiddenSize, KvCacheType);
    }

    /// <summary>
    /// How the caches <see cref="CreateCache"/> makes store K and V (<see cref="IKvCacheElementType"/>): by default F16 when
    /// the weights are F16, BF16 or quantized (llama.cpp's default cache type), F32 when they are F32.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Set to a type other than F32 or F16.</exception>
    public DType KvCacheType
    {
        get => _kvCacheType ?? (WeightType != DType.F32 || H.Any(b => b.Attn.CAttn.QuantizedWeight is not null) ? DType.F16 : DType.F32);
        set => _kvCacheType = value is DType.F32 or DType.F16 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "GPT-2: the KV cache stores F32 or F16.");
    }

    internal int CheckInputs(ReadOnlySpan<int> ids, int batch, ReadOnlySpan<float> attentionMask)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        if (ids.Length == 0 || ids.Length % batch != 0)
        {
            throw new ArgumentException($"GPT-2 forward: {ids.Length} ids do not form [B={batch}, T] with T ≥ 1; pass B equal rows of ids.", nameof(ids));
        }

        if (!attentionMask.IsEmpty && attentionMask.Length != ids.Length)
        {
            throw new ArgumentException($"GPT-2 forward: attention mask has {attentionMask.Length} values, ids [B={batch}, T={ids.Length / batch}] need {ids.Length}.", nameof(attentionMask));
        }

        foreach (int id in ids)
        {
            if ((uint)id >= (uint)Config.VocabSize)
            {
                throw new ArgumentException($"GPT-2 forward: token id {id} is outside the vocabulary [0, {Config.VocabSize}); use the model's own tokenizer.", nameof(ids));
            }
        }

        return ids.Length / batch;
    }

    /// <summary>Runs the body through the fused path; the result (after ln_f unless told otherwise) is left in <see cref="_hidden"/> [B·T, C].</summary>
    /// <remarks>
    /// With <paramref name="slots"/> empty every cache sequence advances in lockstep (B = the cache's B); otherwise row
    /// b of the ids belongs to cache sequence slots[b], which advances alone from its own length.
    /// </remarks>
    internal Span<float> Run(ReadOnlySpan<int> ids, ReadOnlySpan<float> attentionMask, int batch, int tokens, KvCache cache,
        List<Tensor>? hiddenStates, List<Tensor>? attentions, bool finalNorm = true, ReadOnlySpan<int> slots = default)
    {
        if (slots.IsEmpty && cache.Batch != batch)
        {
            throw new ArgumentException($"GPT-2 forward: the cache holds B={cache.Batch} sequences but the ids have B={batch}.", nameof(cache));
        }

        if (cache.Capacity > Config.MaxPositionEmbeddings || cache.Layers != H.Count || cache.Width != Config.HiddenSize)
        {
            throw new ArgumentException(
                $"GPT-2 forward: the cache ({cache.Layers} layers × {cache.Width} wide, capacity {cache.Capacity}) was not made for this model ({H.Count} layers × {Config.HiddenSize}, context {Config.MaxPositionEmbeddings}); create it with CreateCache.",
                nameof(cache));
        }

        int c = Config.HiddenSize, heads = Config.NumAttentionHeads, d = c / heads, rows = batch * tokens;
        EnsureBuffers(rows);
        // Each sequence's cache row and its length before this step (in lockstep: b and the shared length).
        var rowOf = _slotRows.AsSpan(0, batch);
        var pastOf = _slotPast.AsSpan(0, batch);
        for (int b = 0; b < batch; b++)
        {
            rowOf[b] = slots.IsEmpty ? b : slots[b];
            pastOf[b] = slots.IsEmpty ? cache.Length : cache.SequenceLength(rowOf[b]);
            if (pastOf[b] + tokens > cache.Capacity)
            {
                throw new ArgumentException(
                    $"GPT-2 forward: {pastOf[b]} cached + {tokens} new tokens exceed the cache capacity {cache.Capacity} (context n_positions={Config.MaxPositionEmbeddings}); shorten the input or allocate a larger cache.",
                    nameof(cache));
            }
        }

        var h = _hidden.AsSpan(0, rows * c);
        var x = _normed.AsSpan(0, rows * c);
        var qkv = _qkv.AsSpan(0, rows * 3 * c);
        var att = _attn.AsSpan(0, rows * c);
        var ff = _mlp.AsSpan(0, rows * Config.IntermediateSize);
        var positions = _positions.AsSpan(0, rows);

        // Position ids from the mask like HF generate: cumsum(mask) − 1 over real tokens, continuing the cache's count.
        if (slots.IsEmpty)
        {
            cache.Advance(attentionMask, tokens, positions);
        }
        else
        {
            for (int b = 0; b < batch; b++)
            {
                cache.AdvanceSequence(rowOf[b], tokens, positions.Slice(b * tokens, tokens));
            }
        }

        var wpe = Wpe.Weight.Value.AsReadOnlySpan<float>();
        for (int r = 0; r < rows; r++)
        {
            Debug.Assert(positions[r] < Config.MaxPositionEmbeddings);
            var row = h.Slice(r * c, c);
            Wte.CopyRow(ids[r], row);
            Elementwise.Add(row, wpe.Slice(positions[r] * c, c), row);
        }

        float eps = (float)Config.LayerNormEpsilon;
        for (int layer = 0; layer < H.Count; layer++)
        {
            hiddenStates?.Add(Tensor.FromSpan<float>(h, new Shape(batch, tokens, c)));
            var block = H[layer];

            // Attention: x = ln_1(h); qkv = x · W_attn + b → [B, T, 3C]; new K/V go into the cache at rows past..past+T.
            Norms.LayerNorm(h, block.Ln1.Weight.Value.AsReadOnlySpan<float>(), block.Ln1.Bias.Value.AsReadOnlySpan<float>(), x, rows, c, eps);
            block.Attn.CAttn.Apply(x, rows, qkv, accumulate: false);

            // A decoding step over an F16 cache writes its K/V row inside the attention kernel (ForwardHalfAppend).
            bool append = tokens == 1 && attentions is null && cache.ElementType == DType.F16;
            for (int b = 0; b < batch && !append; b++)
            {
                for (int t = 0; t < tokens; t++)
                {
                    var src = qkv.Slice((b * tokens + t) * 3 * c, 3 * c);
                    cache.WriteRow(layer, rowOf[b], pastOf[b] + t, src.Slice(c, c), src.Slice(2 * c, c));
                }
            }

            float scale = block.Attn.Scale;
            // Attention weights are returned only in lockstep, where every sequence has the same Tk.
            int keys = pastOf[0] + tokens;
            float[]? probs = attentions is null ? null : new float[batch * heads * tokens * keys];
            for (int b = 0; b < batch; b++)
            {
                // One call per sequence: the cache's batch stride is Tmax rows, not Tk, so each sequence is its own view
                // (and in slot use has its own Tk).
                keys = pastOf[b] + tokens;
                int row = rowOf[b];
                var shape = new AttentionShape(1, heads, tokens, keys, d) { QueryRowStride = 3 * c };
                var probabilities = probs is null ? default : probs.AsSpan(b * heads * tokens * keys, heads * tokens * keys);
                if (append)
                {
                    var src = qkv.Slice(b * 3 * c, 3 * c);
                    Attention.ForwardHalfAppend(
                        shape,
                        src,
                        src.Slice(c, c),
                        src.Slice(2 * c, c),
                        cache.KeysHalf(layer).Slice(row * cache.Capacity * c),
                        cache.ValuesHalf(layer).Slice(row * cache.Capacity * c),
                        att.Slice(b * c, c),
                        keyPaddingMask: cache.Mask.Slice(row * cache.Capacity, keys),
                        scale: scale);
                    continue;
                }

                if (cache.ElementType == DType.F16)
                {
                    Attention.ForwardHalf(
                        shape,
                        qkv.Slice(b * tokens * 3 * c),
                        cache.KeysHalf(layer).Slice(row * cache.Capacity * c),
                        cache.ValuesHalf(layer).Slice(row * cache.Capacity * c),
                        att.Slice(b * tokens * c, tokens * c),
                        causal: true,
                        keyPaddingMask: cache.Mask.Slice(row * cache.Capacity, keys),
                        scale: scale,
                        probabilities: probabilities);
                    continue;
                }

                Attention.Forward(
                    shape,
                    qkv.Slice(b * tokens * 3 * c),
                    cache.Keys(layer).Slice(row * cache.Capacity * c),
                    cache.Values(layer).Slice(row * cache.Capacity * c),
                    att.Slice(b * tokens * c, tokens * c),
                    causal: true,
                    keyPaddingMask: cache.Mask.Slice(row * cache.Capacity, keys),
                    scale: scale,
                    probabilities: probabilities);
            }

            if (probs is not null)
            {
                attentions!.Add(Tensor.FromArray(probs, new Shape(batch, heads, tokens, keys)));
            }

            block.Attn.CProj.Apply(att, rows, h, accumulate: true);

            // MLP: h += c_proj(act(c_fc(ln_2(h)))).
            Norms.LayerNorm(h, block.Ln2.Weight.Value.AsReadOnlySpan<float>(), block.Ln2.Bias.Value.AsReadOnlySpan<float>(), x, rows, c, eps);
            block.Mlp.CFc.Apply(x, rows, ff, accumulate: false);
            Activate(block.Mlp.Activation, ff);
            block.Mlp.CProj.Apply(ff, rows, h, accumulate: true);
        }

        if (finalNorm)
        {
            FinalNorm(h, rows);
        }

        return h;
    }

    internal void FinalNorm(Span<float> rows, int count) =>
        Norms.LayerNorm(rows, LnF.Weight.Value.AsReadOnlySpan<float>(), LnF.Bias.Value.AsReadOnlySpan<float>(), rows, count, Config.HiddenSize, LnF.Eps);

    /// <summary>HF's init of every <c>c_proj.weight</c> (attn and mlp): normal(0, initializer_range / √(2·n_layer)), scaled for the residual stream's depth.</summary>
    internal static Init ResidualProjectionInit(Gpt2Config config) =>
        Init.Normal((float)(config.InitializerRange / Math.Sqrt(2.0 * config.NumHiddenLayers)));

    /// <summary>Throws unless <paramref name="dtype"/> is a weight type GPT-2 can keep its matrices in.</summary>
    internal static void CheckWeightType(DType dtype)
    {
        if (dtype is not (DType.F32 or DType.F16 or DType.BF16))
        {
            throw new ArgumentException($"GPT-2: weight dtype {dtype} is not supported; use DType.F32, DType.F16 or DType.BF16 (the matrices are kept in it, compute stays F32).", nameof(dtype));
        }
    }

    private static void Activate(BertActivationKind kind, Span<float> h)
    {
        switch (kind)
        {
            case BertActivationKind.Gelu: Activations.Gelu(h, h); break;
            case BertActivationKind.GeluTanh: Activations.GeluTanh(h, h); break;
            case BertActivationKind.Relu: Activations.Relu(h, h); break;
            default: Activations.Silu(h, h); break;
        }
    }

    private void EnsureBuffers(int rows)
    {
        int c = Config.HiddenSize;
        if (_hidden.Length >= rows * c)
        {
            return;
        }

        _hidden = new float[rows * c];
        _normed = new float[rows * c];
        _qkv = new float[rows * 3 * c];
        _attn = new float[rows * c];
        _mlp = new float[rows * Config.IntermediateSize];
        _positions = new int[rows];
        _slotRows = new int[rows];
        _slotPast = new int[rows];
    }
}

/// <summary>
/// GPT-2 with its language-model head (HF <c>GPT2LMHeadModel</c>): the <see cref="Gpt2Model"/> body
/// (<c>transformer</c>) and <c>lm_head</c>, a bias-free dense layer tied to <c>transformer.wte.weight</c> (one
/// parameter, listed and saved once): logits = ln_f(h) · wteᵀ. Trains through <see cref="Forward(Tensor, Tensor?, Tensor?, bool, bool)"/>
/// (labels → loss) and generates through <see cref="ForwardLast"/> over the same parameters. Not thread-safe.
/// </summary>
public sealed partial class Gpt2LMHeadModel : Module, ISlotCausalLM, ILanguageModel, ISupportsGradientCheckpointing, IKvCacheElementType
{
    private float[] _lastRows = [];

    private Gpt2LMHeadModel(Gpt2Config config, VarBuilder body, DType dtype)
    {
        Transformer = RegisterModule("transformer", new Gpt2Model(config, body, dtype));
        // The tied head: W [V, C] is wte's parameter itself (same buffer, same type), so the logits are h · wteᵀ, no bias.
        LmHead = RegisterModule("lm_head", Linear.Tied(Transformer.Wte.Weight));
    }

    /// <summary>The transformer body.</summary>
    public Gpt2Model Transformer { get; }

    /// <summary>The LM head [V, C], tied to <c>transformer.wte.weight</c>.</summary>
    public Linear LmHead { get; }

    /// <summary>The validated config.json.</summary>
    public Gpt2Config Config => Transformer.Config;

    /// <summary>The type the weight matrices are kept in (the dtype it was loaded with): F32, F16 or BF16.</summary>
    public DType WeightType => Transformer.WeightType;

    /// <inheritdoc/>
    public int VocabSize => Config.VocabSize;

    /// <inheritdoc/>
    public int MaxPositions => Config.MaxPositionEmbeddings;

    /// <summary>What loading read, what the checkpoint lacked, and which of its tensors went unused (null when built from a VarBuilder directly).</summary>
    public LoadReport? LoadReport { get; private set; }

    /// <summary>True when <see cref="Forward(Tensor, Tensor?, Tensor?, bool, bool)"/> takes the fused inference path: eval mode and nothing to record.</summary>
    public bool UsesFastPath => Transformer.UsesFastPath;

    /// <inheritdoc/>
    public bool GradientCheckpointing
    {
        get => Transformer.GradientCheckpointing;
        set => Transformer.GradientCheckpointing = value;
    }

    /// <summary>
    /// Loads an HF GPT-2 folder: config.json (model_type gpt2) and model.safetensors (or a sharded index), with or
    /// without the <c>transformer.</c> prefix. The <c>attn.bias</c> / <c>attn.masked_bias</c> buffers and a stored
    /// <c>lm_head.weight</c> (a copy of wte: the head is tied) are not read. Returns the model in evaluation mode.
    /// </summary>
    /// <param name="folder">The model folder.</param>
    /// <param name="dtype">
    /// The type the weight matrices are kept in (HF's <c>torch_dtype</c>): F32 (default, trainable), F16 or BF16
    /// (inference only). Narrow weights halve the memory and the bytes each decode step streams; activations and sums
    /// stay F32. A checkpoint already stored in that type is copied as is; F32 → F16/BF16 rounds to nearest even.
    /// </param>
    /// <returns>The model.</returns>
    /// <exception cref="ArgumentException"><paramref name="dtype"/> is not F32, F16 or BF16.</exception>
    /// <exception cref="ModelConfigException">config.json is missing or invalid.</exception>
    /// <exception cref="InvalidDataException">config.json is not a GPT-2 config.</exception>
    /// <exception cref="ModelLoadException">A tensor is missing or misshapen; the message names it.</exception>
    public static Gpt2LMHeadModel FromPretrained(string folder, DType dtype = DType.F32)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        Gpt2Model.CheckWeightType(dtype);
        var config = ModelConfig.Load(folder) as Gpt2Config
            ?? throw new InvalidDataException($"{Path.Combine(folder, "config.json")}: model_type is not gpt2; Gpt2LMHeadModel loads GPT-2 checkpoints only (AutoModelForCausalLM picks the class).");
        using var weights = SafeTensorsLoader.Open(folder);
        return FromWeights(config, weights, dtype);
    }

    /// <summary>Builds the model from a config and an open checkpoint (with or without the <c>transformer.</c> prefix), in evaluation mode.</summary>
    /// <param name="config">The config.</param>
    /// <param name="weights">The checkpoint; it may be disposed afterwards.</param>
    /// <param name="dtype">The type the weight matrices are kept in: F32 (default), F16 or BF16 (see <see cref="FromPretrained"/>).</param>
    /// <returns>The model.</returns>
    /// <exception cref="ArgumentException"><paramref name="dtype"/> is not F32, F16 or BF16.</exception>
    /// <exception cref="ModelLoadException">A tensor is missing or misshapen.</exception>
    public static Gpt2LMHeadModel FromWeights(Gpt2Config config, ISafeTensorsSource weights, DType dtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(weights);
        var root = VarBuilder.FromSafeTensors(weights);
        root.MarkUsed("lm_head.weight");
        var model = FromVarBuilder(config, root.Contains("transformer.wte.weight") ? root.Push("transformer") : root, dtype);
        model.LoadReport = root.Report();
        return model;
    }

    /// <summary>
    /// Builds the model through <paramref name="vb"/> rooted at the body (e.g. <see cref="VarBuilder.FromInit"/> for a
    /// random GPT-2 of any size), in evaluation mode.
    /// </summary>
    /// <param name="config">The config.</param>
    /// <param name="vb">The builder.</param>
    /// <param name="dtype">The type the weight matrices are kept in: F32 (default), F16 or BF16 (see <see cref="FromPretrained"/>).</param>
    /// <returns>The model.</returns>
    /// <exception cref="ArgumentException"><paramref name="dtype"/> is not F32, F16 or BF16.</exception>
    /// <exception cref="ModelLoadException">A tensor is missing or misshapen.</exception>
    public static Gpt2LMHeadModel FromVarBuilder(Gpt2Config config, VarBuilder vb, DType dtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        Gpt2Model.CheckWeightType(dtype);
        var model = new Gpt2LMHeadModel(config, vb, dtype);
        model.Eval();
        return model;
    }

    /// <summary>
    /// A freshly initialized GPT-2 (F32, training mode) as HF's <c>_init_weights</c> makes it: Conv1D and embedding
    /// weights normal(0, initializer_range), every <c>c_proj.weight</c> (attention and MLP) normal(0,
    /// initializer_range / √(2·n_layer)), biases 0, LayerNorm weight 1 and bias 0. Seeded, so the same seed gives the
    /// same model (not PyTorch's numbers: the generators differ).
    /// </summary>
    /// <param name="config">The configuration.</param>
    /// <param name="seed">The initialization seed.</param>
    /// <returns>The model, in training mode, every parameter requiring gradients.</returns>
    public static Gpt2LMHeadModel FromConfig(Gpt2Config config, int seed)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new Gpt2LMHeadModel(config, VarBuilder.FromInit(seed, (float)config.InitializerRange), DType.F32);
    }

    /// <summary>
    /// ids [B, T] → logits [B, T, V], and with <paramref name="labels"/> the loss of HF's GPT2LMHeadModel: the mean
    /// cross-entropy of logits[:, t] against labels[:, t + 1] over labels ≠ −100 (pass the input ids as labels for
    /// plain language modelling). In training mode or when a parameter requires gradients this runs the module path
    /// and the loss is on the tape (call <c>Backward()</c> on it); otherwise the fused inference path.
    /// </summary>
    /// <param name="inputIds">Token ids [B, T], I32 or I64.</param>
    /// <param name="attentionMask">[B, T]: 1 = token, 0 = padding; null attends to every earlier token. Position ids follow it as in <see cref="Gpt2Model.Forward(Tensor, Tensor?, bool, bool)"/>.</param>
    /// <param name="labels">Target ids [B, T] (I32/I64; −100 where no prediction is scored), or null.</param>
    /// <param name="outputAttentions">Also return each layer's attention weights [B, H, T, T].</param>
    /// <param name="outputHiddenStates">Also return the hidden states (n_layer + 1 tensors [B, T, C]).</param>
    /// <returns>Logits, the loss when labels were given, and what was asked.</returns>
    /// <exception cref="ArgumentException">The inputs or labels are not [B, T] of matching shapes, T exceeds n_positions, or an id or label is out of range.</exception>
    /// <exception cref="InvalidOperationException">The module path is needed but the weights are F16/BF16 (load in F32 to train).</exception>
    public Gpt2Output Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? labels = null, bool outputAttentions = false, bool outputHiddenStates = false)
    {
        var (ids, mask, batch) = Transformer.ReadInputs(inputIds, attentionMask);
        int tokens = ids.Length / batch;
        var shifted = labels is null ? null : ShiftLabels(labels, inputIds.Shape);
        Tensor logits;
        Gpt2Output body;
        if (UsesFastPath)
        {
            body = Transformer.Forward(ids, batch, mask, null, outputAttentions, outputHiddenStates);
            logits = Tensor.Empty(new Shape(batch, tokens, VocabSize));
            LmHead.Apply(body.Logits.AsReadOnlySpan<float>(), batch * tokens, logits.AsSpan<float>(), accumulate: false);
        }
        else
        {
            body = Transformer.ForwardModules(inputIds, ids, mask, batch, outputAttentions, outputHiddenStates);
            // One GEMM over all positions: [B·T, C] · [V, C]ᵀ, the tied wte receiving gradient from both ends.
            logits = LmHead.Forward(body.Logits);
        }

        // HF shifts the logits (logits[:, :-1] vs labels[:, 1:]); shifting the labels instead gives the same mean
        // without copying the [B, T, V] logits: labels'[b, t] = labels[b, t + 1], the last position ignored.
        var loss = shifted is null ? null : Ops.CrossEntropy(logits, shifted);
        return body with { Logits = logits, Loss = loss };
    }

    /// <inheritdoc/>
    Tensor ILanguageModel.LanguageModelingLoss(Tensor inputIds, Tensor? attentionMask, Tensor labels) =>
        Forward(inputIds, attentionMask, labels).Loss!;

    /// <summary>
    /// ids [B, T] → logits [B, T, V] through the fused inference path (no tape, no dropout, in any mode). Left-padded
    /// batches pass a mask; position ids come from it as in HF generate.
    /// </summary>
    /// <param name="ids">[B, T] token ids, row-major.</param>
    /// <param name="batch">B.</param>
    /// <param name="attentionMask">Null (no padding) or [B, T]: 1 = token, 0 = left padding.</param>
    /// <param name="cache">Null for a stand-alone run, or a cache with earlier tokens (it grows by T).</param>
    /// <param name="outputAttentions">Also return each layer's attention weights [B, H, T, Tk].</param>
    /// <param name="outputHiddenStates">Also return the hidden states (n_layer + 1 tensors [B, T, C]).</param>
    /// <returns>Logits and what was asked.</returns>
    /// <exception cref="ArgumentException">The ids or mask do not match B, an id is outside the vocabulary, or the cache is full.</exception>
    public Gpt2Output Forward(int[] ids, int batch, float[]? attentionMask = null, KvCache? cache = null, bool outputAttentions = false, bool outputHiddenStates = false)
    {
        var body = Transformer.Forward(ids, batch, attentionMask, cache, outputAttentions, outputHiddenStates);
        int rows = (int)(body.Logits.ElementCount / Config.HiddenSize), tokens = rows / batch;
        var logits = new float[(long)rows * VocabSize];
        LmHead.Apply(body.Logits.AsReadOnlySpan<float>(), rows, logits, accumulate: false);
        return body with { Logits = Tensor.FromArray(logits, new Shape(batch, tokens, VocabSize)) };
    }

    /// <inheritdoc/>
    public KvCache CreateCache(int batch, int capacity) => Transformer.CreateCache(batch, capacity);

    /// <inheritdoc/>
    public DType KvCacheType
    {
        get => Transformer.KvCacheType;
        set => Transformer.KvCacheType = value;
    }

    /// <inheritdoc/>
    /// <remarks>Only the B last rows go through ln_f and the head, so a prefill does not pay for T·V logits. Always the fused path.</remarks>
    public void ForwardLast(ReadOnlySpan<int> ids, ReadOnlySpan<float> attentionMask, KvCache cache, Span<float> lastLogits)
    {
        ArgumentNullException.ThrowIfNull(cache);
        int batch = cache.Batch, c = Config.HiddenSize;
        int tokens = Transformer.CheckInputs(ids, batch, attentionMask);
        if (lastLogits.Length < batch * VocabSize)
        {
            throw new ArgumentException($"GPT-2 ForwardLast: logits span holds {lastLogits.Length} values, [B={batch}, V={VocabSize}] needs {batch * VocabSize}.", nameof(lastLogits));
        }

        var h = Transformer.Run(ids, attentionMask, batch, tokens, cache, null, null, finalNorm: false);
        TakeLastRows(h, batch, tokens, c);
        var last = _lastRows.AsSpan(0, batch * c);

        Transformer.FinalNorm(last, batch);
        LmHead.Apply(last, batch, lastLogits, accumulate: false);
    }

    /// <inheritdoc/>
    /// <remarks>Always the fused path; only the N last rows go through ln_f and the head.</remarks>
    /// <exception cref="ArgumentException">The slots are empty, repeated or outside the cache, the ids do not form [N, T], an id is outside the vocabulary, a slot would exceed the cache, or the logits span is too small.</exception>
    public void ForwardSlots(ReadOnlySpan<int> slots, ReadOnlySpan<int> ids, KvCache cache, Span<float> lastLogits)
    {
        ArgumentNullException.ThrowIfNull(cache);
        int count = slots.Length, c = Config.HiddenSize;
        if (count == 0)
        {
            throw new ArgumentException("GPT-2 ForwardSlots: no slots given; pass at least one slot index.", nameof(slots));
        }

        for (int i = 0; i < count; i++)
        {
            if ((uint)slots[i] >= (uint)cache.Batch || slots[..i].Contains(slots[i]))
            {
                throw new ArgumentException($"GPT-2 ForwardSlots: slot {slots[i]} is outside the cache's [0, {cache.Batch}) or listed twice; pass distinct slot indices.", nameof(slots));
            }
        }

        int tokens = Transformer.CheckInputs(ids, count, default);
        if (lastLogits.Length < count * VocabSize)
        {
            throw new ArgumentException($"GPT-2 ForwardSlots: logits span holds {lastLogits.Length} values, [N={count}, V={VocabSize}] needs {count * VocabSize}.", nameof(lastLogits));
        }

        var h = Transformer.Run(ids, default, count, tokens, cache, null, null, finalNorm: false, slots);
        TakeLastRows(h, count, tokens, c);
        var last = _lastRows.AsSpan(0, count * c);
        Transformer.FinalNorm(last, count);
        LmHead.Apply(last, count, lastLogits, accumulate: false);
    }

    private void TakeLastRows(ReadOnlySpan<float> h, int batch, int tokens, int c)
    {
        if (_lastRows.Length < batch * c)
        {
            _lastRows = new float[batch * c];
        }

        for (int b = 0; b < batch; b++)
        {
            h.Slice(((b * tokens) + tokens - 1) * c, c).CopyTo(_lastRows.AsSpan(b * c, c));
        }
    }

    /// <summary>labels [B, T] → labels' [B, T] with labels'[b, t] = labels[b, t + 1] and −100 at the last position, validated.</summary>
    private Tensor ShiftLabels(Tensor labels, Shape inputShape)
    {
        if (labels.Shape != inputShape || labels.DType is not (DType.I32 or DType.I64))
        {
            throw new ArgumentException($"GPT-2: labels must be I32/I64 with input_ids' shape {inputShape}, got {labels.DType} {labels.Shape}; pass the input ids (−100 where no loss is wanted).", nameof(labels));
        }

        var values = BertLoading.ReadIds(labels);
        int batch = inputShape[0], tokens = inputShape[1];
        var shifted = new int[values.Length];
        for (int b = 0; b < batch; b++)
        {
            for (int t = 0; t < tokens; t++)
            {
                int label = t + 1 < tokens ? values[b * tokens + t + 1] : -100;
                if (label != -100 && (uint)label >= (uint)VocabSize)
                {
                    throw new ArgumentException($"GPT-2: label {label} at [{b}, {t + 1}] is outside the vocabulary [0, {VocabSize}) and is not −100.", nameof(labels));
                }

                shifted[b * tokens + t] = label;
            }
        }

        return Tensor.FromArray(shifted, inputShape);
    }
}
