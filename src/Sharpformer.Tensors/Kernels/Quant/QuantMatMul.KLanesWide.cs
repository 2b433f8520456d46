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

    /// <summary>Two 256-bit halves (group A's, group B's) as one 512-bit vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<sbyte> Halves(sbyte* a, sbyte* b) =>
        Avx512F.InsertVector256(Vector256.Load(a).ToVector512Unsafe(), Vector256.Load(b), 1);

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
    /// One unpacked Q4_K super-block of four rows times two groups of eight tokens (A at <paramref name="lanesA"/>, B at
    /// <paramref name="lanesB"/>, with their scales and code sums), added to the groups' tiles [4, 8].
    /// </summary>
    private static void SuperBlockQ4_KWide(in KPanel panel, sbyte* lanesA, sbyte* lanesB, float* dxA, float* dxB, short* sumsA, short* sumsB, float* tileA, float* tileB)
    {
        // Each sub-block scale as an int16 pair (s, s) for VPMADDWD, at [r, 8].
        var scales = panel.ScalePairs;
        Vector512<int> t0 = default, t1 = default, t2 = default, t3 = default;
        for (var j = 0; j < 8; j += 2)
        {
            // Sub-blocks j and j + 1 side by side: eight independent int16 chains of eight steps each.
            var w = panel.Codes + (128 * j);
            var la = lanesA + (256 * j);
            var lb = lanesB + (256 * j);
            Vector512<short> e0 = default, e1 = default, e2 = default, e3 = default;
            Vector512<short> f0 = default, f1 = default, f2 = default, f3 = default;
            for (var k = 0; k < 8; k++)
            {
                var x = Halves(la + (32 * k), lb + (32 * k));
                var y = Halves(la + 256 + (32 * k), lb + 256 + (32 * k));
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

        // Σ_j m_j·Σx over the sub-blocks of 32, four pairs of sub-blocks per token.
        var pairs = panel.Pairs;
        Vector512<int> n0 = default, n1 = default, n2 = default, n3 = default;
        for (var i = 0; i < 4; i++)
        {
            var xs = Halves(sumsA + (16 * i), sumsB + (16 * i));
            n0 += Avx512BW.MultiplyAddAdjacent(xs, Vector512.Create(pairs[i]).AsInt16());
            n1 += Avx512BW.MultiplyAddAdjacent(xs, Vector512.Create(pairs[4 + i]).AsInt16());
            n2 += Avx512BW.MultiplyAddAdjacent(xs, Vector512.Create(pairs[8 + i]).AsInt16());
            n3 += Avx512BW.MultiplyAddAdjacent(xs, Vector512.Create(pairs[12 + i]).AsInt16());
        }

        var scale = Halves(dxA, dxB);
        var f = panel.Factors;
        AddRows(tileA, tileB, Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(n0), scale * f[4], Vector512.ConvertToSingle(t0) * (scale * f[0])));
        AddRows(tileA + 8, tileB + 8, Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(n1), scale * f[5], Vector512.ConvertToSingle(t1) * (scale * f[1])));
        AddRows(tileA + 16, tileB + 16, Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(n2), scale * f[6], Vector512.ConvertToSingle(t2) * (scale * f[2])));
        AddRows(tileA + 24, tileB + 24, Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(n3), scale * f[7], Vector512.ConvertToSingle(t3) * (scale * f[3])));
    }

    /// <summary>
    /// One unpacked Q6_K super-block of four rows times two groups of eight tokens (A and B as in
    /// <see cref="SuperBlockQ4_KWide"/>), added to the groups' tiles [4, 8].
    /// </summary>
    private static void SuperBlockQ6_KWide(in KPanel panel, sbyte* lanesA, sbyte* lanesB, float* dxA, float* dxB, short* sumsA, short* sumsB, float* tileA, float* tileB)
    {
        // Each 16-value group's scale as an int16 pair (s, s), at [r, 16].
        var scales = panel.ScalePairs;
        Vector512<int> t0 = default, t1 = default, t2 = default, t3 = default;
        for (var g = 0; g < 16; g += 2)
        {
            // Groups g and g + 1 side by side, each in two halves of two steps (the most int16 holds exactly).
            var w = panel.Codes + (64 * g);
            var la = lanesA + (128 * g);
            var lb = lanesB + (128 * g);
            for (var h = 0; h < 4; h += 2)
            {
                var x0 = Halves(la + (32 * h), lb + (32 * h));
                var x1 = Halves(la + (32 * h) + 32, lb + (32 * h) + 32);
                var y0 = Halves(la + 128 + (32 * h), lb + 128 + (32 * h));
                var y1 = Halves(la + 128 + (32 * h) + 32, lb + 128 + (32 * h) + 32);
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
        var pairs = panel.Pairs;
        Vector512<int> n0 = default, n1 = default, n2 = default, n3 = default;
        for (var i = 0; i < 8; i++)
        {
            var xs = Halves(sumsA + (16 * i), sumsB + (16 * i));
            n0 += Avx512BW.MultiplyAddAdjacent(xs, Vector512.Create(pairs[i]).AsInt16());
            n1 += Avx512BW.MultiplyAddAdjacent(xs, Vector512.Create(pairs[8 + i]).AsInt16());
            n2 += Avx512BW.MultiplyAddAdjacent(xs, Vector512.Create(pairs[16 + i]).AsInt16());
            n3 += Avx512BW.MultiplyAddAdjacent(xs, Vector512.Create(pairs[24 + i]).AsInt16());
        }

        var scale = Halves(dxA, dxB);
        var f = panel.Factors;
        AddRows(tileA, tileB, Vector512.ConvertToSingle(t0 - Vector512.ShiftLeft(n0, 5)) * (scale * f[0]));
        AddRows(tileA + 8, tileB + 8, Vector512.ConvertToSingle(t1 - Vector512.ShiftLeft(n1, 5)) * (scale * f[1]));
        AddRows(tileA + 16, tileB + 16, Vector512.ConvertToSingle(t2 - Vector512.ShiftLeft(n2, 5)) * (scale * f[2]));
        AddRows(tileA + 24, tileB + 24, Vector512.ConvertToSingle(t3 - Vector512.ShiftLeft(n3, 5)) * (scale * f[3]));
    }
}
