using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;

namespace Sharpformer.IO.Hub;

/// <summary>
/// Downloads files from the Hugging Face Hub into huggingface_hub's cache, as <c>hf_hub_download</c> and
/// <c>from_pretrained</c> do: a HEAD on the resolve URL for commit, etag and size; a GET (following the CDN
/// redirect) into a unique temp file; size and LFS sha256 verified; an atomic rename to <c>blobs/{etag}</c>; a
/// relative symlink in <c>snapshots/{commit}/</c>. A cache written by Python's huggingface_hub is read as-is, and
/// the other way round.
/// </summary>
public sealed class HubClient : IDisposable
{
    /// <summary>Cap on JSON bodies from the API (repo listings, shard indexes); a larger answer is an error, not an OOM.</summary>
    internal const int MaxJsonBytes = 32 << 20;

    private const int MaxRedirects = 10;
    private readonly HttpClient _http;

    /// <summary>Creates a client; <paramref name="options"/> defaults to <see cref="HubOptions.FromEnvironment"/>.</summary>
    public HubClient(HubOptions? options = null)
    {
        Options = options ?? HubOptions.FromEnvironment();
        var handler = new SocketsHttpHandler
        {
            // Redirects are followed by hand: the metadata HEAD must see the CDN redirect, and the token must not
            // follow a redirect to another host.
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = Options.MetadataTimeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        };
        _http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>The endpoint, token, cache folder and mode in use.</summary>
    public HubOptions Options { get; }

    /// <summary>
    /// Returns the local path of <paramref name="filename"/> in <paramref name="repoId"/> at <paramref name="revision"/>,
    /// downloading it into the cache when needed. The path is <c>{cache}/models--{ns}--{name}/snapshots/{commit}/{filename}</c>,
    /// or the file inside <paramref name="repoId"/> when that is an existing local folder.
    /// </summary>
    /// <exception cref="ArgumentException">The repo id, revision or filename is malformed or would escape the cache.</exception>
    /// <exception cref="HubException">A subclass says why: not found, gated, offline cache miss, network, integrity.</exception>
    public async Task<string> DownloadFileAsync(string repoId, string filename, string revision = "main",
        IProgress<DownloadProgress>? progress = null, CancellationToken ct = default)
    {
        var resolved = await ResolveAsync(repoId, filename, revision, optional: false, progress, ct).ConfigureAwait(false);
        return resolved.Path!;
    }

    /// <summary>
    /// As <see cref="DownloadFileAsync"/>, but returns null when the file does not exist at that revision, recording the
    /// miss in <c>.no_exist/{commit}/</c> so later (and offline) lookups need no request.
    /// </summary>
    /// <exception cref="HubException">Any failure other than "this file does not exist".</exception>
    public async Task<string?> TryDownloadFileAsync(string repoId, string filename, string revision = "main",
        IProgress<DownloadProgress>? progress = null, CancellationToken ct = default)
    {
        var resolved = await ResolveAsync(repoId, filename, revision, optional: true, progress, ct).ConfigureAwait(false);
        return resolved.Path;
    }

    /// <summary>
    /// Returns the cached path of a file without any request (huggingface_hub's try_to_load_from_cache), or null.
    /// </summary>
    /// <exception cref="ArgumentException">A name is malformed.</exception>
    public string? TryGetCachedFile(string repoId, string filename, string revision = "main")
    {
        ValidateAll(repoId, filename, revision);
        var cache = new HubCache(Options.CacheDir, repoId);
        return cache.ResolveCommit(revision) is { } commit ? cache.TryGetFile(commit, filename) : null;
    }

    /// <summary>
    /// Downloads every file of the repo at <paramref name="revision"/> whose path matches one of
    /// <paramref name="include"/> (fnmatch globs; null or empty means all) and returns the snapshot folder, as
    /// huggingface_hub's snapshot_download does. The file list comes from <c>/api/models/{repo}/revision/{revision}</c>;
    /// offline, the cached snapshot folder is returned.
    /// </summary>
    /// <exception cref="HubException">See <see cref="DownloadFileAsync"/>.</exception>
    public async Task<string> SnapshotAsync(string repoId, string revision = "main", IReadOnlyList<string>? include = null,
        IProgress<DownloadProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(repoId);
        if (Directory.Exists(repoId))
            return Path.GetFullPath(repoId);
        ThrowIfMissingPath(repoId);
        HubNames.ValidateRepoId(repoId);
        HubNames.ValidateRevision(revision);
        var cache = new HubCache(Options.CacheDir, repoId);

        if (Options.Offline)
        {
            var cachedCommit = cache.ResolveCommit(revision);
            if (cachedCommit is null || !Directory.Exists(cache.SnapshotDir(cachedCommit)))
                throw OfflineMiss(repoId, revision, "(snapshot)");
            return cache.SnapshotDir(cachedCommit);
        }

        var (commit, files) = await ListFilesAsync(repoId, revision, ct).ConfigureAwait(false);
        cache.WriteRef(revision, commit);
        Directory.CreateDirectory(cache.SnapshotDir(commit));
        foreach (var file in files)
        {
            if (Glob.MatchesAny(file, include))
                await ResolveAsync(repoId, file, commit, optional: false, progress, ct).ConfigureAwait(false);
        }
        return cache.SnapshotDir(commit);
    }

    /// <summary>The tokenizer and generation files a model may have; each is fetched when it exists.</summary>
    public static IReadOnlyList<string> OptionalModelFiles { get; } =
    [
        "tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "merges.txt", "special_tokens_map.json",
        "generation_config.json",
    ];

    /// <summary>
    /// The sentence-transformers files a model may have (modules.json, the Transformer, Pooling and usual Dense
    /// module files, prompts); fetched beside <see cref="OptionalModelFiles"/> when they exist.
    /// </summary>
    public static IReadOnlyList<string> SentenceTransformersFiles { get; } =
    [
        "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json",
        "1_Pooling/config.json", "2_Dense/config.json", "2_Dense/model.safetensors",
    ];

    /// <summary>
    /// Fetches what a model needs, as from_pretrained does: config.json, then model.safetensors or
    /// model.safetensors.index.json and every shard it lists, then each of <see cref="OptionalModelFiles"/> that exists.
    /// All files come from one commit (the one config.json resolved to). <paramref name="repoIdOrPath"/> may be a local
    /// model folder, which is read in place.
    /// </summary>
    /// <exception cref="HubException">config.json or the weights are missing, or any download failed.</exception>
    public async Task<ModelFiles> ResolveModelFilesAsync(string repoIdOrPath, string revision = "main",
        IProgress<DownloadProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(repoIdOrPath);
        var local = Directory.Exists(repoIdOrPath);
        var (configPath, commit) = await ResolveAsync(repoIdOrPath, "config.json", revision, optional: false, progress, ct).ConfigureAwait(false);
        var pinned = commit ?? revision;
        var directory = local ? Path.GetFullPath(repoIdOrPath) : Path.GetDirectoryName(configPath)!;

        var weights = new List<string>();
        string? indexPath = null;
        var single = (await ResolveAsync(repoIdOrPath, "model.safetensors", pinned, optional: true, progress, ct).ConfigureAwait(false)).Path;
        if (single is not null)
        {
            weights.Add(single);
        }
        else
        {
            indexPath = (await ResolveAsync(repoIdOrPath, "model.safetensors.index.json", pinned, optional: true, progress, ct).ConfigureAwait(false)).Path;
            if (indexPath is null)
            {
                string where = Directory.Exists(repoIdOrPath)
                    ? $"the local folder {Path.GetFullPath(repoIdOrPath)}"
                    : $"{repoIdOrPath} at revision '{revision}'";
                string fix = Directory.Exists(repoIdOrPath)
                    ? "put the weights there as safetensors (convert onnx-bert imports ONNX BERT exports)"
                    : "use a repo or revision with safetensors weights, or convert the checkpoint to safetensors first";
                throw new EntryNotFoundException(
                    $"{where} has neither model.safetensors nor model.safetensors.index.json. "
                    + $"Sharpformer loads safetensors only (it never unpickles .bin/.pt files): {fix}.");
            }
            foreach (var shard in ReadShardNames(indexPath))
                weights.Add(await DownloadFileAsync(repoIdOrPath, shard, pinned, progress, ct).ConfigureAwait(false));
        }

        var optional = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in OptionalModelFiles.Concat(SentenceTransformersFiles))
        {
            if ((await ResolveAsync(repoIdOrPath, name, pinned, optional: true, progress, ct).ConfigureAwait(false)).Path is { } path)
                optional[name] = path;
        }
        return new ModelFiles(directory, commit, configPath!, weights, indexPath, optional);
    }

    /// <summary>Releases the HTTP connections.</summary>
    public void Dispose() => _http.Dispose();

    // ---------------------------------------------------------------------------------------------------------------
    // Resolution: local folder, offline cache, commit-hash fast path, then HEAD + GET.

    private readonly record struct Resolved(string? Path, string? Commit);

    private async Task<Resolved> ResolveAsync(string repoId, string filename, string revision, bool optional,
        IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(repoId);
        if (Directory.Exists(repoId))
            return ResolveLocal(repoId, filename, optional);
        ThrowIfMissingPath(repoId);
        ValidateAll(repoId, filename, revision);
        var cache = new HubCache(Options.CacheDir, repoId);

        if (Options.Offline)
            return ResolveOffline(cache, filename, revision, optional);

        // A commit hash pins the content: a cached file (or a recorded miss) needs no request at all.
        if (HubNames.IsCommitHash(revision))
        {
            if (cache.TryGetFile(revision, filename) is { } hit)
                return new Resolved(hit, revision);
            if (optional && cache.IsKnownMissing(revision, filename))
                return new Resolved(null, revision);
        }

        FileMetadata meta;
        try
        {
            meta = await GetMetadataAsync(cache, filename, revision, ct).ConfigureAwait(false);
        }
        catch (EntryNotFoundException) when (optional)
        {
            return new Resolved(null, cache.ResolveCommit(revision));
        }
        catch (HubNetworkException) when (cache.ResolveCommit(revision) is { } cachedCommit
            && (cache.TryGetFile(cachedCommit, filename) is not null || (optional && cache.IsKnownMissing(cachedCommit, filename))))
        {
            // As huggingface_hub does: an unreachable Hub falls back to what the cache knows about this revision.
            return new Resolved(cache.TryGetFile(cachedCommit, filename), cachedCommit);
        }

        cache.WriteRef(revision, meta.Commit);
        var pointer = cache.PointerPath(meta.Commit, filename);
        if (File.Exists(pointer))
            return new Resolved(pointer, meta.Commit);

        var blob = cache.BlobPath(meta.Etag);
        var lockFile = Options.LockingDisabled
            ? FileLock.None
            : await FileLock.AcquireAsync(cache.LockPath(meta.Etag), Options.LockTimeout, ct).ConfigureAwait(false);
        using (lockFile)
        {
            // Another process may have finished this blob while we waited for the lock.
            if (!File.Exists(blob))
            {
                cache.DeleteStaleTemps(meta.Etag, TimeSpan.FromHours(1));
                await DownloadBlobAsync(cache, meta, filename, blob, progress, ct).ConfigureAwait(false);
            }
            return new Resolved(cache.LinkSnapshot(meta.Commit, filename, meta.Etag), meta.Commit);
        }
    }

    /// <summary>A name written as a path (<see cref="HubNames.LooksLikePath"/>) that is not a folder is a mistyped path, not a repo id.</summary>
    private static void ThrowIfMissingPath(string repoIdOrPath)
    {
        if (File.Exists(repoIdOrPath))
        {
            throw new DirectoryNotFoundException(
                $"{Path.GetFullPath(repoIdOrPath)} is a file; pass the model folder that holds it (config.json, the weights and the tokenizer files).");
        }

        if (HubNames.LooksLikePath(repoIdOrPath))
        {
            throw new DirectoryNotFoundException(
                $"no such folder: {Path.GetFullPath(repoIdOrPath)}. Pass an existing model folder, or a Hub repo id such as 'org/name'.");
        }
    }

    private static Resolved ResolveLocal(string folder, string filename, bool optional)
    {
        HubNames.ValidateFilename(filename);
        var root = Path.GetFullPath(folder);
        var path = Path.GetFullPath(Path.Combine(root, filename));
        if (!path.StartsWith(root.TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new ArgumentException($"'{filename}' resolves outside the model folder '{root}'.", nameof(filename));
        if (File.Exists(path))
            return new Resolved(path, null);
        if (optional)
            return new Resolved(null, null);
        throw new EntryNotFoundException($"'{filename}' not found in the local model folder '{root}'.");
    }

    private Resolved ResolveOffline(HubCache cache, string filename, string revision, bool optional)
    {
        var commit = cache.ResolveCommit(revision) ?? throw OfflineMiss(cache.RepoId, revision, filename);
        if (cache.TryGetFile(commit, filename) is { } hit)
            return new Resolved(hit, commit);
        // A recorded miss, or an optional file absent from a snapshot we have: the file does not exist.
        if (optional && (cache.IsKnownMissing(commit, filename) || Directory.Exists(cache.SnapshotDir(commit))))
            return new Resolved(null, commit);
        if (cache.IsKnownMissing(commit, filename))
            throw new EntryNotFoundException($"'{filename}' does not exist in {cache.RepoId} at revision '{revision}' (recorded in the cache's .no_exist).");
        throw OfflineMiss(cache.RepoId, revision, filename);
    }

    private OfflineCacheMissException OfflineMiss(string repoId, string revision, string filename) => new(
        $"offline mode (HF_HUB_OFFLINE=1): '{filename}' of {repoId} at revision '{revision}' is not in the cache '{Options.CacheDir}'. "
        + $"Run `sharpformer download {repoId} --revision {revision}` while online, or pass a local model folder instead of a repo id.");

    private static void ValidateAll(string repoId, string filename, string revision)
    {
        HubNames.ValidateRepoId(repoId);
        HubNames.ValidateFilename(filename);
        HubNames.ValidateRevision(revision);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // HTTP: metadata HEAD, blob GET, repo listing, error mapping.

    private sealed record FileMetadata(string Commit, string Etag, long Size, Uri Location);

    private Uri ResolveUrl(string repoId, string revision, string filename)
    {
        var escapedFile = string.Join('/', filename.Split('/').Select(Uri.EscapeDataString));
        return new Uri($"{Options.Endpoint.ToString().TrimEnd('/')}/{repoId}/resolve/{Uri.EscapeDataString(revision)}/{escapedFile}");
    }

    private async Task<FileMetadata> GetMetadataAsync(HubCache cache, string filename, string revision, CancellationToken ct)
    {
        var url = ResolveUrl(cache.RepoId, revision, filename);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(Options.MetadataTimeout);
        using var response = await SendAsync(HttpMethod.Head, url, followAbsoluteRedirects: false, cache.RepoId, filename, ct, timeout.Token).ConfigureAwait(false);
        var status = (int)response.StatusCode;
        if (status is < 200 or >= 400)
            ThrowForStatus(response, cache, revision, filename);

        var rawCommit = Header(response, "X-Repo-Commit");
        if (!HubNames.IsValidCommit(rawCommit))
        {
            throw new HubIntegrityException(
                $"{url}: the server sent no valid X-Repo-Commit header (got '{rawCommit}'), so the download cannot be pinned to a commit; "
                + "check HF_ENDPOINT points at a Hugging Face Hub (or a faithful mirror).");
        }
        var etag = HubNames.NormalizeEtag(Header(response, "X-Linked-Etag") ?? Header(response, "ETag"))
            ?? throw new HubIntegrityException($"{url}: the server sent no ETag, so the file cannot be named in the cache; check HF_ENDPOINT.");
        var sizeText = Header(response, "X-Linked-Size");
        long size;
        if (sizeText is not null)
        {
            if (!long.TryParse(sizeText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out size))
                throw new HubIntegrityException($"{url}: X-Linked-Size '{sizeText}' is not a byte count.");
        }
        else
        {
            size = response.Content.Headers.ContentLength
                ?? throw new HubIntegrityException($"{url}: the server sent neither X-Linked-Size nor Content-Length; the download could not be verified.");
        }
        var location = status is >= 300 and < 400 ? RedirectTarget(response, url) ?? url : url;
        return new FileMetadata(rawCommit!, etag, size, location);
    }

    /// <summary>
    /// Downloads one blob into a temp file beside it and renames it into place once its size (and, for LFS files, its
    /// sha256) check out. As huggingface_hub does, the temp file is <c>blobs/&lt;etag&gt;.incomplete</c> (the blob's lock
    /// makes it ours), so a download that broke off, in this process or an earlier one, continues from the bytes on disk
    /// with a <c>Range</c> request; transient failures (the connection dropping, stalls, 429 and 5xx answers) are retried
    /// up to <see cref="HubOptions.MaxRetries"/> times with exponential backoff, honouring <c>Retry-After</c>.
    /// </summary>
    private async Task DownloadBlobAsync(HubCache cache, FileMetadata meta, string filename, string blob,
        IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        Directory.CreateDirectory(cache.BlobsDir);
        // Without the lock (a test hook for file systems whose locks do nothing) concurrent downloaders must not share
        // bytes, so each gets a process-unique temp file and nothing resumes across processes.
        var temp = Options.LockingDisabled
            ? blob + "." + Environment.ProcessId + "-" + Guid.NewGuid().ToString("N") + ".incomplete"
            : blob + ".incomplete";
        var keepPartial = false;
        try
        {
            for (var attempt = 0; ; attempt++)
            {
                TimeSpan? retryAfter;
                try
                {
                    retryAfter = await DownloadAttemptAsync(cache, meta, filename, temp, progress, ct).ConfigureAwait(false);
                    if (retryAfter is null)
                        break;
                }
                catch (HubNetworkException) when (attempt < Options.MaxRetries && !ct.IsCancellationRequested)
                {
                    retryAfter = null;
                }
                catch (Exception e) when (e is HubNetworkException || (e is OperationCanceledException && ct.IsCancellationRequested))
                {
                    // Out of attempts, or cancelled: what arrived stays as blobs/<etag>.incomplete for the next try to continue from.
                    keepPartial = !Options.LockingDisabled;
                    throw;
                }

                if (attempt >= Options.MaxRetries)
                {
                    keepPartial = !Options.LockingDisabled;
                    throw new HubNetworkException(
                        $"the Hub kept answering 'busy' (HTTP 429/5xx) for '{filename}' of {cache.RepoId} after {Options.MaxRetries + 1} attempts; "
                        + "retry later: the bytes already received are kept and the next download continues from them.");
                }

                await Task.Delay(retryAfter ?? Backoff(attempt), ct).ConfigureAwait(false);
            }

            await VerifyAsync(cache, meta, filename, temp, ct).ConfigureAwait(false);
            File.Move(temp, blob, overwrite: true);
            progress?.Report(new DownloadProgress(filename, meta.Size, meta.Size));
        }
        finally
        {
            if (!keepPartial && File.Exists(temp))
                File.Delete(temp);
        }
    }

    /// <summary>huggingface_hub's http_backoff: the base delay doubled per attempt, capped at <see cref="HubOptions.RetryMaxDelay"/>.</summary>
    private TimeSpan Backoff(int attempt)
    {
        var delay = Options.RetryBaseDelay * Math.Pow(2, Math.Min(attempt, 16));
        return delay < Options.RetryMaxDelay ? delay : Options.RetryMaxDelay;
    }

    /// <summary>
    /// One GET of the rest of a blob, appended to <paramref name="temp"/>. Returns null when the file is complete, or the
    /// delay before the next attempt when the server asked to come back (429/5xx); throws <see cref="HubNetworkException"/>
    /// when the connection broke (the bytes written so far stay) and the Hub's own exceptions for permanent errors.
    /// </summary>
    private async Task<TimeSpan?> DownloadAttemptAsync(HubCache cache, FileMetadata meta, string filename, string temp,
        IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        long have = File.Exists(temp) ? new FileInfo(temp).Length : 0;
        if (have > meta.Size)
        {
            File.Delete(temp);
            have = 0;
        }
        if (have == meta.Size)
            return null;

        using var connect = CancellationTokenSource.CreateLinkedTokenSource(ct);
        connect.CancelAfter(Options.MetadataTimeout);
        using var response = await SendAsync(HttpMethod.Get, meta.Location, followAbsoluteRedirects: true, cache.RepoId, filename, ct, connect.Token,
            rangeFrom: have > 0 ? have : null).ConfigureAwait(false);
        // The connect/headers limit ends here; the body is guarded by the per-read stall timeout below.
        connect.CancelAfter(Timeout.InfiniteTimeSpan);
        var status = (int)response.StatusCode;
        if (status == 429 || status >= 500)
            return RetryAfter(response) ?? Backoff(0);
        if (status == 416)
        {
            // The range lies past the end of what the server holds: the partial file is not a prefix of this blob.
            File.Delete(temp);
            throw new HubIntegrityException(
                $"{meta.Location.Host} holds fewer bytes of '{filename}' of {cache.RepoId} than the {have} already received (HTTP 416); "
                + "the partial file was deleted: retry the download.");
        }
        if (!response.IsSuccessStatusCode)
            ThrowForStatus(response, cache, meta.Commit, filename);

        long received = have;
        if (have > 0 && status != 206)
        {
            received = 0; // The server ignored the range and sends the whole file.
        }
        else if (have > 0 && response.Content.Headers.ContentRange is { } range && range.From != have)
        {
            throw new HubIntegrityException(
                $"asked {meta.Location.Host} for '{filename}' of {cache.RepoId} from byte {have}, but it answered from byte {range.From}; "
                + "delete the .incomplete file in the cache's blobs folder and retry.");
        }

        long resumedFrom = received;
        progress?.Report(new DownloadProgress(filename, received, meta.Size) { ResumedFrom = resumedFrom });
        try
        {
            var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            await using (body.ConfigureAwait(false))
            {
                var file = new FileStream(temp, received == 0 ? FileMode.Create : FileMode.Append, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
                await using (file.ConfigureAwait(false))
                {
                    var buffer = new byte[1 << 16];
                    using var stall = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    long lastReport = received;
                    while (true)
                    {
                        stall.CancelAfter(Options.ReadTimeout);
                        int n;
                        try
                        {
                            n = await body.ReadAsync(buffer, stall.Token).ConfigureAwait(false);
                        }
                        catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
                        {
                            throw new HubNetworkException(
                                $"no data for {Options.ReadTimeout.TotalSeconds:F0} s while downloading '{filename}' of {cache.RepoId} from {meta.Location.Host}; "
                                + "retry, or raise HF_HUB_DOWNLOAD_TIMEOUT.", e);
                        }
                        if (n == 0)
                            break;
                        if (received + n > meta.Size)
                        {
                            file.SetLength(0);
                            throw new HubIntegrityException(
                                $"consistency check failed: '{filename}' of {cache.RepoId} should be {meta.Size} bytes but more arrived; nothing was cached. Retry the download.");
                        }
                        await file.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                        received += n;
                        if (received - lastReport >= 1 << 20)
                        {
                            progress?.Report(new DownloadProgress(filename, received, meta.Size) { ResumedFrom = resumedFrom });
                            lastReport = received;
                        }
                    }
                    file.Flush(flushToDisk: true);
                }
            }
        }
        catch (Exception e) when (e is HttpRequestException or IOException && !ct.IsCancellationRequested)
        {
            throw new HubNetworkException(
                $"the download of '{filename}' from {cache.RepoId} broke off at byte {received} of {meta.Size} ({e.Message}); retry to continue from there.", e);
        }

        if (received != meta.Size)
        {
            // The body ended cleanly (a cut connection throws above), so the server's file is not the advertised size.
            File.Delete(temp);
            throw new HubIntegrityException(
                $"consistency check failed: '{filename}' of {cache.RepoId} should be {meta.Size} bytes but {received} arrived; nothing was cached. Retry the download.");
        }
        return null;
    }

    /// <summary>The complete temp file against the advertised size and, for LFS files, the sha256 the etag names.</summary>
    private static async Task VerifyAsync(HubCache cache, FileMetadata meta, string filename, string temp, CancellationToken ct)
    {
        long length = new FileInfo(temp).Length;
        if (length != meta.Size)
        {
            throw new HubIntegrityException(
                $"consistency check failed: '{filename}' of {cache.RepoId} should be {meta.Size} bytes but {length} arrived; nothing was cached. Retry the download.");
        }
        if (meta.Etag.Length != 64)
            return;
        var stream = new FileStream(temp, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        await using (stream.ConfigureAwait(false))
        {
            var actual = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, ct).ConfigureAwait(false));
            if (actual != meta.Etag)
            {
                throw new HubIntegrityException(
                    $"sha256 mismatch for '{filename}' of {cache.RepoId}: expected {meta.Etag} (LFS oid), got {actual}; nothing was cached. "
                    + "Retry the download; if it persists the server or a proxy is corrupting the file.");
            }
        }
    }

    /// <summary>The server's Retry-After (seconds or an HTTP date), capped at a minute; null when absent.</summary>
    private static TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        var header = response.Headers.RetryAfter;
        TimeSpan? wait = header?.Delta ?? (header?.Date is { } date ? date - DateTimeOffset.UtcNow : null);
        if (wait is not { } w)
            return null;
        if (w < TimeSpan.Zero)
            return TimeSpan.Zero;
        return w > TimeSpan.FromMinutes(1) ? TimeSpan.FromMinutes(1) : w;
    }

    private async Task<(string Commit, IReadOnlyList<string> Files)> ListFilesAsync(string repoId, string revision, CancellationToken ct)
    {
        var url = new Uri($"{Options.Endpoint.ToString().TrimEnd('/')}/api/models/{repoId}/revision/{Uri.EscapeDataString(revision)}");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(Options.MetadataTimeout);
        using var response = await SendAsync(HttpMethod.Get, url, followAbsoluteRedirects: false, repoId, "(file list)", ct, timeout.Token).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
            ThrowForStatus(response, new HubCache(Options.CacheDir, repoId), revision, null);
        var bytes = await ReadCappedAsync(response, url, timeout.Token).ConfigureAwait(false);

        string? sha;
        var files = new List<string>();
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            sha = doc.RootElement.TryGetProperty("sha", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
            if (doc.RootElement.TryGetProperty("siblings", out var siblings) && siblings.ValueKind == JsonValueKind.Array)
            {
                foreach (var sibling in siblings.EnumerateArray())
                {
                    if (sibling.ValueKind == JsonValueKind.Object && sibling.TryGetProperty("rfilename", out var name) && name.ValueKind == JsonValueKind.String)
                        files.Add(name.GetString()!);
                }
            }
        }
        catch (JsonException e)
        {
            throw new HubIntegrityException($"{url}: the file list is not valid JSON ({e.Message}).", e);
        }
        if (!HubNames.IsValidCommit(sha))
            throw new HubIntegrityException($"{url}: the answer has no 40-hex 'sha'; cannot pin the snapshot to a commit.");
        foreach (var file in files)
        {
            try
            {
                HubNames.ValidateFilename(file);
            }
            catch (ArgumentException e)
            {
                throw new HubIntegrityException($"{url}: the server listed an unsafe file name: {e.Message}", e);
            }
        }
        return (sha!, files);
    }

    private static async Task<byte[]> ReadCappedAsync(HttpResponseMessage response, Uri url, CancellationToken ct)
    {
        if (response.Content.Headers.ContentLength > MaxJsonBytes)
            throw new HubIntegrityException($"{url}: the answer is larger than {MaxJsonBytes >> 20} MiB; refusing to read it.");
        var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        await using (body.ConfigureAwait(false))
        {
            using var memory = new MemoryStream();
            var buffer = new byte[1 << 16];
            int n;
            while ((n = await body.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
            {
                if (memory.Length + n > MaxJsonBytes)
                    throw new HubIntegrityException($"{url}: the answer is larger than {MaxJsonBytes >> 20} MiB; refusing to read it.");
                memory.Write(buffer, 0, n);
            }
            return memory.ToArray();
        }
    }

    /// <summary>
    /// Sends one request and follows redirects by hand. The token goes only to the endpoint's own origin, so it is
    /// dropped on a redirect to a CDN. With <paramref name="followAbsoluteRedirects"/> false (the metadata HEAD) only
    /// relative redirects (renamed repos) are followed and an absolute one is returned for its headers.
    /// </summary>
    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri url, bool followAbsoluteRedirects,
        string repoId, string filename, CancellationToken callerToken, CancellationToken token, long? rangeFrom = null)
    {
        for (var hop = 0; ; hop++)
        {
            using var request = new HttpRequestMessage(method, url);
            request.Headers.TryAddWithoutValidation("User-Agent", Options.UserAgent);
            if (method == HttpMethod.Head)
                request.Headers.TryAddWithoutValidation("Accept-Encoding", "identity");
            if (rangeFrom is { } from)
                request.Headers.Range = new RangeHeaderValue(from, null);
            if (Options.Token is not null && SameOrigin(url, Options.Endpoint))
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Options.Token);

            HttpResponseMessage response;
            try
            {
                response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, token).ConfigureAwait(false);
            }
            catch (HttpRequestException e)
            {
                throw new HubNetworkException(
                    $"cannot reach {url.GetLeftPart(UriPartial.Authority)} for '{filename}' of {repoId} ({e.Message}); "
                    + "check the network or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use the cache only.", e);
            }
            catch (OperationCanceledException e) when (!callerToken.IsCancellationRequested)
            {
                throw new HubNetworkException(
                    $"{url.GetLeftPart(UriPartial.Authority)} did not answer in {Options.MetadataTimeout.TotalSeconds:F0} s for '{filename}' of {repoId}; "
                    + "check the network, raise HF_HUB_ETAG_TIMEOUT, or set HF_HUB_OFFLINE=1 to use the cache only.", e);
            }

            var status = (int)response.StatusCode;
            if (status is < 300 or >= 400 || RedirectTarget(response, url) is not { } next)
                return response;
            var relative = !IsAbsoluteHttp(Header(response, "Location")!);
            if (!followAbsoluteRedirects && !relative)
                return response;
            response.Dispose();
            if (hop >= MaxRedirects)
                throw new HubNetworkException($"more than {MaxRedirects} redirects for '{filename}' of {repoId} starting at {url}.");
            url = next;
        }
    }

    private static bool SameOrigin(Uri a, Uri b) =>
        string.Equals(a.Scheme, b.Scheme, StringComparison.OrdinalIgnoreCase)
        && string.Equals(a.IdnHost, b.IdnHost, StringComparison.OrdinalIgnoreCase)
        && a.Port == b.Port;

    private static bool IsAbsoluteHttp(string location) =>
        location.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || location.StartsWith("https://", StringComparison.OrdinalIgnoreCase);

    /// <summary>The redirect target from the raw Location header (on Unix, "/x" would otherwise parse as a file URI).</summary>
    private static Uri? RedirectTarget(HttpResponseMessage response, Uri requestUrl)
    {
        var location = Header(response, "Location");
        if (string.IsNullOrEmpty(location))
            return null;
        var target = IsAbsoluteHttp(location) ? new Uri(location) : new Uri(requestUrl, location);
        return target.Scheme is "http" or "https" ? target : null;
    }

    private static string? Header(HttpResponseMessage response, string name)
    {
        if (response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values))
            return values.FirstOrDefault();
        return null;
    }

    /// <summary>Maps an error status to the exception huggingface_hub's hf_raise_for_status would raise.</summary>
    private void ThrowForStatus(HttpResponseMessage response, HubCache cache, string revision, string? filename)
    {
        var status = (int)response.StatusCode;
        var code = Header(response, "X-Error-Code");
        var serverMessage = Header(response, "X-Error-Message");
        var detail = serverMessage is null ? $"HTTP {status}" : $"HTTP {status}: {serverMessage}";
        var repoId = cache.RepoId;
        var what = filename is null ? $"{repoId} at revision '{revision}'" : $"'{filename}' of {repoId} at revision '{revision}'";
        var repoPage = $"{Options.Endpoint.ToString().TrimEnd('/')}/{repoId}";

        if (code == "GatedRepo" || status == 403)
        {
            var tokenHint = Options.Token is null
                ? "set HF_TOKEN (or log in so $HF_HOME/token exists) to a token of an account that has accepted its license"
                : "the token sent has no access: accept the license with the account that owns the token, or use another token";
            throw new GatedRepoException($"{what} is gated or forbidden ({detail}): visit {repoPage} to request access, then {tokenHint}.");
        }
        if (code == "RepoNotFound" || status == 401)
        {
            throw new RepositoryNotFoundException(
                $"repository {repoId} was not found at {Options.Endpoint} ({detail}). Check the id; if it is private or gated, set HF_TOKEN to a token with access.");
        }
        if (code == "RevisionNotFound")
            throw new RevisionNotFoundException($"revision '{revision}' does not exist in {repoId} ({detail}); use a branch, tag or commit listed at {repoPage}.");
        if (status == 404)
        {
            if (filename is null)
                throw new RepositoryNotFoundException($"{repoId} at revision '{revision}' was not found at {Options.Endpoint} ({detail}).");
            // Record the miss the way huggingface_hub does, so later lookups (also offline) know without asking.
            var commit = Header(response, "X-Repo-Commit");
            if (HubNames.IsValidCommit(commit))
            {
                cache.WriteRef(revision, commit!);
                cache.MarkMissing(commit!, filename);
            }
            throw new EntryNotFoundException($"{what} does not exist ({detail}); check the file name and revision at {repoPage}.");
        }
        throw new HubHttpException($"{Options.Endpoint} answered {detail} for {what}; retry later or check HF_ENDPOINT.");
    }

    private static SortedSet<string> ReadShardNames(string indexPath)
    {
        JsonDocument doc;
        try
        {
            var info = new FileInfo(indexPath);
            if (info.Length > MaxJsonBytes)
                throw new HubIntegrityException($"{indexPath}: the shard index is larger than {MaxJsonBytes >> 20} MiB.");
            doc = JsonDocument.Parse(File.ReadAllBytes(indexPath));
        }
        catch (JsonException e)
        {
            throw new HubIntegrityException($"{indexPath}: the shard index is not valid JSON ({e.Message}).", e);
        }
        using (doc)
        {
            if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new HubIntegrityException($"{indexPath}: the shard index has no 'weight_map' object.");
            var shards = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw new HubIntegrityException($"{indexPath}: weight_map['{entry.Name}'] is not a file name.");
                var shard = entry.Value.GetString()!;
                try
                {
                    HubNames.ValidateFilename(shard);
                }
                catch (ArgumentException e)
                {
                    throw new HubIntegrityException($"{indexPath}: weight_map['{entry.Name}'] names an unsafe shard path: {e.Message}", e);
                }
                shards.Add(shard);
            }
            return shards;
        }
    }
}
