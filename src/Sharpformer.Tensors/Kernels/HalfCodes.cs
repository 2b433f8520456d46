using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Sharpformer.Tensors.Kernels;

/// <summary>
/// F16 weights re-encoded at load as <see cref="HalfCode"/>s, which widen to F32 exactly in three operations per value
/// instead of the ~9–10 integer operations per 16 values (plus table lookups) of the exact IEEE widening: batch-1 F16
/// decode on AMD EPYC Zen 4 is bound by that widening, not by memory.
/// <para>
/// A half h (sign s, exponent e, mantissa m) becomes a code with the same sign bit, an exponent field E and a mantissa M
/// such that <c>Int32BitsToSingle(((int)(short)c &lt;&lt; 13) &amp; 0x8FFFE000) · 2^102</c> is (float)h exactly: the
/// sign-extended shift puts E at the F32 exponent's low 5 bits (its upper 3 bits masked to zero) and M at the top of
/// the mantissa, giving 2^(E − 127)·1.M, and 2^102 moves that to 2^(E − 25)·1.M. Normal halves take E = e + 10 (so the
/// code is h + 0x2800); subnormal halves m·2^-24 are normalized, m shifted left k times until bit 10 is set, E = 11 − k
/// (1 to 10); ±0 is the sign bit alone. E ≥ 1 for every nonzero code, so the F32 operand is never subnormal (no
/// microcode assist) and the multiply is exact. E ≤ 31 needs e ≤ 21: finite halves with |h| &lt; 128 only
/// (<see cref="CanEncode(ReadOnlySpan{Half})"/>); a tensor with any other value stays IEEE.
/// </para>
/// <para>
/// Batch-1 <see cref="Gemv"/> over codes, against the same weights as F16 (bit-equal outputs), 2 threads, AMD EPYC Zen 4
/// (family 25 model 17, 2 vCPUs, a noisy shared host): a 3072 × 768 matrix in cache 41–46 GB/s against 22–24 (medians
/// of alternated samples, three runs); 24 of them cycled from memory 21–27 against 16–25 GB/s, near the host's memory
/// rate.
/// </para>
/// </summary>
public static class HalfCodes
{
    /// <summary>2^102: the code's F32 bits (exponent E) times this is the half's value.</summary>
    public const float Scale = 5.0706024009129176E+30f;

    /// <summary>What the widening keeps of a sign-extended code shifted left by 13: the sign (bit 31), E and M (bits 27–13).</summary>
    internal const uint Mask = 0x8FFFE000;

    /// <summary>A half's magnitude bits at or above this (exponent 22) are not encodable: |h| ≥ 128, inf or NaN.</summary>
    private const uint Limit = 22 << 10;

    /// <summary>A normal half's code is the half plus this (E = e + 10).</summary>
    private const uint NormalOffset = 10 << 10;

    /// <summary>2^126 as F32 bits: a subnormal half's code widened without its sign times this is the mantissa m as a float.</summary>
    private const uint SubnormalToInteger = 253u << 23;

    /// <summary>Whether one half is encodable: finite with |h| &lt; 128.</summary>
    public static bool CanEncode(Half value) => (BitConverter.HalfToUInt16Bits(value) & 0x7FFFu) < Limit;

    /// <summary>Whether every value is encodable (finite with |v| &lt; 128); vectorized.</summary>
    public static bool CanEncode(ReadOnlySpan<Half> values) => FirstUnencodable(MemoryMarshal.Cast<Half, ushort>(values)) < 0;

    /// <summary>
    /// Re-encodes <paramref name="values"/> in place as codes: afterwards the span's bits are <see cref="HalfCode"/>s (view
    /// them with <c>MemoryMarshal.Cast&lt;Half, HalfCode&gt;</c>). Every value is checked before any is written.
    /// </summary>
    /// <exception cref="ArgumentException">A value is not encodable (named with its index); the span is unchanged.</exception>
    public static void Encode(Span<Half> values)
    {
        var bad = FirstUnencodable(MemoryMarshal.Cast<Half, ushort>(values));
        if (bad >= 0)
        {
            throw new ArgumentException($"HalfCodes.Encode: value [{bad}] = {values[bad]} is not encodable (finite with |h| < 128 only); nothing was changed.", nameof(values));
        }

        EncodeChecked(MemoryMarshal.Cast<Half, ushort>(values));
    }

    /// <summary>
    /// <see cref="Encode"/> when every value is encodable (one pass to check, one to write); false, with the span
    /// unchanged, when one is not.
    /// </summary>
    public static bool TryEncode(Span<Half> values)
    {
        var bits = MemoryMarshal.Cast<Half, ushort>(values);
        if (FirstUnencodable(bits) >= 0)
        {
            return false;
        }

        EncodeChecked(bits);
        return true;
    }

    /// <summary>The encoding pass over halves already checked to be encodable.</summary>
    private static void EncodeChecked(Span<ushort> bits) => Recode(bits, encode: true);

    /// <summary>Turns codes back into IEEE half bits in place, the exact inverse of <see cref="Encode"/>; vectorized.</summary>
    public static void Decode(Span<HalfCode> codes) => Recode(MemoryMarshal.Cast<HalfCode, ushort>(codes), encode: false);

    /// <summary>
    /// Halves → codes (<paramref name="encode"/>) or codes → halves in place: vector lanes (<see cref="EncodeLanes"/>,
    /// <see cref="DecodeLanes"/>), then the scalar reference for the tail.
    /// </summary>
    private static void Recode(Span<ushort> bits, bool encode)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            ref var start = ref MemoryMarshal.GetReference(bits);
            for (; i <= bits.Length - Vector<ushort>.Count; i += Vector<ushort>.Count)
            {
                Vector.Widen(Vector.LoadUnsafe(ref start, (nuint)i), out var low, out var high);
                var narrow = encode ? Vector.Narrow(EncodeLanes(low), EncodeLanes(high)) : Vector.Narrow(DecodeLanes(low), DecodeLanes(high));
                narrow.StoreUnsafe(ref start, (nuint)i);
            }
        }

        if (encode)
        {
            EncodeReference(bits[i..]);
        }
        else
        {
            DecodeReference(bits[i..]);
        }
    }

    /// <summary>Widens codes to F32, exactly (each equals (float) of its half, −0 included); vectorized.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <paramref name="codes"/>.</exception>
    public static void ToSingle(ReadOnlySpan<HalfCode> codes, Span<float> destination)
    {
        if (destination.Length < codes.Length)
        {
            throw new ArgumentException($"HalfCodes.ToSingle: {codes.Length} codes but room for {destination.Length} floats.", nameof(destination));
        }

        var bits = MemoryMarshal.Cast<HalfCode, short>(codes);
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            ref var start = ref MemoryMarshal.GetReference(bits);
            ref var dst = ref MemoryMarshal.GetReference(destination);
            var mask = new Vector<int>(unchecked((int)Mask));
            var scale = new Vector<float>(Scale);
            for (; i <= bits.Length - Vector<short>.Count; i += Vector<short>.Count)
            {
                Vector.Widen(Vector.LoadUnsafe(ref start, (nuint)i), out var low, out var high);
                (Vector.AsVectorSingle(Vector.ShiftLeft(low, 13) & mask) * scale).StoreUnsafe(ref dst, (nuint)i);
                (Vector.AsVectorSingle(Vector.ShiftLeft(high, 13) & mask) * scale).StoreUnsafe(ref dst, (nuint)(i + Vector<int>.Count));
            }
        }

        ToSingleReference(codes[i..], destination[i..]);
    }

    /// <summary>The scalar reference of <see cref="ToSingle"/> (and its tail).</summary>
    internal static void ToSingleReference(ReadOnlySpan<HalfCode> codes, Span<float> destination)
    {
        for (var i = 0; i < codes.Length; i++)
        {
            destination[i] = Widen(codes[i].Bits);
        }
    }

    /// <summary>The scalar reference of <see cref="Encode"/> (and its tail): every value must be encodable.</summary>
    internal static void EncodeReference(Span<ushort> bits)
    {
        for (var i = 0; i < bits.Length; i++)
        {
            bits[i] = EncodeBits(bits[i]);
        }
    }

    /// <summary>The scalar reference of <see cref="Decode"/> (and its tail).</summary>
    internal static void DecodeReference(Span<ushort> bits)
    {
        for (var i = 0; i < bits.Length; i++)
        {
            bits[i] = DecodeBits(bits[i]);
        }
    }

    /// <summary>The index of the first value that is not encodable, or −1; vectorized, the scalar loop finding the exact index.</summary>
    internal static int FirstUnencodable(ReadOnlySpan<ushort> bits)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            ref var start = ref MemoryMarshal.GetReference(bits);
            var magnitude = new Vector<ushort>(0x7FFF);
            var limit = new Vector<ushort>((ushort)Limit);
            for (; i <= bits.Length - Vector<ushort>.Count; i += Vector<ushort>.Count)
            {
                if (!Vector.LessThanAll(Vector.LoadUnsafe(ref start, (nuint)i) & magnitude, limit))
                {
                    break;
                }
            }
        }

        var rest = FirstUnencodableReference(bits[i..]);
        return rest < 0 ? -1 : i + rest;
    }

    /// <summary>The scalar reference of <see cref="FirstUnencodable"/>.</summary>
    internal static int FirstUnencodableReference(ReadOnlySpan<ushort> bits)
    {
        for (var i = 0; i < bits.Length; i++)
        {
            if ((bits[i] & 0x7FFFu) >= Limit)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>One encodable half's code (the scalar definition): normal h + 0x2800; subnormal normalized; ±0 the sign alone.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ushort EncodeBits(ushort half)
    {
        uint magnitude = half & 0x7FFFu, sign = half & 0x8000u;
        if (magnitude >= 0x400)
        {
            return (ushort)(half + NormalOffset);
        }

        if (magnitude == 0)
        {
            return (ushort)sign;
        }

        // Subnormal m·2^-24: L = m's bit length (1–10), shifted left 11 − L times to set bit 10, E = L.
        var length = 32 - BitOperations.LeadingZeroCount(magnitude);
        return (ushort)(sign | ((uint)length << 10) | ((magnitude << (11 - length)) & 0x3FFu));
    }

    /// <summary>One code's half (the scalar definition): E ≥ 11 normal, 1–10 subnormal (the shift undone), 0 a signed zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ushort DecodeBits(ushort code)
    {
        uint sign = code & 0x8000u, exponent = ((uint)code >> 10) & 31u;
        if (exponent >= 11)
        {
            return (ushort)(code - NormalOffset);
        }

        return exponent == 0 ? (ushort)sign : (ushort)(sign | (((code & 0x3FFu) | 0x400u) >> (int)(11 - exponent)));
    }

    /// <summary>One code widened to F32: sign-extend, shift left 13, mask, times 2^102 (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Widen(ushort code) => BitConverter.Int32BitsToSingle(((short)code << 13) & unchecked((int)Mask)) * Scale;

    /// <summary>
    /// Halves (low 16 bits of each lane, the high bits zero) → codes. Normal: + 0x2800. Subnormal: m converted to F32
    /// (exact) has exponent field 126 + L and m's bits after the leading one at the top of its mantissa, so its bits
    /// shifted right by 13, less 126 in the exponent place, are the code's E = L and M. Zero: the sign.
    /// </summary>
    private static Vector<uint> EncodeLanes(Vector<uint> half)
    {
        var magnitude = half & new Vector<uint>(0x7FFF);
        var sign = half & new Vector<uint>(0x8000);
        var asFloat = Vector.AsVectorUInt32(Vector.ConvertToSingle(Vector.AsVectorInt32(magnitude)));
        var subnormal = Vector.ShiftRightLogical(asFloat, 13) - new Vector<uint>(126u << 10);
        var small = Vector.ConditionalSelect(Vector.Equals(magnitude, Vector<uint>.Zero), Vector<uint>.Zero, subnormal);
        var code = Vector.ConditionalSelect(Vector.LessThan(magnitude, new Vector<uint>(0x400)), small, magnitude + new Vector<uint>(NormalOffset));
        return code | sign;
    }

    /// <summary>
    /// Codes (low 16 bits of each lane, the high bits zero) → halves. E ≥ 11: − 0x2800. Otherwise the code widened without
    /// its sign, times 2^24 (so 2^126 in all), is the subnormal mantissa m as an exact integer (0 for E = 0).
    /// </summary>
    private static Vector<uint> DecodeLanes(Vector<uint> code)
    {
        var magnitude = code & new Vector<uint>(0x7FFF);
        var sign = code & new Vector<uint>(0x8000);
        var widened = Vector.AsVectorSingle(Vector.ShiftLeft(magnitude, 13)) * Vector.AsVectorSingle(new Vector<uint>(SubnormalToInteger));
        var subnormal = Vector.AsVectorUInt32(Vector.ConvertToInt32(widened));
        var normal = magnitude - new Vector<uint>(NormalOffset);
        return Vector.ConditionalSelect(Vector.LessThan(magnitude, new Vector<uint>(11u << 10)), subnormal, normal) | sign;
    }
}
