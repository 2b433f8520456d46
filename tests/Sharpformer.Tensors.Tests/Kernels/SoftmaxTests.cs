using Sharpformer.Tensors.Kernels;

namespace Sharpformer.Tensors.Tests.Kernels;

public class SoftmaxTests
{
    [Fact]
    public void Forward_EveryRowLength_MatchesReference()
    {
        foreach (int n in KernelTestData.Lengths())
        {
            var x = KernelTestData.Uniform(3 * n, -30f, 30f, n);
            var y = new float[x.Length];
            var expected = new float[x.Length];
            Softmax.Forward(x, y, 3, n);
            Softmax.Reference(x, expected, 3, n, false, default);
            KernelTestData.Close(expected, y, 1e-7f, Tolerances.KernelVsReference, $"softmax cols={n}");
        }
    }

    [Fact]
    public void Forward_HugeAndInfiniteLogits_StayFinite()
    {
        float[] x = [1e30f, 1e30f, -1e30f, float.NegativeInfinity, float.NegativeInfinity, float.NegativeInfinity, float.NegativeInfinity, float.NegativeInfinity];
        var y = new float[8];
        Softmax.Forward(x, y, 2, 4);
        Assert.Equal([0.5f, 0.5f, 0f, 0f], y[..4]);

        // A row of only −inf (everything masked by an additive mask) gives zeros, not NaN.
        Assert.Equal([0f, 0f, 0f, 0f], y[4..]);
    }

    [Fact]
    public void Forward_NaNInRow_PropagatesNaN()
    {
        var y = new float[20];
        var x = KernelTestData.Uniform(20, -1f, 1f, 4);
        x[17] = float.NaN;
        Softmax.Forward(x, y, 1, 20);
        Assert.All(y, v => Assert.True(float.IsNaN(v)));
    }

    [Fact]
    public void Forward_RowsSumToOne()
    {
        var x = KernelTestData.Uniform(7 * 1000, -50f, 50f, 9);
        var y = new float[x.Length];
        Softmax.Forward(x, y, 7, 1000);
        for (int r = 0; r < 7; r++) Assert.Equal(1.0, y.Skip(r * 1000).Take(1000).Sum(v => (double)v), 5);
    }

    [Theory]
    [InlineData(5, 5, true, false)]
    [InlineData(3, 19, true, true)]
    [InlineData(17, 17, false, true)]
    [InlineData(1, 40, true, true)]
    [InlineData(6, 2, true, false)]
    public void ForwardMasked_CausalOffsetAndPadding_MatchesReference(int tq, int tk, bool causal, bool pad)
    {
        var x = KernelTestData.Uniform(tq * tk, -10f, 10f, tq * 100 + tk);
        float[] mask = pad ? KernelTestData.Uniform(tk, 0f, 1f, 3).Select(v => v < 0.3f ? 0f : 1f).ToArray() : [];
        var y = new float[x.Length];
        var expected = new float[x.Length];
        Softmax.ForwardMasked(x, y, tq, tk, causal, mask);
        Softmax.Reference(x, expected, tq, tk, causal, mask);
        KernelTestData.Close(expected, y, 1e-7f, Tolerances.KernelVsReference, "masked softmax");
        for (int i = 0; i < tq; i++)
        {
            for (int j = 0; j < tk; j++)
            {
                bool hidden = (causal && j > i + tk - tq) || (pad && mask[j] == 0f);
                if (hidden) Assert.Equal(0f, y[(i * tk) + j]);
            }
        }
    }

    [Fact]
    public void ForwardMasked_ShortMask_ThrowsNamingKeyMask()
    {
        var e = Assert.Throws<ArgumentException>(() => Softmax.ForwardMasked(new float[6], new float[6], 2, 3, false, new float[2]));
        Assert.Equal("keyMask", e.ParamName);
    }

    [Fact]
    public void Backward_EveryRowLength_MatchesReference()
    {
        foreach (int n in KernelTestData.Lengths())
        {
            var x = KernelTestData.Uniform(2 * n, -5f, 5f, n);
            var y = new float[x.Length];
            Softmax.Forward(x, y, 2, n);
            var dy = KernelTestData.Uniform(2 * n, -1f, 1f, n + 1);
            var dx = new float[x.Length];
            var expected = new float[x.Length];
            Softmax.Backward(y, dy, dx, 2, n);
            Softmax.BackwardReference(y, dy, expected, 2, n);
            KernelTestData.Close(expected, dx, 1e-6f, Tolerances.KernelVsReference, $"softmax backward cols={n}");
        }
    }

    [Fact]
    public void Backward_MatchesFiniteDifferences()
    {
        var x = KernelTestData.Uniform(3 * 21, -3f, 3f, 1);
        var w = KernelTestData.Uniform(x.Length, -1f, 1f, 2);
        var y = new float[x.Length];
        Softmax.Forward(x, y, 3, 21);
        var dx = new float[x.Length];
        Softmax.Backward(y, w, dx, 3, 21);
        var numeric = KernelTestData.NumericGradient(x, xs =>
        {
            var ys = new float[xs.Length];
            Softmax.Forward(xs, ys, 3, 21);
            return KernelTestData.Probe(ys, w);
        });
        KernelTestData.GradClose(numeric, dx, "softmax");
    }
}
