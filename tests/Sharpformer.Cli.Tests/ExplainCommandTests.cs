using System.CommandLine;
using Sharpformer.Explain;
using Sharpformer.IO.Tests.Gguf;
using Sharpformer.Pipelines.Tests;

namespace Sharpformer.Cli.Tests;

/// <summary><c>sharpformer explain</c> on local folders: the page and the pictures it writes, and its errors.</summary>
public sealed class ExplainCommandTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"sharpformer-cli-explain-{Guid.NewGuid():N}");

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static (int Exit, string Output, string Error) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = Program.BuildRoot().Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }

    [Fact]
    public void Explain_MaskedLm_WritesPageWithTheModelsPredictionAndPictures()
    {
        string model = RandomBertMlm.Write(Path.Combine(_root, "mlm"));
        string outFolder = Path.Combine(_root, "out");
        var (exit, output, error) = Run("explain", "The heart is a [MASK] organ.", "--model", model, "--out", outFolder, "--top-k", "3");
        Assert.True(exit == 0, error);

        string page = Path.Combine(outFolder, "explain.html");
        Assert.Contains("wrote " + page, output, StringComparison.Ordinal);
        var report = ExplainPage.ReadData(File.ReadAllText(page));
        Assert.Equal(3, report.Output.Masks[0].Candidates.Count);
        Assert.Equal(model, report.Model.Name);

        // The same prediction as the fill-mask verb gives for this folder.
        var fill = Run("fill-mask", "The heart is a [MASK] organ.", "--model", model, "--top-k", "1", "--json");
        Assert.Contains($"\"token\": {report.Output.Masks[0].Candidates[0].Id},", fill.Output, StringComparison.Ordinal);

        foreach (string picture in new[] { "embeddings.png", "positions.png", "positions.svg", "attention-layer-0.png", "attention-layer-1.png", "hidden-norms.png" })
        {
            Assert.True(new FileInfo(Path.Combine(outFolder, picture)).Length > 0, picture);
        }

        // Self-contained: no external script, style sheet or image is referenced.
        string html = File.ReadAllText(page);
        Assert.DoesNotContain("<script src", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<link rel=\"stylesheet\"", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("http://", html.Replace("http://www.w3.org/2000/svg", "", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.DoesNotContain("https://", html, StringComparison.Ordinal);
    }

    [Fact]
    public void Explain_Gpt2_AppliesTheSamplingFiltersToTheNextToken()
    {
        string model = Directory.CreateDirectory(Path.Combine(_root, "gpt2")).FullName;
        TinyGpt2.Make(model);
        string outFolder = Path.Combine(_root, "out-gpt2");
        var (exit, _, error) = Run("explain", "ab a ab", "--model", model, "--out", outFolder, "--sampling-top-k", "2", "--temperature", "0.7", "--no-images");
        Assert.True(exit == 0, error);
        var next = ExplainPage.ReadData(File.ReadAllText(Path.Combine(outFolder, "explain.html"))).Output.Next!;
        Assert.Equal(2, next.Kept);
        Assert.Equal(0.7f, next.Temperature);
        Assert.False(File.Exists(Path.Combine(outFolder, "embeddings.png")));
    }

    [Fact]
    public void Explain_BadOption_FailsWithTheFlagNamed()
    {
        string model = RandomBertMlm.Write(Path.Combine(_root, "mlm-bad"));
        var (exit, _, error) = Run("explain", "the cat", "--model", model, "--out", Path.Combine(_root, "o"), "--top-p", "1.5");
        Assert.Equal(2, exit);
        Assert.Contains("--top-p", error, StringComparison.Ordinal);
    }
}
