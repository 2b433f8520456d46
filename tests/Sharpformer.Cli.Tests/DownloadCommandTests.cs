using System.CommandLine;
using System.Diagnostics;
using Sharpformer.IO.Tests.Hub;
using static Sharpformer.IO.Tests.Hub.FakeRepos;

namespace Sharpformer.Cli.Tests;

public sealed class DownloadCommandTests : IAsyncLifetime
{
    private readonly string _cache = Path.Combine(Path.GetTempPath(), "sharpformer-cli-hub-" + Guid.NewGuid().ToString("N"));
    private FakeHubServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await FakeHubServer.StartAsync();
        _server.AddRepo(Tiny());
        _server.AddRepo(Gated());
        _server.AddRepo(Sharded());
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        if (Directory.Exists(_cache))
            Directory.Delete(_cache, recursive: true);
    }

    private (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        string[] all = [.. args, "--endpoint", _server.Endpoint.ToString(), "--cache-dir", _cache];
        var exit = Program.BuildRoot().Parse(all).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }

    private string Snapshot(string repoId, string commit) =>
        Path.Combine(_cache, "models--" + repoId.Replace("/", "--", StringComparison.Ordinal), "snapshots", commit);

    [Fact]
    public void Download_ModelRepo_PrintsSnapshotFolderWithModelFiles()
    {
        var (exit, output, error) = Run("download", "org/sharded");

        Assert.Equal(0, exit);
        Assert.Equal("", error);
        var folder = Snapshot("org/sharded", CommitSharded);
        Assert.Equal(folder, output.Trim());
        var files = Directory.GetFiles(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal);
        Assert.Equal(
            ["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json", "vocab.txt"],
            files);
    }

    [Fact]
    public void Download_IncludeAndRevision_FetchesOnlyMatchingFilesAtThatRevision()
    {
        var (exit, output, _) = Run("download", "org/tiny", "--revision", "v1.0", "--include", "*.json");

        Assert.Equal(0, exit);
        Assert.Equal(Snapshot("org/tiny", CommitV1), output.Trim());
        Assert.Equal(["config.json"], Directory.GetFiles(output.Trim()).Select(Path.GetFileName));
    }

    [Theory]
    [InlineData("org/nope", "org/nope")]
    [InlineData("org/gated", "HF_TOKEN")]
    public void Download_HubError_OneLineErrorAndNonZeroExit(string repo, string expected)
    {
        var (exit, output, error) = Run("download", repo);

        Assert.NotEqual(0, exit);
        Assert.Equal("", output);
        Assert.StartsWith("error: ", error, StringComparison.Ordinal);
        Assert.Contains(expected, error, StringComparison.Ordinal);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void Download_UnsafeRepoId_RejectedWithUsageExitCode()
    {
        var (exit, _, error) = Run("download", "../../etc", "--include", "*");

        Assert.Equal(2, exit);
        Assert.Contains("not a valid Hugging Face repo id", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Download_SeveralProcessesAtOnce_EndWithOneVerifiedBlob()
    {
        _server.ChunkDelayMs = 5;
        var cli = typeof(Program).Assembly.Location;
        var processes = Enumerable.Range(0, 4).Select(_ =>
        {
            var start = new ProcessStartInfo("dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var arg in new[] { "exec", cli, "download", "org/tiny", "--include", "model.safetensors", "--endpoint", _server.Endpoint.ToString(), "--cache-dir", _cache })
                start.ArgumentList.Add(arg);
            return Process.Start(start)!;
        }).ToList();

        var outputs = await Task.WhenAll(processes.Select(async p =>
        {
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            await p.WaitForExitAsync();
            return (p.ExitCode, Out: (await stdout).Trim(), Err: await stderr);
        }));
        foreach (var p in processes)
            p.Dispose();

        Assert.All(outputs, o => Assert.True(o.ExitCode == 0, o.Err));
        Assert.Single(outputs.Select(o => o.Out).Distinct());
        var expected = Tiny().Commits[CommitMain]["model.safetensors"];
        var blobs = Directory.GetFiles(Path.Combine(_cache, "models--org--tiny", "blobs"));
        Assert.Equal(expected.Sha256, Path.GetFileName(Assert.Single(blobs)));
        Assert.Equal(expected.Content, File.ReadAllBytes(blobs[0]));
        Assert.Equal(1, _server.ContentGetCount);
    }
}
