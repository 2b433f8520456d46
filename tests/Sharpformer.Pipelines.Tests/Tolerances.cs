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

    /// <summary>
    /// Per element of a float32 dot product: <see cref="VectorSearch.Dot"/> accumulates in float lanes, the scalar
    /// reference in double; multiply by the length for the bound on the whole dot product.
    /// </summary>
    public const float SimdDot = 1e-6f;

    /// <summary>
    /// A search score vs the cosine of the pipeline's own embeddings of query and passage: the passage was embedded in a
    /// padded batch (and the score summed in float lanes), the reference alone and in double. Rounding of float32 only.
    /// </summary>
    public const float SearchScore = 1e-5f;

    /// <summary>
    /// Sentence embeddings of the sentence-transformers fixture (every pooling mode, Dense, Normalize, prompts) vs
    /// PyTorch running sentence-transformers' math: float32 on both sides, a two-layer encoder of width 16, summation
    /// order only (issue 16 §3 asks for ≤ 1e-5).
    /// </summary>
    public const float VsSentenceTransformers = 1e-5f;

    /// <summary>
    /// Issue 16 §2's accuracy bound for <c>--dtype bf16</c>: the cosine similarity of each sentence embedding to the
    /// float32 model's must be at least this (bfloat16 keeps 8 significant bits of every weight and activation).
    /// </summary>
    public const float Bf16EmbeddingCosine = 0.999f;

    /// <summary>
    /// Issue 16 §2's accuracy bound for <c>--dtype int8</c> (dynamic quantization of every encoder Linear): the cosine
    /// similarity of each sentence embedding to the float32 model's must be at least this.
    /// </summary>
    public const float Int8EmbeddingCosine = 0.99f;
}
