using Sharpformer.Tensors.Kernels;

namespace Sharpformer.Tensors.Tests;

/// <summary>Split-K (<see cref="GemmSplitK"/>): a long k with a small C, as in the language-model head's input gradient.</summary>
public partial class GemmTests
{
    [Fact]
    public void SplitK_SliceLength_SplitsOnlyLongKWithSmallC()
    {
        Assert.Equal(0, GemmSplitK.SliceLength(256, 768, GemmSplitK.MinK - 1));
        Assert.Equal(0, GemmSplitK.SliceLength(4096, 4096, 50257)); // two partial C buffers would be 128 MiB
        foreach ((int m, int n, int k) in new[] { (256, 768, 50257), (13, 37, 9001), (1, 1, GemmSplitK.MinK), (1024, 1024, 8192) })
        {
            int length = GemmSplitK.SliceLength(m, n, k);
            Assert.True(length > 0 && length < k, $"{m}×{n}×{k}: slice length {length}");
            Assert.Equal(0, length % 16);
            int slices = (k + length - 1) / length;
            Assert.True(slices >= 2 && (long)slices * m * n <= 1 << 22, $"{m}×{n}×{k}: {slices} slices of {length}");
        }

        // Many slices come in a multiple of SliceMultiple (two or four threads finish together), still within the
        // partial-buffer limit: the language-model head's 21 slices (as many 256 × 768 partials as fit) become 20.
        foreach ((int m, int n, int k) in new[] { (256, 768, 50257), (64, 64, 8 * 2048), (64, 64, 37 * 2048), (200, 2000, 50000), (1, 1, 1 << 20) })
        {
            int length = GemmSplitK.SliceLength(m, n, k);
            Assert.True(length > 0, $"{m}×{n}×{k} must take the split-K path");
            int slices = (k + length - 1) / length;
            Assert.True(slices % GemmSplitK.SliceMultiple == 0, $"{m}×{n}×{k}: {slices} slices of {length}");
            Assert.True((long)slices * m * n <= 1 << 22, $"{m}×{n}×{k}: {slices} slices of {length} pass the partial-buffer limit");
        }
    }

    [Theory]
    [MemberData(nameof(Tiers))]
    public void SplitK_EveryTransposeBetaAndBias_MatchesReference(string tier)
    {
        // k past MinK with ragged slices; C tails in both directions; beta 0 (C holds NaN and must not leak), 1 and
        // a scale; row padding in every operand; 1, 2 and 8 threads.
        GemmIsa isa = Enum.Parse<GemmIsa>(tier);
        int k = GemmSplitK.MinK + 809;
        Assert.True(GemmSplitK.SliceLength(13, 37, k) > 0, "the test shape must take the split-K path");
        for (int t = 0; t < 4; t++)
        {
            bool transA = (t & 1) != 0, transB = (t & 2) != 0;
            Check(isa, transA, transB, 13, 37, k, alpha: 0.75f, beta: 0f, nanInC: true, maxThreads: 1 + (t % 2));
            Check(isa, transA, transB, 13, 37, k, alpha: 1f, beta: 1f, withBias: true, maxThreads: 8);
            Check(isa, transA, transB, 9, 33, k, alpha: -0.5f, beta: 0.25f, padA: 3, padB: 5, padC: 2, withBias: true, maxThreads: 2);
        }

        // A thin A (m ≤ 8) times Bᵀ keeps its unpacked dot-product path; other thin shapes split.
        Check(isa, false, true, 5, 40, k, beta: 1f, withBias: true, maxThreads: 2);
        Check(isa, false, false, 5, 40, k, beta: 1f, withBias: true, maxThreads: 2);
    }

    [Theory]
    [MemberData(nameof(Tiers))]
    public void SplitK_ThreadCounts_EqualBitForBit(string tier)
    {
        // The slices depend on the shape alone and the partials are added in slice order, so 1, 2, 3 and 8 threads
        // give the same bits (the trainer's resume test compares runs bit for bit).
        GemmIsa isa = Enum.Parse<GemmIsa>(tier);
        if (isa == GemmIsa.Scalar) return; // the scalar tier is Gemm.Reference itself, single-threaded
        foreach ((int m, int n, int k) in new[] { (40, 96, 20000), (13, 37, 9001) })
        {
            Assert.True(GemmSplitK.SliceLength(m, n, k) > 0, $"{m}×{n}×{k} must take the split-K path");
            for (int t = 0; t < 4; t++)
            {
                bool transA = (t & 1) != 0, transB = (t & 2) != 0;
                int lda = transA ? m : k, ldb = transB ? k : n;
                float[] a = Random(m + t, m * k), b = Random(n + t, n * k), bias = Random(7, n);
                float[] one = Random(8, m * n);
                float[] c0 = (float[])one.Clone();
                Gemm.SgemmCore(isa, 1, transA, transB, m, n, k, 0.75f, a, lda, b, ldb, 0.5f, one, n, bias);
                foreach (int threads in new[] { 2, 3, 8 })
                {
                    float[] many = (float[])c0.Clone();
                    Gemm.SgemmCore(isa, threads, transA, transB, m, n, k, 0.75f, a, lda, b, ldb, 0.5f, many, n, bias);
                    Assert.True(one.AsSpan().SequenceEqual(many), $"{isa} t={t} {m}×{k}×{n}: {threads} threads differ from 1");
                }
            }
        }
    }
}
