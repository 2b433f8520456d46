using System.Runtime.CompilerServices;

namespace Sharpformer.Tensors;

/// <summary>A bfloat16 value: sign, 8 exponent bits and 7 mantissa bits, i.e. the upper half of a binary32.</summary>
/// <remarks>Conversion from float rounds to nearest even and keeps NaN a NaN, as PyTorch does.</remarks>
public readonly struct BFloat16 : IEquatable<BFloat16>
{
    /// <summary>The raw 16 bits.</summary>
    public ushort Bits { get; }

    private BFloat16(ushort bits) => Bits = bits;

    /// <summary>Reinterprets 16 raw bits as a bfloat16.</summary>
    public static BFloat16 FromBits(ushort bits) => new(bits);

    /// <summary>Rounds a float to the nearest bfloat16 (ties to even); NaN stays a quiet NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static BFloat16 FromSingle(float value)
    {
        uint u = BitConverter.SingleToUInt32Bits(value);
        if ((u & 0x7FFF_FFFFu) > 0x7F80_0000u)
        {
            return new BFloat16((ushort)((u >> 16) | 0x0040u));
        }

        uint roundingBias = 0x7FFFu + ((u >> 16) & 1u);
        return new BFloat16((ushort)((u + roundingBias) >> 16));
    }

    /// <summary>Widens to float exactly.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float ToSingle() => BitConverter.UInt32BitsToSingle((uint)Bits << 16);

    /// <summary>Widens to float exactly.</summary>
    public static explicit operator float(BFloat16 value) => value.ToSingle();

    /// <summary>Rounds to nearest even.</summary>
    public static explicit operator BFloat16(float value) => FromSingle(value);

    /// <inheritdoc/>
    public bool Equals(BFloat16 other) => Bits == other.Bits;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is BFloat16 other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => Bits;

    /// <summary>Bitwise equality.</summary>
    public static bool operator ==(BFloat16 left, BFloat16 right) => left.Equals(right);

    /// <summary>Bitwise inequality.</summary>
    public static bool operator !=(BFloat16 left, BFloat16 right) => !left.Equals(right);

    /// <inheritdoc/>
    public override string ToString() => ToSingle().ToString(System.Globalization.CultureInfo.InvariantCulture);
}
