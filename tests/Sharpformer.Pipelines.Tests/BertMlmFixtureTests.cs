using System.Text.Json;

namespace Sharpformer.Pipelines.Tests;

/// <summary>
/// The fill-mask pipeline on tests/fixtures/bert_mlm (a random BertForMaskedLM run by PyTorch, V = 40): its top-k must be
/// the argsort of the fixture's expected logits at the mask, and its scores their softmax. The fixture has no
/// vocabulary, so a 40-line one with BERT's special ids ([PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, [MASK] 4) is written beside it.
/// </summary>
public sealed class BertMlmFixtureFolder : IDisposable
{
    private static readonly string Source = Path.Combine(AppContext.BaseDirectory, "fixtures", "bert_mlm");

    public BertMlmFixtureFolder()
    {
        Folder = Path.Combine(Path.GetTempPath(), $"sharpformer-pipelines-bert-mlm-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Folder);
        foreach (var name in new[] { "config.json", "model.safetensors" })
        {
            File.Copy(Path.Combine(Source, name), Path.Combine(Folder, name));
        }

        Vocab = new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" }.Concat(Enumerable.Range(5, 35).Select(i => $"tok{i}")).ToArray();
        File.WriteAllLines(Path.Combine(Folder, "vocab.txt"), Vocab);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Source, "expected.json")));
        var root = doc.RootElement;
        Ids = root.GetProperty("input_ids").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetInt32()).ToArray()).ToArray();
        Mask = root.GetProperty("attention_mask").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetInt32()).ToArray()).ToArray();
        Types = root.GetProperty("token_type_ids").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetInt32()).ToArray()).ToArray();
        Logits = root.GetProperty("logits").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        Shape = root.GetProperty("logits_shape").EnumerateArray().Select(v => v.GetInt32()).ToArray();
    }

    public string Folder { get; }

    public string[] Vocab { get; }

    public int[][] Ids { get; }

    public int[][] Mask { get; }

    public int[][] Types { get; }

    /// <summary>[B, T, V] row-major.</summary>
    public double[] Logits { get; }

    public int[] Shape { get; }

    public void Dispose() => Directory.Delete(Folder, recursive: true);
}

public class BertMlmFixtureTests(BertMlmFixtureFolder fixture) : IClassFixture<BertMlmFixtureFolder>
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public async Task RunIds_PyTorchFixture_TopKIsArgsortOfExpectedLogits(int row)
    {
        var pipeline = await FillMaskPipeline.FromPretrainedAsync(fixture.Folder);
        Assert.Equal(4, pipeline.MaskTokenId);

        // The row without its padding: the pipeline runs one unpadded input, as HF's fill-mask does.
        var length = fixture.Mask[row].Sum();
        var ids = fixture.Ids[row][..length];
        var types = fixture.Types[row][..length];
        var results = Assert.Single(pipeline.RunIds(ids, types, topK: 5, targetIds: null, text: $"fixture row {row}"));

        int seq = fixture.Shape[1], vocab = fixture.Shape[2];
        var at = Array.IndexOf(ids, 4);
        var expected = fixture.Logits.AsSpan(((row * seq) + at) * vocab, vocab).ToArray();
        var order = Enumerable.Range(0, vocab).OrderByDescending(i => expected[i]).Take(5).ToArray();
        Assert.Equal(order, results.Select(r => r.Token));
        var max = expected.Max();
        var sum = expected.Sum(l => Math.Exp(l - max));
        for (var k = 0; k < 5; k++)
        {
            Assert.Equal(Math.Exp(expected[order[k]] - max) / sum, results[k].Score, Tolerances.VsReference);
            Assert.Equal(fixture.Vocab[order[k]], results[k].TokenStr);
        }
    }

    [Fact]
    public async Task Run_PyTorchFixtureText_FillsTheMaskWithHfSequence()
    {
        var pipeline = await FillMaskPipeline.FromPretrainedAsync(fixture.Folder);

        var results = Assert.Single(pipeline.Run("tok7 tok13 [MASK] tok25", topK: 3));

        Assert.Equal(3, results.Count);
        Assert.All(results, r => Assert.Equal($"tok7 tok13 {r.TokenStr} tok25", r.Sequence));
    }
}
