namespace Sharpformer.Tensors.Tests;

/// <summary>
/// <see cref="Tensor.Backward(Action{Tensor})"/>: each leaf that requires gradients is reported exactly once, its
/// gradient is already final when it is reported, the last layer's leaves come before the first layer's, a tied leaf
/// waits for its last use, leaves closed over by a checkpointed block wait for that block, and the gradients equal
/// those of a plain <see cref="Tensor.Backward()"/>.
/// </summary>
public class GradientReadyHookTests
{
    private static Tensor Leaf(int seed, params int[] dims)
    {
        var t = Tensor.RandomNormal(new Shape(dims), new Random(seed), 0f, 0.5f);
        t.RequiresGrad = true;
        return t;
    }

    private sealed class Net
    {
        public Tensor Tied { get; } = Leaf(1, 6, 4);
        public Tensor B1 { get; } = Leaf(2, 6);
        public Tensor W2 { get; } = Leaf(3, 6, 6);
        public Tensor B2 { get; } = Leaf(4, 6);
        public Tensor[] All => [Tied, B1, W2, B2];

        public Tensor Loss(bool checkpoint)
        {
            var x = Tensor.RandomNormal(new Shape(3, 4), new Random(9), 0f, 1f);
            var h = Ops.Gelu(Ops.Linear(x, Tied, B1));
            Tensor Second(Tensor input) => Ops.Gelu(Ops.Linear(input, W2, B2));
            var h2 = checkpoint ? Ops.Checkpoint(Second, h) : Second(h);
            var back = Ops.Linear(h2, Ops.Transpose(Tied, 0, 1)); // the tied matrix again, at the output
            return Ops.Mean(Ops.Mul(back, back));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void EachLeafReportedOnce_WithItsFinalGradient_LastLayerFirst(bool checkpoint)
    {
        var plain = new Net();
        plain.Loss(checkpoint).Backward();

        var net = new Net();
        var order = new List<Tensor>();
        var atReport = new Dictionary<Tensor, float[]>(ReferenceEqualityComparer.Instance);
        net.Loss(checkpoint).Backward(leaf =>
        {
            order.Add(leaf);
            atReport[leaf] = leaf.Grad!.ToArray();
        });

        Assert.Equal(net.All.Length, order.Count);
        Assert.Equal(net.All.Length, order.Distinct(ReferenceEqualityComparer.Instance).Count());
        for (int i = 0; i < net.All.Length; i++)
        {
            var leaf = net.All[i];
            Assert.Equal(leaf.Grad!.ToArray(), atReport[leaf]);
            Assert.Equal(plain.All[i].Grad!.ToArray(), leaf.Grad!.ToArray());
        }

        // The second layer's parameters finish before the first layer's, and the tied matrix (used by the first layer and
        // at the output) only with the first layer.
        Assert.True(order.IndexOf(net.W2) < order.IndexOf(net.B1));
        Assert.True(order.IndexOf(net.B2) < order.IndexOf(net.Tied));
        Assert.True(order.IndexOf(net.W2) < order.IndexOf(net.Tied));
    }

    [Fact]
    public void LeafRoot_IsReported()
    {
        var x = Leaf(5, 1);
        var seen = new List<Tensor>();
        x.Backward(seen.Add);
        Assert.Same(x, Assert.Single(seen));
        Assert.Equal(1f, x.Grad!.ToArray()[0]);
    }
}
