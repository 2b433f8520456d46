using Sharpformer.Tensors.Kernels.Quant;

namespace Sharpformer.Tensors.Tests.Kernels;

/// <summary>
/// The quantized matrix product: its SIMD path (AVX2 / AVX-VNNI) against the scalar reference, the reference against
/// the exact sum of dequantized weights times dequantized 8-bit activations (in double), and the whole against the F32
/// product. CI runs this class again with AVX-512 off, AVX2 off and all SIMD off (the last two take the reference).
/// </summary>
public sealed class QuantMatMulTests
{
    public static TheoryData<QuantType, int, int, int> Shapes()
    {
        var data = new TheoryData<QuantType, int, int, int>();
        foreach (var type in new[] { QuantType.Q8_0, QuantType.Q4_0, QuantType.Q4_K, QuantType.Q6_K })
        {
            var block = type.BlockValues();
            data.Add(type, 1, 3 * 256, 37); // decode, GPT-2 width
            data.Add(type, 2, block, 5); // one block per row
            data.Add(type, 8, 2 * block, 33); // decode batch of 8
            data.Add(type, 19, 5 * block, 70); // a prefill, odd rows and outputs
            data.Add(type, 4, 3 * block, 2); // exactly one tile of two rows × four tokens
            data.Add(type, 12, 4 * block, 9); // three token tiles, an odd last row
            data.Add(type, 137, 2 * block, 6); // 17 groups of eight tokens: more than one pass of the K-quant lane kernel
            data.Add(type, 1, 11 * block, 70); // decode: Q8_0's groups of eight blocks and a tail of three, rows in several chunks
            data.Add(type, 1, 2 * block, 3); // decode: a short row (Q8_0 below one group of eight blocks)
            data.Add(type, 16, 2 * block, 9); // two groups of eight tokens: one pair in the 512-bit K-quant lanes
            data.Add(type, 27, 3 * block, 10); // a pair of token groups, an odd group, three tokens past the groups
            data.Add(type, 59, 3 * block, 70); // seven groups: two pairs at once, a pair, an odd group; rows in panels of four tiles, a lone tile, two rows
        }

        return data;
    }

    private static float[] Normal(int n, Random rng, float std)
    {
        var x = new float[n];
        for (var i = 0; i < n; i++)
        {
            var u1 = 1.0 - rng.NextDouble();
            x[i] = (float)(std * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        }

        return x;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Multiply_MatchesReference(QuantType type, int rows, int inFeatures, int outFeatures)
    {
        var rng = new Random((rows * 7) + inFeatures + (int)type);
        var x = Normal(rows * inFeatures, rng, 1f);
        var w = QuantizedMatrix.Quantize(Normal(outFeatures * inFeatures, rng, 0.02f), outFeatures, inFeatures, type);
        var bias = Normal(outFeatures, rng, 0.1f);
        var expected = new float[rows * outFeatures];
        var actual = new float[rows * outFeatures];
        QuantMatMul.MultiplyReference(x, rows, w, bias, expected);
        QuantMatMul.Multiply(x, rows, w, bias, actual);
        CloseToReference(type, inFeatures, expected, actual);
    }

    /// <summary>
    /// The kernel's y against the scalar reference's: the integer block sums are exact on every path, only the float sum
    /// over blocks is reordered, so the bound grows with the blocks summed.
    /// </summary>
    private static void CloseToReference(QuantType type, int inFeatures, float[] expected, float[] actual)
    {
        for (var i = 0; i < expected.Length; i++)
        {
            var bound = Tolerances.KernelVsReferenceRelative * Math.Max(1f, MathF.Abs(expected[i])) * (inFeatures / 32);
            Assert.True(MathF.Abs(expected[i] - actual[i]) <= bound, $"{type} y[{i}]: {actual[i]} vs reference {expected[i]}");
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Reference_IsDequantizedWeightsTimesDequantizedActivations(QuantType type, int rows, int inFeatures, int outFeatures)
    {
        var rng = new Random((rows * 11) + inFeatures + (int)type);
        var x = Normal(rows * inFeatures, rng, 1f);
        var w = QuantizedMatrix.Quantize(Normal(outFeatures * inFeatures, rng, 0.02f), outFeatures, inFeatures, type);
        var dense = new float[outFeatures * inFeatures];
        w.DequantizeRows(0, outFeatures, dense);
        var xHat = DequantizedActivations(type, x, rows, inFeatures);
        var y = new float[rows * outFeatures];
        QuantMatMul.MultiplyReference(x, rows, w, default, y);
        for (var r = 0; r < rows; r++)
        {
            for (var o = 0; o < outFeatures; o++)
            {
                double exact = 0, magnitude = 0;
                for (var i = 0; i < inFeatures; i++)
                {
                    exact += (double)dense[(o * inFeatures) + i] * xHat[(r * inFeatures) + i];
                    magnitude += Math.Abs((double)dense[(o * inFeatures) + i] * xHat[(r * inFeatures) + i]);
                }

                var bound = (Tolerances.KernelVsReferenceRelative * magnitude) + 1e-6;
                Assert.True(Math.Abs(y[(r * outFeatures) + o] - exact) <= bound, $"{type} y[{r}, {o}] = {y[(r * outFeatures) + o]} vs {exact} (bound {bound:E2})");
            }
        }
    }

    [Theory]
    [InlineData(8, 3)] // one token group: the streaming lane kernel, an odd last block
    [InlineData(16, 3)] // one pair of groups from the panel, an odd last block
    [InlineData(27, 4)] // a pair, an odd group, three tokens past the groups
    [InlineData(40, 5)] // two pairs and an odd group
    [InlineData(16, 1)] // one pair, one block (the 512-bit pair kernel runs one block at a time)
    [InlineData(33, 2)] // two pairs and one token past them
    [InlineData(61, 7)] // three pairs, an odd group, five tokens past the groups, an odd block count
    [InlineData(1, 8)] // decode: one group of eight blocks (the 512-bit pair kernel with AVX-512 and AVX-VNNI)
    [InlineData(1, 19)] // decode: two groups and a tail of three blocks
    public void Multiply_Q8_0EveryCode_MatchesReference(int rows, int blocksPerRow)
    {
        // Every Q8_0 code from −128 to 127, numbered through the matrix (13 rows of at least 96 values), with −128, which
        // the quantizer never makes but a file may hold: the token-lane kernels take the codes + 128 as unsigned bytes,
        // so both ends of that range are met.
        const int outFeatures = 13;
        var inFeatures = 32 * blocksPerRow;
        var rng = new Random(rows + blocksPerRow);
        var blocks = new byte[outFeatures * blocksPerRow * 34];
        var scale = BitConverter.HalfToUInt16Bits((Half)0.01f);
        for (var o = 0; o < outFeatures; o++)
        {
            for (var b = 0; b < blocksPerRow; b++)
            {
                var at = ((o * blocksPerRow) + b) * 34;
                blocks[at] = (byte)scale;
                blocks[at + 1] = (byte)(scale >> 8);
                for (var i = 0; i < 32; i++)
                {
                    blocks[at + 2 + i] = (byte)((o * inFeatures) + (32 * b) + i);
                }
            }
        }

        var w = QuantizedMatrix.FromBlocks(QuantType.Q8_0, outFeatures, inFeatures, blocks);
        var x = Normal(rows * inFeatures, rng, 1f);
        var expected = new float[rows * outFeatures];
        var actual = new float[rows * outFeatures];
        QuantMatMul.MultiplyReference(x, rows, w, default, expected);
        QuantMatMul.Multiply(x, rows, w, default, actual);
        CloseToReference(QuantType.Q8_0, inFeatures, expected, actual);
    }

    /// <summary>
    /// Q8_0 blocks [rows, blocksPerRow] whose codes are −128 (0x80) where <paramref name="minus128"/>(row, block, code) holds
    /// and 127 elsewhere, asked in row, block, code order; the scale of row o, block b is 0.01·(1 + o + 3b) as F16.
    /// </summary>
    private static byte[] ExtremeQ8_0Blocks(int rows, int blocksPerRow, Func<int, int, int, bool> minus128)
    {
        var blocks = new byte[rows * blocksPerRow * 34];
        for (var o = 0; o < rows; o++)
        {
            for (var b = 0; b < blocksPerRow; b++)
            {
                var at = ((o * blocksPerRow) + b) * 34;
                var scale = BitConverter.HalfToUInt16Bits((Half)(0.01f * (1 + o + (3 * b))));
                blocks[at] = (byte)scale;
                blocks[at + 1] = (byte)(scale >> 8);
                for (var i = 0; i < 32; i++)
                {
                    blocks[at + 2 + i] = minus128(o, b, i) ? (byte)0x80 : (byte)0x7F;
                }
            }
        }

        return blocks;
    }

    [Theory]
    [InlineData(45, 3)] // two pairs of groups, an odd group, five tokens past the groups
    [InlineData(128, 2)] // a prefill of 128 tokens: eight pairs
    [InlineData(19, 1)] // one pair and three tokens past it, a single block
    public void Multiply_Q8_0ExtremeCodes_MatchesReference(int rows, int blocksPerRow)
    {
        // Weight codes all −128 or all 127 by row (−128 only a file can hold), activations ±1 (codes ±127) by token: the
        // largest block sums of either sign, 32 · 128 · 127 in magnitude, in every token lane; ten rows (two tiles of four
        // and two rows past them) with scales that differ by row and block.
        const int outFeatures = 10;
        var inFeatures = 32 * blocksPerRow;
        var blocks = ExtremeQ8_0Blocks(outFeatures, blocksPerRow, (o, _, _) => o % 2 == 0);

        var x = new float[rows * inFeatures];
        for (var r = 0; r < rows; r++)
        {
            Array.Fill(x, r % 3 == 1 ? -1f : 1f, r * inFeatures, inFeatures);
        }

        var w = QuantizedMatrix.FromBlocks(QuantType.Q8_0, outFeatures, inFeatures, blocks);
        var expected = new float[rows * outFeatures];
        var actual = new float[rows * outFeatures];
        QuantMatMul.MultiplyReference(x, rows, w, default, expected);
        QuantMatMul.Multiply(x, rows, w, default, actual);
        CloseToReference(QuantType.Q8_0, inFeatures, expected, actual);
    }

    [Theory]
    [InlineData(8)] // one group of eight blocks
    [InlineData(11)] // a group and a tail of three
    [InlineData(64)] // the ~1B Llama's 2048 columns: eight groups
    public void Multiply_Batch1_Q8_0ExtremeCodes_MatchesReference(int blocksPerRow)
    {
        // Decode against weight codes at the ends of their range and activation codes ±127 of mixed sign (x = ±1): the
        // batch-1 kernel reads the weight codes + 128 as unsigned bytes and takes 128·Σx back off per four codes, so
        // these rows meet its largest lanes of either sign. Rows: all −128, all 127, alternating −128 / 127, random
        // −128 / 127, −128 where x > 0 and 127 elsewhere (the most negative block sums, −32 · 128 · 127 at most), and
        // 127 where x > 0 and −128 elsewhere (the most positive); scales that differ by row and block.
        const int outFeatures = 6;
        var inFeatures = 32 * blocksPerRow;
        var rng = new Random(blocksPerRow);
        var x = new float[inFeatures];
        for (var i = 0; i < inFeatures; i++)
        {
            x[i] = rng.Next(2) == 0 ? -1f : 1f;
        }

        var blocks = ExtremeQ8_0Blocks(outFeatures, blocksPerRow, (o, b, i) =>
        {
            var positive = x[(32 * b) + i] > 0;
            return o switch
            {
                0 => true,
                1 => false,
                2 => i % 2 == 0,
                3 => rng.Next(2) == 0,
                4 => positive,
                _ => !positive,
            };
        });

        var w = QuantizedMatrix.FromBlocks(QuantType.Q8_0, outFeatures, inFeatures, blocks);
        var expected = new float[outFeatures];
        var actual = new float[outFeatures];
        QuantMatMul.MultiplyReference(x, 1, w, default, expected);
        QuantMatMul.Multiply(x, 1, w, default, actual);
        CloseToReference(QuantType.Q8_0, inFeatures, expected, actual);
    }

    [Fact]
    public void Multiply_Batch1_Q8_0_EveryFiniteScale()
    {
        // One row per finite F16 bit pattern (zero, subnormals, normals, both signs), that pattern as the scale of all
        // eight blocks: the decode kernel converts the scales eight at a time in registers, the reference by table.
        const int inFeatures = 256, blocksPerRow = inFeatures / 32;
        var patterns = Enumerable.Range(0, 65536).Where(h => (h & 0x7C00) != 0x7C00).ToArray();
        var rng = new Random(29);
        var blocks = new byte[patterns.Length * blocksPerRow * 34];
        rng.NextBytes(blocks);
        for (var r = 0; r < patterns.Length; r++)
        {
            for (var b = 0; b < blocksPerRow; b++)
            {
                var at = ((r * blocksPerRow) + b) * 34;
                blocks[at] = (byte)patterns[r];
                blocks[at + 1] = (byte)(patterns[r] >> 8);
            }
        }

        var w = QuantizedMatrix.FromBlocks(QuantType.Q8_0, patterns.Length, inFeatures, blocks);
        var x = Normal(inFeatures, rng, 1f);
        var expected = new float[patterns.Length];
        var actual = new float[patterns.Length];
        QuantMatMul.MultiplyReference(x, 1, w, default, expected);
        QuantMatMul.Multiply(x, 1, w, default, actual);
        var dense = new float[inFeatures];
        var xHat = DequantizedActivations(QuantType.Q8_0, x, 1, inFeatures);
        for (var r = 0; r < patterns.Length; r++)
        {
            w.DequantizeRows(r, 1, dense);
            var magnitude = 0.0;
            for (var i = 0; i < inFeatures; i++)
            {
                magnitude += Math.Abs((double)dense[i] * xHat[i]);
            }

            var bound = (Tolerances.KernelVsReferenceRelative * magnitude) + float.Epsilon;
            Assert.True(Math.Abs(expected[r] - actual[r]) <= bound, $"scale 0x{patterns[r]:X4}: {actual[r]} vs reference {expected[r]} (bound {bound:E2})");
        }
    }

    [Theory]
    [InlineData(1)] // one short group of four blocks
    [InlineData(4)] // one whole group
    [InlineData(5)] // a whole group and a group of one
    [InlineData(11)] // two whole groups and a group of three
    public void Multiply_Batch1_Q4_K_EveryFiniteFactor(int blocksPerRow)
    {
        // One row per finite F16 bit pattern, that pattern as d of every block of the row and another pattern as each
        // block's dmin; every other byte (the packed 6-bit scales and mins, the codes) random. The decode kernel unpacks
        // four blocks' scales and mins at once and converts their eight F16 factors in registers, the reference does
        // one block at a time, by table.
        var inFeatures = blocksPerRow * 256;
        var patterns = Enumerable.Range(0, 65536).Where(h => (h & 0x7C00) != 0x7C00).ToArray();
        var rows = blocksPerRow == 4 ? patterns.Length : 4099;
        var rng = new Random(31 + blocksPerRow);
        var blocks = new byte[rows * blocksPerRow * 144];
        rng.NextBytes(blocks);
        var bounds = new double[rows];
        var x = Normal(inFeatures, rng, 1f);
        var xHat = DequantizedActivations(QuantType.Q4_K, x, 1, inFeatures);
        for (var r = 0; r < rows; r++)
        {
            for (var b = 0; b < blocksPerRow; b++)
            {
                var at = ((r * blocksPerRow) + b) * 144;
                var d = patterns[(r * 13) % patterns.Length];
                var dmin = patterns[((r * 7) + (b * 4099)) % patterns.Length];
                blocks[at] = (byte)d;
                blocks[at + 1] = (byte)(d >> 8);
                blocks[at + 2] = (byte)dmin;
                blocks[at + 3] = (byte)(dmin >> 8);
                // The largest term a block can add: scales and mins up to 63, codes up to 15.
                var sumX = 0.0;
                for (var i = 0; i < 256; i++)
                {
                    sumX += Math.Abs(xHat[(256 * b) + i]);
                }

                bounds[r] += ((Math.Abs((double)BitConverter.UInt16BitsToHalf((ushort)d)) * 63 * 15) + (Math.Abs((double)BitConverter.UInt16BitsToHalf((ushort)dmin)) * 63)) * sumX;
            }
        }

        var w = QuantizedMatrix.FromBlocks(QuantType.Q4_K, rows, inFeatures, blocks);
        var expected = new float[rows];
        var actual = new float[rows];
        QuantMatMul.MultiplyReference(x, 1, w, default, expected);
        QuantMatMul.Multiply(x, 1, w, default, actual);
        for (var r = 0; r < rows; r++)
        {
            var bound = (Tolerances.KernelVsReferenceRelative * bounds[r]) + float.Epsilon;
            Assert.True(Math.Abs(expected[r] - actual[r]) <= bound, $"row {r}: {actual[r]} vs reference {expected[r]} (bound {bound:E2})");
        }
    }

    [Theory]
    [InlineData(QuantType.Q8_0)]
    [InlineData(QuantType.Q4_0)]
    [InlineData(QuantType.Q4_K)]
    [InlineData(QuantType.Q6_K)]
    public void Multiply_ExtremeCodes_MatchesReference(QuantType type)
    {
        // Weights of one sign per row and activations of one sign per token, all of the largest magnitude but one zero
        // weight in 16: the weight codes sit at the ends of their range and the activation codes at ±127, the largest
        // integer sums the kernels' narrow (int16) partial sums can meet.
        // 43 tokens: two pairs of groups at once (the 512-bit K-quant lanes), an odd group, three tokens past them.
        const int rows = 43, outFeatures = 9;
        var inFeatures = 2 * 256;
        var dense = new float[outFeatures * inFeatures];
        for (var o = 0; o < outFeatures; o++)
        {
            for (var i = 0; i < inFeatures; i++)
            {
                dense[(o * inFeatures) + i] = i % 16 == 5 ? 0f : (o % 2 == 0 ? 1f : -1f);
            }
        }

        var x = new float[rows * inFeatures];
        for (var r = 0; r < rows; r++)
        {
            Array.Fill(x, r % 3 == 0 ? -1f : 1f, r * inFeatures, inFeatures);
        }

        var w = QuantizedMatrix.Quantize(dense, outFeatures, inFeatures, type);
        var expected = new float[rows * outFeatures];
        var actual = new float[rows * outFeatures];
        QuantMatMul.MultiplyReference(x, rows, w, default, expected);
        QuantMatMul.Multiply(x, rows, w, default, actual);
        CloseToReference(type, inFeatures, expected, actual);
    }

    [Theory]
    [InlineData(QuantType.Q4_K, 8)] // one token group: Q4_K codes straight from the blocks with AVX-512 + GFNI, else the panel
    [InlineData(QuantType.Q4_K, 13)] // one group and five tokens past it
    [InlineData(QuantType.Q6_K, 8)]
    public void Multiply_OneGroupExtremeCodes_MatchesReference(QuantType type, int rows)
    {
        // As Multiply_ExtremeCodes_MatchesReference, for batched decode's one group of eight tokens: every code at an end
        // of its range against ±127, the largest int16 sums the one-group kernel meets, over three super-blocks, two
        // row tiles and a leftover row. Rows alternate sign and grow in scale, and sub-blocks differ in scale and codes.
        const int outFeatures = 9;
        var inFeatures = 3 * 256;
        var dense = new float[outFeatures * inFeatures];
        for (var o = 0; o < outFeatures; o++)
        {
            for (var i = 0; i < inFeatures; i++)
            {
                var magnitude = 1f + (0.25f * ((i / 32) % 4)) + (0.1f * o);
                // The zero weight's place moves from sub-block to sub-block, so that their codes differ too.
                dense[(o * inFeatures) + i] = i % 16 == (5 + (i / 32)) % 16 ? 0f : (o % 2 == 0 ? magnitude : -magnitude);
            }
        }

        // Activations all ±1 (codes ±127), one in seven flipped: a value's place in the row matters.
        var x = new float[rows * inFeatures];
        for (var r = 0; r < rows; r++)
        {
            for (var i = 0; i < inFeatures; i++)
            {
                x[(r * inFeatures) + i] = (r % 3 == 0 ? -1f : 1f) * (i % 7 == 3 ? -1f : 1f);
            }
        }

        var w = QuantizedMatrix.Quantize(dense, outFeatures, inFeatures, type);
        var expected = new float[rows * outFeatures];
        var actual = new float[rows * outFeatures];
        QuantMatMul.MultiplyReference(x, rows, w, default, expected);
        QuantMatMul.Multiply(x, rows, w, default, actual);
        CloseToReference(type, inFeatures, expected, actual);
    }

    [Theory]
    [InlineData(QuantType.Q8_0)]
    [InlineData(QuantType.Q4_0)]
    [InlineData(QuantType.Q4_K)]
    [InlineData(QuantType.Q6_K)]
    public void Multiply_CloseToF32Product(QuantType type)
    {
        const int rows = 3, inFeatures = 768, outFeatures = 64;
        var rng = new Random(5 + (int)type);
        var x = Normal(rows * inFeatures, rng, 1f);
        var dense = Normal(outFeatures * inFeatures, rng, 0.02f);
        var w = QuantizedMatrix.Quantize(dense, outFeatures, inFeatures, type);
        var y = new float[rows * outFeatures];
        QuantMatMul.Multiply(x, rows, w, default, y);
        var exact = new double[rows * outFeatures];
        for (var r = 0; r < rows; r++)
        {
            for (var o = 0; o < outFeatures; o++)
            {
                for (var i = 0; i < inFeatures; i++)
                {
                    exact[(r * outFeatures) + o] += (double)x[(r * inFeatures) + i] * dense[(o * inFeatures) + i];
                }
            }
        }

        var rms = Math.Sqrt(exact.Average(v => v * v));
        var worst = exact.Select((e, i) => Math.Abs(e - y[i])).Max() / rms;
        Assert.True(worst <= Tolerances.QuantMatMulVsF32[type.ToString()], $"{type}: max |Δy| / rms(y) = {worst:E3}");
        Assert.True(worst > 0, "the quantized product should not be exact");
    }

    [Theory]
    [InlineData(QuantType.Q8_0)]
    [InlineData(QuantType.Q4_K)]
    public void ActivationQuantization_SimdEqualsReference(QuantType type)
    {
        const int rows = 9, n = 1024;
        var rng = new Random(17 + (int)type);
        var x = Normal(rows * n, rng, 1f);
        // A block of zeros, and a block whose largest magnitude appears twice with both signs (Q8_K keeps the first).
        Array.Clear(x, 256, 256);
        x[3 * n + 5] = -4.5f;
        x[3 * n + 200] = 4.5f;
        // Values that scale to exact halves (ties round to even): the block maximum 127 and multiples of 0.5.
        for (var i = 0; i < 32; i++)
        {
            x[(5 * n) + i] = i == 0 ? 127f : (i % 16) + 0.5f;
        }

        var expected = QuantMatMul.QuantizeActivations(type, x, rows, n, simd: false);
        var actual = QuantMatMul.QuantizeActivations(type, x, rows, n, simd: true);
        Assert.Equal(expected.Codes, actual.Codes);
        Assert.Equal(expected.Scales, actual.Scales);
        Assert.Equal(expected.Sums, actual.Sums);
    }

    [Theory]
    [InlineData(QuantType.Q8_0, 8, 256, false)] // batched decode: one group, one work item
    [InlineData(QuantType.Q4_0, 27, 4096, false)] // three groups and three tokens past them; rows in two slices of blocks
    [InlineData(QuantType.Q8_0, 59, 768, false)]
    [InlineData(QuantType.Q8_0, 61, 224, true)] // the Q8_0/Q4_0 lanes without AVX-VNNI: three pairs, an odd group, five tokens past them
    [InlineData(QuantType.Q4_0, 128, 2048, true)]
    [InlineData(QuantType.Q4_K, 8, 5632, true)] // one group (no pair): two slices of super-blocks
    [InlineData(QuantType.Q4_K, 59, 768, true)] // three pairs, an odd group, three tokens past them
    [InlineData(QuantType.Q4_K, 128, 2048, true)] // the 1B prefill: eight pairs
    [InlineData(QuantType.Q4_K, 43, 5632, false)] // 256-bit tier: groups of eight only
    [InlineData(QuantType.Q6_K, 35, 3072, true)]
    public void LaneActivations_FusedPassEqualsQuantizeThenInterleave(QuantType type, int rows, int n, bool pairs)
    {
        var rng = new Random(rows + n + (int)type);
        var x = Normal(rows * n, rng, 1f);
        var expected = QuantMatMul.LaneActivations(type, x, rows, n, pairs, fused: false);
        var actual = QuantMatMul.LaneActivations(type, x, rows, n, pairs, fused: true);
        Assert.Equal(expected.Codes, actual.Codes);
        Assert.Equal(expected.Scales, actual.Scales);
        Assert.Equal(expected.Sums, actual.Sums);
        Assert.Equal(expected.Lanes, actual.Lanes);
        Assert.Equal(expected.LaneScales, actual.LaneScales);
        Assert.Equal(expected.LaneSums, actual.LaneSums);
        Assert.Equal(expected.LaneStarts, actual.LaneStarts);
    }

    [Theory]
    [InlineData(QuantType.Q8_0, 2, 64)]
    [InlineData(QuantType.Q4_K, 19, 256)] // the K-quant token lanes: a pair of groups, three tokens past them
    [InlineData(QuantType.Q6_K, 8, 256)]
    public void Multiply_Accumulate_AddsToY(QuantType type, int rows, int inFeatures)
    {
        const int outFeatures = 10;
        var rng = new Random(3);
        var x = Normal(rows * inFeatures, rng, 1f);
        var w = QuantizedMatrix.Quantize(Normal(outFeatures * inFeatures, rng, 0.1f), outFeatures, inFeatures, type);
        var bias = Normal(outFeatures, rng, 0.1f);
        var plain = new float[rows * outFeatures];
        QuantMatMul.Multiply(x, rows, w, bias, plain);
        var summed = Enumerable.Repeat(1.5f, rows * outFeatures).ToArray();
        QuantMatMul.Multiply(x, rows, w, bias, summed, accumulate: true);
        for (var i = 0; i < plain.Length; i++)
        {
            Assert.Equal(plain[i] + 1.5f, summed[i], 5);
        }
    }

    [Fact]
    public void Multiply_ShortSpans_SayWhichIsShort()
    {
        var w = QuantizedMatrix.Quantize(new float[4 * 32], 4, 32, QuantType.Q4_0);
        var e = Assert.Throws<ArgumentException>(() => QuantMatMul.Multiply(new float[31], 1, w, default, new float[4]));
        Assert.Contains("too short", e.Message, StringComparison.Ordinal);
    }

    /// <summary>x rounded as the kernel quantizes it (Q8_0 blocks with an F16 scale, or Q8_K with an F32 scale), in double.</summary>
    private static double[] DequantizedActivations(QuantType type, float[] x, int rows, int n)
    {
        var result = new double[x.Length];
        var super = type is QuantType.Q4_K or QuantType.Q6_K;
        var block = super ? 256 : 32;
        for (var start = 0; start < rows * n; start += block)
        {
            var slice = x.AsSpan(start, block);
            if (super)
            {
                float max = 0, amax = 0;
                foreach (var v in slice)
                {
                    if (MathF.Abs(v) > amax)
                    {
                        amax = MathF.Abs(v);
                        max = v;
                    }
                }

                var iscale = -127f / max;
                for (var j = 0; j < block; j++)
                {
                    result[start + j] = Math.Min(127, (int)MathF.Round(iscale * slice[j])) * (double)(1 / iscale);
                }
            }
            else
            {
                var amax = 0f;
                foreach (var v in slice)
                {
                    amax = MathF.Max(amax, MathF.Abs(v));
                }

                var d = amax / 127f;
                var id = 127f / amax;
                for (var j = 0; j < block; j++)
                {
                    result[start + j] = MathF.Round(slice[j] * id, MidpointRounding.ToEven) * (double)(float)(Half)d;
                }
            }
        }

        return result;
    }
}
