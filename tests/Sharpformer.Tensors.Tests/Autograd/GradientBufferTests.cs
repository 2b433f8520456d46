using Sharpformer.Tensors.Storage;

namespace Sharpformer.Tensors.Tests;

/// <summary>
/// The engine's gradient buffers (<see cref="GradientBuffers"/>): a gradient is summed in place only into a buffer no other
/// pending gradient shares, handed back to the pool when its last consumer has run, and never taken from the caller.
/// The tensors here are at least <see cref="GradientBuffers.MinimumLength"/> elements so every buffer goes through the pool;
/// each graph runs several times, so later passes reuse the earlier passes' buffers with their stale contents.
/// </summary>
[Collection(nameof(GradientBufferTests))]
[CollectionDefinition(nameof(GradientBufferTests), DisableParallelization = true)]
public class GradientBufferTests
{
    private const int Rows = 64;
    private const int Cols = 64;

    private static Tensor Input(int seed)
    {
        var x = Tensor.RandomUniform(new Shape(Rows, Cols), new Random(seed), -1.5f, 1.5f);
        x.RequiresGrad = true;
        return x;
    }

    /// <summary>
    /// h = tanh(x) is used many ways at once: through an Add that hands one gradient to both inputs (h and 2h), twice by one
    /// Add (d = s + s), through views of the incoming gradient (reshape there and back), through slices joined again
    /// (Narrow + Concat), and as a factor of a product. All of it is e = 8h, L = Σ w ⊙ e ⊙ h = Σ 8 w h², so
    /// dL/dx = 16 w h (1 − h²).
    /// </summary>
    private static Tensor SharedUses(Tensor x, Tensor w)
    {
        var h = Ops.Tanh(x);
        var s = Ops.Add(h, Ops.Scale(h, 2f));
        var d = Ops.Add(s, s);
        var v = Ops.Reshape(Ops.Reshape(h, Rows * Cols), Rows, Cols);
        var c = Ops.Concat([Ops.Narrow(h, 1, 0, Cols / 2), Ops.Narrow(h, 1, Cols / 2, Cols / 2)], 1);
        var e = Ops.Add(Ops.Add(d, v), c);
        return Ops.Sum(Ops.Mul(Ops.Mul(e, h), w));
    }

    private static double[] Expected(Tensor x, Tensor w)
    {
        var xs = x.ToArray();
        var ws = w.ToArray();
        var expected = new double[xs.Length];
        for (int i = 0; i < xs.Length; i++)
        {
            double h = Math.Tanh(xs[i]);
            expected[i] = 16 * ws[i] * h * (1 - (h * h));
        }

        return expected;
    }

    private static void AssertGradient(double[] expected, Tensor x, string what)
    {
        var actual = x.Grad!.ToArray();
        for (int i = 0; i < expected.Length; i++)
        {
            double bound = Tolerances.GraphVsClosedForm * Math.Max(1, Math.Abs(expected[i]));
            Assert.True(Math.Abs(actual[i] - expected[i]) <= bound, $"{what}: dx[{i}] = {actual[i]}, expected {expected[i]}");
        }
    }

    [Fact]
    public void SharedAndAliasedGradients_SumCorrectly_OnEveryPass()
    {
        var w = Tensor.RandomUniform(new Shape(Rows, Cols), new Random(2), -1f, 1f);
        for (int pass = 0; pass < 4; pass++)
        {
            var x = Input(pass);
            SharedUses(x, w).Backward();
            AssertGradient(Expected(x, w), x, $"pass {pass}");
        }
    }

    [Fact]
    public void CallersSeed_IsNeitherWrittenNorRecycled()
    {
        // Add hands the caller's seed to both inputs and the view's backward returns a view of it: the two uses of h must
        // be summed into a new buffer, and the seed must not go to the pool (a later pass would overwrite it).
        var x = Input(7);
        var seed = Tensor.RandomUniform(new Shape(Rows, Cols), new Random(8), -1f, 1f);
        var before = seed.ToArray();
        var h = Ops.Tanh(x);
        var y = Ops.Add(Ops.Reshape(Ops.Reshape(h, Rows * Cols), Rows, Cols), h);
        y.Backward(seed);
        Assert.Equal(before, seed.ToArray());

        var xs = x.ToArray();
        var expected = new double[xs.Length];
        for (int i = 0; i < xs.Length; i++)
        {
            double t = Math.Tanh(xs[i]);
            expected[i] = 2 * before[i] * (1 - (t * t));
        }

        AssertGradient(expected, x, "seeded pass");

        // Later passes allocate from the pool; none of their buffers may be the seed's.
        var w = Tensor.RandomUniform(new Shape(Rows, Cols), new Random(2), -1f, 1f);
        for (int pass = 0; pass < 3; pass++) SharedUses(Input(pass), w).Backward();
        Assert.Equal(before, seed.ToArray());
    }

    [Fact]
    public void LeafGradients_StayTheirOwn_AfterLaterPasses()
    {
        // A leaf's Grad is its own buffer: passes after it (which reuse the pool's buffers) must not change it.
        var w = Tensor.RandomUniform(new Shape(Rows, Cols), new Random(2), -1f, 1f);
        var first = Input(11);
        SharedUses(first, w).Backward();
        var kept = first.Grad!.ToArray();
        for (int pass = 0; pass < 3; pass++) SharedUses(Input(20 + pass), w).Backward();
        Assert.Equal(kept, first.Grad!.ToArray());
    }

    [Fact]
    public void Pool_TakesBackIntermediateGradients_AndStaysBoundedAcrossPasses()
    {
        GradientBuffers.Clear();
        var w = Tensor.RandomUniform(new Shape(Rows, Cols), new Random(2), -1f, 1f);
        SharedUses(Input(1), w).Backward();
        var afterFirst = GradientBuffers.FreeCount();
        Assert.True(afterFirst.Arrays > 0, "the engine gave no gradient buffer back to the pool");

        // The same graph again takes what it needs from the pool and gives the same buffers back: no growth.
        for (int pass = 0; pass < 3; pass++) SharedUses(Input(2 + pass), w).Backward();
        Assert.Equal(afterFirst, GradientBuffers.FreeCount());

        // Outside a backward pass nothing comes from the pool.
        var outside = Tensor.Empty(new Shape(Rows, Cols));
        Assert.Equal(afterFirst, GradientBuffers.FreeCount());
        Assert.Equal(Rows * Cols, outside.ElementCount);
    }

    [Fact]
    public void Checkpoint_InsideThePool_GivesTheSameGradients()
    {
        // The checkpointed block's nested pass shares the thread's pool with the outer pass.
        var w = Tensor.RandomUniform(new Shape(Rows, Cols), new Random(2), -1f, 1f);
        for (int pass = 0; pass < 3; pass++)
        {
            var x = Input(30 + pass);
            var loss = Ops.Checkpoint(input => SharedUses(input, w), x);
            loss.Backward();
            AssertGradient(Expected(x, w), x, $"checkpointed pass {pass}");
        }
    }
}
