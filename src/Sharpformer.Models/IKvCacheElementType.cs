using Sharpformer.Tensors;

namespace Sharpformer.Models;

/// <summary>
/// A causal LM whose <see cref="ICausalLM.CreateCache"/> can keep K and V in F32 or F16 (<see cref="KvCache.ElementType"/>).
/// The default follows llama.cpp (F16 cache) for models whose weights are F16, BF16 or quantized, and F32 for F32 weights.
/// </summary>
public interface IKvCacheElementType
{
    /// <summary>How the caches this model creates from now on store K and V: <see cref="DType.F32"/> or <see cref="DType.F16"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Set to another type.</exception>
    DType KvCacheType { get; set; }
}
