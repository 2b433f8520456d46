using System.Text.Json.Nodes;
using Sharpformer.NN.Lora;
using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels;

namespace Sharpformer.NN.Tests.Lora;

/// <summary>
/// LoRA on a toy module tree: PEFT's target and modules_to_save matching, the member names, the init, the adapter's
/// math on the autograd and fused paths (Linear and Conv1D) against a plain loop, merge / unmerge, and the config file.
/// </summary>
public class LoraLayerTests
{
    /// <summary>block.{query, value, query2, subquery, conv (Conv1D), norm}, pre_classifier, classifier.</summary>
    private sealed class Toy : Module
    {
        public Toy(int seed = 1)
        {
            var vb = VarBuilder.FromInit(seed, std: 0.4f);
            RegisterModule("block", new Block(vb.Push("block")));
            PreClassifier = RegisterModule("pre_classifier", new Linear(6, 6, vb.Push("pre_classifier")));
            RegisterModule("classifier", new Linear(6, 2, vb.Push("classifier")));
        }

        public Linear PreClassifier { get; }
    }

    private sealed class Block : Module
    {
        public Block(VarBuilder vb)
        {
            Query = RegisterModule("query", new Linear(6, 5, vb.Push("query")));
            RegisterModule("value", new Linear(6, 6, vb.Push("value")));
            RegisterModule("query2", new Linear(6, 6, vb.Push("query2")));
            RegisterModule("subquery", new Linear(6, 6, vb.Push("subquery")));
            Conv = RegisterModule("conv", Linear.Conv1D(6, 9, vb.Push("conv")));
            RegisterModule("norm", new LayerNorm(6, 1e-5f, vb.Push("norm")));
        }

        public Linear Query { get; }

        public Linear Conv { get; }
    }

    private static string[] AdaptedPaths(LoraModel lora) => lora.Adapters.Select(a => a.Path).ToArray();

    [Fact]
    public void TargetList_MatchesTheWholePathOrADotSuffix_AsPeftDoes()
    {
        var lora = LoraModel.Apply(new Toy(), new LoraConfig { TargetModules = ["query", "conv"] });
        Assert.Equal(["block.query", "block.conv"], AdaptedPaths(lora));
    }

    [Fact]
    public void TargetRegex_MustMatchTheWholePath()
    {
        Assert.Equal(["block.query", "block.query2"], AdaptedPaths(LoraModel.Apply(new Toy(), new LoraConfig { TargetModulesRegex = @"block\.query\d?" })));
        var error = Assert.Throws<ArgumentException>(() => LoraModel.Apply(new Toy(), new LoraConfig { TargetModulesRegex = "query" }));
        Assert.Contains("matches no Linear layer", error.Message, StringComparison.Ordinal);
        Assert.Contains("query2", error.Message, StringComparison.Ordinal); // the Linear names are listed
    }

    [Fact]
    public void SeqCls_SavesEveryModuleEndingInClassifier_AndNeverAdaptsThem()
    {
        var model = new Toy();
        var lora = LoraModel.Apply(model, new LoraConfig { TargetModules = [LoraConfig.AllLinear], TaskType = "SEQ_CLS" });
        Assert.Equal(["pre_classifier", "classifier"], lora.SavedModules);
        Assert.Equal(["classifier", "score"], lora.Config.ModulesToSave);
        Assert.Equal(["block.query", "block.value", "block.query2", "block.subquery", "block.conv"], AdaptedPaths(lora));
        Assert.True(lora.Config.FanInFanOut); // a Conv1D target

        var trainable = lora.TrainableParameters().Select(p => p.Name).ToArray();
        Assert.Contains("block.query.lora_A.default.weight", trainable);
        Assert.Contains("block.query.lora_B.default.weight", trainable);
        Assert.Contains("pre_classifier.weight", trainable);
        Assert.Contains("classifier.bias", trainable);
        Assert.DoesNotContain("block.query.weight", trainable);
        Assert.DoesNotContain("block.norm.weight", trainable);
        Assert.Equal((5 * 2) + (2 * 2), trainable.Length); // A and B of five adapters, weight and bias of two heads

        Assert.Throws<ArgumentException>(() => LoraModel.Apply(new Toy(), new LoraConfig { TargetModules = ["classifier"], TaskType = "SEQ_CLS" }));
    }

    [Fact]
    public void NonLinearTarget_IsRefusedWithItsType()
    {
        var error = Assert.Throws<ArgumentException>(() => LoraModel.Apply(new Toy(), new LoraConfig { TargetModules = ["norm"] }));
        Assert.Contains("block.norm is a LayerNorm, not a Linear layer", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NewAdapter_AIsKaimingUniform_BIsZero_OutputUnchanged()
    {
        var model = new Toy();
        var x = Tensor.RandomNormal(new Shape(3, 6), new Random(5));
        var before = model.NamedModules().Single(m => m.Name == "block.query").Module is Linear q ? q.Forward(x).ToArray() : [];
        var lora = LoraModel.Apply(model, new LoraConfig { R = 4, TargetModules = ["query"] }, seed: 3);
        var adapter = lora.Adapters[0].Adapter;
        var a = adapter.A.Weight.Value.ToArray();
        float bound = 1f / MathF.Sqrt(6);
        Assert.All(a, v => Assert.InRange(v, -bound, bound));
        Assert.Contains(a, v => MathF.Abs(v) > bound / 2);
        Assert.All(adapter.B.Weight.Value.ToArray(), v => Assert.Equal(0f, v));
        Assert.Equal(before, adapter.Target.Forward(x).ToArray());
    }

    [Fact]
    public void Init_IsTheSameForTheSameSeed_AndDiffersAcrossAdaptersAndSeeds()
    {
        static float[][] InitOf(int seed) => LoraModel.Apply(new Toy(), new LoraConfig { R = 2, TargetModules = ["query2", "subquery"] }, seed).Adapters
            .Select(a => a.Adapter.A.Weight.Value.ToArray()).ToArray();

        var first = InitOf(5);
        Assert.Equal(first, InitOf(5));
        Assert.NotEqual(first[0], first[1]);
        Assert.NotEqual(first[0], InitOf(6)[0]);

        // The values themselves are fixed by the seed (System.Random with a seed is stable across processes and runs).
        Assert.Equal(first[0][0], InitOf(5)[0][0]);
    }

    [Theory]
    [InlineData(false, 2)]
    [InlineData(false, Gemv.MaxRows + 3)]
    [InlineData(true, 2)]
    [InlineData(true, Gemv.MaxRows + 3)]
    public void AdapterMath_AutogradFusedAndMerged_EqualAPlainLoop(bool conv1D, int rows)
    {
        var model = new Toy();
        model.Eval();
        var lora = LoraModel.Apply(model, new LoraConfig { R = 3, LoraAlpha = 6, LoraDropout = 0.5f, TargetModules = [conv1D ? "conv" : "query"] }, seed: 9);
        var adapter = lora.Adapters[0].Adapter;
        var random = new Random(11);
        foreach (ref float v in adapter.B.Weight.Value.AsSpan<float>()) v = (float)(random.NextDouble() - 0.5);
        var layer = adapter.Target;
        var x = Tensor.RandomNormal(new Shape(rows, 6), random);
        var expected = Reference(layer, adapter, x.ToArray(), rows, scaling: 2f);

        AssertClose(expected, layer.Forward(x).ToArray());
        var fused = new float[rows * layer.OutFeatures];
        layer.Forward(x.AsReadOnlySpan<float>(), rows, fused);
        AssertClose(expected, fused);

        var weightBefore = layer.Weight.Value.ToArray();
        lora.Merge();
        var merged = layer.Weight.Value.ToArray();
        var a = adapter.A.Weight.Value.ToArray();
        var b = adapter.B.Weight.Value.ToArray();
        for (int o = 0; o < layer.OutFeatures; o++)
        {
            for (int i = 0; i < layer.InFeatures; i++)
            {
                float delta = 0;
                for (int k = 0; k < 3; k++) delta += b[(o * 3) + k] * a[(k * layer.InFeatures) + i];
                Assert.Equal(weightBefore[(o * layer.InFeatures) + i] + (2f * delta), merged[(o * layer.InFeatures) + i], 1e-6f);
            }
        }

        AssertClose(expected, layer.Forward(x).ToArray());
        layer.Forward(x.AsReadOnlySpan<float>(), rows, fused);
        AssertClose(expected, fused);
        lora.Unmerge();
        AssertClose(weightBefore, layer.Weight.Value.ToArray());
        Assert.False(lora.IsMerged);
    }

    [Fact]
    public void Dropout_ActsOnTheAdapterInputInTrainingOnly()
    {
        var model = new Toy();
        var lora = LoraModel.Apply(model, new LoraConfig { R = 2, LoraDropout = 0.5f, TargetModules = ["query"] });
        var adapter = lora.Adapters[0].Adapter;
        adapter.B.Weight.Value.AsSpan<float>().Fill(0.3f);
        var x = Tensor.RandomNormal(new Shape(4, 6), new Random(2));
        var baseOnly = Ops.Linear(x, adapter.Target.Weight.Value, adapter.Target.Bias!.Value).ToArray();
        model.Eval();
        var evalOut = adapter.Target.Forward(x).ToArray();
        model.Train();
        Assert.True(adapter.Dropout.Training);
        var trainOut = adapter.Target.Forward(x).ToArray();
        Assert.NotEqual(evalOut, trainOut);
        Assert.NotEqual(baseOnly, trainOut);
    }

    [Fact]
    public void Unload_RemovesTheAdapterMembers()
    {
        var model = new Toy();
        var names = model.NamedParameters().Select(p => p.Name).ToArray();
        var lora = LoraModel.Apply(model, new LoraConfig { TargetModules = ["query"] });
        Assert.Contains("block.query.lora_A.default.weight", model.NamedParameters().Select(p => p.Name));
        Assert.Contains(model.NamedModules(), m => m.Name == "block.query.lora_dropout.default" && m.Module is Dropout);
        lora.Unload();
        Assert.Equal(names, model.NamedParameters().Select(p => p.Name));
        Assert.Null(((Block)model.NamedModules().Single(m => m.Name == "block").Module).Query.Lora);
        Assert.Throws<InvalidOperationException>(() => lora.Merge());
    }

    [Fact]
    public void Scaling_IsAlphaOverR_OrOverSqrtRWithRsLora()
    {
        Assert.Equal(2f, new LoraConfig { R = 8, LoraAlpha = 16, TargetModules = ["q"] }.Scaling);
        Assert.Equal(16f / MathF.Sqrt(8), new LoraConfig { R = 8, LoraAlpha = 16, UseRslora = true, TargetModules = ["q"] }.Scaling);
    }

    [Fact]
    public void Config_RoundTripsThroughPeftJson_AndRefusesWhatItCannotDo()
    {
        var config = new LoraConfig { R = 16, LoraAlpha = 32, LoraDropout = 0.1f, TargetModules = ["query", "value"], TaskType = "TOKEN_CLS", UseRslora = true, BaseModelNameOrPath = "bert-base-uncased" }.Resolved();
        var json = config.ToJson();
        Assert.Equal("LORA", json["peft_type"]!.GetValue<string>());
        Assert.Equal(["classifier", "score"], json["modules_to_save"]!.AsArray().Select(n => n!.GetValue<string>()));
        var back = LoraConfig.FromJson(JsonNode.Parse(json.ToJsonString())!.AsObject(), "test");
        Assert.Equal(config.R, back.R);
        Assert.Equal(config.LoraAlpha, back.LoraAlpha);
        Assert.Equal(config.LoraDropout, back.LoraDropout);
        Assert.Equal(config.TargetModules, back.TargetModules);
        Assert.Equal(config.ModulesToSave, back.ModulesToSave);
        Assert.Equal(config.TaskType, back.TaskType);
        Assert.True(back.UseRslora);
        Assert.Equal("bert-base-uncased", back.BaseModelNameOrPath);

        var regex = LoraConfig.FromJson(JsonNode.Parse("""{"peft_type": "LORA", "r": 4, "target_modules": "x\\.(a|b)"}""")!.AsObject(), "test");
        Assert.Equal(@"x\.(a|b)", regex.TargetModulesRegex);

        foreach (var (bad, word) in new[]
        {
            ("""{"peft_type": "LORA", "target_modules": ["q"], "use_dora": true}""", "use_dora"),
            ("""{"peft_type": "LORA", "target_modules": ["q"], "bias": "all"}""", "bias"),
            ("""{"peft_type": "LORA", "target_modules": ["q"], "rank_pattern": {"q": 4}}""", "rank_pattern"),
            ("""{"peft_type": "IA3", "target_modules": ["q"]}""", "peft_type"),
            ("""{"peft_type": "LORA", "target_modules": []}""", "target_modules"),
            ("""{"peft_type": "LORA", "target_modules": ["q"], "r": 0}""", "r must be"),
        })
        {
            var error = Assert.Throws<InvalidDataException>(() => LoraConfig.FromJson(JsonNode.Parse(bad)!.AsObject(), "adapter_config.json"));
            Assert.Contains(word, error.Message, StringComparison.Ordinal);
            Assert.StartsWith("adapter_config.json", error.Message, StringComparison.Ordinal);
        }
    }

    /// <summary>y = x·Wᵀ + b + scaling · (x·Aᵀ)·Bᵀ with plain loops (W in the layer's [Out, In] layout).</summary>
    private static float[] Reference(Linear layer, LoraAdapter adapter, float[] x, int rows, float scaling)
    {
        int n = layer.InFeatures, m = layer.OutFeatures, r = adapter.Rank;
        var w = layer.Weight.Value.ToArray();
        var bias = layer.Bias!.Value.ToArray();
        var a = adapter.A.Weight.Value.ToArray();
        var b = adapter.B.Weight.Value.ToArray();
        var y = new float[rows * m];
        for (int row = 0; row < rows; row++)
        {
            var h = new double[r];
            for (int k = 0; k < r; k++)
            {
                for (int i = 0; i < n; i++) h[k] += a[(k * n) + i] * x[(row * n) + i];
            }

            for (int o = 0; o < m; o++)
            {
                double sum = bias[o];
                for (int i = 0; i < n; i++) sum += w[(o * n) + i] * x[(row * n) + i];
                for (int k = 0; k < r; k++) sum += scaling * b[(o * r) + k] * h[k];
                y[(row * m) + o] = (float)sum;
            }
        }

        return y;
    }

    private static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(MathF.Abs(expected[i] - actual[i]) <= Tolerances.LayerVsLoop * Math.Max(1f, MathF.Abs(expected[i])), $"element {i}: expected {expected[i]}, got {actual[i]}");
        }
    }
}
