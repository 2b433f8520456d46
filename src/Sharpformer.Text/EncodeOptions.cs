namespace Sharpformer.Text;

/// <summary>How a pair is cut down to the maximum length (HF's <c>truncation_strategy</c>).</summary>
public enum TruncationStrategy
{
    /// <summary>Remove tokens from the longer input first (HF's default).</summary>
    LongestFirst,

    /// <summary>Remove tokens from the first input only.</summary>
    OnlyFirst,

    /// <summary>Remove tokens from the second input only.</summary>
    OnlySecond,
}

/// <summary>How encodings of a batch are padded (HF's <c>padding</c>).</summary>
public enum PaddingStrategy
{
    /// <summary>No padding.</summary>
    None,

    /// <summary>Pad to the longest encoding of the batch.</summary>
    Longest,

    /// <summary>Pad to <see cref="EncodeOptions.MaxLength"/> (or the model's maximum length).</summary>
    MaxLength,
}

/// <summary>Where padding goes.</summary>
public enum PaddingSide
{
    /// <summary>After the tokens (BERT's default).</summary>
    Right,

    /// <summary>Before the tokens (common for decoder-only generation).</summary>
    Left,
}

/// <summary>Options for <see cref="TextTokenizer.Encode"/> and <see cref="TextTokenizer.EncodeBatch"/>; the defaults match HF's call with no arguments.</summary>
public sealed record EncodeOptions
{
    /// <summary>Default options: special tokens on, no truncation, no padding.</summary>
    public static EncodeOptions Default { get; } = new();

    /// <summary>Add the model's special tokens ([CLS] … [SEP]).</summary>
    public bool AddSpecialTokens { get; init; } = true;

    /// <summary>Cut encodings down to <see cref="MaxLength"/> (special tokens included).</summary>
    public bool Truncation { get; init; }

    /// <summary>Length limit for truncation and <see cref="PaddingStrategy.MaxLength"/>; <see langword="null"/> means the tokenizer's model_max_length.</summary>
    public int? MaxLength { get; init; }

    /// <summary>Which input loses tokens when a pair is too long.</summary>
    public TruncationStrategy TruncationStrategy { get; init; } = TruncationStrategy.LongestFirst;

    /// <summary>Padding of batches (and of single encodes with <see cref="PaddingStrategy.MaxLength"/>).</summary>
    public PaddingStrategy Padding { get; init; } = PaddingStrategy.None;

    /// <summary>Which side padding goes on.</summary>
    public PaddingSide PaddingSide { get; init; } = PaddingSide.Right;

    /// <summary>
    /// Keep the tokens cut by truncation as further windows (HF's <c>return_overflowing_tokens=True</c>): they land in
    /// <see cref="TokenEncoding.Overflowing"/>, or flattened with their sample index from <see cref="TextTokenizer.EncodeWindows"/>.
    /// </summary>
    public bool ReturnOverflowingTokens { get; init; }

    /// <summary>
    /// HF's <c>stride</c>: how many tokens each overflowing window repeats from the end of the window before it (QA's
    /// doc_stride). Must be 0 or more, and less than the room a truncated input has (max length minus specials and the
    /// other input's tokens).
    /// </summary>
    public int Stride { get; init; }
}
