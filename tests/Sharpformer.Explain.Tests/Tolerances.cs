namespace Sharpformer.Explain.Tests;

/// <summary>Every numeric tolerance of the explain tests, stated once (mirrors tests/Sharpformer.Tensors.Tests/Tolerances.cs).</summary>
public static class Tolerances
{
    /// <summary>Float32 values computed two ways with double accumulation (means, norms, softmax): rounding only.</summary>
    public const float Rounding = 1e-6f;

    /// <summary>
    /// The sinusoidal picture (double precision, then rounded to float) vs the NN layer's table (HF's formula, also
    /// double then float): a last-bit difference where the two round the angle differently.
    /// </summary>
    public const float Sinusoid = 1e-6f;

    /// <summary>Rotary cos/sin computed from float angles vs RotaryEmbedding's own float32 tables (same formula): a few ulps of angles up to ~T.</summary>
    public const float Rotary = 1e-5f;

    /// <summary>Attention probabilities and logits of the fused inference path vs the same model's module (autograd) path: float32 with different summation orders (small widths).</summary>
    public const float VsModulePath = 1e-4f;
}
