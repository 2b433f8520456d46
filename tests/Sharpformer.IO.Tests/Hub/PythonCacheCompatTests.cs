using static Sharpformer.IO.Tests.Hub.FakeRepos;

namespace Sharpformer.IO.Tests.Hub;

/// <summary>A cache laid out by hand exactly as Python's huggingface_hub writes it must be read as-is.</summary>
public sealed class PythonCacheCompatTests : HubTestContext
{
    /// <summary>Writes what `hf_hub_download("org/tiny", "config.json")` leaves behind, plus a .no_exist marker.</summary>
    private FakeFile WritePythonCache()
    {
        var file = Tiny().Commits[CommitMain]["config.json"];
        var repo = RepoDir("org/tiny");
        Directory.CreateDirectory(Path.Combine(repo, "blobs"));
        File.WriteAllBytes(Path.Combine(repo, "blobs", file.GitSha1), file.Content);
        Directory.CreateDirectory(Path.Combine(repo, "refs"));
        File.WriteAllText(Path.Combine(repo, "refs", "main"), CommitMain); // no trailing newline, as Python writes it
        Directory.CreateDirectory(Path.Combine(repo, "snapshots", CommitMain));
        File.CreateSymbolicLink(Path.Combine(repo, "snapshots", CommitMain, "config.json"), "../../blobs/" + file.GitSha1);
        Directory.CreateDirectory(Path.Combine(repo, ".no_exist", CommitMain));
        File.WriteAllBytes(Path.Combine(repo, ".no_exist", CommitMain, "vocab.txt"), []);
        Directory.CreateDirectory(Path.Combine(CacheDir, ".locks", "models--org--tiny"));
        return file;
    }

    [Fact]
    public async Task Offline_PythonWrittenCache_ResolvesFilesAndMisses()
    {
        var file = WritePythonCache();
        using var offline = Client(offline: true);

        var path = await offline.DownloadFileAsync("org/tiny", "config.json");

        Assert.Equal(file.Content, File.ReadAllBytes(path));
        Assert.Null(await offline.TryDownloadFileAsync("org/tiny", "vocab.txt"));
        Assert.Equal(path, offline.TryGetCachedFile("org/tiny", "config.json"));
        Assert.Equal(0, Server.TotalRequests);
    }

    [Fact]
    public async Task Online_PythonWrittenCache_OnlyHeadsAndReusesBlob()
    {
        var file = WritePythonCache();
        using var client = Client();

        var path = await client.DownloadFileAsync("org/tiny", "config.json");

        Assert.Equal(Path.Combine(RepoDir("org/tiny"), "snapshots", CommitMain, "config.json"), path);
        Assert.Equal(1, Server.HeadCount);
        Assert.Equal(0, Server.ContentGetCount);
        Assert.Equal(file.Content, File.ReadAllBytes(path));
    }

    [Fact]
    public async Task Online_BlobFromPythonButNewFileName_LinksWithoutDownloading()
    {
        // The same content under another path: huggingface_hub links the existing blob instead of fetching it.
        WritePythonCache();
        var repo = Server.AddRepo(Tiny());
        repo.Commits[CommitMain]["copy.json"] = repo.Commits[CommitMain]["config.json"];
        using var client = Client();

        var path = await client.DownloadFileAsync("org/tiny", "copy.json");

        Assert.Equal(0, Server.ContentGetCount);
        Assert.Equal("../../blobs/" + repo.Commits[CommitMain]["config.json"].GitSha1, new FileInfo(path).LinkTarget);
    }
}
