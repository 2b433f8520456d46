using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.IO.Config;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Models;
using Sharpformer.Models.Bert;
using Sharpformer.Models.DistilBert;
using Sharpformer.Models.Gpt2;
using Sharpformer.NN;
using Sharpformer.NN.Lora;
using Sharpformer.Tensors;
using Sharpformer.Training.Optim;

namespace Sharpformer.Training.Tests.Lora;

/// <summary>
/// LoRA on BERT and GPT-2 sequence classifiers against tests/fixtures/lora (make_fixture.py: PEFT's lora.Linear math by
/// hand in PyTorch, base folder + PEFT adapter folder): logits on the fused and module paths, loss and step-0 gradients
/// of lora_A, lora_B and the head; merged equals unmerged; save → load round trips; only adapters and the head train.
/// </summary>
public class LoraFixtureTests
{
    private static readonly string Root = Path.Combine(AppContext.BaseDirectory, "fixtures", "lora");

    private static string Base(string name) => Path.Combine(Root, name, "base");

    private static string Adapter(string name) => Path.Combine(Root, name, "adapter");

    private static JsonElement Expected(string name) => JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, name, "expected.json"))).RootElement;

    private static Tensor Ints(JsonElement rows)
    {
        var values = rows.EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetInt32()).ToArray()).ToArray();
        return Tensor.FromArray(values.SelectMany(r => r).ToArray(), new Shape(values.Length, values[0].Length));
    }

    private static float[] Floats(JsonElement values) => values.EnumerateArray().Select(v => v.GetSingle()).ToArray();

    private static float MaxAbsDiff(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        float max = 0;
        for (int i = 0; i < expected.Length; i++) max = Math.Max(max, Math.Abs(expected[i] - actual[i]));
        return max;
    }

    private static Tensor? TokenTypes(JsonElement expected) =>
        expected.TryGetProperty("token_type_ids", out var types) ? Ints(types) : null;

    private static Tensor Logits(ISequenceClassifier model, JsonElement expected) =>
        model.ClassificationLogits(Ints(expected.GetProperty("input_ids")), Ints(expected.GetProperty("attention_mask")), TokenTypes(expected));

    /// <summary>The logits through the head's Forward with gradients recorded (trainable parameters): the autograd module path, not the fused one.</summary>
    private static Tensor ModuleLogits(ISequenceClassifier model, JsonElement expected)
    {
        Assert.True(Autograd.IsGradEnabled && ((Module)model).Parameters().Any(p => p.RequiresGrad), "the module path needs trainable parameters");
        var ids = Ints(expected.GetProperty("input_ids"));
        var mask = Ints(expected.GetProperty("attention_mask"));
        var logits = model switch
        {
            BertForSequenceClassification bert => bert.Forward(ids, mask, TokenTypes(expected)).Logits,
            DistilBertForSequenceClassification distil => distil.Forward(ids, mask).Logits,
            Gpt2ForSequenceClassification gpt2 => gpt2.Forward(ids, mask).Logits,
            _ => throw new InvalidOperationException(model.GetType().Name),
        };
        Assert.True(logits.RequiresGrad, "the logits should come from the autograd path");
        return logits;
    }

    private static Tensor FastLogits(ISequenceClassifier model, JsonElement expected)
    {
        using var scope = Autograd.NoGrad();
        return Logits(model, expected);
    }

    private static ISequenceClassifier LoadBase(string name)
    {
        var model = AutoModelForSequenceClassification.FromPretrained(Base(name));
        ((Module)model).Eval();
        return model;
    }

    [Theory]
    [InlineData("bert_seq")]
    [InlineData("gpt2_seq")]
    public void LoadedAdapter_FastPathLogits_MatchPyTorch(string name)
    {
        var expected = Expected(name);
        var model = LoadBase(name);
        var lora = LoraModel.LoadAdapter((Module)model, Adapter(name));

        Assert.All(((Module)model).Parameters(), p => Assert.False(p.RequiresGrad));
        Assert.Equal(4, lora.Adapters.Count);
        Assert.Equal(expected.GetProperty("scaling").GetSingle(), lora.Config.Scaling, 1e-6f);
        float diff = MaxAbsDiff(Floats(expected.GetProperty("logits")), FastLogits(model, expected).ToArray());
        Assert.True(diff <= Tolerances.VsReference, $"fused-path logits: max |diff| {diff}");
    }

    [Theory]
    [InlineData("bert_seq")]
    [InlineData("gpt2_seq")]
    public void LoadedAdapter_LossAndGradients_MatchPyTorch_OnlyAdaptersAndHeadGetGradients(string name)
    {
        var expected = Expected(name);
        var model = LoadBase(name);
        var lora = LoraModel.LoadAdapter((Module)model, Adapter(name), trainable: true);
        var labels = Tensor.FromArray(expected.GetProperty("labels").EnumerateArray().Select(v => v.GetInt32()).ToArray(), new Shape(2));

        float logitsDiff = MaxAbsDiff(Floats(expected.GetProperty("logits")), ModuleLogits(model, expected).ToArray());
        Assert.True(logitsDiff <= Tolerances.VsReference, $"module-path logits: max |diff| {logitsDiff}");

        var loss = model.ClassificationLoss(Ints(expected.GetProperty("input_ids")), Ints(expected.GetProperty("attention_mask")), TokenTypes(expected), labels);
        Assert.Equal(expected.GetProperty("loss").GetSingle(), loss.ToArray()[0], Tolerances.VsReference);
        loss.Backward();

        var parameters = ((Module)model).NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        foreach (var grad in expected.GetProperty("grads").EnumerateObject())
        {
            Assert.True(parameters.ContainsKey(grad.Name), $"no parameter {grad.Name}");
            var actual = parameters[grad.Name].Value.Grad;
            Assert.True(actual is not null, $"{grad.Name} has no gradient");
            float diff = MaxAbsDiff(Floats(grad.Value), actual.ToArray());
            Assert.True(diff <= Tolerances.VsReference, $"gradient of {grad.Name}: max |diff| {diff}");
        }

        var trainable = lora.TrainableParameters().Select(p => p.Name).ToHashSet();
        foreach (var (paramName, parameter) in ((Module)model).NamedParameters())
        {
            bool isAdapterOrHead = paramName.Contains(".lora_", StringComparison.Ordinal) || lora.SavedModules.Any(m => paramName.StartsWith(m + ".", StringComparison.Ordinal));
            Assert.Equal(isAdapterOrHead, trainable.Contains(paramName));
            Assert.True(isAdapterOrHead == (parameter.Value.Grad is not null), $"{paramName}: gradient presence should be {isAdapterOrHead}");
        }
    }

    [Theory]
    [InlineData("bert_seq")]
    [InlineData("gpt2_seq")]
    public void Merge_GivesTheUnmergedLogits_UnmergeRestoresTheBase_MergedFolderLoadsWithoutPeft(string name)
    {
        var expected = Expected(name);
        var model = LoadBase(name);
        var baseWeights = ((Module)model).NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Value.ToArray());
        var lora = LoraModel.LoadAdapter((Module)model, Adapter(name), trainable: true);
        var unmerged = FastLogits(model, expected).ToArray();
        Assert.True(MaxAbsDiff(unmerged, ModuleLogits(model, expected).ToArray()) <= Tolerances.OwnPaths);

        lora.Merge();
        Assert.True(lora.IsMerged);
        var (path, adapter) = lora.Adapters[0];
        var delta = adapter.DeltaWeight().ToArray();
        var merged = adapter.Target.Weight.Value.ToArray();
        var original = baseWeights[path + ".weight"];
        for (int i = 0; i < merged.Length; i++) Assert.Equal(original[i] + delta[i], merged[i], 1e-6f);
        Assert.True(MaxAbsDiff(unmerged, FastLogits(model, expected).ToArray()) <= Tolerances.OwnPaths);
        Assert.True(MaxAbsDiff(unmerged, ModuleLogits(model, expected).ToArray()) <= Tolerances.OwnPaths);

        lora.Unmerge();
        Assert.True(MaxAbsDiff(original, adapter.Target.Weight.Value.ToArray()) <= 1e-6f);
        Assert.True(MaxAbsDiff(unmerged, FastLogits(model, expected).ToArray()) <= Tolerances.OwnPaths);

        var plain = lora.MergeAndUnload();
        Assert.DoesNotContain(plain.NamedParameters(), p => p.Name.Contains("lora_", StringComparison.Ordinal));
        Assert.Equal(baseWeights.Keys.Order(), plain.NamedParameters().Select(p => p.Name).Order());
        string folder = Directory.CreateTempSubdirectory("lora-merged-").FullName;
        try
        {
            ModelFolder.Write(folder, plain, ModelFolder.SavedConfig(Base(name), ModelConfig.Load(Base(name)), plain, null), null);
            var reloaded = AutoModelForSequenceClassification.FromPretrained(folder);
            Assert.Empty(((dynamic)reloaded).LoadReport.Missing);
            Assert.Empty(((dynamic)reloaded).LoadReport.Unused);
            ((Module)reloaded).Eval();
            float diff = MaxAbsDiff(unmerged, FastLogits(reloaded, expected).ToArray());
            Assert.True(diff <= Tolerances.OwnPaths, $"merged folder logits: max |diff| {diff}");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void SaveAdapter_WritesPeftNames_AndLoadsBackOntoAFreshBase()
    {
        const string Name = "bert_seq";
        var expected = Expected(Name);
        var model = LoadBase(Name);
        var lora = LoraModel.LoadAdapter((Module)model, Adapter(Name));
        var before = FastLogits(model, expected).ToArray();
        string folder = Directory.CreateTempSubdirectory("lora-adapter-").FullName;
        try
        {
            lora.SaveAdapter(folder, "tiny-bert-base");
            using (var saved = SafeTensorsLoader.Open(Path.Combine(folder, LoraModel.WeightsFileName)))
            using (var original = SafeTensorsLoader.Open(Path.Combine(Adapter(Name), LoraModel.WeightsFileName)))
            {
                Assert.Equal(original.Tensors.Select(t => t.Name).Order(), saved.Tensors.Select(t => t.Name).Order());
                foreach (var info in original.Tensors)
                {
                    Assert.Equal(original.GetTensorAsF32(info.Name).ToArray(), saved.GetTensorAsF32(info.Name).ToArray());
                }
            }

            var config = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, LoraConfig.FileName)))!.AsObject();
            Assert.Equal("LORA", config["peft_type"]!.GetValue<string>());
            Assert.Equal("SEQ_CLS", config["task_type"]!.GetValue<string>());
            Assert.Equal(4, config["r"]!.GetValue<int>());
            Assert.Equal(8.0, config["lora_alpha"]!.GetValue<double>());
            Assert.Equal("none", config["bias"]!.GetValue<string>());
            Assert.True(config["inference_mode"]!.GetValue<bool>());
            Assert.False(config["fan_in_fan_out"]!.GetValue<bool>());
            Assert.Equal("tiny-bert-base", config["base_model_name_or_path"]!.GetValue<string>());
            Assert.Equal(["query", "value"], config["target_modules"]!.AsArray().Select(n => n!.GetValue<string>()));
            Assert.Equal(["classifier", "score"], config["modules_to_save"]!.AsArray().Select(n => n!.GetValue<string>()));

            var fresh = LoadBase(Name);
            LoraModel.LoadAdapter((Module)fresh, folder);
            Assert.Equal(before, FastLogits(fresh, expected).ToArray());
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void GptAdapter_SavesFanInFanOutAndTheRegex()
    {
        var model = LoadBase("gpt2_seq");
        var lora = LoraModel.LoadAdapter((Module)model, Adapter("gpt2_seq"));
        Assert.True(lora.Config.FanInFanOut);
        Assert.Equal(["transformer.h.0.attn.c_attn", "transformer.h.0.mlp.c_proj", "transformer.h.1.attn.c_attn", "transformer.h.1.mlp.c_proj"], lora.Adapters.Select(a => a.Path));
        Assert.Equal(["score"], lora.SavedModules);
        // A and B keep PEFT's [r, In] / [Out, r] for a Conv1D: c_attn maps 16 → 48.
        Assert.Equal(new Shape(2, 16), lora.Adapters[0].Adapter.A.Weight.Shape);
        Assert.Equal(new Shape(48, 2), lora.Adapters[0].Adapter.B.Weight.Shape);
        var names = lora.AdapterStateDict().Select(e => e.Name).ToArray();
        Assert.Contains("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight", names);
        Assert.Contains("base_model.model.score.weight", names);
    }

    [Fact]
    public void Apply_NewAdapter_LeavesOutputsUnchanged_TrainsOnlyAdaptersAndHead_OptimizerStateOnlyForThem()
    {
        var expected = Expected("bert_seq");
        var model = LoadBase("bert_seq");
        var before = FastLogits(model, expected).ToArray();
        var lora = LoraModel.Apply((Module)model, new LoraConfig { R = 2, LoraAlpha = 4, TargetModules = ["query", "value"], TaskType = "SEQ_CLS" }, seed: 7);
        Assert.Equal(before, FastLogits(model, expected).ToArray()); // B = 0: the adapters add nothing yet

        long adapters = 2 /* layers */ * 2 /* query, value */ * ((2 * 16) + (16 * 2));
        long head = (3 * 16) + 3;
        Assert.Equal(adapters + head, lora.TrainableParameterCount());

        ((Module)model).Train();
        var optimizer = new AdamW([ParameterGroup.Trainable((Module)model, 1e-2)]);
        var labels = Tensor.FromArray(new[] { 2, 0 }, new Shape(2));
        var frozen = ((Module)model).NamedParameters().Where(p => !p.Parameter.RequiresGrad).ToDictionary(p => p.Name, p => p.Parameter.Value.ToArray());
        for (int step = 0; step < 2; step++)
        {
            optimizer.ZeroGrad();
            model.ClassificationLoss(Ints(expected.GetProperty("input_ids")), Ints(expected.GetProperty("attention_mask")), TokenTypes(expected), labels).Backward();
            optimizer.Step();
        }

        // State tensors are "<buffer>.<parameter>" (exp_avg.classifier.weight): exactly the adapters and the head have them.
        var withState = optimizer.StateDict().Tensors.Keys.Select(k => k[(k.IndexOf('.', StringComparison.Ordinal) + 1)..]).Distinct().Order();
        Assert.Equal(lora.TrainableParameters().Select(p => p.Name).Order(), withState);
        Assert.Equal(2 * lora.TrainableParameterCount(), optimizer.StateDict().Tensors.Values.Sum(t => t.Shape.ElementCount));
        foreach (var (paramName, values) in frozen)
        {
            var now = ((Module)model).NamedParameters().Single(p => p.Name == paramName).Parameter.Value.ToArray();
            Assert.Equal(values, now);
        }

        ((Module)model).Eval();
        Assert.NotEqual(before, FastLogits(model, expected).ToArray()); // B moved off zero
    }

    [Fact]
    public void LoadAdapter_OnAnotherBase_SaysWhatDoesNotFit()
    {
        // The GPT-2 adapter's regex names modules a BERT base does not have.
        var bert = LoadBase("bert_seq");
        var error = Assert.Throws<ModelLoadException>(() => LoraModel.LoadAdapter((Module)bert, Adapter("gpt2_seq")));
        Assert.Contains("matches no Linear layer", error.Message, StringComparison.Ordinal);
        Assert.Contains("tiny-gpt2-base", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(((Module)bert).NamedParameters(), p => p.Name.Contains("lora_", StringComparison.Ordinal));

        // Same module names, other widths: the shapes are named.
        string folder = Directory.CreateTempSubdirectory("lora-wide-").FullName;
        try
        {
            var wide = BertBaseWithHidden(32);
            var config = new LoraConfig { R = 4, LoraAlpha = 8, TargetModules = ["query", "value"], TaskType = "SEQ_CLS" };
            LoraModel.Apply((Module)wide, config).SaveAdapter(folder, "wide-bert");
            var narrow = LoadBase("bert_seq");
            var mismatch = Assert.Throws<ModelLoadException>(() => LoraModel.LoadAdapter((Module)narrow, folder));
            Assert.Contains("base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight is [4, 32] in the file but the base model needs [4, 16]", mismatch.Message, StringComparison.Ordinal);
            Assert.Contains("wide-bert", mismatch.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(((Module)narrow).NamedParameters(), p => p.Name.Contains("lora_", StringComparison.Ordinal));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Theory]
    [InlineData("distilbert", "q_lin,v_lin,lin1")]
    [InlineData("bert", "all-linear")]
    public void RandomAdapters_FusedPathEqualsModulePath(string modelType, string targets)
    {
        string json = modelType == "bert"
            ? """{"model_type": "bert", "vocab_size": 40, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 32, "max_position_embeddings": 24, "type_vocab_size": 2, "id2label": {"0": "A", "1": "B", "2": "C"}, "label2id": {"A": 0, "B": 1, "C": 2}}"""
            : """{"model_type": "distilbert", "vocab_size": 40, "dim": 16, "n_layers": 2, "n_heads": 4, "hidden_dim": 32, "max_position_embeddings": 24, "id2label": {"0": "A", "1": "B", "2": "C"}, "label2id": {"A": 0, "B": 1, "C": 2}}""";
        var model = AutoModelForSequenceClassification.FromConfig(ModelConfig.Parse(json), seed: 5);
        ((Module)model).Eval();
        var lora = LoraModel.Apply((Module)model, new LoraConfig { R = 3, LoraAlpha = 5, TargetModules = targets.Split(','), TaskType = "SEQ_CLS" }, seed: 2);
        var random = new Random(4);
        // The random heads start at std 0.02, which hides the encoder; unit-scale heads make the logits follow it.
        foreach (var (_, parameter) in lora.TrainableParameters().Where(p => p.Name.EndsWith("classifier.weight", StringComparison.Ordinal)))
        {
            foreach (ref float v in parameter.Value.AsSpan<float>()) v = (float)(random.NextDouble() - 0.5) * 2f;
        }

        foreach (var (_, adapter) in lora.Adapters)
        {
            foreach (ref float v in adapter.B.Weight.Value.AsSpan<float>()) v = (float)((random.NextDouble() - 0.5) * 4.0);
        }

        var expected = Expected("bert_seq");
        var modulePath = ModuleLogits(model, expected).ToArray();
        var fused = FastLogits(model, expected).ToArray();
        Assert.True(MaxAbsDiff(modulePath, fused) <= Tolerances.OwnPaths, $"fused vs module: {MaxAbsDiff(modulePath, fused)}");
        lora.Unload();
        float change = MaxAbsDiff(modulePath, FastLogits(model, expected).ToArray());
        Assert.True(change > 50 * Tolerances.OwnPaths, $"the adapters should change the logits well beyond the tolerance, changed {change}");
    }

    private static ISequenceClassifier BertBaseWithHidden(int hidden)
    {
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(Base("bert_seq"), "config.json")))!.AsObject();
        json["hidden_size"] = hidden;
        json["intermediate_size"] = 2 * hidden;
        return AutoModelForSequenceClassification.FromConfig(ModelConfig.Parse(json.ToJsonString()), seed: 1);
    }
}
