using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sharpformer.Tensors.Kernels.Quant;

/// <summary>
/// The register-blocked path of <see cref="QuantMatMul"/> for prefill and batched decode: a tile of
/// <see cref="TileRows"/> weight rows × <see cref="TileTokens"/> tokens keeps its eight sums in registers, so each weight
/// block is loaded and decoded (nibbles unpacked, scales unpacked) once per four tokens instead of once per token.
/// The integer block sums are the same exact integers as the scalar reference's; only the float sum over blocks is
/// reordered. With AVX-VNNI the byte products take VPDPBUSD with unsigned weights (Q8_0 weights offset by 128, the
/// offset taken back through the activation block's code sum) and the scaled K-quant sums VPDPWSSD; without it
/// VPMADDUBSW + VPMADDWD.
/// </summary>
public static unsafe partial class QuantMatMul
{
    /// <summary>Weight rows per tile.</summary>
    private const int TileRows = 2;

    /// <summary>Tokens (rows of x) per tile.</summary>
    private const int TileTokens = 4;

    /// <summary>
    /// Rows [start, end) in tiles of <see cref="TileRows"/> × <see cref="TileTokens"/>, the tokens past the last whole
    /// tile one at a time; returns the first row not done (end, or the odd last row).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int TiledRows(in Job job, int start, int end)
    {
        var tile = stackalloc float[TileRows * TileTokens];
        var o = start;
        for (; o + TileRows <= end; o += TileRows)
        {
            var r = 0;
            for (; r + TileTokens <= job.Rows; r += TileTokens)
            {
                Tile(job, o, r, tile);
                for (var i = 0; i < TileRows; i++)
                {
                    for (var t = 0; t < TileTokens; t++)
                    {
                        Store(job, o + i, r + t, tile[(i * TileTokens) + t]);
                    }
                }
            }

            for (; r < job.Rows; r++)
            {
                for (var i = 0; i < TileRows; i++)
                {
                    Store(job, o + i, r, Dot(job, (byte*)job.W + ((long)(o + i) * job.RowBytes), r));
                }
            }
        }

        return o;
    }

    /// <summary>Rows o, o + 1 of W times tokens r .. r + 3 of x into <paramref name="result"/> [2, 4] (no bias).</summary>
    private static void Tile(in Job job, int o, int r, float* result)
    {
        var w0 = (byte*)job.W + ((long)o * job.RowBytes);
        var w1 = w0 + job.RowBytes;
        var x = (sbyte*)job.Codes + ((long)r * job.In);
        {
            switch (job.Type)
            {
                case QuantType.Q8_0:
                case QuantType.Q4_0:
                    {
                        var blocks = job.In / 32;
                        var d = (float*)job.Scales + ((long)r * blocks);
                        var sums = (short*)job.Sums + ((long)r * blocks);
                        if (job.Type == QuantType.Q8_0)
                        {
                            TileQ8_0(w0, w1, x, d, sums, job.In, blocks, result);
                        }
                        else
                        {
                            TileQ4_0(w0, w1, x, d, sums, job.In, blocks, result);
                        }

                        break;
                    }

                case QuantType.Q4_K:
                    {
                        var blocks = job.In / 256;
                        TileQ4_K(w0, w1, x, (float*)job.Scales + ((long)r * blocks), (short*)job.Sums + ((long)r * job.In / 16), job.In, blocks, result);
                        break;
                    }

                default:
                    {
                        var blocks = job.In / 256;
                        TileQ6_K(w0, w1, x, (float*)job.Scales + ((long)r * blocks), (short*)job.Sums + ((long)r * job.In / 16), job.In, blocks, result);
                        break;
                    }
            }
        }
    }

    /// <summary>
    /// Σ w·x over one block of 32 signed weights and 32 activation codes whose sum is <paramref name="xSum"/>, as eight
    /// int32 partial sums. AVX-VNNI: VPDPBUSD on w + 128 (<paramref name="wOffset"/>, unsigned), started at −128·Σx;
    /// AVX2: |w| times x with w's signs (<paramref name="wAbs"/>, <paramref name="w"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> BlockDotQ8(Vector256<sbyte> w, Vector256<byte> wOffset, Vector256<byte> wAbs, Vector256<sbyte> x, int xSum)
    {
        if (AvxVnni.IsSupported)
        {
            return AvxVnni.MultiplyWideningAndAdd(Vector256.CreateScalar(-128 * xSum), wOffset, x);
        }

        return Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(wAbs, Avx2.Sign(x, w)), Vector256<short>.One);
    }

    /// <summary>Σ (q − 8)·x over one block of 32 unsigned 4-bit codes <paramref name="q"/>: Σ q·x − 8·Σx.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> BlockDotQ4(Vector256<byte> q, Vector256<sbyte> x, int xSum) =>
        AddBytes(Vector256.CreateScalar(-8 * xSum), q, x);

    /// <summary>
    /// acc + each int32 lane's four products of an unsigned weight byte by a signed activation byte (VPDPBUSD, or
    /// VPMADDUBSW + VPMADDWD and an add without AVX-VNNI, exact while each adjacent pair of products sums inside int16:
    /// the callers' weights are at most 128 (K-quant panel codes at most 63, Q4 codes 15, magnitudes of Q8_0 codes 128),
    /// their activation codes at most 127 in magnitude).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> AddBytes(Vector256<int> acc, Vector256<byte> w, Vector256<sbyte> x) =>
        AvxVnni.IsSupported ? AvxVnni.MultiplyWideningAndAdd(acc, w, x) : acc + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(w, x), Vector256<short>.One);

    /// <summary>acc + Σ over pairs of lanes of p·s (VPDPWSSD, or VPMADDWD and an add).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> AddScaled(Vector256<int> acc, Vector256<short> p, Vector256<short> s) =>
        AvxVnni.IsSupported ? AvxVnni.MultiplyWideningAndAdd(acc, p, s) : acc + Avx2.MultiplyAddAdjacent(p, s);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Scale(Vector256<float> acc, Vector256<int> sum, float scale) =>
        Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(sum), Vector256.Create(scale), acc);

    private static void TileQ8_0(byte* w0, byte* w1, sbyte* x, float* xd, short* xs, int stride, int blocks, float* result)
    {
        var dStride = stride / 32;
        var offset = Vector256.Create((byte)0x80);
        Vector256<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector256<float> a10 = default, a11 = default, a12 = default, a13 = default;
        for (var b = 0; b < blocks; b++, w0 += 34, w1 += 34, x += 32)
        {
            var v0 = Vector256.Load((sbyte*)(w0 + 2));
            var v1 = Vector256.Load((sbyte*)(w1 + 2));
            var u0 = v0.AsByte() ^ offset;
            var u1 = v1.AsByte() ^ offset;
            var m0 = Avx2.Abs(v0);
            var m1 = Avx2.Abs(v1);
            float d0 = Half16(w0), d1 = Half16(w1);

            var xt = Vector256.Load(x);
            float dx = xd[b];
            int sx = xs[b];
            a00 = Scale(a00, BlockDotQ8(v0, u0, m0, xt, sx), d0 * dx);
            a10 = Scale(a10, BlockDotQ8(v1, u1, m1, xt, sx), d1 * dx);

            xt = Vector256.Load(x + stride);
            dx = xd[dStride + b];
            sx = xs[dStride + b];
            a01 = Scale(a01, BlockDotQ8(v0, u0, m0, xt, sx), d0 * dx);
            a11 = Scale(a11, BlockDotQ8(v1, u1, m1, xt, sx), d1 * dx);

            xt = Vector256.Load(x + (2 * stride));
            dx = xd[(2 * dStride) + b];
            sx = xs[(2 * dStride) + b];
            a02 = Scale(a02, BlockDotQ8(v0, u0, m0, xt, sx), d0 * dx);
            a12 = Scale(a12, BlockDotQ8(v1, u1, m1, xt, sx), d1 * dx);

            xt = Vector256.Load(x + (3 * stride));
            dx = xd[(3 * dStride) + b];
            sx = xs[(3 * dStride) + b];
            a03 = Scale(a03, BlockDotQ8(v0, u0, m0, xt, sx), d0 * dx);
            a13 = Scale(a13, BlockDotQ8(v1, u1, m1, xt, sx), d1 * dx);
        }

        WriteTile(result, a00, a01, a02, a03, a10, a11, a12, a13);
    }

    private static void TileQ4_0(byte* w0, byte* w1, sbyte* x, float* xd, short* xs, int stride, int blocks, float* result)
    {
        var dStride = stride / 32;
        var low = Vector128.Create((byte)0x0F);
        Vector256<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector256<float> a10 = default, a11 = default, a12 = default, a13 = default;
        for (var b = 0; b < blocks; b++, w0 += 18, w1 += 18, x += 32)
        {
            var raw0 = Vector128.Load(w0 + 2);
            var raw1 = Vector128.Load(w1 + 2);
            var q0 = Vector256.Create(raw0 & low, Vector128.ShiftRightLogical(raw0, 4) & low);
            var q1 = Vector256.Create(raw1 & low, Vector128.ShiftRightLogical(raw1, 4) & low);
            float d0 = Half16(w0), d1 = Half16(w1);

            var xt = Vector256.Load(x);
            float dx = xd[b];
            int sx = xs[b];
            a00 = Scale(a00, BlockDotQ4(q0, xt, sx), d0 * dx);
            a10 = Scale(a10, BlockDotQ4(q1, xt, sx), d1 * dx);

            xt = Vector256.Load(x + stride);
            dx = xd[dStride + b];
            sx = xs[dStride + b];
            a01 = Scale(a01, BlockDotQ4(q0, xt, sx), d0 * dx);
            a11 = Scale(a11, BlockDotQ4(q1, xt, sx), d1 * dx);

            xt = Vector256.Load(x + (2 * stride));
            dx = xd[(2 * dStride) + b];
            sx = xs[(2 * dStride) + b];
            a02 = Scale(a02, BlockDotQ4(q0, xt, sx), d0 * dx);
            a12 = Scale(a12, BlockDotQ4(q1, xt, sx), d1 * dx);

            xt = Vector256.Load(x + (3 * stride));
            dx = xd[(3 * dStride) + b];
            sx = xs[(3 * dStride) + b];
            a03 = Scale(a03, BlockDotQ4(q0, xt, sx), d0 * dx);
            a13 = Scale(a13, BlockDotQ4(q1, xt, sx), d1 * dx);
        }

        WriteTile(result, a00, a01, a02, a03, a10, a11, a12, a13);
    }

    private static void TileQ4_K(byte* w0, byte* w1, sbyte* x, float* xd, short* bsums, int stride, int blocks, float* result)
    {
        var dStride = stride / 256;
        var sStride = stride / 16;
        var low = Vector256.Create((byte)0x0F);
        var scales0 = stackalloc short[8];
        var scales1 = stackalloc short[8];
        Vector256<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector256<float> a10 = default, a11 = default, a12 = default, a13 = default;
        for (var b = 0; b < blocks; b++, w0 += 144, w1 += 144, x += 256, bsums += 16)
        {
            var mins0 = UnpackQ4_KScales(w0 + Q4_K.ScalesOffset, scales0);
            var mins1 = UnpackQ4_KScales(w1 + Q4_K.ScalesOffset, scales1);
            Vector256<int> i00 = default, i01 = default, i02 = default, i03 = default;
            Vector256<int> i10 = default, i11 = default, i12 = default, i13 = default;
            for (var c = 0; c < 4; c++)
            {
                var raw0 = Vector256.Load(w0 + Q4_K.CodesOffset + (32 * c));
                var raw1 = Vector256.Load(w1 + Q4_K.CodesOffset + (32 * c));
                var lo0 = raw0 & low;
                var hi0 = Vector256.ShiftRightLogical(raw0.AsUInt16(), 4).AsByte() & low;
                var lo1 = raw1 & low;
                var hi1 = Vector256.ShiftRightLogical(raw1.AsUInt16(), 4).AsByte() & low;
                var sl0 = Vector256.Create(scales0[2 * c]);
                var sh0 = Vector256.Create(scales0[(2 * c) + 1]);
                var sl1 = Vector256.Create(scales1[2 * c]);
                var sh1 = Vector256.Create(scales1[(2 * c) + 1]);
                var xc = x + (64 * c);

                var xl = Vector256.Load(xc);
                var xh = Vector256.Load(xc + 32);
                i00 = AddScaled(AddScaled(i00, Avx2.MultiplyAddAdjacent(lo0, xl), sl0), Avx2.MultiplyAddAdjacent(hi0, xh), sh0);
                i10 = AddScaled(AddScaled(i10, Avx2.MultiplyAddAdjacent(lo1, xl), sl1), Avx2.MultiplyAddAdjacent(hi1, xh), sh1);

                xl = Vector256.Load(xc + stride);
                xh = Vector256.Load(xc + stride + 32);
                i01 = AddScaled(AddScaled(i01, Avx2.MultiplyAddAdjacent(lo0, xl), sl0), Avx2.MultiplyAddAdjacent(hi0, xh), sh0);
                i11 = AddScaled(AddScaled(i11, Avx2.MultiplyAddAdjacent(lo1, xl), sl1), Avx2.MultiplyAddAdjacent(hi1, xh), sh1);

                xl = Vector256.Load(xc + (2 * stride));
                xh = Vector256.Load(xc + (2 * stride) + 32);
                i02 = AddScaled(AddScaled(i02, Avx2.MultiplyAddAdjacent(lo0, xl), sl0), Avx2.MultiplyAddAdjacent(hi0, xh), sh0);
                i12 = AddScaled(AddScaled(i12, Avx2.MultiplyAddAdjacent(lo1, xl), sl1), Avx2.MultiplyAddAdjacent(hi1, xh), sh1);

                xl = Vector256.Load(xc + (3 * stride));
                xh = Vector256.Load(xc + (3 * stride) + 32);
                i03 = AddScaled(AddScaled(i03, Avx2.MultiplyAddAdjacent(lo0, xl), sl0), Avx2.MultiplyAddAdjacent(hi0, xh), sh0);
                i13 = AddScaled(AddScaled(i13, Avx2.MultiplyAddAdjacent(lo1, xl), sl1), Avx2.MultiplyAddAdjacent(hi1, xh), sh1);
            }

            float d0 = Half16(w0), d1 = Half16(w1), m0 = -Half16(w0 + 2), m1 = -Half16(w1 + 2);
            float dx0 = xd[b], dx1 = xd[dStride + b], dx2 = xd[(2 * dStride) + b], dx3 = xd[(3 * dStride) + b];
            var bs0 = Vector256.Load(bsums);
            var bs1 = Vector256.Load(bsums + sStride);
            var bs2 = Vector256.Load(bsums + (2 * sStride));
            var bs3 = Vector256.Load(bsums + (3 * sStride));
            a00 += FinishQ4_K(i00, bs0, mins0, d0 * dx0, m0 * dx0);
            a10 += FinishQ4_K(i10, bs0, mins1, d1 * dx0, m1 * dx0);
            a01 += FinishQ4_K(i01, bs1, mins0, d0 * dx1, m0 * dx1);
            a11 += FinishQ4_K(i11, bs1, mins1, d1 * dx1, m1 * dx1);
            a02 += FinishQ4_K(i02, bs2, mins0, d0 * dx2, m0 * dx2);
            a12 += FinishQ4_K(i12, bs2, mins1, d1 * dx2, m1 * dx2);
            a03 += FinishQ4_K(i03, bs3, mins0, d0 * dx3, m0 * dx3);
            a13 += FinishQ4_K(i13, bs3, mins1, d1 * dx3, m1 * dx3);
        }

        WriteTile(result, a00, a01, a02, a03, a10, a11, a12, a13);
    }

    private static void TileQ6_K(byte* w0, byte* w1, sbyte* x, float* xd, short* bsums, int stride, int blocks, float* result)
    {
        var dStride = stride / 256;
        var sStride = stride / 16;
        Vector256<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector256<float> a10 = default, a11 = default, a12 = default, a13 = default;
        for (var b = 0; b < blocks; b++, w0 += 210, w1 += 210, x += 256, bsums += 16)
        {
            var sc0 = (sbyte*)(w0 + Q6_K.ScalesOffset);
            var sc1 = (sbyte*)(w1 + Q6_K.ScalesOffset);
            Vector256<int> i00 = default, i01 = default, i02 = default, i03 = default;
            Vector256<int> i10 = default, i11 = default, i12 = default, i13 = default;
            for (var h = 0; h < 2; h++)
            {
                TileQ6_KQuarter(w0, w1, sc0, sc1, x, stride, h, 0, ref i00, ref i01, ref i02, ref i03, ref i10, ref i11, ref i12, ref i13);
                TileQ6_KQuarter(w0, w1, sc0, sc1, x, stride, h, 1, ref i00, ref i01, ref i02, ref i03, ref i10, ref i11, ref i12, ref i13);
                TileQ6_KQuarter(w0, w1, sc0, sc1, x, stride, h, 2, ref i00, ref i01, ref i02, ref i03, ref i10, ref i11, ref i12, ref i13);
                TileQ6_KQuarter(w0, w1, sc0, sc1, x, stride, h, 3, ref i00, ref i01, ref i02, ref i03, ref i10, ref i11, ref i12, ref i13);
            }

            // The codes were taken unsigned (0–63): take back 32·Σ_g s_g·Σx over each group of 16.
            var all0 = Avx2.ConvertToVector256Int16(Vector128.Load(sc0));
            var all1 = Avx2.ConvertToVector256Int16(Vector128.Load(sc1));
            float d0 = Half16(w0 + Q6_K.DOffset), d1 = Half16(w1 + Q6_K.DOffset);
            float dx0 = xd[b], dx1 = xd[dStride + b], dx2 = xd[(2 * dStride) + b], dx3 = xd[(3 * dStride) + b];
            var bs0 = Vector256.Load(bsums);
            var bs1 = Vector256.Load(bsums + sStride);
            var bs2 = Vector256.Load(bsums + (2 * sStride));
            var bs3 = Vector256.Load(bsums + (3 * sStride));
            a00 += FinishQ6_K(i00, bs0, all0, d0 * dx0);
            a10 += FinishQ6_K(i10, bs0, all1, d1 * dx0);
            a01 += FinishQ6_K(i01, bs1, all0, d0 * dx1);
            a11 += FinishQ6_K(i11, bs1, all1, d1 * dx1);
            a02 += FinishQ6_K(i02, bs2, all0, d0 * dx2);
            a12 += FinishQ6_K(i12, bs2, all1, d1 * dx2);
            a03 += FinishQ6_K(i03, bs3, all0, d0 * dx3);
            a13 += FinishQ6_K(i13, bs3, all1, d1 * dx3);
        }

        WriteTile(result, a00, a01, a02, a03, a10, a11, a12, a13);
    }

    /// <summary>Quarter <paramref name="k"/> of half <paramref name="h"/> of a Q6_K block (32 values) for both rows and four tokens.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TileQ6_KQuarter(
        byte* w0, byte* w1, sbyte* sc0, sbyte* sc1, sbyte* x, int stride, int h, int k,
        ref Vector256<int> i00, ref Vector256<int> i01, ref Vector256<int> i02, ref Vector256<int> i03,
        ref Vector256<int> i10, ref Vector256<int> i11, ref Vector256<int> i12, ref Vector256<int> i13)
    {
        var q0 = Q6Codes(w0, h, k);
        var q1 = Q6Codes(w1, h, k);
        var g = (8 * h) + (2 * k);
        var s0 = GroupScales(sc0[g], sc0[g + 1]);
        var s1 = GroupScales(sc1[g], sc1[g + 1]);
        var xk = x + (128 * h) + (32 * k);

        var xt = Vector256.Load(xk);
        i00 = AddScaled(i00, Avx2.MultiplyAddAdjacent(q0, xt), s0);
        i10 = AddScaled(i10, Avx2.MultiplyAddAdjacent(q1, xt), s1);

        xt = Vector256.Load(xk + stride);
        i01 = AddScaled(i01, Avx2.MultiplyAddAdjacent(q0, xt), s0);
        i11 = AddScaled(i11, Avx2.MultiplyAddAdjacent(q1, xt), s1);

        xt = Vector256.Load(xk + (2 * stride));
        i02 = AddScaled(i02, Avx2.MultiplyAddAdjacent(q0, xt), s0);
        i12 = AddScaled(i12, Avx2.MultiplyAddAdjacent(q1, xt), s1);

        xt = Vector256.Load(xk + (3 * stride));
        i03 = AddScaled(i03, Avx2.MultiplyAddAdjacent(q0, xt), s0);
        i13 = AddScaled(i13, Avx2.MultiplyAddAdjacent(q1, xt), s1);
    }

    /// <summary>A Q4_K super-block's float contribution: d·d_x·Σ s_j·Σ q·x − dmin·d_x·Σ_j m_j·Σx (<paramref name="minScale"/> is −dmin·d_x).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> FinishQ4_K(Vector256<int> sum, Vector256<short> xSums, Vector256<short> mins, float scale, float minScale) =>
        Vector256.FusedMultiplyAdd(
            Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(xSums, mins)),
            Vector256.Create(minScale),
            Avx.ConvertToVector256Single(sum) * Vector256.Create(scale));

    /// <summary>A Q6_K super-block's float contribution: d·d_x·(Σ s_g·Σ q·x − 32·Σ s_g·Σx), the codes q taken unsigned.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> FinishQ6_K(Vector256<int> sum, Vector256<short> xSums, Vector256<short> scales, float scale) =>
        Avx.ConvertToVector256Single(sum - Vector256.ShiftLeft(Avx2.MultiplyAddAdjacent(xSums, scales), 5)) * Vector256.Create(scale);

    /// <summary>
    /// The 32 six-bit codes (0–63) of quarter <paramref name="k"/> of half <paramref name="h"/> of a Q6_K block: low
    /// nibbles of ql[64h .. +32) (k even) or ql[64h + 32 ..) (k odd), the high nibbles for k ≥ 2, and bits 2k, 2k + 1 of qh.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Q6Codes(byte* w, int h, int k)
    {
        var low = Vector256.Create((byte)0x0F);
        var two = Vector256.Create((byte)0x03);
        var ql = Vector256.Load(w + (64 * h) + (32 * (k & 1)));
        var qh = Vector256.Load(w + Q6_K.HighOffset + (32 * h));
        var nibble = Vector256.ShiftRightLogical(ql.AsUInt16(), 4 * (k >> 1)).AsByte() & low;
        var high = Vector256.ShiftRightLogical(qh.AsUInt16(), 2 * k).AsByte() & two;
        return nibble | Vector256.ShiftLeft(high.AsUInt16(), 4).AsByte();
    }

    /// <summary>
    /// A Q4_K block's eight 6-bit sub-block scales into <paramref name="scales"/> and its eight mins, each twice (lanes
    /// 2j and 2j + 1, matching the Q8_K sums of 16), as the returned int16 lanes (the bytes from <see cref="Q4_KScaleBytes"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> UnpackQ4_KScales(byte* packed, short* scales)
    {
        var (s, m) = Q4_KScaleBytes(packed);
        Sse41.ConvertToVector128Int16(Vector128.CreateScalar(s).AsByte()).Store(scales);
        var mins = Vector128.CreateScalar(m).AsByte();
        return Avx2.ConvertToVector256Int16(Sse2.UnpackLow(mins, mins));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WriteTile(
        float* result, Vector256<float> a00, Vector256<float> a01, Vector256<float> a02, Vector256<float> a03, Vector256<float> a10, Vector256<float> a11, Vector256<float> a12, Vector256<float> a13)
    {
        result[0] = Vector256.Sum(a00);
        result[1] = Vector256.Sum(a01);
        result[2] = Vector256.Sum(a02);
        result[3] = Vector256.Sum(a03);
        result[4] = Vector256.Sum(a10);
        result[5] = Vector256.Sum(a11);
        result[6] = Vector256.Sum(a12);
        result[7] = Vector256.Sum(a13);
    }
}
