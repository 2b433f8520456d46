using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.Pipelines;
using Sharpformer.Training.Distributed;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer embed [--model sentence-transformers/all-MiniLM-L6-v2] [--json] "text"…</c>: sentence embeddings
/// (mean pooling over the attention mask, then L2 normalisation).
/// </summary>
internal static class EmbedCommand
{
    public const string DefaultModel = "sentence-transformers/all-MiniLM-L6-v2";
    private const int Shown = 8;

    public static Command Create()
    {
        var texts = new Argument<string[]>("text") { Description = "One or more texts to embed (or --input for a file or folder of them).", Arity = ArgumentArity.ZeroOrMore };
        var model = PipelineVerbs.ModelOption(DefaultModel);
        var json = PipelineVerbs.JsonOption();
        var truncate = PipelineVerbs.TruncateOption();
        var batchSize = new Option<int>("--batch-size") { Description = "Texts per forward pass.", DefaultValueFactory = _ => 32 };
        var input = new Option<string?>("--input") { Description = "Embed a corpus: a .jsonl file (\"text\", optional \"id\" per line), a folder of .txt/.md files, or a text file (one text per line); needs --output. Under 'mpirun -np N' each rank embeds its share." };
        var outputFile = new Option<string?>("--output") { Description = "The JSONL the --input embeddings go to, one {\"index\", \"id\", \"embedding\"} line per input in input order; an existing file is checked and extended, not redone." };
        var distributed = DistributedVerb.Option();
        var command = new Command("embed", "Sentence embeddings: mean-pooled, L2-normalised encoder output (sentence-transformers style).")
        {
            texts, model, json, truncate, batchSize, input, outputFile, distributed,
        };
        command.SetAction((parse, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            if (parse.GetValue(input) is { } corpus)
            {
                return RunCorpusAsync(corpus, parse.GetValue(outputFile), parse.GetValue(texts) ?? [], parse.GetValue(model)!, parse.GetValue(truncate), parse.GetValue(batchSize),
                    parse.GetValue(distributed), parse.InvocationConfiguration.Output, error, ct);
            }

            if (parse.GetValue(outputFile) is not null || (parse.GetValue(texts) ?? []).Length == 0)
            {
                error.WriteLine((parse.GetValue(texts) ?? []).Length == 0
                    ? "error: embed: give one or more texts, or --input <file-or-folder> --output <file.jsonl> for a corpus."
                    : "error: embed: --output goes with --input <file-or-folder>; texts given on the command line are printed (add --json for data).");
                return Task.FromResult(ExitCodes.Usage);
            }

            return RunAsync(parse.GetValue(texts)!, parse.GetValue(model)!, parse.GetValue(json), parse.GetValue(truncate), parse.GetValue(batchSize),
                parse.InvocationConfiguration.Output, error, ct);
        });
        return command;
    }

    /// <summary>
    /// <c>embed --input … --output …</c>: the corpus's embeddings as JSONL, sharded over the ranks of
    /// <c>mpirun -np N</c> (one process without it), gathered in input order on rank 0, resumable.
    /// </summary>
    internal static Task<int> RunCorpusAsync(string input, string? outputPath, string[] texts, string model, bool truncate, int batchSize, bool distributed,
        TextWriter output, TextWriter error, CancellationToken ct)
    {
        if (outputPath is null || texts.Length > 0)
        {
            error.WriteLine(outputPath is null
                ? "error: embed: --input needs --output <file.jsonl>, where the embeddings go (an existing one is extended)."
                : "error: embed: give texts on the command line or --input, not both.");
            return Task.FromResult(ExitCodes.Usage);
        }

        if (batchSize < 1)
        {
            error.WriteLine($"error: embed: --batch-size must be at least 1 (got {batchSize}).");
            return Task.FromResult(ExitCodes.Usage);
        }

        string afterFailure = $"{outputPath} holds every result written so far: rerun the same command to continue.";
        return DistributedVerb.RunAsync("embed", distributed, error, afterFailure, communicator => PipelineVerbs.GuardAsync("embed", error, async () =>
        {
            bool root = communicator.Rank == 0;
            var inputs = ShardedInference.ReadInputs(input);
            var pipeline = await BundledModels.LoadWithFallbackAsync(model, root ? error : TextWriter.Null,
                m => SentenceEmbeddingPipeline.FromPretrainedAsync(m, PipelineVerbs.Options(root ? error : TextWriter.Null, truncate), ct)).ConfigureAwait(false);
            var progress = root ? new CorpusProgress(error) : null;
            long resumed = ShardedInference.Run(communicator, inputs, outputPath, batchSize, batch =>
            {
                var vectors = pipeline.Embed(batch.Select(b => b.Text).ToList(), batchSize, null, ct);
                return [.. vectors.Select(v => new JsonObject { ["embedding"] = new JsonArray([.. v.Select(x => (JsonNode)JsonValue.Create(x))]) })];
            }, progress, ct);
            if (root)
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{model}: {inputs.Count} embedding(s) of {pipeline.Dimensions} dimensions in {outputPath}{(resumed > 0 ? $" ({resumed} were already there)" : "")}{(communicator.Size > 1 ? $", on {communicator.Size} MPI ranks" : "")}"));
            }

            return 0;
        }));
    }

    private sealed class CorpusProgress(TextWriter error) : IProgress<InferenceProgress>
    {
        public void Report(InferenceProgress value) =>
            error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"embedded {value.Done}/{value.Total}"));
    }

    internal static Task<int> RunAsync(string[] texts, string model, bool json, bool truncate, int batchSize,
        TextWriter output, TextWriter error, CancellationToken ct) =>
        PipelineVerbs.GuardAsync("embed", error, async () =>
        {
            var pipeline = await BundledModels.LoadWithFallbackAsync(model, error,
                m => SentenceEmbeddingPipeline.FromPretrainedAsync(m, PipelineVerbs.Options(error, truncate), ct)).ConfigureAwait(false);
            var embeddings = EmbedWithProgress(pipeline, texts, batchSize, error, ct);
            if (json)
            {
                var data = embeddings.Select((e, i) => new { index = i, text = texts[i], embedding = e }).ToList();
                output.WriteLine(JsonSerializer.Serialize(new { model, dimensions = pipeline.Dimensions, data }, PipelineVerbs.Json));
                return 0;
            }

            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{model}: {texts.Length} embedding(s) of {pipeline.Dimensions} dimensions (mean-pooled, L2-normalised)"));
            for (var i = 0; i < texts.Length; i++)
            {
                var head = string.Join(", ", embeddings[i].Take(Shown).Select(v => PipelineVerbs.F(v, "F4")));
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{i}] \"{PipelineVerbs.Preview(texts[i])}\""));
                output.WriteLine($"    [{head}{(embeddings[i].Length > Shown ? ", …" : "")}]");
            }

            return 0;
        });

    /// <summary>Embeds <paramref name="texts"/>, printing "embedded n/N" on stderr when there is more than one batch.</summary>
    internal static IReadOnlyList<float[]> EmbedWithProgress(SentenceEmbeddingPipeline pipeline, IReadOnlyList<string> texts, int batchSize,
        TextWriter error, CancellationToken ct)
    {
        var progress = texts.Count > batchSize ? new LineProgress(error) : null;
        return pipeline.Embed(texts, batchSize, progress, ct);
    }

    private sealed class LineProgress(TextWriter error) : IProgress<EmbeddingProgress>
    {
        public void Report(EmbeddingProgress value) =>
            error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"embedded {value.Done}/{value.Total}"));
    }
}
