namespace Sharpformer.IO.Tests;

/// <summary>
/// Every numeric tolerance of the IO tests, stated once (mirrors tests/Sharpformer.Tensors.Tests/Tolerances.cs).
/// </summary>
public static class Tolerances
{
    /// <summary>
    /// A converted checkpoint run by the test-only reference BERT vs ONNX Runtime on the original graph (issue "Real
    /// checkpoints": max abs difference ≤ 1e-4). Both compute in float32; only summation order differs.
    /// </summary>
    public const float VsOnnxRuntime = 1e-4f;
}
