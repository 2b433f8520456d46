using Sharpformer.Tensors.Kernels;
using Sharpformer.Tensors.Kernels.Quant;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Tests.Kernels;

/// <summary>
/// Products that share one input as one parallel region (<see cref="QuantMatMul"/>'s and <see cref="Gemv"/>'s grouped
/// overloads) against one call per product: the same kernels on the same activations, so the outputs must be equal bit
/// for bit, on 1 and 2 threads (the chunks of all matrices dealt as one range), with and without bias, overwriting and
/// accumulating. CI runs this class again with AVX-512 off and with all SIMD off (the AVX2 and the scalar paths).
/// </summary>
[Collection("ParallelFor degree")]
public sealed class SharedRegionTests
{
    public static TheoryData<QuantType, QuantType, QuantType?, int, int> QuantCases()
    {
        var data = new TheoryData<QuantType, QuantType, QuantType?, int, int>();
        foreach (var type in new[] { QuantType.Q8_0, QuantType.Q4_0, QuantType.Q4_K, QuantType.Q6_K })
        {
            foreach (var rows in new[] { 1, 2, 8, 19 })
            {
                data.Add(type, type, type, rows, 2 * 256);
                data.Add(type, type, null, rows, 256);
            }

            data.Add(type, type, type, 1, 11 * 256); // decode: long rows, Q8_0's groups of eight blocks and a tail
        }

        // Weight types that need two or three kinds of activations (the K-quants share Q8_K at batch 1, not in the lanes).
        foreach (var rows in new[] { 1, 8, 27 })
        {
            data.Add(QuantType.Q4_K, QuantType.Q4_K, QuantType.Q6_K, rows, 512);
            data.Add(QuantType.Q8_0, QuantType.Q4_K, QuantType.Q6_K, rows, 512);
            data.Add(QuantType.Q4_K, QuantType.Q8_0, QuantType.Q4_K, rows, 512);
            data.Add(QuantType.Q4_0, QuantType.Q8_0, null, rows, 256);

            // The second and third share one decode setup that the first does not (batch 1 makes one per weight type).
            data.Add(QuantType.Q8_0, QuantType.Q4_K, QuantType.Q4_K, rows, 512);
            data.Add(QuantType.Q6_K, QuantType.Q4_K, QuantType.Q4_K, rows, 512);
        }

        return data;
    }

    private static float[] Random(int n, Random rng, float scale)
    {
        var x = new float[n];
        for (var i = 0; i < n; i++)
        {
            x[i] = (float)((rng.NextDouble() * 2) - 1) * scale;
        }

        return x;
    }

    private static void AssertBitEqual(float[] expected, float[] actual, string what)
    {
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]), $"{what} y[{i}]: {actual[i]} vs a call per product {expected[i]}");
        }
    }

    [Theory]
    [MemberData(nameof(QuantCases))]
    public void QuantMultiply_Shared_BitEqualToOneCallPerProduct(QuantType t0, QuantType t1, QuantType? t2, int rows, int n)
    {
        var rng = new Random((rows * 31) + n + (int)t0 + (10 * (int)t1));
        var x = Random(rows * n, rng, 1f);
        // Odd output counts of very different sizes (a large q next to small k and v), so the chunks cut unevenly.
        int[] outs = [131, 9, 37];
        QuantType?[] types = [t0, t1, t2];
        var count = t2 is null ? 2 : 3;
        var w = new QuantizedMatrix[count];
        var bias = new float[count][];
        for (var p = 0; p < count; p++)
        {
            w[p] = QuantizedMatrix.Quantize(Random(outs[p] * n, rng, 0.05f), outs[p], n, types[p]!.Value);
            bias[p] = Random(outs[p], rng, 0.1f);
        }

        foreach (var threads in new[] { 1, 2 })
        {
            foreach (var accumulate in new[] { false, true })
            {
                foreach (var withBias in new[] { false, true })
                {
                    var start = new float[count][];
                    var expected = new float[count][];
                    var actual = new float[count][];
                    for (var p = 0; p < count; p++)
                    {
                        start[p] = Random(rows * outs[p], rng, 1f);
                        expected[p] = (float[])start[p].Clone();
                        actual[p] = (float[])start[p].Clone();
                    }

                    int saved = ParallelFor.MaxDegreeOfParallelism;
                    try
                    {
                        ParallelFor.MaxDegreeOfParallelism = threads;
                        for (var p = 0; p < count; p++)
                        {
                            QuantMatMul.Multiply(x, rows, w[p], withBias ? bias[p] : default, expected[p], accumulate);
                        }

                        QuantMatMul.Multiply(
                            x,
                            rows,
                            new QuantProduct(w[0], actual[0], withBias ? bias[0] : default),
                            new QuantProduct(w[1], actual[1], withBias ? bias[1] : default),
                            count > 2 ? new QuantProduct(w[2], actual[2], withBias ? bias[2] : default) : default,
                            accumulate);
                    }
                    finally
                    {
                        ParallelFor.MaxDegreeOfParallelism = saved;
                    }

                    for (var p = 0; p < count; p++)
                    {
                        AssertBitEqual(expected[p], actual[p], $"{types[p]} product {p}, {threads} threads, accumulate {accumulate}, bias {withBias}");
                    }
                }
            }
        }
    }

    [Theory]
    [InlineData(QuantType.Q4_K, 1)]
    [InlineData(QuantType.Q8_0, 8)]
    [InlineData(QuantType.Q6_K, 3)]
    public void QuantMultiply_SharedReference_BitEqualToReference(QuantType type, int rows)
    {
        var rng = new Random(rows + (int)type);
        const int n = 512;
        var x = Random(rows * n, rng, 1f);
        var w0 = QuantizedMatrix.Quantize(Random(21 * n, rng, 0.05f), 21, n, type);
        var w1 = QuantizedMatrix.Quantize(Random(6 * n, rng, 0.05f), 6, n, type);
        var b1 = Random(6, rng, 0.1f);
        float[] e0 = new float[rows * 21], e1 = new float[rows * 6], a0 = new float[rows * 21], a1 = new float[rows * 6];
        QuantMatMul.MultiplyReference(x, rows, w0, default, e0);
        QuantMatMul.MultiplyReference(x, rows, w1, b1, e1);
        QuantMatMul.MultiplySharedReference(x, rows, new QuantProduct(w0, a0), new QuantProduct(w1, a1, b1), default, accumulate: false);
        AssertBitEqual(e0, a0, "first");
        AssertBitEqual(e1, a1, "second");
    }

    [Fact]
    public void QuantMultiply_Shared_RejectsAnotherInOrShortOutput()
    {
        var rng = new Random(3);
        var x = Random(512, rng, 1f);
        var w0 = QuantizedMatrix.Quantize(Random(4 * 512, rng, 0.05f), 4, 512, QuantType.Q8_0);
        var w1 = QuantizedMatrix.Quantize(Random(4 * 256, rng, 0.05f), 4, 256, QuantType.Q8_0);
        Assert.Throws<ArgumentException>(() => QuantMatMul.Multiply(x, 1, new QuantProduct(w0, new float[4]), new QuantProduct(w1, new float[4])));
        Assert.Throws<ArgumentException>(() => QuantMatMul.Multiply(x, 1, new QuantProduct(w0, new float[4]), new QuantProduct(w0, new float[3])));
    }

    public static TheoryData<string, int, int, bool> GemvCases()
    {
        var data = new TheoryData<string, int, int, bool>();
        foreach (var type in new[] { "f16", "bf16", "f32" })
        {
            data.Add(type, 1, 2048, true); // decode, q/k/v-like
            data.Add(type, 2, 77, false); // R = 2, a row tail
            data.Add(type, 3, 1030, true); // R ≥ 3: the first matrix grouped (Out ≥ 1024), the others not
            data.Add(type, 8, 64, false); // the decode batch
            data.Add(type, 1, 5, true); // rows shorter than one vector
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(GemvCases))]
    public void GemvMatVec_Shared_BitEqualToOneCallPerProduct(string type, int rows, int n, bool three)
    {
        var rng = new Random((rows * 13) + n + type.Length);
        var x = Random(rows * n, rng, 1f);
        int[] outs = [n >= 1000 ? 1031 : 133, 9, 37];
        var count = three ? 3 : 2;
        var w = new float[count][];
        var bias = new float[count][];
        for (var p = 0; p < count; p++)
        {
            w[p] = Random(outs[p] * n, rng, 0.05f);
            bias[p] = Random(outs[p], rng, 0.1f);
        }

        var halves = w.Select(m => m.Select(v => (Half)v).ToArray()).ToArray();
        var brains = w.Select(m => m.Select(v => (BFloat16)v).ToArray()).ToArray();
        foreach (var threads in new[] { 1, 2 })
        {
            foreach (var accumulate in new[] { false, true })
            {
                foreach (var withBias in new[] { false, true })
                {
                    var expected = new float[count][];
                    var actual = new float[count][];
                    for (var p = 0; p < count; p++)
                    {
                        expected[p] = Random(rows * outs[p], rng, 1f);
                        actual[p] = (float[])expected[p].Clone();
                    }

                    int saved = ParallelFor.MaxDegreeOfParallelism;
                    try
                    {
                        ParallelFor.MaxDegreeOfParallelism = threads;
                        for (var p = 0; p < count; p++)
                        {
                            var b = withBias ? bias[p] : default;
                            switch (type)
                            {
                                case "f16": Gemv.MatVec(x, rows, halves[p], n, outs[p], b, expected[p], accumulate); break;
                                case "bf16": Gemv.MatVec(x, rows, brains[p], n, outs[p], b, expected[p], accumulate); break;
                                default: Gemv.MatVec(x, rows, w[p], n, outs[p], b, expected[p], accumulate); break;
                            }
                        }

                        ReadOnlySpan<float> b0 = withBias ? bias[0] : default, b1 = withBias ? bias[1] : default, b2 = withBias && three ? bias[2] : default;
                        switch (type)
                        {
                            case "f16":
                                Gemv.MatVec(x, rows, n, new GemvProduct<Half>(halves[0], outs[0], actual[0], b0), new GemvProduct<Half>(halves[1], outs[1], actual[1], b1), three ? new GemvProduct<Half>(halves[2], outs[2], actual[2], b2) : default, accumulate);
                                break;
                            case "bf16":
                                Gemv.MatVec(x, rows, n, new GemvProduct<BFloat16>(brains[0], outs[0], actual[0], b0), new GemvProduct<BFloat16>(brains[1], outs[1], actual[1], b1), three ? new GemvProduct<BFloat16>(brains[2], outs[2], actual[2], b2) : default, accumulate);
                                break;
                            default:
                                Gemv.MatVec(x, rows, n, new GemvProduct<float>(w[0], outs[0], actual[0], b0), new GemvProduct<float>(w[1], outs[1], actual[1], b1), three ? new GemvProduct<float>(w[2], outs[2], actual[2], b2) : default, accumulate);
                                break;
                        }
                    }
                    finally
                    {
                        ParallelFor.MaxDegreeOfParallelism = saved;
                    }

                    for (var p = 0; p < count; p++)
                    {
                        AssertBitEqual(expected[p], actual[p], $"{type} product {p}, {threads} threads, accumulate {accumulate}, bias {withBias}");
                    }
                }
            }
        }
    }

    [Fact]
    public void GemvMatVec_Shared_RejectsShortSpans()
    {
        var x = new float[64];
        var w = new Half[4 * 64];
        Assert.Throws<ArgumentException>(() => Gemv.MatVec(x, 1, 64, new GemvProduct<Half>(w, 4, new float[4]), new GemvProduct<Half>(w, 4, new float[3])));
        Assert.Throws<ArgumentException>(() => Gemv.MatVec(x, 1, 64, new GemvProduct<Half>(w, 4, new float[4]), new GemvProduct<Half>(w, 5, new float[5])));
    }
}
