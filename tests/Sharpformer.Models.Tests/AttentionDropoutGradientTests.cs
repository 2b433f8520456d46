using Sharpformer.IO.Config;
using Sharpformer.Models.Bert;
using Sharpformer.Models.DistilBert;
using Sharpformer.NN;
using Sharpformer.Tensors;

namespace Sharpformer.Models.Tests;

/// <summary>
/// Training mode with attention dropout (the composed scores → softmax → dropout → ·V form): the query, key and value
/// projections must still receive gradients. They did not while that path copied q, k, v off the tape.
/// </summary>
public class AttentionDropoutGradientTests
{
    private const string BertJson = """
        { "model_type": "bert", "vocab_size": 30, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
          "intermediate_size": 16, "max_position_embeddings": 16, "type_vocab_size": 2,
          "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.5 }
        """;

    private const string DistilJson = """
        { "model_type": "distilbert", "vocab_size": 30, "dim": 8, "n_layers": 1, "n_heads": 2, "hidden_dim": 16,
          "max_position_embeddings": 16, "dropout": 0.1, "attention_dropout": 0.5 }
        """;

    [Theory]
    [InlineData("bert")]
    [InlineData("distilbert")]
    public void TrainingModeWithAttentionDropout_GivesQueryKeyValueGradients(string kind)
    {
        Module model = kind == "bert"
            ? BertForSequenceClassification.FromConfig((BertConfig)ModelConfig.Parse(BertJson), seed: 3)
            : DistilBertForSequenceClassification.FromConfig((DistilBertConfig)ModelConfig.Parse(DistilJson), seed: 3);
        model.Train();
        var ids = Tensor.FromArray(new[] { 1, 5, 9, 2, 4, 7 }, new Shape(1, 6));
        var labels = Tensor.FromArray(new[] { 1 }, new Shape(1));
        ((ISequenceClassifier)model).ClassificationLoss(ids, null, null, labels).Backward();

        string[] projections = kind == "bert"
            ? ["attention.self.query.weight", "attention.self.key.weight", "attention.self.value.weight"]
            : ["attention.q_lin.weight", "attention.k_lin.weight", "attention.v_lin.weight"];
        foreach (var suffix in projections)
        {
            var (name, parameter) = model.NamedParameters().Single(p => p.Name.EndsWith(suffix, StringComparison.Ordinal));
            Assert.True(parameter.Value.Grad is not null, $"{name} got no gradient in training mode");
            Assert.Contains(parameter.Value.Grad!.ToArray(), g => g != 0f);
        }
    }
}
