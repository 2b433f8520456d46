using System.Text;
using Microsoft.ML.Tokenizers;

namespace Sharpformer.Text;

/// <summary>Settings of a GPT-2-style byte-level BPE tokenizer.</summary>
public sealed record ByteLevelBpeOptions
{
    /// <summary>The named special tokens; GPT-2's (&lt;|endoftext|&gt; as bos, eos and unk) by default.</summary>
    public SpecialTokens SpecialTokens { get; init; } = new() { Bos = Gpt2EndOfText, Eos = Gpt2EndOfText, Unk = Gpt2EndOfText };

    /// <summary>Added tokens beyond the named special tokens (from tokenizer.json added_tokens).</summary>
    public IReadOnlyList<AddedToken> AddedTokens { get; init; } = [];

    /// <summary>Prepend a space to text that does not start with one (ByteLevel add_prefix_space; false for GPT-2).</summary>
    public bool AddPrefixSpace { get; init; }

    /// <summary>model_max_length (1024 for GPT-2's config; a huge number when a config has none).</summary>
    public int ModelMaxLength { get; init; } = int.MaxValue;

    /// <summary>
    /// RoBERTa's and BART's template (HF <c>RobertaProcessing</c>): &lt;s&gt; A &lt;/s&gt;, and &lt;s&gt; A &lt;/s&gt;&lt;/s&gt; B &lt;/s&gt;
    /// for a pair, with <see cref="SpecialTokens.Bos"/> and <see cref="SpecialTokens.Eos"/>; false (GPT-2: no template) by default.
    /// </summary>
    public bool BosEosTemplate { get; init; }

    /// <summary>GPT-2's end-of-text token.</summary>
    public const string Gpt2EndOfText = "<|endoftext|>";
}

/// <summary>
/// GPT-2's byte-level BPE, exactly as Hugging Face's <c>GPT2TokenizerFast</c>: added tokens (&lt;|endoftext|&gt;)
/// matched in the original text, the GPT-2 pre-tokenizer (<see cref="Gpt2PreTokenizer"/>), then
/// Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/> in byte-level mode for the merges. Decoding restores any UTF-8
/// exactly.
/// </summary>
public sealed class ByteLevelBpeTokenizer : TextTokenizer
{
    /// <summary>Vocabularies (and merge lists) larger than this are rejected as malformed input.</summary>
    public const int MaxVocabularySize = 4_000_000;

    /// <summary>Pre-tokens longer than this (in chars) use <see cref="BytePairMerger"/> instead of Microsoft.ML.Tokenizers' quadratic merge loop.</summary>
    internal const int DefaultLongPieceThreshold = 256;

    private readonly BpeTokenizer _bpe;
    private readonly BytePairMerger? _longPieces;
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<int, string> _idToToken;
    private readonly AddedTokenMatcher _matcher;
    private readonly bool _addPrefixSpace;
    private readonly bool _bosEosTemplate;

    private ByteLevelBpeTokenizer(BpeTokenizer bpe, Dictionary<string, int> vocab, IReadOnlyList<(string, string)> merges, IReadOnlyList<AddedToken> added, ByteLevelBpeOptions options)
        : base(added, options.SpecialTokens, options.ModelMaxLength)
    {
        _bpe = bpe;
        _vocab = vocab;
        _idToToken = [];
        foreach (var (token, id) in vocab)
        {
            _idToToken.TryAdd(id, token);
        }

        foreach (var t in added)
        {
            _idToToken.TryAdd(t.Id, t.Content);
            _vocab.TryAdd(t.Content, t.Id);
        }

        _matcher = new AddedTokenMatcher(added);
        _addPrefixSpace = options.AddPrefixSpace;
        _bosEosTemplate = options.BosEosTemplate;
        _longPieces = BytePairMerger.TryCreate(vocab, merges, _idToToken);
    }

    /// <summary>Pre-tokens longer than this many chars go through the O(n log n) merger; tests lower it to compare both paths.</summary>
    internal int LongPieceThreshold { get; set; } = DefaultLongPieceThreshold;

    /// <inheritdoc />
    public override int VocabularySize => _idToToken.Count;

    /// <summary>
    /// GPT-2's byte → printable-char table (HF <c>bytes_to_unicode</c>): the spelling byte-level vocab.json and
    /// merges.txt use for each byte. Printable Latin-1 bytes map to themselves, the others to U+0100 onwards.
    /// </summary>
    public static IReadOnlyList<char> BytesToUnicode { get; } = Array.AsReadOnly(BytePairMerger.ByteToChar);

    /// <summary>Loads vocab.json and merges.txt (the files of the Hub's gpt2 repository).</summary>
    /// <param name="vocabJsonPath">vocab.json: {"token": id, …} in byte-level form ("Ġthe").</param>
    /// <param name="mergesPath">merges.txt: "#version" line, then one "left right" merge per line, highest priority first.</param>
    /// <param name="options">Special tokens and settings; GPT-2's when null.</param>
    public static ByteLevelBpeTokenizer FromFiles(string vocabJsonPath, string mergesPath, ByteLevelBpeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(vocabJsonPath);
        ArgumentNullException.ThrowIfNull(mergesPath);
        var vocab = TokenizerFiles.ReadVocabJson(vocabJsonPath);
        var merges = TokenizerFiles.ReadMergesTxt(mergesPath);
        return Create(vocab, merges, options, $"{vocabJsonPath} + {mergesPath}");
    }

    /// <summary>Builds the tokenizer from a vocabulary and merges (both in byte-level form).</summary>
    /// <param name="vocab">Token → id.</param>
    /// <param name="merges">Merge pairs, highest priority first.</param>
    /// <param name="options">Special tokens and settings; GPT-2's when null.</param>
    /// <param name="source">Name used in error messages.</param>
    public static ByteLevelBpeTokenizer Create(IReadOnlyDictionary<string, int> vocab, IReadOnlyList<(string Left, string Right)> merges, ByteLevelBpeOptions? options = null, string source = "BPE model")
    {
        ArgumentNullException.ThrowIfNull(vocab);
        ArgumentNullException.ThrowIfNull(merges);
        options ??= new ByteLevelBpeOptions();
        if (options.BosEosTemplate && (options.SpecialTokens.Bos is null || options.SpecialTokens.Eos is null))
        {
            throw new ArgumentException($"{source}: BosEosTemplate (RoBERTa/BART) needs both bos_token and eos_token; set them in tokenizer_config.json.", nameof(options));
        }

        if (vocab.Count == 0 || vocab.Count > MaxVocabularySize || merges.Count > MaxVocabularySize)
        {
            throw new InvalidDataException($"{source}: {vocab.Count} vocabulary entries and {merges.Count} merges; expected 1..{MaxVocabularySize} of each.");
        }

        var mergeLines = new List<string>(merges.Count);
        for (var m = 0; m < merges.Count; m++)
        {
            var (left, right) = merges[m];
            // HF refuses merges whose parts or result are not tokens; so do we, naming the merge.
            foreach (var part in new[] { left, right, left + right })
            {
                if (!vocab.ContainsKey(part))
                {
                    throw new InvalidDataException($"{source}: merge {m + 1} ('{left}' '{right}') uses '{part}', which is not in the vocabulary; the vocabulary and merges do not belong together.");
                }
            }

            if (left.Contains(' ', StringComparison.Ordinal) || right.Contains(' ', StringComparison.Ordinal))
            {
                throw new InvalidDataException($"{source}: merge {m + 1} has a token with a space, which byte-level BPE never produces; this is not a byte-level vocabulary.");
            }

            mergeLines.Add(left + " " + right);
        }

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
                if (!vocab.TryGetValue(name, out var id))
                {
                    throw new InvalidDataException($"{source}: the special token '{name}' is not in the vocabulary; fix special_tokens_map.json / tokenizer_config.json.");
                }

                added.Add(new AddedToken(name, id, Special: true));
            }
        }

        var bpe = BpeTokenizer.Create(new BpeOptions(vocab)
        {
            Merges = mergeLines,
            ByteLevel = true,
        });
        return new ByteLevelBpeTokenizer(bpe, new Dictionary<string, int>(vocab, StringComparer.Ordinal), merges, added, options);
    }

    /// <inheritdoc />
    public override int? TokenToId(string token) => _vocab.TryGetValue(token, out var id) ? id : null;

    /// <inheritdoc />
    public override string? IdToToken(int id) => _idToToken.GetValueOrDefault(id);

    /// <summary>Bytes of the tokens back to text (invalid UTF-8 becomes U+FFFD, as in HF); added tokens as their content.</summary>
    public override string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var output = new StringBuilder();
        var run = new List<int>();
        foreach (var id in ids)
        {
            if (AddedTokenById(id) is { } added)
            {
                Flush();
                if (!(skipSpecialTokens && added.Special))
                {
                    output.Append(added.Content);
                }
            }
            else if (_idToToken.ContainsKey(id))
            {
                run.Add(id);
            }
        }

        Flush();
        return output.ToString();

        void Flush()
        {
            if (run.Count > 0)
            {
                output.Append(_bpe.Decode(run));
                run.Clear();
            }
        }
    }

    /// <summary>
    /// HF's ByteLevel decoder over token strings: each char of a token is one byte of the byte-to-unicode table, and a
    /// token holding any other char (an added token, raw text) contributes its own UTF-8 bytes; the bytes are then read
    /// as UTF-8 with U+FFFD for invalid sequences.
    /// </summary>
    public override string ConvertTokensToString(IEnumerable<string> tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        var byteOf = new Dictionary<char, byte>(256);
        for (var b = 0; b < 256; b++)
        {
            byteOf[BytePairMerger.ByteToChar[b]] = (byte)b;
        }

        var bytes = new List<byte>();
        var tokenBytes = new List<byte>();
        foreach (var token in tokens)
        {
            ArgumentNullException.ThrowIfNull(token, nameof(tokens));
            tokenBytes.Clear();
            var mapped = true;
            foreach (var c in token)
            {
                if (!byteOf.TryGetValue(c, out var b))
                {
                    mapped = false;
                    break;
                }

                tokenBytes.Add(b);
            }

            bytes.AddRange(mapped ? tokenBytes : Encoding.UTF8.GetBytes(token));
        }

        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    /// <inheritdoc />
    internal override int SpecialTokenCount(bool pair) => _bosEosTemplate ? (pair ? 4 : 2) : 0;

    /// <summary>As HF's <c>GPT2TokenizerFast</c>: pre-split words need add_prefix_space, or each word would lose its leading "Ġ".</summary>
    internal override void CheckPreSplitWords()
    {
        if (!_addPrefixSpace)
        {
            throw new InvalidOperationException("Encoding pre-split words with a byte-level BPE tokenizer needs add_prefix_space = true (set it in tokenizer_config.json or ByteLevelBpeOptions.AddPrefixSpace), as HF's GPT2TokenizerFast requires for is_split_into_words.");
        }
    }

    /// <summary>
    /// GPT-2 adds no template tokens; a pair is the two texts one after the other, type ids 0 then 1. With
    /// <see cref="ByteLevelBpeOptions.BosEosTemplate"/> (RoBERTa, BART): &lt;s&gt; A &lt;/s&gt; (&lt;/s&gt; B &lt;/s&gt;), type ids all 0.
    /// </summary>
    internal override TokenEncoding PostProcess(List<RawToken> first, List<RawToken>? second, bool addSpecialTokens)
    {
        var builder = new EncodingBuilder();
        if (_bosEosTemplate)
        {
            var bos = SpecialTokens.Bos!;
            var eos = SpecialTokens.Eos!;
            var bosId = TokenToId(bos)!.Value;
            var eosId = TokenToId(eos)!.Value;
            if (addSpecialTokens)
            {
                builder.AddSpecial(bosId, bos, typeId: 0);
            }

            builder.AddRange(first, typeId: 0, sequence: 0);
            if (addSpecialTokens)
            {
                builder.AddSpecial(eosId, eos, typeId: 0);
            }

            if (second is not null)
            {
                if (addSpecialTokens)
                {
                    builder.AddSpecial(eosId, eos, typeId: 0);
                }

                builder.AddRange(second, typeId: 0, sequence: 1);
                if (addSpecialTokens)
                {
                    builder.AddSpecial(eosId, eos, typeId: 0);
                }
            }

            return builder.Build();
        }

        builder.AddRange(first, typeId: 0, sequence: 0);
        if (second is not null)
        {
            builder.AddRange(second, typeId: 1, sequence: 1);
        }

        return builder.Build();
    }

    /// <inheritdoc />
    internal override List<RawToken> TokenizeText(string text)
    {
        // Word ids count HF's pre-tokenized splits in order: each added token, then each regex piece between them.
        var output = new List<RawToken>();
        var word = 0;
        var chars = AlignedChar.FromText(text, 0, text.Length);
        foreach (var segment in _matcher.Split(chars, 0, chars.Count))
        {
            if (segment.Token is { } added)
            {
                output.Add(new RawToken(added.Id, added.Content, new TextSpan(chars[segment.Start].Start, chars[segment.End - 1].End), word++));
                continue;
            }

            var piecesOf = chars;
            var from = segment.Start;
            var to = segment.End;
            if (_addPrefixSpace && chars[segment.Start].CodePoint != ' ')
            {
                // HF adds the space unless the text starts with a space itself (a tab or newline still gets one).
                // The added space has no source text: it is aligned to an empty span where the segment starts.
                var start = chars[segment.Start].Start;
                piecesOf = [new AlignedChar(' ', start, start), .. chars.GetRange(segment.Start, segment.End - segment.Start)];
                from = 0;
                to = piecesOf.Count;
            }

            foreach (var (start, end) in Gpt2PreTokenizer.Split(piecesOf, from, to))
            {
                AddPieces(piecesOf, start, end, word++, output);
            }
        }

        return output;
    }

    private void AddPieces(List<AlignedChar> chars, int start, int end, int wordIndex, List<RawToken> output)
    {
        var piece = new StringBuilder(end - start);
        var charAt = new List<int>(end - start);
        for (var i = start; i < end; i++)
        {
            var before = piece.Length;
            piece.Append(char.ConvertFromUtf32(chars[i].CodePoint));
            for (var u = before; u < piece.Length; u++)
            {
                charAt.Add(i);
            }
        }

        var text = piece.ToString();
        if (_longPieces is not null && text.Length > LongPieceThreshold)
        {
            foreach (var (id, value, startChar, endChar) in _longPieces.Encode(text))
            {
                var firstChar = chars[charAt[startChar]];
                var lastChar = chars[charAt[endChar - 1]];
                output.Add(new RawToken(id, value, new TextSpan(firstChar.Start, Math.Max(firstChar.Start, lastChar.End)), wordIndex));
            }

            return;
        }

        foreach (var token in _bpe.EncodeToTokens(text, out _, considerPreTokenization: false, considerNormalization: false))
        {
            var (offset, length) = token.Offset.GetOffsetAndLength(text.Length);
            var first = chars[charAt[Math.Min(offset, text.Length - 1)]];
            var last = chars[charAt[Math.Clamp(offset + length - 1, 0, text.Length - 1)]];
            output.Add(new RawToken(token.Id, token.Value, new TextSpan(first.Start, Math.Max(first.Start, last.End)), wordIndex));
        }
    }
}
