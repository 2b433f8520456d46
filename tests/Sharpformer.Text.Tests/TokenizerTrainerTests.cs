using System.Text;
using Sharpformer.Text.Training;
using HfTokenizer = Tokenizers.DotNet.Tokenizer;

namespace Sharpformer.Text.Tests;

/// <summary>
/// The tokenizer trainers: hand-computed merges on the HF course's corpus, the incremental merge loop against a
/// recount-every-merge reference, the written files loaded by AutoTokenizer and by HF's Rust tokenizers (same ids),
/// determinism, and the errors.
/// </summary>
public class TokenizerTrainerTests
{
    /// <summary>The HF course's BPE corpus (chapter 6.5): hug ×10, pug ×5, pun ×12, bun ×4, hugs ×5.</summary>
    private static readonly Dictionary<string, long> CourseCounts = new(StringComparer.Ordinal)
    {
        ["hug"] = 10,
        ["pug"] = 5,
        ["pun"] = 12,
        ["bun"] = 4,
        ["hugs"] = 5,
    };

    [Fact]
    public void Bpe_CourseCorpus_MergesAsComputedByHand()
    {
        var result = BpeTrainer.Train(CourseCounts, new BpeTrainerOptions { VocabSize = 100 });

        // Alphabet in code-point order: b g h n p s u. Pair counts: u g 20 (hug 10 + pug 5 + hugs 5), u n 16, h ug 15
        // (after the first merge), then p un 12; p ug and hug s tie at 5 and the smaller ids (p=4, ug=7) go first;
        // b un 4 last. Nothing is left to merge after that.
        Assert.Equal(["b", "g", "h", "n", "p", "s", "u", "ug", "un", "hug", "pun", "pug", "hugs", "bun"], result.Vocabulary);
        Assert.Equal([("u", "g"), ("u", "n"), ("h", "ug"), ("p", "un"), ("p", "ug"), ("hug", "s"), ("b", "un")], result.Merges);
    }

    [Fact]
    public void Bpe_HuggingFaceTrainerUnitTestCorpus_SameVocabularyAndMerges()
    {
        // The word counts and the expected result of HF tokenizers' own BpeTrainer unit test (bpe/trainer.rs, test_train):
        // min_frequency 2 leaves three merges, 'r'+'e', 'a'+'re' (tie with 'i'+'s' at 2, smaller ids first), 'i'+'s'.
        var counts = new Dictionary<string, long>(StringComparer.Ordinal)
        {
            ["roses"] = 1,
            ["are"] = 2,
            ["red"] = 1,
            ["voilets"] = 1,
            ["blue"] = 1,
            ["BERT"] = 1,
            ["is"] = 2,
            ["big"] = 1,
            ["and"] = 1,
            ["so"] = 1,
            ["GPT-2"] = 1,
        };
        var result = BpeTrainer.Train(counts, new BpeTrainerOptions { MinFrequency = 2 });
        string[] expected =
        [
            "-", "2", "B", "E", "G", "P", "R", "T", "a", "b", "d", "e", "g", "i", "l", "n", "o", "r", "s", "t", "u", "v",
            "re", "are", "is",
        ];
        Assert.Equal(expected, result.Vocabulary);
        Assert.Equal([("r", "e"), ("a", "re"), ("i", "s")], result.Merges);
    }

    [Fact]
    public void Bpe_MinFrequencyAndVocabSize_StopMerging()
    {
        var byFrequency = BpeTrainer.Train(CourseCounts, new BpeTrainerOptions { VocabSize = 100, MinFrequency = 5 });
        Assert.Equal(6, byFrequency.Merges.Count); // b un (4) is below 5
        Assert.DoesNotContain("bun", byFrequency.Vocabulary);

        var bySize = BpeTrainer.Train(CourseCounts, new BpeTrainerOptions { VocabSize = 10 });
        Assert.Equal(10, bySize.Vocabulary.Count);
        Assert.Equal([("u", "g"), ("u", "n"), ("h", "ug")], bySize.Merges);
    }

    [Fact]
    public void WordPiece_CourseCorpus_SpecialsFirstThenAlphabetThenContinuations()
    {
        var result = BpeTrainer.Train(CourseCounts, new BpeTrainerOptions
        {
            VocabSize = 100,
            SpecialTokens = TokenizerTrainer.BertSpecialTokens,
            ContinuingSubwordPrefix = "##",
        });

        // Continuations get ids in the (ordinal) order of the words: bun → ##u ##n, hug → ##g, hugs → ##s.
        string[] expected =
        [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "b", "g", "h", "n", "p", "s", "u", "##u", "##n", "##g", "##s",
            "##ug", "##un", "hug", "pun", "pug", "hugs", "bun",
        ];
        Assert.Equal(expected, result.Vocabulary);
        Assert.Equal(("##u", "##g"), result.Merges[0]);
        Assert.Equal(("h", "##ug"), result.Merges[2]);
    }

    [Fact]
    public void WordPiece_FromFiles_NormalizesCountsAndMatchesCourse()
    {
        var dir = TestData.NewFolder("train-course");
        var file = Path.Combine(dir, "course.txt");
        var text = new StringBuilder();
        foreach (var (word, count) in CourseCounts)
        {
            for (var i = 0; i < count; i++)
            {
                // Upper case and punctuation: the BERT normalizer lowercases, the pre-tokenizer splits "!" off.
                text.Append(i % 2 == 0 ? word.ToUpperInvariant() : word).Append(i % 3 == 0 ? "!\n" : " ");
            }

            text.Append('\n');
        }

        File.WriteAllText(file, text.ToString());
        var trained = TokenizerTrainer.Train([file], new TokenizerTrainingOptions { VocabSize = 100, MinFrequency = 0 });
        Assert.Equal(CourseCounts.Values.Sum() + CourseCounts.Values.Sum(c => (c + 2) / 3), trained.TotalWords);
        Assert.Contains("!", trained.Result.Vocabulary);
        Assert.Equal(("##u", "##g"), trained.Result.Merges[0]);
        Assert.Equal(("##u", "##n"), trained.Result.Merges[1]);
        Assert.Equal(("h", "##ug"), trained.Result.Merges[2]);
    }

    [Fact]
    public void ByteLevel_SmallText_ByteAlphabetAndFirstMerges()
    {
        var dir = TestData.NewFolder("train-bytes");
        var file = Path.Combine(dir, "ab.txt");
        File.WriteAllText(file, "ab ab ab\n");
        var trained = TokenizerTrainer.Train([file], new TokenizerTrainingOptions { Kind = TokenizerKind.ByteLevelBpe, VocabSize = 1000, MinFrequency = 0 });
        var vocab = trained.Result.Vocabulary;

        // Words: "ab" ×1, "Ġab" ×2, "Ċ" ×1 (the line keeps its newline, as HF feeds lines). a b: 3, then Ġ ab: 2.
        Assert.Equal("<|endoftext|>", vocab[0]);
        Assert.Equal(1 + 256 + 2, vocab.Count);
        var byteSymbols = TestData.ByteToChar().Select(c => c.ToString()).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(byteSymbols, vocab.Skip(1).Take(256));
        Assert.Equal([("a", "b"), ("Ġ", "ab")], trained.Result.Merges);
    }

    [Fact]
    public void MergeLoop_AgainstRecountEveryMerge_SameMerges()
    {
        // Words of the tricky corpus (many scripts, repeats) plus overlapping runs ("aaaa") that stress Word::merge.
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var text in TestData.Corpus.Concat(["aaaa aaa aa a abab ababab baba", "the then there these those other"]))
        {
            foreach (var word in text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
            {
                counts[word] = counts.GetValueOrDefault(word) + 1 + (word.Length % 3);
            }
        }

        foreach (var prefix in new[] { null, "##" })
        {
            var options = new BpeTrainerOptions { VocabSize = 1500, ContinuingSubwordPrefix = prefix, SpecialTokens = ["[UNK]"] };
            var fast = BpeTrainer.Train(counts, options);
            var reference = ReferenceBpe(counts, options);
            Assert.True(fast.Merges.Count > 200, $"only {fast.Merges.Count} merges: the corpus is too small to test the loop");
            Assert.Equal(reference.Merges, fast.Merges);
            Assert.Equal(reference.Vocabulary, fast.Vocabulary);
        }
    }

    /// <summary>The same rule written the slow way: recount every pair of every word before each merge.</summary>
    private static (List<string> Vocabulary, List<(string, string)> Merges) ReferenceBpe(Dictionary<string, long> counts, BpeTrainerOptions options)
    {
        var first = BpeTrainer.Train(counts, options with { VocabSize = int.MaxValue, MinFrequency = long.MaxValue });
        var vocab = first.Vocabulary.ToList(); // specials, alphabet and continuations: no merge passes MinFrequency = max
        var ids = vocab.Select((t, i) => (t, i)).ToDictionary(x => x.t, x => x.i, StringComparer.Ordinal);
        var words = new List<(List<int> Symbols, long Count)>();
        foreach (var (word, count) in counts.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var symbols = new List<int>();
            var runes = word.EnumerateRunes().ToList();
            for (var i = 0; i < runes.Count; i++)
            {
                if (ids.ContainsKey(runes[i].ToString()))
                {
                    symbols.Add(ids[(i > 0 && options.ContinuingSubwordPrefix is { } p ? p : "") + runes[i]]);
                }
            }

            words.Add((symbols, count));
        }

        var merges = new List<(string, string)>();
        while (vocab.Count < options.VocabSize)
        {
            var pairCounts = new Dictionary<(int, int), long>();
            foreach (var (symbols, count) in words)
            {
                for (var i = 0; i + 1 < symbols.Count; i++)
                {
                    pairCounts[(symbols[i], symbols[i + 1])] = pairCounts.GetValueOrDefault((symbols[i], symbols[i + 1])) + count;
                }
            }

            if (pairCounts.Count == 0)
            {
                break;
            }

            var best = pairCounts.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key.Item1).ThenBy(kv => kv.Key.Item2).First();
            if (best.Value < Math.Max(1, options.MinFrequency))
            {
                break;
            }

            var (a, b) = best.Key;
            var right = vocab[b];
            if (options.ContinuingSubwordPrefix is { } prefix && right.StartsWith(prefix, StringComparison.Ordinal))
            {
                right = right[prefix.Length..];
            }

            var token = vocab[a] + right;
            if (!ids.TryGetValue(token, out var merged))
            {
                merged = vocab.Count;
                vocab.Add(token);
                ids[token] = merged;
            }

            merges.Add((vocab[a], vocab[b]));
            foreach (var (symbols, _) in words)
            {
                for (var i = 0; i + 1 < symbols.Count; i++)
                {
                    if (symbols[i] == a && symbols[i + 1] == b)
                    {
                        symbols[i] = merged;
                        symbols.RemoveAt(i + 1);
                    }
                }
            }
        }

        return (vocab, merges);
    }

    public static TheoryData<TokenizerKind> Kinds => new() { TokenizerKind.WordPiece, TokenizerKind.ByteLevelBpe };

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Saved_LoadedByOursAndHuggingFace_SameIds(TokenizerKind kind)
    {
        var dir = TestData.NewFolder("train-oracle");
        var trained = TrainOnCorpus(kind, dir, out _);
        var folder = Path.Combine(dir, "out");
        var written = trained.Save(folder);
        Assert.Equal(TrainedTokenizer.FileNames(kind), written.Select(Path.GetFileName));

        // tokenizer.json (what AutoTokenizer reads first), and the classic files alone (vocab.txt / vocab.json + merges.txt).
        var classic = Path.Combine(dir, "classic");
        Directory.CreateDirectory(classic);
        foreach (var name in TrainedTokenizer.FileNames(kind).Where(n => n != "tokenizer.json"))
        {
            File.Copy(Path.Combine(folder, name), Path.Combine(classic, name));
        }

        var fromJson = AutoTokenizer.FromPretrained(folder);
        var fromClassic = AutoTokenizer.FromPretrained(classic);
        Assert.Equal(trained.Result.Vocabulary.Count, fromJson.VocabularySize);
        var oracle = new HfTokenizer(Path.Combine(folder, "tokenizer.json"));
        var report = new StringBuilder();
        var texts = TestData.Corpus.Concat(["The heart is a [MASK] organ.", "Hello, world! <|endoftext|> Unseen: ☃ 漢字 😀"]).ToList();
        foreach (var text in texts)
        {
            var expected = oracle.Encode(text).Select(i => (int)i).ToArray();
            var json = fromJson.Encode(text).Ids.ToArray();
            var files = fromClassic.Encode(text).Ids.ToArray();
            if (!expected.SequenceEqual(json) || !expected.SequenceEqual(files))
            {
                report.AppendLine($"{text}: HF [{string.Join(",", expected)}] tokenizer.json [{string.Join(",", json)}] files [{string.Join(",", files)}]");
            }
        }

        Assert.True(report.Length == 0, report.ToString());
        if (kind == TokenizerKind.WordPiece)
        {
            var ids = fromJson.Encode("The heart is a [MASK] organ.").Ids;
            Assert.Equal(fromJson.TokenToId("[CLS]"), ids[0]);
            Assert.Contains(fromJson.TokenToId("[MASK]")!.Value, ids);
        }
    }

    private static TrainedTokenizer TrainOnCorpus(TokenizerKind kind, string dir, out string file)
    {
        file = Path.Combine(dir, "corpus.txt");
        if (!File.Exists(file))
        {
            var text = new StringBuilder();
            for (var repeat = 0; repeat < 3; repeat++)
            {
                foreach (var line in TestData.Corpus)
                {
                    text.Append(line.ReplaceLineEndings(" ")).Append('\n');
                }
            }

            File.WriteAllText(file, text.ToString());
        }

        return TokenizerTrainer.Train([file], new TokenizerTrainingOptions { Kind = kind, VocabSize = kind == TokenizerKind.WordPiece ? 800 : 700 });
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Save_SameCorpusTwice_ByteIdenticalFiles(TokenizerKind kind)
    {
        var dir = TestData.NewFolder("train-determinism");
        var first = Path.Combine(dir, "first");
        var second = Path.Combine(dir, "second");
        TrainOnCorpus(kind, dir, out _).Save(first);
        TrainOnCorpus(kind, dir, out _).Save(second);
        foreach (var name in TrainedTokenizer.FileNames(kind))
        {
            Assert.Equal(File.ReadAllBytes(Path.Combine(first, name)), File.ReadAllBytes(Path.Combine(second, name)));
        }
    }

    [Fact]
    public void Errors_SayWhatIsWrong()
    {
        var dir = TestData.NewFolder("train-errors");
        var empty = Path.Combine(dir, "empty.txt");
        File.WriteAllText(empty, "  \n\n");
        var missing = Path.Combine(dir, "missing.txt");
        var small = Path.Combine(dir, "small.txt");
        File.WriteAllText(small, "abcdefghij klmnopqrst\n");

        var noWords = Assert.Throws<InvalidDataException>(() => TokenizerTrainer.Train([empty], new TokenizerTrainingOptions()));
        Assert.Contains("no words", noWords.Message, StringComparison.Ordinal);

        var notFound = Assert.Throws<FileNotFoundException>(() => TokenizerTrainer.Train([small, missing], new TokenizerTrainingOptions()));
        Assert.Contains(missing, notFound.Message, StringComparison.Ordinal);

        Assert.Throws<ArgumentException>(() => TokenizerTrainer.Train(Array.Empty<string>(), new TokenizerTrainingOptions()));

        // 5 specials + 20 letters + 18 "##" continuations = 43 before any merge.
        var tooSmall = Assert.Throws<ArgumentException>(() => TokenizerTrainer.Train([small], new TokenizerTrainingOptions { VocabSize = 30 }));
        Assert.Contains("= 43", tooSmall.Message, StringComparison.Ordinal);
        Assert.Contains("--vocab-size", tooSmall.Message, StringComparison.Ordinal);

        var bytes = Assert.Throws<ArgumentException>(() => TokenizerTrainer.Train([small], new TokenizerTrainingOptions { Kind = TokenizerKind.ByteLevelBpe, VocabSize = 100 }));
        Assert.Contains("257", bytes.Message, StringComparison.Ordinal);

        Assert.Throws<ArgumentException>(() => TokenizerTrainer.Train([small], new TokenizerTrainingOptions { SpecialTokens = ["[PAD]", "[UNK]"] }));
        Assert.Throws<ArgumentException>(() => TokenizerTrainer.Train([small], new TokenizerTrainingOptions { Kind = TokenizerKind.ByteLevelBpe, LimitAlphabet = 100 }));
    }

    [Fact]
    public void LimitAlphabet_KeepsTheMostFrequentCharacters()
    {
        var counts = new Dictionary<string, long>(StringComparer.Ordinal) { ["aab"] = 10, ["c"] = 3, ["d"] = 1 };
        var result = BpeTrainer.Train(counts, new BpeTrainerOptions { VocabSize = 10, LimitAlphabet = 2 });

        // a 20, b 10, c 3, d 1: keep a and b; a word's characters outside the alphabet are skipped.
        Assert.Equal([new Rune('a'), new Rune('b')], result.Alphabet);
        Assert.Equal(["a", "b", "aa", "aab"], result.Vocabulary);
    }

    [Fact]
    public void WordCounter_LinesKeepTheirEndings()
    {
        var dir = TestData.NewFolder("train-endings");
        var file = Path.Combine(dir, "endings.txt");
        File.WriteAllText(file, "a\r\nb\nc");
        var lines = new List<string>();
        var counter = new WordCounter(line =>
        {
            lines.Add(line);
            return [];
        });
        counter.AddFiles([file]);
        Assert.Equal(["a\r\n", "b\n", "c"], lines);
    }

    [Fact]
    public void WordCounter_LongLineWithoutNewline_CutAtWhitespace()
    {
        var dir = TestData.NewFolder("train-long-line");
        var file = Path.Combine(dir, "long.txt");
        var words = WordCounter.MaxLineChars / 8 * 3;
        File.WriteAllText(file, string.Concat(Enumerable.Repeat("abcdefg ", words)));
        var counter = new WordCounter(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        counter.AddFiles([file]);
        Assert.Equal(words, counter.Counts["abcdefg"]);
        Assert.Single(counter.Counts);
    }
}
