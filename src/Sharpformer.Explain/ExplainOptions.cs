namespace Sharpformer.Explain;

/// <summary>What <see cref="Explainer"/> computes and how much of it goes into the page.</summary>
public sealed record ExplainOptions
{
    /// <summary>Candidates shown per [MASK] or for the next token (default 10).</summary>
    public int TopK { get; init; } = 10;

    /// <summary>Tokens shown per layer and position in the logit lens (default 3).</summary>
    public int LensTopK { get; init; } = 3;

    /// <summary>
    /// The logit lens is computed for at most this many positions (default 64), evenly spaced, always including the
    /// [MASK] positions and the last token; every layer's head is a [T, V] product, the costliest part of the page.
    /// </summary>
    public int LensMaxPositions { get; init; } = 64;

    /// <summary>
    /// The largest side of a displayed matrix (default 64). Longer sides are cut into this many contiguous blocks;
    /// each displayed cell holds the block's mean, and its exact minimum and maximum are kept for the hover.
    /// </summary>
    public int MaxCells { get; init; } = 64;

    /// <summary>Columns shown of the embedding and position tables (default 128; wider tables are averaged in blocks of columns).</summary>
    public int MaxColumns { get; init; } = 128;

    /// <summary>Sampling temperature applied to the next-token distribution, as in generation (default 1).</summary>
    public float Temperature { get; init; } = 1f;

    /// <summary>Top-k filter applied to the next-token distribution, as in generation (default 50; 0 turns it off).</summary>
    public int SamplingTopK { get; init; } = 50;

    /// <summary>Top-p (nucleus) filter applied to the next-token distribution, as in generation (default 1: off).</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Checks the values; the message names the option to fix.</summary>
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    public void Validate()
    {
        if (TopK < 1) throw new ArgumentException($"ExplainOptions.TopK (--top-k) must be at least 1, got {TopK}.");
        if (LensTopK < 1) throw new ArgumentException($"ExplainOptions.LensTopK must be at least 1, got {LensTopK}.");
        if (LensMaxPositions < 1) throw new ArgumentException($"ExplainOptions.LensMaxPositions must be at least 1, got {LensMaxPositions}.");
        if (MaxCells < 2) throw new ArgumentException($"ExplainOptions.MaxCells (--max-cells) must be at least 2, got {MaxCells}.");
        if (MaxColumns < 2) throw new ArgumentException($"ExplainOptions.MaxColumns must be at least 2, got {MaxColumns}.");
        if (!(Temperature > 0f) || float.IsInfinity(Temperature)) throw new ArgumentException($"ExplainOptions.Temperature (--temperature) must be a positive number, got {Temperature}.");
        if (SamplingTopK < 0) throw new ArgumentException($"ExplainOptions.SamplingTopK (--sampling-top-k) must be 0 (off) or positive, got {SamplingTopK}.");
        if (!(TopP > 0f && TopP <= 1f)) throw new ArgumentException($"ExplainOptions.TopP (--top-p) must be in (0, 1], got {TopP}.");
    }
}
