using Sharpformer.IO.SafeTensors;
using Sharpformer.IO.Tests.Onnx;
using Sharpformer.Tensors;
using Sharpformer.Text;

namespace Sharpformer.Pipelines.Tests;

public sealed class RandomMlmFolder : IDisposable
{
    public string Folder { get; } = RandomBertMlm.Write(Path.Combine(Path.GetTempPath(), $"sharpformer-pipelines-mlm-{Guid.NewGuid():N}"));

    public void Dispose() => Directory.Delete(Folder, recursive: true);
}

public class RandomMlmEndToEndTests(RandomMlmFolder model) : IClassFixture<RandomMlmFolder>
{
    private static readonly PipelineOptions Offline = new() { Hub = new IO.Hub.HubOptions { Offline = true, CacheDir = Path.GetTempPath() } };

    [Theory]
    [InlineData("the cat sat on the [MASK].")]
    [InlineData("[MASK] heart is a large organ")]
    public async Task Run_RandomCheckpoint_TopKIsArgsortOfReferenceLogits(string text)
    {
        var pipeline = await FillMaskPipeline.FromPretrainedAsync(model.Folder, Offline);

        var results = Assert.Single(pipeline.Run(text, topK: 5));

        var tokenizer = AutoTokenizer.FromPretrained(model.Folder);
        var encoding = tokenizer.Encode(text);
        var maskAt = encoding.Tokens.ToList().IndexOf("[MASK]");
        var logits = ReferenceLogits(encoding, maskAt);
        var expected = Enumerable.Range(0, logits.Length).OrderByDescending(i => logits[i]).Take(5).ToArray();
        Assert.Equal(expected, results.Select(r => r.Token));
        var max = logits.Max();
        var sum = logits.Sum(l => Math.Exp(l - max));
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(Math.Exp(logits[expected[i]] - max) / sum, results[i].Score, Tolerances.VsReference);
        }
    }

    [Fact]
    public async Task FromPretrainedAsync_BareEncoder_FillMaskThrowsNotSupported()
    {
        var folder = RandomBertMlm.Write(Path.Combine(Path.GetTempPath(), $"sharpformer-pipelines-enc-{Guid.NewGuid():N}"), withHead: false);
        try
        {
            var error = await Assert.ThrowsAsync<NotSupportedException>(() => FillMaskPipeline.FromPretrainedAsync(folder, Offline));
            Assert.Contains("masked-LM head", error.Message, StringComparison.Ordinal);

            // The same folder still embeds: an encoder is all feature extraction needs.
            var features = await FeatureExtractionPipeline.FromPretrainedAsync(folder, Offline);
            Assert.Equal(5, features.Run("the cat sat").Count);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Embed_PaddedBatch_MatchesOneByOne()
    {
        var pipeline = await SentenceEmbeddingPipeline.FromPretrainedAsync(model.Folder, Offline);
        string[] texts = ["the cat", "the heart is a large organ.", "cat sat on the mat", "a"];

        var batched = pipeline.Embed(texts, batchSize: 4);

        for (var i = 0; i < texts.Length; i++)
        {
            var single = pipeline.Embed(texts[i]);
            for (var j = 0; j < single.Length; j++)
            {
                Assert.Equal(single[j], batched[i][j], Tolerances.VsReference);
            }
        }
    }

    // The plain test-only BERT forward plus the MLM head in double: transform dense → erf GELU → LayerNorm → tied decoder + bias.
    private double[] ReferenceLogits(TokenEncoding encoding, int position)
    {
        using var weights = SafeTensorsFile.Open(Path.Combine(model.Folder, "model.safetensors"));
        Tensor W(string name) => weights.GetTensorAsF32("bert." + name);
        var reference = new ReferenceBert(W, RandomBertMlm.Layers, RandomBertMlm.Heads, 1e-12f);
        var seq = encoding.Count;
        var hidden = reference.Forward(
            encoding.Ids.Select(i => (long)i).ToArray(), new long[seq].Select(_ => 1L).ToArray(), new long[seq], 1, seq);
        int c = RandomBertMlm.Hidden, v = RandomBertMlm.Vocab.Length;
        var h = hidden.AsSpan(position * c, c).ToArray();

        var dense = weights.GetTensorAsF32("cls.predictions.transform.dense.weight").ToArray();
        var denseBias = weights.GetTensorAsF32("cls.predictions.transform.dense.bias").ToArray();
        var t = new double[c];
        for (var o = 0; o < c; o++)
        {
            double acc = denseBias[o];
            for (var i = 0; i < c; i++) acc += (double)dense[(o * c) + i] * h[i];
            t[o] = 0.5 * acc * (1 + ReferenceBert.Erf(acc / Math.Sqrt(2)));
        }

        var mean = t.Average();
        var variance = t.Sum(x => (x - mean) * (x - mean)) / c;
        var gamma = weights.GetTensorAsF32("cls.predictions.transform.LayerNorm.weight").ToArray();
        var beta = weights.GetTensorAsF32("cls.predictions.transform.LayerNorm.bias").ToArray();
        for (var j = 0; j < c; j++) t[j] = ((t[j] - mean) / Math.Sqrt(variance + 1e-12) * gamma[j]) + beta[j];

        var word = weights.GetTensorAsF32("bert.embeddings.word_embeddings.weight").ToArray();
        var bias = weights.GetTensorAsF32("cls.predictions.bias").ToArray();
        var logits = new double[v];
        for (var o = 0; o < v; o++)
        {
            double acc = bias[o];
            for (var j = 0; j < c; j++) acc += word[(o * c) + j] * t[j];
            logits[o] = acc;
        }

        return logits;
    }
}
