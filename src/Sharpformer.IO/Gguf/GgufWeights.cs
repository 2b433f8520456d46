using System.Runtime.InteropServices;
using Sharpformer.Tensors;

namespace Sharpformer.IO.Gguf;

/// <summary>
/// The one place a GGUF tensor becomes a weight tensor: every model loader routes its tensors through
/// <see cref="Read"/>, so a new ggml type (the quantized blocks) is added here once. ggml lists dims innermost first
/// (ne0 = the row length), so dims [ne0, ne1] become the shape [ne1, ne0] with the same bytes in row-major order.
/// </summary>
public static class GgufWeights
{
    /// <summary>The ggml types <see cref="Read"/> loads.</summary>
    public static IReadOnlyList<GgufTensorType> SupportedTypes { get; } = [GgufTensorType.F32, GgufTensorType.F16, GgufTensorType.BF16];

    /// <summary>Reads <paramref name="info"/> as a tensor of its own type (F32, F16 or BF16) with the dims reversed.</summary>
    /// <param name="file">The open GGUF file.</param>
    /// <param name="info">One of its tensors.</param>
    /// <returns>The tensor.</returns>
    /// <exception cref="NotSupportedException">The tensor's type is one this build does not load; the message names it.</exception>
    public static Tensor Read(GgufFile file, GgufTensorInfo info)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(info);
        var dims = info.Dims.Reverse().Select(d => checked((int)d)).ToArray();
        var shape = new Shape(dims);
        var bytes = file.ReadBytes(info);
        return info.Type switch
        {
            GgufTensorType.F32 => Tensor.FromArray(MemoryMarshal.Cast<byte, float>(bytes).ToArray(), shape),
            GgufTensorType.F16 => Tensor.FromArray(MemoryMarshal.Cast<byte, Half>(bytes).ToArray(), shape),
            GgufTensorType.BF16 => Tensor.FromArray(MemoryMarshal.Cast<byte, BFloat16>(bytes).ToArray(), shape),
            _ => throw new NotSupportedException(
                $"{file.Path}: tensor '{info.Name}' is {info.Type}; this build loads GGUF tensors of type {string.Join(", ", SupportedTypes)} only. Convert the model with llama.cpp's convert_hf_to_gguf.py --outtype f16 (or f32/bf16)."),
        };
    }
}
