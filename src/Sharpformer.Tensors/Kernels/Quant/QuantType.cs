using System.Buffers.Binary;

namespace Sharpformer.Tensors.Kernels.Quant;

/// <summary>
/// The ggml block-quantized weight types Sharpformer reads, writes and multiplies, numbered as ggml numbers them (the
/// GGUF tensor type ids). Each row of a matrix is a run of independent blocks laid out byte for byte as ggml lays them.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1707:Identifiers should not contain underscores", Justification = "ggml's own type names (Q4_0, Q6_K) are what users search for.")]
public enum QuantType
{
    /// <summary>32 values in 18 bytes: an F16 scale d and 16 bytes of 4-bit codes q (low nibbles values 0–15, high 16–31); x = d·(q − 8).</summary>
    Q4_0 = 2,

    /// <summary>32 values in 34 bytes: an F16 scale d and 32 signed bytes q; x = d·q.</summary>
    Q8_0 = 8,

    /// <summary>
    /// 256 values in 144 bytes: F16 d and dmin, 12 bytes packing eight 6-bit scales and eight 6-bit mins (one per 32
    /// values), 128 bytes of 4-bit codes; x = d·scale·q − dmin·min.
    /// </summary>
    Q4_K = 12,

    /// <summary>
    /// 256 values in 210 bytes: 128 bytes of low 4 bits, 64 bytes of high 2 bits, sixteen signed 8-bit scales (one per 16
    /// values) and an F16 d at the end; x = d·scale·(q − 32).
    /// </summary>
    Q6_K = 14,
}

/// <summary>Sizes of the <see cref="QuantType"/> blocks and the F16 scale reads and writes they share.</summary>
public static class QuantTypeInfo
{
    /// <summary>Values per block: 32 (Q8_0, Q4_0) or 256 (the K-quants' super-blocks).</summary>
    /// <param name="type">The block type.</param>
    /// <returns>Values per block.</returns>
    /// <exception cref="ArgumentOutOfRangeException">Not a <see cref="QuantType"/>.</exception>
    public static int BlockValues(this QuantType type) => type switch
    {
        QuantType.Q8_0 or QuantType.Q4_0 => 32,
        QuantType.Q4_K or QuantType.Q6_K => 256,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Unknown quantized type: use Q8_0, Q4_0, Q4_K or Q6_K."),
    };

    /// <summary>Bytes per block: 34 (Q8_0), 18 (Q4_0), 144 (Q4_K), 210 (Q6_K).</summary>
    /// <param name="type">The block type.</param>
    /// <returns>Bytes per block.</returns>
    /// <exception cref="ArgumentOutOfRangeException">Not a <see cref="QuantType"/>.</exception>
    public static int BlockBytes(this QuantType type) => type switch
    {
        QuantType.Q8_0 => 34,
        QuantType.Q4_0 => 18,
        QuantType.Q4_K => 144,
        QuantType.Q6_K => 210,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Unknown quantized type: use Q8_0, Q4_0, Q4_K or Q6_K."),
    };

    /// <summary>Bytes of one row of <paramref name="columns"/> values.</summary>
    /// <param name="type">The block type.</param>
    /// <param name="columns">Values per row, a positive multiple of <see cref="BlockValues"/>.</param>
    /// <returns>Bytes per row.</returns>
    /// <exception cref="ArgumentException"><paramref name="columns"/> is not a positive multiple of the block size.</exception>
    public static long RowBytes(this QuantType type, long columns)
    {
        var block = type.BlockValues();
        if (columns <= 0 || columns % block != 0)
        {
            throw new ArgumentException(
                $"{type}: a row of {columns} values is not whole blocks of {block}; quantize only matrices whose inner dimension is a multiple of {block} (keep others F16/F32).",
                nameof(columns));
        }

        return columns / block * type.BlockBytes();
    }

    /// <summary>Whether a row of <paramref name="columns"/> values can be stored as <paramref name="type"/> (a positive multiple of its block).</summary>
    /// <param name="type">The block type.</param>
    /// <param name="columns">Values per row.</param>
    /// <returns>True when the row is whole blocks.</returns>
    public static bool Fits(this QuantType type, long columns) => columns > 0 && columns % type.BlockValues() == 0;

    /// <summary>The F16 at <paramref name="offset"/> (little-endian) as F32.</summary>
    internal static float ReadHalf(ReadOnlySpan<byte> bytes, int offset) =>
        (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(bytes[offset..]));

    /// <summary>Writes <paramref name="value"/> rounded to F16 (to nearest, ties to even, as ggml's FP32→FP16) at <paramref name="offset"/>.</summary>
    internal static void WriteHalf(Span<byte> bytes, int offset, float value) =>
        BinaryPrimitives.WriteUInt16LittleEndian(bytes[offset..], BitConverter.HalfToUInt16Bits((Half)value));

    /// <summary>
    /// ggml's nearest_int: rounds to the nearest integer, ties to even, by adding 1.5·2^23 and reading the low mantissa
    /// bits (exact for |x| ≤ 2^22, which every caller keeps to).
    /// </summary>
    internal static int NearestInt(float value)
    {
        var shifted = value + 12582912f;
        return (BitConverter.SingleToInt32Bits(shifted) & 0x007FFFFF) - 0x00400000;
    }
}
