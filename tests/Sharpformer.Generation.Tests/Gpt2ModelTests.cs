using Sharpformer.IO.Config;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Models;
using Sharpformer.Models.Gpt2;
using Sharpformer.NN;
using Sharpformer.Tensors;

namespace Sharpformer.Generation.Tests;

public class Gpt2ModelTests
{
    private static readonly Lazy<Gpt2LMHeadModel> Model = new(Fixture.LoadModel);

    private static readonly object Gate = new(); // the model reuses buffers: one call at a time

    [Fact]
    public void Forward_FixturePrompts_LogitsMatchPyTorch()
    {
        var expected = Fixture.Expected.GetProperty("logits").EnumerateArray().Select(Fixture.Floats).ToArray();
        var prompts = Fixture.Prompts;
        for (int i = 0; i < prompts.Length; i++)
        {
            float[] logits;
            lock (Gate)
            {
                logits = Model.Value.Forward(prompts[i], 1).Logits.ToArray();
            }

            Assert.True(Fixture.MaxAbsDiff(expected[i], logits) <= Tolerances.LogitsVsTorch, $"prompt {i}: max |Δ| = {Fixture.MaxAbsDiff(expected[i], logits)}");
        }
    }

    [Fact]
    public void Forward_LeftPaddedBatch_MatchesPyTorchAndUnpaddedRuns()
    {
        var ids = Fixture.Expected.GetProperty("batch_ids").EnumerateArray().SelectMany(Fixture.Ints).ToArray();
        var mask = Fixture.Expected.GetProperty("batch_mask").EnumerateArray().SelectMany(e => Fixture.Floats(e)).ToArray();
        var expected = Fixture.Floats(Fixture.Expected.GetProperty("batch_logits"));
        var prompts = Fixture.Prompts;
        int v = Model.Value.VocabSize, t = ids.Length / 2;
        float[] batch;
        float[][] singles;
        lock (Gate)
        {
            batch = Model.Value.Forward(ids, 2, mask).Logits.ToArray();
            singles = [.. prompts.Select(p => Model.Value.Forward(p, 1).Logits.ToArray())];
        }

        for (int b = 0; b < 2; b++)
        {
            int pad = t - prompts[b].Length;
            // Only real positions: padded queries see no key, and their outputs are never used.
            var ours = batch.AsSpan((b * t + pad) * v, prompts[b].Length * v);
            var torch = expected.AsSpan((b * t + pad) * v, prompts[b].Length * v);
            Assert.True(Fixture.MaxAbsDiff(torch, ours) <= Tolerances.LogitsVsTorch, $"row {b} vs torch: {Fixture.MaxAbsDiff(torch, ours)}");
            Assert.True(Fixture.MaxAbsDiff(singles[b], ours) <= Tolerances.SameModelPaths, $"row {b} vs unpadded: {Fixture.MaxAbsDiff(singles[b], ours)}");
        }
    }

    [Fact]
    public void ForwardLast_KvCacheOneTokenAtATime_EqualsFullSequenceLogits()
    {
        var prompt = Fixture.Prompts[1];
        var model = Model.Value;
        int v = model.VocabSize;
        lock (Gate)
        {
            var full = model.Forward(prompt, 1).Logits.ToArray();
            var cache = model.CreateCache(1, prompt.Length);
            var step = new float[v];
            for (int t = 0; t < prompt.Length; t++)
            {
                model.ForwardLast([prompt[t]], default, cache, step);
                Assert.True(Fixture.MaxAbsDiff(full.AsSpan(t * v, v), step) <= Tolerances.SameModelPaths, $"position {t}");
            }

            Assert.Equal(prompt.Length, cache.Length);
        }
    }

    [Fact]
    public void Forward_PrefixThenRestThroughCache_EqualsOnePass()
    {
        var prompt = Fixture.Prompts[1];
        var model = Model.Value;
        int v = model.VocabSize;
        lock (Gate)
        {
            var full = model.Forward(prompt, 1).Logits.ToArray();
            var cache = model.CreateCache(1, prompt.Length);
            model.Forward(prompt[..3], 1, cache: cache);
            var rest = model.Forward(prompt[3..], 1, cache: cache).Logits.ToArray();
            Assert.True(Fixture.MaxAbsDiff(full.AsSpan(3 * v), rest) <= Tolerances.SameModelPaths);
        }
    }

    [Fact]
    public void Forward_OutputAttentionsAndHiddenStates_HfShapesAndRowsSumToOne()
    {
        var prompt = Fixture.Prompts[0];
        var config = Model.Value.Config;
        Gpt2Output output;
        float[] logits;
        lock (Gate)
        {
            output = Model.Value.Forward(prompt, 1, outputAttentions: true, outputHiddenStates: true);
            logits = Model.Value.Forward(prompt, 1).Logits.ToArray();
        }

        Assert.Equal(logits, output.Logits.ToArray());
        Assert.Equal(config.NumHiddenLayers + 1, output.HiddenStates!.Count);
        Assert.All(output.HiddenStates, h => Assert.Equal(new Shape(1, prompt.Length, config.HiddenSize), h.Shape));
        Assert.Equal(config.NumHiddenLayers, output.Attentions!.Count);
        foreach (var a in output.Attentions)
        {
            Assert.Equal(new Shape(1, config.NumAttentionHeads, prompt.Length, prompt.Length), a.Shape);
            var p = a.ToArray();
            for (int row = 0; row < p.Length / prompt.Length; row++)
            {
                int query = row % prompt.Length;
                Assert.Equal(1f, p.AsSpan(row * prompt.Length, prompt.Length).ToArray().Sum(), 4);
                // Causal: no weight on future keys.
                Assert.All(p.AsSpan(row * prompt.Length + query + 1, prompt.Length - query - 1).ToArray(), x => Assert.Equal(0f, x));
            }
        }
    }

    [Fact]
    public void FromWeights_CheckpointWithoutTransformerPrefix_SameLogits()
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "gpt2-noprefix-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        using (var source = SafeTensorsLoader.Open(Fixture.Folder))
        {
            // Old checkpoints name tensors h.0.…, wte.…; the attn.bias buffers are dropped here too.
            var tensors = source.Tensors
                .Where(t => !t.Name.EndsWith(".attn.bias", StringComparison.Ordinal))
                .Select(t => (t.Name.Replace("transformer.", "", StringComparison.Ordinal), source.GetTensorAsF32(t.Name).Contiguous()))
                .ToList();
            SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors);
        }

        var config = (Gpt2Config)ModelConfig.Load(Fixture.Folder);
        using var weights = SafeTensorsLoader.Open(dir);
        var stripped = Gpt2LMHeadModel.FromWeights(config, weights);
        float[] expected;
        lock (Gate)
        {
            expected = Model.Value.Forward(Fixture.Prompts[0], 1).Logits.ToArray();
        }

        Assert.Equal(expected, stripped.Forward(Fixture.Prompts[0], 1).Logits.ToArray());
    }

    [Fact]
    public void FromPretrained_Fixture_ReportHasNoMissingOrUnusedTensors()
    {
        var report = Model.Value.LoadReport!;
        Assert.Empty(report.Missing);
        Assert.Empty(report.Unused);
        Assert.Contains("transformer.h.1.mlp.c_proj.weight", report.Loaded);
    }

    [Fact]
    public void Forward_ConfigSwitches_MatchPyTorch()
    {
        // scale_attn_weights false + scale_attn_by_inverse_layer_idx + relu, and exact-erf "gelu", on the same weights.
        foreach (var variant in Fixture.Expected.GetProperty("variants").EnumerateArray())
        {
            var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(Fixture.Folder, "config.json")))!.AsObject();
            foreach (var property in variant.GetProperty("config").EnumerateObject())
            {
                json[property.Name] = System.Text.Json.Nodes.JsonNode.Parse(property.Value.GetRawText());
            }

            var config = (Gpt2Config)ModelConfig.Parse(json.ToJsonString());
            using var weights = SafeTensorsLoader.Open(Fixture.Folder);
            var model = Gpt2LMHeadModel.FromWeights(config, weights);
            var logits = model.Forward(Fixture.Ints(variant.GetProperty("prompt")), 1).Logits.ToArray();
            var expected = Fixture.Floats(variant.GetProperty("logits"));
            Assert.True(Fixture.MaxAbsDiff(expected, logits) <= Tolerances.LogitsVsTorch, $"{variant.GetProperty("config")}: max |Δ| = {Fixture.MaxAbsDiff(expected, logits)}");
        }
    }

    [Fact]
    public void FromWeights_MissingTensor_ErrorNamesIt()
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "gpt2-missing-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        using (var source = SafeTensorsLoader.Open(Fixture.Folder))
        {
            var tensors = source.Tensors
                .Where(t => t.Name != "transformer.h.1.mlp.c_fc.weight")
                .Select(t => (t.Name, source.GetTensorAsF32(t.Name).Contiguous()))
                .ToList();
            SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors);
        }

        var config = (Gpt2Config)ModelConfig.Load(Fixture.Folder);
        using var weights = SafeTensorsLoader.Open(dir);
        var error = Assert.Throws<ModelLoadException>(() => Gpt2LMHeadModel.FromWeights(config, weights));
        Assert.Contains("transformer.h.1.mlp.c_fc.weight", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Forward_TokenOutsideVocabulary_ClearError()
    {
        var error = Assert.Throws<ArgumentException>(() => Model.Value.Forward([1, 999], 1));
        Assert.Contains("999", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ForwardLast_CacheFull_ClearError()
    {
        lock (Gate)
        {
            var cache = Model.Value.CreateCache(1, 2);
            var logits = new float[Model.Value.VocabSize];
            Model.Value.ForwardLast([1, 2], default, cache, logits);
            var error = Assert.Throws<ArgumentException>(() => Model.Value.ForwardLast([3], default, cache, logits));
            Assert.Contains("capacity", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void ForwardLast_CacheOfAnotherShape_ClearError()
    {
        var logits = new float[Model.Value.VocabSize];
        var error = Assert.Throws<ArgumentException>(() => Model.Value.ForwardLast([1], default, new KvCache(1, 1, 4, 3), logits));
        Assert.Contains("CreateCache", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void KvCache_Reorder_CopiesSequencesAndPositions()
    {
        var cache = new KvCache(1, 2, 4, 3);
        var positions = new int[2];
        cache.Advance([1f, 0f], 1, positions);
        Assert.Equal([0, 1], positions);
        cache.Keys(0)[0] = 5f; // sequence 0, row 0
        cache.Reorder([0, 0]);
        Assert.Equal(5f, cache.Keys(0)[4 * 3]);
        Assert.Equal(1, cache.NextPosition(1));
        Assert.Equal(1f, cache.Mask[4]);
    }
}

public class AutoModelForCausalLMTests
{
    [Fact]
    public void FromPretrained_Gpt2Folder_IsGpt2LMHeadModel()
    {
        var model = AutoModelForCausalLM.FromPretrained(Fixture.Folder);
        Assert.IsType<Gpt2LMHeadModel>(model);
        Assert.Equal(257, model.VocabSize);
        Assert.Equal(48, model.MaxPositions);
    }
}
