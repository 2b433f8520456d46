using Sharpformer.IO.Config;
using Sharpformer.Models.Bert;
using Sharpformer.Tensors;

namespace Sharpformer.Models.Tests;

/// <summary>BERT from scratch as HF's <c>_init_weights</c>: normal(0, initializer_range) weights, zeroed padding rows, zero biases, unit LayerNorms.</summary>
public class BertInitTests
{
    [Fact]
    public void BertForMaskedLM_FromConfig_InitStatisticsAsHf()
    {
        var config = (BertStyleConfig)ModelConfig.Parse("""
            { "model_type": "bert", "vocab_size": 3000, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
              "intermediate_size": 256, "max_position_embeddings": 128, "initializer_range": 0.05, "pad_token_id": 7 }
            """);
        var model = BertForMaskedLM.FromConfig(config, seed: 3);
        Assert.True(model.Training);
        var word = model.Bert.Embeddings.WordEmbeddings;
        Assert.Same(word.Weight, model.DecoderWeight);
        Assert.All(word.Weight.Value.ToArray()[(7 * 64)..(8 * 64)], v => Assert.Equal(0f, v));

        foreach (var (name, parameter) in model.NamedParameters())
        {
            var values = parameter.Value.ToArray();
            if (name.EndsWith("LayerNorm.weight", StringComparison.Ordinal))
            {
                Assert.All(values, v => Assert.Equal(1f, v));
            }
            else if (name.EndsWith("bias", StringComparison.Ordinal))
            {
                // Every dense bias, LayerNorm bias and cls.predictions.bias.
                Assert.All(values, v => Assert.Equal(0f, v));
            }
            else
            {
                double mean = values.Average(v => (double)v);
                double std = Math.Sqrt(values.Average(v => (v - mean) * (v - mean)));
                Assert.True(Math.Abs(std - 0.05) <= 0.005 * 2, $"{name}: std {std:G4}, expected 0.05");
            }
        }

        Assert.Contains(model.NamedParameters(), p => p.Name == "cls.predictions.bias");
        Assert.NotEqual(
            model.Bert.Encoder.Layers[0].Attention.Self.Query.Weight.Value.ToArray(),
            BertForMaskedLM.FromConfig(config, seed: 4).Bert.Encoder.Layers[0].Attention.Self.Query.Weight.Value.ToArray());
    }

    [Fact]
    public void RobertaModel_FromConfig_ZeroesWordAndPositionPaddingRows()
    {
        var config = (BertStyleConfig)ModelConfig.Parse("""
            { "model_type": "roberta", "vocab_size": 100, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
              "intermediate_size": 32, "max_position_embeddings": 20 }
            """);
        var model = BertModel.FromConfig(config, seed: 1);
        Assert.NotNull(model.Pooler);
        int pad = config.PadTokenId!.Value;
        Assert.All(model.Embeddings.WordEmbeddings.Weight.Value.ToArray()[(pad * 16)..((pad + 1) * 16)], v => Assert.Equal(0f, v));
        Assert.All(model.Embeddings.PositionEmbeddings.Weight.Value.ToArray()[(pad * 16)..((pad + 1) * 16)], v => Assert.Equal(0f, v));
        Assert.Contains(model.Embeddings.PositionEmbeddings.Weight.Value.ToArray()[((pad + 1) * 16)..], v => v != 0f);

        // The fresh model runs both paths alike.
        model.Eval();
        var ids = Tensor.FromArray(new[] { 0, 5, 9, 2 }, new Shape(1, 4));
        var modules = model.Forward(ids).LastHiddenState.ToArray();
        using var noGrad = Autograd.NoGrad();
        Assert.True(OnnxParityTests.MaxAbsDiff(modules, model.Forward(ids).LastHiddenState.ToArray()) <= Tolerances.FastVsModules);
    }
}
