namespace Sharpformer.IO.SafeTensors;

/// <summary>One tensor entry of a safetensors header: name, dtype, shape and its byte range in the data section.</summary>
public sealed class SafeTensorInfo
{
    internal SafeTensorInfo(string name, SafeTensorsDType dtype, long[] shape, long begin, long end, long elementCount)
    {
        Name = name;
        DType = dtype;
        Shape = shape;
        Begin = begin;
        End = end;
        ElementCount = elementCount;
    }

    /// <summary>The tensor's name (a checkpoint key such as <c>bert.embeddings.word_embeddings.weight</c>).</summary>
    public string Name { get; }

    /// <summary>The element type as stored.</summary>
    public SafeTensorsDType DType { get; }

    /// <summary>Dimension sizes, outermost first; empty for a rank-0 scalar.</summary>
    public IReadOnlyList<long> Shape { get; }

    /// <summary>First byte of the tensor, relative to the start of the data section (after the header).</summary>
    public long Begin { get; }

    /// <summary>One past the last byte, relative to the start of the data section.</summary>
    public long End { get; }

    /// <summary>Bytes the tensor occupies (<see cref="End"/> − <see cref="Begin"/>).</summary>
    public long ByteLength => End - Begin;

    /// <summary>Number of elements (the product of <see cref="Shape"/>; 1 for a scalar, 0 when a dimension is 0).</summary>
    public long ElementCount { get; }

    /// <summary>The shape as <c>[d0, d1, ...]</c>.</summary>
    public string ShapeString => "[" + string.Join(", ", Shape) + "]";

    /// <inheritdoc/>
    public override string ToString() => $"{Name}: {DType} {ShapeString} @ [{Begin}, {End})";
}
