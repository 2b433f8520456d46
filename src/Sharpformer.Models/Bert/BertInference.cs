using System.Buffers;
using System.Diagnostics;
using System.Numerics.Tensors;
using Sharpformer.NN;
using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels;
using Sharpformer.Tensors.Threading;
using Tensor = Sharpformer.Tensors.Tensor;

namespace Sharpformer.Models.Bert;

/// <summary>
/// The eval-mode forward of a post-LN transformer encoder (BERT, RoBERTa, DistilBERT: the same layer under other
/// names) without autograd, over reused buffers: the model's embeddings written into one buffer, then per layer
/// QKV in one GEMM against a packed [C, 3C] weight → attention read in place from the QKV rows (no head transposes;
/// <see cref="EncoderAttention"/>, or per-head GEMMs when the probabilities are asked for)
/// → output GEMM (bias in the GEMM) → residual + LayerNorm fused → FFN GEMM (bias) + activation in place → GEMM (bias)
/// → residual + LayerNorm fused. A subclass supplies the embeddings, the layers' weights and an optional pooler.
/// Forward calls on one model are serialized (the buffers are shared).
/// </summary>
internal abstract class PostLnEncoderInference
{
    private readonly Module _model;
    private readonly object _gate = new();
    private readonly int _c, _h, _d, _i;
    private EncoderLayerWeights[] _layers = [];
    private long _weightsStamp = -1;

    /// <summary>From this length on, attention runs as batched GEMMs (measured: 35% faster at T = 128, slower at T = 8).</summary>
    private const int MinLengthForGemmAttention = 32;

    /// <summary>Rows per FFN chunk: 512 × I floats (3 MiB at I = 1536) stay in cache between the two FFN GEMMs.</summary>
    private const int FfnChunkRows = 512;

    // The workspace: grown to the largest B·T (and T for the per-sequence attention buffers) seen, reused by every call.
    private float[] _x = [], _qkv = [], _ctx = [], _tmp = [], _x1 = [], _ffn = [];

    /// <param name="model">The module whose parameters the layers read (their versions tell when to repack).</param>
    /// <param name="c">C, the hidden size.</param>
    /// <param name="h">H, the number of heads.</param>
    /// <param name="intermediate">I, the feed-forward width.</param>
    protected PostLnEncoderInference(Module model, int c, int h, int intermediate)
    {
        _model = model;
        _c = c;
        _h = h;
        _d = c / h;
        _i = intermediate;
    }

    /// <summary>C.</summary>
    protected int HiddenSize => _c;

    /// <summary>The layers' weights, in order, read from the model now.</summary>
    protected abstract IEnumerable<EncoderLayerWeights> ReadLayers();

    /// <summary>x [B·T, C] = the normalized embeddings of ids [B·T] (and token types [B, T], which a model may ignore).</summary>
    protected abstract void Embed(int[] ids, Tensor? tokenTypeIds, int b, int t, Span<float> x);

    /// <summary>The pooled output [B, C] of the last hidden state x [B·T, C], or null for a model without a pooler.</summary>
    protected virtual Tensor? Pool(ReadOnlySpan<float> x, int b, int t) => null;

    public BertModelOutput Forward(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds, bool outputHiddenStates, bool outputAttentions)
    {
        lock (_gate)
        {
            var clock = EncoderStageClock.Current;
            long mark = clock is null ? 0 : Stopwatch.GetTimestamp();
            PrepareWeights();
            int b = inputIds.Shape[0], t = inputIds.Shape[1], n = b * t, c = _c;
            EnsureCapacity(n);
            var ids = BertLoading.ReadIds(inputIds);
            float[] mask = attentionMask is null ? [] : attentionMask.ToArray();
            if (!HasPadding(mask)) mask = []; // all ones: the unmasked softmax gives the same result, faster

            clock?.Add(EncoderStage.Inputs, ref mark);
            var x = _x.AsSpan(0, n * c);
            Embed(ids, tokenTypeIds, b, t, x);
            clock?.Add(EncoderStage.Embeddings, ref mark);
            var hiddenStates = outputHiddenStates ? new List<Tensor> { Snapshot(x, b, t) } : null;
            var attentions = outputAttentions ? new List<Tensor>() : null;

            var shape = new AttentionShape(b, _h, t, t, _d) { QueryRowStride = 3 * c, KeyRowStride = 3 * c, ValueRowStride = 3 * c, OutputRowStride = c };
            var qkv = _qkv.AsSpan(0, n * 3 * c);
            var ctx = _ctx.AsSpan(0, n * c);
            var tmp = _tmp.AsSpan(0, n * c);
            var x1 = _x1.AsSpan(0, n * c);
            var ffn = _ffn.AsSpan(0, Math.Min(n, FfnChunkRows) * _i);
            foreach (var layer in _layers)
            {
                // [N, C] · [C, 3C] + b → [N, 3C]: Q, K, V side by side in each token's row.
                if (layer.QkvKernel is { } narrow)
                {
                    narrow.Apply(x, n, layer.QkvBias, qkv, accumulate: false);
                }
                else
                {
                    Gemm.Sgemm(false, n, 1f, x, c, layer.Qkv!, 0f, qkv, 3 * c, layer.QkvBias);
                }

                layer.AddQkvAdapters(x, n, qkv);
                clock?.Add(EncoderStage.QkvGemm, ref mark);
                float[]? probabilities = outputAttentions ? new float[b * _h * t * t] : null;
                if (probabilities is null)
                {
                    // The blocked kernel (K, V packed once per head, transposed scores that feed P·V as they are):
                    // 0.80× the per-head GEMMs' time at 1×128, 0.58-0.86× at 1×512, 0.81× at 32×128 (bench attention).
                    EncoderAttention.Forward(qkv, mask, ctx, b, t, _h, _d);
                }
                else if (t >= MinLengthForGemmAttention)
                {
                    AttentionByGemm(_qkv, mask, _ctx, probabilities, b, t, _h, _d);
                }
                else
                {
                    Attention.Forward(shape, qkv, qkv[c..], qkv[(2 * c)..], ctx, keyPaddingMask: mask, probabilities: probabilities);
                }

                if (probabilities is not null) attentions!.Add(Tensor.FromArray(probabilities, new Shape(b, _h, t, t)));
                clock?.Add(EncoderStage.Attention, ref mark);

                layer.AttentionOutput.Forward(ctx, n, tmp);
                clock?.Add(EncoderStage.OutputGemm, ref mark);
                ResidualNorm.AddLayerNorm(tmp, x, layer.Norm1Gamma, layer.Norm1Beta, x1, n, c, layer.Norm1Eps);
                clock?.Add(EncoderStage.AddLayerNorm, ref mark);

                // The FFN in row chunks: the [rows, I] intermediate (bias and activation applied in place) stays in
                // cache between the two GEMMs instead of a [N, I] round trip through memory (9% faster at 32×128).
                for (int r0 = 0; r0 < n; r0 += FfnChunkRows)
                {
                    int m = Math.Min(FfnChunkRows, n - r0);
                    var f = ffn[..(m * _i)];
                    layer.Intermediate.Forward(x1.Slice(r0 * c, m * c), m, f);
                    clock?.Add(EncoderStage.FfnUpGemm, ref mark);
                    Activate(layer.Activation, f);
                    clock?.Add(EncoderStage.Activation, ref mark);
                    layer.Output.Forward(f, m, tmp.Slice(r0 * c, m * c));
                    clock?.Add(EncoderStage.FfnDownGemm, ref mark);
                }

                ResidualNorm.AddLayerNorm(tmp, x1, layer.Norm2Gamma, layer.Norm2Beta, x, n, c, layer.Norm2Eps);
                clock?.Add(EncoderStage.AddLayerNorm, ref mark);
                hiddenStates?.Add(Snapshot(x, b, t));
                clock?.Add(EncoderStage.Copies, ref mark);
            }

            var last = hiddenStates is null ? Snapshot(x, b, t) : hiddenStates[^1];
            clock?.Add(EncoderStage.Copies, ref mark);
            var pooled = Pool(x, b, t);
            clock?.Add(EncoderStage.Pooler, ref mark);
            return new BertModelOutput(last, pooled, hiddenStates, attentions);
        }
    }

    /// <summary>
    /// Attention as two GEMMs per (sequence, head), read in place from the QKV rows [B·T, 3C]:
    /// S [T, T] = scale · Q_h·K_hᵀ, masked softmax per row, then P·V_h written straight into the head's D columns of
    /// ctx [B·T, C]. All B·H pairs are dealt out in one parallel loop (one fork-join per layer, no scatter copy):
    /// per-sequence batches over H = 12 heads needed three fork-joins and a serial copy each, and scaled 1.4× on
    /// 2 threads at 32×128 where the GEMMs scale 2×. Each pair's GEMMs run on its own thread (a nested parallel
    /// loop runs inline), so results do not depend on the thread count. The GEMM micro-kernel keeps many
    /// independent FMA chains busy, where a row-at-a-time loop waits on FMA latency.
    /// </summary>
    internal static void AttentionByGemm(float[] qkv, float[] mask, float[] ctx, float[]? probabilities, int b, int t, int h, int d)
    {
        int c = h * d, row = 3 * c;
        float scale = 1f / MathF.Sqrt(d);
        ParallelFor.For(b * h, 1, (start, end) =>
        {
            // Scores go straight into the caller's probabilities when asked for, else into pooled scratch.
            float[]? scratch = probabilities is null ? ArrayPool<float>.Shared.Rent(t * t) : null;
            try
            {
                for (int pair = start; pair < end; pair++)
                {
                    int s = pair / h, head = pair % h;
                    var scores = probabilities is null ? scratch.AsSpan(0, t * t) : probabilities.AsSpan(pair * t * t, t * t);
                    int q0 = (s * t * row) + (head * d);
                    Gemm.Sgemm(false, true, t, t, d, scale, qkv.AsSpan(q0), row, qkv.AsSpan(q0 + c), row, 0f, scores, t);
                    // A sequence with no padding takes the unmasked softmax (same result, no per-key select).
                    var keyMask = mask.Length == 0 ? default : mask.AsSpan(s * t, t);
                    if (!HasPadding(keyMask)) keyMask = default;
                    Softmax.ForwardMasked(scores, scores, t, t, false, keyMask);
                    Gemm.Sgemm(false, false, t, d, t, 1f, scores, t, qkv.AsSpan(q0 + (2 * c)), row, 0f, ctx.AsSpan((s * t * c) + (head * d)), c);
                }
            }
            finally
            {
                if (scratch is not null) ArrayPool<float>.Shared.Return(scratch);
            }
        });
    }

    /// <summary>Whether any key is masked out (mask value 0), the test <see cref="Softmax.ForwardMasked"/> applies.</summary>
    private static bool HasPadding(ReadOnlySpan<float> keyMask)
    {
        foreach (float keep in keyMask)
        {
            if (keep == 0f) return true;
        }

        return false;
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

    private Tensor Snapshot(ReadOnlySpan<float> x, int b, int t) => Tensor.FromSpan(x, new Shape(b, t, _c));

    private void EnsureCapacity(int n)
    {
        if (_x.Length >= n * _c) return;
        _x = new float[n * _c];
        _qkv = new float[n * 3 * _c];
        _ctx = new float[n * _c];
        _tmp = new float[n * _c];
        _x1 = new float[n * _c];
        _ffn = new float[Math.Min(n, FfnChunkRows) * _i];
    }

    /// <summary>Packs the fused QKV weights once, and again whenever a parameter was replaced (a new checkpoint loaded).</summary>
    private void PrepareWeights()
    {
        long stamp = 0;
        foreach (var p in _model.Parameters()) stamp += p.Version;
        // A precision change (InferencePrecision.Apply) rebuilds the fused QKV operand too.
        foreach (var (_, module) in _model.NamedModules())
        {
            if (module is Linear linear) stamp = (stamp * 3) + (int)linear.Precision;
        }

        if (stamp == _weightsStamp && _layers.Length > 0) return;
        _layers = [.. ReadLayers()];
        _weightsStamp = stamp;
    }
}

/// <summary>The stages of <see cref="PostLnEncoderInference.Forward"/> that <see cref="EncoderStageClock"/> times.</summary>
internal enum EncoderStage
{
    /// <summary>Reading ids and mask, checking the packed weights are current, sizing the workspace.</summary>
    Inputs,

    /// <summary>Word + position + type embeddings and their LayerNorm.</summary>
    Embeddings,

    /// <summary>The fused [C, 3C] QKV GEMM with its bias (and LoRA adapters, if any).</summary>
    QkvGemm,

    /// <summary>Scores, masked softmax and P·V for every head.</summary>
    Attention,

    /// <summary>The attention output projection with its bias.</summary>
    OutputGemm,

    /// <summary>Residual add + LayerNorm, fused (twice per layer).</summary>
    AddLayerNorm,

    /// <summary>The FFN expansion GEMM with its bias.</summary>
    FfnUpGemm,

    /// <summary>The FFN activation (GELU) in place.</summary>
    Activation,

    /// <summary>The FFN contraction GEMM with its bias.</summary>
    FfnDownGemm,

    /// <summary>Copying hidden states out of the workspace into result tensors.</summary>
    Copies,

    /// <summary>The pooler (first token, dense, tanh), when the model has one.</summary>
    Pooler,
}

/// <summary>
/// Wall time per <see cref="EncoderStage"/> summed over forward calls, for the benchmark's per-op breakdown: set
/// <see cref="Current"/> on the calling thread, run forwards, read <see cref="Seconds"/>. Off (null) it costs one null
/// test per stage.
/// </summary>
internal sealed class EncoderStageClock
{
    private readonly long[] _ticks = new long[Enum.GetValues<EncoderStage>().Length];

    /// <summary>The clock the forwards on this thread add to, or null (the default) for none.</summary>
    [ThreadStatic]
    internal static EncoderStageClock? Current;

    /// <summary>Seconds spent in <paramref name="stage"/> so far.</summary>
    public double Seconds(EncoderStage stage) => (double)_ticks[(int)stage] / Stopwatch.Frequency;

    /// <summary>Adds the time since <paramref name="mark"/> to <paramref name="stage"/> and moves the mark to now.</summary>
    public void Add(EncoderStage stage, ref long mark)
    {
        long now = Stopwatch.GetTimestamp();
        _ticks[(int)stage] += now - mark;
        mark = now;
    }
}

/// <summary>
/// One post-LN encoder layer's weights as the fused path uses them, whatever the checkpoint calls them:
/// Wq, Wk, Wv packed into one [C, 3C] GEMM operand, the attention output projection, the first LayerNorm, the FFN
/// expansion + activation + contraction, the second LayerNorm.
/// </summary>
internal sealed class EncoderLayerWeights
{
    public EncoderLayerWeights(Linear query, Linear key, Linear value, Linear attentionOutput, LayerNorm norm1, Linear intermediate, BertActivationKind activation, Linear output, LayerNorm norm2)
    {
        int c = attentionOutput.InFeatures;
        // Wq, Wk, Wv [C, C] stacked into [3C, C] (the Linear layout), packed once: one GEMM instead of three.
        var stacked = new float[3 * c * c];
        QkvBias = new float[3 * c];
        int part = 0;
        foreach (var linear in new[] { query, key, value })
        {
            linear.Weight.Value.AsReadOnlySpan<float>().CopyTo(stacked.AsSpan(part * c * c, c * c));
            linear.Bias!.Value.AsReadOnlySpan<float>().CopyTo(QkvBias.AsSpan(part * c, c));
            part++;
        }

        // Q, K and V share one precision (InferencePrecision sets every layer); a narrow one gets a fused kernel of its own.
        if (query.Precision != LinearPrecision.F32)
        {
            QkvKernel = LinearKernel.Create(query.Precision, stacked, 3 * c, c);
        }
        else
        {
            Qkv = Gemm.PackB(true, c, 3 * c, stacked, c);
        }

        _query = query;
        _key = key;
        _value = value;
        AttentionOutput = attentionOutput;
        Norm1Gamma = norm1.Weight.Value.ToArray();
        Norm1Beta = norm1.Bias.Value.ToArray();
        Norm1Eps = norm1.Eps;
        Intermediate = intermediate;
        Activation = activation;
        Output = output;
        Norm2Gamma = norm2.Weight.Value.ToArray();
        Norm2Beta = norm2.Bias.Value.ToArray();
        Norm2Eps = norm2.Eps;
    }

    private readonly Linear _query;
    private readonly Linear _key;
    private readonly Linear _value;

    /// <summary>[C, 3C] packed for the F32 GEMM; null when the layer runs a narrow precision (<see cref="QkvKernel"/>).</summary>
    public GemmPackedB? Qkv { get; }

    /// <summary>Wq, Wk, Wv stacked [3C, C] in the layers' narrow precision (BF16, Int8), or null for F32.</summary>
    public LinearKernel? QkvKernel { get; }

    /// <summary>qkv [N, 3C] += the unmerged LoRA updates of Wq, Wk, Wv (the packed QKV operand holds only the base weights).</summary>
    public void AddQkvAdapters(ReadOnlySpan<float> x, int n, Span<float> qkv)
    {
        int c = AttentionOutput.InFeatures;
        _query.Lora?.AddTo(x, n, qkv, 3 * c);
        _key.Lora?.AddTo(x, n, qkv[c..], 3 * c);
        _value.Lora?.AddTo(x, n, qkv[(2 * c)..], 3 * c);
    }

    public float[] QkvBias { get; }

    public Linear AttentionOutput { get; }

    public float[] Norm1Gamma { get; }

    public float[] Norm1Beta { get; }

    public float Norm1Eps { get; }

    public Linear Intermediate { get; }

    public BertActivationKind Activation { get; }

    public Linear Output { get; }

    public float[] Norm2Gamma { get; }

    public float[] Norm2Beta { get; }

    public float Norm2Eps { get; }
}

/// <summary>The fused inference path of a <see cref="BertModel"/> (bert, roberta): word + position + token-type embeddings, optional pooler.</summary>
internal sealed class BertInference(BertModel model)
    : PostLnEncoderInference(model, model.Config.HiddenSize, model.Config.NumAttentionHeads, model.Config.IntermediateSize)
{
    protected override IEnumerable<EncoderLayerWeights> ReadLayers() => model.Encoder.Layers.Select(l => new EncoderLayerWeights(
        l.Attention.Self.Query, l.Attention.Self.Key, l.Attention.Self.Value, l.Attention.Output.Dense, l.Attention.Output.LayerNorm,
        l.Intermediate.Dense, l.Intermediate.Activation, l.Output.Dense, l.Output.LayerNorm));

    /// <summary>x [N, C] = LN(word[id] + position[p] + type[tt]) per token.</summary>
    protected override void Embed(int[] ids, Tensor? tokenTypeIds, int b, int t, Span<float> x)
    {
        var emb = model.Embeddings;
        int c = HiddenSize;
        var types = tokenTypeIds is null ? new int[ids.Length] : BertLoading.ReadIds(tokenTypeIds);
        var positions = emb.PositionIds(ids, b, t);
        var word = emb.WordEmbeddings.Weight.Value.AsReadOnlySpan<float>();
        var position = emb.PositionEmbeddings.Weight.Value.AsReadOnlySpan<float>();
        var type = emb.TokenTypeEmbeddings.Weight.Value.AsReadOnlySpan<float>();
        int vocab = emb.WordEmbeddings.Count, typeCount = emb.TokenTypeEmbeddings.Count;
        for (int i = 0; i < ids.Length; i++)
        {
            if ((uint)ids[i] >= (uint)vocab || (uint)types[i] >= (uint)typeCount)
            {
                ThrowId(ids[i], types[i], i, vocab, typeCount);
            }

            var row = x.Slice(i * c, c);
            TensorPrimitives.Add(word.Slice(ids[i] * c, c), position.Slice(positions[i] * c, c), row);
            TensorPrimitives.Add(row, type.Slice(types[i] * c, c), row);
        }

        Norms.LayerNorm(x, emb.LayerNorm.Weight.Value.AsReadOnlySpan<float>(), emb.LayerNorm.Bias.Value.AsReadOnlySpan<float>(), x, ids.Length, c, emb.LayerNorm.Eps);
    }

    protected override Tensor? Pool(ReadOnlySpan<float> x, int b, int t)
    {
        var pooler = model.Pooler;
        if (pooler is null) return null;
        int c = HiddenSize;
        var first = new float[b * c];
        for (int i = 0; i < b; i++) x.Slice(i * t * c, c).CopyTo(first.AsSpan(i * c, c));
        var pooled = Tensor.Empty(new Shape(b, c));
        var span = pooled.AsSpan<float>();
        pooler.Dense.Forward(first, b, span);
        TensorPrimitives.Tanh(span, span);
        return pooled;
    }

    private static void ThrowId(int id, int type, int position, int vocab, int typeCount) => throw new ArgumentException(
        $"BERT: token id {id} or token type {type} at flat position {position} is outside the model's vocab_size {vocab} / type_vocab_size {typeCount}; the tokenizer does not match the model.");
}
