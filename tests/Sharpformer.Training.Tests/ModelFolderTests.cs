using System.Text.Json.Nodes;
using Sharpformer.IO.Config;
using Sharpformer.Models;
using Sharpformer.Models.Bert;
using Sharpformer.Models.Gpt2;
using Sharpformer.Tensors;

namespace Sharpformer.Training.Tests;

/// <summary>The folders a training run writes, for a language model and for a task head.</summary>
public sealed class ModelFolderTests : IDisposable
{
    private const string TinyBert = """{"model_type": "bert", "vocab_size": 30, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 16}""";

    private readonly string _folder = Path.Combine(Path.GetTempPath(), "sharpformer-model-folder-" + Guid.NewGuid().ToString("N"));

    public ModelFolderTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Write_TaskHead_SavesItsClassLabelsAndTheProblemTypeDecidedDuringTraining()
    {
        var config = (BertConfig)ModelConfig.Parse(TinyBert).WithLabels(["cold", "warm", "hot"]);
        var model = BertForSequenceClassification.FromConfig(config, seed: 3);
        var json = ModelFolder.SavedConfig(null, config, model, dropout: 0.05f);

        // The first labels (class ids) decide problem_type after the config was prepared, as in a run.
        var ids = Tensor.FromArray(new[] { 2, 5, 7, 3 }, new Shape(2, 2));
        model.ClassificationLoss(ids, null, null, Tensor.FromArray(new[] { 2, 0 }, new Shape(2))).Backward();
        ModelFolder.Write(_folder, model, json, tokenizerFolder: null);

        var saved = JsonNode.Parse(File.ReadAllText(Path.Combine(_folder, "config.json")))!.AsObject();
        Assert.Equal("BertForSequenceClassification", saved["architectures"]![0]!.GetValue<string>());
        Assert.Equal("single_label_classification", saved["problem_type"]!.GetValue<string>());
        Assert.Equal(3, saved["num_labels"]!.GetValue<int>());
        Assert.Equal("hot", saved["id2label"]!["2"]!.GetValue<string>());
        Assert.Equal(1, saved["label2id"]!["warm"]!.GetValue<int>());
        Assert.Equal(0.05f, saved["hidden_dropout_prob"]!.GetValue<float>());

        var reloaded = AutoModelForSequenceClassification.FromPretrained(_folder);
        var bert = Assert.IsType<BertForSequenceClassification>(reloaded);
        Assert.Empty(bert.LoadReport!.Missing);
        Assert.Empty(bert.LoadReport.Unused);
        model.Eval();
        Assert.Equal(model.ClassificationLogits(ids, Tensor.FromArray(new[] { 1, 1, 1, 1 }, new Shape(2, 2)), null).ToArray(),
            reloaded.ClassificationLogits(ids, Tensor.FromArray(new[] { 1, 1, 1, 1 }, new Shape(2, 2)), null).ToArray());
    }

    [Fact]
    public void SavedConfig_LanguageModel_KeepsTheSourceKeysAndNamesTheHfClass()
    {
        string source = Path.Combine(_folder, "source.json");
        File.WriteAllText(source, """{"model_type": "gpt2", "vocab_size": 20, "n_positions": 8, "n_embd": 8, "n_layer": 1, "n_head": 2, "custom_key": 7}""");
        var config = (Gpt2Config)ModelConfig.Load(source);
        var json = ModelFolder.SavedConfig(source, config, Gpt2LMHeadModel.FromConfig(config, 1), dropout: null);

        Assert.Equal("GPT2LMHeadModel", json["architectures"]![0]!.GetValue<string>());
        Assert.Equal(7, json["custom_key"]!.GetValue<int>());
        Assert.Equal("float32", json["torch_dtype"]!.GetValue<string>());
        Assert.Null(json["id2label"]);
    }
}
