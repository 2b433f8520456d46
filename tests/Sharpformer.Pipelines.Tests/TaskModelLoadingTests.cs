using Sharpformer.IO.Hub;

namespace Sharpformer.Pipelines.Tests;

public sealed class TaskModelLoadingTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"sharpformer-task-loading-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task FromPretrainedAsync_OfflineAndNotCached_OneLineErrorPointingAtALocalFolder()
    {
        var options = new PipelineOptions { Hub = new HubOptions { Offline = true, CacheDir = Path.Combine(_root, "cache") } };

        var error = await Assert.ThrowsAsync<ModelUnavailableException>(() => TokenClassificationPipeline.FromPretrainedAsync(options: options));

        Assert.DoesNotContain('\n', error.Message);
        Assert.Contains(TokenClassificationPipeline.DefaultModel, error.Message, StringComparison.Ordinal);
        Assert.Contains("--model a local folder", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FromPretrainedAsync_CheckpointWithoutTheTaskHead_LoadsWithAWarningThatScoresAreRandom()
    {
        // A BertForMaskedLM folder: the encoder loads, the classifier / qa_outputs are newly initialised (as HF does).
        var folder = RandomBertMlm.Write(Path.Combine(_root, "mlm"));
        var warnings = new List<string>();
        var options = new PipelineOptions { Warning = warnings.Add };

        var classify = await TextClassificationPipeline.FromPretrainedAsync(folder, options);
        var qa = await QuestionAnsweringPipeline.FromPretrainedAsync(folder, options);

        Assert.Equal(2, classify.Model.Labels.Count);
        Assert.Single(classify.Run("the heart is a large organ"));
        Assert.Single(qa.Run("what is the heart?", "the heart is a large organ."));
        Assert.Equal(2, warnings.Count);
        Assert.Contains("no trained text-classification head (classifier.weight or score.weight)", warnings[0], StringComparison.Ordinal);
        Assert.Contains("no trained question-answering head (qa_outputs.weight)", warnings[1], StringComparison.Ordinal);
    }
}
