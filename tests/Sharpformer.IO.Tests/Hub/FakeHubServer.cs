using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Sharpformer.IO.Tests.Hub;

/// <summary>One file of a fake repo: its bytes, whether it is stored in LFS, and the etags the Hub would send.</summary>
public sealed record FakeFile(byte[] Content, bool Lfs)
{
    /// <summary>LFS oid: sha256 of the content.</summary>
    public string Sha256 { get; } = Convert.ToHexStringLower(SHA256.HashData(Content));

    /// <summary>Git blob id: sha1 of "blob {size}\0" + content.</summary>
#pragma warning disable CA5350 // git names objects by SHA-1; this is an id, not a security check.
    public string GitSha1 { get; } = Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {Content.Length}\0"), .. Content]));
#pragma warning restore CA5350

    /// <summary>The blob name huggingface_hub uses in the cache.</summary>
    public string Etag => Lfs ? Sha256 : GitSha1;
}

/// <summary>A fake model repo: commits (40-hex) with their files, and branch/tag names pointing at commits.</summary>
public sealed class FakeRepo(string id)
{
    public string Id { get; } = id;

    public bool Gated { get; init; }

    public Dictionary<string, Dictionary<string, FakeFile>> Commits { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, string> Refs { get; } = new(StringComparer.Ordinal);
}

/// <summary>
/// A Hugging Face Hub on 127.0.0.1: <c>/{repo}/resolve/{revision}/{file}</c> (HEAD and GET) with X-Repo-Commit,
/// ETag, X-Linked-Etag and X-Linked-Size like the real Hub; LFS files answer 302 to <c>/cdn/{sha256}</c>;
/// <c>/api/models/{repo}/revision/{revision}</c> lists files. Modes inject the faults the client must survive.
/// </summary>
public sealed class FakeHubServer : IAsyncDisposable
{
    public const string Token = "hf_loopback_test_token";

    private readonly WebApplication _app;
    private readonly Dictionary<string, FakeRepo> _repos = new(StringComparer.Ordinal);
    private int _heads, _contentGets, _total;

    private FakeHubServer(WebApplication app) => _app = app;

    public Uri Endpoint { get; private set; } = null!;

    public int HeadCount => Volatile.Read(ref _heads);

    /// <summary>GETs that returned file bytes (resolve of git files plus CDN).</summary>
    public int ContentGetCount => Volatile.Read(ref _contentGets);

    public int TotalRequests => Volatile.Read(ref _total);

    /// <summary>Authorization header seen on each CDN request ("" when absent).</summary>
    public ConcurrentQueue<string> CdnAuthorizations { get; } = new();

    /// <summary>Send half the body, then reset the connection.</summary>
    public bool CutBodyHalfway { get; set; }

    /// <summary>Send the right number of bytes, but wrong ones.</summary>
    public bool CorruptBody { get; set; }

    /// <summary>Advertise one byte more in X-Linked-Size than the LFS file has (the body itself is complete).</summary>
    public bool AdvertiseWrongSize { get; set; }

    /// <summary>Redirect LFS files to "localhost" instead of "127.0.0.1": another host as far as the client knows.</summary>
    public bool CrossHostCdn { get; set; }

    /// <summary>Replace the ETag / X-Linked-Etag with this value (path-escape attempts).</summary>
    public string? EvilEtag { get; set; }

    /// <summary>Replace X-Repo-Commit with this value.</summary>
    public string? EvilCommit { get; set; }

    /// <summary>Renamed repos: old id → new id, answered with a relative 307 as the Hub does.</summary>
    public ConcurrentDictionary<string, string> Renames { get; } = new(StringComparer.Ordinal);

    /// <summary>Pause between 16 KiB body chunks, so concurrent downloads overlap.</summary>
    public int ChunkDelayMs { get; set; }

    /// <summary>The next this-many content GETs are cut halfway through what they send (then the connection is aborted).</summary>
    public int CutNextBodies { get; set; }

    /// <summary>The next this-many content GETs answer 503 with <c>Retry-After: 0</c>.</summary>
    public int BusyNextGets { get; set; }

    /// <summary>Answer Range requests with the whole file (200), as a server without range support does.</summary>
    public bool IgnoreRange { get; set; }

    /// <summary>The first byte each Range request asked for, in order.</summary>
    public ConcurrentQueue<long> RangeStarts { get; } = new();

    public static async Task<FakeHubServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(o => o.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var server = new FakeHubServer(app);
        app.Run(server.HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.Endpoint = new Uri(address);
        return server;
    }

    public FakeRepo AddRepo(FakeRepo repo)
    {
        lock (_repos)
            _repos[repo.Id] = repo;
        return repo;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    internal async Task HandleAsync(HttpContext ctx)
    {
        Interlocked.Increment(ref _total);
        var raw = ctx.Features.Get<IHttpRequestFeature>()!.RawTarget;
        var query = raw.IndexOf('?', StringComparison.Ordinal);
        var path = query >= 0 ? raw[..query] : raw;

        if (path.StartsWith("/cdn/", StringComparison.Ordinal))
        {
            CdnAuthorizations.Enqueue(ctx.Request.Headers.Authorization.ToString());
            var file = FindBySha256(path["/cdn/".Length..]);
            if (file is null)
            {
                ctx.Response.StatusCode = 404;
                return;
            }
            await SendBodyAsync(ctx, file);
            return;
        }

        if (path.StartsWith("/api/models/", StringComparison.Ordinal))
        {
            var rest = path["/api/models/".Length..];
            var at = rest.IndexOf("/revision/", StringComparison.Ordinal);
            if (at < 0)
            {
                ctx.Response.StatusCode = 404;
                return;
            }
            var (repo, commit) = await LookupAsync(ctx, rest[..at], Uri.UnescapeDataString(rest[(at + "/revision/".Length)..]));
            if (repo is null)
                return;
            var siblings = repo.Commits[commit!].Keys.Order(StringComparer.Ordinal).Select(f => new { rfilename = f });
            var json = JsonSerializer.SerializeToUtf8Bytes(new { id = repo.Id, sha = commit, siblings });
            ctx.Response.ContentType = "application/json";
            ctx.Response.ContentLength = json.Length;
            await ctx.Response.Body.WriteAsync(json);
            return;
        }

        var resolve = path.IndexOf("/resolve/", StringComparison.Ordinal);
        if (resolve < 1)
        {
            ctx.Response.StatusCode = 404;
            return;
        }
        var repoId = path[1..resolve];
        if (Renames.TryGetValue(repoId, out var renamed))
        {
            ctx.Response.StatusCode = 307;
            ctx.Response.Headers.Location = "/" + renamed + path[resolve..];
            return;
        }
        var tail = path[(resolve + "/resolve/".Length)..];
        var slash = tail.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0)
        {
            ctx.Response.StatusCode = 404;
            return;
        }
        var revision = Uri.UnescapeDataString(tail[..slash]);
        var filename = string.Join('/', tail[(slash + 1)..].Split('/').Select(Uri.UnescapeDataString));
        var (found, resolvedCommit) = await LookupAsync(ctx, repoId, revision);
        if (found is null)
            return;
        if (!found.Commits[resolvedCommit!].TryGetValue(filename, out var entry))
        {
            ctx.Response.StatusCode = 404;
            ctx.Response.Headers["X-Error-Code"] = "EntryNotFound";
            ctx.Response.Headers["X-Error-Message"] = "Entry not found";
            ctx.Response.Headers["X-Repo-Commit"] = resolvedCommit;
            return;
        }

        var isHead = HttpMethods.IsHead(ctx.Request.Method);
        if (isHead)
            Interlocked.Increment(ref _heads);
        ctx.Response.Headers["X-Repo-Commit"] = EvilCommit ?? resolvedCommit;
        if (entry.Lfs)
        {
            // As the Hub: a 302 to the CDN; the LFS oid and size travel in X-Linked-* headers.
            ctx.Response.Headers["X-Linked-Etag"] = $"\"{EvilEtag ?? entry.Sha256}\"";
            ctx.Response.Headers["X-Linked-Size"] = (entry.Content.Length + (AdvertiseWrongSize ? 1 : 0)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            ctx.Response.Headers.ETag = $"\"{entry.GitSha1}\"";
            var host = CrossHostCdn ? $"http://localhost:{Endpoint.Port}" : $"http://127.0.0.1:{Endpoint.Port}";
            ctx.Response.Headers.Location = $"{host}/cdn/{entry.Sha256}?X-Amz-Signature=fake";
            ctx.Response.StatusCode = 302;
            return;
        }
        ctx.Response.Headers.ETag = $"\"{EvilEtag ?? entry.GitSha1}\"";
        if (isHead)
        {
            ctx.Response.ContentLength = entry.Content.Length;
            return;
        }
        await SendBodyAsync(ctx, entry);
    }

    /// <summary>Finds the repo and the commit a revision names, or writes the Hub's error answer and returns nulls.</summary>
    private Task<(FakeRepo? Repo, string? Commit)> LookupAsync(HttpContext ctx, string repoId, string revision)
    {
        FakeRepo? repo;
        lock (_repos)
            _repos.TryGetValue(repoId, out repo);
        if (repo is null)
        {
            // The Hub answers 401 for a repo that does not exist (or is private) to an anonymous caller.
            ctx.Response.StatusCode = 401;
            ctx.Response.Headers["X-Error-Code"] = "RepoNotFound";
            ctx.Response.Headers["X-Error-Message"] = "Repository not found";
            return Task.FromResult<(FakeRepo?, string?)>((null, null));
        }
        if (repo.Gated && ctx.Request.Headers.Authorization.ToString() != $"Bearer {Token}")
        {
            ctx.Response.StatusCode = 401;
            ctx.Response.Headers["X-Error-Code"] = "GatedRepo";
            ctx.Response.Headers["X-Error-Message"] = $"Access to model {repo.Id} is restricted. You must have access to it and be authenticated to access it. Please log in.";
            return Task.FromResult<(FakeRepo?, string?)>((null, null));
        }
        string? commit = repo.Commits.ContainsKey(revision) ? revision : repo.Refs.GetValueOrDefault(revision);
        if (commit is null)
        {
            ctx.Response.StatusCode = 404;
            ctx.Response.Headers["X-Error-Code"] = "RevisionNotFound";
            ctx.Response.Headers["X-Error-Message"] = "Invalid rev id: " + revision;
            return Task.FromResult<(FakeRepo?, string?)>((null, null));
        }
        return Task.FromResult<(FakeRepo?, string?)>((repo, commit));
    }

    private FakeFile? FindBySha256(string sha)
    {
        lock (_repos)
        {
            return _repos.Values.SelectMany(r => r.Commits.Values).SelectMany(c => c.Values).FirstOrDefault(f => f.Lfs && f.Sha256 == sha);
        }
    }

    private async Task SendBodyAsync(HttpContext ctx, FakeFile file)
    {
        if (HttpMethods.IsHead(ctx.Request.Method))
        {
            ctx.Response.ContentLength = file.Content.Length;
            return;
        }
        Interlocked.Increment(ref _contentGets);
        if (BusyNextGets > 0)
        {
            BusyNextGets--;
            ctx.Response.StatusCode = 503;
            ctx.Response.Headers.RetryAfter = "0";
            return;
        }
        var body = file.Content;
        if (CorruptBody)
        {
            body = (byte[])body.Clone();
            body[body.Length / 2] ^= 0xFF;
        }
        var from = 0;
        var range = ctx.Request.Headers.Range.ToString();
        if (range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
        {
            var start = int.Parse(range["bytes=".Length..^1], System.Globalization.CultureInfo.InvariantCulture);
            RangeStarts.Enqueue(start);
            if (start >= body.Length)
            {
                ctx.Response.StatusCode = 416;
                ctx.Response.Headers.ContentRange = $"bytes */{body.Length}";
                return;
            }
            if (!IgnoreRange)
            {
                from = start;
                ctx.Response.StatusCode = 206;
                ctx.Response.Headers.ContentRange = $"bytes {from}-{body.Length - 1}/{body.Length}";
            }
        }
        ctx.Response.ContentLength = body.Length - from;
        var cut = CutBodyHalfway || CutNextBodies > 0;
        if (CutNextBodies > 0)
            CutNextBodies--;
        var send = cut ? from + (body.Length - from) / 2 : body.Length;
        const int chunk = 16 << 10;
        for (var offset = from; offset < send; offset += chunk)
        {
            await ctx.Response.Body.WriteAsync(body.AsMemory(offset, Math.Min(chunk, send - offset)));
            await ctx.Response.Body.FlushAsync();
            if (ChunkDelayMs > 0)
                await Task.Delay(ChunkDelayMs, ctx.RequestAborted);
        }
        if (cut)
            ctx.Abort();
    }
}
