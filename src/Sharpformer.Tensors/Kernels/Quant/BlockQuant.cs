namespace Sharpformer.Tensors.Kernels.Quant;

/// <summary>
/// Quantize F32 values into ggml blocks and dequantize them back, row-major and block after block. The quantizers
/// follow ggml's reference quantizers (quantize_row_*_ref: round to nearest, and for the K-quants the same scale
/// searches, their float operations in ggml's order), so a file written here is byte for byte what llama.cpp's
/// llama_model_quantize writes from the same F32 values (tested in Sharpformer.Peers.Tests for all four types).
/// </summary>
public static class BlockQuant
{
    /// <summary>Quantizes <paramref name="source"/> (whole blocks) into <paramref name="destination"/>.</summary>
    /// <param name="type">The block type.</param>
    /// <param name="source">Values, a multiple of <see cref="QuantTypeInfo.BlockValues"/> long.</param>
    /// <param name="destination">At least source.Length / BlockValues · BlockBytes bytes.</param>
    /// <exception cref="ArgumentException">The source is not whole blocks or the destination is too short.</exception>
    public static void Quantize(QuantType type, ReadOnlySpan<float> source, Span<byte> destination)
    {
        var blocks = CheckBlocks(type, source.Length, destination.Length, nameof(destination));
        var size = type.BlockValues();
        var bytes = type.BlockBytes();
        for (var b = 0; b < blocks; b++)
        {
            var x = source.Slice(b * size, size);
            var y = destination.Slice(b * bytes, bytes);
            switch (type)
            {
                case QuantType.Q8_0: Q8_0.QuantizeBlock(x, y); break;
                case QuantType.Q4_0: Q4_0.QuantizeBlock(x, y); break;
                case QuantType.Q4_K: Q4_K.QuantizeBlock(x, y); break;
                default: Q6_K.QuantizeBlock(x, y); break;
            }
        }
    }

    /// <summary>Dequantizes whole blocks of <paramref name="source"/> into <paramref name="destination"/> (the scalar reference of every kernel's in-register decoding).</summary>
    /// <param name="type">The block type.</param>
    /// <param name="source">Blocks, a multiple of <see cref="QuantTypeInfo.BlockBytes"/> long.</param>
    /// <param name="destination">Values: source.Length / BlockBytes · BlockValues of them.</param>
    /// <exception cref="ArgumentException">The source is not whole blocks or the destination is too short.</exception>
    public static void Dequantize(QuantType type, ReadOnlySpan<byte> source, Span<float> destination)
    {
        var size = type.BlockValues();
        var bytes = type.BlockBytes();
        if (source.Length % bytes != 0)
        {
            throw new ArgumentException($"{type}: {source.Length} bytes are not whole blocks of {bytes}.", nameof(source));
        }

        var blocks = source.Length / bytes;
        if (destination.Length < (long)blocks * size)
        {
            throw new ArgumentException($"{type}: {blocks} blocks dequantize to {(long)blocks * size} values; the destination holds {destination.Length}.", nameof(destination));
        }

        for (var b = 0; b < blocks; b++)
        {
            var x = source.Slice(b * bytes, bytes);
            var y = destination.Slice(b * size, size);
            switch (type)
            {
                case QuantType.Q8_0: Q8_0.DequantizeBlock(x, y); break;
                case QuantType.Q4_0: Q4_0.DequantizeBlock(x, y); break;
                case QuantType.Q4_K: Q4_K.DequantizeBlock(x, y); break;
                default: Q6_K.DequantizeBlock(x, y); break;
            }
        }
    }

    private static int CheckBlocks(QuantType type, int values, int bytes, string name)
    {
        var size = type.BlockValues();
        if (values % size != 0)
        {
            throw new ArgumentException($"{type}: {values} values are not whole blocks of {size}; quantize rows whose length is a multiple of {size}.", nameof(values));
        }

        var blocks = values / size;
        if (bytes < (long)blocks * type.BlockBytes())
        {
            throw new ArgumentException($"{type}: {blocks} blocks need {(long)blocks * type.BlockBytes()} bytes; the destination holds {bytes}.", name);
        }

        return blocks;
    }
}
