using Microsoft.Extensions.AI;
using Sharpformer.IO.Hub;
using Sharpformer.Pipelines;
using Sharpformer.Pipelines.Tests;

namespace Sharpformer.AI.Tests;

public class LocalEmbeddingGeneratorTests
{
    private static readonly Lazy<string> Folder = new(() => RandomBertMlm.Write(Path.Combine(Path.GetTempPath(), $"sharpformer-ai-bert-{Guid.NewGuid():N}"), withHead: false));

    private static PipelineOptions Offline() => new()
    {
        Hub = new HubOptions { Offline = true, CacheDir = Path.Combine(Path.GetTempPath(), $"sharpformer-empty-cache-{Guid.NewGuid():N}") },
    };

    [Fact]
    public async Task Embeddings_EqualTheSentenceEmbeddingPipeline()
    {
        string[] texts = ["the heart is a organ.", "the cat sat on the mat", "a small brain", "cardiac"];
        using var generator = await LocalEmbeddingGenerator.FromPretrainedAsync(Folder.Value, Offline());
        var pipeline = await SentenceEmbeddingPipeline.FromPretrainedAsync(Folder.Value, Offline());

        var embeddings = await generator.GenerateAsync(texts);
        var expected = pipeline.Embed(texts);

        Assert.Equal(texts.Length, embeddings.Count);
        for (int i = 0; i < texts.Length; i++)
        {
            Assert.Equal(expected[i], embeddings[i].Vector.ToArray());
            Assert.Equal(RandomBertMlm.Hidden, embeddings[i].Dimensions);
        }

        long tokens = texts.Sum(t => (long)pipeline.Tokenizer.Encode(t).Ids.Count);
        Assert.Equal(tokens, embeddings.Usage!.InputTokenCount);

        // One text through the M.E.AI extension gives the same vector as the pipeline's single-text call.
        var one = await generator.GenerateVectorAsync(texts[1]);
        Assert.Equal(pipeline.Embed(texts[1]), one.ToArray());
    }

    [Fact]
    public async Task Metadata_AndDimensionsOption()
    {
        using var generator = await LocalEmbeddingGenerator.FromPretrainedAsync(Folder.Value, Offline());
        var metadata = generator.GetService<EmbeddingGeneratorMetadata>();
        Assert.Equal(RandomBertMlm.Hidden, metadata!.DefaultModelDimensions);
        Assert.Equal("sharpformer", metadata.ProviderName);

        Assert.Single(await generator.GenerateAsync(["cat"], new EmbeddingGenerationOptions { Dimensions = RandomBertMlm.Hidden }));
        var e = await Assert.ThrowsAsync<NotSupportedException>(() => generator.GenerateAsync(["cat"], new EmbeddingGenerationOptions { Dimensions = 8 }));
        Assert.Contains("Dimensions", e.Message);
    }
}
