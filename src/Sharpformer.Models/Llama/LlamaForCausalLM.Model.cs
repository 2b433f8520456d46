using Sharpformer.IO.Config;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Models.Bert;
using Sharpformer.NN;
using Sharpformer.Tensors;

namespace Sharpformer.Models.Llama;

/// <summary>
/// A Llama-family causal LM (HF <c>LlamaForCausalLM</c>, <c>MistralForCausalLM</c>, <c>Qwen2ForCausalLM</c>,
/// <c>Phi3ForCausalLM</c>): the <see cref="LlamaModel"/> body (<c>model</c>) and <c>lm_head</c> [V, C] without bias,
/// tied to <c>model.embed_tokens.weight</c> when <c>tie_word_embeddings</c>. Trains through
/// <see cref="Forward(Tensor, Tensor?, Tensor?, bool, bool)"/> (labels → loss) and generates through
/// <see cref="ForwardLast"/> / <see cref="ForwardSlots"/> over the same parameters. Not thread-safe.
/// </summary>
public sealed class LlamaForCausalLM : Module, ISlotCausalLM, ILanguageModel, ISupportsGradientCheckpointing, IKvCacheElementType
{
    private float[] _lastRows = [];

    private LlamaForCausalLM(LlamaConfig config, VarBuilder root, DType dtype)
    {
        Model = RegisterModule("model", new LlamaModel(config, root.Push("model"), dtype));
        LmHead = config.TieWordEmbeddings
            ? RegisterModule("lm_head", Linear.Tied(Model.EmbedTokens.Weight))
            : RegisterModule("lm_head", new Linear(config.HiddenSize, config.VocabSize, root.Push("lm_head"), bias: false, dtype: dtype));
    }

    /// <summary>The body.</summary>
    public LlamaModel Model { get; }

    /// <summary>The LM head [V, C] (tied to embed_tokens when the config says so).</summary>
    public Linear LmHead { get; }

    /// <summary>The validated config.</summary>
    public LlamaConfig Config => Model.Config;

    /// <summary>The type the matrices are kept in: F32, F16 or BF16.</summary>
    public DType WeightType => Model.WeightType;

    /// <inheritdoc/>
    public int VocabSize => Config.VocabSize;

    /// <inheritdoc/>
    public int MaxPositions => Config.MaxPositionEmbeddings;

    /// <summary>What loading read, lacked and left unused (null when built from a VarBuilder directly).</summary>
    public LoadReport? LoadReport { get; internal set; }

    /// <summary>True when a forward takes the fused inference path: eval mode and nothing to record.</summary>
    public bool UsesFastPath => Model.UsesFastPath;

    /// <inheritdoc/>
    public bool GradientCheckpointing
    {
        get => Model.GradientCheckpointing;
        set => Model.GradientCheckpointing = value;
    }

    /// <summary>
    /// Loads an HF folder of model_type llama, mistral, qwen2 or phi3: config.json and model.safetensors (or a sharded
    /// model.safetensors.index.json), F32/F16/BF16 tensors converted to <paramref name="dtype"/>. Returns the model in
    /// evaluation mode. A stored <c>lm_head.weight</c> of a tied model is not read.
    /// </summary>
    /// <param name="folder">The model folder.</param>
    /// <param name="dtype">The type the matrices are kept in: F32 (default, trainable), F16 or BF16 (inference only).</param>
    /// <returns>The model.</returns>
    /// <exception cref="ArgumentException"><paramref name="dtype"/> is not F32, F16 or BF16.</exception>
    /// <exception cref="ModelConfigException">config.json is missing or invalid.</exception>
    /// <exception cref="InvalidDataException">config.json is not a Llama-family config.</exception>
    /// <exception cref="ModelLoadException">A tensor is missing or misshapen; the message names it.</exception>
    public static LlamaForCausalLM FromPretrained(string folder, DType dtype = DType.F32)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        LlamaModel.CheckWeightType(dtype);
        var config = ModelConfig.Load(folder) as LlamaConfig
            ?? throw new InvalidDataException($"{Path.Combine(folder, "config.json")}: model_type is not one of {string.Join(", ", LlamaConfig.Families)}; LlamaForCausalLM loads those only (AutoModelForCausalLM picks the class).");
        using var weights = SafeTensorsLoader.Open(folder);
        return FromWeights(config, weights, dtype);
    }

    /// <summary>Loads a llama.cpp GGUF file (architectures llama, qwen2, phi3; F32/F16/BF16 tensors, and Q8_0/Q4_0/Q4_K/Q6_K matrices multiplied by their blocks as stored), in evaluation mode (see <see cref="LlamaGguf.LoadModel"/>).</summary>
    /// <param name="path">The .gguf file.</param>
    /// <param name="dtype">The type the matrices are kept in.</param>
    /// <returns>The model.</returns>
    /// <exception cref="NotSupportedException">The architecture, a feature or a tensor type is not supported; the message names it.</exception>
    public static LlamaForCausalLM FromGguf(string path, DType dtype = DType.F32) => LlamaGguf.LoadModel(path, dtype);

    /// <summary>Builds the model from a config and an open checkpoint in HF names, in evaluation mode.</summary>
    /// <param name="config">The config.</param>
    /// <param name="weights">The checkpoint; it may be disposed afterwards.</param>
    /// <param name="dtype">The type the matrices are kept in.</param>
    /// <returns>The model.</returns>
    /// <exception cref="ModelLoadException">A tensor is missing or misshapen.</exception>
    public static LlamaForCausalLM FromWeights(LlamaConfig config, ISafeTensorsSource weights, DType dtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(weights);
        var root = VarBuilder.FromSafeTensors(weights);
        if (config.TieWordEmbeddings)
        {
            root.MarkUsed("lm_head.weight");
        }

        var model = FromVarBuilder(config, root, dtype);
        model.LoadReport = root.Report();
        return model;
    }

    /// <summary>Builds the model through <paramref name="vb"/> rooted above <c>model.</c> and <c>lm_head.</c>, in evaluation mode.</summary>
    /// <param name="config">The config.</param>
    /// <param name="vb">The builder.</param>
    /// <param name="dtype">The type the matrices are kept in.</param>
    /// <returns>The model.</returns>
    /// <exception cref="ModelLoadException">A tensor is missing or misshapen.</exception>
    public static LlamaForCausalLM FromVarBuilder(LlamaConfig config, VarBuilder vb, DType dtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        LlamaModel.CheckWeightType(dtype);
        var model = new LlamaForCausalLM(config, vb, dtype);
        model.Eval();
        return model;
    }

    /// <summary>
    /// A freshly initialized model (F32, training mode) as HF's <c>_init_weights</c> makes it: every Linear and the
    /// embedding normal(0, initializer_range), biases 0, RMSNorm weights 1. Seeded (not PyTorch's numbers).
    /// </summary>
    /// <param name="config">The configuration.</param>
    /// <param name="seed">The initialization seed.</param>
    /// <returns>The model, in training mode.</returns>
    public static LlamaForCausalLM FromConfig(LlamaConfig config, int seed)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new LlamaForCausalLM(config, VarBuilder.FromInit(seed, (float)config.InitializerRange), DType.F32);
    }

    /// <summary>
    /// ids [B, T] → logits [B, T, V], and with <paramref name="labels"/> HF's loss: the mean cross-entropy of logits[:, t]
    /// against labels[:, t + 1] over labels ≠ −100. In training mode or when a parameter requires gradients this runs
    /// the module path (the loss is on the tape); otherwise the fused path.
    /// </summary>
    /// <param name="inputIds">Token ids [B, T], I32 or I64.</param>
    /// <param name="attentionMask">[B, T]: 1 = token, 0 = padding; null attends to every earlier token.</param>
    /// <param name="labels">Target ids [B, T] (−100 where not scored), or null.</param>
    /// <param name="outputAttentions">Also return each layer's attention weights.</param>
    /// <param name="outputHiddenStates">Also return the hidden states.</param>
    /// <returns>Logits, the loss when labels were given, and what was asked.</returns>
    /// <exception cref="ArgumentException">The inputs or labels are not [B, T] of matching shapes, T exceeds the context, or an id is out of range.</exception>
    /// <exception cref="InvalidOperationException">The module path is needed but the weights are F16/BF16.</exception>
    public LlamaOutput Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? labels = null, bool outputAttentions = false, bool outputHiddenStates = false)
    {
        var (ids, mask, batch) = ReadInputs(inputIds, attentionMask);
        int tokens = ids.Length / batch;
        var shifted = labels is null ? null : ShiftLabels(labels, inputIds.Shape);
        Tensor logits;
        LlamaOutput body;
        if (UsesFastPath)
        {
            body = RunFast(ids, batch, mask, null, outputAttentions, outputHiddenStates);
            logits = Tensor.Empty(new Shape(batch, tokens, VocabSize));
            LmHead.Apply(body.Logits.AsReadOnlySpan<float>(), batch * tokens, logits.AsSpan<float>(), accumulate: false);
        }
        else
        {
            body = Model.ForwardModules(inputIds, ids, mask, batch, outputAttentions, outputHiddenStates);
            logits = LmHead.Forward(body.Logits);
        }

        var loss = shifted is null ? null : Ops.CrossEntropy(logits, shifted);
        return body with { Logits = logits, Loss = loss };
    }

    /// <inheritdoc/>
    Tensor ILanguageModel.LanguageModelingLoss(Tensor inputIds, Tensor? attentionMask, Tensor labels) =>
        Forward(inputIds, attentionMask, labels).Loss!;

    /// <summary>ids [B, T] → logits [B, T, V] through the fused path (no tape, any mode); a cache continues earlier tokens.</summary>
    /// <param name="ids">[B, T] token ids, row-major.</param>
    /// <param name="batch">B.</param>
    /// <param name="attentionMask">Null or [B, T]: 1 = token, 0 = left padding.</param>
    /// <param name="cache">Null for a stand-alone run, or a cache with earlier tokens (it grows by T).</param>
    /// <param name="outputAttentions">Also return each layer's attention weights [B, H, T, Tk].</param>
    /// <param name="outputHiddenStates">Also return the hidden states.</param>
    /// <returns>Logits and what was asked.</returns>
    /// <exception cref="ArgumentException">The ids or mask do not match B, an id is outside the vocabulary, or the cache is full.</exception>
    public LlamaOutput Forward(int[] ids, int batch, float[]? attentionMask = null, KvCache? cache = null, bool outputAttentions = false, bool outputHiddenStates = false)
    {
        var body = RunFast(ids, batch, attentionMask, cache, outputAttentions, outputHiddenStates);
        int rows = (int)(body.Logits.ElementCount / Config.HiddenSize), tokens = rows / batch;
        var logits = new float[(long)rows * VocabSize];
        LmHead.Apply(body.Logits.AsReadOnlySpan<float>(), rows, logits, accumulate: false);
        return body with { Logits = Tensor.FromArray(logits, new Shape(batch, tokens, VocabSize)) };
    }

    /// <inheritdoc/>
    public KvCache CreateCache(int batch, int capacity) => Model.CreateCache(batch, capacity);

    /// <inheritdoc/>
    public DType KvCacheType
    {
        get => Model.KvCacheType;
        set => Model.KvCacheType = value;
    }

    /// <inheritdoc/>
    /// <remarks>Only the B last rows go through the final norm and the head. Always the fused path.</remarks>
    public void ForwardLast(ReadOnlySpan<int> ids, ReadOnlySpan<float> attentionMask, KvCache cache, Span<float> lastLogits)
    {
        ArgumentNullException.ThrowIfNull(cache);
        int batch = cache.Batch, c = Config.HiddenSize;
        int tokens = Model.CheckInputs(ids, batch, attentionMask);
        if (lastLogits.Length < batch * VocabSize)
        {
            throw new ArgumentException($"Llama ForwardLast: logits span holds {lastLogits.Length} values, [B={batch}, V={VocabSize}] needs {batch * VocabSize}.", nameof(lastLogits));
        }

        var h = Model.Run(ids, attentionMask, batch, tokens, cache, null, null, finalNorm: false);
        var last = TakeLastRows(h, batch, tokens, c);
        Model.FinalNorm(last, batch);
        LmHead.Apply(last, batch, lastLogits, accumulate: false);
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">The slots are empty, repeated or outside the cache, the ids do not form [N, T], an id is outside the vocabulary, a slot would exceed the cache, or the logits span is too small.</exception>
    public void ForwardSlots(ReadOnlySpan<int> slots, ReadOnlySpan<int> ids, KvCache cache, Span<float> lastLogits)
    {
        ArgumentNullException.ThrowIfNull(cache);
        int count = slots.Length, c = Config.HiddenSize;
        if (count == 0)
        {
            throw new ArgumentException("Llama ForwardSlots: no slots given; pass at least one slot index.", nameof(slots));
        }

        for (int i = 0; i < count; i++)
        {
            if ((uint)slots[i] >= (uint)cache.Batch || slots[..i].Contains(slots[i]))
            {
                throw new ArgumentException($"Llama ForwardSlots: slot {slots[i]} is outside the cache's [0, {cache.Batch}) or listed twice; pass distinct slot indices.", nameof(slots));
            }
        }

        int tokens = Model.CheckInputs(ids, count, default);
        if (lastLogits.Length < count * VocabSize)
        {
            throw new ArgumentException($"Llama ForwardSlots: logits span holds {lastLogits.Length} values, [N={count}, V={VocabSize}] needs {count * VocabSize}.", nameof(lastLogits));
        }

        var h = Model.Run(ids, default, count, tokens, cache, null, null, finalNorm: false, slots);
        var last = TakeLastRows(h, count, tokens, c);
        Model.FinalNorm(last, count);
        LmHead.Apply(last, count, lastLogits, accumulate: false);
    }

    private LlamaOutput RunFast(int[] ids, int batch, float[]? attentionMask, KvCache? cache, bool outputAttentions, bool outputHiddenStates)
    {
        ArgumentNullException.ThrowIfNull(ids);
        int tokens = Model.CheckInputs(ids, batch, attentionMask);
        cache ??= Model.CreateCache(batch, tokens);
        var hiddenStates = outputHiddenStates ? new List<Tensor>() : null;
        var attentions = outputAttentions ? new List<Tensor>() : null;
        var h = Model.Run(ids, attentionMask ?? [], batch, tokens, cache, hiddenStates, attentions);
        var last = Tensor.FromSpan<float>(h, new Shape(batch, tokens, Config.HiddenSize));
        hiddenStates?.Add(last);
        return new LlamaOutput(last, null, hiddenStates, attentions);
    }

    private Span<float> TakeLastRows(ReadOnlySpan<float> h, int batch, int tokens, int c)
    {
        if (_lastRows.Length < batch * c)
        {
            _lastRows = new float[batch * c];
        }

        for (int b = 0; b < batch; b++)
        {
            h.Slice(((b * tokens) + tokens - 1) * c, c).CopyTo(_lastRows.AsSpan(b * c, c));
        }

        return _lastRows.AsSpan(0, batch * c);
    }

    private (int[] Ids, float[]? Mask, int Batch) ReadInputs(Tensor inputIds, Tensor? attentionMask)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        if (inputIds.Rank != 2 || inputIds.DType is not (DType.I32 or DType.I64) || inputIds.Shape[1] == 0)
        {
            throw new ArgumentException($"Llama: input_ids must be an I32/I64 tensor [B, T] with T ≥ 1, got {inputIds.DType} {inputIds.Shape}.", nameof(inputIds));
        }

        if (inputIds.Shape[1] > Config.MaxPositionEmbeddings)
        {
            throw new ArgumentException($"Llama: sequence length {inputIds.Shape[1]} exceeds max_position_embeddings {Config.MaxPositionEmbeddings}; truncate the input.", nameof(inputIds));
        }

        if (attentionMask is not null && attentionMask.Shape != inputIds.Shape)
        {
            throw new ArgumentException($"Llama: attention_mask {attentionMask.Shape} must have input_ids' shape {inputIds.Shape}.", nameof(attentionMask));
        }

        var ids = BertLoading.ReadIds(inputIds);
        var mask = attentionMask is null ? null : (attentionMask.DType == DType.F32 ? attentionMask : attentionMask.To(DType.F32)).ToArray();
        Model.CheckInputs(ids, inputIds.Shape[0], mask);
        return (ids, mask, inputIds.Shape[0]);
    }

    /// <summary>labels [B, T] → labels' with labels'[b, t] = labels[b, t + 1] and −100 at the last position, validated.</summary>
    private Tensor ShiftLabels(Tensor labels, Shape inputShape)
    {
        if (labels.Shape != inputShape || labels.DType is not (DType.I32 or DType.I64))
        {
            throw new ArgumentException($"Llama: labels must be I32/I64 with input_ids' shape {inputShape}, got {labels.DType} {labels.Shape}; pass the input ids (−100 where no loss is wanted).", nameof(labels));
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
                    throw new ArgumentException($"Llama: label {label} at [{b}, {t + 1}] is outside the vocabulary [0, {VocabSize}) and is not −100.", nameof(labels));
                }

                shifted[b * tokens + t] = label;
            }
        }

        return Tensor.FromArray(shifted, inputShape);
    }
}
