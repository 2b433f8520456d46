using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Sharpformer.Training.Distributed;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// The corpus mode of the encoder verbs (<c>embed</c>, <c>classify</c>, <c>ner</c>): <c>--input &lt;jsonl|folder|txt&gt;
/// --output &lt;file.jsonl&gt;</c>, one result line per input in input order, resumable, and sharded over the ranks of
/// <c>mpirun -np N</c> (<see cref="ShardedInference"/>).
/// </summary>
internal static class CorpusVerb
{
    /// <summary>The options a verb adds for corpus mode.</summary>
    public sealed record Options(Option<string?> Input, Option<string?> Output, Option<bool> Distributed)
    {
        public void AddTo(Command command)
        {
            command.Options.Add(Input);
            command.Options.Add(Output);
            command.Options.Add(Distributed);
        }
    }

    /// <summary>Creates <c>--input</c>, <c>--output</c> and <c>--distributed</c> for <paramref name="verb"/>.</summary>
    public static Options Create(string verb) => new(
        new Option<string?>("--input") { Description = $"Run {verb} over a corpus: a .jsonl file (\"text\", optional \"id\" per line), a folder of .txt/.md files, or a text file (one text per line); needs --output. Under 'mpirun -np N' each rank takes its share." },
        new Option<string?>("--output") { Description = "The JSONL the --input results go to, one {\"index\", \"id\", …} line per input in input order; an existing file is checked and extended, not redone." },
        DistributedVerb.Option());

    /// <summary>Runs a verb over <paramref name="input"/> into <paramref name="outputPath"/> (after checking the arguments), sharded when under mpirun.</summary>
    /// <typeparam name="TPipeline">The loaded pipeline.</typeparam>
    /// <param name="verb">The verb's name.</param>
    /// <param name="input">--input.</param>
    /// <param name="outputPath">--output.</param>
    /// <param name="texts">Texts given on the command line (an error beside --input).</param>
    /// <param name="batchSize">--batch-size: texts per rank per round.</param>
    /// <param name="distributed">--distributed.</param>
    /// <param name="load">Loads the pipeline, reporting on the writer it is given (rank 0's stderr, or nothing).</param>
    /// <param name="process">Maps a batch of texts to one result object per text.</param>
    /// <param name="output">Standard output.</param>
    /// <param name="error">Standard error.</param>
    /// <param name="ct">Stops between rounds.</param>
    /// <returns>The exit code.</returns>
    public static Task<int> RunAsync<TPipeline>(string verb, string input, string? outputPath, IReadOnlyCollection<string> texts, int batchSize, bool distributed,
        Func<TextWriter, Task<TPipeline>> load, Func<TPipeline, IReadOnlyList<string>, IReadOnlyList<JsonObject>> process,
        TextWriter output, TextWriter error, CancellationToken ct)
    {
        if (outputPath is null || texts.Count > 0 || batchSize < 1)
        {
            error.WriteLine(outputPath is null
                ? $"error: {verb}: --input needs --output <file.jsonl>, where the results go (an existing one is extended)."
                : texts.Count > 0 ? $"error: {verb}: give texts on the command line or --input, not both."
                : $"error: {verb}: --batch-size must be at least 1 (got {batchSize}).");
            return Task.FromResult(ExitCodes.Usage);
        }

        string afterFailure = $"{outputPath} holds every result written so far: rerun the same command to continue.";
        return DistributedVerb.RunAsync(verb, distributed, error, afterFailure, communicator => PipelineVerbs.GuardAsync(verb, error, async () =>
        {
            bool root = communicator.Rank == 0;
            var inputs = ShardedInference.ReadInputs(input);
            var pipeline = await load(root ? error : TextWriter.Null).ConfigureAwait(false);
            var progress = root ? new LineProgress(verb, error) : null;
            long resumed = ShardedInference.Run(communicator, inputs, outputPath, batchSize, batch => process(pipeline, [.. batch.Select(b => b.Text)]), progress, ct);
            if (root)
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{verb}: {inputs.Count} result(s) in {outputPath}{(resumed > 0 ? $" ({resumed} were already there)" : "")}{(communicator.Size > 1 ? $", on {communicator.Size} MPI ranks" : "")}"));
            }

            return 0;
        }));
    }

    /// <summary>Refuses <c>--output</c> without <c>--input</c>, and no texts at all; null when the arguments are fine.</summary>
    public static string? CheckTextMode(string verb, string? outputPath, bool haveTexts, bool stdinAllowed) =>
        outputPath is not null ? $"error: {verb}: --output goes with --input <file-or-folder>; texts given on the command line are printed (add --json for data)."
        : !haveTexts && !stdinAllowed ? $"error: {verb}: give one or more texts, or --input <file-or-folder> --output <file.jsonl> for a corpus."
        : null;

    private sealed class LineProgress(string verb, TextWriter error) : IProgress<InferenceProgress>
    {
        private readonly string _past = verb switch
        {
            "embed" => "embedded",
            "classify" => "classified",
            _ => "tagged",
        };

        public void Report(InferenceProgress value) =>
            error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{_past} {value.Done}/{value.Total}"));
    }
}
