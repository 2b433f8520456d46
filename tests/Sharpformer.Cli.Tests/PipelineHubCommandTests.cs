using System.Diagnostics;
using Sharpformer.IO.Tests.Hub;
using Sharpformer.Pipelines.Tests;

namespace Sharpformer.Cli.Tests;

/// <summary>fill-mask with a Hub repo id: the random masked-LM folder served by the loopback Hub, fetched into the cache, then used offline.</summary>
public sealed class PipelineHubCommandTests : IAsyncLifetime
{
    private const string Commit = "0123456789abcdef0123456789abcdef01234567";
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"sharpformer-cli-pipelines-hub-{Guid.NewGuid():N}");
    private FakeHubServer _server = null!;
    private string _folder = null!;

    public async Task InitializeAsync()
    {
        _folder = RandomBertMlm.Write(Path.Combine(_root, "mlm"));
        var repo = new FakeRepo("org/tiny-mlm");
        repo.Commits[Commit] = Directory.GetFiles(_folder).ToDictionary(
            f => Path.GetFileName(f)!,
            f => new FakeFile(File.ReadAllBytes(f), Lfs: f.EndsWith(".safetensors", StringComparison.Ordinal)),
            StringComparer.Ordinal);
        repo.Refs["main"] = Commit;
        _server = await FakeHubServer.StartAsync();
        _server.AddRepo(repo);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_root, recursive: true);
    }

    private async Task<(int Exit, string Out, string Err)> RunAsync(bool offline, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("exec");
        start.ArgumentList.Add(typeof(Program).Assembly.Location);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        start.Environment["HF_HOME"] = Path.Combine(_root, "home");
        start.Environment["HF_HUB_CACHE"] = Path.Combine(_root, "cache");
        start.Environment["HF_ENDPOINT"] = _server.Endpoint.ToString();
        start.Environment["HF_HUB_OFFLINE"] = offline ? "1" : "0";
        start.Environment.Remove("HF_TOKEN");

        // No shipped models (an empty root): the offline default must fail, not fall back (TourCommandTests covers the fallback).
        start.Environment["SHARPFORMER_SHIPPED_MODELS"] = Directory.CreateDirectory(Path.Combine(_root, "no-shipped-models")).FullName;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public async Task FillMask_HubRepoId_DownloadsWithProgressThenWorksOffline()
    {
        string[] args = ["fill-mask", "the cat sat on the [MASK].", "--json"];

        var online = await RunAsync(false, [.. args, "--model", "org/tiny-mlm"]);
        var requestsOnline = _server.TotalRequests;
        var offline = await RunAsync(true, [.. args, "--model", "org/tiny-mlm"]);
        var local = await RunAsync(true, [.. args, "--model", _folder]);

        Assert.True(online.Exit == 0, online.Err);
        Assert.Contains("downloaded model.safetensors", online.Err, StringComparison.Ordinal);
        Assert.True(offline.Exit == 0, offline.Err);
        Assert.Equal("", offline.Err);
        Assert.Equal(local.Out, online.Out);
        Assert.Equal(local.Out, offline.Out);
        Assert.Equal(Directory.GetFiles(_folder).Length, _server.ContentGetCount);
        Assert.Equal(requestsOnline, _server.TotalRequests);
    }

    [Fact]
    public async Task Tokenize_HubRepoId_FetchesTokenizerFilesThenWorksOffline()
    {
        var online = await RunAsync(false, "tokenize", "--json", "--model", "org/tiny-mlm", "the cat sat");
        var offline = await RunAsync(true, "tokenize", "--json", "--model", "org/tiny-mlm", "the cat sat");
        var local = await RunAsync(true, "tokenize", "--json", "--model", _folder, "the cat sat");

        Assert.True(online.Exit == 0, online.Err);
        Assert.True(offline.Exit == 0, offline.Err);
        Assert.Contains("\"input_ids\"", local.Out, StringComparison.Ordinal);
        // The JSON names the model it was given; the encodings themselves are identical.
        Assert.Equal(local.Out.Replace(_folder, "org/tiny-mlm", StringComparison.Ordinal), online.Out);
        Assert.Equal(online.Out, offline.Out);
    }

    [Fact]
    public async Task Tokenize_DefaultModelOfflineAndNotCached_OneLineSayingToPassModel()
    {
        var result = await RunAsync(true, "tokenize", "hello");

        Assert.Equal(1, result.Exit);
        Assert.Contains("bert-base-uncased", result.Err, StringComparison.Ordinal);
        Assert.Contains("--model <folder with vocab.txt or tokenizer.json>", result.Err, StringComparison.Ordinal);
        Assert.Single(result.Err.Trim().Split('\n'));
    }
}
