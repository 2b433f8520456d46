namespace Sharpformer.Models.Tests;

/// <summary>The numeric tolerances of the model tests, stated once.</summary>
internal static class Tolerances
{
    /// <summary>Against ONNX Runtime / PyTorch (the bar): float32 sums in another order over 6 layers.</summary>
    public const float VsReference = 1e-4f;

    /// <summary>Fast inference path vs the module (autograd) path: the same math, fused kernels, different sum order.</summary>
    public const float FastVsModules = 2e-5f;

    /// <summary>Attention probabilities summing to 1 per row.</summary>
    public const float RowSum = 1e-5f;
}
