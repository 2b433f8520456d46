using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Sharpformer.NN;
using Sharpformer.Pipelines;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer fill-mask "The heart is a [MASK] organ." [--model bert-base-uncased] [--top-k 5] [--targets w…] [--json]</c>:
/// HF's fill-mask pipeline.
/// </summary>
internal static class FillMaskCommand
{
    public const string DefaultModel = "bert-base-uncased";
    private static readonly string[] Header = ["rank", "token", "score", "sequence"];

    public static Command Create()
    {
        var text = new Argument<string>("text") { Description = "The text, with [MASK] where the word to predict goes (several masks are allowed)." };
        var model = PipelineVerbs.ModelOption(DefaultModel);
        var topK = new Option<int>("--top-k") { Description = "Candidates per mask.", DefaultValueFactory = _ => 5 };
        var targets = new Option<string[]>("--targets")
        {
            Description = "Only score these words (a word outside the vocabulary counts as its first subword, with a warning).",
            AllowMultipleArgumentsPerToken = true,
        };
        var json = PipelineVerbs.JsonOption();
        var truncate = PipelineVerbs.TruncateOption();
        var dtype = PipelineVerbs.DTypeOption();
        var command = new Command("fill-mask", "Predict the words behind [MASK] with a masked language model (HF's fill-mask pipeline).")
        {
            text, model, topK, targets, json, truncate, dtype,
        };
        command.SetAction((parse, ct) => RunAsync(
            parse.GetValue(text)!, parse.GetValue(model)!, parse.GetValue(topK), parse.GetValue(targets), parse.GetValue(json),
            parse.GetValue(truncate), parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, ct,
            InferencePrecision.Parse(parse.GetValue(dtype)!), PipelineVerbs.IsDefault(parse, model)));
        return command;
    }

    internal static Task<int> RunAsync(string text, string model, int topK, string[]? targets, bool json, bool truncate,
        TextWriter output, TextWriter error, CancellationToken ct, LinearPrecision precision = LinearPrecision.F32, bool modelIsDefault = false) =>
        PipelineVerbs.GuardAsync("fill-mask", error, async () =>
        {
            var pipeline = await FillMaskPipeline.FromPretrainedAsync(model, PipelineVerbs.Options(error, truncate, precision, modelIsDefault), ct).ConfigureAwait(false);
            var results = pipeline.Run(text, topK, targets is { Length: > 0 } ? targets : null);
            if (json)
            {
                WriteJson(output, results);
            }
            else
            {
                WriteTable(output, results);
            }

            return 0;
        });

    // HF's shape: a list of {score, token, token_str, sequence} for one mask, a list of such lists for several.
    private static void WriteJson(TextWriter output, IReadOnlyList<IReadOnlyList<FillMaskResult>> results)
    {
        static object Row(IReadOnlyList<FillMaskResult> row) =>
            row.Select(r => new { score = r.Score, token = r.Token, token_str = r.TokenStr, sequence = r.Sequence }).ToList();
        object shaped = results.Count == 1 ? Row(results[0]) : results.Select(Row).ToList();
        output.WriteLine(JsonSerializer.Serialize(shaped, PipelineVerbs.Json));
    }

    private static void WriteTable(TextWriter output, IReadOnlyList<IReadOnlyList<FillMaskResult>> results)
    {
        for (var m = 0; m < results.Count; m++)
        {
            if (results.Count > 1)
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{(m > 0 ? "\n" : "")}mask {m + 1} of {results.Count}:"));
            }

            var rows = new List<string[]> { Header };
            rows.AddRange(results[m].Select((r, i) => new[]
            {
                (i + 1).ToString(CultureInfo.InvariantCulture), r.TokenStr, PipelineVerbs.F(r.Score, "F4"), r.Sequence,
            }));
            var widths = Enumerable.Range(0, 3).Select(c => rows.Max(r => r[c].Length)).ToArray();
            foreach (var row in rows)
            {
                output.WriteLine($"{row[0].PadLeft(widths[0])}  {row[1].PadRight(widths[1])}  {row[2].PadLeft(widths[2])}  {row[3]}");
            }
        }
    }
}
