namespace Sharpformer.Tensors.Kernels.Quant;

/// <summary>
/// Q6_K: a super-block of 256 values in sixteen groups of 16, each with a signed 8-bit scale s_g; an F16 d for the
/// super-block; x = d·s_g·(q − 32) with a 6-bit code q. Layout (210 bytes): ql[128] (low 4 bits), qh[64] (high 2 bits),
/// scales[16], d. For each half h (128 values), l in 0..31: ql[64h + l] holds values 128h + l (low nibble) and
/// 128h + 64 + l (high); ql[64h + 32 + l] holds 128h + 32 + l and 128h + 96 + l; qh[32h + l] holds the top two bits of
/// 128h + l, + 32, + 64, + 96 in bit pairs 0, 2, 4, 6. The quantizer is ggml's quantize_row_q6_K_ref: per group a
/// weighted search over 19 candidate scales (make_qx_quants), then the scales quantized to 8 bits against the largest.
/// </summary>
internal static class Q6_K
{
    public const int Values = 256;

    /// <summary>Offset of the 64 high-bit bytes.</summary>
    public const int HighOffset = 128;

    /// <summary>Offset of the 16 signed scales.</summary>
    public const int ScalesOffset = 192;

    /// <summary>Offset of the F16 d.</summary>
    public const int DOffset = 208;

    public static void QuantizeBlock(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<sbyte> codes = stackalloc sbyte[Values];
        Span<float> scales = stackalloc float[16];
        var maxScale = 0f;
        var maxAbsScale = 0f;
        for (var g = 0; g < 16; g++)
        {
            var scale = KQuantSearch.SymmetricScale(16, 32, x.Slice(16 * g, 16), codes.Slice(16 * g, 16));
            scales[g] = scale;
            if (MathF.Abs(scale) > maxAbsScale)
            {
                maxAbsScale = MathF.Abs(scale);
                maxScale = scale;
            }
        }

        y[..210].Clear();
        if (maxAbsScale < KQuantSearch.GroupMaxEps)
        {
            return;
        }

        var iscale = -128f / maxScale;
        QuantTypeInfo.WriteHalf(y, DOffset, 1 / iscale);
        for (var g = 0; g < 16; g++)
        {
            y[ScalesOffset + g] = (byte)(sbyte)Math.Min(127, QuantTypeInfo.NearestInt(iscale * scales[g]));
        }

        var dAll = QuantTypeInfo.ReadHalf(y, DOffset);
        for (var g = 0; g < 16; g++)
        {
            var d = dAll * (sbyte)y[ScalesOffset + g];
            if (d == 0f)
            {
                continue;
            }

            for (var i = 0; i < 16; i++)
            {
                var l = Math.Clamp(QuantTypeInfo.NearestInt(x[(16 * g) + i] / d), -32, 31);
                codes[(16 * g) + i] = (sbyte)(l + 32);
            }
        }

        for (var h = 0; h < 2; h++)
        {
            var ql = y.Slice(64 * h, 64);
            var qh = y.Slice(HighOffset + (32 * h), 32);
            var c = codes.Slice(128 * h, 128);
            for (var l = 0; l < 32; l++)
            {
                ql[l] = (byte)((c[l] & 0xF) | ((c[l + 64] & 0xF) << 4));
                ql[l + 32] = (byte)((c[l + 32] & 0xF) | ((c[l + 96] & 0xF) << 4));
                qh[l] = (byte)((c[l] >> 4) | ((c[l + 32] >> 4) << 2) | ((c[l + 64] >> 4) << 4) | ((c[l + 96] >> 4) << 6));
            }
        }
    }

    public static void DequantizeBlock(ReadOnlySpan<byte> x, Span<float> y)
    {
        var d = QuantTypeInfo.ReadHalf(x, DOffset);
        for (var h = 0; h < 2; h++)
        {
            var ql = x.Slice(64 * h, 64);
            var qh = x.Slice(HighOffset + (32 * h), 32);
            var sc = x.Slice(ScalesOffset + (8 * h), 8);
            var o = y.Slice(128 * h, 128);
            for (var l = 0; l < 32; l++)
            {
                var g = l / 16;
                var q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                var q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                var q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                var q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                o[l] = d * (sbyte)sc[g] * q1;
                o[l + 32] = d * (sbyte)sc[g + 2] * q2;
                o[l + 64] = d * (sbyte)sc[g + 4] * q3;
                o[l + 96] = d * (sbyte)sc[g + 6] * q4;
            }
        }
    }

    /// <summary>The code (0–63) of value i in 0..255 of a block, and its group's scale: the decoding every kernel does in registers.</summary>
    public static int Code(ReadOnlySpan<byte> block, int i)
    {
        var h = i / 128;
        var r = i % 128;
        var quarter = r / 32;
        var l = r % 32;
        var low = block[(64 * h) + l + (quarter % 2 == 1 ? 32 : 0)];
        var nibble = quarter < 2 ? low & 0xF : low >> 4;
        var high = (block[HighOffset + (32 * h) + l] >> (2 * quarter)) & 3;
        return nibble | (high << 4);
    }
}
