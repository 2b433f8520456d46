using System.Runtime.Intrinsics;

namespace Sharpformer.Tensors.Kernels;

/// <summary>
/// Rotary position embedding (RoPE) over rows of heads, in Hugging Face's rotate_half layout: for each head vector x of
/// width D at position p, out[i] = x[i]·cos[p, i] − x[i + D/2]·sin[p, i] and out[i + D/2] = x[i + D/2]·cos[p, i + D/2]
/// + x[i]·sin[p, i + D/2] (i &lt; D/2), i.e. out = x·cos + rotate_half(x)·sin with rotate_half(x) = (−x₂, x₁).
/// The inverse (a rotation by −θ) is the backward: dx = dy·cos + rotate_halfᵀ(dy·sin), rotate_halfᵀ(y) = (y₂, −y₁).
/// Vectorized over each head's pairs (bit-equal to the scalar reference, <see cref="ApplyReference"/>).
/// </summary>
public static class Rotary
{
    /// <summary>
    /// Rotates, in place, the first <paramref name="heads"/>·D values of each of N rows of <paramref name="x"/> (rows
    /// <paramref name="rowStride"/> apart), row r at position <paramref name="positions"/>[r], with the tables
    /// cos/sin [P, D]. <paramref name="inverse"/> rotates by −θ (the backward).
    /// </summary>
    /// <param name="x">N rows, each holding at least heads·D values from its start.</param>
    /// <param name="rows">N.</param>
    /// <param name="rowStride">Elements between row starts (≥ heads·D).</param>
    /// <param name="heads">H, the head vectors per row.</param>
    /// <param name="headDim">D (even).</param>
    /// <param name="positions">[N] positions, each in [0, P).</param>
    /// <param name="cos">cos table [P, D].</param>
    /// <param name="sin">sin table [P, D].</param>
    /// <param name="inverse">Apply the transpose of the rotation (by −θ; scaled tables scale it too): the backward.</param>
    /// <exception cref="ArgumentException">A size is inconsistent, a span is too short, or a position is outside the tables.</exception>
    public static void Apply(Span<float> x, int rows, int rowStride, int heads, int headDim, ReadOnlySpan<int> positions,
        ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, bool inverse = false)
    {
        if (rows < 0 || heads <= 0 || headDim <= 0 || headDim % 2 != 0 || rowStride < heads * headDim)
        {
            throw new ArgumentException($"Rotary.Apply: need N ≥ 0, H > 0, an even D > 0 and a row stride ≥ H·D; got N={rows}, H={heads}, D={headDim}, stride={rowStride}.", nameof(headDim));
        }

        if (positions.Length < rows || cos.Length != sin.Length || cos.Length % headDim != 0)
        {
            throw new ArgumentException($"Rotary.Apply: {positions.Length} positions for {rows} rows, cos {cos.Length} and sin {sin.Length} values (tables must be [P, D={headDim}]).", nameof(positions));
        }

        if (rows > 0 && x.Length < (long)(rows - 1) * rowStride + (heads * headDim))
        {
            throw new ArgumentException($"Rotary.Apply: x has {x.Length} values, {rows} rows of stride {rowStride} need {(long)(rows - 1) * rowStride + (heads * headDim)}.", nameof(x));
        }

        int tablePositions = cos.Length / headDim, half = headDim / 2;
        for (int r = 0; r < rows; r++)
        {
            int p = positions[r];
            if ((uint)p >= (uint)tablePositions)
            {
                throw new ArgumentException($"Rotary.Apply: position {p} of row {r} is outside the tables' {tablePositions} positions (max_position_embeddings); shorten the input.", nameof(positions));
            }

            var c = cos.Slice(p * headDim, headDim);
            var s = sin.Slice(p * headDim, headDim);
            for (int h = 0; h < heads; h++)
            {
                RotateHead(x.Slice((r * rowStride) + (h * headDim), headDim), c, s, half, inverse);
            }
        }
    }

    /// <summary>
    /// Scalar reference of <see cref="Apply"/> (checks done by the caller): the same products and sums per value, so
    /// <see cref="Apply"/> matches it bit for bit.
    /// </summary>
    internal static void ApplyReference(Span<float> x, int rows, int rowStride, int heads, int headDim, ReadOnlySpan<int> positions,
        ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, bool inverse = false)
    {
        int half = headDim / 2;
        for (int r = 0; r < rows; r++)
        {
            var c = cos.Slice(positions[r] * headDim, headDim);
            var s = sin.Slice(positions[r] * headDim, headDim);
            for (int h = 0; h < heads; h++)
            {
                RotateScalar(x.Slice((r * rowStride) + (h * headDim), headDim), c, s, 0, half, inverse);
            }
        }
    }

    /// <summary>
    /// One head vector: 256-bit then 128-bit vectors over the pairs (i, i + D/2), the rest scalar. Each value is one
    /// product minus (or plus) another, rounded as the scalar loop rounds them (no fused multiply-add).
    /// </summary>
    private static void RotateHead(Span<float> v, ReadOnlySpan<float> c, ReadOnlySpan<float> s, int half, bool inverse)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + Vector256<float>.Count <= half; i += Vector256<float>.Count)
            {
                var x1 = Vector256.Create<float>(v.Slice(i));
                var x2 = Vector256.Create<float>(v.Slice(i + half));
                var c1 = Vector256.Create(c.Slice(i));
                var c2 = Vector256.Create(c.Slice(i + half));
                var s1 = Vector256.Create(s.Slice(i));
                var s2 = Vector256.Create(s.Slice(i + half));
                var y1 = inverse ? (x1 * c1) + (x2 * s2) : (x1 * c1) - (x2 * s1);
                var y2 = inverse ? (x2 * c2) - (x1 * s1) : (x2 * c2) + (x1 * s2);
                y1.CopyTo(v.Slice(i));
                y2.CopyTo(v.Slice(i + half));
            }
        }

        if (Vector128.IsHardwareAccelerated)
        {
            for (; i + Vector128<float>.Count <= half; i += Vector128<float>.Count)
            {
                var x1 = Vector128.Create<float>(v.Slice(i));
                var x2 = Vector128.Create<float>(v.Slice(i + half));
                var c1 = Vector128.Create(c.Slice(i));
                var c2 = Vector128.Create(c.Slice(i + half));
                var s1 = Vector128.Create(s.Slice(i));
                var s2 = Vector128.Create(s.Slice(i + half));
                var y1 = inverse ? (x1 * c1) + (x2 * s2) : (x1 * c1) - (x2 * s1);
                var y2 = inverse ? (x2 * c2) - (x1 * s1) : (x2 * c2) + (x1 * s2);
                y1.CopyTo(v.Slice(i));
                y2.CopyTo(v.Slice(i + half));
            }
        }

        RotateScalar(v, c, s, i, half, inverse);
    }

    /// <summary>Pairs (i, i + D/2) for i in [<paramref name="start"/>, D/2), one value at a time.</summary>
    private static void RotateScalar(Span<float> v, ReadOnlySpan<float> c, ReadOnlySpan<float> s, int start, int half, bool inverse)
    {
        for (int i = start; i < half; i++)
        {
            float x1 = v[i], x2 = v[i + half];
            if (inverse)
            {
                // The transpose of the forward rotation (its inverse when the scale is 1).
                v[i] = (x1 * c[i]) + (x2 * s[i + half]);
                v[i + half] = (x2 * c[i + half]) - (x1 * s[i]);
            }
            else
            {
                v[i] = (x1 * c[i]) - (x2 * s[i]);
                v[i + half] = (x2 * c[i + half]) + (x1 * s[i + half]);
            }
        }
    }
}
