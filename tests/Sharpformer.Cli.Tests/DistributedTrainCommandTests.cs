using System.Diagnostics;
using System.Text.Json.Nodes;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Models.Gpt2;
using Sharpformer.Training.Checkpoints;
using Sharpformer.Training.Tests.Reference;

namespace Sharpformer.Cli.Tests;

/// <summary>
/// <c>mpirun -np 2 sharpformer train clm</c> over loopback: with the same global batch (ranks × per-rank batch ×
/// accumulation) and no dropout, two ranks reproduce one process's losses, gradient norms and final weights within
/// 1e-5 relative over 10 steps; a rank killed with SIGKILL stops the other with a clear line and leaves the last
/// checkpoint intact, and the two-rank resume ends exactly where an uninterrupted two-rank run ends; a failure on one
/// rank ends every rank (MPI_Abort) instead of leaving them waiting.
/// </summary>
[Collection("Console")]
public sealed class DistributedTrainCommandTests : IDisposable
{
    /// <summary>Data-parallel vs one process: the same sums in another order (the bound).</summary>
    private const double Relative = 1e-5;

    private static readonly Lazy<ReferenceFixture> Gpt2 = new(() => ReferenceFixture.Load("train_gpt2"));

    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sf-mpi-train-" + Guid.NewGuid().ToString("N"));

    public DistributedTrainCommandTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private string[] Args(string output, int batch, int steps, string saveEvery = "5") =>
    [
        "train", "clm", "--model", Gpt2.Value.Folder, "--data", Gpt2.Value.CorpusPath, "--out", output, "--block-size", "16",
        "--batch-size", batch.ToString(System.Globalization.CultureInfo.InvariantCulture), "--grad-accum", "2",
        "--steps", steps.ToString(System.Globalization.CultureInfo.InvariantCulture), "--lr", "2e-3", "--warmup-steps", "2", "--weight-decay", "0.01",
        "--max-grad-norm", "1.0", "--dropout", "0", "--seed", "5", "--save-every", saveEvery, "--keep-checkpoints", "2",
        "--cache-dir", Path.Combine(_dir, "cache"), "--threads", "1",
    ];

    [Fact]
    public void TwoRanks_EqualOneProcess_WithTheSameGlobalBatch()
    {
        string single = Path.Combine(_dir, "single");
        var (code, _, stderr) = Invoke(Args(single, batch: 4, steps: 10));
        Assert.True(code == 0, stderr);

        // 2 ranks × 2 sequences × 2 accumulation = 1 process × 4 × 2; small buckets so several overlap the backward pass.
        string ranks = Path.Combine(_dir, "ranks");
        var (mpiCode, stdout, mpiErr) = MpiRun.Run(2, [.. Args(ranks, batch: 2, steps: 10), "--bucket-mb", "0.01"]);
        Assert.True(mpiCode == 0, mpiErr);
        Assert.Contains("saved the trained model", stdout, StringComparison.Ordinal);
        Assert.Contains("data-parallel over 2 MPI ranks", mpiErr, StringComparison.Ordinal);

        var expected = Steps(single);
        var actual = Steps(ranks);
        Assert.Equal(10, expected.Count);
        Assert.Equal(expected.Count, actual.Count);
        long parameters = Gpt2LMHeadModel.FromPretrained(single).Parameters().Where(p => p.RequiresGrad).Sum(p => p.Shape.ElementCount);
        for (int i = 0; i < expected.Count; i++)
        {
            AssertRelative($"step {i + 1} loss", expected[i]["loss"]!.GetValue<double>(), actual[i]["loss"]!.GetValue<double>());
            AssertRelative($"step {i + 1} grad norm", expected[i]["grad_norm"]!.GetValue<double>(), actual[i]["grad_norm"]!.GetValue<double>());
            Assert.Equal(expected[i]["tokens"]!.GetValue<long>(), actual[i]["tokens"]!.GetValue<long>());
            Assert.Null(expected[i]["ranks"]);
            Assert.Equal(2, actual[i]["ranks"]!.GetValue<int>());
            Assert.Equal(4 * parameters, actual[i]["allreduce_bytes"]!.GetValue<long>());
            Assert.True(actual[i]["allreduce_buckets"]!.GetValue<int>() > 1, "0.01 MiB buckets must split the model");
        }

        using var a = SafeTensorsFile.Open(Path.Combine(single, "model.safetensors"));
        using var b = SafeTensorsFile.Open(Path.Combine(ranks, "model.safetensors"));
        foreach (var name in Gpt2.Value.ParameterNames)
        {
            var x = a.GetTensorAsF32(name).ToArray();
            var y = b.GetTensorAsF32(name).ToArray();

            // Elements whose exact gradient is 0 (the key bias: softmax ignores a shift shared by all keys) are moved by
            // rounding noise through Adam's normalisation, up to lr per step in either run, whatever the order of the sums.
            var noisy = new bool[x.Length];
            foreach (var slice in Gpt2.Value.ZeroGradient.Where(z => z.Name == name))
            {
                for (int i = slice.Start; i < slice.Start + slice.Count; i++)
                {
                    noisy[i] = true;
                    Assert.True(Math.Abs(x[i] - y[i]) <= 2 * 10 * 2e-3, $"{name}[{i}] (zero gradient): {x[i]} vs {y[i]} differ by more than 2 × steps × lr");
                }
            }

            double scale = x.Max(v => Math.Abs(v));
            double worst = x.Zip(y, (p, q) => Math.Abs(p - q)).Where((_, i) => !noisy[i]).DefaultIfEmpty(0).Max();
            Assert.True(worst <= Relative * scale, $"{name}: max |single − 2 ranks| = {worst:E2}, more than {Relative:E0} × max |w| = {scale:E2}");
        }
    }

    [Fact]
    public void RankKilled_OtherRankStopsWithAClearLine_CheckpointIntact_ResumeEqualsUninterrupted()
    {
        string reference = Path.Combine(_dir, "reference");
        var (code, _, stderr) = MpiRun.Run(2, Args(reference, batch: 2, steps: 40, saveEvery: "1"));
        Assert.True(code == 0, stderr);

        string killed = Path.Combine(_dir, "killed");
        using (var run = MpiRun.Start(2, Args(killed, batch: 2, steps: 40, saveEvery: "1")))
        {
            var watch = Stopwatch.StartNew();
            while (!run.Process.HasExited && new CheckpointStore(killed, 2).Latest() is not { Step: >= 3 } && watch.Elapsed < TimeSpan.FromSeconds(120))
            {
                Thread.Sleep(10);
            }

            Assert.False(run.Process.HasExited, "the run ended before a rank could be killed: " + run.Stderr);
            int rank1 = run.RankPid(1) ?? throw new InvalidOperationException("rank 1's process was not found among mpirun's children");
            using (var victim = Process.GetProcessById(rank1))
            {
                victim.Kill();
            }

            var (killedCode, _, killedErr) = run.Wait(TimeSpan.FromSeconds(60));
            Assert.NotEqual(0, killedCode);
            Assert.Contains("rank 0 of 2): stopped because another rank of the job failed or was killed", killedErr, StringComparison.Ordinal);
            Assert.Contains("--resume", killedErr, StringComparison.Ordinal);
        }

        var latest = new CheckpointStore(killed, 2).Latest();
        Assert.NotNull(latest);
        Assert.True(latest.Value.Step < 40, "the kill came after the last step");
        Assert.Equal(latest.Value.Step, CheckpointStore.Verify(latest.Value.Folder));
        Assert.Empty(Gpt2LMHeadModel.FromPretrained(latest.Value.Folder).LoadReport!.Missing);

        (code, _, stderr) = MpiRun.Run(2, [.. Args(killed, batch: 2, steps: 40, saveEvery: "1"), "--resume"]);
        Assert.True(code == 0, stderr);
        Assert.Equal(File.ReadAllBytes(Path.Combine(reference, "model.safetensors")), File.ReadAllBytes(Path.Combine(killed, "model.safetensors")));
        var losses = (string dir) => Steps(dir).Select(s => s["loss"]!.GetValue<double>()).ToList();
        Assert.Equal(losses(reference), losses(killed)[^losses(reference).Count..]);
    }

    [Fact]
    public void OneRankFails_EveryRankStops_WithTheCause()
    {
        // Rank 0 tokenizes the corpus while rank 1 waits for it; a broken JSONL file fails rank 0 alone.
        string broken = Path.Combine(_dir, "broken.jsonl");
        File.WriteAllText(broken, "{\"text\": \"fine\"}\n{not json\n");
        string output = Path.Combine(_dir, "out");
        var (code, _, stderr) = MpiRun.Run(2, ["train", "clm", "--model", Gpt2.Value.Folder, "--data", broken, "--out", output, "--block-size", "16", "--cache-dir", Path.Combine(_dir, "cache")], TimeSpan.FromSeconds(90));
        Assert.NotEqual(0, code);
        Assert.Contains("rank 0 of 2) failed with exit code", stderr, StringComparison.Ordinal);
        Assert.Contains("MPI_Abort", stderr, StringComparison.Ordinal);
        Assert.Contains("broken.jsonl", stderr, StringComparison.Ordinal);
        Assert.Contains("rank 1 of 2): stopped because another rank", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Distributed_WithoutMpirun_IsOneClearLine()
    {
        var (code, _, stderr) = Invoke([.. Args(Path.Combine(_dir, "x"), batch: 2, steps: 1), "--distributed"]);
        Assert.NotEqual(0, code);
        Assert.Contains("mpirun -np N", stderr, StringComparison.Ordinal);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.False(Directory.Exists(Path.Combine(_dir, "x")));
    }

    private static List<JsonNode> Steps(string dir) =>
        [.. File.ReadAllLines(Path.Combine(dir, "train_log.jsonl")).Select(l => JsonNode.Parse(l)!).Where(n => n["loss"] is not null)];

    private static void AssertRelative(string what, double expected, double actual) =>
        Assert.True(Math.Abs(expected - actual) <= Relative * Math.Abs(expected), $"{what}: one process {expected}, two ranks {actual}");

    private static (int Code, string Stdout, string Stderr) Invoke(string[] args) => ConsoleCli.Invoke(args);
}
