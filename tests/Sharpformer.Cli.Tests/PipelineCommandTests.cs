using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Sharpformer.IO.Onnx;
using Sharpformer.IO.Tests.Onnx;
using Sharpformer.Pipelines;
using Sharpformer.Pipelines.Tests;

namespace Sharpformer.Cli.Tests;

/// <summary>The random masked-LM folder and all-MiniLM-L6-v2 converted from its NuGet package, made once for the class.</summary>
public sealed class PipelineModelFolders : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"sharpformer-cli-pipelines-{Guid.NewGuid():N}");

    public PipelineModelFolders()
    {
        MaskedLm = RandomBertMlm.Write(Path.Combine(_root, "mlm"));
        MiniLm = Path.Combine(_root, "minilm");
        BertOnnxConverter.ConvertToHuggingFace(Path.Combine(OnnxTestModels.MiniLm, "model.onnx"), MiniLm);
        EmptyCache = Directory.CreateDirectory(Path.Combine(_root, "empty-cache")).FullName;
    }

    public string MaskedLm { get; }

    public string MiniLm { get; }

    public string EmptyCache { get; }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}

public class PipelineCommandTests(PipelineModelFolders models) : IClassFixture<PipelineModelFolders>
{
    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = Program.BuildRoot().Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }

    // The real process with its own environment, so HF_HUB_OFFLINE / HF_ENDPOINT are read as a user would set them.
    private async Task<(int Exit, string Out, string Err)> RunProcessAsync(Dictionary<string, string> environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("exec");
        start.ArgumentList.Add(typeof(Program).Assembly.Location);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        start.Environment["HF_HOME"] = Path.Combine(models.EmptyCache, "home");
        start.Environment["HF_HUB_CACHE"] = models.EmptyCache;
        start.Environment.Remove("HF_TOKEN");
        foreach (var (name, value) in environment) start.Environment[name] = value;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public void FillMask_LocalFolder_PrintsRankedTable()
    {
        var (exit, output, error) = Run("fill-mask", "the cat sat on the [MASK].", "--model", models.MaskedLm, "--top-k", "3");

        Assert.True(exit == 0, error);
        var lines = output.TrimEnd().Split('\n');
        Assert.Equal(4, lines.Length);
        Assert.Matches(@"^rank\s+token\s+score\s+sequence$", lines[0]);
        Assert.Matches(@"^   1  \S+\s+0\.\d{4}  the cat sat on the \S+ ?\.?$", lines[1]);
        Assert.StartsWith("   3", lines[3], StringComparison.Ordinal);
    }

    [Fact]
    public async Task FillMask_Json_IsHfShapedAndMatchesThePipeline()
    {
        const string Text = "the cat sat on the [MASK].";

        var (exit, output, error) = Run("fill-mask", Text, "--model", models.MaskedLm, "--json");

        Assert.True(exit == 0, error);
        using var doc = JsonDocument.Parse(output);
        var rows = doc.RootElement.EnumerateArray().ToList();
        Assert.Equal(5, rows.Count);
        var expected = Assert.Single((await FillMaskPipeline.FromPretrainedAsync(models.MaskedLm)).Run(Text));
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(["score", "token", "token_str", "sequence"], rows[i].EnumerateObject().Select(p => p.Name));
            Assert.Equal(expected[i].Score, rows[i].GetProperty("score").GetSingle());
            Assert.Equal(expected[i].Token, rows[i].GetProperty("token").GetInt32());
            Assert.Equal(expected[i].TokenStr, rows[i].GetProperty("token_str").GetString());
            Assert.Equal(expected[i].Sequence, rows[i].GetProperty("sequence").GetString());
        }
    }

    [Fact]
    public void FillMask_SeveralMasksJson_IsListOfLists()
    {
        var (exit, output, error) = Run("fill-mask", "the [MASK] sat on the [MASK].", "--model", models.MaskedLm, "--json", "--top-k", "2");

        Assert.True(exit == 0, error);
        using var doc = JsonDocument.Parse(output);
        var masks = doc.RootElement.EnumerateArray().ToList();
        Assert.Equal(2, masks.Count);
        Assert.All(masks, m => Assert.Equal(2, m.GetArrayLength()));
        Assert.StartsWith("[CLS] the ", masks[1][0].GetProperty("sequence").GetString(), StringComparison.Ordinal);
        Assert.Contains("[MASK] sat", masks[1][0].GetProperty("sequence").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void FillMask_NoMask_OneLineErrorExit2()
    {
        var (exit, output, error) = Run("fill-mask", "no mask here", "--model", models.MaskedLm);

        Assert.Equal(2, exit);
        Assert.Equal("", output);
        Assert.Single(error.TrimEnd().Split('\n'));
        Assert.StartsWith("error: fill-mask: ", error, StringComparison.Ordinal);
        Assert.Contains("[MASK]", error, StringComparison.Ordinal);
    }

    [Fact]
    public void FillMask_EncoderWithoutMlmHead_OneLineErrorExit1()
    {
        var (exit, _, error) = Run("fill-mask", "a [MASK].", "--model", models.MiniLm);

        Assert.Equal(1, exit);
        Assert.Single(error.TrimEnd().Split('\n'));
        Assert.Contains("masked-LM head", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Embed_Json_FullUnitVectorsEqualToThePipeline()
    {
        string[] texts = ["A man is eating food.", "The new movie is awesome."];

        var (exit, output, error) = Run(["embed", "--model", models.MiniLm, "--json", .. texts]);

        Assert.True(exit == 0, error);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal(384, doc.RootElement.GetProperty("dimensions").GetInt32());
        var data = doc.RootElement.GetProperty("data").EnumerateArray().ToList();
        Assert.Equal(2, data.Count);
        var expected = (await SentenceEmbeddingPipeline.FromPretrainedAsync(models.MiniLm)).Embed(texts);
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(i, data[i].GetProperty("index").GetInt32());
            Assert.Equal(texts[i], data[i].GetProperty("text").GetString());
            var vector = data[i].GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray();
            Assert.Equal(expected[i], vector);
        }
    }

    [Fact]
    public void Embed_Table_PrintsDimensionsAndFirstValuesWithProgressOnStderr()
    {
        var (exit, output, error) = Run("embed", "--model", models.MiniLm, "--batch-size", "1", "first text", "second text");

        Assert.True(exit == 0, error);
        Assert.Contains("2 embedding(s) of 384 dimensions", output, StringComparison.Ordinal);
        Assert.Contains("[1] \"second text\"", output, StringComparison.Ordinal);
        Assert.Matches(@"\n    \[(-?\d\.\d{4}, ){8}…\]", output);
        Assert.Equal(["embedded 1/2", "embedded 2/2"], error.TrimEnd().Split('\n'));
    }

    [Fact]
    public void Similarity_TableAndJson_MatrixWithUnitDiagonalAndRelatedPairHighest()
    {
        string[] texts = ["A man is eating food.", "A man is eating a piece of bread.", "The new movie is awesome."];

        var (exit, output, error) = Run(["similarity", "--model", models.MiniLm, "--json", .. texts]);
        var (tableExit, table, _) = Run(["similarity", "--model", models.MiniLm, .. texts]);

        Assert.True(exit == 0, error);
        using var doc = JsonDocument.Parse(output);
        var m = doc.RootElement.GetProperty("matrix").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToArray();
        Assert.Equal(3, m.Length);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(1f, m[i][i], 1e-5f);
            for (var j = 0; j < 3; j++) Assert.Equal(m[i][j], m[j][i]);
        }

        Assert.True(m[0][1] > m[0][2]);
        Assert.Equal(0, tableExit);
        Assert.Matches(@"\n  \[0\]\s+1\.0000\s+0\.\d{4}\s+-?0\.\d{4}", table);
    }

    [Fact]
    public void Similarity_OneText_OneLineErrorExit2()
    {
        var (exit, _, error) = Run("similarity", "--model", models.MiniLm, "only one");

        Assert.Equal(2, exit);
        Assert.Equal("error: similarity: similarity needs at least two texts to compare; got 1.", error.TrimEnd());
    }

    [Fact]
    public async Task FillMask_OfflineEmptyCache_OneClearLine()
    {
        // No shipped models either (SHARPFORMER_SHIPPED_MODELS at an empty folder): otherwise the default falls back to them.
        var (exit, output, error) = await RunProcessAsync(new() { ["HF_HUB_OFFLINE"] = "1", ["SHARPFORMER_SHIPPED_MODELS"] = models.EmptyCache }, "fill-mask", "The heart is a [MASK] organ.");

        Assert.Equal(1, exit);
        Assert.Equal("", output);
        var line = Assert.Single(error.TrimEnd().Split('\n'));
        Assert.StartsWith("error: fill-mask: 'bert-base-uncased' is not in the cache", line, StringComparison.Ordinal);
        Assert.Contains("HF_HUB_OFFLINE", line, StringComparison.Ordinal);
        Assert.Contains("--model", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Embed_UnreachableEndpoint_OneClearLine()
    {
        // A model other than the bundled all-MiniLM-L6-v2 (which falls back to its bundled copy: BundledModelTests).
        var (exit, _, error) = await RunProcessAsync(new() { ["HF_ENDPOINT"] = "http://127.0.0.1:9" }, "embed", "hello", "--model", "org/other-embedder");

        Assert.Equal(1, exit);
        var line = Assert.Single(error.TrimEnd().Split('\n'));
        Assert.StartsWith("error: embed: 'org/other-embedder' is not cached and the Hub at http://127.0.0.1:9/ cannot be reached", line, StringComparison.Ordinal);
        Assert.Contains("--model", line, StringComparison.Ordinal);
    }
}
