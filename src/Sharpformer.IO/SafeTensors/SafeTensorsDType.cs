using Sharpformer.Tensors;

namespace Sharpformer.IO.SafeTensors;

/// <summary>
/// Every element type the safetensors format defines, in the format's own order of increasing alignment (the writer
/// sorts by this order, descending, so the most aligned tensors come first).
/// </summary>
/// <remarks>Member names are the header spellings exactly (underscores included), so parsing and writing need no table.</remarks>
#pragma warning disable CA1707 // Identifiers should not contain underscores: these are the format's own names.
public enum SafeTensorsDType
{
    /// <summary>Boolean, one byte (0 or 1).</summary>
    BOOL,

    /// <summary>MX FP4 (E2M1), 4 bits.</summary>
    F4,

    /// <summary>MX FP6 E2M3, 6 bits.</summary>
    F6_E2M3,

    /// <summary>MX FP6 E3M2, 6 bits.</summary>
    F6_E3M2,

    /// <summary>Unsigned byte.</summary>
    U8,

    /// <summary>Signed byte.</summary>
    I8,

    /// <summary>FP8 E5M2 (IEEE-like, with infinities).</summary>
    F8_E5M2,

    /// <summary>FP8 E4M3 "FN" (no infinities, one NaN pattern per sign).</summary>
    F8_E4M3,

    /// <summary>FP8 E8M0: a bare power-of-two scale.</summary>
    F8_E8M0,

    /// <summary>FP8 E4M3 FNUZ (no negative zero).</summary>
    F8_E4M3FNUZ,

    /// <summary>FP8 E5M2 FNUZ (no negative zero).</summary>
    F8_E5M2FNUZ,

    /// <summary>Signed 16-bit integer.</summary>
    I16,

    /// <summary>Unsigned 16-bit integer.</summary>
    U16,

    /// <summary>IEEE binary16.</summary>
    F16,

    /// <summary>bfloat16.</summary>
    BF16,

    /// <summary>Signed 32-bit integer.</summary>
    I32,

    /// <summary>Unsigned 32-bit integer.</summary>
    U32,

    /// <summary>IEEE binary32.</summary>
    F32,

    /// <summary>Complex number of two binary32 parts.</summary>
    C64,

    /// <summary>IEEE binary64.</summary>
    F64,

    /// <summary>Signed 64-bit integer.</summary>
    I64,

    /// <summary>Unsigned 64-bit integer.</summary>
    U64,
}
#pragma warning restore CA1707

/// <summary>Facts about <see cref="SafeTensorsDType"/> values and their mapping to <see cref="DType"/>.</summary>
public static class SafeTensorsDTypes
{
    private static readonly string[] Names = Enum.GetNames<SafeTensorsDType>();

    /// <summary>Bits per element (4 and 6 for the MX sub-byte formats).</summary>
    public static int BitSize(this SafeTensorsDType dtype) => dtype switch
    {
        SafeTensorsDType.F4 => 4,
        SafeTensorsDType.F6_E2M3 or SafeTensorsDType.F6_E3M2 => 6,
        SafeTensorsDType.BOOL or SafeTensorsDType.U8 or SafeTensorsDType.I8 or SafeTensorsDType.F8_E5M2 or SafeTensorsDType.F8_E4M3
            or SafeTensorsDType.F8_E8M0 or SafeTensorsDType.F8_E4M3FNUZ or SafeTensorsDType.F8_E5M2FNUZ => 8,
        SafeTensorsDType.I16 or SafeTensorsDType.U16 or SafeTensorsDType.F16 or SafeTensorsDType.BF16 => 16,
        SafeTensorsDType.I32 or SafeTensorsDType.U32 or SafeTensorsDType.F32 => 32,
        SafeTensorsDType.C64 or SafeTensorsDType.F64 or SafeTensorsDType.I64 or SafeTensorsDType.U64 => 64,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Not a safetensors dtype."),
    };

    /// <summary>The name written in the header (<c>"F32"</c>, <c>"F8_E4M3"</c>, ...).</summary>
    public static string HeaderName(this SafeTensorsDType dtype) => dtype.ToString();

    /// <summary>Parses a header dtype name (exact, case-sensitive, as upstream); false when the format does not define it.</summary>
    public static bool TryParse(ReadOnlySpan<char> name, out SafeTensorsDType dtype)
    {
        for (int i = 0; i < Names.Length; i++)
        {
            if (name.SequenceEqual(Names[i]))
            {
                dtype = (SafeTensorsDType)i;
                return true;
            }
        }

        dtype = default;
        return false;
    }

    /// <summary>The Sharpformer tensor dtype that stores this type as-is, or null when none does.</summary>
    public static DType? ToTensorDType(this SafeTensorsDType dtype) => dtype switch
    {
        SafeTensorsDType.F32 => DType.F32,
        SafeTensorsDType.F16 => DType.F16,
        SafeTensorsDType.BF16 => DType.BF16,
        SafeTensorsDType.I32 => DType.I32,
        SafeTensorsDType.I64 => DType.I64,
        _ => null,
    };

    /// <summary>The safetensors dtype of a Sharpformer tensor dtype.</summary>
    public static SafeTensorsDType FromTensorDType(DType dtype) => dtype switch
    {
        DType.F32 => SafeTensorsDType.F32,
        DType.F16 => SafeTensorsDType.F16,
        DType.BF16 => SafeTensorsDType.BF16,
        DType.I32 => SafeTensorsDType.I32,
        DType.I64 => SafeTensorsDType.I64,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "No safetensors dtype for this tensor dtype."),
    };

    /// <summary>True when <see cref="SafeTensorsFile.GetTensorAsF32"/> can widen this dtype to F32.</summary>
    public static bool IsConvertibleToF32(this SafeTensorsDType dtype) => dtype switch
    {
        SafeTensorsDType.F4 or SafeTensorsDType.F6_E2M3 or SafeTensorsDType.F6_E3M2 or SafeTensorsDType.C64
            or SafeTensorsDType.F8_E4M3FNUZ or SafeTensorsDType.F8_E5M2FNUZ => false,
        _ => true,
    };
}
