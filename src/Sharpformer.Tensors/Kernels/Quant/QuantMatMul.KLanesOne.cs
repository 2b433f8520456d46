using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sharpformer.Tensors.Kernels.Quant;

/// <summary>
/// The one-group case of the K-quant token lanes (<see cref="KLaneRows"/>: batched decode, 8–15 tokens) for Q4_K,
/// without the unpacked panel: with one group of eight tokens each unpacked super-block would be read once, so the
/// panel's stores and reloads cost about as much as the products they feed. Byte i of qs[32c + 4k ..] holds value
/// 64c + 4k + i in its low nibble and 64c + 32 + 4k + i in its high nibble, so one broadcast group of four code bytes,
/// read straight from the weight block, feeds sub-blocks 2c and 2c + 1.
/// <para>
/// With AVX-512 and GFNI (<see cref="KLaneTileQ4_KWide"/>): the two sub-blocks sit in the two halves of a 512-bit
/// vector. One GF2P8AFFINEQB takes the broadcast bytes' low nibbles into the lower half and their high nibbles into the
/// upper half (a different bit matrix per half), the activations' step k of both sub-blocks are the two halves of x,
/// and VPMADDUBSW + VPADDW sum eight steps in int16 (at most 8·2·15·127 = 30480: exact) before one VPMADDWD by the
/// pair of sub-block scales. Measured on an AMD EPYC (Zen 5 class), 1 thread, rows in L2: 160 vs 112 GMAC/s for the
/// panel path; 2 threads over 22 layers' gate, up and q matrices: 0.75× its time.
/// </para>
/// <para>
/// With AVX-VNNI only (<see cref="KLaneTileQ4_K"/>): VPDPBUSD on w AND 0x0F (sub-block 2c's codes) and on w AND 0xF0
/// (sub-block 2c + 1's codes times 16). The even sub-blocks' scales are taken times 16 to match and the super-block's
/// integer sum (16 times the reference's) is scaled by d/16, a power of two, so the result is the same float. A
/// sub-block sum is at most 32·15·127 (even, scale ≤ 16·63) or 32·240·127 (odd, scale ≤ 63), so eight of them scaled
/// stay below 8·61.5·10⁶ &lt; 2³¹: exact.
/// </para>
/// </summary>
public static unsafe partial class QuantMatMul
{
    /// <summary>
    /// Rows [o, o + 4) of Q4_K weights (<paramref name="w"/> is row o's first block) times the one group of eight
    /// tokens, over every super-block; the tile [4 rows, 8 tokens] into <paramref name="result"/>.
    /// </summary>
    private static void KLaneTileQ4_K(in Job job, byte* w, float* result)
    {
        var rowBytes = job.RowBytes;
        var blocks = job.In / 256;
        var lanes = (sbyte*)job.Lanes;
        var dx = (float*)job.LaneScales;
        var sums = (short*)job.LaneSums;
        // Per super-block: the four rows' sub-block scales (even ones × 16) [r, 8], their mins as int16 pairs [r, 4].
        var scales = stackalloc int[LaneRowsPerTile * 8];
        var pairs = stackalloc uint[LaneRowsPerTile * 4];
        var sixteen = Vector256.Create(16, 1, 16, 1, 16, 1, 16, 1);
        var low = Vector256.Create((byte)0x0F);
        var high = Vector256.Create((byte)0xF0);
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (var b = 0; b < blocks; b++, w += 144, lanes += 2048, dx += LaneTokens, sums += 64)
        {
            byte* w0 = w, w1 = w + rowBytes, w2 = w + (2 * rowBytes), w3 = w + (3 * rowBytes);
            for (var r = 0; r < LaneRowsPerTile; r++)
            {
                var block = w + ((long)r * rowBytes);
                // The same super-block of the next tile's row: batched decode streams each weight once.
                var ahead = block + (LaneRowsPerTile * rowBytes);
                Sse.Prefetch0(ahead);
                Sse.Prefetch0(ahead + 64);
                Sse.Prefetch0(ahead + 128);
                var (s, m) = Q4_KScaleBytes(block + Q4_K.ScalesOffset);
                (Avx2.ConvertToVector256Int32(Vector128.CreateScalar(s).AsByte()) * sixteen).Store(scales + (8 * r));
                Sse41.ConvertToVector128Int16(Vector128.CreateScalar(m).AsByte()).AsUInt32().Store(pairs + (4 * r));
            }

            Vector256<int> t0 = default, t1 = default, t2 = default, t3 = default;
            for (var c = 0; c < 4; c++)
            {
                // Sub-blocks 2c (low nibbles) and 2c + 1 (high nibbles) of the four rows: eight independent chains.
                Vector256<int> e0 = default, e1 = default, e2 = default, e3 = default;
                Vector256<int> f0 = default, f1 = default, f2 = default, f3 = default;
                var at = Q4_K.CodesOffset + (32 * c);
                var x0 = lanes + (512 * c);
                for (var k = 0; k < 8; k++, at += 4)
                {
                    var x = Vector256.Load(x0 + (32 * k));
                    var y = Vector256.Load(x0 + 256 + (32 * k));
                    var q0 = Vector256.Create(*(uint*)(w0 + at)).AsByte();
                    var q1 = Vector256.Create(*(uint*)(w1 + at)).AsByte();
                    var q2 = Vector256.Create(*(uint*)(w2 + at)).AsByte();
                    var q3 = Vector256.Create(*(uint*)(w3 + at)).AsByte();
                    e0 = AvxVnni.MultiplyWideningAndAdd(e0, q0 & low, x);
                    e1 = AvxVnni.MultiplyWideningAndAdd(e1, q1 & low, x);
                    e2 = AvxVnni.MultiplyWideningAndAdd(e2, q2 & low, x);
                    e3 = AvxVnni.MultiplyWideningAndAdd(e3, q3 & low, x);
                    f0 = AvxVnni.MultiplyWideningAndAdd(f0, q0 & high, y);
                    f1 = AvxVnni.MultiplyWideningAndAdd(f1, q1 & high, y);
                    f2 = AvxVnni.MultiplyWideningAndAdd(f2, q2 & high, y);
                    f3 = AvxVnni.MultiplyWideningAndAdd(f3, q3 & high, y);
                }

                var j = 2 * c;
                t0 += (e0 * Vector256.Create(scales[j])) + (f0 * Vector256.Create(scales[j + 1]));
                t1 += (e1 * Vector256.Create(scales[8 + j])) + (f1 * Vector256.Create(scales[8 + j + 1]));
                t2 += (e2 * Vector256.Create(scales[16 + j])) + (f2 * Vector256.Create(scales[16 + j + 1]));
                t3 += (e3 * Vector256.Create(scales[24 + j])) + (f3 * Vector256.Create(scales[24 + j + 1]));
            }

            // Σ_j m_j·Σx over the sub-blocks of 32, four pairs of sub-blocks per token.
            var (n0, n1, n2, n3) = PairSums(pairs, 4, sums);

            var scale = Vector256.Load(dx);
            a0 += Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(n0), scale * -Half16(w0 + 2), Avx.ConvertToVector256Single(t0) * (scale * (Half16(w0) * 0.0625f)));
            a1 += Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(n1), scale * -Half16(w1 + 2), Avx.ConvertToVector256Single(t1) * (scale * (Half16(w1) * 0.0625f)));
            a2 += Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(n2), scale * -Half16(w2 + 2), Avx.ConvertToVector256Single(t2) * (scale * (Half16(w2) * 0.0625f)));
            a3 += Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(n3), scale * -Half16(w3 + 2), Avx.ConvertToVector256Single(t3) * (scale * (Half16(w3) * 0.0625f)));
        }

        a0.Store(result);
        a1.Store(result + 8);
        a2.Store(result + 16);
        a3.Store(result + 24);
    }

    /// <summary>Whether one token group of Q4_K weights takes the 512-bit GFNI kernel (<see cref="KLaneTileQ4_KWide"/>).</summary>
    private static bool KLaneOneWide => KLanesWide && Gfni.V512.IsSupported;

    /// <summary>
    /// <see cref="KLaneTileQ4_K"/> in 512-bit vectors: sub-blocks 2c and 2c + 1 in the two halves (see the class notes).
    /// </summary>
    private static void KLaneTileQ4_KWide(in Job job, byte* w, float* result)
    {
        var rowBytes = job.RowBytes;
        var blocks = job.In / 256;
        var lanes = (sbyte*)job.Lanes;
        var dx = (float*)job.LaneScales;
        var sums = (short*)job.LaneSums;
        // Per super-block: the four rows' sub-block scales as int16 [r, 8], their mins as int16 pairs [r, 4].
        var scales = stackalloc short[LaneRowsPerTile * 8];
        var pairs = stackalloc uint[LaneRowsPerTile * 4];
        // GF(2) bit matrices, one per 64-bit lane: the low nibble of each byte in the lower half, the high nibble
        // shifted down in the upper half (row 7 − i of a matrix picks the input bits of output bit i).
        var nibbles = Vector512.Create(Vector256.Create(0x0102040800000000UL), Vector256.Create(0x1020408000000000UL)).AsByte();
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (var b = 0; b < blocks; b++, w += 144, lanes += 2048, dx += LaneTokens, sums += 64)
        {
            byte* w0 = w, w1 = w + rowBytes, w2 = w + (2 * rowBytes), w3 = w + (3 * rowBytes);
            for (var r = 0; r < LaneRowsPerTile; r++)
            {
                var block = w + ((long)r * rowBytes);
                // The same super-block of the next tile's row: batched decode streams each weight once.
                var ahead = block + (LaneRowsPerTile * rowBytes);
                Sse.Prefetch0(ahead);
                Sse.Prefetch0(ahead + 64);
                Sse.Prefetch0(ahead + 128);
                var (s, m) = Q4_KScaleBytes(block + Q4_K.ScalesOffset);
                Sse41.ConvertToVector128Int16(Vector128.CreateScalar(s).AsByte()).Store(scales + (8 * r));
                Sse41.ConvertToVector128Int16(Vector128.CreateScalar(m).AsByte()).AsUInt32().Store(pairs + (4 * r));
            }

            Vector512<int> t0 = default, t1 = default, t2 = default, t3 = default;
            for (var c = 0; c < 4; c++)
            {
                // Lane t of the lower half: token t against sub-block 2c; of the upper half: against sub-block 2c + 1.
                Vector512<short> e0 = default, e1 = default, e2 = default, e3 = default;
                var at = Q4_K.CodesOffset + (32 * c);
                var x0 = lanes + (512 * c);
                for (var k = 0; k < 8; k++, at += 4)
                {
                    var x = Avx512F.InsertVector256(Vector256.Load(x0 + (32 * k)).ToVector512Unsafe(), Vector256.Load(x0 + 256 + (32 * k)), 1);
                    e0 += Avx512BW.MultiplyAddAdjacent(Gfni.V512.GaloisFieldAffineTransform(Broadcast4(w0 + at), nibbles, 0), x);
                    e1 += Avx512BW.MultiplyAddAdjacent(Gfni.V512.GaloisFieldAffineTransform(Broadcast4(w1 + at), nibbles, 0), x);
                    e2 += Avx512BW.MultiplyAddAdjacent(Gfni.V512.GaloisFieldAffineTransform(Broadcast4(w2 + at), nibbles, 0), x);
                    e3 += Avx512BW.MultiplyAddAdjacent(Gfni.V512.GaloisFieldAffineTransform(Broadcast4(w3 + at), nibbles, 0), x);
                }

                var j = 2 * c;
                t0 += Avx512BW.MultiplyAddAdjacent(e0, ScaleHalves(scales[j], scales[j + 1]));
                t1 += Avx512BW.MultiplyAddAdjacent(e1, ScaleHalves(scales[8 + j], scales[8 + j + 1]));
                t2 += Avx512BW.MultiplyAddAdjacent(e2, ScaleHalves(scales[16 + j], scales[16 + j + 1]));
                t3 += Avx512BW.MultiplyAddAdjacent(e3, ScaleHalves(scales[24 + j], scales[24 + j + 1]));
            }

            // Σ_j m_j·Σx over the sub-blocks of 32, four pairs of sub-blocks per token.
            var (n0, n1, n2, n3) = PairSums(pairs, 4, sums);

            var scale = Vector256.Load(dx);
            a0 += Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(n0), scale * -Half16(w0 + 2), Avx.ConvertToVector256Single(t0.GetLower() + t0.GetUpper()) * (scale * Half16(w0)));
            a1 += Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(n1), scale * -Half16(w1 + 2), Avx.ConvertToVector256Single(t1.GetLower() + t1.GetUpper()) * (scale * Half16(w1)));
            a2 += Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(n2), scale * -Half16(w2 + 2), Avx.ConvertToVector256Single(t2.GetLower() + t2.GetUpper()) * (scale * Half16(w2)));
            a3 += Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(n3), scale * -Half16(w3 + 2), Avx.ConvertToVector256Single(t3.GetLower() + t3.GetUpper()) * (scale * Half16(w3)));
        }

        a0.Store(result);
        a1.Store(result + 8);
        a2.Store(result + 16);
        a3.Store(result + 24);
    }

    /// <summary>Sub-block scale <paramref name="lower"/> in the 16 int16 lanes of the lower half, <paramref name="upper"/> in those of the upper half.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> ScaleHalves(short lower, short upper) =>
        Vector512.Create(Vector256.Create(lower), Vector256.Create(upper));
}
