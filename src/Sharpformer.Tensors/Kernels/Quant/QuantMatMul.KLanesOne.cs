using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sharpformer.Tensors.Kernels.Quant;

/// <summary>
/// The one-group case of the K-quant token lanes (<see cref="KLaneRows"/>: batched decode, 8–15 tokens) for Q4_K with
/// AVX-512 and GFNI, without the unpacked panel: with one group of eight tokens each unpacked super-block would be read
/// once, so the panel's stores and reloads cost about as much as the products they feed. Byte i of qs[32c + 4k ..]
/// holds value 64c + 4k + i in its low nibble and 64c + 32 + 4k + i in its high nibble, so one broadcast group of four
/// code bytes, read straight from the weight block, feeds sub-blocks 2c and 2c + 1, which sit in the two halves of a
/// 512-bit vector: one GF2P8AFFINEQB takes the bytes' low nibbles into the lower half and their high nibbles into the
/// upper half (a different bit matrix per half), the activations' step k of both sub-blocks are the two halves of x,
/// and VPMADDUBSW + VPADDW sum eight steps in int16 (at most 8·2·15·127 = 30480: exact) before one VPMADDWD by the
/// pair of sub-block scales. The super-block sums are the reference's integers and the float steps those of the panel
/// path, so the results are bit for bit the panel path's.
/// <para>
/// Measured on an AMD EPYC (Zen 5 class), QuantMatMul.Multiply at 8 tokens over the ~1B Llama's Q4_K matrices, against
/// the panel path in the same process, calls interleaved: 2 threads, one layer's seven matrices 0.72× the time, all 22
/// layers (streamed from memory) 0.75×; 1 thread 0.85×. Without AVX-512 the same idea with 256-bit VPDPBUSD (w AND
/// 0x0F, w AND 0xF0 with the even scales ×16) measured level with the panel, so that tier keeps the panel; so did a
/// one-group Q6_K kernel of this form (two GF2P8AFFINEQB per step for the six-bit codes), so Q6_K keeps it too.
/// </para>
/// </summary>
public static unsafe partial class QuantMatMul
{
    /// <summary>Whether one token group of Q4_K weights takes the 512-bit GFNI kernel (<see cref="KLaneTileQ4_KWide"/>).</summary>
    private static bool KLaneOneWide => KLanesWide && Gfni.V512.IsSupported;

    /// <summary>
    /// Rows [o, o + 4) of Q4_K weights (<paramref name="w"/> is row o's first block, rows <paramref name="rowBytes"/>
    /// apart) times the one group of eight tokens (their interleaved codes, scales and code sums), over all
    /// <paramref name="blocks"/> super-blocks; the tile [4 rows, 8 tokens] into <paramref name="result"/>.
    /// <paramref name="halves"/> is the F16 → F32 table.
    /// </summary>
    private static void KLaneTileQ4_KWide(byte* w, int rowBytes, int blocks, sbyte* lanes, float* dx, short* sums, float* halves, float* result)
    {
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
            a0 += Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(n0), scale * -halves[*(ushort*)(w0 + 2)], Avx.ConvertToVector256Single(t0.GetLower() + t0.GetUpper()) * (scale * halves[*(ushort*)(w0)]));
            a1 += Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(n1), scale * -halves[*(ushort*)(w1 + 2)], Avx.ConvertToVector256Single(t1.GetLower() + t1.GetUpper()) * (scale * halves[*(ushort*)(w1)]));
            a2 += Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(n2), scale * -halves[*(ushort*)(w2 + 2)], Avx.ConvertToVector256Single(t2.GetLower() + t2.GetUpper()) * (scale * halves[*(ushort*)(w2)]));
            a3 += Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(n3), scale * -halves[*(ushort*)(w3 + 2)], Avx.ConvertToVector256Single(t3.GetLower() + t3.GetUpper()) * (scale * halves[*(ushort*)(w3)]));
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
