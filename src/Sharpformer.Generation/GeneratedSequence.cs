namespace Sharpformer.Generation;

/// <summary>Why a sequence stopped.</summary>
public enum FinishReason
{
    /// <summary>MaxNewTokens were generated.</summary>
    Length,

    /// <summary>A stop token (EOS) was generated; it is the last token.</summary>
    StopToken,

    /// <summary>A stop sequence appeared in the text (trimmed from it).</summary>
    StopSequence,

    /// <summary>The caller cancelled.</summary>
    Cancelled,
}

/// <summary>One generated continuation.</summary>
/// <param name="Tokens">The new token ids (the prompt excluded; a final stop token included).</param>
/// <param name="Reason">Why generation stopped.</param>
/// <param name="Score">Beam search: sum of log-probabilities / length^LengthPenalty; otherwise null.</param>
public sealed record GeneratedSequence(IReadOnlyList<int> Tokens, FinishReason Reason, double? Score = null);
