// Llama (Touvron et al. 2023) and its close kin with the module and tensor names of Hugging Face transformers'
// modeling_llama.py, so a checkpoint loads with no rename table: LlamaForCausalLM.Model.Layers[3].SelfAttn.QProj.Weight
// is "model.layers.3.self_attn.q_proj.weight". Pre-norm blocks with RMSNorm, rotary positions (LlamaRotary: rope_theta
// and rope_scaling), grouped-query attention (num_key_value_heads ≤ num_attention_heads, each K/V head serving
// H / Hkv query heads), a SwiGLU MLP down(silu(gate(x)) · up(x)), tied or untied lm_head. The kin differ only where their
// own small files say: Mistral.cs (sliding window), Phi3.cs (fused qkv_proj / gate_up_proj); Qwen2's q/k/v biases are
// LlamaConfig.QkvBias.
//
// One module tree, two forwards over the same parameters (as GPT-2):
// - the module path (Ops, autograd): training, and the reference the fast path is tested against;
// - the fused inference path (LlamaModel.Run): no tape, reused buffers, a KV cache of width Hkv·D, each dense layer
//   through Linear.Apply (GEMV for decode steps, packed GEMM or widened F16/BF16 blocks for prefills).
using Sharpformer.IO.Config;
using Sharpformer.Models.Bert;
using Sharpformer.NN;
using Sharpformer.Tensors;

namespace Sharpformer.Models.Llama;

/// <summary>What one Llama forward returns.</summary>
/// <param name="Logits">[B, T, V] next-token logits (from <see cref="LlamaForCausalLM"/>), or the last hidden state [B, T, C] (from <see cref="LlamaModel"/>).</param>
/// <param name="Loss">With labels: the mean next-token cross-entropy (a scalar, on the tape when training); else null.</param>
/// <param name="HiddenStates">When asked: the embeddings and the input of every later layer, then the final norm's output (L + 1 tensors [B, T, C]).</param>
/// <param name="Attentions">When asked: every layer's attention weights [B, H, T, Tk].</param>
public sealed record LlamaOutput(Tensor Logits, Tensor? Loss, IReadOnlyList<Tensor>? HiddenStates, IReadOnlyList<Tensor>? Attentions);

/// <summary>
/// Llama's grouped-query self-attention (HF <c>LlamaAttention</c>): <c>q_proj</c> C → H·D, <c>k_proj</c> and
/// <c>v_proj</c> C → Hkv·D (Phi-3: one <c>qkv_proj</c>), rotary positions on q and k, causal softmax(q·kᵀ/√D)·v with
/// each K/V head shared by H/Hkv query heads (and a sliding window where configured), <c>o_proj</c> H·D → C.
/// </summary>
public sealed class LlamaAttention : Module
{
    /// <summary>Loads the projections under <paramref name="vb"/> ("model.layers.{i}.self_attn").</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="layerIndex">The layer's index (for the sliding window's first layer).</param>
    /// <param name="vb">Builder at this module's path.</param>
    /// <param name="dtype">The matrices' type: F32 (trainable), F16 or BF16 (inference only).</param>
    public LlamaAttention(LlamaConfig config, int layerIndex, VarBuilder vb, DType dtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        int c = config.HiddenSize;
        NumHeads = config.NumAttentionHeads;
        NumKeyValueHeads = config.NumKeyValueHeads;
        HeadDim = config.HeadDim;
        Window = config.WindowOf(layerIndex);
        int q = NumHeads * HeadDim, kv = NumKeyValueHeads * HeadDim;
        if (config.FusedProjections)
        {
            QkvProj = RegisterModule("qkv_proj", new Linear(c, q + (2 * kv), vb.Push("qkv_proj"), bias: false, dtype: dtype));
        }
        else
        {
            QProj = RegisterModule("q_proj", new Linear(c, q, vb.Push("q_proj"), config.QkvBias, dtype));
            KProj = RegisterModule("k_proj", new Linear(c, kv, vb.Push("k_proj"), config.QkvBias, dtype));
            VProj = RegisterModule("v_proj", new Linear(c, kv, vb.Push("v_proj"), config.QkvBias, dtype));
        }

        OProj = RegisterModule("o_proj", new Linear(q, c, vb.Push("o_proj"), config.OutputBias, dtype));
        AttentionDropout = RegisterModule("attention_dropout", new Dropout((float)config.AttentionDropout));
    }

    /// <summary>Dropout on the attention probabilities (<c>attention_dropout</c>; training only, no parameters).</summary>
    public Dropout AttentionDropout { get; }

    /// <summary>H, the query heads.</summary>
    public int NumHeads { get; }

    /// <summary>Hkv, the key/value heads (H for plain multi-head attention).</summary>
    public int NumKeyValueHeads { get; }

    /// <summary>D.</summary>
    public int HeadDim { get; }

    /// <summary>This layer's sliding window W, or null for full causal attention.</summary>
    public int? Window { get; }

    /// <summary>C → H·D (null in Phi-3, which fuses it into <see cref="QkvProj"/>).</summary>
    public Linear? QProj { get; }

    /// <summary>C → Hkv·D (null in Phi-3).</summary>
    public Linear? KProj { get; }

    /// <summary>C → Hkv·D (null in Phi-3).</summary>
    public Linear? VProj { get; }

    /// <summary>Phi-3's fused C → (H + 2·Hkv)·D (null elsewhere).</summary>
    public Linear? QkvProj { get; }

    /// <summary>H·D → C.</summary>
    public Linear OProj { get; }

    /// <summary>[B, T, C] → [B, T, C] through autograd: causal (windowed) grouped-query attention.</summary>
    /// <param name="hidden">input_layernorm's output [B, T, C].</param>
    /// <param name="positions">I32 [B, T] position ids.</param>
    /// <param name="rope">The rotary table for these positions.</param>
    /// <param name="attentionMask">[B, T] F32, 1 = token, 0 = padding; null attends to every earlier token.</param>
    /// <param name="outputAttentions">Whether to return the probabilities.</param>
    /// <param name="probabilities">[B, H, T, T] when requested, else null.</param>
    /// <returns>The attention block's output (before the residual add).</returns>
    public Tensor Forward(Tensor hidden, Tensor positions, RotaryEmbedding rope, Tensor? attentionMask, bool outputAttentions, out Tensor? probabilities)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        ArgumentNullException.ThrowIfNull(rope);
        int qWidth = NumHeads * HeadDim, kvWidth = NumKeyValueHeads * HeadDim, tokens = hidden.Shape[1];
        Tensor q, k, v;
        if (QkvProj is not null)
        {
            (q, k, v) = Phi3Projections.SplitQkv(QkvProj.Forward(hidden), qWidth, kvWidth);
        }
        else
        {
            q = QProj!.Forward(hidden);
            k = KProj!.Forward(hidden);
            v = VProj!.Forward(hidden);
        }

        q = rope.Forward(q, NumHeads, positions);
        k = RepeatKv(rope.Forward(k, NumKeyValueHeads, positions));
        v = RepeatKv(v);
        var qh = Ops.SplitHeads(q, NumHeads);
        var kh = Ops.SplitHeads(k, NumHeads);
        var vh = Ops.SplitHeads(v, NumHeads);
        float scale = 1f / MathF.Sqrt(HeadDim);
        Tensor context;
        probabilities = null;
        bool windowCuts = Window is { } w && tokens > w;
        bool dropout = AttentionDropout.Training && AttentionDropout.P > 0f;
        if (windowCuts || dropout)
        {
            // The composed form: the window's additive −∞ bias where it hides keys the causal mask would show, and
            // dropout on the probabilities (HF's eager attention).
            var scores = Ops.Scale(Ops.MatMul(qh, kh, transposeB: true), scale);
            if (windowCuts)
            {
                scores = Ops.Add(scores, SlidingWindow.Bias(tokens, Window!.Value));
            }

            var p = Ops.Softmax(scores, causal: true, attentionMask: attentionMask);
            probabilities = outputAttentions ? p : null;
            context = Ops.MatMul(AttentionDropout.Forward(p), vh);
        }
        else if (outputAttentions)
        {
            context = Ops.ScaledDotProductAttention(qh, kh, vh, out var weights, causal: true, attentionMask: attentionMask, scale: scale);
            probabilities = weights;
        }
        else
        {
            context = Ops.ScaledDotProductAttention(qh, kh, vh, causal: true, attentionMask: attentionMask, scale: scale);
        }

        return OProj.Forward(Ops.MergeHeads(context));
    }

    /// <summary>HF's repeat_kv before the head split: [B, T, Hkv·D] → [B, T, H·D], query head h reading K/V head h / (H/Hkv).</summary>
    private Tensor RepeatKv(Tensor x)
    {
        if (NumKeyValueHeads == NumHeads)
        {
            return x;
        }

        int rep = NumHeads / NumKeyValueHeads;
        var pieces = new Tensor[NumHeads];
        for (int h = 0; h < NumHeads; h++)
        {
            pieces[h] = Ops.Narrow(x, 2, h / rep * HeadDim, HeadDim);
        }

        return Ops.Concat(pieces, 2);
    }
}

/// <summary>Llama's SwiGLU feed-forward block (HF <c>LlamaMLP</c>): down(silu(gate(x)) · up(x)); Phi-3 fuses gate and up into <c>gate_up_proj</c>.</summary>
public sealed class LlamaMlp : Module
{
    /// <summary>Loads the projections under <paramref name="vb"/> ("model.layers.{i}.mlp").</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="vb">Builder at this module's path.</param>
    /// <param name="dtype">The matrices' type: F32 (trainable), F16 or BF16 (inference only).</param>
    public LlamaMlp(LlamaConfig config, VarBuilder vb, DType dtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        Activation = BertActivation.Parse(config.HiddenAct, "hidden_act");
        int c = config.HiddenSize, i = config.IntermediateSize;
        IntermediateSize = i;
        if (config.FusedProjections)
        {
            GateUpProj = RegisterModule("gate_up_proj", new Linear(c, 2 * i, vb.Push("gate_up_proj"), bias: false, dtype: dtype));
        }
        else
        {
            GateProj = RegisterModule("gate_proj", new Linear(c, i, vb.Push("gate_proj"), config.MlpBias, dtype));
            UpProj = RegisterModule("up_proj", new Linear(c, i, vb.Push("up_proj"), config.MlpBias, dtype));
        }

        DownProj = RegisterModule("down_proj", new Linear(i, c, vb.Push("down_proj"), config.MlpBias && !config.FusedProjections, dtype));
    }

    /// <summary>The activation named by <c>hidden_act</c> (silu in every released model).</summary>
    public BertActivationKind Activation { get; }

    /// <summary>I.</summary>
    public int IntermediateSize { get; }

    /// <summary>C → I (null in Phi-3).</summary>
    public Linear? GateProj { get; }

    /// <summary>C → I (null in Phi-3).</summary>
    public Linear? UpProj { get; }

    /// <summary>Phi-3's fused C → 2·I, gate rows first (null elsewhere).</summary>
    public Linear? GateUpProj { get; }

    /// <summary>I → C.</summary>
    public Linear DownProj { get; }

    /// <summary>[B, T, C] → [B, T, C] = down(act(gate(x)) · up(x)).</summary>
    /// <param name="hidden">post_attention_layernorm's output.</param>
    /// <returns>The block's output (before the residual add).</returns>
    public Tensor Forward(Tensor hidden)
    {
        Tensor inner;
        if (GateUpProj is not null && Activation == BertActivationKind.Silu)
        {
            inner = Phi3Projections.GatedActivation(GateUpProj.Forward(hidden), IntermediateSize);
        }
        else if (GateUpProj is not null)
        {
            var gateUp = GateUpProj.Forward(hidden);
            inner = Ops.Mul(BertActivation.Apply(Activation, Ops.Narrow(gateUp, 2, 0, IntermediateSize)), Ops.Narrow(gateUp, 2, IntermediateSize, IntermediateSize));
        }
        else
        {
            inner = Ops.Mul(BertActivation.Apply(Activation, GateProj!.Forward(hidden)), UpProj!.Forward(hidden));
        }

        return DownProj.Forward(inner);
    }
}

/// <summary>One pre-norm Llama layer (HF <c>LlamaDecoderLayer</c>): h += attn(input_layernorm(h)); h += mlp(post_attention_layernorm(h)).</summary>
public sealed class LlamaDecoderLayer : Module
{
    /// <summary>Loads the layer under <paramref name="vb"/> ("model.layers.{i}").</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="layerIndex">The layer's index.</param>
    /// <param name="vb">Builder at this module's path.</param>
    /// <param name="dtype">The matrices' type: F32 (trainable), F16 or BF16 (inference only). Norms stay F32.</param>
    public LlamaDecoderLayer(LlamaConfig config, int layerIndex, VarBuilder vb, DType dtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        float eps = (float)config.RmsNormEps;
        SelfAttn = RegisterModule("self_attn", new LlamaAttention(config, layerIndex, vb.Push("self_attn"), dtype));
        Mlp = RegisterModule("mlp", new LlamaMlp(config, vb.Push("mlp"), dtype));
        InputLayernorm = RegisterModule("input_layernorm", new RmsNorm(config.HiddenSize, eps, vb.Push("input_layernorm")));
        PostAttentionLayernorm = RegisterModule("post_attention_layernorm", new RmsNorm(config.HiddenSize, eps, vb.Push("post_attention_layernorm")));
    }

    /// <summary>Grouped-query self-attention.</summary>
    public LlamaAttention SelfAttn { get; }

    /// <summary>The SwiGLU block.</summary>
    public LlamaMlp Mlp { get; }

    /// <summary>RMSNorm before attention.</summary>
    public RmsNorm InputLayernorm { get; }

    /// <summary>RMSNorm before the MLP.</summary>
    public RmsNorm PostAttentionLayernorm { get; }

    /// <summary>[B, T, C] → [B, T, C].</summary>
    /// <param name="hidden">The layer's input.</param>
    /// <param name="positions">I32 [B, T] position ids.</param>
    /// <param name="rope">The rotary table.</param>
    /// <param name="attentionMask">[B, T] F32 or null.</param>
    /// <param name="outputAttentions">Whether to return the probabilities.</param>
    /// <param name="probabilities">[B, H, T, T] when requested.</param>
    /// <returns>The layer's output.</returns>
    public Tensor Forward(Tensor hidden, Tensor positions, RotaryEmbedding rope, Tensor? attentionMask, bool outputAttentions, out Tensor? probabilities)
    {
        var attended = Ops.Add(hidden, SelfAttn.Forward(InputLayernorm.Forward(hidden), positions, rope, attentionMask, outputAttentions, out probabilities));
        return Ops.Add(attended, Mlp.Forward(PostAttentionLayernorm.Forward(attended)));
    }
}
