using Sharpformer.Tensors;

namespace Sharpformer.NN.Tests;

public class LayerTests
{
    private static Tensor Input(int seed, params int[] dims) => Tensor.RandomNormal(new Shape(dims), new Random(seed));

    private static void Close(float[] expected, float[] actual, float tolerance = Tolerances.LayerVsLoop)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(MathF.Abs(expected[i] - actual[i]) <= tolerance * (1 + MathF.Abs(expected[i])), $"[{i}] expected {expected[i]}, got {actual[i]}");
        }
    }

    [Fact]
    public void Linear_Forward_MatchesPlainLoop()
    {
        var linear = new Linear(5, 3, VarBuilder.FromInit(seed: 1, std: 0.5f));
        linear.Bias!.Value = Tensor.FromArray(new[] { 0.1f, -0.2f, 0.3f });
        var x = Input(2, 2, 4, 5);
        var w = linear.Weight.Value.ToArray();
        var b = linear.Bias.Value.ToArray();
        var xs = x.ToArray();
        var expected = new float[2 * 4 * 3];
        for (int r = 0; r < 8; r++)
        {
            for (int o = 0; o < 3; o++)
            {
                double s = b[o];
                for (int i = 0; i < 5; i++) s += (double)xs[(r * 5) + i] * w[(o * 5) + i];
                expected[(r * 3) + o] = (float)s;
            }
        }

        var y = linear.Forward(x);
        Assert.Equal([2, 4, 3], y.Shape.Dims.ToArray());
        Close(expected, y.ToArray());
        var packed = new float[8 * 3];
        linear.Forward(xs, 8, packed);
        Close(expected, packed);
    }

    [Fact]
    public void Linear_WeightReplaced_PackedPathUsesNewWeight()
    {
        var linear = new Linear(4, 2, VarBuilder.FromInit(seed: 3), bias: false);
        var x = new float[] { 1, 2, 3, 4 };
        var y = new float[2];
        linear.Forward(x, 1, y);
        linear.Weight.Value = Tensor.FromArray(new float[] { 1, 0, 0, 0, 0, 0, 0, 1 }, new Shape(2, 4));
        linear.Forward(x, 1, y);
        Assert.Equal([1f, 4f], y);
        Assert.Null(linear.Bias);
    }

    [Fact]
    public void Embedding_Forward_GathersRows()
    {
        var embedding = new Embedding(4, 3, VarBuilder.FromInit(seed: 5));
        var ids = Tensor.FromArray(new[] { 3, 0, 3 }, new Shape(1, 3));
        var y = embedding.Forward(ids).ToArray();
        var table = embedding.Weight.Value.ToArray();
        Close([.. table[9..12], .. table[0..3], .. table[9..12]], y, 0f);
    }

    [Fact]
    public void LayerNorm_Forward_MatchesPlainLoop()
    {
        var norm = new LayerNorm(6, 1e-5f, VarBuilder.FromInit());
        norm.Weight.Value = Tensor.FromArray(new[] { 1f, 2f, 0.5f, 1f, -1f, 3f });
        norm.Bias.Value = Tensor.FromArray(new[] { 0f, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f });
        var x = Input(7, 3, 6);
        var xs = x.ToArray();
        var g = norm.Weight.Value.ToArray();
        var b = norm.Bias.Value.ToArray();
        var expected = new float[xs.Length];
        for (int r = 0; r < 3; r++)
        {
            var row = xs.Skip(r * 6).Take(6).Select(v => (double)v).ToArray();
            double mean = row.Average(), variance = row.Average(v => (v - mean) * (v - mean));
            for (int c = 0; c < 6; c++) expected[(r * 6) + c] = (float)(((row[c] - mean) / Math.Sqrt(variance + 1e-5) * g[c]) + b[c]);
        }

        Close(expected, norm.Forward(x).ToArray());
    }

    [Fact]
    public void RmsNorm_Forward_MatchesPlainLoop()
    {
        var norm = new RmsNorm(5, 1e-6f, VarBuilder.FromInit());
        norm.Weight.Value = Tensor.FromArray(new[] { 1f, 2f, 0.5f, 1f, -1f });
        var x = Input(8, 2, 5);
        var xs = x.ToArray();
        var g = norm.Weight.Value.ToArray();
        var expected = new float[xs.Length];
        for (int r = 0; r < 2; r++)
        {
            double ms = xs.Skip(r * 5).Take(5).Average(v => (double)v * v);
            for (int c = 0; c < 5; c++) expected[(r * 5) + c] = (float)(xs[(r * 5) + c] / Math.Sqrt(ms + 1e-6) * g[c]);
        }

        Close(expected, norm.Forward(x).ToArray());
    }

    [Fact]
    public void Dropout_EvalAndTrain_IdentityThenZeroesAndScales()
    {
        var dropout = new Dropout(0.5f, seed: 1);
        var x = Tensor.Ones(new Shape(1000));
        dropout.Eval();
        Assert.Same(x, dropout.Forward(x));
        dropout.Train();
        var y = dropout.Forward(x).ToArray();
        Assert.All(y, v => Assert.True(v == 0f || v == 2f));
        int kept = y.Count(v => v != 0f);
        Assert.InRange(kept, 400, 600);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Dropout(1f));
    }

    [Fact]
    public void Sinusoidal_Table_MatchesAttentionIsAllYouNeedFormula()
    {
        var pe = new SinusoidalPositionalEncoding(50, 8);
        var rows = pe.Forward(3, offset: 10).ToArray();
        for (int p = 0; p < 3; p++)
        {
            for (int i = 0; i < 4; i++)
            {
                double angle = (p + 10) / Math.Pow(10000, 2.0 * i / 8);
                Assert.Equal(Math.Sin(angle), rows[(p * 8) + (2 * i)], 5);
                Assert.Equal(Math.Cos(angle), rows[(p * 8) + (2 * i) + 1], 5);
            }
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => pe.Forward(5, offset: 48));
    }

    [Fact]
    public void Rotary_Forward_MatchesRotateHalfLoop()
    {
        const int b = 1, h = 2, t = 3, d = 4, offset = 5;
        var rope = new RotaryEmbedding(d, 16, theta: 10000f);
        var x = Input(9, b, h, t, d);
        var xs = x.ToArray();
        var expected = new float[xs.Length];
        for (int row = 0; row < b * h * t; row++)
        {
            int p = (row % t) + offset;
            for (int i = 0; i < d; i++)
            {
                int pair = i % (d / 2);
                double angle = p / Math.Pow(10000, 2.0 * pair / d);
                double rotated = i < d / 2 ? -xs[(row * d) + i + (d / 2)] : xs[(row * d) + i - (d / 2)];
                expected[(row * d) + i] = (float)((xs[(row * d) + i] * Math.Cos(angle)) + (rotated * Math.Sin(angle)));
            }
        }

        Close(expected, rope.Forward(x, offset).ToArray());
    }

    [Fact]
    public void LearnedPositions_Forward_ReturnsTableRows()
    {
        var positions = new LearnedPositionalEmbedding(10, 3, VarBuilder.FromInit(seed: 2));
        var rows = positions.Forward(2, offset: 4).ToArray();
        Close(positions.Weight.Value.ToArray()[12..18], rows, 0f);
    }
}
