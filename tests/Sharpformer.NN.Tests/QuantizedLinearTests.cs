using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels.Quant;

namespace Sharpformer.NN.Tests;

/// <summary>
/// The dense layer with quantized inference weights: <see cref="Linear.Apply"/> multiplies by exactly the blocks
/// <see cref="QuantizedMatrix.Quantize"/> makes of the weight (decode and prefill), follows weight changes, refuses
/// autograd, and checks shapes.
/// </summary>
public sealed class QuantizedLinearTests
{
    [Theory]
    [InlineData(QuantType.Q8_0, 1)]
    [InlineData(QuantType.Q4_0, 8)]
    [InlineData(QuantType.Q4_K, 3)]
    [InlineData(QuantType.Q6_K, 21)]
    public void Apply_Quantized_EqualsKernelOnTheWeightsBlocks(QuantType type, int rows)
    {
        var linear = new Linear(256, 40, VarBuilder.FromInit(seed: 3, std: 0.05f));
        linear.Bias!.Value.AsSpan<float>().Fill(0.5f);
        var x = Tensor.RandomNormal(new Shape(rows, 256), new Random(4)).ToArray();
        var dense = new float[rows * 40];
        linear.Apply(x, rows, dense, accumulate: false);

        linear.Quantize(type);
        Assert.Equal(type, linear.QuantizedWeight!.Type);
        var expected = new float[rows * 40];
        QuantMatMul.Multiply(x, rows, QuantizedMatrix.Quantize(linear.Weight.Value.ToArray(), 40, 256, type), linear.Bias.Value.ToArray(), expected);
        var y = new float[rows * 40];
        linear.Apply(x, rows, y, accumulate: false);
        Assert.Equal(expected, y);

        // Close to the dense layer, but not equal to it: the quantized product really ran.
        var rms = Math.Sqrt(dense.Average(v => (double)v * v));
        var worst = dense.Select((v, i) => Math.Abs(v - y[i])).Max();
        Assert.InRange(worst, 1e-7, Tolerances.QuantizedLinearVsDense * rms);

        // accumulate adds to y; Dequantize goes back to the dense weight.
        linear.Apply(x, rows, y, accumulate: true);
        Assert.Equal(expected.Select(v => 2 * v), y);
        linear.Dequantize();
        linear.Apply(x, rows, y, accumulate: false);
        Assert.Equal(dense, y);
    }

    [Fact]
    public void Apply_WeightChangedAfterQuantize_QuantizesAgain()
    {
        var linear = new Linear(64, 8, VarBuilder.FromInit(seed: 5, std: 0.1f), bias: false);
        linear.Quantize(QuantType.Q8_0);
        var x = Tensor.RandomNormal(new Shape(1, 64), new Random(6)).ToArray();
        var before = new float[8];
        linear.Apply(x, 1, before, accumulate: false);

        var w = linear.Weight.Value.AsSpan<float>();
        for (var i = 0; i < w.Length; i++)
        {
            w[i] *= -2f;
        }

        linear.Weight.MarkModified();
        var after = new float[8];
        linear.Apply(x, 1, after, accumulate: false);
        var expected = new float[8];
        QuantMatMul.Multiply(x, 1, QuantizedMatrix.Quantize(linear.Weight.Value.ToArray(), 8, 64, QuantType.Q8_0), default, expected);
        Assert.Equal(expected, after);
        Assert.NotEqual(before, after);
    }

    [Fact]
    public void Quantize_F16Weight_UsesItsValues()
    {
        var linear = new Linear(32, 4, VarBuilder.FromInit(seed: 7, std: 0.1f), dtype: DType.F16);
        linear.Quantize(QuantType.Q4_0);
        var widened = linear.Weight.Value.To(DType.F32).ToArray();
        var expected = QuantizedMatrix.Quantize(widened, 4, 32, QuantType.Q4_0);
        Assert.True(expected.Data.SequenceEqual(linear.QuantizedWeight!.Data));
    }

    [Fact]
    public void Forward_Autograd_OnQuantizedLayer_SaysInferenceOnly()
    {
        var linear = new Linear(32, 4, VarBuilder.FromInit(seed: 8, std: 0.1f));
        linear.Quantize(QuantType.Q8_0);
        var e = Assert.Throws<InvalidOperationException>(() => linear.Forward(Tensor.Zeros(new Shape(2, 32))));
        Assert.Contains("inference only", e.Message, StringComparison.Ordinal);
        Assert.Contains("Dequantize()", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Quantize_InNotWholeBlocks_SaysWhichTypesFit()
    {
        var linear = new Linear(96, 4, VarBuilder.FromInit(seed: 9, std: 0.1f));
        var e = Assert.Throws<ArgumentException>(() => linear.Quantize(QuantType.Q4_K));
        Assert.Contains("In = 96", e.Message, StringComparison.Ordinal);
        Assert.Contains("Q8_0 or Q4_0", e.Message, StringComparison.Ordinal);
        Assert.Null(linear.QuantizedWeight);
    }

    [Fact]
    public void UseQuantizedWeight_WrongShape_Throws()
    {
        var linear = new Linear(32, 4, VarBuilder.FromInit(seed: 10, std: 0.1f));
        var other = QuantizedMatrix.Quantize(new float[5 * 32], 5, 32, QuantType.Q8_0);
        var e = Assert.Throws<ArgumentException>(() => linear.UseQuantizedWeight(other));
        Assert.Contains("[5, 32]", e.Message, StringComparison.Ordinal);
    }
}
