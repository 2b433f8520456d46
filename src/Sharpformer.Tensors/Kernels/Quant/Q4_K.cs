namespace Sharpformer.Tensors.Kernels.Quant;

/// <summary>
/// Q4_K: a super-block of 256 values in eight sub-blocks of 32. Each sub-block j has a 6-bit scale s_j and a 6-bit
/// min m_j; the super-block has F16 d and dmin, and a value is x = d·s_j·q − dmin·m_j with a 4-bit code q.
/// Layout (144 bytes): d, dmin, scales[12], qs[128]. scales[0..3] hold s_0..s_3 in their low 6 bits, scales[4..7]
/// hold m_0..m_3 likewise; scales[8..11] hold the low 4 bits of s_4..s_7 (low nibble) and m_4..m_7 (high nibble), whose
/// top 2 bits sit in the top 2 bits of scales[0..3] (s) and scales[4..7] (m). qs[32·c + l] holds value 64·c + l in its
/// low nibble and 64·c + 32 + l in its high nibble. The quantizer is ggml's quantize_row_q4_K_ref: per sub-block a
/// weighted least-squares search over 21 candidate scales (make_qkx2_quants), then the scales and mins themselves
/// quantized to 6 bits against the largest of each.
/// </summary>
internal static class Q4_K
{
    public const int Values = 256;

    /// <summary>Offset of the 12 packed scale bytes.</summary>
    public const int ScalesOffset = 4;

    /// <summary>Offset of the 128 code bytes.</summary>
    public const int CodesOffset = 16;

    public static void QuantizeBlock(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<byte> codes = stackalloc byte[Values];
        Span<byte> aux = stackalloc byte[32];
        Span<float> weights = stackalloc float[32];
        Span<float> mins = stackalloc float[8];
        Span<float> scales = stackalloc float[8];
        var maxScale = 0f;
        var maxMin = 0f;
        for (var j = 0; j < 8; j++)
        {
            var sub = x.Slice(32 * j, 32);
            var sumX2 = 0f;
            for (var l = 0; l < 32; l++)
            {
                sumX2 += sub[l] * sub[l];
            }

            var avX = MathF.Sqrt(sumX2 / 32);
            for (var l = 0; l < 32; l++)
            {
                weights[l] = avX + MathF.Abs(sub[l]);
            }

            scales[j] = KQuantSearch.MinScale(32, 15, sub, weights, codes.Slice(32 * j, 32), out mins[j], aux, -1f, 0.1f, 20);
            maxScale = Math.Max(maxScale, scales[j]);
            maxMin = Math.Max(maxMin, mins[j]);
        }

        var invScale = maxScale > 0 ? 63f / maxScale : 0f;
        var invMin = maxMin > 0 ? 63f / maxMin : 0f;
        var packed = y.Slice(ScalesOffset, 12);
        for (var j = 0; j < 8; j++)
        {
            var ls = Math.Min(63, (int)(byte)QuantTypeInfo.NearestInt(invScale * scales[j]));
            var lm = Math.Min(63, (int)(byte)QuantTypeInfo.NearestInt(invMin * mins[j]));
            if (j < 4)
            {
                packed[j] = (byte)ls;
                packed[j + 4] = (byte)lm;
            }
            else
            {
                packed[j + 4] = (byte)((ls & 0xF) | ((lm & 0xF) << 4));
                packed[j - 4] |= (byte)((ls >> 4) << 6);
                packed[j] |= (byte)((lm >> 4) << 6);
            }
        }

        QuantTypeInfo.WriteHalf(y, 0, maxScale / 63f);
        QuantTypeInfo.WriteHalf(y, 2, maxMin / 63f);
        var dAll = QuantTypeInfo.ReadHalf(y, 0);
        var minAll = QuantTypeInfo.ReadHalf(y, 2);
        for (var j = 0; j < 8; j++)
        {
            var (sc, m) = ScaleMin(packed, j);
            var d = dAll * sc;
            if (d == 0f)
            {
                continue;
            }

            var dm = minAll * m;
            for (var i = 0; i < 32; i++)
            {
                codes[(32 * j) + i] = (byte)Math.Clamp(QuantTypeInfo.NearestInt((x[(32 * j) + i] + dm) / d), 0, 15);
            }
        }

        var qs = y.Slice(CodesOffset, 128);
        for (var c = 0; c < 4; c++)
        {
            for (var l = 0; l < 32; l++)
            {
                qs[(32 * c) + l] = (byte)(codes[(64 * c) + l] | (codes[(64 * c) + 32 + l] << 4));
            }
        }
    }

    public static void DequantizeBlock(ReadOnlySpan<byte> x, Span<float> y)
    {
        var d = QuantTypeInfo.ReadHalf(x, 0);
        var min = QuantTypeInfo.ReadHalf(x, 2);
        var packed = x.Slice(ScalesOffset, 12);
        var qs = x.Slice(CodesOffset, 128);
        for (var c = 0; c < 4; c++)
        {
            var (sc0, m0) = ScaleMin(packed, 2 * c);
            var (sc1, m1) = ScaleMin(packed, (2 * c) + 1);
            float d0 = d * sc0, d1 = d * sc1, n0 = min * m0, n1 = min * m1;
            for (var l = 0; l < 32; l++)
            {
                y[(64 * c) + l] = (d0 * (qs[(32 * c) + l] & 0xF)) - n0;
                y[(64 * c) + 32 + l] = (d1 * (qs[(32 * c) + l] >> 4)) - n1;
            }
        }
    }

    /// <summary>Sub-block j's 6-bit scale and min from the 12 packed bytes (ggml's get_scale_min_k4).</summary>
    public static (int Scale, int Min) ScaleMin(ReadOnlySpan<byte> packed, int j) => j < 4
        ? (packed[j] & 63, packed[j + 4] & 63)
        : ((packed[j + 4] & 0xF) | ((packed[j - 4] >> 6) << 4), (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4));
}
