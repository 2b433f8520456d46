using Sharpformer.IO.Hub;
using static Sharpformer.IO.Tests.Hub.FakeRepos;

namespace Sharpformer.IO.Tests.Hub;

public sealed class HubClientTests : HubTestContext
{
    [Fact]
    public async Task DownloadFile_GitFile_WritesHuggingFaceCacheLayout()
    {
        using var client = Client();
        var expected = Tiny().Commits[CommitMain]["config.json"];

        var path = await client.DownloadFileAsync("org/tiny", "config.json");

        var repoDir = RepoDir("org/tiny");
        var pointer = Path.Combine(repoDir, "snapshots", CommitMain, "config.json");
        Assert.Equal(pointer, path);
        Assert.Equal(CommitMain, File.ReadAllText(Path.Combine(repoDir, "refs", "main")));
        Assert.Equal("../../blobs/" + expected.GitSha1, new FileInfo(pointer).LinkTarget);
        Assert.Equal(expected.Content, File.ReadAllBytes(path));
        Assert.Equal(
            [
                ".locks/models--org--tiny/" + expected.GitSha1 + ".lock",
                "models--org--tiny/blobs/" + expected.GitSha1,
                "models--org--tiny/refs/main",
                "models--org--tiny/snapshots/" + CommitMain + "/config.json",
            ],
            CacheFiles());
    }

    [Fact]
    public async Task DownloadFile_LfsFileBehindCdnRedirect_BlobNamedBySha256()
    {
        using var client = Client();
        var expected = Tiny().Commits[CommitMain]["model.safetensors"];

        var path = await client.DownloadFileAsync("org/tiny", "model.safetensors");

        Assert.Equal("../../blobs/" + expected.Sha256, new FileInfo(path).LinkTarget);
        Assert.Equal(expected.Content, File.ReadAllBytes(path));
        Assert.True(File.Exists(Path.Combine(RepoDir("org/tiny"), "blobs", expected.Sha256)));
        Assert.Equal(1, Server.ContentGetCount);
        Assert.Single(Server.CdnAuthorizations);
    }

    [Fact]
    public async Task DownloadFile_NestedPath_SymlinkClimbsEveryFolder()
    {
        using var client = Client();
        var expected = Tiny().Commits[CommitMain]["sub/dir/nested.txt"];

        var path = await client.DownloadFileAsync("org/tiny", "sub/dir/nested.txt");

        Assert.Equal(Path.Combine(RepoDir("org/tiny"), "snapshots", CommitMain, "sub", "dir", "nested.txt"), path);
        Assert.Equal("../../../../blobs/" + expected.GitSha1, new FileInfo(path).LinkTarget);
        Assert.Equal("nested", File.ReadAllText(path));
    }

    [Fact]
    public async Task DownloadFile_RenamedRepo_FollowsRelativeRedirectAndCachesUnderRequestedId()
    {
        Server.Renames["old-org/tiny"] = "org/tiny";
        using var client = Client();

        var config = await client.DownloadFileAsync("old-org/tiny", "config.json");
        var weights = await client.DownloadFileAsync("old-org/tiny", "model.safetensors");

        Assert.Equal(Path.Combine(RepoDir("old-org/tiny"), "snapshots", CommitMain, "config.json"), config);
        Assert.Equal(Tiny().Commits[CommitMain]["config.json"].Content, File.ReadAllBytes(config));
        Assert.Equal(Tiny().Commits[CommitMain]["model.safetensors"].Content, File.ReadAllBytes(weights));
    }

    [Fact]
    public async Task TryDownloadFile_UnreachableButMissRecorded_ReturnsNull()
    {
        using (var client = Client())
        {
            await client.DownloadFileAsync("org/tiny", "config.json");
            Assert.Null(await client.TryDownloadFileAsync("org/tiny", "vocab.txt"));
        }
        await Server.DisposeAsync();

        using (var client = Client())
            Assert.Null(await client.TryDownloadFileAsync("org/tiny", "vocab.txt"));
        Server = await FakeHubServer.StartAsync();
    }

    [Fact]
    public async Task DownloadFile_SecondCall_HitsCacheWithoutGet()
    {
        using var client = Client();
        var first = await client.DownloadFileAsync("org/tiny", "model.safetensors");
        Assert.Equal(1, Server.ContentGetCount);

        var second = await client.DownloadFileAsync("org/tiny", "model.safetensors");

        Assert.Equal(first, second);
        Assert.Equal(1, Server.ContentGetCount);
        Assert.Equal(2, Server.HeadCount);
    }

    [Fact]
    public async Task DownloadFile_CommitHashAlreadyCached_MakesNoRequest()
    {
        using var client = Client();
        await client.DownloadFileAsync("org/tiny", "config.json");
        var before = Server.TotalRequests;

        var path = await client.DownloadFileAsync("org/tiny", "config.json", CommitMain);

        Assert.Equal(before, Server.TotalRequests);
        Assert.Contains(CommitMain, path, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DownloadFile_Offline_ResolvesCachedFileWithZeroRequests()
    {
        using (var online = Client())
            await online.DownloadFileAsync("org/tiny", "config.json");
        var before = Server.TotalRequests;
        using var offline = Client(offline: true);

        var byBranch = await offline.DownloadFileAsync("org/tiny", "config.json");
        var byCommit = await offline.DownloadFileAsync("org/tiny", "config.json", CommitMain);

        Assert.Equal(before, Server.TotalRequests);
        Assert.Equal(byBranch, byCommit);
        Assert.Contains("n_layer\": 2", File.ReadAllText(byBranch), StringComparison.Ordinal);
    }

    [Fact]
    public async Task DownloadFile_OfflineMiss_ThrowsOfflineCacheMissNamingRepoAndFile()
    {
        using var offline = Client(offline: true);

        var e = await Assert.ThrowsAsync<OfflineCacheMissException>(() => offline.DownloadFileAsync("org/tiny", "config.json"));

        Assert.Equal(0, Server.TotalRequests);
        Assert.Contains("org/tiny", e.Message, StringComparison.Ordinal);
        Assert.Contains("config.json", e.Message, StringComparison.Ordinal);
        Assert.Contains("HF_HUB_OFFLINE", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("main", CommitMain, "n_layer\": 2")]
    [InlineData("v1.0", CommitV1, "n_layer\": 1")]
    [InlineData("refs/pr/1", CommitV1, "n_layer\": 1")]
    [InlineData(CommitV1, CommitV1, "n_layer\": 1")]
    public async Task DownloadFile_Revision_PinsToItsCommit(string revision, string commit, string content)
    {
        using var client = Client();

        var path = await client.DownloadFileAsync("org/tiny", "config.json", revision);

        Assert.Equal(Path.Combine(RepoDir("org/tiny"), "snapshots", commit, "config.json"), path);
        Assert.Contains(content, File.ReadAllText(path), StringComparison.Ordinal);
        var refFile = Path.Combine(RepoDir("org/tiny"), "refs", revision);
        if (revision == commit)
            Assert.False(Directory.Exists(Path.Combine(RepoDir("org/tiny"), "refs")));
        else
            Assert.Equal(commit, File.ReadAllText(refFile));
    }

    [Fact]
    public async Task DownloadFile_UnknownRevision_ThrowsRevisionNotFound()
    {
        using var client = Client();

        var e = await Assert.ThrowsAsync<RevisionNotFoundException>(() => client.DownloadFileAsync("org/tiny", "config.json", "no-such-branch"));

        Assert.Contains("no-such-branch", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DownloadFile_MissingFile_ThrowsEntryNotFoundAndRecordsNoExist()
    {
        using var client = Client();

        var e = await Assert.ThrowsAsync<EntryNotFoundException>(() => client.DownloadFileAsync("org/tiny", "vocab.txt"));

        Assert.Contains("org/tiny", e.Message, StringComparison.Ordinal);
        Assert.Contains("vocab.txt", e.Message, StringComparison.Ordinal);
        Assert.Contains("'main'", e.Message, StringComparison.Ordinal);
        var marker = Path.Combine(RepoDir("org/tiny"), ".no_exist", CommitMain, "vocab.txt");
        Assert.True(File.Exists(marker));
        Assert.Equal(0, new FileInfo(marker).Length);
    }

    [Fact]
    public async Task TryDownloadFile_MissingFile_ReturnsNullThenAnswersFromNoExist()
    {
        using var client = Client();
        Assert.Null(await client.TryDownloadFileAsync("org/tiny", "vocab.txt"));
        var before = Server.TotalRequests;

        // Pinned to the commit, the .no_exist marker answers without a request; offline too.
        Assert.Null(await client.TryDownloadFileAsync("org/tiny", "vocab.txt", CommitMain));
        using var offline = Client(offline: true);
        Assert.Null(await offline.TryDownloadFileAsync("org/tiny", "vocab.txt"));
        await Assert.ThrowsAsync<EntryNotFoundException>(() => offline.DownloadFileAsync("org/tiny", "vocab.txt"));
        Assert.Equal(before, Server.TotalRequests);
    }

    [Fact]
    public async Task DownloadFile_MissingRepo_ThrowsRepositoryNotFound()
    {
        using var client = Client();

        var e = await Assert.ThrowsAsync<RepositoryNotFoundException>(() => client.DownloadFileAsync("org/nope", "config.json"));

        Assert.Contains("org/nope", e.Message, StringComparison.Ordinal);
        Assert.Contains("HF_TOKEN", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DownloadFile_GatedWithoutToken_ThrowsGatedRepoSayingSetToken()
    {
        using var client = Client();

        var e = await Assert.ThrowsAsync<GatedRepoException>(() => client.DownloadFileAsync("org/gated", "config.json"));

        Assert.Contains("HF_TOKEN", e.Message, StringComparison.Ordinal);
        Assert.Contains(Server.Endpoint.ToString().TrimEnd('/') + "/org/gated", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(CacheFiles(), f => f.Contains("blobs", StringComparison.Ordinal));
    }

    [Fact]
    public async Task DownloadFile_GatedWithWrongToken_SaysTokenHasNoAccess()
    {
        using var client = Client(token: "hf_wrong");

        var e = await Assert.ThrowsAsync<GatedRepoException>(() => client.DownloadFileAsync("org/gated", "config.json"));

        Assert.Contains("no access", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DownloadFile_GatedWithToken_SucceedsAndSendsTokenToSameHostCdn()
    {
        using var client = Client(token: FakeHubServer.Token);

        var path = await client.DownloadFileAsync("org/gated", "model.safetensors");

        Assert.Equal(Gated().Commits[CommitGated]["model.safetensors"].Content, File.ReadAllBytes(path));
        Assert.Equal("Bearer " + FakeHubServer.Token, Assert.Single(Server.CdnAuthorizations));
    }

    [Fact]
    public async Task DownloadFile_RedirectToOtherHost_DropsAuthorization()
    {
        Server.CrossHostCdn = true;
        using var client = Client(token: FakeHubServer.Token);

        var path = await client.DownloadFileAsync("org/gated", "model.safetensors");

        Assert.True(File.Exists(path));
        Assert.Equal("", Assert.Single(Server.CdnAuthorizations));
    }

    [Fact]
    public async Task DownloadFile_ConnectionCutMidBody_KeepsPartialAndNextDownloadResumesWithRange()
    {
        Server.CutBodyHalfway = true;
        var expected = Tiny().Commits[CommitMain]["model.safetensors"];
        using (var failing = Client(maxRetries: 0))
        {
            await Assert.ThrowsAsync<HubNetworkException>(() => failing.DownloadFileAsync("org/tiny", "model.safetensors"));
        }

        // As huggingface_hub: the bytes received stay as blobs/<etag>.incomplete; no blob, no snapshot.
        var partial = Path.Combine(RepoDir("org/tiny"), "blobs", expected.Sha256 + ".incomplete");
        Assert.Equal([partial], Directory.EnumerateFileSystemEntries(Path.Combine(RepoDir("org/tiny"), "blobs")));
        long kept = new FileInfo(partial).Length;
        Assert.InRange(kept, 1, expected.Content.Length / 2);
        Assert.False(Directory.Exists(Path.Combine(RepoDir("org/tiny"), "snapshots")));

        Server.CutBodyHalfway = false;
        var progress = new List<DownloadProgress>();
        using var client = Client();
        var path = await client.DownloadFileAsync("org/tiny", "model.safetensors", progress: new SyncProgress(progress));

        Assert.Equal(expected.Content, File.ReadAllBytes(path));
        Assert.Equal([kept], Server.RangeStarts);
        Assert.Equal(kept, progress[0].ResumedFrom);
        Assert.Equal(expected.Content.Length, progress[^1].BytesDownloaded);
        Assert.Single(Directory.EnumerateFileSystemEntries(Path.Combine(RepoDir("org/tiny"), "blobs")));
    }

    [Fact]
    public async Task DownloadFile_CutTwice_RetriesWithinOneCallEachFromWhereItStopped()
    {
        Server.CutNextBodies = 2;
        var expected = Tiny().Commits[CommitMain]["model.safetensors"];
        using var client = Client();

        var path = await client.DownloadFileAsync("org/tiny", "model.safetensors");

        Assert.Equal(expected.Content, File.ReadAllBytes(path));
        // Each retry asks for the rest from the first byte it lacks: two ranges, the second further on.
        var starts = Server.RangeStarts.ToArray();
        Assert.Equal(2, starts.Length);
        Assert.InRange(starts[0], 1, expected.Content.Length / 2);
        Assert.InRange(starts[1], starts[0] + 1, expected.Content.Length - 1);
        Assert.Equal(3, Server.ContentGetCount);
    }

    [Fact]
    public async Task DownloadFile_ServerBusy_RetriedAfterRetryAfter()
    {
        Server.BusyNextGets = 2;
        using var client = Client();

        var path = await client.DownloadFileAsync("org/tiny", "model.safetensors");

        Assert.Equal(Tiny().Commits[CommitMain]["model.safetensors"].Content, File.ReadAllBytes(path));
        Assert.Equal(3, Server.ContentGetCount);
    }

    [Fact]
    public async Task DownloadFile_ServerBusyBeyondRetries_ClearErrorNamingAttempts()
    {
        Server.BusyNextGets = 100;
        using var client = Client(maxRetries: 2);

        var e = await Assert.ThrowsAsync<HubNetworkException>(() => client.DownloadFileAsync("org/tiny", "model.safetensors"));

        Assert.Contains("3 attempts", e.Message, StringComparison.Ordinal);
        Assert.Equal(3, Server.ContentGetCount);
        Assert.False(Directory.Exists(Path.Combine(RepoDir("org/tiny"), "snapshots")));
    }

    [Fact]
    public async Task DownloadFile_ServerIgnoresRange_StartsOverAndStillVerifies()
    {
        Server.CutNextBodies = 1;
        Server.IgnoreRange = true;
        var expected = Tiny().Commits[CommitMain]["model.safetensors"];
        using var client = Client();

        var path = await client.DownloadFileAsync("org/tiny", "model.safetensors");

        Assert.Equal(expected.Content, File.ReadAllBytes(path));
        Assert.Single(Server.RangeStarts);
        Assert.Single(Directory.EnumerateFileSystemEntries(Path.Combine(RepoDir("org/tiny"), "blobs")));
    }

    [Fact]
    public async Task DownloadFile_GitFileCutMidBody_LeavesNoBlobOnlyThePartial()
    {
        Server.CutBodyHalfway = true;
        var expected = Tiny().Commits[CommitMain]["tokenizer.json"];
        using var client = Client(maxRetries: 1);
        Assert.False(expected.Lfs);

        await Assert.ThrowsAsync<HubNetworkException>(() => client.DownloadFileAsync("org/tiny", "tokenizer.json"));

        // No blob: at most the partial, under its resumable name.
        Assert.All(
            Directory.EnumerateFileSystemEntries(Path.Combine(RepoDir("org/tiny"), "blobs")),
            f => Assert.Equal(Path.Combine(RepoDir("org/tiny"), "blobs", expected.GitSha1 + ".incomplete"), f));
        Assert.False(Directory.Exists(Path.Combine(RepoDir("org/tiny"), "snapshots")));
    }

    [Theory]
    [InlineData("./my-model")]
    [InlineData("models/bert/base")]
    [InlineData("/no/such/folder")]
    [InlineData("bert-finetuned/")]
    public async Task ResolveModelFiles_PathThatDoesNotExist_NoSuchFolderNotRepoIdComplaint(string name)
    {
        using var client = Client();

        var e = await Assert.ThrowsAsync<DirectoryNotFoundException>(() => client.ResolveModelFilesAsync(name));

        Assert.StartsWith("no such folder: ", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("repo id '", e.Message, StringComparison.Ordinal);
        Assert.Equal(0, Server.TotalRequests);
    }

    [Fact]
    public async Task ResolveModelFiles_FileInsteadOfFolder_SaysPassTheFolder()
    {
        Directory.CreateDirectory(CacheDir);
        string file = Path.Combine(CacheDir, "model.safetensors");
        File.WriteAllText(file, "x");
        using var client = Client();

        var e = await Assert.ThrowsAsync<DirectoryNotFoundException>(() => client.ResolveModelFilesAsync(file));

        Assert.Contains("is a file; pass the model folder", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("gpt2", false)]
    [InlineData("org/name", false)]
    [InlineData("org/name.v2", false)]
    [InlineData("./gpt2", true)]
    [InlineData("../models/gpt2", true)]
    [InlineData("~/models/gpt2", true)]
    [InlineData("a/b/c", true)]
    [InlineData("C:\\models", true)]
    [InlineData("org/", true)]
    public void LooksLikePath_RepoIdsAreNotPaths(string value, bool expected) => Assert.Equal(expected, HubNames.LooksLikePath(value));

    /// <summary>Collects reports on the reporting thread, in order.</summary>
    private sealed class SyncProgress(List<DownloadProgress> sink) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value) => sink.Add(value);
    }

    [Fact]
    public async Task DownloadFile_CorruptedBytes_RejectedWithExpectedAndActualSha()
    {
        Server.CorruptBody = true;
        using var client = Client();
        var expected = Tiny().Commits[CommitMain]["model.safetensors"];

        var e = await Assert.ThrowsAsync<HubIntegrityException>(() => client.DownloadFileAsync("org/tiny", "model.safetensors"));

        Assert.Contains(expected.Sha256, e.Message, StringComparison.Ordinal);
        Assert.Contains("sha256 mismatch", e.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(RepoDir("org/tiny"), "blobs")));
        Assert.False(Directory.Exists(Path.Combine(RepoDir("org/tiny"), "snapshots")));
    }

    [Fact]
    public async Task DownloadFile_SizeDiffersFromAdvertised_RejectedAndNothingCached()
    {
        Server.AdvertiseWrongSize = true;
        using var client = Client();

        var e = await Assert.ThrowsAsync<HubIntegrityException>(() => client.DownloadFileAsync("org/tiny", "model.safetensors"));

        Assert.Contains("should be 300001 bytes but 300000 arrived", e.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(RepoDir("org/tiny"), "blobs")));
    }

    [Fact]
    public async Task DownloadFile_ConcurrentTasks_EndWithOneVerifiedBlobAndOneGet()
    {
        Server.ChunkDelayMs = 5;
        using var client = Client();
        var expected = Tiny().Commits[CommitMain]["model.safetensors"];

        var paths = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => client.DownloadFileAsync("org/tiny", "model.safetensors"))));

        Assert.Single(paths.Distinct());
        Assert.Equal(1, Server.ContentGetCount);
        Assert.Equal(expected.Sha256, Assert.Single(Directory.GetFiles(Path.Combine(RepoDir("org/tiny"), "blobs")).Select(Path.GetFileName)));
        Assert.Equal(expected.Content, File.ReadAllBytes(paths[0]));
    }

    [Fact]
    public async Task DownloadFile_ConcurrentWithBrokenLocks_StillOneVerifiedBlob()
    {
        // The Lustre case: every lock "succeeds". Unique temp files plus verify-then-rename must still publish one
        // whole blob, never interleaved bytes.
        Server.ChunkDelayMs = 2;
        var expected = Tiny().Commits[CommitMain]["model.safetensors"];
        var options = Options() with { LockingDisabled = true };

        var paths = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            using var client = new HubClient(options);
            return await client.DownloadFileAsync("org/tiny", "model.safetensors");
        })));

        Assert.Single(paths.Distinct());
        Assert.Equal(expected.Sha256, Assert.Single(Directory.GetFiles(Path.Combine(RepoDir("org/tiny"), "blobs")).Select(Path.GetFileName)));
        Assert.Equal(expected.Content, File.ReadAllBytes(paths[0]));
    }

    [Theory]
    [InlineData("../x", "config.json", "main")]
    [InlineData("org/../x", "config.json", "main")]
    [InlineData("/abs", "config.json", "main")]
    [InlineData("a/b/c", "config.json", "main")]
    [InlineData("org--x", "config.json", "main")]
    [InlineData("org/tiny", "../../../etc/passwd", "main")]
    [InlineData("org/tiny", "/etc/passwd", "main")]
    [InlineData("org/tiny", "a\\..\\b", "main")]
    [InlineData("org/tiny", "C:/x", "main")]
    [InlineData("org/tiny", "a/./b", "main")]
    [InlineData("org/tiny", "a//b", "main")]
    [InlineData("org/tiny", "a\0b", "main")]
    [InlineData("org/tiny", "config.json", "../../x")]
    [InlineData("org/tiny", "config.json", "a\\b")]
    [InlineData("org/tiny", "config.json", "/main")]
    public async Task DownloadFile_NameThatCouldEscapeCache_RejectedBeforeAnyRequest(string repoId, string filename, string revision)
    {
        using var client = Client();

        var e = await Record.ExceptionAsync(() => client.DownloadFileAsync(repoId, filename, revision));

        // A bad name, or (for names written as paths) "no such folder": either way, refused before any request.
        Assert.True(e is ArgumentException or DirectoryNotFoundException, $"unexpected {e?.GetType().Name}: {e?.Message}");
        Assert.Equal(0, Server.TotalRequests);
        Assert.Empty(CacheFiles());
    }

    [Theory]
    [InlineData("../../../../evil")]
    [InlineData("not-hex")]
    [InlineData("ABCDEF0123456789ABCDEF0123456789ABCDEF01")]
    public async Task DownloadFile_ServerSendsUnsafeEtag_RejectedAndNothingWritten(string etag)
    {
        Server.EvilEtag = etag;
        using var client = Client();

        await Assert.ThrowsAsync<HubIntegrityException>(() => client.DownloadFileAsync("org/tiny", "config.json"));

        Assert.Empty(CacheFiles());
    }

    [Theory]
    [InlineData("../../../../evil")]
    [InlineData("")]
    [InlineData("main")]
    public async Task DownloadFile_ServerSendsUnsafeCommit_RejectedAndNothingWritten(string commit)
    {
        Server.EvilCommit = commit;
        using var client = Client();

        await Assert.ThrowsAsync<HubIntegrityException>(() => client.DownloadFileAsync("org/tiny", "config.json"));

        Assert.Empty(CacheFiles());
    }

    [Fact]
    public async Task DownloadFile_UnreachableEndpoint_ThrowsNetworkErrorNamingEndpoint()
    {
        var endpoint = Server.Endpoint;
        await Server.DisposeAsync();
        using var client = Client();

        var e = await Assert.ThrowsAsync<HubNetworkException>(() => client.DownloadFileAsync("org/tiny", "config.json"));

        Assert.Contains(endpoint.GetLeftPart(UriPartial.Authority), e.Message, StringComparison.Ordinal);
        Server = await FakeHubServer.StartAsync(); // DisposeAsync of the context stops it again
    }

    [Fact]
    public async Task DownloadFile_UnreachableEndpointButCached_FallsBackToCache()
    {
        string cached;
        using (var client = Client())
            cached = await client.DownloadFileAsync("org/tiny", "config.json");
        await Server.DisposeAsync();

        using (var client = Client())
            Assert.Equal(cached, await client.DownloadFileAsync("org/tiny", "config.json"));
        Server = await FakeHubServer.StartAsync();
    }

    [Fact]
    public async Task DownloadFile_Progress_ReportsUpToTotal()
    {
        using var client = Client();
        var reports = new List<DownloadProgress>();
        var progress = new SynchronousProgress(reports.Add);

        await client.DownloadFileAsync("org/tiny", "model.safetensors", progress: progress);

        Assert.Equal(new DownloadProgress("model.safetensors", 0, 300_000), reports[0]);
        Assert.Equal(new DownloadProgress("model.safetensors", 300_000, 300_000), reports[^1]);
    }

    [Fact]
    public async Task Snapshot_IncludeGlobs_DownloadsOnlyMatchingFiles()
    {
        using var client = Client();

        var folder = await client.SnapshotAsync("org/tiny", include: ["*.json", "sub/"]);

        Assert.Equal(Path.Combine(RepoDir("org/tiny"), "snapshots", CommitMain), folder);
        var files = Directory.EnumerateFileSystemEntries(folder, "*", SearchOption.AllDirectories)
            .Where(File.Exists).Select(f => Path.GetRelativePath(folder, f)).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["config.json", "sub/dir/nested.txt", "tokenizer.json"], files);
        Assert.Equal(CommitMain, File.ReadAllText(Path.Combine(RepoDir("org/tiny"), "refs", "main")));

        using var offline = Client(offline: true);
        Assert.Equal(folder, await offline.SnapshotAsync("org/tiny"));
    }

    [Fact]
    public async Task ResolveModelFiles_ShardedRepo_FetchesIndexShardsAndExistingTokenizerFiles()
    {
        using var client = Client();

        var files = await client.ResolveModelFilesAsync("org/sharded");

        Assert.Equal(CommitSharded, files.CommitHash);
        Assert.Equal(Path.Combine(RepoDir("org/sharded"), "snapshots", CommitSharded), files.Directory);
        Assert.Equal(["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"], files.WeightPaths.Select(Path.GetFileName));
        Assert.NotNull(files.WeightIndexPath);
        Assert.Equal(["vocab.txt"], files.OptionalFiles.Keys);
        // Each missing optional file (and model.safetensors) is recorded, as huggingface_hub does.
        var noExist = Path.Combine(RepoDir("org/sharded"), ".no_exist", CommitSharded);
        Assert.True(File.Exists(Path.Combine(noExist, "model.safetensors")));
        Assert.True(File.Exists(Path.Combine(noExist, "tokenizer.json")));
        Assert.False(File.Exists(Path.Combine(files.Directory, "pytorch_model.bin")));

        var before = Server.TotalRequests;
        using var offline = Client(offline: true);
        var again = await offline.ResolveModelFilesAsync("org/sharded");
        Assert.Equal(before, Server.TotalRequests);
        Assert.Equal(files.WeightPaths, again.WeightPaths);
        Assert.Equal(files.OptionalFiles, again.OptionalFiles);
    }

    [Fact]
    public async Task ResolveModelFiles_LocalFolder_ReadsInPlaceWithoutRequests()
    {
        var folder = Path.Combine(CacheDir, "local-model");
        Directory.CreateDirectory(folder);
        await File.WriteAllTextAsync(Path.Combine(folder, "config.json"), "{}");
        await File.WriteAllBytesAsync(Path.Combine(folder, "model.safetensors"), [1, 2, 3]);
        await File.WriteAllTextAsync(Path.Combine(folder, "vocab.txt"), "[UNK]\n");
        using var client = Client();

        var files = await client.ResolveModelFilesAsync(folder);

        Assert.Equal(0, Server.TotalRequests);
        Assert.Null(files.CommitHash);
        Assert.Equal(Path.Combine(folder, "model.safetensors"), Assert.Single(files.WeightPaths));
        Assert.Equal(["vocab.txt"], files.OptionalFiles.Keys);
    }

    [Fact]
    public async Task ResolveModelFiles_NoSafetensors_ErrorSaysSafetensorsOnly()
    {
        Server.AddRepo(new FakeRepo("org/pickle")
        {
            Commits = { [CommitV1] = new(StringComparer.Ordinal) { ["config.json"] = Git("{}"), ["pytorch_model.bin"] = Lfs(10, 9) } },
            Refs = { ["main"] = CommitV1 },
        });
        using var client = Client();

        var e = await Assert.ThrowsAsync<EntryNotFoundException>(() => client.ResolveModelFilesAsync("org/pickle"));

        Assert.Contains("safetensors", e.Message, StringComparison.Ordinal);
        Assert.Contains("never unpickles", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DownloadFile_ServerStallsMidBody_TimesOutWithNetworkErrorAndNoBlob()
    {
        Server.ChunkDelayMs = 5_000;
        using var client = new HubClient(Options(maxRetries: 1) with { ReadTimeout = TimeSpan.FromMilliseconds(300) });

        var e = await Assert.ThrowsAsync<HubNetworkException>(() => client.DownloadFileAsync("org/tiny", "model.safetensors"));

        Assert.Contains("HF_HUB_DOWNLOAD_TIMEOUT", e.Message, StringComparison.Ordinal);
        Assert.All(Directory.EnumerateFileSystemEntries(Path.Combine(RepoDir("org/tiny"), "blobs")), f => Assert.EndsWith(".incomplete", f, StringComparison.Ordinal));
        Assert.False(Directory.Exists(Path.Combine(RepoDir("org/tiny"), "snapshots")));
    }

    [Fact]
    public async Task DownloadFile_StaleTempFromKilledProcess_IsCleanedUp()
    {
        var etag = Tiny().Commits[CommitMain]["model.safetensors"].Sha256;
        var blobs = Path.Combine(RepoDir("org/tiny"), "blobs");
        Directory.CreateDirectory(blobs);
        var stale = Path.Combine(blobs, etag + ".4242-dead.incomplete");
        var fresh = Path.Combine(blobs, "0123456789012345678901234567890123456789.1-live.incomplete");
        File.WriteAllBytes(stale, [1, 2, 3]);
        File.WriteAllBytes(fresh, [1]);
        File.SetLastWriteTimeUtc(stale, DateTime.UtcNow.AddDays(-1));
        using var client = Client();

        await client.DownloadFileAsync("org/tiny", "model.safetensors");

        Assert.False(File.Exists(stale));
        Assert.True(File.Exists(fresh)); // another blob's temp is not ours to touch
    }

    [Fact]
    public async Task Snapshot_ServerListsEscapingFileName_RejectedAndNothingOutsideCache()
    {
        var repo = Server.AddRepo(new FakeRepo("org/evil") { Refs = { ["main"] = CommitV1 } });
        repo.Commits[CommitV1] = new(StringComparer.Ordinal) { ["config.json"] = Git("{}"), ["../../../escaped.txt"] = Git("x") };
        using var client = Client();

        var e = await Assert.ThrowsAsync<HubIntegrityException>(() => client.SnapshotAsync("org/evil"));

        Assert.Contains("unsafe file name", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(CacheDir, "escaped.txt")));
        Assert.False(File.Exists(Path.Combine(Path.GetDirectoryName(CacheDir)!, "escaped.txt")));
    }

    [Fact]
    public async Task ResolveModelFiles_IndexNamesEscapingShard_Rejected()
    {
        var repo = Server.AddRepo(new FakeRepo("org/evilshards") { Refs = { ["main"] = CommitV1 } });
        repo.Commits[CommitV1] = new(StringComparer.Ordinal)
        {
            ["config.json"] = Git("{}"),
            ["model.safetensors.index.json"] = Git("{\"weight_map\": {\"w\": \"../../../../x.safetensors\"}}"),
        };
        using var client = Client();

        var e = await Assert.ThrowsAsync<HubIntegrityException>(() => client.ResolveModelFilesAsync("org/evilshards"));

        Assert.Contains("unsafe shard path", e.Message, StringComparison.Ordinal);
    }

    /// <summary>Progress&lt;T&gt; posts to the thread pool; tests need the reports in order and complete.</summary>
    private sealed class SynchronousProgress(Action<DownloadProgress> report) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value) => report(value);
    }
}
