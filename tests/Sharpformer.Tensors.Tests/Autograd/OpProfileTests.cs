using System.Diagnostics;

namespace Sharpformer.Tensors.Tests;

/// <summary>
/// <see cref="OpProfile"/>: every recorded op gets one forward and one backward row with the right call counts, named
/// spans and the backward's bookkeeping get their own rows, the rows add up to no more than the wall time profiled, a
/// profile records nothing once disposed, and a checkpointed block's inside counts as its Checkpoint node.
/// </summary>
public class OpProfileTests
{
    private static Tensor Param(int seed, params int[] dims)
    {
        var t = Tensor.RandomNormal(new Shape(dims), new Random(seed), 0f, 0.5f);
        t.RequiresGrad = true;
        return t;
    }

    private static Dictionary<(string, OpPhase), OpTiming> Rows(OpProfile profile) =>
        profile.Timings.ToDictionary(r => (r.Name, r.Phase));

    [Fact]
    public void Rows_PerOpAndPhase_WithCallCounts()
    {
        var x = Param(1, 3, 4);
        var w = Param(2, 5, 4);
        var b = Param(3, 5);
        var clock = Stopwatch.StartNew();
        var profile = OpProfile.Start();
        for (int step = 0; step < 2; step++)
        {
            var y = Ops.Gelu(Ops.Linear(x, w, b));
            var loss = Ops.Sum(Ops.Linear(y, Param(4, 2, 5)));
            loss.Backward();
            profile.Mark("optimizer");
        }

        double wall = clock.Elapsed.TotalMilliseconds;
        profile.Dispose();
        var rows = Rows(profile);
        Assert.Equal(4, rows[("Linear", OpPhase.Forward)].Calls);
        Assert.Equal(4, rows[("Linear", OpPhase.Backward)].Calls);
        Assert.Equal(2, rows[("Gelu", OpPhase.Forward)].Calls);
        Assert.Equal(2, rows[("Gelu", OpPhase.Backward)].Calls);
        Assert.Equal(2, rows[("Sum", OpPhase.Backward)].Calls);
        Assert.Equal(2, rows[("optimizer", OpPhase.Other)].Calls);
        Assert.True(rows.ContainsKey((OpProfile.BackwardBookkeeping, OpPhase.Other)));
        Assert.All(profile.Timings, r => Assert.True(r.Milliseconds >= 0));
        Assert.True(profile.Timings.Sum(r => r.Milliseconds) <= wall, "the rows count each moment once, so they cannot exceed the wall time");

        // Disposed: nothing more is recorded, and a new profile can start.
        int before = profile.Timings.Count;
        Ops.Sum(Ops.Linear(x, w, b)).Backward();
        Assert.Equal(before, profile.Timings.Count);
        using var next = OpProfile.Start();
    }

    [Fact]
    public void ByShape_TellsLayersApart()
    {
        var x = Param(1, 3, 4);
        using var profile = OpProfile.Start(byShape: true);
        var h = Ops.Linear(x, Param(2, 6, 4));
        Ops.Sum(Ops.Linear(h, Param(3, 2, 6))).Backward();
        var names = profile.Timings.Where(r => r.Phase == OpPhase.Forward).Select(r => r.Name).ToHashSet();
        Assert.Contains("Linear [3, 4] → [3, 6]", names);
        Assert.Contains("Linear [3, 6] → [3, 2]", names);
    }

    [Fact]
    public void Checkpoint_InsideCountsAsItsNode()
    {
        var x = Param(1, 3, 4);
        var w = Param(2, 4, 4);
        using var profile = OpProfile.Start();
        var y = Ops.Checkpoint(input => Ops.Gelu(Ops.Linear(input, w)), x);
        Ops.Sum(y).Backward();
        var rows = Rows(profile);
        Assert.Equal(1, rows[("Checkpoint", OpPhase.Backward)].Calls);
        Assert.False(rows.ContainsKey(("Gelu", OpPhase.Backward)));
        Assert.False(rows.ContainsKey(("Linear", OpPhase.Backward)));
    }

    [Fact]
    public void Start_Twice_Throws()
    {
        using var profile = OpProfile.Start();
        var e = Assert.Throws<InvalidOperationException>(() => OpProfile.Start());
        Assert.Contains("already open", e.Message, StringComparison.Ordinal);
    }
}
