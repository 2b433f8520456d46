using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Kernels;

/// <summary>
/// Row-wise softmax over the last dimension, numerically stable (the row maximum is subtracted before exp, which changes
/// nothing mathematically and keeps exp from overflowing), with optional causal and key-padding masks, and its backward.
/// A row whose entries are all masked (or all −inf) yields zeros, never NaN.
/// </summary>
public static class Softmax
{
    /// <summary>[rows, cols] → [rows, cols]: y[r, c] = exp(x[r, c] − max_r) / Σ_c′ exp(x[r, c′] − max_r).</summary>
    /// <param name="x">Scores (logits), rows · cols elements.</param>
    /// <param name="y">Probabilities, rows · cols elements; may be <paramref name="x"/>.</param>
    /// <param name="rows">Number of rows.</param>
    /// <param name="cols">Row length (the softmax dimension).</param>
    /// <exception cref="ArgumentException">A size is negative or a span is too short.</exception>
    public static unsafe void Forward(ReadOnlySpan<float> x, Span<float> y, int rows, int cols)
    {
        Check("Softmax.Forward", x.Length, y.Length, rows, cols);
        if (!RowParallel.Worth(rows, cols))
        {
            ForwardRows(x, y, 0, rows, cols);
            return;
        }

        fixed (float* px = x, py = y)
        {
            nint ax = (nint)px, ay = (nint)py;
            int lx = x.Length, ly = y.Length;
            ParallelFor.For(rows, RowParallel.Grain(cols), (start, end) =>
                ForwardRows(new ReadOnlySpan<float>((void*)ax, lx), new Span<float>((void*)ay, ly), start, end, cols));
        }
    }

    private static void ForwardRows(ReadOnlySpan<float> x, Span<float> y, int start, int end, int cols)
    {
        for (int r = start; r < end; r++) Row(x.Slice(r * cols, cols), y.Slice(r * cols, cols));
    }

    /// <summary>
    /// [Tq, Tk] → [Tq, Tk]: softmax of one score matrix with masks. Query i sees key j only if
    /// (not <paramref name="causal"/> or j ≤ i + (Tk − Tq)) and (<paramref name="keyMask"/> is empty or keyMask[j] ≠ 0).
    /// Masked entries get probability exactly 0; a query that sees no key gets an all-zero row.
    /// </summary>
    /// <param name="x">Scores, Tq · Tk elements.</param>
    /// <param name="y">Probabilities, Tq · Tk elements; may be <paramref name="x"/>.</param>
    /// <param name="queries">Tq, the number of rows.</param>
    /// <param name="keys">Tk, the row length. Tk &gt; Tq means the first Tk − Tq keys are a cache every query sees.</param>
    /// <param name="causal">Apply the causal mask with offset Tk − Tq.</param>
    /// <param name="keyMask">Empty, or Tk values: 1 = keep, 0 = padding.</param>
    /// <exception cref="ArgumentException">A size is negative or a span is too short.</exception>
    public static void ForwardMasked(ReadOnlySpan<float> x, Span<float> y, int queries, int keys, bool causal, ReadOnlySpan<float> keyMask)
    {
        Check("Softmax.ForwardMasked", x.Length, y.Length, queries, keys);
        KernelChecks.Optional("Softmax.ForwardMasked", nameof(keyMask), keyMask.Length, keys, "[Tk={0}]", keys);
        for (int i = 0; i < queries; i++)
        {
            MaskedRow(x.Slice(i * keys, keys), y.Slice(i * keys, keys), VisibleKeys(i, queries, keys, causal), keyMask);
        }
    }

    /// <summary>
    /// [rows, cols] → [rows, cols]: backward of softmax from its output: dx = y ⊙ (dy − Σ_c y ⊙ dy) per row. Masked
    /// entries have y = 0 and so get dx = 0; the same call serves <see cref="ForwardMasked"/>.
    /// </summary>
    /// <param name="y">The forward output (probabilities), rows · cols elements.</param>
    /// <param name="dy">Gradient with respect to y, rows · cols elements.</param>
    /// <param name="dx">Gradient with respect to x (overwritten), rows · cols elements; may be <paramref name="dy"/>.</param>
    /// <param name="rows">Number of rows.</param>
    /// <param name="cols">Row length.</param>
    /// <exception cref="ArgumentException">A size is negative or a span is too short.</exception>
    public static void Backward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, int rows, int cols)
    {
        Check("Softmax.Backward", y.Length, dx.Length, rows, cols, "y", "dx");
        KernelChecks.AtLeast("Softmax.Backward", nameof(dy), dy.Length, (long)rows * cols, "[rows={0}, cols={1}]", rows, cols);
        for (int r = 0; r < rows; r++)
        {
            var yr = y.Slice(r * cols, cols);
            var dyr = dy.Slice(r * cols, cols);
            var dxr = dx.Slice(r * cols, cols);
            float dot = TensorPrimitives.Dot(yr, dyr);
            TensorPrimitives.Subtract(dyr, dot, dxr);
            TensorPrimitives.Multiply(dxr, yr, dxr);
        }
    }

    /// <summary>Number of leading keys query <paramref name="i"/> may see under the causal rule (all when not causal).</summary>
    internal static int VisibleKeys(int i, int queries, int keys, bool causal) =>
        causal ? Math.Clamp(i + (keys - queries) + 1, 0, keys) : keys;

    /// <summary>One row of the masked softmax: keys ≥ <paramref name="visible"/> and keys with keyMask 0 get 0.</summary>
    internal static void MaskedRow(ReadOnlySpan<float> x, Span<float> y, int visible, ReadOnlySpan<float> keyMask)
    {
        if (keyMask.IsEmpty)
        {
            Row(x[..visible], y[..visible]);
        }
        else
        {
            // Masked keys become −inf, whose exp is exactly 0; the row is then an ordinary softmax in place.
            for (int j = 0; j < visible; j++) y[j] = keyMask[j] != 0f ? x[j] : float.NegativeInfinity;
            Row(y[..visible], y[..visible]);
        }

        y[visible..].Clear();
    }

    /// <summary>One row, fast path: max (TensorPrimitives), fused exp(x − max) with running sum (ours), scale.</summary>
    internal static void Row(ReadOnlySpan<float> x, Span<float> y)
    {
        if (x.IsEmpty) return;
        float max = RowMax(x);
        if (float.IsNegativeInfinity(max))
        {
            y.Clear();
            return;
        }

        float sum = ExpSubtractSum(x, max, y);
        TensorPrimitives.Multiply(y, 1f / sum, y);
    }

    /// <summary>
    /// Largest element of a non-empty row with the native max instructions (four independent Vector512 chains). A NaN
    /// may or may not win here; either way it reaches the output, because exp(NaN − max) is NaN and so is the row's sum.
    /// </summary>
    internal static float RowMax(ReadOnlySpan<float> x)
    {
        int n = x.Length, i = 0;
        ref float xs = ref MemoryMarshal.GetReference(x);
        float max = float.NegativeInfinity;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var m0 = Vector512.Create(float.NegativeInfinity);
            var m1 = m0;
            var m2 = m0;
            var m3 = m0;
            for (; i <= n - 64; i += 64)
            {
                m0 = Vector512.MaxNative(m0, Vector512.LoadUnsafe(ref xs, (nuint)i));
                m1 = Vector512.MaxNative(m1, Vector512.LoadUnsafe(ref xs, (nuint)(i + 16)));
                m2 = Vector512.MaxNative(m2, Vector512.LoadUnsafe(ref xs, (nuint)(i + 32)));
                m3 = Vector512.MaxNative(m3, Vector512.LoadUnsafe(ref xs, (nuint)(i + 48)));
            }

            for (; i <= n - 16; i += 16) m0 = Vector512.MaxNative(m0, Vector512.LoadUnsafe(ref xs, (nuint)i));
            m0 = Vector512.MaxNative(Vector512.MaxNative(m0, m1), Vector512.MaxNative(m2, m3));
            for (int l = 0; l < 16; l++) max = MathF.Max(max, m0[l]);
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var m0 = Vector256.Create(float.NegativeInfinity);
            for (; i <= n - 8; i += 8) m0 = Vector256.MaxNative(m0, Vector256.LoadUnsafe(ref xs, (nuint)i));
            for (int l = 0; l < 8; l++) max = MathF.Max(max, m0[l]);
        }
        else if (Vector128.IsHardwareAccelerated && n >= 4)
        {
            var m0 = Vector128.Create(float.NegativeInfinity);
            for (; i <= n - 4; i += 4) m0 = Vector128.MaxNative(m0, Vector128.LoadUnsafe(ref xs, (nuint)i));
            for (int l = 0; l < 4; l++) max = MathF.Max(max, m0[l]);
        }

        for (; i < n; i++) max = MathF.Max(max, Unsafe.Add(ref xs, i));
        return max;
    }

    /// <summary>y = exp(x − shift) elementwise, returning Σ y. Vector512 → 256 → 128 → scalar, each with its own sum.</summary>
    internal static float ExpSubtractSum(ReadOnlySpan<float> x, float shift, Span<float> y)
    {
        int n = x.Length, i = 0;
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float ys = ref MemoryMarshal.GetReference(y);
        float sum = 0f;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var s = Vector512.Create(shift);
            var acc = Vector512<float>.Zero;
            for (; i <= n - 16; i += 16)
            {
                var e = FastMath.Exp(Vector512.LoadUnsafe(ref xs, (nuint)i) - s);
                e.StoreUnsafe(ref ys, (nuint)i);
                acc += e;
            }

            sum += Vector512.Sum(acc);
        }

        if (Vector256.IsHardwareAccelerated && n - i >= 8)
        {
            var s = Vector256.Create(shift);
            var acc = Vector256<float>.Zero;
            for (; i <= n - 8; i += 8)
            {
                var e = FastMath.Exp(Vector256.LoadUnsafe(ref xs, (nuint)i) - s);
                e.StoreUnsafe(ref ys, (nuint)i);
                acc += e;
            }

            sum += Vector256.Sum(acc);
        }

        if (Vector128.IsHardwareAccelerated && n - i >= 4)
        {
            var s = Vector128.Create(shift);
            var acc = Vector128<float>.Zero;
            for (; i <= n - 4; i += 4)
            {
                var e = FastMath.Exp(Vector128.LoadUnsafe(ref xs, (nuint)i) - s);
                e.StoreUnsafe(ref ys, (nuint)i);
                acc += e;
            }

            sum += Vector128.Sum(acc);
        }

        for (; i < n; i++)
        {
            float e = FastMath.Exp(Unsafe.Add(ref xs, i) - shift);
            Unsafe.Add(ref ys, i) = e;
            sum += e;
        }

        return sum;
    }

    /// <summary>Scalar reference of <see cref="Forward"/> and <see cref="ForwardMasked"/> (double sums, plain loops).</summary>
    internal static void Reference(ReadOnlySpan<float> x, Span<float> y, int queries, int keys, bool causal, ReadOnlySpan<float> keyMask)
    {
        for (int i = 0; i < queries; i++)
        {
            int visible = VisibleKeys(i, queries, keys, causal);
            float max = float.NegativeInfinity;
            for (int j = 0; j < visible; j++)
            {
                if (keyMask.IsEmpty || keyMask[j] != 0f) max = Math.Max(max, x[(i * keys) + j]);
            }

            double sum = 0;
            for (int j = 0; j < keys; j++)
            {
                bool keep = j < visible && (keyMask.IsEmpty || keyMask[j] != 0f) && !float.IsNegativeInfinity(max);
                float e = keep ? FastMath.Exp(x[(i * keys) + j] - max) : 0f;
                y[(i * keys) + j] = e;
                sum += e;
            }

            for (int j = 0; j < keys; j++)
            {
                if (sum > 0) y[(i * keys) + j] = (float)(y[(i * keys) + j] / sum);
            }
        }
    }

    /// <summary>Scalar reference of <see cref="Backward"/>.</summary>
    internal static void BackwardReference(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            double dot = 0;
            for (int c = 0; c < cols; c++) dot += (double)y[(r * cols) + c] * dy[(r * cols) + c];
            for (int c = 0; c < cols; c++) dx[(r * cols) + c] = (float)(y[(r * cols) + c] * (dy[(r * cols) + c] - dot));
        }
    }

    private static void Check(string op, int xLength, int yLength, int rows, int cols, string xName = "x", string yName = "y")
    {
        KernelChecks.Dims(op, rows, cols);
        long n = (long)rows * cols;
        KernelChecks.AtLeast(op, xName, xLength, n, "[rows={0}, cols={1}]", rows, cols);
        KernelChecks.AtLeast(op, yName, yLength, n, "[rows={0}, cols={1}]", rows, cols);
    }
}
