namespace Sharpformer.Text;

/// <summary>The named special tokens of a tokenizer (HF's special_tokens_map); <see langword="null"/> where a model has none.</summary>
public sealed record SpecialTokens
{
    /// <summary>Unknown-word token ("[UNK]").</summary>
    public string? Unk { get; init; }

    /// <summary>Separator ("[SEP]").</summary>
    public string? Sep { get; init; }

    /// <summary>Padding ("[PAD]").</summary>
    public string? Pad { get; init; }

    /// <summary>Classifier token at the start of BERT inputs ("[CLS]").</summary>
    public string? Cls { get; init; }

    /// <summary>Mask token for masked-language modelling ("[MASK]").</summary>
    public string? Mask { get; init; }

    /// <summary>Beginning of sequence ("&lt;|endoftext|&gt;" for GPT-2).</summary>
    public string? Bos { get; init; }

    /// <summary>End of sequence ("&lt;|endoftext|&gt;" for GPT-2).</summary>
    public string? Eos { get; init; }

    /// <summary>All named tokens that are set.</summary>
    public IEnumerable<string> All()
    {
        foreach (var t in new[] { Unk, Sep, Pad, Cls, Mask, Bos, Eos })
        {
            if (t is not null)
            {
                yield return t;
            }
        }
    }
}

/// <summary>
/// A Hugging Face–exact tokenizer: text → ids with offsets, truncation, padding, special tokens, and back. Made by
/// <see cref="AutoTokenizer.FromPretrained"/>, <see cref="BertWordPieceTokenizer"/> or <see cref="ByteLevelBpeTokenizer"/>.
/// </summary>
public abstract class TextTokenizer
{
    private readonly Dictionary<int, AddedToken> _addedById;

    /// <summary>Sets the parts every tokenizer has.</summary>
    private protected TextTokenizer(IReadOnlyList<AddedToken> addedTokens, SpecialTokens specialTokens, int modelMaxLength)
    {
        if (modelMaxLength <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(modelMaxLength), modelMaxLength, "model_max_length must be positive.");
        }

        AddedTokens = addedTokens;
        SpecialTokens = specialTokens;
        ModelMaxLength = modelMaxLength;
        _addedById = [];
        foreach (var t in addedTokens)
        {
            _addedById[t.Id] = t;
        }
    }

    /// <summary>Tokens matched whole before the model runs (special tokens and user-added tokens).</summary>
    public IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>The named special tokens.</summary>
    public SpecialTokens SpecialTokens { get; }

    /// <summary>The longest input the model accepts (tokenizer_config.json model_max_length); the default truncation length.</summary>
    public int ModelMaxLength { get; }

    /// <summary>Number of ids (the model vocabulary plus added tokens beyond it).</summary>
    public abstract int VocabularySize { get; }

    /// <summary>The id of <paramref name="token"/>, or <see langword="null"/> if it is not in the vocabulary.</summary>
    public abstract int? TokenToId(string token);

    /// <summary>The token string of <paramref name="id"/>, or <see langword="null"/> for an id outside the vocabulary.</summary>
    public abstract string? IdToToken(int id);

    /// <summary>The id of the padding token, or <see langword="null"/> when the tokenizer has none.</summary>
    public int? PadTokenId => SpecialTokens.Pad is { } pad ? TokenToId(pad) : null;

    /// <summary>Splits <paramref name="text"/> into token strings (no special tokens added), like HF's <c>tokenize</c>.</summary>
    public IReadOnlyList<string> Tokenize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return TokenizeText(text).Select(t => t.Value).ToList();
    }

    /// <summary>Encodes one text, or a pair; [T] ids, tokens, type ids, attention mask, offsets and special-token mask.</summary>
    /// <param name="text">The text (the first sequence).</param>
    /// <param name="textPair">Optional second sequence (BERT: after [SEP], type id 1).</param>
    /// <param name="options">Special tokens, truncation and padding; <see cref="EncodeOptions.Default"/> when null.</param>
    public TokenEncoding Encode(string text, string? textPair = null, EncodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        options ??= EncodeOptions.Default;
        var encoding = EncodeOne(text, textPair, options);
        if (options.Padding == PaddingStrategy.MaxLength)
        {
            encoding = Pad(encoding, options.MaxLength ?? ModelMaxLength, options.PaddingSide);
        }

        return encoding;
    }

    /// <summary>Encodes B texts (or pairs) and pads them as asked; every result has the same length T when padding is on.</summary>
    public IReadOnlyList<TokenEncoding> EncodeBatch(IReadOnlyList<string> texts, IReadOnlyList<string>? textPairs = null, EncodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(texts);
        options ??= EncodeOptions.Default;
        if (textPairs is not null && textPairs.Count != texts.Count)
        {
            throw new ArgumentException($"EncodeBatch got {texts.Count} texts but {textPairs.Count} text pairs; pass one pair per text, or none.", nameof(textPairs));
        }

        var encodings = new List<TokenEncoding>(texts.Count);
        for (var b = 0; b < texts.Count; b++)
        {
            encodings.Add(EncodeOne(texts[b], textPairs?[b], options));
        }

        var target = options.Padding switch
        {
            PaddingStrategy.Longest => encodings.Count == 0 ? 0 : encodings.Max(e => e.Count),
            PaddingStrategy.MaxLength => options.MaxLength ?? ModelMaxLength,
            _ => -1,
        };
        if (target >= 0)
        {
            for (var b = 0; b < encodings.Count; b++)
            {
                encodings[b] = Pad(encodings[b], target, options.PaddingSide);
            }
        }

        return encodings;
    }

    /// <summary>Turns ids back into text, like HF's <c>decode</c>; ids outside the vocabulary are skipped.</summary>
    public abstract string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true);

    /// <summary>
    /// Joins token strings into text as HF's fast tokenizers' <c>convert_tokens_to_string</c> does: the tokenizer's
    /// decoder run over the strings themselves (so a string outside the vocabulary, such as the original text of an
    /// [UNK], is kept as written). Nothing is skipped.
    /// </summary>
    /// <param name="tokens">Token strings as <see cref="TokenEncoding.Tokens"/> holds them ("##ing", "Ġworld").</param>
    /// <returns>The decoded text.</returns>
    public abstract string ConvertTokensToString(IEnumerable<string> tokens);

    /// <summary>The model's tokens for <paramref name="text"/>, with offsets, before templates, truncation and padding.</summary>
    internal abstract List<RawToken> TokenizeText(string text);

    /// <summary>How many tokens the template adds to a single text or a pair.</summary>
    internal abstract int SpecialTokenCount(bool pair);

    /// <summary>Applies the model's template (e.g. [CLS] A [SEP] B [SEP]).</summary>
    internal abstract TokenEncoding PostProcess(List<RawToken> first, List<RawToken>? second, bool addSpecialTokens);

    /// <summary>The added token with <paramref name="id"/>, if any.</summary>
    private protected AddedToken? AddedTokenById(int id) => _addedById.GetValueOrDefault(id);

    private TokenEncoding EncodeOne(string text, string? textPair, EncodeOptions options)
    {
        ArgumentNullException.ThrowIfNull(text);
        var first = TokenizeText(text);
        var second = textPair is null ? null : TokenizeText(textPair);
        if (options.Truncation)
        {
            var maxLength = options.MaxLength ?? ModelMaxLength;
            var specials = options.AddSpecialTokens ? SpecialTokenCount(second is not null) : 0;
            if (maxLength < specials)
            {
                throw new ArgumentException($"max_length {maxLength} is shorter than the {specials} special tokens this tokenizer adds; pass a larger MaxLength.", nameof(options));
            }

            Truncate(first, second, maxLength - specials, options.TruncationStrategy);
        }

        return PostProcess(first, second, options.AddSpecialTokens);
    }

    /// <summary>HF's <c>truncate_encodings</c>: cut the inputs (special tokens excluded) to <paramref name="maxLength"/> tokens.</summary>
    private static void Truncate(List<RawToken> first, List<RawToken>? second, int maxLength, TruncationStrategy strategy)
    {
        var total = first.Count + (second?.Count ?? 0);
        if (total <= maxLength)
        {
            return;
        }

        var toRemove = total - maxLength;
        switch (strategy)
        {
            case TruncationStrategy.LongestFirst when second is not null:
                {
                    // The shorter input keeps all its tokens when the longer one can take the cut alone; otherwise
                    // both get half, and the longer input gets the odd token (HF's rule, kept exactly).
                    var n1 = first.Count;
                    var n2 = second.Count;
                    var swap = n1 > n2;
                    if (swap)
                    {
                        (n1, n2) = (n2, n1);
                    }

                    n2 = n1 > maxLength ? n1 : Math.Max(n1, maxLength - n1);
                    if (n1 + n2 > maxLength)
                    {
                        n1 = maxLength / 2;
                        n2 = n1 + (maxLength % 2);
                    }

                    if (swap)
                    {
                        (n1, n2) = (n2, n1);
                    }

                    Cut(first, n1);
                    Cut(second, n2);
                    break;
                }

            case TruncationStrategy.LongestFirst:
                Cut(first, maxLength);
                break;
            case TruncationStrategy.OnlyFirst:
            case TruncationStrategy.OnlySecond:
                {
                    var target = strategy == TruncationStrategy.OnlyFirst ? first : second
                        ?? throw new ArgumentException("TruncationStrategy.OnlySecond needs a text pair; pass textPair or use LongestFirst.");
                    if (target.Count <= toRemove)
                    {
                        throw new ArgumentException($"Truncation {strategy} would have to remove {toRemove} tokens from an input of {target.Count}; use LongestFirst or a larger MaxLength.");
                    }

                    Cut(target, target.Count - toRemove);
                    break;
                }
        }
    }

    private static void Cut(List<RawToken> tokens, int length)
    {
        if (tokens.Count > length)
        {
            tokens.RemoveRange(length, tokens.Count - length);
        }
    }

    private TokenEncoding Pad(TokenEncoding encoding, int length, PaddingSide side)
    {
        var missing = length - encoding.Count;
        if (missing <= 0)
        {
            return encoding;
        }

        var pad = SpecialTokens.Pad;
        var padId = PadTokenId;
        if (pad is null || padId is null)
        {
            throw new InvalidOperationException("Padding needs a pad token, and this tokenizer has none (GPT-2 has none by default); set pad_token in tokenizer_config.json or encode without padding.");
        }

        var insertAt = side == PaddingSide.Right ? encoding.Count : 0;
        var ids = encoding.Ids.ToList();
        var tokens = encoding.Tokens.ToList();
        var typeIds = encoding.TypeIds.ToList();
        var mask = encoding.AttentionMask.ToList();
        var offsets = encoding.Offsets.ToList();
        var special = encoding.SpecialTokensMask.ToList();
        var sequence = encoding.SequenceIds.ToList();
        ids.InsertRange(insertAt, Enumerable.Repeat(padId.Value, missing));
        tokens.InsertRange(insertAt, Enumerable.Repeat(pad, missing));
        typeIds.InsertRange(insertAt, Enumerable.Repeat(0, missing));
        mask.InsertRange(insertAt, Enumerable.Repeat(0, missing));
        offsets.InsertRange(insertAt, Enumerable.Repeat(default(TextSpan), missing));
        special.InsertRange(insertAt, Enumerable.Repeat(1, missing));
        sequence.InsertRange(insertAt, Enumerable.Repeat(-1, missing));
        return new TokenEncoding(ids, tokens, typeIds, mask, offsets, special, sequence);
    }
}
