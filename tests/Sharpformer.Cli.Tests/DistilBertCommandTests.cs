using System.CommandLine;
using System.Text.Json;

namespace Sharpformer.Cli.Tests;

/// <summary>
/// <c>sharpformer fill-mask --model</c> on tests/fixtures/distilbert_mlm, the PyTorch DistilBertForMaskedLM fixture folder:
/// "the cat sat on the [MASK]." is the fixture's first sequence, so the ranking must be the argsort of its logits.
/// </summary>
public class DistilBertCommandTests
{
    private static readonly string Folder = Path.Combine(AppContext.BaseDirectory, "fixtures", "distilbert_mlm");

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = Program.BuildRoot().Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }

    [Fact]
    public void FillMask_DistilBertFixtureFolder_RanksByPyTorchLogits()
    {
        using var expected = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "expected.json")));
        var ids = expected.RootElement.GetProperty("input_ids")[0].EnumerateArray().Select(v => v.GetInt32()).ToArray();
        int maskAt = Array.IndexOf(ids, 4), v = expected.RootElement.GetProperty("logits_shape")[2].GetInt32();
        var logits = expected.RootElement.GetProperty("logits").EnumerateArray().Skip(maskAt * v).Take(v).Select(x => x.GetDouble()).ToArray();
        var top3 = Enumerable.Range(0, v).OrderByDescending(i => logits[i]).Take(3);

        var (exit, output, error) = Run("fill-mask", "the cat sat on the [MASK].", "--model", Folder, "--top-k", "3", "--json");

        Assert.True(exit == 0, error);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal(top3, doc.RootElement.EnumerateArray().Select(r => r.GetProperty("token").GetInt32()));
        Assert.All(doc.RootElement.EnumerateArray(), r => Assert.StartsWith("the cat sat on the ", r.GetProperty("sequence").GetString(), StringComparison.Ordinal));
    }

    [Fact]
    public void FillMask_DistilBertFixtureFolder_PrintsRankedTable()
    {
        var (exit, output, error) = Run("fill-mask", "the cat sat on the [MASK].", "--model", Folder, "--top-k", "2");

        Assert.True(exit == 0, error);
        var lines = output.TrimEnd().Split('\n');
        Assert.Equal(3, lines.Length);
        Assert.Matches(@"^rank\s+token\s+score\s+sequence$", lines[0]);
        Assert.Matches(@"^   1  \S+\s+0\.\d{4}  the cat sat on the \S+ ?\.?$", lines[1]);
    }
}
