using System.Text.Json.Nodes;
using Sharpformer.Training.Distributed;
using static Sharpformer.Training.Tests.Data.DataTestKit;

namespace Sharpformer.Training.Tests.Distributed;

/// <summary>
/// <see cref="ShardedInference"/>: N ranks write the same JSONL as one process (input order, every input once), an output
/// cut mid-line is extended to the same file, and an output of another input is refused with the line named.
/// </summary>
public class ShardedInferenceTests
{
    private static IReadOnlyList<JsonObject> Fake(IReadOnlyList<InferenceInput> batch) =>
        [.. batch.Select(b => new JsonObject { ["length"] = b.Text.Length, ["upper"] = b.Text.ToUpperInvariant() })];

    private static IReadOnlyList<InferenceInput> Inputs(int n) =>
        [.. Enumerable.Range(0, n).Select(i => new InferenceInput($"doc-{i}", new string((char)('a' + (i % 26)), 1 + (i % 7))))];

    private static string RunGroup(int ranks, IReadOnlyList<InferenceInput> inputs, string path, int batch)
    {
        using var group = new ThreadGroup(ranks);
        group.Run(rank => ShardedInference.Run(rank, inputs, path, batch, Fake));
        return File.ReadAllText(path);
    }

    [Theory]
    [InlineData(2, 3)]
    [InlineData(3, 2)]
    [InlineData(4, 5)]
    public void Ranks_WriteWhatOneProcessWrites_InInputOrder(int ranks, int batch)
    {
        var inputs = Inputs(23);
        string dir = NewFolder("sharded");
        string single = Path.Combine(dir, "single.jsonl");
        var progress = new List<InferenceProgress>();
        ShardedInference.Run(SingleProcessCommunicator.Instance, inputs, single, batch, Fake, new Progress(progress));
        string expected = File.ReadAllText(single);
        var lines = expected.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(inputs.Count, lines.Length);
        for (int i = 0; i < lines.Length; i++)
        {
            var node = JsonNode.Parse(lines[i])!;
            Assert.Equal(i, node["index"]!.GetValue<long>());
            Assert.Equal(inputs[i].Id, node["id"]!.GetValue<string>());
            Assert.Equal(inputs[i].Text.ToUpperInvariant(), node["upper"]!.GetValue<string>());
        }

        Assert.Equal(new InferenceProgress(inputs.Count, inputs.Count), progress[^1]);
        Assert.Equal(expected, RunGroup(ranks, inputs, Path.Combine(dir, "group.jsonl"), batch));
    }

    [Fact]
    public void TornOutput_IsExtended_NotRedone()
    {
        var inputs = Inputs(17);
        string dir = NewFolder("resume");
        string whole = Path.Combine(dir, "whole.jsonl");
        ShardedInference.Run(SingleProcessCommunicator.Instance, inputs, whole, 4, Fake);
        string expected = File.ReadAllText(whole);

        // Seven complete lines and half of the eighth, as a run killed mid-write leaves it.
        var lines = expected.Split('\n');
        string partial = string.Join('\n', lines.Take(7)) + "\n" + lines[7][..(lines[7].Length / 2)];
        string resumed = Path.Combine(dir, "resumed.jsonl");
        File.WriteAllText(resumed, partial);
        var seen = new List<string>();
        using var group = new ThreadGroup(2);
        long start = -1;
        group.Run(rank =>
        {
            long s = ShardedInference.Run(rank, inputs, resumed, 3, batch =>
            {
                lock (seen) seen.AddRange(batch.Select(b => b.Id));
                return Fake(batch);
            });
            if (rank.Rank == 0) start = s;
        });

        Assert.Equal(7, start);
        Assert.Equal(expected, File.ReadAllText(resumed));
        Assert.Equal(inputs.Skip(7).Select(i => i.Id).Order(StringComparer.Ordinal), seen.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void OutputOfAnotherInput_IsRefused_OnEveryRank()
    {
        string dir = NewFolder("other");
        string path = Path.Combine(dir, "out.jsonl");
        ShardedInference.Run(SingleProcessCommunicator.Instance, Inputs(5), path, 2, Fake);
        string before = File.ReadAllText(path);
        var other = Inputs(5).Select((x, i) => i == 2 ? x with { Id = "renamed" } : x).ToList();
        using var group = new ThreadGroup(2);
        var ex = Assert.Throws<AggregateException>(() => group.Run(rank => ShardedInference.Run(rank, other, path, 2, Fake)));
        Assert.Contains("line 3", ex.InnerException!.Message, StringComparison.Ordinal);
        Assert.Equal(before, File.ReadAllText(path));
    }

    [Fact]
    public void ReadInputs_JsonlFolderAndLines()
    {
        string dir = NewFolder("inputs");
        string jsonl = Write(dir, "a.jsonl", "{\"text\": \"one\", \"id\": \"x\"}\n\n{\"text\": \"two\"}\n");
        Assert.Equal([new InferenceInput("x", "one"), new InferenceInput("3", "two")], ShardedInference.ReadInputs(jsonl));
        string lines = Write(dir, "b.txt", "alpha\n\nbeta\n");
        Assert.Equal([new InferenceInput("1", "alpha"), new InferenceInput("3", "beta")], ShardedInference.ReadInputs(lines));
        string folder = Path.Combine(dir, "docs");
        Directory.CreateDirectory(Path.Combine(folder, "sub"));
        File.WriteAllText(Path.Combine(folder, "b.md"), "B");
        File.WriteAllText(Path.Combine(folder, "sub", "a.txt"), "A");
        File.WriteAllText(Path.Combine(folder, "skip.bin"), "?");
        Assert.Equal([new InferenceInput("b.md", "B"), new InferenceInput("sub/a.txt", "A")], ShardedInference.ReadInputs(folder));
        var bad = Write(dir, "bad.jsonl", "{\"text\": 1}\n");
        Assert.Contains("bad.jsonl:1", Assert.Throws<InvalidDataException>(() => ShardedInference.ReadInputs(bad)).Message, StringComparison.Ordinal);
    }

    private sealed class Progress(List<InferenceProgress> seen) : IProgress<InferenceProgress>
    {
        public void Report(InferenceProgress value) => seen.Add(value);
    }
}
