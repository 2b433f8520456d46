namespace Sharpformer.Tensors.Kernels.Quant;

/// <summary>Q8_0: 32 values as an F16 scale d = max|x| / 127 and 32 signed bytes round(x / d) (ties away from zero, as ggml's roundf).</summary>
internal static class Q8_0
{
    public const int Values = 32;

    public static void QuantizeBlock(ReadOnlySpan<float> x, Span<byte> y)
    {
        var amax = 0f;
        for (var j = 0; j < Values; j++)
        {
            amax = MathF.Max(amax, MathF.Abs(x[j]));
        }

        var d = amax / 127f;
        var id = d != 0f ? 1f / d : 0f;
        QuantTypeInfo.WriteHalf(y, 0, d);
        for (var j = 0; j < Values; j++)
        {
            y[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
        }
    }

    public static void DequantizeBlock(ReadOnlySpan<byte> x, Span<float> y)
    {
        var d = QuantTypeInfo.ReadHalf(x, 0);
        for (var j = 0; j < Values; j++)
        {
            y[j] = (sbyte)x[2 + j] * d;
        }
    }
}
