using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Sharpformer.Tensors.Kernels;

/// <summary>
/// An elementwise function of one float, written once per width. The scalar <see cref="Invoke(float)"/> is the reference
/// the vector forms are tested against and the fallback where no SIMD is available.
/// </summary>
internal interface IUnaryOp
{
    static abstract float Invoke(float x);

    static abstract Vector128<float> Invoke(Vector128<float> x);

    static abstract Vector256<float> Invoke(Vector256<float> x);

    static abstract Vector512<float> Invoke(Vector512<float> x);
}

/// <summary>An elementwise function of two floats (e.g. an activation's backward: x and the upstream gradient).</summary>
internal interface IBinaryOp
{
    static abstract float Invoke(float x, float y);

    static abstract Vector128<float> Invoke(Vector128<float> x, Vector128<float> y);

    static abstract Vector256<float> Invoke(Vector256<float> x, Vector256<float> y);

    static abstract Vector512<float> Invoke(Vector512<float> x, Vector512<float> y);
}

/// <summary>
/// The one generic driver: Vector512 while 16 elements remain, then one Vector256 step, one Vector128 step and a scalar
/// tail. The tail never re-reads an element already written, so in-place calls (x and destination the same span) are safe.
/// The operator is a struct type parameter, so the JIT specializes and inlines it.
/// </summary>
internal static class SimdDriver
{
    /// <summary>destination[i] = TOp(x[i]). Spans are already validated by the caller.</summary>
    public static void Unary<TOp>(ReadOnlySpan<float> x, Span<float> destination)
        where TOp : struct, IUnaryOp
    {
        Debug.Assert(destination.Length >= x.Length);
        int n = x.Length, i = 0;
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float ds = ref MemoryMarshal.GetReference(destination);
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - 16; i += 16)
            {
                TOp.Invoke(Vector512.LoadUnsafe(ref xs, (nuint)i)).StoreUnsafe(ref ds, (nuint)i);
            }
        }

        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - 8; i += 8)
            {
                TOp.Invoke(Vector256.LoadUnsafe(ref xs, (nuint)i)).StoreUnsafe(ref ds, (nuint)i);
            }
        }

        if (Vector128.IsHardwareAccelerated)
        {
            for (; i <= n - 4; i += 4)
            {
                TOp.Invoke(Vector128.LoadUnsafe(ref xs, (nuint)i)).StoreUnsafe(ref ds, (nuint)i);
            }
        }

        for (; i < n; i++)
        {
            Unsafe.Add(ref ds, i) = TOp.Invoke(Unsafe.Add(ref xs, i));
        }
    }

    /// <summary>destination[i] = TOp(x[i], y[i]). Spans are already validated by the caller.</summary>
    public static void Binary<TOp>(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> destination)
        where TOp : struct, IBinaryOp
    {
        Debug.Assert(y.Length >= x.Length && destination.Length >= x.Length);
        int n = x.Length, i = 0;
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float ys = ref MemoryMarshal.GetReference(y);
        ref float ds = ref MemoryMarshal.GetReference(destination);
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - 16; i += 16)
            {
                TOp.Invoke(Vector512.LoadUnsafe(ref xs, (nuint)i), Vector512.LoadUnsafe(ref ys, (nuint)i)).StoreUnsafe(ref ds, (nuint)i);
            }
        }

        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - 8; i += 8)
            {
                TOp.Invoke(Vector256.LoadUnsafe(ref xs, (nuint)i), Vector256.LoadUnsafe(ref ys, (nuint)i)).StoreUnsafe(ref ds, (nuint)i);
            }
        }

        if (Vector128.IsHardwareAccelerated)
        {
            for (; i <= n - 4; i += 4)
            {
                TOp.Invoke(Vector128.LoadUnsafe(ref xs, (nuint)i), Vector128.LoadUnsafe(ref ys, (nuint)i)).StoreUnsafe(ref ds, (nuint)i);
            }
        }

        for (; i < n; i++)
        {
            Unsafe.Add(ref ds, i) = TOp.Invoke(Unsafe.Add(ref xs, i), Unsafe.Add(ref ys, i));
        }
    }

    /// <summary>
    /// <see cref="Unary{TOp}"/> split into chunks of <see cref="RowParallel.ChunkElements"/> across cores when the span is
    /// long enough to pay for the hand-off (chunk starts are multiples of 16, so every chunk but the last is tail-free).
    /// </summary>
    public static void UnaryParallel<TOp>(ReadOnlySpan<float> x, Span<float> destination)
        where TOp : struct, IUnaryOp
    {
        if (!RowParallel.Worth(x.Length / RowParallel.ChunkElements, RowParallel.ChunkElements))
        {
            Unary<TOp>(x, destination);
            return;
        }

        UnarySplit<TOp>(x, destination);
    }

    // Separate so the lambda's captured state is allocated only when the span is actually split.
    private static unsafe void UnarySplit<TOp>(ReadOnlySpan<float> x, Span<float> destination)
        where TOp : struct, IUnaryOp
    {
        int n = x.Length;
        fixed (float* px = x, pd = destination)
        {
            nint ax = (nint)px, ad = (nint)pd;
            RowParallel.For((n + RowParallel.ChunkElements - 1) / RowParallel.ChunkElements, 1, (start, end) =>
            {
                int from = start * RowParallel.ChunkElements, to = Math.Min(n, end * RowParallel.ChunkElements);
                Unary<TOp>(new ReadOnlySpan<float>((void*)(ax + (from * sizeof(float))), to - from), new Span<float>((void*)(ad + (from * sizeof(float))), to - from));
            });
        }
    }

    /// <summary><see cref="Binary{TOp}"/> split across cores like <see cref="UnaryParallel{TOp}"/>.</summary>
    public static void BinaryParallel<TOp>(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> destination)
        where TOp : struct, IBinaryOp
    {
        if (!RowParallel.Worth(x.Length / RowParallel.ChunkElements, RowParallel.ChunkElements))
        {
            Binary<TOp>(x, y, destination);
            return;
        }

        BinarySplit<TOp>(x, y, destination);
    }

    private static unsafe void BinarySplit<TOp>(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> destination)
        where TOp : struct, IBinaryOp
    {
        int n = x.Length;
        fixed (float* px = x, py = y, pd = destination)
        {
            nint ax = (nint)px, ay = (nint)py, ad = (nint)pd;
            RowParallel.For((n + RowParallel.ChunkElements - 1) / RowParallel.ChunkElements, 1, (start, end) =>
            {
                int from = start * RowParallel.ChunkElements, to = Math.Min(n, end * RowParallel.ChunkElements);
                nint offset = from * sizeof(float);
                Binary<TOp>(
                    new ReadOnlySpan<float>((void*)(ax + offset), to - from), new ReadOnlySpan<float>((void*)(ay + offset), to - from),
                    new Span<float>((void*)(ad + offset), to - from));
            });
        }
    }

    /// <summary>The scalar reference of <see cref="Unary{TOp}"/>: the same operator, one element at a time.</summary>
    public static void UnaryReference<TOp>(ReadOnlySpan<float> x, Span<float> destination)
        where TOp : struct, IUnaryOp
    {
        for (int i = 0; i < x.Length; i++) destination[i] = TOp.Invoke(x[i]);
    }

    /// <summary>The scalar reference of <see cref="Binary{TOp}"/>.</summary>
    public static void BinaryReference<TOp>(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> destination)
        where TOp : struct, IBinaryOp
    {
        for (int i = 0; i < x.Length; i++) destination[i] = TOp.Invoke(x[i], y[i]);
    }
}
