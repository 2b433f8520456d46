namespace Sharpformer.NN.Tests;

/// <summary>The numeric tolerances of the NN tests, stated once.</summary>
internal static class Tolerances
{
    /// <summary>A layer (SIMD kernels, float sums) vs a plain-loop reference in double, on values of order 1.</summary>
    public const float LayerVsLoop = 1e-5f;

    /// <summary>
    /// A quantized Linear [40, 256] (N(0, 0.05) weights, N(0, 1) inputs) vs the same layer on its dense weight: max |Δy|
    /// relative to the RMS of y. Q4_0 and Q4_K (4-bit codes plus 8-bit activations) are the loosest; the kernel's own
    /// bounds per type are in Sharpformer.Tensors.Tests (QuantMatMulVsF32). This only shows the quantized path ran on
    /// this weight: a wrong row or scale moves y by O(rms).
    /// </summary>
    public const double QuantizedLinearVsDense = 0.5;
}
