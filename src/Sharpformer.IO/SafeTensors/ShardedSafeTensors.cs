using System.Text.Json;
using System.Text.Unicode;
using Sharpformer.Tensors;

namespace Sharpformer.IO.SafeTensors;

/// <summary>
/// A sharded checkpoint opened through its <c>model.safetensors.index.json</c>: one view over several memory-mapped
/// shards. Every name in <c>weight_map</c> must exist in the shard it points to, and shard names must be plain file
/// names inside the index's folder (no absolute paths, no <c>..</c>, no symlink leading outside).
/// </summary>
public sealed class ShardedSafeTensors : ISafeTensorsSource
{
    // An index is a few hundred KB even for the largest models; this cap only stops a hostile file.
    private const long MaxIndexBytes = 100_000_000;

    private readonly Dictionary<string, SafeTensorsFile> _byTensor;
    private readonly List<SafeTensorsFile> _shards;

    private ShardedSafeTensors(string indexPath, List<SafeTensorsFile> shards, Dictionary<string, SafeTensorsFile> byTensor, List<SafeTensorInfo> tensors, long? totalSize)
    {
        IndexPath = indexPath;
        _shards = shards;
        _byTensor = byTensor;
        Tensors = tensors;
        TotalSize = totalSize;
    }

    /// <summary>Path of the index file.</summary>
    public string IndexPath { get; }

    /// <summary>The opened shards, in file-name order.</summary>
    public IReadOnlyList<SafeTensorsFile> Shards => _shards;

    /// <summary><c>metadata.total_size</c> from the index (the sum of tensor bytes, as the writer states it), if present.</summary>
    public long? TotalSize { get; }

    /// <inheritdoc/>
    public IReadOnlyList<SafeTensorInfo> Tensors { get; }

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, string> Metadata => _shards[0].Metadata;

    /// <summary>Opens the index at <paramref name="indexPath"/> and every shard it names.</summary>
    /// <exception cref="SafeTensorsException">The index is malformed, names a missing tensor or shard, escapes the folder, or a shard is invalid.</exception>
    public static ShardedSafeTensors Open(string indexPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(indexPath);
        var info = new FileInfo(indexPath);
        if (!info.Exists)
        {
            throw new FileNotFoundException($"No sharded index at '{indexPath}'.", indexPath);
        }

        if (info.Length > MaxIndexBytes)
        {
            throw Invalid(indexPath, null, $"the index has {info.Length} bytes, over the {MaxIndexBytes}-byte cap; it is not a real index.");
        }

        var (weightMap, totalSize) = ParseIndex(File.ReadAllBytes(indexPath), indexPath);
        string folder = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;
        var shardPaths = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (tensor, file) in weightMap)
        {
            if (!shardPaths.ContainsKey(file))
            {
                shardPaths.Add(file, ResolveShard(folder, file, tensor, indexPath));
            }
        }

        var shards = new List<SafeTensorsFile>();
        try
        {
            var byFile = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
            foreach (var (file, path) in shardPaths)
            {
                var shard = SafeTensorsFile.Open(path);
                shards.Add(shard);
                byFile.Add(file, shard);
            }

            var byTensor = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
            foreach (var (tensor, file) in weightMap)
            {
                var shard = byFile[file];
                if (!shard.Contains(tensor))
                {
                    throw Invalid(indexPath, tensor, $"weight_map puts it in '{file}', but that shard has no such tensor; the index and shards are from different saves.");
                }

                byTensor.Add(tensor, shard);
            }

            // File order: shard by shard, each in its own offset order, listing only what the index maps there.
            var tensors = new List<SafeTensorInfo>(weightMap.Count);
            foreach (var shard in shards)
            {
                foreach (var t in shard.Tensors)
                {
                    if (byTensor.TryGetValue(t.Name, out var owner) && owner == shard)
                    {
                        tensors.Add(t);
                    }
                }
            }

            return new ShardedSafeTensors(indexPath, shards, byTensor, tensors, totalSize);
        }
        catch
        {
            foreach (var s in shards)
            {
                s.Dispose();
            }

            throw;
        }
    }

    /// <inheritdoc/>
    public bool Contains(string name) => _byTensor.ContainsKey(name);

    /// <inheritdoc/>
    public SafeTensorInfo GetInfo(string name) => Owner(name).GetInfo(name);

    /// <inheritdoc/>
    public Tensor GetTensor(string name) => Owner(name).GetTensor(name);

    /// <inheritdoc/>
    public Tensor GetTensorAsF32(string name) => Owner(name).GetTensorAsF32(name);

    /// <inheritdoc/>
    public ReadOnlySpan<byte> GetBytes(string name) => Owner(name).GetBytes(name);

    /// <summary>The shard holding <paramref name="name"/>.</summary>
    /// <exception cref="SafeTensorsException">The index does not map the name.</exception>
    public SafeTensorsFile Owner(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _byTensor.TryGetValue(name, out var shard)
            ? shard
            : throw new SafeTensorsException(SafeTensorsErrorKind.TensorNotFound, IndexPath, name,
                $"no such tensor in weight_map ({_byTensor.Count} tensors across {_shards.Count} shards).");
    }

    /// <summary>Unmaps every shard.</summary>
    public void Dispose()
    {
        foreach (var s in _shards)
        {
            s.Dispose();
        }
    }

    /// <summary>Parses an index: <c>weight_map</c> (name → shard file) and the optional <c>metadata.total_size</c>.</summary>
    /// <exception cref="SafeTensorsException">The JSON is malformed, has duplicate keys, or a field has the wrong type.</exception>
    internal static (List<KeyValuePair<string, string>> WeightMap, long? TotalSize) ParseIndex(ReadOnlyMemory<byte> json, string indexPath)
    {
        // JsonDocument defers UTF-8 checks inside strings until GetString, which then throws InvalidOperationException
        // (found by the fuzzer): validate up front so every bad byte becomes an index error.
        if (!Utf8.IsValid(json.Span))
        {
            throw Invalid(indexPath, null, "the index is not valid UTF-8; the file is corrupt.");
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw Invalid(indexPath, null, $"the index is not valid JSON ({e.Message}).", e);
        }

        using (doc)
        {
            try
            {
                return ReadIndex(doc.RootElement, indexPath);
            }
            catch (InvalidOperationException e)
            {
                // An escaped lone surrogate ("\ud800") is valid JSON but not a valid .NET string.
                throw Invalid(indexPath, null, $"the index holds a string that is not valid Unicode ({e.Message}).", e);
            }
        }
    }

    private static (List<KeyValuePair<string, string>> WeightMap, long? TotalSize) ReadIndex(JsonElement root, string indexPath)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw Invalid(indexPath, null, "the index must be a JSON object with \"weight_map\".");
        }

        JsonElement? weightMapElement = null;
        long? totalSize = null;
        var topKeys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in root.EnumerateObject())
        {
            if (!topKeys.Add(p.Name))
            {
                throw Invalid(indexPath, null, $"the key \"{p.Name}\" appears twice at the top level.");
            }

            if (p.NameEquals("weight_map"))
            {
                weightMapElement = p.Value;
            }
            else if (p.NameEquals("metadata"))
            {
                totalSize = ParseMetadata(p.Value, indexPath);
            }
        }

        if (weightMapElement is not { ValueKind: JsonValueKind.Object } map)
        {
            throw Invalid(indexPath, null, "\"weight_map\" must be an object mapping tensor names to shard file names.");
        }

        var result = new List<KeyValuePair<string, string>>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in map.EnumerateObject())
        {
            if (!seen.Add(p.Name))
            {
                throw new SafeTensorsException(SafeTensorsErrorKind.DuplicateName, indexPath, p.Name, "weight_map lists the tensor twice; the index is ambiguous.");
            }

            if (p.Value.ValueKind != JsonValueKind.String)
            {
                throw Invalid(indexPath, p.Name, $"its weight_map value must be a shard file name (a string), found {p.Value.ValueKind}.");
            }

            result.Add(new(p.Name, p.Value.GetString()!));
        }

        if (result.Count == 0)
        {
            throw Invalid(indexPath, null, "weight_map is empty; an index must map at least one tensor.");
        }

        return (result, totalSize);
    }

    private static long? ParseMetadata(JsonElement metadata, string indexPath)
    {
        if (metadata.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (metadata.ValueKind != JsonValueKind.Object)
        {
            throw Invalid(indexPath, null, $"\"metadata\" must be an object, found {metadata.ValueKind}.");
        }

        long? total = null;
        foreach (var p in metadata.EnumerateObject())
        {
            if (!p.NameEquals("total_size"))
            {
                continue;
            }

            if (total is not null)
            {
                throw Invalid(indexPath, null, "metadata.total_size appears twice.");
            }

            // transformers writes an integer; some tools write it as a float such as 1234.0.
            if (p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt64(out long n) && n >= 0)
            {
                total = n;
            }
            else if (p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetDouble(out double d) && d >= 0 && d < 9e18 && d == Math.Floor(d))
            {
                total = (long)d;
            }
            else
            {
                throw Invalid(indexPath, null, $"metadata.total_size must be a non-negative integer, found {p.Value.GetRawText()}.");
            }
        }

        return total;
    }

    /// <summary>
    /// Checks that <paramref name="file"/> names a file directly inside <paramref name="folder"/> and returns its path.
    /// A symlink may point into the folder, or (for a Hugging Face cache snapshot) into the repo's <c>blobs/</c>.
    /// </summary>
    internal static string ResolveShard(string folder, string file, string tensor, string indexPath)
    {
        bool plain = file.Length > 0
            && file != "." && file != ".."
            && file.IndexOfAny(['/', '\\', '\0', ':']) < 0
            && !Path.IsPathRooted(file);
        if (!plain)
        {
            throw new SafeTensorsException(SafeTensorsErrorKind.PathEscape, indexPath, tensor,
                $"shard name \"{file}\" is not a plain file name in the index's folder (absolute paths, separators, '..' and drive prefixes are refused).");
        }

        string path = Path.Combine(folder, file);
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new SafeTensorsException(SafeTensorsErrorKind.InvalidIndex, indexPath, tensor,
                $"weight_map names the shard '{file}', which does not exist in '{folder}'; the download is incomplete.");
        }

        if (info.LinkTarget is not null)
        {
            var target = info.ResolveLinkTarget(returnFinalTarget: true);
            string resolved = target is null ? path : Path.GetFullPath(target.FullName);
            if (!IsUnder(resolved, folder) && !IsUnderCacheBlobs(resolved, folder))
            {
                throw new SafeTensorsException(SafeTensorsErrorKind.PathEscape, indexPath, tensor,
                    $"shard '{file}' is a symlink to '{resolved}', outside the model folder; refusing to follow it.");
            }
        }

        return path;
    }

    private static bool IsUnder(string path, string folder)
    {
        string root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder)) + Path.DirectorySeparatorChar;
        return Path.GetFullPath(path).StartsWith(root, StringComparison.Ordinal);
    }

    private static bool IsUnderCacheBlobs(string path, string folder)
    {
        // HF cache: <repo>/snapshots/<commit>/<file> -> ../../blobs/<hash>.
        var snapshots = Directory.GetParent(Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder)));
        if (snapshots is null || snapshots.Name != "snapshots" || snapshots.Parent is null)
        {
            return false;
        }

        return IsUnder(path, Path.Combine(snapshots.Parent.FullName, "blobs"));
    }

    private static SafeTensorsException Invalid(string indexPath, string? tensor, string message, Exception? inner = null) =>
        new(SafeTensorsErrorKind.InvalidIndex, indexPath, tensor, message, inner);
}
