using System.Text.RegularExpressions;

namespace Sharpformer.IO.Hub;

/// <summary>
/// Validation of every name that becomes part of a cache path: repo ids, revisions, filenames and etags. Anything
/// that could climb out of the cache (<c>..</c>, absolute paths, backslashes, drive prefixes, NUL) is rejected.
/// </summary>
internal static partial class HubNames
{
    /// <summary>huggingface_hub's validate_repo_id: "name" or "namespace/name", word chars, '-' and '.', at most 96.</summary>
    [GeneratedRegex(@"^([A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?/)?[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?$")]
    private static partial Regex RepoIdPattern();

    [GeneratedRegex(@"^[0-9a-f]{40}$")]
    private static partial Regex CommitPattern();

    [GeneratedRegex(@"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")]
    private static partial Regex EtagPattern();

    [GeneratedRegex(@"^[A-Za-z0-9._\-/]+$")]
    private static partial Regex RevisionPattern();

    /// <summary>
    /// Whether a model name is meant as a local path rather than a repo id: it starts with '/', '~' or '.', names a drive,
    /// holds a backslash or more than one '/', or ends with a separator. Repo ids are 'name' or 'namespace/name'.
    /// </summary>
    public static bool LooksLikePath(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value.Length == 0) return false;
        if (value[0] is '/' or '~' or '.' || value.Contains('\\', StringComparison.Ordinal)) return true;
        if (value.Length >= 2 && value[1] == ':' && char.IsAsciiLetter(value[0])) return true;
        if (value.EndsWith('/')) return true;
        return value.Count(c => c == '/') > 1;
    }

    public static void ValidateRepoId(string repoId)
    {
        ArgumentNullException.ThrowIfNull(repoId);
        if (repoId.Length is 0 or > 96 || !RepoIdPattern().IsMatch(repoId) || repoId.Contains("--", StringComparison.Ordinal)
            || repoId.Contains("..", StringComparison.Ordinal))
        {
            throw new ArgumentException(
                $"'{repoId}' is not a valid Hugging Face repo id: use 'name' or 'namespace/name' with letters, digits, '-', '_' and '.', "
                + "at most 96 characters, no '--' or '..' (or pass an existing local folder).", nameof(repoId));
        }
    }

    public static void ValidateRevision(string revision)
    {
        ArgumentNullException.ThrowIfNull(revision);
        if (revision.Length is 0 or > 255 || !RevisionPattern().IsMatch(revision) || revision.StartsWith('/')
            || revision.EndsWith('/') || revision.Split('/').Any(s => s is "" or "." or ".."))
        {
            throw new ArgumentException(
                $"'{revision}' is not a valid revision: use a branch, tag or 40-hex commit made of letters, digits, '.', '_', '-' and '/', "
                + "with no empty, '.' or '..' path segments.", nameof(revision));
        }
    }

    public static void ValidateFilename(string filename)
    {
        ArgumentNullException.ThrowIfNull(filename);
        var bad = filename.Length is 0 or > 1024
            || filename.Contains('\\', StringComparison.Ordinal)
            || filename.Any(char.IsControl)
            || filename.StartsWith('/')
            || (filename.Length >= 2 && filename[1] == ':' && char.IsAsciiLetter(filename[0]))
            || filename.Split('/').Any(s => s is "" or "." or "..");
        if (bad)
        {
            throw new ArgumentException(
                $"'{filename.Replace("\0", "\\0", StringComparison.Ordinal)}' is not a valid repository file name: use a relative path "
                + "with '/' separators and no '..', '.', empty segments, backslashes, drive prefixes or control characters.",
                nameof(filename));
        }
    }

    public static bool IsCommitHash(string revision) => CommitPattern().IsMatch(revision);

    /// <summary>Strips a weak-validator prefix and quotes from an ETag and checks it is a git sha1 or an LFS sha256.</summary>
    public static string? NormalizeEtag(string? raw)
    {
        if (raw is null)
            return null;
        var etag = raw.Trim();
        if (etag.StartsWith("W/", StringComparison.Ordinal))
            etag = etag[2..];
        etag = etag.Trim('"');
        return EtagPattern().IsMatch(etag) ? etag : throw new HubIntegrityException(
            $"the server sent ETag '{raw}', which is not a 40-hex git sha1 or a 64-hex LFS sha256; refusing to use it as a cache file name.");
    }

    public static bool IsValidCommit(string? value) => value is not null && CommitPattern().IsMatch(value);

    /// <summary>The cache folder of a model repo: <c>models--namespace--name</c> (case kept).</summary>
    public static string RepoFolderName(string repoId) => "models--" + repoId.Replace("/", "--", StringComparison.Ordinal);
}
