using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace Sharpformer.Tensors.Storage;

/// <summary>
/// A flat block of bytes that one or more tensors view. Three kinds exist: <see cref="ManagedStorage{T}"/> (a .NET array),
/// <see cref="NativeStorage"/> (64-byte-aligned unmanaged memory, never moved by the GC) and
/// <see cref="MemoryMappedStorage"/> (a read-only view of a file, e.g. a safetensors checkpoint).
/// </summary>
public abstract class TensorStorage : IDisposable
{
    /// <summary>Size of the block in bytes.</summary>
    public abstract long ByteLength { get; }

    /// <summary>True when the bytes must not be written (memory-mapped files are mapped read-only).</summary>
    public virtual bool IsReadOnly => false;

    /// <summary>True once <see cref="Dispose()"/> has released the memory.</summary>
    public bool IsDisposed { get; private set; }

    /// <summary>A writable span over <paramref name="byteLength"/> bytes from <paramref name="byteOffset"/>.</summary>
    /// <exception cref="InvalidOperationException">The storage is read-only or disposed.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The range is outside the storage.</exception>
    public Span<byte> GetBytes(long byteOffset, int byteLength)
    {
        if (IsReadOnly)
        {
            ThrowReadOnly();
        }

        CheckRange(byteOffset, byteLength);
        return GetBytesCore(byteOffset, byteLength);
    }

    /// <summary>A read-only span over <paramref name="byteLength"/> bytes from <paramref name="byteOffset"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is outside the storage.</exception>
    public ReadOnlySpan<byte> GetReadOnlyBytes(long byteOffset, int byteLength)
    {
        CheckRange(byteOffset, byteLength);
        return GetBytesCore(byteOffset, byteLength);
    }

    /// <summary>Returns the bytes without checks; callers have validated the range.</summary>
    protected abstract Span<byte> GetBytesCore(long byteOffset, int byteLength);

    /// <summary>Releases unmanaged memory or file mappings.</summary>
    protected virtual void Dispose(bool disposing)
    {
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (IsDisposed)
        {
            return;
        }

        IsDisposed = true;
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    private void CheckRange(long byteOffset, int byteLength)
    {
        if (IsDisposed)
        {
            throw new ObjectDisposedException(GetType().Name, "The tensor's storage has been disposed; keep the owner (e.g. the safetensors file) alive while tensors are in use.");
        }

        if (byteOffset < 0 || byteLength < 0 || byteOffset > ByteLength - byteLength)
        {
            throw new ArgumentOutOfRangeException(nameof(byteOffset), $"Byte range [{byteOffset}, {byteOffset + byteLength}) is outside a storage of {ByteLength} bytes.");
        }
    }

    [DoesNotReturn]
    private static void ThrowReadOnly() =>
        throw new InvalidOperationException("This tensor's storage is read-only (a memory-mapped file). Call Contiguous() or Clone() to get a writable copy.");
}

/// <summary>Storage backed by a .NET array of <typeparamref name="T"/>.</summary>
/// <typeparam name="T">float, Half, BFloat16, int or long.</typeparam>
public sealed class ManagedStorage<T> : TensorStorage
    where T : unmanaged
{
    /// <summary>Wraps <paramref name="array"/> without copying; writes through the tensor are visible in the array.</summary>
    public ManagedStorage(T[] array) => Array = array ?? throw new ArgumentNullException(nameof(array));

    /// <summary>Allocates an array of <paramref name="length"/> elements on the pinned object heap (it never moves, so kernels may take its address).</summary>
    public ManagedStorage(long length, bool zeroed = true)
    {
        if (length > System.Array.MaxLength)
        {
            throw new ArgumentOutOfRangeException(nameof(length), $"{length} elements exceed the largest .NET array ({System.Array.MaxLength}); use NativeStorage.");
        }

        Array = zeroed ? GC.AllocateArray<T>((int)length, pinned: true) : GC.AllocateUninitializedArray<T>((int)length, pinned: true);
    }

    /// <summary>The backing array.</summary>
    public T[] Array { get; }

    /// <inheritdoc/>
    public override long ByteLength => (long)Array.Length * System.Runtime.CompilerServices.Unsafe.SizeOf<T>();

    /// <inheritdoc/>
    protected override Span<byte> GetBytesCore(long byteOffset, int byteLength) =>
        MemoryMarshal.AsBytes(Array.AsSpan()).Slice((int)byteOffset, byteLength);
}

/// <summary>64-byte-aligned unmanaged memory, freed on <see cref="TensorStorage.Dispose()"/> or by the finalizer.</summary>
public sealed unsafe class NativeStorage : TensorStorage
{
    private void* _pointer;

    /// <summary>Allocates <paramref name="byteLength"/> bytes aligned to 64 (one cache line, one Vector512).</summary>
    public NativeStorage(long byteLength, bool zeroed = true)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(byteLength);
        ByteLength = byteLength;
        _pointer = NativeMemory.AlignedAlloc((nuint)Math.Max(byteLength, 1), 64);
        if (zeroed)
        {
            NativeMemory.Clear(_pointer, (nuint)byteLength);
        }

        if (byteLength > 0)
        {
            GC.AddMemoryPressure(byteLength);
        }
    }

    /// <summary>Frees the memory if <see cref="TensorStorage.Dispose()"/> was not called.</summary>
    ~NativeStorage() => Dispose(false);

    /// <inheritdoc/>
    public override long ByteLength { get; }

    /// <summary>Address of the first byte (stable for the storage's lifetime).</summary>
    public void* Pointer => _pointer;

    /// <inheritdoc/>
    protected override Span<byte> GetBytesCore(long byteOffset, int byteLength) =>
        new((byte*)_pointer + byteOffset, byteLength);

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (_pointer != null)
        {
            NativeMemory.AlignedFree(_pointer);
            _pointer = null;
            if (ByteLength > 0)
            {
                GC.RemoveMemoryPressure(ByteLength);
            }
        }

        base.Dispose(disposing);
    }
}
