namespace Sharpformer.Pipelines.Tests;

/// <summary>Every numeric tolerance of the pipeline tests, stated once (mirrors tests/Sharpformer.Tensors.Tests/Tolerances.cs).</summary>
public static class Tolerances
{
    /// <summary>
    /// Sentence embeddings vs ONNX Runtime's mean-pooled, normalised last_hidden_state (issue "BERT end to end" §3:
    /// ≤ 1e-4). Both run float32; only summation order differs.
    /// </summary>
    public const float VsOnnxRuntime = 1e-4f;

    /// <summary>Float32 probabilities and cosines computed two ways (double-accumulated in both): rounding only.</summary>
    public const float Rounding = 1e-6f;

    /// <summary>
    /// Hidden states and logits of the random masked-LM checkpoint vs the plain test-only reference forward: float32 with
    /// different summation orders over a few layers of width 32.
    /// </summary>
    public const float VsReference = 1e-4f;
}
