namespace Sharpformer.Training;

/// <summary>
/// The output-folder rules that <c>train</c> and <c>finetune</c> share: a new run may use a folder that does not exist, is
/// empty, or (with --overwrite) holds only an earlier run's files, which are then deleted; anything else is refused
/// before a byte is written.
/// </summary>
internal static class RunFolder
{
    /// <summary>Throws unless <paramref name="output"/> may take a new run.</summary>
    /// <param name="output">The --out folder.</param>
    /// <param name="overwrite">Whether --overwrite was given.</param>
    /// <param name="isRunFile">Whether a top-level name is one a run of this kind writes.</param>
    /// <param name="runKind">"training" or "fine-tuning", for the message.</param>
    /// <exception cref="IOException">The folder holds files and --overwrite was not given, or it holds files no such run wrote.</exception>
    public static void Check(string output, bool overwrite, Func<string, bool> isRunFile, string runKind)
    {
        if (!Directory.Exists(output) || !Directory.EnumerateFileSystemEntries(output).Any()) return;
        if (!overwrite)
        {
            throw new IOException($"--out {output} already holds files; pass --resume to continue the run saved there, --overwrite to start it over, or choose an empty folder.");
        }

        var foreign = Directory.EnumerateFileSystemEntries(output).Select(Path.GetFileName).Where(name => !isRunFile(name!)).ToList();
        if (foreign.Count > 0)
        {
            throw new IOException($"--out {output} holds files that no {runKind} run wrote ({string.Join(", ", foreign.Take(5))}); --overwrite only replaces an earlier run's files: choose another folder.");
        }
    }

    /// <summary>Deletes an earlier run's files (and only those) from <paramref name="output"/>.</summary>
    /// <param name="output">The --out folder.</param>
    /// <param name="isRunFile">Whether a top-level name is one a run of this kind writes.</param>
    public static void Clear(string output, Func<string, bool> isRunFile)
    {
        if (!Directory.Exists(output)) return;
        foreach (var entry in Directory.EnumerateFileSystemEntries(output))
        {
            if (!isRunFile(Path.GetFileName(entry))) continue;
            if (Directory.Exists(entry)) Directory.Delete(entry, recursive: true);
            else File.Delete(entry);
        }
    }
}
