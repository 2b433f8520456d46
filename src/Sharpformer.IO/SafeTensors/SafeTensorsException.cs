namespace Sharpformer.IO.SafeTensors;

/// <summary>Which rule of the safetensors format (or of a sharded index) a file broke.</summary>
/// <remarks>The first names follow the upstream reference implementation's error variants so reports can be compared.</remarks>
public enum SafeTensorsErrorKind
{
    /// <summary>The file is shorter than the 8-byte header length.</summary>
    HeaderTooSmall,

    /// <summary>The declared header length exceeds the 100 MB cap.</summary>
    HeaderTooLarge,

    /// <summary>The declared header length reaches past the end of the file.</summary>
    InvalidHeaderLength,

    /// <summary>The header bytes are not valid UTF-8.</summary>
    InvalidHeader,

    /// <summary>The header is not the expected JSON: bad syntax, not an object, a missing or mistyped field.</summary>
    InvalidHeaderDeserialization,

    /// <summary>A tensor name (or <c>__metadata__</c>, or a field inside one entry) appears twice.</summary>
    DuplicateName,

    /// <summary>A tensor declares a dtype that the format does not define.</summary>
    UnknownDType,

    /// <summary>Sorted by offset, a tensor does not start where the previous one ended, or ends before it starts.</summary>
    InvalidOffset,

    /// <summary>Element count or byte size overflows 64-bit arithmetic.</summary>
    ValidationOverflow,

    /// <summary>A tensor's byte range length differs from dtype size × element count.</summary>
    TensorInvalidInfo,

    /// <summary>A sub-byte dtype (F4, F6) whose element count does not fill whole bytes.</summary>
    MisalignedSlice,

    /// <summary>The tensors do not cover the data section exactly (missing or trailing bytes).</summary>
    MetadataIncompleteBuffer,

    /// <summary>A requested tensor name is not in the file.</summary>
    TensorNotFound,

    /// <summary>The tensor's dtype (or size) cannot be represented as the requested Sharpformer tensor.</summary>
    UnsupportedDType,

    /// <summary>A sharded index (<c>model.safetensors.index.json</c>) is malformed or inconsistent with its shards.</summary>
    InvalidIndex,

    /// <summary>A shard path is absolute, contains <c>..</c>, or resolves outside the model folder.</summary>
    PathEscape,

    /// <summary>Nothing loadable was found (no safetensors file, or only pickle-based weights).</summary>
    NotFound,

    /// <summary>The tensors handed to the writer cannot be saved (duplicate name, header too large, ...).</summary>
    InvalidWriteRequest,
}

/// <summary>
/// A safetensors file, sharded index or write request broke a rule of the format. The message names the file, the tensor
/// (when one is involved), the rule, and what to do.
/// </summary>
/// <remarks>The fuzz harness allows this type, and only this type, to escape the reader.</remarks>
public sealed class SafeTensorsException : Exception
{
    /// <summary>Creates an error of <paramref name="kind"/> about <paramref name="file"/> (and <paramref name="tensor"/>).</summary>
    public SafeTensorsException(SafeTensorsErrorKind kind, string? file, string? tensor, string message, Exception? inner = null)
        : base(Format(kind, file, tensor, message), inner)
    {
        Kind = kind;
        FileName = file;
        TensorName = tensor;
    }

    /// <summary>Creates an error with only a message (kind <see cref="SafeTensorsErrorKind.InvalidHeaderDeserialization"/>).</summary>
    public SafeTensorsException()
        : this(SafeTensorsErrorKind.InvalidHeaderDeserialization, null, null, "invalid safetensors data")
    {
    }

    /// <summary>Creates an error with only a message (kind <see cref="SafeTensorsErrorKind.InvalidHeaderDeserialization"/>).</summary>
    public SafeTensorsException(string message)
        : this(SafeTensorsErrorKind.InvalidHeaderDeserialization, null, null, message)
    {
    }

    /// <summary>Creates an error with a message and a cause (kind <see cref="SafeTensorsErrorKind.InvalidHeaderDeserialization"/>).</summary>
    public SafeTensorsException(string message, Exception? innerException)
        : this(SafeTensorsErrorKind.InvalidHeaderDeserialization, null, null, message, innerException)
    {
    }

    /// <summary>The rule that was broken.</summary>
    public SafeTensorsErrorKind Kind { get; }

    /// <summary>The file involved, when known.</summary>
    public string? FileName { get; }

    /// <summary>The tensor involved, when one is.</summary>
    public string? TensorName { get; }

    private static string Format(SafeTensorsErrorKind kind, string? file, string? tensor, string message)
    {
        string where = file is null ? "" : $"'{file}'";
        if (tensor is not null)
        {
            where += (where.Length > 0 ? ", " : "") + $"tensor '{tensor}'";
        }

        return where.Length == 0 ? $"safetensors {kind}: {message}" : $"safetensors {kind} in {where}: {message}";
    }
}
