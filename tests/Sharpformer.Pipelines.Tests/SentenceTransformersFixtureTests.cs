using System.Text.Json;

namespace Sharpformer.Pipelines.Tests;

/// <summary>
/// tests/fixtures/sentence_transformers: one random BertModel (model/) and, per variant, the sentence-transformers files
/// (modules.json, sentence_bert_config.json, 1_Pooling/config.json, 2_Dense/, config_sentence_transformers.json) that
/// make it embed by each pooling mode, with and without Dense and Normalize, with prompts, truncation and lowercasing.
/// PyTorch computed the expected embeddings with sentence-transformers' math written out (make_fixture.py).
/// </summary>
public sealed class SentenceTransformersFixtureTests : IDisposable
{
    private static readonly string Root = Path.Combine(AppContext.BaseDirectory, "fixtures", "sentence_transformers");

    private static readonly Lazy<JsonElement> Expected = new(() => JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, "expected.json"))).RootElement);

    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"sharpformer-st-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    public static TheoryData<string> Variants() =>
    [
        "mean", "mean_normalize", "cls_normalize", "max", "mean_sqrt_len", "weightedmean", "lasttoken", "cls_max_mean",
        "dense_tanh_normalize", "truncate_lower", "prompt_excluded", "prompt_included", "prompt_default",
    ];

    /// <summary>model/ and variants/<paramref name="variant"/>/ copied into one folder, as a sentence-transformers model folder is laid out.</summary>
    private string Assemble(string variant)
    {
        var folder = Path.Combine(_dir, variant);
        Copy(Path.Combine(Root, "model"), folder);
        Copy(Path.Combine(Root, "variants", variant), folder);
        return folder;
    }

    private static void Copy(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public async Task Embed_Variant_MatchesSentenceTransformersMath(string variant)
    {
        var expected = Expected.Value.GetProperty("variants").GetProperty(variant);
        var texts = expected.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToArray();
        var promptName = expected.GetProperty("prompt_name").ValueKind == JsonValueKind.Null ? null : expected.GetProperty("prompt_name").GetString();
        var embeddings = expected.GetProperty("embeddings").EnumerateArray().Select(e => e.EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToArray();
        var warnings = new List<string>();
        var pipeline = await SentenceEmbeddingPipeline.FromPretrainedAsync(Assemble(variant), new PipelineOptions { Warning = warnings.Add });

        // Batches of 2 pad the shorter text of each pair: padding must not change any mode's result.
        var ours = pipeline.Embed(texts, batchSize: 2, promptName: promptName);

        Assert.Equal(embeddings[0].Length, pipeline.Dimensions);
        for (var i = 0; i < texts.Length; i++)
        {
            Assert.Equal(embeddings[i].Length, ours[i].Length);
            for (var j = 0; j < embeddings[i].Length; j++)
            {
                Assert.True(Math.Abs(embeddings[i][j] - ours[i][j]) <= Tolerances.VsSentenceTransformers,
                    $"{variant}: text {i} dim {j}: {ours[i][j]} vs sentence-transformers {embeddings[i][j]}");
            }
        }

        // Only the max_seq_length = 6 variant cuts texts, and says so once for the whole call.
        Assert.Equal(variant == "truncate_lower" ? 1 : 0, warnings.Count);
    }

    [Fact]
    public async Task Embed_NoTruncate_TooLongTextIsAnErrorNamingMaxSeqLength()
    {
        var pipeline = await SentenceEmbeddingPipeline.FromPretrainedAsync(Assemble("truncate_lower"), new PipelineOptions { NoTruncation = true });

        var error = Assert.Throws<ArgumentException>(() => pipeline.Embed(["red", "the heart is a large organ ."]));

        Assert.Contains("Text 1 is 9 tokens long but the model takes at most 6 (max_seq_length)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Embed_UnknownPromptName_ListsTheModelsPrompts()
    {
        var pipeline = await SentenceEmbeddingPipeline.FromPretrainedAsync(Assemble("prompt_included"));

        var error = Assert.Throws<ArgumentException>(() => pipeline.Embed(["red"], promptName: "document"));

        Assert.Contains("'query', 'passage'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Load_FolderWithoutModulesJson_IsMeanPoolingThenNormalize()
    {
        var folder = Path.Combine(_dir, "plain");
        Copy(Path.Combine(Root, "model"), folder);

        var pipeline = await SentenceEmbeddingPipeline.FromPretrainedAsync(folder);
        var reference = await SentenceEmbeddingPipeline.FromPretrainedAsync(Assemble("mean_normalize"));

        Assert.Equal(PoolingConfig.Mean, pipeline.Config.Pooling);
        Assert.Equal(reference.Embed(["a cat sat on the mat"])[0], pipeline.Embed(["a cat sat on the mat"])[0]);
    }

    [Fact]
    public void Load_UnknownModuleType_NamesItAndTheFile()
    {
        var folder = Assemble("mean");
        File.WriteAllText(Path.Combine(folder, "modules.json"),
            """[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},{"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},{"idx":2,"name":"2","path":"2_X","type":"my.custom.Module"}]""");

        var error = Assert.Throws<NotSupportedException>(() => SentenceTransformerConfig.Load(folder));

        Assert.Contains("modules.json: module 2 is my.custom.Module", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_PoolingWithNoMode_SaysWhichKeysToTurnOn()
    {
        var folder = Assemble("mean");
        File.WriteAllText(Path.Combine(folder, "1_Pooling", "config.json"), """{"word_embedding_dimension": 16, "pooling_mode_mean_tokens": false}""");

        var error = Assert.Throws<InvalidDataException>(() => SentenceTransformerConfig.Load(folder));

        Assert.Contains("no pooling_mode_* is true", error.Message, StringComparison.Ordinal);
    }
}
