using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Sharpformer.Text.Training;

/// <summary>
/// Writes a trained tokenizer as the files HF <c>transformers</c> / <c>tokenizers</c> and our <see cref="AutoTokenizer"/>
/// read, in the layout HF's <c>save_pretrained</c> produces for bert-base-uncased and gpt2. Output is deterministic:
/// fixed key order, vocabularies by id, "\n" line endings, UTF-8 without BOM.
/// </summary>
internal static class TokenizerTrainingFiles
{
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    private static readonly JsonWriterOptions Indented = new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, NewLine = "\n" };

    private static readonly JsonWriterOptions Compact = new() { Indented = false, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static IReadOnlyList<string> Write(TrainedTokenizer tokenizer, string folder)
    {
        var written = new List<string>();
        var vocab = tokenizer.Result.Vocabulary;
        var options = tokenizer.Options;
        var specials = options.ResolvedSpecialTokens;
        if (options.Kind == TokenizerKind.WordPiece)
        {
            var text = new StringBuilder();
            foreach (var token in vocab)
            {
                text.Append(token).Append('\n');
            }

            written.Add(WriteText(folder, "vocab.txt", text.ToString()));
            written.Add(WriteJson(folder, "tokenizer_config.json", Indented, w => BertConfig(w, vocab, specials, options)));
            written.Add(WriteJson(folder, "special_tokens_map.json", Indented, w => SpecialTokensMap(w, specials, options.Kind)));
            written.Add(WriteJson(folder, "tokenizer.json", Indented, w => BertTokenizerJson(w, vocab, specials, options)));
        }
        else
        {
            written.Add(WriteJson(folder, "vocab.json", Compact, w => VocabObject(w, vocab)));
            var merges = new StringBuilder("#version: 0.2\n");
            foreach (var (left, right) in tokenizer.Result.Merges)
            {
                merges.Append(left).Append(' ').Append(right).Append('\n');
            }

            written.Add(WriteText(folder, "merges.txt", merges.ToString()));
            written.Add(WriteJson(folder, "tokenizer_config.json", Indented, w => Gpt2Config(w, vocab, specials, options)));
            written.Add(WriteJson(folder, "special_tokens_map.json", Indented, w => SpecialTokensMap(w, specials, options.Kind)));
            written.Add(WriteJson(folder, "tokenizer.json", Indented, w => Gpt2TokenizerJson(w, vocab, tokenizer.Result.Merges, specials)));
        }

        return written;
    }

    private static string WriteText(string folder, string name, string content)
    {
        var path = Path.Combine(folder, name);
        File.WriteAllText(path, content, Utf8);
        return path;
    }

    private static string WriteJson(string folder, string name, JsonWriterOptions options, Action<Utf8JsonWriter> write)
    {
        var path = Path.Combine(folder, name);
        using (var stream = File.Create(path))
        using (var writer = new Utf8JsonWriter(stream, options))
        {
            write(writer);
        }

        File.AppendAllText(path, "\n", Utf8);
        return path;
    }

    private static int IdOf(IReadOnlyList<string> vocab, string token)
    {
        for (var i = 0; i < vocab.Count; i++)
        {
            if (vocab[i] == token)
            {
                return i;
            }
        }

        throw new InvalidOperationException($"'{token}' is not in the trained vocabulary.");
    }

    /// <summary>BERT's named tokens (unk_token, …) and the extra special tokens beyond them.</summary>
    private static (List<(string Name, string Token)> Named, List<string> Additional) Classify(IReadOnlyList<string> specials, TokenizerKind kind)
    {
        var named = new List<(string, string)>();
        var additional = new List<string>();
        if (kind == TokenizerKind.WordPiece)
        {
            string[] names = ["pad_token", "unk_token", "cls_token", "sep_token", "mask_token"];
            for (var i = 0; i < names.Length; i++)
            {
                named.Add((names[i], TokenizerTrainer.BertSpecialTokens[i]));
            }

            additional.AddRange(specials.Where(s => !TokenizerTrainer.BertSpecialTokens.Contains(s, StringComparer.Ordinal)));
        }
        else
        {
            // GPT-2: the first special token (<|endoftext|> by default) is bos, eos and unk.
            named.Add(("bos_token", specials[0]));
            named.Add(("eos_token", specials[0]));
            named.Add(("unk_token", specials[0]));
            additional.AddRange(specials.Skip(1));
        }

        named.Sort((x, y) => string.CompareOrdinal(x.Item1, y.Item1));
        return (named, additional);
    }

    private static void SpecialTokensMap(Utf8JsonWriter w, IReadOnlyList<string> specials, TokenizerKind kind)
    {
        var (named, additional) = Classify(specials, kind);
        w.WriteStartObject();
        if (additional.Count > 0)
        {
            w.WriteStartArray("additional_special_tokens");
            foreach (var token in additional)
            {
                w.WriteStringValue(token);
            }

            w.WriteEndArray();
        }

        foreach (var (name, token) in named)
        {
            w.WriteString(name, token);
        }

        w.WriteEndObject();
    }

    private static void AddedTokensDecoder(Utf8JsonWriter w, IReadOnlyList<string> vocab, IReadOnlyList<string> specials)
    {
        w.WriteStartObject("added_tokens_decoder");
        foreach (var special in specials)
        {
            w.WriteStartObject(IdOf(vocab, special).ToString(CultureInfo.InvariantCulture));
            w.WriteString("content", special);
            w.WriteBoolean("lstrip", false);
            w.WriteBoolean("normalized", false);
            w.WriteBoolean("rstrip", false);
            w.WriteBoolean("single_word", false);
            w.WriteBoolean("special", true);
            w.WriteEndObject();
        }

        w.WriteEndObject();
    }

    private static void BertConfig(Utf8JsonWriter w, IReadOnlyList<string> vocab, IReadOnlyList<string> specials, TokenizerTrainingOptions options)
    {
        var (named, additional) = Classify(specials, options.Kind);
        w.WriteStartObject();
        AddedTokensDecoder(w, vocab, specials);
        if (additional.Count > 0)
        {
            w.WriteStartArray("additional_special_tokens");
            foreach (var token in additional)
            {
                w.WriteStringValue(token);
            }

            w.WriteEndArray();
        }

        w.WriteBoolean("clean_up_tokenization_spaces", true);
        w.WriteBoolean("do_basic_tokenize", true);
        w.WriteBoolean("do_lower_case", options.Lowercase);
        if (options.ModelMaxLength is { } max)
        {
            w.WriteNumber("model_max_length", max);
        }

        w.WriteNull("never_split");
        w.WriteNull("strip_accents");
        w.WriteBoolean("tokenize_chinese_chars", true);
        w.WriteString("tokenizer_class", "BertTokenizer");
        foreach (var (name, token) in named)
        {
            w.WriteString(name, token);
        }

        w.WriteEndObject();
    }

    private static void Gpt2Config(Utf8JsonWriter w, IReadOnlyList<string> vocab, IReadOnlyList<string> specials, TokenizerTrainingOptions options)
    {
        var (named, additional) = Classify(specials, options.Kind);
        w.WriteStartObject();
        w.WriteBoolean("add_prefix_space", false);
        AddedTokensDecoder(w, vocab, specials);
        if (additional.Count > 0)
        {
            w.WriteStartArray("additional_special_tokens");
            foreach (var token in additional)
            {
                w.WriteStringValue(token);
            }

            w.WriteEndArray();
        }

        w.WriteBoolean("clean_up_tokenization_spaces", false);
        if (options.ModelMaxLength is { } max)
        {
            w.WriteNumber("model_max_length", max);
        }

        w.WriteString("tokenizer_class", "GPT2Tokenizer");
        foreach (var (name, token) in named)
        {
            w.WriteString(name, token);
        }

        w.WriteEndObject();
    }

    private static void VocabObject(Utf8JsonWriter w, IReadOnlyList<string> vocab)
    {
        w.WriteStartObject();
        for (var id = 0; id < vocab.Count; id++)
        {
            w.WriteNumber(vocab[id], id);
        }

        w.WriteEndObject();
    }

    private static void AddedTokensArray(Utf8JsonWriter w, IReadOnlyList<string> vocab, IReadOnlyList<string> specials)
    {
        w.WriteStartArray("added_tokens");
        foreach (var special in specials)
        {
            w.WriteStartObject();
            w.WriteNumber("id", IdOf(vocab, special));
            w.WriteString("content", special);
            w.WriteBoolean("single_word", false);
            w.WriteBoolean("lstrip", false);
            w.WriteBoolean("rstrip", false);
            w.WriteBoolean("normalized", false);
            w.WriteBoolean("special", true);
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    private static void BertTokenizerJson(Utf8JsonWriter w, IReadOnlyList<string> vocab, IReadOnlyList<string> specials, TokenizerTrainingOptions options)
    {
        w.WriteStartObject();
        w.WriteString("version", "1.0");
        w.WriteNull("truncation");
        w.WriteNull("padding");
        AddedTokensArray(w, vocab, specials);
        w.WriteStartObject("normalizer");
        w.WriteString("type", "BertNormalizer");
        w.WriteBoolean("clean_text", true);
        w.WriteBoolean("handle_chinese_chars", true);
        w.WriteNull("strip_accents");
        w.WriteBoolean("lowercase", options.Lowercase);
        w.WriteEndObject();
        w.WriteStartObject("pre_tokenizer");
        w.WriteString("type", "BertPreTokenizer");
        w.WriteEndObject();
        w.WriteStartObject("post_processor");
        w.WriteString("type", "TemplateProcessing");
        w.WriteStartArray("single");
        TemplatePiece(w, "SpecialToken", "[CLS]", 0);
        TemplatePiece(w, "Sequence", "A", 0);
        TemplatePiece(w, "SpecialToken", "[SEP]", 0);
        w.WriteEndArray();
        w.WriteStartArray("pair");
        TemplatePiece(w, "SpecialToken", "[CLS]", 0);
        TemplatePiece(w, "Sequence", "A", 0);
        TemplatePiece(w, "SpecialToken", "[SEP]", 0);
        TemplatePiece(w, "Sequence", "B", 1);
        TemplatePiece(w, "SpecialToken", "[SEP]", 1);
        w.WriteEndArray();
        w.WriteStartObject("special_tokens");
        foreach (var special in new[] { "[CLS]", "[SEP]" })
        {
            w.WriteStartObject(special);
            w.WriteString("id", special);
            w.WriteStartArray("ids");
            w.WriteNumberValue(IdOf(vocab, special));
            w.WriteEndArray();
            w.WriteStartArray("tokens");
            w.WriteStringValue(special);
            w.WriteEndArray();
            w.WriteEndObject();
        }

        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteStartObject("decoder");
        w.WriteString("type", "WordPiece");
        w.WriteString("prefix", TokenizerTrainer.WordPiecePrefix);
        w.WriteBoolean("cleanup", true);
        w.WriteEndObject();
        w.WriteStartObject("model");
        w.WriteString("type", "WordPiece");
        w.WriteString("unk_token", "[UNK]");
        w.WriteString("continuing_subword_prefix", TokenizerTrainer.WordPiecePrefix);
        w.WriteNumber("max_input_chars_per_word", 100);
        w.WritePropertyName("vocab");
        VocabObject(w, vocab);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void TemplatePiece(Utf8JsonWriter w, string kind, string id, int typeId)
    {
        w.WriteStartObject();
        w.WriteStartObject(kind);
        w.WriteString("id", id);
        w.WriteNumber("type_id", typeId);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void Gpt2TokenizerJson(Utf8JsonWriter w, IReadOnlyList<string> vocab, IReadOnlyList<(string Left, string Right)> merges, IReadOnlyList<string> specials)
    {
        w.WriteStartObject();
        w.WriteString("version", "1.0");
        w.WriteNull("truncation");
        w.WriteNull("padding");
        AddedTokensArray(w, vocab, specials);
        w.WriteNull("normalizer");
        foreach (var (name, addPrefixSpace, trimOffsets) in new[] { ("pre_tokenizer", false, true), ("post_processor", true, false), ("decoder", true, true) })
        {
            w.WriteStartObject(name);
            w.WriteString("type", "ByteLevel");
            w.WriteBoolean("add_prefix_space", addPrefixSpace);
            w.WriteBoolean("trim_offsets", trimOffsets);
            w.WriteBoolean("use_regex", true);
            w.WriteEndObject();
        }

        w.WriteStartObject("model");
        w.WriteString("type", "BPE");
        w.WriteNull("dropout");
        w.WriteNull("unk_token");
        w.WriteString("continuing_subword_prefix", "");
        w.WriteString("end_of_word_suffix", "");
        w.WriteBoolean("fuse_unk", false);
        w.WriteBoolean("byte_fallback", false);
        w.WriteBoolean("ignore_merges", false);
        w.WritePropertyName("vocab");
        VocabObject(w, vocab);
        w.WriteStartArray("merges");
        foreach (var (left, right) in merges)
        {
            w.WriteStartArray();
            w.WriteStringValue(left);
            w.WriteStringValue(right);
            w.WriteEndArray();
        }

        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();
    }
}
