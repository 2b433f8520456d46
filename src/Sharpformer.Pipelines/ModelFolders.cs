using Sharpformer.IO.Hub;

namespace Sharpformer.Pipelines;

/// <summary>
/// The one place a model name becomes files on disk, for every pipeline and command: a local folder as is, a shipped
/// model's name (<c>sharpformer/bert-mini-en</c>, <see cref="ShippedModels"/>) as its installed folder, else a Hub repo
/// id fetched through <see cref="HubClient"/> into the Hugging Face cache (or found there when offline); and, for a
/// default model the user did not choose, the shipped stand-in when the Hub and the cache cannot give it.
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
        if (ShippedModels.IsShippedName(modelIdOrFolder) && !Directory.Exists(modelIdOrFolder))
        {
            // sharpformer/<name>: the models shipped with the install, never the Hub.
            var shipped = ShippedModels.TryGetFolder(modelIdOrFolder) ?? throw new ModelUnavailableException(
                $"'{modelIdOrFolder}' is not installed: no {Path.Combine(ShippedModels.Root, modelIdOrFolder)}{Path.DirectorySeparatorChar}config.json "
                + $"(the shipped models are {string.Join(", ", ShippedModels.Names)}; {ShippedModels.RootVariable} moves their root); {folderHint}");
            return await client.ResolveModelFilesAsync(shipped, options.Revision, options.DownloadProgress, ct).ConfigureAwait(false);
        }

        string reason;
        Exception cause;
        try
        {
            return await client.ResolveModelFilesAsync(modelIdOrFolder, options.Revision, options.DownloadProgress, ct).ConfigureAwait(false);
        }
        catch (OfflineCacheMissException e)
        {
            reason = $"'{modelIdOrFolder}' is not in the cache ({hub.CacheDir}) and offline mode is on (HF_HUB_OFFLINE)";
            cause = e;
        }
        catch (HubNetworkException e)
        {
            reason = $"'{modelIdOrFolder}' is not cached and the Hub at {hub.Endpoint} cannot be reached";
            cause = e;
        }

        if (options.UseShippedWhenUnavailable && ShippedModels.StandInFor(modelIdOrFolder) is { } standIn && ShippedModels.TryGetFolder(standIn) is { } folder)
        {
            options.Warning?.Invoke($"{reason}: using the shipped {standIn} instead (online, the default is {modelIdOrFolder}).");
            return await client.ResolveModelFilesAsync(folder, options.Revision, options.DownloadProgress, ct).ConfigureAwait(false);
        }

        throw new ModelUnavailableException($"{reason}; {folderHint}", cause);
    }
}
