namespace Sharpformer.Tensors.Tests;

/// <summary>
/// <see cref="Ops.Checkpoint(Func{Tensor, Tensor}, Tensor)"/>: the recomputed graph gives exactly the gradients of the
/// plain graph (the same F32 ops on the same values), dropout reproduces its mask when the block reseeds, and nothing of
/// the block's inside is kept by the forward.
/// </summary>
public class CheckpointTests
{
    private const int B = 2, T = 5, C = 8, H = 2;

    private static Tensor Param(int seed, params int[] dims)
    {
        var t = Tensor.RandomNormal(new Shape(dims), new Random(seed), 0f, 0.5f);
        t.RequiresGrad = true;
        return t;
    }

    private sealed class Net
    {
        public Tensor Embed { get; } = Param(1, 11, C);
        public Tensor Ln1W { get; } = Param(2, C);
        public Tensor Ln1B { get; } = Param(3, C);
        public Tensor Qkv { get; } = Param(4, 3 * C, C);
        public Tensor QkvB { get; } = Param(5, 3 * C);
        public Tensor Proj { get; } = Param(6, C, C);
        public Tensor Fc1 { get; } = Param(7, 4 * C, C);
        public Tensor Fc1B { get; } = Param(8, 4 * C);
        public Tensor Fc2 { get; } = Param(9, C, 4 * C);

        public Tensor[] All => [Embed, Ln1W, Ln1B, Qkv, QkvB, Proj, Fc1, Fc1B, Fc2];

        /// <summary>Pre-norm attention (fused QKV, causal, padded) and a GELU MLP, dropout after each with seeded generators.</summary>
        public Tensor Block(Tensor x, Tensor mask, int seed)
        {
            var n = Ops.LayerNorm(x, Ln1W, Ln1B);
            var qkv = Ops.Linear(n, Qkv, QkvB);
            var q = Ops.SplitHeads(Ops.Narrow(qkv, 2, 0, C), H);
            var k = Ops.SplitHeads(Ops.Narrow(qkv, 2, C, C), H);
            var v = Ops.SplitHeads(Ops.Narrow(qkv, 2, 2 * C, C), H);
            var attended = Ops.Linear(Ops.MergeHeads(Ops.ScaledDotProductAttention(q, k, v, causal: true, attentionMask: mask)), Proj);
            var h = Ops.Add(x, Ops.Dropout(attended, 0.3f, true, new Random(seed)));
            var m = Ops.Linear(Ops.Gelu(Ops.Linear(h, Fc1, Fc1B)), Fc2);
            return Ops.Add(h, Ops.Dropout(m, 0.3f, true, new Random(seed + 1)));
        }

        public Tensor Loss(bool checkpoint, int seed)
        {
            var ids = Tensor.FromArray(new[] { 1, 4, 2, 9, 3, 0, 5, 7, 10, 6 }, new Shape(B, T));
            var mask = Tensor.FromArray(new[] { 1f, 1f, 1f, 1f, 1f, 1f, 1f, 1f, 0f, 0f }, new Shape(B, T));
            var x = Ops.Embedding(ids, Embed);
            var y = checkpoint ? Ops.Checkpoint(h => Block(h, mask, seed), x) : Block(x, mask, seed);
            y = checkpoint ? Ops.Checkpoint(h => Block(h, mask, seed + 10), y) : Block(y, mask, seed + 10);
            var targets = Tensor.FromArray(new[] { 4, 2, 9, 3, -100, 5, 7, 10, -100, -100 }, new Shape(B, T));
            return Ops.CrossEntropy(Ops.Linear(y, Embed), targets, labelSmoothing: 0.1f);
        }
    }

    [Fact]
    public void TwoCheckpointedBlocks_GradientsEqualThePlainGraphExactly()
    {
        var net = new Net();
        var plain = net.Loss(checkpoint: false, seed: 100);
        plain.Backward();
        var expected = net.All.Select(p => p.Grad!.ToArray()).ToArray();
        foreach (var p in net.All) p.ZeroGrad();

        var checkpointed = net.Loss(checkpoint: true, seed: 100);
        Assert.Equal(plain.GetFloat(), checkpointed.GetFloat());
        checkpointed.Backward();
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.NotNull(net.All[i].Grad);
            Assert.Equal(expected[i], net.All[i].Grad!.ToArray());
        }
    }

    [Fact]
    public void Forward_KeepsOnlyTheInput()
    {
        // The recorded node's only saved tensor is the block input: no activation of the block survives the forward.
        var w = Param(20, 6, 6);
        var x = Param(21, 3, 6);
        var y = Ops.Checkpoint(h => Ops.Relu(Ops.Linear(Ops.Gelu(Ops.Linear(h, w)), w)), x);
        Assert.Equal(nameof(Ops.Checkpoint), y.GradFn!.Op);
        Assert.Single(y.GradFn.Inputs);
        Assert.Same(x, y.GradFn.Inputs[0]);
    }

    [Fact]
    public void SharedGeneratorOutsideTheBlock_WouldDrawAnotherMask_ReseedingInsideReproducesIt()
    {
        // Why the block must (re)seed its own generator: with one generator captured from outside, the recompute draws
        // the next mask and the gradient no longer matches the forward. Reseeding at the block's start fixes it.
        var x = Param(30, 4, 16);
        var probe = Tensor.RandomNormal(new Shape(4, 16), new Random(31), 0f, 1f);
        var shared = new Random(5);
        var y = Ops.Checkpoint(h => Ops.Dropout(h, 0.5f, true, shared), x);
        Ops.Sum(Ops.Mul(y, probe)).Backward();
        var forwardMask = y.ToArray().Zip(x.ToArray(), (o, i) => o != 0f).ToArray();
        var gradientMask = x.Grad!.ToArray().Select(g => g != 0f).ToArray();
        Assert.NotEqual(forwardMask, gradientMask);

        x.ZeroGrad();
        var y2 = Ops.Checkpoint(h => Ops.Dropout(h, 0.5f, true, new Random(5)), x);
        Ops.Sum(Ops.Mul(y2, probe)).Backward();
        var expected = y2.ToArray().Zip(probe.ToArray(), (o, p) => o == 0f ? 0f : 2f * p).ToArray();
        Assert.Equal(expected, x.Grad!.ToArray());
    }

    [Fact]
    public void SeveralInputs_EachGetsItsGradient()
    {
        var a = Param(40, 3, 4);
        var b = Param(41, 3, 4);
        var w = Param(42, 4, 4);
        Tensor Block(Tensor[] x) => Ops.Mul(Ops.Linear(x[0], w), Ops.Tanh(x[1]));
        Ops.Sum(Block([a, b])).Backward();
        var expected = new[] { a.Grad!.ToArray(), b.Grad!.ToArray(), w.Grad!.ToArray() };
        a.ZeroGrad();
        b.ZeroGrad();
        w.ZeroGrad();
        Ops.Sum(Ops.Checkpoint(Block, a, b)).Backward();
        Assert.Equal(expected[0], a.Grad!.ToArray());
        Assert.Equal(expected[1], b.Grad!.ToArray());
        Assert.Equal(expected[2], w.Grad!.ToArray());
    }

    [Fact]
    public void UnderNoGrad_IsJustTheBlock()
    {
        var x = Param(50, 2, 3);
        using (Autograd.NoGrad())
        {
            var y = Ops.Checkpoint(h => Ops.Scale(h, 2f), x);
            Assert.True(y.IsLeaf);
            Assert.False(y.RequiresGrad);
            Assert.Equal(x.ToArray().Select(v => 2f * v).ToArray(), y.ToArray());
        }
    }

    [Fact]
    public void BackwardInsideNoGradScope_StillRecomputesWithRecording()
    {
        var w = Param(60, 3, 3);
        var x = Param(61, 2, 3);
        var loss = Ops.Sum(Ops.Checkpoint(h => Ops.Linear(h, w), x));
        using (Autograd.NoGrad())
        {
            loss.Backward();
        }

        Assert.NotNull(w.Grad);
        Assert.NotNull(x.Grad);
        Assert.True(Autograd.IsGradEnabled);
    }

    [Fact]
    public void IdentityBlock_LeavesTheInputsNodeAlone()
    {
        var w = Param(70, 3, 3);
        var x = Ops.Linear(Param(71, 2, 3), w);
        var node = x.GradFn;
        var y = Ops.Checkpoint(h => h, x);
        Assert.Same(node, x.GradFn);
        Ops.Sum(y).Backward();
        Assert.NotNull(w.Grad);
    }

    [Fact]
    public void BlockChangingShapeOnRecompute_ThrowsSayingSo()
    {
        var x = Param(80, 2, 4);
        int calls = 0;
        var y = Ops.Checkpoint(h => ++calls == 1 ? Ops.Scale(h, 1f) : Ops.Reshape(h, 4, 2), x);
        var e = Assert.Throws<InvalidOperationException>(() => Ops.Sum(y).Backward());
        Assert.Contains("same function both times", e.Message, StringComparison.Ordinal);
    }
}
