using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels;
using Sharpformer.Tensors.Kernels.Quant;

namespace Sharpformer.NN;

/// <summary>
/// Layers that read the same input (a decoder layer's q, k and v projections, or its gate and up projections) applied
/// together: for decode-sized inputs the products run as one parallel region instead of one per layer, and quantized
/// weights share one quantization of the input (<see cref="QuantMatMul"/>, <see cref="Gemv"/>). The layers stay
/// separate modules with their own parameters: the grouping happens at call time, on the weights as they are.
/// </summary>
public sealed partial class Linear
{
    /// <summary>
    /// y_i [N, Out_i] = x [N, In] · W_iᵀ + bias_i (+ y_i when <paramref name="accumulate"/>) for two or three layers with
    /// the same In: the same results as <see cref="Apply"/> on each layer in turn, bit for bit. When every layer is
    /// quantized, or every layer is dense in one weight type with N ≤ <see cref="Gemv.MaxRows"/> (and none computes in
    /// another <see cref="Precision"/>), the products run as one parallel region over the rows of all the weights, with
    /// one quantization of x per kind the weights need; otherwise, one layer after another. LoRA adapters add their
    /// terms afterwards, as in <see cref="Apply"/>.
    /// </summary>
    /// <param name="x">N·In inputs, row-major.</param>
    /// <param name="rows">N.</param>
    /// <param name="first">The first layer.</param>
    /// <param name="yFirst">N·Out outputs of the first layer.</param>
    /// <param name="second">The second layer.</param>
    /// <param name="ySecond">N·Out outputs of the second layer.</param>
    /// <param name="third">A third layer, or null.</param>
    /// <param name="yThird">N·Out outputs of the third layer (when there is one).</param>
    /// <param name="accumulate">Add to every y instead of overwriting it.</param>
    /// <exception cref="ArgumentException">The layers' In differ, or a span is shorter than N rows.</exception>
    public static void ApplyShared(ReadOnlySpan<float> x, int rows, Linear first, Span<float> yFirst, Linear second, Span<float> ySecond, Linear? third = null, Span<float> yThird = default, bool accumulate = false)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        if (second.InFeatures != first.InFeatures || (third is not null && third.InFeatures != first.InFeatures))
        {
            throw new ArgumentException($"Linear.ApplyShared: the layers read one input, so they need the same In; got {first.InFeatures}, {second.InFeatures}{(third is null ? string.Empty : $", {third.InFeatures}")}.", nameof(second));
        }

        first.CheckSpans(x, rows, yFirst);
        second.CheckSpans(x, rows, ySecond);
        third?.CheckSpans(x, rows, yThird);
        if (rows == 0)
        {
            return;
        }

        if (!ApplySharedBase(x, rows, first, yFirst, second, ySecond, third, yThird, accumulate))
        {
            first.ApplyBase(x, rows, yFirst, accumulate);
            second.ApplyBase(x, rows, ySecond, accumulate);
            third?.ApplyBase(x, rows, yThird, accumulate);
        }

        first.Lora?.AddTo(x, rows, yFirst, first.OutFeatures);
        second.Lora?.AddTo(x, rows, ySecond, second.OutFeatures);
        third?.Lora?.AddTo(x, rows, yThird, third.OutFeatures);
    }

    /// <summary>The layers' base products as one region when their weights allow it; false when they must run one by one.</summary>
    private static bool ApplySharedBase(ReadOnlySpan<float> x, int rows, Linear first, Span<float> yFirst, Linear second, Span<float> ySecond, Linear? third, Span<float> yThird, bool accumulate)
    {
        if (first.QuantizedWeight is not null && second.QuantizedWeight is not null && (third is null || third.QuantizedWeight is not null))
        {
            QuantMatMul.Multiply(
                x,
                rows,
                new QuantProduct(first.CurrentQuantizedWeight(), yFirst, first.BiasSpan),
                new QuantProduct(second.CurrentQuantizedWeight(), ySecond, second.BiasSpan),
                third is null ? default : new QuantProduct(third.CurrentQuantizedWeight(), yThird, third.BiasSpan),
                accumulate);
            return true;
        }

        if (rows > Gemv.MaxRows || !first.IsPlainDense || !second.IsPlainDense || (third is not null && !third.IsPlainDense))
        {
            return false;
        }

        var dtype = first.Weight.DType;
        if (second.Weight.DType != dtype || (third is not null && third.Weight.DType != dtype))
        {
            return false;
        }

        int n = first.InFeatures;
        // All coded: done (true); some coded: one by one, each in its own form (false); none: the F16 group below.
        if (dtype == DType.F16 && ApplySharedHalfCodes(x, rows, n, first, yFirst, second, ySecond, third, yThird, accumulate) is bool done)
        {
            return done;
        }

        Tensor w0 = first.DenseWeight, w1 = second.DenseWeight;
        var w2 = third?.DenseWeight;
        switch (dtype)
        {
            case DType.F16:
                Gemv.MatVec(
                    x,
                    rows,
                    n,
                    new GemvProduct<Half>(w0.AsReadOnlySpan<Half>(), first.OutFeatures, yFirst, first.BiasSpan),
                    new GemvProduct<Half>(w1.AsReadOnlySpan<Half>(), second.OutFeatures, ySecond, second.BiasSpan),
                    third is null ? default : new GemvProduct<Half>(w2!.AsReadOnlySpan<Half>(), third.OutFeatures, yThird, third.BiasSpan),
                    accumulate);
                break;
            case DType.BF16:
                Gemv.MatVec(
                    x,
                    rows,
                    n,
                    new GemvProduct<BFloat16>(w0.AsReadOnlySpan<BFloat16>(), first.OutFeatures, yFirst, first.BiasSpan),
                    new GemvProduct<BFloat16>(w1.AsReadOnlySpan<BFloat16>(), second.OutFeatures, ySecond, second.BiasSpan),
                    third is null ? default : new GemvProduct<BFloat16>(w2!.AsReadOnlySpan<BFloat16>(), third.OutFeatures, yThird, third.BiasSpan),
                    accumulate);
                break;
            default:
                Gemv.MatVec(
                    x,
                    rows,
                    n,
                    new GemvProduct<float>(w0.AsReadOnlySpan<float>(), first.OutFeatures, yFirst, first.BiasSpan),
                    new GemvProduct<float>(w1.AsReadOnlySpan<float>(), second.OutFeatures, ySecond, second.BiasSpan),
                    third is null ? default : new GemvProduct<float>(w2!.AsReadOnlySpan<float>(), third.OutFeatures, yThird, third.BiasSpan),
                    accumulate);
                break;
        }

        return true;
    }

    /// <summary>
    /// The group over half codes when every weight is held as codes (true: done); false when only some are (the caller
    /// runs the layers one by one); null when none is (the F16 group runs).
    /// </summary>
    private static bool? ApplySharedHalfCodes(ReadOnlySpan<float> x, int rows, int n, Linear first, Span<float> yFirst, Linear second, Span<float> ySecond, Linear? third, Span<float> yThird, bool accumulate)
    {
        bool c0 = first.Weight.EnterHalfCodes();
        bool c1 = second.Weight.EnterHalfCodes();
        bool c2 = third is not null && third.Weight.EnterHalfCodes();
        try
        {
            if (!c0 && !c1 && !c2)
            {
                return null;
            }

            if (!c0 || !c1 || (third is not null && !c2))
            {
                return false;
            }

            Gemv.MatVec(
                x,
                rows,
                n,
                new GemvProduct<HalfCode>(first.Weight.HalfCodeSpan, first.OutFeatures, yFirst, first.BiasSpan),
                new GemvProduct<HalfCode>(second.Weight.HalfCodeSpan, second.OutFeatures, ySecond, second.BiasSpan),
                third is null ? default : new GemvProduct<HalfCode>(third.Weight.HalfCodeSpan, third.OutFeatures, yThird, third.BiasSpan),
                accumulate);
            return true;
        }
        finally
        {
            if (c0) first.Weight.ExitHalfCodes();
            if (c1) second.Weight.ExitHalfCodes();
            if (c2) third!.Weight.ExitHalfCodes();
        }
    }

    /// <summary>Whether <see cref="Apply"/> runs this layer on its dense weight as stored (not quantized, no derived precision).</summary>
    private bool IsPlainDense => QuantizedWeight is null && _kernel is null;

    /// <summary>The weight as a contiguous tensor.</summary>
    private Tensor DenseWeight => Weight.Value.IsContiguous ? Weight.Value : Weight.Value.Contiguous();

    /// <summary>The bias values, or empty.</summary>
    private ReadOnlySpan<float> BiasSpan => Bias is null ? default : Bias.Value.AsReadOnlySpan<float>();

    private void CheckSpans(ReadOnlySpan<float> x, int rows, ReadOnlySpan<float> y)
    {
        if (x.Length < (long)rows * InFeatures || y.Length < (long)rows * OutFeatures)
        {
            throw new ArgumentException($"Linear.ApplyShared: x has {x.Length} and y {y.Length} values; [N={rows}] rows of [{OutFeatures}, {InFeatures}] need {(long)rows * InFeatures} and {(long)rows * OutFeatures}.", nameof(x));
        }
    }
}
