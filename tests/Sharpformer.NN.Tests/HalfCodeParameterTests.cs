using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels;

namespace Sharpformer.NN.Tests;

/// <summary>
/// F16 weights re-encoded in place as half codes for the decode kernels (<see cref="Parameter.EnterHalfCodes"/>): the
/// layers compute bit for bit what they compute over the IEEE halves, and whoever reads <see cref="Parameter.Value"/>
/// gets IEEE halves that stay so.
/// </summary>
public class HalfCodeParameterTests
{
    /// <summary>[out, in] F16 weights N(0, 0.02) (some halves subnormal), a ±0, and values near the code range's ends.</summary>
    private static Tensor Weights(int rows, int cols, int seed, float extreme = 127.9f)
    {
        var values = Tensor.RandomNormal(new Shape(rows, cols), new Random(seed), 0f, 0.02f).ToArray();
        values[0] = 0f;
        values[1] = -0f;
        values[2] = extreme;
        values[3] = -extreme;
        values[4] = 3e-7f; // a subnormal half
        return Tensor.FromArray(values, new Shape(rows, cols)).To(DType.F16);
    }

    /// <summary>y = x · Wᵀ + b over the IEEE halves, by the F16 kernels (the reference the coded layer must equal bit for bit).</summary>
    private static float[] IeeeApply(Tensor weight, Tensor? bias, float[] x, int rows)
    {
        int outF = weight.Shape[0], inF = weight.Shape[1];
        var y = new float[rows * outF];
        var b = bias is null ? default : bias.AsReadOnlySpan<float>();
        if (rows <= Gemv.MaxRows)
        {
            Gemv.MatVec(x, rows, weight.AsReadOnlySpan<Half>(), inF, outF, b, y);
        }
        else
        {
            Gemm.SgemmNarrowB(rows, outF, inF, 1f, x, inF, weight.AsReadOnlySpan<Half>(), inF, 0f, y, outF, b);
        }

        return y;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(5)]
    [InlineData(40)]
    public void Apply_F16Weight_CodedInPlaceAndBitEqualToIeee(int rows)
    {
        var weight = Weights(70, 96, seed: 1);
        var bias = Tensor.RandomNormal(new Shape(70), new Random(2));
        var linear = new Linear(96, 70, VarBuilder.FromTensors(new Dictionary<string, Tensor> { ["weight"] = weight, ["bias"] = bias }), dtype: DType.F16);
        var x = Tensor.RandomNormal(new Shape(rows, 96), new Random(3)).ToArray();
        var expected = IeeeApply(weight, bias, x, rows);

        var y = new float[rows * 70];
        linear.Apply(x, rows, y, accumulate: false);
        Assert.True(linear.Weight.HoldsHalfCodes);
        Assert.Equal(expected, y);

        // Read: IEEE halves, the stored bits exactly, and they stay IEEE (the tensor is the caller's now).
        var value = linear.Weight.Value;
        Assert.False(linear.Weight.HoldsHalfCodes);
        Assert.Equal(weight.AsReadOnlySpan<Half>().ToArray(), value.AsReadOnlySpan<Half>().ToArray());
        Array.Clear(y);
        linear.Apply(x, rows, y, accumulate: false);
        Assert.False(linear.Weight.HoldsHalfCodes);
        Assert.Equal(expected, y);
        Assert.Equal(weight.AsReadOnlySpan<Half>().ToArray(), value.AsReadOnlySpan<Half>().ToArray());
    }

    [Fact]
    public void Apply_WeightOutsideTheCodeRange_StaysIeee()
    {
        var weight = Weights(16, 32, seed: 4, extreme: 128f);
        var linear = new Linear(32, 16, VarBuilder.FromTensors(new Dictionary<string, Tensor> { ["weight"] = weight }), bias: false, dtype: DType.F16);
        var x = Tensor.RandomNormal(new Shape(1, 32), new Random(5)).ToArray();
        var y = new float[16];
        linear.Apply(x, 1, y, accumulate: false);
        Assert.False(linear.Weight.HoldsHalfCodes);
        Assert.Equal(IeeeApply(weight, null, x, 1), y);
    }

    [Fact]
    public void Apply_ParameterOverACallersTensor_NeverRecodesIt()
    {
        var weight = Weights(16, 32, seed: 6);
        var before = weight.AsReadOnlySpan<Half>().ToArray();
        var linear = Linear.Tied(new Parameter(weight, requiresGrad: false));
        var x = Tensor.RandomNormal(new Shape(1, 32), new Random(7)).ToArray();
        var y = new float[16];
        linear.Apply(x, 1, y, accumulate: false);
        Assert.False(linear.Weight.HoldsHalfCodes);
        Assert.Equal(before, weight.AsReadOnlySpan<Half>().ToArray());
    }

    [Fact]
    public void LoadStateDict_IntoCodedWeight_LoadsThenCodesAgain()
    {
        var linear = new Linear(64, 24, VarBuilder.FromInit(seed: 8), bias: false, dtype: DType.F16);
        var x = Tensor.RandomNormal(new Shape(1, 64), new Random(9)).ToArray();
        var y = new float[24];
        linear.Apply(x, 1, y, accumulate: false);
        Assert.True(linear.Weight.HoldsHalfCodes);

        var replacement = Weights(24, 64, seed: 10);
        linear.LoadStateDict(new Dictionary<string, Tensor> { ["weight"] = replacement });
        Assert.False(linear.Weight.HoldsHalfCodes);
        linear.Apply(x, 1, y, accumulate: false);
        Assert.True(linear.Weight.HoldsHalfCodes);
        Assert.Equal(IeeeApply(replacement, null, x, 1), y);
    }

    [Fact]
    public void CopyRow_TiedTableCodedByTheHead_WidensTheSameValues()
    {
        var table = Weights(50, 64, seed: 11);
        var embedding = new Embedding(50, 64, VarBuilder.FromTensors(new Dictionary<string, Tensor> { ["weight"] = table }), DType.F16);
        var head = Linear.Tied(embedding.Weight);
        var x = Tensor.RandomNormal(new Shape(1, 64), new Random(12)).ToArray();
        var logits = new float[50];
        head.Apply(x, 1, logits, accumulate: false);
        Assert.True(embedding.Weight.HoldsHalfCodes);
        Assert.Equal(IeeeApply(table, null, x, 1), logits);

        var row = new float[64];
        foreach (int r in new[] { 0, 7, 49 })
        {
            embedding.CopyRow(r, row);
            Assert.Equal(table.To(DType.F32).ToArray()[(r * 64)..((r + 1) * 64)], row);
        }

        Assert.True(embedding.Weight.HoldsHalfCodes);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ApplyShared_CodedGroup_EqualsLayerByLayer(bool oneOutsideTheRange)
    {
        var weights = new[] { Weights(40, 64, 13), Weights(24, 64, 14, extreme: oneOutsideTheRange ? 300f : 127.9f), Weights(24, 64, 15) };
        var layers = weights.Select(w => new Linear(64, w.Shape[0], VarBuilder.FromTensors(new Dictionary<string, Tensor> { ["weight"] = w }), bias: false, dtype: DType.F16)).ToArray();
        var x = Tensor.RandomNormal(new Shape(2, 64), new Random(16)).ToArray();
        var y = weights.Select(w => new float[2 * w.Shape[0]]).ToArray();
        Linear.ApplyShared(x, 2, layers[0], y[0], layers[1], y[1], layers[2], y[2]);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(IeeeApply(weights[i], null, x, 2), y[i]);
            Assert.Equal(!(oneOutsideTheRange && i == 1), layers[i].Weight.HoldsHalfCodes);
        }
    }

    [Fact]
    public async Task Value_ReadWhileAnotherThreadDecodes_SeesIeeeAndProductsStayExact()
    {
        var weight = Weights(256, 512, seed: 17);
        var linear = new Linear(512, 256, VarBuilder.FromTensors(new Dictionary<string, Tensor> { ["weight"] = weight }), bias: false, dtype: DType.F16);
        var x = Tensor.RandomNormal(new Shape(1, 512), new Random(18)).ToArray();
        var expected = IeeeApply(weight, null, x, 1);
        var y = new float[256];
        linear.Apply(x, 1, y, accumulate: false);
        Assert.True(linear.Weight.HoldsHalfCodes);

        using var start = new ManualResetEventSlim();
        var products = Task.Run(() =>
        {
            var local = new float[256];
            start.Wait();
            for (int i = 0; i < 200; i++)
            {
                linear.Apply(x, 1, local, accumulate: false);
                Assert.Equal(expected, local);
            }
        });
        start.Set();
        Thread.Sleep(1);
        var value = linear.Weight.Value;
        await products;
        Assert.Equal(weight.AsReadOnlySpan<Half>().ToArray(), value.AsReadOnlySpan<Half>().ToArray());
    }
}
