namespace Sharpformer.Generation.Tests;

/// <summary>The numeric tolerances of this project, each with its reason.</summary>
internal static class Tolerances
{
    /// <summary>Logits vs PyTorch float32: the bound; our GEMM/attention sum in another order than torch.</summary>
    public const float LogitsVsTorch = 1e-4f;

    /// <summary>KV-cache decode vs one full pass, and padded vs unpadded runs: same math, different GEMM paths and row counts.</summary>
    public const float SameModelPaths = 1e-4f;

    /// <summary>Beam scores (sums of log-probabilities) vs PyTorch.</summary>
    public const double BeamScore = 1e-4;
}
