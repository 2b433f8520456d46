namespace Sharpformer.NN.Tests;

/// <summary>The numeric tolerances of the NN tests, stated once.</summary>
internal static class Tolerances
{
    /// <summary>A layer (SIMD kernels, float sums) vs a plain-loop reference in double, on values of order 1.</summary>
    public const float LayerVsLoop = 1e-5f;
}
