using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Sharpformer.Tensors.Storage;

namespace Sharpformer.Tensors;

/// <summary>
/// An n-dimensional array: a <see cref="TensorStorage"/>, an element offset into it, a <see cref="Tensors.Shape"/> and
/// strides (in elements). New tensors are contiguous row-major; <see cref="Reshape"/>, <see cref="Transpose"/>,
/// <see cref="Permute"/>, <see cref="Narrow"/> and <see cref="SplitHeads"/> return views that share storage where the
/// layout allows, and <see cref="Contiguous"/> materializes a view.
/// </summary>
public sealed partial class Tensor
{
    private readonly long[] _strides;

    /// <summary>Creates a tensor over existing storage (a view). Bounds are checked against the storage size.</summary>
    /// <exception cref="ArgumentException">The view reaches outside the storage, or the strides do not match the rank.</exception>
    public Tensor(TensorStorage storage, DType dtype, Shape shape, ReadOnlySpan<long> strides = default, long offset = 0)
    {
        ArgumentNullException.ThrowIfNull(storage);
        Storage = storage;
        DType = dtype;
        Shape = shape;
        Offset = offset;
        _strides = strides.IsEmpty && shape.Rank > 0 ? shape.ContiguousStrides() : strides.ToArray();
        if (_strides.Length != shape.Rank)
        {
            throw new ArgumentException($"Tensor of shape {shape} needs {shape.Rank} strides, got {_strides.Length}.", nameof(strides));
        }

        // Check the extreme element addresses lie inside the storage.
        long min = offset, max = offset;
        if (shape.ElementCount > 0)
        {
            for (int i = 0; i < shape.Rank; i++)
            {
                long span = (long)(shape.Dims[i] - 1) * _strides[i];
                if (span < 0) min += span; else max += span;
            }

            long capacity = storage.ByteLength / dtype.SizeOf();
            if (min < 0 || max >= capacity)
            {
                throw new ArgumentException($"A {dtype} view of shape {shape}, strides [{string.Join(", ", _strides)}], offset {offset} reaches elements [{min}, {max}] outside a storage of {capacity} elements.");
            }
        }

        IsContiguous = ComputeContiguous(shape, _strides);
    }

    /// <summary>The memory this tensor views.</summary>
    public TensorStorage Storage { get; }

    /// <summary>Element type.</summary>
    public DType DType { get; }

    /// <summary>Dimension sizes, outermost first.</summary>
    public Shape Shape { get; }

    /// <summary>Offset of element [0, ..., 0] in storage, in elements.</summary>
    public long Offset { get; }

    /// <summary>Distance between consecutive indices along each axis, in elements.</summary>
    public ReadOnlySpan<long> Strides => _strides;

    /// <summary>True when elements are laid out row-major without gaps, so the tensor can be read as one span.</summary>
    public bool IsContiguous { get; }

    /// <summary>Number of dimensions.</summary>
    public int Rank => Shape.Rank;

    /// <summary>Number of elements.</summary>
    public long ElementCount => Shape.ElementCount;

    // ---------------------------------------------------------------- factories

    /// <summary>A new zero-filled tensor in managed (pinned) memory.</summary>
    public static Tensor Zeros(Shape shape, DType dtype = DType.F32) => Allocate(shape, dtype, zeroed: true);

    /// <summary>A new tensor whose contents are unspecified (fastest; overwrite every element).</summary>
    public static Tensor Empty(Shape shape, DType dtype = DType.F32) => Allocate(shape, dtype, zeroed: false);

    /// <summary>A new F32 tensor filled with <paramref name="value"/>.</summary>
    public static Tensor Full(Shape shape, float value)
    {
        var t = Empty(shape);
        t.AsSpan<float>().Fill(value);
        return t;
    }

    /// <summary>A new F32 tensor of ones.</summary>
    public static Tensor Ones(Shape shape) => Full(shape, 1f);

    /// <summary>A new tensor in 64-byte-aligned native memory (dispose the storage to free it early).</summary>
    public static Tensor Native(Shape shape, DType dtype = DType.F32, bool zeroed = true) =>
        new(new NativeStorage(checked(shape.ElementCount * dtype.SizeOf()), zeroed), dtype, shape);

    /// <summary>
    /// A new tensor whose first element starts a 64-byte cache line, in a pinned managed array advised for huge pages
    /// (<see cref="AlignedBuffer"/>); contents unspecified. For weights that kernels stream on every call (dense layers'
    /// [Out, In] matrices): the tensor IS the buffer the kernels read, so a parameter holding it needs no second copy.
    /// </summary>
    /// <param name="shape">The shape (at most <see cref="Array.MaxLength"/> elements).</param>
    /// <param name="dtype">F32, F16, BF16, I32 or I64.</param>
    /// <returns>The tensor, contiguous, over its own storage.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The dtype is unknown or the shape has too many elements.</exception>
    public static Tensor EmptyAligned(Shape shape, DType dtype = DType.F32)
    {
        long n = shape.ElementCount;
        if (n > Array.MaxLength - AlignedBuffer.Alignment)
        {
            throw new ArgumentOutOfRangeException(nameof(shape), $"EmptyAligned: {n} elements of shape {shape} exceed one .NET array; use Tensor.Native for larger tensors.");
        }

        return dtype switch
        {
            DType.F32 => OverSegment(AlignedBuffer.Allocate<float>((int)n), dtype, shape),
            DType.F16 => OverSegment(AlignedBuffer.Allocate<Half>((int)n), dtype, shape),
            DType.BF16 => OverSegment(AlignedBuffer.Allocate<BFloat16>((int)n), dtype, shape),
            DType.I32 => OverSegment(AlignedBuffer.Allocate<int>((int)n), dtype, shape),
            DType.I64 => OverSegment(AlignedBuffer.Allocate<long>((int)n), dtype, shape),
            _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown dtype."),
        };

        static Tensor OverSegment<T>(ArraySegment<T> segment, DType dtype, Shape shape)
            where T : unmanaged => new(new ManagedStorage<T>(segment.Array!), dtype, shape, offset: segment.Offset);
    }

    /// <summary>Wraps <paramref name="data"/> without copying.</summary>
    /// <exception cref="ArgumentException">The array length differs from the shape's element count.</exception>
    public static Tensor FromArray<T>(T[] data, Shape shape)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Length != shape.ElementCount)
        {
            throw new ArgumentException($"FromArray: {data.Length} values cannot fill a tensor of shape {shape} ({shape.ElementCount} elements).", nameof(data));
        }

        return new Tensor(new ManagedStorage<T>(data), DTypeInfo.Of<T>(), shape);
    }

    /// <summary>Wraps <paramref name="data"/> as a 1-D tensor without copying.</summary>
    public static Tensor FromArray<T>(T[] data)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(data);
        return FromArray(data, new Shape(data.Length));
    }

    /// <summary>Copies <paramref name="data"/> into a new tensor of <paramref name="shape"/>.</summary>
    public static Tensor FromSpan<T>(ReadOnlySpan<T> data, Shape shape)
        where T : unmanaged
    {
        if (data.Length != shape.ElementCount)
        {
            throw new ArgumentException($"FromSpan: {data.Length} values cannot fill a tensor of shape {shape} ({shape.ElementCount} elements).", nameof(data));
        }

        var t = Allocate(shape, DTypeInfo.Of<T>(), zeroed: false);
        data.CopyTo(t.AsSpan<T>());
        return t;
    }

    /// <summary>0, 1, ..., n-1 as F32.</summary>
    public static Tensor Arange(int n)
    {
        var t = Empty(new Shape(n));
        var s = t.AsSpan<float>();
        for (int i = 0; i < n; i++) s[i] = i;
        return t;
    }

    /// <summary>Samples from N(<paramref name="mean"/>, <paramref name="std"/>²) with a seeded generator (reproducible).</summary>
    public static Tensor RandomNormal(Shape shape, Random random, float mean = 0f, float std = 1f)
    {
        ArgumentNullException.ThrowIfNull(random);
        var t = Empty(shape);
        var s = t.AsSpan<float>();
        for (int i = 0; i < s.Length; i += 2)
        {
            // Box–Muller: two independent normals per pair of uniforms.
            double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
            double r = Math.Sqrt(-2.0 * Math.Log(u1));
            s[i] = mean + (std * (float)(r * Math.Cos(2 * Math.PI * u2)));
            if (i + 1 < s.Length) s[i + 1] = mean + (std * (float)(r * Math.Sin(2 * Math.PI * u2)));
        }

        return t;
    }

    /// <summary>Samples uniformly from [<paramref name="low"/>, <paramref name="high"/>) with a seeded generator.</summary>
    public static Tensor RandomUniform(Shape shape, Random random, float low = 0f, float high = 1f)
    {
        ArgumentNullException.ThrowIfNull(random);
        var t = Empty(shape);
        var s = t.AsSpan<float>();
        for (int i = 0; i < s.Length; i++) s[i] = low + ((high - low) * random.NextSingle());
        return t;
    }

    private static Tensor Allocate(Shape shape, DType dtype, bool zeroed)
    {
        long n = shape.ElementCount;
        TensorStorage storage = dtype switch
        {
            DType.F32 when GradientBuffers.Active is { } backward => backward.Rent(n, zeroed),
            DType.F32 => new ManagedStorage<float>(n, zeroed),
            DType.F16 => new ManagedStorage<Half>(n, zeroed),
            DType.BF16 => new ManagedStorage<BFloat16>(n, zeroed),
            DType.I32 => new ManagedStorage<int>(n, zeroed),
            DType.I64 => new ManagedStorage<long>(n, zeroed),
            _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown dtype."),
        };
        return new Tensor(storage, dtype, shape);
    }

    // ---------------------------------------------------------------- data access

    /// <summary>The elements of a contiguous tensor as a writable span.</summary>
    /// <exception cref="InvalidOperationException">The tensor is not contiguous, its dtype is not <typeparamref name="T"/>, or its storage is read-only.</exception>
    public Span<T> AsSpan<T>()
        where T : unmanaged
    {
        CheckSpanAccess<T>(nameof(AsSpan));
        return MemoryMarshal.Cast<byte, T>(Storage.GetBytes(Offset * DType.SizeOf(), checked((int)(ElementCount * DType.SizeOf()))));
    }

    /// <summary>The elements of a contiguous tensor as a read-only span (works on memory-mapped storage).</summary>
    /// <exception cref="InvalidOperationException">The tensor is not contiguous or its dtype is not <typeparamref name="T"/>.</exception>
    public ReadOnlySpan<T> AsReadOnlySpan<T>()
        where T : unmanaged
    {
        CheckSpanAccess<T>(nameof(AsReadOnlySpan));
        return MemoryMarshal.Cast<byte, T>(Storage.GetReadOnlyBytes(Offset * DType.SizeOf(), checked((int)(ElementCount * DType.SizeOf()))));
    }

    private void CheckSpanAccess<T>(string what)
        where T : unmanaged
    {
        if (DTypeInfo.Of<T>() != DType)
        {
            throw new InvalidOperationException($"{what}<{typeof(T).Name}>: the tensor holds {DType}; use To(DType.{DTypeInfo.Of<T>()}) to convert.");
        }

        if (!IsContiguous)
        {
            throw new InvalidOperationException($"{what}: the tensor of shape {Shape} is a non-contiguous view; call Contiguous() first.");
        }
    }

    /// <summary>Copies the elements, in row-major order, converted to float.</summary>
    public float[] ToArray()
    {
        var src = DType == DType.F32 ? Contiguous() : To(DType.F32);
        return src.AsReadOnlySpan<float>().ToArray();
    }

    /// <summary>Copies the elements of a tensor of CLR type <typeparamref name="T"/>, in row-major order.</summary>
    public T[] ToArray<T>()
        where T : unmanaged => Contiguous().AsReadOnlySpan<T>().ToArray();

    /// <summary>Reads one element as float (slow: for tests and inspection, not loops).</summary>
    public float GetFloat(params ReadOnlySpan<int> index)
    {
        long at = ElementIndex(index);
        var bytes = Storage.GetReadOnlyBytes(at * DType.SizeOf(), DType.SizeOf());
        return DType switch
        {
            DType.F32 => MemoryMarshal.Read<float>(bytes),
            DType.F16 => (float)MemoryMarshal.Read<Half>(bytes),
            DType.BF16 => MemoryMarshal.Read<BFloat16>(bytes).ToSingle(),
            DType.I32 => MemoryMarshal.Read<int>(bytes),
            DType.I64 => MemoryMarshal.Read<long>(bytes),
            _ => throw new InvalidOperationException($"Unknown dtype {DType}."),
        };
    }

    private long ElementIndex(ReadOnlySpan<int> index)
    {
        if (index.Length != Rank)
        {
            throw new ArgumentException($"Index of rank {index.Length} used on a tensor of shape {Shape}.", nameof(index));
        }

        long at = Offset;
        for (int i = 0; i < index.Length; i++)
        {
            if ((uint)index[i] >= (uint)Shape.Dims[i])
            {
                throw new ArgumentOutOfRangeException(nameof(index), $"Index {index[i]} is out of range for axis {i} of shape {Shape}.");
            }

            at += index[i] * _strides[i];
        }

        return at;
    }

    // ---------------------------------------------------------------- views

    /// <summary>
    /// The same elements in a new shape. One dimension may be -1 (inferred). Returns a view when the tensor is
    /// contiguous, otherwise a contiguous copy.
    /// </summary>
    /// <exception cref="ArgumentException">The element counts differ or more than one dimension is -1.</exception>
    public Tensor Reshape(params ReadOnlySpan<int> dims)
    {
        var shape = InferShape(dims);
        var src = IsContiguous ? this : Contiguous();
        return new Tensor(src.Storage, DType, shape, default, src.Offset);
    }

    private Shape InferShape(ReadOnlySpan<int> dims)
    {
        int[] resolved = dims.ToArray();
        int infer = -1;
        long known = 1;
        for (int i = 0; i < resolved.Length; i++)
        {
            if (resolved[i] == -1)
            {
                if (infer >= 0) ShapeError.Invalid("Reshape", Shape, $"only one dimension of {Shape.Format(dims)} may be -1");
                infer = i;
            }
            else
            {
                if (resolved[i] < 0) ShapeError.Invalid("Reshape", Shape, $"target {Shape.Format(dims)} has a negative dimension");
                known *= resolved[i];
            }
        }

        if (infer >= 0)
        {
            if (known == 0 || ElementCount % known != 0)
            {
                ShapeError.Invalid("Reshape", Shape, $"{ElementCount} elements cannot be arranged as {Shape.Format(dims)}");
            }

            resolved[infer] = (int)(ElementCount / known);
            known *= resolved[infer];
        }

        if (known != ElementCount)
        {
            ShapeError.Mismatch("Reshape", Shape, new Shape(resolved), $"{ElementCount} elements vs {known}");
        }

        return new Shape(resolved);
    }

    /// <summary>A view with axes <paramref name="axis0"/> and <paramref name="axis1"/> swapped (no copy).</summary>
    public Tensor Transpose(int axis0, int axis1)
    {
        int a = Shape.NormalizeAxis(axis0), b = Shape.NormalizeAxis(axis1);
        int[] perm = Enumerable.Range(0, Rank).ToArray();
        (perm[a], perm[b]) = (perm[b], perm[a]);
        return Permute(perm);
    }

    /// <summary>A view whose axis i is this tensor's axis <paramref name="order"/>[i] (no copy), like torch.permute.</summary>
    /// <exception cref="ArgumentException"><paramref name="order"/> is not a permutation of 0..Rank-1.</exception>
    public Tensor Permute(params ReadOnlySpan<int> order)
    {
        if (order.Length != Rank)
        {
            ShapeError.Invalid("Permute", Shape, $"the order {Shape.Format(order)} must list all {Rank} axes");
        }

        var dims = new int[Rank];
        var strides = new long[Rank];
        var seen = new bool[Rank];
        for (int i = 0; i < Rank; i++)
        {
            int src = Shape.NormalizeAxis(order[i]);
            if (seen[src]) ShapeError.Invalid("Permute", Shape, $"the order {Shape.Format(order)} repeats axis {src}");
            seen[src] = true;
            dims[i] = Shape.Dims[src];
            strides[i] = _strides[src];
        }

        return new Tensor(Storage, DType, new Shape(dims), strides, Offset);
    }

    /// <summary>A view of <paramref name="length"/> indices from <paramref name="start"/> along <paramref name="axis"/> (no copy), like torch.narrow.</summary>
    public Tensor Narrow(int axis, int start, int length)
    {
        int a = Shape.NormalizeAxis(axis);
        if (start < 0 || length < 0 || start > Shape.Dims[a] - length)
        {
            ShapeError.Invalid("Narrow", Shape, $"the range [{start}, {start + length}) must lie within axis {a} of size {Shape.Dims[a]}");
        }

        int[] dims = Shape.Dims.ToArray();
        dims[a] = length;
        return new Tensor(Storage, DType, new Shape(dims), _strides, Offset + (start * _strides[a]));
    }

    /// <summary>A view of index <paramref name="index"/> along <paramref name="axis"/>, with that axis removed (no copy).</summary>
    public Tensor Select(int axis, int index)
    {
        int a = Shape.NormalizeAxis(axis);
        var narrowed = Narrow(a, index, 1);
        return narrowed.SqueezeAxis(a);
    }

    /// <summary>Splits the tensor into <paramref name="parts"/> equal views along <paramref name="axis"/> (no copy).</summary>
    public Tensor[] Split(int axis, int parts)
    {
        int a = Shape.NormalizeAxis(axis);
        if (parts <= 0 || Shape.Dims[a] % parts != 0)
        {
            ShapeError.Invalid("Split", Shape, $"axis {a} of size {Shape.Dims[a]} must divide into {parts} equal parts");
        }

        int size = Shape.Dims[a] / parts;
        var result = new Tensor[parts];
        for (int i = 0; i < parts; i++) result[i] = Narrow(a, i * size, size);
        return result;
    }

    /// <summary>Inserts an axis of size 1 at <paramref name="axis"/> (no copy).</summary>
    public Tensor Unsqueeze(int axis)
    {
        int a = axis < 0 ? axis + Rank + 1 : axis;
        if ((uint)a > (uint)Rank) ShapeError.Invalid("Unsqueeze", Shape, $"axis {axis} must be in [{-Rank - 1}, {Rank}]");
        var dims = Shape.Dims.ToArray().ToList();
        var strides = _strides.ToList();
        dims.Insert(a, 1);
        strides.Insert(a, a < Rank ? _strides[a] * Shape.Dims[a] : 1);
        return new Tensor(Storage, DType, new Shape(dims.ToArray()), strides.ToArray(), Offset);
    }

    /// <summary>Removes axis <paramref name="axis"/>, which must have size 1 (no copy).</summary>
    public Tensor SqueezeAxis(int axis)
    {
        int a = Shape.NormalizeAxis(axis);
        if (Shape.Dims[a] != 1) ShapeError.Invalid("Squeeze", Shape, $"axis {a} must have size 1");
        var dims = Shape.Dims.ToArray().ToList();
        var strides = _strides.ToList();
        dims.RemoveAt(a);
        strides.RemoveAt(a);
        return new Tensor(Storage, DType, new Shape(dims.ToArray()), strides.ToArray(), Offset);
    }

    /// <summary>[B, T, H·D] → [B, H, T, D] as a view (no copy): the layout multi-head attention reads.</summary>
    /// <exception cref="ArgumentException">The tensor is not rank 3 or its last dimension is not divisible by <paramref name="heads"/>.</exception>
    public Tensor SplitHeads(int heads)
    {
        if (Rank != 3 || heads <= 0 || Shape[2] % heads != 0)
        {
            ShapeError.Invalid("SplitHeads", Shape, $"a [B, T, H*D] tensor whose last dimension divides by {heads} heads is required");
        }

        int d = Shape[2] / heads;
        // [B, T, H, D] is a pure reshape when the last axis is unit-stride and dense; then swap T and H.
        var src = _strides[2] == 1 ? this : Contiguous();
        var view = new Tensor(src.Storage, DType, new Shape(Shape[0], Shape[1], heads, d), [src._strides[0], src._strides[1], d, 1], src.Offset);
        return view.Permute(0, 2, 1, 3);
    }

    /// <summary>[B, H, T, D] → [B, T, H·D] (copies unless already laid out that way).</summary>
    public Tensor MergeHeads()
    {
        if (Rank != 4) ShapeError.Invalid("MergeHeads", Shape, "a [B, H, T, D] tensor is required");
        return Permute(0, 2, 1, 3).Reshape(Shape[0], Shape[2], Shape[1] * Shape[3]);
    }

    /// <summary>This tensor if contiguous, else a contiguous copy in managed memory.</summary>
    public Tensor Contiguous() => IsContiguous ? this : Clone();

    /// <summary>A contiguous, writable copy in managed memory.</summary>
    public Tensor Clone()
    {
        var dst = Allocate(Shape, DType, zeroed: false);
        CopyTo(dst);
        return dst;
    }

    /// <summary>Copies the elements into <paramref name="destination"/>, which must have the same shape and dtype.</summary>
    public void CopyTo(Tensor destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        if (destination.Shape != Shape) ShapeError.Mismatch("CopyTo", Shape, destination.Shape);
        if (destination.DType != DType)
        {
            throw new ArgumentException($"CopyTo: source is {DType} but destination is {destination.DType}; use To() to convert.", nameof(destination));
        }

        int size = DType.SizeOf();
        if (IsContiguous && destination.IsContiguous)
        {
            int bytes = checked((int)(ElementCount * size));
            Storage.GetReadOnlyBytes(Offset * size, bytes).CopyTo(destination.Storage.GetBytes(destination.Offset * size, bytes));
            return;
        }

        StridedCopy(this, destination, size);
    }

    private static void StridedCopy(Tensor src, Tensor dst, int size)
    {
        if (src.ElementCount == 0) return;
        int rank = src.Rank;
        if (rank == 0)
        {
            src.Storage.GetReadOnlyBytes(src.Offset * size, size).CopyTo(dst.Storage.GetBytes(dst.Offset * size, size));
            return;
        }

        // Walk all indices except the last; copy each innermost row element by element (or as a block when unit-stride).
        int inner = src.Shape.Dims[rank - 1];
        long sInner = src._strides[rank - 1], dInner = dst._strides[rank - 1];
        var idx = new int[rank - 1];
        long rows = src.ElementCount / inner;
        for (long r = 0; r < rows; r++)
        {
            long so = src.Offset, d0 = dst.Offset;
            for (int i = 0; i < rank - 1; i++)
            {
                so += idx[i] * src._strides[i];
                d0 += idx[i] * dst._strides[i];
            }

            if (sInner == 1 && dInner == 1)
            {
                src.Storage.GetReadOnlyBytes(so * size, inner * size).CopyTo(dst.Storage.GetBytes(d0 * size, inner * size));
            }
            else
            {
                var sBytes = src.Storage.GetReadOnlyBytes(Math.Min(so, so + ((inner - 1) * sInner)) * size, (int)((Math.Abs(sInner) * (inner - 1)) + 1) * size);
                var dBytes = dst.Storage.GetBytes(Math.Min(d0, d0 + ((inner - 1) * dInner)) * size, (int)((Math.Abs(dInner) * (inner - 1)) + 1) * size);
                long sBase = sInner >= 0 ? 0 : -(inner - 1) * sInner;
                long dBase = dInner >= 0 ? 0 : -(inner - 1) * dInner;
                for (int j = 0; j < inner; j++)
                {
                    sBytes.Slice((int)((sBase + (j * sInner)) * size), size).CopyTo(dBytes.Slice((int)((dBase + (j * dInner)) * size), size));
                }
            }

            for (int i = rank - 2; i >= 0; i--)
            {
                if (++idx[i] < src.Shape.Dims[i]) break;
                idx[i] = 0;
            }
        }
    }

    /// <summary>A contiguous copy converted to <paramref name="dtype"/> (F32↔F16/BF16 round to nearest even; float→int truncates).</summary>
    public Tensor To(DType dtype)
    {
        var src = Contiguous();
        if (dtype == DType) return src == this ? Clone() : src;
        var dst = Allocate(Shape, dtype, zeroed: false);
        Kernels.Convert.Run(src, dst);
        return dst;
    }

    // ---------------------------------------------------------------- misc

    private static bool ComputeContiguous(Shape shape, long[] strides)
    {
        long expected = 1;
        for (int i = shape.Rank - 1; i >= 0; i--)
        {
            if (shape.Dims[i] != 1 && strides[i] != expected) return false;
            expected *= shape.Dims[i];
        }

        return true;
    }

    /// <summary>Shape, dtype and the first few values, like PyTorch's repr.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"Tensor(shape={Shape}, dtype={DType}");
        if (ElementCount > 0)
        {
            var values = ToArray();
            int n = Math.Min(values.Length, 8);
            sb.Append(", values=[");
            for (int i = 0; i < n; i++)
            {
                if (i > 0) sb.Append(", ");
                sb.Append(values[i].ToString("G6", CultureInfo.InvariantCulture));
            }

            sb.Append(values.Length > n ? ", ...])" : "])");
        }
        else
        {
            sb.Append(')');
        }

        return sb.ToString();
    }

    /// <summary>Largest absolute elementwise difference to <paramref name="other"/> (for tests and parity checks).</summary>
    public float MaxAbsDiff(Tensor other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.Shape != Shape) ShapeError.Mismatch("MaxAbsDiff", Shape, other.Shape);
        var a = ToArray();
        var b = other.ToArray();
        float max = 0;
        for (int i = 0; i < a.Length; i++)
        {
            float d = MathF.Abs(a[i] - b[i]);
            if (float.IsNaN(d)) return float.NaN;
            max = MathF.Max(max, d);
        }

        return max;
    }
}
