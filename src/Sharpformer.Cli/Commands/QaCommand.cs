using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Sharpformer.NN;
using Sharpformer.Pipelines;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer qa --question "…" (--context "…" | --context-file path|-) [--top-k N] [--max-answer-len 15]
/// [--max-seq-len N] [--doc-stride N] [--handle-impossible-answer] [--model …] [--json]</c>: HF's question-answering pipeline.
/// </summary>
internal static class QaCommand
{
    private static readonly string[] Header = ["rank", "score", "start", "end", "answer"];

    public static Command Create()
    {
        var question = new Option<string>("--question") { Description = "The question.", Required = true };
        var context = new Option<string?>("--context") { Description = "The text that holds the answer." };
        var contextFile = new Option<string?>("--context-file") { Description = "Read the context from this UTF-8 file ('-' reads standard input)." };
        var topK = new Option<int>("--top-k") { Description = "How many answers, best first.", DefaultValueFactory = _ => 1 };
        var maxAnswerLen = new Option<int>("--max-answer-len") { Description = "The longest answer in tokens.", DefaultValueFactory = _ => 15 };
        var maxSeqLen = new Option<int?>("--max-seq-len") { Description = "Tokens per window, question included (default min(model_max_length, 384))." };
        var docStride = new Option<int?>("--doc-stride") { Description = "Context tokens consecutive windows share (default min(max_seq_len / 2, 128))." };
        var impossible = new Option<bool>("--handle-impossible-answer") { Description = "Also offer the empty answer (SQuAD 2.0 models)." };
        var model = PipelineVerbs.ModelOption(QuestionAnsweringPipeline.DefaultModel);
        var json = PipelineVerbs.JsonOption();
        var dtype = PipelineVerbs.DTypeOption();
        var command = new Command("qa", "Extract the answer to a question from a context (HF's question-answering pipeline).")
        {
            question, context, contextFile, topK, maxAnswerLen, maxSeqLen, docStride, impossible, model, json, dtype,
        };
        command.SetAction((parse, ct) => RunAsync(
            parse.GetValue(question)!, parse.GetValue(context), parse.GetValue(contextFile),
            new QuestionAnsweringOptions
            {
                TopK = parse.GetValue(topK),
                MaxAnswerLen = parse.GetValue(maxAnswerLen),
                MaxSeqLen = parse.GetValue(maxSeqLen),
                DocStride = parse.GetValue(docStride),
                HandleImpossibleAnswer = parse.GetValue(impossible),
            },
            parse.GetValue(model)!, parse.GetValue(json), PipelineVerbs.PipedInput(),
            parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, ct, InferencePrecision.Parse(parse.GetValue(dtype)!)));
        return command;
    }

    internal static Task<int> RunAsync(string question, string? context, string? contextFile, QuestionAnsweringOptions options, string model,
        bool json, TextReader? input, TextWriter output, TextWriter error, CancellationToken ct, LinearPrecision precision = LinearPrecision.F32) =>
        PipelineVerbs.GuardAsync("qa", error, async () =>
        {
            if (options.TopK < 1)
            {
                throw new ArgumentException($"qa: --top-k must be at least 1, got {options.TopK}.");
            }

            if (options.MaxAnswerLen < 1)
            {
                throw new ArgumentException($"qa: --max-answer-len must be at least 1, got {options.MaxAnswerLen}.");
            }

            var text = await ReadContextAsync(context, contextFile, input, ct).ConfigureAwait(false);
            var pipeline = await QuestionAnsweringPipeline.FromPretrainedAsync(model, PipelineVerbs.Options(error, truncate: false, precision), ct).ConfigureAwait(false);
            var answers = pipeline.Run(question, text, options);
            if (json)
            {
                // HF returns one object for one answer and a list for several.
                var rows = answers.Select(a => new { score = a.Score, start = a.Start, end = a.End, answer = a.Answer }).ToList();
                object shaped = rows.Count == 1 ? rows[0] : rows;
                output.WriteLine(JsonSerializer.Serialize(shaped, PipelineVerbs.Json));
                return 0;
            }

            var table = new List<string[]> { Header };
            table.AddRange(answers.Select((a, i) => new[]
            {
                (i + 1).ToString(CultureInfo.InvariantCulture), PipelineVerbs.F(a.Score, "F4"), a.Start.ToString(CultureInfo.InvariantCulture),
                a.End.ToString(CultureInfo.InvariantCulture), a.Answer.Length == 0 ? "(no answer)" : a.Answer,
            }));
            var widths = Enumerable.Range(0, 4).Select(c => table.Max(r => r[c].Length)).ToArray();
            foreach (var row in table)
            {
                output.WriteLine($"{row[0].PadLeft(widths[0])}  {row[1].PadLeft(widths[1])}  {row[2].PadLeft(widths[2])}  {row[3].PadLeft(widths[3])}  {row[4]}");
            }

            return 0;
        });

    private static async Task<string> ReadContextAsync(string? context, string? contextFile, TextReader? input, CancellationToken ct)
    {
        if ((context is null) == (contextFile is null))
        {
            throw new ArgumentException("qa: pass the context either as --context \"…\" or as --context-file <path> (one of the two).");
        }

        if (context is not null)
        {
            return context;
        }

        if (contextFile == "-")
        {
            return input is null
                ? throw new ArgumentException("qa: --context-file - reads standard input, but nothing is piped in.")
                : await input.ReadToEndAsync(ct).ConfigureAwait(false);
        }

        if (!File.Exists(contextFile))
        {
            throw new ArgumentException($"qa: --context-file {contextFile}: no such file; pass a UTF-8 text file with the context, or --context \"…\".");
        }

        return await File.ReadAllTextAsync(contextFile!, ct).ConfigureAwait(false);
    }
}
