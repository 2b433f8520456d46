using System.Numerics.Tensors;

namespace Sharpformer.Tensors.Kernels;

/// <summary>
/// Elementwise arithmetic on contiguous float spans: same-shape ([N] ∘ [N]) and broadcast over the last dimension
/// ([rows, cols] ∘ [cols], e.g. adding a bias to every token). The fast paths are <see cref="TensorPrimitives"/>
/// (already vectorized to Vector512 and fast here); the scalar references sit beside them as the test oracle.
/// In place is allowed: the destination may be the first operand. Long calls are split across cores (same-shape
/// forms in chunks of <see cref="RowParallel.ChunkElements"/>, broadcast forms by rows); every element is computed
/// alone, so the split never changes a bit.
/// </summary>
public static class Elementwise
{
    /// <summary>[N] + [N] → [N].</summary>
    /// <param name="x">Left operand.</param>
    /// <param name="y">Right operand, as long as <paramref name="x"/>.</param>
    /// <param name="destination">Result, as long as <paramref name="x"/>; may alias an operand.</param>
    /// <exception cref="ArgumentException">A span is shorter than <paramref name="x"/>.</exception>
    public static void Add(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> destination) => Same(BinaryKind.Add, x, y, destination);

    /// <summary>[N] − [N] → [N].</summary>
    /// <param name="x">Left operand.</param>
    /// <param name="y">Right operand, as long as <paramref name="x"/>.</param>
    /// <param name="destination">Result, as long as <paramref name="x"/>; may alias an operand.</param>
    /// <exception cref="ArgumentException">A span is shorter than <paramref name="x"/>.</exception>
    public static void Subtract(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> destination) => Same(BinaryKind.Subtract, x, y, destination);

    /// <summary>[N] · [N] → [N] (Hadamard product).</summary>
    /// <param name="x">Left operand.</param>
    /// <param name="y">Right operand, as long as <paramref name="x"/>.</param>
    /// <param name="destination">Result, as long as <paramref name="x"/>; may alias an operand.</param>
    /// <exception cref="ArgumentException">A span is shorter than <paramref name="x"/>.</exception>
    public static void Multiply(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> destination) => Same(BinaryKind.Multiply, x, y, destination);

    /// <summary>[N] / [N] → [N].</summary>
    /// <param name="x">Numerators.</param>
    /// <param name="y">Denominators, as long as <paramref name="x"/>.</param>
    /// <param name="destination">Result, as long as <paramref name="x"/>; may alias an operand.</param>
    /// <exception cref="ArgumentException">A span is shorter than <paramref name="x"/>.</exception>
    public static void Divide(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> destination) => Same(BinaryKind.Divide, x, y, destination);

    /// <summary>[rows, cols] + [cols] → [rows, cols]: adds <paramref name="row"/> to every row (bias add).</summary>
    /// <param name="x">The matrix, rows · cols elements.</param>
    /// <param name="row">The broadcast row, cols elements.</param>
    /// <param name="destination">Result, rows · cols elements; may be <paramref name="x"/>.</param>
    /// <param name="rows">Number of rows.</param>
    /// <param name="cols">Length of the last dimension.</param>
    /// <exception cref="ArgumentException">A size is negative or a span is too short.</exception>
    public static void AddBroadcast(ReadOnlySpan<float> x, ReadOnlySpan<float> row, Span<float> destination, int rows, int cols) =>
        Broadcast(BinaryKind.Add, x, row, destination, rows, cols);

    /// <summary>[rows, cols] − [cols] → [rows, cols]: subtracts <paramref name="row"/> from every row.</summary>
    /// <param name="x">The matrix, rows · cols elements.</param>
    /// <param name="row">The broadcast row, cols elements.</param>
    /// <param name="destination">Result, rows · cols elements; may be <paramref name="x"/>.</param>
    /// <param name="rows">Number of rows.</param>
    /// <param name="cols">Length of the last dimension.</param>
    /// <exception cref="ArgumentException">A size is negative or a span is too short.</exception>
    public static void SubtractBroadcast(ReadOnlySpan<float> x, ReadOnlySpan<float> row, Span<float> destination, int rows, int cols) =>
        Broadcast(BinaryKind.Subtract, x, row, destination, rows, cols);

    /// <summary>[rows, cols] · [cols] → [rows, cols]: scales every row elementwise by <paramref name="row"/>.</summary>
    /// <param name="x">The matrix, rows · cols elements.</param>
    /// <param name="row">The broadcast row, cols elements.</param>
    /// <param name="destination">Result, rows · cols elements; may be <paramref name="x"/>.</param>
    /// <param name="rows">Number of rows.</param>
    /// <param name="cols">Length of the last dimension.</param>
    /// <exception cref="ArgumentException">A size is negative or a span is too short.</exception>
    public static void MultiplyBroadcast(ReadOnlySpan<float> x, ReadOnlySpan<float> row, Span<float> destination, int rows, int cols) =>
        Broadcast(BinaryKind.Multiply, x, row, destination, rows, cols);

    /// <summary>[rows, cols] / [cols] → [rows, cols]: divides every row elementwise by <paramref name="row"/>.</summary>
    /// <param name="x">The matrix, rows · cols elements.</param>
    /// <param name="row">The broadcast row, cols elements.</param>
    /// <param name="destination">Result, rows · cols elements; may be <paramref name="x"/>.</param>
    /// <param name="rows">Number of rows.</param>
    /// <param name="cols">Length of the last dimension.</param>
    /// <exception cref="ArgumentException">A size is negative or a span is too short.</exception>
    public static void DivideBroadcast(ReadOnlySpan<float> x, ReadOnlySpan<float> row, Span<float> destination, int rows, int cols) =>
        Broadcast(BinaryKind.Divide, x, row, destination, rows, cols);

    /// <summary>[N] → [N]: destination = alpha · x.</summary>
    /// <param name="x">Input.</param>
    /// <param name="alpha">Scale.</param>
    /// <param name="destination">Result, as long as <paramref name="x"/>; may be <paramref name="x"/>.</param>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <paramref name="x"/>.</exception>
    public static void Scale(ReadOnlySpan<float> x, float alpha, Span<float> destination)
    {
        KernelChecks.SameLength("Elementwise.Scale", "x", x.Length, "destination", destination.Length);
        TensorPrimitives.Multiply(x, alpha, destination[..x.Length]);
    }

    /// <summary>[N] → [N]: destination += alpha · x (axpy; gradient accumulation).</summary>
    /// <param name="x">Input.</param>
    /// <param name="alpha">Scale of <paramref name="x"/>.</param>
    /// <param name="destination">Accumulator, as long as <paramref name="x"/>.</param>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <paramref name="x"/>.</exception>
    public static void AddScaled(ReadOnlySpan<float> x, float alpha, Span<float> destination)
    {
        KernelChecks.SameLength("Elementwise.AddScaled", "x", x.Length, "destination", destination.Length);
        var d = destination[..x.Length];
        TensorPrimitives.MultiplyAdd(x, alpha, d, d);
    }

    internal enum BinaryKind
    {
        Add,
        Subtract,
        Multiply,
        Divide,
    }

    private static void Same(BinaryKind kind, ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> destination)
    {
        string op = kind switch
        {
            BinaryKind.Add => "Elementwise.Add",
            BinaryKind.Subtract => "Elementwise.Subtract",
            BinaryKind.Multiply => "Elementwise.Multiply",
            _ => "Elementwise.Divide",
        };
        KernelChecks.SameLength(op, "x", x.Length, "y", y.Length);
        KernelChecks.SameLength(op, "x", x.Length, "destination", destination.Length);
        Flat(kind, x, y[..x.Length], destination[..x.Length]);
    }

    /// <summary>One same-length operation, split into chunks across cores when long enough to pay for the hand-off.</summary>
    private static void Flat(BinaryKind kind, ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> destination)
    {
        if (!RowParallel.Worth(x.Length / RowParallel.ChunkElements, RowParallel.ChunkElements))
        {
            Fast(kind, x, y, destination);
            return;
        }

        FlatParallel(kind, x, y, destination);
    }

    // Separate so the lambda's captured state is allocated only when the work is actually split.
    private static unsafe void FlatParallel(BinaryKind kind, ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> destination)
    {
        int n = x.Length;
        const int Chunk = RowParallel.ChunkElements;
        fixed (float* px = x, py = y, pd = destination)
        {
            nint ax = (nint)px, ay = (nint)py, ad = (nint)pd;
            RowParallel.For((n + Chunk - 1) / Chunk, 1, (start, end) =>
            {
                int from = start * Chunk, count = (int)Math.Min(n, (long)end * Chunk) - from;
                nint offset = (nint)from * sizeof(float);
                Fast(kind, new ReadOnlySpan<float>((void*)(ax + offset), count), new ReadOnlySpan<float>((void*)(ay + offset), count), new Span<float>((void*)(ad + offset), count));
            });
        }
    }

    // Rows of a broadcast form split across cores.
    private static unsafe void BroadcastParallel(BinaryKind kind, ReadOnlySpan<float> x, ReadOnlySpan<float> row, Span<float> destination, int rows, int cols)
    {
        fixed (float* px = x, pr = row, pd = destination)
        {
            nint ax = (nint)px, ar = (nint)pr, ad = (nint)pd;
            RowParallel.For(rows, RowParallel.Grain(cols), (start, end) =>
            {
                var r = new ReadOnlySpan<float>((void*)ar, cols);
                for (int i = start; i < end; i++)
                {
                    nint offset = (nint)i * cols * sizeof(float);
                    Fast(kind, new ReadOnlySpan<float>((void*)(ax + offset), cols), r, new Span<float>((void*)(ad + offset), cols));
                }
            });
        }
    }

    private static void Broadcast(BinaryKind kind, ReadOnlySpan<float> x, ReadOnlySpan<float> row, Span<float> destination, int rows, int cols)
    {
        string op = kind switch
        {
            BinaryKind.Add => "Elementwise.AddBroadcast",
            BinaryKind.Subtract => "Elementwise.SubtractBroadcast",
            BinaryKind.Multiply => "Elementwise.MultiplyBroadcast",
            _ => "Elementwise.DivideBroadcast",
        };
        KernelChecks.Dims(op, rows, cols);
        long n = (long)rows * cols;
        KernelChecks.AtLeast(op, "x", x.Length, n, "[rows={0}, cols={1}]", rows, cols);
        KernelChecks.AtLeast(op, "row", row.Length, cols, "[cols={0}]", cols);
        KernelChecks.AtLeast(op, "destination", destination.Length, n, "[rows={0}, cols={1}]", rows, cols);
        var r = row[..cols];
        if (rows == 1)
        {
            Flat(kind, x[..cols], r, destination[..cols]);
            return;
        }

        if (RowParallel.Worth(rows, cols))
        {
            BroadcastParallel(kind, x, r, destination, rows, cols);
            return;
        }

        for (int i = 0; i < rows; i++)
        {
            Fast(kind, x.Slice(i * cols, cols), r, destination.Slice(i * cols, cols));
        }
    }

    private static void Fast(BinaryKind kind, ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> destination)
    {
        switch (kind)
        {
            case BinaryKind.Add: TensorPrimitives.Add(x, y, destination); break;
            case BinaryKind.Subtract: TensorPrimitives.Subtract(x, y, destination); break;
            case BinaryKind.Multiply: TensorPrimitives.Multiply(x, y, destination); break;
            default: TensorPrimitives.Divide(x, y, destination); break;
        }
    }

    /// <summary>Scalar reference for the broadcast forms (rows = 1, cols = N gives the same-shape form).</summary>
    internal static void BroadcastReference(BinaryKind kind, ReadOnlySpan<float> x, ReadOnlySpan<float> row, Span<float> destination, int rows, int cols)
    {
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < cols; j++)
            {
                float a = x[(i * cols) + j], b = row[j];
                destination[(i * cols) + j] = kind switch
                {
                    BinaryKind.Add => a + b,
                    BinaryKind.Subtract => a - b,
                    BinaryKind.Multiply => a * b,
                    _ => a / b,
                };
            }
        }
    }
}
