namespace Sharpformer.Tensors.Tests;

/// <summary><see cref="Ops.AddLayerNorm"/>: the residual add and LayerNorm in one pass, the same graph and bits as the two ops.</summary>
public class AddLayerNormTests
{
    [Theory]
    [InlineData(4, 64, 768)] // GPT-2's shape: split across cores
    [InlineData(2, 3, 50)] // small: one thread
    public void ForwardAndGradients_EqualAddThenLayerNorm_BitForBit(int batch, int tokens, int channels)
    {
        var (fa, fb, fg, fbeta) = Inputs(batch, tokens, channels);
        var (ca, cb, cg, cbeta) = Inputs(batch, tokens, channels);
        var probeN = Tensor.RandomUniform(new Shape(batch, tokens, channels), new Random(5), -1f, 1f);
        var probeS = Tensor.RandomUniform(new Shape(batch, tokens, channels), new Random(6), -1f, 1f);

        // Both outputs feed the loss, as in a pre-LN block: the normalized sum goes on, the sum is the next residual.
        var normed = Ops.AddLayerNorm(fa, fb, fg, fbeta, 1e-5f, out var sum);
        Ops.Add(Ops.Sum(Ops.Mul(normed, probeN)), Ops.Sum(Ops.Mul(sum, probeS))).Backward();
        var composedSum = Ops.Add(ca, cb);
        var composed = Ops.LayerNorm(composedSum, cg, cbeta, 1e-5f);
        Ops.Add(Ops.Sum(Ops.Mul(composed, probeN)), Ops.Sum(Ops.Mul(composedSum, probeS))).Backward();

        Assert.Equal(composedSum.ToArray(), sum.ToArray());
        Assert.Equal(composed.ToArray(), normed.ToArray());
        Assert.Equal(ca.Grad!.ToArray(), fa.Grad!.ToArray());
        Assert.Equal(cb.Grad!.ToArray(), fb.Grad!.ToArray());
        Assert.Equal(cg.Grad!.ToArray(), fg.Grad!.ToArray());
        Assert.Equal(cbeta.Grad!.ToArray(), fbeta.Grad!.ToArray());
    }

    [Fact]
    public void BothOutputs_MatchFiniteDifferences() =>
        GradCheck.Check(
            x => Ops.Add(Ops.AddLayerNorm(x[0], x[1], x[2], x[3], 1e-5f, out var sum), Ops.Scale(sum, 0.5f)),
            GradCheck.Param(71, 2, 3, 6), GradCheck.Param(72, 2, 3, 6), GradCheck.Param(73, 6), GradCheck.Param(74, 6));

    [Fact]
    public void NoAffine_NoGrad_ReturnsPlainTensors()
    {
        var a = Tensor.RandomUniform(new Shape(3, 8), new Random(1), -1f, 1f);
        var b = Tensor.RandomUniform(new Shape(3, 8), new Random(2), -1f, 1f);
        var normed = Ops.AddLayerNorm(a, b, null, null, 1e-5f, out var sum);
        Assert.False(normed.RequiresGrad);
        Assert.False(sum.RequiresGrad);
        Assert.Equal(Ops.Add(a, b).ToArray(), sum.ToArray());
        Assert.Equal(Ops.LayerNorm(Ops.Add(a, b), null, null, 1e-5f).ToArray(), normed.ToArray());
    }

    [Fact]
    public void DifferentShapes_Throw()
    {
        var a = Tensor.Zeros(new Shape(2, 4));
        var b = Tensor.Zeros(new Shape(4));
        Assert.Contains("same shape", Assert.Throws<ArgumentException>(() => Ops.AddLayerNorm(a, b, null, null, 1e-5f, out _)).Message);
    }

    private static (Tensor A, Tensor B, Tensor Gamma, Tensor Beta) Inputs(int batch, int tokens, int channels) => (
        GradCheck.Param(11, batch, tokens, channels), GradCheck.Param(12, batch, tokens, channels),
        GradCheck.Param(13, channels), GradCheck.Param(14, channels));
}
