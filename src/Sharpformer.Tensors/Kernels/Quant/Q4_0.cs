namespace Sharpformer.Tensors.Kernels.Quant;

/// <summary>
/// Q4_0: 32 values as an F16 scale d = m / −8, where m is the value of largest magnitude (so m itself maps to code 0,
/// −8·d), and 16 bytes of codes q = min(15, trunc(x / d + 8.5)): value j in the low nibble of byte j, value j + 16 in
/// its high nibble. x = d·(q − 8).
/// </summary>
internal static class Q4_0
{
    public const int Values = 32;

    public static void QuantizeBlock(ReadOnlySpan<float> x, Span<byte> y)
    {
        var amax = 0f;
        var max = 0f;
        for (var j = 0; j < Values; j++)
        {
            if (amax < MathF.Abs(x[j]))
            {
                amax = MathF.Abs(x[j]);
                max = x[j];
            }
        }

        var d = max / -8f;
        var id = d != 0f ? 1f / d : 0f;
        QuantTypeInfo.WriteHalf(y, 0, d);
        for (var j = 0; j < Values / 2; j++)
        {
            var q0 = Math.Min(15, (int)((x[j] * id) + 8.5f));
            var q1 = Math.Min(15, (int)((x[j + 16] * id) + 8.5f));
            y[2 + j] = (byte)(q0 | (q1 << 4));
        }
    }

    public static void DequantizeBlock(ReadOnlySpan<byte> x, Span<float> y)
    {
        var d = QuantTypeInfo.ReadHalf(x, 0);
        for (var j = 0; j < Values / 2; j++)
        {
            y[j] = ((x[2 + j] & 0x0F) - 8) * d;
            y[j + 16] = ((x[2 + j] >> 4) - 8) * d;
        }
    }
}
