namespace Sharpformer.IO.Hub;

/// <summary>
/// Where and how the Hub client downloads. <see cref="FromEnvironment"/> reads the same variables as Python's
/// huggingface_hub, so both share one cache and one token.
/// </summary>
public sealed record HubOptions
{
    /// <summary>The default endpoint, <c>https://huggingface.co</c>.</summary>
    public static readonly Uri DefaultEndpoint = new("https://huggingface.co");

    /// <summary>Base URL of the Hub (<c>HF_ENDPOINT</c>); resolve URLs are <c>{Endpoint}/{repo}/resolve/{revision}/{file}</c>.</summary>
    public Uri Endpoint { get; init; } = DefaultEndpoint;

    /// <summary>Access token for private and gated repos (<c>HF_TOKEN</c>, or the file <c>$HF_HOME/token</c>); null sends none.</summary>
    public string? Token { get; init; }

    /// <summary>The cache root holding <c>models--*</c> folders (<c>HF_HUB_CACHE</c>, else <c>$HF_HOME/hub</c>).</summary>
    public string CacheDir { get; init; } = ResolveCacheDir(Environment.GetEnvironmentVariable);

    /// <summary>When true (<c>HF_HUB_OFFLINE=1</c>), no HTTP request is made and only cached files resolve.</summary>
    public bool Offline { get; init; }

    /// <summary>Sent as the User-Agent header.</summary>
    public string UserAgent { get; init; } = "sharpformer/0.1; hf_hub-compatible; dotnet/" + Environment.Version;

    /// <summary>Limit for connecting and for each metadata request (<c>HF_HUB_ETAG_TIMEOUT</c>, default 10 s).</summary>
    public TimeSpan MetadataTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Longest wait for the next bytes of a download before it is abandoned (<c>HF_HUB_DOWNLOAD_TIMEOUT</c>, default 10 s).</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Longest wait for another process that is downloading the same blob.</summary>
    public TimeSpan LockTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// How many times a download that broke off (connection dropped, stalled, HTTP 429 or 5xx) is retried, each time
    /// continuing from the bytes already on disk (default 5, as huggingface_hub's http_backoff).
    /// </summary>
    public int MaxRetries { get; init; } = 5;

    /// <summary>The wait before the first retry; it doubles per attempt up to <see cref="RetryMaxDelay"/> (default 1 s).</summary>
    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between retries (default 8 s); a server's Retry-After wins, capped at a minute.</summary>
    public TimeSpan RetryMaxDelay { get; init; } = TimeSpan.FromSeconds(8);

    /// <summary>Test hook: skip the cross-process lock, as on file systems where locks silently succeed.</summary>
    internal bool LockingDisabled { get; init; }

    /// <summary>Prints the settings with the token masked, so options can be logged safely.</summary>
    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        builder.Append("Endpoint = ").Append(Endpoint)
            .Append(", Token = ").Append(Token is null ? "(none)" : "***")
            .Append(", CacheDir = ").Append(CacheDir)
            .Append(", Offline = ").Append(Offline);
        return true;
    }

    /// <summary>
    /// Reads <c>HF_ENDPOINT</c>, <c>HF_TOKEN</c> (else <c>HF_TOKEN_PATH</c> or <c>$HF_HOME/token</c>), <c>HF_HUB_CACHE</c>
    /// (else <c>$HF_HOME/hub</c>, <c>HF_HOME</c> defaulting to <c>$XDG_CACHE_HOME/huggingface</c> or
    /// <c>~/.cache/huggingface</c>), <c>HF_HUB_OFFLINE</c>, <c>HF_HUB_ETAG_TIMEOUT</c> and <c>HF_HUB_DOWNLOAD_TIMEOUT</c>.
    /// </summary>
    /// <param name="getVariable">Reads a variable; defaults to the process environment (tests pass their own).</param>
    /// <exception cref="ArgumentException">HF_ENDPOINT is not an absolute http(s) URL.</exception>
    public static HubOptions FromEnvironment(Func<string, string?>? getVariable = null)
    {
        getVariable ??= Environment.GetEnvironmentVariable;
        var home = DefaultHome(getVariable);

        var endpoint = DefaultEndpoint;
        if (NonEmpty(getVariable("HF_ENDPOINT")) is { } rawEndpoint)
        {
            if (!Uri.TryCreate(rawEndpoint.TrimEnd('/'), UriKind.Absolute, out var parsed) || (parsed.Scheme != Uri.UriSchemeHttp && parsed.Scheme != Uri.UriSchemeHttps))
                throw new ArgumentException($"HF_ENDPOINT='{rawEndpoint}' is not an absolute http(s) URL such as https://huggingface.co.");
            endpoint = parsed;
        }

        var token = NonEmpty(getVariable("HF_TOKEN")) ?? NonEmpty(getVariable("HUGGING_FACE_HUB_TOKEN"));
        if (token is null)
        {
            var tokenPath = ExpandHome(NonEmpty(getVariable("HF_TOKEN_PATH")), getVariable) ?? Path.Combine(home, "token");
            if (File.Exists(tokenPath))
                token = NonEmpty(File.ReadAllText(tokenPath).Trim());
        }


        return new HubOptions
        {
            Endpoint = endpoint,
            Token = token,
            CacheDir = ResolveCacheDir(getVariable),
            Offline = IsTrue(getVariable("HF_HUB_OFFLINE")),
            MetadataTimeout = Seconds(getVariable("HF_HUB_ETAG_TIMEOUT"), 10),
            ReadTimeout = Seconds(getVariable("HF_HUB_DOWNLOAD_TIMEOUT"), 10),
        };
    }

    /// <summary>huggingface_hub's truthy values: 1, ON, YES, TRUE (any case).</summary>
    internal static bool IsTrue(string? value) =>
        value is not null && value.Trim().ToUpperInvariant() is "1" or "ON" or "YES" or "TRUE";

    private static string ResolveCacheDir(Func<string, string?> getVariable) =>
        ExpandHome(NonEmpty(getVariable("HF_HUB_CACHE")) ?? NonEmpty(getVariable("HUGGINGFACE_HUB_CACHE")), getVariable)
            ?? Path.Combine(DefaultHome(getVariable), "hub");

    private static string DefaultHome(Func<string, string?> getVariable)
    {
        if (ExpandHome(NonEmpty(getVariable("HF_HOME")), getVariable) is { } home)
            return home;
        var xdg = NonEmpty(getVariable("XDG_CACHE_HOME"));
        var cacheRoot = xdg ?? Path.Combine(UserHome(getVariable), ".cache");
        return Path.Combine(cacheRoot, "huggingface");
    }

    private static string UserHome(Func<string, string?> getVariable) =>
        NonEmpty(getVariable("HOME")) ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

    private static string? ExpandHome(string? path, Func<string, string?> getVariable)
    {
        if (path is null)
            return null;
        if (path == "~")
            return UserHome(getVariable);
        return path.StartsWith("~/", StringComparison.Ordinal) ? Path.Combine(UserHome(getVariable), path[2..]) : path;
    }

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;

    private static TimeSpan Seconds(string? value, double fallback) =>
        double.TryParse(value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var s) && s > 0
            ? TimeSpan.FromSeconds(s)
            : TimeSpan.FromSeconds(fallback);
}

/// <summary>Progress of one file download: bytes received so far and the expected total.</summary>
/// <param name="FileName">The repository path of the file.</param>
/// <param name="BytesDownloaded">Bytes on disk so far, including those an earlier attempt left.</param>
/// <param name="TotalBytes">The advertised size, or null when unknown.</param>
public readonly record struct DownloadProgress(string FileName, long BytesDownloaded, long? TotalBytes)
{
    /// <summary>Bytes that an earlier, broken-off attempt had already saved, so this attempt continued from there (0 when it started afresh).</summary>
    public long ResumedFrom { get; init; }
}

/// <summary>
/// The local files of a model, as <see cref="HubClient.ResolveModelFilesAsync"/> found them. Paths point into a
/// snapshot folder (or into the local folder that was passed).
/// </summary>
/// <param name="Directory">The snapshot folder (or local model folder) holding every file below.</param>
/// <param name="CommitHash">The resolved commit, or null for a local folder.</param>
/// <param name="ConfigPath">config.json.</param>
/// <param name="WeightPaths">model.safetensors, or the shards listed by the index, in order.</param>
/// <param name="WeightIndexPath">model.safetensors.index.json when the weights are sharded, else null.</param>
/// <param name="OptionalFiles">Tokenizer and generation files that exist, by repository path (e.g. <c>tokenizer.json</c>).</param>
public sealed record ModelFiles(
    string Directory,
    string? CommitHash,
    string ConfigPath,
    IReadOnlyList<string> WeightPaths,
    string? WeightIndexPath,
    IReadOnlyDictionary<string, string> OptionalFiles);
