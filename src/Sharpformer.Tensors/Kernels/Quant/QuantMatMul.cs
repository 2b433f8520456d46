using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Kernels.Quant;

/// <summary>
/// y [N, Out] = x [N, In] · Wᵀ + bias over a block-quantized W [Out, In], for decode (N small) and prefill alike, as
/// llama.cpp's CPU backend does it: each row of x is first quantized to 8 bits per value (Q8_0 blocks of 32 for Q8_0
/// and Q4_0 weights, Q8_K blocks of 256 with 16-value partial sums for Q4_K and Q6_K), then every output is a sum over
/// blocks of integer dot products times the two blocks' scales. Weight codes are decoded in registers (nibbles
/// unpacked, high bits merged) and never widened to F32 in memory. Output rows are split into chunks that idle threads
/// claim (<see cref="ParallelFor"/>). Three SIMD forms share the reference's exact integer block sums: one token at a
/// time (decode: each weight row streamed once, prefetched ahead; QuantMatMul.Decode.cs); 2 weight rows × 4 tokens in registers without
/// the token lanes (QuantMatMul.Tiled.cs); and 4 weight rows × 8 tokens held in the lanes of a vector, with AVX-VNNI
/// or AVX-512BW (QuantMatMul.Lanes.cs, or QuantMatMul.ByteLanes.cs without AVX-VNNI, for Q8_0/Q4_0;
/// QuantMatMul.KLanes.cs for Q4_K/Q6_K). AVX2 (VPMADDUBSW + VPMADDWD), with AVX-VNNI's VPDPBUSD / VPDPWSSD where the
/// CPU has them (.NET 10 exposes no 512-bit VPDPBUSD short of AVX10.2); <see cref="MultiplyReference"/> is the scalar
/// reference and the path without AVX2.
/// </summary>
public static unsafe partial class QuantMatMul
{
    /// <summary>Weight bytes per parallel chunk (about 64 KiB of blocks).</summary>
    private const int ChunkBytes = 1 << 16;

    /// <summary>
    /// How far ahead the decode kernels prefetch weight bytes (one prefetch per 64 bytes of blocks), as the bandwidth
    /// probe of bench decode reads: batch-1 decoding streams each weight once and is bound by the read bandwidth.
    /// </summary>
    private const int PrefetchBytes = 4096;

    /// <summary>F16 bits → F32 for every bits pattern: the block scales' decoding (ggml without F16C does the same).</summary>
    private static readonly float[] HalfTable = BuildHalfTable();

    /// <summary>y [N, Out] = x [N, In] · Wᵀ + bias (+ y when <paramref name="accumulate"/>).</summary>
    /// <param name="x">[N, In] row-major.</param>
    /// <param name="rows">N ≥ 1.</param>
    /// <param name="w">W [Out, In].</param>
    /// <param name="bias">[Out], or empty for none.</param>
    /// <param name="y">[N, Out] row-major.</param>
    /// <param name="accumulate">Add to y (a fused residual add) instead of overwriting it.</param>
    /// <exception cref="ArgumentException">A span is shorter than its shape needs.</exception>
    public static void Multiply(ReadOnlySpan<float> x, int rows, QuantizedMatrix w, ReadOnlySpan<float> bias, Span<float> y, bool accumulate = false) =>
        Run(x, rows, w, bias, y, accumulate, Avx2.IsSupported);

    /// <summary>The scalar reference of <see cref="Multiply(ReadOnlySpan{float}, int, QuantizedMatrix, ReadOnlySpan{float}, Span{float}, bool)"/>: the same activation quantization and integer block sums, one value at a time.</summary>
    /// <param name="x">[N, In] row-major.</param>
    /// <param name="rows">N ≥ 1.</param>
    /// <param name="w">W [Out, In].</param>
    /// <param name="bias">[Out], or empty for none.</param>
    /// <param name="y">[N, Out] row-major.</param>
    /// <param name="accumulate">Add to y instead of overwriting it.</param>
    /// <exception cref="ArgumentException">A span is shorter than its shape needs.</exception>
    public static void MultiplyReference(ReadOnlySpan<float> x, int rows, QuantizedMatrix w, ReadOnlySpan<float> bias, Span<float> y, bool accumulate = false) =>
        Run(x, rows, w, bias, y, accumulate, simd: false);

    /// <summary>The 8-bit activations for <paramref name="type"/> weights as the kernels make them (for tests): codes, scales and code sums.</summary>
    internal static (sbyte[] Codes, float[] Scales, short[] Sums) QuantizeActivations(QuantType type, ReadOnlySpan<float> x, int rows, int n, bool simd)
    {
        var activations = Activations.Rent(type, rows, n);
        try
        {
            activations.Quantize(x, rows, n, simd && Avx2.IsSupported);
            var block = activations.SuperBlocks ? 256 : 32;
            var sums = activations.SuperBlocks ? 16 : 32;
            return (activations.Codes[..(rows * n)], activations.Scales[..(rows * n / block)], activations.Sums[..(rows * n / sums)]);
        }
        finally
        {
            activations.Return();
        }
    }

    private static void Run(ReadOnlySpan<float> x, int rows, QuantizedMatrix w, ReadOnlySpan<float> bias, Span<float> y, bool accumulate, bool simd)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        int n = w.Columns, outs = w.Rows;
        if (x.Length < (long)rows * n || y.Length < (long)rows * outs || (!bias.IsEmpty && bias.Length < outs))
        {
            throw new ArgumentException(
                $"QuantMatMul: x [N={rows}, In={n}] has {x.Length} values, y [N, Out={outs}] {y.Length}, bias [Out] {bias.Length}; one is too short.", nameof(x));
        }

        var activations = Activations.Rent(w.Type, rows, n);
        var groups = LaneGroups(rows, simd);
        try
        {
            QuantizeFor(activations, w.Type, x, rows, n, groups, simd);
            fixed (byte* pw = w.Blocks)
            fixed (sbyte* pq = activations.Codes, pl = activations.Lanes)
            fixed (float* pd = activations.Scales, pls = activations.LaneScales, pb = bias, py = y)
            fixed (short* ps = activations.Sums, plsum = activations.LaneSums)
            fixed (int* pli = activations.LaneStarts)
            {
                var job = new Job(
                    w.Type, (nint)pw, w.RowBytes, n, outs, rows, (nint)pq, (nint)pd, (nint)ps, bias.IsEmpty ? 0 : (nint)pb, (nint)py, accumulate, simd,
                    groups, (nint)(pl + activations.LaneOffset), (nint)pls, (nint)pli, (nint)plsum);
                // One token: the kernel's activation setup made once here, not per chunk; long sequential chunks
                // (DecodeGrain), each thread taking a contiguous share of them (ParallelFor.ForShares). More: whole
                // tiles of four rows per chunk (the lane kernel's), about ChunkBytes of blocks each.
                var prepared = rows == 1 ? DecodePreparedBytes(job) : 0;
                var buffer = stackalloc byte[prepared];
                job = WithPrepared(job, prepared, buffer);

                if (rows == 1)
                {
                    ParallelFor.ForShares(outs, DecodeGrain(outs, w.RowBytes), (start, end) => RowsOf(job, start, end));
                }
                else
                {
                    var grain = Math.Max(LaneRowsPerTile, ChunkBytes / w.RowBytes / LaneRowsPerTile * LaneRowsPerTile);
                    ParallelFor.For(outs, grain, (start, end) => RowsOf(job, start, end));
                }
            }
        }
        finally
        {
            activations.Return();
        }
    }

    /// <summary>
    /// Groups of eight tokens for the token-lane kernels (QuantMatMul.Lanes.cs, QuantMatMul.KLanes.cs,
    /// QuantMatMul.ByteLanes.cs), else 0: eight or more tokens with AVX-VNNI or
    /// AVX-512BW (whose kernels need no VPDPBUSD: AMD Zen 4 and Intel's AVX-512 CPUs before Sapphire Rapids have
    /// AVX512-VNNI, which .NET 10 does not expose, but no AVX-VNNI).
    /// </summary>
    private static int LaneGroups(int rows, bool simd) => simd && (AvxVnni.IsSupported || KLanesWide) ? rows / LaneTokens : 0;

    /// <summary>Quantizes x [N, In] into <paramref name="activations"/> for <paramref name="type"/> weights, in the form the kernels for <paramref name="groups"/> read.</summary>
    private static void QuantizeFor(Activations activations, QuantType type, ReadOnlySpan<float> x, int rows, int n, int groups, bool simd)
    {
        if (groups > 0)
        {
            // Quantized and interleaved in one parallel pass (QuantMatMul.LaneActivations.cs). The 512-bit K-quant
            // tier reads pairs of groups 16 tokens wide (QuantMatMul.KLanesWide.cs).
            var superBlocks = type is QuantType.Q4_K or QuantType.Q6_K;
            activations.QuantizeInterleaved(x, rows, n, groups, type == QuantType.Q8_0 ? 128 : 8, superBlocks ? KLanesWide : ByteLanes);
        }
        else
        {
            activations.Quantize(x, rows, n, simd && Avx2.IsSupported);
        }
    }

    private static void RowsOf(in Job job, int start, int end)
    {
        var o = start;
        if (job.LaneGroups > 0)
        {
            // Prefill and batched decode (AVX-VNNI or AVX-512BW): four weight rows × eight tokens in the lanes of a vector.
            o = job.Type is QuantType.Q4_K or QuantType.Q6_K ? KLaneRows(job, start, end) : ByteLanes ? ByteLaneRows(job, start, end) : LaneRows(job, start, end);
        }

        if (job.Simd && job.Rows == 1)
        {
            // Decode: one token against each row (QuantMatMul.Decode.cs).
            o = DecodeRows(job, o, end);
        }

        if (job.Simd && job.Rows >= TileTokens)
        {
            // Prefill and batched decode: tiles of two weight rows × four tokens, each weight block decoded once per tile.
            o = TiledRows(job, o, end);
        }

        for (; o < end; o++)
        {
            var wRow = (byte*)job.W + ((long)o * job.RowBytes);
            for (var r = 0; r < job.Rows; r++)
            {
                Store(job, o, r, Dot(job, wRow, r));
            }
        }
    }

    /// <summary>y[r, o] = s + bias[o] (+ y[r, o] when accumulating).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(in Job job, int o, int r, float s)
    {
        s += job.Bias == 0 ? 0f : ((float*)job.Bias)[o];
        var dst = (float*)job.Y + ((long)r * job.Out) + o;
        *dst = job.Accumulate ? *dst + s : s;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot(in Job job, byte* wRow, int r)
    {
        var q = (sbyte*)job.Codes + ((long)r * job.In);
        switch (job.Type)
        {
            case QuantType.Q8_0:
                {
                    var d = (float*)job.Scales + ((long)r * job.In / 32);
                    return job.Simd ? DotQ8_0Avx2(wRow, q, d, job.In / 32) : DotQ8_0(wRow, q, d, job.In / 32);
                }

            case QuantType.Q4_0:
                {
                    var d = (float*)job.Scales + ((long)r * job.In / 32);
                    return job.Simd ? DotQ4_0Avx2(wRow, q, d, job.In / 32) : DotQ4_0(wRow, q, d, job.In / 32);
                }

            case QuantType.Q4_K:
                {
                    var d = (float*)job.Scales + ((long)r * job.In / 256);
                    var sums = (short*)job.Sums + ((long)r * job.In / 16);
                    return job.Simd ? DotQ4_KAvx2(wRow, q, d, sums, job.In / 256) : DotQ4_K(wRow, q, d, sums, job.In / 256);
                }

            default:
                {
                    var d = (float*)job.Scales + ((long)r * job.In / 256);
                    var sums = (short*)job.Sums + ((long)r * job.In / 16);
                    return job.Simd ? DotQ6_KAvx2(wRow, q, d, sums, job.In / 256) : DotQ6_K(wRow, q, d, sums, job.In / 256);
                }
        }
    }

    // ---- Scalar references ------------------------------------------------------------------------------------------

    /// <summary>Σ_b d_w·d_x·Σ_i w_i·x_i over Q8_0 weight blocks and Q8_0 activation blocks.</summary>
    private static float DotQ8_0(byte* w, sbyte* x, float* xd, int blocks)
    {
        var sum = 0f;
        for (var b = 0; b < blocks; b++, w += 34, x += 32)
        {
            var isum = 0;
            for (var i = 0; i < 32; i++)
            {
                isum += ((sbyte*)(w + 2))[i] * x[i];
            }

            sum += isum * (Half16(w) * xd[b]);
        }

        return sum;
    }

    /// <summary>Σ_b d_w·d_x·Σ_i (q_i − 8)·x_i over Q4_0 weight blocks and Q8_0 activation blocks.</summary>
    private static float DotQ4_0(byte* w, sbyte* x, float* xd, int blocks)
    {
        var sum = 0f;
        for (var b = 0; b < blocks; b++, w += 18, x += 32)
        {
            var isum = 0;
            for (var i = 0; i < 16; i++)
            {
                isum += (((w[2 + i] & 0xF) - 8) * x[i]) + (((w[2 + i] >> 4) - 8) * x[i + 16]);
            }

            sum += isum * (Half16(w) * xd[b]);
        }

        return sum;
    }

    /// <summary>Σ over super-blocks of d·d_x·Σ_j s_j·Σ q·x − dmin·d_x·Σ_j m_j·Σ x (the last from the activation's 16-value sums).</summary>
    private static float DotQ4_K(byte* w, sbyte* x, float* xd, short* sums, int blocks)
    {
        var total = 0f;
        var packed = stackalloc byte[12];
        for (var b = 0; b < blocks; b++, w += 144, x += 256, sums += 16)
        {
            new ReadOnlySpan<byte>(w + Q4_K.ScalesOffset, 12).CopyTo(new Span<byte>(packed, 12));
            int sumi = 0, summ = 0;
            for (var j = 0; j < 8; j++)
            {
                var (sc, m) = Q4_K.ScaleMin(new ReadOnlySpan<byte>(packed, 12), j);
                var qs = w + Q4_K.CodesOffset + (32 * (j / 2));
                var shift = j % 2 == 0 ? 0 : 4;
                var isum = 0;
                for (var i = 0; i < 32; i++)
                {
                    isum += ((qs[i] >> shift) & 0xF) * x[(32 * j) + i];
                }

                sumi += sc * isum;
                summ += m * (sums[2 * j] + sums[(2 * j) + 1]);
            }

            total += (Half16(w) * xd[b] * sumi) - (Half16(w + 2) * xd[b] * summ);
        }

        return total;
    }

    /// <summary>Σ over super-blocks of d·d_x·Σ_g s_g·Σ (q − 32)·x.</summary>
    private static float DotQ6_K(byte* w, sbyte* x, float* xd, short* sums, int blocks)
    {
        var total = 0f;
        for (var b = 0; b < blocks; b++, w += 210, x += 256)
        {
            var block = new ReadOnlySpan<byte>(w, 210);
            var sumi = 0;
            for (var g = 0; g < 16; g++)
            {
                var isum = 0;
                for (var i = 0; i < 16; i++)
                {
                    isum += (Q6_K.Code(block, (16 * g) + i) - 32) * x[(16 * g) + i];
                }

                sumi += (sbyte)w[Q6_K.ScalesOffset + g] * isum;
            }

            total += Half16(w + Q6_K.DOffset) * xd[b] * sumi;
        }

        return total;
    }

    // ---- AVX2 / AVX-VNNI --------------------------------------------------------------------------------------------

    /// <summary>Σ_i |w_i|·sign(w_i)·x_i for 32 signed bytes, as eight int32 partial sums (VPDPBUSD, or VPMADDUBSW + VPMADDWD).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> SignedDot(Vector256<sbyte> w, Vector256<sbyte> x) =>
        AddBytes(Vector256<int>.Zero, Avx2.Abs(w), Avx2.Sign(x, w));

    private static float DotQ8_0Avx2(byte* w, sbyte* x, float* xd, int blocks)
    {
        var acc = Vector256<float>.Zero;
        for (var b = 0; b < blocks; b++, w += 34, x += 32)
        {
            Sse.Prefetch0(w + PrefetchBytes);
            var dot = SignedDot(Vector256.Load((sbyte*)(w + 2)), Vector256.Load(x));
            acc = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(dot), Vector256.Create(Half16(w) * xd[b]), acc);
        }

        return Vector256.Sum(acc);
    }

    private static float DotQ4_0Avx2(byte* w, sbyte* x, float* xd, int blocks)
    {
        var acc = Vector256<float>.Zero;
        var low = Vector128.Create((byte)0x0F);
        var eight = Vector256.Create((sbyte)8);
        for (var b = 0; b < blocks; b++, w += 18, x += 32)
        {
            Sse.Prefetch0(w + PrefetchBytes);
            var raw = Vector128.Load(w + 2);
            var codes = Vector256.Create(raw & low, Vector128.ShiftRightLogical(raw, 4) & low).AsSByte() - eight;
            var dot = SignedDot(codes, Vector256.Load(x));
            acc = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(dot), Vector256.Create(Half16(w) * xd[b]), acc);
        }

        return Vector256.Sum(acc);
    }

    private static float DotQ4_KAvx2(byte* w, sbyte* x, float* xd, short* sums, int blocks)
    {
        var acc = Vector256<float>.Zero;
        var low = Vector256.Create((byte)0x0F);
        var scales = stackalloc short[8];
        for (var b = 0; b < blocks; b++, w += 144, x += 256, sums += 16)
        {
            Sse.Prefetch0(w + PrefetchBytes);
            Sse.Prefetch0(w + PrefetchBytes + 64);
            Sse.Prefetch0(w + PrefetchBytes + 128);
            var mins = UnpackQ4_KScales(w + Q4_K.ScalesOffset, scales);
            var isum = Vector256<int>.Zero;
            for (var c = 0; c < 4; c++)
            {
                var raw = Vector256.Load(w + Q4_K.CodesOffset + (32 * c));
                var p0 = Avx2.MultiplyAddAdjacent(raw & low, Vector256.Load(x + (64 * c)));
                var p1 = Avx2.MultiplyAddAdjacent(Vector256.ShiftRightLogical(raw.AsUInt16(), 4).AsByte() & low, Vector256.Load(x + (64 * c) + 32));
                isum = AddScaled(AddScaled(isum, p0, Vector256.Create(scales[2 * c])), p1, Vector256.Create(scales[(2 * c) + 1]));
            }

            acc += FinishQ4_K(isum, Vector256.Load(sums), mins, Half16(w) * xd[b], -Half16(w + 2) * xd[b]);
        }

        return Vector256.Sum(acc);
    }

    private static float DotQ6_KAvx2(byte* w, sbyte* x, float* xd, short* sums, int blocks)
    {
        var acc = Vector256<float>.Zero;
        for (var b = 0; b < blocks; b++, w += 210, x += 256, sums += 16)
        {
            Sse.Prefetch0(w + PrefetchBytes);
            Sse.Prefetch0(w + PrefetchBytes + 64);
            Sse.Prefetch0(w + PrefetchBytes + 128);
            var sc = (sbyte*)(w + Q6_K.ScalesOffset);
            var isum = Vector256<int>.Zero;
            for (var h = 0; h < 2; h++)
            {
                var xh = x + (128 * h);
                var g = sc + (8 * h);
                isum = AddScaled(isum, Avx2.MultiplyAddAdjacent(Q6Codes(w, h, 0), Vector256.Load(xh)), GroupScales(g[0], g[1]));
                isum = AddScaled(isum, Avx2.MultiplyAddAdjacent(Q6Codes(w, h, 1), Vector256.Load(xh + 32)), GroupScales(g[2], g[3]));
                isum = AddScaled(isum, Avx2.MultiplyAddAdjacent(Q6Codes(w, h, 2), Vector256.Load(xh + 64)), GroupScales(g[4], g[5]));
                isum = AddScaled(isum, Avx2.MultiplyAddAdjacent(Q6Codes(w, h, 3), Vector256.Load(xh + 96)), GroupScales(g[6], g[7]));
            }

            acc += FinishQ6_K(isum, Vector256.Load(sums), Avx2.ConvertToVector256Int16(Vector128.Load(sc)), Half16(w + Q6_K.DOffset) * xd[b]);
        }

        return Vector256.Sum(acc);
    }

    /// <summary>Sixteen int16 lanes: the first group's scale in lanes 0–7, the second's in 8–15 (matching VPMADDUBSW's pairs of 16 bytes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> GroupScales(sbyte first, sbyte second) =>
        Vector256.Create(Vector128.Create((short)first), Vector128.Create((short)second));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Half16(byte* p) => HalfTable[*(ushort*)p];

    private static float[] BuildHalfTable()
    {
        var table = new float[65536];
        for (var i = 0; i < table.Length; i++)
        {
            table[i] = (float)BitConverter.UInt16BitsToHalf((ushort)i);
        }

        return table;
    }

    private readonly record struct Job(
        QuantType Type, nint W, int RowBytes, int In, int Out, int Rows, nint Codes, nint Scales, nint Sums, nint Bias, nint Y, bool Accumulate, bool Simd,
        int LaneGroups, nint Lanes, nint LaneScales, nint LaneStarts, nint LaneSums)
    {
        /// <summary>The batch-1 kernel's activation-side setup, made once per call by <see cref="PrepareDecode"/>, or 0 for none.</summary>
        public nint Prepared { get; init; }
    }

    /// <summary>
    /// The 8-bit activations: codes [N, In], scales (one per 32 values for Q8_0, per 256 for Q8_K) and the sums of the
    /// codes (each 32 for Q8_0, the tiles' zero-point corrections; each 16 for Q8_K). Rented from the shared pools for one call.
    /// </summary>
    private sealed partial class Activations
    {
        private Activations(QuantType type, sbyte[] codes, float[] scales, short[] sums)
        {
            Type = type;
            SuperBlocks = type is QuantType.Q4_K or QuantType.Q6_K;
            Codes = codes;
            Scales = scales;
            Sums = sums;
        }

        /// <summary>The weight type these activations are quantized for.</summary>
        public QuantType Type { get; }

        public bool SuperBlocks { get; }

        public sbyte[] Codes { get; }

        public float[] Scales { get; }

        public short[] Sums { get; }

        /// <summary>Codes of each group of eight tokens with the tokens in the lanes (see <see cref="Interleave"/>), or empty.</summary>
        public sbyte[] Lanes { get; private set; } = [];

        /// <summary>
        /// Where the lane codes start in <see cref="Lanes"/>: the first element on a 64-byte boundary when the array was
        /// rented (the kernels load them in 512-bit rows; a rented array is only 8-byte aligned, and rows across two
        /// cache lines made whole processes slower). Every reader and writer adds it, so the layout stays right if the
        /// array moves; only the alignment is then lost.
        /// </summary>
        public int LaneOffset { get; private set; }

        /// <summary>[group, block, 8] the eight tokens' block scales, or empty.</summary>
        public float[] LaneScales { get; private set; } = [];

        /// <summary>[group, block, 8] each token's zero-point correction −offset·Σ codes, the start of its integer block sum, or empty (Q8_0/Q4_0).</summary>
        public int[] LaneStarts { get; private set; } = [];

        /// <summary>
        /// [group, super-block, pair, 8 tokens, 2] the tokens' code sums in pairs for VPDPWSSD, or empty (K-quants): the
        /// sums of 32 (sub-blocks 2i, 2i + 1; four pairs) for Q4_K's mins, of 16 (groups 2i, 2i + 1; eight pairs) for Q6_K's scales.
        /// </summary>
        public short[] LaneSums { get; private set; } = [];

        public static Activations Rent(QuantType type, int rows, int n)
        {
            var super = type is QuantType.Q4_K or QuantType.Q6_K;
            var values = rows * n;
            return new Activations(
                type,
                ArrayPool<sbyte>.Shared.Rent(values),
                ArrayPool<float>.Shared.Rent(values / 32),
                ArrayPool<short>.Shared.Rent(super ? values / 16 : values / 32));
        }

        /// <summary>Rents <see cref="Lanes"/> for <paramref name="values"/> codes and 64 bytes more, and sets <see cref="LaneOffset"/>.</summary>
        public void RentLanes(int values)
        {
            Lanes = ArrayPool<sbyte>.Shared.Rent(values + 64);
            fixed (sbyte* p = Lanes)
            {
                LaneOffset = (int)((64 - ((nint)p & 63)) & 63);
            }
        }

        public void Return()
        {
            ArrayPool<sbyte>.Shared.Return(Codes);
            ArrayPool<float>.Shared.Return(Scales);
            ArrayPool<short>.Shared.Return(Sums);
            if (Lanes.Length > 0)
            {
                ArrayPool<sbyte>.Shared.Return(Lanes);
                ArrayPool<float>.Shared.Return(LaneScales);
            }

            if (LaneStarts.Length > 0)
            {
                ArrayPool<int>.Shared.Return(LaneStarts);
            }

            if (LaneSums.Length > 0)
            {
                ArrayPool<short>.Shared.Return(LaneSums);
            }
        }

        /// <summary>
        /// The codes of the first 8·<paramref name="groups"/> tokens rearranged for the token-lane kernels: per group and
        /// block of 32, eight 32-byte rows k = 0..7 whose lane t holds token t's codes 4k .. 4k + 3 (what VPDPBUSD sums
        /// against one broadcast group of four weight bytes); the scales likewise (per block of 32 for Q8_0, per
        /// super-block for Q8_K). Q8_0 activations also get −<paramref name="offset"/>·Σ codes per block, Q8_K ones
        /// their code sums in pairs (<see cref="LaneSums"/>). With <paramref name="pairs"/>, groups 2p and 2p + 1 (all but
        /// an odd last group) share their space 16 tokens wide instead: per block of 32, eight 64-byte rows whose lane
        /// 8h + t holds token t of group 2p + h (one 512-bit load per row for the 512-bit K-quant tier).
        /// </summary>
        public void Interleave(int groups, int n, int offset, bool pairs)
        {
            var blocks = n / 32;
            RentLanes(groups * LaneTokens * n);
            var codes = MemoryMarshal.Cast<sbyte, uint>(Codes.AsSpan(0, groups * LaneTokens * n));
            var lanes = MemoryMarshal.Cast<sbyte, uint>(Lanes.AsSpan(LaneOffset, groups * LaneTokens * n));
            var paired = pairs ? groups / 2 * 2 : 0;
            for (var g = 0; g < groups; g++)
            {
                // Lane width and first lane of group g: 16 and 8·(g mod 2) within its pair's rows, else 8 and 0.
                var width = g < paired ? 2 * LaneTokens : LaneTokens;
                var lane = g < paired ? (g % 2) * LaneTokens : 0;
                var start = (g < paired ? g / 2 * 2 : g) * blocks * 8 * LaneTokens;
                for (var t = 0; t < LaneTokens; t++)
                {
                    var row = (g * LaneTokens) + t;
                    for (var b = 0; b < blocks; b++)
                    {
                        for (var k = 0; k < 8; k++)
                        {
                            lanes[start + ((((b * 8) + k) * width) + lane + t)] = codes[(row * n / 4) + (8 * b) + k];
                        }
                    }
                }
            }

            if (SuperBlocks)
            {
                InterleaveSuperBlocks(groups, n);
                return;
            }

            LaneScales = ArrayPool<float>.Shared.Rent(groups * blocks * LaneTokens);
            LaneStarts = ArrayPool<int>.Shared.Rent(groups * blocks * LaneTokens);
            for (var g = 0; g < groups; g++)
            {
                for (var t = 0; t < LaneTokens; t++)
                {
                    var row = (g * LaneTokens) + t;
                    for (var b = 0; b < blocks; b++)
                    {
                        var at = (g * blocks) + b;
                        LaneScales[(at * LaneTokens) + t] = Scales[(row * blocks) + b];
                        LaneStarts[(at * LaneTokens) + t] = -offset * Sums[(row * blocks) + b];
                    }
                }
            }
        }

        /// <summary>The Q8_K scales per super-block and token, and the code sums in pairs (32-value sums for Q4_K, 16-value for Q6_K).</summary>
        private void InterleaveSuperBlocks(int groups, int n)
        {
            var blocks = n / 256;
            var pairs = Type == QuantType.Q4_K ? 4 : 8;
            LaneScales = ArrayPool<float>.Shared.Rent(groups * blocks * LaneTokens);
            LaneSums = ArrayPool<short>.Shared.Rent(groups * blocks * pairs * LaneTokens * 2);
            for (var g = 0; g < groups; g++)
            {
                for (var t = 0; t < LaneTokens; t++)
                {
                    var row = (g * LaneTokens) + t;
                    for (var b = 0; b < blocks; b++)
                    {
                        var at = (g * blocks) + b;
                        LaneScales[(at * LaneTokens) + t] = Scales[(row * blocks) + b];
                        var sums = Sums.AsSpan((row * n / 16) + (16 * b), 16);
                        for (var i = 0; i < pairs; i++)
                        {
                            var dst = (((((at * pairs) + i) * LaneTokens) + t) * 2);
                            if (pairs == 4)
                            {
                                // Q4_K: sub-block j's sum of 32 is the sum of its two 16-value sums.
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
            }
        }

        /// <summary>
        /// Quantizes the rows of x (the reference one value at a time; with <paramref name="simd"/> eight at a time, the
        /// same codes and scales, and the rows split between threads when there are many values).
        /// </summary>
        public void Quantize(ReadOnlySpan<float> x, int rows, int n, bool simd)
        {
            if (!simd)
            {
                for (var r = 0; r < rows; r++)
                {
                    QuantizeRow(x.Slice(r * n, n), r, n);
                }

                return;
            }

            fixed (float* px = x)
            {
                var source = (nint)px;
                // About 16 K values per chunk: a 2048-wide prefill row is eight chunks of two rows; decode stays on one thread.
                ParallelFor.For(rows, Math.Max(1, (1 << 14) / n), (start, end) =>
                {
                    for (var r = start; r < end; r++)
                    {
                        QuantizeRowSimd((float*)source + ((long)r * n), r, n);
                    }
                });
            }
        }

        private void QuantizeRow(ReadOnlySpan<float> row, int r, int n)
        {
            var codes = Codes.AsSpan(r * n, n);
            if (SuperBlocks)
            {
                for (var b = 0; b < n / 256; b++)
                {
                    Scales[(r * n / 256) + b] = QuantizeQ8K(row.Slice(256 * b, 256), codes.Slice(256 * b, 256), Sums.AsSpan((r * n / 16) + (16 * b), 16));
                }

                return;
            }

            for (var b = 0; b < n / 32; b++)
            {
                Scales[(r * n / 32) + b] = QuantizeQ8_0(row.Slice(32 * b, 32), codes.Slice(32 * b, 32));
                var sum = 0;
                foreach (var q in codes.Slice(32 * b, 32))
                {
                    sum += q;
                }

                Sums[(r * n / 32) + b] = (short)sum;
            }
        }

        private void QuantizeRowSimd(float* row, int r, int n)
        {
            fixed (sbyte* codes = &Codes[r * n])
            fixed (float* scales = Scales)
            fixed (short* sums = Sums)
            {
                if (SuperBlocks)
                {
                    for (var b = 0; b < n / 256; b++)
                    {
                        scales[(r * n / 256) + b] = QuantizeQ8KSimd(row + (256 * b), codes + (256 * b), sums + (r * n / 16) + (16 * b));
                    }

                    return;
                }

                for (var b = 0; b < n / 32; b++)
                {
                    scales[(r * n / 32) + b] = QuantizeQ8_0Simd(row + (32 * b), codes + (32 * b), out sums[(r * n / 32) + b]);
                }
            }
        }

        /// <summary><see cref="QuantizeQ8_0"/> eight values at a time (the same codes: round to nearest, ties to even), and the block's code sum.</summary>
        private static float QuantizeQ8_0Simd(float* x, sbyte* q, out short sum)
        {
            var v0 = Vector256.Load(x);
            var v1 = Vector256.Load(x + 8);
            var v2 = Vector256.Load(x + 16);
            var v3 = Vector256.Load(x + 24);
            var amax = MaxOf(Vector256.Max(Vector256.Max(Vector256.Abs(v0), Vector256.Abs(v1)), Vector256.Max(Vector256.Abs(v2), Vector256.Abs(v3))));
            var d = amax / 127f;
            var id = Vector256.Create(amax != 0f ? 127f / amax : 0f);
            var i0 = Vector256.ConvertToInt32(Vector256.Round(v0 * id));
            var i1 = Vector256.ConvertToInt32(Vector256.Round(v1 * id));
            var i2 = Vector256.ConvertToInt32(Vector256.Round(v2 * id));
            var i3 = Vector256.ConvertToInt32(Vector256.Round(v3 * id));
            Vector256.Narrow(Vector256.Narrow(i0, i1), Vector256.Narrow(i2, i3)).Store(q);
            sum = (short)Vector256.Sum(i0 + i1 + i2 + i3);
            return (float)(Half)d;
        }

        /// <summary><see cref="QuantizeQ8K"/> eight values at a time: the same value of largest magnitude (the first), codes and 16-value sums.</summary>
        private static float QuantizeQ8KSimd(float* x, sbyte* q, short* sums)
        {
            if (Avx512F.IsSupported && Vector512.IsHardwareAccelerated)
            {
                return QuantizeQ8KWide(x, q, sums);
            }

            var m = Vector256<float>.Zero;
            for (var i = 0; i < 256; i += 8)
            {
                m = Vector256.Max(m, Vector256.Abs(Vector256.Load(x + i)));
            }

            var amax = MaxOf(m);
            if (amax == 0f)
            {
                new Span<sbyte>(q, 256).Clear();
                new Span<short>(sums, 16).Clear();
                return 0f;
            }

            var iscale = -127f / FirstOfMagnitude(x, amax);
            var scale = Vector256.Create(iscale);
            var top = Vector256.Create(127);
            for (var g = 0; g < 16; g++)
            {
                var lo = Vector256.Min(top, Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(x + (16 * g)) * scale)));
                var hi = Vector256.Min(top, Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(x + (16 * g) + 8) * scale)));
                var narrow = Vector256.Narrow(lo, hi);
                Vector128.Narrow(narrow.GetLower(), narrow.GetUpper()).Store(q + (16 * g));
                sums[g] = (short)Vector256.Sum(lo + hi);
            }

            return 1 / iscale;
        }

        /// <summary><see cref="QuantizeQ8K"/> sixteen values (one 16-value group) at a time with AVX-512: the same value of largest magnitude (the first), codes and 16-value sums.</summary>
        private static float QuantizeQ8KWide(float* x, sbyte* q, short* sums)
        {
            var m = Vector512<float>.Zero;
            for (var i = 0; i < 256; i += 16)
            {
                m = Vector512.Max(m, Vector512.Abs(Vector512.Load(x + i)));
            }

            var amax = MaxOf(Vector256.Max(m.GetLower(), m.GetUpper()));
            if (amax == 0f)
            {
                new Span<sbyte>(q, 256).Clear();
                new Span<short>(sums, 16).Clear();
                return 0f;
            }

            var iscale = -127f / FirstOfMagnitude(x, amax);
            var scale = Vector512.Create(iscale);
            var top = Vector512.Create(127);
            for (var g = 0; g < 16; g++)
            {
                // Codes lie in [−127, 127]: VPMOVDB's truncation to bytes keeps them.
                var codes = Vector512.Min(top, Vector512.ConvertToInt32(Vector512.Round(Vector512.Load(x + (16 * g)) * scale)));
                Avx512F.ConvertToVector128SByte(codes).Store(q + (16 * g));
                sums[g] = (short)Vector512.Sum(codes);
            }

            return 1 / iscale;
        }

        /// <summary>
        /// The first of a Q8_K block's 256 values whose magnitude is <paramref name="amax"/> (the block's largest), as the
        /// reference keeps it: the first vector of eight holding it, then its lane.
        /// </summary>
        private static float FirstOfMagnitude(float* x, float amax)
        {
            var target = Vector256.Create(amax);
            for (var j = 0; j < 256; j += 8)
            {
                var hits = Vector256.Equals(Vector256.Abs(Vector256.Load(x + j)), target).ExtractMostSignificantBits();
                if (hits != 0)
                {
                    return x[j + System.Numerics.BitOperations.TrailingZeroCount(hits)];
                }
            }

            return 0f;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static float MaxOf(Vector256<float> v)
        {
            var half = Vector128.Max(v.GetLower(), v.GetUpper());
            var max = half[0];
            for (var i = 1; i < 4; i++)
            {
                max = MathF.Max(max, half[i]);
            }

            return max;
        }

        /// <summary>
        /// A Q8_0 activation block as llama.cpp's x86 CPU backend makes it (quantize_row_q8_0 with AVX): d = max|x|/127,
        /// stored as F16 (so returned rounded), q = x·(127/max|x|) rounded to nearest, ties to even.
        /// </summary>
        private static float QuantizeQ8_0(ReadOnlySpan<float> x, Span<sbyte> q)
        {
            var amax = 0f;
            for (var j = 0; j < 32; j++)
            {
                amax = MathF.Max(amax, MathF.Abs(x[j]));
            }

            var d = amax / 127f;
            var id = amax != 0f ? 127f / amax : 0f;
            for (var j = 0; j < 32; j++)
            {
                q[j] = (sbyte)MathF.Round(x[j] * id, MidpointRounding.ToEven);
            }

            return (float)(Half)d;
        }

        /// <summary>ggml's Q8_K block (quantize_row_q8_K_ref): scale −127/m through the value m of largest magnitude, F32 d, and the 16-value sums.</summary>
        private static float QuantizeQ8K(ReadOnlySpan<float> x, Span<sbyte> q, Span<short> sums)
        {
            var max = 0f;
            var amax = 0f;
            for (var j = 0; j < 256; j++)
            {
                if (MathF.Abs(x[j]) > amax)
                {
                    amax = MathF.Abs(x[j]);
                    max = x[j];
                }
            }

            if (amax == 0f)
            {
                q.Clear();
                sums.Clear();
                return 0f;
            }

            var iscale = -127f / max;
            for (var j = 0; j < 256; j++)
            {
                q[j] = (sbyte)Math.Min(127, QuantTypeInfo.NearestInt(iscale * x[j]));
            }

            for (var g = 0; g < 16; g++)
            {
                var sum = 0;
                for (var i = 0; i < 16; i++)
                {
                    sum += q[(16 * g) + i];
                }

                sums[g] = (short)sum;
            }

            return 1 / iscale;
        }
    }
}
