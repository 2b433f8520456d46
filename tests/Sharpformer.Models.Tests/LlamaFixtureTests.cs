using System.Text.Json;
using Sharpformer.IO.Config;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Models.Llama;
using Sharpformer.Tensors;

namespace Sharpformer.Models.Tests;

/// <summary>
/// The Llama family against tests/fixtures/llama/make_fixture.py (PyTorch, HF's modeling_llama math by hand): tiny random
/// Llama (GQA, untied, llama3 rope scaling), Llama with attention/MLP biases, tied embeddings and linear scaling,
/// Mistral (sliding window 5), Qwen2 (q/k/v biases, tied, window 4 from layer 1), Phi-3 (fused projections). Logits on
/// both paths, a left-padded batch, greedy continuations through the KV cache, and one training batch's loss and
/// every parameter's gradient.
/// </summary>
public class LlamaFixtureTests
{
    public static TheoryData<string> Cases => new() { "llama", "llama_bias", "mistral", "qwen2", "phi3" };

    private static string Folder(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "llama", name);

    private static JsonElement Expected(string name) => JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder(name), "expected.json"))).RootElement;

    private static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();

    private static float[] Floats(JsonElement e) => e.EnumerateArray().Select(x => x.GetSingle()).ToArray();

    [Theory]
    [MemberData(nameof(Cases))]
    public void Logits_BothPaths_MatchPyTorch(string name)
    {
        var model = LlamaForCausalLM.FromPretrained(Folder(name));
        Assert.Equal(name.StartsWith("llama", StringComparison.Ordinal) ? "llama" : name, model.Config.ModelType);
        Assert.Empty(model.LoadReport!.Missing);
        Assert.Empty(model.LoadReport.Unused);
        var expected = Expected(name);
        var prompts = expected.GetProperty("prompts").EnumerateArray().Select(Ints).ToArray();
        var logits = expected.GetProperty("logits").EnumerateArray().Select(Floats).ToArray();
        for (int p = 0; p < prompts.Length; p++)
        {
            var ids = Tensor.FromArray(prompts[p], new Shape(1, prompts[p].Length));
            var modules = model.Forward(ids);
            Assert.True(modules.Logits.RequiresGrad, "eval mode with gradients enabled runs the module path");
            float diff = OnnxParityTests.MaxAbsDiff(logits[p], modules.Logits.ToArray());
            Assert.True(diff <= Tolerances.VsReference, $"{name} prompt {p}: module path max |Δlogit| = {diff}");
            using var noGrad = Autograd.NoGrad();
            var fast = model.Forward(ids);
            diff = OnnxParityTests.MaxAbsDiff(logits[p], fast.Logits.ToArray());
            Assert.True(diff <= Tolerances.VsReference, $"{name} prompt {p}: fast path max |Δlogit| = {diff}");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void LeftPaddedBatch_RealPositions_MatchPyTorch(string name)
    {
        var model = LlamaForCausalLM.FromPretrained(Folder(name));
        var expected = Expected(name);
        var rows = expected.GetProperty("batch_ids").EnumerateArray().Select(Ints).ToArray();
        var mask = expected.GetProperty("batch_mask").EnumerateArray().SelectMany(Ints).Select(m => (float)m).ToArray();
        var want = Floats(expected.GetProperty("batch_logits"));
        int batch = rows.Length, tokens = rows[0].Length, v = model.VocabSize;
        var fast = model.Forward(rows.SelectMany(r => r).ToArray(), batch, mask).Logits.ToArray();
        var modules = model.Forward(Tensor.FromArray(rows.SelectMany(r => r).ToArray(), new Shape(batch, tokens)), Tensor.FromArray(mask, new Shape(batch, tokens))).Logits.ToArray();
        for (int r = 0; r < batch * tokens; r++)
        {
            if (mask[r] == 0f)
            {
                continue;
            }

            for (int i = 0; i < v; i++)
            {
                Assert.True(Math.Abs(fast[r * v + i] - want[r * v + i]) <= Tolerances.VsReference, $"{name} row {r} logit {i}: fast {fast[r * v + i]} vs {want[r * v + i]}");
                Assert.True(Math.Abs(modules[r * v + i] - want[r * v + i]) <= Tolerances.VsReference, $"{name} row {r} logit {i}: modules {modules[r * v + i]} vs {want[r * v + i]}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Greedy_ThroughKvCache_MatchesPyTorch(string name)
    {
        var model = LlamaForCausalLM.FromPretrained(Folder(name));
        var expected = Expected(name);
        var prompts = expected.GetProperty("prompts").EnumerateArray().Select(Ints).ToArray();
        var greedy = expected.GetProperty("greedy").EnumerateArray().Select(Ints).ToArray();
        for (int p = 0; p < prompts.Length; p++)
        {
            var cache = model.CreateCache(1, prompts[p].Length + greedy[p].Length);
            var logits = new float[model.VocabSize];
            model.ForwardLast(prompts[p], default, cache, logits);
            var produced = new List<int>();
            for (int step = 0; step < greedy[p].Length; step++)
            {
                int next = ArgMax(logits);
                produced.Add(next);
                model.ForwardLast([next], default, cache, logits);
            }

            Assert.Equal(greedy[p], produced);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Slots_DecodeTogether_EqualOneByOne(string name)
    {
        var model = LlamaForCausalLM.FromPretrained(Folder(name));
        var prompts = Expected(name).GetProperty("prompts").EnumerateArray().Select(Ints).ToArray();
        int v = model.VocabSize;
        foreach (var type in new[] { DType.F32, DType.F16 })
        {
            // Both cache types (llama.cpp's F16 as well): slots decoded together equal each decoded alone.
            model.KvCacheType = type;
            var cache = model.CreateCache(2, 24);
            Assert.Equal(type, cache.ElementType);
            var first = new float[v];
            var second = new float[v];
            model.ForwardSlots([1], prompts[1], cache, second);
            model.ForwardSlots([0], prompts[0], cache, first);
            var both = new float[2 * v];
            model.ForwardSlots([0, 1], [ArgMax(first), ArgMax(second)], cache, both);

            foreach (var (p, slot) in new[] { (0, 0), (1, 1) })
            {
                var alone = model.CreateCache(1, 24);
                var logits = new float[v];
                model.ForwardLast(prompts[p], default, alone, logits);
                model.ForwardLast([ArgMax(logits)], default, alone, logits);
                float diff = OnnxParityTests.MaxAbsDiff(logits, both.AsSpan(slot * v, v).ToArray());
                Assert.True(diff <= Tolerances.FastVsModules, $"{name}, {type} cache, slot {slot}: max |Δ| vs alone = {diff}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TrainingStep_LossAndGradients_MatchPyTorch(string name)
    {
        var model = LlamaForCausalLM.FromPretrained(Folder(name));
        model.Train();
        var expected = Expected(name);
        var rows = expected.GetProperty("train_ids").EnumerateArray().Select(Ints).ToArray();
        var ids = Tensor.FromArray(rows.SelectMany(r => r).ToArray(), new Shape(rows.Length, rows[0].Length));
        var loss = model.Forward(ids, labels: ids).Loss!;
        float want = expected.GetProperty("train_loss").GetSingle();
        Assert.True(Math.Abs(loss.ToArray()[0] - want) <= Tolerances.VsReference, $"{name}: loss {loss.ToArray()[0]} vs {want}");
        loss.Backward();

        using var grads = SafeTensorsFile.Open(Path.Combine(Folder(name), "expected_grads.safetensors"));
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (param, parameter) in model.NamedParameters())
        {
            names.Add(param);
            var reference = grads.GetTensorAsF32(param).ToArray();
            var ours = parameter.Value.Grad!.ToArray();
            float diff = OnnxParityTests.MaxAbsDiff(reference, ours);
            float scale = Math.Max(1f, reference.Max(Math.Abs));
            Assert.True(diff <= Tolerances.VsReference * scale, $"{name} {param}: max |Δgrad| = {diff} (|g| up to {scale})");
        }

        Assert.Equal(grads.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal), names.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void F16Weights_LogitsCloseToF32()
    {
        var f32 = LlamaForCausalLM.FromPretrained(Folder("llama"));
        var f16 = LlamaForCausalLM.FromPretrained(Folder("llama"), DType.F16);
        Assert.Equal(DType.F16, f16.WeightType);
        int[] prompt = [5, 17, 42, 8, 33, 71, 2];
        var a = f32.Forward(prompt, 1).Logits.ToArray();
        var b = f16.Forward(prompt, 1).Logits.ToArray();
        float diff = OnnxParityTests.MaxAbsDiff(a, b);
        Assert.True(diff <= 0.05f, $"F16 vs F32 max |Δlogit| = {diff}");
        Assert.True(diff > 0f, "F16 weights should round something");
    }

    [Fact]
    public void ShardedBf16Checkpoint_LoadsAndMatchesF32WithinBf16Rounding()
    {
        var dir = Path.Combine(Path.GetTempPath(), "llama-sharded-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            File.Copy(Path.Combine(Folder("qwen2"), "config.json"), Path.Combine(dir, "config.json"));
            var reference = LlamaForCausalLM.FromPretrained(Folder("qwen2"));
            using (var source = SafeTensorsFile.Open(Path.Combine(Folder("qwen2"), "model.safetensors")))
            {
                var tensors = source.Tensors.Select(t => (t.Name, source.GetTensorAsF32(t.Name).To(DType.BF16))).ToList();
                var shards = SafeTensorsWriter.WriteSharded(dir, tensors, maxShardBytes: 8 * 1024);
                Assert.True(shards.Count > 2, $"expected several shards, got {shards.Count}");
            }

            var model = Assert.IsType<LlamaForCausalLM>(AutoModelForCausalLM.FromPretrained(dir));
            Assert.Empty(model.LoadReport!.Missing);
            int[] prompt = [60, 12, 9, 88, 45, 3, 27, 50];
            float diff = OnnxParityTests.MaxAbsDiff(reference.Forward(prompt, 1).Logits.ToArray(), model.Forward(prompt, 1).Logits.ToArray());
            Assert.True(diff > 0f && diff <= 0.1f, $"BF16 checkpoint vs F32 max |Δlogit| = {diff}");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void AutoModel_ByModelType_BuildsLlamaAndFromConfigTrains()
    {
        Assert.IsType<LlamaForCausalLM>(AutoModelForCausalLM.FromPretrained(Folder("phi3")));
        var config = (LlamaConfig)ModelConfig.Load(Folder("mistral"));
        var model = Assert.IsType<LlamaForCausalLM>(AutoModelForCausalLM.FromConfig(config, seed: 7));
        Assert.True(model.Training);
        var ids = Tensor.FromArray(new[] { 1, 5, 9, 13, 17, 21, 25, 29 }, new Shape(1, 8));
        var loss = ((ILanguageModel)model).LanguageModelingLoss(ids, null, ids);
        loss.Backward();
        Assert.All(model.NamedParameters(), p => Assert.NotNull(p.Parameter.Value.Grad));
        // HF init: RMSNorm weights 1, projections normal(0, initializer_range).
        Assert.All(model.Model.Norm.Weight.Value.ToArray(), w => Assert.Equal(1f, w));
        var q = model.Model.Layers[0].SelfAttn.QProj!.Weight.Value.ToArray();
        double std = Math.Sqrt(q.Select(x => (double)x * x).Average());
        Assert.InRange(std, 0.015, 0.025);
    }

    [Fact]
    public void AttentionDropout_TrainingOnly_ChangesLossAndKeepsGradients()
    {
        var json = File.ReadAllText(Path.Combine(Folder("llama"), "config.json")).Replace("\"torch_dtype\"", "\"attention_dropout\": 0.5, \"torch_dtype\"", StringComparison.Ordinal);
        var config = (LlamaConfig)ModelConfig.Parse(json);
        using var weights = SafeTensorsLoader.Open(Folder("llama"));
        var model = LlamaForCausalLM.FromWeights(config, weights);
        var ids = Tensor.FromArray(new[] { 5, 17, 42, 8, 33, 71, 2 }, new Shape(1, 7));
        float eval = model.Forward(ids, labels: ids).Loss!.ToArray()[0];
        Assert.True(float.IsFinite(eval));
        model.Train();
        var loss = model.Forward(ids, labels: ids).Loss!;
        Assert.NotEqual(eval, loss.ToArray()[0]);
        loss.Backward();
        Assert.NotNull(model.Model.Layers[0].SelfAttn.QProj!.Weight.Value.Grad);
        model.Model.Layers[0].SelfAttn.AttentionDropout.P = 0f;
        model.Model.Layers[1].SelfAttn.AttentionDropout.P = 0f;
        Assert.Equal(eval, model.Forward(ids, labels: ids).Loss!.ToArray()[0], 5);
    }

    [Fact]
    public void Phi3_LongRope_SwitchesTablesPastOriginalContext()
    {
        var json = File.ReadAllText(Path.Combine(Folder("phi3"), "config.json"));
        var config = (LlamaConfig)ModelConfig.Parse(json.Replace("\"torch_dtype\"", "\"original_max_position_embeddings\": 16, \"rope_scaling\": {\"type\": \"su\", \"short_factor\": [1, 1, 1, 1], \"long_factor\": [1, 2, 4, 8]}, \"torch_dtype\"", StringComparison.Ordinal));
        var rotary = new LlamaRotary(config);
        Assert.Equal("longrope", rotary.RopeType);
        Assert.Equal(16, rotary.SwitchAbove);
        var shortTable = rotary.For(15);
        var longTable = rotary.For(16);
        Assert.NotSame(shortTable, longTable);
        // cos at position 0 is the attention factor √(1 + ln(64/16) / ln 16) in both tables.
        float factor = (float)Math.Sqrt(1 + (Math.Log(4) / Math.Log(16)));
        Assert.Equal(factor, shortTable.Cos.ToArray()[0], 5);
        // Position 1, frequency 3: θ = base^(-6/8) / ext.
        float theta = 1f / MathF.Pow(10000f, 6f / 8f);
        Assert.Equal(MathF.Cos(theta / 8f) * factor, longTable.Cos.ToArray()[8 + 3], 5);
        Assert.Equal(MathF.Cos(theta) * factor, shortTable.Cos.ToArray()[8 + 3], 5);
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
