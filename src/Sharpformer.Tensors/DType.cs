namespace Sharpformer.Tensors;

/// <summary>Element types a <see cref="Tensor"/> can hold.</summary>
/// <remarks>
/// Compute happens in <see cref="F32"/>. <see cref="BF16"/> and <see cref="F16"/> are storage formats (checkpoints,
/// weights), converted to F32 on demand. <see cref="I32"/> and <see cref="I64"/> hold token ids and masks.
/// </remarks>
public enum DType
{
    /// <summary>IEEE 754 binary32.</summary>
    F32,

    /// <summary>IEEE 754 binary16.</summary>
    F16,

    /// <summary>bfloat16: the upper 16 bits of a binary32.</summary>
    BF16,

    /// <summary>32-bit signed integer.</summary>
    I32,

    /// <summary>64-bit signed integer.</summary>
    I64,
}

/// <summary>Facts about <see cref="DType"/> values.</summary>
public static class DTypeInfo
{
    /// <summary>Bytes per element of <paramref name="dtype"/>.</summary>
    public static int SizeOf(this DType dtype) => dtype switch
    {
        DType.F32 => 4,
        DType.F16 => 2,
        DType.BF16 => 2,
        DType.I32 => 4,
        DType.I64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown dtype."),
    };

    /// <summary>The dtype that stores elements of the CLR type <typeparamref name="T"/>.</summary>
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> is not one of float, Half, BFloat16, int, long.</exception>
    public static DType Of<T>()
        where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return DType.F32;
        if (typeof(T) == typeof(Half)) return DType.F16;
        if (typeof(T) == typeof(BFloat16)) return DType.BF16;
        if (typeof(T) == typeof(int)) return DType.I32;
        if (typeof(T) == typeof(long)) return DType.I64;
        throw new NotSupportedException($"No tensor dtype stores {typeof(T).Name}; use float, Half, BFloat16, int or long.");
    }
}
