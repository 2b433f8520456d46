using System.Text;
using System.Text.RegularExpressions;

namespace Sharpformer.Text;

/// <summary>Settings of a <see cref="SentencePieceTokenizer"/> (what tokenizer_config.json says for T5 and Marian).</summary>
public sealed record SentencePieceOptions
{
    /// <summary>The named special tokens; T5's (&lt;unk&gt;, &lt;pad&gt;, &lt;/s&gt;) by default.</summary>
    public SpecialTokens SpecialTokens { get; init; } = new() { Unk = "<unk>", Pad = "<pad>", Eos = "</s>" };

    /// <summary>Added tokens beyond the named special tokens (tokenizer_config.json added_tokens_decoder).</summary>
    public IReadOnlyList<AddedToken> AddedTokens { get; init; } = [];

    /// <summary>Append the end-of-sequence token to every encoded text, as HF's T5 and Marian tokenizers do (true by default).</summary>
    public bool AppendEos { get; init; } = true;

    /// <summary>
    /// T5's sentinel tokens: &lt;extra_id_0&gt; … &lt;extra_id_{n−1}&gt; after the model's pieces, &lt;extra_id_0&gt; last
    /// (HF T5Tokenizer <c>extra_ids</c>, 100 for the released checkpoints; 0 by default).
    /// </summary>
    public int ExtraIds { get; init; }

    /// <summary>model_max_length (512 for T5 and Marian; a huge number when a config has none).</summary>
    public int ModelMaxLength { get; init; } = int.MaxValue;
}

/// <summary>
/// A SentencePiece model (Unigram or BPE, <c>spiece.model</c> / <c>source.spm</c>) as Hugging Face's slow
/// <c>T5Tokenizer</c> and <c>MarianTokenizer</c> use it: the model is read and run as the sentencepiece library does
/// (normalizer with its precompiled charsmap, Unigram Viterbi or BPE merges; Microsoft.ML.Tokenizers' SentencePiece
/// support differs from it on tabs, NFKC and whitespace-only text and cannot load T5's Unigram layout), splitting the
/// text into pieces; then either the model's own piece ids are used (T5) or, for Marian, each
/// piece is looked up in vocab.json (unknown pieces become &lt;unk&gt;) and a leading <c>&gt;&gt;xx&lt;&lt;</c> target
/// language code is kept as one token. &lt;/s&gt; is appended. Decoding joins the pieces and turns ▁ back into spaces
/// (Marian decodes with its target model's pieces, since vocab.json is shared).
/// </summary>
public sealed partial class SentencePieceTokenizer : TextTokenizer
{
    /// <summary>SentencePiece's word-boundary mark, U+2581, which stands for a space inside pieces.</summary>
    public const char WordBoundary = '\u2581';

    private readonly SentencePieceModel _model;
    private readonly Dictionary<string, int> _tokenToId;
    private readonly Dictionary<int, string> _idToToken;
    private readonly HashSet<int> _controlIds;
    private readonly AddedTokenMatcher _matcher;
    private readonly bool _mapThroughVocabulary;
    private readonly int _unkId;
    private readonly int? _eosId;
    private readonly bool _appendEos;

    private SentencePieceTokenizer(
        SentencePieceModel model,
        Dictionary<string, int> tokenToId,
        Dictionary<int, string> idToToken,
        HashSet<int> controlIds,
        bool mapThroughVocabulary,
        IReadOnlyList<AddedToken> added,
        SentencePieceOptions options,
        string sourceName)
        : base(added, options.SpecialTokens, options.ModelMaxLength)
    {
        _model = model;
        _tokenToId = tokenToId;
        _idToToken = idToToken;
        _controlIds = controlIds;
        _mapThroughVocabulary = mapThroughVocabulary;
        _matcher = new AddedTokenMatcher(added);
        _appendEos = options.AppendEos;
        var unk = options.SpecialTokens.Unk ?? "<unk>";
        _unkId = tokenToId.TryGetValue(unk, out var unkId)
            ? unkId
            : throw new InvalidDataException($"{sourceName}: the unknown token '{unk}' is not in the vocabulary; fix unk_token in tokenizer_config.json.");
        if (options.SpecialTokens.Eos is { } eos)
        {
            _eosId = tokenToId.TryGetValue(eos, out var eosId)
                ? eosId
                : throw new InvalidDataException($"{sourceName}: the end-of-sequence token '{eos}' is not in the vocabulary; fix eos_token in tokenizer_config.json.");
        }
        else if (_appendEos)
        {
            throw new InvalidDataException($"{sourceName}: AppendEos is set but no eos token is named; set eos_token in tokenizer_config.json.");
        }
    }

    /// <summary>True for Marian (pieces map to ids through vocab.json and a leading &gt;&gt;xx&lt;&lt; code is one token).</summary>
    public bool UsesSeparateVocabulary => _mapThroughVocabulary;

    /// <inheritdoc />
    public override int VocabularySize => _idToToken.Count;

    /// <summary>
    /// The target-language codes (<c>&gt;&gt;de&lt;&lt;</c>) a multilingual Marian vocabulary holds, sorted; empty for a
    /// single-pair model or T5.
    /// </summary>
    public IReadOnlyList<string> LanguageCodes { get; private set; } = [];

    /// <summary>Loads one SentencePiece model (T5's spiece.model): piece ids are the model's own.</summary>
    /// <param name="modelPath">The .model file (a serialized SentencePiece ModelProto, Unigram or BPE).</param>
    /// <param name="options">Special tokens and settings; T5's when null.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a SentencePiece model this library reads.</exception>
    public static SentencePieceTokenizer FromFile(string modelPath, SentencePieceOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(modelPath);
        options ??= new SentencePieceOptions();
        if (options.ExtraIds < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.ExtraIds, "SentencePieceOptions.ExtraIds must be 0 or more.");
        }

        var model = Load(modelPath);
        var tokenToId = new Dictionary<string, int>(StringComparer.Ordinal);
        var idToToken = new Dictionary<int, string>();
        var controls = new HashSet<int>();
        var size = model.Pieces.Count;
        for (var id = 0; id < size; id++)
        {
            var piece = model.Pieces[id];
            tokenToId.TryAdd(piece.Text, id);
            idToToken[id] = piece.Text;
            if (piece.Type is PieceType.Control or PieceType.Unknown)
            {
                controls.Add(id);
            }
        }

        var added = new List<AddedToken>(options.AddedTokens);
        for (var i = 0; i < options.ExtraIds; i++)
        {
            // HF T5Tokenizer: <extra_id_i> has id vocab_size − 1 − i, so <extra_id_0> is the last id.
            var id = size + options.ExtraIds - 1 - i;
            var content = $"<extra_id_{i}>";
            if (tokenToId.TryAdd(content, id))
            {
                idToToken[id] = content;
                added.Add(new AddedToken(content, id, Special: true));
            }
        }

        foreach (var t in options.AddedTokens)
        {
            tokenToId.TryAdd(t.Content, t.Id);
            idToToken.TryAdd(t.Id, t.Content);
        }

        AddNamedSpecials(options, tokenToId, added, controls, modelPath);
        return new SentencePieceTokenizer(model, tokenToId, idToToken, controls, mapThroughVocabulary: false, Deduplicate(added), options, modelPath);
    }

    /// <summary>
    /// Loads a Marian tokenizer (HF <c>MarianTokenizer</c>): the source model splits the text, vocab.json gives each
    /// piece its id; decoding spells ids with vocab.json. <see cref="LanguageCodes"/> lists the vocabulary's
    /// <c>&gt;&gt;xx&lt;&lt;</c> codes.
    /// </summary>
    /// <param name="sourceSpmPath">source.spm: the SentencePiece model of the source language.</param>
    /// <param name="vocabJsonPath">vocab.json: {"piece": id} shared by source and target (and the model's embeddings).</param>
    /// <param name="options">Special tokens and settings; Marian's (&lt;unk&gt;, &lt;pad&gt;, &lt;/s&gt;) when null.</param>
    /// <exception cref="FileNotFoundException">A file does not exist.</exception>
    /// <exception cref="InvalidDataException">A file is malformed or a special token is missing from vocab.json.</exception>
    public static SentencePieceTokenizer FromMarianFiles(string sourceSpmPath, string vocabJsonPath, SentencePieceOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(sourceSpmPath);
        ArgumentNullException.ThrowIfNull(vocabJsonPath);
        options ??= new SentencePieceOptions();
        var model = Load(sourceSpmPath);
        var vocab = TokenizerFiles.ReadVocabJson(vocabJsonPath);
        var idToToken = new Dictionary<int, string>();
        foreach (var (token, id) in vocab)
        {
            // HF's decoder is {id: token} built from vocab.json; a repeated id keeps the last token, as a dict does.
            idToToken[id] = token;
        }

        var added = new List<AddedToken>(options.AddedTokens);
        var controls = new HashSet<int>();
        AddNamedSpecials(options, vocab, added, controls, vocabJsonPath);
        var codes = vocab.Keys.Where(k => LanguageCodePattern().IsMatch(k) && LanguageCodePattern().Match(k).Length == k.Length).OrderBy(k => k, StringComparer.Ordinal).ToList();
        var tokenizer = new SentencePieceTokenizer(model, vocab, idToToken, controls, mapThroughVocabulary: true, Deduplicate(added), options, vocabJsonPath)
        {
            LanguageCodes = codes,
        };
        return tokenizer;
    }

    /// <summary>
    /// Checks that <paramref name="text"/> starts with a target-language code this multilingual Marian model knows;
    /// throws an error listing the available codes when it does not. Single-pair models (no codes) accept any text.
    /// </summary>
    /// <param name="text">The source text, e.g. "&gt;&gt;fra&lt;&lt; Hello".</param>
    /// <exception cref="ArgumentException">The model is multilingual and the text has no code, or an unknown one.</exception>
    public void CheckTargetLanguage(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (LanguageCodes.Count == 0)
        {
            return;
        }

        var match = LanguageCodePattern().Match(text);
        var available = string.Join(", ", LanguageCodes);
        if (!match.Success || match.Index != 0)
        {
            throw new ArgumentException($"This multilingual Marian model needs the target language as a code at the start of the text, e.g. '{LanguageCodes[0]} {text}'; available: {available}.", nameof(text));
        }

        if (!_tokenToId.ContainsKey(match.Value))
        {
            throw new ArgumentException($"Unknown target language '{match.Value}' for this Marian model; available: {available}.", nameof(text));
        }
    }

    /// <inheritdoc />
    public override int? TokenToId(string token) => _tokenToId.TryGetValue(token, out var id) ? id : null;

    /// <inheritdoc />
    public override string? IdToToken(int id) => _idToToken.GetValueOrDefault(id);

    /// <summary>
    /// Ids back to text, as HF's <c>decode</c>: special tokens are dropped when <paramref name="skipSpecialTokens"/>
    /// (else written as they are), the pieces between them joined with ▁ read as a space and the first leading space
    /// removed; ids outside the vocabulary are skipped.
    /// </summary>
    public override string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var output = new StringBuilder();
        var run = new List<int>();
        foreach (var id in ids)
        {
            if (!_idToToken.TryGetValue(id, out var token))
            {
                continue;
            }

            var special = AddedTokenById(id) is { Special: true } || _controlIds.Contains(id);
            var added = special || AddedTokenById(id) is not null || id >= _model.Pieces.Count;
            if (special && skipSpecialTokens)
            {
                continue;
            }

            if (added)
            {
                FlushRun();
                output.Append(token);
            }
            else
            {
                run.Add(id);
            }
        }

        FlushRun();
        return output.ToString();

        void FlushRun()
        {
            if (run.Count == 0)
            {
                return;
            }

            if (_mapThroughVocabulary)
            {
                // Marian: vocab.json spells the ids; the pieces are joined as the target model's DecodePieces does.
                output.Append(JoinPieces(run.Select(i => _idToToken[i]).ToList(), run.Select(_ => false).ToList()));
            }
            else
            {
                output.Append(_model.Decode(run));
            }

            run.Clear();
        }
    }

    /// <summary>
    /// HF's <c>convert_tokens_to_string</c> for SentencePiece tokenizers: runs of pieces are joined (▁ → space, the
    /// first leading space dropped), special and added tokens are written as they are between the runs.
    /// </summary>
    public override string ConvertTokensToString(IEnumerable<string> tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        var list = new List<string>();
        var specials = new List<bool>();
        foreach (var token in tokens)
        {
            ArgumentNullException.ThrowIfNull(token, nameof(tokens));
            list.Add(token);
            specials.Add(_tokenToId.TryGetValue(token, out var id) && (AddedTokenById(id) is not null || _controlIds.Contains(id)));
        }

        return JoinPieces(list, specials);
    }

    /// <inheritdoc />
    internal override int SpecialTokenCount(bool pair) => _appendEos ? (pair ? 2 : 1) : 0;

    /// <summary>HF's <c>build_inputs_with_special_tokens</c> for T5 and Marian: A &lt;/s&gt; (and B &lt;/s&gt; for a pair).</summary>
    internal override TokenEncoding PostProcess(List<RawToken> first, List<RawToken>? second, bool addSpecialTokens)
    {
        var builder = new EncodingBuilder();
        var eos = addSpecialTokens && _appendEos && _eosId is not null;
        builder.AddRange(first, typeId: 0, sequence: 0);
        if (eos)
        {
            builder.AddSpecial(_eosId!.Value, SpecialTokens.Eos!, typeId: 0);
        }

        if (second is not null)
        {
            builder.AddRange(second, typeId: 0, sequence: 1);
            if (eos)
            {
                builder.AddSpecial(_eosId!.Value, SpecialTokens.Eos!, typeId: 0);
            }
        }

        return builder.Build();
    }

    /// <inheritdoc />
    internal override List<RawToken> TokenizeText(string text)
    {
        var output = new List<RawToken>();
        var word = 0;
        if (_mapThroughVocabulary)
        {
            // HF MarianTokenizer: a code at the very start is kept as a token; every code is removed from the text.
            var match = LanguageCodePattern().Match(text);
            if (match.Success && match.Index == 0)
            {
                output.Add(new RawToken(_tokenToId.GetValueOrDefault(match.Value, _unkId), match.Value, new TextSpan(0, match.Length), word++));
            }

            var rest = LanguageCodePattern().Replace(text, "");
            AddPieces(rest, offsetBase: -1, ref word, output);
            return output;
        }

        var chars = AlignedChar.FromText(text, 0, text.Length);
        foreach (var segment in _matcher.Split(chars, 0, chars.Count))
        {
            var start = segment.Start < chars.Count ? chars[segment.Start].Start : text.Length;
            var end = segment.End > segment.Start ? chars[segment.End - 1].End : start;
            if (segment.Token is { } added)
            {
                output.Add(new RawToken(added.Id, added.Content, new TextSpan(start, end), word++));
                continue;
            }

            AddPieces(text[start..end], offsetBase: start, ref word, output);
        }

        return output;
    }

    /// <summary>
    /// The pieces of <paramref name="text"/> with sentencepiece's spans shifted by <paramref name="offsetBase"/> (the
    /// ▁ of the dummy prefix is empty), or empty spans when it is −1 (Marian: the language codes were cut out of the
    /// text first). Word ids count the pieces that start a word.
    /// </summary>
    private void AddPieces(string text, int offsetBase, ref int word, List<RawToken> output)
    {
        if (text.Length == 0)
        {
            return;
        }

        var first = true;
        foreach (var (piece, pieceId, start, end) in _model.Encode(text))
        {
            if (!first && piece.Length > 0 && piece[0] == WordBoundary)
            {
                word++;
            }

            first = false;
            var id = _mapThroughVocabulary ? _tokenToId.GetValueOrDefault(piece, _unkId) : pieceId;
            var offset = offsetBase < 0 ? default : new TextSpan(offsetBase + start, offsetBase + end);
            output.Add(new RawToken(id, piece, offset, word));
        }

        word++;
    }

    /// <summary>Joins pieces (▁ → space, one leading space dropped per run, as SentencePiece's DecodePieces) with specials written between runs.</summary>
    private static string JoinPieces(List<string> tokens, List<bool> specials)
    {
        var output = new StringBuilder();
        var run = new StringBuilder();
        for (var i = 0; i < tokens.Count; i++)
        {
            if (specials[i])
            {
                FlushRun(output, run);
                output.Append(tokens[i]);
            }
            else
            {
                run.Append(tokens[i]);
            }
        }

        FlushRun(output, run);
        return output.ToString();
    }

    private static void FlushRun(StringBuilder output, StringBuilder run)
    {
        if (run.Length == 0)
        {
            return;
        }

        var text = run.Replace(WordBoundary, ' ').ToString();
        if (text.StartsWith(' '))
        {
            text = text[1..];
        }

        output.Append(text);
        run.Clear();
    }

    private static void AddNamedSpecials(SentencePieceOptions options, Dictionary<string, int> tokenToId, List<AddedToken> added, HashSet<int> controls, string source)
    {
        foreach (var name in options.SpecialTokens.All())
        {
            if (!tokenToId.TryGetValue(name, out var id))
            {
                throw new InvalidDataException($"{source}: the special token '{name}' is not in the vocabulary; fix special_tokens_map.json / tokenizer_config.json.");
            }

            controls.Add(id);
            if (!added.Any(t => t.Content == name))
            {
                added.Add(new AddedToken(name, id, Special: true));
            }
        }
    }

    private static List<AddedToken> Deduplicate(List<AddedToken> tokens)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        return tokens.Where(t => seen.Add(t.Content)).ToList();
    }

    private static SentencePieceModel Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"SentencePiece model '{path}' does not exist; download the model's spiece.model / source.spm into its folder.", path);
        }

        TokenizerFiles.CheckSize(path);
        return SentencePieceModel.Read(File.ReadAllBytes(path), path);
    }

    [GeneratedRegex(">>.+?<<", RegexOptions.CultureInvariant)]
    private static partial Regex LanguageCodePattern();
}
