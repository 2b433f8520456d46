using Sharpformer.Tensors.Kernels;

namespace Sharpformer.Tensors.Tests.Kernels;

/// <summary>The scalar references and public entry points on tiny cases whose answers are worked out by hand.</summary>
public class ReferenceKernelTests
{
    private const float Tol = 1e-6f;

    private static void Near(float expected, float actual, float tol = Tol) =>
        Assert.True(Math.Abs(expected - actual) <= tol, $"expected {expected}, got {actual} (tolerance {tol})");

    [Fact]
    public void Exp_SpecialValues_MatchIeee()
    {
        Assert.Equal(1f, FastMath.Exp(0f));
        Near(MathF.E, FastMath.Exp(1f), 3e-7f);
        Assert.Equal(0f, FastMath.Exp(float.NegativeInfinity));
        Assert.Equal(float.PositiveInfinity, FastMath.Exp(float.PositiveInfinity));
        Assert.Equal(float.PositiveInfinity, FastMath.Exp(100f));
        Assert.Equal(0f, FastMath.Exp(-200f));
        Assert.True(float.IsNaN(FastMath.Exp(float.NaN)));
    }

    [Fact]
    public void Erf_KnownValues_WithinOneMillionth()
    {
        Near(0f, FastMath.Erf(0f));
        Near(0.8427007929f, FastMath.Erf(1f));
        Near(-0.8427007929f, FastMath.Erf(-1f));
        Near(0.9953222650f, FastMath.Erf(2f));
        Assert.Equal(1f, FastMath.Erf(float.PositiveInfinity));
        Assert.Equal(-1f, FastMath.Erf(float.NegativeInfinity));
        Assert.True(float.IsNaN(FastMath.Erf(float.NaN)));
    }

    [Fact]
    public void Activations_AtOne_MatchClosedForms()
    {
        var y = new float[1];
        Activations.Gelu([1f], y);
        Near(0.8413447461f, y[0]);
        Activations.GeluTanh([1f], y);
        Near(0.8411919906f, y[0]);
        Activations.Silu([1f], y);
        Near(0.7310585786f, y[0]);
        Activations.Relu([-1f], y);
        Assert.Equal(0f, y[0]);

        // d/dx x·sigmoid(x) at 0 is 1/2; relu' at 2 passes dy through.
        Activations.SiluBackward([0f], [2f], y);
        Near(1f, y[0]);
        Activations.ReluBackward([2f], [3f], y);
        Assert.Equal(3f, y[0]);
        Activations.GeluBackward([0f], [1f], y);
        Near(0.5f, y[0]);
        Activations.GeluTanhBackward([0f], [1f], y);
        Near(0.5f, y[0]);
    }

    [Fact]
    public void Softmax_OneTwoThree_MatchesHandValues()
    {
        float[] expected = [0.0900305732f, 0.2447284711f, 0.6652409558f];
        var y = new float[3];
        Softmax.Reference([1f, 2f, 3f], y, 1, 3, false, default);
        for (int i = 0; i < 3; i++) Near(expected[i], y[i]);
        Softmax.Forward([1f, 2f, 3f], y, 1, 3);
        for (int i = 0; i < 3; i++) Near(expected[i], y[i]);
    }

    [Fact]
    public void SoftmaxMasked_CausalAndPadding_ZeroesMaskedAndAllMaskedRows()
    {
        // Tq = Tk = 2, causal: row 0 sees key 0 only; row 1 sees both. Padding masks key 0: row 0 sees nothing.
        float[] x = [5f, 7f, 0f, 0f];
        var y = new float[4];
        Softmax.ForwardMasked(x, y, 2, 2, causal: true, keyMask: default);
        Assert.Equal([1f, 0f, 0.5f, 0.5f], y);
        Softmax.ForwardMasked(x, y, 2, 2, causal: true, keyMask: [0f, 1f]);
        Assert.Equal([0f, 0f, 0f, 1f], y);
        Softmax.Reference(x, y, 2, 2, true, [0f, 1f]);
        Assert.Equal([0f, 0f, 0f, 1f], y);
    }

    [Fact]
    public void SoftmaxBackward_TwoClasses_MatchesJacobian()
    {
        // y = [0.25, 0.75], dy = [1, 0]: dx = y ⊙ (dy − y·dy) = [0.25·0.75, 0.75·(−0.25)].
        var dx = new float[2];
        Softmax.Backward([0.25f, 0.75f], [1f, 0f], dx, 1, 2);
        Near(0.1875f, dx[0]);
        Near(-0.1875f, dx[1]);
    }

    [Fact]
    public void LayerNorm_OneToFour_MatchesHandValues()
    {
        // mean 2.5, var 1.25, rstd = 1/√1.25.
        var y = new float[4];
        var mean = new float[1];
        var rstd = new float[1];
        Norms.LayerNorm([1f, 2f, 3f, 4f], [1f, 1f, 2f, 1f], [0f, 0f, 0f, 1f], y, 1, 4, 0f, mean, rstd);
        Near(2.5f, mean[0]);
        Near(0.894427191f, rstd[0]);
        Near(-1.341640786f, y[0]);
        Near(-0.447213595f, y[1]);
        Near(0.894427191f, y[2]);
        Near(2.341640786f, y[3]);
    }

    [Fact]
    public void RmsNorm_ThreeFour_MatchesHandValues()
    {
        // mean square 12.5, rstd = 1/√12.5.
        var y = new float[2];
        Norms.RmsNorm([3f, 4f], [1f, 2f], y, 1, 2, 0f);
        Near(0.848528137f, y[0]);
        Near(2.262741700f, y[1]);
    }

    [Fact]
    public void Embedding_DuplicateIds_GatherAndAccumulate()
    {
        float[] table = [1f, 2f, 3f, 4f, 5f, 6f];
        var output = new float[6];
        Embedding.Forward([2, 0, 2], table, output, 3, 2);
        Assert.Equal([5f, 6f, 1f, 2f, 5f, 6f], output);

        var dTable = new float[6];
        Embedding.Backward([2, 0, 2], [1f, 1f, 10f, 20f, 100f, 200f], dTable, 3, 2);
        Assert.Equal([10f, 20f, 0f, 0f, 101f, 201f], dTable);
    }

    [Fact]
    public void CrossEntropy_UniformLogits_IsLogVocabAndIgnoresPadding()
    {
        var losses = new float[2];
        int counted = CrossEntropy.Forward([0f, 0f, 3f, 1f], [0, CrossEntropy.DefaultIgnoreIndex], losses, 2, 2);
        Assert.Equal(1, counted);
        Near(0.6931471806f, losses[0]);
        Assert.Equal(0f, losses[1]);

        var d = new float[4];
        CrossEntropy.Backward([0f, 0f, 3f, 1f], [1, CrossEntropy.DefaultIgnoreIndex], [2f, 1f], d, 2, 2);
        Assert.Equal([1f, -1f, 0f, 0f], d);
    }

    [Fact]
    public void Reductions_SmallMatrix_SumsAndMaxima()
    {
        float[] x = [1f, 2f, 3f, 4f, -5f, 6f];
        var rows = new float[2];
        var cols = new float[3];
        Reductions.SumRows(x, rows, 2, 3);
        Assert.Equal([6f, 5f], rows);
        Reductions.MaxRows(x, rows, 2, 3);
        Assert.Equal([3f, 6f], rows);
        Reductions.MeanRows(x, rows, 2, 3);
        Assert.Equal([2f, 5f / 3f], rows);
        Reductions.SumColumns(x, cols, 2, 3);
        Assert.Equal([5f, -3f, 9f], cols);
        Reductions.SumColumns(x, cols, 2, 3, accumulate: true);
        Assert.Equal([10f, -6f, 18f], cols);
    }

    [Fact]
    public void Elementwise_Broadcast_AddsRowToEveryRow()
    {
        var y = new float[4];
        Elementwise.AddBroadcast([1f, 2f, 3f, 4f], [10f, 20f], y, 2, 2);
        Assert.Equal([11f, 22f, 13f, 24f], y);
        Elementwise.MultiplyBroadcast([1f, 2f, 3f, 4f], [10f, 20f], y, 2, 2);
        Assert.Equal([10f, 40f, 30f, 80f], y);
        Elementwise.AddScaled([1f, 1f, 1f, 1f], 2f, y);
        Assert.Equal([12f, 42f, 32f, 82f], y);
    }

    [Fact]
    public void Attention_OneQueryTwoKeys_WeightsAndOutputByHand()
    {
        // Scores [0, ln 3] → weights [1/4, 3/4]; values [4, 8] → output 7.
        var shape = new AttentionShape(1, 1, 1, 2, 1);
        var output = new float[1];
        var probs = new float[2];
        Attention.Forward(shape, [1f], [0f, MathF.Log(3f)], [4f, 8f], output, scale: 1f, probabilities: probs);
        Near(0.25f, probs[0]);
        Near(0.75f, probs[1]);
        Near(7f, output[0], 1e-5f);

        var reference = new float[1];
        Attention.ForwardReference(shape, [1f], [0f, MathF.Log(3f)], [4f, 8f], reference, false, default, 1f, default);
        Near(7f, reference[0], 1e-5f);
    }

    [Fact]
    public void Attention_AllKeysPadded_OutputsZerosNotNaN()
    {
        var shape = new AttentionShape(1, 1, 2, 2, 1);
        var output = new float[2];
        Attention.Forward(shape, [1f, 2f], [1f, 1f], [4f, 8f], output, keyPaddingMask: [0f, 0f]);
        Assert.Equal([0f, 0f], output);
    }
}
