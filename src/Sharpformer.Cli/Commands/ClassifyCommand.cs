using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.NN;
using Sharpformer.Pipelines;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer classify "text"… [--text-pair "…"] [--top-k N|all] [--function sigmoid|softmax|none] [--model …] [--json]</c>:
/// HF's text-classification pipeline; with no text, one text per line of standard input.
/// </summary>
internal static class ClassifyCommand
{
    public static Command Create()
    {
        var texts = new Argument<string[]>("text")
        {
            Description = "The texts to classify; none (or \"-\") reads one text per line from standard input.",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var textPair = new Option<string?>("--text-pair") { Description = "The second text of a pair (NLI, paraphrase), for a single text; needs a model with token types (BERT)." };
        var topK = new Option<string>("--top-k") { Description = "How many labels to print per text, best first, or 'all'.", DefaultValueFactory = _ => "1" };
        var function = new Option<string?>("--function")
        {
            Description = "Score function: sigmoid, softmax or none (default as HF: sigmoid for multi-label or one-label models, else softmax).",
        };
        function.AcceptOnlyFromAmong("sigmoid", "softmax", "none");
        var model = PipelineVerbs.ModelOption(TextClassificationPipeline.DefaultModel);
        var json = PipelineVerbs.JsonOption();
        var truncate = PipelineVerbs.TruncateOption();
        var dtype = PipelineVerbs.DTypeOption();
        var batchSize = new Option<int>("--batch-size") { Description = "Texts per forward pass.", DefaultValueFactory = _ => 8 };
        var command = new Command("classify", "Label texts with a sequence-classification model (HF's text-classification pipeline).")
        {
            texts, textPair, topK, function, model, json, truncate, batchSize, dtype,
        };
        var corpus = CorpusVerb.Create("classify");
        corpus.AddTo(command);
        command.SetAction((parse, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var precision = InferencePrecision.Parse(parse.GetValue(dtype)!);
            if (parse.GetValue(corpus.Input) is { } input)
            {
                string modelName = parse.GetValue(model)!;
                bool cut = parse.GetValue(truncate);
                string top = parse.GetValue(topK)!;
                var apply = Function(parse.GetValue(function));
                int? k = null;
                return CorpusVerb.RunAsync("classify", input, parse.GetValue(corpus.Output), parse.GetValue(texts) ?? [], parse.GetValue(batchSize), parse.GetValue(corpus.Distributed),
                    async writer =>
                    {
                        k = ParseTopK(top);
                        return await TextClassificationPipeline.FromPretrainedAsync(modelName, PipelineVerbs.Options(writer, cut, precision), ct).ConfigureAwait(false);
                    },
                    (pipeline, batch) => [.. pipeline.RunBatch(batch, null, k, apply, batch.Count).Select(row =>
                        new JsonObject { ["labels"] = new JsonArray([.. row.Select(r => (JsonNode)new JsonObject { ["label"] = r.Label, ["score"] = r.Score })]) })],
                    parse.InvocationConfiguration.Output, error, ct);
            }

            if (CorpusVerb.CheckTextMode("classify", parse.GetValue(corpus.Output), haveTexts: true, stdinAllowed: true) is { } problem)
            {
                error.WriteLine(problem);
                return Task.FromResult(ExitCodes.Usage);
            }

            return RunAsync(
                parse.GetValue(texts), parse.GetValue(textPair), parse.GetValue(topK)!, parse.GetValue(function), parse.GetValue(model)!,
                parse.GetValue(json), parse.GetValue(truncate), parse.GetValue(batchSize), PipelineVerbs.PipedInput(),
                parse.InvocationConfiguration.Output, error, ct, precision);
        });
        return command;
    }

    private static ClassificationFunction? Function(string? name) => name switch
    {
        "sigmoid" => ClassificationFunction.Sigmoid,
        "softmax" => ClassificationFunction.Softmax,
        "none" => ClassificationFunction.None,
        _ => null,
    };

    internal static Task<int> RunAsync(string[]? texts, string? textPair, string topK, string? function, string model, bool json, bool truncate,
        int batchSize, TextReader? input, TextWriter output, TextWriter error, CancellationToken ct, LinearPrecision precision = LinearPrecision.F32) =>
        PipelineVerbs.GuardAsync("classify", error, async () =>
        {
            var k = ParseTopK(topK);
            if (batchSize < 1)
            {
                throw new ArgumentException($"classify: --batch-size must be at least 1, got {batchSize}.");
            }

            var inputs = PipelineVerbs.Texts("classify", texts, input);
            if (textPair is not null && inputs.Count != 1)
            {
                throw new ArgumentException($"classify: --text-pair pairs with a single text, but {inputs.Count} texts were given; classify pairs one at a time.");
            }

            var apply = Function(function);
            var pipeline = await TextClassificationPipeline.FromPretrainedAsync(model, PipelineVerbs.Options(error, truncate, precision), ct).ConfigureAwait(false);
            var results = pipeline.RunBatch(inputs, textPair is null ? null : [textPair], k, apply, batchSize);
            if (json)
            {
                static object Row(IReadOnlyList<TextClassificationResult> row) => row.Select(r => new { label = r.Label, score = r.Score }).ToList();
                object shaped = results.Count == 1 ? Row(results[0]) : results.Select(Row).ToList();
                output.WriteLine(JsonSerializer.Serialize(shaped, PipelineVerbs.Json));
                return 0;
            }

            for (var i = 0; i < results.Count; i++)
            {
                if (results.Count > 1)
                {
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{(i > 0 ? "\n" : "")}[{i}] {inputs[i]}"));
                }

                var width = results[i].Max(r => r.Label.Length);
                foreach (var r in results[i])
                {
                    output.WriteLine($"{r.Label.PadRight(width)}  {PipelineVerbs.F(r.Score, "F4")}");
                }
            }

            return 0;
        });

    /// <summary>"all" → every label (HF's top_k=None); otherwise a positive count.</summary>
    private static int? ParseTopK(string value)
    {
        if (string.Equals(value, "all", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var k) || k < 1)
        {
            throw new ArgumentException($"classify: --top-k must be a positive number or 'all', got '{value}'.");
        }

        return k;
    }
}
