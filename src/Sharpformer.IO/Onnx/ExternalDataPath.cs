using System.Diagnostics.CodeAnalysis;

namespace Sharpformer.IO.Onnx;

/// <summary>
/// Containment rules for ONNX external-data locations (the CVE-2022-25882 / CVE-2024-27318 / CVE-2026-27489 family):
/// a location is a relative path with no <c>..</c> segment, and once every symlink along it is resolved it still lies
/// inside the model's folder. An empty base folder (a model parsed from memory) allows no external data at all.
/// </summary>
internal static class ExternalDataPath
{
    /// <summary>Returns the full path of <paramref name="location"/> under <paramref name="baseDirectory"/>, or throws.</summary>
    public static string Resolve(string? baseDirectory, string location, string file, string label)
    {
        if (string.IsNullOrEmpty(baseDirectory))
        {
            Reject(file, label, location, "the model was not read from a folder, so external data has nowhere safe to come from; load the model with OnnxReader.Load(path)");
        }

        if (location.Contains('\0', StringComparison.Ordinal))
        {
            Reject(file, label, location, "the location contains a NUL character");
        }

        if (Path.IsPathRooted(location) || location.StartsWith('/') || location.StartsWith('\\') || (location.Length >= 2 && location[1] == ':'))
        {
            Reject(file, label, location, "the location is absolute; it must be a path relative to the model's folder");
        }

        foreach (string segment in location.Split('/', '\\'))
        {
            if (segment == "..")
            {
                Reject(file, label, location, "the location contains a '..' segment; it must stay inside the model's folder");
            }
        }

        string root = RealPath(Path.GetFullPath(baseDirectory));
        string full = Path.GetFullPath(Path.Combine(root, location));
        string real = RealPath(full);
        string rootWithSeparator = root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar;
        if (!real.StartsWith(rootWithSeparator, StringComparison.Ordinal))
        {
            Reject(file, label, location, $"the location resolves (through a symbolic link) to '{real}', outside the model's folder '{root}'");
        }

        return real;
    }

    /// <summary>The path with every symbolic link along it resolved (like realpath(3); missing tails are kept as written).</summary>
    internal static string RealPath(string fullPath)
    {
        string? root = Path.GetPathRoot(fullPath);
        string current = string.IsNullOrEmpty(root) ? string.Empty : root;
        string rest = fullPath[current.Length..];
        int hops = 0;
        foreach (string segment in rest.Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            string next = Path.Combine(current, segment);
            FileSystemInfo info = Directory.Exists(next) ? new DirectoryInfo(next) : new FileInfo(next);
            if (info.Exists && info.LinkTarget is not null)
            {
                // Resolve the whole chain, then re-resolve the result (its own parents may be links too).
                if (++hops > 40)
                {
                    throw new IOException($"Too many symbolic links while resolving '{fullPath}'.");
                }

                var target = info.ResolveLinkTarget(returnFinalTarget: true);
                next = target is null ? next : RealPath(Path.GetFullPath(target.FullName));
            }

            current = next;
        }

        return current;
    }

    [DoesNotReturn]
    private static void Reject(string file, string label, string location, string rule) =>
        throw new OnnxFormatException(file, label, $"external data location '{location}' is rejected: {rule}");
}
