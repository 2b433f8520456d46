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

/// <summary>Asking a causal LM for a KV cache type.</summary>
public static class KvCacheElementType
{
    /// <summary>
    /// Sets <paramref name="model"/>'s <see cref="IKvCacheElementType.KvCacheType"/> to <paramref name="type"/>; null
    /// keeps the model's default. A model without the choice keeps F32 and accepts only that.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="type">F32, F16 or null.</param>
    /// <exception cref="NotSupportedException">F16 was asked of a model that keeps its KV cache in F32 only.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The type is neither F32 nor F16.</exception>
    public static void Apply(ICausalLM model, DType? type)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (type is not { } t)
        {
            return;
        }

        if (model is IKvCacheElementType typed)
        {
            typed.KvCacheType = t;
        }
        else if (t != DType.F32)
        {
            throw new NotSupportedException($"{model.GetType().Name} keeps its KV cache in F32 only; ask for F32 or leave the cache type unset.");
        }
    }
}
