using System.CommandLine;
using System.Text.Json;
using Sharpformer.Cli.Commands;
using Sharpformer.Pipelines;
using Sharpformer.Text;

namespace Sharpformer.Cli.Tests;

/// <summary>
/// The offline mechanism end to end, in child processes with no network (HF_HUB_OFFLINE=1, an empty cache): the tour on
/// the shipped models (tiny random stand-ins from <see cref="ShippedModelFolders"/>), the default-model fallback line,
/// an explicit --model never replaced, and sharpformer/&lt;name&gt; resolved without the Hub.
/// </summary>
public class TourCommandTests(ShippedModelFolders models) : IClassFixture<ShippedModelFolders>
{
    [Fact]
    public async Task Tour_AllStepsJson_OfflineOnShippedModels()
    {
        var pictures = Path.Combine(models.Root, "tour-all");
        var (exit, stdout, stderr) = await models.RunOfflineAsync(models.Root, "tour", "--json", "--out", pictures);
        Assert.True(exit == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var steps = doc.RootElement.GetProperty("steps").EnumerateArray().ToList();
        Assert.Equal([1, 2, 3, 4, 5, 6, 7], steps.Select(s => s.GetProperty("step").GetInt32()));
        foreach (var step in steps)
        {
            var sources = step.GetProperty("source").EnumerateArray().Select(e => e.GetString()!).ToList();
            Assert.NotEmpty(sources);
            foreach (var source in sources)
            {
                Assert.True(File.Exists(Path.Combine(RepositoryRoot(), source)), $"step {step.GetProperty("step")}: {source} does not exist");
            }

            foreach (var picture in step.GetProperty("pictures").EnumerateArray())
            {
                Assert.True(new FileInfo(picture.GetString()!).Length > 0, picture.GetString());
            }
        }

        // 1: the shipped vocabulary's ids (as our tokenizer gives them in process) and bert-base-uncased's, as HF gives them.
        var tokens = steps[0].GetProperty("data");
        var expected = AutoTokenizer.FromPretrained(models.Bert).Encode("The heart is a [MASK] organ.").Ids;
        Assert.Equal(expected, tokens.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal([101, 1996, 2540, 2003, 1037, 103, 5812, 1012, 102], tokens.GetProperty("bert_base_uncased_ids").EnumerateArray().Select(e => e.GetInt32()));
        Assert.True(tokens.GetProperty("matches_hugging_face").GetBoolean());

        // 2: sinusoidal table in the JSON equals the formula; pictures written.
        var embeddings = steps[1].GetProperty("data");
        Assert.Equal(16, embeddings.GetProperty("hidden_size").GetInt32());
        var row1 = embeddings.GetProperty("sinusoidal_first_dimensions")[1].EnumerateArray().Select(e => e.GetSingle()).ToArray();
        Assert.Equal(Math.Sin(1.0), row1[0], 5);
        Assert.Equal(Math.Cos(1.0), row1[1], 5);
        Assert.Equal(Math.Sin(1.0 / Math.Pow(10000, 2.0 / 16)), row1[2], 5);
        Assert.Contains(steps[1].GetProperty("pictures").EnumerateArray(), p => p.GetString()!.EndsWith("step2-positions-sinusoidal.svg", StringComparison.Ordinal));

        // 3: one picture and one focus per head of the last layer.
        var attention = steps[2].GetProperty("data");
        Assert.Equal(1, attention.GetProperty("layer").GetInt32());
        Assert.Equal(2, attention.GetProperty("heads").GetArrayLength());
        Assert.Equal("[MASK]", attention.GetProperty("query_token").GetString());
        Assert.Equal(2, steps[2].GetProperty("pictures").GetArrayLength());

        // 4: the fill-mask pipeline's own top 5, run here in process on the same folder.
        var pipeline = await FillMaskPipeline.FromPretrainedAsync(models.Bert);
        var top5 = pipeline.Run("The heart is a [MASK] organ.", topK: 5)[0];
        var candidates = steps[3].GetProperty("data").GetProperty("candidates").EnumerateArray().ToList();
        Assert.Equal(top5.Select(c => c.Token), candidates.Select(c => c.GetProperty("token").GetInt32()));
        Assert.Equal(top5.Select(c => c.Score), candidates.Select(c => c.GetProperty("score").GetSingle()));

        // 5: five next-token probabilities in decreasing order, and a generation that continues the prompt.
        var next = steps[4].GetProperty("data");
        var probabilities = next.GetProperty("candidates").EnumerateArray().Select(c => c.GetProperty("probability").GetSingle()).ToList();
        Assert.Equal(5, probabilities.Count);
        Assert.Equal(probabilities.OrderByDescending(p => p), probabilities);
        Assert.StartsWith("The heart is a", next.GetProperty("generation").GetString(), StringComparison.Ordinal);

        // 6: the real bundled MiniLM: symmetric, ones on the diagonal, the paraphrase closer than the unrelated sentence.
        var matrix = steps[5].GetProperty("data").GetProperty("matrix").EnumerateArray().Select(r => r.EnumerateArray().Select(e => e.GetSingle()).ToArray()).ToArray();
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(1f, matrix[i][i], 3);
            for (var j = 0; j < 3; j++) Assert.Equal(matrix[i][j], matrix[j][i], 5);
        }

        Assert.True(matrix[0][1] > matrix[0][2] + 0.2f, $"heart attack ~ myocardial infarction {matrix[0][1]} vs parking ticket {matrix[0][2]}");

        // 7: the translation the pipeline gives in process with the folder's generation settings, one alignment row per
        // output token pointing at the source token of largest cross-attention weight, and both pictures.
        var translation = steps[6].GetProperty("data");
        var t2t = new Generation.Text2TextGenerationPipeline(Models.AutoModelForSeq2SeqLM.FromPretrained(models.Translator), AutoTokenizer.FromPretrained(models.Translator), Generation.Text2TextTask.Translation);
        var expectedResult = t2t.Run([TourCommand.GermanSentence], Generation.GenerationConfigFile.Load(models.Translator, new Generation.GenerationOptions { MaxNewTokens = 40 }))[0][0];
        Assert.Equal(expectedResult.Text, translation.GetProperty("translation").GetString());
        var map = t2t.CrossAttention(TourCommand.GermanSentence, expectedResult);
        var alignment = translation.GetProperty("alignment").EnumerateArray().ToList();
        Assert.Equal(map.TargetTokens.Count, alignment.Count);
        for (var i = 0; i < alignment.Count; i++)
        {
            var row = map.Weights.AsSpan(i * map.SourceTokens.Count, map.SourceTokens.Count).ToArray();
            Assert.Equal(row.Max(), alignment[i].GetProperty("weight").GetSingle(), 5);
            Assert.Equal(map.SourceTokens[Array.IndexOf(row, row.Max())], alignment[i].GetProperty("source").GetString());
        }

        Assert.Equal(["step7-cross-attention.png", "step7-cross-attention.svg"], steps[6].GetProperty("pictures").EnumerateArray().Select(p => Path.GetFileName(p.GetString()!)));
    }

    [Fact]
    public async Task Tour_Console_EveryStepRenders()
    {
        var (exit, stdout, stderr) = await models.RunOfflineAsync(models.Root, "tour", "--out", Path.Combine(models.Root, "tour-console"));
        Assert.True(exit == 0, stderr);
        for (var step = 1; step <= 7; step++)
        {
            Assert.Contains($"Step {step} ·", stdout, StringComparison.Ordinal);
        }

        Assert.Contains("[0] a heart attack", stdout, StringComparison.Ordinal);
        Assert.Contains("101, 1996, 2540, 2003, 1037, 103, 5812, 1012, 102", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tour_OneStepConsole_PrintsThatStepAndItsCode()
    {
        var (exit, stdout, stderr) = await models.RunOfflineAsync(models.Root, "tour", "--step", "4", "--out", Path.Combine(models.Root, "tour-4"));
        Assert.True(exit == 0, stderr);
        Assert.Contains("Step 4", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("Step 1", stdout, StringComparison.Ordinal);
        Assert.Contains("src/Sharpformer.Pipelines/FillMaskPipeline.cs", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tour_ShippedModelMissing_OneErrorNamingWhereItLooked()
    {
        var empty = Directory.CreateDirectory(Path.Combine(models.Root, "no-models")).FullName;
        var (exit, _, stderr) = await models.RunOfflineAsync(empty, "tour", "--step", "1");
        Assert.Equal(1, exit);
        Assert.Contains(Path.Combine(empty, "sharpformer/bert-mini-en"), stderr, StringComparison.Ordinal);
        Assert.Contains(ShippedModels.RootVariable, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tour_StepOutOfRange_UsageError()
    {
        var (exit, _, stderr) = await models.RunOfflineAsync(models.Root, "tour", "--step", "8");
        Assert.Equal(2, exit);
        Assert.Contains("--step must be 1 to 7", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FillMask_NoModelOffline_ShippedModelWithOneLineNamingTheDefault()
    {
        var (exit, stdout, stderr) = await models.RunOfflineAsync(models.Root, "fill-mask", "The heart is a [MASK] organ.", "--json");
        Assert.True(exit == 0, stderr);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Contains("using the shipped sharpformer/bert-mini-en instead", lines[0], StringComparison.Ordinal);
        Assert.Contains("the default is bert-base-uncased", lines[0], StringComparison.Ordinal);
        using var doc = JsonDocument.Parse(stdout);
        Assert.Equal(5, doc.RootElement.GetArrayLength());
    }

    [Fact]
    public async Task Generate_NoModelOffline_ShippedGptWithOneLineNamingTheDefault()
    {
        var (exit, stdout, stderr) = await models.RunOfflineAsync(models.Root, "generate", "The heart", "--max-new-tokens", "5");
        Assert.True(exit == 0, stderr);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Contains("using the shipped sharpformer/gpt-mini-en instead", lines[0], StringComparison.Ordinal);
        Assert.Contains("the default is gpt2", lines[0], StringComparison.Ordinal);
        Assert.StartsWith("The heart", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Translate_GermanToEnglishOffline_ShippedTranslatorWithOneLineNamingTheDefault()
    {
        var (exit, stdout, stderr) = await models.RunOfflineAsync(models.Root, "translate", "Das Herz ist ein Organ.", "--source-lang", "German", "--target-lang", "English", "--max-length", "12");
        Assert.True(exit == 0, stderr);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("using the shipped sharpformer/transformer-de-en instead", line, StringComparison.Ordinal);
        Assert.Contains("the default is Helsinki-NLP/opus-mt-de-en", line, StringComparison.Ordinal);
        var t2t = new Generation.Text2TextGenerationPipeline(Models.AutoModelForSeq2SeqLM.FromPretrained(models.Translator), AutoTokenizer.FromPretrained(models.Translator), Generation.Text2TextTask.Translation);
        Assert.Equal(t2t.Run("Das Herz ist ein Organ.", new Generation.GenerationOptions { MaxNewTokens = 11 }), stdout.TrimEnd('\n'));
    }

    [Fact]
    public async Task Translate_EnglishToGermanOffline_ErrorNamesTheShippedPair()
    {
        var (exit, _, stderr) = await models.RunOfflineAsync(models.Root, "translate", "The heart is an organ.");
        Assert.Equal(1, exit);
        Assert.Contains("'Helsinki-NLP/opus-mt-en-de' is not in the cache", stderr, StringComparison.Ordinal);
        Assert.Contains("--source-lang German --target-lang English", stderr, StringComparison.Ordinal);

        var unknown = await models.RunOfflineAsync(models.Root, "translate", "x", "--source-lang", "Klingon");
        Assert.Equal(2, unknown.Exit);
        Assert.Contains("no default translation model for Klingon → German", unknown.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FillMask_NoModelHubRefusesConnections_FallsThroughToShipped()
    {
        // Not offline mode: the Hub endpoint refuses the connection, which must fall through to the shipped model.
        var (exit, stdout, stderr) = await models.RunAsync(models.Root, offlineMode: false, "fill-mask", "The heart is a [MASK] organ.", "--json");
        Assert.True(exit == 0, stderr);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("cannot be reached: using the shipped sharpformer/bert-mini-en instead", line, StringComparison.Ordinal);
        Assert.Equal(5, JsonDocument.Parse(stdout).RootElement.GetArrayLength());
    }

    [Fact]
    public async Task FillMask_ExplicitDefaultModelOffline_NotReplaced()
    {
        var (exit, _, stderr) = await models.RunOfflineAsync(models.Root, "fill-mask", "The heart is a [MASK] organ.", "--model", "bert-base-uncased");
        Assert.Equal(1, exit);
        Assert.DoesNotContain("using the shipped", stderr, StringComparison.Ordinal);
        Assert.Contains("offline mode is on", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ShippedName_ResolvesWithoutTheHub()
    {
        var (exit, stdout, stderr) = await models.RunOfflineAsync(models.Root, "fill-mask", "The heart is a [MASK] organ.", "--model", "sharpformer/bert-mini-en", "--json");
        Assert.True(exit == 0, stderr);
        Assert.Equal(string.Empty, stderr);
        Assert.Equal(5, JsonDocument.Parse(stdout).RootElement.GetArrayLength());

        var missing = await models.RunOfflineAsync(models.Root, "fill-mask", "x [MASK]", "--model", "sharpformer/no-such-model");
        Assert.Equal(1, missing.Exit);
        Assert.Contains("'sharpformer/no-such-model' is not installed", missing.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void TrainTokenizer_Verb_WritesLoadableFilesAndNamesBadInput()
    {
        var corpus = Path.Combine(models.Root, "corpus.txt");
        var output = Path.Combine(models.Root, "trained-" + Guid.NewGuid().ToString("N")[..6]);
        var (exit, stdout, stderr) = Run("train-tokenizer", "wordpiece", "--data", corpus, "--vocab-size", "120", "--min-frequency", "1", "--out", output);
        Assert.True(exit == 0, stderr);
        Assert.Contains("trained WordPiece", stdout, StringComparison.Ordinal);
        Assert.Equal(120, AutoTokenizer.FromPretrained(output).VocabularySize);

        var again = Run("train-tokenizer", "wordpiece", "--data", corpus, "--out", output);
        Assert.Equal(2, again.Exit);
        Assert.Contains("--overwrite", again.Err, StringComparison.Ordinal);

        var missing = Path.Combine(models.Root, "missing.txt");
        var notFound = Run("train-tokenizer", "bpe", "--data", missing, "--out", output + "-bpe");
        Assert.Equal(1, notFound.Exit);
        Assert.Contains(missing, notFound.Err, StringComparison.Ordinal);

        var tooSmall = Run("train-tokenizer", "bpe", "--data", corpus, "--vocab-size", "100", "--out", output + "-small");
        Assert.Equal(2, tooSmall.Exit);
        Assert.Contains("--vocab-size", tooSmall.Err, StringComparison.Ordinal);
    }

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = Program.BuildRoot().Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }

    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Sharpformer.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Sharpformer.slnx not found above the test folder.");
    }
}
