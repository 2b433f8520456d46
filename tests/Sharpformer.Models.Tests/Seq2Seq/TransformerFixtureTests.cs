using System.Text.Json;
using Sharpformer.IO.Config;
using Sharpformer.Models.Seq2Seq;
using Sharpformer.Tensors;

namespace Sharpformer.Models.Tests.Seq2Seq;

/// <summary>
/// The original Transformer against tests/fixtures/seq2seq (make_fixture.py: torch.nn.Transformer with the weights
/// mapped onto our names, PyTorch 1.13): logits, the label-smoothed loss, every parameter's gradient, greedy ids; and
/// the inference path (Encode + DecodeLast over the caches) against the module path over the same parameters.
/// </summary>
public class TransformerFixtureTests
{
    private static readonly string Folder = Path.Combine(AppContext.BaseDirectory, "fixtures", "seq2seq");

    private static readonly Lazy<JsonElement> Expected = new(() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "expected.json"))).RootElement);

    private static int[][] Rows(string key) =>
        [.. Expected.Value.GetProperty(key).EnumerateArray().Select(r => r.EnumerateArray().Select(e => e.GetInt32()).ToArray())];

    private static float[] Floats(JsonElement e) => [.. e.EnumerateArray().Select(x => x.GetSingle())];

    private static Tensor Matrix(int[][] rows) => Tensor.FromArray(rows.SelectMany(r => r).ToArray(), new Shape(rows.Length, rows[0].Length));

    private static float[] SourceMask(int[][] source, int pad) => [.. source.SelectMany(r => r).Select(id => id == pad ? 0f : 1f)];

    private static float MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        float max = 0f;
        for (int i = 0; i < a.Length; i++)
        {
            max = Math.Max(max, Math.Abs(a[i] - b[i]));
        }

        return max;
    }

    private static Seq2SeqOutput ForwardFixture(TransformerForConditionalGeneration model, bool withLabels, bool outputAttentions = false)
    {
        var source = Rows("source_ids");
        var mask = Tensor.FromArray(SourceMask(source, model.Config.PadTokenId), new Shape(source.Length, source[0].Length));
        var labels = withLabels ? Matrix(Rows("labels")) : null;
        float smoothing = Expected.Value.GetProperty("label_smoothing").GetSingle();
        return model.Forward(Matrix(source), mask, Matrix(Rows("decoder_input_ids")), labels, smoothing, outputAttentions);
    }

    [Fact]
    public void Forward_LogitsLossAndEveryGradient_MatchTorchTransformer()
    {
        var model = TransformerForConditionalGeneration.FromPretrained(Folder);
        Assert.Empty(model.LoadReport!.Missing);
        Assert.Empty(model.LoadReport.Unused);
        model.Train(); // dropout is 0 in the fixture: training mode only records the tape

        var output = ForwardFixture(model, withLabels: true);
        float logitDiff = MaxAbsDiff(Floats(Expected.Value.GetProperty("logits")), output.Logits.ToArray());
        Assert.True(logitDiff <= Tolerances.VsReference, $"max |Δlogit| = {logitDiff}");
        float loss = output.Loss!.ToArray()[0];
        Assert.True(Math.Abs(loss - Expected.Value.GetProperty("loss").GetSingle()) <= Tolerances.VsReference, $"loss {loss}");

        output.Loss.Backward();
        var expected = Expected.Value.GetProperty("gradients");
        var names = model.NamedParameters().Select(p => p.Name).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(expected.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal), names);
        foreach (var (name, parameter) in model.NamedParameters())
        {
            var grad = parameter.Value.Grad;
            Assert.NotNull(grad);
            float diff = MaxAbsDiff(Floats(expected.GetProperty(name)), grad.ToArray());
            Assert.True(diff <= Tolerances.VsReference, $"{name}: max |Δgrad| = {diff}");
        }
    }

    [Fact]
    public void DecodeLast_StepByStep_EqualsModulePathLogits()
    {
        var model = TransformerForConditionalGeneration.FromPretrained(Folder);
        Tensor reference;
        using (Autograd.NoGrad())
        {
            reference = ForwardFixture(model, withLabels: false).Logits;
        }

        var source = Rows("source_ids");
        var target = Rows("decoder_input_ids");
        int batch = source.Length, t = target[0].Length, v = model.VocabSize;
        var state = model.Encode(source.SelectMany(r => r).ToArray(), SourceMask(source, model.Config.PadTokenId), batch, t);
        var logits = new float[batch * v];
        var all = reference.ToArray();
        for (int step = 0; step < t; step++)
        {
            model.DecodeLast([.. target.Select(r => r[step])], state, logits);
            for (int b = 0; b < batch; b++)
            {
                var expected = all.AsSpan(((b * t) + step) * v, v);
                float diff = MaxAbsDiff(expected, logits.AsSpan(b * v, v));
                Assert.True(diff <= Tolerances.FastVsModules, $"step {step}, row {b}: max |Δlogit| = {diff}");
            }
        }

        // A prefill of all T tokens at once gives the last position's logits too.
        var prefill = model.Encode(source.SelectMany(r => r).ToArray(), SourceMask(source, model.Config.PadTokenId), batch, t);
        var last = new float[batch * v];
        model.DecodeLast(target.SelectMany(r => r).ToArray(), prefill, last);
        Assert.True(MaxAbsDiff(logits, last) <= Tolerances.FastVsModules);
    }

    [Fact]
    public void GreedyThroughTheCaches_EqualsTorchGreedyIds()
    {
        var model = TransformerForConditionalGeneration.FromPretrained(Folder);
        var source = Rows("source_ids");
        var expected = Rows("greedy_ids");
        int batch = source.Length, maxLength = Expected.Value.GetProperty("greedy_max_length").GetInt32(), v = model.VocabSize;
        var tokens = model.SpecialTokens;
        var state = model.Encode(source.SelectMany(r => r).ToArray(), SourceMask(source, tokens.PadTokenId), batch, maxLength);
        var ids = Enumerable.Range(0, batch).Select(_ => new List<int> { tokens.DecoderStartTokenId }).ToArray();
        var done = new bool[batch];
        var logits = new float[batch * v];
        while (ids[0].Count < maxLength && !done.All(x => x))
        {
            model.DecodeLast([.. ids.Select(r => r[^1])], state, logits);
            for (int b = 0; b < batch; b++)
            {
                int next = done[b] ? tokens.PadTokenId : ArgMax(logits.AsSpan(b * v, v));
                ids[b].Add(next);
                done[b] |= next == tokens.EosTokenId;
            }
        }

        for (int b = 0; b < batch; b++)
        {
            Assert.Equal(expected[b], ids[b]);
        }
    }

    [Fact]
    public void CrossAttentions_AreSoftmaxRowsOverSourcePositions_OnBothPaths()
    {
        var model = TransformerForConditionalGeneration.FromPretrained(Folder);
        var source = Rows("source_ids");
        var target = Rows("decoder_input_ids");
        int batch = source.Length, s = source[0].Length, t = target[0].Length, heads = model.Config.NumAttentionHeads;
        var mask = SourceMask(source, model.Config.PadTokenId);
        IReadOnlyList<Tensor> modules;
        using (Autograd.NoGrad())
        {
            modules = ForwardFixture(model, withLabels: false, outputAttentions: true).CrossAttentions!;
        }

        model.OutputCrossAttentions = true;
        var state = model.Encode(source.SelectMany(r => r).ToArray(), mask, batch, t);
        model.DecodeLast(target.SelectMany(r => r).ToArray(), state, new float[batch * model.VocabSize]);
        var fast = model.LastCrossAttentions!;

        Assert.Equal(model.Config.DecoderLayers, fast.Count);
        for (int l = 0; l < fast.Count; l++)
        {
            Assert.Equal(new Shape(batch, heads, t, s), fast[l].Shape);
            Assert.True(MaxAbsDiff(modules[l].ToArray(), fast[l].ToArray()) <= Tolerances.FastVsModules, $"layer {l}");
            var w = fast[l].ToArray();
            for (int row = 0; row < batch * heads * t; row++)
            {
                int b = row / (heads * t);
                double sum = 0;
                for (int j = 0; j < s; j++)
                {
                    float p = w[(row * s) + j];
                    Assert.True(p >= 0f);
                    if (mask[(b * s) + j] == 0f)
                    {
                        Assert.Equal(0f, p);
                    }

                    sum += p;
                }

                Assert.True(Math.Abs(sum - 1) <= Tolerances.RowSum, $"layer {l}, row {row}: Σ = {sum}");
            }
        }
    }

    [Fact]
    public void SavePretrained_RoundTrips_AndAutoModelLoadsIt()
    {
        var model = TransformerForConditionalGeneration.FromConfig(new TransformerConfig { VocabSize = 31, DModel = 8, EncoderLayers = 1, DecoderLayers = 2, NumAttentionHeads = 2, FfnDim = 16, MaxPositionEmbeddings = 12 }, seed: 5);
        string folder = Path.Combine(Path.GetTempPath(), $"sf-transformer-{Guid.NewGuid():N}");
        try
        {
            model.SavePretrained(folder);
            var loaded = AutoModelForSeq2SeqLM.FromPretrained(folder);
            var typed = Assert.IsType<TransformerForConditionalGeneration>(loaded);
            Assert.Equal(model.Config, typed.Config);
            Assert.Empty(typed.LoadReport!.Missing);
            Assert.Empty(typed.LoadReport.Unused);
            foreach (var ((name, a), (otherName, b)) in model.NamedParameters().Zip(typed.NamedParameters()))
            {
                Assert.Equal(name, otherName);
                Assert.Equal(a.Value.ToArray(), b.Value.ToArray());
            }

            Assert.DoesNotContain(typed.NamedParameters(), p => p.Name == "lm_head.weight");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void BadConfigAndInputs_SayWhatIsWrong()
    {
        var e = Assert.Throws<ModelConfigException>(() => new TransformerConfig { VocabSize = 10, DModel = 10, NumAttentionHeads = 3 }.Validate());
        Assert.Contains("num_attention_heads", e.Message, StringComparison.Ordinal);

        var model = TransformerForConditionalGeneration.FromPretrained(Folder);
        var tooLong = new int[model.MaxSourcePositions + 1];
        var ex = Assert.Throws<ArgumentException>(() => model.Encode(tooLong, default, 1, 4));
        Assert.Contains("max_position_embeddings", ex.Message, StringComparison.Ordinal);
        var bad = Assert.Throws<ArgumentException>(() => model.Encode([1, 2, model.VocabSize], default, 1, 4));
        Assert.Contains("vocabulary", bad.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ShiftTokensRight_StartsWithTheDecoderStartAndReplacesIgnored()
    {
        var shifted = TransformerForConditionalGeneration.ShiftTokensRight([5, 6, -100, 7, 8, 9], batch: 2, decoderStartTokenId: 1, padTokenId: 0);
        Assert.Equal([1, 5, 6, 1, 7, 8], shifted);
        var withIgnored = TransformerForConditionalGeneration.ShiftTokensRight([5, -100, 4], batch: 1, decoderStartTokenId: 1, padTokenId: 0);
        Assert.Equal([1, 5, 0], withIgnored);
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }
}
