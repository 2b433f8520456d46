using System.Text;

namespace Sharpformer.Text.Training;

/// <summary>
/// Streams text files line by line into a word → count dictionary through a pre-tokenizer, so the corpus is never
/// held as one string: memory grows with the number of distinct words, not with the corpus.
/// </summary>
/// <remarks>
/// Lines keep their line ending ("\n" or "\r\n"), as HF <c>tokenizers</c> feeds them to a trainer (it matters for
/// byte-level BPE, where a newline is a token). A line longer than <see cref="MaxLineChars"/> is cut at its last
/// whitespace before that length (or at the length when it has none), which bounds memory for files without newlines.
/// </remarks>
public sealed class WordCounter
{
    /// <summary>Lines longer than this many UTF-16 chars are cut into pieces of at most this length.</summary>
    public const int MaxLineChars = 1 << 20;

    private readonly Func<string, IEnumerable<string>> _preTokenize;

    /// <summary>Creates a counter that splits each line into words with <paramref name="preTokenize"/>.</summary>
    /// <param name="preTokenize">Normalizes and pre-tokenizes one line into the words the trainer counts.</param>
    public WordCounter(Func<string, IEnumerable<string>> preTokenize)
    {
        ArgumentNullException.ThrowIfNull(preTokenize);
        _preTokenize = preTokenize;
    }

    /// <summary>Each distinct word and how often it occurred.</summary>
    public Dictionary<string, long> Counts { get; } = new(StringComparer.Ordinal);

    /// <summary>Total words counted.</summary>
    public long TotalWords { get; private set; }

    /// <summary>Counts the words of one piece of text (one line, with its line ending if it has one).</summary>
    public void AddText(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        foreach (var word in _preTokenize(text))
        {
            if (word.Length == 0)
            {
                continue;
            }

            Counts[word] = Counts.GetValueOrDefault(word) + 1;
            TotalWords++;
        }
    }

    /// <summary>Counts the words of every file, line by line (UTF-8, a BOM honoured).</summary>
    /// <param name="files">Text files; each must exist and be readable.</param>
    /// <param name="progress">Receives "reading" progress (bytes read of the files' total) about once a second.</param>
    /// <param name="cancellationToken">Stops between lines.</param>
    /// <exception cref="ArgumentException">No files were given.</exception>
    /// <exception cref="FileNotFoundException">A file does not exist (the message names it).</exception>
    /// <exception cref="IOException">A file cannot be read (the message names it).</exception>
    public void AddFiles(IReadOnlyList<string> files, IProgress<TokenizerTrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(files);
        if (files.Count == 0)
        {
            throw new ArgumentException("No training files: pass at least one text file (--data <file>…).", nameof(files));
        }

        long total = 0;
        foreach (var file in files)
        {
            var info = new FileInfo(file);
            if (!info.Exists)
            {
                throw new FileNotFoundException(
                    Directory.Exists(file) ? $"Training data '{file}' is a folder; pass the text files in it (e.g. --data {Path.Combine(file, "*.txt")})." : $"Training data file '{file}' does not exist.",
                    file);
            }

            total += info.Length;
        }

        long doneBefore = 0;
        var lastReport = Environment.TickCount64;
        foreach (var file in files)
        {
            FileStream stream;
            try
            {
                stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new IOException($"Cannot read training data file '{file}': {e.Message}", e);
            }

            using (stream)
            using (var reader = new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16))
            {
                try
                {
                    var line = new StringBuilder();
                    var lines = new LineReader(reader);
                    while (lines.ReadLine(line))
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        AddText(line.ToString());
                        if (progress is not null && Environment.TickCount64 - lastReport >= 1000)
                        {
                            lastReport = Environment.TickCount64;
                            progress.Report(new TokenizerTrainingProgress("reading", doneBefore + stream.Position, total));
                        }
                    }
                }
                catch (IOException e)
                {
                    throw new IOException($"Cannot read training data file '{file}': {e.Message}", e);
                }

                doneBefore += stream.Length;
            }
        }

        progress?.Report(new TokenizerTrainingProgress("reading", doneBefore, total));
    }

    /// <summary>Lines with their endings; an over-long line ends after its last whitespace and the rest starts the next line.</summary>
    private sealed class LineReader(StreamReader reader)
    {
        private string _carry = "";

        /// <summary>Reads the next line with its ending into <paramref name="line"/>; false at the end of the text.</summary>
        public bool ReadLine(StringBuilder line)
        {
            line.Clear();
            line.Append(_carry);
            _carry = "";
            if (line.Length > 0 && line[^1] == '\n')
            {
                return true;
            }

            while (true)
            {
                var c = reader.Read();
                if (c < 0)
                {
                    return line.Length > 0;
                }

                line.Append((char)c);
                if (c == '\n')
                {
                    return true;
                }

                if (line.Length >= MaxLineChars)
                {
                    CutAtWhitespace(line);
                    return true;
                }
            }
        }

        private void CutAtWhitespace(StringBuilder line)
        {
            // Never cut between the halves of a surrogate pair or inside a word when there is whitespace to cut at.
            var cut = line.Length;
            for (var i = line.Length - 1; i > 0; i--)
            {
                if (char.IsWhiteSpace(line[i]))
                {
                    cut = i + 1;
                    break;
                }
            }

            if (cut == line.Length && char.IsHighSurrogate(line[^1]))
            {
                cut--;
            }

            if (cut < line.Length)
            {
                _carry = line.ToString(cut, line.Length - cut);
                line.Length = cut;
            }
        }
    }
}
