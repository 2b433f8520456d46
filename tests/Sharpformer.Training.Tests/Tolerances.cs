namespace Sharpformer.Training.Tests;

/// <summary>Absolute bounds for the tests that compare whole outputs (as in Sharpformer.Models.Tests).</summary>
internal static class Tolerances
{
    /// <summary>Ours vs the PyTorch fixtures (logits, losses, gradients): max |diff| ≤ 1e-4, the bound.</summary>
    public const float VsReference = 1e-4f;

    /// <summary>Two of our own paths computing the same function in another order (fused vs modules, merged vs unmerged, saved vs loaded).</summary>
    public const float OwnPaths = 2e-5f;
}
