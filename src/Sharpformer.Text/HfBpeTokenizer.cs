using System.Text.Json;

namespace Sharpformer.Text;

/// <summary>
/// A BPE tokenizer.json in general, as Hugging Face's Rust <c>tokenizers</c> runs it: added tokens matched first (never
/// split), then per remaining segment the normalizer (e.g. Llama 2 / Mistral: Prepend "▁", Replace " " → "▁"; Qwen2:
/// NFC), the pre-tokenizer (Llama 3 / Qwen2: Split with their regex then ByteLevel; Metaspace), the BPE model (with
/// <c>byte_fallback</c>, <c>fuse_unk</c>, <c>ignore_merges</c>), and the TemplateProcessing post-processor (BOS);
/// decoding through the file's decoder chain (Replace, ByteFallback, Fuse, Strip, ByteLevel, Metaspace). GPT-2's own
/// files keep <see cref="ByteLevelBpeTokenizer"/>; <see cref="AutoTokenizer"/> picks.
/// </summary>
public sealed class HfBpeTokenizer : TextTokenizer
{
    private readonly BpeModel _model;
    private readonly TokenizerPipeline.Normalizer? _normalizer;
    private readonly TokenizerPipeline.PreTokenizer? _preTokenizer;
    private readonly TokenizerPipeline.Decoder? _decoder;
    private readonly List<TemplatePiece>? _single;
    private readonly List<TemplatePiece>? _pair;
    private readonly AddedTokenMatcher _matcher;
    private readonly Dictionary<string, int> _addedByContent;

    private HfBpeTokenizer(BpeModel model, TokenizerPipeline.Normalizer? normalizer, TokenizerPipeline.PreTokenizer? preTokenizer, TokenizerPipeline.Decoder? decoder,
        List<TemplatePiece>? single, List<TemplatePiece>? pair, IReadOnlyList<AddedToken> added, SpecialTokens specials, int modelMaxLength)
        : base(added, specials, modelMaxLength)
    {
        _model = model;
        _normalizer = normalizer;
        _preTokenizer = preTokenizer;
        _decoder = decoder;
        _single = single;
        _pair = pair;
        _matcher = new AddedTokenMatcher(added);
        _addedByContent = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var t in added)
        {
            _addedByContent.TryAdd(t.Content, t.Id);
        }
    }

    /// <summary>One item of a TemplateProcessing template: a special token's ids, or sequence A / B.</summary>
    private sealed record TemplatePiece(string? Special, IReadOnlyList<int> Ids, IReadOnlyList<string> Tokens, int Sequence, int TypeId);

    /// <summary>Whether a decode should also drop the leading space SentencePiece's prefix adds (decided by the decoder itself).</summary>
    public bool HasDecoder => _decoder is not null;

    /// <inheritdoc />
    public override int VocabularySize
    {
        get
        {
            int max = _model.IdToToken.Count == 0 ? -1 : _model.IdToToken.Keys.Max();
            foreach (var t in AddedTokens)
            {
                max = Math.Max(max, t.Id);
            }

            return max + 1;
        }
    }

    /// <summary>
    /// Builds the tokenizer from a parsed tokenizer.json (a BPE model) plus the added tokens and special-token names of
    /// tokenizer_config.json.
    /// </summary>
    /// <param name="root">The tokenizer.json root object.</param>
    /// <param name="added">Every added token (tokenizer.json's and the config's, merged).</param>
    /// <param name="specials">The named special tokens.</param>
    /// <param name="modelMaxLength">model_max_length.</param>
    /// <param name="source">Names the file in errors.</param>
    /// <param name="chatTemplate">A Jinja chat template to attach (e.g. GGUF's <c>tokenizer.chat_template</c>), or null.</param>
    /// <returns>The tokenizer.</returns>
    /// <exception cref="InvalidDataException">The model is not BPE or is malformed.</exception>
    /// <exception cref="NotSupportedException">A component type is not supported; the message names it.</exception>
    public static HfBpeTokenizer FromJson(JsonElement root, IReadOnlyList<AddedToken> added, SpecialTokens specials, int modelMaxLength, string source, string? chatTemplate = null)
    {
        ArgumentNullException.ThrowIfNull(added);
        ArgumentNullException.ThrowIfNull(specials);
        if (!root.TryGetProperty("model", out var model) || TokenizerFiles.GetString(model, "type") is not (null or "BPE"))
        {
            throw new InvalidDataException($"{source}: model.type must be BPE for this tokenizer.");
        }

        if (TokenizerFiles.GetString(model, "continuing_subword_prefix") is { Length: > 0 } || TokenizerFiles.GetString(model, "end_of_word_suffix") is { Length: > 0 })
        {
            throw new NotSupportedException($"{source}: BPE with continuing_subword_prefix or end_of_word_suffix is not supported.");
        }

        if (model.TryGetProperty("dropout", out var dropout) && dropout.ValueKind == JsonValueKind.Number && dropout.GetDouble() > 0)
        {
            throw new NotSupportedException($"{source}: BPE dropout {dropout.GetDouble()} is a training-time option; set model.dropout to null.");
        }

        var vocab = TokenizerFiles.ReadVocabObject(model.GetProperty("vocab"), $"{source} model.vocab");
        var merges = model.TryGetProperty("merges", out var m) ? TokenizerFiles.ReadMergesArray(m, source) : [];
        var bpe = new BpeModel(vocab, merges, TokenizerFiles.GetString(model, "unk_token"), TokenizerFiles.GetBool(model, "fuse_unk") ?? false,
            TokenizerFiles.GetBool(model, "byte_fallback") ?? false, TokenizerFiles.GetBool(model, "ignore_merges") ?? false, source);
        var normalizer = root.TryGetProperty("normalizer", out var n) ? TokenizerPipeline.ParseNormalizer(n, source) : null;
        var pre = root.TryGetProperty("pre_tokenizer", out var p) ? TokenizerPipeline.ParsePreTokenizer(p, source) : null;
        var decoder = root.TryGetProperty("decoder", out var d) ? TokenizerPipeline.ParseDecoder(d, source) : null;
        List<TemplatePiece>? single = null, pair = null;
        if (root.TryGetProperty("post_processor", out var post) && post.ValueKind == JsonValueKind.Object)
        {
            (single, pair) = ParsePostProcessor(post, source);
        }

        var tokenizer = new HfBpeTokenizer(bpe, normalizer, pre, decoder, single, pair, added, specials, modelMaxLength);
        if (chatTemplate is not null)
        {
            try
            {
                var named = new Dictionary<string, string>(StringComparer.Ordinal);
                if (specials.Bos is { } bos)
                {
                    named["bos_token"] = bos;
                }

                if (specials.Eos is { } eos)
                {
                    named["eos_token"] = eos;
                }

                tokenizer.ChatTemplate = new ChatTemplate(chatTemplate, named, $"{source} chat template");
            }
            catch (Jinja.JinjaException e)
            {
                tokenizer.ChatTemplateError = e.Message;
            }
        }

        return tokenizer;
    }

    /// <inheritdoc />
    public override int? TokenToId(string token) =>
        _addedByContent.TryGetValue(token, out var added) ? added : _model.Vocab.TryGetValue(token, out var id) ? id : null;

    /// <inheritdoc />
    public override string? IdToToken(int id) => AddedTokenById(id)?.Content ?? _model.IdToToken.GetValueOrDefault(id);

    /// <summary>ids → text as HF's <c>decode</c>: each id's token (special added tokens dropped when asked), then the decoder chain.</summary>
    public override string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var tokens = new List<string>();
        foreach (var id in ids)
        {
            if (AddedTokenById(id) is { } added)
            {
                if (!(skipSpecialTokens && added.Special))
                {
                    tokens.Add(added.Content);
                }
            }
            else if (_model.IdToToken.TryGetValue(id, out var token))
            {
                tokens.Add(token);
            }
        }

        return ConvertTokensToString(tokens);
    }

    /// <inheritdoc />
    public override string ConvertTokensToString(IEnumerable<string> tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        var list = tokens.ToList();
        return string.Concat(_decoder is null ? list : _decoder(list));
    }

    /// <inheritdoc />
    internal override int SpecialTokenCount(bool pair) =>
        (pair ? _pair : _single)?.Where(t => t.Special is not null).Sum(t => t.Ids.Count) ?? 0;

    /// <summary>The TemplateProcessing template when special tokens are wanted; else the sequences one after the other.</summary>
    internal override TokenEncoding PostProcess(List<RawToken> first, List<RawToken>? second, bool addSpecialTokens)
    {
        var builder = new EncodingBuilder();
        var template = second is null ? _single : _pair;
        if (!addSpecialTokens || template is null)
        {
            builder.AddRange(first, typeId: 0, sequence: 0);
            if (second is not null)
            {
                builder.AddRange(second, typeId: 1, sequence: 1);
            }

            return builder.Build();
        }

        foreach (var piece in template)
        {
            if (piece.Special is not null)
            {
                for (var i = 0; i < piece.Ids.Count; i++)
                {
                    builder.AddSpecial(piece.Ids[i], piece.Tokens[i], piece.TypeId);
                }
            }
            else
            {
                builder.AddRange(piece.Sequence == 0 ? first : second!, piece.TypeId, piece.Sequence);
            }
        }

        return builder.Build();
    }

    /// <inheritdoc />
    internal override List<RawToken> TokenizeText(string text)
    {
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

            var normalized = chars.GetRange(segment.Start, segment.End - segment.Start);
            if (_normalizer is not null)
            {
                normalized = _normalizer(normalized);
            }

            List<List<AlignedChar>> pieces = [normalized];
            if (_preTokenizer is not null)
            {
                pieces = _preTokenizer(pieces);
            }

            foreach (var piece in pieces)
            {
                foreach (var (id, start, end) in _model.Encode(piece, 0, piece.Count))
                {
                    int from = piece[start].Start, to = Math.Max(from, piece[end - 1].End);
                    output.Add(new RawToken(id, _model.IdToToken.GetValueOrDefault(id) ?? "", new TextSpan(from, to), word));
                }

                word++;
            }
        }

        return output;
    }

    private static (List<TemplatePiece>? Single, List<TemplatePiece>? Pair) ParsePostProcessor(JsonElement post, string source)
    {
        var type = TokenizerFiles.GetString(post, "type");
        switch (type)
        {
            case "TemplateProcessing":
                return (ParseTemplate(post, "single", source), ParseTemplate(post, "pair", source));
            case "ByteLevel":
                return (null, null);
            case "Sequence":
                {
                    (List<TemplatePiece>?, List<TemplatePiece>?) found = (null, null);
                    foreach (var processor in post.GetProperty("processors").EnumerateArray())
                    {
                        var parsed = ParsePostProcessor(processor, source);
                        if (parsed.Single is not null)
                        {
                            found = parsed;
                        }
                    }

                    return found;
                }

            default:
                throw new NotSupportedException($"{source}: post_processor '{type}' is not supported with a BPE model here; supported: TemplateProcessing, ByteLevel, Sequence of them.");
        }
    }

    private static List<TemplatePiece>? ParseTemplate(JsonElement post, string name, string source)
    {
        if (!post.TryGetProperty(name, out var items) || items.ValueKind != JsonValueKind.Array)
        {
            return null;
        }

        post.TryGetProperty("special_tokens", out var specials);
        var pieces = new List<TemplatePiece>();
        foreach (var item in items.EnumerateArray())
        {
            if (item.TryGetProperty("SpecialToken", out var special))
            {
                var id = TokenizerFiles.GetString(special, "id") ?? throw new InvalidDataException($"{source}: post_processor.{name} has a SpecialToken without an id.");
                if (specials.ValueKind != JsonValueKind.Object || !specials.TryGetProperty(id, out var entry))
                {
                    throw new InvalidDataException($"{source}: post_processor.{name} uses special token '{id}', which post_processor.special_tokens does not define.");
                }

                var ids = entry.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToList();
                var tokens = entry.GetProperty("tokens").EnumerateArray().Select(e => e.GetString() ?? "").ToList();
                pieces.Add(new TemplatePiece(id, ids, tokens, -1, TokenizerFiles.GetInt(special, "type_id") ?? 0));
            }
            else if (item.TryGetProperty("Sequence", out var sequence))
            {
                var which = TokenizerFiles.GetString(sequence, "id");
                pieces.Add(new TemplatePiece(null, [], [], which == "B" ? 1 : 0, TokenizerFiles.GetInt(sequence, "type_id") ?? 0));
            }
        }

        return pieces;
    }
}
