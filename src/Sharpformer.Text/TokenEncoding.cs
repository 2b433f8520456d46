namespace Sharpformer.Text;

/// <summary>
/// The result of encoding one text (or text pair), shaped like HF's <c>Encoding</c>: parallel lists of length T.
/// </summary>
public sealed class TokenEncoding
{
    internal TokenEncoding(List<int> ids, List<string> tokens, List<int> typeIds, List<int> attentionMask, List<TextSpan> offsets, List<int> specialTokensMask, List<int> sequenceIds)
    {
        Ids = ids;
        Tokens = tokens;
        TypeIds = typeIds;
        AttentionMask = attentionMask;
        Offsets = offsets;
        SpecialTokensMask = specialTokensMask;
        SequenceIds = sequenceIds;
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

    /// <summary>Number of tokens (T).</summary>
    public int Count => Ids.Count;
}

/// <summary>One token of a text before special tokens, truncation and padding.</summary>
/// <param name="Id">Vocabulary id.</param>
/// <param name="Value">Token string.</param>
/// <param name="Offset">Span in the original text.</param>
internal readonly record struct RawToken(int Id, string Value, TextSpan Offset);

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

    public void AddSpecial(int id, string token, int typeId)
    {
        Add(new RawToken(id, token, default), typeId, special: true, sequence: -1);
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
    }

    public TokenEncoding Build() => new(Ids, Tokens, TypeIds, Mask, Offsets, Special, Sequence);
}
