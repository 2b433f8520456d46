namespace Sharpformer.Generation.Tests;

/// <summary>The numeric tolerances of this project, each with its reason.</summary>
internal static class Tolerances
{
    /// <summary>Logits vs PyTorch float32: the bound; our GEMM/attention sum in another order than torch.</summary>
    public const float LogitsVsTorch = 1e-4f;

    /// <summary>KV-cache decode vs one full pass, and padded vs unpadded runs: same math, different GEMM paths and row counts.</summary>
    public const float SameModelPaths = 1e-4f;

    /// <summary>
    /// The fixture loaded with F16 matrices vs PyTorch float32: every matrix rounded to fp16 (relative error ≤ 2^-11)
    /// moves these logits (spread ~19) by up to 7.3e-3 (measured over the fixture prompts; F32 loads agree to 5e-6).
    /// </summary>
    public const float LogitsF16WeightsVsTorch = 1e-2f;

    /// <summary>
    /// The fixture loaded with BF16 matrices vs PyTorch float32: bf16 keeps 8 mantissa bits (relative error ≤ 2^-8, 8×
    /// fp16's), so the logits move by up to 7.0e-2 (measured), about 10× the F16 figure.
    /// </summary>
    public const float LogitsBF16WeightsVsTorch = 1e-1f;

    /// <summary>Beam scores (sums of log-probabilities) vs PyTorch.</summary>
    public const double BeamScore = 1e-4;
}
