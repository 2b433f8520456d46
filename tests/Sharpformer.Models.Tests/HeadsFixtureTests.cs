using System.Text.Json;
using Sharpformer.IO.Config;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Models.Bert;
using Sharpformer.Models.DistilBert;
using Sharpformer.Models.Gpt2;
using Sharpformer.NN;
using Sharpformer.Tensors;

namespace Sharpformer.Models.Tests;

/// <summary>
/// The fine-tuning heads against tests/fixtures/heads (made by make_fixture.py with PyTorch, HF's head math written by
/// hand): logits on the fused path, and loss and step-0 gradients on the module path, for every head and problem type.
/// </summary>
public class HeadsFixtureTests
{
    private static readonly string Root = Path.Combine(AppContext.BaseDirectory, "fixtures", "heads");

    public static TheoryData<string, string> SequenceCases => new()
    {
        { "bert_seq", "single_label_classification" },
        { "bert_seq", "multi_label_classification" },
        { "bert_seq", "regression" },
        { "bert_seq_regression", "regression" },
        { "distilbert_seq", "single_label_classification" },
        { "distilbert_seq", "multi_label_classification" },
        { "distilbert_seq", "regression" },
        { "distilbert_seq_regression", "regression" },
        { "gpt2_seq", "single_label_classification" },
        { "gpt2_seq", "multi_label_classification" },
        { "gpt2_seq", "regression" },
        { "gpt2_seq_regression", "regression" },
    };

    private static string Folder(string name) => Path.Combine(Root, name);

    private static JsonElement Expected(string name) => JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder(name), "expected.json"))).RootElement;

    private static Tensor Ints(JsonElement rows)
    {
        var values = rows.EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetInt32()).ToArray()).ToArray();
        return Tensor.FromArray(values.SelectMany(r => r).ToArray(), new Shape(values.Length, values[0].Length));
    }

    private static float[] Floats(JsonElement values) => values.EnumerateArray().Select(v => v.GetSingle()).ToArray();

    private static float MaxAbsDiff(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        float max = 0;
        for (int i = 0; i < expected.Length; i++) max = Math.Max(max, Math.Abs(expected[i] - actual[i]));
        return max;
    }

    private static void AssertGradients(Module model, JsonElement grads)
    {
        var parameters = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        foreach (var grad in grads.EnumerateObject())
        {
            var actual = parameters[grad.Name].Value.Grad;
            Assert.True(actual is not null, $"{grad.Name} has no gradient");
            float diff = MaxAbsDiff(Floats(grad.Value), actual.ToArray());
            Assert.True(diff <= Tolerances.VsReference, $"gradient of {grad.Name}: max |diff| {diff}");
        }
    }

    /// <summary>A sequence classifier of <paramref name="name"/> with problem_type set (HF decides it from the labels otherwise).</summary>
    private static Module SequenceModel(string name, string problemType)
    {
        var config = ModelConfig.Load(Folder(name)).WithProblemType(problemType);
        using var source = SafeTensorsLoader.Open(Folder(name));
        var vb = VarBuilder.FromSafeTensors(source);
        Module model = config switch
        {
            BertConfig bert => new BertForSequenceClassification(bert, vb),
            DistilBertConfig distil => new DistilBertForSequenceClassification(distil, vb),
            Gpt2Config gpt2 => new Gpt2ForSequenceClassification(gpt2, vb.Push("transformer"), vb),
            _ => throw new InvalidOperationException(config.ModelType),
        };
        model.Eval();
        return model;
    }

    [Theory]
    [InlineData("bert_seq")]
    [InlineData("bert_seq_regression")]
    [InlineData("distilbert_seq")]
    [InlineData("distilbert_seq_regression")]
    [InlineData("gpt2_seq")]
    [InlineData("gpt2_seq_regression")]
    public void SequenceLogits_FastPath_MatchPyTorch(string name)
    {
        var expected = Expected(name);
        var model = AutoModelForSequenceClassification.FromPretrained(Folder(name));
        Assert.Empty(((dynamic)model).LoadReport.Missing);
        Assert.Empty(((dynamic)model).LoadReport.Unused);
        var logits = model.ClassificationLogits(Ints(expected.GetProperty("input_ids")), Ints(expected.GetProperty("attention_mask")), Ints(expected.GetProperty("token_type_ids")));
        Assert.Equal([2, model.Labels.Count], logits.Shape.Dims.ToArray());
        Assert.True(MaxAbsDiff(Floats(expected.GetProperty("logits")), logits.ToArray()) <= Tolerances.VsReference);
    }

    [Theory]
    [MemberData(nameof(SequenceCases))]
    public void SequenceLossAndGradients_ModulePath_MatchPyTorch(string name, string problemType)
    {
        var expected = Expected(name);
        var @case = expected.GetProperty("cases").GetProperty(problemType);
        int numLabels = ModelConfig.Load(Folder(name)).NumLabels;

        // problem_type is left to HF's decision from the labels except for regression over several outputs, which the
        // labels alone cannot tell from multi-label.
        var model = problemType == "regression" && numLabels > 1
            ? SequenceModel(name, problemType)
            : (Module)AutoModelForSequenceClassification.FromPretrained(Folder(name));
        var classifier = (ISequenceClassifier)model;
        var labelsJson = @case.GetProperty("labels");
        Tensor labels = problemType == "single_label_classification"
            ? Tensor.FromArray(labelsJson.EnumerateArray().Select(v => v.GetInt32()).ToArray(), new Shape(2))
            : Tensor.FromArray(Floats(labelsJson), numLabels == 1 ? new Shape(2) : new Shape(2, numLabels));

        var loss = classifier.ClassificationLoss(Ints(expected.GetProperty("input_ids")), Ints(expected.GetProperty("attention_mask")), Ints(expected.GetProperty("token_type_ids")), labels);
        Assert.Equal(@case.GetProperty("loss").GetSingle(), loss.ToArray()[0], Tolerances.VsReference);
        Assert.Equal(problemType, ((IPretrainedModel)model).ConfigJson()["problem_type"]!.GetValue<string>());
        Assert.Equal(problemType switch
        {
            "regression" => ClassificationProblem.Regression,
            "multi_label_classification" => ClassificationProblem.MultiLabel,
            _ => ClassificationProblem.SingleLabel,
        }, classifier.Problem);
        loss.Backward();
        AssertGradients(model, @case.GetProperty("grads"));
    }

    [Theory]
    [InlineData("bert_token")]
    [InlineData("distilbert_token")]
    public void TokenClassification_LogitsLossAndGradients_MatchPyTorch(string name)
    {
        var expected = Expected(name);
        var ids = Ints(expected.GetProperty("input_ids"));
        var mask = Ints(expected.GetProperty("attention_mask"));
        var types = Ints(expected.GetProperty("token_type_ids"));
        var model = AutoModelForTokenClassification.FromPretrained(Folder(name));
        Assert.Equal(["O", "B-DIS", "I-DIS", "B-DRUG", "I-DRUG"], model.Labels);
        var logits = model.TokenLogits(ids, mask, types);
        Assert.Equal([2, 7, 5], logits.Shape.Dims.ToArray());
        Assert.True(MaxAbsDiff(Floats(expected.GetProperty("logits")), logits.ToArray()) <= Tolerances.VsReference);

        var @case = expected.GetProperty("cases").GetProperty("token");
        var loss = model.TokenClassificationLoss(ids, mask, types, Ints(@case.GetProperty("labels")));
        Assert.Equal(@case.GetProperty("loss").GetSingle(), loss.ToArray()[0], Tolerances.VsReference);
        loss.Backward();
        AssertGradients((Module)model, @case.GetProperty("grads"));
    }

    [Theory]
    [InlineData("bert_qa")]
    [InlineData("distilbert_qa")]
    public void QuestionAnswering_LogitsLossAndGradients_MatchPyTorch(string name)
    {
        var expected = Expected(name);
        var ids = Ints(expected.GetProperty("input_ids"));
        var mask = Ints(expected.GetProperty("attention_mask"));
        var types = Ints(expected.GetProperty("token_type_ids"));
        var model = AutoModelForQuestionAnswering.FromPretrained(Folder(name));
        var (start, end) = model.SpanLogits(ids, mask, types);
        Assert.Equal([2, 7], start.Shape.Dims.ToArray());
        Assert.True(MaxAbsDiff(Floats(expected.GetProperty("start_logits")), start.ToArray()) <= Tolerances.VsReference);
        Assert.True(MaxAbsDiff(Floats(expected.GetProperty("end_logits")), end.ToArray()) <= Tolerances.VsReference);

        var @case = expected.GetProperty("cases").GetProperty("qa");
        var positions = @case.GetProperty("labels");
        var starts = Tensor.FromArray(positions.GetProperty("start_positions").EnumerateArray().Select(v => v.GetInt32()).ToArray(), new Shape(2));
        var ends = Tensor.FromArray(positions.GetProperty("end_positions").EnumerateArray().Select(v => v.GetInt32()).ToArray(), new Shape(2));
        var loss = model.QuestionAnsweringLoss(ids, mask, types, starts, ends);
        Assert.Equal(@case.GetProperty("loss").GetSingle(), loss.ToArray()[0], Tolerances.VsReference);
        loss.Backward();
        AssertGradients((Module)model, @case.GetProperty("grads"));
    }
}
