using Sharpformer.IO.Config;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Models.Gpt2;
using Sharpformer.NN;
using Sharpformer.Tensors;

namespace Sharpformer.Models.Tests;

/// <summary>
/// GPT-2 as one module tree: the module (autograd) path against the fused inference path over the same parameters on
/// the PyTorch fixture tests/fixtures/gpt2_tiny, the loss against a hand-computed shifted cross-entropy, gradients
/// against central finite differences, the train → eval switch, F16 refusal, HF init statistics, and saving in HF layout.
/// </summary>
public class Gpt2ModuleTests
{
    private static string Folder => Path.Combine(AppContext.BaseDirectory, "fixtures", "gpt2_tiny");

    /// <summary>Two prompts of the fixture vocabulary (257 byte ids), the second left-padded by 3.</summary>
    private static readonly int[] Ids = [72, 101, 108, 108, 111, 32, 119, 111, 0, 0, 0, 84, 104, 101, 32, 99];

    private static readonly float[] Mask = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1];

    private static Tensor IdsTensor => Tensor.FromArray(Ids, new Shape(2, 8));

    private static Tensor MaskTensor => Tensor.FromArray(Mask, new Shape(2, 8));

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Forward_ModulePathLogits_EqualFastPath(bool leftPadded)
    {
        var model = Gpt2LMHeadModel.FromPretrained(Folder);
        var mask = leftPadded ? MaskTensor : null;

        // Eval mode with gradients wanted: the module path (no dropout), recording a tape.
        Assert.False(model.UsesFastPath);
        var modules = model.Forward(IdsTensor, mask);
        Assert.True(modules.Logits.RequiresGrad);

        using var noGrad = Autograd.NoGrad();
        Assert.True(model.UsesFastPath);
        var fast = model.Forward(IdsTensor, mask);
        Assert.False(fast.Logits.RequiresGrad);
        Assert.Equal(new Shape(2, 8, 257), fast.Logits.Shape);
        float diff = OnnxParityTests.MaxAbsDiff(modules.Logits.ToArray(), fast.Logits.ToArray());
        Assert.True(diff <= Tolerances.FastVsModules, $"max |Δlogit| module vs fast = {diff}");

        // And the fast path is the generation path: the int[] overload gives the same logits bit for bit.
        var generation = model.Forward(Ids, 2, leftPadded ? Mask : null).Logits.ToArray();
        Assert.Equal(fast.Logits.ToArray(), generation);
    }

    [Fact]
    public void Forward_OutputsHiddenStatesAndAttentions_SameOnBothPaths()
    {
        var model = Gpt2LMHeadModel.FromPretrained(Folder);
        var modules = model.Forward(IdsTensor, MaskTensor, outputAttentions: true, outputHiddenStates: true);
        Gpt2Output fast;
        using (Autograd.NoGrad())
        {
            fast = model.Forward(IdsTensor, MaskTensor, outputAttentions: true, outputHiddenStates: true);
        }

        Assert.Equal(model.Config.NumHiddenLayers + 1, modules.HiddenStates!.Count);
        Assert.Equal(fast.HiddenStates!.Count, modules.HiddenStates.Count);
        for (int i = 0; i < fast.HiddenStates.Count; i++)
        {
            Assert.True(OnnxParityTests.MaxAbsDiff(modules.HiddenStates[i].ToArray(), fast.HiddenStates[i].ToArray()) <= Tolerances.FastVsModules, $"hidden state {i}");
        }

        Assert.Equal(model.Config.NumHiddenLayers, modules.Attentions!.Count);
        for (int i = 0; i < fast.Attentions!.Count; i++)
        {
            Assert.Equal(fast.Attentions[i].Shape, modules.Attentions[i].Shape);
            Assert.True(OnnxParityTests.MaxAbsDiff(modules.Attentions[i].ToArray(), fast.Attentions[i].ToArray()) <= Tolerances.FastVsModules, $"attention {i}");
        }
    }

    [Fact]
    public void Forward_WithLabels_LossIsShiftedCrossEntropyOfTheLogits()
    {
        var model = Gpt2LMHeadModel.FromPretrained(Folder);
        // Labels = ids, −100 on the padding (and on one real token, to exercise the ignore index mid-sequence).
        var labels = Ids.Select((id, i) => Mask[i] == 0f || i == 4 ? -100 : id).ToArray();
        var output = model.Forward(IdsTensor, MaskTensor, Tensor.FromArray(labels, new Shape(2, 8)));
        Assert.NotNull(output.Loss);
        Assert.True(output.Loss.RequiresGrad);

        // HF: CE(logits[:, :-1], labels[:, 1:]) averaged over labels ≠ −100, computed here in double from the logits.
        var logits = output.Logits.ToArray();
        double total = 0;
        int count = 0;
        for (int b = 0; b < 2; b++)
        {
            for (int t = 0; t < 7; t++)
            {
                int target = labels[b * 8 + t + 1];
                if (target == -100) continue;
                var row = logits.AsSpan((b * 8 + t) * 257, 257);
                double max = double.NegativeInfinity;
                foreach (float v in row) max = Math.Max(max, v);
                double sum = 0;
                foreach (float v in row) sum += Math.Exp(v - max);
                total += max + Math.Log(sum) - row[target];
                count++;
            }
        }

        Assert.Equal(11, count);
        float expected = (float)(total / count);
        Assert.True(Math.Abs(expected - output.Loss.ToArray()[0]) <= 1e-5f * Math.Max(1f, Math.Abs(expected)), $"loss {output.Loss.ToArray()[0]} vs hand-computed {expected}");

        // The fast path computes the same loss (no tape).
        using var noGrad = Autograd.NoGrad();
        var fast = model.Forward(IdsTensor, MaskTensor, Tensor.FromArray(labels, new Shape(2, 8)));
        Assert.True(Math.Abs(fast.Loss!.ToArray()[0] - output.Loss.ToArray()[0]) <= Tolerances.FastVsModules);
    }

    [Fact]
    public void Backward_TinyRandomGpt2_GradientsMatchFiniteDifferencesInEveryTensor()
    {
        // No dropout, wide init so gradients are well above the float noise of the finite differences.
        var config = TinyConfig("\"initializer_range\": 0.3, \"resid_pdrop\": 0.0, \"embd_pdrop\": 0.0, \"attn_pdrop\": 0.0");
        var model = Gpt2LMHeadModel.FromConfig(config, seed: 7);
        Assert.True(model.Training); // training mode: the module path, also inside NoGrad
        var ids = Tensor.FromArray(new[] { 1, 4, 9, 2, 7, 0, 0, 3, 5, 10, 6, 8 }, new Shape(2, 6));
        var mask = Tensor.FromArray(new float[] { 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1 }, new Shape(2, 6));
        var labels = Tensor.FromArray(new[] { 1, 4, 9, 2, 7, 0, -100, -100, 5, 10, 6, 8 }, new Shape(2, 6));

        var loss = model.Forward(ids, mask, labels).Loss!;
        loss.Backward();
        var rng = new Random(3);
        int checkedTensors = 0;
        foreach (var (name, parameter) in model.NamedParameters())
        {
            var grad = parameter.Value.Grad;
            Assert.True(grad is not null, $"{name} received no gradient");
            var analytic = grad.ToArray();
            for (int sample = 0; sample < 4; sample++)
            {
                int i = PickElement(name, parameter, rng);
                var values = parameter.Value.AsSpan<float>();
                float original = values[i];
                values[i] = original + Step;
                double plus = Loss(model, ids, mask, labels);
                parameter.Value.AsSpan<float>()[i] = original - Step;
                double minus = Loss(model, ids, mask, labels);
                parameter.Value.AsSpan<float>()[i] = original;
                double numeric = (plus - minus) / ((double)(original + Step) - (original - Step));
                double error = Math.Abs(analytic[i] - numeric);
                double allowed = GradAbsolute + (GradRelative * Math.Abs(numeric));
                Assert.True(error <= allowed, $"{name}[{i}]: analytic {analytic[i]:G6} vs numeric {numeric:G6} (error {error:G3} > {allowed:G3})");
            }

            checkedTensors++;
        }

        // wte (also the head), wpe, ln_f ×2, and 12 per block.
        Assert.Equal(4 + (12 * config.NumHiddenLayers), checkedTensors);
    }

    [Fact]
    public void TrainThenEval_InPlaceUpdateAndMarkModified_FastPathSeesNewWeights()
    {
        var model = Gpt2LMHeadModel.FromPretrained(Folder);
        // 16 rows > Gemv.MaxRows: the fast path runs the packed GEMM, whose cached packing must follow the update.
        Tensor before;
        using (Autograd.NoGrad())
        {
            before = model.Forward(IdsTensor).Logits;
        }

        // An "optimizer step": every c_fc weight of block 0 and the tied wte changed in place, then MarkModified.
        model.Train();
        foreach (var parameter in new[] { model.Transformer.H[0].Mlp.CFc.Weight, model.Transformer.Wte.Weight })
        {
            var values = parameter.Value.AsSpan<float>();
            for (int i = 0; i < values.Length; i++) values[i] += 0.01f * MathF.Sin(i);
            parameter.MarkModified();
        }

        model.Eval();
        var reference = model.Forward(IdsTensor).Logits.ToArray(); // module path (gradients wanted)
        using var noGrad = Autograd.NoGrad();
        Assert.True(model.UsesFastPath);
        var after = model.Forward(IdsTensor).Logits.ToArray();
        Assert.True(OnnxParityTests.MaxAbsDiff(reference, after) <= Tolerances.FastVsModules, "the fast path did not see the update");
        Assert.True(OnnxParityTests.MaxAbsDiff(before.ToArray(), after) > 1e-3f, "the update changed nothing");
    }

    [Fact]
    public void F16Model_AutogradPath_ThrowsSayingLoadInF32()
    {
        var model = Gpt2LMHeadModel.FromPretrained(Folder, DType.F16);
        Assert.All(model.Parameters().Where(p => p.Shape.Rank == 2 && p.DType == DType.F16), p => Assert.False(p.RequiresGrad));
        model.Train();
        var error = Assert.Throws<InvalidOperationException>(() => model.Forward(IdsTensor));
        Assert.Contains("F32", error.Message, StringComparison.Ordinal);
        Assert.Contains("F16", error.Message, StringComparison.Ordinal);

        var grad = Assert.Throws<InvalidOperationException>(() => model.Transformer.H[0].Attn.CAttn.Weight.RequiresGrad = true);
        Assert.Contains("DType.F32", grad.Message, StringComparison.Ordinal);

        // In eval mode the same model serves inference through the fast path.
        model.Eval();
        using var noGrad = Autograd.NoGrad();
        Assert.Equal(new Shape(1, 8, 257), model.Forward(Tensor.FromArray(Ids[..8], new Shape(1, 8))).Logits.Shape);
    }

    [Fact]
    public void FromConfig_InitStatistics_AsHfInitWeights()
    {
        var config = (Gpt2Config)ModelConfig.Parse("""
            { "model_type": "gpt2", "vocab_size": 2000, "n_positions": 128, "n_embd": 128, "n_layer": 8, "n_head": 4 }
            """);
        var model = Gpt2LMHeadModel.FromConfig(config, seed: 1);
        double range = config.InitializerRange;
        double projStd = range / Math.Sqrt(2 * config.NumHiddenLayers);
        var names = model.NamedParameters().Select(p => p.Name).ToList();
        Assert.DoesNotContain("lm_head.weight", names);
        Assert.Same(model.Transformer.Wte.Weight, model.LmHead.Weight);
        foreach (var (name, parameter) in model.NamedParameters())
        {
            var values = parameter.Value.ToArray();
            Assert.True(parameter.RequiresGrad, name);
            if (name.EndsWith(".bias", StringComparison.Ordinal))
            {
                Assert.All(values, v => Assert.Equal(0f, v));
            }
            else if (name.Contains("ln_", StringComparison.Ordinal))
            {
                Assert.All(values, v => Assert.Equal(1f, v));
            }
            else
            {
                double expected = name.EndsWith("c_proj.weight", StringComparison.Ordinal) ? projStd : range;
                double mean = values.Average(v => (double)v);
                double std = Math.Sqrt(values.Average(v => (v - mean) * (v - mean)));
                Assert.True(Math.Abs(std - expected) <= 0.05 * expected, $"{name}: std {std:G4}, expected {expected:G4}");
                Assert.True(Math.Abs(mean) <= 0.1 * expected, $"{name}: mean {mean:G4}");
            }
        }

        // The same seed gives the same model; another seed another one.
        Assert.Equal(model.Transformer.Wte.Weight.Value.ToArray(), Gpt2LMHeadModel.FromConfig(config, seed: 1).Transformer.Wte.Weight.Value.ToArray());
        Assert.NotEqual(model.Transformer.Wte.Weight.Value.ToArray(), Gpt2LMHeadModel.FromConfig(config, seed: 2).Transformer.Wte.Weight.Value.ToArray());
    }

    [Fact]
    public void SaveSafetensors_HfNamesAndConv1DLayout_ReloadGivesSameLogits()
    {
        var model = Gpt2LMHeadModel.FromPretrained(Folder);
        var dir = Path.Combine(AppContext.BaseDirectory, "gpt2-saved-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(Folder, "config.json"), Path.Combine(dir, "config.json"));
        model.SaveSafetensors(Path.Combine(dir, "model.safetensors"), new Dictionary<string, string> { ["format"] = "pt" });

        using (var saved = SafeTensorsLoader.Open(dir))
        using (var original = SafeTensorsLoader.Open(Folder))
        {
            // Exactly HF's parameter names (the fixture's, less the attn.bias mask buffers), no tied lm_head copy.
            var expectedNames = original.Tensors.Select(t => t.Name).Where(n => !n.EndsWith(".attn.bias", StringComparison.Ordinal)).Order(StringComparer.Ordinal);
            Assert.Equal(expectedNames, saved.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
            Assert.Equal([32L, 96L], saved.GetInfo("transformer.h.0.attn.c_attn.weight").Shape);
            Assert.Equal([128L, 32L], saved.GetInfo("transformer.h.1.mlp.c_proj.weight").Shape);
            Assert.Equal([257L, 32L], saved.GetInfo("transformer.wte.weight").Shape);
            foreach (var info in saved.Tensors)
            {
                Assert.Equal(original.GetTensorAsF32(info.Name).ToArray(), saved.GetTensorAsF32(info.Name).ToArray());
            }
        }

        var reloaded = Gpt2LMHeadModel.FromPretrained(dir);
        Assert.Empty(reloaded.LoadReport!.Missing);
        Assert.Empty(reloaded.LoadReport.Unused);
        using var noGrad = Autograd.NoGrad();
        Assert.Equal(model.Forward(IdsTensor, MaskTensor).Logits.ToArray(), reloaded.Forward(IdsTensor, MaskTensor).Logits.ToArray());
    }

    [Fact]
    public void LoadStateDict_HfStateDictWithLmHeadCopy_LoadsConv1DTransposed()
    {
        var model = Gpt2LMHeadModel.FromPretrained(Folder);
        var fresh = Gpt2LMHeadModel.FromConfig(model.Config, seed: 5);
        var state = new Dictionary<string, Tensor>(model.StateDict()) { ["lm_head.weight"] = model.Transformer.Wte.Weight.Value };
        Assert.Equal(new Shape(32, 96), state["transformer.h.0.attn.c_attn.weight"].Shape);
        var report = fresh.LoadStateDict(state);
        Assert.Empty(report.Missing);
        Assert.Empty(report.Unused);
        fresh.Eval();
        using var noGrad = Autograd.NoGrad();
        Assert.Equal(model.Forward(IdsTensor).Logits.ToArray(), fresh.Forward(IdsTensor).Logits.ToArray());
    }

    private const float Step = 1e-3f;
    private const double GradAbsolute = 5e-4;
    private const double GradRelative = 5e-3;

    private static Gpt2Config TinyConfig(string extra) => (Gpt2Config)ModelConfig.Parse($$"""
        { "model_type": "gpt2", "vocab_size": 11, "n_positions": 8, "n_embd": 8, "n_layer": 2, "n_head": 2, {{extra}} }
        """);

    private static double Loss(Gpt2LMHeadModel model, Tensor ids, Tensor mask, Tensor labels)
    {
        using var noGrad = Autograd.NoGrad();
        return model.Forward(ids, mask, labels).Loss!.ToArray()[0];
    }

    /// <summary>An element that influences the loss: for the embedding tables, a row the batch reads.</summary>
    private static int PickElement(string name, Parameter parameter, Random rng)
    {
        int width = parameter.Shape[parameter.Shape.Rank - 1];
        if (name.EndsWith("wte.weight", StringComparison.Ordinal))
        {
            // Every row is used by the tied head; half the time pick an input token's row (both gradients meet there).
            int[] used = [1, 4, 9, 2, 7, 0, 3, 5, 10, 6, 8];
            return (rng.Next(2) == 0 ? used[rng.Next(used.Length)] : rng.Next(parameter.Shape[0])) * width + rng.Next(width);
        }

        if (name.EndsWith("wpe.weight", StringComparison.Ordinal))
        {
            return rng.Next(6) * width + rng.Next(width);
        }

        return rng.Next((int)parameter.Shape.ElementCount);
    }
}
