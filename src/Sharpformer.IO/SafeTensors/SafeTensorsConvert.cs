using System.Buffers.Binary;
using System.Diagnostics;

namespace Sharpformer.IO.SafeTensors;

/// <summary>Widens the safetensors dtypes that have no Sharpformer tensor type (F64, I8, U8, BOOL, FP8, ...) to F32.</summary>
internal static class SafeTensorsConvert
{
    /// <summary>Decodes <paramref name="source"/> (little-endian elements of <paramref name="dtype"/>) into floats.</summary>
    public static void ToF32(SafeTensorsDType dtype, ReadOnlySpan<byte> source, Span<float> destination)
    {
        int width = dtype.BitSize() / 8;
        Debug.Assert(source.Length == destination.Length * width, "byte length was validated against the element count");
        for (int i = 0; i < destination.Length; i++)
        {
            var e = source.Slice(i * width, width);
            destination[i] = dtype switch
            {
                SafeTensorsDType.BOOL => e[0] != 0 ? 1f : 0f,
                SafeTensorsDType.U8 => e[0],
                SafeTensorsDType.I8 => (sbyte)e[0],
                SafeTensorsDType.I16 => BinaryPrimitives.ReadInt16LittleEndian(e),
                SafeTensorsDType.U16 => BinaryPrimitives.ReadUInt16LittleEndian(e),
                SafeTensorsDType.U32 => BinaryPrimitives.ReadUInt32LittleEndian(e),
                SafeTensorsDType.U64 => BinaryPrimitives.ReadUInt64LittleEndian(e),
                SafeTensorsDType.F64 => (float)BinaryPrimitives.ReadDoubleLittleEndian(e),
                SafeTensorsDType.F8_E4M3 => F8E4M3ToSingle(e[0]),
                SafeTensorsDType.F8_E5M2 => F8E5M2ToSingle(e[0]),
                SafeTensorsDType.F8_E8M0 => F8E8M0ToSingle(e[0]),
                _ => throw new NotSupportedException($"{dtype} has no F32 conversion."),
            };
        }
    }

    /// <summary>FP8 E4M3 "FN": bias 7, no infinities, S.1111.111 is NaN, subnormals when the exponent is 0.</summary>
    public static float F8E4M3ToSingle(byte b)
    {
        int sign = b >> 7, exp = (b >> 3) & 0xF, man = b & 0x7;
        float magnitude;
        if (exp == 0xF && man == 0x7)
        {
            return float.NaN;
        }

        magnitude = exp == 0 ? man / 8f * MathF.Pow(2, -6) : (1 + (man / 8f)) * MathF.Pow(2, exp - 7);
        return sign != 0 ? -magnitude : magnitude;
    }

    /// <summary>FP8 E5M2: the top byte of an IEEE binary16, so widening through <see cref="Half"/> is exact.</summary>
    public static float F8E5M2ToSingle(byte b) => (float)BitConverter.UInt16BitsToHalf((ushort)(b << 8));

    /// <summary>FP8 E8M0: 2^(e − 127), with 0xFF meaning NaN (no sign, no mantissa).</summary>
    public static float F8E8M0ToSingle(byte b) => b == 0xFF ? float.NaN : (float)Math.Pow(2, b - 127);
}
