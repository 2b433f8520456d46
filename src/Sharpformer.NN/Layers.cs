using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels;

namespace Sharpformer.NN;

/// <summary>
/// [..., In] → [..., Out]: y = x·Wᵀ + b with PyTorch's weight layout W [Out, In] (tensor names <c>weight</c>, <c>bias</c>).
/// Outside autograd, <see cref="Forward(ReadOnlySpan{float}, int, Span{float})"/> multiplies by a copy of W packed once
/// for the GEMM micro-kernel (rebuilt when the weight is replaced).
/// </summary>
public sealed class Linear : Module
{
    private GemmPackedB? _packed;
    private int _packedVersion = -1;

    /// <summary>Loads or creates <c>weight</c> [Out, In] and, when <paramref name="bias"/>, <c>bias</c> [Out].</summary>
    /// <param name="inFeatures">In.</param>
    /// <param name="outFeatures">Out.</param>
    /// <param name="vb">Where the tensors come from (already pushed to this layer's path).</param>
    /// <param name="bias">Whether the layer has a bias.</param>
    public Linear(int inFeatures, int outFeatures, VarBuilder vb, bool bias = true)
    {
        ArgumentNullException.ThrowIfNull(vb);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inFeatures);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outFeatures);
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Weight = RegisterParameter("weight", vb.GetParameter(new Shape(outFeatures, inFeatures), "weight"));
        if (bias)
        {
            Bias = RegisterParameter("bias", vb.GetParameter(new Shape(outFeatures), "bias", Init.Zeros));
        }
    }

    /// <summary>In.</summary>
    public int InFeatures { get; }

    /// <summary>Out.</summary>
    public int OutFeatures { get; }

    /// <summary>W [Out, In].</summary>
    public Parameter Weight { get; }

    /// <summary>b [Out], or null.</summary>
    public Parameter? Bias { get; }

    /// <summary>[..., In] → [..., Out] through <see cref="Ops.Linear"/> (records gradients when enabled).</summary>
    /// <param name="x">Input [..., In].</param>
    /// <returns>[..., Out].</returns>
    public Tensor Forward(Tensor x) => Ops.Linear(x, Weight.Value, Bias?.Value);

    /// <summary>x [N, In] → y [N, Out] (+ bias) with the pre-packed weight; no autograd (inference).</summary>
    /// <param name="x">N·In inputs, row-major.</param>
    /// <param name="rows">N.</param>
    /// <param name="y">N·Out outputs.</param>
    public void Forward(ReadOnlySpan<float> x, int rows, Span<float> y) =>
        Gemm.Sgemm(false, rows, 1f, x, InFeatures, PackedWeight, 0f, y, OutFeatures, Bias is null ? default : Bias.Value.AsReadOnlySpan<float>());

    /// <summary>Wᵀ packed for <see cref="Gemm.Sgemm(bool, int, float, ReadOnlySpan{float}, int, GemmPackedB, float, Span{float}, int, ReadOnlySpan{float})"/>; packed on first use and after the weight changes.</summary>
    public GemmPackedB PackedWeight
    {
        get
        {
            if (_packed is null || _packedVersion != Weight.Version)
            {
                _packed = Gemm.PackB(true, InFeatures, OutFeatures, Weight.Value.Contiguous().AsReadOnlySpan<float>(), InFeatures);
                _packedVersion = Weight.Version;
            }

            return _packed;
        }
    }
}

/// <summary>ids [B, T] → [B, T, C]: rows of the table <c>weight</c> [V, C].</summary>
public sealed class Embedding : Module
{
    /// <summary>Loads or creates <c>weight</c> [<paramref name="count"/>, <paramref name="dim"/>].</summary>
    /// <param name="count">V, the number of rows.</param>
    /// <param name="dim">C.</param>
    /// <param name="vb">Where the table comes from.</param>
    public Embedding(int count, int dim, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(vb);
        Count = count;
        Dim = dim;
        Weight = RegisterParameter("weight", vb.GetParameter(new Shape(count, dim), "weight"));
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
    public Tensor Forward(Tensor ids) => Ops.Embedding(ids, Weight.Value);
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

    /// <summary>[...] → [...]: the identity unless <see cref="Module.Training"/>.</summary>
    /// <param name="x">Input.</param>
    /// <returns>The (possibly dropped-out) input.</returns>
    public Tensor Forward(Tensor x) => Ops.Dropout(x, P, Training, _random);
}
