using System.Text.Json;

namespace Sharpformer.Text;

/// <summary>
/// Loads the right tokenizer from a local model folder, like HF's <c>AutoTokenizer.from_pretrained</c>: the
/// encoder-decoder families first (T5's spiece.model, Marian's source.spm + vocab.json, BART's vocab.json + merges.txt
/// with its &lt;s&gt; … &lt;/s&gt; template, chosen by tokenizer_config.json <c>tokenizer_class</c> or the files present), then
/// tokenizer.json (WordPiece or BPE), else vocab.txt (BERT), else vocab.json + merges.txt (GPT-2), with the settings
/// and special tokens of tokenizer_config.json and special_tokens_map.json, and the chat template if the folder has one.
/// </summary>
public static class AutoTokenizer
{
    private static readonly string[] LookedFor = ["tokenizer.json", "vocab.txt", "vocab.json + merges.txt", "spiece.model", "source.spm + vocab.json"];

    /// <summary>Loads the tokenizer in <paramref name="folder"/> (a local folder; downloading is the Hub client's job).</summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">The folder has no tokenizer files; the message lists what was looked for.</exception>
    /// <exception cref="InvalidDataException">A file is malformed; the message names the file and the problem.</exception>
    /// <exception cref="NotSupportedException">The files describe a tokenizer this library does not implement yet.</exception>
    public static TextTokenizer FromPretrained(string folder)
    {
        var tokenizer = Load(folder);
        try
        {
            tokenizer.ChatTemplate = ChatTemplate.FromFolder(folder);
        }
        catch (Jinja.JinjaException e)
        {
            // A template the interpreter cannot parse must not stop the tokenizer from loading (completions,
            // embeddings and training do not need it); chat reports this reason instead.
            tokenizer.ChatTemplateError = e.Message;
        }

        return tokenizer;
    }

    private static TextTokenizer Load(string folder)
    {
        ArgumentNullException.ThrowIfNull(folder);
        if (!Directory.Exists(folder))
        {
            throw new DirectoryNotFoundException($"Tokenizer folder '{folder}' does not exist; pass a folder holding {string.Join(", ", LookedFor)}.");
        }

        var config = ReadConfig(folder);
        if (LoadSeq2SeqFamily(folder, config) is { } family)
        {
            return family;
        }

        var tokenizerJson = Path.Combine(folder, "tokenizer.json");
        if (File.Exists(tokenizerJson))
        {
            return FromTokenizerJson(tokenizerJson, config);
        }

        var vocabTxt = Path.Combine(folder, "vocab.txt");
        if (File.Exists(vocabTxt))
        {
            return BertWordPieceTokenizer.FromVocabFile(vocabTxt, config.ToBertOptions(fromJson: null));
        }

        var vocabJson = Path.Combine(folder, "vocab.json");
        var mergesTxt = Path.Combine(folder, "merges.txt");
        if (File.Exists(vocabJson) && File.Exists(mergesTxt))
        {
            return ByteLevelBpeTokenizer.FromFiles(vocabJson, mergesTxt, config.ToBpeOptions(addPrefixSpace: null));
        }

        var named = config.TokenizerClass is { } name ? $" (tokenizer_config.json names {name})" : "";
        throw new FileNotFoundException(
            $"No tokenizer files in '{folder}'{named}: looked for {string.Join(", ", LookedFor)} (with optional tokenizer_config.json and special_tokens_map.json). Download the model's tokenizer files into this folder.");
    }

    /// <summary>
    /// T5 (spiece.model, T5Tokenizer), Marian (source.spm + vocab.json, MarianTokenizer) and BART (vocab.json +
    /// merges.txt, BartTokenizer/RobertaTokenizer: the &lt;s&gt; … &lt;/s&gt; template); null for any other folder. Without
    /// a tokenizer_class (older Hub repos such as t5-small and facebook/bart-large-cnn have no tokenizer_config.json),
    /// config.json's model_type decides.
    /// </summary>
    private static TextTokenizer? LoadSeq2SeqFamily(string folder, TokenizerConfig config)
    {
        var name = config.TokenizerClass ?? FolderModelType(folder) switch
        {
            "t5" or "mt5" => "T5Tokenizer",
            "marian" => "MarianTokenizer",
            "bart" or "mbart" => "BartTokenizer",
            _ => "",
        };
        var spiece = Path.Combine(folder, "spiece.model");
        var sourceSpm = Path.Combine(folder, "source.spm");
        var vocabJson = Path.Combine(folder, "vocab.json");
        var mergesTxt = Path.Combine(folder, "merges.txt");
        if (name.StartsWith("Marian", StringComparison.Ordinal) || (File.Exists(sourceSpm) && File.Exists(vocabJson) && name.Length == 0))
        {
            foreach (var required in new[] { sourceSpm, vocabJson })
            {
                if (!File.Exists(required))
                {
                    throw new FileNotFoundException($"tokenizer_config.json in '{folder}' names {name}, which needs {Path.GetFileName(required)}; download it into the folder.", required);
                }
            }

            return SentencePieceTokenizer.FromMarianFiles(sourceSpm, vocabJson, config.ToSentencePieceOptions(extraIds: 0));
        }

        if (name.StartsWith("T5", StringComparison.Ordinal) || (name.Length == 0 && File.Exists(spiece) && !File.Exists(Path.Combine(folder, "tokenizer.json"))))
        {
            if (!File.Exists(spiece))
            {
                throw new FileNotFoundException($"tokenizer_config.json in '{folder}' names {name}, which needs spiece.model; download it into the folder.", spiece);
            }

            return SentencePieceTokenizer.FromFile(spiece, config.ToSentencePieceOptions(config.ExtraIds ?? 100));
        }

        if ((name.StartsWith("Bart", StringComparison.Ordinal) || name.StartsWith("Roberta", StringComparison.Ordinal)) && File.Exists(vocabJson) && File.Exists(mergesTxt))
        {
            var options = config.ToBpeOptions(addPrefixSpace: null) with
            {
                BosEosTemplate = true,
                SpecialTokens = new SpecialTokens
                {
                    Bos = config.Tokens.GetValueOrDefault("bos_token", "<s>"),
                    Eos = config.Tokens.GetValueOrDefault("eos_token", "</s>"),
                    Unk = config.Tokens.GetValueOrDefault("unk_token", "<unk>"),
                    Pad = config.Tokens.GetValueOrDefault("pad_token", "<pad>"),
                    Cls = config.Tokens.GetValueOrDefault("cls_token", "<s>"),
                    Sep = config.Tokens.GetValueOrDefault("sep_token", "</s>"),
                    Mask = config.Tokens.GetValueOrDefault("mask_token", "<mask>"),
                },
            };
            return ByteLevelBpeTokenizer.FromFiles(vocabJson, mergesTxt, options);
        }

        return null;
    }

    /// <summary>config.json's model_type, or null when the folder has no readable config.json.</summary>
    private static string? FolderModelType(string folder)
    {
        var path = Path.Combine(folder, "config.json");
        if (!File.Exists(path))
        {
            return null;
        }

        using var doc = TokenizerFiles.ReadJson(path);
        return doc.RootElement.ValueKind == JsonValueKind.Object ? TokenizerFiles.GetString(doc.RootElement, "model_type") : null;
    }

    private static TextTokenizer FromTokenizerJson(string path, TokenizerConfig config)
    {
        using var doc = TokenizerFiles.ReadJson(path);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException($"{path}: no \"model\" object; this is not a Hugging Face tokenizer.json.");
        }

        var added = new List<AddedToken>(config.AddedTokens);
        if (root.TryGetProperty("added_tokens", out var addedTokens) && addedTokens.ValueKind == JsonValueKind.Array)
        {
            foreach (var token in addedTokens.EnumerateArray())
            {
                added.Add(TokenizerFiles.ReadAddedToken(token, id: null, $"{path} added_tokens"));
            }
        }

        // The Hub's older GPT-2 file has no model.type: a model with vocab and merges is BPE.
        var type = TokenizerFiles.GetString(model, "type")
            ?? (model.TryGetProperty("merges", out _) ? "BPE" : model.TryGetProperty("vocab", out _) ? "WordPiece" : null);
        if (!model.TryGetProperty("vocab", out var vocabElement) || vocabElement.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException($"{path}: model.vocab must be an object {{\"token\": id}} for a {type ?? "untyped"} model.");
        }

        switch (type)
        {
            case "WordPiece":
                {
                    RequireBertPreTokenizer(root, path);
                    var vocab = TokenizerFiles.ReadVocabObject(vocabElement, $"{path} model.vocab");
                    var tokens = new string[vocab.Count];
                    foreach (var (token, id) in vocab)
                    {
                        if (id >= tokens.Length || tokens[id] is not null)
                        {
                            throw new InvalidDataException($"{path}: WordPiece ids must be 0..{vocab.Count - 1}, each once; '{token}' has id {id}.");
                        }

                        tokens[id] = token;
                    }

                    var options = config.ToBertOptions(root) with
                    {
                        AddedTokens = Merge(added),
                        MaxInputCharsPerWord = TokenizerFiles.GetInt(model, "max_input_chars_per_word") ?? 100,
                        ContinuingSubwordPrefix = TokenizerFiles.GetString(model, "continuing_subword_prefix") ?? "##",
                    };
                    if (TokenizerFiles.GetString(model, "unk_token") is { } unk)
                    {
                        options = options with { SpecialTokens = options.SpecialTokens with { Unk = unk } };
                    }

                    return BertWordPieceTokenizer.FromTokens(tokens, options, path);
                }

            case "BPE":
                {
                    var vocab = TokenizerFiles.ReadVocabObject(vocabElement, $"{path} model.vocab");
                    if (!model.TryGetProperty("merges", out var mergesElement))
                    {
                        throw new InvalidDataException($"{path}: BPE model without model.merges.");
                    }

                    if (!IsGpt2Style(root, model))
                    {
                        // Llama 2 / Mistral (SentencePiece BPE, byte fallback), Llama 3 / Qwen2 (Split regex + ByteLevel), …
                        var general = config.ToBpeOptions(addPrefixSpace: null);
                        return HfBpeTokenizer.FromJson(root, Merge(added), config.ToHfSpecialTokens(), general.ModelMaxLength, path);
                    }

                    var merges = TokenizerFiles.ReadMergesArray(mergesElement, path);
                    RequireByteLevel(root, path);
                    var options = config.ToBpeOptions(FindAddPrefixSpace(root)) with { AddedTokens = Merge(added) };
                    return ByteLevelBpeTokenizer.Create(vocab, merges, options, path);
                }

            default:
                throw new NotSupportedException($"{path}: model type '{type}' is not supported yet (supported: WordPiece, byte-level BPE).");
        }
    }

    /// <summary>Later entries (tokenizer.json) win over earlier ones (tokenizer_config.json) for the same content.</summary>
    private static List<AddedToken> Merge(List<AddedToken> tokens)
    {
        var byContent = new Dictionary<string, AddedToken>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (var t in tokens)
        {
            if (!byContent.ContainsKey(t.Content))
            {
                order.Add(t.Content);
            }

            byContent[t.Content] = t;
        }

        return order.Select(c => byContent[c]).ToList();
    }

    private static void RequireBertPreTokenizer(JsonElement root, string path)
    {
        if (root.TryGetProperty("pre_tokenizer", out var pre) && pre.ValueKind != JsonValueKind.Null && FindComponent(pre, "BertPreTokenizer") is null)
        {
            throw new NotSupportedException($"{path}: WordPiece with pre-tokenizer '{TokenizerFiles.GetString(pre, "type")}' is not supported yet; only BertPreTokenizer is.");
        }
    }

    private static void RequireByteLevel(JsonElement root, string path)
    {
        if (!root.TryGetProperty("pre_tokenizer", out var pre) || FindComponent(pre, "ByteLevel") is null)
        {
            throw new NotSupportedException($"{path}: BPE without a ByteLevel pre-tokenizer (e.g. Metaspace/SentencePiece BPE) is not supported yet; only GPT-2-style byte-level BPE is.");
        }
    }

    /// <summary>
    /// GPT-2's own layout (ByteLevel pre-tokenizer alone, no normalizer, no template, plain merges), which
    /// <see cref="ByteLevelBpeTokenizer"/> serves; everything else goes to <see cref="HfBpeTokenizer"/>.
    /// </summary>
    private static bool IsGpt2Style(JsonElement root, JsonElement model)
    {
        bool Absent(string name) => !root.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null;
        bool pre = root.TryGetProperty("pre_tokenizer", out var p) && TokenizerFiles.GetString(p, "type") == "ByteLevel";
        bool post = Absent("post_processor") || TokenizerFiles.GetString(root.GetProperty("post_processor"), "type") == "ByteLevel";
        bool plain = !(TokenizerFiles.GetBool(model, "byte_fallback") ?? false) && !(TokenizerFiles.GetBool(model, "ignore_merges") ?? false);
        return pre && post && plain && Absent("normalizer");
    }

    private static bool? FindAddPrefixSpace(JsonElement root) =>
        root.TryGetProperty("pre_tokenizer", out var pre) && FindComponent(pre, "ByteLevel") is { } byteLevel
            ? TokenizerFiles.GetBool(byteLevel, "add_prefix_space")
            : null;

    /// <summary>The component of <paramref name="type"/>, looking inside "Sequence" components too.</summary>
    private static JsonElement? FindComponent(JsonElement component, string type)
    {
        if (component.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        if (TokenizerFiles.GetString(component, "type") == type)
        {
            return component;
        }

        foreach (var listName in new[] { "pretokenizers", "normalizers", "processors" })
        {
            if (component.TryGetProperty(listName, out var list) && list.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in list.EnumerateArray())
                {
                    if (FindComponent(item, type) is { } found)
                    {
                        return found;
                    }
                }
            }
        }

        return null;
    }

    private static TokenizerConfig ReadConfig(string folder)
    {
        var config = new TokenizerConfig();
        var configPath = Path.Combine(folder, "tokenizer_config.json");
        if (File.Exists(configPath))
        {
            using var doc = TokenizerFiles.ReadJson(configPath);
            config.Read(doc.RootElement, configPath);
        }

        // special_tokens_map.json names the special tokens too; where both files name one, this file wins.
        var mapPath = Path.Combine(folder, "special_tokens_map.json");
        if (File.Exists(mapPath))
        {
            using var doc = TokenizerFiles.ReadJson(mapPath);
            config.ReadSpecialTokens(doc.RootElement, mapPath);
        }

        return config;
    }

    /// <summary>What tokenizer_config.json and special_tokens_map.json say.</summary>
    private sealed class TokenizerConfig
    {
        private static readonly string[] TokenNames = ["unk_token", "sep_token", "pad_token", "cls_token", "mask_token", "bos_token", "eos_token"];

        public string? TokenizerClass { get; private set; }

        public bool? DoLowerCase { get; private set; }

        public bool? StripAccents { get; private set; }

        public bool? TokenizeChineseChars { get; private set; }

        public bool? AddPrefixSpace { get; private set; }

        public int? ModelMaxLength { get; private set; }

        public int? ExtraIds { get; private set; }

        public Dictionary<string, string> Tokens { get; } = [];

        public List<AddedToken> AddedTokens { get; } = [];

        public void Read(JsonElement root, string path)
        {
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidDataException($"{path}: expected a JSON object.");
            }

            TokenizerClass = TokenizerFiles.GetString(root, "tokenizer_class");
            DoLowerCase = TokenizerFiles.GetBool(root, "do_lower_case");
            StripAccents = TokenizerFiles.GetBool(root, "strip_accents");
            TokenizeChineseChars = TokenizerFiles.GetBool(root, "tokenize_chinese_chars");
            AddPrefixSpace = TokenizerFiles.GetBool(root, "add_prefix_space");
            ExtraIds = TokenizerFiles.GetInt(root, "extra_ids");
            if (root.TryGetProperty("model_max_length", out var max) && max.ValueKind == JsonValueKind.Number)
            {
                // HF writes 1e30 ("very large") for models without a limit; anything beyond int means "no limit".
                ModelMaxLength = max.TryGetInt64(out var n) && n is > 0 and <= int.MaxValue ? (int)n : int.MaxValue;
            }

            ReadSpecialTokens(root, path);
            if (root.TryGetProperty("added_tokens_decoder", out var decoder) && decoder.ValueKind == JsonValueKind.Object)
            {
                foreach (var entry in decoder.EnumerateObject())
                {
                    if (!int.TryParse(entry.Name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id))
                    {
                        throw new InvalidDataException($"{path}: added_tokens_decoder key '{entry.Name}' is not a token id.");
                    }

                    AddedTokens.Add(TokenizerFiles.ReadAddedToken(entry.Value, id, $"{path} added_tokens_decoder"));
                }
            }
        }

        public void ReadSpecialTokens(JsonElement root, string path)
        {
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidDataException($"{path}: expected a JSON object.");
            }

            foreach (var name in TokenNames)
            {
                if (TokenizerFiles.GetTokenContent(root, name) is { } content)
                {
                    Tokens[name] = content;
                }
            }
        }

        public BertTokenizerOptions ToBertOptions(JsonElement? fromJson)
        {
            var defaults = new BertTokenizerOptions();
            var options = defaults with
            {
                DoLowerCase = DoLowerCase ?? true,
                StripAccents = StripAccents,
                TokenizeChineseChars = TokenizeChineseChars ?? true,
                ModelMaxLength = ModelMaxLength ?? int.MaxValue,
                AddedTokens = AddedTokens,
                SpecialTokens = new SpecialTokens
                {
                    Unk = Tokens.GetValueOrDefault("unk_token", "[UNK]"),
                    Sep = Tokens.GetValueOrDefault("sep_token", "[SEP]"),
                    Pad = Tokens.GetValueOrDefault("pad_token", "[PAD]"),
                    Cls = Tokens.GetValueOrDefault("cls_token", "[CLS]"),
                    Mask = Tokens.GetValueOrDefault("mask_token", "[MASK]"),
                },
            };

            // In tokenizer.json the normalizer is the truth for the fast tokenizer (HF ignores do_lower_case there).
            if (fromJson is { } root && root.TryGetProperty("normalizer", out var normalizer))
            {
                if (normalizer.ValueKind == JsonValueKind.Null)
                {
                    options = options with { DoLowerCase = false, StripAccents = false, TokenizeChineseChars = false, CleanText = false };
                }
                else if (FindComponent(normalizer, "BertNormalizer") is { } bert)
                {
                    options = options with
                    {
                        DoLowerCase = TokenizerFiles.GetBool(bert, "lowercase") ?? true,
                        StripAccents = TokenizerFiles.GetBool(bert, "strip_accents"),
                        TokenizeChineseChars = TokenizerFiles.GetBool(bert, "handle_chinese_chars") ?? true,
                        CleanText = TokenizerFiles.GetBool(bert, "clean_text") ?? true,
                    };
                }
                else
                {
                    throw new NotSupportedException($"tokenizer.json: WordPiece with normalizer '{TokenizerFiles.GetString(normalizer, "type")}' is not supported yet; only BertNormalizer (or none) is.");
                }
            }

            return options;
        }

        public SentencePieceOptions ToSentencePieceOptions(int extraIds) => new()
        {
            ExtraIds = extraIds,
            ModelMaxLength = ModelMaxLength ?? int.MaxValue,
            AddedTokens = AddedTokens.Where(t => !t.Content.StartsWith("<extra_id_", StringComparison.Ordinal)).ToList(),
            SpecialTokens = new SpecialTokens
            {
                Unk = Tokens.GetValueOrDefault("unk_token", "<unk>"),
                Pad = Tokens.GetValueOrDefault("pad_token", "<pad>"),
                Eos = Tokens.GetValueOrDefault("eos_token", "</s>"),
            },
        };

        /// <summary>The special-token names the config gives (no GPT-2 defaults).</summary>
        public SpecialTokens ToHfSpecialTokens() => new()
        {
            Unk = Tokens.GetValueOrDefault("unk_token"),
            Bos = Tokens.GetValueOrDefault("bos_token"),
            Eos = Tokens.GetValueOrDefault("eos_token"),
            Pad = Tokens.GetValueOrDefault("pad_token"),
        };

        public ByteLevelBpeOptions ToBpeOptions(bool? addPrefixSpace) => new()
        {
            AddPrefixSpace = addPrefixSpace ?? AddPrefixSpace ?? false,
            ModelMaxLength = ModelMaxLength ?? int.MaxValue,
            AddedTokens = AddedTokens,
            SpecialTokens = new SpecialTokens
            {
                Unk = Tokens.GetValueOrDefault("unk_token", ByteLevelBpeOptions.Gpt2EndOfText),
                Bos = Tokens.GetValueOrDefault("bos_token", ByteLevelBpeOptions.Gpt2EndOfText),
                Eos = Tokens.GetValueOrDefault("eos_token", ByteLevelBpeOptions.Gpt2EndOfText),
                Pad = Tokens.GetValueOrDefault("pad_token"),
            },
        };
    }
}
