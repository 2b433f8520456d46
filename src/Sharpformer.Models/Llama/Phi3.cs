// Phi-3's difference from Llama: the checkpoint fuses the projections. self_attn.qkv_proj [(H + 2·Hkv)·D, C] holds the
// q rows, then k, then v; mlp.gate_up_proj [2·I, C] holds gate rows, then up (transformers' Phi3MLP: gate, up =
// chunk(2); down(up · silu(gate))). No biases. Its longrope ("su") scaling lives in LlamaRotary; everything else is
// Llama's. The fused layers stay fused in memory (one GEMV each per decode step); these helpers split their outputs.
using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels;

namespace Sharpformer.Models.Llama;

/// <summary>Splitting Phi-3's fused projection outputs, on both paths.</summary>
public static class Phi3Projections
{
    /// <summary>qkv [B, T, (H + 2·Hkv)·D] → q [B, T, H·D], k and v [B, T, Hkv·D] (views, differentiable).</summary>
    /// <param name="qkv">qkv_proj's output.</param>
    /// <param name="queryWidth">H·D.</param>
    /// <param name="keyWidth">Hkv·D.</param>
    /// <returns>q, k, v.</returns>
    public static (Tensor Q, Tensor K, Tensor V) SplitQkv(Tensor qkv, int queryWidth, int keyWidth) =>
        (Ops.Narrow(qkv, 2, 0, queryWidth), Ops.Narrow(qkv, 2, queryWidth, keyWidth), Ops.Narrow(qkv, 2, queryWidth + keyWidth, keyWidth));

    /// <summary>gate_up [B, T, 2·I] → up · silu(gate) [B, T, I] (differentiable).</summary>
    /// <param name="gateUp">gate_up_proj's output.</param>
    /// <param name="intermediate">I.</param>
    /// <returns>The MLP's hidden activation.</returns>
    public static Tensor GatedActivation(Tensor gateUp, int intermediate) =>
        Ops.Mul(Ops.Silu(Ops.Narrow(gateUp, 2, 0, intermediate)), Ops.Narrow(gateUp, 2, intermediate, intermediate));

    /// <summary>Fused path: rows of [gate | up] (2·I wide) → rows of silu(gate) · up (I wide).</summary>
    /// <param name="gateUp">N rows of 2·I values.</param>
    /// <param name="rows">N.</param>
    /// <param name="intermediate">I.</param>
    /// <param name="output">N rows of I values.</param>
    public static void GatedActivation(ReadOnlySpan<float> gateUp, int rows, int intermediate, Span<float> output)
    {
        for (int r = 0; r < rows; r++)
        {
            var row = gateUp.Slice(r * 2 * intermediate, 2 * intermediate);
            var y = output.Slice(r * intermediate, intermediate);
            Activations.Silu(row[..intermediate], y);
            Elementwise.Multiply(y, row.Slice(intermediate, intermediate), y);
        }
    }
}
