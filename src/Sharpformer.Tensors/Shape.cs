using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Sharpformer.Tensors;

/// <summary>An immutable list of dimension sizes, outermost first (row-major order).</summary>
public readonly struct Shape : IEquatable<Shape>
{
    private readonly int[]? _dims;

    /// <summary>Creates a shape; every dimension must be ≥ 0 and the element count must fit in a long.</summary>
    /// <exception cref="ArgumentException">A dimension is negative or the element count overflows.</exception>
    public Shape(params ReadOnlySpan<int> dims)
    {
        long count = 1;
        foreach (int d in dims)
        {
            if (d < 0)
            {
                throw new ArgumentException($"Shape {Format(dims)} has a negative dimension; every dimension must be >= 0.", nameof(dims));
            }

            count = checked(count * d);
        }

        _dims = dims.ToArray();
        ElementCount = count;
    }

    /// <summary>The shape of a scalar (rank 0, one element).</summary>
    public static Shape Scalar => new([]);

    /// <summary>The dimensions, outermost first.</summary>
    public ReadOnlySpan<int> Dims => _dims;

    /// <summary>Number of dimensions.</summary>
    public int Rank => _dims?.Length ?? 0;

    /// <summary>Product of the dimensions (1 for a scalar).</summary>
    public long ElementCount { get; }

    /// <summary>Dimension <paramref name="axis"/>; negative axes count from the end (-1 is the last).</summary>
    public int this[int axis] => _dims![NormalizeAxis(axis)];

    /// <summary>The innermost dimension (1 for a scalar).</summary>
    public int Last => Rank == 0 ? 1 : _dims![^1];

    /// <summary>Maps a possibly negative axis to 0..Rank-1.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The axis does not exist in this shape.</exception>
    public int NormalizeAxis(int axis)
    {
        int a = axis < 0 ? axis + Rank : axis;
        if ((uint)a >= (uint)Rank)
        {
            ThrowAxis(axis, this);
        }

        return a;
    }

    /// <summary>Row-major strides in elements for this shape.</summary>
    public long[] ContiguousStrides()
    {
        var strides = new long[Rank];
        long s = 1;
        for (int i = Rank - 1; i >= 0; i--)
        {
            strides[i] = s;
            s *= _dims![i];
        }

        return strides;
    }

    /// <summary>Product of all dimensions except the last: the number of rows of a [rows, Last] view.</summary>
    public long Rows => Rank == 0 ? 1 : ElementCount / Math.Max(1, Last);

    /// <inheritdoc/>
    public bool Equals(Shape other) => Dims.SequenceEqual(other.Dims);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Shape other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (int d in Dims)
        {
            h.Add(d);
        }

        return h.ToHashCode();
    }

    /// <summary>Same dimensions.</summary>
    public static bool operator ==(Shape left, Shape right) => left.Equals(right);

    /// <summary>Different dimensions.</summary>
    public static bool operator !=(Shape left, Shape right) => !left.Equals(right);

    /// <summary>Implicit conversion from a dimension array.</summary>
    public static implicit operator Shape(int[] dims) => new(dims);

    /// <summary>Formats like PyTorch's <c>torch.Size</c>: <c>[2, 3, 4]</c>.</summary>
    public override string ToString() => Format(Dims);

    internal static string Format(ReadOnlySpan<int> dims)
    {
        var sb = new StringBuilder("[");
        for (int i = 0; i < dims.Length; i++)
        {
            if (i > 0) sb.Append(", ");
            sb.Append(dims[i]);
        }

        return sb.Append(']').ToString();
    }

    [DoesNotReturn]
    private static void ThrowAxis(int axis, Shape shape) =>
        throw new ArgumentOutOfRangeException(nameof(axis), axis, $"Axis {axis} does not exist in a tensor of shape {shape} (rank {shape.Rank}).");
}

/// <summary>Cold throw helpers for shape errors: every message names the operation and the shapes involved.</summary>
public static class ShapeError
{
    /// <summary>Throws when two shapes that must agree do not.</summary>
    [DoesNotReturn]
    public static void Mismatch(string operation, Shape a, Shape b, string? detail = null) =>
        throw new ArgumentException($"{operation}: shapes {a} and {b} are incompatible{(detail is null ? "." : ": " + detail)}");

    /// <summary>Throws when a shape is wrong for an operation.</summary>
    [DoesNotReturn]
    public static void Invalid(string operation, Shape shape, string requirement) =>
        throw new ArgumentException($"{operation}: got shape {shape}, but {requirement}.");
}
