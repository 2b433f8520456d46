using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Sharpformer.Text.Training;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer train-tokenizer wordpiece|bpe --data &lt;files…&gt; --vocab-size N --out &lt;folder&gt;</c>: trains a BERT
/// WordPiece or a GPT-2 byte-level BPE tokenizer on text files, as HF <c>tokenizers</c> does, and writes the files our
/// loaders and HF read (docs/tokenizers-training.md).
/// </summary>
internal static class TrainTokenizerCommand
{
    public static Command Create()
    {
        var command = new Command("train-tokenizer", "Train a tokenizer on text files: WordPiece (BERT) or byte-level BPE (GPT-2), as Hugging Face tokenizers trains them.");
        command.Subcommands.Add(Kind("wordpiece", "WordPiece (BERT): BertNormalizer + BertPreTokenizer, ## continuations; writes vocab.txt, tokenizer_config.json, special_tokens_map.json, tokenizer.json.", TokenizerKind.WordPiece));
        command.Subcommands.Add(Kind("bpe", "Byte-level BPE (GPT-2): the GPT-2 pre-tokenizer over UTF-8 bytes, all 256 bytes in the alphabet; writes vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json, tokenizer.json.", TokenizerKind.ByteLevelBpe));
        return command;
    }

    private static Command Kind(string name, string description, TokenizerKind kind)
    {
        var wordPiece = kind == TokenizerKind.WordPiece;
        var data = new Option<string[]>("--data")
        {
            Description = "Training text: UTF-8 files (read line by line), or folders (their *.txt files, recursively).",
            Required = true,
            AllowMultipleArgumentsPerToken = true,
        };
        var vocabSize = new Option<int>("--vocab-size") { Description = "Vocabulary size to reach: special tokens + alphabet + merges.", DefaultValueFactory = _ => 30000 };
        var output = new Option<string>("--out") { Description = "Output folder for the tokenizer files (created if missing).", Required = true };
        var minFrequency = new Option<long>("--min-frequency") { Description = "Merge only pairs seen at least this often.", DefaultValueFactory = _ => 2 };
        var specials = new Option<string[]?>("--special-tokens")
        {
            Description = wordPiece ? "Special tokens, given the first ids (default: [PAD] [UNK] [CLS] [SEP] [MASK])." : "Special tokens, given the first ids; the first is bos/eos/unk (default: <|endoftext|>).",
            AllowMultipleArgumentsPerToken = true,
        };
        var limitAlphabet = new Option<int?>("--limit-alphabet")
        {
            Description = wordPiece ? "Keep the N most frequent characters in the alphabet (default 1000, as HF's BertWordPieceTokenizer)." : "Keep at most N alphabet symbols (at least 256: all bytes; default: no limit).",
        };
        var noLowercase = new Option<bool>("--no-lowercase") { Description = "WordPiece: keep case and accents (a cased vocabulary, like bert-base-cased)." };
        var maxLength = new Option<int?>("--model-max-length") { Description = "model_max_length for tokenizer_config.json (the model's position limit, e.g. 512)." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace tokenizer files already in --out." };
        var command = new Command(name, description) { data, vocabSize, output, minFrequency, specials, limitAlphabet, maxLength, overwrite };
        if (wordPiece)
        {
            command.Options.Add(noLowercase);
        }

        command.SetAction((parse, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var stdout = parse.InvocationConfiguration.Output;
            return PipelineVerbs.GuardAsync("train-tokenizer " + name, error, () =>
            {
                var options = new TokenizerTrainingOptions
                {
                    Kind = kind,
                    VocabSize = parse.GetValue(vocabSize),
                    MinFrequency = parse.GetValue(minFrequency),
                    SpecialTokens = parse.GetValue(specials) is { Length: > 0 } given ? given : null,
                    LimitAlphabet = parse.GetValue(limitAlphabet) ?? (wordPiece ? 1000 : null),
                    Lowercase = !parse.GetValue(noLowercase),
                    ModelMaxLength = parse.GetValue(maxLength),
                };
                return Task.FromResult(Run(parse.GetValue(data)!, options, parse.GetValue(output)!, parse.GetValue(overwrite), stdout, error, ct));
            });
        });
        return command;
    }

    internal static int Run(IReadOnlyList<string> data, TokenizerTrainingOptions options, string output, bool overwrite, TextWriter stdout, TextWriter error, CancellationToken ct)
    {
        if (options.VocabSize < 1)
        {
            throw new ArgumentException($"--vocab-size must be positive (got {options.VocabSize}).");
        }

        if (options.MinFrequency < 0)
        {
            throw new ArgumentException($"--min-frequency must be 0 or more (got {options.MinFrequency}).");
        }

        var existing = TrainedTokenizer.FileNames(options.Kind).Where(f => File.Exists(Path.Combine(output, f))).ToList();
        if (existing.Count > 0 && !overwrite)
        {
            throw new ArgumentException($"'{output}' already holds {string.Join(", ", existing)}; pass --overwrite to replace them, or choose another --out.");
        }

        var files = ExpandData(data);
        var clock = Stopwatch.StartNew();
        var progress = new ProgressLines(error);
        var trained = TokenizerTrainer.Train(files, options, progress, ct);
        progress.Finish();
        var written = trained.Save(output);
        var result = trained.Result;
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"trained {(options.Kind == TokenizerKind.WordPiece ? "WordPiece" : "byte-level BPE")} on {files.Count} file(s): {trained.TotalWords:N0} words ({trained.DistinctWords:N0} distinct), alphabet {result.Alphabet.Count}, {result.Merges.Count:N0} merges, vocabulary {result.Vocabulary.Count:N0} in {clock.Elapsed.TotalSeconds:F1} s"));
        if (result.Vocabulary.Count < options.VocabSize)
        {
            stdout.WriteLine($"note: the vocabulary stopped at {result.Vocabulary.Count:N0} of {options.VocabSize:N0}: no pair is left with at least --min-frequency {options.MinFrequency} occurrences (more text or a lower --min-frequency gives more).");
        }

        stdout.WriteLine($"wrote {string.Join(", ", written.Select(Path.GetFileName))} to {output}");
        return 0;
    }

    /// <summary>Files as given; a folder becomes its *.txt files (recursively, in ordinal order, so runs are repeatable).</summary>
    internal static List<string> ExpandData(IReadOnlyList<string> data)
    {
        var files = new List<string>();
        foreach (var item in data)
        {
            if (Directory.Exists(item))
            {
                var found = Directory.GetFiles(item, "*.txt", SearchOption.AllDirectories).ToList();
                found.Sort(StringComparer.Ordinal);
                if (found.Count == 0)
                {
                    throw new FileNotFoundException($"--data folder '{item}' holds no .txt files; pass text files or a folder of .txt files.");
                }

                files.AddRange(found);
            }
            else
            {
                files.Add(item);
            }
        }

        if (files.Count == 0)
        {
            throw new ArgumentException("--data names no files; pass at least one text file.");
        }

        return files;
    }

    /// <summary>Progress on stderr, rewritten in place on a terminal and one line a second otherwise.</summary>
    private sealed class ProgressLines(TextWriter error) : IProgress<TokenizerTrainingProgress>
    {
        private readonly bool _terminal = !Console.IsErrorRedirected;
        private bool _open;

        public void Report(TokenizerTrainingProgress value)
        {
            var line = value.Stage == "reading"
                ? string.Create(CultureInfo.InvariantCulture, $"reading: {value.Done / 1e6:F1}/{value.Total / 1e6:F1} MB ({100.0 * value.Done / Math.Max(1, value.Total):F0} %)")
                : string.Create(CultureInfo.InvariantCulture, $"{value.Stage}: {value.Done:N0} merges (at most {value.Total:N0})");
            if (_terminal)
            {
                error.Write("\r" + line.PadRight(60));
                _open = true;
            }
            else
            {
                error.WriteLine(line);
            }
        }

        public void Finish()
        {
            if (_open)
            {
                error.WriteLine();
                _open = false;
            }
        }
    }
}
