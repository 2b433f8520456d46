using Sharpformer.Tensors.Kernels;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Tests.Kernels;

// The decoding-step test sets ParallelFor.MaxDegreeOfParallelism (process-wide): it shares the collection that runs such tests one at a time.
[Collection("ParallelFor degree")]
public class AttentionTests
{
    public static TheoryData<int, int, int, int, int, bool, bool, bool> Cases() => new()
    {
        // B, H, Tq, Tk, D, causal, padding, fused QKV layout
        { 1, 1, 4, 4, 8, false, false, false },
        { 2, 3, 5, 5, 16, true, false, false },
        { 2, 2, 3, 9, 8, true, true, false },   // KV cache: Tq < Tk, causal offset 6
        { 3, 2, 7, 7, 4, false, true, true },   // strided views into a fused [B, T, 3·H·D] projection
        { 1, 4, 1, 17, 32, true, true, true },  // one decoding step
        { 2, 3, 1, 40, 64, true, true, true },  // decoding steps with GPT-2's head size
        { 1, 2, 2, 9, 20, true, false, false }, // few queries, D with a vector remainder and a scalar tail
        { 2, 1, 6, 3, 5, true, false, false },  // Tq > Tk: the first queries see no key at all
        { 1, 2, 9, 9, 16, true, true, true },   // from 8 queries on, scores go through a transposed copy of K
        { 2, 1, 12, 20, 8, true, false, false }, // chunked prefill against a cache, transposed path
        { 1, 1, 10, 4, 3, true, true, false },  // Tq > Tk on the transposed path, odd D
    };

    private sealed record Problem(AttentionShape Shape, float[] Q, float[] K, float[] V, int QOff, int KOff, int VOff, float[] Mask, int OutLength);

    private static Problem Make(int b, int h, int tq, int tk, int d, bool pad, bool fused, int seed)
    {
        int w = h * d;
        if (fused)
        {
            // One buffer per role still, each laid out like the fused projection: row stride 3·H·D, head block at
            // offsets 0, H·D, 2·H·D (Tq and Tk may differ, so Q and K/V cannot share a buffer here).
            var shape = new AttentionShape(b, h, tq, tk, d) { QueryRowStride = 3 * w, KeyRowStride = 3 * w, ValueRowStride = 3 * w, OutputRowStride = w };
            var q = KernelTestData.Uniform(b * tq * 3 * w, -1f, 1f, seed);
            var kv = KernelTestData.Uniform(b * tk * 3 * w, -1f, 1f, seed + 1);
            return new Problem(shape, q, kv, kv, 0, w, 2 * w, MakeMask(b, tk, pad, seed), b * tq * w);
        }

        var plain = new AttentionShape(b, h, tq, tk, d);
        return new Problem(
            plain, KernelTestData.Uniform(b * tq * w, -1f, 1f, seed), KernelTestData.Uniform(b * tk * w, -1f, 1f, seed + 1),
            KernelTestData.Uniform(b * tk * w, -1f, 1f, seed + 2), 0, 0, 0, MakeMask(b, tk, pad, seed), b * tq * w);
    }

    private static float[] MakeMask(int b, int tk, bool pad, int seed)
    {
        if (!pad) return [];
        var m = KernelTestData.Uniform(b * tk, 0f, 1f, seed + 3).Select(v => v < 0.35f ? 0f : 1f).ToArray();
        Array.Fill(m, 0f, 0, tk); // batch 0 is fully padded: its outputs must be zeros
        return m;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    [MemberData(nameof(BlockedCases))]
    public void Forward_MatchesNaiveReference(int b, int h, int tq, int tk, int d, bool causal, bool pad, bool fused)
    {
        var p = Make(b, h, tq, tk, d, pad, fused, b + h + tq + tk + d);
        var output = new float[p.OutLength];
        var probs = new float[b * h * tq * tk];
        Attention.Forward(p.Shape, p.Q.AsSpan(p.QOff), p.K.AsSpan(p.KOff), p.V.AsSpan(p.VOff), output, causal, p.Mask, null, probs);

        var expected = new float[p.OutLength];
        var expectedProbs = new float[probs.Length];
        float scale = 1f / MathF.Sqrt(d);
        Attention.ForwardReference(p.Shape, p.Q.AsSpan(p.QOff), p.K.AsSpan(p.KOff), p.V.AsSpan(p.VOff), expected, causal, p.Mask, scale, expectedProbs);
        KernelTestData.Close(expectedProbs, probs, 1e-6f, 1e-5f, "probabilities");
        KernelTestData.Close(expected, output, 1e-5f, 1e-5f, "output");
        Assert.DoesNotContain(output, float.IsNaN);

        // Without the probabilities output, the same result: bit for bit, except that one query (a decoding step) then
        // goes through the split-K path and many queries on the AVX2 / AVX-512 tiers through the tiled forward, whose
        // sums run in other orders.
        var again = new float[p.OutLength];
        Attention.Forward(p.Shape, p.Q.AsSpan(p.QOff), p.K.AsSpan(p.KOff), p.V.AsSpan(p.VOff), again, causal, p.Mask);
        if (tq == 1 || Attention.UsesForwardTiles(GemmDriver.BestIsa, p.Shape))
        {
            KernelTestData.Close(expected, again, 1e-5f, 1e-5f, "output without probabilities");
        }
        else
        {
            Assert.Equal(output, again);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    [MemberData(nameof(BlockedCases))]
    public void Forward_LogSumExp_MatchesDoubleAndLeavesTheOutputAsItWas(int b, int h, int tq, int tk, int d, bool causal, bool pad, bool fused)
    {
        var p = Make(b, h, tq, tk, d, pad, fused, 5 * (b + h + tq + tk + d));
        var q = p.Q.AsSpan(p.QOff);
        var k = p.K.AsSpan(p.KOff);
        var output = new float[p.OutLength];
        var lse = Nan(b * h * tq);
        Attention.Forward(p.Shape, q, k, p.V.AsSpan(p.VOff), output, causal, p.Mask, 0.6f, default, lse);
        var expectedOutput = new float[p.OutLength];
        Attention.ForwardReference(p.Shape, q, k, p.V.AsSpan(p.VOff), expectedOutput, causal, p.Mask, 0.6f, default);
        KernelTestData.Close(expectedOutput, output, 1e-5f, 1e-5f, "output with the log-sum-exp");

        for (int bi = 0; bi < b; bi++)
        {
            for (int hi = 0; hi < h; hi++)
            {
                for (int i = 0; i < tq; i++)
                {
                    // log Σ_j exp(0.6 · q_i·k_j) over the keys query i sees, in double; −∞ when it sees none.
                    double max = double.NegativeInfinity;
                    var scores = new List<double>();
                    for (int j = 0; j < tk; j++)
                    {
                        if ((causal && j > i + tk - tq) || (pad && p.Mask[(bi * tk) + j] == 0f)) continue;
                        double sc = 0;
                        for (int e = 0; e < d; e++)
                        {
                            sc += (double)q[(((bi * tq) + i) * p.Shape.QStride) + (hi * d) + e] * k[(((bi * tk) + j) * p.Shape.KStride) + (hi * d) + e];
                        }

                        scores.Add(0.6 * sc);
                        max = Math.Max(max, 0.6 * sc);
                    }

                    float actual = lse[(((bi * h) + hi) * tq) + i];
                    if (scores.Count == 0)
                    {
                        Assert.Equal(float.NegativeInfinity, actual);
                        continue;
                    }

                    double expected = max + Math.Log(scores.Sum(sc => Math.Exp(sc - max)));
                    Assert.True(Math.Abs(expected - actual) <= 1e-5 * Math.Max(1, Math.Abs(expected)), $"lse[{bi}, {hi}, {i}]: expected {expected:G9}, got {actual:G9}");
                }
            }
        }
    }

    public static TheoryData<int, int, int, int, int, bool, bool, bool> TileCases() => new()
    {
        // B, H, Tq, Tk, D, causal, padding, fused: key counts that are not whole panels, D not a whole vector, Tq ≠ Tk.
        { 4, 3, 64, 64, 64, true, false, true },   // GPT-2 124M's head
        { 2, 2, 128, 128, 64, false, true, false }, // BERT-base's head, padded (batch 0 fully)
        { 1, 2, 37, 37, 20, true, true, true },
        { 1, 1, 13, 45, 5, true, false, false },    // chunked prefill: 32 cached keys, odd D
        { 2, 1, 50, 17, 8, true, true, false },     // Tq > Tk: the first 33 queries see no key
        { 1, 1, 8, 100, 72, false, true, true },    // the fewest queries for tiles, D over two panels
        { 1, 1, 260, 260, 16, true, false, false }, // many query tiles and key panels
    };

    [Theory]
    [MemberData(nameof(Cases))]
    [MemberData(nameof(BlockedCases))]
    [MemberData(nameof(TileCases))]
    public void ForwardTiles_EveryTier_MatchesDoubleReference(int b, int h, int tq, int tk, int d, bool causal, bool pad, bool fused)
    {
        // The tiled forward (AVX2 and AVX-512 micro-kernels) forced per tier, against the double reference: output and
        // log-sum-exp, both starting NaN so an element it skips shows; without the log-sum-exp the output is the same bits.
        var p = Make(b, h, tq, tk, d, pad, fused, 7 * (b + h + tq + tk + d));
        float scale = 0.8f / MathF.Sqrt(d);
        var q = p.Q.AsSpan(p.QOff);
        var k = p.K.AsSpan(p.KOff);
        var v = p.V.AsSpan(p.VOff);
        var expected = new float[p.OutLength];
        Attention.ForwardReference(p.Shape, q, k, v, expected, causal, p.Mask, scale, default);
        var expectedLse = LogSumExpReference(p, causal, scale);
        foreach (var isa in new[] { GemmIsa.Vector256, GemmIsa.Vector512 })
        {
            if (!GemmDriver.IsSupported(isa) || !Attention.UsesForwardTiles(isa, p.Shape)) continue;
            var output = Nan(p.OutLength);
            var lse = Nan(b * h * tq);
            Attention.ForwardTilesCore(isa, p.Shape, scale, q, k, v, output, causal, p.Mask, lse);
            KernelTestData.Close(expected, output, 1e-5f, 1e-5f, $"output on {isa}");
            Assert.DoesNotContain(output, float.IsNaN);
            for (int i = 0; i < lse.Length; i++)
            {
                if (double.IsNegativeInfinity(expectedLse[i]))
                {
                    Assert.Equal(float.NegativeInfinity, lse[i]);
                    continue;
                }

                Assert.True(Math.Abs(expectedLse[i] - lse[i]) <= 1e-5 * Math.Max(1, Math.Abs(expectedLse[i])), $"lse[{i}] on {isa}: expected {expectedLse[i]:G9}, got {lse[i]:G9}");
            }

            var inference = Nan(p.OutLength);
            Attention.ForwardTilesCore(isa, p.Shape, scale, q, k, v, inference, causal, p.Mask, default);
            Assert.Equal(output, inference);
        }
    }

    /// <summary>Each query's log Σ_j exp(scale · q_i·k_j) over the keys it sees, in double; −∞ when it sees none. [B, H, Tq].</summary>
    private static double[] LogSumExpReference(Problem p, bool causal, float scale)
    {
        var s = p.Shape;
        int tq = s.QueryLength, tk = s.KeyLength, d = s.HeadDim;
        var result = new double[s.Batch * s.Heads * tq];
        for (int bi = 0; bi < s.Batch; bi++)
        {
            for (int hi = 0; hi < s.Heads; hi++)
            {
                for (int i = 0; i < tq; i++)
                {
                    var scores = new List<double>();
                    for (int j = 0; j < tk; j++)
                    {
                        if ((causal && j > i + tk - tq) || (p.Mask.Length > 0 && p.Mask[(bi * tk) + j] == 0f)) continue;
                        double sc = 0;
                        for (int e = 0; e < d; e++)
                        {
                            sc += (double)p.Q[p.QOff + (((bi * tq) + i) * s.QStride) + (hi * d) + e] * p.K[p.KOff + (((bi * tk) + j) * s.KStride) + (hi * d) + e];
                        }

                        scores.Add(scale * sc);
                    }

                    double max = scores.Count == 0 ? double.NegativeInfinity : scores.Max();
                    result[(((bi * s.Heads) + hi) * tq) + i] = scores.Count == 0 ? double.NegativeInfinity : max + Math.Log(scores.Sum(x => Math.Exp(x - max)));
                }
            }
        }

        return result;
    }

    public static TheoryData<int, int, int, int, bool, bool, int> DecodeCases() => new()
    {
        // B, H, Tk, D, padding, fused QKV layout, threads
        { 1, 12, 160, 64, false, true, 2 },   // GPT-2 124M at 160 cached tokens
        { 2, 3, 1, 64, true, true, 2 },       // one key; batch 0 fully padded
        { 1, 2, 15, 8, false, false, 2 },     // fewer keys than one block
        { 3, 4, 17, 20, true, false, 2 },     // a block plus one key, D with vector and scalar tails
        { 2, 2, 1000, 16, true, true, 2 },    // many blocks; whole blocks of padding (batch 0)
        { 2, 5, 333, 7, true, false, 1 },     // one thread: larger blocks, odd D
        { 1, 1, 64, 3, true, false, 8 },      // more threads than blocks need
        { 2, 16, 300, 64, true, true, 2 },    // heads in vector lanes (AVX-512): all 16 lanes, padding
        { 3, 5, 77, 64, true, false, 3 },     // lanes: odd H (a head pair loop and one head left), three blocks
        { 1, 1, 40, 64, false, false, 2 },    // lanes: one head
        { 1, 12, 9, 64, true, true, 1 },      // lanes: one thread, fewer keys than a block
    };

    [Theory]
    [InlineData(12, 64, 2)]
    [InlineData(16, 64, 4)]
    [InlineData(5, 64, 1)]
    [InlineData(4, 32, 2)]
    public void Forward_DecodeStep_WholeBlockMasked_MatchesNaiveReference(int h, int d, int threads)
    {
        // The first half of the keys is padding: with one block per thread the first block (two threads and more) sees
        // only masked keys, so its heads leave m = −∞ and must drop out of the merge.
        const int tk = 64;
        var p = Make(1, h, 1, tk, d, pad: false, fused: false, 11 * h + d);
        var mask = Enumerable.Range(0, tk).Select(j => j < tk / 2 ? 0f : 1f).ToArray();
        int saved = ParallelFor.MaxDegreeOfParallelism;
        ParallelFor.MaxDegreeOfParallelism = threads;
        try
        {
            var output = Enumerable.Repeat(float.NaN, p.OutLength).ToArray();
            Attention.Forward(p.Shape, p.Q, p.K, p.V, output, causal: true, mask, 0.125f);
            var expected = new float[p.OutLength];
            Attention.ForwardReference(p.Shape, p.Q, p.K, p.V, expected, true, mask, 0.125f, default);
            KernelTestData.Close(expected, output, 1e-5f, 1e-5f, "decode output with a masked block");
        }
        finally
        {
            ParallelFor.MaxDegreeOfParallelism = saved;
        }
    }

    [Theory]
    [MemberData(nameof(DecodeCases))]
    public void Forward_DecodeStep_MatchesNaiveReference(int b, int h, int tk, int d, bool pad, bool fused, int threads)
    {
        // One query, no probabilities: the split-K decoding path (blocks of keys merged by log-sum-exp).
        var p = Make(b, h, 1, tk, d, pad, fused, 7 * tk + d);
        if (pad)
        {
            // Also a whole block of padding inside a sequence that has keys (the merge must skip it).
            Array.Fill(p.Mask, 0f, ((b - 1) * tk) + (tk / 3), Math.Min(40, tk / 3));
        }

        int saved = ParallelFor.MaxDegreeOfParallelism;
        ParallelFor.MaxDegreeOfParallelism = threads;
        try
        {
            foreach (var causal in new[] { true, false })
            {
                var output = Enumerable.Repeat(float.NaN, p.OutLength).ToArray();
                Attention.Forward(p.Shape, p.Q.AsSpan(p.QOff), p.K.AsSpan(p.KOff), p.V.AsSpan(p.VOff), output, causal, p.Mask, 0.3f);
                var expected = new float[p.OutLength];
                Attention.ForwardReference(p.Shape, p.Q.AsSpan(p.QOff), p.K.AsSpan(p.KOff), p.V.AsSpan(p.VOff), expected, causal, p.Mask, 0.3f, default);
                KernelTestData.Close(expected, output, 1e-5f, 1e-5f, $"decode output (causal {causal})");
            }
        }
        finally
        {
            ParallelFor.MaxDegreeOfParallelism = saved;
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Backward_MatchesFiniteDifferences(int b, int h, int tq, int tk, int d, bool causal, bool pad, bool fused)
    {
        _ = fused; // gradients are checked on the packed layout; strides are covered by the forward test and the next test
        var p = Make(b, h, tq, tk, d, pad, false, 7 * (b + h + tq + tk + d));
        var w = KernelTestData.Uniform(p.OutLength, -1f, 1f, 99);
        var output = new float[p.OutLength];
        var probs = new float[b * h * tq * tk];
        Attention.Forward(p.Shape, p.Q, p.K, p.V, output, causal, p.Mask, null, probs);
        float[] dq = new float[p.Q.Length], dk = new float[p.K.Length], dv = new float[p.V.Length];
        Attention.Backward(p.Shape, p.Q, p.K, p.V, probs, w, dq, dk, dv);

        double Loss(float[] q, float[] k, float[] v)
        {
            var o = new float[p.OutLength];
            Attention.Forward(p.Shape, q, k, v, o, causal, p.Mask);
            return KernelTestData.Probe(o, w);
        }

        KernelTestData.GradClose(KernelTestData.NumericGradient(p.Q, q => Loss(q, p.K, p.V)), dq, "dQ");
        KernelTestData.GradClose(KernelTestData.NumericGradient(p.K, k => Loss(p.Q, k, p.V)), dk, "dK");
        KernelTestData.GradClose(KernelTestData.NumericGradient(p.V, v => Loss(p.Q, p.K, v)), dv, "dV");

        // The blocked backward from the log-sum-exp against the same finite differences.
        var lse = new float[b * h * tq];
        Attention.Forward(p.Shape, p.Q, p.K, p.V, output, causal, p.Mask, null, default, lse);
        float[] bq = new float[p.Q.Length], bk = new float[p.K.Length], bv = new float[p.V.Length];
        Attention.Backward(p.Shape, p.Q, p.K, p.V, output, lse, w, bq, bk, bv, causal, p.Mask);
        KernelTestData.GradClose(KernelTestData.NumericGradient(p.Q, q => Loss(q, p.K, p.V)), bq, "blocked dQ");
        KernelTestData.GradClose(KernelTestData.NumericGradient(p.K, k => Loss(p.Q, k, p.V)), bk, "blocked dK");
        KernelTestData.GradClose(KernelTestData.NumericGradient(p.V, v => Loss(p.Q, p.K, v)), bv, "blocked dV");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    [MemberData(nameof(BlockedCases))]
    public void BlockedBackward_MatchesDoubleReference(int b, int h, int tq, int tk, int d, bool causal, bool pad, bool fused)
    {
        // The log-sum-exp backward (probabilities recomputed a block of keys at a time) against the backward in double,
        // on the same strided views; gradient views start filled with NaN, so an element the kernel skips shows.
        var p = Make(b, h, tq, tk, d, pad, fused, 3 * (b + h + tq + tk + d));
        float scale = 0.7f / MathF.Sqrt(d);
        var output = new float[p.OutLength];
        var lse = new float[b * h * tq];
        Attention.Forward(p.Shape, p.Q.AsSpan(p.QOff), p.K.AsSpan(p.KOff), p.V.AsSpan(p.VOff), output, causal, p.Mask, scale, default, lse);
        var dOut = KernelTestData.Uniform(p.OutLength, -1f, 1f, 11);
        float[] dq = Nan(p.Q.Length), dk = Nan(p.K.Length), dv = Nan(p.V.Length);
        Attention.Backward(
            p.Shape, p.Q.AsSpan(p.QOff), p.K.AsSpan(p.KOff), p.V.AsSpan(p.VOff), output, lse, dOut,
            dq.AsSpan(p.QOff), dk.AsSpan(p.KOff), dv.AsSpan(p.VOff), causal, p.Mask, scale);

        float[] eq = Nan(p.Q.Length), ek = Nan(p.K.Length), ev = Nan(p.V.Length);
        Attention.BackwardReference(
            p.Shape, p.Q.AsSpan(p.QOff), p.K.AsSpan(p.KOff), p.V.AsSpan(p.VOff), dOut,
            eq.AsSpan(p.QOff), ek.AsSpan(p.KOff), ev.AsSpan(p.VOff), causal, p.Mask, scale);
        SameAsReference(eq, dq, "dQ");
        SameAsReference(ek, dk, "dK");
        SameAsReference(ev, dv, "dV");
        if (pad)
        {
            // Batch 0 is fully padded: no query saw a key, so every gradient of that sequence is exactly zero.
            int w = h * d;
            for (int t = 0; t < tq; t++)
            {
                Assert.All(dq.AsSpan(p.QOff + (t * p.Shape.QStride), w).ToArray(), x => Assert.Equal(0f, x));
            }
        }
    }

    public static TheoryData<int, int, int, int, int, bool, bool, bool> BlockedCases() => new()
    {
        // Several key blocks (64) and query tiles (128), partial last blocks, at GPT-2 / BERT head sizes.
        { 1, 2, 70, 70, 64, true, false, false },
        { 1, 1, 300, 300, 8, true, true, false },  // causal over three query tiles and five key blocks
        { 2, 2, 130, 130, 64, false, true, true },
        { 1, 1, 100, 37, 16, true, true, false },  // Tq > Tk: the first 63 queries see no key
        { 1, 1, 200, 70, 16, true, false, false }, // Tq > Tk over two query tiles; the second key block starts late
        { 1, 1, 20, 150, 24, true, false, true },  // chunked prefill: Tk − Tq = 130 cached keys
        { 2, 3, 64, 64, 64, true, false, true },   // GPT-2 124M's tile exactly
    };

    [Theory]
    [MemberData(nameof(Cases))]
    [MemberData(nameof(BlockedCases))]
    [MemberData(nameof(TileCases))]
    public void BlockedBackward_EveryTier_MatchesDoubleReference(int b, int h, int tq, int tk, int d, bool causal, bool pad, bool fused)
    {
        // The packed-once tile path (AVX2 and AVX-512 micro-kernels) and the generic one below it, each forced, against
        // the double reference; gradient views start NaN so a skipped element shows.
        var p = Make(b, h, tq, tk, d, pad, fused, 5 * (b + h + tq + tk + d));
        float scale = 0.9f / MathF.Sqrt(d);
        var output = new float[p.OutLength];
        var lse = new float[b * h * tq];
        Attention.Forward(p.Shape, p.Q.AsSpan(p.QOff), p.K.AsSpan(p.KOff), p.V.AsSpan(p.VOff), output, causal, p.Mask, scale, default, lse);
        var dOut = KernelTestData.Uniform(p.OutLength, -1f, 1f, 13);
        float[] eq = Nan(p.Q.Length), ek = Nan(p.K.Length), ev = Nan(p.V.Length);
        Attention.BackwardReference(
            p.Shape, p.Q.AsSpan(p.QOff), p.K.AsSpan(p.KOff), p.V.AsSpan(p.VOff), dOut,
            eq.AsSpan(p.QOff), ek.AsSpan(p.KOff), ev.AsSpan(p.VOff), causal, p.Mask, scale);
        foreach (var isa in new[] { GemmIsa.Scalar, GemmIsa.Vector256, GemmIsa.Vector512 })
        {
            if (!GemmDriver.IsSupported(isa)) continue;
            float[] dq = Nan(p.Q.Length), dk = Nan(p.K.Length), dv = Nan(p.V.Length);
            Attention.BackwardCore(
                isa, p.Shape, scale, p.Q.AsSpan(p.QOff), p.K.AsSpan(p.KOff), p.V.AsSpan(p.VOff), output, lse, dOut,
                dq.AsSpan(p.QOff), dk.AsSpan(p.KOff), dv.AsSpan(p.VOff), causal, p.Mask);
            SameAsReference(eq, dq, $"dQ on {isa}");
            SameAsReference(ek, dk, $"dK on {isa}");
            SameAsReference(ev, dv, $"dV on {isa}");
        }
    }

    private static float[] Nan(int n) => Enumerable.Repeat(float.NaN, n).ToArray();

    /// <summary>
    /// A gradient from NaN-filled views against the double reference's: close where both wrote, and written exactly
    /// where the reference wrote (a NaN left where the reference wrote means the kernel skipped that element).
    /// </summary>
    private static void SameAsReference(float[] expected, float[] actual, string what)
    {
        KernelTestData.Close(ZeroNan(expected), ZeroNan(actual), 1e-5f, 1e-4f, what);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(float.IsNaN(expected[i]), float.IsNaN(actual[i]));
    }

    private static float[] ZeroNan(float[] x) => x.Select(t => float.IsNaN(t) ? 0f : t).ToArray();

    [Fact]
    public void BlockedBackward_FusedGradientBuffer_MatchesSeparateBuffers()
    {
        // dQ, dK, dV written into one fused [B, T, 3·H·D] gradient (as the QKV projection's backward wants it).
        const int B = 2, H = 3, T = 40, D = 8, W = H * D;
        var qkv = KernelTestData.Uniform(B * T * 3 * W, -1f, 1f, 4);
        var strided = new AttentionShape(B, H, T, T, D) { QueryRowStride = 3 * W, KeyRowStride = 3 * W, ValueRowStride = 3 * W };
        var output = new float[B * T * W];
        var lse = new float[B * H * T];
        Attention.Forward(strided, qkv, qkv.AsSpan(W), qkv.AsSpan(2 * W), output, true, default, null, default, lse);
        var dOut = KernelTestData.Uniform(B * T * W, -1f, 1f, 5);
        var dqkv = Nan(qkv.Length);
        Attention.Backward(strided, qkv, qkv.AsSpan(W), qkv.AsSpan(2 * W), output, lse, dOut, dqkv, dqkv.AsSpan(W), dqkv.AsSpan(2 * W), causal: true);

        var expected = new float[qkv.Length];
        Attention.BackwardReference(strided, qkv, qkv.AsSpan(W), qkv.AsSpan(2 * W), dOut, expected, expected.AsSpan(W), expected.AsSpan(2 * W), true, default, 1f / MathF.Sqrt(D));
        KernelTestData.Close(expected, dqkv, 1e-5f, 1e-4f, "dQKV");
    }

    [Theory]
    [InlineData(8, false)]
    [InlineData(130, false)]
    [InlineData(70, true)]
    public void KeyMask_AllOnesRow_SameAsNoMask_NextToAPaddedRow(int t, bool causal)
    {
        // Batch 0 keeps every key (its mask row is skipped), batch 1 is padded. Batch 0's forward and blocked backward
        // equal the unmasked run's bit for bit; batch 1 still matches the double reference.
        const int B = 2, H = 2, D = 16, W = H * D;
        var qkv = KernelTestData.Uniform(B * t * 3 * W, -1f, 1f, 21);
        var shape = new AttentionShape(B, H, t, t, D) { QueryRowStride = 3 * W, KeyRowStride = 3 * W, ValueRowStride = 3 * W };
        var mask = Enumerable.Repeat(1f, B * t).ToArray();
        for (int j = t / 2; j < t; j++) mask[t + j] = 0f;
        var dOut = KernelTestData.Uniform(B * t * W, -1f, 1f, 22);

        (float[] Output, float[] Grad) Run(float[] m)
        {
            var output = new float[B * t * W];
            var lse = new float[B * H * t];
            Attention.Forward(shape, qkv, qkv.AsSpan(W), qkv.AsSpan(2 * W), output, causal, m, null, default, lse);
            var grad = new float[qkv.Length];
            Attention.Backward(shape, qkv, qkv.AsSpan(W), qkv.AsSpan(2 * W), output, lse, dOut, grad, grad.AsSpan(W), grad.AsSpan(2 * W), causal, m);
            return (output, grad);
        }

        var (masked, maskedGrad) = Run(mask);
        var (plain, plainGrad) = Run([]);
        Assert.Equal(plain.AsSpan(0, t * W).ToArray(), masked.AsSpan(0, t * W).ToArray());
        Assert.Equal(plainGrad.AsSpan(0, t * 3 * W).ToArray(), maskedGrad.AsSpan(0, t * 3 * W).ToArray());

        var expected = new float[qkv.Length];
        Attention.BackwardReference(shape, qkv, qkv.AsSpan(W), qkv.AsSpan(2 * W), dOut, expected, expected.AsSpan(W), expected.AsSpan(2 * W), causal, mask, 1f / MathF.Sqrt(D));
        KernelTestData.Close(expected, maskedGrad, 1e-5f, 1e-4f, "dQKV with a padded batch entry");
        Assert.NotEqual(plainGrad.AsSpan(t * 3 * W).ToArray(), maskedGrad.AsSpan(t * 3 * W).ToArray());
    }

    public static TheoryData<int, int, int, int, int, bool> LargeCases() => new()
    {
        // Wide enough for the 4- and 2-block vector loops: Tk ≥ 64 keys and D = 64 / 80 / 96.
        { 1, 2, 70, 70, 64, true },
        { 2, 1, 9, 100, 80, false },
        { 1, 1, 33, 130, 96, true },
    };

    [Theory]
    [MemberData(nameof(LargeCases))]
    public void LargeHeads_ForwardAndBackward_MatchNaiveDouble(int b, int h, int tq, int tk, int d, bool causal)
    {
        var p = Make(b, h, tq, tk, d, false, false, tq + tk + d);
        var output = new float[p.OutLength];
        var probs = new float[b * h * tq * tk];
        Attention.Forward(p.Shape, p.Q, p.K, p.V, output, causal, default, null, probs);
        var expected = new float[p.OutLength];
        var expectedProbs = new float[probs.Length];
        float scale = 1f / MathF.Sqrt(d);
        Attention.ForwardReference(p.Shape, p.Q, p.K, p.V, expected, causal, default, scale, expectedProbs);
        KernelTestData.Close(expectedProbs, probs, 1e-6f, 1e-5f, "probabilities");
        KernelTestData.Close(expected, output, 1e-5f, 1e-5f, "output");

        var dOut = KernelTestData.Uniform(p.OutLength, -1f, 1f, 5);
        float[] dq = new float[p.Q.Length], dk = new float[p.K.Length], dv = new float[p.V.Length];
        Attention.Backward(p.Shape, p.Q, p.K, p.V, probs, dOut, dq, dk, dv);
        var (eq, ek, ev) = NaiveBackward(b, h, tq, tk, d, p.Q, p.K, p.V, probs, dOut, scale);
        KernelTestData.Close(eq, dq, 1e-5f, 1e-4f, "dQ");
        KernelTestData.Close(ek, dk, 1e-5f, 1e-4f, "dK");
        KernelTestData.Close(ev, dv, 1e-5f, 1e-4f, "dV");
    }

    /// <summary>The attention backward written out element by element in double, on packed [B, T, H·D] buffers.</summary>
    private static (float[] Dq, float[] Dk, float[] Dv) NaiveBackward(
        int b, int h, int tq, int tk, int d, float[] q, float[] k, float[] v, float[] p, float[] dOut, float scale)
    {
        int w = h * d;
        double[] dq = new double[q.Length], dk = new double[k.Length], dv = new double[v.Length];
        for (int bi = 0; bi < b; bi++)
        {
            for (int hi = 0; hi < h; hi++)
            {
                for (int i = 0; i < tq; i++)
                {
                    var dp = new double[tk];
                    double rowDot = 0;
                    for (int j = 0; j < tk; j++)
                    {
                        for (int e = 0; e < d; e++) dp[j] += (double)dOut[((bi * tq) + i) * w + (hi * d) + e] * v[((bi * tk) + j) * w + (hi * d) + e];
                        rowDot += p[((((bi * h) + hi) * tq) + i) * tk + j] * dp[j];
                    }

                    for (int j = 0; j < tk; j++)
                    {
                        double pij = p[((((bi * h) + hi) * tq) + i) * tk + j];
                        double ds = scale * pij * (dp[j] - rowDot);
                        for (int e = 0; e < d; e++)
                        {
                            int qi = ((bi * tq) + i) * w + (hi * d) + e, kj = ((bi * tk) + j) * w + (hi * d) + e;
                            dv[kj] += pij * dOut[qi];
                            dq[qi] += ds * k[kj];
                            dk[kj] += ds * q[qi];
                        }
                    }
                }
            }
        }

        static float[] F(double[] x) => x.Select(t => (float)t).ToArray();
        return (F(dq), F(dk), F(dv));
    }

    [Fact]
    public void Backward_FusedLayout_WritesOnlyItsViewAndMatchesPacked()
    {
        const int B = 2, H = 2, T = 5, D = 4, W = H * D;
        var qkv = KernelTestData.Uniform(B * T * 3 * W, -1f, 1f, 1);
        var strided = new AttentionShape(B, H, T, T, D) { QueryRowStride = 3 * W, KeyRowStride = 3 * W, ValueRowStride = 3 * W };
        var dOut = KernelTestData.Uniform(B * T * W, -1f, 1f, 2);
        var probs = new float[B * H * T * T];
        Attention.Forward(strided, qkv, qkv.AsSpan(W), qkv.AsSpan(2 * W), new float[B * T * W], true, default, null, probs);
        var dqkv = new float[qkv.Length];
        Attention.Backward(strided, qkv, qkv.AsSpan(W), qkv.AsSpan(2 * W), probs, dOut, dqkv, dqkv.AsSpan(W), dqkv.AsSpan(2 * W));

        // The same problem packed into separate [B, T, H·D] buffers.
        float[] q = new float[B * T * W], k = new float[B * T * W], v = new float[B * T * W];
        for (int row = 0; row < B * T; row++)
        {
            qkv.AsSpan(row * 3 * W, W).CopyTo(q.AsSpan(row * W));
            qkv.AsSpan((row * 3 * W) + W, W).CopyTo(k.AsSpan(row * W));
            qkv.AsSpan((row * 3 * W) + (2 * W), W).CopyTo(v.AsSpan(row * W));
        }

        float[] dq = new float[q.Length], dk = new float[k.Length], dv = new float[v.Length];
        Attention.Backward(new AttentionShape(B, H, T, T, D), q, k, v, probs, dOut, dq, dk, dv);
        for (int row = 0; row < B * T; row++)
        {
            Assert.Equal(dq.AsSpan(row * W, W).ToArray(), dqkv.AsSpan(row * 3 * W, W).ToArray());
            Assert.Equal(dk.AsSpan(row * W, W).ToArray(), dqkv.AsSpan((row * 3 * W) + W, W).ToArray());
            Assert.Equal(dv.AsSpan(row * W, W).ToArray(), dqkv.AsSpan((row * 3 * W) + (2 * W), W).ToArray());
        }
    }

    [Fact]
    public void Forward_StrideTooSmall_ThrowsWithShape()
    {
        var shape = new AttentionShape(1, 2, 3, 3, 4) { QueryRowStride = 5 };
        var e = Assert.Throws<ArgumentException>(() => Attention.Forward(shape, new float[100], new float[100], new float[100], new float[100]));
        Assert.Contains("row stride", e.Message, StringComparison.Ordinal);
        Assert.Contains("Attention.Forward", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Forward_ShortKeys_ThrowsNamingK()
    {
        var shape = new AttentionShape(2, 2, 3, 4, 4);
        var e = Assert.Throws<ArgumentException>(() => Attention.Forward(shape, new float[48], new float[63], new float[64], new float[48]));
        Assert.Equal("k", e.ParamName);
    }
}
