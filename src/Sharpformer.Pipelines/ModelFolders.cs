using Sharpformer.IO.Hub;

namespace Sharpformer.Pipelines;

/// <summary>
/// The one place a model name becomes files on disk, for every pipeline and command: a local folder as is, else a Hub
/// repo id fetched through <see cref="HubClient"/> into the Hugging Face cache (or found there when offline).
/// </summary>
public static class ModelFolders
{
    /// <summary>
    /// The model's files: a local folder as is, else "org/name" through the Hub client and its cache. When the Hub cannot
    /// be reached (or offline mode is on) and nothing is cached, one line says so and <paramref name="folderHint"/> says
    /// what local folder to pass instead.
    /// </summary>
    /// <param name="modelIdOrFolder">"org/name" (optionally with the options' revision) or a local folder.</param>
    /// <param name="options">Hub settings, revision and download progress.</param>
    /// <param name="folderHint">What to say the user can pass instead when nothing can be had.</param>
    /// <param name="ct">Cancels downloads.</param>
    /// <returns>The resolved files and their folder.</returns>
    /// <exception cref="ModelUnavailableException">Not a folder, not cached, and the Hub cannot be reached (or offline mode is on).</exception>
    public static async Task<ModelFiles> ResolveAsync(string modelIdOrFolder, PipelineOptions options, string folderHint, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelIdOrFolder);
        ArgumentNullException.ThrowIfNull(options);
        var hub = options.Hub ?? HubOptions.FromEnvironment();
        using var client = new HubClient(hub);
        try
        {
            return await client.ResolveModelFilesAsync(modelIdOrFolder, options.Revision, options.DownloadProgress, ct).ConfigureAwait(false);
        }
        catch (OfflineCacheMissException e)
        {
            throw new ModelUnavailableException(
                $"'{modelIdOrFolder}' is not in the cache ({hub.CacheDir}) and offline mode is on (HF_HUB_OFFLINE); {folderHint}", e);
        }
        catch (HubNetworkException e)
        {
            throw new ModelUnavailableException(
                $"'{modelIdOrFolder}' is not cached and the Hub at {hub.Endpoint} cannot be reached; {folderHint}", e);
        }
    }
}
