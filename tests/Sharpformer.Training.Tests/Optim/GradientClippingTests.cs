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

    [Theory]
    [InlineData("adamw", 0.5)]   // clips: the coefficient is below 1
    [InlineData("adamw", 1e6)]   // does not clip: the coefficient is 1
    [InlineData("sgd", 0.5)]
    public void StepWithClipCoefficient_EqualsClipInPlaceThenStep_BitForBit(string kind, double maxNorm)
    {
        // Sizes with vector tails and several optimizer chunks; three steps so the moments carry the scaled gradients.
        int[] sizes = [37, 70_001, 5];
        Parameter[] Make() => [.. sizes.Select((n, i) => new Parameter(Tensor.RandomNormal(new Shape(n), new Random(i), 0f, 1f)))];
        Optimizer For(Parameter[] ps)
        {
            var group = new ParameterGroup(ps.Select((p, i) => ($"p{i}", p)), learningRate: 0.01, weightDecay: 0.1);
            return kind == "adamw" ? new AdamW([group]) : new Sgd([group], momentum: 0.9);
        }

        var inPlace = Make();
        var fused = Make();
        var first = For(inPlace);
        var second = For(fused);
        for (int step = 0; step < 3; step++)
        {
            for (int i = 0; i < sizes.Length; i++)
            {
                float[] g = [.. Enumerable.Range(0, sizes[i]).Select(j => (float)Math.Sin((j * 0.37) + step + i))];
                OptimFixture.SetGrad(inPlace[i], g);
                OptimFixture.SetGrad(fused[i], g);
            }

            double clippedNorm = GradientClipping.ClipGradNorm(inPlace, maxNorm);
            first.Step();
            double norm = GradientClipping.GlobalNorm(fused);
            float coefficient = GradientClipping.ClipCoefficient(norm, maxNorm);
            Assert.Equal(clippedNorm, norm);
            Assert.Equal(maxNorm < norm, coefficient < 1f);
            second.Step(coefficient);
            for (int i = 0; i < sizes.Length; i++)
            {
                Assert.Equal(inPlace[i].Value.ToArray(), fused[i].Value.ToArray());
            }

            first.ZeroGrad();
            second.ZeroGrad();
        }
    }

    [Fact]
    public void ClipCoefficient_And_StepScale_RejectWhatCannotBeUsed()
    {
        Assert.Equal(1f, GradientClipping.ClipCoefficient(0, 1.0));
        Assert.Equal(1f, GradientClipping.ClipCoefficient(3, double.PositiveInfinity));
        Assert.Equal((float)(1.0 / (4 + 1e-6)), GradientClipping.ClipCoefficient(4, 1.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => GradientClipping.ClipCoefficient(double.NaN, 1.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => GradientClipping.ClipCoefficient(1, 0));
        var p = new Parameter(Tensor.Zeros(new Shape(2)));
        var optimizer = new AdamW([new ParameterGroup([("p", p)], 0.1)]);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => optimizer.Step(float.NaN));
        Assert.Contains("skip the step", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => optimizer.Step(0f));
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
