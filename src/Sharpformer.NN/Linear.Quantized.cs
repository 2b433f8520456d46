using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels.Quant;

namespace Sharpformer.NN;

/// <summary>
/// Quantized inference weights of the dense layer: the weight as ggml blocks (Q8_0, Q4_0, Q4_K, Q6_K) that
/// <see cref="Apply"/> multiplies by through <see cref="QuantMatMul"/>, for decode and prefill alike, reading a quarter
/// to an eighth of the F32 bytes. The dense <see cref="Weight"/> stays the layer's parameter (what checkpoints,
/// <see cref="Module.StateDict"/> and LoRA see) and the blocks are derived from it, like the packed GEMM weight: when the
/// weight changes (<see cref="Parameter.Version"/>), the next <see cref="Apply"/> quantizes it again to the same type.
/// A quantized layer is inference only: the autograd <see cref="Forward(Tensor)"/> refuses it.
/// </summary>
public sealed partial class Linear
{
    private int _quantizedVersion;

    /// <summary>The weight as blocks that <see cref="Apply"/> multiplies by, or null when the layer runs on its dense weight.</summary>
    public QuantizedMatrix? QuantizedWeight { get; private set; }

    /// <summary>
    /// Quantizes the weight [Out, In] (F32, F16 or BF16) into <paramref name="type"/> blocks for inference; In must be a
    /// multiple of the type's block (32 for Q8_0/Q4_0, 256 for Q4_K/Q6_K).
    /// </summary>
    /// <param name="type">The block type.</param>
    /// <exception cref="ArgumentException">In is not whole blocks of <paramref name="type"/>.</exception>
    public void Quantize(QuantType type)
    {
        if (!type.Fits(InFeatures))
        {
            throw new ArgumentException(
                $"Linear [{OutFeatures}, {InFeatures}]: {type} stores rows in blocks of {type.BlockValues()} values, and In = {InFeatures} is not a multiple of it; keep this layer dense or pick {(type.BlockValues() == 256 ? "Q8_0 or Q4_0 (blocks of 32)" : "another type")}.",
                nameof(type));
        }

        var weight = Weight.Value.IsContiguous ? Weight.Value : Weight.Value.Contiguous();
        var dense = new float[(long)OutFeatures * InFeatures];
        Embedding.WidenRows(weight, 0, OutFeatures, InFeatures, dense);
        QuantizedWeight = QuantizedMatrix.Quantize(dense, OutFeatures, InFeatures, type);
        _quantizedVersion = Weight.Version;
    }

    /// <summary>
    /// Multiplies by <paramref name="weight"/>'s blocks from now on (blocks read from a GGUF file, whose dequantized
    /// values the dense <see cref="Weight"/> should hold, so that the two agree).
    /// </summary>
    /// <param name="weight">A matrix [Out, In].</param>
    /// <exception cref="ArgumentException">The matrix's shape is not this layer's.</exception>
    public void UseQuantizedWeight(QuantizedMatrix weight)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.Rows != OutFeatures || weight.Columns != InFeatures)
        {
            throw new ArgumentException($"Linear [{OutFeatures}, {InFeatures}]: a {weight.Type} matrix [{weight.Rows}, {weight.Columns}] does not fit (it must be [Out, In]).", nameof(weight));
        }

        QuantizedWeight = weight;
        _quantizedVersion = Weight.Version;
    }

    /// <summary>Drops the blocks: the layer runs on its dense weight again (and may train, if that weight is F32).</summary>
    public void Dequantize() => QuantizedWeight = null;

    private void ApplyQuantized(ReadOnlySpan<float> x, int rows, ReadOnlySpan<float> bias, Span<float> y, bool accumulate) =>
        QuantMatMul.Multiply(x, rows, CurrentQuantizedWeight(), bias, y, accumulate);

    /// <summary>The blocks to multiply by (quantized again first when the dense weight changed since: a load, an optimizer step).</summary>
    private QuantizedMatrix CurrentQuantizedWeight()
    {
        if (_quantizedVersion != Weight.Version)
        {
            Quantize(QuantizedWeight!.Type);
        }

        return QuantizedWeight!;
    }

    private void ThrowIfQuantized()
    {
        if (QuantizedWeight is { } q)
        {
            throw new InvalidOperationException(
                $"Linear [{OutFeatures}, {InFeatures}]: the layer multiplies by {q.Type} blocks, which serve inference only; there is no gradient through a quantized weight. Run it under Autograd.NoGrad() through the inference path, or call Dequantize() (and load F32 weights) to train.");
        }
    }
}
