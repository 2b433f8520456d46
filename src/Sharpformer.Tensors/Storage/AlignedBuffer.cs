using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Sharpformer.Tensors.Storage;

/// <summary>
/// Managed buffers for data that kernels stream from memory again and again (decode-time weights, the KV cache): pinned
/// (the GC never moves them), starting on a 64-byte cache line, and on Linux advised to be backed by 2 MiB transparent
/// huge pages. A .NET array's data starts 16 bytes past a cache line, so every 64-byte vector load of an array row
/// straddles two lines; and with 4 KiB pages, streaming hundreds of MB per token walks the page tables once per 4 KiB.
/// On the 2-core Zen 5 host (a VM), batch-1 GPT-2 124M weight streaming, interleaved A/B on 2 threads: 64-byte aligned
/// +6 to +12 % at F32, +2 % at F16; huge pages on top, in `bench decode` against llama.cpp in the same run, 1.00× → 1.03×
/// at F32 and no change at F16 (in a microbenchmark on NativeMemory they once measured slower, so they stay a hint).
/// </summary>
public static partial class AlignedBuffer
{
    /// <summary>The start alignment in bytes: one cache line, and the width of a Vector512.</summary>
    public const int Alignment = 64;

    private const int HugePage = 2 << 20;

    /// <summary>Bytes of one shared slab that <see cref="AllocatePages(int)"/> cuts buffers under 2 MiB from.</summary>
    private const int SlabBytes = 32 << 20;

    private static readonly Lock SlabLock = new();
    private static byte[]? _slab;
    private static int _slabNext;
    private static int _slabEnd;

    /// <summary>madvise(2) advice: back the range with transparent huge pages where the kernel allows.</summary>
    private const int MadviseHugePage = 14;

    /// <summary>
    /// A buffer of <paramref name="length"/> elements whose first element is 64-byte aligned, inside a pinned array; not
    /// zeroed. Where it spans whole 2 MiB pages, those are advised for huge pages on Linux (a hint: ignored when the
    /// system has transparent huge pages off).
    /// </summary>
    /// <typeparam name="T">An unmanaged element type whose size divides 64.</typeparam>
    /// <param name="length">Elements.</param>
    /// <returns>The aligned elements, as a segment of the pinned array that owns them.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative or too large.</exception>
    public static unsafe ArraySegment<T> Allocate<T>(int length)
        where T : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (Alignment % sizeof(T) != 0)
        {
            throw new ArgumentException($"AlignedBuffer: element size {sizeof(T)} does not divide the {Alignment}-byte alignment.", nameof(T));
        }

        var pad = Alignment / sizeof(T);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, Array.MaxLength - pad);
        var array = GC.AllocateUninitializedArray<T>(length + pad, pinned: true);
        var address = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));

        // An array's data is at least 8-byte aligned, so the distance to the next line is whole elements.
        var offset = (int)(((Alignment - (address % Alignment)) % Alignment) / sizeof(T));
        AdviseHugePages(address + (offset * sizeof(T)), (long)length * sizeof(T));
        return new ArraySegment<T>(array, offset, length);
    }

    /// <summary>
    /// <paramref name="length"/> bytes, pinned and 64-byte aligned like <see cref="Allocate{T}(int)"/>, placed so that
    /// transparent huge pages can back them: a buffer of 2 MiB or more starts on a 2 MiB boundary (a 64-byte aligned
    /// buffer of 2.4 MiB, the ~1B Llama's Q4_K 2048 × 2048 matrix, holds no whole 2 MiB page four times in five), and a
    /// smaller one is cut from a shared 32 MiB slab that is advised as a whole (GPT-2 124M's Q4_K matrices are 0.3–1.3 MiB
    /// each). A slab lives while any buffer cut from it does. For weights that every batch-1 decode step streams in full:
    /// block-quantized matrices, which on the 2-core Zen 5 host streamed 10–15 % faster on huge pages (Q4_K, 48 matrices
    /// 5632 × 2048, 2 threads). Not zeroed.
    /// </summary>
    /// <param name="length">Bytes.</param>
    /// <returns>The bytes, as a segment of the pinned array that owns them.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative or too large.</exception>
    public static unsafe ArraySegment<byte> AllocatePages(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, Array.MaxLength - HugePage);
        if (length >= HugePage)
        {
            var array = GC.AllocateUninitializedArray<byte>(length + HugePage, pinned: true);
            var offset = ToBoundary(array, HugePage);
            AdviseHugePages(Address(array) + offset, length);
            return new ArraySegment<byte>(array, offset, length);
        }

        lock (SlabLock)
        {
            if (_slab is null || _slabNext + length > _slabEnd)
            {
                _slab = GC.AllocateUninitializedArray<byte>(SlabBytes + HugePage, pinned: true);
                _slabNext = ToBoundary(_slab, HugePage);
                _slabEnd = _slabNext + SlabBytes;
                AdviseHugePages(Address(_slab) + _slabNext, SlabBytes);
            }

            var segment = new ArraySegment<byte>(_slab, _slabNext, length);
            _slabNext += (length + Alignment - 1) / Alignment * Alignment;
            return segment;
        }
    }

    /// <summary>The address of an array's first element.</summary>
    private static unsafe nint Address(byte[] array) => (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));

    /// <summary>Bytes from an array's first element to the next multiple of <paramref name="boundary"/> (a power of two).</summary>
    private static int ToBoundary(byte[] array, int boundary) => (int)((boundary - (Address(array) & (boundary - 1))) & (boundary - 1));

    /// <summary>A new aligned buffer (see <see cref="Allocate{T}(int)"/>) holding a copy of <paramref name="source"/>.</summary>
    /// <typeparam name="T">An unmanaged element type whose size divides 64.</typeparam>
    /// <param name="source">The elements to copy.</param>
    /// <returns>The aligned copy, as a segment of the pinned array that owns it.</returns>
    public static ArraySegment<T> Copy<T>(ReadOnlySpan<T> source)
        where T : unmanaged
    {
        var copy = Allocate<T>(source.Length);
        source.CopyTo(copy);
        return copy;
    }

    /// <summary>Advises the whole 2 MiB pages inside [start, start + bytes) for transparent huge pages (Linux only).</summary>
    private static void AdviseHugePages(nint start, long bytes)
    {
        if (!OperatingSystem.IsLinux() || bytes < HugePage)
        {
            return;
        }

        var first = (start + HugePage - 1) & ~(nint)(HugePage - 1);
        var last = (start + (nint)bytes) & ~(nint)(HugePage - 1);
        if (last > first)
        {
            // A failure (no THP support, an old kernel) leaves ordinary pages, which work the same, only slower.
            _ = Madvise(first, (nuint)(last - first), MadviseHugePage);
        }
    }

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(nint address, nuint length, int advice);
}
