using Sharpformer.Tensors.Kernels;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Tests.Kernels;

// Sets ParallelFor.MaxDegreeOfParallelism (process-wide): it shares the collection that runs such tests one at a time.
[Collection("ParallelFor degree")]
public class AttentionGroupedTests
{
    public static TheoryData<int, int, int, int, int, bool, int> Cases() => new()
    {
        // H, Hkv, D, Tk, extra row stride, padding, threads
        { 32, 4, 64, 160, 0, false, 2 },   // the ~1B Llama (TinyLlama) at 160 cached tokens
        { 32, 4, 64, 1, 0, false, 2 },     // one key
        { 8, 2, 64, 33, 24, true, 2 },     // a block plus one key, a wider row (a cache with more than K/V)
        { 6, 2, 64, 70, 0, true, 1 },      // three heads per group: the V pass's remainder heads
        { 12, 4, 32, 100, 16, true, 2 },   // D = 32: the general V pass
        { 4, 1, 128, 300, 0, true, 8 },    // D = 128, many blocks, more threads than the machine
        { 4, 2, 20, 50, 0, true, 2 },      // D not a multiple of 16: the per-head path
        { 14, 2, 64, 1000, 0, true, 2 },   // seven heads per group, long cache
        { 32, 4, 64, 15, 0, true, 2 },     // fewer than 16 keys: one key row at a time
        { 32, 4, 64, 16, 0, true, 2 },     // exactly one group of 16 keys
        { 32, 4, 64, 17, 0, true, 2 },     // a last partial group that overlaps the first
        { 32, 4, 64, 47, 8, true, 1 },     // one thread, a partial group, a wider row
        { 8, 1, 64, 131, 0, true, 3 },     // three blocks of uneven group counts, eight heads per group
        { 2, 2, 48, 40, 0, true, 2 },      // one head per group, D = 48 (three vectors)
        { 4, 2, 128, 200, 0, false, 2 },   // D = 128 (eight vectors)
    };

    /// <summary>A case's key mask: all ones, or with <paramref name="pad"/> left padding and a run of padded keys long enough to cover a whole block.</summary>
    public static float[] CaseMask(int keys, bool pad)
    {
        var mask = Enumerable.Repeat(1f, keys).ToArray();
        if (pad)
        {
            Array.Fill(mask, 0f, 0, Math.Min(3, keys - 1));
            Array.Fill(mask, 0f, keys / 3, Math.Min(40, keys / 3));
        }

        return mask;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void DecodeGrouped_MatchesReference(int heads, int kvHeads, int d, int keys, int extra, bool pad, int threads)
    {
        int stride = (kvHeads * d) + extra;
        var q = KernelTestData.Uniform(heads * d, -1f, 1f, 11 + keys);
        var k = KernelTestData.Uniform(keys * stride, -1f, 1f, 12 + keys);
        var v = KernelTestData.Uniform(keys * stride, -1f, 1f, 13 + keys);
        var mask = CaseMask(keys, pad);

        int saved = ParallelFor.MaxDegreeOfParallelism;
        ParallelFor.MaxDegreeOfParallelism = threads;
        try
        {
            foreach (var m in new[] { mask, [] })
            {
                var output = Enumerable.Repeat(float.NaN, heads * d).ToArray();
                Attention.DecodeGrouped(heads, kvHeads, d, keys, stride, q, k, v, m, output, 0.125f);
                var expected = new float[heads * d];
                Attention.DecodeGroupedReference(heads, kvHeads, d, keys, stride, q, k, v, m, expected, 0.125f);
                KernelTestData.Close(expected, output, 1e-5f, 1e-5f, $"grouped decode output (mask {m.Length})");
            }
        }
        finally
        {
            ParallelFor.MaxDegreeOfParallelism = saved;
        }
    }

    [Fact]
    public void DecodeGrouped_AllKeysMasked_GivesZeros()
    {
        var q = KernelTestData.Uniform(8 * 64, -1f, 1f, 1);
        var k = KernelTestData.Uniform(50 * 128, -1f, 1f, 2);
        var output = Enumerable.Repeat(float.NaN, 8 * 64).ToArray();
        Attention.DecodeGrouped(8, 2, 64, 50, 128, q, k, k, new float[50], output, 0.125f);
        Assert.All(output, x => Assert.Equal(0f, x));
    }

    [Fact]
    public void DecodeGrouped_RejectsBadShapes()
    {
        var x = new float[64];
        Assert.Throws<ArgumentException>(() => Attention.DecodeGrouped(3, 2, 16, 1, 32, x, x, x, default, x, 1f));
        Assert.Throws<ArgumentException>(() => Attention.DecodeGrouped(4, 2, 16, 2, 16, x, x, x, default, x, 1f));
        Assert.Throws<ArgumentException>(() => Attention.DecodeGrouped(4, 2, 16, 3, 32, x, x, x, default, x, 1f));
    }
}
