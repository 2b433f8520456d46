using System.CommandLine;
using System.Text.Json;
using Sharpformer.IO.Config;
using Sharpformer.Models;
using Sharpformer.Pipelines;

namespace Sharpformer.Cli.Tests;

/// <summary>
/// Small random task models (FromConfig with a seed, then SavePretrained, plus a WordPiece vocab) in temp folders, made
/// once for the class: a BERT sentiment classifier, a DistilBERT classifier (no token types), a BERT NER tagger and a
/// BERT QA model.
/// </summary>
public sealed class TaskModelFolders : IDisposable
{
    public static readonly string[] Vocab =
    [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "my", "name", "is", "wolf", "##gang", "and", "i", "live", "in",
        "berlin", "where", "do", "?", "the", "heart", "a", "large", "organ", ".",
    ];

    private readonly string _root = Path.Combine(Path.GetTempPath(), $"sharpformer-cli-tasks-{Guid.NewGuid():N}");

    public TaskModelFolders()
    {
        Classifier = Write("classifier", Bert(), ["NEGATIVE", "POSITIVE"], c => AutoModelForSequenceClassification.FromConfig(c, seed: 1));
        DistilClassifier = Write("distil-classifier", DistilBert(), ["NEGATIVE", "POSITIVE"], c => AutoModelForSequenceClassification.FromConfig(c, seed: 2));
        Ner = Write("ner", Bert(), ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], c => AutoModelForTokenClassification.FromConfig(c, seed: 3));
        Qa = Write("qa", Bert(), ["LABEL_0", "LABEL_1"], c => AutoModelForQuestionAnswering.FromConfig(c, seed: 4));
        EmptyCache = Directory.CreateDirectory(Path.Combine(_root, "empty-cache")).FullName;
    }

    public string Classifier { get; }

    public string DistilClassifier { get; }

    public string Ner { get; }

    public string Qa { get; }

    public string EmptyCache { get; }

    public string Root => _root;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static string Bert() => $$"""
        {"model_type": "bert", "vocab_size": {{Vocab.Length}}, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
         "intermediate_size": 32, "max_position_embeddings": 64, "type_vocab_size": 2}
        """;

    private static string DistilBert() => $$"""
        {"model_type": "distilbert", "vocab_size": {{Vocab.Length}}, "dim": 16, "n_layers": 1, "n_heads": 2, "hidden_dim": 32,
         "max_position_embeddings": 64}
        """;

    private string Write(string name, string configJson, string[] labels, Func<ModelConfig, object> build)
    {
        var folder = Path.Combine(_root, name);
        var model = (IPretrainedModel)build(ModelConfig.Parse(configJson).WithLabels(labels));
        model.SavePretrained(folder);
        File.WriteAllLines(Path.Combine(folder, "vocab.txt"), Vocab);
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"do_lower_case": true, "model_max_length": 64, "tokenizer_class": "BertTokenizer"}""");
        return folder;
    }
}

public class TaskCommandTests(TaskModelFolders models) : IClassFixture<TaskModelFolders>
{
    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = Program.BuildRoot().Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }

    private static void AssertOneErrorLine(int exit, string output, string error, string verb, string needle)
    {
        Assert.Equal(2, exit);
        Assert.Equal("", output);
        Assert.Single(error.TrimEnd().Split('\n'));
        Assert.StartsWith($"error: {verb}: ", error, StringComparison.Ordinal);
        Assert.Contains(needle, error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Classify_Json_IsHfShapedAndMatchesThePipeline()
    {
        const string Text = "the heart is a large organ.";

        var (exit, output, error) = Run("classify", Text, "--model", models.Classifier, "--json", "--top-k", "all");

        Assert.True(exit == 0, error);
        using var doc = JsonDocument.Parse(output);
        var rows = doc.RootElement.EnumerateArray().ToList();
        var expected = (await TextClassificationPipeline.FromPretrainedAsync(models.Classifier)).Run(Text, topK: null);
        Assert.Equal(2, rows.Count);
        for (var i = 0; i < rows.Count; i++)
        {
            Assert.Equal(["label", "score"], rows[i].EnumerateObject().Select(p => p.Name));
            Assert.Equal(expected[i].Label, rows[i].GetProperty("label").GetString());
            Assert.Equal(expected[i].Score, rows[i].GetProperty("score").GetSingle());
        }

        Assert.Equal(1.0, rows.Sum(r => r.GetProperty("score").GetDouble()), 1e-5);
    }

    [Fact]
    public void Classify_Table_OneLabelByDefault_SeveralTextsEachWithAHeader()
    {
        var (exit, output, error) = Run("classify", "the heart", "a large organ", "--model", models.Classifier);

        Assert.True(exit == 0, error);
        var lines = output.TrimEnd().Split('\n');
        Assert.Equal(["[0] the heart", "[1] a large organ"], lines.Where(l => l.StartsWith('[')));
        Assert.Equal(2, lines.Count(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^(NEGATIVE|POSITIVE)\s+0\.\d{4}$")));
    }

    [Fact]
    public async Task Classify_StdinBatch_OneResultPerLine()
    {
        var output = new StringWriter();
        var error = new StringWriter();

        var exit = await Commands.ClassifyCommand.RunAsync([], null, "1", "softmax", models.Classifier, json: true, truncate: false, batchSize: 2,
            new StringReader("the heart\n\na large organ\nmy name is wolfgang\n"), output, error, CancellationToken.None);

        Assert.True(exit == 0, error.ToString());
        using var doc = JsonDocument.Parse(output.ToString());
        Assert.Equal(3, doc.RootElement.GetArrayLength());
        Assert.All(doc.RootElement.EnumerateArray(), r => Assert.Equal(1, r.GetArrayLength()));
    }

    [Fact]
    public void Classify_TextPair_BertTakesIt_DistilBertRefusesIt()
    {
        var (exit, _, error) = Run("classify", "the heart", "--text-pair", "a large organ", "--model", models.Classifier);
        var (distilExit, distilOut, distilError) = Run("classify", "the heart", "--text-pair", "a large organ", "--model", models.DistilClassifier);

        Assert.True(exit == 0, error);
        AssertOneErrorLine(distilExit, distilOut, distilError, "classify", "token_type_ids");
    }

    [Fact]
    public void Classify_BadInput_OneErrorLine()
    {
        var (exit, output, error) = Run("classify", "", "--model", models.Classifier);
        AssertOneErrorLine(exit, output, error, "classify", "empty");

        (exit, output, error) = Run("classify", "the heart", "--top-k", "0", "--model", models.Classifier);
        AssertOneErrorLine(exit, output, error, "classify", "--top-k");
    }

    [Fact]
    public async Task Ner_Json_HfKeysPerStrategy_MatchesThePipeline()
    {
        const string Text = "My name is Wolfgang and I live in Berlin";

        var (exit, output, error) = Run("ner", Text, "--model", models.Ner, "--json", "--ignore-labels", "NONE");
        var (groupExit, groupOutput, groupError) = Run("ner", Text, "--model", models.Ner, "--json", "--aggregation", "first", "--ignore-labels", "NONE");

        Assert.True(exit == 0, error);
        Assert.True(groupExit == 0, groupError);
        var pipeline = await TokenClassificationPipeline.FromPretrainedAsync(models.Ner);
        using var tokens = JsonDocument.Parse(output);
        var expected = pipeline.Run(Text, ignoreLabels: ["NONE"]);
        Assert.Equal(10, expected.Count);
        Assert.Equal(expected.Count, tokens.RootElement.GetArrayLength());
        var first = tokens.RootElement[0];
        Assert.Equal(["entity", "score", "index", "word", "start", "end"], first.EnumerateObject().Select(p => p.Name));
        Assert.Equal(("my", 1, 0, 2), (first.GetProperty("word").GetString(), first.GetProperty("index").GetInt32(), first.GetProperty("start").GetInt32(), first.GetProperty("end").GetInt32()));
        Assert.Equal(expected[0].Entity, first.GetProperty("entity").GetString());

        using var groups = JsonDocument.Parse(groupOutput);
        var expectedGroups = pipeline.Run(Text, AggregationStrategy.First, ["NONE"]);
        Assert.Equal(expectedGroups.Count, groups.RootElement.GetArrayLength());
        Assert.Equal(["entity_group", "score", "word", "start", "end"], groups.RootElement[0].EnumerateObject().Select(p => p.Name));
        Assert.Equal(expectedGroups.Select(g => g.Word), groups.RootElement.EnumerateArray().Select(g => g.GetProperty("word").GetString()));
    }

    [Fact]
    public void Ner_BadInput_OneErrorLine()
    {
        var (exit, output, error) = Run("ner", "  ", "--model", models.Ner);

        AssertOneErrorLine(exit, output, error, "ner", "empty");
    }

    [Fact]
    public async Task Qa_ContextOrFile_Json_MatchesThePipeline()
    {
        const string Question = "Where do I live?";
        const string Context = "My name is Wolfgang and I live in Berlin";
        var file = Path.Combine(models.Root, "context.txt");
        await File.WriteAllTextAsync(file, Context);

        var (exit, output, error) = Run("qa", "--question", Question, "--context", Context, "--model", models.Qa, "--json");
        var (fileExit, fileOutput, fileError) = Run("qa", "--question", Question, "--context-file", file, "--model", models.Qa, "--json", "--top-k", "3");

        Assert.True(exit == 0, error);
        Assert.True(fileExit == 0, fileError);
        var expected = (await QuestionAnsweringPipeline.FromPretrainedAsync(models.Qa)).Run(Question, Context, new QuestionAnsweringOptions { TopK = 3 });
        using var one = JsonDocument.Parse(output);
        Assert.Equal(["score", "start", "end", "answer"], one.RootElement.EnumerateObject().Select(p => p.Name));
        Assert.Equal(expected[0].Answer, one.RootElement.GetProperty("answer").GetString());
        Assert.Equal(expected[0].Score, one.RootElement.GetProperty("score").GetSingle());
        using var three = JsonDocument.Parse(fileOutput);
        Assert.Equal(expected.Select(a => a.Answer), three.RootElement.EnumerateArray().Select(a => a.GetProperty("answer").GetString()));
        Assert.All(three.RootElement.EnumerateArray(), a => Assert.Equal(a.GetProperty("answer").GetString(), Context[a.GetProperty("start").GetInt32()..a.GetProperty("end").GetInt32()]));
    }

    [Fact]
    public async Task Qa_ContextFromStdin_SameAnswerAsInline()
    {
        const string Context = "My name is Wolfgang and I live in Berlin";
        var options = new QuestionAnsweringOptions { TopK = 2 };
        var piped = new StringWriter();
        var inline = new StringWriter();
        var error = new StringWriter();

        var pipedExit = await Commands.QaCommand.RunAsync("Where do I live?", null, "-", options, models.Qa, json: true,
            new StringReader(Context), piped, error, CancellationToken.None);
        var inlineExit = await Commands.QaCommand.RunAsync("Where do I live?", Context, null, options, models.Qa, json: true,
            null, inline, error, CancellationToken.None);

        Assert.True(pipedExit == 0 && inlineExit == 0, error.ToString());
        Assert.Equal(inline.ToString(), piped.ToString());
    }

    [Fact]
    public async Task Ner_StdinBatch_ListOfListsInLineOrder()
    {
        var output = new StringWriter();
        var error = new StringWriter();

        var exit = await Commands.NerCommand.RunAsync(["-"], "simple", ["NONE"], models.Ner, json: true, truncate: false, batchSize: 8,
            new StringReader("I live in Berlin\nWolfgang\n"), output, error, CancellationToken.None);

        Assert.True(exit == 0, error.ToString());
        using var doc = JsonDocument.Parse(output.ToString());
        Assert.Equal(2, doc.RootElement.GetArrayLength());
        Assert.Equal(16, doc.RootElement[0].EnumerateArray().Last().GetProperty("end").GetInt32());
        Assert.Equal(8, doc.RootElement[1].EnumerateArray().Last().GetProperty("end").GetInt32());
    }

    [Fact]
    public void Qa_BadInput_OneErrorLine()
    {
        var missing = Path.Combine(models.Root, "no-such-context.txt");

        var (exit, output, error) = Run("qa", "--question", "Where?", "--context-file", missing, "--model", models.Qa);
        AssertOneErrorLine(exit, output, error, "qa", "no such file");

        (exit, output, error) = Run("qa", "--question", "Where?", "--context", "in Berlin", "--top-k", "0", "--model", models.Qa);
        AssertOneErrorLine(exit, output, error, "qa", "--top-k");

        (exit, output, error) = Run("qa", "--question", "Where?", "--model", models.Qa);
        AssertOneErrorLine(exit, output, error, "qa", "--context");

        (exit, output, error) = Run("qa", "--question", "", "--context", "in Berlin", "--model", models.Qa);
        AssertOneErrorLine(exit, output, error, "qa", "question is empty");
    }
}
