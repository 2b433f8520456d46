using System.Text;
using System.Text.Json;

namespace Sharpformer.Training.Data;

/// <summary>How a corpus file is read into documents.</summary>
public enum CorpusFormat
{
    /// <summary>Plain UTF-8 text; the whole file is one document.</summary>
    Text,

    /// <summary>JSON Lines: one object per line, its "text" string is one document (blank lines are skipped).</summary>
    JsonLines,
}

/// <summary>One corpus file as it was when the corpus was listed (the token cache is keyed on these facts).</summary>
/// <param name="Path">Full path.</param>
/// <param name="Format">How it is read.</param>
/// <param name="Length">Size in bytes.</param>
/// <param name="LastWriteTimeUtc">Last modification time.</param>
public sealed record CorpusFile(string Path, CorpusFormat Format, long Length, DateTime LastWriteTimeUtc);

/// <summary>How far tokenizing a corpus has got, for a progress bar.</summary>
/// <param name="BytesDone">Bytes of the corpus read so far.</param>
/// <param name="BytesTotal">Bytes of the whole corpus.</param>
/// <param name="Documents">Documents tokenized so far.</param>
/// <param name="Tokens">Tokens produced so far.</param>
public readonly record struct CorpusProgress(long BytesDone, long BytesTotal, long Documents, long Tokens);

/// <summary>
/// A training corpus: one text file, one JSON Lines file (.jsonl), or a folder searched recursively for *.txt and
/// *.jsonl files, taken in ordinal order of their paths so every machine reads the same documents in the same order.
/// A document is a whole .txt file or one JSON Lines record. Files are read as streams, never whole.
/// </summary>
public sealed class Corpus
{
    /// <summary>Texts longer than this many chars are handed to the tokenizer in pieces (cut where it changes nothing).</summary>
    internal const int DefaultChunkChars = 1 << 16;

    private Corpus(IReadOnlyList<CorpusFile> files)
    {
        Files = files;
        TotalBytes = files.Sum(f => f.Length);
    }

    /// <summary>The files in reading order.</summary>
    public IReadOnlyList<CorpusFile> Files { get; }

    /// <summary>Their total size in bytes.</summary>
    public long TotalBytes { get; }

    /// <summary>
    /// Lists the corpus at <paramref name="path"/>: a file (.jsonl → JSON Lines, anything else → text) or a folder
    /// (all *.txt and *.jsonl files below it, recursively, in ordinal path order).
    /// </summary>
    /// <exception cref="FileNotFoundException">Nothing exists at the path, or a folder holds no .txt/.jsonl file.</exception>
    public static Corpus FromPath(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = System.IO.Path.GetFullPath(path);
        if (File.Exists(full))
        {
            return new Corpus([Describe(new FileInfo(full))]);
        }

        if (!Directory.Exists(full))
        {
            throw new FileNotFoundException($"Corpus '{path}' does not exist; pass a .txt or .jsonl file, or a folder of them.", path);
        }

        var files = Directory.EnumerateFiles(full, "*", SearchOption.AllDirectories)
            .Where(f => f.EndsWith(".txt", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase))
            .Order(StringComparer.Ordinal)
            .Select(f => Describe(new FileInfo(f)))
            .ToList();
        if (files.Count == 0)
        {
            throw new FileNotFoundException($"Corpus folder '{path}' holds no .txt or .jsonl files (searched recursively).", path);
        }

        return new Corpus(files);
    }

    /// <summary>Whether every file still has the size and modification time it had when listed.</summary>
    internal string? FindChange()
    {
        foreach (var file in Files)
        {
            var now = new FileInfo(file.Path);
            if (!now.Exists)
            {
                return $"'{file.Path}' was deleted";
            }

            if (now.Length != file.Length || now.LastWriteTimeUtc != file.LastWriteTimeUtc)
            {
                return $"'{file.Path}' changed (size {file.Length} → {now.Length} bytes, modified {file.LastWriteTimeUtc:O} → {now.LastWriteTimeUtc:O})";
            }
        }

        return null;
    }

    /// <summary>
    /// The documents of <paramref name="file"/>, each as a sequence of text pieces whose tokenizations, concatenated,
    /// equal the tokenization of the whole document (see <see cref="LastSafeCut"/>). <paramref name="bytesRead"/> is
    /// called with the file position after each piece.
    /// </summary>
    internal static IEnumerable<IEnumerable<string>> ReadDocuments(CorpusFile file, int chunkChars, Action<long> bytesRead)
    {
        if (file.Format == CorpusFormat.Text)
        {
            yield return ReadTextPieces(file.Path, chunkChars, bytesRead);
            yield break;
        }

        using var stream = new FileStream(file.Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        using var reader = new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        long lineNumber = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            var text = ReadTextField(line, file.Path, lineNumber);
            bytesRead(stream.Position);
            yield return SplitPieces(text, chunkChars);
        }
    }

    /// <summary>
    /// The last index p in (0, <paramref name="text"/>.Length) where the text may be cut without changing its
    /// tokens, or 0 if there is none: p is a space (U+0020) right after a letter or digit. Both tokenizers split
    /// there anyway: BERT splits at whitespace; GPT-2's pre-tokenizer ends a letter/digit run at the space, and a
    /// piece that starts with a space is matched from there exactly as inside the whole text (the space opens the
    /// next pre-token, and add_prefix_space adds nothing to text that starts with a space). A cut after a newline
    /// would not be safe for GPT-2: "\n\n" before a word is one pre-token at the end of a piece but "\n" + "\n" in
    /// the whole text. Letters and digits never end an added token such as "[SEP]" or "&lt;|endoftext|&gt;", so
    /// added-token matching (including rstrip) is unaffected too.
    /// </summary>
    internal static int LastSafeCut(ReadOnlySpan<char> text)
    {
        for (var p = text.Length - 1; p > 0; p--)
        {
            if (text[p] == ' ' && char.IsLetterOrDigit(text[p - 1]))
            {
                return p;
            }
        }

        return 0;
    }

    private static IEnumerable<string> ReadTextPieces(string path, int chunkChars, Action<long> bytesRead)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        using var reader = new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        var buffer = new char[chunkChars];
        var pending = new StringBuilder();
        var nextTry = chunkChars;
        int read;
        while ((read = reader.Read(buffer, 0, buffer.Length)) > 0)
        {
            pending.Append(buffer, 0, read);
            if (pending.Length < nextTry)
            {
                continue;
            }

            var text = pending.ToString();
            var cut = LastSafeCut(text);
            if (cut == 0)
            {
                // No place to cut yet (e.g. one enormous word): read on, and look again once the text has doubled.
                nextTry = 2 * pending.Length;
                continue;
            }

            pending.Clear().Append(text, cut, text.Length - cut);
            nextTry = Math.Max(chunkChars, pending.Length + 1);
            bytesRead(stream.Position);
            yield return text[..cut];
        }

        bytesRead(stream.Position);
        if (pending.Length > 0)
        {
            yield return pending.ToString();
        }
    }

    /// <summary>Cuts an in-memory text into pieces of about <paramref name="chunkChars"/> at safe places.</summary>
    private static IEnumerable<string> SplitPieces(string text, int chunkChars)
    {
        var start = 0;
        while (text.Length - start > chunkChars)
        {
            var cut = LastSafeCut(text.AsSpan(start, chunkChars));
            if (cut == 0)
            {
                break;
            }

            yield return text.Substring(start, cut);
            start += cut;
        }

        yield return start == 0 ? text : text[start..];
    }

    private static string ReadTextField(string line, string path, long lineNumber)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}:{lineNumber}: not a JSON object ({e.Message}); JSON Lines needs one object per line with a \"text\" string.", e);
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidDataException($"{path}:{lineNumber}: a JSON {doc.RootElement.ValueKind}, not an object; JSON Lines needs one object per line with a \"text\" string.");
            }

            if (!doc.RootElement.TryGetProperty("text", out var text))
            {
                throw new InvalidDataException($"{path}:{lineNumber}: the object has no \"text\" field; every line needs {{\"text\": \"...\"}}.");
            }

            if (text.ValueKind != JsonValueKind.String)
            {
                throw new InvalidDataException($"{path}:{lineNumber}: \"text\" is a JSON {text.ValueKind}, not a string.");
            }

            return text.GetString()!;
        }
    }

    private static CorpusFile Describe(FileInfo info)
    {
        var format = info.Extension.Equals(".jsonl", StringComparison.OrdinalIgnoreCase) ? CorpusFormat.JsonLines : CorpusFormat.Text;
        return new CorpusFile(info.FullName, format, info.Length, info.LastWriteTimeUtc);
    }
}
