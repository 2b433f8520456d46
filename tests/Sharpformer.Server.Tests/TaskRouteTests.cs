using System.Net;
using System.Text.Json;
using Sharpformer.IO.Config;
using Sharpformer.Models;
using Sharpformer.Pipelines;

namespace Sharpformer.Server.Tests;

/// <summary>/v1/classify and /v1/ner on random BERT task models loaded as the CLI loads them (config architectures).</summary>
public sealed class TaskRouteTests : IAsyncLifetime
{
    private static readonly string[] Vocab =
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "heart", "is", "a", "muscular", "organ", "paris", "in", "france", "john", "lives", ".", "##s"];

    private readonly string _root = Path.Combine(Path.GetTempPath(), $"sharpformer-server-tasks-{Guid.NewGuid():N}");
    private SharpformerServer _server = null!;
    private string _classifier = null!;
    private string _tagger = null!;

    public async Task InitializeAsync()
    {
        _classifier = Write("classifier", ["NEGATIVE", "POSITIVE"], c => AutoModelForSequenceClassification.FromConfig(c, seed: 1));
        _tagger = Write("tagger", ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], c => AutoModelForTokenClassification.FromConfig(c, seed: 3));
        _server = await TestModels.StartAsync(
            new ServerOptions { ApiKeys = [TestModels.Key] },
            await ServedModel.LoadAsync("sentiment", _classifier),
            await ServedModel.LoadAsync("entities", _tagger),
            await ServedModel.LoadAsync("bert", TestModels.BertFolder));
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_root, recursive: true);
    }

    private string Write(string name, string[] labels, Func<ModelConfig, object> build)
    {
        var folder = Path.Combine(_root, name);
        var config = ModelConfig.Parse($$"""
            {"model_type": "bert", "vocab_size": {{Vocab.Length}}, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
             "intermediate_size": 32, "max_position_embeddings": 64, "type_vocab_size": 2}
            """).WithLabels(labels);
        ((IPretrainedModel)build(config)).SavePretrained(folder);
        File.WriteAllLines(Path.Combine(folder, "vocab.txt"), Vocab);
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"do_lower_case": true, "model_max_length": 64, "tokenizer_class": "BertTokenizer"}""");
        return folder;
    }

    [Fact]
    public async Task Classify_BatchWithTopKAll_EqualsThePipeline()
    {
        using var http = TestModels.Http(_server);
        string[] texts = ["the heart is a muscular organ.", "john lives in paris."];

        using var response = await http.PostAsync("/v1/classify", TestModels.Body(new { model = "sentiment", input = texts, top_k = 0 }));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var expected = (await TextClassificationPipeline.FromPretrainedAsync(_classifier)).RunBatch(texts, null, topK: null);
        var data = doc.RootElement.GetProperty("data");
        Assert.Equal(2, data.GetArrayLength());
        for (int i = 0; i < texts.Length; i++)
        {
            var labels = data[i].GetProperty("labels");
            Assert.Equal(expected[i].Count, labels.GetArrayLength());
            for (int j = 0; j < expected[i].Count; j++)
            {
                Assert.Equal(expected[i][j].Label, labels[j].GetProperty("label").GetString());
                Assert.Equal(expected[i][j].Score, labels[j].GetProperty("score").GetSingle());
            }
        }
    }

    [Fact]
    public async Task Ner_TokenLevel_EqualsThePipelineWithOffsetsAndIndices()
    {
        using var http = TestModels.Http(_server);
        const string text = "john lives in paris.";

        using var response = await http.PostAsync("/v1/ner", TestModels.Body(new { model = "entities", input = text, aggregation_strategy = "none" }));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var expected = (await TokenClassificationPipeline.FromPretrainedAsync(_tagger)).Run(text, AggregationStrategy.None);
        var entities = doc.RootElement.GetProperty("data")[0].GetProperty("entities");
        Assert.Equal(expected.Count, entities.GetArrayLength());
        for (int j = 0; j < expected.Count; j++)
        {
            Assert.Equal(expected[j].Entity, entities[j].GetProperty("entity").GetString());
            Assert.Equal(expected[j].Start, entities[j].GetProperty("start").GetInt32());
            Assert.Equal(expected[j].End, entities[j].GetProperty("end").GetInt32());
            Assert.Equal(expected[j].Word, entities[j].GetProperty("word").GetString());
            Assert.Equal(expected[j].Index, entities[j].GetProperty("token_index").GetInt32());
        }
    }

    [Theory]
    [InlineData("/v1/classify", """{"model": "entities", "input": "x"}""", "model")]
    [InlineData("/v1/ner", """{"model": "sentiment", "input": "x"}""", "model")]
    [InlineData("/v1/classify", """{"model": "sentiment", "input": ""}""", "input")]
    [InlineData("/v1/classify", """{"model": "sentiment", "input": [1, 2]}""", "input")]
    [InlineData("/v1/classify", """{"model": "sentiment", "input": "x", "top_k": -1}""", "top_k")]
    [InlineData("/v1/classify", """{"model": "sentiment", "input": "x", "function_to_apply": "relu"}""", "function_to_apply")]
    [InlineData("/v1/ner", """{"model": "entities", "input": "x", "aggregation_strategy": "longest"}""", "aggregation_strategy")]
    [InlineData("/v1/ner", """{"model": "bert", "input": "x"}""", "model")]
    public async Task TaskRoutes_BadInput_400NamingTheParam(string route, string body, string param)
    {
        using var http = TestModels.Http(_server);

        using var response = await http.PostAsync(route, new StringContent(body, System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(param, doc.RootElement.GetProperty("error").GetProperty("param").GetString());
    }

    [Fact]
    public async Task OpenApi_DocumentsTheTaskRoutes()
    {
        using var http = TestModels.Http(_server);

        string document = await http.GetStringAsync("/openapi/v1.json");

        Assert.Contains("/v1/classify", document, StringComparison.Ordinal);
        Assert.Contains("/v1/ner", document, StringComparison.Ordinal);
    }
}
