using System.Diagnostics.CodeAnalysis;
using Sharpformer.NN.Lora;
using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels;

namespace Sharpformer.NN;

/// <summary>
/// [..., In] → [..., Out]: y = x·Wᵀ + b, the one dense layer of every model. The weight is held [Out, In] (PyTorch's
/// nn.Linear layout; tensor names <c>weight</c>, <c>bias</c>) in a 64-byte-aligned buffer, in F32 (trainable) or F16/BF16
/// (inference only); the bias is F32. Two forwards over the same parameters:
/// <list type="bullet">
/// <item><see cref="Forward(Tensor)"/>: <see cref="Ops.Linear"/>, recording gradients when enabled (F32 weights only).</item>
/// <item><see cref="Apply"/>: the inference fast path. Decode-sized inputs (≤ <see cref="Gemv.MaxRows"/> rows) stream
/// each weight row once, in its stored type, through the GEMV; larger inputs run the packed GEMM: an F32 weight is
/// packed once and repacked when <see cref="Parameter.Version"/> changes (optimizers call
/// <see cref="Parameter.MarkModified"/>), an F16/BF16 weight is widened panel by panel as the GEMM packs it
/// (<see cref="Gemm.SgemmNarrowB(int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{Half}, int, float, Span{float}, int, ReadOnlySpan{float})"/>),
/// so no F32 copy of a narrow weight exists.</item>
/// </list>
/// Hugging Face's Conv1D (GPT-2) stores its weight [In, Out]: <see cref="Conv1D"/> makes the same layer with
/// <see cref="ParameterLayout.Transposed"/>, transposing once at load and back when saving.
/// </summary>
public sealed partial class Linear : Module
{
    private GemmPackedB? _packed;
    private int _packedVersion = -1;
    private LinearKernel? _kernel;

    /// <summary>Loads or creates <c>weight</c> [Out, In] and, when <paramref name="bias"/>, <c>bias</c> [Out].</summary>
    /// <param name="inFeatures">In.</param>
    /// <param name="outFeatures">Out.</param>
    /// <param name="vb">Where the tensors come from (already pushed to this layer's path).</param>
    /// <param name="bias">Whether the layer has a bias.</param>
    /// <param name="dtype">The weight's type: F32 (default, trainable), F16 or BF16 (inference only). The bias stays F32.</param>
    /// <param name="weightInit">How to create the weight when it is not read from a checkpoint (default: the builder's normal(0, std)).</param>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    /// <exception cref="ArgumentException"><paramref name="dtype"/> is not F32, F16 or BF16.</exception>
    public Linear(int inFeatures, int outFeatures, VarBuilder vb, bool bias = true, DType dtype = DType.F32, Init? weightInit = null)
        : this(inFeatures, outFeatures, vb, bias, dtype, weightInit, ParameterLayout.AsIs)
    {
    }

    private Linear(int inFeatures, int outFeatures, VarBuilder vb, bool bias, DType dtype, Init? weightInit, ParameterLayout layout)
    {
        ArgumentNullException.ThrowIfNull(vb);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inFeatures);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outFeatures);
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Weight = RegisterParameter("weight", vb.GetParameter(new Shape(outFeatures, inFeatures), "weight", dtype, weightInit, layout));
        if (bias)
        {
            Bias = RegisterParameter("bias", vb.GetParameter(new Shape(outFeatures), "bias", Init.Zeros));
        }
    }

    private Linear(Parameter weight, Parameter? bias)
    {
        if (weight.Shape.Rank != 2)
        {
            throw new ArgumentException($"Linear.Tied: the weight must be [Out, In], got {weight.Shape}.", nameof(weight));
        }

        if (bias is not null && (bias.DType != DType.F32 || bias.Shape != new Shape(weight.Shape[0])))
        {
            throw new ArgumentException($"Linear.Tied: the bias must be F32 [{weight.Shape[0]}], got {bias.DType} {bias.Shape}.", nameof(bias));
        }

        OutFeatures = weight.Shape[0];
        InFeatures = weight.Shape[1];
        Weight = RegisterParameter("weight", weight);
        if (bias is not null)
        {
            Bias = RegisterParameter("bias", bias);
        }
    }

    /// <summary>In.</summary>
    public int InFeatures { get; }

    /// <summary>Out.</summary>
    public int OutFeatures { get; }

    /// <summary>W [Out, In] (in checkpoints [In, Out] when <see cref="Parameter.CheckpointLayout"/> is <see cref="ParameterLayout.Transposed"/>).</summary>
    public Parameter Weight { get; }

    /// <summary>b [Out] (F32), or null.</summary>
    public Parameter? Bias { get; }

    /// <summary>The weight's element type: F32, F16 or BF16.</summary>
    public DType WeightType => Weight.DType;

    /// <summary>
    /// The LoRA adapter on this layer (<see cref="LoraModel"/> attaches it), or null. While attached and not merged,
    /// both the autograd <see cref="Forward(Tensor)"/> and the fused <see cref="Apply"/> add its
    /// scaling · B(A(dropout(x))); its members are the children <c>lora_dropout.default</c>, <c>lora_A.default</c>
    /// and <c>lora_B.default</c>, as PEFT names them in memory.
    /// </summary>
    public LoraAdapter? Lora { get; private set; }

    /// <summary>
    /// Hugging Face's Conv1D (GPT-2's c_attn, c_proj, c_fc): the same layer, whose checkpoint stores <c>weight</c>
    /// [In, Out]. The weight is transposed to [Out, In] once when loaded and written back [In, Out] by
    /// <see cref="Module.StateDict"/> / <see cref="Module.SaveSafetensors"/>; <c>bias</c> [Out] as usual.
    /// </summary>
    /// <param name="inFeatures">In.</param>
    /// <param name="outFeatures">Out.</param>
    /// <param name="vb">Where the tensors come from (already pushed to this layer's path).</param>
    /// <param name="dtype">The weight's type: F32 (default, trainable), F16 or BF16 (inference only).</param>
    /// <param name="weightInit">How to create the weight when it is not read from a checkpoint.</param>
    /// <returns>The layer.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    public static Linear Conv1D(int inFeatures, int outFeatures, VarBuilder vb, DType dtype = DType.F32, Init? weightInit = null) =>
        new(inFeatures, outFeatures, vb, true, dtype, weightInit, ParameterLayout.Transposed);

    /// <summary>
    /// A layer over an existing weight (tied: a language-model head that multiplies by the token-embedding table
    /// [V, C]). The parameter is shared, so <see cref="Module.NamedParameters"/> lists it once, under its first path.
    /// </summary>
    /// <param name="weight">W [Out, In].</param>
    /// <param name="bias">b [Out] (F32), or null.</param>
    /// <returns>The layer.</returns>
    /// <exception cref="ArgumentException">The weight is not 2-D or the bias does not fit it.</exception>
    public static Linear Tied(Parameter weight, Parameter? bias = null)
    {
        ArgumentNullException.ThrowIfNull(weight);
        return new Linear(weight, bias);
    }

    /// <summary>[..., In] → [..., Out] through <see cref="Ops.Linear"/> (records gradients when enabled).</summary>
    /// <param name="x">Input [..., In].</param>
    /// <returns>[..., Out].</returns>
    /// <exception cref="InvalidOperationException">The weight is F16/BF16 (inference only): load the model in F32 to train.</exception>
    public Tensor Forward(Tensor x)
    {
        if (Weight.DType != DType.F32)
        {
            ThrowNarrow(Weight.DType, Weight.Shape);
        }

        ThrowIfQuantized();
        var y = Ops.Linear(x, Weight.Value, Bias?.Value);
        return Lora is { IsMerged: false } lora ? Ops.Add(y, lora.Delta(x)) : y;
    }

    /// <summary>x [N, In] → y [N, Out] (+ bias) with the inference fast path (<see cref="Apply"/>); no autograd.</summary>
    /// <param name="x">N·In inputs, row-major.</param>
    /// <param name="rows">N.</param>
    /// <param name="y">N·Out outputs.</param>
    public void Forward(ReadOnlySpan<float> x, int rows, Span<float> y) => Apply(x, rows, y, accumulate: false);

    /// <summary>
    /// y [N, Out] = x [N, In] · Wᵀ + bias (+ y when <paramref name="accumulate"/>: a fused residual add), with no tape,
    /// in any weight type: the GEMV for N ≤ <see cref="Gemv.MaxRows"/>, else the packed GEMM (F32) or widened blocks
    /// (F16/BF16). An F16 weight is re-encoded in place as half codes on first use (<see cref="Parameter.EnterHalfCodes"/>:
    /// exact, widened in 3 operations instead of 10) unless someone has read <see cref="Parameter.Value"/>. Not
    /// thread-safe for F32 prefills (the packed copy is cached).
    /// </summary>
    /// <param name="x">N·In inputs, row-major.</param>
    /// <param name="rows">N.</param>
    /// <param name="y">N·Out outputs.</param>
    /// <param name="accumulate">Add to y instead of overwriting it.</param>
    /// <exception cref="ArgumentException">A span is shorter than N rows.</exception>
    public void Apply(ReadOnlySpan<float> x, int rows, Span<float> y, bool accumulate)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        if (x.Length < (long)rows * InFeatures || y.Length < (long)rows * OutFeatures)
        {
            throw new ArgumentException($"Linear.Apply: x has {x.Length} and y {y.Length} values; [N={rows}] rows need {(long)rows * InFeatures} and {(long)rows * OutFeatures}.", nameof(x));
        }

        ApplyBase(x, rows, y, accumulate);
        Lora?.AddTo(x, rows, y, OutFeatures);
    }

    /// <summary>Attaches <paramref name="adapter"/> (made for this layer) as the children lora_dropout, lora_A, lora_B.</summary>
    internal void AttachLora(LoraAdapter adapter)
    {
        if (Lora is not null)
        {
            throw new InvalidOperationException("Linear: this layer already carries a LoRA adapter; unload it before attaching another.");
        }

        RegisterModule("lora_dropout", new AdapterSlot(adapter.Dropout));
        RegisterModule("lora_A", new AdapterSlot(adapter.A));
        RegisterModule("lora_B", new AdapterSlot(adapter.B));
        Lora = adapter;
    }

    /// <summary>Removes the LoRA children again (the weight keeps whatever was merged into it).</summary>
    internal void DetachLora()
    {
        UnregisterModule("lora_dropout");
        UnregisterModule("lora_A");
        UnregisterModule("lora_B");
        Lora = null;
    }

    /// <summary>The precision <see cref="Apply"/> computes in (<see cref="SetPrecision"/>); the autograd forward is always F32.</summary>
    public LinearPrecision Precision => _kernel?.Precision ?? LinearPrecision.F32;

    /// <summary>
    /// Makes <see cref="Apply"/> compute in <paramref name="precision"/>: BF16 or Int8 derive a narrow copy of the F32
    /// weight (again whenever the weight changes); F32 drops it.
    /// </summary>
    /// <param name="precision">The precision.</param>
    /// <exception cref="InvalidOperationException">The weight is not F32 (load the model in F32 to pick a precision).</exception>
    public void SetPrecision(LinearPrecision precision)
    {
        if (precision == LinearPrecision.F32)
        {
            _kernel = null;
            return;
        }

        if (Weight.DType != DType.F32)
        {
            throw new InvalidOperationException($"Linear.SetPrecision: the weight is already {Weight.DType}; load the model in F32 to run it in {precision}.");
        }

        _kernel = LinearKernel.Create(precision, Weight.Value.Contiguous().AsReadOnlySpan<float>(), OutFeatures, InFeatures, Weight.Version);
    }

    /// <summary>The base layer's part of <see cref="Apply"/>: x · Wᵀ + bias (+ y).</summary>
    private void ApplyBase(ReadOnlySpan<float> x, int rows, Span<float> y, bool accumulate)
    {
        var bias = Bias is null ? default : Bias.Value.AsReadOnlySpan<float>();
        if (QuantizedWeight is not null)
        {
            // Quantized inference weights (Linear.Quantized.cs): one kernel for decode and prefill.
            ApplyQuantized(x, rows, bias, y, accumulate);
            return;
        }

        if (_kernel is not null)
        {
            if (_kernel.SourceVersion != Weight.Version) SetPrecision(_kernel.Precision);
            _kernel!.Apply(x, rows, bias, y, accumulate);
            return;
        }

        if (Weight.DType == DType.F16 && Weight.EnterHalfCodes())
        {
            // F16 held as half codes (Parameter.EnterHalfCodes): the same products, widened in three operations.
            try
            {
                var codes = Weight.HalfCodeSpan;
                if (rows <= Gemv.MaxRows)
                {
                    Gemv.MatVec(x, rows, codes, InFeatures, OutFeatures, bias, y, accumulate);
                }
                else
                {
                    Gemm.SgemmNarrowB(rows, OutFeatures, InFeatures, 1f, x, InFeatures, codes, InFeatures, accumulate ? 1f : 0f, y, OutFeatures, bias);
                }
            }
            finally
            {
                Weight.ExitHalfCodes();
            }

            return;
        }

        var weight = Weight.Value.IsContiguous ? Weight.Value : Weight.Value.Contiguous();
        if (rows <= Gemv.MaxRows)
        {
            // Decode: each weight row streamed once, in its stored type, for all rows; no packing.
            switch (weight.DType)
            {
                case DType.F16: Gemv.MatVec(x, rows, weight.AsReadOnlySpan<Half>(), InFeatures, OutFeatures, bias, y, accumulate); break;
                case DType.BF16: Gemv.MatVec(x, rows, weight.AsReadOnlySpan<BFloat16>(), InFeatures, OutFeatures, bias, y, accumulate); break;
                default: Gemv.MatVec(x, rows, weight.AsReadOnlySpan<float>(), InFeatures, OutFeatures, bias, y, accumulate); break;
            }

            return;
        }

        float beta = accumulate ? 1f : 0f;
        if (weight.DType == DType.F32)
        {
            Gemm.Sgemm(false, rows, 1f, x, InFeatures, PackedWeight, beta, y, OutFeatures, bias);
            return;
        }

        // Prefill with a narrow weight: the GEMM widens W's panels to F32 as it packs them for its micro-kernel, so the
        // weight is read once, as 2-byte values, and no F32 copy of it is written.
        if (weight.DType == DType.F16)
        {
            Gemm.SgemmNarrowB(rows, OutFeatures, InFeatures, 1f, x, InFeatures, weight.AsReadOnlySpan<Half>(), InFeatures, beta, y, OutFeatures, bias);
        }
        else
        {
            Gemm.SgemmNarrowB(rows, OutFeatures, InFeatures, 1f, x, InFeatures, weight.AsReadOnlySpan<BFloat16>(), InFeatures, beta, y, OutFeatures, bias);
        }
    }

    /// <summary>Wᵀ packed for <see cref="Gemm.Sgemm(bool, int, float, ReadOnlySpan{float}, int, GemmPackedB, float, Span{float}, int, ReadOnlySpan{float})"/>; packed on first use and after the weight changes (F32 weights only).</summary>
    /// <exception cref="InvalidOperationException">The weight is F16/BF16.</exception>
    public GemmPackedB PackedWeight
    {
        get
        {
            if (Weight.DType != DType.F32)
            {
                throw new InvalidOperationException($"Linear.PackedWeight: the weight is {Weight.DType}; only F32 weights are packed (narrow ones are widened panel by panel inside the GEMM by Apply).");
            }

            if (_packed is null || _packedVersion != Weight.Version)
            {
                _packed = Gemm.PackB(true, InFeatures, OutFeatures, Weight.Value.Contiguous().AsReadOnlySpan<float>(), InFeatures);
                _packedVersion = Weight.Version;
            }

            return _packed;
        }
    }

    [DoesNotReturn]
    private static void ThrowNarrow(DType dtype, Shape shape) => throw new InvalidOperationException(
        $"Linear: the weight {shape} is {dtype}, which serves inference only; the autograd forward needs F32 weights. Load the model with DType.F32 to train, or run it in eval mode under Autograd.NoGrad() for the fast path.");
}

/// <summary>
/// ids [B, T] → [B, T, C]: rows of the table <c>weight</c> [V, C], held in a 64-byte-aligned buffer in F32 (trainable)
/// or F16/BF16 (inference: <see cref="CopyRow"/> widens rows; a tied LM head streams the same buffer).
/// </summary>
public sealed class Embedding : Module
{
    /// <summary>Loads or creates <c>weight</c> [<paramref name="count"/>, <paramref name="dim"/>].</summary>
    /// <param name="count">V, the number of rows.</param>
    /// <param name="dim">C.</param>
    /// <param name="vb">Where the table comes from.</param>
    /// <param name="dtype">The table's type: F32 (default, trainable), F16 or BF16 (inference only).</param>
    /// <param name="init">How to create the table when it is not read from a checkpoint (default: the builder's normal(0, std)).</param>
    public Embedding(int count, int dim, VarBuilder vb, DType dtype = DType.F32, Init? init = null)
    {
        ArgumentNullException.ThrowIfNull(vb);
        Count = count;
        Dim = dim;
        Weight = RegisterParameter("weight", vb.GetParameter(new Shape(count, dim), "weight", dtype, init));
    }

    /// <summary>V.</summary>
    public int Count { get; }

    /// <summary>C.</summary>
    public int Dim { get; }

    /// <summary>The table [V, C].</summary>
    public Parameter Weight { get; }

    /// <summary>ids [B, T] (I32 or I64, any shape) → [B, T, C].</summary>
    /// <param name="ids">Row indices in [0, V).</param>
    /// <returns>The gathered rows.</returns>
    /// <exception cref="InvalidOperationException">The table is F16/BF16 (inference only): load the model in F32 to train.</exception>
    public Tensor Forward(Tensor ids)
    {
        if (Weight.DType != DType.F32)
        {
            throw new InvalidOperationException(
                $"Embedding: the table {Weight.Shape} is {Weight.DType}, which serves inference only; the autograd forward needs F32. Load the model with DType.F32 to train, or run it in eval mode under Autograd.NoGrad() for the fast path.");
        }

        return Ops.Embedding(ids, Weight.Value);
    }

    /// <summary>Row <paramref name="row"/> of the table widened to F32 into <paramref name="destination"/> [C] (the inference gather).</summary>
    /// <param name="row">The row, in [0, V).</param>
    /// <param name="destination">C floats.</param>
    /// <exception cref="ArgumentOutOfRangeException">The row is outside the table.</exception>
    public void CopyRow(int row, Span<float> destination)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)row, (uint)Count, nameof(row));
        if (Weight.DType == DType.F16 && Weight.EnterHalfCodes())
        {
            // The table held as half codes (a tied LM head's decode coded it).
            try
            {
                HalfCodes.ToSingle(Weight.HalfCodeSpan.Slice(row * Dim, Dim), destination[..Dim]);
            }
            finally
            {
                Weight.ExitHalfCodes();
            }

            return;
        }

        var table = Weight.Value.IsContiguous ? Weight.Value : Weight.Value.Contiguous();
        WidenRows(table, row, 1, Dim, destination);
    }

    /// <summary>Rows [start, start + count) of a contiguous [R, <paramref name="width"/>] F32/F16/BF16 matrix as F32 into <paramref name="destination"/>.</summary>
    internal static void WidenRows(Tensor matrix, int start, int count, int width, Span<float> destination)
    {
        int offset = start * width, length = count * width;
        switch (matrix.DType)
        {
            case DType.F16: System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(matrix.AsReadOnlySpan<Half>().Slice(offset, length), destination[..length]); break;
            case DType.BF16: Sharpformer.Tensors.Kernels.Convert.BF16ToF32(matrix.AsReadOnlySpan<BFloat16>().Slice(offset, length), destination[..length]); break;
            default: matrix.AsReadOnlySpan<float>().Slice(offset, length).CopyTo(destination); break;
        }
    }
}

/// <summary>[..., C] → [..., C]: (x − mean) / √(var + eps) · weight + bias over the last dimension (names <c>weight</c>, <c>bias</c>).</summary>
public sealed class LayerNorm : Module
{
    /// <summary>Loads or creates <c>weight</c> [C] (ones) and <c>bias</c> [C] (zeros).</summary>
    /// <param name="dim">C.</param>
    /// <param name="eps">Added to the variance.</param>
    /// <param name="vb">Where the tensors come from.</param>
    public LayerNorm(int dim, float eps, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(vb);
        Dim = dim;
        Eps = eps;
        Weight = RegisterParameter("weight", vb.GetParameter(new Shape(dim), "weight", Init.Ones));
        Bias = RegisterParameter("bias", vb.GetParameter(new Shape(dim), "bias", Init.Zeros));
    }

    /// <summary>C.</summary>
    public int Dim { get; }

    /// <summary>Variance epsilon.</summary>
    public float Eps { get; }

    /// <summary>gamma [C].</summary>
    public Parameter Weight { get; }

    /// <summary>beta [C].</summary>
    public Parameter Bias { get; }

    /// <summary>[..., C] → [..., C].</summary>
    /// <param name="x">Input.</param>
    /// <returns>The normalized input.</returns>
    public Tensor Forward(Tensor x) => Ops.LayerNorm(x, Weight.Value, Bias.Value, Eps);
}

/// <summary>[..., C] → [..., C]: x / √(mean(x²) + eps) · weight (Llama's RMSNorm; name <c>weight</c>).</summary>
public sealed class RmsNorm : Module
{
    /// <summary>Loads or creates <c>weight</c> [C] (ones).</summary>
    /// <param name="dim">C.</param>
    /// <param name="eps">Added to the mean square.</param>
    /// <param name="vb">Where the tensor comes from.</param>
    public RmsNorm(int dim, float eps, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(vb);
        Dim = dim;
        Eps = eps;
        Weight = RegisterParameter("weight", vb.GetParameter(new Shape(dim), "weight", Init.Ones));
    }

    /// <summary>C.</summary>
    public int Dim { get; }

    /// <summary>Epsilon.</summary>
    public float Eps { get; }

    /// <summary>gamma [C].</summary>
    public Parameter Weight { get; }

    /// <summary>[..., C] → [..., C].</summary>
    /// <param name="x">Input.</param>
    /// <returns>The normalized input.</returns>
    public Tensor Forward(Tensor x) => Ops.RmsNorm(x, Weight.Value, Eps);
}

/// <summary>x → x in evaluation mode; in training mode zeroes each element with probability p and scales the rest by 1/(1−p).</summary>
public sealed class Dropout : Module
{
    private Random _random;
    private float _p;

    /// <summary>Creates the layer.</summary>
    /// <param name="p">Drop probability in [0, 1).</param>
    /// <param name="seed">Seed of the mask generator (reproducible training).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="p"/> is outside [0, 1).</exception>
    public Dropout(float p, int seed = 0)
    {
        P = p;
        _random = new Random(seed);
    }

    /// <summary>The drop probability; a trainer may override the config's value (HF <c>--dropout</c>-style) before training.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is outside [0, 1).</exception>
    public float P
    {
        get => _p;
        set
        {
            if (!(value >= 0f && value < 1f))
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, "Dropout: the drop probability must be in [0, 1).");
            }

            _p = value;
        }
    }

    /// <summary>
    /// Restarts the mask generator from <paramref name="seed"/>. A trainer reseeds every dropout layer from (run seed,
    /// step, layer index) before each step, so a resumed run draws the same masks without saving generator state.
    /// </summary>
    /// <param name="seed">The new seed.</param>
    public void Reseed(int seed) => _random = new Random(seed);

    /// <summary>A seed drawn from this layer's generator (a checkpointed block derives its layers' seeds from it).</summary>
    internal int DrawSeed() => _random.Next();

    /// <summary>[...] → [...]: the identity unless <see cref="Module.Training"/>.</summary>
    /// <param name="x">Input.</param>
    /// <returns>The (possibly dropped-out) input.</returns>
    public Tensor Forward(Tensor x) => Ops.Dropout(x, P, Training, _random);
}
