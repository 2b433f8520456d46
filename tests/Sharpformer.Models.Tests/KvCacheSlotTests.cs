using Sharpformer.Models.Gpt2;

namespace Sharpformer.Models.Tests;

/// <summary>
/// Slot use of <see cref="KvCache"/> through <see cref="ISlotCausalLM.ForwardSlots"/> (continuous batching): sequences
/// of different lengths prefilled one by one, decoded together, a slot freed and reused mid-way — each sequence's
/// logits against the same sequence decoded alone in its own lockstep cache (<see cref="ICausalLM.ForwardLast"/>).
/// </summary>
public class KvCacheSlotTests
{
    private static readonly int[][] Prompts = [[72, 101, 108, 108, 111], [84, 104], [1, 2, 3, 4, 5, 6, 7, 8, 9], [200, 17, 33]];

    private static Gpt2LMHeadModel Model()
    {
        string folder = Path.Combine(AppContext.BaseDirectory, "fixtures", "gpt2_tiny");
        return Gpt2LMHeadModel.FromPretrained(folder);
    }

    /// <summary>Greedy decode of one prompt alone: the logits after the prefill and after each of <paramref name="steps"/> steps.</summary>
    private static List<float[]> Alone(Gpt2LMHeadModel model, int[] prompt, int steps)
    {
        var cache = model.CreateCache(1, prompt.Length + steps);
        var logits = new float[model.VocabSize];
        var result = new List<float[]>();
        model.ForwardLast(prompt, default, cache, logits);
        result.Add((float[])logits.Clone());
        for (int s = 0; s < steps; s++)
        {
            int next = ArgMax(logits);
            model.ForwardLast([next], default, cache, logits);
            result.Add((float[])logits.Clone());
        }

        return result;
    }

    private static int ArgMax(ReadOnlySpan<float> row)
    {
        int best = 0;
        for (int i = 1; i < row.Length; i++)
        {
            best = row[i] > row[best] ? i : best;
        }

        return best;
    }

    [Fact]
    public void ForwardSlots_DifferentLengthsDecodedTogether_EqualEachDecodedAlone()
    {
        var model = Model();
        int vocab = model.VocabSize, steps = 4;
        var cache = model.CreateCache(batch: 3, capacity: 32);
        var logits = new float[3 * vocab];

        // Prompts 0, 1, 2 go into slots 2, 0, 1, each prefilled on its own.
        int[] slotOf = [2, 0, 1];
        var got = new List<float[]>[4];
        var last = new int[4];
        for (int p = 0; p < 3; p++)
        {
            model.ForwardSlots([slotOf[p]], Prompts[p], cache, logits);
            got[p] = [logits.AsSpan(0, vocab).ToArray()];
            last[p] = ArgMax(logits.AsSpan(0, vocab));
            Assert.Equal(Prompts[p].Length, cache.SequenceLength(slotOf[p]));
        }

        Assert.Equal(Prompts[2].Length, cache.Length);

        // Two steps with all three, then prompt 1 leaves, prompt 3 takes its slot, and all step on.
        var active = new List<int> { 0, 1, 2 };
        for (int s = 0; s < steps; s++)
        {
            if (s == 2)
            {
                cache.ResetSequence(slotOf[1]);
                active.Remove(1);
                slotOf = [slotOf[0], -1, slotOf[2], slotOf[1]];
                model.ForwardSlots([slotOf[3]], Prompts[3], cache, logits);
                got[3] = [logits.AsSpan(0, vocab).ToArray()];
                last[3] = ArgMax(logits.AsSpan(0, vocab));
                active.Add(3);
            }

            var slots = active.Select(p => slotOf[p]).ToArray();
            var ids = active.Select(p => last[p]).ToArray();
            model.ForwardSlots(slots, ids, cache, logits);
            for (int i = 0; i < active.Count; i++)
            {
                var row = logits.AsSpan(i * vocab, vocab);
                got[active[i]].Add(row.ToArray());
                last[active[i]] = ArgMax(row);
            }
        }

        for (int p = 0; p < 4; p++)
        {
            var expected = Alone(model, Prompts[p], got[p].Count - 1);
            Assert.Equal(expected.Count, got[p].Count);
            for (int s = 0; s < expected.Count; s++)
            {
                for (int v = 0; v < vocab; v++)
                {
                    Assert.True(Math.Abs(expected[s][v] - got[p][s][v]) <= Tolerances.FastVsModules,
                        $"prompt {p} step {s} logit {v}: alone {expected[s][v]}, slots {got[p][s][v]}");
                }
            }
        }
    }

    [Fact]
    public void AdvanceSequence_PastCapacity_ThrowsAndLockstepAdvanceRefusesUnevenSlots()
    {
        var cache = new KvCache(layers: 1, batch: 2, capacity: 4, width: 2);
        var positions = new int[4];
        cache.AdvanceSequence(1, 3, positions);
        Assert.Equal([0, 1, 2], positions[..3]);
        Assert.Equal(3, cache.SequenceLength(1));
        Assert.Equal(0, cache.SequenceLength(0));
        Assert.Throws<ArgumentException>(() => cache.AdvanceSequence(1, 2, positions));
        Assert.Throws<InvalidOperationException>(() => cache.Advance(default, 1, positions));

        cache.ResetSequence(1);
        Assert.Equal(0, cache.Length);
        cache.Advance(default, 1, positions);
        Assert.Equal(1, cache.SequenceLength(0));
        Assert.Equal(1, cache.SequenceLength(1));
    }

    [Fact]
    public void ForwardSlots_RepeatedSlot_Throws()
    {
        var model = Model();
        var cache = model.CreateCache(2, 8);
        var logits = new float[2 * model.VocabSize];
        var error = Assert.Throws<ArgumentException>(() => model.ForwardSlots([1, 1], [5, 6], cache, logits));
        Assert.Contains("listed twice", error.Message);
    }
}
