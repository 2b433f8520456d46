using System.Text.Json;
using Sharpformer.IO.Config;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Models.Bert;
using Sharpformer.Models.DistilBert;
using Sharpformer.NN;
using Sharpformer.Tensors;

namespace Sharpformer.Models.Tests;

/// <summary>
/// DistilBERT against tests/fixtures/distilbert_mlm (made by make_fixture.py with PyTorch, HF's forward in plain torch):
/// a tiny random DistilBertForMaskedLM folder with logits, every hidden state, every attention map and the loss for a
/// padded batch of 2, and sinusoidal/ (a bare DistilBertModel with sinusoidal_pos_embds, relu, no position tensor).
/// </summary>
public class DistilBertFixtureTests
{
    private static readonly string Folder = Path.Combine(AppContext.BaseDirectory, "fixtures", "distilbert_mlm");

    private static readonly string SinusoidalFolder = Path.Combine(Folder, "sinusoidal");

    private static readonly Lazy<JsonElement> Expected = new(() => Load(Folder));

    private static readonly Lazy<JsonElement> ExpectedSinusoidal = new(() => Load(SinusoidalFolder));

    private static JsonElement Load(string folder) => JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "expected.json"))).RootElement;

    private static Tensor Ints(JsonElement expected, string key)
    {
        var rows = expected.GetProperty(key).EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetInt32()).ToArray()).ToArray();
        return Tensor.FromArray(rows.SelectMany(r => r).ToArray(), new Shape(rows.Length, rows[0].Length));
    }

    private static float[] Floats(JsonElement values) => values.EnumerateArray().Select(v => v.GetSingle()).ToArray();

    private static void AssertClose(float[] expected, Tensor actual, string what) =>
        Assert.True(OnnxParityTests.MaxAbsDiff(expected, actual.Contiguous().ToArray()) <= Tolerances.VsReference, what);

    private static void AssertStatesMatch(JsonElement expected, BertModelOutput output, bool attentions)
    {
        var hidden = expected.GetProperty("hidden_states").EnumerateArray().ToList();
        Assert.Equal(hidden.Count, output.HiddenStates!.Count);
        for (int i = 0; i < hidden.Count; i++) AssertClose(Floats(hidden[i]), output.HiddenStates[i], $"hidden state {i}");
        AssertClose(Floats(hidden[^1]), output.LastHiddenState, "last hidden state");
        if (!attentions) return;
        var maps = expected.GetProperty("attentions").EnumerateArray().ToList();
        Assert.Equal(maps.Count, output.Attentions!.Count);
        for (int i = 0; i < maps.Count; i++)
        {
            Assert.Equal([2, 4, 9, 9], output.Attentions[i].Shape.Dims.ToArray());
            AssertClose(Floats(maps[i]), output.Attentions[i], $"attention {i}");
        }
    }

    [Fact]
    public void Forward_FastPath_MatchesPyTorchLogitsHiddenStatesAndAttentions()
    {
        var model = Assert.IsType<DistilBertForMaskedLM>(AutoModelForMaskedLM.FromPretrained(Folder));
        Assert.Empty(model.LoadReport!.Unused);
        Assert.Empty(model.LoadReport.Missing);
        using var noGrad = Autograd.NoGrad();
        Assert.True(model.DistilBert.UsesFastPath);
        var e = Expected.Value;
        var output = model.Forward(Ints(e, "input_ids"), Ints(e, "attention_mask"), outputHiddenStates: true, outputAttentions: true);
        Assert.Equal(e.GetProperty("logits_shape").EnumerateArray().Select(v => v.GetInt32()).ToArray(), output.Logits.Shape.Dims.ToArray());
        AssertClose(Floats(e.GetProperty("logits")), output.Logits, "logits");
        AssertStatesMatch(e, new BertModelOutput(output.HiddenStates![^1], null, output.HiddenStates, output.Attentions), attentions: true);
    }

    [Fact]
    public void Forward_ModulePathWithLabels_MatchesPyTorchAndBackpropagatesIntoTiedProjector()
    {
        var model = DistilBertForMaskedLM.FromPretrained(Folder);
        Assert.False(model.DistilBert.UsesFastPath);
        var e = Expected.Value;
        var output = model.Forward(Ints(e, "input_ids"), Ints(e, "attention_mask"), labels: Ints(e, "labels"), outputHiddenStates: true, outputAttentions: true);
        AssertClose(Floats(e.GetProperty("logits")), output.Logits, "logits");
        AssertStatesMatch(e, new BertModelOutput(output.HiddenStates![^1], null, output.HiddenStates, output.Attentions), attentions: true);
        Assert.Equal(e.GetProperty("loss").GetSingle(), output.Loss!.ToArray()[0], Tolerances.VsReference);

        output.Loss.Backward();
        Assert.Same(model.DistilBert.Embeddings.WordEmbeddings.Weight, model.VocabProjectorWeight);
        Assert.NotNull(model.VocabProjectorWeight.Value.Grad);
        Assert.NotNull(model.DistilBert.Transformer.Layers[0].Attention.QLin.Weight.Value.Grad);
        Assert.NotNull(model.VocabProjectorBias.Value.Grad);
    }

    [Fact]
    public void NamedParameters_MaskedLM_AreHuggingFaceNamesWithTiedProjectorOnce()
    {
        var model = DistilBertForMaskedLM.FromPretrained(Folder);
        var names = model.NamedParameters().Select(p => p.Name).ToList();
        using var source = SafeTensorsLoader.Open(Folder);
        Assert.Equal(source.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal), names.Order(StringComparer.Ordinal));
        Assert.Contains("distilbert.transformer.layer.1.attention.q_lin.weight", names);
        Assert.Contains("distilbert.transformer.layer.0.output_layer_norm.bias", names);
        Assert.Contains("vocab_projector.bias", names);
        Assert.DoesNotContain("vocab_projector.weight", names);
    }

    [Fact]
    public void AutoModel_DistilBertMaskedLMFolder_BuildsEncoderWithoutPrefixAndReportsHead()
    {
        var model = Assert.IsType<DistilBertModel>(AutoModel.FromPretrained(Folder));
        Assert.Contains("vocab_transform.weight", model.LoadReport!.Unused);
        Assert.Empty(model.LoadReport.Missing);
        using var noGrad = Autograd.NoGrad();
        var e = Expected.Value;
        var output = model.Forward(Ints(e, "input_ids"), Ints(e, "attention_mask"));
        Assert.Null(output.PoolerOutput);
        AssertClose(Floats(e.GetProperty("hidden_states").EnumerateArray().Last()), output.LastHiddenState, "last hidden state");
    }

    [Fact]
    public void SinusoidalTable_MatchesHuggingFaceTable()
    {
        var config = (DistilBertConfig)ModelConfig.Load(SinusoidalFolder);
        var table = DistilBertEmbeddings.SinusoidalTable(config.MaxPositionEmbeddings, config.HiddenSize);
        Assert.Equal([config.MaxPositionEmbeddings, config.HiddenSize], table.Shape.Dims.ToArray());
        AssertClose(Floats(ExpectedSinusoidal.Value.GetProperty("position_table")), table, "position table");
    }

    [Fact]
    public void FromPretrained_SinusoidalReluNoPositionTensor_BothPathsMatchPyTorch()
    {
        var model = DistilBertModel.FromPretrained(SinusoidalFolder);
        Assert.True(model.Config.SinusoidalPosEmbds);
        Assert.Equal(BertActivationKind.Relu, model.Transformer.Layers[0].Ffn.Activation);
        Assert.Empty(model.LoadReport!.Missing);
        Assert.Empty(model.LoadReport.Unused);
        Assert.False(model.Embeddings.PositionEmbeddings.Weight.RequiresGrad);
        var e = ExpectedSinusoidal.Value;
        var reference = model.Forward(Ints(e, "input_ids"), Ints(e, "attention_mask"), outputHiddenStates: true);
        AssertStatesMatch(e, reference, attentions: false);
        using var noGrad = Autograd.NoGrad();
        Assert.True(model.UsesFastPath);
        AssertStatesMatch(e, model.Forward(Ints(e, "input_ids"), Ints(e, "attention_mask"), outputHiddenStates: true), attentions: false);
    }

    [Fact]
    public void Forward_RandomInitLongerThanGemmAttentionThreshold_FastPathMatchesModulePath()
    {
        // T = 40 takes the fused path's GEMM attention (T ≥ 32), which the 9-token fixture does not reach.
        var config = (DistilBertConfig)ModelConfig.Parse("""
            {"model_type": "distilbert", "vocab_size": 50, "dim": 16, "n_layers": 2, "n_heads": 2, "hidden_dim": 24,
             "max_position_embeddings": 48, "sinusoidal_pos_embds": true}
            """);
        var model = new DistilBertModel(config, VarBuilder.FromInit(seed: 5, std: 0.3f));
        model.Eval();
        var random = new Random(6);
        var ids = Tensor.FromArray(Enumerable.Range(0, 2 * 40).Select(_ => random.Next(50)).ToArray(), new Shape(2, 40));
        var mask = Tensor.FromArray(Enumerable.Range(0, 2 * 40).Select(i => i >= 40 + 30 ? 0 : 1).ToArray(), new Shape(2, 40));
        var reference = model.ForwardModules(ids, mask, false, true);
        using var noGrad = Autograd.NoGrad();
        var fast = model.Forward(ids, mask, outputAttentions: true);
        Assert.True(OnnxParityTests.MaxAbsDiff(reference.LastHiddenState.ToArray(), fast.LastHiddenState.ToArray()) <= Tolerances.FastVsModules);
        Assert.True(OnnxParityTests.MaxAbsDiff(reference.Attentions![1].ToArray(), fast.Attentions![1].ToArray()) <= Tolerances.FastVsModules);
    }

    [Fact]
    public void Constructor_TieWeightsFalse_ProjectorHasItsOwnWeight()
    {
        var config = (DistilBertConfig)ModelConfig.Parse("""
            {"model_type": "distilbert", "vocab_size": 12, "dim": 8, "n_layers": 1, "n_heads": 2, "hidden_dim": 16,
             "max_position_embeddings": 8, "tie_weights_": false}
            """);
        var model = new DistilBertForMaskedLM(config, VarBuilder.FromInit(seed: 7));
        Assert.NotSame(model.DistilBert.Embeddings.WordEmbeddings.Weight, model.VocabProjectorWeight);
        Assert.Contains("vocab_projector.weight", model.NamedParameters().Select(p => p.Name));
        model.Eval();
        var logits = model.Forward(Tensor.FromArray(new[] { 2, 5, 4, 3 }, new Shape(1, 4))).Logits;
        Assert.Equal([1, 4, 12], logits.Shape.Dims.ToArray());
    }

    [Fact]
    public void FromPretrained_MissingTensor_ThrowsNamingTensor()
    {
        string dir = Directory.CreateTempSubdirectory("sharpformer-distilbert-").FullName;
        try
        {
            const string Dropped = "distilbert.transformer.layer.1.ffn.lin2.weight";
            using (var source = SafeTensorsLoader.Open(Folder))
            {
                SafeTensorsWriter.Write(
                    Path.Combine(dir, "model.safetensors"),
                    source.Tensors.Where(t => t.Name != Dropped).Select(t => (t.Name, source.GetTensorAsF32(t.Name))).ToList());
            }

            File.Copy(Path.Combine(Folder, "config.json"), Path.Combine(dir, "config.json"));
            var e = Assert.Throws<ModelLoadException>(() => DistilBertForMaskedLM.FromPretrained(dir));
            Assert.Contains(Dropped, e.Message, StringComparison.Ordinal);
            Assert.Contains("missing", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Forward_IdOutsideVocabulary_ThrowsNamingIdAndVocabSize()
    {
        var model = DistilBertModel.FromPretrained(Folder);
        using var noGrad = Autograd.NoGrad();
        var ids = Tensor.FromArray(new[] { 2, 99, 3 }, new Shape(1, 3));
        var e = Assert.Throws<ArgumentException>(() => model.Forward(ids));
        Assert.Contains("99", e.Message, StringComparison.Ordinal);
        Assert.Contains("vocab_size", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromPretrained_BertFolder_SaysNotDistilBert()
    {
        var bert = Path.Combine(AppContext.BaseDirectory, "fixtures", "bert_mlm");
        var e = Assert.Throws<NotSupportedException>(() => DistilBertModel.FromPretrained(bert));
        Assert.Contains("'bert' is not distilbert", e.Message, StringComparison.Ordinal);
    }
}
