using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Sharpformer.Pipelines;

/// <summary>One passage of a document: where it is and its text.</summary>
/// <param name="File">The path relative to the documents folder, with '/' separators.</param>
/// <param name="LineStart">The first line, from 1.</param>
/// <param name="LineEnd">The last line, from 1 (inclusive).</param>
/// <param name="Start">First character (UTF-16 code units) in the file's text, or in the record's text for a JSONL record.</param>
/// <param name="End">One past the last character.</param>
/// <param name="InRecord">True when the passage comes from a JSONL record's "text" (then Start/End count within that text).</param>
/// <param name="Text">The passage: an exact slice of the text, without leading or trailing whitespace.</param>
public sealed record DocumentChunk(string File, int LineStart, int LineEnd, int Start, int End, bool InRecord, string Text);

/// <summary>A search result.</summary>
/// <param name="Rank">1 for the best.</param>
/// <param name="Score">Cosine similarity of the query and passage embeddings, in [−1, 1].</param>
/// <param name="Chunk">The passage.</param>
public sealed record SearchHit(int Rank, float Score, DocumentChunk Chunk);

/// <summary>What building or refreshing an index did.</summary>
/// <param name="CachePath">The manifest file of the on-disk cache.</param>
/// <param name="Files">Readable files indexed.</param>
/// <param name="FilesReused">Files whose chunks and embeddings came from the cache.</param>
/// <param name="FilesEmbedded">Files chunked and embedded now (new or changed, or all of them on a rebuild).</param>
/// <param name="FilesRemoved">Cached files that are gone (deleted, renamed or now unreadable) and were dropped.</param>
/// <param name="ChunksReused">Chunks whose embeddings came from the cache.</param>
/// <param name="ChunksEmbedded">Chunks embedded now.</param>
/// <param name="Skipped">Files (and JSONL lines) left out, with why.</param>
/// <param name="OtherTypes">Files left out for their extension, by extension.</param>
/// <param name="CacheNote">Why the cache was not used, if it existed and was not (corrupt, other format version), else null.</param>
public sealed record IndexUpdate(
    string CachePath,
    int Files,
    int FilesReused,
    int FilesEmbedded,
    int FilesRemoved,
    int ChunksReused,
    int ChunksEmbedded,
    IReadOnlyList<SkippedDocument> Skipped,
    IReadOnlyDictionary<string, int> OtherTypes,
    string? CacheNote);

/// <summary>How <see cref="DocumentSearch.BuildIndex"/> finds and stores its cache.</summary>
public sealed record SearchIndexOptions
{
    /// <summary>
    /// Where the cache lives; null for the documents folder's <c>.sharpformer-search/</c>, or, when that folder cannot
    /// be written, <c>~/.cache/sharpformer/search/&lt;hash of the folder's full path&gt;/</c>.
    /// </summary>
    public string? CacheDirectory { get; init; }

    /// <summary>Ignore the cache and embed every file again.</summary>
    public bool Rebuild { get; init; }

    /// <summary>Chunks per forward pass.</summary>
    public int BatchSize { get; init; } = 32;
}

/// <summary>The chunks of a folder and their embeddings, ready to search.</summary>
public sealed class SearchIndex
{
    private readonly float[] _matrix;

    internal SearchIndex(IReadOnlyList<DocumentChunk> chunks, float[] matrix, int dimensions, IndexUpdate update)
    {
        Chunks = chunks;
        _matrix = matrix;
        Dimensions = dimensions;
        Update = update;
    }

    /// <summary>Every chunk, in row order (files in ordinal path order, chunks in text order).</summary>
    public IReadOnlyList<DocumentChunk> Chunks { get; }

    /// <summary>C, the length of each embedding.</summary>
    public int Dimensions { get; }

    /// <summary>What building the index did (reused, embedded, dropped, skipped).</summary>
    public IndexUpdate Update { get; }

    /// <summary>The embedding of chunk <paramref name="row"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">No such row.</exception>
    public ReadOnlySpan<float> Embedding(int row)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(row);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(row, Chunks.Count);
        return _matrix.AsSpan(row * Dimensions, Dimensions);
    }

    /// <summary>The <paramref name="topK"/> chunks nearest <paramref name="queryEmbedding"/> by cosine, best first (exact search).</summary>
    /// <exception cref="ArgumentException">The embedding is not <see cref="Dimensions"/> long, or topK is below 1.</exception>
    public IReadOnlyList<SearchHit> Search(ReadOnlySpan<float> queryEmbedding, int topK)
    {
        if (topK < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(topK), topK, $"--top-k is {topK}; pass a whole number of at least 1.");
        }

        var best = VectorSearch.TopK(_matrix, Dimensions, queryEmbedding, topK);
        return best.Select((hit, i) => new SearchHit(i + 1, hit.Score, Chunks[hit.Row])).ToList();
    }
}

/// <summary>
/// Semantic search over a folder of documents: the files are read (<see cref="DocumentReader"/>), cut into passages
/// (<see cref="DocumentChunker"/>), embedded with a <see cref="SentenceEmbeddingPipeline"/> (mean pooling + L2) and
/// cached on disk; a query is embedded the same way and the passages ranked by cosine. The cache (a JSON manifest and a
/// binary float32 matrix, both named by a hash of the model key and the chunk settings) records each file's size, last
/// write time and SHA-256: a file whose size and time are unchanged is reused without reading it, one whose bytes hash
/// the same is reused, a changed or new one is re-chunked and re-embedded, and a deleted one is dropped.
/// </summary>
public sealed class DocumentSearch
{
    /// <summary>The model used when none is named: sentence-transformers/all-MiniLM-L6-v2.</summary>
    public const string DefaultModel = "sentence-transformers/all-MiniLM-L6-v2";

    /// <summary>The cache folder's name inside the documents folder.</summary>
    public const string CacheFolderName = ".sharpformer-search";

    /// <summary>The version of the cache's layout; a cache of another version is rebuilt.</summary>
    public const int CacheFormatVersion = 1;

    private static readonly byte[] Magic = "SFSEARCH"u8.ToArray();

    private static readonly JsonSerializerOptions ManifestJson = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Search with a loaded pipeline.</summary>
    /// <param name="pipeline">Embeds passages and queries.</param>
    /// <param name="modelKey">Names the model's weights in the cache key: a change of it invalidates the cache (see <see cref="ModelKeyAsync"/>).</param>
    /// <param name="chunking">Chunk size and overlap; the size is capped at the model's limit less its two special tokens.</param>
    /// <exception cref="ArgumentException">The model key is blank or the chunk settings are out of range.</exception>
    public DocumentSearch(SentenceEmbeddingPipeline pipeline, string modelKey, ChunkingOptions? chunking = null)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentException.ThrowIfNullOrWhiteSpace(modelKey);
        chunking ??= new ChunkingOptions();
        chunking.Validate();
        int limit = ModelLoader.MaxLength(pipeline.Tokenizer, pipeline.Model) - 2;
        int max = Math.Min(chunking.MaxTokens, limit);
        Pipeline = pipeline;
        ModelKey = modelKey;
        Chunking = chunking with { MaxTokens = max, OverlapTokens = Math.Min(chunking.OverlapTokens, max / 2) };
    }

    /// <summary>The embedding pipeline.</summary>
    public SentenceEmbeddingPipeline Pipeline { get; }

    /// <summary>The model's part of the cache key.</summary>
    public string ModelKey { get; }

    /// <summary>The chunk settings in effect (after capping at the model's limit).</summary>
    public ChunkingOptions Chunking { get; }

    /// <summary>
    /// Loads the model (a local folder or a Hub id, see <see cref="SentenceEmbeddingPipeline.FromPretrainedAsync"/>) with
    /// truncation on as a safety net for tokenizers whose counts are not additive, and builds the search.
    /// </summary>
    /// <exception cref="ModelUnavailableException">Not a local folder, not cached, and the Hub cannot be reached.</exception>
    public static async Task<DocumentSearch> FromPretrainedAsync(string modelIdOrFolder, ChunkingOptions? chunking = null, PipelineOptions? options = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelIdOrFolder);
        options = (options ?? new PipelineOptions()) with { Truncation = true };
        var pipeline = await SentenceEmbeddingPipeline.FromPretrainedAsync(modelIdOrFolder, options, ct).ConfigureAwait(false);
        var key = await ModelKeyAsync(modelIdOrFolder, options, ct).ConfigureAwait(false);
        return new DocumentSearch(pipeline, key, chunking);
    }

    /// <summary>
    /// The model's cache key: the id (a local folder's full path), the resolved commit, the SHA-256 of config.json, and
    /// the size and last write time of every weight file.
    /// </summary>
    public static async Task<string> ModelKeyAsync(string modelIdOrFolder, PipelineOptions? options = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelIdOrFolder);
        var files = await ModelFolders.ResolveAsync(modelIdOrFolder, options ?? new PipelineOptions(), "pass --model a local model folder.", ct).ConfigureAwait(false);
        var id = Directory.Exists(modelIdOrFolder) ? Path.GetFullPath(modelIdOrFolder) : modelIdOrFolder;
        var key = new StringBuilder();
        key.Append(id).Append('@').Append(files.CommitHash ?? "local");
        key.Append(";config=").Append(Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(files.ConfigPath, ct).ConfigureAwait(false))));
        foreach (var weights in files.WeightPaths)
        {
            var info = new FileInfo(weights);
            key.Append(CultureInfo.InvariantCulture, $";{Path.GetFileName(weights)}={info.Length}:{info.LastWriteTimeUtc.Ticks}");
        }

        return key.ToString();
    }

    /// <summary>Tokens of <paramref name="text"/> without the special tokens the tokenizer adds.</summary>
    public int CountTokens(string text)
    {
        var encoding = Pipeline.Tokenizer.Encode(text);
        int count = 0;
        for (int i = 0; i < encoding.Count; i++)
        {
            if (encoding.SpecialTokensMask[i] == 0)
            {
                count++;
            }
        }

        return count;
    }

    /// <summary>The passages of one text (a file's or a JSONL record's), with lines counted in the file.</summary>
    public IReadOnlyList<DocumentChunk> ChunkText(DocumentText text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var spans = DocumentChunker.Chunk(text.Text, CountTokens, Chunking);
        return spans.Select(s => new DocumentChunk(
            text.File,
            text.IsRecord ? text.Line : s.LineStart,
            text.IsRecord ? text.Line : s.LineEnd,
            s.Start,
            s.End,
            text.IsRecord,
            text.Text[s.Start..s.End])).ToList();
    }

    /// <summary>
    /// Indexes <paramref name="folder"/>: reuses the cache for unchanged files, chunks and embeds new and changed ones
    /// (reporting progress per batch), drops deleted ones, and writes the cache back when anything changed.
    /// </summary>
    /// <param name="folder">The documents folder.</param>
    /// <param name="options">Cache location, rebuild, batch size.</param>
    /// <param name="progress">Told after every embedded batch (Done/Total count the chunks embedded now).</param>
    /// <param name="ct">Checked between batches.</param>
    /// <returns>The index.</returns>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidDataException">The folder holds no documents, or none with readable text.</exception>
    public SearchIndex BuildIndex(string folder, SearchIndexOptions? options = null, IProgress<EmbeddingProgress>? progress = null, CancellationToken ct = default)
    {
        options ??= new SearchIndexOptions();
        if (options.BatchSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.BatchSize, $"--batch-size is {options.BatchSize}; pass at least 1.");
        }

        var listed = DocumentReader.List(folder, out var otherTypes);
        if (listed.Count == 0)
        {
            var others = otherTypes.Count == 0 ? "it is empty" : "it holds only " + string.Join(", ", otherTypes.Select(o => $"{o.Value} {o.Key}"));
            throw new InvalidDataException(
                $"--docs folder '{folder}' has no documents ({others}); put .txt, .md or .jsonl files (with a \"text\" field) in it or its sub-folders.");
        }

        var cacheDir = CacheDirectory(folder, options.CacheDirectory);
        var name = CacheName();
        var manifestPath = Path.Combine(cacheDir, name + ".json");
        var matrixPath = Path.Combine(cacheDir, name + ".f32");
        string? cacheNote = null;
        var cached = options.Rebuild ? null : LoadCache(manifestPath, matrixPath, out cacheNote);
        var cachedFiles = cached?.Manifest.Files.ToDictionary(f => f.File, StringComparer.Ordinal) ?? [];

        var skipped = new List<SkippedDocument>();
        var entries = new List<(ManifestFile Entry, int[]? OldRows)>();
        var pending = new List<DocumentChunk>();
        int filesReused = 0, filesEmbedded = 0, chunksReused = 0;
        bool changed = cached is null;
        foreach (var (file, fullPath) in listed)
        {
            ct.ThrowIfCancellationRequested();
            var info = new FileInfo(fullPath);
            if (cachedFiles.TryGetValue(file, out var old) && old.Size == info.Length && old.LastWriteUtcTicks == info.LastWriteTimeUtc.Ticks)
            {
                skipped.AddRange(old.Skipped.Select(s => new SkippedDocument(s.File, s.Reason)));
                entries.Add((old, old.Chunks.Select(c => c.Row).ToArray()));
                filesReused++;
                chunksReused += old.Chunks.Count;
                continue;
            }

            var fileSkips = new List<SkippedDocument>();
            var document = DocumentReader.Read(file, fullPath, fileSkips);
            skipped.AddRange(fileSkips);
            if (document is null)
            {
                continue;
            }

            changed = true;

            var entry = new ManifestFile
            {
                File = file,
                Size = document.Size,
                LastWriteUtcTicks = document.LastWriteUtcTicks,
                Sha256 = document.Sha256,
                Skipped = fileSkips.Select(s => new ManifestSkip { File = s.File, Reason = s.Reason }).ToList(),
            };
            if (old is not null && old.Sha256 == document.Sha256)
            {
                entry.Chunks = old.Chunks;
                entries.Add((entry, old.Chunks.Select(c => c.Row).ToArray()));
                filesReused++;
                chunksReused += old.Chunks.Count;
                continue;
            }

            var chunks = document.Texts.SelectMany(ChunkText).ToList();
            entry.Chunks = chunks.Select(c => new ManifestChunk
            {
                Row = -1,
                LineStart = c.LineStart,
                LineEnd = c.LineEnd,
                Start = c.Start,
                End = c.End,
                InRecord = c.InRecord,
                Text = c.Text,
            }).ToList();
            entries.Add((entry, null));
            pending.AddRange(chunks);
            filesEmbedded++;
        }

        var present = new HashSet<string>(entries.Select(e => e.Entry.File), StringComparer.Ordinal);
        int filesRemoved = cachedFiles.Keys.Count(f => !present.Contains(f));
        changed |= filesRemoved > 0;

        int dims = Pipeline.Dimensions;
        var fresh = pending.Count == 0 ? [] : Pipeline.Embed(pending.Select(c => c.Text).ToList(), options.BatchSize, progress, ct: ct);

        // Assemble the matrix in file order: reused rows copied from the cache, new rows from this run's embeddings.
        int total = entries.Sum(e => e.Entry.Chunks.Count);
        var matrix = new float[(long)total * dims];
        var chunksOut = new List<DocumentChunk>(total);
        int row = 0, next = 0;
        foreach (var (entry, oldRows) in entries)
        {
            for (int i = 0; i < entry.Chunks.Count; i++)
            {
                var c = entry.Chunks[i];
                var source = oldRows is null ? fresh[next++] : cached!.Matrix.AsSpan(oldRows[i] * dims, dims);
                source.CopyTo(matrix.AsSpan(row * dims, dims));
                changed |= c.Row != row;
                entry.Chunks[i] = c with { Row = row };
                chunksOut.Add(new DocumentChunk(entry.File, c.LineStart, c.LineEnd, c.Start, c.End, c.InRecord, c.Text));
                row++;
            }
        }

        if (total == 0)
        {
            var why = skipped.Count == 0 ? "" : " (" + string.Join("; ", skipped.Take(3).Select(s => $"{s.File}: {s.Reason}")) + (skipped.Count > 3 ? "; …" : "") + ")";
            throw new InvalidDataException(
                $"--docs folder '{folder}' has no readable documents{why}; add UTF-8 .txt, .md or .jsonl files with text.");
        }

        var manifest = new Manifest
        {
            Format = "sharpformer-search",
            Version = CacheFormatVersion,
            Model = ModelKey,
            MaxTokens = Chunking.MaxTokens,
            OverlapTokens = Chunking.OverlapTokens,
            Dimensions = dims,
            Rows = total,
            Files = entries.Select(e => e.Entry).ToList(),
        };
        if (changed)
        {
            WriteCache(manifestPath, matrixPath, manifest, matrix);
        }

        var update = new IndexUpdate(manifestPath, entries.Count, filesReused, filesEmbedded, filesRemoved, chunksReused, pending.Count,
            skipped, otherTypes, cacheNote);
        return new SearchIndex(chunksOut, matrix, dims, update);
    }

    /// <summary>Embeds <paramref name="query"/> and returns the <paramref name="topK"/> best passages of <paramref name="index"/>.</summary>
    /// <exception cref="ArgumentException">The query is blank, or topK is below 1.</exception>
    public IReadOnlyList<SearchHit> Search(SearchIndex index, string query, int topK = 5)
    {
        ArgumentNullException.ThrowIfNull(index);
        if (string.IsNullOrWhiteSpace(query))
        {
            throw new ArgumentException("The query is empty; pass the text to search for.", nameof(query));
        }

        if (topK < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(topK), topK, $"--top-k is {topK}; pass a whole number of at least 1.");
        }

        return index.Search(Pipeline.Embed(query), topK);
    }

    /// <summary>The cache's file name (without extension): a hash of the format version, model key and chunk settings.</summary>
    internal string CacheName()
    {
        var key = string.Create(CultureInfo.InvariantCulture, $"v{CacheFormatVersion}\n{ModelKey}\n{Chunking.MaxTokens}\n{Chunking.OverlapTokens}");
        return "index-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..16];
    }

    private static string CacheDirectory(string folder, string? requested)
    {
        if (requested is not null)
        {
            Directory.CreateDirectory(requested);
            return requested;
        }

        var local = Path.Combine(folder, CacheFolderName);
        try
        {
            Directory.CreateDirectory(local);
            var probe = Path.Combine(local, ".write-test");
            File.WriteAllText(probe, "");
            File.Delete(probe);
            return local;
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Path.GetFullPath(folder))))[..16];
            var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            var user = Path.Combine(home, ".cache", "sharpformer", "search", hash);
            Directory.CreateDirectory(user);
            return user;
        }
    }

    private sealed record Cached(Manifest Manifest, float[] Matrix);

    private Cached? LoadCache(string manifestPath, string matrixPath, out string? note)
    {
        note = null;
        if (!File.Exists(manifestPath) || !File.Exists(matrixPath))
        {
            return null;
        }

        try
        {
            var manifest = JsonSerializer.Deserialize<Manifest>(File.ReadAllBytes(manifestPath), ManifestJson);
            if (manifest is null || manifest.Format != "sharpformer-search" || manifest.Version != CacheFormatVersion)
            {
                note = $"{manifestPath} is not a version-{CacheFormatVersion} search cache; rebuilding it";
                return null;
            }

            if (manifest.Model != ModelKey || manifest.Dimensions != Pipeline.Dimensions
                || manifest.MaxTokens != Chunking.MaxTokens || manifest.OverlapTokens != Chunking.OverlapTokens)
            {
                note = $"{manifestPath} was made with other settings; rebuilding it";
                return null;
            }

            var bytes = File.ReadAllBytes(matrixPath);
            const int header = 20;
            long expected = header + ((long)manifest.Rows * manifest.Dimensions * sizeof(float));
            if (bytes.Length != expected || !bytes.AsSpan(0, 8).SequenceEqual(Magic)
                || BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(8)) != CacheFormatVersion
                || BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(12)) != manifest.Rows
                || BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(16)) != manifest.Dimensions
                || manifest.Files.Sum(f => f.Chunks.Count) != manifest.Rows
                || manifest.Files.Any(f => f.Chunks.Any(c => c.Row < 0 || c.Row >= manifest.Rows))
                || manifest.MatrixSha256 != Convert.ToHexStringLower(SHA256.HashData(bytes)))
            {
                note = $"{matrixPath} does not match its manifest (truncated or from another run); rebuilding it";
                return null;
            }

            var matrix = new float[manifest.Rows * manifest.Dimensions];
            for (int i = 0; i < matrix.Length; i++)
            {
                matrix[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(header + (i * sizeof(float))));
            }

            return new Cached(manifest, matrix);
        }
        catch (JsonException e)
        {
            note = $"{manifestPath} is not valid JSON ({e.Message.ReplaceLineEndings(" ")}); rebuilding it";
            return null;
        }
    }

    private static void WriteCache(string manifestPath, string matrixPath, Manifest manifest, float[] matrix)
    {
        var bytes = new byte[20 + (matrix.Length * sizeof(float))];
        Magic.CopyTo(bytes, 0);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(8), CacheFormatVersion);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(12), manifest.Rows);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(16), manifest.Dimensions);
        for (int i = 0; i < matrix.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(20 + (i * sizeof(float))), matrix[i]);
        }

        manifest.MatrixSha256 = Convert.ToHexStringLower(SHA256.HashData(bytes));

        // Write both to temporary names, then move into place: a crash leaves the old pair or a mismatch the loader rejects.
        var unique = Guid.NewGuid().ToString("N");
        var tmpMatrix = $"{matrixPath}.{unique}.tmp";
        var tmpManifest = $"{manifestPath}.{unique}.tmp";
        File.WriteAllBytes(tmpMatrix, bytes);
        File.WriteAllBytes(tmpManifest, JsonSerializer.SerializeToUtf8Bytes(manifest, ManifestJson));
        File.Move(tmpMatrix, matrixPath, overwrite: true);
        File.Move(tmpManifest, manifestPath, overwrite: true);
    }

    private sealed class Manifest
    {
        public string Format { get; set; } = "";

        public int Version { get; set; }

        public string Model { get; set; } = "";

        public int MaxTokens { get; set; }

        public int OverlapTokens { get; set; }

        public int Dimensions { get; set; }

        public int Rows { get; set; }

        public string MatrixSha256 { get; set; } = "";

        public List<ManifestFile> Files { get; set; } = [];
    }

    private sealed class ManifestFile
    {
        public string File { get; set; } = "";

        public long Size { get; set; }

        public long LastWriteUtcTicks { get; set; }

        public string Sha256 { get; set; } = "";

        public List<ManifestSkip> Skipped { get; set; } = [];

        public List<ManifestChunk> Chunks { get; set; } = [];
    }

    private sealed class ManifestSkip
    {
        public string File { get; set; } = "";

        public string Reason { get; set; } = "";
    }

    private sealed record ManifestChunk
    {
        public int Row { get; init; }

        public int LineStart { get; init; }

        public int LineEnd { get; init; }

        public int Start { get; init; }

        public int End { get; init; }

        public bool InRecord { get; init; }

        public string Text { get; init; } = "";
    }
}
