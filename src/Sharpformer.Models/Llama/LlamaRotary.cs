// Rotary position tables of the Llama family from config.json's rope_theta and rope_scaling, as transformers'
// modeling_rope_utils computes the inverse frequencies:
//   default   θ_i = 1 / base^(2i/D)
//   linear    θ_i / factor                                   (position interpolation)
//   dynamic   NTK-aware: changes θ only for sequences longer than max_position_embeddings, which this engine never
//             runs (caches are capped at the context), so inside the context it is the default table
//   llama3    long wavelengths divided by factor, short ones kept, the band between smoothly interpolated
//   rope_freqs (GGUF) llama.cpp's per-frequency divisors, applied on top of the rule
//   longrope  (Phi-3 "su") θ_i / ext_i with the short_factor list while max(position) + 1 ≤ the original context and
//             the long_factor list beyond (transformers switches per forward the same way), cos/sin scaled by
//             √(1 + ln(factor) / ln(original context))
// yarn is refused with a clear error.
using Sharpformer.IO.Config;
using Sharpformer.NN;

namespace Sharpformer.Models.Llama;

/// <summary>The cos/sin tables a Llama-family model rotates queries and keys with, grown on demand up to the context.</summary>
public sealed class LlamaRotary
{
    private const int InitialPositions = 4096;
    private readonly float[] _shortFrequencies;
    private readonly float[]? _longFrequencies;
    private readonly float _scaling;
    private readonly int _maxPositions;
    private RotaryEmbedding _short;
    private RotaryEmbedding? _long;

    /// <summary>Builds the tables for <paramref name="config"/>.</summary>
    /// <param name="config">The model's config.</param>
    /// <exception cref="NotSupportedException">rope_scaling is yarn, or longrope lacks its factor lists.</exception>
    public LlamaRotary(LlamaConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        int d = config.HeadDim;
        _maxPositions = config.MaxPositionEmbeddings;
        _scaling = 1f;
        var inv = RotaryEmbedding.DefaultInverseFrequencies(d, (float)config.RopeTheta);
        var rope = config.RopeScaling;
        RopeType = rope?.RopeType ?? "default";
        switch (RopeType)
        {
            case "default":
            case "dynamic":
                break;
            case "linear":
                for (int i = 0; i < inv.Length; i++)
                {
                    inv[i] /= (float)rope!.Factor!.Value;
                }

                break;
            case "llama3":
                inv = Llama3(inv, rope!);
                break;
            case "longrope":
                (inv, _longFrequencies, _scaling, SwitchAbove) = LongRope(config, rope!);
                break;
            default:
                throw new NotSupportedException(
                    $"config.json: rope_scaling.rope_type '{RopeType}' is not supported by the Llama family here; supported: default, linear, dynamic, llama3, longrope.");
        }

        if (config.RopeFrequencyFactors is { } factors)
        {
            if (factors.Count != inv.Length)
            {
                throw new NotSupportedException($"rope_freqs has {factors.Count} factors; head_dim {d} needs {inv.Length}.");
            }

            for (int i = 0; i < inv.Length; i++)
            {
                inv[i] /= factors[i];
            }
        }

        _shortFrequencies = inv;
        _short = new RotaryEmbedding(inv, Math.Min(InitialPositions, _maxPositions), _scaling);
    }

    /// <summary>The inverse frequencies θ_i of the (short) table, D/2 values.</summary>
    public IReadOnlyList<float> InverseFrequencies => _shortFrequencies;

    /// <summary>The rope_scaling rule in use (<c>default</c> when none).</summary>
    public string RopeType { get; }

    /// <summary>longrope only: the long table is used when the largest position of a call is ≥ this (the original context); else int.MaxValue.</summary>
    public int SwitchAbove { get; } = int.MaxValue;

    /// <summary>The table for a call whose largest position is <paramref name="maxPosition"/>, grown to cover it.</summary>
    /// <param name="maxPosition">The largest position id of the call.</param>
    /// <returns>The rotary embedding to apply.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The position is outside the context (max_position_embeddings).</exception>
    public RotaryEmbedding For(int maxPosition)
    {
        if ((uint)maxPosition >= (uint)_maxPositions)
        {
            throw new ArgumentOutOfRangeException(nameof(maxPosition), maxPosition, $"Llama: position {maxPosition} is outside the context max_position_embeddings={_maxPositions}; shorten the input.");
        }

        if (_longFrequencies is not null && maxPosition >= SwitchAbove)
        {
            if (_long is null || _long.Cos.Shape[0] <= maxPosition)
            {
                _long = new RotaryEmbedding(_longFrequencies, Grow(_long?.Cos.Shape[0] ?? 0, maxPosition), _scaling);
            }

            return _long;
        }

        if (_short.Cos.Shape[0] <= maxPosition)
        {
            _short = new RotaryEmbedding(_shortFrequencies, Grow(_short.Cos.Shape[0], maxPosition), _scaling);
        }

        return _short;
    }

    private int Grow(int current, int maxPosition) => Math.Min(_maxPositions, Math.Max(Math.Max(current * 2, InitialPositions), maxPosition + 1));

    /// <summary>transformers' _compute_llama3_parameters, in float32 like its tensors.</summary>
    private static float[] Llama3(float[] inv, RopeScaling rope)
    {
        float factor = (float)rope.Factor!.Value, low = (float)rope.LowFreqFactor!.Value, high = (float)rope.HighFreqFactor!.Value;
        float old = rope.OriginalMaxPositionEmbeddings!.Value;
        float lowWavelen = old / low, highWavelen = old / high;
        var result = new float[inv.Length];
        for (int i = 0; i < inv.Length; i++)
        {
            float wavelen = 2f * MathF.PI / inv[i];
            float scaled = wavelen > lowWavelen ? inv[i] / factor : inv[i];
            bool medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
            if (medium)
            {
                float smooth = ((old / wavelen) - low) / (high - low);
                scaled = ((1f - smooth) * scaled / factor) + (smooth * scaled);
            }

            result[i] = scaled;
        }

        return result;
    }

    /// <summary>transformers' _compute_longrope_parameters: both factor lists, the attention factor and the switch point.</summary>
    private static (float[] Short, float[] Long, float Scaling, int SwitchAbove) LongRope(LlamaConfig config, RopeScaling rope)
    {
        int d = config.HeadDim;
        double[] shortFactor, longFactor;
        try
        {
            shortFactor = rope.GetList("short_factor") ?? throw new NotSupportedException("config.json: rope_scaling 'longrope' needs 'short_factor' (a list of head_dim / 2 numbers).");
            longFactor = rope.GetList("long_factor") ?? throw new NotSupportedException("config.json: rope_scaling 'longrope' needs 'long_factor' (a list of head_dim / 2 numbers).");
        }
        catch (FormatException e)
        {
            throw new NotSupportedException("config.json: " + e.Message, e);
        }

        if (shortFactor.Length != d / 2 || longFactor.Length != d / 2)
        {
            throw new NotSupportedException($"config.json: rope_scaling short_factor/long_factor have {shortFactor.Length}/{longFactor.Length} entries; head_dim {d} needs {d / 2} each.");
        }

        // Phi-3 keeps the pre-training context in a top-level original_max_position_embeddings and derives the factor
        // from it; otherwise the factor comes from rope_scaling and the context is max_position_embeddings.
        int original;
        double factor;
        if (config.OriginalMaxPositionEmbeddings is { } top)
        {
            original = top;
            factor = (double)config.MaxPositionEmbeddings / top;
        }
        else
        {
            original = rope.OriginalMaxPositionEmbeddings ?? config.MaxPositionEmbeddings;
            factor = rope.Factor ?? 1.0;
        }

        double attention = rope.Parameters.TryGetValue("attention_factor", out var af) && af.ValueKind == System.Text.Json.JsonValueKind.Number
            ? af.GetDouble()
            : factor <= 1.0 ? 1.0 : Math.Sqrt(1 + (Math.Log(factor) / Math.Log(original)));
        var baseFrequencies = RotaryEmbedding.DefaultInverseFrequencies(d, (float)config.RopeTheta);
        var s = new float[d / 2];
        var l = new float[d / 2];
        for (int i = 0; i < s.Length; i++)
        {
            // 1 / (ext · base^(2i/D)) in float32.
            s[i] = baseFrequencies[i] / (float)shortFactor[i];
            l[i] = baseFrequencies[i] / (float)longFactor[i];
        }

        return (s, l, (float)attention, original);
    }
}
