using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.NN;
using Sharpformer.Pipelines;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer embed [--model sentence-transformers/all-MiniLM-L6-v2] [--json] [--prompt-name query] [--no-truncate] "text"…</c>:
/// sentence embeddings as the model's sentence-transformers files define them (pooling, Dense, Normalize, prompts).
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
        truncate.Description = "Cut inputs longer than the model's max_seq_length (the default for embeddings, as sentence-transformers does).";
        var noTruncate = PipelineVerbs.NoTruncateOption();
        var promptName = PipelineVerbs.PromptNameOption();
        var batchSize = new Option<int>("--batch-size") { Description = "Texts per forward pass.", DefaultValueFactory = _ => 32 };
        var dtype = PipelineVerbs.DTypeOption();
        var corpus = CorpusVerb.Create("embed");
        var command = new Command("embed", "Sentence embeddings as the model's sentence-transformers modules define them (pooling, Dense, Normalize, prompts).")
        {
            texts, model, json, truncate, noTruncate, promptName, batchSize, dtype,
        };
        corpus.AddTo(command);
        command.SetAction((parse, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var precision = InferencePrecision.Parse(parse.GetValue(dtype)!);
            string modelName = parse.GetValue(model)!;
            if (parse.GetValue(corpus.Input) is { } input)
            {
                bool cut = parse.GetValue(truncate);
                bool noCut = parse.GetValue(noTruncate);
                string? prompt = parse.GetValue(promptName);
                return CorpusVerb.RunAsync("embed", input, parse.GetValue(corpus.Output), parse.GetValue(texts) ?? [], parse.GetValue(batchSize), parse.GetValue(corpus.Distributed),
                    writer => BundledModels.LoadWithFallbackAsync(modelName, writer, m => SentenceEmbeddingPipeline.FromPretrainedAsync(m, PipelineVerbs.Options(writer, cut, precision) with { NoTruncation = noCut }, ct)),
                    (pipeline, batch) => [.. pipeline.Embed(batch, batch.Count, null, prompt, ct).Select(v => new JsonObject { ["embedding"] = new JsonArray([.. v.Select(x => (JsonNode)JsonValue.Create(x))]) })],
                    parse.InvocationConfiguration.Output, error, ct);
            }

            if (CorpusVerb.CheckTextMode("embed", parse.GetValue(corpus.Output), (parse.GetValue(texts) ?? []).Length > 0, stdinAllowed: false) is { } problem)
            {
                error.WriteLine(problem);
                return Task.FromResult(ExitCodes.Usage);
            }

            return RunAsync(
                parse.GetValue(texts)!, modelName, parse.GetValue(json), parse.GetValue(truncate), parse.GetValue(noTruncate),
                parse.GetValue(promptName), parse.GetValue(batchSize), parse.InvocationConfiguration.Output, error, ct, precision);
        });
        return command;
    }

    internal static Task<int> RunAsync(string[] texts, string model, bool json, bool truncate, bool noTruncate, string? promptName, int batchSize,
        TextWriter output, TextWriter error, CancellationToken ct, LinearPrecision precision = LinearPrecision.F32) =>
        PipelineVerbs.GuardAsync("embed", error, async () =>
        {
            if (truncate && noTruncate)
            {
                throw new ArgumentException("embed: --truncate and --no-truncate contradict each other; pass one of them (texts are truncated by default).");
            }

            var options = PipelineVerbs.Options(error, truncate, precision) with { NoTruncation = noTruncate };
            var pipeline = await BundledModels.LoadWithFallbackAsync(model, error,
                m => SentenceEmbeddingPipeline.FromPretrainedAsync(m, options, ct)).ConfigureAwait(false);
            var embeddings = EmbedWithProgress(pipeline, texts, batchSize, error, ct, promptName);
            if (json)
            {
                var data = embeddings.Select((e, i) => new { index = i, text = texts[i], embedding = e }).ToList();
                output.WriteLine(JsonSerializer.Serialize(new { model, dimensions = pipeline.Dimensions, data }, PipelineVerbs.Json));
                return 0;
            }

            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{model}: {texts.Length} embedding(s) of {pipeline.Dimensions} dimensions ({Describe(pipeline.Config)})"));
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
        TextWriter error, CancellationToken ct, string? promptName = null)
    {
        var progress = texts.Count > batchSize ? new LineProgress(error) : null;
        return pipeline.Embed(texts, batchSize, progress, promptName, ct);
    }

    /// <summary>"mean-pooled, L2-normalised": the pooling modes and the modules after them, in words.</summary>
    internal static string Describe(SentenceTransformerConfig config)
    {
        var p = config.Pooling;
        var modes = new List<string>();
        if (p.ClsToken) modes.Add("CLS");
        if (p.MaxTokens) modes.Add("max");
        if (p.MeanTokens) modes.Add("mean");
        if (p.MeanSqrtLenTokens) modes.Add("mean-sqrt-len");
        if (p.WeightedMeanTokens) modes.Add("weighted-mean");
        if (p.LastToken) modes.Add("last-token");
        var parts = new List<string> { string.Join("+", modes) + "-pooled" };
        foreach (var module in config.AfterPooling)
        {
            parts.Add(module is DenseModule dense ? string.Create(CultureInfo.InvariantCulture, $"dense {dense.InFeatures}→{dense.OutFeatures} {dense.Activation.ToString().ToLowerInvariant()}") : "L2-normalised");
        }

        return string.Join(", ", parts);
    }

    private sealed class LineProgress(TextWriter error) : IProgress<EmbeddingProgress>
    {
        public void Report(EmbeddingProgress value) =>
            error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"embedded {value.Done}/{value.Total}"));
    }
}
