namespace Sharpformer.Text;

/// <summary>
/// The result of encoding one text (or text pair), shaped like HF's <c>Encoding</c>: parallel lists of length T.
/// </summary>
public sealed class TokenEncoding
{
    internal TokenEncoding(List<int> ids, List<string> tokens, List<int> typeIds, List<int> attentionMask, List<TextSpan> offsets, List<int> specialTokensMask, List<int> sequenceIds, List<int> wordIds, IReadOnlyList<TokenEncoding>? overflowing = null)
    {
        Ids = ids;
        Tokens = tokens;
        TypeIds = typeIds;
        AttentionMask = attentionMask;
        Offsets = offsets;
        SpecialTokensMask = specialTokensMask;
        SequenceIds = sequenceIds;
        WordIds = wordIds;
        Overflowing = overflowing ?? [];
    }

    /// <summary>[T] token ids.</summary>
    public IReadOnlyList<int> Ids { get; }

    /// <summary>[T] token strings as they appear in the vocabulary ("##ing", "Ġworld").</summary>
    public IReadOnlyList<string> Tokens { get; }

    /// <summary>[T] segment ids (token_type_ids): 0 for the first text and its specials, 1 for the pair.</summary>
    public IReadOnlyList<int> TypeIds { get; }

    /// <summary>[T] 1 for real tokens, 0 for padding.</summary>
    public IReadOnlyList<int> AttentionMask { get; }

    /// <summary>[T] spans of the original text (UTF-16 indices of the text the token came from; (0, 0) for added specials and padding).</summary>
    public IReadOnlyList<TextSpan> Offsets { get; }

    /// <summary>[T] 1 for tokens added by the template ([CLS], [SEP]) and padding, 0 for tokens of the text.</summary>
    public IReadOnlyList<int> SpecialTokensMask { get; }

    /// <summary>[T] which input a token came from: 0 (text), 1 (pair), -1 (template specials and padding).</summary>
    public IReadOnlyList<int> SequenceIds { get; }

    /// <summary>
    /// [T] HF's <c>word_ids()</c>: the index of the pre-tokenized word each token came from, counted per input (the
    /// pair's words start again at 0); -1 where HF has None (template specials and padding). For plain text a word is
    /// one pre-token (BERT: a run of letters/digits or one punctuation char; GPT-2: one regex piece; an added token is
    /// a word of its own); for pre-split input (<see cref="TextTokenizer.EncodeWords"/>) it is the index of the given word.
    /// </summary>
    public IReadOnlyList<int> WordIds { get; }

    /// <summary>
    /// The further windows when the input was cut with <see cref="EncodeOptions.ReturnOverflowingTokens"/> (HF's
    /// <c>Encoding.overflowing</c>), each a full encoding with the template's special tokens, in HF's order; empty
    /// when nothing was cut or overflow was not asked for. <see cref="TextTokenizer.EncodeWindows"/> flattens them.
    /// </summary>
    public IReadOnlyList<TokenEncoding> Overflowing { get; }

    /// <summary>Number of tokens (T).</summary>
    public int Count => Ids.Count;

    /// <summary>This encoding with other overflowing windows (the token lists are shared, they are never changed).</summary>
    internal TokenEncoding WithOverflowing(IReadOnlyList<TokenEncoding> overflowing) =>
        new((List<int>)Ids, (List<string>)Tokens, (List<int>)TypeIds, (List<int>)AttentionMask, (List<TextSpan>)Offsets, (List<int>)SpecialTokensMask, (List<int>)SequenceIds, (List<int>)WordIds, overflowing);
}

/// <summary>
/// All windows of a batch encoded with overflow (HF's <c>BatchEncoding</c> with <c>return_overflowing_tokens=True</c>):
/// the windows in order and, for each, the index of the input it came from.
/// </summary>
public sealed class OverflowingBatch
{
    internal OverflowingBatch(IReadOnlyList<TokenEncoding> encodings, IReadOnlyList<int> overflowToSampleMapping)
    {
        Encodings = encodings;
        OverflowToSampleMapping = overflowToSampleMapping;
    }

    /// <summary>[W] the windows: each input's first window, then its overflowing windows.</summary>
    public IReadOnlyList<TokenEncoding> Encodings { get; }

    /// <summary>[W] HF's <c>overflow_to_sample_mapping</c>: the index (in the batch) of the input each window came from.</summary>
    public IReadOnlyList<int> OverflowToSampleMapping { get; }

    /// <summary>Number of windows (W).</summary>
    public int Count => Encodings.Count;
}

/// <summary>One token of a text before special tokens, truncation and padding.</summary>
/// <param name="Id">Vocabulary id.</param>
/// <param name="Value">Token string.</param>
/// <param name="Offset">Span in the original text.</param>
/// <param name="Word">Index of the pre-tokenized word the token belongs to (HF's word id).</param>
internal readonly record struct RawToken(int Id, string Value, TextSpan Offset, int Word);

/// <summary>Builds a <see cref="TokenEncoding"/> token by token.</summary>
internal sealed class EncodingBuilder
{
    public List<int> Ids { get; } = [];

    public List<string> Tokens { get; } = [];

    public List<int> TypeIds { get; } = [];

    public List<int> Mask { get; } = [];

    public List<TextSpan> Offsets { get; } = [];

    public List<int> Special { get; } = [];

    public List<int> Sequence { get; } = [];

    public List<int> Words { get; } = [];

    public void AddSpecial(int id, string token, int typeId)
    {
        Add(new RawToken(id, token, default, -1), typeId, special: true, sequence: -1);
    }

    public void AddRange(IEnumerable<RawToken> tokens, int typeId, int sequence)
    {
        foreach (var t in tokens)
        {
            Add(t, typeId, special: false, sequence);
        }
    }

    private void Add(RawToken token, int typeId, bool special, int sequence)
    {
        Ids.Add(token.Id);
        Tokens.Add(token.Value);
        TypeIds.Add(typeId);
        Mask.Add(1);
        Offsets.Add(token.Offset);
        Special.Add(special ? 1 : 0);
        Sequence.Add(sequence);
        Words.Add(token.Word);
    }

    public TokenEncoding Build() => new(Ids, Tokens, TypeIds, Mask, Offsets, Special, Sequence, Words);
}
