using System.Text.Json;

namespace Sharpformer.Cli.Tests;

/// <summary>
/// The CI-sized smoke run of <c>train seq2seq</c> end to end (a few steps on a few German–English pairs with the
/// byte-level tokenizer of tests/fixtures/gpt2_tiny, held-out loss and BLEU, checkpoints, resume), then
/// <c>translate</c> with the trained folder and <c>bleu</c> on files.
/// </summary>
public class TrainSeq2SeqCommandTests
{
    private static (int Exit, string Out, string Err) Invoke(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var parse = Program.BuildRoot().Parse(args);
        parse.InvocationConfiguration.Output = output;
        parse.InvocationConfiguration.Error = error;
        int exit = parse.Invoke();
        return (exit, output.ToString(), error.ToString());
    }

    [Fact]
    public void TrainSeq2Seq_SmokeRun_SavesATranslatorThatTranslateLoads()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"sf-train-s2s-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        string data = Path.Combine(dir, "train.tsv");
        File.WriteAllLines(data, ["Haus\thouse", "das Haus\tthe house", "Hund\tdog", "der Hund\tthe dog", "Katze\tcat", "die Katze\tthe cat"]);
        string tokenizer = Path.Combine(RepoRoot(), "tests", "fixtures", "gpt2_tiny");
        string output = Path.Combine(dir, "out");
        string[] common =
        [
            "train", "seq2seq", "--tokenizer", tokenizer, "--data", data, "--eval-data", data, "--out", output, "--d-model", "16", "--layers", "1",
            "--heads", "2", "--ffn", "32", "--max-positions", "32", "--warmup-steps", "2", "--max-tokens", "64", "--eval-every", "3", "--save-every", "3", "--threads", "1",
        ];
        var (exit, stdout, stderr) = Invoke([.. common, "--steps", "3"]);
        Assert.True(exit == 0, stderr);
        Assert.Contains("BLEU", stderr, StringComparison.Ordinal);
        Assert.Contains("saved the trained model", stdout, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(output, "model.safetensors")));
        Assert.True(File.Exists(Path.Combine(output, "vocab.json")));
        var log = File.ReadAllLines(Path.Combine(output, "train_log.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Contains(log, r => r.TryGetProperty("eval_bleu", out _));

        var (resumed, _, resumeErr) = Invoke([.. common, "--steps", "5", "--resume"]);
        Assert.True(resumed == 0, resumeErr);
        Assert.Contains("resuming from", resumeErr, StringComparison.Ordinal);

        var (translated, text, translateErr) = Invoke("translate", "das Haus", "--model", output, "--max-length", "6", "--json");
        Assert.True(translated == 0, translateErr);
        Assert.Equal(JsonValueKind.String, JsonDocument.Parse(text).RootElement[0].GetProperty("translation_text").ValueKind);
    }

    [Fact]
    public void Bleu_OnFiles_IsSacreBleusScore()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"sf-bleu-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        string hyp = Path.Combine(dir, "hyp.txt"), ref1 = Path.Combine(dir, "ref1.txt"), ref2 = Path.Combine(dir, "ref2.txt");
        File.WriteAllLines(hyp, ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]);
        File.WriteAllLines(ref1, ["The dog bit the man.", "It was not unexpected.", "The man bit him first."]);
        File.WriteAllLines(ref2, ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."]);
        var (exit, output, error) = Invoke("bleu", hyp, ref1, ref2);
        Assert.True(exit == 0, error);
        Assert.StartsWith("BLEU = 48.53 ", output, StringComparison.Ordinal);

        File.WriteAllLines(ref2, ["only one line"]);
        var (bad, _, badError) = Invoke("bleu", hyp, ref2);
        Assert.Equal(2, bad);
        Assert.Contains("one reference line per hypothesis", badError, StringComparison.Ordinal);
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Sharpformer.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException("Sharpformer.slnx not found above the test folder.");
    }
}
