
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
