namespace Sharpformer.IO.SafeTensors;

/// <summary>Opens the weights of a model folder (or a file) whatever their layout: one file or a sharded index.</summary>
public static class SafeTensorsLoader
{
    /// <summary>
    /// Opens <paramref name="path"/>: a <c>.safetensors</c> file, a <c>*.index.json</c>, or a folder holding
    /// <c>model.safetensors</c>, else <c>model.safetensors.index.json</c>, else exactly one <c>*.safetensors</c> file.
    /// </summary>
    /// <exception cref="SafeTensorsException">Nothing loadable is there (kind <see cref="SafeTensorsErrorKind.NotFound"/>), or a file is invalid.</exception>
    public static ISafeTensorsSource Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (File.Exists(path))
        {
            return path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)
                ? ShardedSafeTensors.Open(path)
                : SafeTensorsFile.Open(path);
        }

        if (!Directory.Exists(path))
        {
            throw new SafeTensorsException(SafeTensorsErrorKind.NotFound, path, null, "no such file or folder.");
        }

        string single = Path.Combine(path, SafeTensorsWriter.SingleFileName);
        if (File.Exists(single))
        {
            return SafeTensorsFile.Open(single);
        }

        string index = Path.Combine(path, SafeTensorsWriter.IndexFileName);
        if (File.Exists(index))
        {
            return ShardedSafeTensors.Open(index);
        }

        var candidates = Directory.GetFiles(path, "*.safetensors");
        if (candidates.Length == 1)
        {
            return SafeTensorsFile.Open(candidates[0]);
        }

        if (candidates.Length > 1)
        {
            throw new SafeTensorsException(SafeTensorsErrorKind.NotFound, path, null,
                $"{candidates.Length} .safetensors files but neither {SafeTensorsWriter.SingleFileName} nor {SafeTensorsWriter.IndexFileName}; open the file you mean directly.");
        }

        bool pickle = Directory.EnumerateFiles(path).Any(f => f.EndsWith(".bin", StringComparison.OrdinalIgnoreCase)
            || f.EndsWith(".pt", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".pth", StringComparison.OrdinalIgnoreCase));
        throw new SafeTensorsException(SafeTensorsErrorKind.NotFound, path, null, pickle
            ? "only pickle-based weights (.bin/.pt/.pth) are here: unsupported format, convert to safetensors (pickle can run arbitrary code and is never loaded)."
            : $"no {SafeTensorsWriter.SingleFileName}, {SafeTensorsWriter.IndexFileName} or other .safetensors file in the folder.");
    }
}
