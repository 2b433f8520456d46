using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels;

namespace Sharpformer.NN.Tests;

/// <summary>Linear.SetPrecision: the fast path runs the narrow kernel of the current F32 weight; the autograd forward stays F32.</summary>
public class LinearPrecisionTests
{
    private static float[] Input(int rows, int features, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, rows * features).Select(_ => (float)((random.NextDouble() * 2) - 1)).ToArray();
    }

    [Theory]
    [InlineData(LinearPrecision.BF16, 3)]
    [InlineData(LinearPrecision.BF16, 40)]
    [InlineData(LinearPrecision.Int8, 3)]
    [InlineData(LinearPrecision.Int8, 40)]
    public void Apply_WithPrecision_RunsTheKernelOfTheWeight(LinearPrecision precision, int rows)
    {
        var linear = new Linear(19, 13, VarBuilder.FromInit(seed: 1, std: 0.5f));
        var x = Input(rows, 19, 2);
        var expected = new float[rows * 13];
        var weight = linear.Weight.Value.ToArray();
        var bias = linear.Bias!.Value.ToArray();
        if (precision == LinearPrecision.BF16)
        {
            Bf16Gemm.MatMulReference(x, rows, 19, Bf16Gemm.QuantizeWeights(weight), 13, bias, expected, accumulate: false);
        }
        else
        {
            Int8Gemm.MatMulReference(x, rows, Int8Weights.Quantize(weight, 13, 19), bias, expected, accumulate: false);
        }

        linear.SetPrecision(precision);
        var y = new float[rows * 13];
        linear.Forward(x, rows, y);

        Assert.Equal(precision, linear.Precision);
        for (int i = 0; i < y.Length; i++) Assert.Equal(expected[i], y[i], Tolerances.LayerVsLoop);
    }

    [Fact]
    public void Apply_AfterTheWeightChanges_QuantizesTheNewWeight()
    {
        var linear = new Linear(8, 4, VarBuilder.FromInit(seed: 3, std: 0.5f));
        linear.SetPrecision(LinearPrecision.Int8);
        var x = Input(2, 8, 4);
        var before = new float[8];
        linear.Forward(x, 2, before);

        linear.Weight.Value = Tensor.FromArray(linear.Weight.Value.ToArray().Select(v => v * 2).ToArray(), linear.Weight.Shape);
        var after = new float[8];
        linear.Forward(x, 2, after);

        var bias = linear.Bias!.Value.ToArray();
        for (int i = 0; i < after.Length; i++)
        {
            // y = W·x + b: doubling W doubles y − b (the symmetric weight scale doubles with it, so exactly).
            Assert.Equal(2 * (before[i] - bias[i % 4]), after[i] - bias[i % 4], 1e-5f);
        }
    }

    [Fact]
    public void SetPrecision_F32_DropsTheKernel()
    {
        var linear = new Linear(8, 4, VarBuilder.FromInit(seed: 3, std: 0.5f));
        var x = Input(20, 8, 5);
        var f32 = new float[80];
        linear.Forward(x, 20, f32);

        linear.SetPrecision(LinearPrecision.BF16);
        linear.SetPrecision(LinearPrecision.F32);
        var again = new float[80];
        linear.Forward(x, 20, again);

        Assert.Equal(LinearPrecision.F32, linear.Precision);
        Assert.Equal(f32, again);
    }

    [Theory]
    [InlineData("bf16", LinearPrecision.BF16)]
    [InlineData("INT8", LinearPrecision.Int8)]
    [InlineData("float32", LinearPrecision.F32)]
    public void Parse_KnownNames(string text, LinearPrecision expected) => Assert.Equal(expected, InferencePrecision.Parse(text));

    [Fact]
    public void Parse_Unknown_ListsTheChoices()
    {
        var error = Assert.Throws<ArgumentException>(() => InferencePrecision.Parse("fp8"));

        Assert.Contains("f32, bf16, int8", error.Message, StringComparison.Ordinal);
    }
}
