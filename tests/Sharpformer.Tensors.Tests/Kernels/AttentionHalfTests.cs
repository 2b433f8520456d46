using Sharpformer.Tensors.Kernels;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Tests.Kernels;

// The F16 K/V kernels (an F16 KV cache) against the F32 references run on the widened halves. Sets
// ParallelFor.MaxDegreeOfParallelism (process-wide): it shares the collection that runs such tests one at a time.
[Collection("ParallelFor degree")]
public class AttentionHalfTests
{
    /// <summary>K/V as an F16 cache stores them (<see cref="Tensors.Kernels.Convert.F32ToF16Cache"/>), and the same values widened to F32.</summary>
    private static (Half[] Half, float[] Wide) CacheValues(int n, float lo, float hi, int seed)
    {
        var x = KernelTestData.Uniform(n, lo, hi, seed);
        var h = new Half[n];
        Tensors.Kernels.Convert.F32ToF16Cache(x, h);
        return (h, h.Select(v => (float)v).ToArray());
    }

    private static void WithThreads(int threads, Action body)
    {
        int saved = ParallelFor.MaxDegreeOfParallelism;
        ParallelFor.MaxDegreeOfParallelism = threads;
        try
        {
            body();
        }
        finally
        {
            ParallelFor.MaxDegreeOfParallelism = saved;
        }
    }

    public static TheoryData<int, int, int, int, bool, bool, int, float> DecodeCases() => new()
    {
        // B, H, Tk, D, padding, fused QKV layout, threads, query magnitude
        { 1, 12, 160, 64, false, true, 2, 1f },      // GPT-2 124M at 160 cached tokens: heads in lanes (AVX-512)
        { 2, 16, 300, 64, true, true, 2, 1f },       // all 16 lanes, padding (batch 0 fully padded)
        { 3, 5, 77, 64, true, false, 3, 1f },        // odd H, three blocks
        { 1, 1, 40, 64, false, false, 2, 1f },       // one head
        { 1, 12, 9, 64, true, true, 1, 1f },         // one thread, fewer keys than a block
        { 2, 3, 1, 64, true, true, 2, 1f },          // one key
        { 1, 12, 100, 64, false, true, 2, 40000f },  // |q| ≥ 2^15: the exact widening path
        { 1, 20, 90, 64, true, false, 2, 1f },       // H > 16: the widening path
        { 3, 4, 17, 20, true, false, 2, 1f },        // D with vector and scalar tails
        { 2, 5, 333, 7, true, false, 1, 1f },        // odd D, one thread
    };

    [Theory]
    [MemberData(nameof(DecodeCases))]
    public void ForwardHalf_DecodeStep_MatchesReferenceOnWidenedValues(int b, int h, int tk, int d, bool pad, bool fused, int threads, float qScale)
    {
        int w = h * d, stride = fused ? 3 * w : w;
        var shape = new AttentionShape(b, h, 1, tk, d) { QueryRowStride = stride, KeyRowStride = stride, ValueRowStride = stride };
        var q = KernelTestData.Uniform(b * stride, -qScale, qScale, tk + d);
        var (k, kw) = CacheValues(b * tk * stride, -1f, 1f, tk + d + 1);
        var (v, vw) = CacheValues(b * tk * stride, -1f, 1f, tk + d + 2);
        var mask = pad ? KernelTestData.Uniform(b * tk, 0f, 1f, tk).Select(x => x < 0.35f ? 0f : 1f).ToArray() : [];
        if (pad)
        {
            Array.Fill(mask, 0f, 0, tk);
        }

        float scale = qScale > 1f ? 0.125f / qScale : 0.125f;
        WithThreads(threads, () =>
        {
            var output = Enumerable.Repeat(float.NaN, b * w).ToArray();
            Attention.ForwardHalf(shape, q, k, v, output, causal: true, mask, scale);
            var expected = new float[b * w];
            Attention.ForwardReference(shape, q, kw, vw, expected, true, mask, scale, default);
            KernelTestData.Close(expected, output, 1e-5f, 1e-5f, "F16 decode output");
        });
    }

    [Fact]
    public void ForwardHalf_DecodeStep_SubnormalHalves_AreReadExactly()
    {
        // Halves written without the cache's flush: subnormals (and zeros) still widen to their exact values.
        const int h = 12, d = 64, tk = 64, w = h * d;
        var shape = new AttentionShape(1, h, 1, tk, d);
        var q = KernelTestData.Uniform(w, -1f, 1f, 5);
        var k = KernelTestData.Uniform(tk * w, -1f, 1f, 6).Select((x, i) => (Half)(i % 3 == 0 ? x * 1e-5f : x)).ToArray();
        var v = KernelTestData.Uniform(tk * w, -1f, 1f, 7).Select((x, i) => (Half)(i % 4 == 0 ? x * 3e-6f : x)).ToArray();
        Assert.Contains(k, x => Half.IsSubnormal(x));
        WithThreads(2, () =>
        {
            var output = new float[w];
            Attention.ForwardHalf(shape, q, k, v, output, scale: 0.125f);
            var expected = new float[w];
            Attention.ForwardReference(shape, q, k.Select(x => (float)x).ToArray(), v.Select(x => (float)x).ToArray(), expected, false, default, 0.125f, default);
            KernelTestData.Close(expected, output, 1e-5f, 1e-5f, "F16 decode output with subnormal halves");
        });
    }

    [Theory]
    [InlineData(12, 64, 2)]
    [InlineData(16, 64, 4)]
    [InlineData(5, 64, 1)]
    [InlineData(4, 32, 2)]
    public void ForwardHalf_DecodeStep_WholeBlockMasked_MatchesReference(int h, int d, int threads)
    {
        const int tk = 64;
        int w = h * d;
        var shape = new AttentionShape(1, h, 1, tk, d);
        var q = KernelTestData.Uniform(w, -1f, 1f, h + d);
        var (k, kw) = CacheValues(tk * w, -1f, 1f, h + d + 1);
        var (v, vw) = CacheValues(tk * w, -1f, 1f, h + d + 2);
        var mask = Enumerable.Range(0, tk).Select(j => j < tk / 2 ? 0f : 1f).ToArray();
        WithThreads(threads, () =>
        {
            var output = Enumerable.Repeat(float.NaN, w).ToArray();
            Attention.ForwardHalf(shape, q, k, v, output, causal: true, mask, 0.125f);
            var expected = new float[w];
            Attention.ForwardReference(shape, q, kw, vw, expected, true, mask, 0.125f, default);
            KernelTestData.Close(expected, output, 1e-5f, 1e-5f, "F16 decode output with a masked block");
        });
    }

    public static TheoryData<int, int, int, bool, int, float> AppendCases() => new()
    {
        // H, Tk, D, padding, threads, query magnitude
        { 12, 160, 64, false, 2, 1f },     // GPT-2 at 160 keys: two blocks, the caller's holds the new row
        { 12, 193, 64, true, 2, 1f },      // odd Tk, padding
        { 16, 300, 64, true, 3, 1f },      // all 16 lanes, three blocks
        { 5, 77, 64, false, 1, 1f },       // odd H, one thread
        { 12, 1, 64, false, 2, 1f },       // the new key alone
        { 12, 20, 64, true, 2, 1f },       // fewer keys than the V prefetch distance
        { 12, 100, 64, false, 2, 40000f }, // |q| ≥ 2^15: the exact widening blocks
        { 20, 90, 64, true, 2, 1f },       // H > 16: the row written, then ForwardHalf's path
        { 4, 17, 20, false, 2, 1f },       // D ≠ 64
    };

    [Theory]
    [MemberData(nameof(AppendCases))]
    public void ForwardHalfAppend_WritesTheRowAndMatchesReference(int h, int tk, int d, bool pad, int threads, float qScale)
    {
        // GPT-2's layout: the fused q/k/v row of the step, a cache of Tk + 3 rows of which row Tk − 1 is overwritten.
        int w = h * d, rows = tk + 3;
        var shape = new AttentionShape(1, h, 1, tk, d) { QueryRowStride = 3 * w };
        var qkv = KernelTestData.Uniform(3 * w, -qScale, qScale, tk + d);
        KernelTestData.Uniform(2 * w, -1f, 1f, tk + d + 3).CopyTo(qkv.AsSpan(w));
        var (k, _) = CacheValues(rows * w, -1f, 1f, tk + d + 1);
        var (v, _) = CacheValues(rows * w, -1f, 1f, tk + d + 2);
        var mask = pad ? KernelTestData.Uniform(tk, 0f, 1f, tk).Select(x => x < 0.35f ? 0f : 1f).ToArray() : [];
        var kExpected = (Half[])k.Clone();
        var vExpected = (Half[])v.Clone();
        Tensors.Kernels.Convert.F32ToF16Cache(qkv.AsSpan(w, w), kExpected.AsSpan((tk - 1) * w, w));
        Tensors.Kernels.Convert.F32ToF16Cache(qkv.AsSpan(2 * w, w), vExpected.AsSpan((tk - 1) * w, w));
        float scale = qScale > 1f ? 0.125f / qScale : 0.125f;
        WithThreads(threads, () =>
        {
            var kCache = (Half[])k.Clone();
            var vCache = (Half[])v.Clone();
            var output = Enumerable.Repeat(float.NaN, w).ToArray();
            Attention.ForwardHalfAppend(shape, qkv, qkv.AsSpan(w, w), qkv.AsSpan(2 * w, w), kCache, vCache, output, mask, scale);
            Assert.Equal(kExpected, kCache);
            Assert.Equal(vExpected, vCache);
            var expected = new float[w];
            Attention.ForwardReference(
                shape, qkv, kExpected.Select(x => (float)x).ToArray(), vExpected.Select(x => (float)x).ToArray(), expected, true, mask, scale, default);
            KernelTestData.Close(expected, output, 1e-5f, 1e-5f, "F16 decode output after the appended row");
        });
    }

    [Fact]
    public void ForwardHalfAppend_RejectsBadShapes()
    {
        var x = new float[64];
        var hx = new Half[64];
        Assert.Throws<ArgumentException>(() => Attention.ForwardHalfAppend(new AttentionShape(2, 2, 1, 2, 8), x, x, x, hx, hx, x));
        Assert.Throws<ArgumentException>(() => Attention.ForwardHalfAppend(new AttentionShape(1, 2, 2, 2, 8), x, x, x, hx, hx, x));
        Assert.Throws<ArgumentException>(() => Attention.ForwardHalfAppend(new AttentionShape(1, 2, 1, 2, 8), x, x.AsSpan(0, 8), x, hx, hx, x));
        Assert.Throws<ArgumentException>(() => Attention.ForwardHalfAppend(new AttentionShape(1, 2, 1, 8, 8), x, x, x, hx, hx, x));
    }

    [Theory]
    [InlineData(2, 3, 5, 5, 16, true)]   // prefill, no cache
    [InlineData(2, 2, 3, 9, 8, true)]    // chunked prefill against a cache (Tq < Tk)
    [InlineData(1, 4, 1, 17, 32, false)] // one query, probabilities requested: the widening path
    public void ForwardHalf_Prefill_MatchesReferenceOnWidenedValues(int b, int h, int tq, int tk, int d, bool pad)
    {
        int w = h * d;
        var shape = new AttentionShape(b, h, tq, tk, d);
        var q = KernelTestData.Uniform(b * tq * w, -1f, 1f, 1);
        var (k, kw) = CacheValues(b * tk * w, -1f, 1f, 2);
        var (v, vw) = CacheValues(b * tk * w, -1f, 1f, 3);
        var mask = pad ? Enumerable.Range(0, b * tk).Select(j => j % tk < 2 ? 0f : 1f).ToArray() : [];
        var output = new float[b * tq * w];
        var probabilities = new float[b * h * tq * tk];
        Attention.ForwardHalf(shape, q, k, v, output, causal: true, mask, 0.25f, probabilities);
        var expected = new float[b * tq * w];
        var expectedProbabilities = new float[b * h * tq * tk];
        Attention.ForwardReference(shape, q, kw, vw, expected, true, mask, 0.25f, expectedProbabilities);
        KernelTestData.Close(expected, output, 1e-5f, 1e-5f, "F16 prefill output");
        KernelTestData.Close(expectedProbabilities, probabilities, 1e-5f, 1e-5f, "F16 prefill probabilities");
    }

    [Theory]
    [MemberData(nameof(AttentionGroupedTests.Cases), MemberType = typeof(AttentionGroupedTests))]
    public void DecodeGroupedHalf_MatchesReferenceOnWidenedValues(int heads, int kvHeads, int d, int keys, int extra, bool pad, int threads)
    {
        int stride = (kvHeads * d) + extra;
        var q = KernelTestData.Uniform(heads * d, -1f, 1f, 11 + keys);
        var (k, kw) = CacheValues(keys * stride, -1f, 1f, 12 + keys);
        var (v, vw) = CacheValues(keys * stride, -1f, 1f, 13 + keys);
        var mask = AttentionGroupedTests.CaseMask(keys, pad);

        WithThreads(threads, () =>
        {
            foreach (var m in new[] { mask, [] })
            {
                var output = Enumerable.Repeat(float.NaN, heads * d).ToArray();
                Attention.DecodeGroupedHalf(heads, kvHeads, d, keys, stride, q, k, v, m, output, 0.125f);
                var expected = new float[heads * d];
                Attention.DecodeGroupedReference(heads, kvHeads, d, keys, stride, q, kw, vw, m, expected, 0.125f);
                KernelTestData.Close(expected, output, 1e-5f, 1e-5f, $"F16 grouped decode output (mask {m.Length})");
            }
        });
    }

    [Theory]
    [MemberData(nameof(AttentionGroupedTests.Cases), MemberType = typeof(AttentionGroupedTests))]
    public void DecodeGroupedHalfAppend_WritesTheRowAndMatchesReference(int heads, int kvHeads, int d, int keys, int extra, bool pad, int threads)
    {
        // A cache of Tk + 3 rows (row stride Hkv·D + extra) of which row Tk − 1 is overwritten; the pad halves of that row
        // and every other row stay as they were.
        int stride = (kvHeads * d) + extra, kvWidth = kvHeads * d, rows = keys + 3;
        var q = KernelTestData.Uniform(heads * d, -1f, 1f, 11 + keys);
        var newKey = KernelTestData.Uniform(kvWidth, -1f, 1f, 14 + keys);
        var newValue = KernelTestData.Uniform(kvWidth, -1f, 1f, 15 + keys);
        var (k, _) = CacheValues(rows * stride, -1f, 1f, 12 + keys);
        var (v, _) = CacheValues(rows * stride, -1f, 1f, 13 + keys);
        var kExpected = (Half[])k.Clone();
        var vExpected = (Half[])v.Clone();
        Tensors.Kernels.Convert.F32ToF16Cache(newKey, kExpected.AsSpan((keys - 1) * stride, kvWidth));
        Tensors.Kernels.Convert.F32ToF16Cache(newValue, vExpected.AsSpan((keys - 1) * stride, kvWidth));
        var kw = kExpected.Select(x => (float)x).ToArray();
        var vw = vExpected.Select(x => (float)x).ToArray();
        var mask = AttentionGroupedTests.CaseMask(keys, pad);

        WithThreads(threads, () =>
        {
            foreach (var m in new[] { mask, [] })
            {
                var kCache = (Half[])k.Clone();
                var vCache = (Half[])v.Clone();
                var output = Enumerable.Repeat(float.NaN, heads * d).ToArray();
                Attention.DecodeGroupedHalfAppend(heads, kvHeads, d, keys, stride, q, newKey, newValue, kCache, vCache, m, output, 0.125f);
                Assert.Equal(kExpected, kCache);
                Assert.Equal(vExpected, vCache);
                var expected = new float[heads * d];
                Attention.DecodeGroupedReference(heads, kvHeads, d, keys, stride, q, kw, vw, m, expected, 0.125f);
                KernelTestData.Close(expected, output, 1e-5f, 1e-5f, $"F16 grouped decode output after the appended row (mask {m.Length})");
            }
        });
    }

    [Fact]
    public void DecodeGroupedHalfAppend_RejectsBadShapes()
    {
        var x = new float[64];
        var hx = new Half[64];
        Assert.Throws<ArgumentException>(() => Attention.DecodeGroupedHalfAppend(3, 2, 16, 1, 32, x, x, x, hx, hx, default, x, 1f));
        Assert.Throws<ArgumentException>(() => Attention.DecodeGroupedHalfAppend(4, 2, 16, 2, 16, x, x, x, hx, hx, default, x, 1f));
        Assert.Throws<ArgumentException>(() => Attention.DecodeGroupedHalfAppend(4, 2, 16, 1, 32, x, x.AsSpan(0, 16), x, hx, hx, default, x, 1f));
        Assert.Throws<ArgumentException>(() => Attention.DecodeGroupedHalfAppend(4, 2, 16, 1, 32, x, x, x.AsSpan(0, 31), hx, hx, default, x, 1f));
    }

    [Fact]
    public void DecodeGroupedHalf_RejectsBadShapes()
    {
        var x = new float[64];
        var hx = new Half[64];
        Assert.Throws<ArgumentException>(() => Attention.DecodeGroupedHalf(3, 2, 16, 1, 32, x, hx, hx, default, x, 1f));
        Assert.Throws<ArgumentException>(() => Attention.DecodeGroupedHalf(4, 2, 16, 2, 16, x, hx, hx, default, x, 1f));
    }

    [Fact]
    public void ForwardHalf_ShortKeys_Throws()
    {
        var shape = new AttentionShape(1, 2, 1, 4, 8);
        Assert.Throws<ArgumentException>(() => Attention.ForwardHalf(shape, new float[16], new Half[60], new Half[64], new float[16]));
    }
}
