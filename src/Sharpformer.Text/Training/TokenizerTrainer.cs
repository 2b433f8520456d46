using System.Text;

namespace Sharpformer.Text.Training;

/// <summary>The tokenizer a <see cref="TokenizerTrainer"/> learns.</summary>
public enum TokenizerKind
{
    /// <summary>BERT's WordPiece: BertNormalizer + BertPreTokenizer, <c>##</c> continuations; writes vocab.txt.</summary>
    WordPiece,

    /// <summary>GPT-2's byte-level BPE: the GPT-2 pre-tokenizer over UTF-8 bytes; writes vocab.json + merges.txt.</summary>
    ByteLevelBpe,
}

/// <summary>Settings of <see cref="TokenizerTrainer"/>; defaults are those of HF's <c>BertWordPieceTokenizer.train</c> and <c>ByteLevelBPETokenizer.train</c>.</summary>
public sealed record TokenizerTrainingOptions
{
    /// <summary>WordPiece or byte-level BPE.</summary>
    public TokenizerKind Kind { get; init; } = TokenizerKind.WordPiece;

    /// <summary>The vocabulary size to reach (special tokens, alphabet and merges together).</summary>
    public int VocabSize { get; init; } = 30000;

    /// <summary>Pairs seen fewer times than this are not merged (HF's train() default: 2).</summary>
    public long MinFrequency { get; init; } = 2;

    /// <summary>The special tokens, given the first ids; null for the kind's default (<see cref="TokenizerTrainer.DefaultSpecialTokens"/>).</summary>
    public IReadOnlyList<string>? SpecialTokens { get; init; }

    /// <summary>Keep at most this many alphabet characters; null for no limit (the CLI passes 1000 for WordPiece, HF BertWordPieceTokenizer's default). Byte-level BPE needs all 256 bytes.</summary>
    public int? LimitAlphabet { get; init; }

    /// <summary>WordPiece: lowercase (and strip accents), as bert-base-uncased; false for a cased vocabulary.</summary>
    public bool Lowercase { get; init; } = true;

    /// <summary>The model_max_length written to tokenizer_config.json (the model's position limit); null to leave it out.</summary>
    public int? ModelMaxLength { get; init; }

    /// <summary>The special tokens used: <see cref="SpecialTokens"/> or the kind's default.</summary>
    public IReadOnlyList<string> ResolvedSpecialTokens => SpecialTokens ?? TokenizerTrainer.DefaultSpecialTokens(Kind);
}

/// <summary>A trained tokenizer: the learned vocabulary and merges, ready to <see cref="Save"/>.</summary>
public sealed class TrainedTokenizer
{
    internal TrainedTokenizer(TokenizerTrainingOptions options, BpeTrainingResult result, long totalWords, int distinctWords)
    {
        Options = options;
        Result = result;
        TotalWords = totalWords;
        DistinctWords = distinctWords;
    }

    /// <summary>The settings it was trained with.</summary>
    public TokenizerTrainingOptions Options { get; }

    /// <summary>The learned vocabulary (by id), merges and alphabet.</summary>
    public BpeTrainingResult Result { get; }

    /// <summary>Words (pre-tokens) in the training text.</summary>
    public long TotalWords { get; }

    /// <summary>Distinct words in the training text.</summary>
    public int DistinctWords { get; }

    /// <summary>
    /// Writes the tokenizer files into <paramref name="folder"/> (created if missing): WordPiece → vocab.txt,
    /// tokenizer_config.json, special_tokens_map.json, tokenizer.json; byte-level BPE → vocab.json, merges.txt,
    /// tokenizer_config.json, special_tokens_map.json, tokenizer.json. Returns the paths written.
    /// </summary>
    public IReadOnlyList<string> Save(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        Directory.CreateDirectory(folder);
        return TokenizerTrainingFiles.Write(this, folder);
    }

    /// <summary>The names of the files <see cref="Save"/> writes for <paramref name="kind"/>.</summary>
    public static IReadOnlyList<string> FileNames(TokenizerKind kind) => kind == TokenizerKind.WordPiece
        ? ["vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"]
        : ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"];
}

/// <summary>
/// Trains a WordPiece (BERT) or byte-level BPE (GPT-2) tokenizer from text files as HF <c>tokenizers</c> does: each
/// line normalized and pre-tokenized into words, words counted (streamed, see <see cref="WordCounter"/>), then
/// <see cref="BpeTrainer"/> over the counts (WordPiece: with the <c>##</c> prefix; byte-level: with all 256 byte symbols
/// as initial alphabet).
/// </summary>
public static class TokenizerTrainer
{
    /// <summary>BERT's special tokens, in HF BertWordPieceTokenizer's order.</summary>
    public static IReadOnlyList<string> BertSpecialTokens { get; } = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

    /// <summary>The WordPiece continuing-subword prefix.</summary>
    public const string WordPiecePrefix = "##";

    /// <summary>The default special tokens: BERT's five for WordPiece, GPT-2's &lt;|endoftext|&gt; for byte-level BPE.</summary>
    public static IReadOnlyList<string> DefaultSpecialTokens(TokenizerKind kind) =>
        kind == TokenizerKind.WordPiece ? BertSpecialTokens : [ByteLevelBpeOptions.Gpt2EndOfText];

    /// <summary>The word counter for <paramref name="options"/>: its normalizer and pre-tokenizer.</summary>
    public static WordCounter CreateWordCounter(TokenizerTrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Kind == TokenizerKind.WordPiece)
        {
            var normalizer = new BertNormalizer { Lowercase = options.Lowercase };
            return new WordCounter(line => BertPreTokenizer.PreTokenize(normalizer.Normalize(line)).Select(w => w.Word));
        }

        return new WordCounter(ByteLevelWords);
    }

    /// <summary>Counts the words of <paramref name="files"/> and trains on them.</summary>
    /// <param name="files">UTF-8 text files, read line by line.</param>
    /// <param name="options">Kind, vocabulary size and the other settings.</param>
    /// <param name="progress">"reading" and "merging" progress, about once a second; may be null.</param>
    /// <param name="cancellationToken">Stops between lines and between merges.</param>
    /// <exception cref="ArgumentException">No files, or inconsistent options (the message says which and how to fix it).</exception>
    /// <exception cref="FileNotFoundException">A file does not exist (named).</exception>
    /// <exception cref="IOException">A file cannot be read (named).</exception>
    /// <exception cref="InvalidDataException">The files hold no words.</exception>
    public static TrainedTokenizer Train(
        IReadOnlyList<string> files,
        TokenizerTrainingOptions options,
        IProgress<TokenizerTrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(files);
        ArgumentNullException.ThrowIfNull(options);
        var bpeOptions = ToBpeOptions(options);
        var counter = CreateWordCounter(options);
        counter.AddFiles(files, progress, cancellationToken);
        if (counter.Counts.Count == 0)
        {
            throw new InvalidDataException($"The training data ({string.Join(", ", files)}) holds no words: the files are empty or only whitespace. Pass files with text.");
        }

        var result = BpeTrainer.Train(counter.Counts, bpeOptions, progress, cancellationToken);
        return new TrainedTokenizer(options, result, counter.TotalWords, counter.Counts.Count);
    }

    /// <summary>Trains on word counts made elsewhere (e.g. by <see cref="CreateWordCounter"/> over other sources).</summary>
    public static TrainedTokenizer Train(
        IReadOnlyDictionary<string, long> wordCounts,
        TokenizerTrainingOptions options,
        IProgress<TokenizerTrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(wordCounts);
        ArgumentNullException.ThrowIfNull(options);
        var result = BpeTrainer.Train(wordCounts, ToBpeOptions(options), progress, cancellationToken);
        long total = 0;
        foreach (var count in wordCounts.Values)
        {
            total += count;
        }

        return new TrainedTokenizer(options, result, total, wordCounts.Count);
    }

    /// <summary>The BpeTrainer settings of a kind, after checking what that kind needs.</summary>
    internal static BpeTrainerOptions ToBpeOptions(TokenizerTrainingOptions options)
    {
        var specials = options.ResolvedSpecialTokens;
        foreach (var special in specials)
        {
            if (special.Any(char.IsWhiteSpace))
            {
                throw new ArgumentException($"The special token '{special}' contains whitespace; special tokens are written one per line in vocab files, so use tokens without spaces or line breaks.", nameof(options));
            }
        }

        if (options.Kind == TokenizerKind.WordPiece)
        {
            var missing = BertSpecialTokens.Where(t => !specials.Contains(t, StringComparer.Ordinal)).ToList();
            if (missing.Count > 0)
            {
                throw new ArgumentException(
                    $"A WordPiece (BERT) tokenizer needs the special tokens {string.Join(" ", BertSpecialTokens)}; {string.Join(" ", missing)} missing from --special-tokens. Add them (extra tokens may follow).",
                    nameof(options));
            }

            return new BpeTrainerOptions
            {
                VocabSize = options.VocabSize,
                MinFrequency = options.MinFrequency,
                SpecialTokens = specials,
                LimitAlphabet = options.LimitAlphabet,
                ContinuingSubwordPrefix = WordPiecePrefix,
            };
        }

        if (options.LimitAlphabet is < 256)
        {
            throw new ArgumentException($"Byte-level BPE needs all 256 byte symbols in its alphabet (it has no unknown token); --limit-alphabet {options.LimitAlphabet} would drop some. Leave --limit-alphabet out.", nameof(options));
        }

        if (specials.Count == 0)
        {
            throw new ArgumentException($"Byte-level BPE needs an end-of-text token (GPT-2's bos, eos and unk); pass --special-tokens {ByteLevelBpeOptions.Gpt2EndOfText} (the default).", nameof(options));
        }

        return new BpeTrainerOptions
        {
            VocabSize = options.VocabSize,
            MinFrequency = options.MinFrequency,
            SpecialTokens = specials,
            LimitAlphabet = options.LimitAlphabet,
            InitialAlphabet = ByteAlphabet,
        };
    }

    /// <summary>All 256 byte symbols of GPT-2's byte-to-unicode table.</summary>
    internal static IReadOnlyList<Rune> ByteAlphabet { get; } = BytePairMerger.ByteToChar.Select(c => new Rune(c)).ToArray();

    /// <summary>GPT-2's pre-tokens of a line, each as its UTF-8 bytes mapped to the byte symbols ("Ġworld").</summary>
    internal static IEnumerable<string> ByteLevelWords(string line)
    {
        var table = BytePairMerger.ByteToChar;
        var words = new List<string>();
        var chars = new StringBuilder();
        foreach (var span in Gpt2PreTokenizer.Split(line))
        {
            var bytes = Encoding.UTF8.GetBytes(line, span.Start, span.Length);
            chars.Clear();
            foreach (var b in bytes)
            {
                chars.Append(table[b]);
            }

            words.Add(chars.ToString());
        }

        return words;
    }
}
