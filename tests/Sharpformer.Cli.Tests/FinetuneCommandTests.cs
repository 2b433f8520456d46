using System.CommandLine;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.IO.Config;
using Sharpformer.Models;
using Sharpformer.Training;
using Sharpformer.Training.FineTuning;

namespace Sharpformer.Cli.Tests;

/// <summary>
/// A tiny random BERT saved as an MLM checkpoint, a tiny DistilBERT, and toy data for the three tasks (classify by a
/// keyword, tag organ words, answer with the word after "is"), in a temp folder made once for the class.
/// </summary>
public sealed class FinetuneFixture : IDisposable
{
    public static readonly string[] Filler = ["the", "a", "cat", "dog", "runs", "sleeps", "on", "mat", "big", "small", "red", "blue"];

    public static readonly string[] Organs = ["heart", "lung", "liver"];

    public static readonly string[] Answers = ["paris", "rome", "oslo", "lima"];

    public FinetuneFixture()
    {
        Root = Path.Combine(Path.GetTempPath(), "sharpformer-cli-finetune-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Root);
        var vocab = new List<string> { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "is", "what", "?", "." };
        vocab.AddRange(Filler);
        vocab.AddRange(Organs);
        vocab.AddRange(Answers);
        Bert = Save("bert", vocab, $$"""
            {"model_type": "bert", "vocab_size": {{vocab.Count}}, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 64, "max_position_embeddings": 64, "type_vocab_size": 2, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
            """);
        DistilBert = Save("distilbert", vocab, $$"""
            {"model_type": "distilbert", "vocab_size": {{vocab.Count}}, "dim": 32, "n_layers": 1, "n_heads": 2, "hidden_dim": 64, "max_position_embeddings": 64}
            """);
        var random = new Random(1);
        ClassifyTrain = Write("classify-train.jsonl", Classify(random, 96));
        ClassifyEval = Write("classify-eval.jsonl", Classify(random, 24));
        NerTrain = Write("ner-train.jsonl", Ner(random, 96));
        NerEval = Write("ner-eval.jsonl", Ner(random, 24));
        QaTrain = Write("qa-train.json", Squad(random, 96, 0));
        QaEval = Write("qa-eval.json", Squad(random, 8, 1000));
    }

    public string Root { get; }

    public string Bert { get; }

    public string DistilBert { get; }

    public string ClassifyTrain { get; }

    public string ClassifyEval { get; }

    public string NerTrain { get; }

    public string NerEval { get; }

    public string QaTrain { get; }

    public string QaEval { get; }

    public void Dispose()
    {
        if (Directory.Exists(Root)) Directory.Delete(Root, recursive: true);
    }

    public string NewOutput(string name) => Path.Combine(Root, name + "-" + Guid.NewGuid().ToString("N")[..6]);

    public string Write(string name, string content)
    {
        var path = Path.Combine(Root, name);
        File.WriteAllText(path, content, new UTF8Encoding(false));
        return path;
    }

    private string Save(string name, List<string> vocab, string config)
    {
        var folder = Path.Combine(Root, name);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), config);
        if (name == "bert")
        {
            var model = AutoModelForMaskedLM.FromConfig(ModelConfig.Parse(config), seed: 3);
            model.SaveSafetensors(Path.Combine(folder, "model.safetensors"), new Dictionary<string, string> { ["format"] = "pt" });
        }
        else
        {
            // DistilBERT cannot be built as an MLM from a config here; a two-label classifier stands in.
            var model = (IPretrainedModel)AutoModelForSequenceClassification.FromConfig(ModelConfig.Parse(config).WithLabels(["neg", "pos"]), seed: 3);
            model.SavePretrained(folder);
        }

        File.WriteAllLines(Path.Combine(folder, "vocab.txt"), vocab);
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"do_lower_case": true, "model_max_length": 64, "tokenizer_class": "BertTokenizer"}""");
        return folder;
    }

    private static List<string> Words(Random random, int count) => Enumerable.Range(0, count).Select(_ => Filler[random.Next(Filler.Length)]).ToList();

    private static string Classify(Random random, int count)
    {
        var lines = new StringBuilder();
        for (var i = 0; i < count; i++)
        {
            var words = Words(random, 5);
            words.Insert(random.Next(words.Count + 1), i % 2 == 0 ? "good" : "bad");
            lines.AppendLine(JsonSerializer.Serialize(new { text = string.Join(' ', words), label = i % 2 == 0 ? "pos" : "neg" }));
        }

        return lines.ToString();
    }

    private static string Ner(Random random, int count)
    {
        var lines = new StringBuilder();
        for (var i = 0; i < count; i++)
        {
            var words = Words(random, 6);
            words.Insert(random.Next(words.Count + 1), Organs[random.Next(Organs.Length)]);
            lines.AppendLine(JsonSerializer.Serialize(new { tokens = words, tags = words.Select(w => Organs.Contains(w) ? "B-ORGAN" : "O") }));
        }

        return lines.ToString();
    }

    private static string Squad(Random random, int count, int firstId)
    {
        var paragraphs = new List<string>();
        for (var i = 0; i < count; i++)
        {
            var before = string.Join(' ', Words(random, random.Next(1, 5)));
            var answer = Answers[random.Next(Answers.Length)];
            var context = $"{before} is {answer} {string.Join(' ', Words(random, random.Next(1, 5)))} .";
            paragraphs.Add(JsonSerializer.Serialize(new
            {
                context,
                qas = new[] { new { id = $"q{firstId + i}", question = "what is ?", answers = new[] { new { text = answer, answer_start = before.Length + 4 } } } },
            }));
        }

        return $$"""{"data": [{"title": "toy", "paragraphs": [{{string.Join(",\n", paragraphs)}}]}]}""";
    }
}

public sealed class FinetuneCommandTests(FinetuneFixture fx) : IClassFixture<FinetuneFixture>
{
    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = Program.BuildRoot().Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }

    private static string[] Common(string output, int steps) =>
        ["--out", output, "--max-length", "32", "--batch-size", "8", "--steps", steps.ToString(System.Globalization.CultureInfo.InvariantCulture), "--lr", "3e-3",
         "--eval-every", (steps / 2).ToString(System.Globalization.CultureInfo.InvariantCulture), "--seed", "7", "--threads", "1"];

    private static List<JsonObject> Evals(string output) => File.ReadAllLines(Path.Combine(output, "train_log.jsonl"))
        .Select(l => JsonNode.Parse(l)!.AsObject()).Where(n => n.ContainsKey("eval_loss")).ToList();

    [Fact]
    public void FinetuneClassify_Trains_SavesBestModel_AndTheClassifyVerbPredictsAsTheLastEvaluation()
    {
        var output = fx.NewOutput("classify");
        var (exit, stdout, stderr) = Run(["finetune", "classify", "--model", fx.Bert, "--data", fx.ClassifyTrain, "--eval-data", fx.ClassifyEval,
            "--metric-for-best-model", "accuracy", "--test-data", fx.ClassifyEval, .. Common(output, 60)]);
        Assert.True(exit == 0, stderr);
        Assert.Contains("were not initialized from the model checkpoint and are newly initialized: [", stderr, StringComparison.Ordinal);
        Assert.Contains("classifier.weight", stderr, StringComparison.Ordinal);
        Assert.Contains("eval at step 30: loss", stderr, StringComparison.Ordinal);
        Assert.Contains("saved the fine-tuned model to", stdout, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(output, "confusion_matrix.png")));
        Assert.True(File.Exists(Path.Combine(output, "train_log.png")));
        var evals = Evals(output);
        double best = evals.Max(e => e["eval_accuracy"]!.GetValue<double>());
        Assert.True(best >= 0.9, $"eval accuracy should rise well above chance (0.5), got {best}");

        // The classify verb on the saved folder: its labels score the eval set exactly as the best evaluation did.
        var eval = ClassificationData.Read(fx.ClassifyEval);
        var texts = eval.Examples.Select(e => e.Text).ToArray();
        var (verbExit, verbOut, verbErr) = Run(["classify", .. texts, "--model", output, "--json"]);
        Assert.True(verbExit == 0, verbErr);
        using var doc = JsonDocument.Parse(verbOut);
        var labels = doc.RootElement.EnumerateArray().Select(r => r[0].GetProperty("label").GetString()!).ToList();
        Assert.Equal(texts.Length, labels.Count);
        double accuracy = labels.Zip(eval.Examples).Count(p => p.First == p.Second.Labels[0]) / (double)texts.Length;
        Assert.Equal(best, accuracy, 12);
        var test = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "test_results.json")))!;
        Assert.Equal(best, test["test_accuracy"]!.GetValue<double>(), 12);
    }

    [Fact]
    public void FinetuneClassify_Lora_TrainsOnlyAdaptersAndHead_WritesPeftAdapter_AndMergedFolderPredictsTheSame()
    {
        var adapterOut = fx.NewOutput("classify-lora");
        // all-linear (the pooler and the feed-forward too): this one-layer random encoder has nothing pretrained to keep.
        string[] lora = ["--lora-r", "8", "--lora-alpha", "16", "--lora-target-modules", "all-linear", "--metric-for-best-model", "accuracy"];
        var (exit, stdout, stderr) = Run(["finetune", "classify", "--model", fx.Bert, "--data", fx.ClassifyTrain, "--eval-data", fx.ClassifyEval, .. lora, .. Common(adapterOut, 60)]);
        Assert.True(exit == 0, stderr);

        // PEFT's layout: adapter_config.json + adapter_model.safetensors (base_model.model.* names, the head as modules_to_save), no full weights.
        Assert.True(File.Exists(Path.Combine(adapterOut, "adapter_config.json")), stdout);
        Assert.False(File.Exists(Path.Combine(adapterOut, "model.safetensors")));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(adapterOut, "adapter_config.json")))!;
        Assert.Equal("LORA", config["peft_type"]!.GetValue<string>());
        Assert.Equal("SEQ_CLS", config["task_type"]!.GetValue<string>());
        Assert.Equal(8, config["r"]!.GetValue<int>());
        using (var adapter = Sharpformer.IO.SafeTensors.SafeTensorsFile.Open(Path.Combine(adapterOut, "adapter_model.safetensors")))
        {
            var names = adapter.Tensors.Select(t => t.Name).ToList();
            Assert.Contains(names, n => n.StartsWith("base_model.model.bert.encoder.layer.0.attention.self.query.lora_A", StringComparison.Ordinal));
            Assert.Contains(names, n => n.Contains("classifier", StringComparison.Ordinal));
            Assert.DoesNotContain(names, n => n.Contains("word_embeddings", StringComparison.Ordinal));
        }

        double best = Evals(adapterOut).Max(e => e["eval_accuracy"]!.GetValue<double>());
        Assert.True(best >= 0.8, $"LoRA eval accuracy should rise well above chance (0.5), got {best}\n{stderr}\n{string.Join('\n', File.ReadAllLines(Path.Combine(adapterOut, "train_log.jsonl")).Take(5))}");

        // The same run merged into a plain HF folder predicts as the best evaluation did.
        var mergedOut = fx.NewOutput("classify-lora-merged");
        (exit, _, stderr) = Run(["finetune", "classify", "--model", fx.Bert, "--data", fx.ClassifyTrain, "--eval-data", fx.ClassifyEval, .. lora, "--merge-lora", .. Common(mergedOut, 60)]);
        Assert.True(exit == 0, stderr);
        Assert.False(File.Exists(Path.Combine(mergedOut, "adapter_config.json")));
        var eval = ClassificationData.Read(fx.ClassifyEval);
        var texts = eval.Examples.Select(e => e.Text).ToArray();
        var (verbExit, verbOut, verbErr) = Run(["classify", .. texts, "--model", mergedOut, "--json"]);
        Assert.True(verbExit == 0, verbErr);
        using var doc = JsonDocument.Parse(verbOut);
        var labels = doc.RootElement.EnumerateArray().Select(r => r[0].GetProperty("label").GetString()!).ToList();
        double accuracy = labels.Zip(eval.Examples).Count(p => p.First == p.Second.Labels[0]) / (double)texts.Length;
        Assert.Equal(Evals(mergedOut).Max(e => e["eval_accuracy"]!.GetValue<double>()), accuracy, 12);
    }

    [Fact]
    public void FinetuneLoraFlags_WithoutRank_OneUsageError()
    {
        var output = fx.NewOutput("lora-bad");
        var (exit, _, stderr) = Run(["finetune", "classify", "--model", fx.Bert, "--data", fx.ClassifyTrain, "--lora-alpha", "16", .. Common(output, 2)]);

        Assert.Equal(2, exit);
        Assert.Contains("--lora-r", stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(output));
    }

    [Fact]
    public void FinetuneNer_Trains_AndTheNerVerbTagsTheWordsTheTrainerTagged()
    {
        var output = fx.NewOutput("ner");
        var (exit, _, stderr) = Run(["finetune", "ner", "--model", fx.Bert, "--data", fx.NerTrain, "--eval-data", fx.NerEval,
            "--metric-for-best-model", "f1", "--tagging-scheme", "IOB2", .. Common(output, 60)]);
        Assert.True(exit == 0, stderr);
        var evals = Evals(output);
        double best = evals.Max(e => e["eval_f1"]!.GetValue<double>());
        Assert.True(best >= 0.8, $"entity F1 should rise well above chance, got {best}");

        var data = TokenClassificationData.Read(fx.NerEval);
        var run = FineTuneRun.Prepare(new FineTuneRunOptions { Task = FineTuneTask.Ner, ModelFolder = output, Data = fx.NerEval, OutputFolder = fx.NewOutput("unused"), MaxLength = 32 });
        var trainerTags = run.PredictTags(data);
        var texts = data.Examples.Select(e => string.Join(' ', e.Tokens)).ToArray();
        var (verbExit, verbOut, verbErr) = Run(["ner", .. texts, "--model", output, "--json", "--aggregation", "first"]);
        Assert.True(verbExit == 0, verbErr);
        using var doc = JsonDocument.Parse(verbOut);
        var perText = doc.RootElement.EnumerateArray().ToList();
        Assert.Equal(texts.Length, perText.Count);
        for (var i = 0; i < texts.Length; i++)
        {
            var expected = data.Examples[i].Tokens.Where((_, w) => trainerTags[i][w] != "O").ToList();
            var actual = perText[i].EnumerateArray().Select(entity => entity.GetProperty("word").GetString()!).ToList();
            Assert.Equal(expected, actual);
        }
    }

    [Fact]
    public void FinetuneQa_Trains_AndTheQaVerbAnswersAsTheTrainer()
    {
        var output = fx.NewOutput("qa");
        var (exit, _, stderr) = Run(["finetune", "qa", "--model", fx.Bert, "--data", fx.QaTrain, "--eval-data", fx.QaEval,
            "--metric-for-best-model", "exact_match", "--doc-stride", "8", .. Common(output, 80)]);
        Assert.True(exit == 0, stderr);
        Assert.Contains("qa_outputs.weight", stderr, StringComparison.Ordinal);
        double best = Evals(output).Max(e => e["eval_exact_match"]!.GetValue<double>());
        Assert.True(best >= 75, $"exact match should rise well above chance, got {best}");

        var examples = SquadData.Read(fx.QaEval);
        var run = FineTuneRun.Prepare(new FineTuneRunOptions { Task = FineTuneTask.Qa, ModelFolder = output, Data = fx.QaEval, OutputFolder = fx.NewOutput("unused"), MaxLength = 32, DocStride = 8 });
        var answers = run.PredictAnswers(examples);
        for (var i = 0; i < examples.Count; i++)
        {
            var (verbExit, verbOut, verbErr) = Run("qa", "--question", examples[i].Question, "--context", examples[i].Context, "--model", output, "--json");
            Assert.True(verbExit == 0, verbErr);
            var answer = JsonNode.Parse(verbOut)!;
            Assert.Equal(answers[i].Text, (answer is JsonArray a ? a[0]! : answer)["answer"]!.GetValue<string>());
        }
    }

    private static void AssertOneError(int exit, string stderr, params string[] needles)
    {
        Assert.NotEqual(0, exit);
        var lines = stderr.TrimEnd().Split('\n');
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0], StringComparison.Ordinal);
        foreach (var needle in needles) Assert.Contains(needle, lines[0], StringComparison.Ordinal);
    }

    [Fact]
    public void BadInput_OneClearErrorLine_NamingFileAndLine_AndNothingWritten()
    {
        var output = fx.NewOutput("bad");
        var unknown = fx.Write("unknown.jsonl", "{\"text\": \"good cat\", \"label\": \"pos\"}\n{\"text\": \"bad cat\", \"label\": \"maybe\"}\n");
        var (exit, _, stderr) = Run(["finetune", "classify", "--model", fx.Bert, "--data", fx.ClassifyTrain, "--eval-data", unknown, .. Common(output, 4)]);
        AssertOneError(exit, stderr, "unknown.jsonl", ":2", "maybe");

        var empty = fx.Write("empty.jsonl", "");
        (exit, _, stderr) = Run(["finetune", "classify", "--model", fx.Bert, "--data", empty, .. Common(output, 4)[..^6]]);
        AssertOneError(exit, stderr, "empty.jsonl");

        var ragged = fx.Write("ragged.jsonl", "{\"tokens\": [\"the\", \"heart\"], \"tags\": [\"O\", \"B-ORGAN\"]}\n{\"tokens\": [\"a\", \"lung\"], \"tags\": [\"O\"]}\n");
        (exit, _, stderr) = Run(["finetune", "ner", "--model", fx.Bert, "--data", ragged, .. Common(output, 4)[..^6]]);
        AssertOneError(exit, stderr, "ragged.jsonl", ":2");

        var wrongAnswer = fx.Write("wrong-answer.json", """
            {"data": [{"title": "t", "paragraphs": [{"context": "the cat is paris .",
              "qas": [{"id": "q1", "question": "what is ?", "answers": [{"text": "rome", "answer_start": 11}]}]}]}]}
            """);
        (exit, _, stderr) = Run(["finetune", "qa", "--model", fx.Bert, "--data", wrongAnswer, "--doc-stride", "8", .. Common(output, 4)[..^6]]);
        AssertOneError(exit, stderr, "wrong-answer.json", "q1");

        var pairs = fx.Write("pairs.jsonl", "{\"text\": \"good cat\", \"text_pair\": \"a dog\", \"label\": \"pos\"}\n{\"text\": \"bad cat\", \"label\": \"neg\"}\n");
        (exit, _, stderr) = Run(["finetune", "classify", "--model", fx.DistilBert, "--data", pairs, .. Common(output, 4)[..^6]]);
        AssertOneError(exit, stderr, "pairs.jsonl:1", "text_pair");

        Assert.False(Directory.Exists(output));
    }

    [Fact]
    public void OutputFolderRules_AsTrainHas()
    {
        var output = fx.NewOutput("rules");
        Directory.CreateDirectory(output);
        File.WriteAllText(Path.Combine(output, "notes.txt"), "mine");
        var (exit, _, stderr) = Run(["finetune", "classify", "--model", fx.Bert, "--data", fx.ClassifyTrain, .. Common(output, 2)[..^6]]);
        AssertOneError(exit, stderr, "--resume", "--overwrite");
        (exit, _, stderr) = Run(["finetune", "classify", "--model", fx.Bert, "--data", fx.ClassifyTrain, "--overwrite", .. Common(output, 2)[..^6]]);
        AssertOneError(exit, stderr, "notes.txt");
        (exit, _, stderr) = Run(["finetune", "classify", "--model", fx.Bert, "--data", fx.ClassifyTrain, "--resume", .. Common(output, 2)[..^6]]);
        AssertOneError(exit, stderr, "checkpoint-N");
        Assert.Equal(["notes.txt"], Directory.GetFileSystemEntries(output).Select(Path.GetFileName));
    }
}
