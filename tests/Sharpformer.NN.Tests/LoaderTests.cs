using Sharpformer.IO.SafeTensors;
using Sharpformer.Tensors;

namespace Sharpformer.NN.Tests;

/// <summary>A two-level model: "encoder.layer.{i}.dense" and "head", to check dotted paths.</summary>
internal sealed class TinyModel : Module
{
    public TinyModel(VarBuilder vb)
    {
        for (int i = 0; i < 2; i++)
        {
            RegisterModule($"encoder.layer.{i}", new TinyLayer(vb.Push("encoder").Push("layer", i)));
        }

        Head = RegisterModule("head", new Linear(3, 2, vb.Push("head")));
    }

    public Linear Head { get; }
}

internal sealed class TinyLayer : Module
{
    public TinyLayer(VarBuilder vb)
    {
        RegisterModule("dense", new Linear(3, 3, vb.Push("dense")));
        RegisterModule("LayerNorm", new LayerNorm(3, 1e-5f, vb.Push("LayerNorm")));
        RegisterModule("dropout", new Dropout(0.1f));
    }
}

public sealed class LoaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpformer-nn-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string[] ExpectedNames =>
    [
        "encoder.layer.0.dense.weight", "encoder.layer.0.dense.bias", "encoder.layer.0.LayerNorm.weight", "encoder.layer.0.LayerNorm.bias",
        "encoder.layer.1.dense.weight", "encoder.layer.1.dense.bias", "encoder.layer.1.LayerNorm.weight", "encoder.layer.1.LayerNorm.bias",
        "head.weight", "head.bias",
    ];

    [Fact]
    public void NamedParameters_NestedModules_YieldCheckpointPaths()
    {
        var model = new TinyModel(VarBuilder.FromInit());
        Assert.Equal(ExpectedNames, model.NamedParameters().Select(p => p.Name).ToArray());
        Assert.Equal((2 * (9 + 3 + 3 + 3)) + 6 + 2, model.ParameterCount());
        Assert.All(model.Parameters(), p => Assert.True(p.RequiresGrad));
    }

    [Fact]
    public void TrainEval_Root_PropagatesToEveryModule()
    {
        var model = new TinyModel(VarBuilder.FromInit());
        Assert.True(model.Training);
        model.Eval();
        Assert.All(model.NamedModules(), m => Assert.False(m.Module.Training));
        model.Train();
        Assert.All(model.NamedModules(), m => Assert.True(m.Module.Training));
    }

    [Fact]
    public void SaveSafetensors_LoadIntoFreshModel_RoundTripsEveryTensor()
    {
        var original = new TinyModel(VarBuilder.FromInit(seed: 1));
        string path = Path.Combine(_dir, "model.safetensors");
        original.SaveSafetensors(path);
        var copy = new TinyModel(VarBuilder.FromInit(seed: 2));
        using (var source = SafeTensorsLoader.Open(path))
        {
            var report = copy.LoadStateDict(source);
            Assert.Equal(ExpectedNames.Length, report.Loaded.Count);
            Assert.Empty(report.Missing);
            Assert.Empty(report.Unused);
        }

        var a = original.StateDict();
        var b = copy.StateDict();
        foreach (string name in ExpectedNames)
        {
            Assert.Equal(a[name].ToArray(), b[name].ToArray());
        }

        // And building straight from the file through a VarBuilder gives the same values.
        using var again = SafeTensorsLoader.Open(path);
        var vb = VarBuilder.FromSafeTensors(again);
        var built = new TinyModel(vb);
        Assert.Equal(a["head.weight"].ToArray(), built.Head.Weight.Value.ToArray());
        Assert.Empty(vb.Report().Unused);
        Assert.Equal(ExpectedNames.Length, vb.Report().Loaded.Count);
    }

    [Fact]
    public void Get_WrongShape_ThrowsNamingTensorAndShapes()
    {
        var tensors = new Dictionary<string, Tensor> { ["head.weight"] = Tensor.Zeros(new Shape(2, 4)) };
        var e = Assert.Throws<ModelLoadException>(() => new Linear(3, 2, VarBuilder.FromTensors(tensors).Push("head"), bias: false));
        Assert.Contains("'head.weight'", e.Message, StringComparison.Ordinal);
        Assert.Contains("[2, 4]", e.Message, StringComparison.Ordinal);
        Assert.Contains("[2, 3]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Get_Missing_ThrowsNamingTensorUnlessAllowed()
    {
        var tensors = new Dictionary<string, Tensor> { ["head.weight"] = Tensor.Zeros(new Shape(2, 3)) };
        var e = Assert.Throws<ModelLoadException>(() => new Linear(3, 2, VarBuilder.FromTensors(tensors).Push("head")));
        Assert.Contains("'head.bias'", e.Message, StringComparison.Ordinal);

        var vb = VarBuilder.FromTensors(tensors, allowMissing: true);
        var linear = new Linear(3, 2, vb.Push("head"));
        Assert.Equal(["head.bias"], vb.Report().Missing);
        Assert.Equal(new float[2], linear.Bias!.Value.ToArray());
    }

    [Fact]
    public void Get_IntegerTensor_ThrowsNamingDType()
    {
        var tensors = new Dictionary<string, Tensor> { ["w.weight"] = Tensor.FromArray(new[] { 1, 2, 3, 4 }, new Shape(2, 2)) };
        var e = Assert.Throws<ModelLoadException>(() => new Embedding(2, 2, VarBuilder.FromTensors(tensors).Push("w")));
        Assert.Contains("I32", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Get_BFloat16Checkpoint_WidensToF32AndReports()
    {
        var values = new[] { 1f, -2f, 0.5f, 3f };
        string path = Path.Combine(_dir, "bf16.safetensors");
        SafeTensorsWriter.Write(path, [("w.weight", Tensor.FromArray(values, new Shape(2, 2)).To(DType.BF16))]);
        using var source = SafeTensorsLoader.Open(path);
        var vb = VarBuilder.FromSafeTensors(source);
        var embedding = new Embedding(2, 2, vb.Push("w"));
        Assert.Equal(DType.F32, embedding.Weight.Value.DType);
        Assert.Equal(values, embedding.Weight.Value.ToArray());
        Assert.Equal(["w.weight"], vb.Report().Converted);
    }

    [Fact]
    public void GetInDType_F16Checkpoint_CopiesStoredBitsAndReportsNothingWidened()
    {
        // Values that are not exactly F32 either: the stored fp16 bits must come back untouched.
        var values = new[] { (Half)0.1f, (Half)(-2.7f), (Half)65504f, Half.Epsilon };
        string path = Path.Combine(_dir, "f16.safetensors");
        SafeTensorsWriter.Write(path, [("w", Tensor.FromArray(values, new Shape(2, 2)))]);
        using var source = SafeTensorsLoader.Open(path);
        var vb = VarBuilder.FromSafeTensors(source);

        var loaded = vb.Get(new Shape(2, 2), "w", DType.F16);

        Assert.Equal(DType.F16, loaded.DType);
        Assert.Equal(values, loaded.ToArray<Half>());
        Assert.Empty(vb.Report().Converted);
        Assert.Equal(["w"], vb.Report().Loaded);
    }

    [Fact]
    public void GetInDType_F32ToF16AndBF16_RoundsToNearestEven()
    {
        // 1 + 2^-11 lies halfway between fp16 neighbours 1 and 1 + 2^-10: ties go to the even one, 1. 1 + 3·2^-11 lies
        // halfway between 1 + 2^-10 and 1 + 2^-9: even is 1 + 2^-9. The same at 2^-8 / bf16's 8-bit mantissa.
        float h = MathF.Pow(2, -11), b = MathF.Pow(2, -8);
        var tensors = new Dictionary<string, Tensor>
        {
            ["h"] = Tensor.FromArray(new[] { 1f + h, 1f + 3 * h }, new Shape(2)),
            ["b"] = Tensor.FromArray(new[] { 1f + b, 1f + 3 * b }, new Shape(2)),
        };
        var vb = VarBuilder.FromTensors(tensors);

        Assert.Equal([1f, 1f + 4 * h], vb.Get(new Shape(2), "h", DType.F16).ToArray<Half>().Select(x => (float)x));
        Assert.Equal([1f, 1f + 4 * b], vb.Get(new Shape(2), "b", DType.BF16).ToArray<BFloat16>().Select(x => (float)x));
    }

    [Theory]
    [InlineData(DType.I32)]
    [InlineData(DType.I64)]
    public void GetInDType_IntegerType_ThrowsNamingAllowedTypes(DType dtype)
    {
        var vb = VarBuilder.FromTensors(new Dictionary<string, Tensor> { ["w"] = Tensor.Zeros(new Shape(2)) });
        var e = Assert.Throws<ArgumentException>(() => vb.Get(new Shape(2), "w", dtype));
        Assert.Contains("F32, F16 or BF16", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GetInDType_WrongShape_ThrowsNamingTensor()
    {
        var vb = VarBuilder.FromTensors(new Dictionary<string, Tensor> { ["w"] = Tensor.Zeros(new Shape(2, 3)) });
        var e = Assert.Throws<ModelLoadException>(() => vb.Get(new Shape(3, 2), "w", DType.F16));
        Assert.Contains("'w'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LoadStateDict_UnexpectedTensor_StrictThrowsLenientReports()
    {
        var model = new TinyModel(VarBuilder.FromInit());
        var state = model.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value);
        state["pooler.dense.weight"] = Tensor.Zeros(new Shape(1));
        state.Remove("head.bias");
        var e = Assert.Throws<ModelLoadException>(() => model.LoadStateDict(state));
        Assert.Contains("head.bias", e.Message, StringComparison.Ordinal);
        Assert.Contains("pooler.dense.weight", e.Message, StringComparison.Ordinal);
        var report = model.LoadStateDict(state, strict: false);
        Assert.Equal(["head.bias"], report.Missing);
        Assert.Equal(["pooler.dense.weight"], report.Unused);
    }

    [Fact]
    public void LoadStateDict_LegacyLayerNormGammaBeta_LoadsAsWeightAndBias()
    {
        // bert-base-uncased's model.safetensors names its LayerNorm parameters "gamma"/"beta", as TensorFlow did.
        var source = new TinyModel(VarBuilder.FromInit(seed: 3));
        var state = new Dictionary<string, Tensor>();
        foreach (var (name, value) in source.StateDict())
        {
            string legacy = name.Replace("LayerNorm.weight", "LayerNorm.gamma", StringComparison.Ordinal)
                .Replace("LayerNorm.bias", "LayerNorm.beta", StringComparison.Ordinal);
            state[legacy] = value;
        }

        Assert.Contains("encoder.layer.1.LayerNorm.gamma", state.Keys);
        var model = new TinyModel(VarBuilder.FromInit(seed: 4));
        var report = model.LoadStateDict(state);
        Assert.Empty(report.Unused);
        Assert.Empty(report.Missing);
        var expected = source.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value.ToArray());
        foreach (var (name, value) in model.StateDict())
        {
            Assert.Equal(expected[name], value.ToArray());
        }
    }

    [Theory]
    [InlineData("bert.encoder.layer.0.attention.output.LayerNorm.gamma", "bert.encoder.layer.0.attention.output.LayerNorm.weight")]
    [InlineData("embeddings.LayerNorm.beta", "embeddings.LayerNorm.bias")]
    [InlineData("encoder.layer.0.dense.gamma", null)]
    [InlineData("LayerNorm.weight", null)]
    public void CanonicalName_MapsOnlyLegacyLayerNormNames(string name, string? expected) =>
        Assert.Equal(expected, VarStore.CanonicalName(name));
}
