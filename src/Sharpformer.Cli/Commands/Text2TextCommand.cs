using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Sharpformer.Generation;
using Sharpformer.IO.Config;
using Sharpformer.Models;
using Sharpformer.NN;
using Sharpformer.Pipelines;
using Sharpformer.Text;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer translate|summarize "text"… [--model …] [--beams N] [--max-length L] [--min-length L]
/// [--length-penalty P] [--no-repeat-ngram N] [--no-truncate] [--json]</c>: HF's translation and summarization
/// pipelines over an encoder-decoder; with no text, one text per line of standard input. One text with greedy search
/// streams the output as it is generated.
/// </summary>
internal static class Text2TextCommand
{
    private const string FolderHint =
        "pass --model a local encoder-decoder folder (config.json, model.safetensors and the tokenizer files), e.g. one written by `sharpformer train seq2seq`.";

    /// <summary>The flag values; null = the model's generation_config.json default.</summary>
    internal sealed record Flags(int? Beams, int? MaxLength, int? MinLength, float? LengthPenalty, int? NoRepeatNgram, bool NoTruncate, bool Json,
        string SourceLanguage = "English", string TargetLanguage = "German", string? CrossAttention = null);

    public static Command Create(Text2TextTask task)
    {
        string verb = task == Text2TextTask.Summarization ? "summarize" : "translate";
        var texts = new Argument<string[]>("text")
        {
            Description = $"The texts to {verb}; none (or \"-\") reads one text per line from standard input.",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var model = task == Text2TextTask.Summarization
            ? PipelineVerbs.ModelOption(Text2TextGenerationPipeline.DefaultSummarizationModel)
            : new Option<string>("--model")
            {
                Description = "Hub repo id ('org/name', fetched into the HF cache; HF_ENDPOINT and HF_HUB_OFFLINE apply) or a local model folder. "
                    + "Default: Helsinki-NLP/opus-mt-<source>-<target> for --source-lang/--target-lang (opus-mt-en-de); offline, German → English falls back to the shipped sharpformer/transformer-de-en.",
            };
        var beams = new Option<int?>("--beams") { Description = "Beam search with this many beams (default: the model's num_beams, else 1 = greedy, which streams)." };
        var maxLength = new Option<int?>("--max-length") { Description = "Most output tokens, the decoder start token counted as HF's max_length does (default: the model's max_length)." };
        var minLength = new Option<int?>("--min-length") { Description = "Fewest output tokens before EOS may end it, counted like --max-length (default: the model's min_length)." };
        var lengthPenalty = new Option<float?>("--length-penalty") { Description = "Beam scores are sum(log p) / length^P: > 0 favours longer outputs, < 0 shorter." };
        var noRepeat = new Option<int?>("--no-repeat-ngram") { Description = "Never repeat an n-gram of this size (0 = off)." };
        var noTruncate = new Option<bool>("--no-truncate") { Description = "Fail on a source longer than the model takes instead of cutting it (with a note)." };
        var crossAttention = new Option<string?>("--cross-attention")
        {
            Description = "Draw which source tokens each output token looked at (the last decoder layer's cross-attention, mean over heads) for the first text, to this .png or .svg.",
        };
        var json = PipelineVerbs.JsonOption();
        var command = new Command(verb, task == Text2TextTask.Summarization
            ? "Summarize texts with an encoder-decoder (HF's summarization pipeline; default sshleifer/distilbart-cnn-12-6)."
            : "Translate texts with an encoder-decoder (HF's translation pipeline; default Helsinki-NLP/opus-mt-en-de).")
        {
            texts, model, beams, maxLength, minLength, lengthPenalty, noRepeat, noTruncate, json, crossAttention,
        };
        Option<string>? from = null, to = null;
        if (task == Text2TextTask.Translation)
        {
            from = new Option<string>("--source-lang") { Description = "Source language, in English (T5's prefix: translate English to German: ).", DefaultValueFactory = _ => "English" };
            to = new Option<string>("--target-lang") { Description = "Target language, in English (T5's prefix).", DefaultValueFactory = _ => "German" };
            command.Options.Add(from);
            command.Options.Add(to);
        }

        command.SetAction((parse, ct) => RunAsync(
            task, parse.GetValue(texts), parse.GetValue(model),
            new Flags(parse.GetValue(beams), parse.GetValue(maxLength), parse.GetValue(minLength), parse.GetValue(lengthPenalty), parse.GetValue(noRepeat),
                parse.GetValue(noTruncate), parse.GetValue(json), from is null ? "English" : parse.GetValue(from)!, to is null ? "German" : parse.GetValue(to)!,
                parse.GetValue(crossAttention)),
            PipelineVerbs.PipedInput(), parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, ct, PipelineVerbs.IsDefault(parse, model)));
        return command;
    }

    internal static Task<int> RunAsync(Text2TextTask task, string[]? texts, string? model, Flags flags, TextReader? input, TextWriter output, TextWriter error, CancellationToken ct,
        bool modelIsDefault = false)
    {
        string verb = task == Text2TextTask.Summarization ? "summarize" : "translate";
        return PipelineVerbs.GuardAsync(verb, error, async () =>
        {
            var inputs = PipelineVerbs.Texts(verb, texts, input);
            modelIsDefault |= model is null;
            model ??= task == Text2TextTask.Summarization
                ? Text2TextGenerationPipeline.DefaultSummarizationModel
                : Text2TextGenerationPipeline.DefaultTranslationModelFor(flags.SourceLanguage, flags.TargetLanguage);
            var source = PipelineVerbs.Options(error, truncate: false, modelIsDefault: modelIsDefault);
            string hint = task == Text2TextTask.Translation && modelIsDefault
                ? FolderHint + $" Offline, {ShippedModels.TransformerDeEn} (shipped) translates German → English: --source-lang German --target-lang English."
                : FolderHint;
            string folder = (await ModelFolders.ResolveAsync(model, source, hint, ct).ConfigureAwait(false)).Directory;
            ISeq2SeqLM lm;
            TextTokenizer tokenizer;
            try
            {
                lm = AutoModelForSeq2SeqLM.FromPretrained(folder);
                tokenizer = AutoTokenizer.FromPretrained(folder);
            }
            catch (Exception e) when (e is ModelConfigException or ModelLoadException)
            {
                throw new InvalidDataException(e.Message, e);
            }

            var options = Options(folder, lm, flags);
            var pipeline = new Text2TextGenerationPipeline(lm, tokenizer, task, new Text2TextOptions
            {
                Prefix = Text2TextGenerationPipeline.TaskPrefix(ModelType(folder), task, flags.SourceLanguage, flags.TargetLanguage),
                Truncation = !flags.NoTruncate,
                Warning = message => error.WriteLine($"note: {verb}: {message}"),
            });

            if (flags.CrossAttention is not null && lm is not ICrossAttentionSeq2SeqLM)
            {
                throw new ArgumentException($"--cross-attention: {ModelType(folder) ?? lm.GetType().Name} models do not return cross-attention weights here; the original Transformer (sharpformer-transformer, e.g. {ShippedModels.TransformerDeEn}) does.");
            }

            // Streaming would generate the first text a second time for the picture, so --cross-attention runs the batch path.
            if (inputs.Count == 1 && options.NumBeams == 1 && !flags.Json && flags.CrossAttention is null)
            {
                await foreach (var piece in pipeline.StreamAsync(inputs[0], options, ct).ConfigureAwait(false))
                {
                    await output.WriteAsync(piece).ConfigureAwait(false);
                    await output.FlushAsync(ct).ConfigureAwait(false);
                }

                await output.WriteLineAsync().ConfigureAwait(false);
                return 0;
            }

            var results = pipeline.Run(inputs, options, ct);
            if (flags.CrossAttention is { } path)
            {
                var map = pipeline.CrossAttention(inputs[0], results[0][0]);
                Explain.ExplainImages.CrossAttention(map, path, string.Create(CultureInfo.InvariantCulture,
                    $"Cross-attention, decoder layer {map.Layer + 1} of {map.Layers}, mean of {map.Heads} heads"));
                await error.WriteLineAsync($"{verb}: the cross-attention of the first text's output is in {Path.GetFullPath(path)}").ConfigureAwait(false);
            }

            if (flags.Json)
            {
                var shaped = results.Select(r => new Dictionary<string, string> { [pipeline.ResultKey] = r[0].Text }).ToList();
                await output.WriteLineAsync(JsonSerializer.Serialize(shaped, PipelineVerbs.Json)).ConfigureAwait(false);
                return 0;
            }

            foreach (var r in results)
            {
                await output.WriteLineAsync(r[0].Text.ReplaceLineEndings(" ")).ConfigureAwait(false);
            }

            return 0;
        });
    }

    /// <summary>The model folder's generation defaults with the flags on top; lengths converted from HF's max/min_length (decoder start counted).</summary>
    internal static GenerationOptions Options(string folder, ISeq2SeqLM model, Flags flags)
    {
        var inv = CultureInfo.InvariantCulture;
        int targetLimit = model.MaxTargetPositions == int.MaxValue ? 512 : model.MaxTargetPositions;
        var options = GenerationConfigFile.Load(folder, new GenerationOptions { MaxNewTokens = Math.Min(targetLimit, 256) - 1 });
        if (flags.MaxLength is { } max)
        {
            if (max < 2 || max > targetLimit)
            {
                throw new ArgumentException(string.Create(inv, $"--max-length must be in [2, {targetLimit}] (the decoder start token counts as one), got {max}."));
            }

            options = options with { MaxNewTokens = max - 1 };
        }

        if (flags.MinLength is { } min)
        {
            if (min < 0 || min > options.MaxNewTokens + 1)
            {
                throw new ArgumentException(string.Create(inv, $"--min-length must be in [0, --max-length = {options.MaxNewTokens + 1}], got {min}."));
            }

            options = options with { MinNewTokens = Math.Max(0, min - 1) };
        }

        options = options with { MinNewTokens = Math.Min(options.MinNewTokens, options.MaxNewTokens) };
        if (flags.Beams is { } beams)
        {
            if (beams < 1)
            {
                throw new ArgumentException(string.Create(inv, $"--beams must be at least 1 (1 = greedy), got {beams}."));
            }

            options = options with { NumBeams = beams };
        }

        if (flags.LengthPenalty is { } penalty)
        {
            options = options with { LengthPenalty = penalty };
        }

        if (flags.NoRepeatNgram is { } n)
        {
            if (n < 0)
            {
                throw new ArgumentException(string.Create(inv, $"--no-repeat-ngram must be 0 (off) or more, got {n}."));
            }

            options = options with { NoRepeatNgramSize = n };
        }

        options.Validate();
        return options;
    }

    private static string? ModelType(string folder)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json")));
            return document.RootElement.TryGetProperty("model_type", out var type) && type.ValueKind == JsonValueKind.String ? type.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
