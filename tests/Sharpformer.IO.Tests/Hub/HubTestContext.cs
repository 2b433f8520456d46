using Sharpformer.IO.Hub;

namespace Sharpformer.IO.Tests.Hub;

/// <summary>Per-test loopback Hub plus a fresh cache folder; disposes both.</summary>
public abstract class HubTestContext : IAsyncLifetime
{
    protected FakeHubServer Server { get; set; } = null!;

    protected string CacheDir { get; } = Path.Combine(Path.GetTempPath(), "sharpformer-hub-" + Guid.NewGuid().ToString("N"));

    protected HubOptions Options(string? token = null, bool offline = false, int maxRetries = 5) => new()
    {
        MaxRetries = maxRetries,
        RetryBaseDelay = TimeSpan.FromMilliseconds(5),
        RetryMaxDelay = TimeSpan.FromMilliseconds(20),
        Endpoint = Server.Endpoint,
        CacheDir = CacheDir,
        Token = token,
        Offline = offline,
        MetadataTimeout = TimeSpan.FromSeconds(10),
        ReadTimeout = TimeSpan.FromSeconds(10),
    };

    protected HubClient Client(string? token = null, bool offline = false, int maxRetries = 5) => new(Options(token, offline, maxRetries));

    protected string RepoDir(string repoId) => Path.Combine(CacheDir, "models--" + repoId.Replace("/", "--", StringComparison.Ordinal));

    /// <summary>Every file under the cache, relative, '/'-separated, sorted (symlinks included as files).</summary>
    protected string[] CacheFiles() => !Directory.Exists(CacheDir)
        ? []
        : [.. Directory.EnumerateFiles(CacheDir, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(CacheDir, f).Replace('\\', '/'))
            .Order(StringComparer.Ordinal)];

    public async Task InitializeAsync()
    {
        Server = await FakeHubServer.StartAsync();
        Server.AddRepo(FakeRepos.Tiny());
        Server.AddRepo(FakeRepos.Gated());
        Server.AddRepo(FakeRepos.Sharded());
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        if (Directory.Exists(CacheDir))
            Directory.Delete(CacheDir, recursive: true);
    }
}
