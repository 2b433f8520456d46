using System.Globalization;
using Sharpformer.Models;
using Sharpformer.Tensors;
using Sharpformer.Text;

namespace Sharpformer.Pipelines;

/// <summary>Progress of a batch of embeddings: texts finished so far out of the total.</summary>
/// <param name="Done">Texts embedded so far.</param>
/// <param name="Total">Texts in the request.</param>
public readonly record struct EmbeddingProgress(int Done, int Total);

/// <summary>
/// Sentence embeddings as sentence-transformers computes them: the encoder's last_hidden_state, pooled (mean, CLS, max,
/// mean-sqrt-len, weighted mean, last token, as the folder's <c>1_Pooling/config.json</c> says), then the folder's
/// Dense and Normalize modules in order (<see cref="SentenceTransformerConfig"/>; a folder without modules.json gets
/// all-MiniLM-L6-v2's mean pooling + L2 normalisation). Texts longer than max_seq_length are truncated by default as
/// sentence-transformers does, with one warning per call; named prompts ("query: ") are prepended on request.
/// Texts are embedded in padded batches.
/// </summary>
public sealed class SentenceEmbeddingPipeline
{
    private readonly PipelineOptions _options;

    /// <summary>Builds the pipeline over a loaded tokenizer and encoder.</summary>
    /// <param name="tokenizer">The tokenizer.</param>
    /// <param name="model">The encoder.</param>
    /// <param name="options">Truncation and warnings; texts longer than max_seq_length are truncated unless <see cref="PipelineOptions.NoTruncation"/>.</param>
    /// <param name="config">Pooling, modules, max_seq_length and prompts; null is <see cref="SentenceTransformerConfig.Default"/>.</param>
    /// <exception cref="ArgumentException">A Dense module's in_features does not match the pooled length.</exception>
    public SentenceEmbeddingPipeline(TextTokenizer tokenizer, ITextEncoder model, PipelineOptions? options = null, SentenceTransformerConfig? config = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(model);
        Tokenizer = tokenizer;
        Model = model;
        _options = options ?? new PipelineOptions();
        Config = config ?? SentenceTransformerConfig.Default;
        int length = model.HiddenSize * Config.Pooling.ModeCount;
        foreach (var module in Config.AfterPooling)
        {
            if (module is DenseModule dense && dense.InFeatures != length)
            {
                throw new ArgumentException(
                    $"The Dense module takes in_features {dense.InFeatures} but the pooled vector before it has {length} values (hidden size {model.HiddenSize} × {Config.Pooling.ModeCount} pooling modes); the model and its sentence-transformers modules do not belong together.",
                    nameof(config));
            }

            length = module.OutputLength(length);
        }

        Dimensions = length;
    }

    /// <summary>The tokenizer.</summary>
    public TextTokenizer Tokenizer { get; }

    /// <summary>The encoder.</summary>
    public ITextEncoder Model { get; }

    /// <summary>How token vectors become the embedding: pooling, modules, max_seq_length, prompts.</summary>
    public SentenceTransformerConfig Config { get; }

    /// <summary>The length of each embedding (C × pooling modes, or a Dense module's out_features).</summary>
    public int Dimensions { get; }

    /// <summary>
    /// The most tokens one input may have, special tokens included: sentence_bert_config.json's max_seq_length, capped by
    /// the tokenizer's model_max_length and the position table (else those two).
    /// </summary>
    public int MaxSeqLength => Math.Min(Config.MaxSeqLength ?? int.MaxValue, ModelLoader.MaxLength(Tokenizer, Model));

    /// <summary>
    /// Loads a model from a local folder or the Hub and builds the pipeline (see <see cref="FillMaskPipeline.FromPretrainedAsync"/>),
    /// reading the folder's sentence-transformers files (<see cref="SentenceTransformerConfig.Load"/>).
    /// </summary>
    /// <exception cref="ModelUnavailableException">Not a local folder, not cached, and the Hub cannot be reached (or offline mode is on).</exception>
    public static async Task<SentenceEmbeddingPipeline> FromPretrainedAsync(string modelIdOrFolder, PipelineOptions? options = null, CancellationToken ct = default)
    {
        var (tokenizer, model, folder) = await ModelLoader.LoadEncoderWithFolderAsync(modelIdOrFolder, options, ct).ConfigureAwait(false);
        return new SentenceEmbeddingPipeline(tokenizer, model, options, SentenceTransformerConfig.Load(folder));
    }

    /// <summary>text → the embedding (see <see cref="Embed(IReadOnlyList{string}, int, IProgress{EmbeddingProgress}?, string?, CancellationToken)"/>).</summary>
    /// <exception cref="ArgumentException">The input is longer than max_seq_length and truncation is off.</exception>
    public float[] Embed(string text) => Embed([text])[0];

    /// <summary>
    /// B texts → B embeddings, in input order. With a prompt (<paramref name="promptName"/>, else the model's
    /// default_prompt_name), each text becomes prompt + text. Texts longer than <see cref="MaxSeqLength"/> are cut to
    /// it (one warning for the call) unless <see cref="PipelineOptions.NoTruncation"/> is set, which makes them an
    /// error. Texts are sorted by length and run <paramref name="batchSize"/> at a time, padded to the longest of the
    /// batch, not of all texts (<see cref="TaskBatches.LengthBuckets"/>; padding is masked out of attention and pooling, so it does not change the result beyond float rounding).
    /// </summary>
    /// <param name="texts">The texts.</param>
    /// <param name="batchSize">Texts per forward pass.</param>
    /// <param name="progress">Told after every batch.</param>
    /// <param name="promptName">A key of the model's prompts (config_sentence_transformers.json), or null for its default prompt.</param>
    /// <param name="ct">Checked between batches.</param>
    /// <exception cref="ArgumentException">A text is too long and truncation is off, the prompt name is unknown, or batchSize is below 1.</exception>
    public IReadOnlyList<float[]> Embed(IReadOnlyList<string> texts, int batchSize = 32, IProgress<EmbeddingProgress>? progress = null, string? promptName = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (batchSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "Embed: batchSize must be at least 1.");
        }

        var prompt = Config.ResolvePrompt(promptName);
        int promptLength = prompt is { Length: > 0 } ? PromptLength(prompt) : 0;

        // Encode everything first so a too-long text fails before any compute.
        var encodings = new TokenEncoding[texts.Count];
        int limit = MaxSeqLength, truncated = 0, longest = 0;
        for (var i = 0; i < texts.Count; i++)
        {
            ArgumentNullException.ThrowIfNull(texts[i], nameof(texts));
            var text = Prepare((prompt ?? "") + texts[i]);
            var encoding = Tokenizer.Encode(text);
            if (encoding.Count > limit)
            {
                if (_options.NoTruncation)
                {
                    throw new ArgumentException(
                        $"Text {i} is {encoding.Count} tokens long but the model takes at most {limit} (max_seq_length); shorten it, or leave truncation on (drop --no-truncate / PipelineOptions.NoTruncation) to keep its first {limit} tokens as sentence-transformers does.",
                        nameof(texts));
                }

                truncated++;
                longest = Math.Max(longest, encoding.Count);
                encoding = Tokenizer.Encode(text, null, new EncodeOptions { Truncation = true, MaxLength = limit });
            }

            encodings[i] = encoding;
        }

        if (truncated > 0)
        {
            _options.Warning?.Invoke(string.Create(CultureInfo.InvariantCulture,
                $"{truncated} of {texts.Count} text(s) were longer than the model's max_seq_length of {limit} tokens (the longest {longest}) and were cut to it, as sentence-transformers does; pass --no-truncate (PipelineOptions.NoTruncation) to make this an error."));
        }

        var result = new float[texts.Count][];
        var padId = Tokenizer.PadTokenId ?? 0;
        int c = Model.HiddenSize, done = 0;
        foreach (var members in TaskBatches.LengthBuckets(encodings.Select(e => e.Count).ToList(), batchSize))
        {
            ct.ThrowIfCancellationRequested();
            var batch = members.Length;
            var seq = encodings[members[0]].Count;

            // [B, T] ids, mask and types, right-padded to the batch's longest text.
            var ids = new int[batch * seq];
            var mask = new int[batch * seq];
            var types = new int[batch * seq];
            Array.Fill(ids, padId);
            for (var b = 0; b < batch; b++)
            {
                var encoding = encodings[members[b]];
                for (var t = 0; t < encoding.Count; t++)
                {
                    ids[(b * seq) + t] = encoding.Ids[t];
                    mask[(b * seq) + t] = encoding.AttentionMask[t];
                    types[(b * seq) + t] = encoding.TypeIds[t];
                }
            }

            var shape = new Shape(batch, seq);
            var hidden = Model.Encode(Tensor.FromArray(ids, shape), Tensor.FromArray(mask, shape), Tensor.FromArray(types, shape)).Contiguous();
            var pooled = Pooling.Pool(hidden.AsReadOnlySpan<float>(), mask, batch, seq, c, Config.Pooling, promptLength);
            foreach (var module in Config.AfterPooling)
            {
                pooled = module.Apply(pooled, batch);
            }

            for (var b = 0; b < batch; b++)
            {
                result[members[b]] = pooled.AsSpan(b * Dimensions, Dimensions).ToArray();
            }

            done += batch;
            progress?.Report(new EmbeddingProgress(done, texts.Count));
        }

        return result;
    }

    private string Prepare(string text) => Config.DoLowerCase ? text.ToLowerInvariant() : text;

    /// <summary>
    /// sentence-transformers' prompt length: the tokenized prompt's length ([CLS] included), less one when it ends in a
    /// special token ([SEP]).
    /// </summary>
    private int PromptLength(string prompt)
    {
        var encoding = Tokenizer.Encode(Prepare(prompt));
        int length = encoding.Count;
        if (length > 0)
        {
            int last = encoding.Ids[length - 1];
            foreach (var special in Tokenizer.SpecialTokens.All())
            {
                if (Tokenizer.TokenToId(special) == last)
                {
                    return length - 1;
                }
            }
        }

        return length;
    }
}
