using Microsoft.ML.Tokenizers;

namespace Sharpformer.Text;

/// <summary>Settings of a BERT WordPiece tokenizer (the fields of tokenizer_config.json and tokenizer.json it reads).</summary>
public sealed record BertTokenizerOptions
{
    /// <summary>Lowercase the text (do_lower_case); also turns on accent stripping unless <see cref="StripAccents"/> says otherwise.</summary>
    public bool DoLowerCase { get; init; } = true;

    /// <summary>Strip accents; <see langword="null"/> follows <see cref="DoLowerCase"/>.</summary>
    public bool? StripAccents { get; init; }

    /// <summary>Put spaces around CJK ideographs (tokenize_chinese_chars).</summary>
    public bool TokenizeChineseChars { get; init; } = true;

    /// <summary>Drop control characters and map whitespace to spaces (BertNormalizer clean_text).</summary>
    public bool CleanText { get; init; } = true;

    /// <summary>The named special tokens; BERT's defaults.</summary>
    public SpecialTokens SpecialTokens { get; init; } = new() { Unk = "[UNK]", Sep = "[SEP]", Pad = "[PAD]", Cls = "[CLS]", Mask = "[MASK]" };

    /// <summary>Extra added tokens (beyond the named special tokens, which are always added).</summary>
    public IReadOnlyList<AddedToken> AddedTokens { get; init; } = [];

    /// <summary>Words longer than this many characters (code points) become the unknown token.</summary>
    public int MaxInputCharsPerWord { get; init; } = 100;

    /// <summary>Prefix that marks a piece continuing a word.</summary>
    public string ContinuingSubwordPrefix { get; init; } = "##";

    /// <summary>model_max_length: the default truncation length (HF uses a huge number when the config has none).</summary>
    public int ModelMaxLength { get; init; } = int.MaxValue;
}

/// <summary>
/// BERT's WordPiece tokenizer, exactly as Hugging Face's <c>BertTokenizerFast</c>: added tokens matched
/// case-sensitively in the original text, <see cref="BertNormalizer"/>, <see cref="BertPreTokenizer"/>, then
/// Microsoft.ML.Tokenizers' <see cref="WordPieceTokenizer"/> for the greedy longest-match-first subword step;
/// [CLS] A [SEP] (B [SEP]) with type ids 0/1.
/// </summary>
public sealed class BertWordPieceTokenizer : TextTokenizer
{
    /// <summary>Vocabularies larger than this are rejected as malformed input.</summary>
    public const int MaxVocabularySize = 4_000_000;

    private readonly WordPieceTokenizer _wordPiece;
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<int, string> _idToToken;
    private readonly BertNormalizer _normalizer;
    private readonly AddedTokenMatcher _rawMatcher;
    private readonly AddedTokenMatcher _normalizedMatcher;
    private readonly int _unkId;
    private readonly int _maxInputCharsPerWord;
    private readonly string _prefix;

    private BertWordPieceTokenizer(IReadOnlyList<string> vocab, BertTokenizerOptions options, IReadOnlyList<AddedToken> addedTokens, string source)
        : base(addedTokens, options.SpecialTokens, options.ModelMaxLength)
    {
        _vocab = new Dictionary<string, int>(vocab.Count, StringComparer.Ordinal);
        for (var i = 0; i < vocab.Count; i++)
        {
            // HF keeps the first id of a duplicated line.
            _vocab.TryAdd(vocab[i], i);
        }

        _idToToken = [];
        for (var i = 0; i < vocab.Count; i++)
        {
            _idToToken[i] = vocab[i];
        }

        foreach (var t in addedTokens)
        {
            _idToToken.TryAdd(t.Id, t.Content);
            _vocab.TryAdd(t.Content, t.Id);
        }

        var unk = options.SpecialTokens.Unk ?? "[UNK]";
        if (!_vocab.TryGetValue(unk, out _unkId))
        {
            throw new InvalidDataException($"{source}: the unknown token '{unk}' is not in the vocabulary; WordPiece needs it. Check unk_token in tokenizer_config.json.");
        }

        if (options.MaxInputCharsPerWord <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxInputCharsPerWord, "MaxInputCharsPerWord must be positive.");
        }

        _maxInputCharsPerWord = options.MaxInputCharsPerWord;
        _prefix = options.ContinuingSubwordPrefix;
        _normalizer = new BertNormalizer
        {
            CleanText = options.CleanText,
            HandleChineseChars = options.TokenizeChineseChars,
            StripAccents = options.StripAccents,
            Lowercase = options.DoLowerCase,
        };
        _rawMatcher = new AddedTokenMatcher(addedTokens.Where(t => !t.Normalized));
        _normalizedMatcher = new AddedTokenMatcher(addedTokens.Where(t => t.Normalized), _normalizer.Normalize);

        // Microsoft.ML.Tokenizers reads the vocabulary as vocab.txt lines. Its own word-length limit counts UTF-16
        // units; ours counts characters (as HF does) and runs first, so give it room for 100 non-BMP characters.
        using var lines = new MemoryStream();
        using (var writer = new StreamWriter(lines, new System.Text.UTF8Encoding(false), leaveOpen: true))
        {
            foreach (var token in vocab)
            {
                writer.Write(token);
                writer.Write('\n');
            }
        }

        lines.Position = 0;
        _wordPiece = WordPieceTokenizer.Create(lines, new WordPieceOptions
        {
            UnknownToken = unk,
            ContinuingSubwordPrefix = _prefix,
            MaxInputCharsPerWord = 2 * _maxInputCharsPerWord,
        });
    }

    /// <inheritdoc />
    public override int VocabularySize => _idToToken.Count;

    /// <summary>The normalizer in use (HF's BertNormalizer settings from the config).</summary>
    public BertNormalizer Normalizer => _normalizer;

    /// <summary>Loads vocab.txt (one token per line, the line number is the id).</summary>
    /// <param name="path">Path of vocab.txt.</param>
    /// <param name="options">Lowercasing, special tokens, limits; BERT-uncased defaults when null.</param>
    public static BertWordPieceTokenizer FromVocabFile(string path, BertTokenizerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"vocab.txt not found at '{path}'; pass the path of a WordPiece vocabulary (one token per line).", path);
        }

        using var stream = File.OpenRead(path);
        return FromVocab(stream, options, path);
    }

    /// <summary>Loads a vocab.txt stream (one token per line, the line number is the id).</summary>
    /// <param name="vocab">The vocab.txt content, UTF-8.</param>
    /// <param name="options">Lowercasing, special tokens, limits; BERT-uncased defaults when null.</param>
    /// <param name="source">Name used in error messages.</param>
    public static BertWordPieceTokenizer FromVocab(Stream vocab, BertTokenizerOptions? options = null, string source = "vocab.txt")
    {
        ArgumentNullException.ThrowIfNull(vocab);
        var tokens = new List<string>();
        using var reader = new StreamReader(vocab, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true, leaveOpen: true);
        while (reader.ReadLine() is { } line)
        {
            if (tokens.Count >= MaxVocabularySize)
            {
                throw new InvalidDataException($"{source}: more than {MaxVocabularySize} lines; this is not a WordPiece vocabulary.");
            }

            // HF strips the line ending only (trailing whitespace of a token is part of the token); "\r\n" files lose the "\r".
            tokens.Add(line);
        }

        return FromTokens(tokens, options, source);
    }

    /// <summary>Builds the tokenizer from the vocabulary in id order.</summary>
    internal static BertWordPieceTokenizer FromTokens(IReadOnlyList<string> tokens, BertTokenizerOptions? options, string source)
    {
        options ??= new BertTokenizerOptions();
        if (tokens.Count == 0)
        {
            throw new InvalidDataException($"{source}: the vocabulary is empty.");
        }

        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < tokens.Count; i++)
        {
            index.TryAdd(tokens[i], i);
        }

        // Named special tokens are added tokens matched before normalization (normalized: false), as HF's converter does.
        var added = new List<AddedToken>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var extra in options.AddedTokens)
        {
            if (seen.Add(extra.Content))
            {
                added.Add(extra);
            }
        }

        foreach (var name in options.SpecialTokens.All())
        {
            if (seen.Add(name))
            {
                if (!index.TryGetValue(name, out var id))
                {
                    throw new InvalidDataException($"{source}: the special token '{name}' is not in the vocabulary; fix special_tokens_map.json / tokenizer_config.json or the vocabulary.");
                }

                added.Add(new AddedToken(name, id, Special: true));
            }
        }

        return new BertWordPieceTokenizer(tokens, options, added, source);
    }

    /// <inheritdoc />
    public override int? TokenToId(string token) => _vocab.TryGetValue(token, out var id) ? id : null;

    /// <inheritdoc />
    public override string? IdToToken(int id) => _idToToken.GetValueOrDefault(id);

    /// <summary>HF's WordPiece decoder: "##" pieces join the previous token, others get a space; then HF's cleanup of spaces before punctuation.</summary>
    public override string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var builder = new System.Text.StringBuilder();
        var index = 0;
        foreach (var id in ids)
        {
            if (!_idToToken.TryGetValue(id, out var token) || (skipSpecialTokens && AddedTokenById(id) is { Special: true }))
            {
                continue;
            }

            AppendDecoded(builder, token, index);
            index++;
        }

        return builder.ToString();
    }

    /// <summary>HF's WordPiece decoder over token strings: the same joining and cleanup as <see cref="Decode"/>.</summary>
    public override string ConvertTokensToString(IEnumerable<string> tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        var builder = new System.Text.StringBuilder();
        var index = 0;
        foreach (var token in tokens)
        {
            ArgumentNullException.ThrowIfNull(token, nameof(tokens));
            AppendDecoded(builder, token, index);
            index++;
        }

        return builder.ToString();
    }

    // A "##" piece joins the previous token, any other token after the first gets a space; then the cleanup.
    private void AppendDecoded(System.Text.StringBuilder builder, string token, int index)
    {
        if (index > 0)
        {
            token = token.StartsWith(_prefix, StringComparison.Ordinal) ? token[_prefix.Length..] : " " + token;
        }

        builder.Append(Cleanup(token));
    }

    /// <inheritdoc />
    internal override int SpecialTokenCount(bool pair) => pair ? 3 : 2;

    /// <inheritdoc />
    internal override TokenEncoding PostProcess(List<RawToken> first, List<RawToken>? second, bool addSpecialTokens)
    {
        var builder = new EncodingBuilder();
        if (!addSpecialTokens)
        {
            builder.AddRange(first, typeId: 0, sequence: 0);
            if (second is not null)
            {
                builder.AddRange(second, typeId: 1, sequence: 1);
            }

            return builder.Build();
        }

        var (cls, clsId) = Named(SpecialTokens.Cls, "cls_token");
        var (sep, sepId) = Named(SpecialTokens.Sep, "sep_token");
        builder.AddSpecial(clsId, cls, typeId: 0);
        builder.AddRange(first, typeId: 0, sequence: 0);
        builder.AddSpecial(sepId, sep, typeId: 0);
        if (second is not null)
        {
            builder.AddRange(second, typeId: 1, sequence: 1);
            builder.AddSpecial(sepId, sep, typeId: 1);
        }

        return builder.Build();
    }

    /// <inheritdoc />
    internal override List<RawToken> TokenizeText(string text)
    {
        // Word ids count HF's pre-tokenized splits in order: each added token, then each pre-token of the text between them.
        var output = new List<RawToken>();
        var word = 0;
        var chars = AlignedChar.FromText(text, 0, text.Length);
        foreach (var segment in _rawMatcher.Split(chars, 0, chars.Count))
        {
            if (segment.Token is { } added)
            {
                output.Add(new RawToken(added.Id, added.Content, new TextSpan(chars[segment.Start].Start, chars[segment.End - 1].End), word++));
                continue;
            }

            var normalized = _normalizer.Normalize(chars.GetRange(segment.Start, segment.End - segment.Start));
            foreach (var part in _normalizedMatcher.Split(normalized, 0, normalized.Count))
            {
                if (part.Token is { } normalizedToken)
                {
                    output.Add(new RawToken(normalizedToken.Id, normalizedToken.Content, new TextSpan(normalized[part.Start].Start, normalized[part.End - 1].End), word++));
                    continue;
                }

                foreach (var (start, end) in BertPreTokenizer.Split(normalized, part.Start, part.End))
                {
                    AddWordPieces(normalized, start, end, word++, output);
                }
            }
        }

        return output;
    }

    private void AddWordPieces(List<AlignedChar> chars, int start, int end, int wordIndex, List<RawToken> output)
    {
        var wordSpan = new TextSpan(chars[start].Start, chars[end - 1].End);
        if (end - start > _maxInputCharsPerWord)
        {
            output.Add(new RawToken(_unkId, SpecialTokens.Unk ?? "[UNK]", wordSpan, wordIndex));
            return;
        }

        // charAt[u] = index into chars of the character that UTF-16 unit u of the word belongs to.
        var word = new System.Text.StringBuilder(end - start);
        var charAt = new List<int>(end - start);
        for (var i = start; i < end; i++)
        {
            var before = word.Length;
            word.Append(char.ConvertFromUtf32(chars[i].CodePoint));
            for (var u = before; u < word.Length; u++)
            {
                charAt.Add(i);
            }
        }

        foreach (var piece in _wordPiece.EncodeToTokens(word.ToString(), out _, considerPreTokenization: false, considerNormalization: false))
        {
            var (offset, length) = piece.Offset.GetOffsetAndLength(word.Length);
            if (piece.Id == _unkId || length == 0)
            {
                output.Add(new RawToken(piece.Id, piece.Value, wordSpan, wordIndex));
                continue;
            }

            var first = chars[charAt[offset]];
            var last = chars[charAt[offset + length - 1]];
            output.Add(new RawToken(piece.Id, piece.Value, new TextSpan(first.Start, last.End), wordIndex));
        }
    }

    private (string Token, int Id) Named(string? token, string field)
    {
        if (token is null || TokenToId(token) is not { } id)
        {
            throw new InvalidOperationException($"This BERT tokenizer has no {field} in its vocabulary, so it cannot add special tokens; set {field} in tokenizer_config.json or encode with AddSpecialTokens = false.");
        }

        return (token, id);
    }

    /// <summary>HF's WordPiece decoder cleanup, applied to each token as HF does.</summary>
    private static string Cleanup(string token) => token
        .Replace(" .", ".", StringComparison.Ordinal)
        .Replace(" ?", "?", StringComparison.Ordinal)
        .Replace(" !", "!", StringComparison.Ordinal)
        .Replace(" ,", ",", StringComparison.Ordinal)
        .Replace(" ' ", "'", StringComparison.Ordinal)
        .Replace(" n't", "n't", StringComparison.Ordinal)
        .Replace(" 'm", "'m", StringComparison.Ordinal)
        .Replace(" do not", " don't", StringComparison.Ordinal)
        .Replace(" 's", "'s", StringComparison.Ordinal)
        .Replace(" 've", "'ve", StringComparison.Ordinal)
        .Replace(" 're", "'re", StringComparison.Ordinal);
}
