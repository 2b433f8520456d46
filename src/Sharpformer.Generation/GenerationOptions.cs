namespace Sharpformer.Generation;

/// <summary>
/// How to generate, with Hugging Face's defaults and meanings (GenerationConfig). Greedy unless <see cref="DoSample"/>;
/// beam search when <see cref="NumBeams"/> &gt; 1. Call <see cref="Validate"/> (generation does) for clear errors.
/// </summary>
public sealed record GenerationOptions
{
    /// <summary>Tokens to generate at most (HF max_new_tokens); default 20.</summary>
    public int MaxNewTokens { get; init; } = 20;

    /// <summary>Sample from the processed distribution instead of taking the arg max (HF do_sample).</summary>
    public bool DoSample { get; init; }

    /// <summary>Divides the logits before sampling; &gt; 0, default 1 (no change). Used only when sampling.</summary>
    public float Temperature { get; init; } = 1f;

    /// <summary>Keep the K most likely tokens; 0 disables; default 50 as in HF. Used only when sampling.</summary>
    public int TopK { get; init; } = 50;

    /// <summary>Keep the smallest set of tokens whose probability sums to at least P; in (0, 1], 1 disables. Used only when sampling.</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Drop tokens less likely than MinP × the top probability; in [0, 1], 0 disables. Used only when sampling.</summary>
    public float MinP { get; init; }

    /// <summary>HF repetition_penalty (CTRL): logits of tokens already in the sequence are divided (if positive) or multiplied (if negative) by it; &gt; 0, 1 disables.</summary>
    public float RepetitionPenalty { get; init; } = 1f;

    /// <summary>Texts that end generation when they appear in the output; the stop text itself is trimmed from it.</summary>
    public IReadOnlyList<string> StopSequences { get; init; } = [];

    /// <summary>Token ids that end a sequence (HF eos_token_id may be several); null uses the model's EOS when the caller supplies one.</summary>
    public IReadOnlyList<int>? StopTokenIds { get; init; }

    /// <summary>Seed of the sampler: the same seed, model and prompt give the same text. Null draws a fresh seed.</summary>
    public int? Seed { get; init; }

    /// <summary>Beams for beam search; 1 = no beam search.</summary>
    public int NumBeams { get; init; } = 1;

    /// <summary>Beam scores are sum(log p) / generated_length^LengthPenalty; &gt; 0 favours longer outputs, &lt; 0 shorter.</summary>
    public float LengthPenalty { get; init; } = 1f;

    /// <summary>Beam search stops as soon as NumBeams hypotheses have finished (HF early_stopping=True) instead of when no running beam can beat them.</summary>
    public bool EarlyStopping { get; init; }

    /// <summary>HF no_repeat_ngram_size: a token that would repeat an n-gram of the sequence so far is never chosen; 0 disables.</summary>
    public int NoRepeatNgramSize { get; init; }

    /// <summary>HF min_new_tokens: the stop tokens are held back until this many tokens were generated; 0 disables.</summary>
    public int MinNewTokens { get; init; }

    /// <summary>
    /// HF bad_words_ids: token sequences never generated — a one-token entry is never chosen, a longer one's last token
    /// is banned right after its other tokens (MarianMT checkpoints ban their pad token this way). Empty: none.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<int>> BadWordsIds { get; init; } = [];

    /// <summary>HF num_return_sequences: sequences returned per input (beam search: the best hypotheses, at most NumBeams; sampling: independent draws).</summary>
    public int NumReturnSequences { get; init; } = 1;

    /// <summary>Checks every value; throws naming the option, the value, and the accepted range.</summary>
    /// <exception cref="ArgumentException">An option is out of range or options conflict.</exception>
    public void Validate()
    {
        if (MaxNewTokens < 1)
        {
            Fail(nameof(MaxNewTokens), MaxNewTokens, "must be at least 1");
        }

        if (!(Temperature > 0f) || float.IsInfinity(Temperature))
        {
            Fail(nameof(Temperature), Temperature, "must be a finite number > 0 (for greedy decoding leave DoSample false instead of temperature 0)");
        }

        if (TopK < 0)
        {
            Fail(nameof(TopK), TopK, "must be ≥ 0 (0 disables top-k)");
        }

        if (!(TopP > 0f && TopP <= 1f))
        {
            Fail(nameof(TopP), TopP, "must be in (0, 1] (1 disables top-p)");
        }

        if (!(MinP >= 0f && MinP <= 1f))
        {
            Fail(nameof(MinP), MinP, "must be in [0, 1] (0 disables min-p)");
        }

        if (!(RepetitionPenalty > 0f) || float.IsInfinity(RepetitionPenalty))
        {
            Fail(nameof(RepetitionPenalty), RepetitionPenalty, "must be a finite number > 0 (1 disables it)");
        }

        if (NumBeams < 1)
        {
            Fail(nameof(NumBeams), NumBeams, "must be at least 1 (1 disables beam search)");
        }

        if (NumBeams > 1 && DoSample)
        {
            throw new ArgumentException("GenerationOptions: NumBeams > 1 with DoSample (beam sampling) is not supported; use beam search (DoSample false) or sampling (NumBeams 1).");
        }

        if (!float.IsFinite(LengthPenalty))
        {
            Fail(nameof(LengthPenalty), LengthPenalty, "must be finite");
        }

        if (NoRepeatNgramSize < 0)
        {
            Fail(nameof(NoRepeatNgramSize), NoRepeatNgramSize, "must be ≥ 0 (0 disables it)");
        }

        if (BadWordsIds.Any(w => w is null || w.Count == 0 || w.Any(t => t < 0)))
        {
            throw new ArgumentException("GenerationOptions.BadWordsIds: every entry must be a non-empty list of token ids ≥ 0.", nameof(BadWordsIds));
        }

        if (MinNewTokens < 0 || MinNewTokens > MaxNewTokens)
        {
            Fail(nameof(MinNewTokens), MinNewTokens, $"must be in [0, MaxNewTokens = {MaxNewTokens}]");
        }

        if (NumReturnSequences < 1 || (NumBeams > 1 && NumReturnSequences > NumBeams) || (NumBeams == 1 && !DoSample && NumReturnSequences > 1))
        {
            Fail(nameof(NumReturnSequences), NumReturnSequences, "must be ≥ 1, at most NumBeams with beam search, and 1 for greedy decoding (greedy would return the same sequence each time)");
        }

        if (StopSequences is null || StopSequences.Any(string.IsNullOrEmpty))
        {
            throw new ArgumentException("GenerationOptions.StopSequences must not be null or contain empty strings.");
        }
    }

    private static void Fail(string name, object value, string rule) =>
        throw new ArgumentException(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"GenerationOptions.{name} = {value} {rule}."));
}
