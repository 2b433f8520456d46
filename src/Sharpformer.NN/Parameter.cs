using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels;

namespace Sharpformer.NN;

/// <summary>How a parameter is laid out in a checkpoint relative to the module's own layout.</summary>
public enum ParameterLayout
{
    /// <summary>The checkpoint stores the tensor exactly as the module holds it (PyTorch's nn.Linear [Out, In], norms, embeddings).</summary>
    AsIs,

    /// <summary>
    /// The checkpoint stores the 2-D tensor transposed: Hugging Face's Conv1D (GPT-2's c_attn, c_proj, c_fc) keeps its
    /// weight [In, Out] while the module holds [Out, In] (the layout the GEMV streams row by row). Loading transposes
    /// once; <see cref="Module.StateDict"/>, <see cref="Module.SaveSafetensors"/> and <see cref="Module.LoadStateDict(IReadOnlyDictionary{string, Tensor}, bool)"/>
    /// speak the checkpoint's [In, Out], so a saved folder is a Hugging Face checkpoint again.
    /// </summary>
    Transposed,
}

/// <summary>
/// A tensor owned by a <see cref="Module"/>: F32 and trainable (its <see cref="Value"/> requires gradients unless
/// frozen), or F16/BF16 for inference only (<see cref="RequiresGrad"/> stays false; load the model in F32 to train).
/// Loading a checkpoint copies into the value in place (same shape and type); <see cref="Version"/> counts changes so
/// layers that cache a derived form (a pre-packed GEMM weight) know when to rebuild it. <see cref="CheckpointLayout"/>
/// says how the checkpoint stores it. An F16 value that the loader made (<see cref="OwnValue"/>) is re-encoded in place
/// as half codes when a decode kernel first meets it, and back to IEEE halves, for good, when <see cref="Value"/> is read.
/// </summary>
public sealed class Parameter
{
    /// <summary><see cref="_halfCodes"/>: an F16 value not yet met by a decode kernel (IEEE halves).</summary>
    private const int CodesUntried = 0;

    /// <summary><see cref="_halfCodes"/>: the F16 value's memory holds half codes (<see cref="HalfCodes"/>).</summary>
    private const int CodesHeld = 1;

    /// <summary><see cref="_halfCodes"/>: a transition is under way (encoding or decoding, under <see cref="_codeGate"/>).</summary>
    private const int CodesBusy = 2;

    /// <summary><see cref="_halfCodes"/>: IEEE halves for good (the value was handed out, or cannot be coded, or is not F16).</summary>
    private const int CodesNever = 3;

    private readonly object _codeGate = new();
    private Tensor _value;
    private int _halfCodes;
    private int _codeReaders;

    /// <summary>Wraps <paramref name="value"/> as a parameter.</summary>
    /// <param name="value">The initial value: F32, or F16/BF16 with <paramref name="requiresGrad"/> false.</param>
    /// <param name="requiresGrad">Whether the autograd tape tracks it (false freezes it). Must be false for F16/BF16.</param>
    /// <param name="checkpointLayout">How checkpoints store it (<see cref="ParameterLayout.Transposed"/> needs a 2-D value).</param>
    /// <exception cref="ArgumentException">The tensor is not F32/F16/BF16, a narrow tensor is asked to require gradients, or a transposed layout is given for a tensor that is not 2-D.</exception>
    public Parameter(Tensor value, bool requiresGrad = true, ParameterLayout checkpointLayout = ParameterLayout.AsIs)
    {
        ArgumentNullException.ThrowIfNull(value);
        CheckType(value, nameof(value));
        if (requiresGrad && value.DType != DType.F32)
        {
            throw new ArgumentException(
                $"Parameter: a {value.DType} value of shape {value.Shape} cannot require gradients (training needs F32); pass requiresGrad: false for inference, or load the model in DType.F32 to train.",
                nameof(requiresGrad));
        }

        if (checkpointLayout == ParameterLayout.Transposed && value.Rank != 2)
        {
            throw new ArgumentException($"Parameter: only a 2-D value can be stored transposed, got shape {value.Shape}.", nameof(checkpointLayout));
        }

        _value = value;
        _value.RequiresGrad = requiresGrad;
        CheckpointLayout = checkpointLayout;
        _halfCodes = CodesNever; // the caller holds this tensor: never re-encoded (see OwnValue)
    }

    /// <summary>
    /// The current value, in the module's layout. Setting it requires the same shape and dtype and keeps the
    /// requires-grad flag; loading uses <see cref="Module.LoadStateDict(IReadOnlyDictionary{string, Tensor}, bool)"/>,
    /// which copies into the existing buffer instead (keeping its alignment).
    /// </summary>
    /// <remarks>
    /// An F16 value that the decode kernels have met may be held as half codes (<see cref="EnterHalfCodes"/>); reading
    /// this property turns it back into IEEE halves first, for good: the tensor handed out is never re-encoded later,
    /// so it can be kept, read and written as ordinary F16 (the kernels then read it as F16, which is slower).
    /// </remarks>
    /// <exception cref="ArgumentException">The new value has another shape or dtype.</exception>
    public Tensor Value
    {
        get
        {
            if (Volatile.Read(ref _halfCodes) != CodesNever)
            {
                EndHalfCodes(forGood: true);
            }

            return _value;
        }

        set
        {
            ArgumentNullException.ThrowIfNull(value);
            if (value.DType != _value.DType)
            {
                throw new ArgumentException($"Parameter: a {value.DType} value cannot replace a {_value.DType} one; convert with To(DType.{_value.DType}).", nameof(value));
            }

            if (value.Shape != _value.Shape)
            {
                throw new ArgumentException($"Parameter: a new value of shape {value.Shape} cannot replace one of shape {_value.Shape}.", nameof(value));
            }

            EndHalfCodes(forGood: true); // the old value back in IEEE halves, for whoever still holds it; the new one is the caller's
            bool requiresGrad = _value.RequiresGrad;
            _value = value;
            _value.RequiresGrad = requiresGrad;
            Version++;
        }
    }

    /// <summary>
    /// Whether the F16 value is held as half codes right now, for a decode kernel: on the first call for an F16 value
    /// whose memory is its own (writable, contiguous) and whose every half is finite with |w| &lt; 128, the halves are
    /// re-encoded in place (<see cref="HalfCodes.TryEncode"/>; exact, widened in three operations instead of ten). True
    /// means the caller may read <see cref="HalfCodeSpan"/> until it calls <see cref="ExitHalfCodes"/>; a concurrent
    /// <see cref="Value"/> read waits for it. False: use the value as F16 (<see cref="Value"/>).
    /// </summary>
    internal bool EnterHalfCodes()
    {
        while (true)
        {
            int state = Volatile.Read(ref _halfCodes);
            if (state == CodesNever)
            {
                return false;
            }

            if (state == CodesUntried)
            {
                TryStartHalfCodes();
                continue;
            }

            // Registered first, then the state read again: a transition (under the gate) marks itself busy before it
            // waits for the readers to leave, so either it sees this reader or this reader sees it.
            Interlocked.Increment(ref _codeReaders);
            if (Volatile.Read(ref _halfCodes) == CodesHeld)
            {
                return true;
            }

            Interlocked.Decrement(ref _codeReaders);
            lock (_codeGate)
            {
                // Waits out a transition in progress.
            }
        }
    }

    /// <summary>Ends a read that <see cref="EnterHalfCodes"/> returned true for.</summary>
    internal void ExitHalfCodes() => Interlocked.Decrement(ref _codeReaders);

    /// <summary>The value's elements as half codes (only between <see cref="EnterHalfCodes"/> returning true and <see cref="ExitHalfCodes"/>).</summary>
    internal ReadOnlySpan<HalfCode> HalfCodeSpan => System.Runtime.InteropServices.MemoryMarshal.Cast<Half, HalfCode>(_value.AsReadOnlySpan<Half>());

    /// <summary>Whether the value is held as half codes now (tests).</summary>
    internal bool HoldsHalfCodes => Volatile.Read(ref _halfCodes) == CodesHeld;

    private void TryStartHalfCodes()
    {
        lock (_codeGate)
        {
            if (_halfCodes != CodesUntried)
            {
                return;
            }

            // No reader holds codes yet (none can before this), and an F16 reader of an untried value comes here first.
            bool codable = _value.DType == DType.F16 && _value.IsContiguous && !_value.Storage.IsReadOnly && HalfCodes.TryEncode(_value.AsSpan<Half>());
            Volatile.Write(ref _halfCodes, codable ? CodesHeld : CodesNever);
        }
    }

    /// <summary>
    /// Declares that nothing outside this parameter holds its value tensor (a buffer the loader made for it), so an F16
    /// value may be re-encoded in place for the decode kernels (<see cref="EnterHalfCodes"/>).
    /// </summary>
    internal void OwnValue()
    {
        lock (_codeGate)
        {
            if (_value.DType == DType.F16 && _halfCodes == CodesNever)
            {
                Volatile.Write(ref _halfCodes, CodesUntried);
            }
        }
    }

    /// <summary>
    /// Turns codes back into IEEE halves (after the readers in flight leave); with <paramref name="forGood"/> the value
    /// is never coded again (it is being handed out), else it may be coded again on the next kernel use.
    /// </summary>
    private void EndHalfCodes(bool forGood)
    {
        lock (_codeGate)
        {
            if (_halfCodes == CodesHeld)
            {
                Interlocked.Exchange(ref _halfCodes, CodesBusy);
                var wait = default(SpinWait);
                while (Volatile.Read(ref _codeReaders) != 0)
                {
                    wait.SpinOnce();
                }

                HalfCodes.Decode(System.Runtime.InteropServices.MemoryMarshal.Cast<Half, HalfCode>(_value.AsSpan<Half>()));
                Volatile.Write(ref _halfCodes, forGood ? CodesNever : CodesUntried);
                return;
            }

            if (forGood)
            {
                Volatile.Write(ref _halfCodes, CodesNever);
            }
        }
    }

    /// <summary>The shape of <see cref="Value"/> (the module's layout).</summary>
    public Shape Shape => _value.Shape;

    /// <summary>The element type of <see cref="Value"/>: F32 (trainable), F16 or BF16 (inference only).</summary>
    public DType DType => _value.DType;

    /// <summary>How checkpoints store this parameter (<see cref="ParameterLayout.Transposed"/>: [In, Out] for an [Out, In] value).</summary>
    public ParameterLayout CheckpointLayout { get; }

    /// <summary>The shape the checkpoint stores: <see cref="Shape"/>, or its transpose for <see cref="ParameterLayout.Transposed"/>.</summary>
    public Shape CheckpointShape => CheckpointLayout == ParameterLayout.Transposed ? new Shape(Shape[1], Shape[0]) : Shape;

    /// <summary>Whether gradients are tracked for this parameter.</summary>
    /// <exception cref="InvalidOperationException">Set to true on an F16/BF16 parameter.</exception>
    public bool RequiresGrad
    {
        get => _value.RequiresGrad;
        set
        {
            if (value && _value.DType != DType.F32)
            {
                throw new InvalidOperationException(
                    $"Parameter: this {_value.DType} parameter of shape {_value.Shape} is inference-only and cannot require gradients; load the model in DType.F32 to train it.");
            }

            _value.RequiresGrad = value;
        }
    }

    /// <summary>Incremented each time <see cref="Value"/> is replaced or <see cref="MarkModified"/> is called.</summary>
    public int Version { get; private set; }

    /// <summary>
    /// Records that <see cref="Value"/>'s elements were changed in place (an optimizer step, a load), so layers that
    /// cache a derived form of it (a packed GEMM weight) rebuild it before their next use.
    /// </summary>
    public void MarkModified() => Version++;

    /// <summary>The value as the checkpoint stores it: <see cref="Value"/>, or a transposed view of it (no copy).</summary>
    /// <returns>The tensor in checkpoint layout.</returns>
    public Tensor ToCheckpoint() => CheckpointLayout == ParameterLayout.Transposed ? Value.Transpose(0, 1) : Value;

    /// <summary>
    /// Copies a tensor in checkpoint layout (<see cref="CheckpointShape"/>, this parameter's dtype) into
    /// <see cref="Value"/> in place, transposing when the layout says so, and marks the parameter modified.
    /// </summary>
    /// <param name="stored">The tensor as the checkpoint holds it.</param>
    /// <exception cref="ArgumentException">Its shape or dtype differs from the checkpoint's.</exception>
    public void LoadFromCheckpoint(Tensor stored)
    {
        ArgumentNullException.ThrowIfNull(stored);
        if (stored.Shape != CheckpointShape || stored.DType != DType)
        {
            throw new ArgumentException($"Parameter: a checkpoint tensor {stored.DType} {stored.Shape} does not fit this parameter ({DType} {CheckpointShape} in checkpoint layout {CheckpointLayout}).", nameof(stored));
        }

        if (_value.Storage.IsReadOnly || !_value.IsContiguous)
        {
            // A value over a read-only map (or a view someone assigned): give the parameter its own copy.
            var own = Tensor.EmptyAligned(Shape, DType);
            CheckpointLayouts.CopyToModel(stored, CheckpointLayout, own);
            Value = own;
            OwnValue(); // a buffer made here: nobody else holds it
            return;
        }

        // Written in place: codes (if held) back to IEEE first; the value may be coded again on its next kernel use.
        EndHalfCodes(forGood: false);
        CheckpointLayouts.CopyToModel(stored, CheckpointLayout, _value);
        MarkModified();
    }

    private static void CheckType(Tensor value, string name)
    {
        if (value.DType is not (DType.F32 or DType.F16 or DType.BF16))
        {
            throw new ArgumentException($"Parameter: values are F32 (trainable), F16 or BF16 (inference), got {value.DType} of shape {value.Shape}; convert with To(DType.F32).", name);
        }
    }
}

/// <summary>Moves tensors between checkpoint layout and module layout (the one transposition <see cref="ParameterLayout.Transposed"/> needs).</summary>
internal static class CheckpointLayouts
{
    /// <summary>
    /// <paramref name="stored"/> (checkpoint layout, same dtype) into the contiguous <paramref name="destination"/>
    /// (module layout): a plain copy, or src [R, C] → dst [C, R] in the element type (F16/BF16 are not widened).
    /// </summary>
    public static void CopyToModel(Tensor stored, ParameterLayout layout, Tensor destination)
    {
        if (layout == ParameterLayout.AsIs)
        {
            stored.CopyTo(destination);
            return;
        }

        var source = stored.Contiguous();
        int rows = source.Shape[0], cols = source.Shape[1];
        switch (source.DType)
        {
            case DType.F16: Transpose(source.AsReadOnlySpan<Half>(), rows, cols, destination.AsSpan<Half>()); break;
            case DType.BF16: Transpose(source.AsReadOnlySpan<BFloat16>(), rows, cols, destination.AsSpan<BFloat16>()); break;
            default: Transpose(source.AsReadOnlySpan<float>(), rows, cols, destination.AsSpan<float>()); break;
        }
    }

    /// <summary>A new aligned tensor in module layout holding <paramref name="stored"/> (checkpoint layout).</summary>
    public static Tensor ToModel(Tensor stored, ParameterLayout layout)
    {
        var shape = layout == ParameterLayout.Transposed ? new Shape(stored.Shape[1], stored.Shape[0]) : stored.Shape;
        var model = Tensor.EmptyAligned(shape, stored.DType);
        CopyToModel(stored, layout, model);
        return model;
    }

    /// <summary>src [rows, cols] → dst [cols, rows].</summary>
    private static void Transpose<T>(ReadOnlySpan<T> source, int rows, int cols, Span<T> destination)
        where T : unmanaged
    {
        for (int i = 0; i < rows; i++)
        {
            var row = source.Slice(i * cols, cols);
            for (int o = 0; o < cols; o++)
            {
                destination[o * rows + i] = row[o];
            }
        }
    }
}
