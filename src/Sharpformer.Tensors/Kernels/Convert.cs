using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Sharpformer.Tensors.Kernels;

/// <summary>Element type conversion: F32 ↔ F16 / BF16 (storage formats) and F32 ↔ I32 / I64.</summary>
public static class Convert
{
    /// <summary>Converts contiguous <paramref name="source"/> into contiguous <paramref name="destination"/> of the same shape.</summary>
    public static void Run(Tensor source, Tensor destination)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        if (source.Shape != destination.Shape) ShapeError.Mismatch("Convert", source.Shape, destination.Shape);

        // Every conversion goes through F32, the compute type.
        if (source.DType == DType.F32)
        {
            FromF32(source.AsReadOnlySpan<float>(), destination);
        }
        else if (destination.DType == DType.F32)
        {
            ToF32(source, destination.AsSpan<float>());
        }
        else
        {
            var tmp = Tensor.Empty(source.Shape);
            ToF32(source, tmp.AsSpan<float>());
            FromF32(tmp.AsReadOnlySpan<float>(), destination);
        }
    }

    /// <summary>Widens <paramref name="source"/> (any dtype) to float.</summary>
    public static void ToF32(Tensor source, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(source);
        switch (source.DType)
        {
            case DType.F32: source.AsReadOnlySpan<float>().CopyTo(destination); break;
            case DType.F16: TensorPrimitives.ConvertToSingle(source.AsReadOnlySpan<Half>(), destination); break;
            case DType.BF16: BF16ToF32(source.AsReadOnlySpan<BFloat16>(), destination); break;
            case DType.I32: TensorPrimitives.ConvertChecked(source.AsReadOnlySpan<int>(), destination); break;
            case DType.I64: TensorPrimitives.ConvertChecked(source.AsReadOnlySpan<long>(), destination); break;
            default: throw new NotSupportedException($"Cannot convert {source.DType} to F32.");
        }
    }

    /// <summary>Narrows float <paramref name="source"/> into <paramref name="destination"/> (any dtype).</summary>
    public static void FromF32(ReadOnlySpan<float> source, Tensor destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        switch (destination.DType)
        {
            case DType.F32: source.CopyTo(destination.AsSpan<float>()); break;
            case DType.F16: TensorPrimitives.ConvertToHalf(source, destination.AsSpan<Half>()); break;
            case DType.BF16: F32ToBF16(source, destination.AsSpan<BFloat16>()); break;
            case DType.I32: TensorPrimitives.ConvertTruncating(source, destination.AsSpan<int>()); break;
            case DType.I64: TensorPrimitives.ConvertTruncating(source, destination.AsSpan<long>()); break;
            default: throw new NotSupportedException($"Cannot convert F32 to {destination.DType}.");
        }
    }

    /// <summary>
    /// float → F16 as an F16 KV cache stores it: rounded to nearest even (<see cref="TensorPrimitives.ConvertToHalf(ReadOnlySpan{float}, Span{Half})"/>),
    /// then results below F16's smallest normal (2^-14) flushed to zero of the same sign, and results beyond its largest
    /// finite value (±inf) saturated to ±65504; NaN stays NaN. Without subnormal or infinite halves the decode attention
    /// kernels widen a half by shifting its bits into place, with no subnormal F32 operand (a slow path on x86).
    /// SIMD: the flush and saturation as compares and selects on 16-bit lanes.
    /// </summary>
    /// <param name="source">F32 values.</param>
    /// <param name="destination">As many halves.</param>
    public static void F32ToF16Cache(ReadOnlySpan<float> source, Span<Half> destination)
    {
        CheckLengths(source.Length, destination.Length);
        TensorPrimitives.ConvertToHalf(source, destination[..source.Length]);
        Span<ushort> bits = MemoryMarshal.Cast<Half, ushort>(destination[..source.Length]);
        int n = bits.Length, i = 0;
        ref ushort b = ref MemoryMarshal.GetReference(bits);
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - 32; i += 32)
            {
                CacheHalf(Vector512.LoadUnsafe(ref b, (nuint)i)).StoreUnsafe(ref b, (nuint)i);
            }
        }

        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - 16; i += 16)
            {
                CacheHalf(Vector256.LoadUnsafe(ref b, (nuint)i)).StoreUnsafe(ref b, (nuint)i);
            }
        }

        if (Vector128.IsHardwareAccelerated)
        {
            for (; i <= n - 8; i += 8)
            {
                CacheHalf(Vector128.LoadUnsafe(ref b, (nuint)i)).StoreUnsafe(ref b, (nuint)i);
            }
        }

        for (; i < n; i++) Unsafe.Add(ref b, i) = CacheHalf(Unsafe.Add(ref b, i));
    }

    /// <summary>Scalar reference of <see cref="F32ToF16Cache"/>: <c>(Half)x</c> per element, then the flush and saturation.</summary>
    internal static void F32ToF16CacheReference(ReadOnlySpan<float> source, Span<Half> destination)
    {
        CheckLengths(source.Length, destination.Length);
        for (int i = 0; i < source.Length; i++)
        {
            destination[i] = BitConverter.UInt16BitsToHalf(CacheHalf(BitConverter.HalfToUInt16Bits((Half)source[i])));
        }
    }

    /// <summary>A half's bits with exponent 0 made ±0 and ±inf made ±65504 (0x7BFF); others (NaN included) unchanged.</summary>
    private static ushort CacheHalf(ushort h) =>
        (h & 0x7C00) == 0 ? (ushort)(h & 0x8000) : (h & 0x7FFF) == 0x7C00 ? (ushort)((h & 0x8000) | 0x7BFF) : h;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<ushort> CacheHalf(Vector512<ushort> h)
    {
        var sign = h & Vector512.Create((ushort)0x8000);
        var small = Vector512.Equals(h & Vector512.Create((ushort)0x7C00), Vector512<ushort>.Zero);
        var infinite = Vector512.Equals(h & Vector512.Create((ushort)0x7FFF), Vector512.Create((ushort)0x7C00));
        h = Vector512.ConditionalSelect(small, sign, h);
        return Vector512.ConditionalSelect(infinite, sign | Vector512.Create((ushort)0x7BFF), h);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ushort> CacheHalf(Vector256<ushort> h)
    {
        var sign = h & Vector256.Create((ushort)0x8000);
        var small = Vector256.Equals(h & Vector256.Create((ushort)0x7C00), Vector256<ushort>.Zero);
        var infinite = Vector256.Equals(h & Vector256.Create((ushort)0x7FFF), Vector256.Create((ushort)0x7C00));
        h = Vector256.ConditionalSelect(small, sign, h);
        return Vector256.ConditionalSelect(infinite, sign | Vector256.Create((ushort)0x7BFF), h);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ushort> CacheHalf(Vector128<ushort> h)
    {
        var sign = h & Vector128.Create((ushort)0x8000);
        var small = Vector128.Equals(h & Vector128.Create((ushort)0x7C00), Vector128<ushort>.Zero);
        var infinite = Vector128.Equals(h & Vector128.Create((ushort)0x7FFF), Vector128.Create((ushort)0x7C00));
        h = Vector128.ConditionalSelect(small, sign, h);
        return Vector128.ConditionalSelect(infinite, sign | Vector128.Create((ushort)0x7BFF), h);
    }

    /// <summary>bfloat16 → float: exact (shift into the upper half). SIMD: widen 16-bit lanes to 32 and shift.</summary>
    public static void BF16ToF32(ReadOnlySpan<BFloat16> source, Span<float> destination)
    {
        CheckLengths(source.Length, destination.Length);
        ReadOnlySpan<ushort> bits = MemoryMarshal.Cast<BFloat16, ushort>(source);
        Span<uint> dst = MemoryMarshal.Cast<float, uint>(destination);
        int n = bits.Length, i = 0;
        ref ushort s = ref MemoryMarshal.GetReference(bits);
        ref uint d = ref MemoryMarshal.GetReference(dst);
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - 32; i += 32)
            {
                var (lo, hi) = Vector512.Widen(Vector512.LoadUnsafe(ref s, (nuint)i));
                Vector512.ShiftLeft(lo, 16).StoreUnsafe(ref d, (nuint)i);
                Vector512.ShiftLeft(hi, 16).StoreUnsafe(ref d, (nuint)(i + 16));
            }
        }

        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - 16; i += 16)
            {
                var (lo, hi) = Vector256.Widen(Vector256.LoadUnsafe(ref s, (nuint)i));
                Vector256.ShiftLeft(lo, 16).StoreUnsafe(ref d, (nuint)i);
                Vector256.ShiftLeft(hi, 16).StoreUnsafe(ref d, (nuint)(i + 8));
            }
        }

        if (Vector128.IsHardwareAccelerated)
        {
            for (; i <= n - 8; i += 8)
            {
                var (lo, hi) = Vector128.Widen(Vector128.LoadUnsafe(ref s, (nuint)i));
                Vector128.ShiftLeft(lo, 16).StoreUnsafe(ref d, (nuint)i);
                Vector128.ShiftLeft(hi, 16).StoreUnsafe(ref d, (nuint)(i + 4));
            }
        }

        for (; i < n; i++) Unsafe.Add(ref d, i) = (uint)Unsafe.Add(ref s, i) << 16;
    }

    /// <summary>
    /// float → bfloat16, rounding to nearest even; NaN stays a quiet NaN. SIMD: the same bit arithmetic as
    /// <see cref="BFloat16.FromSingle"/> on 32-bit lanes, then a narrowing pack of the upper halves.
    /// </summary>
    public static void F32ToBF16(ReadOnlySpan<float> source, Span<BFloat16> destination)
    {
        CheckLengths(source.Length, destination.Length);
        ReadOnlySpan<uint> bits = MemoryMarshal.Cast<float, uint>(source);
        Span<ushort> dst = MemoryMarshal.Cast<BFloat16, ushort>(destination);
        int n = bits.Length, i = 0;
        ref uint s = ref MemoryMarshal.GetReference(bits);
        ref ushort d = ref MemoryMarshal.GetReference(dst);
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - 32; i += 32)
            {
                var lo = RoundToBF16(Vector512.LoadUnsafe(ref s, (nuint)i));
                var hi = RoundToBF16(Vector512.LoadUnsafe(ref s, (nuint)(i + 16)));
                Vector512.Narrow(lo, hi).StoreUnsafe(ref d, (nuint)i);
            }
        }

        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - 16; i += 16)
            {
                var lo = RoundToBF16(Vector256.LoadUnsafe(ref s, (nuint)i));
                var hi = RoundToBF16(Vector256.LoadUnsafe(ref s, (nuint)(i + 8)));
                Vector256.Narrow(lo, hi).StoreUnsafe(ref d, (nuint)i);
            }
        }

        if (Vector128.IsHardwareAccelerated)
        {
            for (; i <= n - 8; i += 8)
            {
                var lo = RoundToBF16(Vector128.LoadUnsafe(ref s, (nuint)i));
                var hi = RoundToBF16(Vector128.LoadUnsafe(ref s, (nuint)(i + 4)));
                Vector128.Narrow(lo, hi).StoreUnsafe(ref d, (nuint)i);
            }
        }

        for (; i < n; i++) Unsafe.Add(ref d, i) = BFloat16.FromSingle(BitConverter.UInt32BitsToSingle(Unsafe.Add(ref s, i))).Bits;
    }

    // u → bfloat16 bits in the low half: NaN → (u >> 16) | 0x40 (quiet), else (u + 0x7FFF + ((u >> 16) & 1)) >> 16.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> RoundToBF16(Vector512<uint> u)
    {
        var high = Vector512.ShiftRightLogical(u, 16);
        var rounded = Vector512.ShiftRightLogical(u + Vector512.Create(0x7FFFu) + (high & Vector512<uint>.One), 16);
        var isNaN = Vector512.GreaterThan(u & Vector512.Create(0x7FFF_FFFFu), Vector512.Create(0x7F80_0000u));
        return Vector512.ConditionalSelect(isNaN, high | Vector512.Create(0x40u), rounded);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> RoundToBF16(Vector256<uint> u)
    {
        var high = Vector256.ShiftRightLogical(u, 16);
        var rounded = Vector256.ShiftRightLogical(u + Vector256.Create(0x7FFFu) + (high & Vector256<uint>.One), 16);
        var isNaN = Vector256.GreaterThan(u & Vector256.Create(0x7FFF_FFFFu), Vector256.Create(0x7F80_0000u));
        return Vector256.ConditionalSelect(isNaN, high | Vector256.Create(0x40u), rounded);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<uint> RoundToBF16(Vector128<uint> u)
    {
        var high = Vector128.ShiftRightLogical(u, 16);
        var rounded = Vector128.ShiftRightLogical(u + Vector128.Create(0x7FFFu) + (high & Vector128<uint>.One), 16);
        var isNaN = Vector128.GreaterThan(u & Vector128.Create(0x7FFF_FFFFu), Vector128.Create(0x7F80_0000u));
        return Vector128.ConditionalSelect(isNaN, high | Vector128.Create(0x40u), rounded);
    }

    /// <summary>Scalar reference for <see cref="BF16ToF32"/>.</summary>
    internal static void BF16ToF32Reference(ReadOnlySpan<BFloat16> source, Span<float> destination)
    {
        for (int i = 0; i < source.Length; i++) destination[i] = source[i].ToSingle();
    }

    /// <summary>Scalar reference for <see cref="F32ToBF16"/>.</summary>
    internal static void F32ToBF16Reference(ReadOnlySpan<float> source, Span<BFloat16> destination)
    {
        for (int i = 0; i < source.Length; i++) destination[i] = BFloat16.FromSingle(source[i]);
    }

    private static void CheckLengths(int source, int destination)
    {
        if (destination < source)
        {
            throw new ArgumentException($"Destination holds {destination} elements but the source has {source}.", nameof(destination));
        }
    }
}
