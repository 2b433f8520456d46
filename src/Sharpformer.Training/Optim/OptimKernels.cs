using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Sharpformer.Training.Optim;

/// <summary>AdamW's per-step scalars, rounded to F32 as PyTorch rounds a Python float when it meets an F32 tensor.</summary>
/// <param name="Decay">1 − lr·wd (the decoupled weight decay factor).</param>
/// <param name="Beta1">β1.</param>
/// <param name="OneMinusBeta1">1 − β1.</param>
/// <param name="Beta2">β2.</param>
/// <param name="OneMinusBeta2">1 − β2.</param>
/// <param name="BiasCorrection2Sqrt">√(1 − β2^step).</param>
/// <param name="Epsilon">ε.</param>
/// <param name="NegativeStepSize">−lr / (1 − β1^step).</param>
/// <param name="GradientScale">Each gradient element is multiplied by this first (a fused clip; 1 leaves it exactly as it is).</param>
internal readonly record struct AdamWCoefficients(
    float Decay, float Beta1, float OneMinusBeta1, float Beta2, float OneMinusBeta2, float BiasCorrection2Sqrt, float Epsilon, float NegativeStepSize,
    float GradientScale = 1f);

/// <summary>SGD's per-step scalars (F32, as PyTorch applies them) and switches.</summary>
/// <param name="WeightDecay">wd; used only when <paramref name="HasWeightDecay"/>.</param>
/// <param name="HasWeightDecay">wd ≠ 0 (PyTorch skips the add otherwise).</param>
/// <param name="Momentum">μ; used only when <paramref name="HasMomentum"/>.</param>
/// <param name="HasMomentum">μ ≠ 0: a momentum buffer is kept.</param>
/// <param name="OneMinusDampening">1 − dampening.</param>
/// <param name="Nesterov">Nesterov momentum.</param>
/// <param name="NegativeLearningRate">−lr.</param>
/// <param name="GradientScale">Each gradient element is multiplied by this first (a fused clip; 1 leaves it exactly as it is).</param>
internal readonly record struct SgdCoefficients(
    float WeightDecay, bool HasWeightDecay, float Momentum, bool HasMomentum, float OneMinusDampening, bool Nesterov, float NegativeLearningRate,
    float GradientScale = 1f);

/// <summary>
/// The fused element loops of the optimizers: one pass over each array per step (the update is memory-bound, so a
/// chain of separate vector ops would read and write everything several times). Each has a scalar reference beside it
/// that applies the same F32 operations in the same order as PyTorch's single-tensor code (no fused multiply-add), so
/// the vector path equals it bit for bit on every ISA. Vectors are <see cref="Vector{T}"/> (the JIT's preferred width):
/// a wider register does not help a loop that waits on memory.
/// </summary>
internal static class OptimKernels
{
    /// <summary>
    /// One AdamW step over a slice, in place: g ← g·scale (as clip_grad_norm_ scales in place before the step; g·1 = g
    /// exactly); p ← p·decay; m ← m·β1 + (1−β1)·g; v ← v·β2 + ((1−β2)·g)·g;
    /// p ← p + (−stepSize·m) / (√v / √bc2 + ε).
    /// </summary>
    public static void AdamW(in AdamWCoefficients c, Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v) =>
        AdamWLoop<WithoutSum>(c, p, g, m, v);

    /// <summary>
    /// <see cref="AdamW"/> over a slice and, in the same pass, the sum of squares of the gradient as read (before
    /// <see cref="AdamWCoefficients.GradientScale"/>): bit for bit <see cref="SumOfSquares"/> of <paramref name="g"/>
    /// (the same four accumulators, two vectors a turn, the same tails), so a norm taken this way equals
    /// <see cref="GradientClipping.GlobalNorm(IEnumerable{NN.Parameter})"/>'s, without a second read of the chunk.
    /// </summary>
    /// <returns>Σ g² accumulated in double, as <see cref="SumOfSquares"/> returns it.</returns>
    public static double AdamWSumOfSquares(in AdamWCoefficients c, Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v) =>
        AdamWLoop<WithSum>(c, p, g, m, v);

    /// <summary>Whether <see cref="AdamWLoop{TSum}"/> also sums the gradient's squares (a constant the JIT folds per instantiation).</summary>
    private interface ISumMode
    {
        static abstract bool Sums { get; }
    }

    private readonly struct WithSum : ISumMode
    {
        public static bool Sums => true;
    }

    private readonly struct WithoutSum : ISumMode
    {
        public static bool Sums => false;
    }

    /// <summary>
    /// AdamW's vector loop, two vectors a turn (the order SumOfSquares accumulates in; each element's update does not
    /// depend on it), then one, then the scalar reference for the tail; with <typeparamref name="TSum"/> also Σ g².
    /// </summary>
    private static double AdamWLoop<TSum>(in AdamWCoefficients c, Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v)
        where TSum : struct, ISumMode
    {
        int n = p.Length, i = 0;
        if (g.Length < n || m.Length < n || v.Length < n) ThrowShort();
        double sum = 0;
        if (Vector.IsHardwareAccelerated)
        {
            ref float rp = ref MemoryMarshal.GetReference(p);
            ref float rg = ref MemoryMarshal.GetReference(g);
            ref float rm = ref MemoryMarshal.GetReference(m);
            ref float rv = ref MemoryMarshal.GetReference(v);
            var decay = new Vector<float>(c.Decay);
            var beta1 = new Vector<float>(c.Beta1);
            var oneMinusBeta1 = new Vector<float>(c.OneMinusBeta1);
            var beta2 = new Vector<float>(c.Beta2);
            var oneMinusBeta2 = new Vector<float>(c.OneMinusBeta2);
            var biasCorrection2Sqrt = new Vector<float>(c.BiasCorrection2Sqrt);
            var epsilon = new Vector<float>(c.Epsilon);
            var negativeStepSize = new Vector<float>(c.NegativeStepSize);
            var gradientScale = new Vector<float>(c.GradientScale);
            int width = Vector<float>.Count;
            var acc0 = Vector<double>.Zero;
            var acc1 = Vector<double>.Zero;
            var acc2 = Vector<double>.Zero;
            var acc3 = Vector<double>.Zero;
            for (; i <= n - (2 * width); i += 2 * width)
            {
                var g0 = Vector.LoadUnsafe(ref rg, (nuint)i);
                var g1 = Vector.LoadUnsafe(ref rg, (nuint)(i + width));
                if (TSum.Sums)
                {
                    Vector.Widen(g0, out var lo0, out var hi0);
                    Vector.Widen(g1, out var lo1, out var hi1);
                    acc0 += lo0 * lo0;
                    acc1 += hi0 * hi0;
                    acc2 += lo1 * lo1;
                    acc3 += hi1 * hi1;
                }

                // g · 1 is g exactly, so the unclipped step needs no branch in the loop.
                Step(ref rp, ref rm, ref rv, (nuint)i, g0 * gradientScale, decay, beta1, oneMinusBeta1, beta2, oneMinusBeta2, biasCorrection2Sqrt, epsilon, negativeStepSize);
                Step(ref rp, ref rm, ref rv, (nuint)(i + width), g1 * gradientScale, decay, beta1, oneMinusBeta1, beta2, oneMinusBeta2, biasCorrection2Sqrt, epsilon, negativeStepSize);
            }

            for (; i <= n - width; i += width)
            {
                var gi = Vector.LoadUnsafe(ref rg, (nuint)i);
                if (TSum.Sums)
                {
                    Vector.Widen(gi, out var lo, out var hi);
                    acc0 += lo * lo;
                    acc1 += hi * hi;
                }

                Step(ref rp, ref rm, ref rv, (nuint)i, gi * gradientScale, decay, beta1, oneMinusBeta1, beta2, oneMinusBeta2, biasCorrection2Sqrt, epsilon, negativeStepSize);
            }

            if (TSum.Sums) sum = Vector.Sum((acc0 + acc1) + (acc2 + acc3));
        }

        AdamWReference(c, p[i..], g[i..], m[i..], v[i..]);
        return TSum.Sums ? sum + SumOfSquaresReference(g[i..]) : 0;

        // The vector step at i from the (scaled) gradient gi: the operations of AdamWReference, in its order.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Step(
            ref float rp, ref float rm, ref float rv, nuint i, Vector<float> gi, Vector<float> decay, Vector<float> beta1, Vector<float> oneMinusBeta1,
            Vector<float> beta2, Vector<float> oneMinusBeta2, Vector<float> biasCorrection2Sqrt, Vector<float> epsilon, Vector<float> negativeStepSize)
        {
            var pi = Vector.LoadUnsafe(ref rp, i) * decay;
            var mi = (Vector.LoadUnsafe(ref rm, i) * beta1) + (oneMinusBeta1 * gi);
            var vi = (Vector.LoadUnsafe(ref rv, i) * beta2) + (oneMinusBeta2 * gi * gi);
            var denominator = (Vector.SquareRoot(vi) / biasCorrection2Sqrt) + epsilon;
            pi += negativeStepSize * mi / denominator;
            mi.StoreUnsafe(ref rm, i);
            vi.StoreUnsafe(ref rv, i);
            pi.StoreUnsafe(ref rp, i);
        }
    }

    /// <summary>The scalar reference of <see cref="AdamW"/> (and its tail).</summary>
    public static void AdamWReference(in AdamWCoefficients c, Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v)
    {
        for (int i = 0; i < p.Length; i++)
        {
            float gi = g[i] * c.GradientScale;
            float pi = p[i] * c.Decay;
            float mi = (m[i] * c.Beta1) + (c.OneMinusBeta1 * gi);
            float vi = (v[i] * c.Beta2) + (c.OneMinusBeta2 * gi * gi);
            float denominator = (MathF.Sqrt(vi) / c.BiasCorrection2Sqrt) + c.Epsilon;
            pi += c.NegativeStepSize * mi / denominator;
            m[i] = mi;
            v[i] = vi;
            p[i] = pi;
        }
    }

    /// <summary>
    /// One SGD step over a slice, in place: d = g·scale (+ wd·p); with momentum, buf ← d on the first step else
    /// buf ← buf·μ + (1−dampening)·d, and d = d + μ·buf (Nesterov) or buf; then p ← p + (−lr)·d.
    /// <paramref name="buffer"/> is ignored (may be empty) without momentum.
    /// </summary>
    public static void Sgd(in SgdCoefficients c, bool firstStep, Span<float> p, ReadOnlySpan<float> g, Span<float> buffer)
    {
        int n = p.Length, i = 0;
        if (g.Length < n || (c.HasMomentum && buffer.Length < n)) ThrowShort();
        if (Vector.IsHardwareAccelerated)
        {
            ref float rp = ref MemoryMarshal.GetReference(p);
            ref float rg = ref MemoryMarshal.GetReference(g);
            ref float rb = ref MemoryMarshal.GetReference(buffer);
            var weightDecay = new Vector<float>(c.WeightDecay);
            var momentum = new Vector<float>(c.Momentum);
            var oneMinusDampening = new Vector<float>(c.OneMinusDampening);
            var negativeLearningRate = new Vector<float>(c.NegativeLearningRate);
            var gradientScale = new Vector<float>(c.GradientScale);
            for (; i <= n - Vector<float>.Count; i += Vector<float>.Count)
            {
                var pi = Vector.LoadUnsafe(ref rp, (nuint)i);
                var d = Vector.LoadUnsafe(ref rg, (nuint)i) * gradientScale;
                if (c.HasWeightDecay) d += weightDecay * pi;
                if (c.HasMomentum)
                {
                    var bi = firstStep ? d : (Vector.LoadUnsafe(ref rb, (nuint)i) * momentum) + (oneMinusDampening * d);
                    bi.StoreUnsafe(ref rb, (nuint)i);
                    d = c.Nesterov ? d + (momentum * bi) : bi;
                }

                (pi + (negativeLearningRate * d)).StoreUnsafe(ref rp, (nuint)i);
            }
        }

        SgdReference(c, firstStep, p[i..], g[i..], c.HasMomentum ? buffer[i..] : default);
    }

    /// <summary>The scalar reference of <see cref="Sgd"/> (and its tail).</summary>
    public static void SgdReference(in SgdCoefficients c, bool firstStep, Span<float> p, ReadOnlySpan<float> g, Span<float> buffer)
    {
        for (int i = 0; i < p.Length; i++)
        {
            float d = g[i] * c.GradientScale;
            if (c.HasWeightDecay) d += c.WeightDecay * p[i];
            if (c.HasMomentum)
            {
                float b = firstStep ? d : (buffer[i] * c.Momentum) + (c.OneMinusDampening * d);
                buffer[i] = b;
                d = c.Nesterov ? d + (c.Momentum * b) : b;
            }

            p[i] += c.NegativeLearningRate * d;
        }
    }

    /// <summary>Σ x² accumulated in double (each element widened before it is squared).</summary>
    public static double SumOfSquares(ReadOnlySpan<float> x)
    {
        int n = x.Length, i = 0;
        double sum = 0;
        if (Vector.IsHardwareAccelerated)
        {
            // Four independent accumulators (two vectors a turn) so the adds' latency does not limit the loop.
            ref float rx = ref MemoryMarshal.GetReference(x);
            int width = Vector<float>.Count;
            var acc0 = Vector<double>.Zero;
            var acc1 = Vector<double>.Zero;
            var acc2 = Vector<double>.Zero;
            var acc3 = Vector<double>.Zero;
            for (; i <= n - (2 * width); i += 2 * width)
            {
                Vector.Widen(Vector.LoadUnsafe(ref rx, (nuint)i), out var lo0, out var hi0);
                Vector.Widen(Vector.LoadUnsafe(ref rx, (nuint)(i + width)), out var lo1, out var hi1);
                acc0 += lo0 * lo0;
                acc1 += hi0 * hi0;
                acc2 += lo1 * lo1;
                acc3 += hi1 * hi1;
            }

            for (; i <= n - width; i += width)
            {
                Vector.Widen(Vector.LoadUnsafe(ref rx, (nuint)i), out var lo, out var hi);
                acc0 += lo * lo;
                acc1 += hi * hi;
            }

            sum = Vector.Sum((acc0 + acc1) + (acc2 + acc3));
        }

        return sum + SumOfSquaresReference(x[i..]);
    }

    /// <summary>The scalar reference of <see cref="SumOfSquares"/> (and its tail).</summary>
    public static double SumOfSquaresReference(ReadOnlySpan<float> x)
    {
        double sum = 0;
        for (int i = 0; i < x.Length; i++)
        {
            double xi = x[i];
            sum += xi * xi;
        }

        return sum;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowShort() =>
        throw new ArgumentException("OptimKernels: every span must be at least as long as the parameter slice.");
}
