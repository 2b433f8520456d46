using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.Pipelines;

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
        var corpus = CorpusVerb.Create("embed");
        var command = new Command("embed", "Sentence embeddings: mean-pooled, L2-normalised encoder output (sentence-transformers style).")
        {
            texts, model, json, truncate, batchSize,
        };
        corpus.AddTo(command);
        command.SetAction((parse, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            string modelName = parse.GetValue(model)!;
            if (parse.GetValue(corpus.Input) is { } input)
            {
                bool cut = parse.GetValue(truncate);
                return CorpusVerb.RunAsync("embed", input, parse.GetValue(corpus.Output), parse.GetValue(texts) ?? [], parse.GetValue(batchSize), parse.GetValue(corpus.Distributed),
                    writer => BundledModels.LoadWithFallbackAsync(modelName, writer, m => SentenceEmbeddingPipeline.FromPretrainedAsync(m, PipelineVerbs.Options(writer, cut), ct)),
                    (pipeline, batch) => [.. pipeline.Embed(batch, batch.Count, null, ct).Select(v => new JsonObject { ["embedding"] = new JsonArray([.. v.Select(x => (JsonNode)JsonValue.Create(x))]) })],
                    parse.InvocationConfiguration.Output, error, ct);
            }

            if (CorpusVerb.CheckTextMode("embed", parse.GetValue(corpus.Output), (parse.GetValue(texts) ?? []).Length > 0, stdinAllowed: false) is { } problem)
            {
                error.WriteLine(problem);
                return Task.FromResult(ExitCodes.Usage);
            }

            return RunAsync(parse.GetValue(texts)!, modelName, parse.GetValue(json), parse.GetValue(truncate), parse.GetValue(batchSize),
                parse.InvocationConfiguration.Output, error, ct);
        });
        return command;
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
