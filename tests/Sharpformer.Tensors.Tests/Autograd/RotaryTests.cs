using Sharpformer.Tensors.Kernels;

namespace Sharpformer.Tensors.Tests;

/// <summary>Ops.Rotary (RoPE, HF rotate_half layout): forward against the formula written out, backward against finite differences.</summary>
public class RotaryTests
{
    private static (Tensor Cos, Tensor Sin) Tables(int positions, int d, float scaling = 1f)
    {
        var cos = new float[positions * d];
        var sin = new float[positions * d];
        for (int p = 0; p < positions; p++)
        {
            for (int i = 0; i < d / 2; i++)
            {
                double angle = p / Math.Pow(10000.0, 2.0 * i / d);
                cos[p * d + i] = cos[p * d + i + d / 2] = (float)Math.Cos(angle) * scaling;
                sin[p * d + i] = sin[p * d + i + d / 2] = (float)Math.Sin(angle) * scaling;
            }
        }

        return (Tensor.FromArray(cos, new Shape(positions, d)), Tensor.FromArray(sin, new Shape(positions, d)));
    }

    [Fact]
    public void Forward_EqualsRotateHalfFormula()
    {
        const int b = 2, t = 3, h = 2, d = 6;
        var (cos, sin) = Tables(10, d);
        var x = Tensor.RandomUniform(new Shape(b, t, h * d), new Random(3), -1f, 1f);
        var positions = Tensor.FromArray(new[] { 0, 1, 2, 4, 7, 9 }, new Shape(b, t));
        var y = Ops.Rotary(x, h, positions, cos, sin).ToArray();
        var xs = x.ToArray();
        var ps = positions.ToArray<int>();
        var cs = cos.ToArray();
        var ss = sin.ToArray();
        for (int r = 0; r < b * t; r++)
        {
            for (int head = 0; head < h; head++)
            {
                for (int i = 0; i < d; i++)
                {
                    int o = r * h * d + head * d;
                    float rotated = i < d / 2 ? -xs[o + i + d / 2] : xs[o + i - d / 2];
                    float want = xs[o + i] * cs[ps[r] * d + i] + rotated * ss[ps[r] * d + i];
                    Assert.True(Math.Abs(want - y[o + i]) <= 1e-6f, $"row {r} head {head} [{i}]: {y[o + i]} vs {want}");
                }
            }
        }
    }

    [Theory]
    [InlineData(1f)]
    [InlineData(1.3f)]
    public void Backward_MatchesFiniteDifferences(float scaling)
    {
        var (cos, sin) = Tables(12, 4, scaling);
        var positions = Tensor.FromArray(new[] { 3, 0, 11, 5, 5, 2 }, new Shape(2, 3));
        var x = Tensor.RandomUniform(new Shape(2, 3, 12), new Random(17), -1f, 1f);
        x.RequiresGrad = true;
        GradCheck.Check(inputs => Ops.Rotary(inputs[0], 3, positions, cos, sin), x);
    }

    [Fact]
    public void Kernel_PositionOutsideTables_ThrowsNamingIt()
    {
        var (cos, sin) = Tables(4, 4);
        var x = new float[8];
        var e = Assert.Throws<ArgumentException>(() => Rotary.Apply(x, 2, 4, 1, 4, [1, 4], cos.AsReadOnlySpan<float>(), sin.AsReadOnlySpan<float>()));
        Assert.Contains("position 4", e.Message, StringComparison.Ordinal);
    }
}
