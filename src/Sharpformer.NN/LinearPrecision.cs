using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels;

namespace Sharpformer.NN;

/// <summary>The number format a <see cref="Linear"/> layer's inference fast path (<see cref="Linear.Apply"/>) computes in.</summary>
public enum LinearPrecision
{
    /// <summary>Float32 weights and activations (the default; what training uses).</summary>
    F32,

    /// <summary>
    /// Bfloat16 weights and activations, float32 accumulation (<see cref="Bf16Gemm"/>): about three significant digits
    /// per operand; sentence embeddings stay within cosine 0.999 of float32.
    /// </summary>
    BF16,

    /// <summary>
    /// Dynamic int8 as ONNX Runtime's <c>quantize_dynamic</c>: per-output-channel symmetric int8 weights, per-row
    /// asymmetric uint8 activations quantized at run time, int32 accumulation (<see cref="Int8Gemm"/>).
    /// </summary>
    Int8,
}

/// <summary>
/// A <see cref="Linear"/> layer's weight in a narrow inference format, derived from its float32 weight (and derived
/// again when that weight changes): the strategy <see cref="Linear.Apply"/> runs when a precision other than F32 is set.
/// The float32 parameter stays the layer's weight (training, state dicts and the autograd forward use it).
/// </summary>
public abstract class LinearKernel
{
    private protected LinearKernel(int sourceVersion) => SourceVersion = sourceVersion;

    /// <summary>The format.</summary>
    public abstract LinearPrecision Precision { get; }

    /// <summary>The <see cref="Parameter.Version"/> of the weight this was derived from.</summary>
    internal int SourceVersion { get; }

    /// <summary>y [N, Out] = x [N, In] · Wᵀ + bias (+ y when <paramref name="accumulate"/>) in this format.</summary>
    /// <param name="x">N·In activations.</param>
    /// <param name="rows">N.</param>
    /// <param name="bias">Empty, or Out values.</param>
    /// <param name="y">N·Out outputs.</param>
    /// <param name="accumulate">Add to y instead of overwriting it.</param>
    public abstract void Apply(ReadOnlySpan<float> x, int rows, ReadOnlySpan<float> bias, Span<float> y, bool accumulate);

    /// <summary>W [Out, In] (float32) in <paramref name="precision"/>.</summary>
    /// <param name="precision">BF16 or Int8.</param>
    /// <param name="weight">Out·In values, row-major.</param>
    /// <param name="outFeatures">Out.</param>
    /// <param name="inFeatures">In.</param>
    /// <param name="sourceVersion">The weight's version, to tell when to derive it again.</param>
    /// <returns>The kernel.</returns>
    /// <exception cref="ArgumentException"><paramref name="precision"/> is F32 (no kernel needed) or the sizes do not match.</exception>
    public static LinearKernel Create(LinearPrecision precision, ReadOnlySpan<float> weight, int outFeatures, int inFeatures, int sourceVersion = 0)
    {
        if (weight.Length != (long)outFeatures * inFeatures)
        {
            throw new ArgumentException($"LinearKernel.Create: {weight.Length} weights are not [Out={outFeatures}, In={inFeatures}].", nameof(weight));
        }

        return precision switch
        {
            LinearPrecision.BF16 => new Bf16Kernel(Bf16Gemm.QuantizeWeights(weight), outFeatures, inFeatures, sourceVersion),
            LinearPrecision.Int8 => new Int8Kernel(Int8Weights.Quantize(weight, outFeatures, inFeatures), sourceVersion),
            _ => throw new ArgumentException($"LinearKernel.Create: {precision} needs no kernel; F32 layers run the packed float32 GEMM.", nameof(precision)),
        };
    }

    private sealed class Bf16Kernel(BFloat16[] weight, int outFeatures, int inFeatures, int version) : LinearKernel(version)
    {
        public override LinearPrecision Precision => LinearPrecision.BF16;

        public override void Apply(ReadOnlySpan<float> x, int rows, ReadOnlySpan<float> bias, Span<float> y, bool accumulate) =>
            Bf16Gemm.MatMul(x, rows, inFeatures, weight, outFeatures, bias, y, accumulate);
    }

    private sealed class Int8Kernel(Int8Weights weight, int version) : LinearKernel(version)
    {
        public override LinearPrecision Precision => LinearPrecision.Int8;

        public override void Apply(ReadOnlySpan<float> x, int rows, ReadOnlySpan<float> bias, Span<float> y, bool accumulate) =>
            Int8Gemm.MatMul(x, rows, weight, bias, y, accumulate);
    }
}

/// <summary>Sets the inference precision of every <see cref="Linear"/> layer of a model (<c>--dtype bf16|int8</c>).</summary>
public static class InferencePrecision
{
    /// <summary>
    /// Parses a <c>--dtype</c> value: f32 (float32, fp32), bf16 (bfloat16), int8 (qint8).
    /// </summary>
    /// <param name="text">The value.</param>
    /// <returns>The precision.</returns>
    /// <exception cref="ArgumentException">Any other value; the message lists the accepted ones.</exception>
    public static LinearPrecision Parse(string text) => text?.Trim().ToLowerInvariant() switch
    {
        "f32" or "fp32" or "float32" => LinearPrecision.F32,
        "bf16" or "bfloat16" => LinearPrecision.BF16,
        "int8" or "qint8" => LinearPrecision.Int8,
        _ => throw new ArgumentException($"--dtype '{text}' is not one of f32, bf16, int8.", nameof(text)),
    };

    /// <summary>
    /// Sets <paramref name="precision"/> on every <see cref="Linear"/> in <paramref name="model"/> whose weight is
    /// float32 (the inference fast path of those layers then computes in it; see <see cref="Linear.SetPrecision"/>).
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="precision">The precision.</param>
    /// <returns>How many layers were set.</returns>
    public static int Apply(Module model, LinearPrecision precision)
    {
        ArgumentNullException.ThrowIfNull(model);
        int count = 0;
        foreach (var (_, module) in model.NamedModules())
        {
            if (module is Linear { WeightType: DType.F32 } linear)
            {
                linear.SetPrecision(precision);
                count++;
            }
        }

        return count;
    }
}
