using System.CommandLine;
using System.Text.Json;
using Sharpformer.Pipelines;

namespace Sharpformer.Cli.Tests;

public sealed class SearchCommandTests(PipelineModelFolders models) : IClassFixture<PipelineModelFolders>, IDisposable
{
    private readonly string _docs = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"sharpformer-cli-search-{Guid.NewGuid():N}")).FullName;

    public void Dispose() => Directory.Delete(_docs, recursive: true);

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = Program.BuildRoot().Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }

    private void WriteCorpus()
    {
        File.WriteAllText(Path.Combine(_docs, "heart.txt"), "Angina is chest pain caused by reduced blood flow to the heart.\n");
        File.WriteAllText(Path.Combine(_docs, "garden.md"), "Roses need sun.\n\nWater the tomatoes every morning.\n");
        File.WriteAllText(Path.Combine(_docs, "drugs.jsonl"), "{\"text\": \"Paracetamol lowers a fever.\"}\n{\"text\": \"The train leaves at noon.\"}\n");
    }

    [Fact]
    public void Search_Json_ShapeScoresAndCacheCounts()
    {
        WriteCorpus();

        var (exit, output, error) = Run("search", "medicine for fever", "--docs", _docs, "--model", models.MiniLm, "--json", "--top-k", "2");

        Assert.True(exit == 0, error);
        using var json = JsonDocument.Parse(output);
        var root = json.RootElement;
        Assert.Equal("medicine for fever", root.GetProperty("query").GetString());
        Assert.Equal(models.MiniLm, root.GetProperty("model").GetString());
        var index = root.GetProperty("index");
        Assert.Equal(3, index.GetProperty("files").GetInt32());
        Assert.Equal(4, index.GetProperty("chunks").GetInt32());
        Assert.Equal(4, index.GetProperty("chunks_embedded").GetInt32());
        var results = root.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(2, results.Count);
        var best = results[0];
        Assert.Equal(1, best.GetProperty("rank").GetInt32());
        Assert.Equal("drugs.jsonl", best.GetProperty("file").GetString());
        Assert.Equal(1, best.GetProperty("line_start").GetInt32());
        Assert.Equal(1, best.GetProperty("line_end").GetInt32());
        Assert.True(best.GetProperty("in_record").GetBoolean());
        Assert.Equal("Paracetamol lowers a fever.", best.GetProperty("text").GetString());
        Assert.Equal(0, best.GetProperty("start").GetInt32());
        Assert.Equal(27, best.GetProperty("end").GetInt32());
        Assert.True(best.GetProperty("score").GetSingle() > results[1].GetProperty("score").GetSingle());
        Assert.Contains("embedded 4/4 passages", error, StringComparison.Ordinal);

        // The second run reads everything from the cache; --rebuild embeds it all again.
        var (_, cachedOut, cachedErr) = Run("search", "medicine for fever", "--docs", _docs, "--model", models.MiniLm, "--json");
        using var cached = JsonDocument.Parse(cachedOut);
        Assert.Equal(0, cached.RootElement.GetProperty("index").GetProperty("chunks_embedded").GetInt32());
        Assert.Equal(4, cached.RootElement.GetProperty("index").GetProperty("chunks_reused").GetInt32());
        Assert.DoesNotContain("embedded 4/4", cachedErr, StringComparison.Ordinal);
        Assert.Equal(
            best.GetProperty("score").GetSingle(),
            cached.RootElement.GetProperty("results")[0].GetProperty("score").GetSingle());
        var (_, rebuiltOut, _) = Run("search", "medicine for fever", "--docs", _docs, "--model", models.MiniLm, "--json", "--rebuild");
        using var rebuilt = JsonDocument.Parse(rebuiltOut);
        Assert.Equal(4, rebuilt.RootElement.GetProperty("index").GetProperty("chunks_embedded").GetInt32());
    }

    [Fact]
    public void Search_Text_RanksWithScoreFileLineAndPassage()
    {
        WriteCorpus();

        var (exit, output, error) = Run("search", "pain in the chest", "--docs", _docs, "--model", models.MiniLm, "--top-k", "1");

        Assert.True(exit == 0, error);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToArray();
        Assert.Equal("1 best of 4 passages in 3 files for \"pain in the chest\":", lines[0]);
        Assert.Matches(@"^1\. 0\.\d{4}  heart\.txt:1$", lines[1]);
        Assert.Equal("   Angina is chest pain caused by reduced blood flow to the heart.", lines[2]);
        Assert.Contains("index: 3 files (0 cached, 3 embedded, 0 removed), 4 passages (4 embedded now)", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Search_Text_MultiLinePassageKeepsItsLines()
    {
        WriteCorpus();

        var (exit, output, error) = Run("search", "watering vegetables", "--docs", _docs, "--model", models.MiniLm, "--top-k", "1");

        Assert.True(exit == 0, error);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToArray();
        Assert.Matches(@"^1\. 0\.\d{4}  garden\.md:1-3$", lines[1]);
        Assert.Equal(["   Roses need sun.", "   Water the tomatoes every morning."], lines[2..]);
    }

    [Fact]
    public void Search_MissingFolder_ExitOneNamesTheFolder()
    {
        var missing = Path.Combine(_docs, "nope");

        var (exit, output, error) = Run("search", "q", "--docs", missing, "--model", models.MiniLm);

        Assert.Equal(1, exit);
        Assert.Empty(output);
        Assert.Equal($"error: search: --docs folder '{missing}' does not exist; pass a folder of .txt, .md or .jsonl files.", error.Trim());
    }

    [Fact]
    public void Search_EmptyFolder_And_NoReadableDocuments_ExitOne()
    {
        var (exit, _, error) = Run("search", "q", "--docs", _docs, "--model", models.MiniLm);
        Assert.Equal(1, exit);
        Assert.StartsWith($"error: search: --docs folder '{_docs}' has no documents (it is empty); put .txt, .md or .jsonl files", error, StringComparison.Ordinal);

        File.WriteAllBytes(Path.Combine(_docs, "blob.txt"), [1, 0, 2]);
        (exit, _, error) = Run("search", "q", "--docs", _docs, "--model", models.MiniLm);
        Assert.Equal(1, exit);
        Assert.Contains($"error: search: --docs folder '{_docs}' has no readable documents (blob.txt: binary", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-3")]
    public void Search_BadTopK_ExitTwoBeforeLoadingTheModel(string topK)
    {
        WriteCorpus();

        var (exit, _, error) = Run("search", "q", "--docs", _docs, "--model", Path.Combine(_docs, "no-model"), "--top-k", topK);

        Assert.Equal(2, exit);
        Assert.Equal($"error: search: --top-k is {topK}; pass a whole number of at least 1.", error.Trim());
    }

    [Fact]
    public void Search_NotANumberTopK_AndMissingDocs_AreUsageErrors()
    {
        Assert.Equal(2, Program.Main(["search", "q", "--docs", _docs, "--top-k", "five"]));
        Assert.Equal(2, Program.Main(["search", "q"]));
    }

    [Fact]
    public void Search_BadChunkSettings_ExitTwo()
    {
        WriteCorpus();

        var (exit, _, error) = Run("search", "q", "--docs", _docs, "--model", models.MiniLm, "--chunk-tokens", "64", "--overlap-tokens", "40");

        Assert.Equal(2, exit);
        Assert.Contains("--overlap-tokens", error, StringComparison.Ordinal);
    }

    [Fact]
    public void DefaultModel_IsMiniLm() => Assert.Equal("sentence-transformers/all-MiniLM-L6-v2", DocumentSearch.DefaultModel);
}
