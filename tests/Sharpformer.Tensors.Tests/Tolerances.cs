namespace Sharpformer.Tensors.Tests;

/// <summary>
/// Every numeric tolerance the test suite uses, stated once. Change a figure here, with a reason, never inline in a test.
/// </summary>
public static class Tolerances
{
    /// <summary>A SIMD kernel vs its scalar reference on the same math (reordered float sums only).</summary>
    public const float KernelVsReference = 1e-5f;

    /// <summary>A SIMD kernel vs its scalar reference, relative to the magnitude of the result (long dot products).</summary>
    public const float KernelVsReferenceRelative = 1e-5f;

    /// <summary>
    /// Analytic gradient vs central finite differences in float64-accumulated float32 (step 1e-3). Every op passes at
    /// 3e-4 / 3e-3 on all ISA tiers; 2e-3 / 2e-2 let a backward that was 2% off (a wrong scale) through, so this is tight.
    /// </summary>
    public const float GradCheckAbsolute = 5e-4f;

    /// <summary>Relative part of the finite-difference check (see <see cref="GradCheckAbsolute"/>).</summary>
    public const float GradCheckRelative = 5e-3f;

    /// <summary>
    /// A float activation (GELU, SiLU) vs its formula in double: exp is ≤ 2 ulp and erf ≤ 1e-6 absolute, and the
    /// activation's own few float roundings add a few ulp; 2e-6 absolute plus relative covers both.
    /// </summary>
    public const float ActivationVsDouble = 2e-6f;

    /// <summary>
    /// A float norm (two-pass statistics in float) vs the same norm in double, relative and absolute on outputs of order 1:
    /// the float sums over up to ~4k elements carry a few 1e-7 relative error into mean and rstd.
    /// </summary>
    public const float NormVsDouble = 5e-6f;

    /// <summary>
    /// One op (forward output or input gradient) vs PyTorch in float32 (tests/fixtures/ops): |ours − torch| ≤ this ·
    /// max(1, |torch|), absolute on values of order 1 and relative above. Single ops on small inputs differ from torch
    /// only by summation order, a few ulp; a whole block (<see cref="VsPyTorch"/>) compounds more.
    /// </summary>
    public const float VsPyTorchOp = 1e-5f;

    /// <summary>Sharpformer vs a PyTorch fixture computed in float32.</summary>
    public const float VsPyTorch = 1e-4f;

    /// <summary>Sharpformer vs ONNX Runtime on real checkpoints (issue: max abs difference ≤ 1e-4).</summary>
    public const float VsOnnxRuntime = 1e-4f;
}
