using System.Text.Json;
using Sharpformer.IO.Config;
using Sharpformer.Models.Bart;
using Sharpformer.Models.T5;
using Sharpformer.NN;
using Sharpformer.Tensors;

namespace Sharpformer.Models.Tests;

/// <summary>
/// MarianMT, BART, mBART and T5 (v1.0 and v1.1) against tests/fixtures/seq2seq_families (random weights in HF names; each
/// family's HF forward written out by hand in python3-torch 1.13, make_fixture.py): the encoder output, teacher-forced
/// logits of a right-padded batch, and greedy decoding, through both the module (autograd) path and the fused
/// <see cref="ISeq2SeqLM"/> path (one prefill, and one token at a time over the KV caches); the loss and the gradient of
/// the logits bias against the cross-entropy of the fixture's own logits.
/// </summary>
public class Seq2SeqFamilyFixtureTests
{
    public static TheoryData<string> Families => new() { "bart", "marian", "mbart", "t5", "t5_v1_1" };

    private static string Folder(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "seq2seq_families", name);

    private sealed record Expected(int[] SourceIds, float[] SourceMask, int Batch, int SourceLength, float[] EncoderOutput,
        int[] DecoderInputIds, int TargetLength, float[] Logits, int Vocab, int[][] Greedy, int MaxNewTokens);

    private static Expected Load(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder(name), "expected.json")));
        var root = doc.RootElement;
        int[][] Rows(string key) => root.GetProperty(key).EnumerateArray().Select(r => r.EnumerateArray().Select(e => e.GetInt32()).ToArray()).ToArray();
        float[] Floats(string key) => root.GetProperty(key).EnumerateArray().Select(e => e.GetSingle()).ToArray();
        var source = Rows("source_ids");
        var target = Rows("decoder_input_ids");
        var mask = root.GetProperty("source_mask").EnumerateArray().SelectMany(r => r.EnumerateArray().Select(e => e.GetSingle())).ToArray();
        var logitsShape = root.GetProperty("logits_shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        return new Expected(source.SelectMany(r => r).ToArray(), mask, source.Length, source[0].Length, Floats("encoder_output"),
            target.SelectMany(r => r).ToArray(), target[0].Length, Floats("logits"), logitsShape[2], Rows("greedy"), root.GetProperty("max_new_tokens").GetInt32());
    }

    private static ISeq2SeqLM LoadModel(string name) => AutoModelForSeq2SeqLM.FromPretrained(Folder(name));

    private static Seq2SeqLMOutput ModuleForward(ISeq2SeqLM model, Expected e, Tensor? labels = null)
    {
        var source = Tensor.FromArray(e.SourceIds, new Shape(e.Batch, e.SourceLength));
        var mask = Tensor.FromArray(e.SourceMask, new Shape(e.Batch, e.SourceLength));
        var target = Tensor.FromArray(e.DecoderInputIds, new Shape(e.Batch, e.TargetLength));
        return Assert.IsAssignableFrom<ITrainableSeq2SeqLM>(model).Forward(source, mask, target, labels);
    }

    private static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, float tolerance, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"{what}[{i}]: expected {expected[i]}, got {actual[i]} (tolerance {tolerance}).");
        }
    }

    /// <summary>Encoder output rows of real (unpadded) source positions only.</summary>
    private static void AssertEncoderClose(Expected e, ReadOnlySpan<float> actual, string what)
    {
        int c = e.EncoderOutput.Length / (e.Batch * e.SourceLength);
        for (int r = 0; r < e.Batch * e.SourceLength; r++)
        {
            if (e.SourceMask[r] != 0f)
            {
                AssertClose(e.EncoderOutput.AsSpan(r * c, c), actual.Slice(r * c, c), Tolerances.VsReference, $"{what} row {r}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void ModulePath_EncoderOutputAndLogits_EqualReference(string family)
    {
        var e = Load(family);
        var model = LoadModel(family);
        var output = ModuleForward(model, e);
        AssertEncoderClose(e, output.EncoderLastHiddenState.AsReadOnlySpan<float>(), $"{family} encoder");
        AssertClose(e.Logits, output.Logits.AsReadOnlySpan<float>(), Tolerances.VsReference, $"{family} logits");
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void FusedPath_PrefillAndStepwiseLogits_EqualReference(string family)
    {
        var e = Load(family);
        var model = LoadModel(family);
        int v = e.Vocab;

        // The whole target in one DecodeLast: the last position's logits.
        var state = model.Encode(e.SourceIds, e.SourceMask, e.Batch, e.TargetLength);
        var last = new float[e.Batch * v];
        model.DecodeLast(e.DecoderInputIds, state, last);
        for (int b = 0; b < e.Batch; b++)
        {
            AssertClose(e.Logits.AsSpan(((b * e.TargetLength) + e.TargetLength - 1) * v, v), last.AsSpan(b * v, v), Tolerances.VsReference, $"{family} prefill b={b}");
        }

        // One token at a time over the caches: every position's logits.
        state = model.Encode(e.SourceIds, e.SourceMask, e.Batch, e.TargetLength);
        var step = new int[e.Batch];
        for (int t = 0; t < e.TargetLength; t++)
        {
            for (int b = 0; b < e.Batch; b++)
            {
                step[b] = e.DecoderInputIds[(b * e.TargetLength) + t];
            }

            model.DecodeLast(step, state, last);
            for (int b = 0; b < e.Batch; b++)
            {
                AssertClose(e.Logits.AsSpan(((b * e.TargetLength) + t) * v, v), last.AsSpan(b * v, v), Tolerances.VsReference, $"{family} step {t} b={b}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Reorder_CopiesASequencesCaches_AsBeamSearchNeeds(string family)
    {
        // Decode two steps for both sources, keep sequence 1 twice, step once more: both rows must give the reference
        // logits of sequence 1 at position 2 (its cross-attention K/V, source mask and self-attention cache copied).
        var e = Load(family);
        var model = LoadModel(family);
        int v = e.Vocab;
        var state = model.Encode(e.SourceIds, e.SourceMask, e.Batch, e.TargetLength);
        var logits = new float[e.Batch * v];
        for (int t = 0; t < 2; t++)
        {
            model.DecodeLast([e.DecoderInputIds[t], e.DecoderInputIds[e.TargetLength + t]], state, logits);
        }

        state.Reorder([1, 1]);
        int next = e.DecoderInputIds[e.TargetLength + 2];
        model.DecodeLast([next, next], state, logits);
        for (int b = 0; b < 2; b++)
        {
            AssertClose(e.Logits.AsSpan((e.TargetLength + 2) * v, v), logits.AsSpan(b * v, v), Tolerances.VsReference, $"{family} reordered row {b}");
        }
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void GreedyDecoding_EqualsReferenceTokenForToken(string family)
    {
        var e = Load(family);
        var model = LoadModel(family);
        for (int b = 0; b < e.Batch; b++)
        {
            var source = e.SourceIds.Skip(b * e.SourceLength).Take(e.SourceLength).Where((_, i) => e.SourceMask[(b * e.SourceLength) + i] != 0f).ToArray();
            var state = model.Encode(source, default, 1, e.MaxNewTokens + 1);
            var logits = new float[model.VocabSize];
            var generated = new List<int>();
            int next = model.SpecialTokens.DecoderStartTokenId;
            for (int step = 0; step < e.MaxNewTokens; step++)
            {
                model.DecodeLast([next], state, logits);
                next = Array.IndexOf(logits, logits.Max());
                generated.Add(next);
                if (next == model.SpecialTokens.EosTokenId)
                {
                    break;
                }
            }

            Assert.Equal(e.Greedy[b], generated);
        }
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Loss_AndItsGradient_MatchCrossEntropyOfReferenceLogits(string family)
    {
        var e = Load(family);
        var model = LoadModel(family);
        int v = e.Vocab, rows = e.Batch * e.TargetLength;

        // Labels: the decoder inputs shifted left, the last position of row 0 ignored (−100).
        var labels = new int[rows];
        for (int r = 0; r < rows; r++)
        {
            labels[r] = (r % e.TargetLength) + 1 < e.TargetLength ? e.DecoderInputIds[r + 1] : model.SpecialTokens.EosTokenId;
        }

        labels[e.TargetLength - 1] = -100;
        var output = ModuleForward(model, e, Tensor.FromArray(labels, new Shape(e.Batch, e.TargetLength)));
        Assert.NotNull(output.Loss);

        // Expected: mean over counted rows of logsumexp − logit[label], from the fixture's logits, in double.
        double expectedLoss = 0;
        int counted = 0;
        var dLogits = new double[rows * v];
        for (int r = 0; r < rows; r++)
        {
            if (labels[r] == -100)
            {
                continue;
            }

            counted++;
            var row = e.Logits.AsSpan(r * v, v);
            double max = row.ToArray().Max(), sum = 0;
            foreach (var x in row)
            {
                sum += Math.Exp(x - max);
            }

            expectedLoss += Math.Log(sum) + max - row[labels[r]];
            for (int j = 0; j < v; j++)
            {
                dLogits[(r * v) + j] = Math.Exp(row[j] - max) / sum - (j == labels[r] ? 1 : 0);
            }
        }

        expectedLoss /= counted;
        Assert.Equal(expectedLoss, output.Loss!.ToArray<float>()[0], 4);

        // The gradient reaching every parameter: nonzero and finite; for BART/Marian the logits bias gradient is
        // Σ_rows dLogits / counted (the bias adds to every row).
        output.Loss.Backward();
        var trainable = Assert.IsAssignableFrom<ITrainableSeq2SeqLM>(model);
        foreach (var (name, parameter) in trainable.NamedParameters())
        {
            var grad = parameter.Value.Grad;
            Assert.True(grad is not null, $"{family}: no gradient reached {name}.");
            Assert.All(grad!.ToArray<float>(), g => Assert.True(float.IsFinite(g), $"{family}: non-finite gradient in {name}."));
        }

        if (model is BartForConditionalGeneration bart)
        {
            var expectedBias = new float[v];
            for (int j = 0; j < v; j++)
            {
                double total = 0;
                for (int r = 0; r < rows; r++)
                {
                    total += dLogits[(r * v) + j];
                }

                expectedBias[j] = (float)(total / counted);
            }

            AssertClose(expectedBias, bart.FinalLogitsBias.Value.Grad!.AsReadOnlySpan<float>(), Tolerances.VsReference, $"{family} final_logits_bias grad");
        }
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Backward_GradientsMatchFiniteDifferencesInEveryTensor(string family)
    {
        // Every parameter tensor (T5's relative bucket table, Marian/BART biases and norms, the shared table behind
        // both stacks and the head), a few elements each, against central differences of the module-path loss. The
        // family's config with small random weights (std 0.1): the fixture's wide weights saturate the softmaxes, and
        // float32 differences then measure curvature, not the gradient.
        const float step = 2e-3f;
        var e = Load(family);
        var vb = VarBuilder.FromInit(seed: 11, std: 0.1f);
        ITrainableSeq2SeqLM model = ModelConfig.Load(Folder(family)) switch
        {
            BartConfig bartConfig => BartForConditionalGeneration.FromVarBuilder(bartConfig, vb),
            T5Config t5Config => T5ForConditionalGeneration.FromVarBuilder(t5Config, vb),
            var other => throw new InvalidOperationException(other.ModelType),
        };
        var labels = new int[e.Batch * e.TargetLength];
        for (int r = 0; r < labels.Length; r++)
        {
            labels[r] = (r % e.TargetLength) + 1 < e.TargetLength ? e.DecoderInputIds[r + 1] : model.SpecialTokens.EosTokenId;
        }

        var labelTensor = Tensor.FromArray(labels, new Shape(e.Batch, e.TargetLength));
        ModuleForward(model, e, labelTensor).Loss!.Backward();
        var rng = new Random(5);
        foreach (var (name, parameter) in model.NamedParameters())
        {
            var analytic = parameter.Value.Grad!.ToArray<float>();
            var values = parameter.Value.AsSpan<float>();
            for (int sample = 0; sample < 3; sample++)
            {
                // Shared tables: a row the batch uses, so the gradient is not trivially zero.
                int i = name.EndsWith("shared.weight", StringComparison.Ordinal)
                    ? (e.DecoderInputIds[rng.Next(e.DecoderInputIds.Length)] * parameter.Shape[1]) + rng.Next(parameter.Shape[1])
                    : rng.Next(values.Length);
                float original = values[i];
                parameter.Value.AsSpan<float>()[i] = original + step;
                double plus = LossOf(model, e, labelTensor);
                parameter.Value.AsSpan<float>()[i] = original - step;
                double minus = LossOf(model, e, labelTensor);
                parameter.Value.AsSpan<float>()[i] = original;
                double numeric = (plus - minus) / ((double)(original + step) - (original - step));
                double allowed = Tolerances.FiniteDifferenceAbsolute + (Tolerances.FiniteDifferenceRelative * Math.Abs(numeric));
                Assert.True(Math.Abs(analytic[i] - numeric) <= allowed, $"{family} {name}[{i}]: analytic {analytic[i]:G6} vs numeric {numeric:G6}.");
            }
        }
    }

    private static double LossOf(ITrainableSeq2SeqLM model, Expected e, Tensor labels)
    {
        using var noGrad = Autograd.NoGrad();
        return ModuleForward(model, e, labels).Loss!.ToArray<float>()[0];
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void SourceBeyondThePositions_FailsNamingTheLimit(string family)
    {
        var model = LoadModel(family);
        if (model.MaxSourcePositions == int.MaxValue)
        {
            // T5: relative positions take any length; a huge capacity is still refused by the caches' sizes only.
            Assert.Equal("t5", family[..2]);
            return;
        }

        var ids = new int[model.MaxSourcePositions + 1];
        Array.Fill(ids, model.SpecialTokens.EosTokenId);
        var error = Assert.Throws<ArgumentException>(() => model.Encode(ids, default, 1, 4));
        Assert.Contains($"at most {model.MaxSourcePositions}", error.Message, StringComparison.Ordinal);
        Assert.Contains("truncate", error.Message, StringComparison.Ordinal);
    }
}
