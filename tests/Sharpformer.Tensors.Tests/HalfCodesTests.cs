using System.Runtime.InteropServices;
using Sharpformer.Tensors.Kernels;

namespace Sharpformer.Tensors.Tests;

/// <summary>
/// <see cref="HalfCodes"/> on every 16-bit pattern: encodable halves (finite, |h| &lt; 128) round-trip through the codes
/// bit for bit and widen to exactly (float)h, the others are refused; the vector forms equal their scalar references.
/// CI runs this class again with AVX-512 off, with AVX2 off and with all SIMD off, so each width meets the reference.
/// </summary>
public sealed class HalfCodesTests
{
    private static bool Encodable(ushort bits)
    {
        var h = BitConverter.UInt16BitsToHalf(bits);
        return Half.IsFinite(h) && Math.Abs((float)h) < 128f;
    }

    /// <summary>Every encodable half pattern, in order.</summary>
    private static ushort[] EncodableBits() => [.. Enumerable.Range(0, 1 << 16).Select(i => (ushort)i).Where(Encodable)];

    [Fact]
    public void Scale_IsTwoToThe102()
    {
        Assert.Equal(HalfCodes.Scale, MathF.ScaleB(1f, 102));
        Assert.Equal(2, Marshal.SizeOf<HalfCode>());
        Assert.Equal(2, System.Runtime.CompilerServices.Unsafe.SizeOf<HalfCode>());
    }

    [Fact]
    public void CanEncode_Every16BitPattern_FiniteBelow128Only()
    {
        for (var i = 0; i < 1 << 16; i++)
        {
            var bits = (ushort)i;
            var h = BitConverter.UInt16BitsToHalf(bits);
            Assert.True(HalfCodes.CanEncode(h) == Encodable(bits), $"half 0x{i:X4} ({h})");
        }

        // The vector scan over all patterns finds the first bad one where the scalar loop does (0x5800 = 128).
        var all = Enumerable.Range(0, 1 << 16).Select(i => (ushort)i).ToArray();
        Assert.Equal(0x5800, HalfCodes.FirstUnencodable(all));
        Assert.Equal(HalfCodes.FirstUnencodableReference(all), HalfCodes.FirstUnencodable(all));
        Assert.True(HalfCodes.CanEncode(MemoryMarshal.Cast<ushort, Half>(EncodableBits())));
    }

    [Fact]
    public void CanEncode_EveryUnencodablePatternAtEveryVectorPosition_IsRefused()
    {
        // Each refused pattern inside a span of encodable values, at a position that moves through the vector lanes and
        // the scalar tail (a span of 77: several vectors at every width, then a tail).
        var fill = new Half[77];
        for (var i = 0; i < fill.Length; i++)
        {
            fill[i] = (Half)(((i % 13) - 6) * 0.37f);
        }

        var bad = Enumerable.Range(0, 1 << 16).Select(i => (ushort)i).Where(b => !Encodable(b)).ToArray();
        Assert.Equal(2 * 10 * 1024, bad.Length);
        for (var j = 0; j < bad.Length; j++)
        {
            var span = (Half[])fill.Clone();
            var at = j % span.Length;
            span[at] = BitConverter.UInt16BitsToHalf(bad[j]);
            Assert.False(HalfCodes.CanEncode(span), $"0x{bad[j]:X4} at {at}");
            Assert.Equal(at, HalfCodes.FirstUnencodable(MemoryMarshal.Cast<Half, ushort>(span)));
        }
    }

    [Fact]
    public void EncodeDecode_EveryEncodableHalf_RoundTripsAndWidensExactly()
    {
        var halves = EncodableBits();
        Assert.Equal(2 * 22 * 1024, halves.Length);

        // Encode (vector + tail) against the scalar definition.
        var codes = (ushort[])halves.Clone();
        HalfCodes.Encode(MemoryMarshal.Cast<ushort, Half>(codes.AsSpan()));
        var reference = (ushort[])halves.Clone();
        HalfCodes.EncodeReference(reference);
        Assert.Equal(reference, codes);

        // Widened: (float)h bit for bit, −0 included, through the vector form, its reference and one code at a time.
        var asCodes = MemoryMarshal.Cast<ushort, HalfCode>(codes.AsSpan()).ToArray();
        var wide = new float[asCodes.Length];
        var wideReference = new float[asCodes.Length];
        HalfCodes.ToSingle(asCodes, wide);
        HalfCodes.ToSingleReference(asCodes, wideReference);
        for (var i = 0; i < halves.Length; i++)
        {
            var expected = BitConverter.SingleToUInt32Bits((float)BitConverter.UInt16BitsToHalf(halves[i]));
            Assert.True(expected == BitConverter.SingleToUInt32Bits(wide[i]), $"half 0x{halves[i]:X4} → code 0x{codes[i]:X4}: {wide[i]}");
            Assert.True(expected == BitConverter.SingleToUInt32Bits(wideReference[i]), $"half 0x{halves[i]:X4} (reference)");
            Assert.True(expected == BitConverter.SingleToUInt32Bits(asCodes[i].ToSingle()), $"half 0x{halves[i]:X4} (HalfCode)");

            // A nonzero code's exponent field is at least 1: its F32 operand is never subnormal.
            Assert.True((codes[i] & 0x7FFF) == 0 || ((codes[i] >> 10) & 31) >= 1, $"half 0x{halves[i]:X4}: code 0x{codes[i]:X4}");
        }

        // Decode: the halves back, bit for bit.
        HalfCodes.Decode(asCodes);
        Assert.Equal(halves, MemoryMarshal.Cast<HalfCode, ushort>(asCodes).ToArray());
        Assert.Equal(BitConverter.UInt16BitsToHalf(halves[^1]), HalfCode.FromBits(codes[^1]).ToHalf());
    }

    [Fact]
    public void Decode_Every16BitPattern_VectorEqualsReference()
    {
        // Codes Encode never makes (E = 0 with a mantissa; E ≤ 10 with bits below the subnormal's last) included: both forms
        // must still agree.
        var codes = Enumerable.Range(0, 1 << 16).Select(i => (ushort)i).ToArray();
        var reference = (ushort[])codes.Clone();
        HalfCodes.DecodeReference(reference);
        var actual = (ushort[])codes.Clone();
        HalfCodes.Decode(MemoryMarshal.Cast<ushort, HalfCode>(actual.AsSpan()));
        Assert.Equal(reference, actual);
    }

    [Fact]
    public void Encode_Unencodable_ThrowsNamingIndexAndChangesNothing()
    {
        var values = Enumerable.Range(0, 50).Select(i => (Half)(i * 0.5f)).ToArray();
        values[41] = (Half)130f;
        var before = (Half[])values.Clone();
        var ex = Assert.Throws<ArgumentException>(() => HalfCodes.Encode(values));
        Assert.Contains("[41]", ex.Message, StringComparison.Ordinal);
        Assert.Contains("130", ex.Message, StringComparison.Ordinal);
        Assert.Equal(before, values);
        Assert.Throws<ArgumentException>(() => HalfCodes.Encode(new[] { Half.NaN }));
        Assert.Throws<ArgumentException>(() => HalfCode.FromHalf(Half.NegativeInfinity));
        Assert.Throws<ArgumentException>(() => HalfCodes.ToSingle(new HalfCode[3], new float[2]));
    }

    [Fact]
    public void TryEncode_EncodesAsEncodeOrRefusesChangingNothing()
    {
        var values = Enumerable.Range(0, 50).Select(i => (Half)((i - 25) * 0.37f)).ToArray();
        values[7] = (Half)3e-7f; // subnormal
        var expected = (Half[])values.Clone();
        HalfCodes.Encode(expected);
        Assert.True(HalfCodes.TryEncode(values));
        Assert.Equal(expected, values);

        var refused = Enumerable.Range(0, 50).Select(i => (Half)(i * 0.5f)).ToArray();
        refused[41] = Half.PositiveInfinity;
        var before = (Half[])refused.Clone();
        Assert.False(HalfCodes.TryEncode(refused));
        Assert.Equal(before, refused);
    }

    [Fact]
    public void HalfCode_SignedZerosAndExtremes_AreExact()
    {
        foreach (var h in new[] { Half.Zero, Half.NegativeZero, Half.Epsilon, -Half.Epsilon, (Half)127.9f, (Half)(-127.9f), (Half)6.1e-5f })
        {
            var code = HalfCode.FromHalf(h);
            Assert.Equal(BitConverter.SingleToUInt32Bits((float)h), BitConverter.SingleToUInt32Bits((float)code));
            Assert.Equal(BitConverter.HalfToUInt16Bits(h), BitConverter.HalfToUInt16Bits(code.ToHalf()));
        }

        Assert.Equal(0x8000, HalfCode.FromHalf(Half.NegativeZero).Bits);
        Assert.Equal(0, HalfCode.FromHalf(Half.Zero).Bits);
    }
}
