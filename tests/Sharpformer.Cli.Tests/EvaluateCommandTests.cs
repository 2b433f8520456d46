using System.Text.Json;
using Sharpformer.Training.Tests.Reference;

namespace Sharpformer.Cli.Tests;

/// <summary><c>sharpformer evaluate</c> end to end on the tiny GPT-2 fixture: JSON fields, the table, bad input.</summary>
[Collection("Console")]
public sealed class EvaluateCommandTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sf-evaluate-cli-" + Guid.NewGuid().ToString("N"));

    public EvaluateCommandTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void EvaluateClm_Json_ReportsLossPerplexityAndTheUnigramBaseline()
    {
        var fixture = ReferenceFixture.Load("train_gpt2");
        var (code, stdout, stderr) = Invoke(["evaluate", "clm", "--model", fixture.Folder, "--data", fixture.CorpusPath, "--baseline-data", fixture.CorpusPath,
            "--block-size", "16", "--json", "--cache-dir", Path.Combine(_dir, "cache")]);
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        Assert.Equal("clm", root.GetProperty("objective").GetString());
        Assert.True(root.GetProperty("scored_tokens").GetInt64() > 0);
        double loss = root.GetProperty("loss").GetDouble();
        Assert.Equal(Math.Exp(loss), root.GetProperty("perplexity").GetDouble(), 6);
        Assert.True(root.GetProperty("unigram_loss").GetDouble() > 0);

        (code, stdout, stderr) = Invoke(["evaluate", "clm", "--model", fixture.Folder, "--data", fixture.CorpusPath, "--block-size", "16", "--cache-dir", Path.Combine(_dir, "cache")]);
        Assert.True(code == 0, stderr);
        Assert.Contains("model   loss", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("unigram", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void EvaluateClm_MissingData_IsOneClearLine()
    {
        var fixture = ReferenceFixture.Load("train_gpt2");
        var (code, _, stderr) = Invoke(["evaluate", "clm", "--model", fixture.Folder, "--data", Path.Combine(_dir, "missing.txt"), "--cache-dir", Path.Combine(_dir, "cache")]);
        Assert.NotEqual(0, code);
        Assert.Contains("missing.txt", stderr, StringComparison.Ordinal);
    }

    private static (int Code, string Stdout, string Stderr) Invoke(string[] args) => ConsoleCli.Invoke(args);
}
