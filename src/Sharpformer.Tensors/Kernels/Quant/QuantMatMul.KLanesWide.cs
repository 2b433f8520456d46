using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sharpformer.Tensors.Kernels.Quant;

/// <summary>
/// The AVX-512 tier of the K-quant token lanes (<see cref="KLaneRows"/>): two groups of eight tokens side by side in
/// the 16 int32 lanes of a 512-bit vector, against the same unpacked panel of four weight rows. .NET exposes no 512-bit
/// VPDPBUSD, so the products go through VPMADDUBSW (unsigned weight code × signed activation code, adjacent pairs added
/// into int16) and VPADDW, then VPMADDWD by the sub-block scale, which adds the int16 pairs of each int32 lane and
/// scales them in one instruction. Measured on an AMD EPYC (Zen 5 class, full-width 512-bit units), the inner loop
/// in this form runs ~1.55× the 256-bit VPDPBUSD form, and a whole 128-token product ~1.35× (Q4_K) and ~1.25× (Q6_K).
/// The activations of a pair of groups are interleaved 16 tokens wide (one 512-bit load per step instead of two
/// 256-bit loads and an insert), and Q4_K takes two pairs at once so that each broadcast weight group feeds two
/// products (<see cref="SuperBlockQ4_KQuad"/>): in isolation that inner loop runs ~1.25× the two-halves form.
/// <para>
/// Exact: Q8_K activation codes lie in [−127, 127]. A Q4_K code is at most 15, so one VPMADDUBSW pair is at most
/// 2·15·127 = 3810 in magnitude and the eight steps of a 32-value sub-block at most 30480 (int16 holds 32767). A Q6_K
/// code (taken unsigned) is at most 63, a pair at most 16002, so two steps (32004) are summed in int16 before each
/// VPMADDWD. The super-block sums are therefore the same integers as the reference's.
/// </para>
/// </summary>
public static unsafe partial class QuantMatMul
{
    /// <summary>Whether the K-quant lane kernel takes two groups of eight tokens at a time in 512-bit vectors.</summary>
    private static bool KLanesWide => Avx512BW.IsSupported && Vector512.IsHardwareAccelerated;

    /// <summary>
    /// Prefetches super-block <paramref name="b"/> (<paramref name="blockBytes"/> long) of <paramref name="rows"/> weight
    /// rows from <paramref name="w"/>, <paramref name="rowBytes"/> apart: a panel of 16 rows reads 16 streams of 144 or
    /// 210 bytes per super-block, and with two or more token groups each super-block runs long enough to bring in the
    /// next. Measured in pairs (AMD EPYC Zen 5 class, 2 threads, 128 tokens): 2048×5632 and 5632×2048 ~3–6 % faster,
    /// 768-wide shapes level.
    /// </summary>
    private static void PrefetchSuperBlock(byte* w, int rowBytes, int rows, int blockBytes, int b)
    {
        for (var r = 0; r < rows; r++)
        {
            var next = w + ((long)r * rowBytes) + ((long)blockBytes * b);
            Sse.Prefetch0(next);
            Sse.Prefetch0(next + 64);
            Sse.Prefetch0(next + blockBytes - 1);
        }
    }

    /// <summary>Two 256-bit halves of int16 sums as one 512-bit vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> Halves(short* a, short* b) =>
        Avx512F.InsertVector256(Vector256.Load(a).ToVector512Unsafe(), Vector256.Load(b), 1);

    /// <summary>Two 256-bit halves of floats as one 512-bit vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Halves(float* a, float* b) =>
        Avx512F.InsertVector256(Vector256.Load(a).ToVector512Unsafe(), Vector256.Load(b), 1);

    /// <summary>Four weight bytes broadcast to every 32-bit lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> Broadcast4(byte* p) => Vector512.Create(*(uint*)p).AsByte();

    /// <summary>Adds the low half of <paramref name="value"/> to group A's tile row and the high half to group B's.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddRows(float* rowA, float* rowB, Vector512<float> value)
    {
        (Vector256.Load(rowA) + value.GetLower()).Store(rowA);
        (Vector256.Load(rowB) + value.GetUpper()).Store(rowB);
    }

    /// <summary>
    /// One unpacked Q4_K super-block of four rows times a pair of groups of eight tokens (A and B: their codes 16 wide at
    /// <paramref name="lanes"/>, see <c>Activations.Interleave</c>; their scales and code sums), added to the groups'
    /// tiles [4, 8].
    /// </summary>
    private static void SuperBlockQ4_KWide(in KPanel panel, sbyte* lanes, float* dxA, float* dxB, short* sumsA, short* sumsB, float* tileA, float* tileB)
    {
        // Each sub-block scale as an int16 pair (s, s) for VPMADDWD, at [r, 8].
        var scales = panel.ScalePairs;
        Vector512<int> t0 = default, t1 = default, t2 = default, t3 = default;
        for (var j = 0; j < 8; j += 2)
        {
            // Sub-blocks j and j + 1 side by side: eight independent int16 chains of eight steps each.
            var w = panel.Codes + (128 * j);
            var l = lanes + (512 * j);
            Vector512<short> e0 = default, e1 = default, e2 = default, e3 = default;
            Vector512<short> f0 = default, f1 = default, f2 = default, f3 = default;
            for (var k = 0; k < 8; k++)
            {
                var x = Vector512.Load(l + (64 * k));
                var y = Vector512.Load(l + 512 + (64 * k));
                var at = w + (4 * k);
                e0 += Avx512BW.MultiplyAddAdjacent(Broadcast4(at), x);
                e1 += Avx512BW.MultiplyAddAdjacent(Broadcast4(at + 32), x);
                e2 += Avx512BW.MultiplyAddAdjacent(Broadcast4(at + 64), x);
                e3 += Avx512BW.MultiplyAddAdjacent(Broadcast4(at + 96), x);
                f0 += Avx512BW.MultiplyAddAdjacent(Broadcast4(at + 128), y);
                f1 += Avx512BW.MultiplyAddAdjacent(Broadcast4(at + 160), y);
                f2 += Avx512BW.MultiplyAddAdjacent(Broadcast4(at + 192), y);
                f3 += Avx512BW.MultiplyAddAdjacent(Broadcast4(at + 224), y);
            }

            t0 += Avx512BW.MultiplyAddAdjacent(e0, Vector512.Create(scales[j]).AsInt16()) + Avx512BW.MultiplyAddAdjacent(f0, Vector512.Create(scales[j + 1]).AsInt16());
            t1 += Avx512BW.MultiplyAddAdjacent(e1, Vector512.Create(scales[8 + j]).AsInt16()) + Avx512BW.MultiplyAddAdjacent(f1, Vector512.Create(scales[8 + j + 1]).AsInt16());
            t2 += Avx512BW.MultiplyAddAdjacent(e2, Vector512.Create(scales[16 + j]).AsInt16()) + Avx512BW.MultiplyAddAdjacent(f2, Vector512.Create(scales[16 + j + 1]).AsInt16());
            t3 += Avx512BW.MultiplyAddAdjacent(e3, Vector512.Create(scales[24 + j]).AsInt16()) + Avx512BW.MultiplyAddAdjacent(f3, Vector512.Create(scales[24 + j + 1]).AsInt16());
        }

        FinishQ4_KWide(panel, t0, t1, t2, t3, dxA, dxB, sumsA, sumsB, tileA, tileB);
    }

    /// <summary>
    /// One unpacked Q4_K super-block of four rows times two pairs of groups (32 tokens: pair P's codes at
    /// <paramref name="lanesP"/>, pair Q's at <paramref name="lanesQ"/>, each 16 wide). One sub-block at a time, each
    /// broadcast group of four weight bytes is multiplied by both pairs' codes: per step four broadcasts and two loads
    /// feed eight VPMADDUBSW (against four and one for <see cref="SuperBlockQ4_KWide"/>'s four). The eight steps of a
    /// sub-block are written out (<see cref="QuadStep"/>): the loop form spent five scalar instructions per step on its
    /// counter and addresses beside 22 vector ones, and the kernel is bound by issue as much as by its two multiply
    /// pipes. Group i of the four (P's A, B, then Q's) has its scales at <paramref name="dx"/> + i·<paramref name="dxStride"/>
    /// and its code sums at <paramref name="sums"/> + i·<paramref name="sumsStride"/>; the pairs' tiles [4 rows, 16 tokens]
    /// are at <paramref name="tile"/> (P) and <paramref name="tile"/> + 64 (Q), see <see cref="FinishQ4_KQuad"/>.
    /// </summary>
    private static void SuperBlockQ4_KQuad(in KPanel panel, sbyte* lanesP, sbyte* lanesQ, float* dx, long dxStride, short* sums, long sumsStride, float* tile)
    {
        var scales = panel.ScalePairs;
        var w = panel.Codes;
        Vector512<int> p0 = default, p1 = default, p2 = default, p3 = default;
        Vector512<int> q0 = default, q1 = default, q2 = default, q3 = default;
        for (var j = 0; j < 8; j++, w += 128, lanesP += 512, lanesQ += 512, scales++)
        {
            // Sub-block j: four rows × two pairs, eight independent int16 chains of eight steps each.
            Vector512<short> e0 = default, e1 = default, e2 = default, e3 = default, f0 = default, f1 = default, f2 = default, f3 = default;
            QuadStep(w, lanesP, lanesQ, ref e0, ref e1, ref e2, ref e3, ref f0, ref f1, ref f2, ref f3);
            QuadStep(w + 4, lanesP + 64, lanesQ + 64, ref e0, ref e1, ref e2, ref e3, ref f0, ref f1, ref f2, ref f3);
            QuadStep(w + 8, lanesP + 128, lanesQ + 128, ref e0, ref e1, ref e2, ref e3, ref f0, ref f1, ref f2, ref f3);
            QuadStep(w + 12, lanesP + 192, lanesQ + 192, ref e0, ref e1, ref e2, ref e3, ref f0, ref f1, ref f2, ref f3);
            QuadStep(w + 16, lanesP + 256, lanesQ + 256, ref e0, ref e1, ref e2, ref e3, ref f0, ref f1, ref f2, ref f3);
            QuadStep(w + 20, lanesP + 320, lanesQ + 320, ref e0, ref e1, ref e2, ref e3, ref f0, ref f1, ref f2, ref f3);
            QuadStep(w + 24, lanesP + 384, lanesQ + 384, ref e0, ref e1, ref e2, ref e3, ref f0, ref f1, ref f2, ref f3);
            QuadStep(w + 28, lanesP + 448, lanesQ + 448, ref e0, ref e1, ref e2, ref e3, ref f0, ref f1, ref f2, ref f3);

            var s0 = Vector512.Create(scales[0]).AsInt16();
            var s1 = Vector512.Create(scales[8]).AsInt16();
            var s2 = Vector512.Create(scales[16]).AsInt16();
            var s3 = Vector512.Create(scales[24]).AsInt16();
            p0 += Avx512BW.MultiplyAddAdjacent(e0, s0);
            p1 += Avx512BW.MultiplyAddAdjacent(e1, s1);
            p2 += Avx512BW.MultiplyAddAdjacent(e2, s2);
            p3 += Avx512BW.MultiplyAddAdjacent(e3, s3);
            q0 += Avx512BW.MultiplyAddAdjacent(f0, s0);
            q1 += Avx512BW.MultiplyAddAdjacent(f1, s1);
            q2 += Avx512BW.MultiplyAddAdjacent(f2, s2);
            q3 += Avx512BW.MultiplyAddAdjacent(f3, s3);
        }

        FinishQ4_KQuad(panel, p0, p1, p2, p3, q0, q1, q2, q3, dx, dxStride, sums, sumsStride, tile);
    }

    /// <summary>
    /// One step of <see cref="SuperBlockQ4_KQuad"/>: four weight bytes of each of the four rows (32 bytes apart from
    /// <paramref name="at"/>) broadcast and multiplied by both pairs' 64 codes at <paramref name="lp"/> and <paramref name="lq"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void QuadStep(
        byte* at, sbyte* lp, sbyte* lq, ref Vector512<short> e0, ref Vector512<short> e1, ref Vector512<short> e2, ref Vector512<short> e3,
        ref Vector512<short> f0, ref Vector512<short> f1, ref Vector512<short> f2, ref Vector512<short> f3)
    {
        var x = Vector512.Load(lp);
        var y = Vector512.Load(lq);
        var w0 = Broadcast4(at);
        var w1 = Broadcast4(at + 32);
        var w2 = Broadcast4(at + 64);
        var w3 = Broadcast4(at + 96);
        e0 += Avx512BW.MultiplyAddAdjacent(w0, x);
        e1 += Avx512BW.MultiplyAddAdjacent(w1, x);
        e2 += Avx512BW.MultiplyAddAdjacent(w2, x);
        e3 += Avx512BW.MultiplyAddAdjacent(w3, x);
        f0 += Avx512BW.MultiplyAddAdjacent(w0, y);
        f1 += Avx512BW.MultiplyAddAdjacent(w1, y);
        f2 += Avx512BW.MultiplyAddAdjacent(w2, y);
        f3 += Avx512BW.MultiplyAddAdjacent(w3, y);
    }

    /// <summary>
    /// Two pairs' Q4_K super-block sums (<paramref name="p0"/> .. <paramref name="p3"/> pair P, <paramref name="q0"/> ..
    /// <paramref name="q3"/> pair Q; rows 0–3) into their tiles [4 rows, 16 tokens] at <paramref name="tile"/> and
    /// <paramref name="tile"/> + 64, less the mins term Σ_j m_j·Σx: each broadcast min pair feeds both pairs' VPMADDWD,
    /// and each row of a tile is one 512-bit load, add and store. The same float expression per value as
    /// <see cref="FinishQ4_KWide"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FinishQ4_KQuad(
        in KPanel panel, Vector512<int> p0, Vector512<int> p1, Vector512<int> p2, Vector512<int> p3, Vector512<int> q0, Vector512<int> q1, Vector512<int> q2,
        Vector512<int> q3, float* dx, long dxStride, short* sums, long sumsStride, float* tile)
    {
        var pairs = panel.Pairs;
        Vector512<int> m0 = default, m1 = default, m2 = default, m3 = default;
        Vector512<int> n0 = default, n1 = default, n2 = default, n3 = default;
        for (var i = 0; i < 4; i++)
        {
            var xp = Halves(sums + (16 * i), sums + sumsStride + (16 * i));
            var xq = Halves(sums + (2 * sumsStride) + (16 * i), sums + (3 * sumsStride) + (16 * i));
            var c0 = Vector512.Create(pairs[i]).AsInt16();
            var c1 = Vector512.Create(pairs[4 + i]).AsInt16();
            var c2 = Vector512.Create(pairs[8 + i]).AsInt16();
            var c3 = Vector512.Create(pairs[12 + i]).AsInt16();
            m0 += Avx512BW.MultiplyAddAdjacent(xp, c0);
            m1 += Avx512BW.MultiplyAddAdjacent(xp, c1);
            m2 += Avx512BW.MultiplyAddAdjacent(xp, c2);
            m3 += Avx512BW.MultiplyAddAdjacent(xp, c3);
            n0 += Avx512BW.MultiplyAddAdjacent(xq, c0);
            n1 += Avx512BW.MultiplyAddAdjacent(xq, c1);
            n2 += Avx512BW.MultiplyAddAdjacent(xq, c2);
            n3 += Avx512BW.MultiplyAddAdjacent(xq, c3);
        }

        var f = panel.Factors;
        var sp = Halves(dx, dx + dxStride);
        var sq = Halves(dx + (2 * dxStride), dx + (3 * dxStride));
        AddRowWide(tile, Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(m0), sp * f[4], Vector512.ConvertToSingle(p0) * (sp * f[0])));
        AddRowWide(tile + 16, Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(m1), sp * f[5], Vector512.ConvertToSingle(p1) * (sp * f[1])));
        AddRowWide(tile + 32, Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(m2), sp * f[6], Vector512.ConvertToSingle(p2) * (sp * f[2])));
        AddRowWide(tile + 48, Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(m3), sp * f[7], Vector512.ConvertToSingle(p3) * (sp * f[3])));
        AddRowWide(tile + 64, Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(n0), sq * f[4], Vector512.ConvertToSingle(q0) * (sq * f[0])));
        AddRowWide(tile + 80, Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(n1), sq * f[5], Vector512.ConvertToSingle(q1) * (sq * f[1])));
        AddRowWide(tile + 96, Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(n2), sq * f[6], Vector512.ConvertToSingle(q2) * (sq * f[2])));
        AddRowWide(tile + 112, Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(n3), sq * f[7], Vector512.ConvertToSingle(q3) * (sq * f[3])));
    }

    /// <summary>Adds <paramref name="value"/> to a pair tile's row of 16 floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddRowWide(float* row, Vector512<float> value) => (Vector512.Load(row) + value).Store(row);

    /// <summary>
    /// A pair of groups' Q4_K super-block sums into their tiles: the scaled code sums <paramref name="t0"/> ..
    /// <paramref name="t3"/> (rows 0–3, group A in the low half, B in the high), less the mins term Σ_j m_j·Σx.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FinishQ4_KWide(
        in KPanel panel, Vector512<int> t0, Vector512<int> t1, Vector512<int> t2, Vector512<int> t3, float* dxA, float* dxB, short* sumsA, short* sumsB, float* tileA, float* tileB)
    {
        // Σ_j m_j·Σx over the sub-blocks of 32, four pairs of sub-blocks per token.
        var (n0, n1, n2, n3) = PairSumsWide(panel.Pairs, 4, sumsA, sumsB);

        var scale = Halves(dxA, dxB);
        var f = panel.Factors;
        AddRows(tileA, tileB, Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(n0), scale * f[4], Vector512.ConvertToSingle(t0) * (scale * f[0])));
        AddRows(tileA + 8, tileB + 8, Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(n1), scale * f[5], Vector512.ConvertToSingle(t1) * (scale * f[1])));
        AddRows(tileA + 16, tileB + 16, Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(n2), scale * f[6], Vector512.ConvertToSingle(t2) * (scale * f[2])));
        AddRows(tileA + 24, tileB + 24, Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(n3), scale * f[7], Vector512.ConvertToSingle(t3) * (scale * f[3])));
    }

    /// <summary>
    /// <see cref="PairSums"/> for two groups of eight tokens at once (group A's code sums in the low half of each vector,
    /// B's in the high).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<int> N0, Vector512<int> N1, Vector512<int> N2, Vector512<int> N3) PairSumsWide(uint* pairs, int count, short* sumsA, short* sumsB)
    {
        Vector512<int> n0 = default, n1 = default, n2 = default, n3 = default;
        for (var i = 0; i < count; i++)
        {
            var xs = Halves(sumsA + (16 * i), sumsB + (16 * i));
            n0 += Avx512BW.MultiplyAddAdjacent(xs, Vector512.Create(pairs[i]).AsInt16());
            n1 += Avx512BW.MultiplyAddAdjacent(xs, Vector512.Create(pairs[count + i]).AsInt16());
            n2 += Avx512BW.MultiplyAddAdjacent(xs, Vector512.Create(pairs[(2 * count) + i]).AsInt16());
            n3 += Avx512BW.MultiplyAddAdjacent(xs, Vector512.Create(pairs[(3 * count) + i]).AsInt16());
        }

        return (n0, n1, n2, n3);
    }

    /// <summary>
    /// One unpacked Q6_K super-block of four rows times two groups of eight tokens (A and B as in
    /// <see cref="SuperBlockQ4_KWide"/>), added to the groups' tiles [4, 8].
    /// </summary>
    private static void SuperBlockQ6_KWide(in KPanel panel, sbyte* lanes, float* dxA, float* dxB, short* sumsA, short* sumsB, float* tileA, float* tileB)
    {
        // Each 16-value group's scale as an int16 pair (s, s), at [r, 16].
        var scales = panel.ScalePairs;
        Vector512<int> t0 = default, t1 = default, t2 = default, t3 = default;
        for (var g = 0; g < 16; g += 2)
        {
            // Groups g and g + 1 side by side, each in two halves of two steps (the most int16 holds exactly).
            var w = panel.Codes + (64 * g);
            var l = lanes + (256 * g);
            for (var h = 0; h < 4; h += 2)
            {
                var x0 = Vector512.Load(l + (64 * h));
                var x1 = Vector512.Load(l + (64 * h) + 64);
                var y0 = Vector512.Load(l + 256 + (64 * h));
                var y1 = Vector512.Load(l + 256 + (64 * h) + 64);
                var at = w + (4 * h);
                var e0 = Avx512BW.MultiplyAddAdjacent(Broadcast4(at), x0) + Avx512BW.MultiplyAddAdjacent(Broadcast4(at + 4), x1);
                var e1 = Avx512BW.MultiplyAddAdjacent(Broadcast4(at + 16), x0) + Avx512BW.MultiplyAddAdjacent(Broadcast4(at + 20), x1);
                var e2 = Avx512BW.MultiplyAddAdjacent(Broadcast4(at + 32), x0) + Avx512BW.MultiplyAddAdjacent(Broadcast4(at + 36), x1);
                var e3 = Avx512BW.MultiplyAddAdjacent(Broadcast4(at + 48), x0) + Avx512BW.MultiplyAddAdjacent(Broadcast4(at + 52), x1);
                var f0 = Avx512BW.MultiplyAddAdjacent(Broadcast4(at + 64), y0) + Avx512BW.MultiplyAddAdjacent(Broadcast4(at + 68), y1);
                var f1 = Avx512BW.MultiplyAddAdjacent(Broadcast4(at + 80), y0) + Avx512BW.MultiplyAddAdjacent(Broadcast4(at + 84), y1);
                var f2 = Avx512BW.MultiplyAddAdjacent(Broadcast4(at + 96), y0) + Avx512BW.MultiplyAddAdjacent(Broadcast4(at + 100), y1);
                var f3 = Avx512BW.MultiplyAddAdjacent(Broadcast4(at + 112), y0) + Avx512BW.MultiplyAddAdjacent(Broadcast4(at + 116), y1);
                t0 += Avx512BW.MultiplyAddAdjacent(e0, Vector512.Create(scales[g]).AsInt16()) + Avx512BW.MultiplyAddAdjacent(f0, Vector512.Create(scales[g + 1]).AsInt16());
                t1 += Avx512BW.MultiplyAddAdjacent(e1, Vector512.Create(scales[16 + g]).AsInt16()) + Avx512BW.MultiplyAddAdjacent(f1, Vector512.Create(scales[16 + g + 1]).AsInt16());
                t2 += Avx512BW.MultiplyAddAdjacent(e2, Vector512.Create(scales[32 + g]).AsInt16()) + Avx512BW.MultiplyAddAdjacent(f2, Vector512.Create(scales[32 + g + 1]).AsInt16());
                t3 += Avx512BW.MultiplyAddAdjacent(e3, Vector512.Create(scales[48 + g]).AsInt16()) + Avx512BW.MultiplyAddAdjacent(f3, Vector512.Create(scales[48 + g + 1]).AsInt16());
            }
        }

        // The codes were taken unsigned: take back 32·Σ_g s_g·Σx over the groups of 16, eight pairs per token.
        var (n0, n1, n2, n3) = PairSumsWide(panel.Pairs, 8, sumsA, sumsB);

        var scale = Halves(dxA, dxB);
        var f = panel.Factors;
        AddRows(tileA, tileB, Vector512.ConvertToSingle(t0 - Vector512.ShiftLeft(n0, 5)) * (scale * f[0]));
        AddRows(tileA + 8, tileB + 8, Vector512.ConvertToSingle(t1 - Vector512.ShiftLeft(n1, 5)) * (scale * f[1]));
        AddRows(tileA + 16, tileB + 16, Vector512.ConvertToSingle(t2 - Vector512.ShiftLeft(n2, 5)) * (scale * f[2]));
        AddRows(tileA + 24, tileB + 24, Vector512.ConvertToSingle(t3 - Vector512.ShiftLeft(n3, 5)) * (scale * f[3]));
    }
}
