
namespace Sharpformer.Tensors.Tests;

/// <summary>Ops.ScaledDotProductAttentionPacked (one node over a fused QKV tensor) against the split-heads composition it replaces.</summary>
public class PackedAttentionTests
{
    [Theory]
    [InlineData(2, 5, 3, 4, true, false)]
    [InlineData(3, 17, 2, 8, true, true)]
    [InlineData(1, 70, 4, 16, false, true)]
    [InlineData(2, 1, 1, 4, true, false)]
    public void Packed_ForwardAndGradient_EqualTheSplitHeadsPath(int b, int t, int h, int d, bool causal, bool padded)
    {
        int c = h * d;
        var random = new Random(b * 1000 + t);
        var values = new float[b * t * 3 * c];
        for (int i = 0; i < values.Length; i++) values[i] = (float)((random.NextDouble() * 2) - 1);
        Tensor? mask = null;
        if (padded)
        {
            var m = new float[b * t];
            for (int i = 0; i < b; i++)
            {
                for (int j = 0; j < t; j++) m[(i * t) + j] = j < t - i ? 1f : 0f; // row i has i padded keys at the end
            }

            mask = Tensor.FromArray(m, new Shape(b, t));
        }

        var upstream = new float[b * t * c];
        for (int i = 0; i < upstream.Length; i++) upstream[i] = (float)((random.NextDouble() * 2) - 1);
        var dOut = Tensor.FromArray(upstream, new Shape(b, t, c));

        var packedIn = Tensor.FromArray((float[])values.Clone(), new Shape(b, t, 3 * c));
        packedIn.RequiresGrad = true;
        var packed = Ops.ScaledDotProductAttentionPacked(packedIn, h, causal, mask);
        packed.Backward(dOut);

        var splitIn = Tensor.FromArray((float[])values.Clone(), new Shape(b, t, 3 * c));
        splitIn.RequiresGrad = true;
        var q = Ops.SplitHeads(Ops.Narrow(splitIn, 2, 0, c), h);
        var k = Ops.SplitHeads(Ops.Narrow(splitIn, 2, c, c), h);
        var v = Ops.SplitHeads(Ops.Narrow(splitIn, 2, 2 * c, c), h);
        var split = Ops.MergeHeads(Ops.ScaledDotProductAttention(q, k, v, causal, mask));
        split.Backward(dOut);

        Assert.Equal(split.Shape, packed.Shape);
        AssertClose(split.Contiguous().ToArray(), packed.ToArray());
        AssertClose(splitIn.Grad!.ToArray(), packedIn.Grad!.ToArray());
    }

    [Theory]
    [InlineData(2, 5, 7, 3, 4, false, false)]
    [InlineData(3, 17, 17, 2, 8, true, true)]
    [InlineData(2, 130, 130, 4, 16, false, true)]
    [InlineData(1, 9, 20, 2, 64, true, false)]
    public void MultiHead_ForwardAndGradients_EqualTheSplitHeadsPath(int b, int tq, int tk, int h, int d, bool causal, bool padded)
    {
        // Same kernel on the same strides: the one-node op and the split/merge composition agree bit for bit.
        int c = h * d;
        var random = new Random((b * 1000) + tq + tk);
        Tensor Input(int t)
        {
            var x = new float[b * t * c];
            for (int i = 0; i < x.Length; i++) x[i] = (float)((random.NextDouble() * 2) - 1);
            return Tensor.FromArray(x, new Shape(b, t, c));
        }

        var query = Input(tq);
        var key = Input(tk);
        var value = Input(tk);
        var dOut = Input(tq);
        Tensor? mask = null;
        if (padded)
        {
            var m = new float[b * tk];
            for (int i = 0; i < b; i++)
            {
                for (int j = 0; j < tk; j++) m[(i * tk) + j] = j < tk - (2 * i) ? 1f : 0f;
            }

            mask = Tensor.FromArray(m, new Shape(b, tk));
        }

        Tensor[] Leaves() => [Leaf(query), Leaf(key), Leaf(value)];
        var one = Leaves();
        var merged = Ops.MultiHeadAttention(one[0], one[1], one[2], h, causal, mask);
        merged.Backward(dOut);
        var two = Leaves();
        var split = Ops.MergeHeads(Ops.ScaledDotProductAttention(Ops.SplitHeads(two[0], h), Ops.SplitHeads(two[1], h), Ops.SplitHeads(two[2], h), causal, mask));
        split.Backward(dOut);

        Assert.Equal(split.Shape, merged.Shape);
        Assert.Equal(split.Contiguous().ToArray(), merged.ToArray());
        for (int i = 0; i < 3; i++) Assert.Equal(two[i].Grad!.ToArray(), one[i].Grad!.ToArray());
    }

    private static Tensor Leaf(Tensor x)
    {
        var leaf = Tensor.FromArray(x.ToArray(), x.Shape);
        leaf.RequiresGrad = true;
        return leaf;
    }

    [Fact]
    public void MultiHead_BadShape_NamesIt()
    {
        var ex = Assert.Throws<ArgumentException>(() => Ops.MultiHeadAttention(Tensor.Zeros(new Shape(1, 2, 10)), Tensor.Zeros(new Shape(1, 2, 10)), Tensor.Zeros(new Shape(1, 3, 10)), 2));
        Assert.Contains("value", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Packed_BadShape_NamesIt()
    {
        var ex = Assert.Throws<ArgumentException>(() => Ops.ScaledDotProductAttentionPacked(Tensor.Zeros(new Shape(1, 2, 10)), 2));
        Assert.Contains("3·C", ex.Message, StringComparison.Ordinal);
    }

    private static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= Tolerances.KernelVsReference * Math.Max(1f, Math.Abs(expected[i])), $"element {i}: {expected[i]} vs {actual[i]}");
        }
    }
}
