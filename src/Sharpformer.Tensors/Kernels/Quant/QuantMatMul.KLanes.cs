using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sharpformer.Tensors.Kernels.Quant;

/// <summary>
/// The token-lane path of <see cref="QuantMatMul"/> for the K-quants (Q4_K, Q6_K) times eight or more tokens, with
/// AVX-VNNI or AVX-512BW (whose tier, QuantMatMul.KLanesWide.cs, needs no VPDPBUSD; without AVX-VNNI the 256-bit
/// kernels here, for an odd last group and one group of Q6_K, take VPMADDUBSW + VPMADDWD instead): the Q8_K
/// activations of eight tokens are interleaved as for Q8_0 (lane t of a vector holds token t's codes), and per super-block the codes of four weight rows are unpacked once into a 1 KiB scratch panel in value
/// order (Q4_K nibbles 0–15, Q6_K six-bit codes 0–63, both unsigned), from which VPDPBUSD multiplies one broadcast
/// group of four weight bytes by the eight tokens' four signed codes. Per sub-block (32 values for Q4_K, 16 for Q6_K)
/// the integer sums of the eight tokens are scaled by the row's sub-block scale in one VPMULLD; Q4_K's min term and
/// Q6_K's code offset of 32 come from the tokens' 16-value code sums through VPDPWSSD. The super-block sums are the
/// reference's exact integers; only the float sum over super-blocks is reordered. Two sub-blocks run side by side
/// (eight independent VPDPBUSD chains over four rows).
/// </summary>
public static unsafe partial class QuantMatMul
{
    /// <summary>Token groups whose accumulators one pass over a row tile's super-blocks keeps (16 groups: 2 KiB of floats).</summary>
    private const int KLaneGroupsPerPass = 16;

    /// <summary>
    /// Row tiles unpacked side by side for two or more token groups (16 rows): each group's codes of a super-block are
    /// then read from L2 once and reused from L1 for all of them, instead of once per tile.
    /// </summary>
    private const int KLaneTilesPerPanel = 4;

    /// <summary>
    /// Rows [start, end) in tiles of four over every group of eight tokens (K-quant weights), the tokens past the last
    /// group one at a time; returns the first row not done. Each super-block of the four rows is unpacked once per
    /// pass over up to <see cref="KLaneGroupsPerPass"/> token groups, the groups' sums kept in an L1-resident tile.
    /// With two or more groups, up to <see cref="KLaneTilesPerPanel"/> tiles go together: per super-block all of them
    /// are unpacked, then each group's codes run against every tile while they are in L1.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int KLaneRows(in Job job, int start, int end)
    {
        const int TileFloats = LaneRowsPerTile * LaneTokens;
        // On a 64-byte boundary: the quad kernel adds whole 512-bit rows into its pair tiles, and a row across two
        // cache lines costs two accesses (a stack slot is only 16-byte aligned).
        var tilesRaw = stackalloc float[(KLaneTilesPerPanel * KLaneGroupsPerPass * TileFloats) + 16];
        var tiles = (float*)(((nint)tilesRaw + 63) & ~(nint)63);
        var codes = stackalloc byte[KLaneTilesPerPanel * LaneRowsPerTile * 256];
        var scales = stackalloc int[KLaneTilesPerPanel * LaneRowsPerTile * 16];
        var scalePairs = stackalloc uint[KLaneTilesPerPanel * LaneRowsPerTile * 16];
        var pairs = stackalloc uint[KLaneTilesPerPanel * LaneRowsPerTile * 8];
        var factors = stackalloc float[KLaneTilesPerPanel * 2 * LaneRowsPerTile];
        var panels = stackalloc KPanel[KLaneTilesPerPanel];
        for (var p = 0; p < KLaneTilesPerPanel; p++)
        {
            panels[p] = new KPanel(
                codes + (p * LaneRowsPerTile * 256),
                scales + (p * LaneRowsPerTile * 16),
                scalePairs + (p * LaneRowsPerTile * 16),
                pairs + (p * LaneRowsPerTile * 8),
                factors + (p * 2 * LaneRowsPerTile));
        }

        var wide = KLanesWide;
        // The int16 scale pairs only the 512-bit tier reads, and it only for two or more groups.
        var needPairs = wide && job.LaneGroups >= 2;
        var panelTiles = job.LaneGroups >= 2 ? KLaneTilesPerPanel : 1;
        var groupBytes = (long)LaneTokens * job.In;
        var blocks = job.In / 256;
        var sumVectors = job.Type == QuantType.Q4_K ? 4 : 8;
        var o = start;
        // F16 → F32 of the one-group kernel's block scales, pinned once per range (a static read per block measured
        // ~1.4× slower: the kernel is compiled fully optimized at once, before the class's statics are known).
        fixed (float* halves = HalfTable)
        {
            while (o + LaneRowsPerTile <= end)
            {
                var count = Math.Min(panelTiles, (end - o) / LaneRowsPerTile);
                if (job.LaneGroups == 1 && job.Type == QuantType.Q4_K && KLaneOneWide)
                {
                    // One group (batched decode) with AVX-512 and GFNI: the codes straight from the blocks, no panel
                    // (QuantMatMul.KLanesOne.cs).
                    KLaneTileQ4_KWide((byte*)job.W + ((long)o * job.RowBytes), job.RowBytes, blocks, (sbyte*)job.Lanes, (float*)job.LaneScales, (short*)job.LaneSums, halves, tiles);
                    StoreTile(job, o, 0, tiles);
                }
                else
                {
                    PanelRows(job, o, count, panels, tiles, wide, needPairs, groupBytes, blocks, sumVectors);
                }

                for (var p = 0; p < count; p++, o += LaneRowsPerTile)
                {
                    var w = (byte*)job.W + ((long)o * job.RowBytes);
                    for (var r = job.LaneGroups * LaneTokens; r < job.Rows; r++)
                    {
                        for (var i = 0; i < LaneRowsPerTile; i++)
                        {
                            Store(job, o + i, r, Dot(job, w + ((long)i * job.RowBytes), r));
                        }
                    }
                }
            }
        }

        return o;
    }

    /// <summary>
    /// <paramref name="tileCount"/> row tiles from row <paramref name="o"/> over every group of eight tokens into y,
    /// through the scratch <paramref name="panels"/> and <paramref name="tiles"/> (see <see cref="KLaneRows"/>).
    /// </summary>
    private static void PanelRows(in Job job, int o, int tileCount, KPanel* panels, float* tiles, bool wide, bool needPairs, long groupBytes, int blocks, int sumVectors)
    {
        const int TileFloats = LaneRowsPerTile * LaneTokens;
        var w = (byte*)job.W + ((long)o * job.RowBytes);
        var tileBytes = (long)LaneRowsPerTile * job.RowBytes;
        for (var first = 0; first < job.LaneGroups; first += KLaneGroupsPerPass)
        {
            var count = Math.Min(KLaneGroupsPerPass, job.LaneGroups - first);
            // Tile p of group g at tiles + (p·KLaneGroupsPerPass + g − first)·TileFloats (a pair of groups in quads
            // of Q4_K: one tile [4, 16] over both groups' space).
            for (var p = 0; p < tileCount; p++)
            {
                new Span<float>(tiles + (p * KLaneGroupsPerPass * TileFloats), count * TileFloats).Clear();
            }

            for (var b = 0; b < blocks; b++)
            {
                for (var p = 0; p < tileCount; p++)
                {
                    if (job.Type == QuantType.Q4_K)
                    {
                        UnpackQ4_K(w + (p * tileBytes) + (144L * b), job.RowBytes, panels[p], needPairs);
                    }
                    else
                    {
                        UnpackQ6_K(w + (p * tileBytes) + (210L * b), job.RowBytes, panels[p], needPairs);
                    }
                }

                for (var g = first; g < first + count; g++)
                {
                    // Group g's codes, scales and code sums of super-block b.
                    var lanes = (sbyte*)job.Lanes + ((long)g * groupBytes) + (2048L * b);
                    var dx = (float*)job.LaneScales + ((((long)g * blocks) + b) * LaneTokens);
                    var sums = (short*)job.LaneSums + ((((long)g * blocks) + b) * sumVectors * 16);
                    var tile = tiles + ((g - first) * TileFloats);
                    if (wide && g + 1 < first + count)
                    {
                        if (g == first && b + 1 < blocks)
                        {
                            // The next super-block of the tiles' rows comes in while this one's groups run (QuantMatMul.KLanesWide.cs).
                            PrefetchSuperBlock(w, job.RowBytes, tileCount * LaneRowsPerTile, job.Type == QuantType.Q4_K ? 144 : 210, b + 1);
                        }

                        // Groups g and g + 1 (g even) share 16-wide rows (Activations.Interleave), 4 KiB per super-block.
                        var pair = (sbyte*)job.Lanes + ((long)g * groupBytes) + (4096L * b);
                        var dxStride = (long)blocks * LaneTokens;
                        var sumsStride = (long)blocks * sumVectors * 16;
                        for (var p = 0; p < tileCount; p++)
                        {
                            var at = tile + (p * KLaneGroupsPerPass * TileFloats);
                            if (job.Type == QuantType.Q4_K && g + 3 < first + count)
                            {
                                // Two pairs at once (QuantMatMul.KLanesWide.cs).
                                SuperBlockQ4_KQuad(panels[p], pair, pair + (2 * groupBytes), dx, dxStride, sums, sumsStride, at);
                            }
                            else if (job.Type == QuantType.Q4_K)
                            {
                                SuperBlockQ4_KWide(panels[p], pair, dx, dx + dxStride, sums, sums + sumsStride, at, at + TileFloats);
                            }
                            else
                            {
                                SuperBlockQ6_KWide(panels[p], pair, dx, dx + dxStride, sums, sums + sumsStride, at, at + TileFloats);
                            }
                        }

                        g += job.Type == QuantType.Q4_K && g + 3 < first + count ? 3 : 1;
                        continue;
                    }

                    for (var p = 0; p < tileCount; p++)
                    {
                        var at = tile + (p * KLaneGroupsPerPass * TileFloats);
                        if (job.Type == QuantType.Q4_K)
                        {
                            SuperBlockQ4_K(panels[p], lanes, dx, sums, at);
                        }
                        else
                        {
                            SuperBlockQ6_K(panels[p], lanes, dx, sums, at);
                        }
                    }
                }
            }

            for (var p = 0; p < tileCount; p++)
            {
                for (var g = first; g < first + count; g++)
                {
                    var tile = tiles + (((p * KLaneGroupsPerPass) + g - first) * TileFloats);
                    if (wide && job.Type == QuantType.Q4_K && g - first < count / 4 * 4)
                    {
                        // The groups SuperBlockQ4_KQuad ran: each pair's tile is [4, 16], group g in lanes 0–7, g + 1 in 8–15.
                        StoreTile(job, o + (p * LaneRowsPerTile), g, tile, 2 * LaneTokens);
                        StoreTile(job, o + (p * LaneRowsPerTile), g + 1, tile + LaneTokens, 2 * LaneTokens);
                        g++;
                        continue;
                    }

                    StoreTile(job, o + (p * LaneRowsPerTile), g, tile);
                }
            }
        }
    }

    /// <summary>
    /// Super-block b of four Q4_K rows (<paramref name="block"/> is row 0's) unpacked into the panel: sub-block j of row
    /// r at 128·j + 32·r (32 nibbles in value order), the scales as int32 [r, 8], the mins as int16 pairs
    /// (m_2i, m_2i+1) [r, 4], d [r] and −dmin [4 + r].
    /// </summary>
    private static void UnpackQ4_K(byte* block, int rowBytes, in KPanel panel, bool scalePairs)
    {
        var low = Vector256.Create((byte)0x0F);
        for (var r = 0; r < LaneRowsPerTile; r++, block += rowBytes)
        {
            // The same super-block of the next tile's row: batched decode streams each weight once (as batch 1 does).
            var ahead = block + (LaneRowsPerTile * rowBytes);
            Sse.Prefetch0(ahead);
            Sse.Prefetch0(ahead + 64);
            Sse.Prefetch0(ahead + 128);
            for (var c = 0; c < 4; c++)
            {
                var raw = Vector256.Load(block + Q4_K.CodesOffset + (32 * c));
                (raw & low).Store(panel.Codes + (128 * 2 * c) + (32 * r));
                (Vector256.ShiftRightLogical(raw.AsUInt16(), 4).AsByte() & low).Store(panel.Codes + (128 * ((2 * c) + 1)) + (32 * r));
            }

            var (s, m) = Q4_KScaleBytes(block + Q4_K.ScalesOffset);
            var sc = Avx2.ConvertToVector256Int32(Vector128.CreateScalar(s).AsByte());
            sc.Store(panel.Scales + (8 * r));
            if (scalePairs)
            {
                ScalePairs(sc).Store(panel.ScalePairs + (8 * r));
            }
            Sse41.ConvertToVector128Int16(Vector128.CreateScalar(m).AsByte()).AsUInt32().Store(panel.Pairs + (4 * r));
            panel.Factors[r] = Half16(block);
            panel.Factors[LaneRowsPerTile + r] = -Half16(block + 2);
        }
    }

    /// <summary>
    /// Super-block b of four Q6_K rows unpacked into the panel: group g (16 values) of row r at 64·g + 16·r (six-bit
    /// codes 0–63 in value order), the scales as int32 [r, 16] and as int16 pairs (s_2i, s_2i+1) [r, 8], d [r].
    /// </summary>
    private static void UnpackQ6_K(byte* block, int rowBytes, in KPanel panel, bool scalePairs)
    {
        for (var r = 0; r < LaneRowsPerTile; r++, block += rowBytes)
        {
            var ahead = block + (LaneRowsPerTile * rowBytes);
            Sse.Prefetch0(ahead);
            Sse.Prefetch0(ahead + 64);
            Sse.Prefetch0(ahead + 128);
            Sse.Prefetch0(ahead + 192);
            for (var h = 0; h < 2; h++)
            {
                for (var k = 0; k < 4; k++)
                {
                    // Quarter k of half h is values 128h + 32k .. + 32: groups 8h + 2k and 8h + 2k + 1.
                    var codes = Q6Codes(block, h, k);
                    var g = (8 * h) + (2 * k);
                    codes.GetLower().Store(panel.Codes + (64 * g) + (16 * r));
                    codes.GetUpper().Store(panel.Codes + (64 * (g + 1)) + (16 * r));
                }
            }

            var sc = Vector128.Load((sbyte*)(block + Q6_K.ScalesOffset));
            var low = Avx2.ConvertToVector256Int32(sc);
            var high = Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(sc, 8));
            low.Store(panel.Scales + (16 * r));
            high.Store(panel.Scales + (16 * r) + 8);
            if (scalePairs)
            {
                ScalePairs(low).Store(panel.ScalePairs + (16 * r));
                ScalePairs(high).Store(panel.ScalePairs + (16 * r) + 8);
            }

            Avx2.ConvertToVector256Int16(sc).AsUInt32().Store(panel.Pairs + (8 * r));
            panel.Factors[r] = Half16(block + Q6_K.DOffset);
        }
    }

    /// <summary>One unpacked Q4_K super-block of four rows times one group of eight tokens, added to <paramref name="tile"/> [4, 8].</summary>
    private static void SuperBlockQ4_K(in KPanel panel, sbyte* lanes, float* dx, short* sums, float* tile)
    {
        var scales = panel.Scales;
        Vector256<int> t0 = default, t1 = default, t2 = default, t3 = default;
        for (var j = 0; j < 8; j += 2)
        {
            var (e0, e1, e2, e3, f0, f1, f2, f3) = LaneDotPair(panel.Codes + (128 * j), 32, 128, lanes + (256 * j), 256, 8);
            t0 += (e0 * Vector256.Create(scales[j])) + (f0 * Vector256.Create(scales[j + 1]));
            t1 += (e1 * Vector256.Create(scales[8 + j])) + (f1 * Vector256.Create(scales[8 + j + 1]));
            t2 += (e2 * Vector256.Create(scales[16 + j])) + (f2 * Vector256.Create(scales[16 + j + 1]));
            t3 += (e3 * Vector256.Create(scales[24 + j])) + (f3 * Vector256.Create(scales[24 + j + 1]));
        }

        // Σ_j m_j·Σx over the sub-blocks of 32, four pairs of sub-blocks per token.
        var (n0, n1, n2, n3) = PairSums(panel.Pairs, 4, sums);

        var scale = Vector256.Load(dx);
        var f = panel.Factors;
        AddRow(tile, Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(n0), scale * f[4], Avx.ConvertToVector256Single(t0) * (scale * f[0])));
        AddRow(tile + 8, Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(n1), scale * f[5], Avx.ConvertToVector256Single(t1) * (scale * f[1])));
        AddRow(tile + 16, Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(n2), scale * f[6], Avx.ConvertToVector256Single(t2) * (scale * f[2])));
        AddRow(tile + 24, Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(n3), scale * f[7], Avx.ConvertToVector256Single(t3) * (scale * f[3])));
    }

    /// <summary>One unpacked Q6_K super-block of four rows times one group of eight tokens, added to <paramref name="tile"/> [4, 8].</summary>
    private static void SuperBlockQ6_K(in KPanel panel, sbyte* lanes, float* dx, short* sums, float* tile)
    {
        var scales = panel.Scales;
        Vector256<int> t0 = default, t1 = default, t2 = default, t3 = default;
        for (var g = 0; g < 16; g += 2)
        {
            var (e0, e1, e2, e3, f0, f1, f2, f3) = LaneDotPair(panel.Codes + (64 * g), 16, 64, lanes + (128 * g), 128, 4);
            t0 += (e0 * Vector256.Create(scales[g])) + (f0 * Vector256.Create(scales[g + 1]));
            t1 += (e1 * Vector256.Create(scales[16 + g])) + (f1 * Vector256.Create(scales[16 + g + 1]));
            t2 += (e2 * Vector256.Create(scales[32 + g])) + (f2 * Vector256.Create(scales[32 + g + 1]));
            t3 += (e3 * Vector256.Create(scales[48 + g])) + (f3 * Vector256.Create(scales[48 + g + 1]));
        }

        // The codes were taken unsigned: take back 32·Σ_g s_g·Σx over the groups of 16, eight pairs per token.
        var (n0, n1, n2, n3) = PairSums(panel.Pairs, 8, sums);

        var scale = Vector256.Load(dx);
        var f = panel.Factors;
        AddRow(tile, Avx.ConvertToVector256Single(t0 - Vector256.ShiftLeft(n0, 5)) * (scale * f[0]));
        AddRow(tile + 8, Avx.ConvertToVector256Single(t1 - Vector256.ShiftLeft(n1, 5)) * (scale * f[1]));
        AddRow(tile + 16, Avx.ConvertToVector256Single(t2 - Vector256.ShiftLeft(n2, 5)) * (scale * f[2]));
        AddRow(tile + 24, Avx.ConvertToVector256Single(t3 - Vector256.ShiftLeft(n3, 5)) * (scale * f[3]));
    }

    /// <summary>
    /// For each of the four rows r, Σ_i pairs[count·r + i]·Σx_i over <paramref name="count"/> int16 pairs of per-token
    /// code sums (<paramref name="sums"/>: 16 int16 per pair, the eight tokens in the lanes): the super-block's mins
    /// (Q4_K, 4 pairs) or unsigned-code offset (Q6_K, 8 pairs) term.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<int> N0, Vector256<int> N1, Vector256<int> N2, Vector256<int> N3) PairSums(uint* pairs, int count, short* sums)
    {
        Vector256<int> n0 = default, n1 = default, n2 = default, n3 = default;
        for (var i = 0; i < count; i++)
        {
            var xs = Vector256.Load(sums + (16 * i));
            n0 = AddScaled(n0, Vector256.Create(pairs[i]).AsInt16(), xs);
            n1 = AddScaled(n1, Vector256.Create(pairs[count + i]).AsInt16(), xs);
            n2 = AddScaled(n2, Vector256.Create(pairs[(2 * count) + i]).AsInt16(), xs);
            n3 = AddScaled(n3, Vector256.Create(pairs[(3 * count) + i]).AsInt16(), xs);
        }

        return (n0, n1, n2, n3);
    }

    /// <summary>
    /// A finished tile [4 rows, 8 tokens] of group <paramref name="g"/> into y: for each token its four outputs
    /// o .. o + 3 are adjacent in y, so they go as one 128-bit vector (+ bias, + y when accumulating), the same sums as
    /// <see cref="Store"/> one value at a time. Row r of the tile starts <paramref name="stride"/> floats after row r − 1
    /// (16 for one group's half of a pair tile).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreTile(in Job job, int o, int g, float* tile, int stride = LaneTokens)
    {
        var bias = job.Bias == 0 ? Vector128<float>.Zero : Vector128.Load((float*)job.Bias + o);
        for (var t = 0; t < LaneTokens; t++)
        {
            var value = Vector128.Create(tile[t], tile[stride + t], tile[(2 * stride) + t], tile[(3 * stride) + t]) + bias;
            var dst = (float*)job.Y + ((long)((g * LaneTokens) + t) * job.Out) + o;
            if (job.Accumulate)
            {
                value = Vector128.Load(dst) + value;
            }

            value.Store(dst);
        }
    }

    /// <summary>Each int32 scale (in the int16 range) as the int16 pair (s, s): VPMADDWD by it adds a lane's two int16 sums and scales them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> ScalePairs(Vector256<int> scales) =>
        ((scales & Vector256.Create(0xFFFF)) | Vector256.ShiftLeft(scales, 16)).AsUInt32();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddRow(float* row, Vector256<float> value) => (Vector256.Load(row) + value).Store(row);

    /// <summary>
    /// Two sub-blocks side by side for four unsigned weight rows: rows r of the first at
    /// <paramref name="weights"/> + r·<paramref name="rowStride"/>, of the second <paramref name="next"/> bytes further;
    /// the tokens' interleaved codes at <paramref name="lanes"/> and <paramref name="lanesNext"/> bytes further. Lane t of
    /// e_r (f_r) is Σ_i w_r[i]·x_t[i] over the first (second) sub-block of 4·<paramref name="steps"/> values.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<int>, Vector256<int>, Vector256<int>, Vector256<int>, Vector256<int>, Vector256<int>, Vector256<int>, Vector256<int>) LaneDotPair(
        byte* weights, int rowStride, int next, sbyte* lanes, int lanesNext, int steps)
    {
        Vector256<int> e0 = default, e1 = default, e2 = default, e3 = default;
        Vector256<int> f0 = default, f1 = default, f2 = default, f3 = default;
        for (var k = 0; k < steps; k++)
        {
            var x = Vector256.Load(lanes + (32 * k));
            var y = Vector256.Load(lanes + lanesNext + (32 * k));
            var at = weights + (4 * k);
            e0 = AddBytes(e0, Vector256.Create(*(uint*)at).AsByte(), x);
            e1 = AddBytes(e1, Vector256.Create(*(uint*)(at + rowStride)).AsByte(), x);
            e2 = AddBytes(e2, Vector256.Create(*(uint*)(at + (2 * rowStride))).AsByte(), x);
            e3 = AddBytes(e3, Vector256.Create(*(uint*)(at + (3 * rowStride))).AsByte(), x);
            f0 = AddBytes(f0, Vector256.Create(*(uint*)(at + next)).AsByte(), y);
            f1 = AddBytes(f1, Vector256.Create(*(uint*)(at + next + rowStride)).AsByte(), y);
            f2 = AddBytes(f2, Vector256.Create(*(uint*)(at + next + (2 * rowStride))).AsByte(), y);
            f3 = AddBytes(f3, Vector256.Create(*(uint*)(at + next + (3 * rowStride))).AsByte(), y);
        }

        return (e0, e1, e2, e3, f0, f1, f2, f3);
    }

    /// <summary>
    /// A Q4_K block's eight 6-bit sub-block scales (bytes of <c>Scales</c>, s_0 lowest) and mins (bytes of <c>Mins</c>):
    /// ggml's get_scale_min_k4 for all eight sub-blocks at once on three 32-bit words.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (ulong Scales, ulong Mins) Q4_KScaleBytes(byte* packed)
    {
        const uint Six = 0x3F3F3F3F, Four = 0x0F0F0F0F, Two = 0x03030303;
        uint u0 = Unsafe.ReadUnaligned<uint>(packed), u1 = Unsafe.ReadUnaligned<uint>(packed + 4), u2 = Unsafe.ReadUnaligned<uint>(packed + 8);
        // s_0..s_3: low 6 bits of bytes 0–3; s_4..s_7: low nibbles of bytes 8–11, their top bits from bytes 0–3.
        ulong s = (u0 & Six) | ((ulong)((u2 & Four) | (((u0 >> 6) & Two) << 4)) << 32);
        // Likewise m_0..m_3 (bytes 4–7) and m_4..m_7 (high nibbles of bytes 8–11, top bits from bytes 4–7).
        ulong m = (u1 & Six) | ((ulong)(((u2 >> 4) & Four) | (((u1 >> 6) & Two) << 4)) << 32);
        return (s, m);
    }

    /// <summary>
    /// A row tile's unpacked super-block: codes (1 KiB), int32 scales and the same as int16 pairs (s, s) for the 512-bit
    /// tier's VPMADDWD, int16 pairs for VPDPWSSD, float factors.
    /// </summary>
    private readonly struct KPanel(byte* codes, int* scales, uint* scalePairs, uint* pairs, float* factors)
    {
        public byte* Codes { get; } = codes;

        public int* Scales { get; } = scales;

        public uint* ScalePairs { get; } = scalePairs;

        public uint* Pairs { get; } = pairs;

        public float* Factors { get; } = factors;
    }
}
