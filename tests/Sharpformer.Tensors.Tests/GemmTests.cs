using Sharpformer.Tensors.Kernels;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Tests;

[Collection("ParallelFor degree")]
public partial class GemmTests
{
    /// <summary>Every kernel tier this machine (and these DOTNET_Enable* settings) can run, scalar included.</summary>
    public static TheoryData<string> Tiers()
    {
        var data = new TheoryData<string>();
        foreach (GemmIsa isa in Enum.GetValues<GemmIsa>())
        {
            if (GemmDriver.IsSupported(isa)) data.Add(isa.ToString());
        }

        return data;
    }

    [Fact]
    public unsafe void PackBBlock_Transposed_EqualsScalarPack()
    {
        // The transposing pack (Bᵀ stored [n, k]: 16×16 Vector512 blocks, 8×8 Vector256 blocks or scalar, whichever this
        // machine and the DOTNET_Enable* settings allow) against a plain copy d[p · nr + j] = B[j0 + j, p0 + p], zero
        // past cols: full and partial panels, k tails of every length class, odd strides and unaligned starts.
        const int rows = 80;
        foreach (int ldb in new[] { 768, 3072, 301 })
        {
            float[] b = Random(ldb, rows * ldb, nanEvery: 97);
            foreach ((int nr, int cols) in new[] { (32, 32), (16, 16), (8, 8), (32, 20), (16, 5) })
            {
                foreach (int kcb in new[] { 256, 250, 200, 31, 16, 15, 8, 7, 1 })
                {
                    foreach ((int j0, int p0) in new[] { (0, 0), (3, 5), (rows - cols, ldb - kcb) })
                    {
                        var actual = new float[(kcb * nr) + 16];
                        var expected = new float[kcb * nr];
                        for (int p = 0; p < kcb; p++)
                        {
                            for (int j = 0; j < cols; j++) expected[(p * nr) + j] = b[((j0 + j) * ldb) + p0 + p];
                        }

                        fixed (float* pb = b, pa = actual)
                        {
                            actual.AsSpan().Fill(float.NaN); // stale values where the pack must write zeros
                            GemmDriver.PackBBlock(true, pb, ldb, j0, cols, p0, kcb, nr, pa + 1); // + 1: an unaligned panel
                        }

                        for (int i = 0; i < expected.Length; i++)
                        {
                            if (BitConverter.SingleToInt32Bits(actual[i + 1]) != BitConverter.SingleToInt32Bits(expected[i]))
                            {
                                Assert.Fail($"ldb {ldb} nr {nr} cols {cols} kcb {kcb} j0 {j0} p0 {p0}: [{i}] = {actual[i + 1]}, expected {expected[i]}");
                            }
                        }

                        Assert.True(float.IsNaN(actual[(kcb * nr) + 1]), "the pack writes past the panel");
                    }
                }
            }
        }
    }

    private static float[] Random(int seed, int length, float nanEvery = 0)
    {
        var random = new Random(seed);
        var data = new float[length];
        for (int i = 0; i < length; i++) data[i] = (float)((random.NextDouble() * 2) - 1);
        if (nanEvery > 0)
        {
            for (int i = 0; i < length; i += (int)nanEvery) data[i] = float.NaN;
        }

        return data;
    }

    /// <summary>
    /// Compares <paramref name="actual"/> with the reference result; the allowance scales with Σ|terms| of each
    /// element, since the fast path sums the same products in a different order.
    /// </summary>
    private static void AssertClose(
        bool transA, bool transB, int m, int n, int k, float alpha, float[] a, int lda, float[] b, int ldb,
        float beta, float[] c0, int ldc, float[] bias, float[] expected, float[] actual, string label)
    {
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double scale = 0;
                for (int p = 0; p < k; p++)
                {
                    float av = transA ? a[(p * lda) + i] : a[(i * lda) + p];
                    float bv = transB ? b[(j * ldb) + p] : b[(p * ldb) + j];
                    scale += Math.Abs(av * bv);
                }

                scale = (Math.Abs(alpha) * scale) + (beta == 0 ? 0 : Math.Abs(beta * c0[(i * ldc) + j])) + (bias.Length == 0 ? 0 : Math.Abs(bias[j]));
                float e = expected[(i * ldc) + j], x = actual[(i * ldc) + j];
                double allowed = (Tolerances.KernelVsReferenceRelative * scale) + 1e-30;
                if (!(Math.Abs(e - x) <= allowed))
                {
                    Assert.Fail($"{label}: C[{i}, {j}] = {x}, reference {e} (allowed ±{allowed:G3})");
                }
            }
        }

        // Padding between rows (ldc > n) must be left alone.
        for (int i = 0; i < c0.Length; i++)
        {
            if (i % ldc >= n || i / ldc >= m)
            {
                Assert.True(c0[i].Equals(actual[i]), $"{label}: element {i} outside C was written");
            }
        }
    }

    /// <summary>Runs one product on <paramref name="isa"/> and checks it against <see cref="Gemm.Reference"/>.</summary>
    private static void Check(
        GemmIsa isa, bool transA, bool transB, int m, int n, int k, float alpha = 1f, float beta = 0f,
        int padA = 0, int padB = 0, int padC = 0, bool withBias = false, int maxThreads = 1, bool nanInC = false)
    {
        int lda = (transA ? m : k) + padA, ldb = (transB ? k : n) + padB, ldc = n + padC;
        int seed = (m * 7919) + (n * 104729) + (k * 31) + (transA ? 1 : 0) + (transB ? 2 : 0);
        float[] a = Random(seed, Math.Max(1, (transA ? k : m) * lda));
        float[] b = Random(seed + 1, Math.Max(1, (transB ? n : k) * ldb));
        float[] c0 = Random(seed + 2, Math.Max(1, m * ldc), nanInC ? 3 : 0);
        float[] bias = withBias ? Random(seed + 3, n) : [];
        float[] expected = (float[])c0.Clone(), actual = (float[])c0.Clone();
        Gemm.Reference(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, expected, ldc, bias);
        Gemm.SgemmCore(isa, maxThreads, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, actual, ldc, bias);
        AssertClose(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c0, ldc, bias, expected, actual, $"{isa} tA={transA} tB={transB} m={m} n={n} k={k}");
    }

    [Theory]
    [MemberData(nameof(Tiers))]
    public void SgemmCore_EveryMAndNTail_MatchesReference(string tier)
    {
        // m 1..25 covers every row tail of the 12-, 8-, 4- and 6-row kernels; n 1..66 every column tail of 32, 16, 8.
        GemmIsa isa = Enum.Parse<GemmIsa>(tier);
        for (int t = 0; t < 4; t++)
        {
            bool transA = (t & 1) != 0, transB = (t & 2) != 0;
            for (int m = 1; m <= 25; m++)
            {
                for (int n = 1; n <= 66; n++)
                {
                    Check(isa, transA, transB, m, n, k: 1 + ((m + n) % 9));
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Tiers))]
    public void SgemmCore_ShapesUpTo70AndKBlocks_MatchesReference(string tier)
    {
        GemmIsa isa = Enum.Parse<GemmIsa>(tier);
        var random = new Random(1234);
        for (int trial = 0; trial < 120; trial++)
        {
            int m = random.Next(1, 71), n = random.Next(1, 71), k = random.Next(1, 71);
            Check(isa, random.Next(2) == 1, random.Next(2) == 1, m, n, k);
        }

        // k past one block (256) and uneven blocks: 257 → 2 × 129, 600 → 3 × 200; m, n past one tile.
        foreach ((int m, int n, int k) in new[] { (70, 70, 70), (13, 33, 257), (37, 65, 600), (200, 97, 300), (25, 300, 40) })
        {
            for (int t = 0; t < 4; t++) Check(isa, (t & 1) != 0, (t & 2) != 0, m, n, k);
        }

        // k so long that A is packed in chunks of rows (ChunkFloats / k): every chunk must see B, on 1 and 2 threads.
        Check(isa, false, true, 200, 8, 22_000);
        Check(isa, false, false, 150, 40, 30_000, maxThreads: 2);

        // B past one packed chunk (n · k > ChunkFloats) met by one row tile, as a language-model head's forward: one
        // column chunk, B packed inside the tiles; A's rows lie more than a page apart over several k blocks, so its
        // pack asks for each row's next block ahead.
        Check(isa, false, true, 20, 4200, 1024, beta: 1f, withBias: true, padA: 8, maxThreads: 2);
        Check(isa, false, false, 20, 4200, 1024, padA: 8);
    }

    [Theory]
    [MemberData(nameof(Tiers))]
    public void SgemmCore_RowsUpToOneTallTile_MatchReference(string tier)
    {
        // 193–288 rows (17–24 panels of 12) run as one row tile, B packed panel by panel inside it; around both ends,
        // with two k blocks, on 1 and 2 threads, beta 1 and the bias.
        GemmIsa isa = Enum.Parse<GemmIsa>(tier);
        foreach (int m in new[] { 192, 193, 256, 288, 289 })
        {
            for (int t = 0; t < 4; t++)
            {
                bool transA = (t & 1) != 0, transB = (t & 2) != 0;
                Check(isa, transA, transB, m, 70, 300, beta: 1f, withBias: true, maxThreads: 1 + (t % 2), padC: 3);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Tiers))]
    public void SgemmCore_ThinATimesBTransposed_MatchesReference(string tier)
    {
        // m ≤ 8 with B stored [n, k] takes the dot-product path: every row and column count, k below, at and past 8.
        GemmIsa isa = Enum.Parse<GemmIsa>(tier);
        for (int m = 1; m <= 9; m++)
        {
            for (int n = 1; n <= 13; n++)
            {
                foreach (int k in new[] { 3, 8, 17, 64 })
                {
                    Check(isa, false, true, m, n, k, alpha: 0.5f, beta: 0.25f, padA: 1, padB: 2, padC: 3, withBias: n % 2 == 0);
                }
            }
        }

        Check(isa, false, true, 8, 1536, 384, maxThreads: 4); // decode-like, large enough to split across threads
        Check(isa, false, true, 3, 100, 300, beta: 0f, nanInC: true);
    }

    [Theory]
    [MemberData(nameof(Tiers))]
    public void SgemmCore_LeadingDimensionsLargerThanRows_MatchesReferenceAndKeepsPadding(string tier)
    {
        GemmIsa isa = Enum.Parse<GemmIsa>(tier);
        for (int t = 0; t < 4; t++)
        {
            Check(isa, (t & 1) != 0, (t & 2) != 0, 19, 45, 23, padA: 3, padB: 5, padC: 7);
            Check(isa, (t & 1) != 0, (t & 2) != 0, 64, 64, 64, padA: 1, padB: 16, padC: 33);
        }
    }

    [Theory]
    [MemberData(nameof(Tiers))]
    public void SgemmCore_AlphaBetaBias_MatchReference(string tier)
    {
        GemmIsa isa = Enum.Parse<GemmIsa>(tier);
        foreach ((float alpha, float beta) in new[] { (1f, 0f), (0.5f, 1f), (-2f, 0.25f), (1f, -1f), (0f, 0.5f) })
        {
            foreach (bool bias in new[] { false, true })
            {
                Check(isa, false, true, 30, 70, 300, alpha, beta, withBias: bias); // two k blocks: beta and bias once
                Check(isa, true, false, 12, 32, 16, alpha, beta, withBias: bias); // exact tiles: the vector epilogue
                Check(isa, false, false, 5, 7, 9, alpha, beta, withBias: bias); // edge tiles: the scalar epilogue
            }
        }
    }

    [Theory]
    [MemberData(nameof(Tiers))]
    public void SgemmCore_NaNInCWithBetaZero_IsOverwritten(string tier)
    {
        GemmIsa isa = Enum.Parse<GemmIsa>(tier);
        int m = 29, n = 45, k = 300;
        float[] a = Random(1, m * k), b = Random(2, n * k);
        float[] c = new float[m * n];
        Array.Fill(c, float.NaN);
        Gemm.SgemmCore(isa, 1, false, true, m, n, k, 1f, a, k, b, k, 0f, c, n, Random(3, n));
        Assert.All(c, v => Assert.True(float.IsFinite(v)));

        // And through the checker, NaN every third element, with and without bias.
        Check(isa, false, false, 33, 40, 20, beta: 0f, nanInC: true);
        Check(isa, true, true, 33, 40, 20, beta: 0f, withBias: true, nanInC: true);
    }

    [Theory]
    [MemberData(nameof(Tiers))]
    public void SgemmCore_ZeroK_ScalesCAndAddsBias(string tier)
    {
        GemmIsa isa = Enum.Parse<GemmIsa>(tier);
        Check(isa, false, false, 5, 6, 0, beta: 0.5f, withBias: true);
        Check(isa, false, true, 5, 6, 0, beta: 0f, nanInC: true);
    }

    [Fact]
    public void Sgemm_EmptyMOrN_LeavesCUnchanged()
    {
        float[] c = [1f, 2f, 3f];
        Gemm.Sgemm(false, false, 0, 3, 4, 1f, [], 4, new float[12], 3, 0f, c, 3);
        Gemm.Sgemm(false, false, 1, 0, 4, 1f, new float[4], 4, [], 1, 0f, c, 3);
        Assert.Equal([1f, 2f, 3f], c);
    }

    [Theory]
    [MemberData(nameof(Tiers))]
    public void SgemmCore_OneRowTileInNarrowColumnRuns_MatchesReferenceAndOneThreadBitForBit(string tier)
    {
        // One row tile whose columns two threads cut into narrow tiles, over several k blocks: each thread multiplies
        // its own tiles in runs, k block by k block. Every element must still sum its k blocks in order.
        GemmIsa isa = Enum.Parse<GemmIsa>(tier);
        foreach ((int m, int n, int k) in new[] { (100, 700, 600), (64, 390, 530), (30, 1000, 300) })
        {
            for (int t = 0; t < 4; t++)
            {
                bool transA = (t & 1) != 0, transB = (t & 2) != 0;
                Check(isa, transA, transB, m, n, k, alpha: 0.75f, beta: 0.5f, withBias: true, maxThreads: 2);
                int lda = transA ? m : k, ldb = transB ? k : n;
                float[] a = Random(20 + t, m * k), b = Random(21 + t, n * k), bias = Random(22, n);
                float[] one = Random(23, m * n), two = (float[])one.Clone();
                Gemm.SgemmCore(isa, 1, transA, transB, m, n, k, 1f, a, lda, b, ldb, 1f, one, n, bias);
                Gemm.SgemmCore(isa, 2, transA, transB, m, n, k, 1f, a, lda, b, ldb, 1f, two, n, bias);
                Assert.Equal(one, two);
            }
        }
    }

    [Fact]
    public void Sgemm_MultiThreaded_EqualsSingleThreadedBitForBit()
    {
        // Threads split C into tiles; each element's sum runs in the same order either way.
        int saved = ParallelFor.MaxDegreeOfParallelism;
        try
        {
            ParallelFor.MaxDegreeOfParallelism = 4;
            // The last shape's B passes one packed chunk and runs as one column chunk (a language-model head's forward).
            foreach ((int m, int n, int k, bool transB) in new[] { (200, 150, 300, false), (128, 384, 96, true), (37, 700, 160, true), (20, 4200, 1024, true) })
            {
                float[] a = Random(10, m * k), b = Random(11, n * k), bias = Random(12, n);
                float[] one = Random(13, m * n), many = (float[])one.Clone();
                GemmIsa isa = GemmDriver.BestIsa;
                Gemm.SgemmCore(isa, 1, false, transB, m, n, k, 0.75f, a, k, b, transB ? k : n, 0.5f, one, n, bias);
                Gemm.SgemmCore(isa, 4, false, transB, m, n, k, 0.75f, a, k, b, transB ? k : n, 0.5f, many, n, bias);
                Assert.Equal(one, many);
                Gemm.Sgemm(false, transB, m, n, k, 0.75f, a, k, b, transB ? k : n, 0f, many, n, bias);
                Gemm.SgemmCore(isa, 1, false, transB, m, n, k, 0.75f, a, k, b, transB ? k : n, 0f, one, n, bias);
                Assert.Equal(one, many);
            }
        }
        finally
        {
            ParallelFor.MaxDegreeOfParallelism = saved;
        }
    }

    [Theory]
    [MemberData(nameof(Tiers))]
    public void SgemmCore_MultiThreadedTilesAndPackedB_EqualSingleThreadedBitForBit(string tier)
    {
        // Shapes past ParallelFlops that give one row tile (columns split, B packed inside the tiles; A shared when
        // small, per thread when k is long, k block by k block in a run when it outgrows L2), several row tiles (A and B packed per thread; with fewer rows than
        // columns dealt column tiles first, every row tile of A kept packed), ragged row and column tails, and several
        // k blocks; each with B packed per call and packed once, in every transpose.
        GemmIsa isa = Enum.Parse<GemmIsa>(tier);
        if (isa == GemmIsa.Scalar) return; // the scalar tier is Gemm.Reference itself, single-threaded
        foreach ((int m, int n, int k) in new[] { (128, 200, 600), (100, 70, 530), (257, 190, 130), (30, 1000, 100), (64, 700, 2100), (150, 768, 2100), (401, 1001, 300) })
        {
            for (int t = 0; t < 4; t++)
            {
                bool transA = (t & 1) != 0, transB = (t & 2) != 0;
                int lda = transA ? m : k, ldb = transB ? k : n;
                float[] a = Random(m + t, m * k), b = Random(n + t, n * k), bias = Random(7, n);
                float[] one = Random(8, m * n), many = (float[])one.Clone(), packedOne = (float[])one.Clone(), packedMany = (float[])one.Clone();
                Gemm.SgemmCore(isa, 1, transA, transB, m, n, k, 0.75f, a, lda, b, ldb, 0.5f, one, n, bias);
                Gemm.SgemmCore(isa, 3, transA, transB, m, n, k, 0.75f, a, lda, b, ldb, 0.5f, many, n, bias);
                Assert.True(one.AsSpan().SequenceEqual(many), $"{isa} t={t} {m}×{k}×{n}: 3 threads differ from 1");
                GemmPackedB packed = GemmPackedB.Create(isa, transB, k, n, b, ldb);
                packed.Multiply(1, transA, m, 0.75f, a, lda, 0.5f, packedOne, n, bias);
                packed.Multiply(3, transA, m, 0.75f, a, lda, 0.5f, packedMany, n, bias);
                Assert.True(one.AsSpan().SequenceEqual(packedOne), $"{isa} t={t} {m}×{k}×{n}: packed B differs from plain");
                Assert.True(one.AsSpan().SequenceEqual(packedMany), $"{isa} t={t} {m}×{k}×{n}: packed B on 3 threads differs from 1");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Tiers))]
    public void SgemmCore_TwoThreadsOneRowTile_LastTilesByPanels_EqualSingleThreadedBitForBit(string tier)
    {
        // One row tile (≤ 24 A panels: 288 rows for the 12×32 kernel, 144 for the 6-row ones) on 2 threads, the columns
        // cut into tiles of several panels, claimed one at a time (B transposed, or packed once): each participant's
        // last tile and every tile taken from the other stretch is claimed panel by panel, here with a ragged last
        // panel (n = 1000) and several k blocks. A wrong panel range in that path fails this on every SIMD tier.
        GemmIsa isa = Enum.Parse<GemmIsa>(tier);
        if (isa == GemmIsa.Scalar) return;
        foreach ((int m, int n, int k) in new[] { (200, 1000, 300), (256, 768, 600), (120, 1000, 300) })
        {
            for (int t = 0; t < 4; t++)
            {
                bool transA = (t & 1) != 0, transB = (t & 2) != 0;
                int lda = transA ? m : k, ldb = transB ? k : n;
                float[] a = Random(m + t, m * k), b = Random(n + t, n * k), bias = Random(7, n);
                float[] one = Random(8, m * n), many = (float[])one.Clone(), packedMany = (float[])one.Clone();
                Gemm.SgemmCore(isa, 1, transA, transB, m, n, k, 0.75f, a, lda, b, ldb, 0.5f, one, n, bias);
                for (int repeat = 0; repeat < 3; repeat++)
                {
                    float[] c = (float[])many.Clone();
                    Gemm.SgemmCore(isa, 2, transA, transB, m, n, k, 0.75f, a, lda, b, ldb, 0.5f, c, n, bias);
                    Assert.True(one.AsSpan().SequenceEqual(c), $"{isa} t={t} {m}×{k}×{n}: 2 threads differ from 1");
                }

                GemmPackedB packed = GemmPackedB.Create(isa, transB, k, n, b, ldb);
                packed.Multiply(2, transA, m, 0.75f, a, lda, 0.5f, packedMany, n, bias);
                Assert.True(one.AsSpan().SequenceEqual(packedMany), $"{isa} t={t} {m}×{k}×{n}: packed B on 2 threads differs from 1");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Tiers))]
    public void PackedB_EveryTransposeAndTail_MatchesReference(string tier)
    {
        GemmIsa isa = Enum.Parse<GemmIsa>(tier);
        foreach ((int m, int n, int k) in new[] { (1, 1, 1), (13, 33, 17), (30, 70, 300), (128, 40, 64) })
        {
            for (int t = 0; t < 4; t++)
            {
                bool transA = (t & 1) != 0, transB = (t & 2) != 0;
                int lda = transA ? m : k, ldb = (transB ? k : n) + 3;
                float[] a = Random(m + t, m * k), b = Random(n + t, (transB ? n : k) * ldb), bias = Random(5, n);
                float[] expected = Random(6, m * n), actual = (float[])expected.Clone(), c0 = (float[])expected.Clone();
                Gemm.Reference(transA, transB, m, n, k, 1.5f, a, lda, b, ldb, 0.5f, expected, n, bias);
                GemmPackedB packed = GemmPackedB.Create(isa, transB, k, n, b, ldb);
                Assert.Equal((k, n), (packed.K, packed.N));
                packed.Multiply(2, transA, m, 1.5f, a, lda, 0.5f, actual, n, bias);
                AssertClose(transA, transB, m, n, k, 1.5f, a, lda, b, ldb, 0.5f, c0, n, bias, expected, actual, $"packed {isa} t={t} {m}×{k}×{n}");
            }
        }
    }

    [Fact]
    public void PackB_PublicApi_MatchesPlainSgemm()
    {
        int m = 40, n = 96, k = 384;
        float[] a = Random(1, m * k), w = Random(2, n * k), bias = Random(3, n);
        float[] plain = new float[m * n], packed = new float[m * n];
        Gemm.Sgemm(false, true, m, n, k, 1f, a, k, w, k, 0f, plain, n, bias);
        Gemm.Sgemm(false, m, 1f, a, k, Gemm.PackB(true, k, n, w, k), 0f, packed, n, bias);
        Assert.Equal(plain, packed);
    }

    [Theory]
    [MemberData(nameof(Tiers))]
    public void SgemmBatchedCore_StrideZeroBroadcastAndParallelBatch_MatchesReference(string tier)
    {
        GemmIsa isa = Enum.Parse<GemmIsa>(tier);

        // Small products, many of them (attention heads: parallel across the batch) and a few large ones (parallel
        // across tiles). A is broadcast (stride 0) in the first, B in the second.
        foreach ((int m, int n, int k, int batch, bool broadcastA) in new[] { (17, 24, 16, 12, true), (70, 150, 300, 3, false) })
        {
            long strideA = broadcastA ? 0 : m * k, strideB = broadcastA ? n * k : 0, strideC = (m * n) + 5;
            float[] a = Random(1, (int)(m * k * (broadcastA ? 1 : batch)));
            float[] b = Random(2, (int)(n * k * (broadcastA ? batch : 1)));
            float[] c = Random(3, (int)(strideC * batch)), expected = (float[])c.Clone();
            float[] bias = Random(4, n);
            for (int i = 0; i < batch; i++)
            {
                Gemm.Reference(false, true, m, n, k, 1f, a.AsSpan((int)(i * strideA)), k, b.AsSpan((int)(i * strideB)), k, 1f, expected.AsSpan((int)(i * strideC)), n, bias);
            }

            Gemm.SgemmBatchedCore(isa, 4, false, true, m, n, k, 1f, a, k, strideA, b, k, strideB, 1f, c, n, strideC, batch, bias);
            for (int i = 0; i < c.Length; i++)
            {
                Assert.True(Math.Abs(c[i] - expected[i]) <= Tolerances.KernelVsReferenceRelative * k, $"batch element {i}: {c[i]} vs {expected[i]}");
            }
        }
    }

    [Fact]
    public void SgemmBatched_PublicApi_MatchesLoopOfSgemm()
    {
        int m = 9, n = 20, k = 33, batch = 5;
        float[] a = Random(1, batch * m * k), b = Random(2, k * n);
        float[] batched = new float[batch * m * n], looped = new float[batch * m * n];
        Gemm.SgemmBatched(false, false, m, n, k, 1f, a, k, m * k, b, n, 0, 0f, batched, n, m * n, batch);
        for (int i = 0; i < batch; i++)
        {
            Gemm.Sgemm(false, false, m, n, k, 1f, a.AsSpan(i * m * k), k, b, n, 0f, looped.AsSpan(i * m * n), n);
        }

        Assert.Equal(looped, batched);
    }

    [Fact]
    public void Sgemm_InvalidArguments_ThrowWithShapes()
    {
        float[] buf = new float[100];
        var e = Assert.Throws<ArgumentException>(() => Gemm.Sgemm(false, false, -1, 2, 2, 1f, buf, 2, buf, 2, 0f, buf, 2));
        Assert.Contains("m=-1", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Gemm.Sgemm(false, true, 4, 5, 6, 1f, buf, 5, buf, 6, 0f, buf, 5));
        Assert.Contains("A is stored [4, 6]", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Gemm.Sgemm(false, false, 10, 10, 10, 1f, buf, 10, buf, 10, 0f, new float[99], 10));
        Assert.Contains("needs 100 elements", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Gemm.Sgemm(false, false, 2, 5, 2, 1f, buf, 2, buf, 5, 0f, buf, 5, new float[3]));
        Assert.Contains("bias has 3 values", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Gemm.PackB(true, 8, 4, new float[31], 8));
        Assert.Contains("B is stored [4, 8] (transposed)", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Gemm.Sgemm(false, 3, 1f, buf, 8, Gemm.PackB(false, 8, 4, buf, 4), 0f, new float[11], 4));
        Assert.Contains("C is stored [3, 4]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SgemmBatched_InvalidArguments_ThrowWithShapes()
    {
        float[] buf = new float[64];
        var e = Assert.Throws<ArgumentException>(() => Gemm.SgemmBatched(false, false, 4, 4, 4, 1f, buf, 4, 16, buf, 4, 0, 0f, buf, 4, 8, 2));
        Assert.Contains("C matrices overlap", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Gemm.SgemmBatched(false, false, 4, 4, 4, 1f, buf, 4, 16, buf, 4, 0, 0f, new float[200], 4, 16, 6));
        Assert.Contains("last A matrix starts at element 80", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Gemm.SgemmBatched(false, false, 4, 4, 4, 1f, buf, 4, -1, buf, 4, 0, 0f, buf, 4, 16, 2));
        Assert.Contains("must be non-negative", e.Message, StringComparison.Ordinal);
    }
}
