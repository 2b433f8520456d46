using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Sharpformer.Tensors.Kernels;

namespace Sharpformer.Tensors;

/// <summary>
/// An F16 weight re-encoded so that it widens to F32 in three integer-and-multiply steps, exactly (see
/// <see cref="HalfCodes"/>): the same sign bit, an exponent field E = e + 10 (normal halves) or 1–10 (subnormal halves,
/// normalized), the mantissa. Its own type, so that codes and IEEE halves are never mixed up in a span; the same two
/// bytes as a <see cref="Half"/>, so a weight buffer can be re-encoded in place and viewed as either.
/// </summary>
[StructLayout(LayoutKind.Sequential, Size = 2)]
public readonly struct HalfCode : IEquatable<HalfCode>
{
    private HalfCode(ushort bits) => Bits = bits;

    /// <summary>The raw 16 bits of the code.</summary>
    public ushort Bits { get; }

    /// <summary>Reinterprets 16 raw bits as a code.</summary>
    public static HalfCode FromBits(ushort bits) => new(bits);

    /// <summary>The code of an encodable half (finite, |h| &lt; 128).</summary>
    /// <exception cref="ArgumentException"><paramref name="value"/> is not encodable.</exception>
    public static HalfCode FromHalf(Half value) => HalfCodes.CanEncode(value)
        ? new(HalfCodes.EncodeBits(BitConverter.HalfToUInt16Bits(value)))
        : throw new ArgumentException($"HalfCode: {value} is not encodable (finite with |h| < 128 only).", nameof(value));

    /// <summary>The half this code stands for (exact).</summary>
    public Half ToHalf() => BitConverter.UInt16BitsToHalf(HalfCodes.DecodeBits(Bits));

    /// <summary>Widens to float exactly: the same value as (float) of the half.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float ToSingle() => HalfCodes.Widen(Bits);

    /// <summary>Widens to float exactly.</summary>
    public static explicit operator float(HalfCode value) => value.ToSingle();

    /// <inheritdoc/>
    public bool Equals(HalfCode other) => Bits == other.Bits;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is HalfCode other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => Bits;

    /// <summary>Bitwise equality.</summary>
    public static bool operator ==(HalfCode left, HalfCode right) => left.Equals(right);

    /// <summary>Bitwise inequality.</summary>
    public static bool operator !=(HalfCode left, HalfCode right) => !left.Equals(right);

    /// <inheritdoc/>
    public override string ToString() => ToSingle().ToString(System.Globalization.CultureInfo.InvariantCulture);
}
