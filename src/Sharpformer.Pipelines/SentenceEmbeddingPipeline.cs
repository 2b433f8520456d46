using Sharpformer.Models;
using Sharpformer.Tensors;
using Sharpformer.Text;

namespace Sharpformer.Pipelines;

/// <summary>Progress of a batch of embeddings: texts finished so far out of the total.</summary>
/// <param name="Done">Texts embedded so far.</param>
/// <param name="Total">Texts in the request.</param>
public readonly record struct EmbeddingProgress(int Done, int Total);

/// <summary>
/// Sentence embeddings as sentence-transformers computes them for all-MiniLM-L6-v2: the encoder's last_hidden_state,
/// mean-pooled over the attention mask, then L2-normalised. Texts are embedded in padded batches.
/// </summary>
public sealed class SentenceEmbeddingPipeline
{
    private readonly PipelineOptions _options;

    /// <summary>Builds the pipeline over a loaded tokenizer and encoder.</summary>
    public SentenceEmbeddingPipeline(TextTokenizer tokenizer, ITextEncoder model, PipelineOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(model);
        Tokenizer = tokenizer;
        Model = model;
        _options = options ?? new PipelineOptions();
    }

    /// <summary>The tokenizer.</summary>
    public TextTokenizer Tokenizer { get; }

    /// <summary>The encoder.</summary>
    public ITextEncoder Model { get; }

    /// <summary>C, the length of each embedding.</summary>
    public int Dimensions => Model.HiddenSize;

    /// <summary>Loads a model from a local folder or the Hub and builds the pipeline (see <see cref="FillMaskPipeline.FromPretrainedAsync"/>).</summary>
    /// <exception cref="ModelUnavailableException">Not a local folder, not cached, and the Hub cannot be reached (or offline mode is on).</exception>
    public static async Task<SentenceEmbeddingPipeline> FromPretrainedAsync(string modelIdOrFolder, PipelineOptions? options = null, CancellationToken ct = default)
    {
        var (tokenizer, model) = await ModelLoader.LoadEncoderAsync(modelIdOrFolder, options, ct).ConfigureAwait(false);
        return new SentenceEmbeddingPipeline(tokenizer, model, options);
    }

    /// <summary>text → [C], the mean-pooled, L2-normalised embedding.</summary>
    /// <exception cref="ArgumentException">The input is longer than the model allows and truncation is off.</exception>
    public float[] Embed(string text) => Embed([text])[0];

    /// <summary>
    /// B texts → B embeddings of C, in input order. Texts are sorted by length and run <paramref name="batchSize"/> at a
    /// time, padded to the longest of the batch (padding is masked out of attention and pooling, so it does not change
    /// the result beyond float rounding).
    /// </summary>
    /// <param name="texts">The texts.</param>
    /// <param name="batchSize">Texts per forward pass.</param>
    /// <param name="progress">Told after every batch.</param>
    /// <param name="ct">Checked between batches.</param>
    /// <exception cref="ArgumentException">A text is longer than the model allows (and truncation is off), or batchSize is below 1.</exception>
    public IReadOnlyList<float[]> Embed(IReadOnlyList<string> texts, int batchSize = 32, IProgress<EmbeddingProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (batchSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "Embed: batchSize must be at least 1.");
        }

        // Encode everything first so a too-long text fails before any compute.
        var encodings = new TokenEncoding[texts.Count];
        for (var i = 0; i < texts.Count; i++)
        {
            encodings[i] = ModelLoader.EncodeChecked(Tokenizer, Model, texts[i], _options);
        }

        var order = Enumerable.Range(0, texts.Count).OrderByDescending(i => encodings[i].Count).ToArray();
        var result = new float[texts.Count][];
        var padId = Tokenizer.PadTokenId ?? 0;
        int c = Model.HiddenSize;
        for (var start = 0; start < order.Length; start += batchSize)
        {
            ct.ThrowIfCancellationRequested();
            var batch = Math.Min(batchSize, order.Length - start);
            var seq = encodings[order[start]].Count;

            // [B, T] ids, mask and types, right-padded to the batch's longest text.
            var ids = new int[batch * seq];
            var mask = new int[batch * seq];
            var types = new int[batch * seq];
            Array.Fill(ids, padId);
            for (var b = 0; b < batch; b++)
            {
                var encoding = encodings[order[start + b]];
                for (var t = 0; t < encoding.Count; t++)
                {
                    ids[(b * seq) + t] = encoding.Ids[t];
                    mask[(b * seq) + t] = encoding.AttentionMask[t];
                    types[(b * seq) + t] = encoding.TypeIds[t];
                }
            }

            var shape = new Shape(batch, seq);
            var hidden = Model.Encode(Tensor.FromArray(ids, shape), Tensor.FromArray(mask, shape), Tensor.FromArray(types, shape)).Contiguous();
            var pooled = Pooling.MeanPool(hidden.AsReadOnlySpan<float>(), mask, batch, seq, c);
            Pooling.L2Normalize(pooled, c);
            for (var b = 0; b < batch; b++)
            {
                result[order[start + b]] = pooled.AsSpan(b * c, c).ToArray();
            }

            progress?.Report(new EmbeddingProgress(start + batch, order.Length));
        }

        return result;
    }
}
