namespace Sharpformer.Tensors.Tests;

/// <summary>Tape behaviour: accumulation, no-grad mode, leaves, detaching, and errors at the boundary.</summary>
public class AutogradTests
{
    private static Tensor Leaf(params float[] values)
    {
        var t = Tensor.FromArray(values);
        t.RequiresGrad = true;
        return t;
    }

    [Fact]
    public void Backward_TwoCalls_AddIntoGrad()
    {
        var x = Leaf(1f, -2f, 3f);
        var w = Tensor.FromArray(new[] { 0.5f, 2f, -1f });
        var loss = Ops.Sum(Ops.Mul(Ops.Mul(x, x), w)); // Σ w·x², gradient 2·w·x
        loss.Backward();
        Assert.Equal(new[] { 1f, -8f, -6f }, x.Grad!.ToArray());

        loss.Backward();
        Assert.Equal(new[] { 2f, -16f, -12f }, x.Grad!.ToArray());
    }

    [Fact]
    public unsafe void Linear_LargeWeightGradient_StartsOnACacheLineAndEqualsPlainGemm()
    {
        // A 576 × 512 weight (past the size from which its gradient GEMM streams C): the gradient buffer starts on a
        // cache line and holds dyᵀ · x with the bits of an ordinary Sgemm; a second backward adds into it (beta 1), after
        // ZeroGrad the next one overwrites it again.
        var x = Tensor.RandomUniform(new Shape(4, 64, 512), new Random(1), -1f, 1f);
        var w = Tensor.RandomUniform(new Shape(576, 512), new Random(2), -0.1f, 0.1f);
        w.RequiresGrad = true;
        var y = Ops.Linear(x, w);
        var dy = Tensor.RandomUniform(y.Shape, new Random(3), -1f, 1f);
        float[] once = new float[576 * 512], twice = new float[576 * 512];
        Sharpformer.Tensors.Kernels.Gemm.Sgemm(true, false, 576, 512, 256, 1f, dy.AsReadOnlySpan<float>(), 576, x.AsReadOnlySpan<float>(), 512, 0f, once, 512);
        once.CopyTo(twice);
        Sharpformer.Tensors.Kernels.Gemm.Sgemm(true, false, 576, 512, 256, 1f, dy.AsReadOnlySpan<float>(), 576, x.AsReadOnlySpan<float>(), 512, 1f, twice, 512);

        y.Backward(dy);
        Assert.Equal(once, w.Grad!.ToArray());
        fixed (float* p = w.Grad.AsReadOnlySpan<float>()) Assert.Equal(0, (nint)p & 63);
        y.Backward(dy);
        Assert.Equal(twice, w.Grad!.ToArray());
        w.ZeroGrad();
        y.Backward(dy);
        Assert.Equal(once, w.Grad!.ToArray());
    }

    [Fact]
    public void ZeroGrad_ClearsAccumulatedGradient()
    {
        var x = Leaf(1f, 2f);
        Ops.Sum(x).Backward();
        x.ZeroGrad();
        Assert.Null(x.Grad);
        Ops.Sum(Ops.Scale(x, 3f)).Backward();
        Assert.Equal(new[] { 3f, 3f }, x.Grad!.ToArray());
    }

    [Fact]
    public void NoGrad_RecordsNothing_AndRecordingResumesAfterTheScope()
    {
        var x = Leaf(1f, 2f);
        using (Autograd.NoGrad())
        {
            Assert.False(Autograd.IsGradEnabled);
            using (Autograd.NoGrad())
            {
                var inner = Ops.Scale(x, 2f);
                Assert.False(inner.RequiresGrad);
            }

            var y = Ops.Sum(Ops.Mul(x, x));
            Assert.False(y.RequiresGrad);
            Assert.True(y.IsLeaf);
            Assert.Throws<InvalidOperationException>(() => y.Backward());
        }

        Assert.True(Autograd.IsGradEnabled);
        Assert.Null(x.Grad);
        var z = Ops.Sum(x);
        Assert.True(z.RequiresGrad);
        Assert.False(z.IsLeaf);
    }

    [Fact]
    public void Ops_OnInputsWithoutGrad_RecordNoGraph()
    {
        var a = Tensor.FromArray(new[] { 1f, 2f, 3f, 4f }, new Shape(2, 2));
        var y = Ops.MatMul(a, a);
        Assert.False(y.RequiresGrad);
        Assert.True(y.IsLeaf);
    }

    [Fact]
    public void Detach_CutsTheGraph_AndSharesStorage()
    {
        var x = Leaf(1f, 2f);
        var y = Ops.Scale(x, 2f);
        var d = y.Detach();
        Assert.True(d.IsLeaf);
        Assert.False(d.RequiresGrad);
        Assert.Same(y.Storage, d.Storage);

        // Only the attached path carries gradient: d(2x + stop(2x))/dx = 2.
        Ops.Sum(Ops.Add(y, d)).Backward();
        Assert.Equal(new[] { 2f, 2f }, x.Grad!.ToArray());
    }

    [Fact]
    public void Add_EqualShapes_BothBranchesGetTheGradient_WhenItIsShared()
    {
        // A residual add hands the same gradient tensor to both inputs; each branch then runs its own backward and the
        // two reach x again, where they are summed: d/dx Σ (2x + tanh x)² = 2y · (2 + 1 − tanh² x).
        var x = Leaf(0.3f, -1.2f, 2f);
        var a = Ops.Scale(x, 2f);
        var b = Ops.Tanh(x);
        var y = Ops.Add(a, b);
        Ops.Sum(Ops.Mul(y, y)).Backward();
        var xs = x.ToArray();
        var grad = x.Grad!.ToArray();
        for (int i = 0; i < xs.Length; i++)
        {
            double t = Math.Tanh(xs[i]);
            double expected = 2 * ((2 * xs[i]) + t) * (2 + (1 - (t * t)));
            Assert.Equal(expected, grad[i], 1e-5);
        }
    }

    [Fact]
    public void Backward_OnLeaf_SetsItsGradToTheSeed()
    {
        var x = Leaf(5f);
        x.Backward();
        Assert.Equal(new[] { 1f }, x.Grad!.ToArray());
    }

    [Fact]
    public void Backward_NonScalar_ThrowsAndNamesShape()
    {
        var y = Ops.Scale(Leaf(1f, 2f), 2f);
        var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains("[2]", e.Message, StringComparison.Ordinal);
        Assert.Contains("Backward(grad)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Backward_WrongGradShape_NamesBothShapes()
    {
        var y = Ops.Scale(Leaf(1f, 2f), 2f);
        var e = Assert.Throws<ArgumentException>(() => y.Backward(Tensor.Ones(new Shape(3))));
        Assert.Contains("[2]", e.Message, StringComparison.Ordinal);
        Assert.Contains("[3]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RequiresGrad_OnIntegerTensor_Throws()
    {
        var ids = Tensor.FromArray(new[] { 1, 2 });
        var e = Assert.Throws<InvalidOperationException>(() => ids.RequiresGrad = true);
        Assert.Contains("I32", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RequiresGrad_ClearedOnOpOutput_Throws()
    {
        var y = Ops.Scale(Leaf(1f), 2f);
        Assert.Throws<InvalidOperationException>(() => y.RequiresGrad = false);
    }

    [Fact]
    public void NonLeafGradients_AreNotKept()
    {
        var x = Leaf(1f, 2f);
        var y = Ops.Scale(x, 2f);
        Ops.Sum(y).Backward();
        Assert.Null(y.Grad);
        Assert.NotNull(x.Grad);
    }

    [Fact]
    public void Backward_DeepChain_DoesNotOverflowTheStack()
    {
        // 20 000 recorded ops: the topological sort must be iterative.
        var x = Leaf(1f);
        var y = x;
        for (int i = 0; i < 20_000; i++) y = Ops.Scale(y, 1f);
        y.Backward();
        Assert.Equal(new[] { 1f }, x.Grad!.ToArray());
    }
}
