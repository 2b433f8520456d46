using Sharpformer.IO.Hub;

namespace Sharpformer.Pipelines.Tests;

public sealed class ModelResolutionTests : IDisposable
{
    private readonly string _emptyCache = Path.Combine(Path.GetTempPath(), $"sharpformer-empty-cache-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_emptyCache)) Directory.Delete(_emptyCache, recursive: true);
    }

    [Fact]
    public async Task FromPretrainedAsync_OfflineAndNotCached_OneLineErrorPointingAtModelFolder()
    {
        var options = new PipelineOptions { Hub = new HubOptions { Offline = true, CacheDir = _emptyCache } };

        var error = await Assert.ThrowsAsync<ModelUnavailableException>(
            () => SentenceEmbeddingPipeline.FromPretrainedAsync("sentence-transformers/all-MiniLM-L6-v2", options));

        AssertOneLineHint(error.Message, "sentence-transformers/all-MiniLM-L6-v2");
        Assert.Contains("convert onnx-bert", error.Message, StringComparison.Ordinal);
        Assert.Contains("offline", error.Message, StringComparison.OrdinalIgnoreCase);
        Assert.IsType<OfflineCacheMissException>(error.InnerException);
    }

    [Fact]
    public async Task FromPretrainedAsync_HubUnreachable_OneLineErrorPointingAtModelFolder()
    {
        // Port 9 (discard) on loopback has no listener here: the connection is refused at once.
        var options = new PipelineOptions
        {
            Hub = new HubOptions { Endpoint = new Uri("http://127.0.0.1:9"), CacheDir = _emptyCache, MetadataTimeout = TimeSpan.FromSeconds(5) },
        };

        var error = await Assert.ThrowsAsync<ModelUnavailableException>(() => FillMaskPipeline.FromPretrainedAsync("bert-base-uncased", options));

        AssertOneLineHint(error.Message, "bert-base-uncased");
        Assert.Contains("BertForMaskedLM checkpoint", error.Message, StringComparison.Ordinal);
        Assert.Contains("http://127.0.0.1:9", error.Message, StringComparison.Ordinal);
        Assert.IsType<HubNetworkException>(error.InnerException);
    }

    private static void AssertOneLineHint(string message, string model)
    {
        Assert.DoesNotContain('\n', message);
        Assert.Contains($"'{model}'", message, StringComparison.Ordinal);
        Assert.Contains("pass --model a local folder", message, StringComparison.Ordinal);
    }
}
