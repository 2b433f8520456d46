using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Sharpformer.Explain;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer explain "&lt;text&gt;" [--model …] [--out folder] [--serve [--port N]]</c>: one self-contained HTML
/// page (plus PNG/SVG pictures) of every step of a model on a text — tokens, embeddings, positions, attention, the
/// residual stream and the output — or the same page served on 127.0.0.1 for any sentence typed into it.
/// </summary>
internal static class ExplainCommand
{
    public const string DefaultModel = "bert-base-uncased";

    public static Command Create()
    {
        var text = new Argument<string>("text") { Description = "The text to look inside (e.g. \"The heart is a [MASK] organ.\")." };
        var model = PipelineVerbs.ModelOption(DefaultModel);
        var output = new Option<string>("--out") { Description = "Folder for explain.html and the pictures (created if missing).", DefaultValueFactory = _ => "explain" };
        var serve = new Option<bool>("--serve") { Description = "Serve the page on http://127.0.0.1 so new sentences can be typed in; stop with Ctrl+C." };
        var port = new Option<int>("--port") { Description = "The loopback port for --serve (0 picks a free one).", DefaultValueFactory = _ => 8765 };
        var topK = new Option<int>("--top-k") { Description = "Candidates shown per [MASK] or for the next token.", DefaultValueFactory = _ => 10 };
        var temperature = new Option<float>("--temperature") { Description = "Temperature applied to the next-token distribution, as generate samples.", DefaultValueFactory = _ => 1f };
        var samplingTopK = new Option<int>("--sampling-top-k") { Description = "Top-k filter applied to the next-token distribution (0 = off), as generate samples.", DefaultValueFactory = _ => 50 };
        var topP = new Option<float>("--top-p") { Description = "Top-p filter applied to the next-token distribution, as generate samples.", DefaultValueFactory = _ => 1f };
        var maxCells = new Option<int>("--max-cells") { Description = "Largest displayed side of a matrix; longer ones are shown as block means with exact min/max on hover.", DefaultValueFactory = _ => 64 };
        var noImages = new Option<bool>("--no-images") { Description = "Write only the HTML page, not the PNG/SVG pictures." };
        var command = new Command("explain", "See inside a model: tokens, embeddings, positions, attention per layer and head, the residual stream and the output, as one HTML page.")
        {
            text, model, output, serve, port, topK, temperature, samplingTopK, topP, maxCells, noImages,
        };
        command.SetAction((parse, ct) =>
        {
            var options = new ExplainOptions
            {
                TopK = parse.GetValue(topK),
                Temperature = parse.GetValue(temperature),
                SamplingTopK = parse.GetValue(samplingTopK),
                TopP = parse.GetValue(topP),
                MaxCells = parse.GetValue(maxCells),
            };
            return RunAsync(parse.GetValue(text)!, parse.GetValue(model)!, parse.GetValue(output)!, parse.GetValue(serve), parse.GetValue(port),
                parse.GetValue(noImages), options, parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, ct,
                modelIsDefault: PipelineVerbs.IsDefault(parse, model));
        });
        return command;
    }

    internal static Task<int> RunAsync(string text, string model, string outFolder, bool serve, int port, bool noImages, ExplainOptions options,
        TextWriter output, TextWriter error, CancellationToken ct, bool modelIsDefault = false) =>
        PipelineVerbs.GuardAsync("explain", error, async () =>
        {
            options.Validate();
            var (tokenizer, explainable, folder) = await ExplainModels.LoadAsync(model, PipelineVerbs.Options(error, truncate: false, modelIsDefault: modelIsDefault), ct).ConfigureAwait(false);
            if (serve)
            {
                using var server = new ExplainServer(explainable, tokenizer, text, options, model);
                server.Page(text); // fail early, before listening, when the text does not fit the model
                var address = server.Start(port);
                await output.WriteLineAsync($"explain: serving {model} on {address} (loopback only); Ctrl+C stops.").ConfigureAwait(false);
                try
                {
                    await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    await output.WriteLineAsync("explain: stopped.").ConfigureAwait(false);
                }

                return 0;
            }

            Directory.CreateDirectory(outFolder);
            var clock = Stopwatch.StartNew();
            var report = Explainer.Run(explainable, tokenizer, text, options, model);
            double computeSeconds = clock.Elapsed.TotalSeconds;
            string page = Path.Combine(outFolder, "explain.html");
            ExplainPage.Write(report, page);
            double pageSeconds = clock.Elapsed.TotalSeconds;
            long bytes = new FileInfo(page).Length;
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"explain: {report.Tokens.Count} tokens, {report.Model.Layers} layers × {report.Model.Heads} heads ({report.Model.ModelType} from {folder})")).ConfigureAwait(false);
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"wrote {page} ({bytes / 1e6:F2} MB) in {pageSeconds:F2} s (model + data {computeSeconds:F2} s)")).ConfigureAwait(false);
            if (!noImages)
            {
                var images = ExplainImages.Write(report, outFolder);
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"wrote {images.Count} pictures (PNG/SVG) to {outFolder} in {clock.Elapsed.TotalSeconds - pageSeconds:F2} s")).ConfigureAwait(false);
            }

            return 0;
        });
}
