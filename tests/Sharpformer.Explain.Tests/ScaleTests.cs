using System.Diagnostics;
using Sharpformer.IO.Config;
using Sharpformer.Models;
using Sharpformer.Models.Bert;
using Xunit.Abstractions;

namespace Sharpformer.Explain.Tests;

/// <summary>The scale: a 512-token input on a 12-layer, 12-head model must give a page under 20 MB.</summary>
public sealed class ScaleTests(ITestOutputHelper log)
{
    [Fact]
    public void BertBase_512Tokens_PageUnder20MB_MatricesDownsampled()
    {
        var config = (BertStyleConfig)ModelConfig.Parse("""
            {"model_type": "bert", "vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
             "intermediate_size": 3072, "max_position_embeddings": 512, "type_vocab_size": 2}
            """);
        IExplainableModel model = BertForMaskedLM.FromConfig(config, seed: 11);
        var tokenizer = FakeRotaryModel.Tokenizer();
        string text = string.Join(' ', Enumerable.Repeat("the heart is a large organ .", 72)) + " the [MASK] sat on the mat";
        Assert.Equal(512, tokenizer.Encode(text).Count);

        // The forward alone first (it also warms the kernels), so the log splits the model's share from the page's.
        var clock = Stopwatch.StartNew();
        model.Trace(tokenizer.Encode(text).Ids.ToArray());
        double forward = clock.Elapsed.TotalSeconds;
        clock.Restart();
        var report = Explainer.Run(model, tokenizer, text);
        double compute = clock.Elapsed.TotalSeconds;
        string html = ExplainPage.Render(report);
        double total = clock.Elapsed.TotalSeconds;
        long bytes = System.Text.Encoding.UTF8.GetByteCount(html);
        log.WriteLine($"512 tokens, 12 × 12 heads, C 768, V 30522: forward alone {forward:F2} s; Explainer.Run (forward, lens, data) {compute:F2} s; HTML {total - compute:F2} s; {bytes / 1e6:F2} MB");

        Assert.True(bytes < 20_000_000, $"the page is {bytes / 1e6:F1} MB; it must stay under 20 MB");
        var attention = report.Attention[11].Heads[11];
        Assert.False(attention.Exact);
        Assert.Equal(64, attention.Rows);
        Assert.Equal(512, attention.SourceRows);
        Assert.Equal(13, report.HiddenNorms.Count);
        Assert.Equal(512, report.HiddenNorms[12].Length);
        var mask = Assert.Single(report.Output.Masks);
        Assert.Equal(506, mask.Position);
        Assert.Contains(506, report.Lens.Positions);
        Assert.Contains(511, report.Lens.Positions);

        // Every row of a head's attention sums to 1, so each block-row of means averages to 1 / (key blocks' widths).
        double rowSum = 0;
        for (int j = 0; j < attention.Cols; j++) rowSum += attention.Values[j] * (attention.ColStarts[j + 1] - attention.ColStarts[j]);
        Assert.Equal(1.0, rowSum, 1e-3);
    }
}
