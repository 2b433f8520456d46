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

    /// <summary>
    /// The model's chat template (tokenizer_config.json <c>chat_template</c> or chat_template.jinja), when
    /// <see cref="AutoTokenizer.FromPretrained"/> found one; null otherwise.
    /// </summary>
    public ChatTemplate? ChatTemplate { get; internal set; }

    /// <summary>
    /// Why the folder's chat template could not be used (e.g. Jinja syntax the interpreter does not support, with its
    /// line and column), when it has one that failed to load; <see cref="ChatTemplate"/> is then null. The tokenizer
    /// itself still works.
    /// </summary>
    public string? ChatTemplateError { get; internal set; }

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

        PadBatch(encodings, options);
        return encodings;
    }

    /// <summary>
    /// Encodes input that is already split into words, like HF's <c>is_split_into_words=True</c>: each word is
    /// tokenized on its own (normalizer, added tokens and pre-tokenizer still run inside it), its tokens get the word's
    /// index as <see cref="TokenEncoding.WordIds"/>, and — exactly as HF — their <see cref="TokenEncoding.Offsets"/> are
    /// relative to that word, not to a joined text. An empty (or, for BERT, all-whitespace) word gives no tokens.
    /// Byte-level BPE tokenizers need add_prefix_space, as HF's GPT2TokenizerFast does.
    /// </summary>
    /// <param name="words">The words of the first input.</param>
    /// <param name="pairWords">Optional words of the second input.</param>
    /// <param name="options">Special tokens, truncation, overflow and padding; <see cref="EncodeOptions.Default"/> when null.</param>
    public TokenEncoding EncodeWords(IReadOnlyList<string> words, IReadOnlyList<string>? pairWords = null, EncodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(words);
        options ??= EncodeOptions.Default;
        CheckPreSplitWords();
        var encoding = EncodeTokens(TokenizeWords(words, nameof(words)), pairWords is null ? null : TokenizeWords(pairWords, nameof(pairWords)), options);
        if (options.Padding == PaddingStrategy.MaxLength)
        {
            encoding = Pad(encoding, options.MaxLength ?? ModelMaxLength, options.PaddingSide);
        }

        return encoding;
    }

    /// <summary>Encodes B pre-split inputs (see <see cref="EncodeWords"/>) and pads them as asked.</summary>
    /// <param name="words">The words of each input.</param>
    /// <param name="pairWords">Optional words of each second input (one per input, or null).</param>
    /// <param name="options">Special tokens, truncation, overflow and padding; <see cref="EncodeOptions.Default"/> when null.</param>
    public IReadOnlyList<TokenEncoding> EncodeWordsBatch(IReadOnlyList<IReadOnlyList<string>> words, IReadOnlyList<IReadOnlyList<string>>? pairWords = null, EncodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(words);
        options ??= EncodeOptions.Default;
        if (pairWords is not null && pairWords.Count != words.Count)
        {
            throw new ArgumentException($"EncodeWordsBatch got {words.Count} inputs but {pairWords.Count} pair inputs; pass one pair per input, or none.", nameof(pairWords));
        }

        CheckPreSplitWords();
        var encodings = new List<TokenEncoding>(words.Count);
        for (var b = 0; b < words.Count; b++)
        {
            ArgumentNullException.ThrowIfNull(words[b], nameof(words));
            var second = pairWords?[b] is { } pair ? TokenizeWords(pair, nameof(pairWords)) : null;
            encodings.Add(EncodeTokens(TokenizeWords(words[b], nameof(words)), second, options));
        }

        PadBatch(encodings, options);
        return encodings;
    }

    /// <summary>
    /// Encodes B texts (or pairs) and returns every window, as HF's fast tokenizers do with
    /// <c>return_overflowing_tokens=True</c>: for each input its first window then its overflowing ones
    /// (<see cref="TokenEncoding.Overflowing"/>, in HF's order), each with offsets, sequence ids and word ids, plus
    /// <see cref="OverflowingBatch.OverflowToSampleMapping"/>. Set <see cref="EncodeOptions.Truncation"/>,
    /// <see cref="EncodeOptions.MaxLength"/>, <see cref="EncodeOptions.Stride"/> and usually
    /// <see cref="TruncationStrategy.OnlySecond"/> (question, context); <see cref="EncodeOptions.ReturnOverflowingTokens"/>
    /// is implied. Padding pads every window (to the longest window with <see cref="PaddingStrategy.Longest"/>).
    /// </summary>
    /// <param name="texts">The first inputs (questions for QA).</param>
    /// <param name="textPairs">Optional second inputs (contexts for QA), one per text.</param>
    /// <param name="options">Truncation, max length, stride and padding.</param>
    public OverflowingBatch EncodeWindows(IReadOnlyList<string> texts, IReadOnlyList<string>? textPairs = null, EncodeOptions? options = null)
    {
        options = (options ?? EncodeOptions.Default) with { ReturnOverflowingTokens = true };
        var encodings = EncodeBatch(texts, textPairs, options);
        var windows = new List<TokenEncoding>();
        var mapping = new List<int>();
        for (var b = 0; b < encodings.Count; b++)
        {
            windows.Add(encodings[b].WithOverflowing([]));
            mapping.Add(b);
            foreach (var window in encodings[b].Overflowing)
            {
                windows.Add(window);
                mapping.Add(b);
            }
        }

        return new OverflowingBatch(windows, mapping);
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

    /// <summary>Throws when this tokenizer cannot encode pre-split words the way HF does.</summary>
    internal virtual void CheckPreSplitWords()
    {
    }

    /// <summary>The added token with <paramref name="id"/>, if any.</summary>
    private protected AddedToken? AddedTokenById(int id) => _addedById.GetValueOrDefault(id);

    private TokenEncoding EncodeOne(string text, string? textPair, EncodeOptions options)
    {
        ArgumentNullException.ThrowIfNull(text);
        return EncodeTokens(TokenizeText(text), textPair is null ? null : TokenizeText(textPair), options);
    }

    /// <summary>Each word tokenized on its own, its tokens carrying the word's index (HF's pre-tokenized input).</summary>
    private List<RawToken> TokenizeWords(IReadOnlyList<string> words, string parameter)
    {
        var output = new List<RawToken>();
        for (var w = 0; w < words.Count; w++)
        {
            if (words[w] is not { } word)
            {
                throw new ArgumentException($"Word {w} of {parameter} is null; pass a string for every word.", parameter);
            }

            foreach (var token in TokenizeText(word))
            {
                output.Add(token with { Word = w });
            }
        }

        return output;
    }

    /// <summary>Truncation (with its windows), then the template, as HF's <c>post_process</c>.</summary>
    private TokenEncoding EncodeTokens(List<RawToken> first, List<RawToken>? second, EncodeOptions options)
    {
        if (options.Stride < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.Stride, "EncodeOptions.Stride must be 0 or more.");
        }

        var addSpecials = options.AddSpecialTokens;
        if (!options.Truncation)
        {
            return PostProcess(first, second, addSpecials);
        }

        var maxLength = options.MaxLength ?? ModelMaxLength;
        var specials = addSpecials ? SpecialTokenCount(second is not null) : 0;
        if (maxLength < specials)
        {
            throw new ArgumentException($"max_length {maxLength} is shorter than the {specials} special tokens this tokenizer adds; pass a larger MaxLength.", nameof(options));
        }

        var (firstParts, secondParts) = Truncate(first, second, maxLength - specials, options.TruncationStrategy, options.Stride);
        var main = PostProcess(firstParts[0], secondParts?[0], addSpecials);
        if (!options.ReturnOverflowingTokens || (firstParts.Count == 1 && (secondParts is null || secondParts.Count == 1)))
        {
            return main;
        }

        // HF's Encoding.merge_with order: each overflowing first window with the pair's first window and then with each
        // of the pair's overflowing windows; then the first window with each of the pair's overflowing windows.
        var overflowing = new List<TokenEncoding>();
        for (var k = 1; k < firstParts.Count; k++)
        {
            overflowing.Add(PostProcess(firstParts[k], secondParts?[0], addSpecials));
            if (secondParts is not null)
            {
                for (var j = 1; j < secondParts.Count; j++)
                {
                    overflowing.Add(PostProcess(firstParts[k], secondParts[j], addSpecials));
                }
            }
        }

        if (secondParts is not null)
        {
            for (var j = 1; j < secondParts.Count; j++)
            {
                overflowing.Add(PostProcess(firstParts[0], secondParts[j], addSpecials));
            }
        }

        return main.WithOverflowing(overflowing);
    }

    /// <summary>
    /// HF's <c>truncate_encodings</c>: cut the inputs (special tokens excluded) to <paramref name="maxLength"/> tokens.
    /// Returns each input's windows: the kept part first, then the overflowing windows <see cref="Windows"/> makes.
    /// </summary>
    private static (List<List<RawToken>> First, List<List<RawToken>>? Second) Truncate(List<RawToken> first, List<RawToken>? second, int maxLength, TruncationStrategy strategy, int stride)
    {
        if (maxLength == 0)
        {
            // HF's special case: everything of both inputs overflows.
            return (Windows(first, 0, stride), second is null ? null : Windows(second, 0, stride));
        }

        var total = first.Count + (second?.Count ?? 0);
        if (total <= maxLength)
        {
            return ([first], second is null ? null : [second]);
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

                    return (Windows(first, n1, stride), Windows(second, n2, stride));
                }

            case TruncationStrategy.LongestFirst:
                return (Windows(first, maxLength, stride), null);
            default:
                {
                    var onlyFirst = strategy == TruncationStrategy.OnlyFirst;
                    var target = onlyFirst ? first : second
                        ?? throw new ArgumentException("TruncationStrategy.OnlySecond needs a text pair; pass textPair or use LongestFirst.");
                    if (target.Count <= toRemove)
                    {
                        throw new ArgumentException($"Truncation {strategy} would have to remove {toRemove} tokens from an input of {target.Count}; use LongestFirst or a larger MaxLength.");
                    }

                    var windows = Windows(target, target.Count - toRemove, stride);
                    return onlyFirst ? (windows, second is null ? null : [second]) : ([first], windows);
                }
        }
    }

    /// <summary>
    /// HF's <c>Encoding.truncate</c> (right side): windows of <paramref name="maxLength"/> tokens starting every
    /// maxLength − stride tokens, the last one ending at the input's end; the whole input when it fits.
    /// </summary>
    private static List<List<RawToken>> Windows(List<RawToken> tokens, int maxLength, int stride)
    {
        if (maxLength >= tokens.Count)
        {
            return [tokens];
        }

        if (maxLength == 0)
        {
            return [[], tokens];
        }

        if (stride >= maxLength)
        {
            throw new ArgumentException($"stride {stride} must be less than the {maxLength} tokens left for the truncated input (max_length minus the special tokens and the other input's tokens); pass a smaller Stride or a larger MaxLength.");
        }

        var windows = new List<List<RawToken>>();
        var step = maxLength - stride;
        for (var start = 0; start < tokens.Count; start += step)
        {
            var stop = Math.Min(start + maxLength, tokens.Count);
            windows.Add(tokens.GetRange(start, stop - start));
            if (stop == tokens.Count)
            {
                break;
            }
        }

        return windows;
    }

    /// <summary>Pads a batch as <paramref name="options"/> asks (overflowing windows included).</summary>
    private void PadBatch(List<TokenEncoding> encodings, EncodeOptions options)
    {
        var target = -1;
        if (options.Padding == PaddingStrategy.Longest)
        {
            target = 0;
            foreach (var encoding in encodings)
            {
                target = Math.Max(target, encoding.Count);
                foreach (var window in encoding.Overflowing)
                {
                    target = Math.Max(target, window.Count);
                }
            }
        }
        else if (options.Padding == PaddingStrategy.MaxLength)
        {
            target = options.MaxLength ?? ModelMaxLength;
        }

        if (target >= 0)
        {
            for (var b = 0; b < encodings.Count; b++)
            {
                encodings[b] = Pad(encodings[b], target, options.PaddingSide);
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
        var overflowing = encoding.Overflowing;
        if (overflowing.Count > 0)
        {
            overflowing = overflowing.Select(window => Pad(window, length, side)).ToList();
        }

        var missing = length - encoding.Count;
        if (missing <= 0)
        {
            return overflowing.Count > 0 ? encoding.WithOverflowing(overflowing) : encoding;
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
        var words = encoding.WordIds.ToList();
        ids.InsertRange(insertAt, Enumerable.Repeat(padId.Value, missing));
        tokens.InsertRange(insertAt, Enumerable.Repeat(pad, missing));
        typeIds.InsertRange(insertAt, Enumerable.Repeat(0, missing));
        mask.InsertRange(insertAt, Enumerable.Repeat(0, missing));
        offsets.InsertRange(insertAt, Enumerable.Repeat(default(TextSpan), missing));
        special.InsertRange(insertAt, Enumerable.Repeat(1, missing));
        sequence.InsertRange(insertAt, Enumerable.Repeat(-1, missing));
        words.InsertRange(insertAt, Enumerable.Repeat(-1, missing));
        return new TokenEncoding(ids, tokens, typeIds, mask, offsets, special, sequence, words, overflowing);
    }
}
