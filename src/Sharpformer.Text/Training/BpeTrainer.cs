using System.Text;

namespace Sharpformer.Text.Training;

/// <summary>Settings of <see cref="BpeTrainer"/>; the names and defaults are those of HF <c>tokenizers</c>' <c>BpeTrainer</c>.</summary>
public sealed record BpeTrainerOptions
{
    /// <summary>Stop merging once the vocabulary (special tokens, alphabet, continuations and merges) has this many entries.</summary>
    public int VocabSize { get; init; } = 30000;

    /// <summary>A pair seen fewer times than this (counted over the whole corpus) is never merged; training stops there.</summary>
    public long MinFrequency { get; init; }

    /// <summary>Tokens given the first ids, in this order (e.g. [PAD] [UNK] [CLS] [SEP] [MASK]); never split or merged.</summary>
    public IReadOnlyList<string> SpecialTokens { get; init; } = [];

    /// <summary>Keep at most this many characters in the alphabet (the most frequent; <see cref="InitialAlphabet"/> first); characters dropped are skipped in words.</summary>
    public int? LimitAlphabet { get; init; }

    /// <summary>Characters always in the alphabet even when the corpus lacks them (byte-level BPE: all 256 byte symbols).</summary>
    public IReadOnlyList<Rune> InitialAlphabet { get; init; } = [];

    /// <summary>Prefix of every symbol that continues a word (WordPiece's <c>##</c>); null for plain BPE.</summary>
    public string? ContinuingSubwordPrefix { get; init; }
}

/// <summary>What <see cref="BpeTrainer.Train"/> learned.</summary>
/// <param name="Vocabulary">The tokens by id: special tokens, then the alphabet in code-point order, then continuation symbols and merge results in the order they appeared.</param>
/// <param name="Merges">The merges in the order learned (the first has the highest priority), as the two token strings merged.</param>
/// <param name="Alphabet">The alphabet after <see cref="BpeTrainerOptions.LimitAlphabet"/>, in code-point order.</param>
public sealed record BpeTrainingResult(IReadOnlyList<string> Vocabulary, IReadOnlyList<(string Left, string Right)> Merges, IReadOnlyList<Rune> Alphabet);

/// <summary>Progress of a training run, for a progress line.</summary>
/// <param name="Stage">"reading", "counting pairs" or "merging".</param>
/// <param name="Done">Bytes read, or merges done.</param>
/// <param name="Total">Total bytes, or the most merges the vocabulary size allows.</param>
public readonly record struct TokenizerTrainingProgress(string Stage, long Done, long Total);

/// <summary>
/// Byte-pair-encoding training over word counts, as HF <c>tokenizers</c>' <c>BpeTrainer</c> does it (the WordPiece
/// trainer is this with the <c>##</c> continuing-subword prefix): special tokens first, then the alphabet (limited to
/// the most frequent characters), every word split into its characters (continuation characters prefixed), the count
/// of every adjacent pair weighted by word count, and then, until the vocabulary is full, the most frequent pair is
/// merged everywhere. Ties go to the pair whose (left id, right id) is smallest, as in HF.
/// </summary>
/// <remarks>
/// Pair counts are updated incrementally: merging a pair in a word changes only the pairs next to each occurrence, so
/// each merge visits only the words that hold the pair (an index pair → words) and adjusts those counts. The most
/// frequent pair comes from a priority queue whose stale entries are corrected when they reach the top (HF's lazy
/// scheme), so a merge costs O(occurrences · log pairs) instead of a recount of the corpus.
/// Two choices differ from HF where HF is not deterministic: words are visited in ordinal order (HF: hash order, which
/// decides the ids of continuation symbols), and when <see cref="BpeTrainerOptions.LimitAlphabet"/> drops one of
/// several characters of equal count, the larger code point goes first. And a pair is merged in every word that holds
/// it at once (HF can split this over two queue entries when two different merges produce the same token).
/// </remarks>
public static class BpeTrainer
{
    /// <summary>Learns a vocabulary and merges from <paramref name="wordCounts"/> (pre-tokenized word → occurrences).</summary>
    /// <param name="wordCounts">Each pre-tokenized word and how often it occurs; counts must be positive.</param>
    /// <param name="options">Vocabulary size, minimum frequency, special tokens, alphabet settings.</param>
    /// <param name="progress">Receives "merging" progress now and then; may be null.</param>
    /// <param name="cancellationToken">Stops between merges.</param>
    /// <exception cref="ArgumentException">The options are inconsistent, or the vocabulary size cannot hold the special tokens and the alphabet.</exception>
    /// <exception cref="InvalidDataException">There are no words to learn from.</exception>
    public static BpeTrainingResult Train(
        IReadOnlyDictionary<string, long> wordCounts,
        BpeTrainerOptions options,
        IProgress<TokenizerTrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(wordCounts);
        ArgumentNullException.ThrowIfNull(options);
        Validate(options);
        if (wordCounts.Count == 0)
        {
            throw new InvalidDataException("There are no words to train a tokenizer on: the training text is empty (or only whitespace). Pass files with text.");
        }

        var vocab = new Vocabulary();
        foreach (var special in options.SpecialTokens)
        {
            vocab.GetOrAdd(special);
        }

        // Words in ordinal order: the one source of order below (ids of continuation symbols, word indices).
        var sortedWords = new List<KeyValuePair<string, long>>(wordCounts);
        sortedWords.Sort((x, y) => string.CompareOrdinal(x.Key, y.Key));

        var alphabet = ComputeAlphabet(sortedWords, options);
        foreach (var rune in alphabet)
        {
            vocab.GetOrAdd(rune.ToString());
        }

        var (words, counts) = SplitWords(sortedWords, vocab, options.ContinuingSubwordPrefix);
        var initialSize = vocab.Count;
        if (options.VocabSize < initialSize)
        {
            var continuations = initialSize - vocab.SpecialAndAlphabetCount(options.SpecialTokens.Count, alphabet.Count);
            throw new ArgumentException(
                $"The vocabulary size {options.VocabSize} is smaller than the vocabulary before any merge: {options.SpecialTokens.Count} special tokens + {alphabet.Count} alphabet characters"
                + (continuations > 0 ? $" + {continuations} '{options.ContinuingSubwordPrefix}' continuation symbols" : "")
                + $" = {initialSize}. Raise the vocabulary size (--vocab-size) or lower the alphabet (--limit-alphabet).",
                nameof(options));
        }

        var merges = new List<(string, string)>();
        new MergeLoop(words, counts, vocab, options).Run(merges, progress, cancellationToken);
        return new BpeTrainingResult(vocab.Tokens, merges, alphabet);
    }

    private static void Validate(BpeTrainerOptions options)
    {
        if (options.VocabSize < 1)
        {
            throw new ArgumentException($"The vocabulary size must be at least 1 (got {options.VocabSize}).", nameof(options));
        }

        if (options.MinFrequency < 0)
        {
            throw new ArgumentException($"The minimum frequency must be 0 or more (got {options.MinFrequency}).", nameof(options));
        }

        if (options.LimitAlphabet is < 1)
        {
            throw new ArgumentException($"The alphabet limit must be at least 1 (got {options.LimitAlphabet}); leave it unset for no limit.", nameof(options));
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var special in options.SpecialTokens)
        {
            if (string.IsNullOrEmpty(special))
            {
                throw new ArgumentException("A special token is empty; give each special token some text (e.g. [PAD]).", nameof(options));
            }

            if (!seen.Add(special))
            {
                throw new ArgumentException($"The special token '{special}' is listed twice; list each once.", nameof(options));
            }
        }

        if (options.ContinuingSubwordPrefix is { Length: 0 })
        {
            throw new ArgumentException("The continuing-subword prefix is empty; use null for plain BPE or a prefix such as ##.", nameof(options));
        }
    }

    /// <summary>The alphabet: every character weighted by word count, the initial alphabet always in, then limited, in code-point order.</summary>
    private static List<Rune> ComputeAlphabet(List<KeyValuePair<string, long>> words, BpeTrainerOptions options)
    {
        var frequency = new Dictionary<int, long>();
        foreach (var (word, count) in words)
        {
            if (count < 1)
            {
                throw new ArgumentException($"The word '{word}' has count {count}; word counts must be positive.", nameof(words));
            }

            foreach (var rune in word.EnumerateRunes())
            {
                frequency[rune.Value] = SaturatingAdd(frequency.GetValueOrDefault(rune.Value), count);
            }
        }

        foreach (var rune in options.InitialAlphabet)
        {
            frequency[rune.Value] = long.MaxValue;
        }

        var kept = frequency.ToList();
        if (options.LimitAlphabet is { } limit && kept.Count > limit)
        {
            // Drop the rarest first; among equal counts the larger code point first (HF leaves this order open).
            kept.Sort((x, y) => x.Value != y.Value ? x.Value.CompareTo(y.Value) : y.Key.CompareTo(x.Key));
            kept.RemoveRange(0, kept.Count - limit);
        }

        var alphabet = kept.Select(p => new Rune(p.Key)).ToList();
        alphabet.Sort((x, y) => x.Value.CompareTo(y.Value));
        return alphabet;
    }

    private static long SaturatingAdd(long a, long b) => a > long.MaxValue - b ? long.MaxValue : a + b;

    /// <summary>Each word as symbol ids: its characters that are in the vocabulary, the non-first ones with the continuation prefix.</summary>
    private static (int[][] Words, long[] Counts) SplitWords(List<KeyValuePair<string, long>> sortedWords, Vocabulary vocab, string? prefix)
    {
        var words = new int[sortedWords.Count][];
        var counts = new long[sortedWords.Count];
        var symbols = new List<int>();
        for (var w = 0; w < sortedWords.Count; w++)
        {
            var (word, count) = sortedWords[w];
            symbols.Clear();
            var first = true;
            foreach (var rune in word.EnumerateRunes())
            {
                var symbol = rune.ToString();
                if (vocab.Contains(symbol))
                {
                    if (!first && prefix is not null)
                    {
                        symbol = prefix + symbol;
                    }

                    symbols.Add(vocab.GetOrAdd(symbol));
                }

                first = false;
            }

            words[w] = symbols.ToArray();
            counts[w] = count;
        }

        return (words, counts);
    }

    /// <summary>Token strings and ids, ids in insertion order.</summary>
    private sealed class Vocabulary
    {
        private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);

        public List<string> Tokens { get; } = [];

        public int Count => Tokens.Count;

        public bool Contains(string token) => _ids.ContainsKey(token);

        public int GetOrAdd(string token)
        {
            if (!_ids.TryGetValue(token, out var id))
            {
                id = Tokens.Count;
                Tokens.Add(token);
                _ids.Add(token, id);
            }

            return id;
        }

        /// <summary>Special tokens plus alphabet entries actually added (a one-character special token is both).</summary>
        public int SpecialAndAlphabetCount(int specials, int alphabet) => Math.Min(Count, specials + alphabet);
    }

    /// <summary>The merge loop: pair counts, the words each pair occurs in, and the priority queue.</summary>
    private sealed class MergeLoop
    {
        private readonly int[][] _words;
        private readonly int[] _lengths;
        private readonly long[] _counts;
        private readonly Vocabulary _vocab;
        private readonly BpeTrainerOptions _options;
        private readonly Dictionary<long, long> _pairCounts = [];
        private readonly Dictionary<long, List<int>> _where = [];

        // Highest count first, then the smallest (left, right); a packed pair orders as (left, right) does.
        private readonly PriorityQueue<long, (long NegativeCount, long Pair)> _queue = new();

        public MergeLoop(int[][] words, long[] counts, Vocabulary vocab, BpeTrainerOptions options)
        {
            _words = words;
            _counts = counts;
            _vocab = vocab;
            _options = options;
            _lengths = new int[words.Length];
            for (var w = 0; w < words.Length; w++)
            {
                _lengths[w] = words[w].Length;
                for (var i = 0; i + 1 < _lengths[w]; i++)
                {
                    var pair = Pack(words[w][i], words[w][i + 1]);
                    _pairCounts[pair] = _pairCounts.GetValueOrDefault(pair) + counts[w];
                    AddOccurrence(pair, w);
                }
            }

            foreach (var (pair, count) in _pairCounts)
            {
                _queue.Enqueue(pair, (-count, pair));
            }
        }

        private static long Pack(int left, int right) => ((long)left << 32) | (uint)right;

        private static int Left(long pair) => (int)(pair >> 32);

        private static int Right(long pair) => (int)(pair & 0xFFFFFFFF);

        private void AddOccurrence(long pair, int word)
        {
            if (!_where.TryGetValue(pair, out var list))
            {
                list = [];
                _where.Add(pair, list);
            }

            if (list.Count == 0 || list[^1] != word)
            {
                list.Add(word);
            }
        }

        public void Run(List<(string, string)> merges, IProgress<TokenizerTrainingProgress>? progress, CancellationToken cancellationToken)
        {
            var maxMerges = Math.Max(0, _options.VocabSize - _vocab.Count);
            var visited = new int[_words.Length];
            var stamp = 0;
            var increased = new HashSet<long>();
            var lastReport = Environment.TickCount64;
            var prefix = _options.ContinuingSubwordPrefix;
            while (_vocab.Count < _options.VocabSize && _queue.TryDequeue(out var pair, out var priority))
            {
                var count = -priority.NegativeCount;
                var current = _pairCounts.GetValueOrDefault(pair);
                if (count != current)
                {
                    // A stale entry: its count changed since it was queued. Queue the current count (if any) and look again.
                    if (current > 0)
                    {
                        _queue.Enqueue(pair, (-current, pair));
                    }

                    continue;
                }

                if (count < 1 || count < _options.MinFrequency)
                {
                    break;
                }

                cancellationToken.ThrowIfCancellationRequested();
                var left = _vocab.Tokens[Left(pair)];
                var right = _vocab.Tokens[Right(pair)];
                var rightPart = prefix is not null && right.StartsWith(prefix, StringComparison.Ordinal) ? right[prefix.Length..] : right;
                var merged = _vocab.GetOrAdd(left + rightPart);
                merges.Add((left, right));

                stamp++;
                increased.Clear();
                var occurrences = _where[pair];
                _where.Remove(pair);
                foreach (var w in occurrences)
                {
                    if (visited[w] == stamp)
                    {
                        continue;
                    }

                    visited[w] = stamp;
                    MergeInWord(w, Left(pair), Right(pair), merged, increased);
                }

                _pairCounts.Remove(pair);
                foreach (var changed in increased)
                {
                    var total = _pairCounts.GetValueOrDefault(changed);
                    if (total > 0)
                    {
                        _queue.Enqueue(changed, (-total, changed));
                    }
                }

                if (progress is not null && Environment.TickCount64 - lastReport >= 1000)
                {
                    lastReport = Environment.TickCount64;
                    progress.Report(new TokenizerTrainingProgress("merging", merges.Count, maxMerges));
                }
            }

            progress?.Report(new TokenizerTrainingProgress("merging", merges.Count, maxMerges));
        }

        /// <summary>HF's <c>Word::merge</c>: every (a, b) left to right becomes the merged symbol; the neighbouring pairs' counts move.</summary>
        private void MergeInWord(int w, int a, int b, int merged, HashSet<long> increased)
        {
            var symbols = _words[w];
            var length = _lengths[w];
            var count = _counts[w];
            var output = 0;
            var i = 0;
            while (i < length)
            {
                if (symbols[i] == a && i + 1 < length && symbols[i + 1] == b)
                {
                    // The pair before: (previous, a) → (previous, merged). symbols[output - 1] is the previous symbol as now written.
                    if (output > 0)
                    {
                        Change(Pack(symbols[output - 1], a), -count);
                        Change(Pack(symbols[output - 1], merged), count);
                        increased.Add(Pack(symbols[output - 1], merged));
                        AddOccurrence(Pack(symbols[output - 1], merged), w);
                    }

                    // The pair after: (b, next) → (merged, next).
                    if (i + 2 < length)
                    {
                        var next = symbols[i + 2];
                        Change(Pack(b, next), -count);
                        Change(Pack(merged, next), count);
                        increased.Add(Pack(merged, next));
                        AddOccurrence(Pack(merged, next), w);
                    }

                    symbols[output++] = merged;
                    i += 2;
                }
                else
                {
                    symbols[output++] = symbols[i];
                    i++;
                }
            }

            _lengths[w] = output;
        }

        private void Change(long pair, long delta)
        {
            var value = _pairCounts.GetValueOrDefault(pair) + delta;
            _pairCounts[pair] = value;
        }
    }
}
