namespace Sharpformer.Models.Tests;

/// <summary>The numeric tolerances of the model tests, stated once.</summary>
internal static class Tolerances
{
    /// <summary>Against ONNX Runtime / PyTorch (the bar): float32 sums in another order over 6 layers.</summary>
    public const float VsReference = 1e-4f;

    /// <summary>Fast inference path vs the module (autograd) path: the same math, fused kernels, different sum order.</summary>
    public const float FastVsModules = 2e-5f;

    /// <summary>F16-stored weights vs the same weights in F32 (10-bit mantissas: ~5e-4 relative per weight, logits of order 5).</summary>
    public const float F16VsF32Weights = 3e-2f;

    /// <summary>Autograd gradient vs a float32 central finite difference (step 2e-3; the loss quantizes at ~1e-4 of gradient): absolute part.</summary>
    public const double FiniteDifferenceAbsolute = 5e-4;

    /// <summary>Autograd gradient vs a float32 central finite difference: part relative to the numeric gradient.</summary>
    public const double FiniteDifferenceRelative = 1e-2;

    /// <summary>Attention probabilities summing to 1 per row.</summary>
    public const float RowSum = 1e-5f;

    /// <summary>
    /// A GPT-2 loaded from a Q8_0 / Q4_0 GGUF export vs the same model in F32 (tiny random model, C = 64): max |Δlogit|
    /// relative to the logits' spread. 4-bit weights plus 8-bit activations move logits by a few percent of it; a
    /// misread block or a transposed matrix moves them by the whole spread. Measured 0.0033 (Q8_0) and 0.038 (Q4_0) of a spread of 1.2.
    /// </summary>
    public const float QuantizedGgufVsF32 = 0.1f;
}
