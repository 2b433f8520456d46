using System.Text.Json;

namespace Sharpformer.Pipelines.Tests;

/// <summary>
/// The pipelines on tests/fixtures/distilbert_mlm (a random DistilBertForMaskedLM run by PyTorch, with its vocab.txt):
/// "the cat sat on the [MASK]." tokenizes to the fixture's first sequence, so the pipelines' outputs must be the
/// fixture's last hidden state (feature extraction), its mean-pooled L2-normalized form (sentence embedding), and the
/// argsort and softmax of its logits at the mask (fill-mask).
/// </summary>
public class DistilBertFixtureTests
{
    private const string Text = "the cat sat on the [MASK].";

    private static readonly string Folder = Path.Combine(AppContext.BaseDirectory, "fixtures", "distilbert_mlm");

    private static readonly Lazy<JsonElement> Expected = new(() => JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "expected.json"))).RootElement);

    private static int[] FirstSequence => Expected.Value.GetProperty("input_ids")[0].EnumerateArray().Select(v => v.GetInt32()).ToArray();

    /// <summary>The expected last hidden state of sequence 0 (unpadded): [T, C] rows.</summary>
    private static float[][] LastHiddenRows()
    {
        var flat = Expected.Value.GetProperty("hidden_states").EnumerateArray().Last().EnumerateArray().Select(v => v.GetSingle()).ToArray();
        int t = FirstSequence.Length, c = flat.Length / (2 * t);
        return Enumerable.Range(0, t).Select(i => flat.AsSpan(i * c, c).ToArray()).ToArray();
    }

    [Fact]
    public async Task FillMask_DistilBertFolder_TopKIsArgsortAndSoftmaxOfPyTorchLogits()
    {
        var pipeline = await FillMaskPipeline.FromPretrainedAsync(Folder);
        Assert.Equal(FirstSequence, pipeline.Tokenizer.Encode(Text).Ids);
        int maskAt = Array.IndexOf(FirstSequence, pipeline.MaskTokenId), v = pipeline.Model.VocabSize;
        var logits = Expected.Value.GetProperty("logits").EnumerateArray().Skip(maskAt * v).Take(v).Select(x => x.GetDouble()).ToArray();
        double max = logits.Max(), sum = logits.Sum(x => Math.Exp(x - max));
        var order = Enumerable.Range(0, v).OrderByDescending(i => logits[i]).Take(5).ToArray();

        var results = Assert.Single(pipeline.Run(Text, topK: 5));

        Assert.Equal(order, results.Select(r => r.Token));
        for (int i = 0; i < 5; i++)
        {
            Assert.Equal(Math.Exp(logits[order[i]] - max) / sum, results[i].Score, Tolerances.VsReference);
        }
    }

    [Fact]
    public async Task FeatureExtraction_DistilBertFolder_IsPyTorchLastHiddenState()
    {
        var pipeline = await FeatureExtractionPipeline.FromPretrainedAsync(Folder);
        var rows = pipeline.Run(Text);
        var expected = LastHiddenRows();
        Assert.Equal(expected.Length, rows.Count);
        for (int i = 0; i < rows.Count; i++)
        {
            Assert.Equal(expected[i].Length, rows[i].Length);
            for (int j = 0; j < rows[i].Length; j++) Assert.Equal(expected[i][j], rows[i][j], Tolerances.VsReference);
        }
    }

    [Fact]
    public async Task SentenceEmbedding_DistilBertFolder_IsMeanPooledNormalizedPyTorchState()
    {
        var pipeline = await SentenceEmbeddingPipeline.FromPretrainedAsync(Folder);
        var rows = LastHiddenRows();
        var mean = Enumerable.Range(0, rows[0].Length).Select(j => rows.Average(r => (double)r[j])).ToArray();
        double norm = Math.Sqrt(mean.Sum(x => x * x));

        var embedding = pipeline.Embed(Text);

        Assert.Equal(mean.Length, embedding.Length);
        for (int j = 0; j < mean.Length; j++) Assert.Equal(mean[j] / norm, embedding[j], Tolerances.VsReference);
    }
}
