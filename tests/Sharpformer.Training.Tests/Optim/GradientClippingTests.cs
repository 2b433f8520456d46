using Sharpformer.NN;
using Sharpformer.Tensors;
using Sharpformer.Training.Optim;

namespace Sharpformer.Training.Tests.Optim;

public class GradientClippingTests
{
    public static TheoryData<int> CaseIndices() => [0, 1, 2, 3];

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void ClipGradNorm_Fixture_MatchesTorchNormAndClippedGradients(int index)
    {
        var c = OptimFixture.Cases("clip").ElementAt(index);
        var shapes = OptimFixture.Shapes(c);
        var grads = c.GetProperty("grads").EnumerateArray().ToArray();
        var parameters = shapes.Select(s => new Parameter(Tensor.Zeros(new Shape(s)))).ToList();
        for (int i = 0; i < parameters.Count; i++)
        {
            OptimFixture.SetGrad(parameters[i], OptimFixture.Floats(grads[i]));
        }

        // A parameter without a gradient is ignored.
        parameters.Add(new Parameter(Tensor.Ones(new Shape(4))));

        double total = GradientClipping.ClipGradNorm(parameters, c.GetProperty("max_norm").GetDouble());

        double expected = c.GetProperty("total_norm").GetDouble();
        Assert.True(Math.Abs(total - expected) <= 1e-6 * expected, $"total norm: expected {expected:R}, got {total:R}");
        var clipped = c.GetProperty("clipped").EnumerateArray().ToArray();
        for (int i = 0; i < shapes.Length; i++)
        {
            OptimFixture.AssertClose(OptimFixture.Floats(clipped[i]), parameters[i].Value.Grad!.ToArray(), 1e-5, 1e-9, $"grad {i}");
        }

        Assert.Null(parameters[^1].Value.Grad);
    }

    [Fact]
    public void ClipGradNorm_NonFiniteGradient_ReturnsItAndLeavesGradientsAlone()
    {
        var a = new Parameter(Tensor.Zeros(new Shape(3)));
        var b = new Parameter(Tensor.Zeros(new Shape(2)));
        OptimFixture.SetGrad(a, [1f, float.PositiveInfinity, 2f]);
        OptimFixture.SetGrad(b, [3f, 4f]);
        double total = GradientClipping.ClipGradNorm([a, b], 1.0);
        Assert.True(double.IsPositiveInfinity(total));
        Assert.Equal([3f, 4f], b.Value.Grad!.ToArray());

        OptimFixture.SetGrad(a, [1f, float.NaN, 2f]);
        Assert.True(double.IsNaN(GradientClipping.ClipGradNorm([a, b], 1.0)));
        Assert.Equal([3f, 4f], b.Value.Grad!.ToArray());
    }

    [Fact]
    public void ClipGradNorm_LargeGradientsAcrossChunks_NormAccumulatedInDouble()
    {
        // 200 000 elements of 0.1 over several chunks: the F32 sum of squares drifts, the double one does not.
        var p = new Parameter(Tensor.Zeros(new Shape(200_000)));
        OptimFixture.SetGrad(p, [.. Enumerable.Repeat(0.1f, 200_000)]);
        double expected = Math.Sqrt(200_000 * (double)0.1f * 0.1f);
        double total = GradientClipping.ClipGradNorm([p], double.PositiveInfinity);
        Assert.True(Math.Abs(total - expected) <= 1e-12 * expected, $"expected {expected:R}, got {total:R}");
        Assert.Equal(0.1f, p.Value.Grad!.ToArray()[123_456]);
    }

    [Fact]
    public void ClipGradNorm_NoGradients_ReturnsZero() =>
        Assert.Equal(0.0, GradientClipping.ClipGradNorm([new Parameter(Tensor.Zeros(new Shape(2)))], 1.0));

    [Fact]
    public void ClipGradNorm_NonPositiveMaxNorm_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => GradientClipping.ClipGradNorm([], 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => GradientClipping.ClipGradNorm([], double.NaN));
    }

    [Fact]
    public void SumOfSquares_VectorPath_MatchesScalarReference_AllTailLengths()
    {
        var random = new Random(1);
        for (int n = 0; n <= 70; n++)
        {
            float[] x = [.. Enumerable.Range(0, n).Select(_ => (float)((random.NextDouble() * 20) - 10))];
            double reference = OptimKernels.SumOfSquaresReference(x);
            Assert.True(Math.Abs(OptimKernels.SumOfSquares(x) - reference) <= 1e-12 * Math.Max(1, reference), $"n = {n}");
        }
    }
}
