namespace Sharpformer.IO.Hub;

/// <summary>Base of every error the Hub client raises; the message says what failed and how to fix it.</summary>
public class HubException : Exception
{
    /// <summary>Creates the exception with a message that names the repository, revision and file.</summary>
    public HubException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and the error that caused it.</summary>
    public HubException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates the exception with a default message.</summary>
    public HubException() : base("Hugging Face Hub request failed.") { }
}

/// <summary>The repository does not exist, or is private and no valid token was sent (HTTP 401/404, <c>RepoNotFound</c>).</summary>
public sealed class RepositoryNotFoundException : HubException
{
    /// <inheritdoc/>
    public RepositoryNotFoundException(string message) : base(message) { }

    /// <inheritdoc/>
    public RepositoryNotFoundException(string message, Exception innerException) : base(message, innerException) { }

    /// <inheritdoc/>
    public RepositoryNotFoundException() { }
}

/// <summary>The repository is gated or forbidden (HTTP 401/403): it needs a token whose account accepted the license.</summary>
public sealed class GatedRepoException : HubException
{
    /// <inheritdoc/>
    public GatedRepoException(string message) : base(message) { }

    /// <inheritdoc/>
    public GatedRepoException(string message, Exception innerException) : base(message, innerException) { }

    /// <inheritdoc/>
    public GatedRepoException() { }
}

/// <summary>The revision (branch, tag or commit) does not exist in the repository (HTTP 404, <c>RevisionNotFound</c>).</summary>
public sealed class RevisionNotFoundException : HubException
{
    /// <inheritdoc/>
    public RevisionNotFoundException(string message) : base(message) { }

    /// <inheritdoc/>
    public RevisionNotFoundException(string message, Exception innerException) : base(message, innerException) { }

    /// <inheritdoc/>
    public RevisionNotFoundException() { }
}

/// <summary>The file does not exist in the repository at that revision (HTTP 404, <c>EntryNotFound</c>).</summary>
public sealed class EntryNotFoundException : HubException
{
    /// <inheritdoc/>
    public EntryNotFoundException(string message) : base(message) { }

    /// <inheritdoc/>
    public EntryNotFoundException(string message, Exception innerException) : base(message, innerException) { }

    /// <inheritdoc/>
    public EntryNotFoundException() { }
}

/// <summary>Offline mode (<c>HF_HUB_OFFLINE=1</c>) and the file is not in the cache.</summary>
public sealed class OfflineCacheMissException : HubException
{
    /// <inheritdoc/>
    public OfflineCacheMissException(string message) : base(message) { }

    /// <inheritdoc/>
    public OfflineCacheMissException(string message, Exception innerException) : base(message, innerException) { }

    /// <inheritdoc/>
    public OfflineCacheMissException() { }
}

/// <summary>The endpoint could not be reached, timed out, or the connection broke mid-download.</summary>
public sealed class HubNetworkException : HubException
{
    /// <inheritdoc/>
    public HubNetworkException(string message) : base(message) { }

    /// <inheritdoc/>
    public HubNetworkException(string message, Exception innerException) : base(message, innerException) { }

    /// <inheritdoc/>
    public HubNetworkException() { }
}

/// <summary>The server answered with an unexpected HTTP status (e.g. 5xx).</summary>
public sealed class HubHttpException : HubException
{
    /// <inheritdoc/>
    public HubHttpException(string message) : base(message) { }

    /// <inheritdoc/>
    public HubHttpException(string message, Exception innerException) : base(message, innerException) { }

    /// <inheritdoc/>
    public HubHttpException() { }
}

/// <summary>
/// The server's answer cannot be trusted: missing or malformed <c>X-Repo-Commit</c>/ETag, a body whose size or hash
/// differs from the advertised one, or a response that is too large. Nothing is written to the cache.
/// </summary>
public sealed class HubIntegrityException : HubException
{
    /// <inheritdoc/>
    public HubIntegrityException(string message) : base(message) { }

    /// <inheritdoc/>
    public HubIntegrityException(string message, Exception innerException) : base(message, innerException) { }

    /// <inheritdoc/>
    public HubIntegrityException() { }
}
