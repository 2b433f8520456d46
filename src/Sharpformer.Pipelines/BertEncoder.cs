using Sharpformer.IO.Config;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Tensors.Kernels;

namespace Sharpformer.Pipelines;

/// <summary>
/// The BERT encoder the pipelines run until Sharpformer.Models lands: embeddings, post-LN encoder layers and, when the
/// checkpoint has one, the masked-LM head (cls.predictions). It reads Hugging Face names with or without the
/// <c>bert.</c> prefix and the legacy LayerNorm <c>gamma</c>/<c>beta</c> names, and runs on the Tensors kernels.
/// </summary>
internal sealed class BertEncoder : IMaskedLanguageModel
{
    private readonly BertConfig _config;
    private readonly float[] _word, _position, _tokenType, _embGamma, _embBeta;
    private readonly Layer[] _layers;
    private readonly MlmHead? _head;

    private BertEncoder(BertConfig config, ISafeTensorsSource weights, string source)
    {
        _config = config;
        if (config.HiddenSize % config.NumAttentionHeads != 0)
        {
            throw new InvalidDataException($"{source}: hidden_size {config.HiddenSize} is not a multiple of num_attention_heads {config.NumAttentionHeads}.");
        }

        if (config.HiddenAct is not ("gelu" or "gelu_new" or "gelu_pytorch_tanh"))
        {
            throw new NotSupportedException($"{source}: hidden_act '{config.HiddenAct}' is not supported by the BERT pipelines (gelu, gelu_new, gelu_pytorch_tanh are).");
        }

        var prefix = weights.Contains("bert.embeddings.word_embeddings.weight") ? "bert." : "";
        var reader = new WeightReader(weights, source);
        _word = reader.Read(prefix + "embeddings.word_embeddings.weight", config.VocabSize, config.HiddenSize);
        _position = reader.Read(prefix + "embeddings.position_embeddings.weight", config.MaxPositionEmbeddings, config.HiddenSize);
        _tokenType = reader.Read(prefix + "embeddings.token_type_embeddings.weight", Math.Max(config.TypeVocabSize, 1), config.HiddenSize);
        (_embGamma, _embBeta) = reader.Norm(prefix + "embeddings.LayerNorm", config.HiddenSize);
        _layers = new Layer[config.NumHiddenLayers];
        for (var l = 0; l < _layers.Length; l++)
        {
            _layers[l] = new Layer(reader, $"{prefix}encoder.layer.{l}", config.HiddenSize, config.IntermediateSize);
        }

        if (weights.Contains("cls.predictions.transform.dense.weight"))
        {
            _head = new MlmHead(reader, _word, config.HiddenSize, config.VocabSize);
        }
    }

    /// <inheritdoc />
    public int HiddenSize => _config.HiddenSize;

    /// <inheritdoc />
    public int MaxPositions => _config.MaxPositionEmbeddings;

    /// <inheritdoc />
    public int VocabSize => _config.VocabSize;

    /// <inheritdoc />
    public bool HasMaskedLanguageModelHead => _head is not null;

    /// <summary>Loads config.json and the safetensors weights of a resolved model.</summary>
    /// <exception cref="NotSupportedException">The model type is not BERT.</exception>
    /// <exception cref="InvalidDataException">A tensor is missing or has the wrong shape.</exception>
    public static BertEncoder Load(string configPath, IReadOnlyList<string> weightPaths)
    {
        var config = ModelConfig.Load(configPath);
        if (config is not BertConfig bert)
        {
            throw new NotSupportedException(
                $"{configPath}: model_type '{config.ModelType}' is not supported by the pipelines yet; they run BERT encoders (model_type 'bert').");
        }

        var weightsPath = weightPaths.Count == 1 ? weightPaths[0] : Path.GetDirectoryName(configPath)!;
        using var weights = SafeTensorsLoader.Open(weightsPath);
        return new BertEncoder(bert, weights, weightsPath);
    }

    /// <inheritdoc />
    public float[] Encode(ReadOnlySpan<int> ids, ReadOnlySpan<int> attentionMask, ReadOnlySpan<int> typeIds, int batch, int seq)
    {
        int c = HiddenSize, rows = batch * seq;
        CheckInputs(ids, attentionMask, typeIds, batch, seq);

        // x [B·T, C] = word[id] + position[t] + token_type[type], then LayerNorm.
        var x = new float[rows * c];
        for (var b = 0; b < batch; b++)
        {
            for (var t = 0; t < seq; t++)
            {
                var r = (b * seq) + t;
                var row = x.AsSpan(r * c, c);
                var word = _word.AsSpan(ids[r] * c, c);
                var position = _position.AsSpan(t * c, c);
                var type = _tokenType.AsSpan(typeIds[r] * c, c);
                for (var j = 0; j < c; j++)
                {
                    row[j] = word[j] + position[j] + type[j];
                }
            }
        }

        float eps = (float)_config.LayerNormEps;
        Norms.LayerNorm(x, _embGamma, _embBeta, x, rows, c, eps);

        // The key padding mask as floats [B, T]: 1 attends, 0 is padding.
        var mask = new float[rows];
        for (var i = 0; i < rows; i++)
        {
            mask[i] = attentionMask[i] != 0 ? 1f : 0f;
        }

        var heads = _config.NumAttentionHeads;
        var shape = new AttentionShape(batch, heads, seq, seq, c / heads);
        var q = new float[rows * c];
        var k = new float[rows * c];
        var v = new float[rows * c];
        var context = new float[rows * c];
        var attention = new float[rows * c];
        var inter = new float[rows * _config.IntermediateSize];
        foreach (var layer in _layers)
        {
            Dense(x, rows, layer.Query, q);
            Dense(x, rows, layer.Key, k);
            Dense(x, rows, layer.Value, v);
            Attention.Forward(shape, q, k, v, context, causal: false, keyPaddingMask: mask);
            Dense(context, rows, layer.AttentionOutput, attention);
            Add(attention, x);
            Norms.LayerNorm(attention, layer.AttentionNorm.Gamma, layer.AttentionNorm.Beta, attention, rows, c, eps);
            Dense(attention, rows, layer.Intermediate, inter);
            Activate(inter);
            Dense(inter, rows, layer.Output, x);
            Add(x, attention);
            Norms.LayerNorm(x, layer.OutputNorm.Gamma, layer.OutputNorm.Beta, x, rows, c, eps);
        }

        return x;
    }

    /// <inheritdoc />
    public float[] PredictLogits(ReadOnlySpan<float> hidden, int rows)
    {
        var head = _head ?? throw new InvalidOperationException("This checkpoint has no masked-LM head (cls.predictions.*).");
        int c = HiddenSize, vocab = VocabSize;
        if (hidden.Length != rows * c)
        {
            throw new ArgumentException($"PredictLogits: hidden has {hidden.Length} values, expected rows {rows} × C {c}.", nameof(hidden));
        }

        // transform: dense → activation → LayerNorm; decoder: logits [N, V] = h · word_embeddingsᵀ (tied) + bias.
        var h = new float[rows * c];
        Dense(hidden, rows, head.Transform, h);
        Activate(h);
        Norms.LayerNorm(h, head.Norm.Gamma, head.Norm.Beta, h, rows, c, (float)_config.LayerNormEps);
        var logits = new float[rows * vocab];
        Gemm.Sgemm(false, true, rows, vocab, c, 1f, h, c, head.Decoder, c, 0f, logits, vocab, head.Bias);
        return logits;
    }

    private void CheckInputs(ReadOnlySpan<int> ids, ReadOnlySpan<int> attentionMask, ReadOnlySpan<int> typeIds, int batch, int seq)
    {
        var rows = batch * seq;
        if (ids.Length != rows || attentionMask.Length != rows || typeIds.Length != rows)
        {
            throw new ArgumentException($"Encode: ids ({ids.Length}), attention mask ({attentionMask.Length}) and type ids ({typeIds.Length}) must each hold B {batch} × T {seq} values.");
        }

        if (seq > MaxPositions)
        {
            throw new ArgumentException($"Encode: T {seq} is longer than the model's {MaxPositions} positions; truncate the input.");
        }

        for (var i = 0; i < rows; i++)
        {
            if ((uint)ids[i] >= (uint)VocabSize)
            {
                throw new ArgumentException($"Encode: token id {ids[i]} at row {i} is outside the vocabulary [0, {VocabSize}).");
            }

            if (typeIds[i] * HiddenSize >= _tokenType.Length || typeIds[i] < 0)
            {
                throw new ArgumentException($"Encode: token type id {typeIds[i]} at row {i} is outside [0, {_tokenType.Length / HiddenSize}).");
            }
        }
    }

    private void Activate(float[] values)
    {
        if (_config.HiddenAct == "gelu")
        {
            Activations.Gelu(values, values);
        }
        else
        {
            Activations.GeluTanh(values, values);
        }
    }

    // y [rows, out] = x [rows, in] · Wᵀ + b, W stored [out, in] as Hugging Face Linear keeps it.
    private static void Dense(ReadOnlySpan<float> x, int rows, Linear linear, Span<float> y) =>
        Gemm.Sgemm(false, true, rows, linear.Out, linear.In, 1f, x, linear.In, linear.Weight, linear.In, 0f, y, linear.Out, linear.Bias);

    private static void Add(Span<float> target, ReadOnlySpan<float> residual) =>
        System.Numerics.Tensors.TensorPrimitives.Add(target, residual, target);

    private sealed record Linear(float[] Weight, float[] Bias, int Out, int In);

    private sealed record Norm(float[] Gamma, float[] Beta);

    private sealed class Layer(WeightReader reader, string p, int c, int intermediate)
    {
        public Linear Query { get; } = reader.Linear($"{p}.attention.self.query", c, c);

        public Linear Key { get; } = reader.Linear($"{p}.attention.self.key", c, c);

        public Linear Value { get; } = reader.Linear($"{p}.attention.self.value", c, c);

        public Linear AttentionOutput { get; } = reader.Linear($"{p}.attention.output.dense", c, c);

        public Norm AttentionNorm { get; } = reader.NormRecord($"{p}.attention.output.LayerNorm", c);

        public Linear Intermediate { get; } = reader.Linear($"{p}.intermediate.dense", intermediate, c);

        public Linear Output { get; } = reader.Linear($"{p}.output.dense", c, intermediate);

        public Norm OutputNorm { get; } = reader.NormRecord($"{p}.output.LayerNorm", c);
    }

    private sealed class MlmHead
    {
        public MlmHead(WeightReader reader, float[] tiedWord, int c, int vocab)
        {
            Transform = reader.Linear("cls.predictions.transform.dense", c, c);
            Norm = reader.NormRecord("cls.predictions.transform.LayerNorm", c);

            // HF ties the decoder to the word embeddings; an untied checkpoint stores its own copy.
            Decoder = reader.Has("cls.predictions.decoder.weight") ? reader.Read("cls.predictions.decoder.weight", vocab, c) : tiedWord;
            Bias = reader.Has("cls.predictions.bias") ? reader.Read("cls.predictions.bias", vocab)
                : reader.Has("cls.predictions.decoder.bias") ? reader.Read("cls.predictions.decoder.bias", vocab)
                : new float[vocab];
        }

        public Linear Transform { get; }

        public Norm Norm { get; }

        public float[] Decoder { get; }

        public float[] Bias { get; }
    }

    private sealed class WeightReader(ISafeTensorsSource weights, string source)
    {
        public bool Has(string name) => weights.Contains(name);

        public float[] Read(string name, params int[] dims)
        {
            if (!weights.Contains(name))
            {
                throw new InvalidDataException($"{source}: tensor '{name}' is missing; this is not a Hugging Face BERT checkpoint (or it does not match config.json).");
            }

            var tensor = weights.GetTensorAsF32(name);
            if (!tensor.Shape.Dims.SequenceEqual(dims))
            {
                throw new InvalidDataException($"{source}: tensor '{name}' has shape {tensor.Shape}, config.json implies [{string.Join(", ", dims)}].");
            }

            return tensor.Contiguous().ToArray();
        }

        public Linear Linear(string prefix, int outFeatures, int inFeatures) =>
            new(Read(prefix + ".weight", outFeatures, inFeatures), Read(prefix + ".bias", outFeatures), outFeatures, inFeatures);

        // Old checkpoints (bert-base-uncased among them) name LayerNorm parameters gamma/beta.
        public (float[] Gamma, float[] Beta) Norm(string prefix, int c) =>
            weights.Contains(prefix + ".weight")
                ? (Read(prefix + ".weight", c), Read(prefix + ".bias", c))
                : (Read(prefix + ".gamma", c), Read(prefix + ".beta", c));

        public Norm NormRecord(string prefix, int c)
        {
            var (gamma, beta) = Norm(prefix, c);
            return new Norm(gamma, beta);
        }
    }
}
