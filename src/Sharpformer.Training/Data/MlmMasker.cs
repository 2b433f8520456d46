namespace Sharpformer.Training.Data;

/// <summary>
/// Hugging Face's masking for masked-LM training, per sequence. Token masking (DataCollatorForLanguageModeling's
/// torch_mask_tokens): each token is chosen with probability p, special tokens never; of the chosen, 80 % become
/// [MASK], 10 % a random id in [0, V), 10 % stay; labels hold the original id where chosen and −100 elsewhere.
/// Whole-word masking (DataCollatorForWholeWordMask): words (a token and the "##" tokens after it; [CLS] and [SEP]
/// are not candidates) are shuffled, then taken in that order while they fit a budget of
/// min(512, max(1, round(T·p))) tokens — a word that would overshoot is skipped, later shorter ones may still fit —
/// after which special tokens are unchosen and the same 80/10/10 applies per chosen token.
/// </summary>
internal sealed class MlmMasker
{
    /// <summary>HF's max_predictions for whole-word masking.</summary>
    public const int MaxPredictions = 512;

    /// <summary>The label of positions that are not scored.</summary>
    public const int Ignore = -100;

    private readonly bool[] _special;
    private readonly bool[]? _continuation;
    private readonly int _cls;
    private readonly int _sep;
    private readonly int _mask;
    private readonly int _vocabularySize;
    private readonly double _probability;

    /// <summary>A masker over ids [0, <paramref name="vocabularySize"/>).</summary>
    /// <param name="special">Per id: a special token, never chosen.</param>
    /// <param name="continuation">Per id: a "##" continuation (whole-word masking), or null for token masking.</param>
    /// <param name="cls">[CLS] id (not a word candidate).</param>
    /// <param name="sep">[SEP] id (not a word candidate).</param>
    /// <param name="mask">[MASK] id.</param>
    /// <param name="vocabularySize">V: random replacements are drawn from [0, V).</param>
    /// <param name="probability">p.</param>
    public MlmMasker(bool[] special, bool[]? continuation, int cls, int sep, int mask, int vocabularySize, double probability)
    {
        _special = special;
        _continuation = continuation;
        _cls = cls;
        _sep = sep;
        _mask = mask;
        _vocabularySize = vocabularySize;
        _probability = probability;
    }

    /// <summary>Masks <paramref name="ids"/> in place and writes <paramref name="labels"/>, drawing from <paramref name="random"/>.</summary>
    public void Apply(Span<int> ids, Span<int> labels, ref DataRandom random)
    {
        if (_continuation is null)
        {
            for (var i = 0; i < ids.Length; i++)
            {
                labels[i] = Ignore;
                if (!_special[ids[i]] && random.NextDouble() < _probability)
                {
                    Replace(ids, labels, i, ref random);
                }
            }

            return;
        }

        var chosen = ChooseWholeWords(ids, ref random);
        for (var i = 0; i < ids.Length; i++)
        {
            labels[i] = Ignore;
            if (chosen[i] && !_special[ids[i]])
            {
                Replace(ids, labels, i, ref random);
            }
        }
    }

    /// <summary>HF's _whole_word_mask: which positions are chosen (before special tokens are unchosen).</summary>
    internal bool[] ChooseWholeWords(ReadOnlySpan<int> ids, ref DataRandom random)
    {
        var words = CandidateWords(ids);
        random.Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(words));
        return TakeWords(words, ids.Length, Budget(ids.Length, _probability));
    }

    /// <summary>The candidate words: each token starts one, a "##" token joins the word before it; [CLS] and [SEP] are skipped.</summary>
    internal List<List<int>> CandidateWords(ReadOnlySpan<int> ids)
    {
        var words = new List<List<int>>();
        for (var i = 0; i < ids.Length; i++)
        {
            if (ids[i] == _cls || ids[i] == _sep)
            {
                continue;
            }

            if (words.Count > 0 && _continuation![ids[i]])
            {
                words[^1].Add(i);
            }
            else
            {
                words.Add([i]);
            }
        }

        return words;
    }

    /// <summary>HF's num_to_predict: min(512, max(1, round(T·p))), with Python's round (halves to even).</summary>
    internal static int Budget(int length, double probability) =>
        Math.Min(MaxPredictions, Math.Max(1, (int)Math.Round(length * probability, MidpointRounding.ToEven)));

    /// <summary>
    /// Takes <paramref name="words"/> in order until <paramref name="budget"/> tokens are chosen; a word that would
    /// overshoot is skipped and later (shorter) words may still fit.
    /// </summary>
    internal static bool[] TakeWords(List<List<int>> words, int length, int budget)
    {
        var chosen = new bool[length];
        var count = 0;
        foreach (var word in words)
        {
            if (count >= budget)
            {
                break;
            }

            if (count + word.Count > budget)
            {
                continue;
            }

            // Words never overlap here, so HF's "already covered" check never fires; each word is taken whole.
            foreach (var i in word)
            {
                chosen[i] = true;
            }

            count += word.Count;
        }

        return chosen;
    }

    /// <summary>Position <paramref name="i"/> is predicted: label the original id, then 80 % [MASK], 10 % random, 10 % kept.</summary>
    private void Replace(Span<int> ids, Span<int> labels, int i, ref DataRandom random)
    {
        labels[i] = ids[i];
        if (random.NextDouble() < 0.8)
        {
            ids[i] = _mask;
        }
        else if (random.NextDouble() < 0.5)
        {
            ids[i] = random.NextInt(_vocabularySize);
        }
    }
}
