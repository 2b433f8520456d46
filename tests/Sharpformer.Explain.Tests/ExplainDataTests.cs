using Sharpformer.Models;
using Sharpformer.Models.Bert;
using Sharpformer.Models.DistilBert;
using Sharpformer.Models.Gpt2;
using Sharpformer.NN;
using Sharpformer.Pipelines.Tests;
using Sharpformer.Tensors;

namespace Sharpformer.Explain.Tests;

/// <summary>The page's embedded numbers against the models' own outputs, parsed back out of the HTML.</summary>
public sealed class ExplainDataTests
{
    [Fact]
    public void BertMlm_PageData_EqualsModelAttentionsHiddenStatesAndPrediction()
    {
        var (tokenizer, model) = ExplainModels.Load(TestModels.Bert);
        var bert = Assert.IsType<BertForMaskedLM>(model);
        var report = ExplainPage.ReadData(ExplainPage.Render(Explainer.Run(model, tokenizer, TestModels.Seed)));

        var encoding = tokenizer.Encode(TestModels.Seed);
        int t = encoding.Count;
        Assert.Equal(encoding.Ids, report.Tokens.Select(x => x.Id));
        Assert.Equal(encoding.Offsets.Select(o => o.End), report.Tokens.Select(x => x.Special ? encoding.Offsets[x.Index].End : x.End));
        Assert.Equal("heart", report.Tokens[2].Text);
        Assert.True(report.Tokens[0].Special);

        // Bit for bit: the model's trace (its fused inference forward with the outputs returned). To rounding: the model's
        // public Forward as a caller gets it — with parameters requiring gradients it runs the module (autograd) path.
        var ids = Tensor.FromArray(encoding.Ids.ToArray(), new Shape(1, t));
        var output = bert.Forward(ids, outputHiddenStates: true, outputAttentions: true);
        var trace = model.Trace(encoding.Ids.ToArray());
        Assert.Equal(RandomBertMlm.Layers, report.Attention.Count);
        for (int l = 0; l < RandomBertMlm.Layers; l++)
        {
            var expected = output.Attentions![l].Contiguous().ToArray<float>();
            var traced = trace.Attentions[l].ToArray<float>();
            Assert.Equal(RandomBertMlm.Heads, report.Attention[l].Heads.Count);
            var average = new double[t * t];
            for (int h = 0; h < RandomBertMlm.Heads; h++)
            {
                var shown = report.Attention[l].Heads[h];
                Assert.True(shown.Exact);
                Assert.Equal(traced.AsSpan(h * t * t, t * t).ToArray(), shown.Values);
                for (int i = 0; i < t * t; i++) Assert.Equal(expected[(h * t * t) + i], shown.Values[i], Tolerances.VsModulePath);
                for (int i = 0; i < t * t; i++) average[i] += expected[(h * t * t) + i] / RandomBertMlm.Heads;
            }

            for (int i = 0; i < t * t; i++) Assert.Equal(average[i], report.Attention[l].Average.Values[i], Tolerances.Rounding);
        }

        for (int l = 0; l <= RandomBertMlm.Layers; l++)
        {
            var states = output.HiddenStates![l].Contiguous().ToArray<float>();
            for (int i = 0; i < t; i++)
            {
                double norm = Math.Sqrt(states.AsSpan(i * RandomBertMlm.Hidden, RandomBertMlm.Hidden).ToArray().Sum(v => (double)v * v));
                Assert.Equal(norm, report.HiddenNorms[l][i], norm * Tolerances.Rounding);
            }
        }

        // The fill-mask output: the argmax of the model's logits at [MASK] and its softmax probability.
        int mask = encoding.Ids.ToList().IndexOf(tokenizer.TokenToId("[MASK]")!.Value);
        var logits = output.Logits.Contiguous().ToArray<float>().AsSpan(mask * RandomBertMlm.Vocab.Length, RandomBertMlm.Vocab.Length).ToArray();
        int best = Array.IndexOf(logits, logits.Max());
        double z = logits.Sum(v => Math.Exp(v - logits.Max()));
        var prediction = Assert.Single(report.Output.Masks);
        Assert.Equal(mask, prediction.Position);
        Assert.Equal(best, prediction.Candidates[0].Id);
        Assert.Equal(1 / z, prediction.Candidates[0].Probability, Tolerances.VsModulePath);
        Assert.Equal("masked-lm", report.Output.Kind);

        // The logit lens at the last layer is the output itself.
        int lensRow = Array.IndexOf(report.Lens.Positions, mask);
        Assert.Equal(best, report.Lens.Layers[RandomBertMlm.Layers][lensRow][0].Id);
    }

    [Fact]
    public void Gpt2_PageData_IsCausalAndEqualsModelAttentions_NextTokenFollowsGenerationFilters()
    {
        var (tokenizer, model) = ExplainModels.Load(TestModels.Gpt2);
        var gpt2 = Assert.IsType<Gpt2LMHeadModel>(model);
        const string text = "ab a ab a";
        var options = new ExplainOptions { SamplingTopK = 3, TopK = 8 };
        var report = ExplainPage.ReadData(ExplainPage.Render(Explainer.Run(model, tokenizer, text, options)));
        var ids = tokenizer.Encode(text).Ids.ToArray();
        int t = ids.Length;

        var output = gpt2.Forward(Tensor.FromArray(ids, new Shape(1, t)), outputAttentions: true);
        var trace = model.Trace(ids);
        Assert.True(report.Model.Causal);
        for (int l = 0; l < report.Attention.Count; l++)
        {
            var expected = output.Attentions![l].Contiguous().ToArray<float>();
            var traced = trace.Attentions[l].ToArray<float>();
            for (int h = 0; h < report.Model.Heads; h++)
            {
                var values = report.Attention[l].Heads[h].Values;
                Assert.Equal(traced.AsSpan(h * t * t, t * t).ToArray(), values);
                for (int i = 0; i < t * t; i++) Assert.Equal(expected[(h * t * t) + i], values[i], Tolerances.VsModulePath);
                for (int q = 0; q < t; q++)
                {
                    for (int k = q + 1; k < t; k++) Assert.Equal(0f, values[(q * t) + k]);
                }
            }
        }

        // Raw: the softmax of the last position's logits. Processed: top-k 3 keeps the three best, renormalized.
        int v = gpt2.VocabSize;
        var last = output.Logits.Contiguous().ToArray<float>().AsSpan((t - 1) * v, v).ToArray();
        double max = last.Max();
        var probs = last.Select(x => Math.Exp(x - max)).ToArray();
        double z = probs.Sum();
        var order = Enumerable.Range(0, v).OrderByDescending(i => last[i]).ToArray();
        var next = report.Output.Next!;
        Assert.Equal(order[0], next.Raw[0].Id);
        Assert.Equal(probs[order[0]] / z, next.Raw[0].Probability, Tolerances.VsModulePath);
        Assert.Equal(3, next.Kept);
        double kept = order.Take(3).Sum(i => probs[i]);
        Assert.Equal(order.Take(3), next.Processed.Select(c => c.Id));
        for (int r = 0; r < 3; r++) Assert.Equal(probs[order[r]] / kept, next.Processed[r].Probability, Tolerances.VsModulePath);
    }

    [Fact]
    public void LongInput_IsDownsampled_BlocksHoldExactMeanMinMax()
    {
        var random = new Random(7);
        int rows = 130, cols = 70;
        var values = new float[rows * cols];
        for (int i = 0; i < values.Length; i++) values[i] = (float)random.NextDouble() - 0.5f;
        var shown = DisplayMatrices.Create(values, rows, cols, 64, 64);
        Assert.False(shown.Exact);
        Assert.Equal(64, shown.Rows);
        Assert.Equal(64, shown.Cols);
        Assert.Equal(0, shown.RowStarts[0]);
        Assert.Equal(rows, shown.RowStarts[^1]);
        for (int bi = 0; bi < shown.Rows; bi++)
        {
            for (int bj = 0; bj < shown.Cols; bj++)
            {
                var block = new List<float>();
                for (int i = bi * rows / 64; i < (bi + 1) * rows / 64; i++)
                {
                    for (int j = bj * cols / 64; j < (bj + 1) * cols / 64; j++) block.Add(values[(i * cols) + j]);
                }

                int k = (bi * shown.Cols) + bj;
                Assert.Equal(block.Average(x => (double)x), shown.Values[k], Tolerances.Rounding);
                Assert.Equal(block.Min(), shown.Min![k]);
                Assert.Equal(block.Max(), shown.Max![k]);
            }
        }

        var small = DisplayMatrices.Create(values.AsSpan(0, 12), 3, 4, 64, 64);
        Assert.True(small.Exact);
        Assert.Equal(values.AsSpan(0, 12).ToArray(), small.Values);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(37, 50)]
    [InlineData(200, 33)]
    public void Sinusoidal_Picture_MatchesTheNnLayersTable_AnyLengthAndWidth(int length, int width)
    {
        var picture = PositionPictures.Sinusoidal(length, width);
        var table = new SinusoidalPositionalEncoding(length, width).Table.ToArray<float>();
        Assert.Equal(table.Length, picture.Length);
        for (int i = 0; i < table.Length; i++) Assert.Equal(table[i], picture[i], Tolerances.Sinusoid);

        // Row 0 is sin 0 = 0, cos 0 = 1 alternating; the first column is sin(p).
        for (int j = 0; j < width; j++) Assert.Equal(j % 2 == 0 ? 0f : 1f, picture[j]);
        for (int p = 0; p < length; p++) Assert.Equal(MathF.Sin(p), picture[p * width], Tolerances.Sinusoid);
    }

    [Fact]
    public void Sinusoidal_DistilBert_IsShownAsSinusoidal()
    {
        var config = (Sharpformer.IO.Config.DistilBertConfig)Sharpformer.IO.Config.ModelConfig.Parse("""
            {"model_type": "distilbert", "vocab_size": 26, "dim": 16, "n_layers": 1, "n_heads": 2, "hidden_dim": 32, "max_position_embeddings": 40, "sinusoidal_pos_embds": true}
            """);
        IExplainableModel model = new DistilBertModel(config, VarBuilder.FromInit(3, 0.02f));
        var report = Explainer.Run(model, FakeRotaryModel.Tokenizer(), "the cat sat on the mat");
        Assert.Equal("sinusoidal", report.Positions.Kind);
        int t = report.Tokens.Count;
        var expected = PositionPictures.Sinusoidal(t, 16);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], report.Positions.Table.Values[i], Tolerances.Sinusoid);
        Assert.Equal(1f, report.Positions.RelativeSimilarity[0], Tolerances.Rounding);
        Assert.Equal("embedding-projection", report.Output.Kind);
    }

    [Fact]
    public void Rotary_SyntheticTable_ShowsCosSinAndRelativeProfile()
    {
        const int length = 40, headDim = 16, pairs = headDim / 2;
        var rope = new RotaryEmbedding(headDim, length);
        var angles = new float[length * pairs];
        for (int p = 0; p < length; p++)
        {
            for (int i = 0; i < pairs; i++) angles[(p * pairs) + i] = p * (1f / MathF.Pow(10000f, 2f * i / headDim));
        }

        var (cos, sin, relative) = PositionPictures.Rotary(angles, length, pairs);
        var ropeCos = rope.Cos.ToArray<float>();
        var ropeSin = rope.Sin.ToArray<float>();
        for (int p = 0; p < length; p++)
        {
            double expected = 0;
            for (int i = 0; i < pairs; i++)
            {
                Assert.Equal(ropeCos[(p * headDim) + i], cos[(p * pairs) + i], Tolerances.Rotary);
                Assert.Equal(ropeSin[(p * headDim) + i + pairs], sin[(p * pairs) + i], Tolerances.Rotary);
                expected += Math.Cos(p / Math.Pow(10000, 2.0 * i / headDim));
            }

            Assert.Equal(expected / pairs, relative[p], Tolerances.Rotary);
        }

        Assert.Equal(1f, relative[0]);
    }

    [Fact]
    public void Rotary_ModelThroughTheInterface_ReportsRotaryPositionsAndCausalOutput()
    {
        var tokenizer = FakeRotaryModel.Tokenizer();
        var model = new FakeRotaryModel(tokenizer.VocabularySize);
        var report = ExplainPage.ReadData(ExplainPage.Render(Explainer.Run(model, tokenizer, "the cat sat on the mat")));
        int t = report.Tokens.Count;
        Assert.Equal("rotary", report.Positions.Kind);
        Assert.NotNull(report.Positions.RotarySin);
        for (int p = 0; p < t; p++)
        {
            for (int i = 0; i < FakeRotaryModel.Pairs; i++)
            {
                Assert.Equal(MathF.Cos(p * FakeRotaryModel.Theta(i)), report.Positions.Table.Values[(p * FakeRotaryModel.Pairs) + i], Tolerances.Rounding);
            }
        }

        Assert.Equal(1f / t, report.Attention[0].Heads[0].Values[(t - 1) * t], Tolerances.Rounding);
        Assert.NotNull(report.Output.Next);
    }

    [Fact]
    public void TooLongText_FailsWithAMessageThatSaysHowToFix()
    {
        var (tokenizer, model) = ExplainModels.Load(TestModels.Gpt2);
        var e = Assert.Throws<ArgumentException>(() => Explainer.Run(model, tokenizer, string.Concat(Enumerable.Repeat("ab a ", 20))));
        Assert.Contains("shorten it", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => Explainer.Run(model, tokenizer, "ab", new ExplainOptions { TopP = 0f }));
    }
}
