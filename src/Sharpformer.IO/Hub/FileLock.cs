namespace Sharpformer.IO.Hub;

/// <summary>
/// A cross-process exclusive lock on a file: an open <see cref="FileStream"/> with <see cref="FileShare.None"/>
/// (flock on Unix, a sharing lock on Windows). The lock file is left in place, as huggingface_hub leaves its
/// <c>.locks/</c> entries; deleting it would let two processes lock two different inodes.
/// </summary>
internal sealed class FileLock : IDisposable
{
    private readonly FileStream? _stream;

    private FileLock(FileStream? stream) => _stream = stream;

    /// <summary>A lock that holds nothing, for <see cref="HubOptions.LockingDisabled"/>.</summary>
    public static FileLock None { get; } = new(null);

    public static async Task<FileLock> AcquireAsync(string path, TimeSpan timeout, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var deadline = DateTime.UtcNow + timeout;
        var delay = 20;
        while (true)
        {
            try
            {
                return new FileLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                // Another process (or task) holds it: wait with a capped backoff.
                await Task.Delay(delay, ct).ConfigureAwait(false);
                delay = Math.Min(delay * 2, 500);
            }
            catch (IOException e)
            {
                throw new HubException(
                    $"timed out after {timeout.TotalSeconds:F0} s waiting for the lock '{path}' held by another download; "
                    + "if no other download is running, delete that file and retry.", e);
            }
        }
    }

    public void Dispose() => _stream?.Dispose();
}
