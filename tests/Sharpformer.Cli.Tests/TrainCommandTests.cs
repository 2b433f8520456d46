using System.Diagnostics;
using System.Text.Json.Nodes;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Models.Gpt2;
using Sharpformer.Training.Checkpoints;
using Sharpformer.Training.Tests.Reference;

namespace Sharpformer.Cli.Tests;

/// <summary>
/// <c>sharpformer train</c> end to end: the tiny GPT-2 run of tests/fixtures/train_gpt2 reproduces PyTorch step for step,
/// a process killed with SIGKILL at any moment leaves a loadable checkpoint and resumes to the same weights, the trained
/// folder works with the other verbs, and bad input is one clear line with nothing on disk touched.
/// </summary>
[Collection("Console")]
public sealed class TrainCommandTests : IDisposable
{
    private static readonly Lazy<ReferenceFixture> Gpt2 = new(() => ReferenceFixture.Load("train_gpt2"));
    private static readonly Lazy<ReferenceFixture> Bert = new(() => ReferenceFixture.Load("train_bert"));

    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sf-train-cli-" + Guid.NewGuid().ToString("N"));

    public TrainCommandTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private string Cache => Path.Combine(_dir, "token-cache");

    private string[] FixtureArgs(string output) =>
        [.. Gpt2.Value.CliArgs(Gpt2.Value.Folder, Gpt2.Value.CorpusPath), "--out", output, "--cache-dir", Cache];

    [Fact]
    public void TrainClm_FixtureArguments_ReproducePyTorchStepForStep()
    {
        var fixture = Gpt2.Value;
        string output = Path.Combine(_dir, "run");
        var (code, stdout, stderr) = Invoke(FixtureArgs(output));
        Assert.True(code == 0, stderr);
        Assert.Contains("saved the trained model", stdout, StringComparison.Ordinal);

        var steps = File.ReadAllLines(Path.Combine(output, "train_log.jsonl")).Select(l => JsonNode.Parse(l)!).Where(n => n["loss"] is not null).ToList();
        Assert.Equal(fixture.Steps.Count, steps.Count);
        for (int i = 0; i < steps.Count; i++)
        {
            var expected = fixture.Steps[i];
            ReferenceCompare.AssertClose($"step {expected.Step} loss", steps[i]["loss"]!.GetValue<double>(), expected.Loss);
            ReferenceCompare.AssertClose($"step {expected.Step} grad norm", steps[i]["grad_norm"]!.GetValue<double>(), expected.GradNorm);
            Assert.Equal(expected.Lr, steps[i]["lr"]!.GetValue<double>(), 7);
        }

        // The saved folder is an HF GPT-2 checkpoint (Conv1D weights [in, out]) holding PyTorch's final weights.
        using (var saved = SafeTensorsFile.Open(Path.Combine(output, "model.safetensors")))
        {
            foreach (var name in fixture.ParameterNames)
            {
                fixture.AssertFinalWeight(name, saved.GetTensorAsF32(name).ToArray());
            }
        }

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "config.json")))!;
        Assert.Equal("GPT2LMHeadModel", config["architectures"]![0]!.GetValue<string>());
        Assert.True(File.Exists(Path.Combine(output, "train_log.png")));

        // The trained folder works at once with generate.
        (code, stdout, stderr) = Invoke(["generate", "The", "--model", output, "--max-new-tokens", "5"]);
        Assert.True(code == 0, stderr);
        Assert.StartsWith("The", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void TrainMlm_FromScratchConfig_TrainsAndFillMaskLoadsTheFolder()
    {
        var bert = Bert.Value;
        string corpus = Path.Combine(_dir, "corpus.txt");
        File.WriteAllLines(corpus, bert.Batches.SelectMany(b => b.Texts).Select(t => t.Replace("[MASK]", "the", StringComparison.Ordinal)));
        string output = Path.Combine(_dir, "mlm");
        var (code, _, stderr) = Invoke(["train", "mlm", "--config", Path.Combine(bert.Folder, "config.json"), "--tokenizer", bert.Folder, "--data", corpus,
            "--out", output, "--block-size", "16", "--batch-size", "2", "--steps", "6", "--lr", "1e-3", "--save-every", "3", "--eval-fraction", "0.2",
            "--cache-dir", Cache]);
        Assert.True(code == 0, stderr);
        var log = File.ReadAllLines(Path.Combine(output, "train_log.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(6, log.Count(n => n["loss"] is not null));
        Assert.Contains(log, n => n["perplexity"] is not null);
        Assert.Equal([3L, 6L], new CheckpointStore(output, 2).List().Select(c => c.Step));

        (code, var stdout, stderr) = Invoke(["fill-mask", "the [MASK] is", "--model", output]);
        Assert.True(code == 0, stderr);
        Assert.False(string.IsNullOrWhiteSpace(stdout));
    }

    [Fact]
    public void TrainClm_KilledWithSigkillDuringSaves_LatestCheckpointLoads_AndResumeEqualsAnUninterruptedRun()
    {
        string reference = Path.Combine(_dir, "reference");
        string[] args(string output) =>
        [
            "train", "clm", "--model", Gpt2.Value.Folder, "--data", Gpt2.Value.CorpusPath, "--out", output, "--block-size", "16", "--batch-size", "2",
            "--steps", "300", "--lr", "1e-3", "--warmup-steps", "5", "--weight-decay", "0.01", "--dropout", "0.1", "--save-every", "1",
            "--keep-checkpoints", "2", "--seed", "3", "--cache-dir", Cache, "--threads", "1",
        ];
        var (code, _, stderr) = Invoke(args(reference));
        Assert.True(code == 0, stderr);

        string killed = Path.Combine(_dir, "killed");
        var random = new Random(20261206);
        int kills = 0;
        for (int attempt = 0; attempt < 6 && kills < 3; attempt++)
        {
            bool resume = new CheckpointStore(killed, 2).Latest() is not null;
            using var process = StartCli([.. args(killed), .. resume ? new[] { "--resume" } : []]);

            // Wait until it is saving checkpoints, then kill it at a random moment (mid-save with high probability:
            // a checkpoint is written every step).
            var watch = Stopwatch.StartNew();
            while (!process.HasExited && new CheckpointStore(killed, 2).Latest() is not { Step: > 0 } && watch.Elapsed < TimeSpan.FromSeconds(60))
            {
                Thread.Sleep(5);
            }

            Thread.Sleep(random.Next(20, 400));
            if (process.HasExited) break; // finished before the kill: the final check still holds
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            kills++;

            // Whatever moment the kill hit, the newest complete checkpoint verifies and loads.
            var latest = new CheckpointStore(killed, 2).Latest();
            Assert.NotNull(latest);
            Assert.Equal(latest.Value.Step, CheckpointStore.Verify(latest.Value.Folder));
            var model = Gpt2LMHeadModel.FromPretrained(latest.Value.Folder);
            Assert.Empty(model.LoadReport!.Missing);
        }

        Assert.True(kills >= 2, $"the run was killed mid-way only {kills} time(s); the test needs at least 2");
        (code, _, stderr) = Invoke([.. args(killed), "--resume"]);
        Assert.True(code == 0, stderr);
        Assert.Equal(File.ReadAllBytes(Path.Combine(reference, "model.safetensors")), File.ReadAllBytes(Path.Combine(killed, "model.safetensors")));
        var losses = (string dir) => File.ReadAllLines(Path.Combine(dir, "train_log.jsonl")).Select(l => JsonNode.Parse(l)!["loss"]?.GetValue<double>()).ToList();
        Assert.Equal(losses(reference), losses(killed));
    }

    [Fact]
    public void Train_BadInput_OneClearLine_NothingTouched()
    {
        var fixture = Gpt2.Value;
        string occupied = Path.Combine(_dir, "occupied");
        Directory.CreateDirectory(occupied);
        File.WriteAllText(Path.Combine(occupied, "notes.txt"), "mine");

        var (code, _, stderr) = Invoke(FixtureArgs(occupied));
        Assert.NotEqual(0, code);
        Assert.Contains("--resume", stderr, StringComparison.Ordinal);
        (code, _, stderr) = Invoke([.. FixtureArgs(occupied), "--overwrite"]);
        Assert.NotEqual(0, code);
        Assert.Contains("notes.txt", stderr, StringComparison.Ordinal);
        Assert.Equal("mine", File.ReadAllText(Path.Combine(occupied, "notes.txt")));
        Assert.Single(Directory.GetFileSystemEntries(occupied));

        (code, _, stderr) = Invoke(["train", "clm", "--model", fixture.Folder, "--data", fixture.CorpusPath, "--out", Path.Combine(_dir, "a"), "--block-size", "4096", "--cache-dir", Cache]);
        Assert.NotEqual(0, code);
        Assert.Contains("--block-size 4096 exceeds", stderr, StringComparison.Ordinal);

        string tiny = Path.Combine(_dir, "tiny.txt");
        File.WriteAllText(tiny, "hi");
        (code, _, stderr) = Invoke(["train", "clm", "--model", fixture.Folder, "--data", tiny, "--out", Path.Combine(_dir, "b"), "--block-size", "16", "--cache-dir", Cache]);
        Assert.NotEqual(0, code);
        Assert.Contains("tokens", stderr, StringComparison.Ordinal);

        string badConfig = Path.Combine(_dir, "bad-config.json");
        File.WriteAllText(badConfig, """{"model_type": "gpt2", "n_embd": 30, "n_head": 4}""");
        (code, _, stderr) = Invoke(["train", "clm", "--config", badConfig, "--tokenizer", fixture.Folder, "--data", fixture.CorpusPath, "--out", Path.Combine(_dir, "c"), "--cache-dir", Cache]);
        Assert.NotEqual(0, code);
        Assert.Contains("n_embd", stderr, StringComparison.Ordinal);

        (code, _, stderr) = Invoke(["train", "clm", "--model", fixture.Folder, "--data", fixture.CorpusPath, "--out", Path.Combine(_dir, "d"), "--resume", "--cache-dir", Cache]);
        Assert.NotEqual(0, code);
        Assert.Contains("no complete checkpoint", stderr, StringComparison.Ordinal);

        foreach (var err in new[] { stderr })
        {
            Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        }

        Assert.False(Directory.Exists(Path.Combine(_dir, "a")));
    }

    private static Process StartCli(string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "sharpformer.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(dll);
        foreach (var a in args) start.ArgumentList.Add(a);
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static (int Code, string Stdout, string Stderr) Invoke(string[] args) => ConsoleCli.Invoke(args);
}
