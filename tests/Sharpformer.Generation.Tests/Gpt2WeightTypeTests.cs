using Sharpformer.IO.Config;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Models;
using Sharpformer.Models.Gpt2;
using Sharpformer.NN;
using Sharpformer.Tensors;

namespace Sharpformer.Generation.Tests;

/// <summary>
/// GPT-2 with its matrices kept in F16 or BF16 (the load-time dtype) against the F32 model on the same values: weights
/// made exactly representable in the narrow type first, so both models compute the same function and differ only by
/// the order of float sums (decode: Gemv; prefill: the GEMM, widening the weight as it packs it).
/// </summary>
public class Gpt2WeightTypeTests
{
    // V = 33000 is not a whole number of GEMM panels (the tied head's last panel is part filled). T = 20 prompt tokens
    // run the GEMM path (the weight widened as its panels are packed); decode steps (B ≤ 8 rows) run Gemv.
    private const int Vocab = 33000;
    private const int Embd = 128;

    private static readonly Gpt2Config Config = (Gpt2Config)ModelConfig.Parse($$"""
        {
          "model_type": "gpt2", "vocab_size": {{Vocab}}, "n_positions": 64, "n_embd": {{Embd}}, "n_layer": 2, "n_head": 4,
          "activation_function": "gelu_new", "layer_norm_epsilon": 1e-05
        }
        """);

    private static readonly Lazy<Dictionary<string, Tensor>> F16Weights = new(() => RandomWeights(DType.F16));
    private static readonly Lazy<Dictionary<string, Tensor>> BF16Weights = new(() => RandomWeights(DType.BF16));

    public static TheoryData<DType> NarrowTypes => [DType.F16, DType.BF16];

    [Theory]
    [MemberData(nameof(NarrowTypes))]
    public void Forward_RepresentableWeightsPrefill_MatchesF32Model(DType dtype)
    {
        var weights = Weights(dtype);
        var narrow = Build(weights, dtype);
        var wide = Build(weights, DType.F32);
        Assert.Equal(dtype, narrow.WeightType);
        Assert.Equal(DType.F32, wide.WeightType);

        var ids = Prompt(20, seed: 1);
        var expected = wide.Forward(ids, 1).Logits.ToArray();
        var actual = narrow.Forward(ids, 1).Logits.ToArray();
        AssertClose(expected, actual, Tolerances.LogitsVsTorch, "prefill B=1");

        // Left-padded batch of 3 (rows 1 and 2 padded by 5 and 11).
        var (batchIds, mask) = LeftPadded(20, [0, 5, 11]);
        expected = wide.Forward(batchIds, 3, mask).Logits.ToArray();
        actual = narrow.Forward(batchIds, 3, mask).Logits.ToArray();
        for (int b = 0; b < 3; b++)
        {
            // Real positions only: a padded query attends to nothing and its output is never used.
            int pad = mask.AsSpan(b * 20, 20).IndexOf(1f);
            var range = new Range((b * 20 + pad) * Vocab, (b + 1) * 20 * Vocab);
            AssertClose(expected[range], actual[range], Tolerances.LogitsVsTorch, $"prefill B=3 left-padded, row {b}");
        }
    }

    [Theory]
    [MemberData(nameof(NarrowTypes))]
    public void ForwardLast_RepresentableWeightsDecodeWithCache_MatchesF32Model(DType dtype)
    {
        var weights = Weights(dtype);
        var narrow = Build(weights, dtype);
        var wide = Build(weights, DType.F32);
        foreach (int batch in new[] { 1, 3 })
        {
            var (ids, mask) = batch == 1 ? (Prompt(12, seed: 2), new float[12]) : LeftPadded(12, [0, 4, 9]);
            if (batch == 1)
            {
                Array.Fill(mask, 1f);
            }

            var narrowCache = narrow.CreateCache(batch, 24);
            var wideCache = wide.CreateCache(batch, 24);
            var expected = new float[batch * Vocab];
            var actual = new float[batch * Vocab];
            wide.ForwardLast(ids, mask, wideCache, expected);
            narrow.ForwardLast(ids, mask, narrowCache, actual);
            AssertClose(expected, actual, Tolerances.LogitsVsTorch, $"B={batch} prefill into the cache");

            var step = new int[batch];
            var stepMask = Enumerable.Repeat(1f, batch).ToArray();
            for (int t = 0; t < 6; t++)
            {
                for (int b = 0; b < batch; b++)
                {
                    step[b] = (7919 * (t + 1) + 104729 * b) % Vocab;
                }

                wide.ForwardLast(step, stepMask, wideCache, expected);
                narrow.ForwardLast(step, stepMask, narrowCache, actual);
                AssertClose(expected, actual, Tolerances.LogitsVsTorch, $"B={batch} decode step {t}");
            }
        }
    }

    [Fact]
    public void Generate_GreedyF16RepresentableModel_SameTokensAsF32()
    {
        var weights = Weights(DType.F16);
        var narrow = Build(weights, DType.F16);
        var wide = Build(weights, DType.F32);
        var options = new GenerationOptions { MaxNewTokens = 30 };
        foreach (int seed in new[] { 3, 4 })
        {
            var prompt = Prompt(10, seed);
            var expected = new TextGenerator(wide).Generate(prompt, options).Tokens;
            Assert.Equal(expected, new TextGenerator(narrow).Generate(prompt, options).Tokens);
            // Not a degenerate model: greedy does not just repeat one token.
            Assert.True(expected.Distinct().Count() > 3, $"greedy continuation {string.Join(",", expected)}");
        }
    }

    [Fact]
    public void FromWeights_CheckpointStoredInF16_LoadsAsF16AndAsF32Alike()
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "gpt2-f16-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        // The matrices stored as F16 (as a `torch_dtype=float16` save does), norms, biases and wpe as F32.
        var stored = Weights(DType.F16)
            .Select(kv => (kv.Key, IsMatrix(kv.Key) ? kv.Value.To(DType.F16) : kv.Value))
            .ToList();
        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), stored);

        using var weights = SafeTensorsLoader.Open(dir);
        Assert.Equal(SafeTensorsDType.F16, weights.GetInfo("transformer.h.0.attn.c_attn.weight").DType);
        var asF16 = Gpt2LMHeadModel.FromWeights(Config, weights, DType.F16);
        asF16.KvCacheType = DType.F32; // the weights' type alone
        var asF32 = Gpt2LMHeadModel.FromWeights(Config, weights, DType.F32);
        Assert.Equal(DType.F16, asF16.WeightType);

        // Loaded as F16, nothing was widened; loaded as F32, exactly the stored matrices were.
        Assert.Empty(asF16.LoadReport!.Converted);
        Assert.Equal(stored.Where(t => IsMatrix(t.Key)).Select(t => t.Key).Order(StringComparer.Ordinal), asF32.LoadReport!.Converted.Order(StringComparer.Ordinal));
        Assert.Empty(asF16.LoadReport.Missing);
        Assert.Empty(asF16.LoadReport.Unused);

        var ids = Prompt(16, seed: 5);
        AssertClose(asF32.Forward(ids, 1).Logits.ToArray(), asF16.Forward(ids, 1).Logits.ToArray(), Tolerances.LogitsVsTorch, "stored F16");

        // And the F32 model built from the F32 copy of the same values agrees with both.
        var reference = Build(Weights(DType.F16), DType.F32);
        Assert.Equal(reference.Forward(ids, 1).Logits.ToArray(), asF32.Forward(ids, 1).Logits.ToArray());
    }

    [Fact]
    public void FromPretrained_FixtureAsF16_CloseToPyTorchF32()
    {
        var expected = Fixture.Expected.GetProperty("logits").EnumerateArray().Select(Fixture.Floats).ToArray();
        var model = Gpt2LMHeadModel.FromPretrained(Fixture.Folder, DType.F16);
        var prompts = Fixture.Prompts;
        for (int i = 0; i < prompts.Length; i++)
        {
            var logits = model.Forward(prompts[i], 1).Logits.ToArray();
            float diff = Fixture.MaxAbsDiff(expected[i], logits);
            Assert.True(diff <= Tolerances.LogitsF16WeightsVsTorch, $"prompt {i}: max |Δ| = {diff}");
        }

        // The rounding is real: the F16 model is not the F32 one bit for bit.
        var f32 = Gpt2LMHeadModel.FromPretrained(Fixture.Folder).Forward(prompts[0], 1).Logits.ToArray();
        Assert.True(Fixture.MaxAbsDiff(f32, model.Forward(prompts[0], 1).Logits.ToArray()) > 0f);
    }

    [Fact]
    public void FromPretrained_FixtureAsBF16_CloseToPyTorchF32()
    {
        var expected = Fixture.Expected.GetProperty("logits").EnumerateArray().Select(Fixture.Floats).ToArray();
        var model = Gpt2LMHeadModel.FromPretrained(Fixture.Folder, DType.BF16);
        var prompts = Fixture.Prompts;
        for (int i = 0; i < prompts.Length; i++)
        {
            var logits = model.Forward(prompts[i], 1).Logits.ToArray();
            float diff = Fixture.MaxAbsDiff(expected[i], logits);
            Assert.True(diff <= Tolerances.LogitsBF16WeightsVsTorch, $"prompt {i}: max |Δ| = {diff}");
        }
    }

    [Fact]
    public void AutoModelForCausalLM_F16_LoadsGpt2WithF16Weights()
    {
        var model = Assert.IsType<Gpt2LMHeadModel>(AutoModelForCausalLM.FromPretrained(Fixture.Folder, DType.F16));
        Assert.Equal(DType.F16, model.WeightType);
    }

    [Theory]
    [InlineData(DType.I32)]
    [InlineData(DType.I64)]
    public void FromVarBuilder_IntegerWeightType_ErrorNamesAllowedTypes(DType dtype)
    {
        var error = Assert.Throws<ArgumentException>(() => Gpt2LMHeadModel.FromVarBuilder(Config, VarBuilder.FromInit(), dtype));
        Assert.Contains(dtype.ToString(), error.Message, StringComparison.Ordinal);
        Assert.Contains("F16", error.Message, StringComparison.Ordinal);
        Assert.Contains("BF16", error.Message, StringComparison.Ordinal);
    }

    /// <summary>The model through a VarBuilder over the tensor map (rooted at the body, as FromVarBuilder expects).</summary>
    /// <remarks>The KV cache stays F32 whatever the weights' type (these tests compare the weights' type alone).</remarks>
    private static Gpt2LMHeadModel Build(Dictionary<string, Tensor> weights, DType dtype)
    {
        var model = Gpt2LMHeadModel.FromVarBuilder(Config, VarBuilder.FromTensors(weights).Push("transformer"), dtype);
        model.KvCacheType = DType.F32;
        return model;
    }

    private static Dictionary<string, Tensor> Weights(DType dtype) => dtype == DType.F16 ? F16Weights.Value : BF16Weights.Value;

    private static bool IsMatrix(string name) => name.EndsWith(".weight", StringComparison.Ordinal) && !name.Contains("ln_", StringComparison.Ordinal) && !name.Contains("wpe", StringComparison.Ordinal);

    /// <summary>A random GPT-2 in HF naming (Conv1D [in, out]); the matrices rounded to values <paramref name="representable"/> holds exactly, kept as F32.</summary>
    private static Dictionary<string, Tensor> RandomWeights(DType representable)
    {
        var rng = new Random(42);
        const int c = Embd, ff = 4 * Embd;
        Tensor N(int[] shape, float std, float mean = 0f) => Tensor.RandomNormal(shape, rng, mean, std);
        var tensors = new Dictionary<string, Tensor>
        {
            // wte std 0.1 spreads the logits, so greedy tokens have clear margins.
            ["transformer.wte.weight"] = N([Vocab, c], 0.1f),
            ["transformer.wpe.weight"] = N([64, c], 0.05f),
            ["transformer.ln_f.weight"] = N([c], 0.1f, 1f),
            ["transformer.ln_f.bias"] = N([c], 0.02f),
        };
        for (int i = 0; i < 2; i++)
        {
            var p = $"transformer.h.{i}.";
            tensors[p + "ln_1.weight"] = N([c], 0.1f, 1f);
            tensors[p + "ln_1.bias"] = N([c], 0.02f);
            tensors[p + "attn.c_attn.weight"] = N([c, 3 * c], 0.1f);
            tensors[p + "attn.c_attn.bias"] = N([3 * c], 0.02f);
            tensors[p + "attn.c_proj.weight"] = N([c, c], 0.05f);
            tensors[p + "attn.c_proj.bias"] = N([c], 0.02f);
            tensors[p + "ln_2.weight"] = N([c], 0.1f, 1f);
            tensors[p + "ln_2.bias"] = N([c], 0.02f);
            tensors[p + "mlp.c_fc.weight"] = N([c, ff], 0.1f);
            tensors[p + "mlp.c_fc.bias"] = N([ff], 0.02f);
            tensors[p + "mlp.c_proj.weight"] = N([ff, c], 0.05f);
            tensors[p + "mlp.c_proj.bias"] = N([c], 0.02f);
        }

        foreach (var name in tensors.Keys.Where(IsMatrix).ToList())
        {
            tensors[name] = tensors[name].To(representable).To(DType.F32);
        }

        return tensors;
    }

    private static int[] Prompt(int length, int seed)
    {
        var rng = new Random(seed);
        return [.. Enumerable.Range(0, length).Select(_ => rng.Next(Vocab))];
    }

    /// <summary>[3, T] ids, row b left-padded by pads[b] (pad id 0, mask 0).</summary>
    private static (int[] Ids, float[] Mask) LeftPadded(int tokens, int[] pads)
    {
        var ids = new int[pads.Length * tokens];
        var mask = new float[ids.Length];
        for (int b = 0; b < pads.Length; b++)
        {
            var prompt = Prompt(tokens - pads[b], seed: 10 + b);
            prompt.CopyTo(ids, b * tokens + pads[b]);
            mask.AsSpan(b * tokens + pads[b], prompt.Length).Fill(1f);
        }

        return (ids, mask);
    }

    private static void AssertClose(float[] expected, float[] actual, float tolerance, string what)
    {
        float diff = Fixture.MaxAbsDiff(expected, actual);
        Assert.True(diff <= tolerance, $"{what}: max |Δlogit| = {diff:E3} > {tolerance:E0}");
        // Logits that spread far beyond the tolerance: a transposed or misread matrix would show.
        Assert.True(expected.Max() - expected.Min() > 1f, $"{what}: logits span only {expected.Max() - expected.Min()}");
    }
}
