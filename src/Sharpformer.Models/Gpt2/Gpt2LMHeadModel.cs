using System.Diagnostics;
using Sharpformer.IO.Config;
using Sharpformer.IO.SafeTensors;
using Sharpformer.NN;
using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels;
using Sharpformer.Tensors.Storage;
using Sharpformer.Tensors.Threading;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace Sharpformer.Models.Gpt2;

/// <summary>What one GPT-2 forward returns.</summary>
/// <param name="Logits">[B, T, V] next-token logits (from <see cref="Gpt2LMHeadModel"/>), or the last hidden state [B, T, C] (from <see cref="Gpt2Model"/>).</param>
/// <param name="HiddenStates">When asked: the embeddings and the input of every later block, then the final ln_f output (n_layer + 1 tensors [B, T, C]), as HF returns them.</param>
/// <param name="Attentions">When asked: every layer's attention weights [B, H, T, Tk].</param>
public sealed record Gpt2Output(Tensor Logits, IReadOnlyList<Tensor>? HiddenStates, IReadOnlyList<Tensor>? Attentions);

/// <summary>
/// One dense layer stored [out, in] in F32, F16 or BF16 (HF's Conv1D keeps [in, out]; it is transposed once at load),
/// with its F32 bias. Decode steps (≤ <see cref="Gemv.MaxRows"/> rows) stream the weight once through
/// <see cref="Gemv.MatVec(ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, int, ReadOnlySpan{float}, Span{float}, bool)"/>
/// in its stored type. Prefills (more rows) run the packed GEMM: F32 weights are packed once, lazily; F16/BF16 weights
/// are widened a block of output rows at a time into the model's shared <see cref="WidenScratch"/> and multiplied from
/// there, so no permanent F32 copy of a narrow weight ever exists.
/// </summary>
internal sealed class DenseWeight
{
    // Exactly one is set (by DType); each is 64-byte aligned, on huge pages where the OS allows (AlignedBuffer).
    private readonly ArraySegment<float> _f32;
    private readonly ArraySegment<Half> _f16;
    private readonly ArraySegment<BFloat16> _bf16;
    private readonly WidenScratch _scratch;
    private GemmPackedB? _packed;

    private DenseWeight(ArraySegment<float> f32, ArraySegment<Half> f16, ArraySegment<BFloat16> bf16, DType dtype, float[] bias, int inFeatures, int outFeatures, WidenScratch scratch)
    {
        _f32 = f32;
        _f16 = f16;
        _bf16 = bf16;
        DType = dtype;
        Bias = bias;
        In = inFeatures;
        Out = outFeatures;
        _scratch = scratch;
    }

    public DType DType { get; }

    public float[] Bias { get; }

    public int In { get; }

    public int Out { get; }

    /// <summary>Wraps a contiguous [out, in] tensor of F32, F16 or BF16 (its elements are copied into an owned aligned buffer).</summary>
    public static DenseWeight FromTensor(Tensor weight, float[] bias, WidenScratch scratch)
    {
        Debug.Assert(weight.Rank == 2 && weight.IsContiguous);
        int outFeatures = weight.Shape[0], inFeatures = weight.Shape[1];
        return weight.DType switch
        {
            DType.F32 => new DenseWeight(AlignedBuffer.Copy(weight.AsReadOnlySpan<float>()), default, default, DType.F32, bias, inFeatures, outFeatures, scratch),
            DType.F16 => new DenseWeight(default, AlignedBuffer.Copy(weight.AsReadOnlySpan<Half>()), default, DType.F16, bias, inFeatures, outFeatures, scratch),
            DType.BF16 => new DenseWeight(default, default, AlignedBuffer.Copy(weight.AsReadOnlySpan<BFloat16>()), DType.BF16, bias, inFeatures, outFeatures, scratch),
            _ => throw new UnreachableException($"DenseWeight: {weight.DType} is not a weight type."),
        };
    }

    /// <summary>An HF Conv1D weight [in, out] (any weight type) transposed to [out, in] in the same type.</summary>
    public static DenseWeight FromConv1D(Tensor weightInOut, float[] bias, WidenScratch scratch)
    {
        Debug.Assert(weightInOut.Rank == 2 && weightInOut.IsContiguous);
        int inFeatures = weightInOut.Shape[0], outFeatures = weightInOut.Shape[1];
        return weightInOut.DType switch
        {
            DType.F32 => new DenseWeight(Transpose(weightInOut.AsReadOnlySpan<float>(), inFeatures, outFeatures), default, default, DType.F32, bias, inFeatures, outFeatures, scratch),
            DType.F16 => new DenseWeight(default, Transpose(weightInOut.AsReadOnlySpan<Half>(), inFeatures, outFeatures), default, DType.F16, bias, inFeatures, outFeatures, scratch),
            DType.BF16 => new DenseWeight(default, default, Transpose(weightInOut.AsReadOnlySpan<BFloat16>(), inFeatures, outFeatures), DType.BF16, bias, inFeatures, outFeatures, scratch),
            _ => throw new UnreachableException($"DenseWeight: {weightInOut.DType} is not a weight type."),
        };
    }

    /// <summary>Row <paramref name="row"/> of W [out, in] widened to F32 into <paramref name="destination"/> [in] (the embedding gather).</summary>
    public void CopyRow(int row, Span<float> destination) => WidenRows(row, 1, destination);

    /// <summary>y [rows, out] = x [rows, in] · Wᵀ + bias (+ y when <paramref name="accumulate"/>: the residual add).</summary>
    public void Apply(ReadOnlySpan<float> x, int rows, Span<float> y, bool accumulate)
    {
        if (rows <= Gemv.MaxRows)
        {
            // Decode: each weight row streamed once, in its stored type, for all rows; no packing.
            switch (DType)
            {
                case DType.F16: Gemv.MatVec(x, rows, _f16, In, Out, Bias, y, accumulate); break;
                case DType.BF16: Gemv.MatVec(x, rows, _bf16, In, Out, Bias, y, accumulate); break;
                default: Gemv.MatVec(x, rows, _f32, In, Out, Bias, y, accumulate); break;
            }

            return;
        }

        float beta = accumulate ? 1f : 0f;
        if (DType == DType.F32)
        {
            _packed ??= Gemm.PackB(true, In, Out, _f32, In);
            Gemm.Sgemm(false, rows, 1f, x, In, _packed, beta, y, Out, Bias);
            return;
        }

        // Prefill with a narrow weight: widen a block of output rows [n0, n0 + count) of W [out, in] into the scratch,
        // then y[:, n0 .. n0 + count) = x · blockᵀ (+ bias); the GEMM packs the block itself. The widening reads the
        // weight once per call, which the rows·in·out multiply-adds of a prefill amortize.
        int block = WidenScratch.RowsPerBlock(In, Out);
        var scratch = _scratch.Get(block * In);
        for (int n0 = 0; n0 < Out; n0 += block)
        {
            int count = Math.Min(block, Out - n0);
            WidenRowsParallel(n0, count, scratch);
            Gemm.Sgemm(false, true, rows, count, In, 1f, x, In, scratch.AsSpan(0, count * In), In, beta, y[n0..], Out, Bias.Length == 0 ? default : Bias.AsSpan(n0, count));
        }
    }

    /// <summary>
    /// <see cref="WidenRows"/> split over the cores by rows: the widening is one streaming pass over the weight, and on
    /// one thread it would leave the other cores idle between the (parallel) GEMMs.
    /// </summary>
    private void WidenRowsParallel(int start, int count, float[] destination)
    {
        // About 64K weights per chunk: large enough to amortize a claim, small enough to balance.
        int grain = Math.Max(1, (1 << 16) / In);
        ParallelFor.For(count, grain, (from, to) => WidenRows(start + from, to - from, destination.AsSpan(from * In, (to - from) * In)));
    }

    /// <summary>Rows [start, start + count) of W [out, in] as F32 into <paramref name="destination"/> [count, in].</summary>
    private void WidenRows(int start, int count, Span<float> destination)
    {
        int offset = start * In, length = count * In;
        switch (DType)
        {
            case DType.F16: TensorPrimitives.ConvertToSingle(_f16.AsSpan(offset, length), destination[..length]); break;
            case DType.BF16: Sharpformer.Tensors.Kernels.Convert.BF16ToF32(_bf16.AsSpan(offset, length), destination[..length]); break;
            default: _f32.AsSpan(offset, length).CopyTo(destination); break;
        }
    }

    /// <summary>src [rows, cols] → [cols, rows] in a new aligned buffer, element type kept (F16/BF16 are transposed without widening).</summary>
    private static ArraySegment<T> Transpose<T>(ReadOnlySpan<T> source, int rows, int cols)
        where T : unmanaged
    {
        var buffer = AlignedBuffer.Allocate<T>(source.Length);
        var transposed = buffer.AsSpan();
        for (int i = 0; i < rows; i++)
        {
            for (int o = 0; o < cols; o++)
            {
                transposed[o * rows + i] = source[i * cols + o];
            }
        }

        return buffer;
    }
}

/// <summary>
/// One F32 buffer per model that narrow (F16/BF16) weights widen into during prefills, shared by every layer (the
/// model runs one layer at a time and is not thread-safe). Its size is bounded: at most <see cref="MaxFloats"/>, so a
/// large matrix (the tied LM head [V, C]) is widened and multiplied in blocks of output rows.
/// </summary>
internal sealed class WidenScratch
{
    /// <summary>16 MiB of floats: every GPT-2 (124M to 1.5B) block matrix except c_fc/c_proj of the largest fits at once.</summary>
    public const int MaxFloats = 1 << 22;

    private float[] _buffer = [];

    /// <summary>Output rows per widened block of a [out, in] weight: all of them when they fit, else a multiple of 64 (whole GEMM panels).</summary>
    public static int RowsPerBlock(int inFeatures, int outFeatures)
    {
        int fit = Math.Max(1, MaxFloats / inFeatures);
        return fit >= outFeatures ? outFeatures : Math.Max(1, fit / 64 * 64);
    }

    /// <summary>A buffer of at least <paramref name="floats"/> elements, grown (never shrunk) on demand.</summary>
    public float[] Get(int floats)
    {
        if (_buffer.Length < floats)
        {
            _buffer = new float[floats];
        }

        return _buffer;
    }
}

/// <summary>
/// GPT-2's transformer body (HF <c>GPT2Model</c>): token + learned position embeddings, n_layer pre-LN blocks of causal
/// self-attention and an MLP, and the final LayerNorm ln_f. Loads HF checkpoints (<c>transformer.wte</c>, <c>wpe</c>,
/// <c>h.{i}.ln_1</c>, <c>attn.c_attn</c>, <c>attn.c_proj</c>, <c>ln_2</c>, <c>mlp.c_fc</c>, <c>mlp.c_proj</c>,
/// <c>ln_f</c>), with or without the <c>transformer.</c> prefix. Inference only (no dropout, no autograd).
/// Not thread-safe: a model reuses its work buffers between calls.
/// </summary>
public sealed class Gpt2Model
{
    private readonly Block[] _blocks;
    private readonly float[] _lnFGamma;
    private readonly float[] _lnFBeta;
    private readonly Action<ReadOnlySpan<float>, Span<float>> _activation;

    // Work buffers, grown to the largest B·T seen and reused (decode steps allocate nothing).
    private float[] _hidden = [];
    private float[] _normed = [];
    private float[] _qkv = [];
    private float[] _attn = [];
    private float[] _mlp = [];
    private int[] _positions = [];

    private Gpt2Model(Gpt2Config config, DenseWeight wte, float[] wpe, Block[] blocks, float[] lnFGamma, float[] lnFBeta)
    {
        Config = config;
        TokenEmbedding = wte;
        PositionEmbedding = wpe;
        _blocks = blocks;
        _lnFGamma = lnFGamma;
        _lnFBeta = lnFBeta;
        _activation = ActivationFor(config.ActivationFunction);
    }

    /// <summary>The validated config.json.</summary>
    public Gpt2Config Config { get; }

    /// <summary>The type the matrices (wte, c_attn, c_proj, c_fc) are kept in: F32, F16 or BF16.</summary>
    public DType WeightType => TokenEmbedding.DType;

    /// <summary>wte [V, C] in <see cref="WeightType"/>; the LM head reuses it (tied: [out = V, in = C], no bias).</summary>
    internal DenseWeight TokenEmbedding { get; }

    /// <summary>wpe [n_positions, C].</summary>
    internal float[] PositionEmbedding { get; }

    /// <summary>
    /// Reads the body's weights through <paramref name="vb"/>, rooted at the body (HF's <c>transformer.</c> prefix
    /// already pushed when the checkpoint has it); <see cref="VarBuilder.FromInit"/> gives a random model.
    /// </summary>
    /// <param name="config">The model's config.</param>
    /// <param name="vb">The weights' builder.</param>
    /// <param name="dtype">
    /// The type the matrices (wte, which is also the tied LM head, c_attn, attn.c_proj, c_fc, mlp.c_proj) are kept in,
    /// like HF's <c>torch_dtype</c>: F32, F16 or BF16. LayerNorm parameters, biases and wpe stay F32; compute is F32.
    /// </param>
    /// <returns>The model, weights copied into managed memory.</returns>
    /// <exception cref="ArgumentException"><paramref name="dtype"/> is not F32, F16 or BF16.</exception>
    /// <exception cref="ModelLoadException">A tensor is missing or has the wrong shape; the message names it.</exception>
    public static Gpt2Model Load(Gpt2Config config, VarBuilder vb, DType dtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        CheckWeightType(dtype);
        int c = config.HiddenSize, inner = config.IntermediateSize;
        var scratch = new WidenScratch();
        var wte = DenseWeight.FromTensor(vb.Get(new Shape(config.VocabSize, c), "wte.weight", dtype), [], scratch);
        var wpe = Read(vb, "wpe.weight", config.MaxPositionEmbeddings, c);
        var blocks = new Block[config.NumHiddenLayers];
        for (int i = 0; i < blocks.Length; i++)
        {
            var h = vb.Push("h", i);
            // The causal-mask buffers old checkpoints carry are not weights: count them as used so the report stays clean.
            h.MarkUsed("attn.bias");
            h.MarkUsed("attn.masked_bias");
            blocks[i] = new Block(
                Read(h, "ln_1.weight", c, Init.Ones), Read(h, "ln_1.bias", c, Init.Zeros),
                Conv1D(h.Push("attn.c_attn"), c, 3 * c, dtype, scratch),
                Conv1D(h.Push("attn.c_proj"), c, c, dtype, scratch),
                Read(h, "ln_2.weight", c, Init.Ones), Read(h, "ln_2.bias", c, Init.Zeros),
                Conv1D(h.Push("mlp.c_fc"), c, inner, dtype, scratch),
                Conv1D(h.Push("mlp.c_proj"), inner, c, dtype, scratch));
        }

        return new Gpt2Model(config, wte, wpe, blocks, Read(vb, "ln_f.weight", c, Init.Ones), Read(vb, "ln_f.bias", c, Init.Zeros));
    }

    /// <summary>
    /// ids [B, T] → last hidden state [B, T, C] after ln_f (HF <c>last_hidden_state</c>).
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
        return new Gpt2Output(last, hiddenStates, attentions);
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

        return new KvCache(Config.NumHiddenLayers, batch, capacity, Config.HiddenSize);
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

    /// <summary>Runs the body; the result (after ln_f) is left in <see cref="_hidden"/> [B·T, C].</summary>
    internal Span<float> Run(ReadOnlySpan<int> ids, ReadOnlySpan<float> attentionMask, int batch, int tokens, KvCache cache,
        List<Tensor>? hiddenStates, List<Tensor>? attentions, bool finalNorm = true)
    {
        if (cache.Batch != batch)
        {
            throw new ArgumentException($"GPT-2 forward: the cache holds B={cache.Batch} sequences but the ids have B={batch}.", nameof(cache));
        }

        if (cache.Capacity > Config.MaxPositionEmbeddings || cache.Layers != _blocks.Length || cache.Width != Config.HiddenSize)
        {
            throw new ArgumentException(
                $"GPT-2 forward: the cache ({cache.Layers} layers × {cache.Width} wide, capacity {cache.Capacity}) was not made for this model ({_blocks.Length} layers × {Config.HiddenSize}, context {Config.MaxPositionEmbeddings}); create it with CreateCache.",
                nameof(cache));
        }

        if (cache.Length + tokens > cache.Capacity)
        {
            throw new ArgumentException(
                $"GPT-2 forward: {cache.Length} cached + {tokens} new tokens exceed the cache capacity {cache.Capacity} (context n_positions={Config.MaxPositionEmbeddings}); shorten the input or allocate a larger cache.",
                nameof(cache));
        }

        int c = Config.HiddenSize, heads = Config.NumAttentionHeads, d = c / heads, rows = batch * tokens;
        int past = cache.Length, keys = past + tokens;
        EnsureBuffers(rows);
        var h = _hidden.AsSpan(0, rows * c);
        var x = _normed.AsSpan(0, rows * c);
        var qkv = _qkv.AsSpan(0, rows * 3 * c);
        var att = _attn.AsSpan(0, rows * c);
        var ff = _mlp.AsSpan(0, rows * Config.IntermediateSize);
        var positions = _positions.AsSpan(0, rows);

        // Position ids from the mask like HF generate: cumsum(mask) − 1 over real tokens, continuing the cache's count.
        cache.Advance(attentionMask, tokens, positions);
        for (int r = 0; r < rows; r++)
        {
            Debug.Assert(positions[r] < Config.MaxPositionEmbeddings);
            var row = h.Slice(r * c, c);
            TokenEmbedding.CopyRow(ids[r], row);
            Elementwise.Add(row, PositionEmbedding.AsSpan(positions[r] * c, c), row);
        }

        float eps = (float)Config.LayerNormEpsilon;
        for (int layer = 0; layer < _blocks.Length; layer++)
        {
            hiddenStates?.Add(Tensor.FromSpan<float>(h, new Shape(batch, tokens, c)));
            var block = _blocks[layer];

            // Attention: x = ln_1(h); qkv = x · W_attn + b → [B, T, 3C]; new K/V go into the cache at rows past..past+T.
            Norms.LayerNorm(h, block.Ln1Gamma, block.Ln1Beta, x, rows, c, eps);
            block.Attn.Apply(x, rows, qkv, accumulate: false);
            var cacheK = cache.Keys(layer);
            var cacheV = cache.Values(layer);
            for (int b = 0; b < batch; b++)
            {
                for (int t = 0; t < tokens; t++)
                {
                    var src = qkv.Slice((b * tokens + t) * 3 * c, 3 * c);
                    int dst = (b * cache.Capacity + past + t) * c;
                    src.Slice(c, c).CopyTo(cacheK.Slice(dst, c));
                    src.Slice(2 * c, c).CopyTo(cacheV.Slice(dst, c));
                }
            }

            float scale = (Config.ScaleAttnWeights ? 1f / MathF.Sqrt(d) : 1f) / (Config.ScaleAttnByInverseLayerIdx ? layer + 1 : 1);
            float[]? probs = attentions is null ? null : new float[batch * heads * tokens * keys];
            for (int b = 0; b < batch; b++)
            {
                // One call per sequence: the cache's batch stride is Tmax rows, not Tk, so each sequence is its own view.
                var shape = new AttentionShape(1, heads, tokens, keys, d) { QueryRowStride = 3 * c };
                Attention.Forward(
                    shape,
                    qkv.Slice(b * tokens * 3 * c),
                    cacheK.Slice(b * cache.Capacity * c),
                    cacheV.Slice(b * cache.Capacity * c),
                    att.Slice(b * tokens * c, tokens * c),
                    causal: true,
                    keyPaddingMask: cache.Mask.Slice(b * cache.Capacity, keys),
                    scale: scale,
                    probabilities: probs is null ? default : probs.AsSpan(b * heads * tokens * keys, heads * tokens * keys));
            }

            if (probs is not null)
            {
                attentions!.Add(Tensor.FromArray(probs, new Shape(batch, heads, tokens, keys)));
            }

            block.Proj.Apply(att, rows, h, accumulate: true);

            // MLP: h += c_proj(act(c_fc(ln_2(h)))).
            Norms.LayerNorm(h, block.Ln2Gamma, block.Ln2Beta, x, rows, c, eps);
            block.Fc.Apply(x, rows, ff, accumulate: false);
            _activation(ff, ff);
            block.MlpProj.Apply(ff, rows, h, accumulate: true);
        }

        if (finalNorm)
        {
            Norms.LayerNorm(h, _lnFGamma, _lnFBeta, h, rows, c, eps);
        }

        return h;
    }

    internal void FinalNorm(Span<float> rows, int count) =>
        Norms.LayerNorm(rows, _lnFGamma, _lnFBeta, rows, count, Config.HiddenSize, (float)Config.LayerNormEpsilon);

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
    }

    // Method groups have no natural type inside a switch expression; this gives every arm the same delegate type.
    private static Action<ReadOnlySpan<float>, Span<float>> ActionFor(Action<ReadOnlySpan<float>, Span<float>> f) => f;

    private static Action<ReadOnlySpan<float>, Span<float>> ActivationFor(string name) => name switch
    {
        // HF ACT2FN: gelu_new / gelu_pytorch_tanh / gelu_fast are the tanh form; plain "gelu" is the exact erf form.
        "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => ActionFor(Activations.GeluTanh),
        "gelu" => ActionFor(Activations.Gelu),
        "relu" => ActionFor(Activations.Relu),
        "silu" or "swish" => ActionFor(Activations.Silu),
        _ => throw new NotSupportedException(
            $"GPT-2 activation_function '{name}' is not supported; use gelu_new, gelu_pytorch_tanh, gelu_fast, gelu, relu or silu."),
    };

    private sealed record Block(
        float[] Ln1Gamma, float[] Ln1Beta, DenseWeight Attn, DenseWeight Proj,
        float[] Ln2Gamma, float[] Ln2Beta, DenseWeight Fc, DenseWeight MlpProj);

    /// <summary>Throws unless <paramref name="dtype"/> is a weight type GPT-2 can keep its matrices in.</summary>
    internal static void CheckWeightType(DType dtype)
    {
        if (dtype is not (DType.F32 or DType.F16 or DType.BF16))
        {
            throw new ArgumentException($"GPT-2: weight dtype {dtype} is not supported; use DType.F32, DType.F16 or DType.BF16 (the matrices are kept in it, compute stays F32).", nameof(dtype));
        }
    }

    private static float[] Read(VarBuilder vb, string name, int rows, int cols) => vb.Get(new Shape(rows, cols), name).ToArray();

    private static float[] Read(VarBuilder vb, string name, int length, Init init) => vb.Get(new Shape(length), name, init).ToArray();

    /// <summary>An HF Conv1D: weight [in, out] read in <paramref name="dtype"/> and transposed to [out, in] once (in that type), bias [out] in F32.</summary>
    private static DenseWeight Conv1D(VarBuilder vb, int inFeatures, int outFeatures, DType dtype, WidenScratch scratch) =>
        DenseWeight.FromConv1D(vb.Get(new Shape(inFeatures, outFeatures), "weight", dtype), Read(vb, "bias", outFeatures, Init.Zeros), scratch);
}

/// <summary>
/// GPT-2 with its language-model head (HF <c>GPT2LMHeadModel</c>): the <see cref="Gpt2Model"/> body and logits
/// = ln_f(h) · wteᵀ (lm_head tied to the token embedding). Not thread-safe: it reuses work buffers between calls.
/// </summary>
public sealed class Gpt2LMHeadModel : ICausalLM
{
    private readonly DenseWeight _lmHead;
    private float[] _lastRows = [];

    private Gpt2LMHeadModel(Gpt2Model transformer)
    {
        Transformer = transformer;
        // The tied head: W [V, C] is wte itself (same array, same type), so the logits are h · wteᵀ with no bias.
        _lmHead = transformer.TokenEmbedding;
    }

    /// <summary>The transformer body.</summary>
    public Gpt2Model Transformer { get; }

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

    /// <summary>
    /// Loads an HF GPT-2 folder: config.json (model_type gpt2) and model.safetensors (or a sharded index), with or
    /// without the <c>transformer.</c> prefix. The <c>attn.bias</c> / <c>attn.masked_bias</c> buffers and a stored
    /// <c>lm_head.weight</c> (a copy of wte: the head is tied) are not read.
    /// </summary>
    /// <param name="folder">The model folder.</param>
    /// <param name="dtype">
    /// The type the weight matrices are kept in (HF's <c>torch_dtype</c>): F32 (default), F16 or BF16. Narrow weights
    /// halve the memory and the bytes each decode step streams; activations and sums stay F32. A checkpoint already
    /// stored in that type is copied as is; F32 → F16/BF16 rounds to nearest even.
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

    /// <summary>Builds the model from a config and an open checkpoint (with or without the <c>transformer.</c> prefix).</summary>
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

    /// <summary>Builds the model through <paramref name="vb"/> rooted at the body (e.g. <see cref="VarBuilder.FromInit"/> for a random GPT-2 of any size).</summary>
    /// <param name="config">The config.</param>
    /// <param name="vb">The builder.</param>
    /// <param name="dtype">The type the weight matrices are kept in: F32 (default), F16 or BF16 (see <see cref="FromPretrained"/>).</param>
    /// <returns>The model.</returns>
    /// <exception cref="ArgumentException"><paramref name="dtype"/> is not F32, F16 or BF16.</exception>
    /// <exception cref="ModelLoadException">A tensor is missing or misshapen.</exception>
    public static Gpt2LMHeadModel FromVarBuilder(Gpt2Config config, VarBuilder vb, DType dtype = DType.F32) => new(Gpt2Model.Load(config, vb, dtype));

    /// <summary>
    /// ids [B, T] → logits [B, T, V]. Left-padded batches pass a mask; position ids come from it as in HF generate.
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
        _lmHead.Apply(body.Logits.AsReadOnlySpan<float>(), rows, logits, accumulate: false);
        return body with { Logits = Tensor.FromArray(logits, new Shape(batch, tokens, VocabSize)) };
    }

    /// <inheritdoc/>
    public KvCache CreateCache(int batch, int capacity) => Transformer.CreateCache(batch, capacity);

    /// <inheritdoc/>
    /// <remarks>Only the B last rows go through ln_f and the head, so a prefill does not pay for T·V logits.</remarks>
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
        if (_lastRows.Length < batch * c)
        {
            _lastRows = new float[batch * c];
        }

        var last = _lastRows.AsSpan(0, batch * c);
        for (int b = 0; b < batch; b++)
        {
            h.Slice(((b * tokens) + tokens - 1) * c, c).CopyTo(last.Slice(b * c, c));
        }

        Transformer.FinalNorm(last, batch);
        _lmHead.Apply(last, batch, lastLogits, accumulate: false);
    }
}
