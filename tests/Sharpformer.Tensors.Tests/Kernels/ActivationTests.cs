using Sharpformer.Tensors.Kernels;

namespace Sharpformer.Tensors.Tests.Kernels;

public class ActivationTests
{
    public delegate void Forward(ReadOnlySpan<float> x, Span<float> y);

    public delegate void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx);

    private static readonly Dictionary<string, (Forward Fwd, Backward Bwd, Func<float, float> Scalar, Func<float, float, float> ScalarBwd, Func<double, double> Exact)> Ops = new()
    {
        ["gelu"] = (Activations.Gelu, Activations.GeluBackward, Activations.GeluOp.Invoke, Activations.GeluBackwardOp.Invoke,
            x => 0.5 * x * (1 + KernelTestData.ErfDouble(x / Math.Sqrt(2)))),
        ["gelu_tanh"] = (Activations.GeluTanh, Activations.GeluTanhBackward, Activations.GeluTanhOp.Invoke, Activations.GeluTanhBackwardOp.Invoke,
            x => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + (0.044715 * x * x * x))))),
        ["silu"] = (Activations.Silu, Activations.SiluBackward, Activations.SiluOp.Invoke, Activations.SiluBackwardOp.Invoke,
            x => x / (1 + Math.Exp(-x))),
        ["relu"] = (Activations.Relu, Activations.ReluBackward, Activations.ReluOp.Invoke, Activations.ReluBackwardOp.Invoke,
            x => Math.Max(x, 0)),
    };

    public static TheoryData<string> Names() => new(Ops.Keys);

    [Theory]
    [MemberData(nameof(Names))]
    public void Forward_EveryLength_SimdMatchesScalarReference(string name)
    {
        var op = Ops[name];
        foreach (int n in KernelTestData.Lengths())
        {
            var x = KernelTestData.Uniform(n, -8f, 8f, n);
            var y = new float[n];
            op.Fwd(x, y);
            var expected = x.Select(op.Scalar).ToArray();
            KernelTestData.Close(expected, y, Tolerances.KernelVsReference, Tolerances.KernelVsReference, $"{name} n={n}");
        }
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Backward_EveryLength_SimdMatchesScalarReference(string name)
    {
        var op = Ops[name];
        foreach (int n in KernelTestData.Lengths())
        {
            var x = KernelTestData.Uniform(n, -8f, 8f, n);
            var dy = KernelTestData.Uniform(n, -2f, 2f, n + 1000);
            var dx = new float[n];
            op.Bwd(x, dy, dx);
            var expected = new float[n];
            for (int i = 0; i < n; i++) expected[i] = op.ScalarBwd(x[i], dy[i]);
            KernelTestData.Close(expected, dx, Tolerances.KernelVsReference, Tolerances.KernelVsReference, $"{name}' n={n}");
        }
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Forward_DenseSweep_MatchesDoubleFormula(string name)
    {
        var op = Ops[name];
        var x = KernelTestData.Uniform(20_000, -12f, 12f, 5);
        var y = new float[x.Length];
        op.Fwd(x, y);
        var exact = x.Select(v => (float)op.Exact(v)).ToArray();
        KernelTestData.Close(exact, y, Tolerances.ActivationVsDouble, Tolerances.ActivationVsDouble, name);
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void EdgeValues_VectorLanesAgreeWithScalar(string name)
    {
        var op = Ops[name];
        var x = KernelTestData.EdgeValues;
        foreach (int offset in new[] { 0, 3, 9 })
        {
            // Shifting the pattern moves each edge value into other lanes and into the scalar tail.
            var shifted = new float[x.Length + offset];
            x.CopyTo(shifted, offset);
            var y = new float[shifted.Length];
            var dx = new float[shifted.Length];
            op.Fwd(shifted, y);
            op.Bwd(shifted, Enumerable.Repeat(1f, shifted.Length).ToArray(), dx);
            for (int i = 0; i < shifted.Length; i++)
            {
                float fy = op.Scalar(shifted[i]), fdx = op.ScalarBwd(shifted[i], 1f);
                Assert.True(fy.Equals(y[i]) || Math.Abs(fy - y[i]) <= 1e-6f * Math.Abs(fy), $"{name}({shifted[i]}): scalar {fy}, vector {y[i]}");
                Assert.True(fdx.Equals(dx[i]) || Math.Abs(fdx - dx[i]) <= 1e-6f * Math.Max(1f, Math.Abs(fdx)), $"{name}'({shifted[i]}): scalar {fdx}, vector {dx[i]}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void LargeMagnitudes_SaturateWithoutNaN(string name)
    {
        var op = Ops[name];
        float[] x = [1e30f, -1e30f, 1e5f, -1e5f, float.PositiveInfinity, 100f, -100f];
        var y = new float[x.Length];
        var dx = new float[x.Length];
        op.Fwd(x, y);
        op.Bwd(x, Enumerable.Repeat(1f, x.Length).ToArray(), dx);
        Assert.Equal(1e30f, y[0]);
        Assert.Equal(0f, y[1], 0f);
        Assert.Equal(float.PositiveInfinity, y[4]);
        for (int i = 0; i < x.Length; i++) Assert.False(float.IsNaN(dx[i]), $"{name}'({x[i]}) is NaN");
        Assert.Equal(1f, dx[0]);
        Assert.Equal(0f, dx[1], 0f);
        Assert.Equal(1f, dx[4]);
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Backward_MatchesFiniteDifferences(string name)
    {
        var op = Ops[name];

        // Avoid ReLU's kink at 0 where finite differences are meaningless.
        var x = KernelTestData.Uniform(67, -5f, 5f, 11).Select(v => Math.Abs(v) < 0.05f ? v + 0.1f : v).ToArray();
        var w = KernelTestData.Uniform(67, -1f, 1f, 12);
        var dx = new float[x.Length];
        op.Bwd(x, w, dx);
        var numeric = KernelTestData.NumericGradient(x, xs =>
        {
            var y = new float[xs.Length];
            op.Fwd(xs, y);
            return KernelTestData.Probe(y, w);
        });
        KernelTestData.GradClose(numeric, dx, name);
    }

    [Fact]
    public void Gelu_InPlace_SameAsOutOfPlace()
    {
        var x = KernelTestData.Uniform(45, -4f, 4f, 2);
        var y = new float[45];
        Activations.Gelu(x, y);
        Activations.Gelu(x, x);
        Assert.Equal(y, x);
    }
}
