using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Sharpformer.Tensors.Storage;
using Sharpformer.Text;

namespace Sharpformer.Training.Data;

/// <summary>
/// A corpus tokenized once into a file of int32 token ids, memory-mapped when read. The file is reused while the
/// corpus files (path, size, modification time) and the tokenizer (a hash of its files) are unchanged — both are
/// hashed into the file's name and header — and rebuilt otherwise, or when it is truncated or corrupt. It is written
/// to a temporary file and renamed into place, so a crash never leaves a half-written cache that looks valid.
/// </summary>
/// <remarks>
/// Layout (little-endian): a 72-byte header — magic "SFTOKENS", u32 version, i32 vocabulary size, i64 token count,
/// i64 document count, i64 line count, 32-byte SHA-256 key — then the ids (i32 each, documents one after another,
/// no special tokens), then each document's end offset into the ids (i64 each), then each line's end offset (i64
/// each). Documents and lines that tokenize to nothing are left out; every document end is also a line end.
/// The tokenizer adds no special tokens here; the batch sources add EOS, [CLS] and [SEP] by their own rules.
/// Lines (the masked-LM <see cref="MlmLayout.Lines"/> layout packs them) are the newline-separated lines of a text
/// document or of a JSON Lines record's text. The ids do not depend on them: a WordPiece (BERT) tokenizer treats a
/// newline as whitespace, so the text is tokenized line by line with the same ids as whole; a byte-level (GPT-2)
/// tokenizer keeps newlines as tokens and is tokenized exactly as before, a line ending after each token whose text
/// holds a newline (such a token is all whitespace, so no word straddles a line end).
/// Opening validates the whole file (sizes, document and line offsets, every id in [0, V)), one sequential pass.
/// Processes that build the same cache at once each write their own temporary file; the last rename wins, and the
/// files are identical. A cache whose key no longer matches is not deleted (several corpora may share a folder).
/// </remarks>
public sealed class TokenCache : IDisposable
{
    /// <summary>The format version in the header; a file of another version is rebuilt.</summary>
    public const int FormatVersion = 2;

    private const int HeaderBytes = 72;
    private const int KeyOffset = 40;
    private const int KeyBytes = 32;
    private static readonly byte[] Magic = "SFTOKENS"u8.ToArray();
    private static readonly string[] TokenizerFileNames =
        ["tokenizer.json", "vocab.txt", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"];

    private static readonly EncodeOptions NoSpecialTokens = new() { AddSpecialTokens = false };

    private readonly MemoryMappedStorage? _storage;
    private readonly long[] _documentEnds;
    private bool _disposed;

    private TokenCache(string path, TextTokenizer tokenizer, MemoryMappedStorage? storage, long tokenCount, long[] documentEnds, long lineCount, string? buildReason)
    {
        LineCount = lineCount;
        Path = path;
        Tokenizer = tokenizer;
        _storage = storage;
        TokenCount = tokenCount;
        _documentEnds = documentEnds;
        BuildReason = buildReason;
    }

    /// <summary>The cache file.</summary>
    public string Path { get; }

    /// <summary>The tokenizer that made the ids (the batch sources take EOS, [CLS], [SEP], [MASK] and V from it).</summary>
    public TextTokenizer Tokenizer { get; }

    /// <summary>Why this open tokenized the corpus ("no cache file", "... is corrupt: ..."), or null when the cache was reused.</summary>
    public string? BuildReason { get; }

    /// <summary>Whether this open tokenized the corpus (false: an existing cache file was reused as is).</summary>
    public bool WasBuilt => BuildReason is not null;

    /// <summary>The tokenizer's vocabulary size V: every id is in [0, V).</summary>
    public int VocabularySize => Tokenizer.VocabularySize;

    /// <summary>Number of token ids.</summary>
    public long TokenCount { get; }

    /// <summary>Number of (non-empty) documents.</summary>
    public long DocumentCount => _documentEnds.Length;

    /// <summary>Number of (non-empty) lines, over all documents.</summary>
    public long LineCount { get; }

    /// <summary>
    /// Opens the cache for <paramref name="corpus"/> tokenized by the tokenizer in <paramref name="tokenizerFolder"/>
    /// (loaded with <see cref="AutoTokenizer.FromPretrained"/>, fingerprinted with <see cref="FingerprintFolder"/>),
    /// building it in <paramref name="cacheDirectory"/> when there is no valid one.
    /// </summary>
    public static TokenCache Open(Corpus corpus, string tokenizerFolder, string cacheDirectory, IProgress<CorpusProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(tokenizerFolder);
        var tokenizer = AutoTokenizer.FromPretrained(tokenizerFolder);
        return Open(corpus, tokenizer, FingerprintFolder(tokenizerFolder), cacheDirectory, progress, cancellationToken);
    }

    /// <summary>
    /// Opens the cache for <paramref name="corpus"/> tokenized by <paramref name="tokenizer"/>, building it in
    /// <paramref name="cacheDirectory"/> when there is no valid one.
    /// </summary>
    /// <param name="corpus">The corpus.</param>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="tokenizerFingerprint">A string that changes whenever the tokenizer's behaviour may change (e.g. <see cref="FingerprintFolder"/>).</param>
    /// <param name="cacheDirectory">Where cache files live (created if missing).</param>
    /// <param name="progress">Receives progress while tokenizing; not called when the cache is reused.</param>
    /// <param name="cancellationToken">Stops tokenizing (the temporary file is deleted).</param>
    /// <exception cref="InvalidDataException">A JSON Lines record is malformed (the message names file and line).</exception>
    /// <exception cref="IOException">A corpus file changed while it was being tokenized.</exception>
    public static TokenCache Open(Corpus corpus, TextTokenizer tokenizer, string tokenizerFingerprint, string cacheDirectory, IProgress<CorpusProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(corpus);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentException.ThrowIfNullOrEmpty(tokenizerFingerprint);
        ArgumentException.ThrowIfNullOrEmpty(cacheDirectory);
        return Open(corpus, tokenizer, tokenizerFingerprint, cacheDirectory, progress, Corpus.DefaultChunkChars, cancellationToken);
    }

    /// <summary>Where tokenized corpora are cached when no folder is given: ~/.cache/sharpformer/token-cache.</summary>
    public static string DefaultDirectory =>
        System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "sharpformer", "token-cache");

    /// <summary>SHA-256 (hex) over the names and bytes of the tokenizer files in <paramref name="folder"/>.</summary>
    /// <exception cref="FileNotFoundException">The folder holds none of the tokenizer files.</exception>
    public static string FingerprintFolder(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var found = 0;
        foreach (var name in TokenizerFileNames)
        {
            var path = System.IO.Path.Combine(folder, name);
            if (!File.Exists(path))
            {
                continue;
            }

            found++;
            hash.AppendData(Encoding.UTF8.GetBytes(name + "\n"));
            hash.AppendData(File.ReadAllBytes(path));
            hash.AppendData("\n"u8);
        }

        if (found == 0)
        {
            throw new FileNotFoundException($"No tokenizer files in '{folder}' to fingerprint; expected some of {string.Join(", ", TokenizerFileNames)}.");
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>Copies the ids [<paramref name="start"/>, start + destination.Length) into <paramref name="destination"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is not inside [0, <see cref="TokenCount"/>).</exception>
    public void CopyTokens(long start, Span<int> destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (start < 0 || start > TokenCount - destination.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(start), $"Tokens [{start}, {start + destination.Length}) are outside the cache's {TokenCount} tokens.");
        }

        if (destination.Length == 0)
        {
            return;
        }

        var bytes = _storage!.GetReadOnlyBytes(HeaderBytes + (4 * start), 4 * destination.Length);
        MemoryMarshal.Cast<byte, int>(bytes).CopyTo(destination);
    }

    /// <summary>Document <paramref name="document"/>'s ids are [Start, End) of the cache.</summary>
    public (long Start, long End) DocumentRange(long document)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(document);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(document, DocumentCount);
        return (document == 0 ? 0 : _documentEnds[document - 1], _documentEnds[document]);
    }

    /// <summary>Line <paramref name="line"/>'s ids are [Start, End) of the cache (lines are numbered over all documents).</summary>
    public (long Start, long End) LineRange(long line)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(line);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(line, LineCount);
        Span<long> ends = stackalloc long[2];
        if (line == 0)
        {
            CopyLineEnds(0, ends[1..]);
            return (0, ends[1]);
        }

        CopyLineEnds(line - 1, ends);
        return (ends[0], ends[1]);
    }

    /// <summary>Unmaps the file.</summary>
    public void Dispose()
    {
        _disposed = true;
        _storage?.Dispose();
    }

    /// <summary>The end offsets of the documents (for the sources' EOS placement).</summary>
    internal ReadOnlySpan<long> DocumentEnds => _documentEnds;

    /// <summary>Copies the end offsets of lines [<paramref name="first"/>, first + destination.Length) (read from the map, not held in memory).</summary>
    internal void CopyLineEnds(long first, Span<long> destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        System.Diagnostics.Debug.Assert(first >= 0 && first + destination.Length <= LineCount);
        if (destination.Length == 0)
        {
            return;
        }

        var offset = HeaderBytes + (4 * TokenCount) + (8 * DocumentCount) + (8 * first);
        MemoryMarshal.Cast<byte, long>(_storage!.GetReadOnlyBytes(offset, 8 * destination.Length)).CopyTo(destination);
    }

    /// <summary><see cref="Open(Corpus, TextTokenizer, string, string, IProgress{CorpusProgress}?, CancellationToken)"/> with the text piece size (tests use small ones).</summary>
    internal static TokenCache Open(Corpus corpus, TextTokenizer tokenizer, string tokenizerFingerprint, string cacheDirectory, IProgress<CorpusProgress>? progress, int chunkChars, CancellationToken cancellationToken)
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("The token cache is little-endian; this machine is big-endian.");
        }

        var key = ComputeKey(corpus, tokenizerFingerprint);
        Directory.CreateDirectory(cacheDirectory);
        var path = System.IO.Path.Combine(cacheDirectory, $"tokens-{Convert.ToHexStringLower(key)[..16]}.bin");
        string reason;
        if (!File.Exists(path))
        {
            reason = "no cache file";
        }
        else
        {
            var opened = TryOpen(path, tokenizer, key, buildReason: null, out reason);
            if (opened is not null)
            {
                return opened;
            }
        }

        Build(corpus, tokenizer, key, path, progress, chunkChars, cancellationToken);
        return TryOpen(path, tokenizer, key, reason, out var failure)
            ?? throw new InvalidDataException($"The token cache '{path}' just written does not read back: {failure}.");
    }

    private static byte[] ComputeKey(Corpus corpus, string tokenizerFingerprint)
    {
        var text = new StringBuilder();
        text.Append("sharpformer token cache v").Append(FormatVersion).Append('\n');
        text.Append("tokenizer ").Append(tokenizerFingerprint).Append('\n');
        foreach (var file in corpus.Files)
        {
            text.Append(file.Path).Append('\t').Append(file.Format).Append('\t').Append(file.Length).Append('\t')
                .Append(file.LastWriteTimeUtc.Ticks).Append('\n');
        }

        return SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString()));
    }

    /// <summary>Maps and validates the cache file; null (with the reason) when it is missing, stale, truncated or corrupt.</summary>
    private static TokenCache? TryOpen(string path, TextTokenizer tokenizer, byte[] key, string? buildReason, out string reason)
    {
        MemoryMappedStorage? storage = null;
        try
        {
            var length = new FileInfo(path).Length;
            // Magic and version come first in every format version, so an older file is named as such, not as truncated.
            const int VersionBytes = 12;
            if (length < VersionBytes)
            {
                reason = $"'{path}' is truncated ({length} bytes, shorter than its header)";
                return null;
            }

            storage = MemoryMappedStorage.Open(path);
            var start = storage.GetReadOnlyBytes(0, VersionBytes);
            var version = BinaryPrimitives.ReadInt32LittleEndian(start[8..]);
            string? problem = null;
            if (!start[..8].SequenceEqual(Magic))
            {
                problem = "it is not a token cache (bad magic)";
            }
            else if (version != FormatVersion)
            {
                problem = $"it has format version {version}, this library writes {FormatVersion}";
            }
            else if (length < HeaderBytes)
            {
                problem = $"it is truncated ({length} bytes, shorter than its {HeaderBytes}-byte header)";
            }

            if (problem is not null)
            {
                reason = $"'{path}' is stale or corrupt: {problem}";
                storage.Dispose();
                return null;
            }

            var header = storage.GetReadOnlyBytes(0, HeaderBytes);
            var vocab = BinaryPrimitives.ReadInt32LittleEndian(header[12..]);
            var tokens = BinaryPrimitives.ReadInt64LittleEndian(header[16..]);
            var documents = BinaryPrimitives.ReadInt64LittleEndian(header[24..]);
            var lines = BinaryPrimitives.ReadInt64LittleEndian(header[32..]);
            if (!header.Slice(KeyOffset, KeyBytes).SequenceEqual(key))
            {
                problem = "its key (corpus files and tokenizer) differs";
            }
            else if (vocab != tokenizer.VocabularySize)
            {
                problem = $"it was made with a vocabulary of {vocab}, the tokenizer has {tokenizer.VocabularySize}";
            }
            else if (tokens < 0 || documents < 0 || lines < 0 || tokens > (long.MaxValue / 16) || documents > (long.MaxValue / 32)
                || lines > (long.MaxValue / 32) || length != HeaderBytes + (4 * tokens) + (8 * documents) + (8 * lines))
            {
                problem = $"its size {length} does not match {tokens} tokens, {documents} documents and {lines} lines (truncated or corrupt)";
            }

            long[] ends = [];
            if (problem is null)
            {
                (ends, problem) = ReadDocumentEnds(storage, tokens, documents);
            }

            if (problem is null)
            {
                problem = CheckLineEnds(storage, HeaderBytes + (4 * tokens) + (8 * documents), lines, tokens, ends);
            }

            problem ??= CheckIds(storage, tokens, vocab);
            if (problem is not null)
            {
                reason = $"'{path}' is stale or corrupt: {problem}";
                storage.Dispose();
                return null;
            }

            reason = "";
            var cache = new TokenCache(path, tokenizer, storage, tokens, ends, lines, buildReason);
            storage = null;
            return cache;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            storage?.Dispose();
            reason = $"'{path}' could not be read ({e.Message})";
            return null;
        }
    }

    private static (long[] Ends, string? Problem) ReadDocumentEnds(MemoryMappedStorage storage, long tokens, long documents)
    {
        if (documents > Array.MaxLength)
        {
            return ([], $"{documents} documents is more than one array can index");
        }

        var ends = new long[documents];
        var offset = HeaderBytes + (4 * tokens);
        const int PerRead = 1 << 16;
        for (long d = 0; d < documents; d += PerRead)
        {
            var n = (int)Math.Min(PerRead, documents - d);
            MemoryMarshal.Cast<byte, long>(storage.GetReadOnlyBytes(offset + (8 * d), 8 * n)).CopyTo(ends.AsSpan((int)d, n));
        }

        var previous = 0L;
        for (var d = 0; d < ends.Length; d++)
        {
            if (ends[d] <= previous || ends[d] > tokens)
            {
                return ([], $"document {d} ends at {ends[d]}, after {previous} and within {tokens} tokens expected");
            }

            previous = ends[d];
        }

        if (previous != tokens)
        {
            return ([], $"the documents cover {previous} of {tokens} tokens");
        }

        return (ends, null);
    }

    /// <summary>Line ends must rise strictly to the token count and include every document end (lines never cross documents).</summary>
    private static string? CheckLineEnds(MemoryMappedStorage storage, long offset, long lines, long tokens, long[] documentEnds)
    {
        const int PerRead = 1 << 16;
        var buffer = new long[PerRead];
        var previous = 0L;
        var document = 0;
        for (long l = 0; l < lines; l += PerRead)
        {
            var n = (int)Math.Min(PerRead, lines - l);
            MemoryMarshal.Cast<byte, long>(storage.GetReadOnlyBytes(offset + (8 * l), 8 * n)).CopyTo(buffer);
            for (var i = 0; i < n; i++)
            {
                var end = buffer[i];
                if (end <= previous || end > tokens)
                {
                    return $"line {l + i} ends at {end}, after {previous} and within {tokens} tokens expected";
                }

                if (document < documentEnds.Length && end > documentEnds[document])
                {
                    return $"line {l + i} ends at {end}, past the end of document {document} at {documentEnds[document]}";
                }

                if (document < documentEnds.Length && end == documentEnds[document])
                {
                    document++;
                }

                previous = end;
            }
        }

        if (previous != tokens || document != documentEnds.Length)
        {
            return $"the lines cover {previous} of {tokens} tokens and end {document} of {documentEnds.Length} documents";
        }

        return null;
    }

    /// <summary>Every id must be in [0, V): one pass over the mapped ids, so a damaged cache never reaches an embedding.</summary>
    private static string? CheckIds(MemoryMappedStorage storage, long tokens, int vocab)
    {
        const int PerRead = 1 << 18;
        for (long t = 0; t < tokens; t += PerRead)
        {
            var n = (int)Math.Min(PerRead, tokens - t);
            var ids = MemoryMarshal.Cast<byte, int>(storage.GetReadOnlyBytes(HeaderBytes + (4 * t), 4 * n));
            for (var i = 0; i < ids.Length; i++)
            {
                if ((uint)ids[i] >= (uint)vocab)
                {
                    return $"token {t + i} has id {ids[i]}, outside the vocabulary [0, {vocab})";
                }
            }
        }

        return null;
    }

    private static void Build(Corpus corpus, TextTokenizer tokenizer, byte[] key, string path, IProgress<CorpusProgress>? progress, int chunkChars, CancellationToken cancellationToken)
    {
        var temp = $"{path}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        try
        {
            var ends = new List<long>();
            var lineEnds = new LineEndWriter($"{temp}.lines");
            long tokens = 0;
            using (lineEnds)
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                stream.Write(new byte[HeaderBytes]);
                var bytesBefore = 0L;
                var splitAtNewlines = tokenizer is BertWordPieceTokenizer;
                var newlineIds = splitAtNewlines ? null : NewlineIds(tokenizer);
                foreach (var file in corpus.Files)
                {
                    var position = 0L;
                    foreach (var document in Corpus.ReadDocuments(file, chunkChars, p => position = p))
                    {
                        var start = tokens;
                        foreach (var piece in document)
                        {
                            cancellationToken.ThrowIfCancellationRequested();
                            if (splitAtNewlines)
                            {
                                // WordPiece: a newline is whitespace, so each line of the piece is tokenized alone
                                // with the ids it has in the whole text; the piece's last line may go on in the next.
                                var lineStart = 0;
                                while (piece.IndexOf('\n', lineStart) is var newline and >= 0)
                                {
                                    tokens += WriteIds(stream, tokenizer.Encode(piece[lineStart..newline], options: NoSpecialTokens).Ids, null, tokens, lineEnds);
                                    lineEnds.EndLine(tokens);
                                    lineStart = newline + 1;
                                }

                                tokens += WriteIds(stream, tokenizer.Encode(piece[lineStart..], options: NoSpecialTokens).Ids, null, tokens, lineEnds);
                            }
                            else
                            {
                                tokens += WriteIds(stream, tokenizer.Encode(piece, options: NoSpecialTokens).Ids, newlineIds, tokens, lineEnds);
                            }

                            progress?.Report(new CorpusProgress(bytesBefore + position, corpus.TotalBytes, ends.Count, tokens));
                        }

                        if (tokens > start)
                        {
                            ends.Add(tokens);
                            lineEnds.EndLine(tokens);
                        }
                    }

                    bytesBefore += file.Length;
                    progress?.Report(new CorpusProgress(bytesBefore, corpus.TotalBytes, ends.Count, tokens));
                }

                stream.Write(MemoryMarshal.AsBytes(CollectionsMarshal.AsSpan(ends)));
                var lineCount = lineEnds.CopyTo(stream);
                var header = new byte[HeaderBytes];
                Magic.CopyTo(header, 0);
                BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(8), FormatVersion);
                BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(12), tokenizer.VocabularySize);
                BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(16), tokens);
                BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(24), ends.Count);
                BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(32), lineCount);
                key.CopyTo(header, KeyOffset);
                stream.Position = 0;
                stream.Write(header);
                stream.Flush(flushToDisk: true);
            }

            if (corpus.FindChange() is { } change)
            {
                throw new IOException($"The corpus changed while it was tokenized: {change}. List the corpus again (Corpus.FromPath) and reopen the cache.");
            }

            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }

            if (File.Exists($"{temp}.lines"))
            {
                File.Delete($"{temp}.lines");
            }
        }
    }

    /// <summary>
    /// Writes <paramref name="ids"/> (which follow <paramref name="before"/> ids) and returns their count; with
    /// <paramref name="newlineIds"/>, a line ends after each id whose text holds a newline.
    /// </summary>
    private static int WriteIds(Stream stream, IReadOnlyList<int> ids, bool[]? newlineIds, long before, LineEndWriter lineEnds)
    {
        var block = new int[ids.Count];
        for (var i = 0; i < block.Length; i++)
        {
            block[i] = ids[i];
            if (newlineIds is not null && newlineIds[ids[i]])
            {
                lineEnds.EndLine(before + i + 1);
            }
        }

        stream.Write(MemoryMarshal.AsBytes(block.AsSpan()));
        return block.Length;
    }

    /// <summary>Per id: whether its text (decoded alone, specials kept) holds a newline.</summary>
    private static bool[] NewlineIds(TextTokenizer tokenizer)
    {
        var newline = new bool[tokenizer.VocabularySize];
        for (var id = 0; id < newline.Length; id++)
        {
            newline[id] = tokenizer.Decode([id], skipSpecialTokens: false).Contains('\n', StringComparison.Ordinal);
        }

        return newline;
    }

    /// <summary>Line end offsets, spooled to a side file while the ids are written (a corpus can have more lines than memory holds comfortably).</summary>
    private sealed class LineEndWriter : IDisposable
    {
        private readonly FileStream _file;
        private readonly long[] _buffer = new long[1 << 13];
        private int _buffered;
        private long _last;

        public LineEndWriter(string path) =>
            _file = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);

        public long Count { get; private set; }

        /// <summary>A line ends at <paramref name="tokens"/>; nothing is recorded when it holds no token (an empty line, or an end already recorded).</summary>
        public void EndLine(long tokens)
        {
            if (tokens <= _last)
            {
                return;
            }

            _last = tokens;
            _buffer[_buffered++] = tokens;
            Count++;
            if (_buffered == _buffer.Length)
            {
                Flush();
            }
        }

        /// <summary>Appends every recorded end to <paramref name="destination"/>; returns how many.</summary>
        public long CopyTo(Stream destination)
        {
            Flush();
            _file.Position = 0;
            _file.CopyTo(destination);
            return Count;
        }

        public void Dispose() => _file.Dispose();

        private void Flush()
        {
            _file.Write(MemoryMarshal.AsBytes(_buffer.AsSpan(0, _buffered)));
            _buffered = 0;
        }
    }
}
