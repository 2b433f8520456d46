using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Sharpformer.Training.Distributed;

/// <summary>One text of a batch-inference input: its id (the JSONL "id", the file's relative path, or the line number) and text.</summary>
/// <param name="Id">Where the text came from, written back beside its result.</param>
/// <param name="Text">The text.</param>
public sealed record InferenceInput(string Id, string Text);

/// <summary>Progress of a sharded batch-inference run, reported on rank 0.</summary>
/// <param name="Done">Inputs whose results are in the output (including those found there at the start).</param>
/// <param name="Total">All inputs.</param>
public readonly record struct InferenceProgress(long Done, long Total);

/// <summary>
/// Batch inference over many texts, sharded across the ranks of a group (<c>mpirun -np N sharpformer embed --input …
/// --output …</c>) and resumable: the output is JSONL, one line per input in input order
/// (<c>{"index": i, "id": …, …the result's fields}</c>). In each round every rank runs one batch of the next
/// ranks × batch inputs (rank r the r-th batch), rank 0 gathers the lines and appends them in input order, so the file
/// only ever grows by whole rounds. An output that already exists is checked against the input and extended from its
/// last complete line, never redone.
/// </summary>
public static class ShardedInference
{
    /// <summary>
    /// Reads the inputs: a .jsonl file (a "text" field per line, an optional "id"), a folder (each .txt/.md file below it
    /// is one text, in ordinal order of the relative path, which is its id), or any other file (one text per non-empty
    /// line, its 1-based line number the id).
    /// </summary>
    /// <param name="path">The input file or folder.</param>
    /// <returns>The inputs in order.</returns>
    /// <exception cref="FileNotFoundException">The path does not exist.</exception>
    /// <exception cref="InvalidDataException">A JSONL line is not an object with a string "text"; the message names the line.</exception>
    public static IReadOnlyList<InferenceInput> ReadInputs(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path))
        {
            var root = Path.GetFullPath(path);
            return [.. Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
                .Where(f => f.EndsWith(".txt", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".md", StringComparison.OrdinalIgnoreCase))
                .Select(f => Path.GetRelativePath(root, f).Replace('\\', '/'))
                .Order(StringComparer.Ordinal)
                .Select(relative => new InferenceInput(relative, File.ReadAllText(Path.Combine(root, relative))))];
        }

        if (!File.Exists(path)) throw new FileNotFoundException($"--input {path}: no such file or folder; give a .jsonl file (a \"text\" field per line), a folder of .txt/.md files, or a text file (one text per line).", path);
        var inputs = new List<InferenceInput>();
        int lineNumber = 0;
        bool jsonl = path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase);
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            if (!jsonl)
            {
                inputs.Add(new InferenceInput(lineNumber.ToString(System.Globalization.CultureInfo.InvariantCulture), line));
                continue;
            }

            JsonNode? node;
            try
            {
                node = JsonNode.Parse(line);
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{path}:{lineNumber}: not a JSON object ({e.Message}); each line must be like {{\"text\": \"...\"}}.", e);
            }

            if (node is not JsonObject obj || obj["text"] is not JsonValue text || !text.TryGetValue(out string? value))
            {
                throw new InvalidDataException($"{path}:{lineNumber}: each line must be a JSON object with a string \"text\" field (and optionally an \"id\").");
            }

            string id = obj["id"] is { } given ? (given is JsonValue v && v.TryGetValue(out string? s) ? s : given.ToJsonString()) : lineNumber.ToString(System.Globalization.CultureInfo.InvariantCulture);
            inputs.Add(new InferenceInput(id, value));
        }

        return inputs;
    }

    /// <summary>Runs <paramref name="process"/> over the inputs not yet in <paramref name="outputPath"/>, sharded over <paramref name="communicator"/>'s ranks.</summary>
    /// <param name="communicator">The group (every rank calls this with the same inputs, output path and batch size).</param>
    /// <param name="inputs">All inputs, the same on every rank.</param>
    /// <param name="outputPath">The JSONL output, written by rank 0 only.</param>
    /// <param name="batchSize">Inputs per rank per round.</param>
    /// <param name="process">Maps a batch of inputs to one JSON object of result fields per input, in order.</param>
    /// <param name="progress">Rank 0's progress after each round (null for none).</param>
    /// <param name="cancellationToken">Stops between rounds.</param>
    /// <returns>The index of the first input this run processed (the number of results the output already held).</returns>
    /// <exception cref="InvalidDataException">The existing output is not this input's results (another input, or edited); the message says which line.</exception>
    public static long Run(ICommunicator communicator, IReadOnlyList<InferenceInput> inputs, string outputPath, int batchSize,
        Func<IReadOnlyList<InferenceInput>, IReadOnlyList<JsonObject>> process, IProgress<InferenceProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(communicator);
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentException.ThrowIfNullOrEmpty(outputPath);
        ArgumentNullException.ThrowIfNull(process);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        bool root = communicator.Rank == 0;

        // Rank 0 finds where the output stops and tells the others (−1: it cannot resume; its own error says why).
        long start = 0;
        InvalidDataException? failure = null;
        if (root)
        {
            try
            {
                start = Resume(outputPath, inputs);
            }
            catch (InvalidDataException e)
            {
                failure = e;
                start = -1;
            }
        }

        var startBytes = BitConverter.GetBytes(start);
        communicator.Broadcast(startBytes, 0);
        start = BitConverter.ToInt64(startBytes);
        if (failure is not null) throw failure;
        if (start < 0) throw new InvalidDataException($"rank 0 cannot extend --output {outputPath} (its error says why).");

        using var output = root ? new FileStream(outputPath, FileMode.Append, FileAccess.Write, FileShare.Read) : null;
        progress?.Report(new InferenceProgress(start, inputs.Count));
        long round = (long)batchSize * communicator.Size;
        for (long first = start; first < inputs.Count; first += round)
        {
            cancellationToken.ThrowIfCancellationRequested();
            long mine = first + ((long)communicator.Rank * batchSize);
            int count = (int)Math.Clamp(inputs.Count - mine, 0, batchSize);
            var batch = new List<InferenceInput>(count);
            for (int i = 0; i < count; i++) batch.Add(inputs[(int)(mine + i)]);
            var lines = new StringBuilder();
            if (count > 0)
            {
                var results = process(batch);
                if (results.Count != count) throw new InvalidOperationException($"ShardedInference: the batch of {count} inputs gave {results.Count} results.");
                for (int i = 0; i < count; i++) lines.Append(Line(mine + i, batch[i].Id, results[i])).Append('\n');
            }

            var gathered = communicator.Gather(Encoding.UTF8.GetBytes(lines.ToString()), 0);
            if (root)
            {
                foreach (var part in gathered!) output!.Write(part);
                output!.Flush(flushToDisk: false);
                progress?.Report(new InferenceProgress(Math.Min(inputs.Count, first + round), inputs.Count));
            }
        }

        return start;
    }

    private static string Line(long index, string id, JsonObject result)
    {
        var line = new JsonObject { ["index"] = index, ["id"] = id };
        foreach (var (key, value) in result.ToList())
        {
            result.Remove(key);
            line[key] = value;
        }

        return line.ToJsonString();
    }

    /// <summary>The number of complete result lines in <paramref name="outputPath"/> after checking they belong to these inputs; a torn last line is cut off.</summary>
    private static long Resume(string outputPath, IReadOnlyList<InferenceInput> inputs)
    {
        if (!File.Exists(outputPath))
        {
            string? folder = Path.GetDirectoryName(Path.GetFullPath(outputPath));
            if (folder is not null) Directory.CreateDirectory(folder);
            File.WriteAllBytes(outputPath, []);
            return 0;
        }

        // Whole lines only: a run stopped mid-write leaves a partial last line, which is cut off and redone.
        byte[] bytes = File.ReadAllBytes(outputPath);
        int end = Array.LastIndexOf(bytes, (byte)'\n') + 1;
        if (end < bytes.Length)
        {
            using var file = new FileStream(outputPath, FileMode.Open, FileAccess.Write);
            file.SetLength(end);
        }

        long count = 0;
        foreach (var line in Encoding.UTF8.GetString(bytes, 0, end).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            JsonNode? node = null;
            try
            {
                node = JsonNode.Parse(line);
            }
            catch (JsonException)
            {
            }

            string? id = node?["id"]?.GetValue<string>();
            long? index = node?["index"]?.GetValue<long>();
            if (count >= inputs.Count || index != count || id != inputs[(int)count].Id)
            {
                throw new InvalidDataException($"--output {outputPath}: line {count + 1} is not the result of input {count} of this --input (it has index {index?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}, id {id ?? "none"}); it holds another run's results: choose another --output, or delete it to start over.");
            }

            count++;
        }

        return count;
    }
}
