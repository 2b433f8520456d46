using System.Buffers;
using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels;

namespace Sharpformer.NN.Lora;

/// <summary>
/// One LoRA adapter on a <see cref="Linear"/> layer W [Out, In], as PEFT's <c>lora.Linear</c> defines it:
/// y = W·x + b + scaling · B(A(dropout(x))) with A [r, In] (<c>lora_A</c>, kaiming-uniform(a = √5) as nn.Linear
/// initialises it) and B [Out, r] (<c>lora_B</c>, zeros), scaling = alpha / r (alpha / √r with rsLoRA). A and B keep
/// the same shapes for GPT-2's Conv1D (PEFT's <c>fan_in_fan_out</c>): only the merged ΔW is transposed in that
/// checkpoint, and this layer holds W as [Out, In] whatever the checkpoint says, so merging adds B·A directly.
/// </summary>
public sealed class LoraAdapter
{
    internal LoraAdapter(Linear target, int rank, float scaling, float dropout, int seed)
    {
        Target = target;
        Rank = rank;
        Scaling = scaling;
        var vb = VarBuilder.FromInit(seed);
        A = new Linear(target.InFeatures, rank, vb.Push("lora_A"), bias: false, weightInit: Init.Zeros);
        B = new Linear(rank, target.OutFeatures, vb.Push("lora_B"), bias: false, weightInit: Init.Zeros);
        Dropout = new Dropout(dropout, seed);
        KaimingUniform(A.Weight.Value.AsSpan<float>(), target.InFeatures, new Random(seed));
        A.Weight.MarkModified();
    }

    /// <summary>The layer this adapter modifies.</summary>
    public Linear Target { get; }

    /// <summary>r: the rank of the update.</summary>
    public int Rank { get; }

    /// <summary>The factor on B·A: lora_alpha / r, or lora_alpha / √r with use_rslora.</summary>
    public float Scaling { get; }

    /// <summary><c>lora_A</c>: In → r, no bias; weight [r, In].</summary>
    public Linear A { get; }

    /// <summary><c>lora_B</c>: r → Out, no bias; weight [Out, r].</summary>
    public Linear B { get; }

    /// <summary><c>lora_dropout</c>: applied to the adapter's input only, in training mode.</summary>
    public Dropout Dropout { get; }

    /// <summary>True while scaling · B·A is added into the target's weight (the adapter then adds nothing itself).</summary>
    public bool IsMerged { get; private set; }

    /// <summary>[..., In] → [..., Out]: scaling · B(A(dropout(x))) on the autograd tape (gradients reach A and B).</summary>
    /// <param name="x">The target layer's input [..., In].</param>
    /// <returns>The adapter's contribution [..., Out].</returns>
    public Tensor Delta(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        return Ops.Scale(B.Forward(A.Forward(Dropout.Forward(x))), Scaling);
    }

    /// <summary>
    /// y [N, Out] (row stride <paramref name="ldy"/>) += scaling · (x [N, In] · Aᵀ) · Bᵀ, with no tape and no dropout:
    /// the adapter's part of the fused inference path. Does nothing while merged.
    /// </summary>
    /// <param name="x">N·In inputs, row-major.</param>
    /// <param name="rows">N.</param>
    /// <param name="y">The outputs to add to; row i starts at i · <paramref name="ldy"/>.</param>
    /// <param name="ldy">Row stride of y (Out, or 3C inside a fused QKV buffer).</param>
    /// <exception cref="ArgumentException">A span is too short for N rows.</exception>
    public void AddTo(ReadOnlySpan<float> x, int rows, Span<float> y, int ldy)
    {
        if (IsMerged || rows == 0)
        {
            return;
        }

        int inFeatures = Target.InFeatures, outFeatures = Target.OutFeatures;
        if (ldy < outFeatures || x.Length < (long)rows * inFeatures || y.Length < ((long)(rows - 1) * ldy) + outFeatures)
        {
            throw new ArgumentException($"LoraAdapter.AddTo: x has {x.Length} and y {y.Length} values (row stride {ldy}); [N={rows}] rows need {(long)rows * inFeatures} and {((long)(rows - 1) * ldy) + outFeatures}, with a stride of at least {outFeatures}.", nameof(x));
        }

        float[] hidden = ArrayPool<float>.Shared.Rent(rows * Rank);
        try
        {
            var h = hidden.AsSpan(0, rows * Rank);
            // h [N, r] = x · Aᵀ, then y += scaling · h · Bᵀ.
            Gemm.Sgemm(false, true, rows, Rank, inFeatures, 1f, x, inFeatures, A.Weight.Value.AsReadOnlySpan<float>(), inFeatures, 0f, h, Rank);
            Gemm.Sgemm(false, true, rows, outFeatures, Rank, Scaling, h, Rank, B.Weight.Value.AsReadOnlySpan<float>(), Rank, 1f, y, ldy);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(hidden);
        }
    }

    /// <summary>ΔW [Out, In] = scaling · B·A in the target's own layout (a new F32 tensor, no tape).</summary>
    /// <returns>The update the adapter stands for.</returns>
    public Tensor DeltaWeight()
    {
        int inFeatures = Target.InFeatures, outFeatures = Target.OutFeatures;
        var delta = new float[outFeatures * inFeatures];
        Gemm.Sgemm(false, false, outFeatures, inFeatures, Rank, Scaling, B.Weight.Value.AsReadOnlySpan<float>(), Rank, A.Weight.Value.AsReadOnlySpan<float>(), inFeatures, 0f, delta, inFeatures);
        return Tensor.FromArray(delta, new Shape(outFeatures, inFeatures));
    }

    /// <summary>W += ΔW (sign +1) or W −= ΔW (sign −1), in W's dtype (an F16/BF16 weight is widened, updated and narrowed).</summary>
    internal void AddDeltaToWeight(float sign)
    {
        var delta = DeltaWeight().AsReadOnlySpan<float>();
        var weight = Target.Weight;
        if (weight.DType == DType.F32 && weight.Value.IsContiguous && !weight.Value.Storage.IsReadOnly)
        {
            var w = weight.Value.AsSpan<float>();
            for (int i = 0; i < w.Length; i++)
            {
                w[i] += sign * delta[i];
            }

            weight.MarkModified();
            return;
        }

        var wide = weight.Value.To(DType.F32).Contiguous().ToArray();
        for (int i = 0; i < wide.Length; i++)
        {
            wide[i] += sign * delta[i];
        }

        var updated = Tensor.FromArray(wide, weight.Shape);
        weight.Value = weight.DType == DType.F32 ? updated : updated.To(weight.DType);
    }

    /// <summary>Adds ΔW into the target's weight; the adapter then stops adding its own output.</summary>
    internal void Merge()
    {
        if (IsMerged)
        {
            return;
        }

        AddDeltaToWeight(1f);
        IsMerged = true;
    }

    /// <summary>Subtracts ΔW from the target's weight again; the adapter adds its output once more.</summary>
    internal void Unmerge()
    {
        if (!IsMerged)
        {
            return;
        }

        AddDeltaToWeight(-1f);
        IsMerged = false;
    }

    /// <summary>
    /// nn.Linear's default init, kaiming_uniform_(a = √5) over fan_in = In: U(−bound, bound) with
    /// bound = gain · √(3 / fan_in), gain = √(2 / (1 + a²)) = √(1/3), so bound = 1 / √fan_in.
    /// </summary>
    private static void KaimingUniform(Span<float> weight, int fanIn, Random random)
    {
        double a = Math.Sqrt(5.0);
        double gain = Math.Sqrt(2.0 / (1.0 + (a * a)));
        double bound = gain * Math.Sqrt(3.0 / fanIn);
        for (int i = 0; i < weight.Length; i++)
        {
            weight[i] = (float)(((random.NextDouble() * 2.0) - 1.0) * bound);
        }
    }
}

/// <summary>PEFT's per-adapter ModuleDict with one entry: holds a module under the name <c>default</c>.</summary>
internal sealed class AdapterSlot : Module
{
    /// <summary>The adapter name PEFT uses when none is given.</summary>
    public const string DefaultName = "default";

    public AdapterSlot(Module module) => RegisterModule(DefaultName, module);
}
