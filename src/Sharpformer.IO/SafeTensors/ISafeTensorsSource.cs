using Sharpformer.Tensors;

namespace Sharpformer.IO.SafeTensors;

/// <summary>
/// Named tensors read from safetensors: one file (<see cref="SafeTensorsFile"/>) or a sharded checkpoint
/// (<see cref="ShardedSafeTensors"/>). Tensors returned stay valid while the source is not disposed.
/// </summary>
public interface ISafeTensorsSource : IDisposable
{
    /// <summary>Every tensor entry, in file order (shard by shard for sharded checkpoints).</summary>
    IReadOnlyList<SafeTensorInfo> Tensors { get; }

    /// <summary>The <c>__metadata__</c> map (of the first shard for sharded checkpoints).</summary>
    IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>True when a tensor named <paramref name="name"/> exists.</summary>
    bool Contains(string name);

    /// <summary>The entry of the tensor named <paramref name="name"/>.</summary>
    /// <exception cref="SafeTensorsException">No such tensor (kind <see cref="SafeTensorsErrorKind.TensorNotFound"/>).</exception>
    SafeTensorInfo GetInfo(string name);

    /// <summary>The tensor as stored (F32, F16, BF16, I32 or I64), a zero-copy read-only view of the memory map.</summary>
    /// <exception cref="SafeTensorsException">No such tensor, or its dtype has no Sharpformer tensor type (use <see cref="GetTensorAsF32"/>).</exception>
    Tensor GetTensor(string name);

    /// <summary>The tensor widened to F32 (a view when it is F32 already, else a managed copy).</summary>
    /// <exception cref="SafeTensorsException">No such tensor, or its dtype has no meaningful F32 value (F4, F6, C64, FNUZ FP8).</exception>
    Tensor GetTensorAsF32(string name);

    /// <summary>The tensor's raw little-endian bytes, straight from the memory map (any dtype).</summary>
    /// <exception cref="SafeTensorsException">No such tensor, or it is larger than 2 GiB (a span cannot hold it).</exception>
    ReadOnlySpan<byte> GetBytes(string name);
}
