using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Sharpformer.Pipelines;
using Sharpformer.Tensors.Threading;
using Sharpformer.Training;
using Sharpformer.Training.Data;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer evaluate clm|mlm --model &lt;folder-or-repo&gt; --data &lt;held-out&gt; [--baseline-data &lt;train&gt;]</c>:
/// held-out cross-entropy and perplexity of a language model, beside a unigram baseline on the same tokens.
/// </summary>
internal static class EvaluateCommand
{
    public static Command Create()
    {
        var evaluate = new Command("evaluate", "Held-out loss and perplexity of a language model, beside a unigram baseline of the training text's token frequencies.");
        evaluate.Subcommands.Add(Objective("clm", "Causal LM: mean cross-entropy of every next token.", LanguageModelingObjective.CausalLM));
        evaluate.Subcommands.Add(Objective("mlm", "Masked LM: mean cross-entropy of the chosen tokens (15 %, seeded: the same seed and batch size score the same tokens).", LanguageModelingObjective.MaskedLM));
        return evaluate;
    }

    private static Command Objective(string name, string description, LanguageModelingObjective objective)
    {
        var model = new Option<string>("--model") { Description = "Hub repo id or local model folder (config.json, model.safetensors, tokenizer files).", Required = true };
        var data = new Option<string>("--data") { Description = "Held-out text: a .txt file, a folder of .txt files, or a .jsonl file with a \"text\" field.", Required = true };
        var baseline = new Option<string?>("--baseline-data") { Description = "Text whose token frequencies make the unigram baseline (normally the training data)." };
        var blockSize = new Option<int?>("--block-size") { Description = "Tokens per sequence (as in training; default min(1024, positions) for clm, min(512, positions) for mlm)." };
        var batchSize = new Option<int>("--batch-size") { Description = "Sequences per batch.", DefaultValueFactory = _ => 8 };
        var seed = new Option<int>("--seed") { Description = "mlm: the seed of the masks.", DefaultValueFactory = _ => 42 };
        var maskProbability = new Option<double>("--mlm-probability") { Description = "mlm: probability of choosing a token.", DefaultValueFactory = _ => 0.15 };
        var layout = new Option<string>("--mlm-layout") { Description = "mlm: 'lines' (whole lines packed, as train's default) or 'grouped'.", DefaultValueFactory = _ => "lines" };
        layout.AcceptOnlyFromAmong("lines", "grouped");
        var threads = new Option<int>("--threads") { Description = "Worker threads (default: every core).", DefaultValueFactory = _ => Environment.ProcessorCount };
        var cacheDir = new Option<string?>("--cache-dir") { Description = "Where tokenized corpora are cached (default ~/.cache/sharpformer/token-cache)." };
        var json = PipelineVerbs.JsonOption();
        var command = new Command(name, description) { model, data, baseline, blockSize, batchSize, seed, threads, cacheDir, json };
        if (objective == LanguageModelingObjective.MaskedLM)
        {
            command.Options.Add(maskProbability);
            command.Options.Add(layout);
        }

        command.SetAction((parse, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var output = parse.InvocationConfiguration.Output;
            return PipelineVerbs.GuardAsync("evaluate " + name, error, async () =>
            {
                ParallelFor.MaxDegreeOfParallelism = Math.Max(1, parse.GetValue(threads));
                string folder = (await ModelFolders.ResolveAsync(parse.GetValue(model)!, PipelineVerbs.Options(error, truncate: false), "pass --model a local folder with config.json, model.safetensors and the tokenizer files.", ct).ConfigureAwait(false)).Directory;
                var lines = new TrainCommand.ProgressLines(error);
                var result = LanguageModelEvaluation.Run(
                    new LanguageModelEvaluationOptions
                    {
                        Objective = objective,
                        ModelFolder = folder,
                        Data = parse.GetValue(data)!,
                        BaselineData = parse.GetValue(baseline),
                        BlockSize = parse.GetValue(blockSize),
                        BatchSize = parse.GetValue(batchSize),
                        Seed = parse.GetValue(seed),
                        MaskProbability = parse.GetValue(maskProbability),
                        MlmLayout = parse.GetValue(layout) == "grouped" ? MlmLayout.Grouped : MlmLayout.Lines,
                        CacheFolder = parse.GetValue(cacheDir),
                    },
                    new Progress<CorpusProgress>(lines.Tokenizing),
                    (done, total) => error.Write(string.Create(CultureInfo.InvariantCulture, $"evaluating: batch {done}/{total}{(Console.IsErrorRedirected ? "\n" : "\r")}")),
                    ct);
                error.WriteLine();
                Print(output, name, result, parse.GetValue(json));
                return 0;
            });
        });
        return command;
    }

    private static void Print(TextWriter output, string objective, LanguageModelEvaluationResult r, bool json)
    {
        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(new
            {
                objective,
                scored_tokens = r.ScoredTokens,
                loss = r.Loss,
                perplexity = r.Perplexity,
                unigram_loss = r.UnigramLoss,
                unigram_perplexity = r.UnigramPerplexity,
            }));
            return;
        }

        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{objective}: {r.ScoredTokens} tokens scored"));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"model   loss {r.Loss:F4}  perplexity {r.Perplexity:F2}"));
        if (r.UnigramLoss is { } u)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"unigram loss {u:F4}  perplexity {r.UnigramPerplexity:F2}  (the model's perplexity is {r.UnigramPerplexity / r.Perplexity:F1}× lower)"));
        }
    }
}
