using System.Numerics.Tensors;

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

    /// <summary>bfloat16 → float: exact (shift into the upper half).</summary>
    public static void BF16ToF32(ReadOnlySpan<BFloat16> source, Span<float> destination)
    {
        CheckLengths(source.Length, destination.Length);
        BF16ToF32Reference(source, destination);
    }

    /// <summary>float → bfloat16, rounding to nearest even; NaN stays NaN.</summary>
    public static void F32ToBF16(ReadOnlySpan<float> source, Span<BFloat16> destination)
    {
        CheckLengths(source.Length, destination.Length);
        F32ToBF16Reference(source, destination);
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
