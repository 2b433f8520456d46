using System.Text.Json;
using Sharpformer.IO.Config;
using Sharpformer.Models.Bert;
using Sharpformer.NN;
using Sharpformer.Tensors;

namespace Sharpformer.Models.Tests;

/// <summary>
/// BertForMaskedLM against tests/fixtures/bert_mlm (made by make_fixture.py with PyTorch): a tiny random model as a
/// Hugging Face folder, with the logits, last hidden state and loss PyTorch computed for a padded pair batch.
/// </summary>
public class BertMlmFixtureTests
{
    private static readonly string Folder = Path.Combine(AppContext.BaseDirectory, "fixtures", "bert_mlm");

    private static readonly Lazy<JsonElement> Expected = new(() => JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "expected.json"))).RootElement);

    private static Tensor Ints(string key)
    {
        var rows = Expected.Value.GetProperty(key).EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetInt32()).ToArray()).ToArray();
        return Tensor.FromArray(rows.SelectMany(r => r).ToArray(), new Shape(rows.Length, rows[0].Length));
    }

    private static float[] Floats(string key) => Expected.Value.GetProperty(key).EnumerateArray().Select(v => v.GetSingle()).ToArray();

    [Fact]
    public void Forward_FastPath_MatchesPyTorchLogitsAndHiddenState()
    {
        var model = Assert.IsType<BertForMaskedLM>(AutoModelForMaskedLM.FromPretrained(Folder));
        Assert.Empty(model.LoadReport!.Unused);
        Assert.Empty(model.LoadReport.Missing);
        using var noGrad = Autograd.NoGrad();
        Assert.True(model.Bert.UsesFastPath);
        var output = model.Forward(Ints("input_ids"), Ints("attention_mask"), Ints("token_type_ids"), outputHiddenStates: true);
        Assert.Equal(Expected.Value.GetProperty("logits_shape").EnumerateArray().Select(v => v.GetInt32()).ToArray(), output.Logits.Shape.Dims.ToArray());
        Assert.True(OnnxParityTests.MaxAbsDiff(Floats("logits"), output.Logits.ToArray()) <= Tolerances.VsReference, "logits");
        Assert.True(OnnxParityTests.MaxAbsDiff(Floats("last_hidden_state"), output.HiddenStates![^1].ToArray()) <= Tolerances.VsReference, "last hidden state");
    }

    [Fact]
    public void Forward_ModulePathWithLabels_MatchesPyTorchLogitsAndLossAndBackpropagates()
    {
        var model = BertForMaskedLM.FromPretrained(Folder);
        Assert.False(model.Bert.UsesFastPath);
        var output = model.Forward(Ints("input_ids"), Ints("attention_mask"), Ints("token_type_ids"), labels: Ints("labels"));
        Assert.True(OnnxParityTests.MaxAbsDiff(Floats("logits"), output.Logits.ToArray()) <= Tolerances.VsReference, "logits");
        Assert.Equal(Expected.Value.GetProperty("loss").GetSingle(), output.Loss!.ToArray()[0], 4);

        output.Loss.Backward();
        Assert.NotNull(model.DecoderWeight.Value.Grad);
        Assert.Same(model.Bert.Embeddings.WordEmbeddings.Weight, model.DecoderWeight);
        Assert.NotNull(model.Bert.Encoder.Layers[0].Attention.Self.Query.Weight.Value.Grad);
        Assert.NotNull(model.Cls.Predictions.Bias.Value.Grad);
    }

    [Fact]
    public void NamedParameters_MaskedLM_AreHuggingFaceNamesWithTiedDecoderOnce()
    {
        var model = BertForMaskedLM.FromPretrained(Folder);
        var names = model.NamedParameters().Select(p => p.Name).ToList();
        Assert.Contains("bert.encoder.layer.1.attention.self.query.weight", names);
        Assert.Contains("cls.predictions.transform.LayerNorm.bias", names);
        Assert.Contains("cls.predictions.bias", names);
        Assert.DoesNotContain("cls.predictions.decoder.weight", names);
        Assert.DoesNotContain(names, n => n.StartsWith("bert.pooler", StringComparison.Ordinal));
    }

    [Fact]
    public void FromPretrained_BertModelOnMaskedLMCheckpoint_StripsPrefixAndReportsHead()
    {
        var model = BertModel.FromPretrained(Folder);
        Assert.Null(model.Pooler);
        Assert.Contains("cls.predictions.bias", model.LoadReport!.Unused);
        using var noGrad = Autograd.NoGrad();
        var output = model.Forward(Ints("input_ids"), Ints("attention_mask"), Ints("token_type_ids"));
        Assert.True(OnnxParityTests.MaxAbsDiff(Floats("last_hidden_state"), output.LastHiddenState.ToArray()) <= Tolerances.VsReference);
    }

    [Fact]
    public void Forward_OutputAttentions_ShapesRowSumsAndPaddedKeysZero()
    {
        var model = BertModel.FromPretrained(Folder);
        var mask = Ints("attention_mask");
        var maskValues = mask.ToArray();
        foreach (bool fast in new[] { true, false })
        {
            BertModelOutput output;
            if (fast)
            {
                using var noGrad = Autograd.NoGrad();
                output = model.Forward(Ints("input_ids"), mask, Ints("token_type_ids"), outputHiddenStates: true, outputAttentions: true);
            }
            else
            {
                output = model.Forward(Ints("input_ids"), mask, Ints("token_type_ids"), outputHiddenStates: true, outputAttentions: true);
            }

            Assert.Equal(3, output.HiddenStates!.Count);
            Assert.All(output.HiddenStates, h => Assert.Equal([2, 7, 16], h.Shape.Dims.ToArray()));
            Assert.Equal(2, output.Attentions!.Count);
            foreach (var attention in output.Attentions)
            {
                Assert.Equal([2, 4, 7, 7], attention.Shape.Dims.ToArray());
                var p = attention.ToArray();
                for (int row = 0; row < 2 * 4 * 7; row++)
                {
                    int b = row / (4 * 7);
                    Assert.Equal(1f, p.Skip(row * 7).Take(7).Sum(), Tolerances.RowSum);
                    for (int key = 0; key < 7; key++)
                    {
                        if (maskValues[(b * 7) + key] == 0) Assert.Equal(0f, p[(row * 7) + key]);
                    }
                }
            }
        }
    }

    [Fact]
    public void AutoModel_UnknownModelType_ListsSupportedTypes()
    {
        string dir = Directory.CreateTempSubdirectory("sharpformer-auto-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "config.json"), """{"model_type": "gpt2", "n_embd": 8, "n_layer": 1, "n_head": 2, "vocab_size": 10, "n_positions": 8}""");
            var e = Assert.Throws<NotSupportedException>(() => AutoModel.FromPretrained(dir));
            Assert.Contains("gpt2", e.Message, StringComparison.Ordinal);
            Assert.Contains("bert, roberta, distilbert", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void FromPretrained_WrongHiddenSizeInConfig_ThrowsNamingTensor()
    {
        string dir = Directory.CreateTempSubdirectory("sharpformer-bad-").FullName;
        try
        {
            File.Copy(Path.Combine(Folder, "model.safetensors"), Path.Combine(dir, "model.safetensors"));
            File.WriteAllText(Path.Combine(dir, "config.json"), File.ReadAllText(Path.Combine(Folder, "config.json")).Replace("\"vocab_size\": 40", "\"vocab_size\": 41", StringComparison.Ordinal));
            var e = Assert.Throws<ModelLoadException>(() => BertForMaskedLM.FromPretrained(dir));
            Assert.Contains("bert.embeddings.word_embeddings.weight", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Forward_RandomInitTrainingMode_DropoutChangesOutputEvalDoesNot()
    {
        var config = (BertConfig)ModelConfig.Load(Folder);
        var model = new BertModel(config, VarBuilder.FromInit(seed: 3));
        var ids = Ints("input_ids");
        var a = model.Forward(ids).LastHiddenState.ToArray();
        var b = model.Forward(ids).LastHiddenState.ToArray();
        Assert.NotEqual(a, b);
        model.Eval();
        Assert.Equal(model.Forward(ids).LastHiddenState.ToArray(), model.Forward(ids).LastHiddenState.ToArray());
        Assert.NotNull(model.Pooler);
    }
}

public class RobertaPositionTests
{
    [Fact]
    public void PositionIds_Roberta_StartAfterPaddingIdxAndPaddingKeepsIt()
    {
        var config = (RobertaConfig)ModelConfig.Parse("""
            {"model_type": "roberta", "vocab_size": 30, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
             "intermediate_size": 16, "max_position_embeddings": 12, "type_vocab_size": 1, "pad_token_id": 1, "layer_norm_eps": 1e-5}
            """);
        var model = new BertModel(config, VarBuilder.FromInit(seed: 4));
        Assert.Equal([2, 3, 4, 1, 2, 3, 4, 1], model.Embeddings.PositionIds([0, 7, 2, 1, 0, 9, 2, 1], 2, 4));

        // The fused path numbers positions the same way as the module path.
        model.Eval();
        var ids = Tensor.FromArray(new[] { 0, 7, 2, 1, 0, 9, 2, 1 }, new Shape(2, 4));
        var mask = Tensor.FromArray(new[] { 1, 1, 1, 0, 1, 1, 1, 0 }, new Shape(2, 4));
        var reference = model.Forward(ids, mask).LastHiddenState.ToArray();
        using var noGrad = Autograd.NoGrad();
        var fast = model.Forward(ids, mask).LastHiddenState.ToArray();
        Assert.True(OnnxParityTests.MaxAbsDiff(reference, fast) <= Tolerances.FastVsModules);
    }
}
