using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.IO.Config;
using Sharpformer.Models;

namespace Sharpformer.Training.Tests.FineTuning;

/// <summary>
/// A tiny random BERT (an MLM checkpoint, so each task gets a new head) and learnable toy data for the three tasks:
/// classify by a keyword, tag a fixed word list, answer with the word after "is".
/// </summary>
public sealed class FineTuneToyData : IDisposable
{
    public static readonly string[] Filler = ["the", "a", "cat", "dog", "runs", "sleeps", "on", "mat", "big", "small", "red", "blue", "tree", "house", "sees", "near"];

    public static readonly string[] Organs = ["heart", "lung", "liver", "kidney"];

    public static readonly string[] Answers = ["paris", "rome", "oslo", "lima", "bern", "riga"];

    public FineTuneToyData()
    {
        Root = Path.Combine(Path.GetTempPath(), "sharpformer-finetune-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Root);
        var vocab = new List<string> { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "is", "what", "?", "." };
        vocab.AddRange(Filler);
        vocab.AddRange(Organs);
        vocab.AddRange(Answers);
        Model = Path.Combine(Root, "tiny-bert");
        Directory.CreateDirectory(Model);
        string config = $$"""
            {"model_type": "bert", "architectures": ["BertForMaskedLM"], "vocab_size": {{vocab.Count}}, "hidden_size": 32, "num_hidden_layers": 2,
             "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64, "type_vocab_size": 2,
             "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
            """;
        File.WriteAllText(Path.Combine(Model, "config.json"), config);
        var mlm = AutoModelForMaskedLM.FromConfig(ModelConfig.Parse(config), seed: 5);
        mlm.SaveSafetensors(Path.Combine(Model, "model.safetensors"), new Dictionary<string, string> { ["format"] = "pt" });
        File.WriteAllLines(Path.Combine(Model, "vocab.txt"), vocab);
        File.WriteAllText(Path.Combine(Model, "tokenizer_config.json"), """{"do_lower_case": true, "model_max_length": 64, "tokenizer_class": "BertTokenizer"}""");

        ClassifyTrain = Write("classify-train.jsonl", ClassifyLines(new Random(1), 96));
        ClassifyEval = Write("classify-eval.jsonl", ClassifyLines(new Random(2), 32));
        NerTrain = Write("ner-train.jsonl", NerLines(new Random(3), 96));
        NerEval = Write("ner-eval.jsonl", NerLines(new Random(4), 32));
        QaTrain = Write("qa-train.json", Squad(new Random(5), 96));
        QaEval = Write("qa-eval.json", Squad(new Random(6), 32));
    }

    public string Root { get; }

    public string Model { get; }

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

    /// <summary>A fresh output folder under the fixture's root.</summary>
    public string NewOutput(string name) => Path.Combine(Root, name + "-" + Guid.NewGuid().ToString("N")[..6]);

    /// <summary>Reads a run's JSONL log: the step losses and the evaluation records.</summary>
    public static (List<double> Losses, List<JsonObject> Evals) ReadLog(string output)
    {
        var losses = new List<double>();
        var evals = new List<JsonObject>();
        foreach (var line in File.ReadAllLines(Path.Combine(output, "train_log.jsonl")))
        {
            var node = JsonNode.Parse(line)!.AsObject();
            if (node.ContainsKey("eval_loss")) evals.Add(node);
            else losses.Add(node["loss"]!.GetValue<double>());
        }

        return (losses, evals);
    }

    private string Write(string name, IEnumerable<string> lines)
    {
        var path = Path.Combine(Root, name);
        File.WriteAllText(path, string.Join('\n', lines) + "\n", new UTF8Encoding(false));
        return path;
    }

    private static List<string> Words(Random random, int count) => Enumerable.Range(0, count).Select(_ => Filler[random.Next(Filler.Length)]).ToList();

    /// <summary>Label "pos" when the text holds "good", "neg" when it holds "bad" (one of the two, at a random place).</summary>
    private static IEnumerable<string> ClassifyLines(Random random, int count)
    {
        for (var i = 0; i < count; i++)
        {
            var words = Words(random, 5);
            bool positive = i % 2 == 0;
            words.Insert(random.Next(words.Count + 1), positive ? "good" : "bad");
            yield return JsonSerializer.Serialize(new { text = string.Join(' ', words), label = positive ? "pos" : "neg" });
        }
    }

    /// <summary>Organ words are B-ORGAN, every other word O.</summary>
    private static IEnumerable<string> NerLines(Random random, int count)
    {
        for (var i = 0; i < count; i++)
        {
            var words = Words(random, 6);
            words.Insert(random.Next(words.Count + 1), Organs[random.Next(Organs.Length)]);
            if (i % 2 == 0) words.Insert(random.Next(words.Count + 1), Organs[random.Next(Organs.Length)]);
            var tags = words.Select(w => Organs.Contains(w) ? "B-ORGAN" : "O").ToList();
            yield return JsonSerializer.Serialize(new { tokens = words, tags });
        }
    }

    /// <summary>Contexts "… is X …" and the question "what is ?": the answer is the word after "is".</summary>
    private static List<string> Squad(Random random, int count)
    {
        var qas = new List<string>();
        var paragraphs = new List<string>();
        for (var i = 0; i < count; i++)
        {
            var before = string.Join(' ', Words(random, random.Next(1, 5)));
            var after = string.Join(' ', Words(random, random.Next(1, 5)));
            var answer = Answers[random.Next(Answers.Length)];
            var context = $"{before} is {answer} {after} .";
            int start = before.Length + 4;
            paragraphs.Add(JsonSerializer.Serialize(new
            {
                context,
                qas = new[] { new { id = $"q{i}", question = "what is ?", answers = new[] { new { text = answer, answer_start = start } } } },
            }));
        }

        qas.Add($$"""{"version": "toy", "data": [{"title": "toy", "paragraphs": [{{string.Join(",\n", paragraphs)}}]}]}""");
        return qas;
    }
}

public sealed class FineTuneRunTests(FineTuneToyData toy) : IClassFixture<FineTuneToyData>
{
    private FineTuneRunOptions Options(FineTuneTask task, string train, string eval, string output, long steps) => new()
    {
        Task = task,
        ModelFolder = toy.Model,
        Data = train,
        EvalData = eval,
        OutputFolder = output,
        MaxLength = 32,
        BatchSize = 8,
        Steps = steps,
        Trainer = new TrainerOptions
        {
            MaxSteps = 1,
            LearningRate = 3e-3,
            EvalEvery = steps / 2,
            SaveEvery = steps / 2,
            Seed = 7,
            MetricForBestModel = task == FineTuneTask.Classify ? "accuracy" : "f1",
        },
    };

    private static (List<double> Losses, List<JsonObject> Evals) Train(FineTuneRunOptions options, out FineTuneRun run)
    {
        run = FineTuneRun.Prepare(options);
        run.Trainer.Run();
        return FineTuneToyData.ReadLog(options.OutputFolder);
    }

    private static void AssertLearned(List<double> losses, List<JsonObject> evals, string metric, double threshold)
    {
        double first = losses.Take(5).Average();
        double last = losses.TakeLast(5).Average();
        Assert.True(last < 0.5 * first, $"the training loss should fall: first steps {first:F4}, last steps {last:F4}");
        double final = evals.Max(e => e["eval_" + metric]!.GetValue<double>());
        Assert.True(final >= threshold, $"eval_{metric} should rise well above chance; best was {final:F4}");
    }

    [Fact]
    public void Classify_OnKeywordTask_LossFalls_AccuracyRises_AndSavesAnHfFolderWithLabels()
    {
        var output = toy.NewOutput("classify");
        var (losses, evals) = Train(Options(FineTuneTask.Classify, toy.ClassifyTrain, toy.ClassifyEval, output, 60), out var run);
        Assert.NotNull(run.LoadReport);
        Assert.Contains("classifier.weight", run.LoadReport, StringComparison.Ordinal);
        AssertLearned(losses, evals, "accuracy", 0.9);
        Assert.True(evals.All(e => e.ContainsKey("eval_macro_f1")));
        Assert.True(File.Exists(Path.Combine(output, FineTuneRun.ConfusionMatrixFile)));

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "config.json")))!;
        Assert.Equal("BertForSequenceClassification", config["architectures"]![0]!.GetValue<string>());
        Assert.Equal("neg", config["id2label"]!["0"]!.GetValue<string>());
        Assert.Equal(1, config["label2id"]!["pos"]!.GetValue<int>());
        Assert.True(File.Exists(Path.Combine(output, "vocab.txt")));

        // The final folder is the best evaluation's model: reloaded, it scores the eval set as the best eval did.
        double best = evals.Max(e => e["eval_accuracy"]!.GetValue<double>());
        var reloaded = FineTuneRun.Prepare(Options(FineTuneTask.Classify, toy.ClassifyTrain, toy.ClassifyEval, toy.NewOutput("reload"), 2) with { ModelFolder = output });
        Assert.Null(reloaded.LoadReport);
        Assert.Equal(best, reloaded.Evaluate(toy.ClassifyEval)["accuracy"], 12);
    }

    [Fact]
    public void Ner_OnWordListTask_LossFalls_EntityF1Rises()
    {
        var output = toy.NewOutput("ner");
        var (losses, evals) = Train(Options(FineTuneTask.Ner, toy.NerTrain, toy.NerEval, output, 60), out var run);
        Assert.Contains("classifier.weight", run.LoadReport, StringComparison.Ordinal);
        AssertLearned(losses, evals, "f1", 0.8);
        Assert.True(evals.All(e => e.ContainsKey("eval_precision") && e.ContainsKey("eval_recall")));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "config.json")))!;
        Assert.Equal("BertForTokenClassification", config["architectures"]![0]!.GetValue<string>());
        Assert.Equal("B-ORGAN", config["id2label"]!["0"]!.GetValue<string>());
    }

    [Fact]
    public void Qa_OnWordAfterIsTask_LossFalls_ExactMatchRises()
    {
        var output = toy.NewOutput("qa");
        var options = Options(FineTuneTask.Qa, toy.QaTrain, toy.QaEval, output, 80) with { DocStride = 8 };
        var (losses, evals) = Train(options, out var run);
        Assert.Contains("qa_outputs.weight", run.LoadReport, StringComparison.Ordinal);
        AssertLearned(losses, evals, "exact_match", 80);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "config.json")))!;
        Assert.Equal("BertForQuestionAnswering", config["architectures"]![0]!.GetValue<string>());
    }

    [Fact]
    public void Resume_AfterACheckpoint_ContinuesExactly_AsAnUninterruptedRun()
    {
        var whole = toy.NewOutput("whole");
        var (wholeLosses, wholeEvals) = Train(Options(FineTuneTask.Classify, toy.ClassifyTrain, toy.ClassifyEval, whole, 20) with { Trainer = Options(FineTuneTask.Classify, "", "", "", 20).Trainer with { Seed = 11 } }, out _);

        var split = toy.NewOutput("split");
        var options = Options(FineTuneTask.Classify, toy.ClassifyTrain, toy.ClassifyEval, split, 20) with { Trainer = Options(FineTuneTask.Classify, "", "", "", 20).Trainer with { Seed = 11 } };
        var first = FineTuneRun.Prepare(options);
        using var cancel = new CancellationTokenSource();
        first.Trainer.Progress = p =>
        {
            if (p.Record.Step == 10) cancel.Cancel();
        };
        Assert.ThrowsAny<OperationCanceledException>(() => first.Trainer.Run(cancel.Token));
        Assert.True(Directory.Exists(Path.Combine(split, "checkpoint-10")));

        var second = FineTuneRun.Prepare(options with { Resume = true });
        Assert.Equal(10, second.Trainer.Step);
        second.Trainer.Run();
        var (splitLosses, splitEvals) = FineTuneToyData.ReadLog(split);
        Assert.Equal(wholeLosses, splitLosses);
        Assert.Equal(wholeEvals.Select(e => e.ToJsonString()).Select(StripTime), splitEvals.Select(e => e.ToJsonString()).Select(StripTime));
        Assert.Equal(File.ReadAllBytes(Path.Combine(whole, "model.safetensors")), File.ReadAllBytes(Path.Combine(split, "model.safetensors")));
    }

    private static string StripTime(string json)
    {
        var node = JsonNode.Parse(json)!.AsObject();
        foreach (var key in node.Select(p => p.Key).Where(k => k.Contains("time", StringComparison.Ordinal) || k.Contains("elapsed", StringComparison.Ordinal) || k.EndsWith("per_second", StringComparison.Ordinal)).ToList())
        {
            node.Remove(key);
        }

        return node.ToJsonString();
    }

    [Fact]
    public void EarlyStopping_StopsAfterPatienceEvaluationsWithoutImprovement()
    {
        var output = toy.NewOutput("early");
        // A learning rate of zero changes nothing after the head's initialisation: no evaluation improves on the first.
        var options = Options(FineTuneTask.Classify, toy.ClassifyTrain, toy.ClassifyEval, output, 40) with
        {
            Trainer = Options(FineTuneTask.Classify, "", "", "", 40).Trainer with { LearningRate = 1e-12, EvalEvery = 4, EarlyStoppingPatience = 2 },
        };
        var run = FineTuneRun.Prepare(options);
        run.Trainer.Run();
        Assert.True(run.Trainer.StoppedEarly);
        Assert.Equal(12, run.Trainer.Step);
        Assert.Equal(4, run.Trainer.BestStep);
        var best = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "best-model", "best.json")))!;
        Assert.Equal(4, best["step"]!.GetValue<long>());
    }

    [Fact]
    public void Prepare_RejectsMistakes_BeforeWritingAnything()
    {
        var output = toy.NewOutput("bad");
        var options = Options(FineTuneTask.Classify, toy.ClassifyTrain, toy.ClassifyEval, output, 4);
        var e = Assert.Throws<ArgumentException>(() => FineTuneRun.Prepare(options with { Trainer = options.Trainer with { MetricForBestModel = "f1" } }));
        Assert.Contains("accuracy, macro_f1", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => FineTuneRun.Prepare(options with { EvalData = null, Trainer = options.Trainer with { EvalEvery = 0 } }));
        Assert.Contains("--eval-data", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => FineTuneRun.Prepare(options with { MaxLength = 100 }));
        Assert.Contains("64 positions", e.Message, StringComparison.Ordinal);
        var unknown = Path.Combine(toy.Root, "unknown-label.jsonl");
        File.WriteAllText(unknown, "{\"text\": \"good\", \"label\": \"pos\"}\n{\"text\": \"bad\", \"label\": \"meh\"}\n");
        var data = Assert.Throws<InvalidDataException>(() => FineTuneRun.Prepare(options with { EvalData = unknown }));
        Assert.Contains("unknown-label.jsonl:2", data.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(output));
    }
}
