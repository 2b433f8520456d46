using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Sharpformer.Pipelines;

/// <summary>A file <see cref="DocumentReader"/> left out, or part of one, and why.</summary>
/// <param name="File">The path relative to the documents folder, with '/' separators (and ":line" for a JSONL record).</param>
/// <param name="Reason">Why, in a few words.</param>
public sealed record SkippedDocument(string File, string Reason);

/// <summary>One searchable text: a whole .txt/.md file, or one JSONL record's "text".</summary>
/// <param name="File">The path relative to the documents folder, with '/' separators.</param>
/// <param name="Line">The 1-based line the text starts on in the file (a JSONL record's line; 1 for a whole file).</param>
/// <param name="IsRecord">True for a JSONL record: chunk character offsets count within the record's text, and all its chunks are on <paramref name="Line"/>.</param>
/// <param name="Text">The text.</param>
public sealed record DocumentText(string File, int Line, bool IsRecord, string Text);

/// <summary>A readable file of the folder: where it is, what it weighs, and the texts in it.</summary>
/// <param name="File">The path relative to the documents folder, with '/' separators.</param>
/// <param name="Size">Bytes.</param>
/// <param name="LastWriteUtcTicks">The last write time (UTC ticks).</param>
/// <param name="Sha256">The lower-case hex SHA-256 of the bytes.</param>
/// <param name="Texts">The texts (one for .txt/.md, one per usable line for .jsonl).</param>
public sealed record DocumentFile(string File, long Size, long LastWriteUtcTicks, string Sha256, IReadOnlyList<DocumentText> Texts);

/// <summary>
/// Finds the documents of a folder: .txt, .md and .markdown files (UTF-8, read whole) and .jsonl files (one JSON object
/// per line with a "text" string), in every sub-folder except hidden ones (names starting with '.', such as the
/// search cache). A file with NUL bytes or invalid UTF-8 is skipped as binary; other extensions are skipped.
/// </summary>
public static class DocumentReader
{
    /// <summary>The extensions read as documents.</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".txt", ".md", ".markdown", ".jsonl"];

    /// <summary>Every candidate file under <paramref name="folder"/> (relative path, full path), in ordinal path order.</summary>
    /// <param name="folder">The documents folder.</param>
    /// <param name="otherTypes">Files left out for their extension, counted by extension.</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    public static IReadOnlyList<(string File, string FullPath)> List(string folder, out IReadOnlyDictionary<string, int> otherTypes)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        if (!Directory.Exists(folder))
        {
            throw new DirectoryNotFoundException(
                File.Exists(folder)
                    ? $"--docs '{folder}' is a file; pass the folder that holds the documents."
                    : $"--docs folder '{folder}' does not exist; pass a folder of .txt, .md or .jsonl files.");
        }

        var root = Path.GetFullPath(folder);
        var found = new List<(string, string)>();
        var others = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var pending = new Stack<string>();
        pending.Push(root);
        while (pending.Count > 0)
        {
            var dir = pending.Pop();
            foreach (var sub in Directory.EnumerateDirectories(dir))
            {
                if (!Path.GetFileName(sub).StartsWith('.'))
                {
                    pending.Push(sub);
                }
            }

            foreach (var path in Directory.EnumerateFiles(dir))
            {
                var name = Path.GetFileName(path);
                if (name.StartsWith('.'))
                {
                    continue;
                }

                var ext = Path.GetExtension(name).ToLowerInvariant();
                if (Extensions.Contains(ext))
                {
                    found.Add((Path.GetRelativePath(root, path).Replace('\\', '/'), path));
                }
                else
                {
                    var key = ext.Length == 0 ? "(no extension)" : ext;
                    others[key] = others.GetValueOrDefault(key) + 1;
                }
            }
        }

        otherTypes = others;
        found.Sort((a, b) => string.CompareOrdinal(a.Item1, b.Item1));
        return found;
    }

    /// <summary>Reads one listed file: its texts, or null (with a note in <paramref name="skipped"/>) when it is binary or holds no text.</summary>
    /// <param name="file">The relative path.</param>
    /// <param name="fullPath">The full path.</param>
    /// <param name="skipped">Receives notes on a skipped file or skipped JSONL lines.</param>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static DocumentFile? Read(string file, string fullPath, ICollection<SkippedDocument> skipped)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(fullPath);
        ArgumentNullException.ThrowIfNull(skipped);
        var bytes = File.ReadAllBytes(fullPath);
        var info = new FileInfo(fullPath);
        var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));
        var text = Decode(bytes);
        if (text is null)
        {
            skipped.Add(new SkippedDocument(file, "binary (NUL bytes or invalid UTF-8)"));
            return null;
        }

        var texts = new List<DocumentText>();
        if (file.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase))
        {
            ReadJsonLines(file, text, texts, skipped);
        }
        else if (!string.IsNullOrWhiteSpace(text))
        {
            texts.Add(new DocumentText(file, 1, false, text));
        }

        if (texts.Count == 0)
        {
            skipped.Add(new SkippedDocument(file, "no text"));
        }

        return new DocumentFile(file, bytes.LongLength, info.LastWriteTimeUtc.Ticks, hash, texts);
    }

    private static string? Decode(byte[] bytes)
    {
        if (Array.IndexOf(bytes, (byte)0) >= 0)
        {
            return null;
        }

        try
        {
            var utf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
            var text = utf8.GetString(bytes);
            return text.Length > 0 && text[0] == '\uFEFF' ? text[1..] : text;
        }
        catch (DecoderFallbackException)
        {
            return null;
        }
    }

    private static void ReadJsonLines(string file, string text, List<DocumentText> texts, ICollection<SkippedDocument> skipped)
    {
        var lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i].TrimEnd('\r');
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            string where = string.Create(CultureInfo.InvariantCulture, $"{file}:{i + 1}");
            try
            {
                using var json = JsonDocument.Parse(line);
                if (json.RootElement.ValueKind != JsonValueKind.Object
                    || !json.RootElement.TryGetProperty("text", out var value)
                    || value.ValueKind != JsonValueKind.String)
                {
                    skipped.Add(new SkippedDocument(where, "no \"text\" string in this line's JSON object"));
                    continue;
                }

                var record = value.GetString()!;
                if (!string.IsNullOrWhiteSpace(record))
                {
                    texts.Add(new DocumentText(file, i + 1, true, record));
                }
            }
            catch (JsonException e)
            {
                skipped.Add(new SkippedDocument(where, "not JSON: " + e.Message.ReplaceLineEndings(" ")));
            }
        }
    }
}
