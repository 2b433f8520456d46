using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Kernels;

/// <summary>
/// Decode-time matrix–vector products against weights stored [out, in] (the Linear layout), for a few rows at once:
/// y [R, out] = x [R, in] · Wᵀ + bias, with R ≤ <see cref="MaxRows"/>. Each weight row is streamed from memory exactly
/// once for all R input rows, which is what bounds batch-1 decoding. F16 weights are widened to F32 one L1-sized tile at
/// a time right before the dot products (never a full F32 copy), so F16 halves the bytes read. Output rows are split
/// into chunks that idle threads claim dynamically (<see cref="ParallelFor"/>). Allocates nothing.
/// </summary>
public static unsafe class Gemv
{
    /// <summary>The most input rows one call takes (the decode batch).</summary>
    public const int MaxRows = 8;

    /// <summary>Weight values widened per tile: 1024 floats = 4 KiB, comfortably inside L1 beside the x rows.</summary>
    private const int Tile = 1024;

    /// <summary>Output features per parallel chunk: enough work to amortize a claim, small enough to balance two noisy cores.</summary>
    private const int OutputsPerChunk = 16;

    /// <summary>
    /// y [R, out] = x [R, in] · Wᵀ + bias (+ y when <paramref name="accumulate"/>), W [out, in] in F16.
    /// </summary>
    /// <param name="x">[R, in] row-major.</param>
    /// <param name="rows">R, 1 to <see cref="MaxRows"/>.</param>
    /// <param name="w">[out, in] row-major.</param>
    /// <param name="inFeatures">in.</param>
    /// <param name="outFeatures">out.</param>
    /// <param name="bias">[out], or empty for none.</param>
    /// <param name="y">[R, out] row-major.</param>
    /// <param name="accumulate">Add to y (a fused residual add) instead of overwriting it.</param>
    /// <exception cref="ArgumentException">A span is shorter than its shape needs, or R is out of range.</exception>
    public static void MatVec(ReadOnlySpan<float> x, int rows, ReadOnlySpan<Half> w, int inFeatures, int outFeatures, ReadOnlySpan<float> bias, Span<float> y, bool accumulate = false)
    {
        Check(x.Length, rows, w.Length, inFeatures, outFeatures, bias.Length, y.Length);
        fixed (float* px = x, pb = bias, py = y)
        fixed (Half* pw = w)
        {
            var job = new Job((nint)px, rows, (nint)pw, inFeatures, outFeatures, bias.IsEmpty ? 0 : (nint)pb, (nint)py, accumulate);
            Run(job, WeightKind.F16);
        }
    }

    /// <summary>y [R, out] = x [R, in] · Wᵀ + bias (+ y when <paramref name="accumulate"/>), W [out, in] in BF16.</summary>
    /// <param name="x">[R, in] row-major.</param>
    /// <param name="rows">R, 1 to <see cref="MaxRows"/>.</param>
    /// <param name="w">[out, in] row-major.</param>
    /// <param name="inFeatures">in.</param>
    /// <param name="outFeatures">out.</param>
    /// <param name="bias">[out], or empty for none.</param>
    /// <param name="y">[R, out] row-major.</param>
    /// <param name="accumulate">Add to y instead of overwriting it.</param>
    /// <exception cref="ArgumentException">A span is shorter than its shape needs, or R is out of range.</exception>
    public static void MatVec(ReadOnlySpan<float> x, int rows, ReadOnlySpan<BFloat16> w, int inFeatures, int outFeatures, ReadOnlySpan<float> bias, Span<float> y, bool accumulate = false)
    {
        Check(x.Length, rows, w.Length, inFeatures, outFeatures, bias.Length, y.Length);
        fixed (float* px = x, pb = bias, py = y)
        fixed (BFloat16* pw = w)
        {
            var job = new Job((nint)px, rows, (nint)pw, inFeatures, outFeatures, bias.IsEmpty ? 0 : (nint)pb, (nint)py, accumulate);
            Run(job, WeightKind.BF16);
        }
    }

    /// <summary>y [R, out] = x [R, in] · Wᵀ + bias (+ y when <paramref name="accumulate"/>), W [out, in] in F32.</summary>
    /// <param name="x">[R, in] row-major.</param>
    /// <param name="rows">R, 1 to <see cref="MaxRows"/>.</param>
    /// <param name="w">[out, in] row-major.</param>
    /// <param name="inFeatures">in.</param>
    /// <param name="outFeatures">out.</param>
    /// <param name="bias">[out], or empty for none.</param>
    /// <param name="y">[R, out] row-major.</param>
    /// <param name="accumulate">Add to y instead of overwriting it.</param>
    /// <exception cref="ArgumentException">A span is shorter than its shape needs, or R is out of range.</exception>
    public static void MatVec(ReadOnlySpan<float> x, int rows, ReadOnlySpan<float> w, int inFeatures, int outFeatures, ReadOnlySpan<float> bias, Span<float> y, bool accumulate = false)
    {
        Check(x.Length, rows, w.Length, inFeatures, outFeatures, bias.Length, y.Length);
        fixed (float* px = x, pb = bias, py = y, pw = w)
        {
            var job = new Job((nint)px, rows, (nint)pw, inFeatures, outFeatures, bias.IsEmpty ? 0 : (nint)pb, (nint)py, accumulate);
            Run(job, WeightKind.F32);
        }
    }

    /// <summary>The scalar reference of <see cref="MatVec(ReadOnlySpan{float}, int, ReadOnlySpan{Half}, int, int, ReadOnlySpan{float}, Span{float}, bool)"/>: one float sum per output in index order.</summary>
    /// <param name="x">[R, in].</param>
    /// <param name="rows">R.</param>
    /// <param name="w">[out, in] F16.</param>
    /// <param name="inFeatures">in.</param>
    /// <param name="outFeatures">out.</param>
    /// <param name="bias">[out] or empty.</param>
    /// <param name="y">[R, out].</param>
    /// <param name="accumulate">Add to y.</param>
    public static void MatVecReference(ReadOnlySpan<float> x, int rows, ReadOnlySpan<Half> w, int inFeatures, int outFeatures, ReadOnlySpan<float> bias, Span<float> y, bool accumulate = false)
    {
        Check(x.Length, rows, w.Length, inFeatures, outFeatures, bias.Length, y.Length);
        for (var r = 0; r < rows; r++)
        {
            for (var o = 0; o < outFeatures; o++)
            {
                var s = 0f;
                for (var i = 0; i < inFeatures; i++)
                {
                    s += x[(r * inFeatures) + i] * (float)w[(o * inFeatures) + i];
                }

                s += bias.IsEmpty ? 0f : bias[o];
                y[(r * outFeatures) + o] = accumulate ? y[(r * outFeatures) + o] + s : s;
            }
        }
    }

    private static void Check(int x, int rows, int w, int inFeatures, int outFeatures, int bias, int y)
    {
        if (rows is < 1 or > MaxRows || inFeatures < 1 || outFeatures < 1)
        {
            throw new ArgumentException($"Gemv: rows R = {rows} must be 1..{MaxRows}, in = {inFeatures} and out = {outFeatures} positive.");
        }

        if (x < (long)rows * inFeatures || w < (long)outFeatures * inFeatures || y < (long)rows * outFeatures || (bias != 0 && bias < outFeatures))
        {
            throw new ArgumentException(
                $"Gemv: x [R={rows}, in={inFeatures}] has {x} values, W [out={outFeatures}, in] {w}, y [R, out] {y}, bias [out] {bias}; one is too short.");
        }
    }

    private static void Run(Job job, WeightKind kind)
    {
        var chunks = (job.Out + OutputsPerChunk - 1) / OutputsPerChunk;
        ParallelFor.For(chunks, 1, (start, end) =>
        {
            // Per-thread tile on the stack: F16 widening target.
            var tile = stackalloc float[Tile];
            for (var chunk = start; chunk < end; chunk++)
            {
                var o0 = chunk * OutputsPerChunk;
                var o1 = Math.Min(job.Out, o0 + OutputsPerChunk);
                for (var o = o0; o < o1; o++)
                {
                    OneOutput(job, o, kind, tile);
                }
            }
        });
    }

    /// <summary>All R outputs of weight row <paramref name="o"/>: the row is read once, tile by tile.</summary>
    private static void OneOutput(in Job job, int o, WeightKind kind, float* tile)
    {
        int n = job.In, rows = job.Rows;
        var sums = stackalloc float[MaxRows];
        for (var r = 0; r < rows; r++)
        {
            sums[r] = 0f;
        }

        for (var i0 = 0; i0 < n; i0 += Tile)
        {
            var len = Math.Min(Tile, n - i0);
            float* wRow;
            if (kind == WeightKind.F16)
            {
                WidenHalf((ushort*)job.W + ((long)o * n) + i0, tile, len);
                wRow = tile;
            }
            else if (kind == WeightKind.BF16)
            {
                Convert.BF16ToF32(new ReadOnlySpan<BFloat16>((BFloat16*)job.W + ((long)o * n) + i0, len), new Span<float>(tile, len));
                wRow = tile;
            }
            else
            {
                wRow = (float*)job.W + ((long)o * n) + i0;
            }

            for (var r = 0; r < rows; r++)
            {
                sums[r] += Dot(wRow, (float*)job.X + ((long)r * n) + i0, len);
            }
        }

        for (var r = 0; r < rows; r++)
        {
            var s = sums[r] + (job.Bias == 0 ? 0f : ((float*)job.Bias)[o]);
            var dst = (float*)job.Y + ((long)r * job.Out) + o;
            *dst = job.Accumulate ? *dst + s : s;
        }
    }

    /// <summary>
    /// F16 bits → F32, exactly (normals, subnormals, zeros, inf, NaN): the 15 magnitude bits moved to F32's exponent and
    /// mantissa place, then scaled by 2^112 (which rebiases the exponent from 15 to 127 and normalizes subnormals);
    /// inf/NaN take F32's all-ones exponent instead. Vector512 → Vector256 → Vector128 → scalar.
    /// </summary>
    internal static void WidenHalf(ushort* src, float* dst, int n)
    {
        var i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + 32 <= n; i += 32)
            {
                var (lo, hi) = Vector512.Widen(Vector512.Load(src + i));
                Widen512(lo).Store(dst + i);
                Widen512(hi).Store(dst + i + 16);
            }
        }

        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 16 <= n; i += 16)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Load(src + i));
                Widen256(lo).Store(dst + i);
                Widen256(hi).Store(dst + i + 8);
            }
        }

        if (Vector128.IsHardwareAccelerated)
        {
            for (; i + 8 <= n; i += 8)
            {
                var (lo, hi) = Vector128.Widen(Vector128.Load(src + i));
                Widen128(lo).Store(dst + i);
                Widen128(hi).Store(dst + i + 4);
            }
        }

        for (; i < n; i++)
        {
            dst[i] = (float)BitConverter.UInt16BitsToHalf(src[i]);
        }
    }

    private const uint HalfExponentMask = 0x7C00;
    private const uint F32ExponentMask = 0x7F800000;

    /// <summary>2^112 as a float: rebiases a half's exponent (15) to a float's (127).</summary>
    private static float Rebias => BitConverter.Int32BitsToSingle(0x77800000);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Widen512(Vector512<uint> h)
    {
        var sign = (h & Vector512.Create(0x8000u)) << 16;
        var magnitude = (h & Vector512.Create(0x7FFFu)) << 13;
        var scaled = magnitude.AsSingle() * Vector512.Create(Rebias);
        var special = Vector512.Equals(h & Vector512.Create(HalfExponentMask), Vector512.Create(HalfExponentMask));
        var value = Vector512.ConditionalSelect(special.AsSingle(), (magnitude | Vector512.Create(F32ExponentMask)).AsSingle(), scaled);
        return (value.AsUInt32() | sign).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Widen256(Vector256<uint> h)
    {
        var sign = (h & Vector256.Create(0x8000u)) << 16;
        var magnitude = (h & Vector256.Create(0x7FFFu)) << 13;
        var scaled = magnitude.AsSingle() * Vector256.Create(Rebias);
        var special = Vector256.Equals(h & Vector256.Create(HalfExponentMask), Vector256.Create(HalfExponentMask));
        var value = Vector256.ConditionalSelect(special.AsSingle(), (magnitude | Vector256.Create(F32ExponentMask)).AsSingle(), scaled);
        return (value.AsUInt32() | sign).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Widen128(Vector128<uint> h)
    {
        var sign = (h & Vector128.Create(0x8000u)) << 16;
        var magnitude = (h & Vector128.Create(0x7FFFu)) << 13;
        var scaled = magnitude.AsSingle() * Vector128.Create(Rebias);
        var special = Vector128.Equals(h & Vector128.Create(HalfExponentMask), Vector128.Create(HalfExponentMask));
        var value = Vector128.ConditionalSelect(special.AsSingle(), (magnitude | Vector128.Create(F32ExponentMask)).AsSingle(), scaled);
        return (value.AsUInt32() | sign).AsSingle();
    }

    /// <summary>Dot product of two float runs: Vector512 → Vector256 → Vector128 → scalar, four accumulators.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot(float* a, float* b, int n)
    {
        var i = 0;
        var s = 0f;
        if (Vector512.IsHardwareAccelerated && n >= 64)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i + 64 <= n; i += 64)
            {
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i), Vector512.Load(b + i), a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i + 16), Vector512.Load(b + i + 16), a1);
                a2 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i + 32), Vector512.Load(b + i + 32), a2);
                a3 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i + 48), Vector512.Load(b + i + 48), a3);
            }

            s = Vector512.Sum((a0 + a1) + (a2 + a3));
        }
        else if (Vector256.IsHardwareAccelerated && n >= 32)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i + 32 <= n; i += 32)
            {
                a0 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), a0);
                a1 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i + 8), Vector256.Load(b + i + 8), a1);
                a2 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i + 16), Vector256.Load(b + i + 16), a2);
                a3 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i + 24), Vector256.Load(b + i + 24), a3);
            }

            s = Vector256.Sum((a0 + a1) + (a2 + a3));
        }
        else if (Vector128.IsHardwareAccelerated && n >= 16)
        {
            Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i + 16 <= n; i += 16)
            {
                a0 = Vector128.FusedMultiplyAdd(Vector128.Load(a + i), Vector128.Load(b + i), a0);
                a1 = Vector128.FusedMultiplyAdd(Vector128.Load(a + i + 4), Vector128.Load(b + i + 4), a1);
                a2 = Vector128.FusedMultiplyAdd(Vector128.Load(a + i + 8), Vector128.Load(b + i + 8), a2);
                a3 = Vector128.FusedMultiplyAdd(Vector128.Load(a + i + 12), Vector128.Load(b + i + 12), a3);
            }

            s = Vector128.Sum((a0 + a1) + (a2 + a3));
        }

        for (; i < n; i++)
        {
            s += a[i] * b[i];
        }

        return s;
    }

    private enum WeightKind
    {
        F32,
        F16,
        BF16,
    }

    /// <summary>One call's operands as raw addresses (the spans are pinned by the caller for the loop's duration).</summary>
    private readonly record struct Job(nint X, int Rows, nint W, int In, int Out, nint Bias, nint Y, bool Accumulate);
}
