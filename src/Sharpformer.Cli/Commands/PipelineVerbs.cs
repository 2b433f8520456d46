using System.CommandLine;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using Sharpformer.IO.Hub;
using Sharpformer.IO.SafeTensors;
using Sharpformer.NN;
using Sharpformer.Pipelines;

namespace Sharpformer.Cli.Commands;

/// <summary>What the pipeline verbs (fill-mask, embed, similarity, classify, ner, qa) share: options, Hub progress, warnings and one-line errors.</summary>
internal static class PipelineVerbs
{
    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    };

    public static Option<string> ModelOption(string defaultModel) => new("--model")
    {
        Description = "Hub repo id ('org/name', fetched into the HF cache; HF_ENDPOINT and HF_HUB_OFFLINE apply) or a local model folder.",
        DefaultValueFactory = _ => defaultModel,
    };

    /// <summary>Whether <paramref name="option"/> was left out of the command line (its default value is in use).</summary>
    public static bool IsDefault(ParseResult parse, Option option) => parse.GetResult(option) is not { Implicit: false };

    public static Option<bool> JsonOption() => new("--json") { Description = "Print the result as JSON." };

    public static Option<bool> TruncateOption() => new("--truncate")
    {
        Description = "Cut inputs longer than the model's limit (model_max_length) instead of failing.",
    };

    public static Option<bool> NoTruncateOption() => new("--no-truncate")
    {
        Description = "Fail on inputs longer than the model's max_seq_length instead of cutting them (sentence-transformers' default) with a warning.",
    };

    public static Option<string?> PromptNameOption() => new("--prompt-name")
    {
        Description = "Prepend the model's prompt of this name (config_sentence_transformers.json \"prompts\", e.g. query) to each text; default: the model's default_prompt_name, if any.",
    };

    public static Option<string> DTypeOption()
    {
        var option = new Option<string>("--dtype")
        {
            Description = "The number format of the encoder's linear layers: f32 (default), bf16 (bfloat16 weights and activations, float32 accumulation) or int8 (dynamic quantization as ONNX Runtime's quantize_dynamic).",
            DefaultValueFactory = _ => "f32",
        };
        option.AcceptOnlyFromAmong("f32", "bf16", "int8");
        return option;
    }

    /// <summary>
    /// Pipeline options that print finished downloads and HF-style warnings on stderr. <paramref name="modelIsDefault"/>:
    /// --model was not given, so an unreachable HF default may be replaced by its shipped stand-in (with one line saying so).
    /// </summary>
    public static PipelineOptions Options(TextWriter error, bool truncate, LinearPrecision precision = LinearPrecision.F32, bool modelIsDefault = false) => new()
    {
        Truncation = truncate,
        Precision = precision,
        UseShippedWhenUnavailable = modelIsDefault,
        Warning = message => error.WriteLine("warning: " + message),
        DownloadProgress = new DownloadLines(error),
    };

    /// <summary>Runs a verb's body; every expected failure becomes one "error: verb: …" line on stderr (plus its trace under --verbose) and a non-zero exit.</summary>
    public static async Task<int> GuardAsync(string verb, TextWriter error, Func<Task<int>> body)
    {
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (Exception e) when (e is ArgumentException)
        {
            await Report(verb, error, e).ConfigureAwait(false);
            return 2;
        }
        catch (Exception e) when (e is ModelUnavailableException or HubException or NotSupportedException or IOException
            or InvalidDataException or UnauthorizedAccessException or SafeTensorsException or InvalidOperationException)
        {
            await Report(verb, error, e).ConfigureAwait(false);
            return 1;
        }
        catch (OperationCanceledException)
        {
            await error.WriteLineAsync($"error: {verb}: cancelled.").ConfigureAwait(false);
            return 130;
        }
    }

    /// <summary>One <c>error:</c> line, and the exception with its trace when the invocation is verbose.</summary>
    private static async Task Report(string verb, TextWriter error, Exception e)
    {
        await error.WriteLineAsync($"error: {verb}: {OneLine(e.Message)}").ConfigureAwait(false);
        if (CliErrors.Verbose) await error.WriteLineAsync(e.ToString()).ConfigureAwait(false);
    }

    /// <summary>An input as a table shows it: on one line, and cut after 60 characters with its length noted (--json keeps it whole).</summary>
    public static string Preview(string text)
    {
        string line = text.ReplaceLineEndings(" ");
        return line.Length <= 60 ? line : string.Create(CultureInfo.InvariantCulture, $"{line[..57]}… ({text.Length:N0} characters)");
    }

    public static string F(float value, string format) => value.ToString(format, CultureInfo.InvariantCulture);

    /// <summary>Standard input for verbs that read texts from it: null when it is a terminal (nothing piped in).</summary>
    public static TextReader? PipedInput() => Console.IsInputRedirected ? Console.In : null;

    /// <summary>
    /// The texts a batch verb works on: its arguments, or — with none, or the single argument "-" — one text per
    /// non-blank line of standard input.
    /// </summary>
    /// <exception cref="ArgumentException">No arguments and nothing piped in, or only blank lines.</exception>
    public static IReadOnlyList<string> Texts(string verb, string[]? arguments, TextReader? input)
    {
        if (arguments is { Length: > 0 } && !(arguments.Length == 1 && arguments[0] == "-"))
        {
            return arguments;
        }

        if (input is null)
        {
            throw new ArgumentException($"{verb}: no text given; pass the text as an argument, or pipe one text per line on standard input.");
        }

        var texts = new List<string>();
        while (input.ReadLine() is { } line)
        {
            if (!string.IsNullOrWhiteSpace(line))
            {
                texts.Add(line);
            }
        }

        if (texts.Count == 0)
        {
            throw new ArgumentException($"{verb}: standard input held no text; pipe one text per line.");
        }

        return texts;
    }

    // ArgumentException appends " (Parameter 'x')"; the message before it already says what to do.
    private static string OneLine(string message)
    {
        var cut = message.IndexOf(" (Parameter '", StringComparison.Ordinal);
        return (cut > 0 ? message[..cut] : message).ReplaceLineEndings(" ");
    }

    /// <summary>One stderr line per file once it is downloaded; cached files report nothing.</summary>
    private sealed class DownloadLines(TextWriter error) : IProgress<DownloadProgress>
    {
        private readonly HashSet<string> _resumed = new(StringComparer.Ordinal);

        public void Report(DownloadProgress value)
        {
            if (value.ResumedFrom > 0 && _resumed.Add(value.FileName))
            {
                error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"resuming {value.FileName} at {value.ResumedFrom / 1e6:F1} MB"));
            }

            if (value.TotalBytes is { } total && value.BytesDownloaded == total)
            {
                error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"downloaded {value.FileName} ({total / 1e6:F1} MB)"));
            }
        }
    }
}
