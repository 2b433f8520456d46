using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Kernels.Quant;

/// <summary>
/// The activations of the token-lane kernels made in one pass split between threads: each work item quantizes the
/// tokens of one lane unit (a pair of groups 16 tokens wide, or one group of eight) over a slice of its blocks, then
/// moves those codes, still in L1, into the lane layout of <c>Activations.Interleave</c> by transposing 16×16 (or
/// 8×8) tiles of 32-bit words, and writes the units' lane scales and code sums. The tokens past the last group are
/// quantized by items of their own. The same bytes as <c>Quantize</c> followed by <c>Interleave</c> (its scalar form,
/// which stays as the reference), only made in parallel and without the one-thread scatter of 4-byte words.
/// </summary>
public static unsafe partial class QuantMatMul
{
    /// <summary>About how many activation values one work item of the fused pass quantizes.</summary>
    private const int LaneItemValues = 1 << 14;

    /// <summary>
    /// The token-lane activations of <paramref name="rows"/> tokens (for tests): codes, scales, sums, lanes, lane scales
    /// and lane sums (K-quants) or starts (Q8_0/Q4_0), made by the fused parallel pass (<paramref name="fused"/>) or by
    /// the reference <c>Quantize</c> + <c>Interleave</c>.
    /// </summary>
    internal static (sbyte[] Codes, float[] Scales, short[] Sums, sbyte[] Lanes, float[] LaneScales, short[] LaneSums, int[] LaneStarts) LaneActivations(
        QuantType type, ReadOnlySpan<float> x, int rows, int n, bool pairs, bool fused)
    {
        var activations = Activations.Rent(type, rows, n);
        try
        {
            var groups = rows / LaneTokens;
            var offset = type == QuantType.Q8_0 ? 128 : 8;
            if (fused)
            {
                activations.QuantizeInterleaved(x, rows, n, groups, offset, pairs);
            }
            else
            {
                activations.Quantize(x, rows, n, simd: true);
                activations.Interleave(groups, n, offset, pairs);
            }

            var super = activations.SuperBlocks;
            var laneValues = groups * LaneTokens * n;
            var scales = groups * LaneTokens * (super ? n / 256 : n / 32);
            return (
                activations.Codes[..(rows * n)],
                activations.Scales[..(rows * n / (super ? 256 : 32))],
                activations.Sums[..(rows * n / (super ? 16 : 32))],
                activations.Lanes[activations.LaneOffset..(activations.LaneOffset + laneValues)],
                activations.LaneScales[..scales],
                super ? activations.LaneSums[..(scales * (type == QuantType.Q4_K ? 4 : 8) * 2)] : [],
                super ? [] : activations.LaneStarts[..scales]);
        }
        finally
        {
            activations.Return();
        }
    }

    private sealed partial class Activations
    {
        /// <summary>
        /// <see cref="Quantize"/> (SIMD) and <see cref="Interleave"/> of the first 8·<paramref name="groups"/> tokens
        /// in one parallel pass: the same codes, scales, sums and lane layout.
        /// </summary>
        public void QuantizeInterleaved(ReadOnlySpan<float> x, int rows, int n, int groups, int offset, bool pairs)
        {
            var blocks32 = n / 32;
            var blockValues = SuperBlocks ? 256 : 32;
            var blockCount = n / blockValues;
            RentLanes(groups * LaneTokens * n);
            LaneScales = ArrayPool<float>.Shared.Rent(groups * (SuperBlocks ? n / 256 : blocks32) * LaneTokens);
            if (SuperBlocks)
            {
                LaneSums = ArrayPool<short>.Shared.Rent(groups * (n / 256) * (Type == QuantType.Q4_K ? 4 : 8) * LaneTokens * 2);
            }
            else
            {
                LaneStarts = ArrayPool<int>.Shared.Rent(groups * blocks32 * LaneTokens);
            }

            // Units in token order: pairs of groups (16 tokens), single groups (8), then the tokens past the last group.
            var paired = pairs ? groups / 2 * 2 : 0;
            var pairUnits = paired / 2;
            var groupUnits = pairUnits + (groups - paired);
            var units = groupUnits + (rows > groups * LaneTokens ? 1 : 0);
            // Each unit's blocks in slices of about LaneItemValues values (a 16-token unit at most twice that).
            var slices = Math.Clamp(LaneTokens * n / LaneItemValues, 1, blockCount);
            fixed (float* px = x)
            {
                var source = (nint)px;
                ParallelFor.For(units * slices, 1, (start, end) =>
                {
                    for (var item = start; item < end; item++)
                    {
                        int unit = item / slices, slice = item % slices;
                        var b0 = (int)((long)blockCount * slice / slices);
                        var b1 = (int)((long)blockCount * (slice + 1) / slices);
                        int first, count, group;
                        if (unit < pairUnits)
                        {
                            (first, count, group) = (2 * LaneTokens * unit, 2 * LaneTokens, 2 * unit);
                        }
                        else if (unit < groupUnits)
                        {
                            group = paired + unit - pairUnits;
                            (first, count) = (LaneTokens * group, LaneTokens);
                        }
                        else
                        {
                            (first, count, group) = (groups * LaneTokens, rows - (groups * LaneTokens), -1);
                        }

                        for (var r = first; r < first + count; r++)
                        {
                            QuantizeBlocksSimd((float*)source + ((long)r * n), r, n, b0, b1);
                        }

                        if (group >= 0)
                        {
                            InterleaveUnit(group, count / LaneTokens, n, offset, paired, b0, b1);
                        }
                    }
                });
            }
        }

        /// <summary>Blocks [<paramref name="b0"/>, <paramref name="b1"/>) of row <paramref name="r"/> quantized as <see cref="QuantizeRowSimd"/> does.</summary>
        private void QuantizeBlocksSimd(float* row, int r, int n, int b0, int b1)
        {
            fixed (sbyte* codes = &Codes[r * n])
            fixed (float* scales = Scales)
            fixed (short* sums = Sums)
            {
                for (var b = b0; b < b1; b++)
                {
                    if (SuperBlocks)
                    {
                        scales[(r * n / 256) + b] = QuantizeQ8KSimd(row + (256 * b), codes + (256 * b), sums + (r * n / 16) + (16 * b));
                    }
                    else
                    {
                        scales[(r * n / 32) + b] = QuantizeQ8_0Simd(row + (32 * b), codes + (32 * b), out sums[(r * n / 32) + b]);
                    }
                }
            }
        }

        /// <summary>
        /// Groups <paramref name="group"/> .. + <paramref name="groupCount"/> (one group, or the two of a pair) over
        /// quantization blocks [<paramref name="b0"/>, <paramref name="b1"/>): codes into the lane layout, lane scales
        /// and code sums (or starts), as <see cref="Interleave"/> places them.
        /// </summary>
        private void InterleaveUnit(int group, int groupCount, int n, int offset, int paired, int b0, int b1)
        {
            var blocks32 = n / 32;
            var words = n / 4;
            var perBlock = SuperBlocks ? 8 : 1;
            int w0 = 8 * perBlock * b0, w1 = 8 * perBlock * b1;
            fixed (sbyte* pc = Codes, pl = Lanes)
            {
                var codes = (uint*)pc + ((long)group * LaneTokens * words);
                // Word w of token i of the unit (0–15 for a pair, 0–7 for a group) at width·w + i.
                var lanes = (uint*)(pl + LaneOffset) + ((long)group * blocks32 * 8 * LaneTokens);
                TransposeWords(codes, words, lanes, group < paired ? 2 * LaneTokens : LaneTokens, w0, w1);
            }

            for (var g = group; g < group + groupCount; g++)
            {
                for (var t = 0; t < LaneTokens; t++)
                {
                    var row = (g * LaneTokens) + t;
                    if (SuperBlocks)
                    {
                        SuperBlockLanes(g, t, row, n, b0, b1);
                        continue;
                    }

                    for (var b = b0; b < b1; b++)
                    {
                        var at = (g * blocks32) + b;
                        LaneScales[(at * LaneTokens) + t] = Scales[(row * blocks32) + b];
                        LaneStarts[(at * LaneTokens) + t] = -offset * Sums[(row * blocks32) + b];
                    }
                }
            }
        }

        /// <summary>Token <paramref name="t"/> of group <paramref name="g"/>: its Q8_K scales and code sums in pairs over super-blocks [b0, b1) (see InterleaveSuperBlocks).</summary>
        private void SuperBlockLanes(int g, int t, int row, int n, int b0, int b1)
        {
            var blocks = n / 256;
            var pairs = Type == QuantType.Q4_K ? 4 : 8;
            for (var b = b0; b < b1; b++)
            {
                var at = (g * blocks) + b;
                LaneScales[(at * LaneTokens) + t] = Scales[(row * blocks) + b];
                var sums = Sums.AsSpan((row * n / 16) + (16 * b), 16);
                for (var i = 0; i < pairs; i++)
                {
                    var dst = ((((at * pairs) + i) * LaneTokens) + t) * 2;
                    if (pairs == 4)
                    {
                        LaneSums[dst] = (short)(sums[4 * i] + sums[(4 * i) + 1]);
                        LaneSums[dst + 1] = (short)(sums[(4 * i) + 2] + sums[(4 * i) + 3]);
                    }
                    else
                    {
                        LaneSums[dst] = sums[2 * i];
                        LaneSums[dst + 1] = sums[(2 * i) + 1];
                    }
                }
            }
        }

        /// <summary>
        /// lanes[width·w + i] = codes[words·i + w] for the <paramref name="width"/> tokens i and the words
        /// w ∈ [<paramref name="w0"/>, <paramref name="w1"/>) (a multiple of eight apart): 16×16 tiles with AVX-512
        /// (a last half tile one word at a time), 8×8 with AVX2, one word at a time without.
        /// </summary>
        private static void TransposeWords(uint* codes, int words, uint* lanes, int width, int w0, int w1)
        {
            if (width == 16 && Avx512F.IsSupported)
            {
                // Whole tiles of 16 words; a Q8_0/Q4_0 slice (blocks of eight words) may end in half a tile.
                for (; w0 + 16 <= w1; w0 += 16)
                {
                    Transpose16(codes + w0, words, lanes + (16 * w0));
                }
            }

            if (width == 8 && Avx2.IsSupported)
            {
                for (var w = w0; w < w1; w += 8)
                {
                    Transpose8(codes + w, words, lanes + (8 * w));
                }

                return;
            }

            for (var w = w0; w < w1; w++)
            {
                for (var i = 0; i < width; i++)
                {
                    lanes[(width * w) + i] = codes[((long)words * i) + w];
                }
            }
        }

        /// <summary>The 16×16 tile of 32-bit words whose row i starts at <paramref name="source"/> + i·<paramref name="stride"/>, transposed into 16 consecutive rows of 16 at <paramref name="destination"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Transpose16(uint* source, int stride, uint* destination)
        {
            // Rows 4q .. 4q + 3 become a_q .. d_q: in 128-bit lane L, word 4L + 0 (a), + 1 (b), + 2 (c), + 3 (d) of the four rows.
            var (a0, b0, c0, d0) = Quads(source, stride);
            var (a1, b1, c1, d1) = Quads(source + (4L * stride), stride);
            var (a2, b2, c2, d2) = Quads(source + (8L * stride), stride);
            var (a3, b3, c3, d3) = Quads(source + (12L * stride), stride);
            Lanes16(a0, a1, a2, a3, destination);
            Lanes16(b0, b1, b2, b3, destination + 16);
            Lanes16(c0, c1, c2, c3, destination + 32);
            Lanes16(d0, d1, d2, d3, destination + 48);
        }

        /// <summary>Four rows of 16 words as four vectors whose 128-bit lane L holds word 4L + j (j = 0, 1, 2, 3) of each row.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static (Vector512<uint>, Vector512<uint>, Vector512<uint>, Vector512<uint>) Quads(uint* source, int stride)
        {
            var r0 = Vector512.Load(source);
            var r1 = Vector512.Load(source + stride);
            var r2 = Vector512.Load(source + (2L * stride));
            var r3 = Vector512.Load(source + (3L * stride));
            var t0 = Avx512F.UnpackLow(r0, r1).AsUInt64();
            var t1 = Avx512F.UnpackHigh(r0, r1).AsUInt64();
            var t2 = Avx512F.UnpackLow(r2, r3).AsUInt64();
            var t3 = Avx512F.UnpackHigh(r2, r3).AsUInt64();
            return (Avx512F.UnpackLow(t0, t2).AsUInt32(), Avx512F.UnpackHigh(t0, t2).AsUInt32(), Avx512F.UnpackLow(t1, t3).AsUInt32(), Avx512F.UnpackHigh(t1, t3).AsUInt32());
        }

        /// <summary>
        /// Output rows j, 4 + j, 8 + j, 12 + j of a 16×16 transpose (<paramref name="destination"/> is row j's, rows 64
        /// bytes apart): row 4L + j is lane L of <paramref name="q0"/> .. <paramref name="q3"/> (the quads of rows 0–3 .. 12–15).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Lanes16(Vector512<uint> q0, Vector512<uint> q1, Vector512<uint> q2, Vector512<uint> q3, uint* destination)
        {
            var s0 = Avx512F.Shuffle4x128(q0, q1, 0x44);
            var s1 = Avx512F.Shuffle4x128(q0, q1, 0xEE);
            var s2 = Avx512F.Shuffle4x128(q2, q3, 0x44);
            var s3 = Avx512F.Shuffle4x128(q2, q3, 0xEE);
            Avx512F.Shuffle4x128(s0, s2, 0x88).Store(destination);
            Avx512F.Shuffle4x128(s0, s2, 0xDD).Store(destination + (16 * 4));
            Avx512F.Shuffle4x128(s1, s3, 0x88).Store(destination + (16 * 8));
            Avx512F.Shuffle4x128(s1, s3, 0xDD).Store(destination + (16 * 12));
        }

        /// <summary>The 8×8 tile of 32-bit words whose row i starts at <paramref name="source"/> + i·<paramref name="stride"/>, transposed into 8 consecutive rows of 8 at <paramref name="destination"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Transpose8(uint* source, int stride, uint* destination)
        {
            // As Quads: rows 0–3 into a0 .. d0, rows 4–7 into a1 .. d1; output row 4L + j is lane L of the j-th of each.
            var (a0, b0, c0, d0) = Quads8(source, stride);
            var (a1, b1, c1, d1) = Quads8(source + (4L * stride), stride);
            Avx2.Permute2x128(a0, a1, 0x20).Store(destination);
            Avx2.Permute2x128(b0, b1, 0x20).Store(destination + 8);
            Avx2.Permute2x128(c0, c1, 0x20).Store(destination + 16);
            Avx2.Permute2x128(d0, d1, 0x20).Store(destination + 24);
            Avx2.Permute2x128(a0, a1, 0x31).Store(destination + 32);
            Avx2.Permute2x128(b0, b1, 0x31).Store(destination + 40);
            Avx2.Permute2x128(c0, c1, 0x31).Store(destination + 48);
            Avx2.Permute2x128(d0, d1, 0x31).Store(destination + 56);
        }

        /// <summary><see cref="Quads"/> for rows of 8 words (two 128-bit lanes).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static (Vector256<uint>, Vector256<uint>, Vector256<uint>, Vector256<uint>) Quads8(uint* source, int stride)
        {
            var r0 = Vector256.Load(source);
            var r1 = Vector256.Load(source + stride);
            var r2 = Vector256.Load(source + (2L * stride));
            var r3 = Vector256.Load(source + (3L * stride));
            var t0 = Avx2.UnpackLow(r0, r1).AsUInt64();
            var t1 = Avx2.UnpackHigh(r0, r1).AsUInt64();
            var t2 = Avx2.UnpackLow(r2, r3).AsUInt64();
            var t3 = Avx2.UnpackHigh(r2, r3).AsUInt64();
            return (Avx2.UnpackLow(t0, t2).AsUInt32(), Avx2.UnpackHigh(t0, t2).AsUInt32(), Avx2.UnpackLow(t1, t3).AsUInt32(), Avx2.UnpackHigh(t1, t3).AsUInt32());
        }
    }
}
