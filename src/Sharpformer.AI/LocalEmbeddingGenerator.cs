using Microsoft.Extensions.AI;
using Sharpformer.Pipelines;

namespace Sharpformer.AI;

/// <summary>
/// Microsoft.Extensions.AI's <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> over
/// <see cref="SentenceEmbeddingPipeline"/>: each text becomes its mean-pooled, L2-normalised sentence embedding, exactly
/// what the pipeline returns. Usage reports the input tokens (special tokens included, as the encoder saw them).
/// Calls are served one at a time (the encoder reuses its buffers).
/// </summary>
public sealed class LocalEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    private readonly SentenceEmbeddingPipeline _pipeline;
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>Wraps a loaded pipeline.</summary>
    /// <param name="pipeline">The sentence-embedding pipeline.</param>
    /// <param name="modelId">The model id the metadata reports.</param>
    public LocalEmbeddingGenerator(SentenceEmbeddingPipeline pipeline, string modelId)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentException.ThrowIfNullOrWhiteSpace(modelId);
        _pipeline = pipeline;
        Metadata = new EmbeddingGeneratorMetadata("sharpformer", null, modelId, pipeline.Dimensions);
    }

    /// <summary>The provider name ("sharpformer"), the model id and the embedding length.</summary>
    public EmbeddingGeneratorMetadata Metadata { get; }

    /// <summary>Loads the encoder from a local folder or the Hub (see <see cref="SentenceEmbeddingPipeline.FromPretrainedAsync"/>) and wraps it.</summary>
    /// <param name="modelIdOrFolder">A local folder or a Hub repo id, e.g. sentence-transformers/all-MiniLM-L6-v2.</param>
    /// <param name="options">Hub settings, revision, truncation.</param>
    /// <param name="ct">Cancels downloads.</param>
    /// <returns>The generator.</returns>
    /// <exception cref="ModelUnavailableException">Not a folder, not cached, and the Hub cannot be reached.</exception>
    public static async Task<LocalEmbeddingGenerator> FromPretrainedAsync(string modelIdOrFolder, PipelineOptions? options = null, CancellationToken ct = default)
    {
        var pipeline = await SentenceEmbeddingPipeline.FromPretrainedAsync(modelIdOrFolder, options, ct).ConfigureAwait(false);
        return new LocalEmbeddingGenerator(pipeline, modelIdOrFolder);
    }

    /// <inheritdoc/>
    /// <exception cref="NotSupportedException"><see cref="EmbeddingGenerationOptions.Dimensions"/> asks for a length other than the model's.</exception>
    /// <exception cref="ArgumentException">A text is longer than the model allows (and truncation is off).</exception>
    public async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        var texts = values.ToList();
        if (options?.Dimensions is { } dimensions && dimensions != _pipeline.Dimensions)
        {
            throw new NotSupportedException(
                $"LocalEmbeddingGenerator: EmbeddingGenerationOptions.Dimensions = {dimensions}, but '{Metadata.DefaultModelId}' makes {_pipeline.Dimensions}-dimensional embeddings and does not shorten them; leave Dimensions unset or set it to {_pipeline.Dimensions}.");
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var vectors = await Task.Run(() => _pipeline.Embed(texts, ct: cancellationToken), cancellationToken).ConfigureAwait(false);
            var created = DateTimeOffset.UtcNow;
            var result = new GeneratedEmbeddings<Embedding<float>>(vectors.Count);
            foreach (var vector in vectors)
            {
                result.Add(new Embedding<float>(vector) { ModelId = Metadata.DefaultModelId, CreatedAt = created });
            }

            long tokens = 0;
            foreach (var text in texts)
            {
                tokens += Math.Min(_pipeline.Tokenizer.Encode(text).Ids.Count, _pipeline.Model.MaxPositions);
            }

            result.Usage = new UsageDetails { InputTokenCount = tokens, TotalTokenCount = tokens };
            return result;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc/>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null)
        {
            return null;
        }

        if (serviceType == typeof(EmbeddingGeneratorMetadata))
        {
            return Metadata;
        }

        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <inheritdoc/>
    public void Dispose() => _gate.Dispose();
}
