using System.CommandLine;
using System.Text.Json.Nodes;

namespace Sharpformer.Cli.Tests;

/// <summary>
/// <c>classify</c> and <c>ner</c> in corpus mode (<c>--input … --output …</c>): one process writes one result line per
/// input matching the verb's text mode, and <c>mpirun -np 2</c> over loopback writes the same file byte for byte.
/// </summary>
public sealed class DistributedTaskCommandTests(TaskModelFolders models) : IClassFixture<TaskModelFolders>, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sf-mpi-tasks-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = Program.BuildRoot().Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }

    private string Corpus()
    {
        string path = Path.Combine(_dir, "in.txt");
        File.WriteAllLines(path, Enumerable.Range(0, 11).Select(i => i % 2 == 0 ? "my name is wolfgang and i live in berlin" : "the heart is a large organ ."));
        return path;
    }

    [Theory]
    [InlineData("classify", "labels")]
    [InlineData("ner", "entities")]
    public void CorpusMode_TwoRanks_WriteTheOneProcessFile(string verb, string field)
    {
        string model = verb == "classify" ? models.Classifier : models.Ner;
        string input = Corpus();
        string single = Path.Combine(_dir, verb + "-single.jsonl");
        var (exit, _, error) = Run(verb, "--input", input, "--output", single, "--model", model, "--batch-size", "2");
        Assert.True(exit == 0, error);
        var lines = File.ReadAllLines(single);
        Assert.Equal(11, lines.Length);
        for (int i = 0; i < lines.Length; i++)
        {
            var node = JsonNode.Parse(lines[i])!;
            Assert.Equal(i, node["index"]!.GetValue<long>());
            Assert.Equal((i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), node["id"]!.GetValue<string>());
            Assert.NotNull(node[field]);
        }

        // The corpus line equals what the text mode prints as JSON for the same text.
        var (textExit, textOut, textErr) = Run(verb, "the heart is a large organ .", "--model", model, "--json");
        Assert.True(textExit == 0, textErr);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(textOut), JsonNode.Parse(lines[1])![field]), $"{textOut} vs {lines[1]}");

        string ranks = Path.Combine(_dir, verb + "-ranks.jsonl");
        var (code, stdout, stderr) = MpiRun.Run(2, [verb, "--input", input, "--output", ranks, "--model", model, "--batch-size", "2"]);
        Assert.True(code == 0, stderr);
        Assert.Contains("on 2 MPI ranks", stdout, StringComparison.Ordinal);
        Assert.Equal(File.ReadAllText(single), File.ReadAllText(ranks));
    }
}
