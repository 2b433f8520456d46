using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Sharpformer.Training.Checkpoints;

/// <summary>
/// The checkpoints of one training run inside its output folder, as HF <c>Trainer</c> lays them out:
/// <c>out/checkpoint-{step}/</c>. A save writes every file into a hidden temporary folder, flushes each to disk, writes a
/// manifest (<see cref="ManifestFile"/>: every file's size and SHA-256) last, and only then renames the folder into
/// place — a directory rename is atomic on one file system, so a process killed at any moment of a save leaves either the
/// previous checkpoints alone or the new one complete. Older checkpoints beyond the last K are deleted only after the new
/// one is in place. Leftover temporary folders (a killed save) are ignored and swept on the next save.
/// </summary>
public sealed class CheckpointStore
{
    /// <summary>The manifest written last into every checkpoint: it lists the other files with size and SHA-256.</summary>
    public const string ManifestFile = "checkpoint.json";

    private const string Prefix = "checkpoint-";
    private const string TempPrefix = ".tmp-checkpoint-";

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>Opens the store of <paramref name="outputFolder"/> (created when saving).</summary>
    /// <param name="outputFolder">The run's output folder.</param>
    /// <param name="keepLast">How many checkpoints to keep (≥ 1); older ones are deleted after each successful save.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="keepLast"/> is below 1.</exception>
    public CheckpointStore(string outputFolder, int keepLast)
    {
        ArgumentException.ThrowIfNullOrEmpty(outputFolder);
        ArgumentOutOfRangeException.ThrowIfLessThan(keepLast, 1);
        OutputFolder = Path.GetFullPath(outputFolder);
        KeepLast = keepLast;
    }

    /// <summary>The run's output folder.</summary>
    public string OutputFolder { get; }

    /// <summary>How many checkpoints are kept.</summary>
    public int KeepLast { get; }

    /// <summary>The folder a checkpoint of <paramref name="step"/> lives in.</summary>
    /// <param name="step">The optimizer step.</param>
    /// <returns>The path (it may not exist).</returns>
    public string PathOf(long step) => Path.Combine(OutputFolder, Prefix + step.ToString(CultureInfo.InvariantCulture));

    /// <summary>The complete checkpoints (those with a manifest), oldest first, as (step, folder).</summary>
    /// <returns>The list; empty when there are none.</returns>
    public IReadOnlyList<(long Step, string Folder)> List()
    {
        if (!Directory.Exists(OutputFolder)) return [];
        var found = new List<(long Step, string Folder)>();
        foreach (var dir in Directory.EnumerateDirectories(OutputFolder, Prefix + "*"))
        {
            var name = Path.GetFileName(dir);
            if (long.TryParse(name.AsSpan(Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out long step)
                && File.Exists(Path.Combine(dir, ManifestFile)))
            {
                found.Add((step, dir));
            }
        }

        found.Sort((a, b) => a.Step.CompareTo(b.Step));
        return found;
    }

    /// <summary>The newest complete checkpoint, or null.</summary>
    /// <returns>(step, folder) or null.</returns>
    public (long Step, string Folder)? Latest()
    {
        var all = List();
        return all.Count == 0 ? null : all[^1];
    }

    /// <summary>
    /// Saves the checkpoint of <paramref name="step"/>: <paramref name="write"/> fills a temporary folder, then the
    /// manifest is written and the folder renamed to <c>checkpoint-{step}</c> (replacing one of the same step); finally
    /// checkpoints beyond <see cref="KeepLast"/> are deleted, oldest first.
    /// </summary>
    /// <param name="step">The optimizer step the checkpoint holds.</param>
    /// <param name="write">Writes the checkpoint's files into the folder it is given.</param>
    /// <returns>The checkpoint folder.</returns>
    public string Save(long step, Action<string> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        Directory.CreateDirectory(OutputFolder);
        SweepTemporaries();
        string temp = Path.Combine(OutputFolder, TempPrefix + step.ToString(CultureInfo.InvariantCulture) + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(temp);
        try
        {
            write(temp);
            WriteManifest(temp, step);
            string target = PathOf(step);
            if (Directory.Exists(target))
            {
                // Same step saved again (a resumed run passing its start): move the old one aside first, then drop it.
                string aside = temp + "-old";
                Directory.Move(target, aside);
                Directory.Move(temp, target);
                Directory.Delete(aside, recursive: true);
            }
            else
            {
                Directory.Move(temp, target);
            }

            Prune();
            return target;
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>
    /// Checks that <paramref name="folder"/> is a complete, unmodified checkpoint: its manifest parses and every file it
    /// lists exists with the recorded size and SHA-256.
    /// </summary>
    /// <param name="folder">A checkpoint folder.</param>
    /// <returns>The step the manifest records.</returns>
    /// <exception cref="InvalidDataException">The manifest is missing or unreadable, or a file is missing, truncated or altered; the message names it.</exception>
    public static long Verify(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        string manifestPath = Path.Combine(folder, ManifestFile);
        if (!File.Exists(manifestPath))
        {
            throw new InvalidDataException($"{folder} is not a complete checkpoint: {ManifestFile} is missing (a save was interrupted, or this is not a checkpoint folder); resume from another checkpoint-N folder or start again.");
        }

        JsonNode? root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(manifestPath));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{manifestPath} is not valid JSON ({e.Message}); the checkpoint is corrupt: resume from an earlier checkpoint-N folder.", e);
        }

        var files = root?["files"]?.AsObject();
        if (root?["step"] is null || files is null)
        {
            throw new InvalidDataException($"{manifestPath} lacks 'step' or 'files'; the checkpoint is corrupt: resume from an earlier checkpoint-N folder.");
        }

        foreach (var (name, entry) in files)
        {
            string path = Path.Combine(folder, name);
            if (!File.Exists(path))
            {
                throw new InvalidDataException($"checkpoint {folder}: {name} is missing; resume from an earlier checkpoint-N folder.");
            }

            long size = entry?["size"]?.GetValue<long>() ?? -1;
            string sha = entry?["sha256"]?.GetValue<string>() ?? string.Empty;
            long actual = new FileInfo(path).Length;
            if (actual != size)
            {
                throw new InvalidDataException($"checkpoint {folder}: {name} has {actual} bytes, the manifest recorded {size} (truncated or replaced); resume from an earlier checkpoint-N folder.");
            }

            if (!string.Equals(Sha256(path), sha, StringComparison.Ordinal))
            {
                throw new InvalidDataException($"checkpoint {folder}: {name} does not match its recorded SHA-256 (the file was altered or corrupted); resume from an earlier checkpoint-N folder.");
            }
        }

        return root["step"]!.GetValue<long>();
    }

    /// <summary>Writes a file through a temporary name, flushed to disk, then renamed over <paramref name="path"/> (atomic replace).</summary>
    /// <param name="path">The destination.</param>
    /// <param name="write">Writes the content.</param>
    public static void WriteAtomically(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(write);
        string temp = path + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            TryDeleteFile(temp);
            throw;
        }
    }

    private static void WriteManifest(string folder, long step)
    {
        var files = new JsonObject();
        foreach (var path in Directory.EnumerateFiles(folder).Order(StringComparer.Ordinal))
        {
            string name = Path.GetFileName(path);
            if (name == ManifestFile) continue;

            // Flush what the writer left in the OS cache: the manifest must never describe bytes not yet on disk.
            using (var handle = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read))
            {
                handle.Flush(flushToDisk: true);
            }

            files[name] = new JsonObject { ["size"] = new FileInfo(path).Length, ["sha256"] = Sha256(path) };
        }

        var manifest = new JsonObject { ["step"] = step, ["files"] = files };
        WriteAtomically(Path.Combine(folder, ManifestFile), s => JsonSerializer.Serialize(s, manifest, Indented));
    }

    private static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private void Prune()
    {
        var all = List();
        for (int i = 0; i < all.Count - KeepLast; i++)
        {
            TryDelete(all[i].Folder);
        }
    }

    private void SweepTemporaries()
    {
        foreach (var dir in Directory.EnumerateDirectories(OutputFolder, TempPrefix + "*"))
        {
            TryDelete(dir);
        }
    }

    private static void TryDelete(string folder)
    {
        try
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a folder we cannot delete now is swept on the next save.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static void TryDeleteFile(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
