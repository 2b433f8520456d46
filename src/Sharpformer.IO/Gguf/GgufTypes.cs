namespace Sharpformer.IO.Gguf;

/// <summary>The type tag of a GGUF metadata value (the file's uint32 value type).</summary>
public enum GgufValueType : uint
{
    /// <summary>uint8.</summary>
    UInt8 = 0,

    /// <summary>int8.</summary>
    Int8 = 1,

    /// <summary>uint16.</summary>
    UInt16 = 2,

    /// <summary>int16.</summary>
    Int16 = 3,

    /// <summary>uint32.</summary>
    UInt32 = 4,

    /// <summary>int32.</summary>
    Int32 = 5,

    /// <summary>float32.</summary>
    Float32 = 6,

    /// <summary>bool (one byte, 0 or 1).</summary>
    Bool = 7,

    /// <summary>UTF-8 string with a uint64 byte length.</summary>
    String = 8,

    /// <summary>Array: uint32 element type, uint64 count, then the elements.</summary>
    Array = 9,

    /// <summary>uint64.</summary>
    UInt64 = 10,

    /// <summary>int64.</summary>
    Int64 = 11,

    /// <summary>float64.</summary>
    Float64 = 12,
}

/// <summary>A ggml tensor type as stored in a GGUF tensor info (only the ones this library knows the size of).</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1707:Identifiers should not contain underscores", Justification = "ggml's own type names (Q4_0, Q6_K) are what users search for.")]
public enum GgufTensorType : uint
{
    /// <summary>float32.</summary>
    F32 = 0,

    /// <summary>IEEE float16.</summary>
    F16 = 1,

    /// <summary>Q4_0 blocks (32 values, 18 bytes).</summary>
    Q4_0 = 2,

    /// <summary>Q4_1 blocks (32 values, 20 bytes).</summary>
    Q4_1 = 3,

    /// <summary>Q5_0 blocks (32 values, 22 bytes).</summary>
    Q5_0 = 6,

    /// <summary>Q5_1 blocks (32 values, 24 bytes).</summary>
    Q5_1 = 7,

    /// <summary>Q8_0 blocks (32 values, 34 bytes).</summary>
    Q8_0 = 8,

    /// <summary>Q8_1 blocks (32 values, 36 bytes).</summary>
    Q8_1 = 9,

    /// <summary>Q2_K super-blocks (256 values, 84 bytes).</summary>
    Q2_K = 10,

    /// <summary>Q3_K super-blocks (256 values, 110 bytes).</summary>
    Q3_K = 11,

    /// <summary>Q4_K super-blocks (256 values, 144 bytes).</summary>
    Q4_K = 12,

    /// <summary>Q5_K super-blocks (256 values, 176 bytes).</summary>
    Q5_K = 13,

    /// <summary>Q6_K super-blocks (256 values, 210 bytes).</summary>
    Q6_K = 14,

    /// <summary>Q8_K super-blocks (256 values, 292 bytes).</summary>
    Q8_K = 15,

    /// <summary>int8.</summary>
    I8 = 24,

    /// <summary>int16.</summary>
    I16 = 25,

    /// <summary>int32.</summary>
    I32 = 26,

    /// <summary>int64.</summary>
    I64 = 27,

    /// <summary>float64.</summary>
    F64 = 28,

    /// <summary>bfloat16.</summary>
    BF16 = 30,
}

/// <summary>
/// <c>general.file_type</c>: the dominant weight type of a GGUF file (llama.cpp's <c>llama_ftype</c>; the ones the
/// exporter writes). In the quantized files, as in llama.cpp's: norms, biases and the position embedding keep F32, and
/// the token embedding when it is also the output layer (tied) takes Q6_K (Q8_0 when its width is not whole 256-value
/// super-blocks), except in a Q8_0 file, where it stays Q8_0.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1707:Identifiers should not contain underscores", Justification = "ggml's own type names (Q4_0, Q8_0) are what users search for.")]
public enum GgufFileType : uint
{
    /// <summary>All tensors float32.</summary>
    AllF32 = 0,

    /// <summary>Matrices float16; norms and biases float32.</summary>
    MostlyF16 = 1,

    /// <summary>Matrices Q4_0 (the tied token embedding Q6_K).</summary>
    MostlyQ4_0 = 2,

    /// <summary>Matrices Q8_0.</summary>
    MostlyQ8_0 = 7,

    /// <summary>
    /// Matrices Q4_K (the tied token embedding Q6_K; a matrix whose width is not whole super-blocks Q8_0, where llama.cpp
    /// would pick Q5_0, which Sharpformer does not implement). llama.cpp labels this ftype Q4_K_S; its own Q4_K_S also
    /// raises GPT-2's fused attention QKV matrices (and some FFN-down matrices of deeper models) to Q5_K, which
    /// Sharpformer does not implement: those stay Q4_K here, every other tensor is byte for byte llama.cpp's.
    /// </summary>
    MostlyQ4_K = 14,
}

/// <summary>llama.cpp's token types (<c>tokenizer.ggml.token_type</c>).</summary>
public enum GgufTokenType
{
    /// <summary>An ordinary vocabulary entry.</summary>
    Normal = 1,

    /// <summary>The unknown token.</summary>
    Unknown = 2,

    /// <summary>A special control token (e.g. <c>&lt;|endoftext|&gt;</c>); never produced by ordinary text.</summary>
    Control = 3,

    /// <summary>A user-added token matched verbatim in text.</summary>
    UserDefined = 4,

    /// <summary>A padding slot with no string (the embedding has more rows than the tokenizer has tokens).</summary>
    Unused = 5,

    /// <summary>A raw byte token.</summary>
    Byte = 6,
}

/// <summary>Sizes of ggml tensor types.</summary>
public static class GgufTensorTypes
{
    /// <summary>
    /// Values per block and bytes per block of <paramref name="type"/>, or false for a type this library does not know.
    /// </summary>
    public static bool TryGetBlock(GgufTensorType type, out int blockSize, out int typeSize)
    {
        (blockSize, typeSize) = type switch
        {
            GgufTensorType.F32 => (1, 4),
            GgufTensorType.F16 => (1, 2),
            GgufTensorType.Q4_0 => (32, 18),
            GgufTensorType.Q4_1 => (32, 20),
            GgufTensorType.Q5_0 => (32, 22),
            GgufTensorType.Q5_1 => (32, 24),
            GgufTensorType.Q8_0 => (32, 34),
            GgufTensorType.Q8_1 => (32, 36),
            GgufTensorType.Q2_K => (256, 84),
            GgufTensorType.Q3_K => (256, 110),
            GgufTensorType.Q4_K => (256, 144),
            GgufTensorType.Q5_K => (256, 176),
            GgufTensorType.Q6_K => (256, 210),
            GgufTensorType.Q8_K => (256, 292),
            GgufTensorType.I8 => (1, 1),
            GgufTensorType.I16 => (1, 2),
            GgufTensorType.I32 => (1, 4),
            GgufTensorType.I64 => (1, 8),
            GgufTensorType.F64 => (1, 8),
            GgufTensorType.BF16 => (1, 2),
            _ => (0, 0),
        };
        return blockSize > 0;
    }
}
