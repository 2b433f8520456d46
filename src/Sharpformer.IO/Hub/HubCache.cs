namespace Sharpformer.IO.Hub;

/// <summary>
/// huggingface_hub's cache layout for one model repo, byte-for-byte:
/// <code>
/// {root}/models--{ns}--{name}/blobs/{etag}                     file bodies, named by git sha1 or LFS sha256
/// {root}/models--{ns}--{name}/refs/{revision}                  the 40-hex commit of a branch or tag (no newline)
/// {root}/models--{ns}--{name}/snapshots/{commit}/{path}        relative symlink to ../../blobs/{etag}
/// {root}/models--{ns}--{name}/.no_exist/{commit}/{path}        empty marker: the file is known to be missing
/// {root}/.locks/models--{ns}--{name}/{etag}.lock               cross-process download lock
/// </code>
/// Every path is built from validated names and then checked to stay under the cache root.
/// </summary>
internal sealed class HubCache
{
    private readonly string _root;

    public HubCache(string root, string repoId)
    {
        _root = Path.GetFullPath(root);
        RepoId = repoId;
        RepoDir = Contained(Path.Combine(_root, HubNames.RepoFolderName(repoId)));
    }

    public string RepoId { get; }

    public string RepoDir { get; }

    public string BlobsDir => Path.Combine(RepoDir, "blobs");

    public string BlobPath(string etag) => Contained(Path.Combine(BlobsDir, etag));

    public string RefPath(string revision) => Contained(Path.Combine(RepoDir, "refs", revision));

    public string SnapshotDir(string commit) => Contained(Path.Combine(RepoDir, "snapshots", commit));

    public string PointerPath(string commit, string filename) => Contained(Path.Combine(SnapshotDir(commit), filename));

    public string NoExistPath(string commit, string filename) => Contained(Path.Combine(RepoDir, ".no_exist", commit, filename));

    public string LockPath(string etag) => Contained(Path.Combine(_root, ".locks", HubNames.RepoFolderName(RepoId), etag + ".lock"));

    /// <summary>The commit a revision names in this cache: itself when 40-hex, else the content of refs/{revision}.</summary>
    public string? ResolveCommit(string revision)
    {
        if (HubNames.IsCommitHash(revision))
            return revision;
        var refPath = RefPath(revision);
        if (!File.Exists(refPath))
            return null;
        var commit = File.ReadAllText(refPath).Trim();
        return HubNames.IsValidCommit(commit) ? commit : null;
    }

    /// <summary>The snapshot file when it exists and its target is readable (a dangling link is a miss).</summary>
    public string? TryGetFile(string commit, string filename)
    {
        var pointer = PointerPath(commit, filename);
        return File.Exists(pointer) ? pointer : null;
    }

    public bool IsKnownMissing(string commit, string filename) => File.Exists(NoExistPath(commit, filename));

    public void WriteRef(string revision, string commit)
    {
        if (revision == commit)
            return;
        var path = RefPath(revision);
        if (File.Exists(path) && File.ReadAllText(path).Trim() == commit)
            return;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        File.WriteAllText(temp, commit);
        File.Move(temp, path, overwrite: true);
    }

    public void MarkMissing(string commit, string filename)
    {
        var path = NoExistPath(commit, filename);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using (File.Create(path)) { }
    }

    /// <summary>
    /// Points snapshots/{commit}/{filename} at blobs/{etag} with a relative symlink (replacing any older entry in one
    /// rename, so readers never see a missing pointer). Falls back to a copy where symlinks are unavailable.
    /// </summary>
    public string LinkSnapshot(string commit, string filename, string etag)
    {
        var pointer = PointerPath(commit, filename);
        var blob = BlobPath(etag);
        var pointerDir = Path.GetDirectoryName(pointer)!;
        Directory.CreateDirectory(pointerDir);
        var target = Path.GetRelativePath(pointerDir, blob).Replace('\\', '/');

        var existing = new FileInfo(pointer);
        if (existing.LinkTarget == target)
            return pointer;

        var temp = pointer + "." + Guid.NewGuid().ToString("N") + ".tmp";
        try
        {
            File.CreateSymbolicLink(temp, target);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            // huggingface_hub's "degraded mode" (Windows without developer mode): a real copy in snapshots/.
            File.Copy(blob, temp, overwrite: true);
        }
        File.Move(temp, pointer, overwrite: true);
        return pointer;
    }

    /// <summary>
    /// Deletes temp files of <paramref name="etag"/> that a killed process left behind (no write for
    /// <paramref name="staleAfter"/>). Called under the blob's lock, so no lock-respecting downloader is writing them.
    /// </summary>
    public void DeleteStaleTemps(string etag, TimeSpan staleAfter)
    {
        if (!Directory.Exists(BlobsDir))
            return;
        foreach (var temp in Directory.EnumerateFiles(BlobsDir, etag + ".*.incomplete"))
        {
            try
            {
                if (DateTime.UtcNow - File.GetLastWriteTimeUtc(temp) > staleAfter)
                    File.Delete(temp);
            }
            catch (IOException)
            {
                // Vanished or in use: someone else is handling it.
            }
        }
    }

    private string Contained(string path)
    {
        var full = Path.GetFullPath(path);
        if (!full.StartsWith(_root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new HubIntegrityException($"refusing to touch '{full}': it lies outside the cache '{_root}'.");
        return full;
    }
}
