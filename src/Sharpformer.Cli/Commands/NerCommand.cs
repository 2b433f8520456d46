using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.NN;
using Sharpformer.Pipelines;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer ner "text"… [--aggregation none|simple|first|average|max] [--ignore-labels O…] [--model …] [--json]</c>:
/// HF's token-classification pipeline; with no text, one text per line of standard input.
/// </summary>
internal static class NerCommand
{
    private static readonly string[] Header = ["entity", "score", "start", "end", "word"];

    public static Command Create()
    {
        var texts = new Argument<string[]>("text")
        {
            Description = "The texts to label; none (or \"-\") reads one text per line from standard input.",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var aggregation = new Option<string>("--aggregation")
        {
            Description = "How tokens fuse into entities, as HF's aggregation_strategy: none (one row per token), simple, first, average or max.",
            DefaultValueFactory = _ => "none",
        };
        aggregation.AcceptOnlyFromAmong("none", "simple", "first", "average", "max");
        var ignoreLabels = new Option<string[]>("--ignore-labels")
        {
            Description = "Labels (or entity groups) left out of the output (default: O).",
            AllowMultipleArgumentsPerToken = true,
        };
        var model = PipelineVerbs.ModelOption(TokenClassificationPipeline.DefaultModel);
        var json = PipelineVerbs.JsonOption();
        var truncate = PipelineVerbs.TruncateOption();
        var dtype = PipelineVerbs.DTypeOption();
        var batchSize = new Option<int>("--batch-size") { Description = "Texts per forward pass.", DefaultValueFactory = _ => 8 };
        var command = new Command("ner", "Label the tokens or entities of texts with a token-classification model (HF's token-classification pipeline).")
        {
            texts, aggregation, ignoreLabels, model, json, truncate, batchSize, dtype,
        };
        var corpus = CorpusVerb.Create("ner");
        corpus.AddTo(command);
        command.SetAction((parse, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var precision = InferencePrecision.Parse(parse.GetValue(dtype)!);
            if (parse.GetValue(corpus.Input) is { } input)
            {
                string modelName = parse.GetValue(model)!;
                bool cut = parse.GetValue(truncate);
                var strategy = Strategy(parse.GetValue(aggregation)!);
                var ignored = parse.GetValue(ignoreLabels) is { Length: > 0 } labels ? labels : null;
                return CorpusVerb.RunAsync("ner", input, parse.GetValue(corpus.Output), parse.GetValue(texts) ?? [], parse.GetValue(batchSize), parse.GetValue(corpus.Distributed),
                    writer => TokenClassificationPipeline.FromPretrainedAsync(modelName, PipelineVerbs.Options(writer, cut, precision), ct),
                    (pipeline, batch) => [.. pipeline.RunBatch(batch, strategy, ignored, batch.Count).Select(row => new JsonObject
                    {
                        ["entities"] = new JsonArray([.. row.Select(r => (JsonNode)new JsonObject
                        {
                            ["entity"] = r.Entity, ["score"] = r.Score, ["index"] = r.Index, ["word"] = r.Word, ["start"] = r.Start, ["end"] = r.End,
                        })]),
                    })],
                    parse.InvocationConfiguration.Output, error, ct);
            }

            if (CorpusVerb.CheckTextMode("ner", parse.GetValue(corpus.Output), haveTexts: true, stdinAllowed: true) is { } problem)
            {
                error.WriteLine(problem);
                return Task.FromResult(ExitCodes.Usage);
            }

            return RunAsync(
                parse.GetValue(texts), parse.GetValue(aggregation)!, parse.GetValue(ignoreLabels), parse.GetValue(model)!, parse.GetValue(json),
                parse.GetValue(truncate), parse.GetValue(batchSize), PipelineVerbs.PipedInput(),
                parse.InvocationConfiguration.Output, error, ct, precision);
        });
        return command;
    }

    private static AggregationStrategy Strategy(string aggregation) => aggregation switch
    {
        "none" => AggregationStrategy.None,
        "simple" => AggregationStrategy.Simple,
        "first" => AggregationStrategy.First,
        "average" => AggregationStrategy.Average,
        "max" => AggregationStrategy.Max,
        _ => throw new ArgumentException($"ner: --aggregation must be none, simple, first, average or max, got '{aggregation}'."),
    };

    internal static Task<int> RunAsync(string[]? texts, string aggregation, string[]? ignoreLabels, string model, bool json, bool truncate,
        int batchSize, TextReader? input, TextWriter output, TextWriter error, CancellationToken ct, LinearPrecision precision = LinearPrecision.F32) =>
        PipelineVerbs.GuardAsync("ner", error, async () =>
        {
            var strategy = Strategy(aggregation);
            if (batchSize < 1)
            {
                throw new ArgumentException($"ner: --batch-size must be at least 1, got {batchSize}.");
            }

            var inputs = PipelineVerbs.Texts("ner", texts, input);
            var pipeline = await TokenClassificationPipeline.FromPretrainedAsync(model, PipelineVerbs.Options(error, truncate, precision), ct).ConfigureAwait(false);
            var results = pipeline.RunBatch(inputs, strategy, ignoreLabels is { Length: > 0 } ? ignoreLabels : null, batchSize);
            if (json)
            {
                object shaped = results.Count == 1 ? Rows(results[0]) : results.Select(Rows).ToList();
                output.WriteLine(JsonSerializer.Serialize(shaped, PipelineVerbs.Json));
                return 0;
            }

            for (var i = 0; i < results.Count; i++)
            {
                if (results.Count > 1)
                {
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{(i > 0 ? "\n" : "")}[{i}] {inputs[i]}"));
                }

                WriteTable(output, results[i]);
            }

            return 0;
        });

    // HF's keys: entity, score, index, word, start, end per token; entity_group, score, word, start, end per group.
    private static List<Dictionary<string, object>> Rows(IReadOnlyList<TokenClassificationResult> results) =>
        results.Select(r => r.Index is { } index
            ? new Dictionary<string, object> { ["entity"] = r.Entity, ["score"] = r.Score, ["index"] = index, ["word"] = r.Word, ["start"] = r.Start, ["end"] = r.End }
            : new Dictionary<string, object> { ["entity_group"] = r.Entity, ["score"] = r.Score, ["word"] = r.Word, ["start"] = r.Start, ["end"] = r.End })
        .ToList();

    private static void WriteTable(TextWriter output, IReadOnlyList<TokenClassificationResult> results)
    {
        if (results.Count == 0)
        {
            output.WriteLine("(no entities)");
            return;
        }

        var rows = new List<string[]> { Header };
        rows.AddRange(results.Select(r => new[]
        {
            r.Entity, PipelineVerbs.F(r.Score, "F4"), r.Start.ToString(CultureInfo.InvariantCulture), r.End.ToString(CultureInfo.InvariantCulture), r.Word,
        }));
        var widths = Enumerable.Range(0, 4).Select(c => rows.Max(r => r[c].Length)).ToArray();
        foreach (var row in rows)
        {
            output.WriteLine($"{row[0].PadRight(widths[0])}  {row[1].PadLeft(widths[1])}  {row[2].PadLeft(widths[2])}  {row[3].PadLeft(widths[3])}  {row[4]}");
        }
    }
}
