namespace Sharpformer.Models.Tests;

/// <summary>The numeric tolerances of the model tests, stated once.</summary>
internal static class Tolerances
{
    /// <summary>Against ONNX Runtime / PyTorch (the bar): float32 sums in another order over 6 layers.</summary>
    public const float VsReference = 1e-4f;

    /// <summary>Fast inference path vs the module (autograd) path: the same math, fused kernels, different sum order.</summary>
    public const float FastVsModules = 2e-5f;

    /// <summary>F16-stored weights vs the same weights in F32 (10-bit mantissas: ~5e-4 relative per weight, logits of order 5).</summary>
    public const float F16VsF32Weights = 3e-2f;

    /// <summary>
    /// Decoding with the F16 KV cache vs the F32 cache, same weights: K and V rounded to 11 significant bits (relative
    /// error ≤ 2^-11 ≈ 4.9e-4 per value), everything else F32. Measured on the tiny fixtures (GPT-2 and the five
    /// Llama-family ones, prompt plus 12–14 greedy steps): at most 7.8e-3 (qwen2; GPT-2 4.6e-3).
    /// </summary>
    public const float F16CacheVsF32Cache = 2e-2f;

    /// <summary>
    /// One sequence decoded with the F16 KV cache inside a padded batch vs alone, or a prompt prefilled in two chunks vs
    /// one: the two paths' F32 noise (~1e-7) can move a K or V value across an F16 rounding boundary, one half ulp
    /// (2^-11 relative) apart. Measured 2.1e-4 (GPT-2 tiny, padded batch; the F32 cache stays within
    /// <see cref="VsReference"/>) and 2.3e-4 (GPT-2 tiny, 4 + 4 chunks, Vector128 kernels).
    /// </summary>
    public const float F16CacheBatchVsAlone = 2e-3f;

    /// <summary>Autograd gradient vs a float32 central finite difference (step 2e-3; the loss quantizes at ~1e-4 of gradient): absolute part.</summary>
    public const double FiniteDifferenceAbsolute = 5e-4;

    /// <summary>Autograd gradient vs a float32 central finite difference: part relative to the numeric gradient.</summary>
    public const double FiniteDifferenceRelative = 1e-2;

    /// <summary>Attention probabilities summing to 1 per row.</summary>
    public const float RowSum = 1e-5f;

    /// <summary>
    /// A GPT-2 loaded from a Q8_0 / Q4_0 GGUF export vs the same model in F32 (tiny random model, C = 64): max |Δlogit|
    /// relative to the logits' spread. 4-bit weights plus 8-bit activations move logits by a few percent of it; a
    /// misread block or a transposed matrix moves them by the whole spread. Measured 0.0033 (Q8_0) and 0.038 (Q4_0) of a spread of 1.2.
    /// </summary>
    public const float QuantizedGgufVsF32 = 0.1f;

    /// <summary>
    /// A quantized model's last-token logits decoded through the KV cache vs the same token in one full forward, both on
    /// the same blocks, as a fraction of the logits' spread: the same math in another sum order (GEMV vs prefill kernels,
    /// attention over the cache), except that an activation within float noise of an 8-bit rounding boundary may take the
    /// neighbouring code on one path, and one code moves the logits by far more than float noise. Measured on WideLlama
    /// at Q8_0/Q4_0/Q4_K with AVX-512 (where the decode and prefill attention outputs agree bit for bit): at most 7.2e-7
    /// absolute. With AVX-512 off (AVX2 kernels), the two attention outputs of WideLlama Q4_0's last layer differ by
    /// 1.2e-6, which flips one of o_proj's activation codes: 5.2e-2 absolute, 0.0063 of a spread of 8.2. A wrong cache row
    /// or position moves the logits by a large part of the spread.
    /// </summary>
    public const float QuantizedDecodeVsFullForward = 0.02f;

    /// <summary>
    /// A Llama-family model loaded from a quantized GGUF export vs the same model in F32, as a fraction of the logits'
    /// spread: the weights' rounding alone. Random weights (the PyTorch fixtures, WideLlama) have no structure to
    /// shield the logits from it. Measured (max over the five tiny fixtures and WideLlama): 0.036 (Q8_0), 0.43 (Q4_0,
    /// phi3; 0.24–0.34 elsewhere), 0.26 (Q4_K). The 4-bit bound is loose on purpose; QuantizedBlocksVsDequantized is the
    /// tight check of the blocks.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, float> QuantizedLlamaGgufVsF32 = new Dictionary<string, float>
    {
        ["MostlyQ8_0"] = 0.1f,
        ["MostlyQ4_0"] = 0.6f,
        ["MostlyQ4_K"] = 0.6f,
    };

    /// <summary>
    /// The same quantized model multiplying by its blocks vs by the blocks' dequantized values in F32 products, as a
    /// fraction of the logits' spread: only the 8-bit per-block quantization of the activations (as llama.cpp does it)
    /// differs, so a misread block, scale or row order shows here even where the weights' own rounding is large.
    /// Measured 0.012–0.027 over the tiny fixtures and WideLlama (all types); a misread block moves logits by O(spread).
    /// </summary>
    public const float QuantizedBlocksVsDequantized = 0.06f;
}
