using Sharpformer.Tensors;

namespace Sharpformer.NN;

/// <summary>
/// A learnable F32 tensor owned by a <see cref="Module"/>: its <see cref="Value"/> requires gradients unless frozen.
/// Loading a checkpoint replaces the value (same shape); <see cref="Version"/> counts replacements so layers that cache
/// a derived form (a pre-packed GEMM weight) know when to rebuild it.
/// </summary>
public sealed class Parameter
{
    private Tensor _value;

    /// <summary>Wraps <paramref name="value"/> (must be F32) as a parameter.</summary>
    /// <param name="value">The initial value.</param>
    /// <param name="requiresGrad">Whether the autograd tape tracks it (false freezes it).</param>
    /// <exception cref="ArgumentException">The tensor is not F32.</exception>
    public Parameter(Tensor value, bool requiresGrad = true)
    {
        ArgumentNullException.ThrowIfNull(value);
        CheckF32(value, nameof(value));
        _value = value;
        _value.RequiresGrad = requiresGrad;
    }

    /// <summary>The current value. Setting it requires the same shape and F32, and keeps the requires-grad flag.</summary>
    /// <exception cref="ArgumentException">The new value has another shape or dtype.</exception>
    public Tensor Value
    {
        get => _value;
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            CheckF32(value, nameof(value));
            if (value.Shape != _value.Shape)
            {
                throw new ArgumentException($"Parameter: a new value of shape {value.Shape} cannot replace one of shape {_value.Shape}.", nameof(value));
            }

            bool requiresGrad = _value.RequiresGrad;
            _value = value;
            _value.RequiresGrad = requiresGrad;
            Version++;
        }
    }

    /// <summary>The shape of <see cref="Value"/>.</summary>
    public Shape Shape => _value.Shape;

    /// <summary>Whether gradients are tracked for this parameter.</summary>
    public bool RequiresGrad
    {
        get => _value.RequiresGrad;
        set => _value.RequiresGrad = value;
    }

    /// <summary>Incremented each time <see cref="Value"/> is replaced or <see cref="MarkModified"/> is called.</summary>
    public int Version { get; private set; }

    /// <summary>
    /// Records that <see cref="Value"/>'s elements were changed in place (an optimizer step), so layers that cache a
    /// derived form of it (a packed GEMM weight) rebuild it before their next use.
    /// </summary>
    public void MarkModified() => Version++;

    private static void CheckF32(Tensor value, string name)
    {
        if (value.DType != DType.F32)
        {
            throw new ArgumentException($"Parameter: values are F32, got {value.DType} of shape {value.Shape}; convert with To(DType.F32).", name);
        }
    }
}
