namespace Sharpformer.Cli.Tests;

/// <summary>
/// <c>mpirun -np 2 sharpformer embed --input … --output …</c> over loopback (the bundled all-MiniLM-L6-v2): the two
/// ranks' file is the one process's file, byte for byte (the same batches run, rank r taking the r-th of each round),
/// and a run stopped part-way is extended to the same file.
/// </summary>
[Collection("Console")]
public sealed class DistributedEmbedCommandTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sf-mpi-embed-" + Guid.NewGuid().ToString("N"));

    public DistributedEmbedCommandTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void TwoRanks_WriteTheOneProcessFile_AndExtendAPartialOne()
    {
        string input = Path.Combine(_dir, "in.jsonl");
        File.WriteAllLines(input, Enumerable.Range(0, 37).Select(i =>
            System.Text.Json.JsonSerializer.Serialize(new { id = $"s{i}", text = $"sentence {i} is about {(i % 3 == 0 ? "a parking ticket" : "the heart and its rhythm")}" })));
        string single = Path.Combine(_dir, "single.jsonl");
        var (code, _, stderr) = Invoke(["embed", "--input", input, "--output", single, "--batch-size", "4"]);
        Assert.True(code == 0, stderr);
        Assert.Contains("embedded 37/37", stderr, StringComparison.Ordinal);
        string expected = File.ReadAllText(single);
        Assert.Equal(37, expected.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);

        string ranks = Path.Combine(_dir, "ranks.jsonl");
        var (mpiCode, stdout, mpiErr) = MpiRun.Run(2, ["embed", "--input", input, "--output", ranks, "--batch-size", "4"]);
        Assert.True(mpiCode == 0, mpiErr);
        Assert.Contains("on 2 MPI ranks", stdout, StringComparison.Ordinal);
        Assert.Contains("embedded 37/37", mpiErr, StringComparison.Ordinal);
        Assert.Equal(expected, File.ReadAllText(ranks));

        // Eleven lines and a torn twelfth, as a killed run leaves it: extended, not redone.
        var lines = expected.Split('\n');
        string resumed = Path.Combine(_dir, "resumed.jsonl");
        File.WriteAllText(resumed, string.Join('\n', lines.Take(11)) + "\n" + lines[11][..40]);
        (mpiCode, stdout, mpiErr) = MpiRun.Run(2, ["embed", "--input", input, "--output", resumed, "--batch-size", "4"]);
        Assert.True(mpiCode == 0, mpiErr);
        Assert.Contains("(11 were already there)", stdout, StringComparison.Ordinal);
        Assert.Equal(expected, File.ReadAllText(resumed));
    }

    [Fact]
    public void Corpus_BadArguments_AreOneClearLine()
    {
        var (code, _, stderr) = Invoke(["embed", "--input", Path.Combine(_dir, "missing.jsonl"), "--output", Path.Combine(_dir, "o.jsonl")]);
        Assert.NotEqual(0, code);
        Assert.Contains("missing.jsonl", stderr, StringComparison.Ordinal);
        (code, _, stderr) = Invoke(["embed", "--input", Path.Combine(_dir, "x.jsonl")]);
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("--output", stderr, StringComparison.Ordinal);
        (code, _, stderr) = Invoke(["embed"]);
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    private static (int Code, string Stdout, string Stderr) Invoke(string[] args) => ConsoleCli.Invoke(args);
}
