namespace Sharpformer.Tensors.Kernels.Quant;

/// <summary>
/// A weight matrix W [Rows, Columns] (a Linear layer's [Out, In]) held as ggml blocks: each row is
/// Columns / <see cref="QuantTypeInfo.BlockValues"/> blocks, rows one after another, exactly the bytes of a GGUF tensor
/// of that type with ne0 = Columns, ne1 = Rows. Immutable once built; inference only.
/// </summary>
public sealed class QuantizedMatrix
{
    private readonly ArraySegment<byte> _data;

    private QuantizedMatrix(QuantType type, int rows, int columns, ArraySegment<byte> data)
    {
        Type = type;
        Rows = rows;
        Columns = columns;
        RowBytes = (int)type.RowBytes(columns);
        _data = data;
    }

    /// <summary>The block type.</summary>
    public QuantType Type { get; }

    /// <summary>Rows (a layer's Out).</summary>
    public int Rows { get; }

    /// <summary>Values per row (a layer's In), a multiple of the block size.</summary>
    public int Columns { get; }

    /// <summary>Bytes per row.</summary>
    public int RowBytes { get; }

    /// <summary>All blocks, row after row (Rows · RowBytes bytes).</summary>
    public ReadOnlySpan<byte> Data => _data;

    /// <summary>Quantizes a row-major F32 matrix [<paramref name="rows"/>, <paramref name="columns"/>], rows in parallel.</summary>
    /// <param name="values">rows · columns values.</param>
    /// <param name="rows">Rows.</param>
    /// <param name="columns">Values per row, a multiple of the block size.</param>
    /// <param name="type">The block type.</param>
    /// <returns>The quantized matrix.</returns>
    /// <exception cref="ArgumentException">The sizes do not fit or the row is not whole blocks.</exception>
    public static QuantizedMatrix Quantize(ReadOnlySpan<float> values, int rows, int columns, QuantType type)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        var rowBytes = (int)type.RowBytes(columns);
        if (values.Length < (long)rows * columns)
        {
            throw new ArgumentException($"QuantizedMatrix.Quantize: [{rows}, {columns}] needs {(long)rows * columns} values, got {values.Length}.", nameof(values));
        }

        var data = Storage.AlignedBuffer.AllocatePages(checked(rows * rowBytes));
        unsafe
        {
            fixed (float* pv = values)
            {
                var source = (nint)pv;
                Threading.ParallelFor.For(rows, Math.Max(1, (1 << 16) / columns), (start, end) =>
                {
                    for (var r = start; r < end; r++)
                    {
                        var row = new ReadOnlySpan<float>((float*)source + ((long)r * columns), columns);
                        BlockQuant.Quantize(type, row, data.AsSpan(r * rowBytes, rowBytes));
                    }
                });
            }
        }

        return new QuantizedMatrix(type, rows, columns, data);
    }

    /// <summary>Wraps blocks read from a file (a GGUF tensor), copied and checked for size.</summary>
    /// <param name="type">The block type.</param>
    /// <param name="rows">Rows (GGUF ne1).</param>
    /// <param name="columns">Values per row (GGUF ne0), a multiple of the block size.</param>
    /// <param name="blocks">Exactly rows · RowBytes bytes.</param>
    /// <returns>The matrix.</returns>
    /// <exception cref="ArgumentException">The byte count does not match the shape.</exception>
    public static QuantizedMatrix FromBlocks(QuantType type, int rows, int columns, ReadOnlySpan<byte> blocks)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        var rowBytes = type.RowBytes(columns);
        if (blocks.Length != rows * rowBytes)
        {
            throw new ArgumentException(
                $"QuantizedMatrix: a {type} matrix [{rows}, {columns}] is {rows * rowBytes} bytes ({rowBytes} per row), got {blocks.Length}.", nameof(blocks));
        }

        var data = Storage.AlignedBuffer.AllocatePages(blocks.Length);
        blocks.CopyTo(data);
        return new QuantizedMatrix(type, rows, columns, data);
    }

    /// <summary>Row <paramref name="row"/>'s blocks.</summary>
    /// <param name="row">In [0, Rows).</param>
    /// <returns>RowBytes bytes.</returns>
    public ReadOnlySpan<byte> Row(int row)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)row, (uint)Rows, nameof(row));
        return _data.AsSpan(row * RowBytes, RowBytes);
    }

    /// <summary>Rows [start, start + count) dequantized to F32 into <paramref name="destination"/> [count, Columns].</summary>
    /// <param name="start">First row.</param>
    /// <param name="count">Rows.</param>
    /// <param name="destination">count · Columns floats.</param>
    /// <exception cref="ArgumentOutOfRangeException">The rows fall outside the matrix.</exception>
    public void DequantizeRows(int start, int count, Span<float> destination)
    {
        if (start < 0 || count < 0 || start + (long)count > Rows)
        {
            throw new ArgumentOutOfRangeException(nameof(start), $"QuantizedMatrix: rows [{start}, {start + (long)count}) fall outside [0, {Rows}).");
        }

        BlockQuant.Dequantize(Type, _data.AsSpan(start * RowBytes, count * RowBytes), destination);
    }

    /// <summary>The blocks, for the kernels: pinned, 64-byte aligned, on huge pages where the system allows (<see cref="Storage.AlignedBuffer.AllocatePages(int)"/>).</summary>
    internal ReadOnlySpan<byte> Blocks => _data;
}
