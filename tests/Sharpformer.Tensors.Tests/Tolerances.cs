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

    /// <summary>
    /// A small graph of elementwise ops in float (tanh, scales, sums of a few equal terms) vs its closed-form gradient in
    /// double, |Δ| ≤ this · max(1, |expected|): tanh is ≤ 2 ulp and each product or sum adds half an ulp.
    /// </summary>
    public const float GraphVsClosedForm = 1e-5f;

    /// <summary>Sharpformer vs a PyTorch fixture computed in float32.</summary>
    public const float VsPyTorch = 1e-4f;

    /// <summary>Sharpformer vs ONNX Runtime on real checkpoints (issue: max abs difference ≤ 1e-4).</summary>
    public const float VsOnnxRuntime = 1e-4f;

    /// <summary>Q8_0 round trip, in code steps (max|x|/127) per block: ½ for rounding, plus the scale's F16 rounding (≤ 127·2^-11 ≈ 0.06 step).</summary>
    public const float Q8_0RoundTripSteps = 0.6f;

    /// <summary>Q4_0 round trip, in code steps (max|x|/8) per block: ½ for rounding, but a full step where code 16 clips to 15 on the side opposite the largest value; plus the scale's F16 rounding.</summary>
    public const float Q4_0RoundTripSteps = 1.1f;

    /// <summary>
    /// Q4_K / Q6_K round trip, in code steps per group (Q4_K: (max − min(0, min))/15 over 32 values; Q6_K: max|x|/32 over
    /// 16): the searched scale may trade a clipped extreme for a better fit of the rest, and the group scales are
    /// themselves quantized to 6 (Q4_K) or 8 (Q6_K) bits. Measured worst on 64 super-blocks of N(0, 0.02): 0.76 (Q4_K), 0.52 (Q6_K); Q8_0 0.55 and Q4_0 1.0 by the same measure.
    /// </summary>
    public const float KQuantRoundTripSteps = 1.0f;

    /// <summary>Q4_K relative RMS error (‖x − x̂‖ / ‖x‖) on N(0, σ) data: 4-bit codes with a min give about 1/15 of a group's range per step. Measured 0.072.</summary>
    public const double Q4_KRelativeRms = 0.09;

    /// <summary>Q6_K relative RMS error on N(0, σ) data (6-bit codes). Measured 0.018.</summary>
    public const double Q6_KRelativeRms = 0.025;

    /// <summary>
    /// A quantized matrix product vs the F32 product of the unquantized weights and activations, max |Δy| relative to the
    /// RMS of y (random N(0, 1) x, N(0, 0.02) W, In = 768): the weights' and the 8-bit activations' rounding together.
    /// Worst over 10 seeds: Q8_0 0.031, Q4_0 0.36, Q4_K 0.25, Q6_K 0.078; the bounds leave ~1.4× headroom.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, float> QuantMatMulVsF32 = new Dictionary<string, float>
    {
        ["Q8_0"] = 0.045f,
        ["Q4_0"] = 0.5f,
        ["Q4_K"] = 0.35f,
        ["Q6_K"] = 0.11f,
    };
}
