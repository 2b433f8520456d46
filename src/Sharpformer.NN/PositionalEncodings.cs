using Sharpformer.Tensors;

namespace Sharpformer.NN;

/// <summary>
/// The fixed encodings of "Attention Is All You Need" §3.5, table [maxLength, C]:
/// PE[p, 2i] = sin(p / 10000^(2i/C)), PE[p, 2i+1] = cos(p / 10000^(2i/C)). No parameters.
/// </summary>
public sealed class SinusoidalPositionalEncoding : Module
{
    /// <summary>Builds the table.</summary>
    /// <param name="maxLength">Positions available.</param>
    /// <param name="dim">C (even or odd; an odd last column gets the sine).</param>
    public SinusoidalPositionalEncoding(int maxLength, int dim)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxLength);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dim);
        var table = new float[maxLength * dim];
        for (int p = 0; p < maxLength; p++)
        {
            for (int c = 0; c < dim; c++)
            {
                int pair = c / 2;
                double angle = p / Math.Pow(10000.0, 2.0 * pair / dim);
                table[(p * dim) + c] = (float)(c % 2 == 0 ? Math.Sin(angle) : Math.Cos(angle));
            }
        }

        Table = Tensor.FromArray(table, new Shape(maxLength, dim));
    }

    /// <summary>The whole table [maxLength, C].</summary>
    public Tensor Table { get; }

    /// <summary>→ [T, C]: rows <paramref name="offset"/> … <paramref name="offset"/> + T − 1, to add to [B, T, C].</summary>
    /// <param name="length">T.</param>
    /// <param name="offset">First position.</param>
    /// <returns>A view of the table.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The positions run past the table.</exception>
    public Tensor Forward(int length, int offset = 0)
    {
        CheckRange(length, offset, Table.Shape[0]);
        return Table.Narrow(0, offset, length);
    }

    internal static void CheckRange(int length, int offset, int max)
    {
        if (length < 0 || offset < 0 || offset + length > max)
        {
            throw new ArgumentOutOfRangeException(nameof(length), $"Positions {offset}..{offset + length - 1} are outside the table of {max} positions (max_position_embeddings); shorten or truncate the input.");
        }
    }
}

/// <summary>Learned absolute positions (BERT, GPT-2): a table <c>weight</c> [maxLength, C], trained like an embedding.</summary>
public sealed class LearnedPositionalEmbedding : Module
{
    /// <summary>Loads or creates <c>weight</c> [maxLength, C].</summary>
    /// <param name="maxLength">Positions available.</param>
    /// <param name="dim">C.</param>
    /// <param name="vb">Where the table comes from.</param>
    public LearnedPositionalEmbedding(int maxLength, int dim, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(vb);
        Weight = RegisterParameter("weight", vb.GetParameter(new Shape(maxLength, dim), "weight"));
    }

    /// <summary>The table [maxLength, C].</summary>
    public Parameter Weight { get; }

    /// <summary>→ [T, C]: rows offset … offset + T − 1 (gradients flow into the table).</summary>
    /// <param name="length">T.</param>
    /// <param name="offset">First position.</param>
    /// <returns>The rows.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The positions run past the table.</exception>
    public Tensor Forward(int length, int offset = 0)
    {
        SinusoidalPositionalEncoding.CheckRange(length, offset, Weight.Shape[0]);
        return Ops.Narrow(Weight.Value, 0, offset, length);
    }
}

/// <summary>
/// Rotary position embedding as in Llama with Hugging Face's rotate_half convention: for x [B, H, T, D],
/// out = x·cos + rotate_half(x)·sin, rotate_half(x) = concat(−x[..., D/2:], x[..., :D/2]),
/// cos/sin [T, D] = cos/sin(p·θ_i) with θ_i = base^(−2i/D) repeated for both halves. No parameters.
/// </summary>
public sealed class RotaryEmbedding : Module
{
    /// <summary>Builds the cos/sin tables.</summary>
    /// <param name="headDim">D (even).</param>
    /// <param name="maxPositions">Positions available.</param>
    /// <param name="theta">The frequency base (Llama: 10000, Llama 3: 500000).</param>
    /// <exception cref="ArgumentException">D is not even and positive.</exception>
    public RotaryEmbedding(int headDim, int maxPositions, float theta = 10000f)
        : this(DefaultInverseFrequencies(headDim, theta), maxPositions, 1f)
    {
    }

    /// <summary>
    /// Builds the tables from inverse frequencies θ_i (D/2 of them, as a rope_scaling rule left them):
    /// cos/sin [P, D] = cos/sin(p·θ_i) · <paramref name="attentionScaling"/>, repeated for both halves (HF multiplies
    /// cos and sin by the rule's attention_scaling, 1 for all but yarn/longrope).
    /// </summary>
    /// <param name="inverseFrequencies">θ_0 … θ_{D/2−1}.</param>
    /// <param name="maxPositions">Positions available.</param>
    /// <param name="attentionScaling">The factor on cos and sin.</param>
    /// <exception cref="ArgumentException">No frequencies were given.</exception>
    public RotaryEmbedding(IReadOnlyList<float> inverseFrequencies, int maxPositions, float attentionScaling)
    {
        ArgumentNullException.ThrowIfNull(inverseFrequencies);
        if (inverseFrequencies.Count == 0)
        {
            throw new ArgumentException("RotaryEmbedding: give D/2 ≥ 1 inverse frequencies.", nameof(inverseFrequencies));
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxPositions);
        int half = inverseFrequencies.Count, headDim = 2 * half;
        HeadDim = headDim;
        var cos = new float[maxPositions * headDim];
        var sin = new float[maxPositions * headDim];
        for (int p = 0; p < maxPositions; p++)
        {
            for (int i = 0; i < half; i++)
            {
                // Same float32 rounding as HF: the product position · inv_freq in float32, then cos/sin, then the scaling.
                float angle = p * inverseFrequencies[i];
                cos[(p * headDim) + i] = cos[(p * headDim) + i + half] = MathF.Cos(angle) * attentionScaling;
                sin[(p * headDim) + i] = sin[(p * headDim) + i + half] = MathF.Sin(angle) * attentionScaling;
            }
        }

        Cos = Tensor.FromArray(cos, new Shape(maxPositions, headDim));
        Sin = Tensor.FromArray(sin, new Shape(maxPositions, headDim));
    }

    /// <summary>HF's default inverse frequencies θ_i = 1 / base^(2i/D), i &lt; D/2, in float32.</summary>
    /// <param name="headDim">D (even).</param>
    /// <param name="theta">The base (rope_theta).</param>
    /// <returns>D/2 frequencies.</returns>
    /// <exception cref="ArgumentException">D is not even and positive.</exception>
    public static float[] DefaultInverseFrequencies(int headDim, float theta)
    {
        if (headDim <= 0 || headDim % 2 != 0)
        {
            throw new ArgumentException($"RotaryEmbedding: the head dimension must be even and positive, got {headDim}.", nameof(headDim));
        }

        var inv = new float[headDim / 2];
        for (int i = 0; i < inv.Length; i++)
        {
            inv[i] = 1f / MathF.Pow(theta, 2f * i / headDim);
        }

        return inv;
    }

    /// <summary>D.</summary>
    public int HeadDim { get; }

    /// <summary>cos table [maxPositions, D].</summary>
    public Tensor Cos { get; }

    /// <summary>sin table [maxPositions, D].</summary>
    public Tensor Sin { get; }

    /// <summary>x [B, H, T, D] → [B, H, T, D] rotated for positions offset … offset + T − 1 (differentiable).</summary>
    /// <param name="x">Queries or keys.</param>
    /// <param name="offset">Position of the first token (the KV-cache length when decoding).</param>
    /// <returns>The rotated tensor.</returns>
    /// <exception cref="ArgumentException">x is not [B, H, T, D] with this D, or the positions run past the tables.</exception>
    public Tensor Forward(Tensor x, int offset = 0)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Rank != 4 || x.Shape[3] != HeadDim)
        {
            throw new ArgumentException($"RotaryEmbedding: expected [B, H, T, D={HeadDim}], got {x.Shape}.", nameof(x));
        }

        int t = x.Shape[2], half = HeadDim / 2;
        SinusoidalPositionalEncoding.CheckRange(t, offset, Cos.Shape[0]);
        var cos = Cos.Narrow(0, offset, t).Contiguous();
        var sin = Sin.Narrow(0, offset, t).Contiguous();
        var rotated = Ops.Concat([Ops.Scale(Ops.Narrow(x, 3, half, half), -1f), Ops.Narrow(x, 3, 0, half)], 3);
        return Ops.Add(Ops.Mul(x, cos), Ops.Mul(rotated, sin));
    }

    /// <summary>
    /// x [B, T, H·D] → [B, T, H·D] rotated per token at <paramref name="positions"/> [B, T] (differentiable; the layout
    /// before the head split, as the projections produce it).
    /// </summary>
    /// <param name="x">Queries or keys, [B, T, H·D].</param>
    /// <param name="heads">H.</param>
    /// <param name="positions">I32 [B, T] positions.</param>
    /// <returns>The rotated tensor.</returns>
    /// <exception cref="ArgumentException">The shapes do not fit, or a position runs past the tables.</exception>
    public Tensor Forward(Tensor x, int heads, Tensor positions) => Ops.Rotary(x, heads, positions, Cos, Sin);

    /// <summary>Rotates in place the first H·D values of N rows (rows <paramref name="rowStride"/> apart), row r at position positions[r]: the fused inference path.</summary>
    /// <param name="rows">The rows.</param>
    /// <param name="count">N.</param>
    /// <param name="rowStride">Elements between row starts.</param>
    /// <param name="heads">H.</param>
    /// <param name="positions">[N] positions.</param>
    /// <exception cref="ArgumentException">A span is too short or a position runs past the tables.</exception>
    public void Apply(Span<float> rows, int count, int rowStride, int heads, ReadOnlySpan<int> positions) =>
        Sharpformer.Tensors.Kernels.Rotary.Apply(rows, count, rowStride, heads, HeadDim, positions, Cos.AsReadOnlySpan<float>(), Sin.AsReadOnlySpan<float>());
}
