using Sharpformer.IO.Config;
using Sharpformer.Models.Bert;
using Sharpformer.NN;
using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels;
using Embedding = Sharpformer.NN.Embedding;

namespace Sharpformer.Models.Llama;

/// <summary>
/// The Llama body (HF <c>LlamaModel</c>, path <c>model</c>): <c>embed_tokens</c>, L decoder layers
/// <c>layers.{i}</c> and the final RMSNorm <c>norm</c>; rotary tables from <see cref="LlamaRotary"/>. The module path
/// records gradients; <see cref="Run"/> is the fused inference path over a <see cref="KvCache"/> of width Hkv·D.
/// Position ids count real tokens (cumsum(mask) − 1, padding at 1), as HF generate passes them; without padding that
/// is 0 … T − 1. Not thread-safe: the inference path reuses its buffers.
/// </summary>
public sealed class LlamaModel : Module
{
    private float[] _hidden = [];
    private float[] _normed = [];
    private float[] _q = [];
    private float[] _k = [];
    private float[] _v = [];
    private float[] _qkv = [];
    private float[] _attn = [];
    private float[] _gate = [];
    private float[] _up = [];
    private float[] _keysExpanded = [];
    private float[] _valuesExpanded = [];
    private float[] _probabilityRow = [];
    private float[] _keysWide = [];
    private DType? _kvCacheType;
    private float[] _valuesWide = [];
    private int[] _positions = [];
    private int[] _slotRows = [];
    private int[] _slotPast = [];

    /// <summary>Builds the body through <paramref name="vb"/> rooted at <c>model</c>.</summary>
    /// <param name="config">The model's config.</param>
    /// <param name="vb">The weights' builder.</param>
    /// <param name="dtype">The matrices' type (embed_tokens and every projection): F32 (trainable), F16 or BF16 (inference only). Norms stay F32; compute is F32.</param>
    /// <exception cref="ArgumentException"><paramref name="dtype"/> is not F32, F16 or BF16, or the activation is unknown.</exception>
    /// <exception cref="NotSupportedException">The rope_scaling type is not supported.</exception>
    /// <exception cref="ModelLoadException">A tensor is missing or has the wrong shape; the message names it.</exception>
    public LlamaModel(LlamaConfig config, VarBuilder vb, DType dtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        CheckWeightType(dtype);
        Config = config;
        Rotary = new LlamaRotary(config);
        EmbedTokens = RegisterModule("embed_tokens", new Embedding(config.VocabSize, config.HiddenSize, vb.Push("embed_tokens"), dtype));
        var layers = new LlamaDecoderLayer[config.NumHiddenLayers];
        for (int i = 0; i < layers.Length; i++)
        {
            layers[i] = RegisterModule($"layers.{i}", new LlamaDecoderLayer(config, i, vb.Push("layers", i), dtype));
        }

        Layers = layers;
        Norm = RegisterModule("norm", new RmsNorm(config.HiddenSize, (float)config.RmsNormEps, vb.Push("norm")));
    }

    /// <summary>The validated config.</summary>
    public LlamaConfig Config { get; }

    /// <summary>The rotary tables.</summary>
    public LlamaRotary Rotary { get; }

    /// <summary>Token embeddings [V, C].</summary>
    public Embedding EmbedTokens { get; }

    /// <summary>The decoder layers.</summary>
    public IReadOnlyList<LlamaDecoderLayer> Layers { get; }

    /// <summary>The final RMSNorm.</summary>
    public RmsNorm Norm { get; }

    /// <summary>The type the matrices are kept in.</summary>
    public DType WeightType => EmbedTokens.Weight.DType;

    /// <summary>True when a forward takes the fused path: eval mode and nothing to record.</summary>
    public bool UsesFastPath => !Training && !(Autograd.IsGradEnabled && Parameters().Any(p => p.RequiresGrad));

    /// <summary>Checkpoint every layer in the autograd path: activations inside the layers are recomputed in backward.</summary>
    public bool GradientCheckpointing { get; set; }

    /// <summary>The module path: ids [B, T] → the final norm's output [B, T, C] (autograd), whatever the mode.</summary>
    /// <param name="inputIds">I32/I64 [B, T].</param>
    /// <param name="ids">The same ids, read.</param>
    /// <param name="mask">[B, T] 1/0 or null.</param>
    /// <param name="batch">B.</param>
    /// <param name="outputAttentions">Also return attention weights.</param>
    /// <param name="outputHiddenStates">Also return hidden states.</param>
    /// <returns>The hidden state in <see cref="LlamaOutput.Logits"/>, plus what was asked.</returns>
    /// <exception cref="InvalidOperationException">The weights are F16/BF16 (load F32 to train).</exception>
    internal LlamaOutput ForwardModules(Tensor inputIds, int[] ids, float[]? mask, int batch, bool outputAttentions, bool outputHiddenStates)
    {
        if (WeightType != DType.F32)
        {
            throw new InvalidOperationException(
                $"Llama: the weights were loaded as {WeightType}, which serves inference only; training (or a forward that records gradients) needs F32. Load with DType.F32 to train, or call Eval() and run under Autograd.NoGrad() for the fast path.");
        }

        int tokens = ids.Length / batch;
        var positions = new int[ids.Length];
        PositionIds(mask, batch, tokens, positions);
        var rope = Rotary.For(positions.Max());
        var positionTensor = Tensor.FromArray(positions, new Shape(batch, tokens));
        var maskTensor = mask is null ? null : Tensor.FromArray(mask, new Shape(batch, tokens));
        var hiddenStates = outputHiddenStates ? new List<Tensor>() : null;
        var attentions = outputAttentions ? new List<Tensor>() : null;

        var h = EmbedTokens.Forward(inputIds);
        bool checkpoint = GradientCheckpointing && !outputAttentions && Autograd.IsGradEnabled;
        foreach (var layer in Layers)
        {
            hiddenStates?.Add(h);
            Tensor? probabilities = null;
            h = checkpoint
                ? NN.GradientCheckpointing.Run(layer, x => layer.Forward(x, positionTensor, rope, maskTensor, false, out _), h)
                : layer.Forward(h, positionTensor, rope, maskTensor, outputAttentions, out probabilities);
            if (probabilities is not null)
            {
                attentions!.Add(probabilities);
            }
        }

        h = Norm.Forward(h);
        hiddenStates?.Add(h);
        return new LlamaOutput(h, null, hiddenStates, attentions);
    }

    /// <summary>Position ids [B·T] from a [B, T] mask as the KV cache assigns them: real tokens count from 0, padding gets 1; no mask: 0 … T − 1.</summary>
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

    /// <summary>Allocates a KV cache (width Hkv·D) for this model.</summary>
    /// <param name="batch">B.</param>
    /// <param name="capacity">Tmax, at most max_position_embeddings.</param>
    /// <returns>An empty cache.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The capacity exceeds the context or a size is not positive.</exception>
    public KvCache CreateCache(int batch, int capacity)
    {
        if (capacity > Config.MaxPositionEmbeddings)
        {
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity,
                $"Llama cache capacity {capacity} exceeds the model's context max_position_embeddings={Config.MaxPositionEmbeddings}.");
        }

        return new KvCache(Config.NumHiddenLayers, batch, capacity, Config.NumKeyValueHeads * Config.HeadDim, KvCacheType);
    }

    /// <summary>
    /// How the caches <see cref="CreateCache"/> makes store K and V (<see cref="IKvCacheElementType"/>): by default F16 when
    /// the weights are F16, BF16 or quantized (llama.cpp's default cache type), F32 when they are F32.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Set to a type other than F32 or F16.</exception>
    public DType KvCacheType
    {
        get => _kvCacheType ?? (WeightType != DType.F32 || Layers.Any(l => l.SelfAttn.OProj.QuantizedWeight is not null) ? DType.F16 : DType.F32);
        set => _kvCacheType = value is DType.F32 or DType.F16 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "Llama: the KV cache stores F32 or F16.");
    }

    /// <summary>Checks [B, T] ids (and mask) against the vocabulary; returns T.</summary>
    internal int CheckInputs(ReadOnlySpan<int> ids, int batch, ReadOnlySpan<float> attentionMask)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        if (ids.Length == 0 || ids.Length % batch != 0)
        {
            throw new ArgumentException($"Llama forward: {ids.Length} ids do not form [B={batch}, T] with T ≥ 1; pass B equal rows of ids.", nameof(ids));
        }

        if (!attentionMask.IsEmpty && attentionMask.Length != ids.Length)
        {
            throw new ArgumentException($"Llama forward: attention mask has {attentionMask.Length} values, ids [B={batch}, T={ids.Length / batch}] need {ids.Length}.", nameof(attentionMask));
        }

        foreach (int id in ids)
        {
            if ((uint)id >= (uint)Config.VocabSize)
            {
                throw new ArgumentException($"Llama forward: token id {id} is outside the vocabulary [0, {Config.VocabSize}); use the model's own tokenizer.", nameof(ids));
            }
        }

        return ids.Length / batch;
    }

    /// <summary>
    /// The fused path: runs the body over T new tokens per sequence, appending their K/V to <paramref name="cache"/>;
    /// the result (after the final norm when <paramref name="finalNorm"/>) is [B·T, C]. With <paramref name="slots"/>
    /// empty every cache sequence advances in lockstep; otherwise row b belongs to cache sequence slots[b].
    /// </summary>
    internal Span<float> Run(ReadOnlySpan<int> ids, ReadOnlySpan<float> attentionMask, int batch, int tokens, KvCache cache,
        List<Tensor>? hiddenStates, List<Tensor>? attentions, bool finalNorm = true, ReadOnlySpan<int> slots = default)
    {
        int c = Config.HiddenSize, heads = Config.NumAttentionHeads, kvHeads = Config.NumKeyValueHeads, d = Config.HeadDim;
        int qWidth = heads * d, kvWidth = kvHeads * d, rows = batch * tokens, inner = Config.IntermediateSize;
        if (slots.IsEmpty && cache.Batch != batch)
        {
            throw new ArgumentException($"Llama forward: the cache holds B={cache.Batch} sequences but the ids have B={batch}.", nameof(cache));
        }

        if (cache.Capacity > Config.MaxPositionEmbeddings || cache.Layers != Layers.Count || cache.Width != kvWidth)
        {
            throw new ArgumentException(
                $"Llama forward: the cache ({cache.Layers} layers × {cache.Width} wide, capacity {cache.Capacity}) was not made for this model ({Layers.Count} layers × Hkv·D={kvWidth}, context {Config.MaxPositionEmbeddings}); create it with CreateCache.",
                nameof(cache));
        }

        EnsureBuffers(rows);
        var rowOf = _slotRows.AsSpan(0, batch);
        var pastOf = _slotPast.AsSpan(0, batch);
        for (int b = 0; b < batch; b++)
        {
            rowOf[b] = slots.IsEmpty ? b : slots[b];
            pastOf[b] = slots.IsEmpty ? cache.Length : cache.SequenceLength(rowOf[b]);
            if (pastOf[b] + tokens > cache.Capacity)
            {
                throw new ArgumentException(
                    $"Llama forward: {pastOf[b]} cached + {tokens} new tokens exceed the cache capacity {cache.Capacity} (context max_position_embeddings={Config.MaxPositionEmbeddings}); shorten the input or allocate a larger cache.",
                    nameof(cache));
            }
        }

        int longest = 0;
        foreach (int past in pastOf)
        {
            longest = Math.Max(longest, past + tokens);
        }

        EnsureKeyScratch(longest, cache.ElementType);
        var h = _hidden.AsSpan(0, rows * c);
        var x = _normed.AsSpan(0, rows * c);
        var q = _q.AsSpan(0, rows * qWidth);
        var k = _k.AsSpan(0, rows * kvWidth);
        var v = _v.AsSpan(0, rows * kvWidth);
        var att = _attn.AsSpan(0, rows * qWidth);
        var positions = _positions.AsSpan(0, rows);
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

        int maxPosition = 0;
        foreach (int p in positions)
        {
            maxPosition = Math.Max(maxPosition, p);
        }

        var rope = Rotary.For(maxPosition);
        for (int r = 0; r < rows; r++)
        {
            EmbedTokens.CopyRow(ids[r], h.Slice(r * c, c));
        }

        for (int layer = 0; layer < Layers.Count; layer++)
        {
            hiddenStates?.Add(Tensor.FromSpan<float>(h, new Shape(batch, tokens, c)));
            var block = Layers[layer];
            var attn = block.SelfAttn;

            // Attention: x = input_layernorm(h); q, k, v; rotary on q and k; new K/V into the cache at past..past+T.
            Norms.RmsNorm(h, block.InputLayernorm.Weight.Value.AsReadOnlySpan<float>(), x, rows, c, block.InputLayernorm.Eps);
            if (attn.QkvProj is not null)
            {
                var qkv = _qkv.AsSpan(0, rows * (qWidth + (2 * kvWidth)));
                attn.QkvProj.Apply(x, rows, qkv, accumulate: false);
                int stride = qWidth + (2 * kvWidth);
                for (int r = 0; r < rows; r++)
                {
                    var row = qkv.Slice(r * stride, stride);
                    row[..qWidth].CopyTo(q.Slice(r * qWidth, qWidth));
                    row.Slice(qWidth, kvWidth).CopyTo(k.Slice(r * kvWidth, kvWidth));
                    row.Slice(qWidth + kvWidth, kvWidth).CopyTo(v.Slice(r * kvWidth, kvWidth));
                }
            }
            else
            {
                // One parallel region (and, for quantized weights, one quantization of x) for the three products.
                Linear.ApplyShared(x, rows, attn.QProj!, q, attn.KProj!, k, attn.VProj!, v);
            }

            rope.Apply(q, rows, qWidth, heads, positions);
            rope.Apply(k, rows, kvWidth, kvHeads, positions);

            // A decoding step over an F16 cache writes its K/V row inside the attention kernel (the caller's task of the
            // region stores it before reading its block), not in a serial step before the fork.
            bool append = tokens == 1 && attentions is null && cache.ElementType == DType.F16;
            for (int r = 0; r < rows && !append; r++)
            {
                int b = r / tokens;
                cache.WriteRow(layer, rowOf[b], pastOf[b] + (r % tokens), k.Slice(r * kvWidth, kvWidth), v.Slice(r * kvWidth, kvWidth));
            }

            int keysAll = pastOf[0] + tokens;
            float[]? probs = attentions is null ? null : new float[batch * heads * tokens * keysAll];
            for (int b = 0; b < batch; b++)
            {
                int keys = pastOf[b] + tokens, row = rowOf[b];
                var qb = q.Slice(b * tokens * qWidth, tokens * qWidth);
                var mask = cache.Mask.Slice(row * cache.Capacity, keys);
                var ob = att.Slice(b * tokens * qWidth, tokens * qWidth);
                var pb = probs is null ? default : probs.AsSpan(b * heads * tokens * keys, heads * tokens * keys);
                if (cache.ElementType == DType.F32)
                {
                    Attend(attn, qb, cache.Keys(layer).Slice(row * cache.Capacity * kvWidth, keys * kvWidth),
                        cache.Values(layer).Slice(row * cache.Capacity * kvWidth, keys * kvWidth), mask, ob, pastOf[b], tokens, pb);
                    continue;
                }

                var halfK = cache.KeysHalf(layer).Slice(row * cache.Capacity * kvWidth, keys * kvWidth);
                var halfV = cache.ValuesHalf(layer).Slice(row * cache.Capacity * kvWidth, keys * kvWidth);
                if (append)
                {
                    AppendDecodeHalf(attn, qb, k.Slice(b * kvWidth, kvWidth), v.Slice(b * kvWidth, kvWidth), halfK, halfV, mask, ob, keys);
                    continue;
                }

                // Prefill (or weights requested) over an F16 cache: the sequence's rows widened to F32 (exactly), then as above.
                var wideK = _keysWide.AsSpan(0, keys * kvWidth);
                var wideV = _valuesWide.AsSpan(0, keys * kvWidth);
                System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(halfK, wideK);
                System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(halfV, wideV);
                Attend(attn, qb, wideK, wideV, mask, ob, pastOf[b], tokens, pb);
            }

            if (probs is not null)
            {
                attentions!.Add(Tensor.FromArray(probs, new Shape(batch, heads, tokens, keysAll)));
            }

            attn.OProj.Apply(att, rows, h, accumulate: true);

            // MLP: h += down(silu(gate(x)) · up(x)), x = post_attention_layernorm(h).
            Norms.RmsNorm(h, block.PostAttentionLayernorm.Weight.Value.AsReadOnlySpan<float>(), x, rows, c, block.PostAttentionLayernorm.Eps);
            var gate = _gate.AsSpan(0, rows * inner);
            var mlp = block.Mlp;
            if (mlp.GateUpProj is not null)
            {
                var gateUp = _up.AsSpan(0, rows * 2 * inner);
                mlp.GateUpProj.Apply(x, rows, gateUp, accumulate: false);
                for (int r = 0; r < rows; r++)
                {
                    var src = gateUp.Slice(r * 2 * inner, 2 * inner);
                    var dst = gate.Slice(r * inner, inner);
                    Activate(mlp.Activation, src[..inner], dst);
                    Elementwise.Multiply(dst, src.Slice(inner, inner), dst);
                }
            }
            else
            {
                var up = _up.AsSpan(0, rows * inner);
                Linear.ApplyShared(x, rows, mlp.GateProj!, gate, mlp.UpProj!, up);
                Activate(mlp.Activation, gate, gate);
                Elementwise.Multiply(gate, up, gate);
            }

            mlp.DownProj.Apply(gate, rows, h, accumulate: true);
        }

        if (finalNorm)
        {
            FinalNorm(h, rows);
        }

        return h;
    }

    internal void FinalNorm(Span<float> rows, int count) =>
        Norms.RmsNorm(rows, Norm.Weight.Value.AsReadOnlySpan<float>(), rows, count, Config.HiddenSize, Norm.Eps);

    /// <summary>
    /// One sequence's decoding step over its F16 cache rows (<paramref name="keys"/> of them, Hkv·D halves each) that
    /// first stores its own key and value as row <paramref name="keys"/> − 1 inside the attention kernel: the grouped
    /// kernel under grouped-query attention, the all-heads kernel otherwise; keys before the sliding window are left out
    /// (the new row is always inside it).
    /// </summary>
    private static void AppendDecodeHalf(LlamaAttention attn, ReadOnlySpan<float> q, ReadOnlySpan<float> newKey, ReadOnlySpan<float> newValue,
        Span<Half> k, Span<Half> v, ReadOnlySpan<float> keyMask, Span<float> output, int keys)
    {
        int heads = attn.NumHeads, kvHeads = attn.NumKeyValueHeads, d = attn.HeadDim, kvWidth = kvHeads * d;
        float scale = 1f / MathF.Sqrt(d);
        int first = SlidingWindow.FirstVisibleKey(keys - 1, attn.Window), count = keys - first;
        if (heads != kvHeads)
        {
            Attention.DecodeGroupedHalfAppend(
                heads, kvHeads, d, count, kvWidth, q, newKey, newValue, k.Slice(first * kvWidth), v.Slice(first * kvWidth), keyMask.Slice(first, count), output, scale);
            return;
        }

        Attention.ForwardHalfAppend(new AttentionShape(1, heads, 1, count, d), q, newKey, newValue, k.Slice(first * kvWidth), v.Slice(first * kvWidth), output,
            keyMask.Slice(first, count), scale);
    }

    /// <summary>
    /// One sequence's attention over its cached keys: q [T, H·D] → out [T, H·D], key j visible to query t (cache index
    /// past + t) when j ≤ past + t, inside the sliding window, and not padding. K/V are [Tk, Hkv·D].
    /// </summary>
    private void Attend(LlamaAttention attn, ReadOnlySpan<float> q, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, ReadOnlySpan<float> keyMask,
        Span<float> output, int past, int tokens, Span<float> probabilities)
    {
        int heads = attn.NumHeads, kvHeads = attn.NumKeyValueHeads, d = attn.HeadDim, rep = heads / kvHeads;
        int qWidth = heads * d, kvWidth = kvHeads * d, tk = past + tokens;
        float scale = 1f / MathF.Sqrt(d);
        if (rep > 1 && tokens == 1 && probabilities.IsEmpty)
        {
            // A decoding step under grouped-query attention: each cached K/V row read once for all the query heads that
            // share it (no copies), the keys split in blocks between the threads.
            int first = SlidingWindow.FirstVisibleKey(tk - 1, attn.Window), count = tk - first;
            Attention.DecodeGrouped(heads, kvHeads, d, count, kvWidth, q, keys.Slice(first * kvWidth), values.Slice(first * kvWidth), keyMask.Slice(first, count), output, scale);
            return;
        }

        if (rep > 1)
        {
            // Prefill (or weights requested): expand each K/V head to its query heads once, then attend all heads at once.
            var kx = _keysExpanded.AsSpan(0, tk * qWidth);
            var vx = _valuesExpanded.AsSpan(0, tk * qWidth);
            for (int j = 0; j < tk; j++)
            {
                for (int h = 0; h < heads; h++)
                {
                    keys.Slice((j * kvWidth) + (h / rep * d), d).CopyTo(kx.Slice((j * qWidth) + (h * d), d));
                    values.Slice((j * kvWidth) + (h / rep * d), d).CopyTo(vx.Slice((j * qWidth) + (h * d), d));
                }
            }

            keys = kx;
            values = vx;
        }

        if (!SlidingWindow.Cuts(past, tokens, attn.Window))
        {
            Attention.Forward(new AttentionShape(1, heads, tokens, tk, d), q, keys, values, output, causal: true, keyPaddingMask: keyMask, scale: scale, probabilities: probabilities);
            return;
        }

        // The window hides early keys from late queries: each query over its own window of keys.
        for (int t = 0; t < tokens; t++)
        {
            int i = past + t, first = SlidingWindow.FirstVisibleKey(i, attn.Window), count = i - first + 1;
            var row = probabilities.IsEmpty ? default : _probabilityRow.AsSpan(0, heads * count);
            var shape = new AttentionShape(1, heads, 1, count, d) { QueryRowStride = qWidth, OutputRowStride = qWidth };
            Attention.Forward(shape, q.Slice(t * qWidth, qWidth), keys.Slice(first * qWidth), values.Slice(first * qWidth), output.Slice(t * qWidth, qWidth),
                causal: false, keyPaddingMask: keyMask.Slice(first, count), scale: scale, probabilities: row);
            if (!probabilities.IsEmpty)
            {
                for (int h = 0; h < heads; h++)
                {
                    var dst = probabilities.Slice(((h * tokens) + t) * tk, tk);
                    dst.Clear();
                    row.Slice(h * count, count).CopyTo(dst.Slice(first, count));
                }
            }
        }
    }

    /// <summary>Throws unless <paramref name="dtype"/> is a type the matrices can be kept in.</summary>
    internal static void CheckWeightType(DType dtype)
    {
        if (dtype is not (DType.F32 or DType.F16 or DType.BF16))
        {
            throw new ArgumentException($"Llama: weight dtype {dtype} is not supported; use DType.F32, DType.F16 or DType.BF16 (the matrices are kept in it, compute stays F32).", nameof(dtype));
        }
    }

    private static void Activate(BertActivationKind kind, ReadOnlySpan<float> x, Span<float> y)
    {
        switch (kind)
        {
            case BertActivationKind.Gelu: Activations.Gelu(x, y); break;
            case BertActivationKind.GeluTanh: Activations.GeluTanh(x, y); break;
            case BertActivationKind.Relu: Activations.Relu(x, y); break;
            default: Activations.Silu(x, y); break;
        }
    }

    private void EnsureBuffers(int rows)
    {
        int c = Config.HiddenSize, qWidth = Config.NumAttentionHeads * Config.HeadDim, kvWidth = Config.NumKeyValueHeads * Config.HeadDim;
        int inner = Config.IntermediateSize;
        if (_hidden.Length < rows * c)
        {
            _hidden = new float[rows * c];
            _normed = new float[rows * c];
            _q = new float[rows * qWidth];
            _k = new float[rows * kvWidth];
            _v = new float[rows * kvWidth];
            _qkv = Config.FusedProjections ? new float[rows * (qWidth + (2 * kvWidth))] : [];
            _attn = new float[rows * qWidth];
            _gate = new float[rows * inner];
            _up = new float[rows * inner * (Config.FusedProjections ? 2 : 1)];
            _positions = new int[rows];
            _slotRows = new int[rows];
            _slotPast = new int[rows];
        }
    }

    /// <summary>Grows the expanded K/V and probability-row scratch to <paramref name="keys"/> keys.</summary>
    private void EnsureKeyScratch(int keys, DType cacheType)
    {
        int qWidth = Config.NumAttentionHeads * Config.HeadDim, kvWidth = Config.NumKeyValueHeads * Config.HeadDim;
        if (cacheType == DType.F16 && _keysWide.Length < keys * kvWidth)
        {
            _keysWide = new float[keys * kvWidth];
            _valuesWide = new float[keys * kvWidth];
        }

        if (Config.NumKeyValueHeads != Config.NumAttentionHeads && _keysExpanded.Length < keys * qWidth)
        {
            _keysExpanded = new float[keys * qWidth];
            _valuesExpanded = new float[keys * qWidth];
        }

        if (_probabilityRow.Length < keys * Config.NumAttentionHeads)
        {
            _probabilityRow = new float[keys * Config.NumAttentionHeads];
        }
    }
}
