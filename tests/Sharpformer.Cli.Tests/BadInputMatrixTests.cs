using System.Diagnostics;
using Sharpformer.IO.Gguf;
using Sharpformer.Pipelines.Tests;

namespace Sharpformer.Cli.Tests;

/// <summary>
/// Every model-loading verb against every class of bad model input: a missing folder, a corrupt, truncated or
/// foreign-format checkpoint, an invalid or unknown config, a model of the wrong kind, and (in a child process) offline
/// with an empty cache. Each must exit non-zero (and not as an internal error), print one "error:" line naming the
/// cause, no stack trace, and write nothing.
/// </summary>
[Collection("Console")]
public sealed class BadInputMatrixTests : IClassFixture<BadInputMatrixTests.Models>
{
    private readonly Models _models;

    public BadInputMatrixTests(Models models) => _models = models;

    /// <summary>The verbs that load a model, with {m} for the model and {out} for a folder they would write.</summary>
    public static readonly TheoryData<string> Verbs = ["fill-mask", "embed", "similarity", "classify", "ner", "qa", "generate", "chat", "explain", "train", "search"];

    public static readonly TheoryData<string> Cases = ["missing", "corrupt-weights", "truncated-weights", "gguf-as-safetensors", "invalid-config", "unknown-model-type"];

    public static TheoryData<string, string> Matrix()
    {
        var data = new TheoryData<string, string>();
        foreach (var verb in Verbs) foreach (var c in Cases) data.Add(verb, c);
        return data;
    }

    private static string[] Args(string verb, string model, string output, string corpus) => verb switch
    {
        "fill-mask" => ["fill-mask", "The heart is a [MASK] organ.", "--model", model],
        "embed" => ["embed", "hello", "--model", model],
        "similarity" => ["similarity", "a heart", "a lung", "--model", model],
        "classify" => ["classify", "hello", "--model", model],
        "ner" => ["ner", "hello", "--model", model],
        "qa" => ["qa", "--question", "what is it?", "--context", "it is a heart.", "--model", model],
        "generate" => ["generate", "hello", "--model", model, "--max-new-tokens", "2"],
        "chat" => ["chat", "hello", "--model", model, "--prompt-format", "transcript"],
        "explain" => ["explain", "hello", "--model", model, "--out", output, "--no-images"],
        "train" => ["train", "mlm", "--model", model, "--data", corpus, "--out", output, "--steps", "1"],
        "search" => ["search", "heart", "--docs", Path.GetDirectoryName(corpus)!, "--model", model, "--cache-dir", output],
        _ => throw new ArgumentException(verb),
    };

    /// <summary>What the error must name for each case (any one of them).</summary>
    private static string[] Cause(string c) => c switch
    {
        "missing" => ["no such folder"],
        "corrupt-weights" or "truncated-weights" or "gguf-as-safetensors" => ["model.safetensors"],
        "invalid-config" => ["config.json"],
        "unknown-model-type" => ["mamba-xl"],
        _ => throw new ArgumentException(c),
    };

    [Theory]
    [MemberData(nameof(Matrix))]
    public void Verb_BadModel_OneErrorLineNamingTheCauseNoTraceNothingWritten(string verb, string badCase)
    {
        // Causal-LM verbs get a broken GPT-2 folder, the others a broken BERT one, so the break is the first thing wrong.
        bool causal = verb is "generate" or "chat";
        string model = _models.Bad(badCase, causal ? _models.Gpt2 : _models.Bert);
        string output = Path.Combine(_models.Root, "out-" + Guid.NewGuid().ToString("N"));

        var (exit, _, error) = Run(Args(verb, model, output, _models.Corpus));

        AssertCleanFailure(verb, badCase, exit, error, Cause(badCase));
        Assert.False(Directory.Exists(output), $"{verb} / {badCase} wrote {output}");
    }

    [Theory]
    [InlineData("fill-mask", "gpt2")]
    [InlineData("embed", "gpt2")]
    [InlineData("classify", "gpt2-lm")]
    [InlineData("ner", "gpt2")]
    [InlineData("qa", "gpt2")]
    [InlineData("generate", "bert")]
    [InlineData("chat", "bert")]
    public void Verb_WrongModelKind_NamesTheModelType(string verb, string kind)
    {
        string model = kind.StartsWith("gpt2", StringComparison.Ordinal) ? _models.Gpt2 : _models.Bert;
        string output = Path.Combine(_models.Root, "out-" + Guid.NewGuid().ToString("N"));

        var (exit, _, error) = Run(Args(verb, model, output, _models.Corpus));

        // classify accepts GPT-2 (GPT2ForSequenceClassification) and loads a fresh head with a warning: that is not an error.
        if (kind == "gpt2-lm")
        {
            Assert.True(exit == 0, error);
            Assert.Contains("warning:", error, StringComparison.Ordinal);
            return;
        }

        AssertCleanFailure(verb, kind, exit, error, [kind == "bert" ? "bert" : "gpt2"]);
    }

    [Theory]
    [InlineData("fill-mask")]
    [InlineData("classify")]
    [InlineData("generate")]
    [InlineData("explain")]
    public async Task Verb_OfflineWithEmptyCache_SaysNotCachedAndOffline(string verb)
    {
        string output = Path.Combine(_models.Root, "out-" + Guid.NewGuid().ToString("N"));
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("exec");
        start.ArgumentList.Add(typeof(Program).Assembly.Location);
        foreach (var arg in Args(verb, "org/not-cached", output, _models.Corpus)) start.ArgumentList.Add(arg);
        start.Environment["HF_HOME"] = Path.Combine(_models.Root, "hf-home");
        start.Environment["HF_HUB_CACHE"] = Path.Combine(_models.Root, "hf-empty-cache");
        start.Environment["HF_HUB_OFFLINE"] = "1";
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        _ = process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();

        AssertCleanFailure(verb, "offline", process.ExitCode, await stderr, ["offline"]);
        Assert.Contains("org/not-cached", await stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(output));
    }

    private static void AssertCleanFailure(string verb, string badCase, int exit, string error, string[] causes)
    {
        string what = $"{verb} / {badCase}: exit {exit}, stderr:\n{error}";
        Assert.True(exit != 0, what);
        Assert.True(exit != ExitCodes.Internal, what);
        var errorLines = error.Split('\n').Where(l => l.StartsWith("error: ", StringComparison.Ordinal)).ToList();
        Assert.True(errorLines.Count == 1, what);
        Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", errorLines[0], StringComparison.Ordinal);
        Assert.True(causes.Any(c => errorLines[0].Contains(c, StringComparison.OrdinalIgnoreCase)), $"the error does not name {string.Join(" or ", causes)}. {what}");
    }

    private static (int Exit, string Out, string Err) Run(string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var (prevOut, prevErr, prevIn) = (Console.Out, Console.Error, Console.In);
        Console.SetOut(stdout);
        Console.SetError(stderr);
        Console.SetIn(new StringReader(""));
        try
        {
            return (Program.Main(args), stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetOut(prevOut);
            Console.SetError(prevErr);
            Console.SetIn(prevIn);
        }
    }

    /// <summary>One good BERT and GPT-2 folder, and one folder per bad case, made once for the class.</summary>
    public sealed class Models : IDisposable
    {
        public Models()
        {
            Directory.CreateDirectory(Root);
            Bert = RandomBertMlm.Write(Path.Combine(Root, "bert"));
            Gpt2 = GenerateCommandTests.ModelFolder.Value;
            Corpus = Path.Combine(Root, "docs", "corpus.txt");
            Directory.CreateDirectory(Path.GetDirectoryName(Corpus)!);
            File.WriteAllText(Corpus, string.Join('\n', Enumerable.Repeat("the heart is a muscular organ.", 40)));
        }

        public string Root { get; } = Path.Combine(Path.GetTempPath(), $"sharpformer-bad-input-{Guid.NewGuid():N}");

        public string Bert { get; }

        public string Gpt2 { get; }

        public string Corpus { get; }

        /// <summary>A copy of a good folder broken in the named way (or a path that does not exist).</summary>
        public string Bad(string badCase, string basis)
        {
            string folder = Path.Combine(Root, Path.GetFileName(basis) + "-" + badCase);
            if (badCase == "missing") return folder;
            if (Directory.Exists(folder)) return folder;
            Directory.CreateDirectory(folder);
            foreach (var file in Directory.GetFiles(basis)) File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
            string weights = Path.Combine(folder, "model.safetensors");
            string config = Path.Combine(folder, "config.json");
            switch (badCase)
            {
                case "corrupt-weights":
                    File.WriteAllBytes(weights, [.. BitConverter.GetBytes(40UL), .. "{\"w\": {\"dtype\": \"F32\", \"shape\": [99999]"u8.ToArray()]);
                    break;
                case "truncated-weights":
                    var bytes = File.ReadAllBytes(weights);
                    File.WriteAllBytes(weights, bytes[..(bytes.Length / 2)]);
                    break;
                case "gguf-as-safetensors":
                    var writer = new GgufWriter();
                    writer.AddTensor("w", GgufTensorType.F32, [4], new byte[16]);
                    File.Delete(weights);
                    writer.WriteTo(weights);
                    break;
                case "invalid-config":
                    File.WriteAllText(config, "{ \"model_type\": \"bert\", \"hidden_size\": ");
                    break;
                case "unknown-model-type":
                    File.WriteAllText(config, "{ \"model_type\": \"mamba-xl\", \"hidden_size\": 8 }");
                    break;
                default:
                    throw new ArgumentException(badCase);
            }

            return folder;
        }

        public void Dispose()
        {
            if (Directory.Exists(Root)) Directory.Delete(Root, recursive: true);
        }
    }
}
