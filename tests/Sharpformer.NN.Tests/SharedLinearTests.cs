using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels.Quant;

namespace Sharpformer.NN.Tests;

/// <summary>
/// <see cref="Linear.ApplyShared"/>: layers that read one input, applied together, give what <see cref="Linear.Apply"/>
/// gives on each, bit for bit, whatever their weights (quantized, dense F32/F16/BF16, mixed, so that the group falls back
/// to one call per layer), for decode and prefill row counts; and it checks shapes.
/// </summary>
public sealed class SharedLinearTests
{
    private static Linear[] Layers(int n, bool bias, int seed) =>
    [
        new Linear(n, 70, VarBuilder.FromInit(seed: seed, std: 0.05f).Push("q"), bias: bias),
        new Linear(n, 9, VarBuilder.FromInit(seed: seed + 1, std: 0.05f).Push("k"), bias: bias),
        new Linear(n, 13, VarBuilder.FromInit(seed: seed + 2, std: 0.05f).Push("v"), bias: bias),
    ];

    private static Linear[] Narrow(int n, DType dtype, int seed)
    {
        var tensors = new Dictionary<string, Tensor>();
        var rng = new Random(seed);
        int[] outs = [70, 9, 13];
        for (var p = 0; p < 3; p++)
        {
            tensors[$"{p}.weight"] = Tensor.FromArray(Enumerable.Range(0, outs[p] * n).Select(_ => (float)(rng.NextDouble() - 0.5) * 0.1f).ToArray(), new Shape(outs[p], n));
            tensors[$"{p}.bias"] = Tensor.RandomNormal(new Shape(outs[p]), rng);
        }

        var vb = VarBuilder.FromTensors(tensors);
        return [new Linear(n, 70, vb.Push("0"), dtype: dtype), new Linear(n, 9, vb.Push("1"), dtype: dtype), new Linear(n, 13, vb.Push("2"), dtype: dtype)];
    }

    private static void AssertSame(Linear[] layers, int rows, bool three)
    {
        int n = layers[0].InFeatures;
        var x = Tensor.RandomNormal(new Shape(rows, n), new Random(rows + n)).ToArray();
        var count = three ? 3 : 2;
        foreach (var accumulate in new[] { false, true })
        {
            var expected = new float[count][];
            var actual = new float[count][];
            for (var p = 0; p < count; p++)
            {
                expected[p] = Enumerable.Range(0, rows * layers[p].OutFeatures).Select(i => i * 0.01f).ToArray();
                actual[p] = (float[])expected[p].Clone();
                layers[p].Apply(x, rows, expected[p], accumulate);
            }

            Linear.ApplyShared(x, rows, layers[0], actual[0], layers[1], actual[1], three ? layers[2] : null, three ? actual[2] : default, accumulate);
            for (var p = 0; p < count; p++)
            {
                Assert.Equal(expected[p], actual[p]);
            }
        }
    }

    [Theory]
    [InlineData(QuantType.Q8_0, 1)]
    [InlineData(QuantType.Q4_K, 1)]
    [InlineData(QuantType.Q6_K, 8)]
    [InlineData(QuantType.Q4_0, 19)]
    public void ApplyShared_Quantized_EqualsApplyPerLayer(QuantType type, int rows)
    {
        var layers = Layers(512, bias: true, seed: 3);
        foreach (var l in layers)
        {
            l.Quantize(type);
        }

        AssertSame(layers, rows, three: true);
        AssertSame(layers, rows, three: false);

        // Mixed block types (Q4_K beside Q6_K, as in llama.cpp's Q4_K_M files).
        layers[2].Quantize(QuantType.Q6_K);
        AssertSame(layers, rows, three: true);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(8)]
    [InlineData(12)]
    public void ApplyShared_DenseF32_EqualsApplyPerLayer(int rows)
    {
        AssertSame(Layers(67, bias: true, seed: 5), rows, three: true);
        AssertSame(Layers(64, bias: false, seed: 6), rows, three: false);
    }

    [Theory]
    [InlineData(DType.F16, 1)]
    [InlineData(DType.BF16, 2)]
    [InlineData(DType.F16, 8)]
    public void ApplyShared_Narrow_EqualsApplyPerLayer(DType dtype, int rows) => AssertSame(Narrow(96, dtype, 7), rows, three: true);

    [Fact]
    public void ApplyShared_MixedWeights_FallsBackToOneCallPerLayer()
    {
        var layers = Layers(256, bias: true, seed: 9);
        layers[0].Quantize(QuantType.Q8_0);
        AssertSame(layers, 1, three: true);
        layers[1].SetPrecision(LinearPrecision.BF16);
        layers[0].Dequantize();
        AssertSame(layers, 2, three: true);
    }

    [Fact]
    public void ApplyShared_OtherInOrShortOutput_Throws()
    {
        var a = new Linear(32, 4, VarBuilder.FromInit(seed: 1));
        var b = new Linear(16, 4, VarBuilder.FromInit(seed: 2));
        var x = new float[32];
        Assert.Throws<ArgumentException>(() => Linear.ApplyShared(x, 1, a, new float[4], b, new float[4]));
        Assert.Throws<ArgumentException>(() => Linear.ApplyShared(x, 1, a, new float[4], a, new float[3]));
    }
}
