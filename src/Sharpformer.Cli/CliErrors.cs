using System.Text.RegularExpressions;
using Sharpformer.IO.Config;
using Sharpformer.IO.Gguf;
using Sharpformer.IO.Hub;
using Sharpformer.IO.Onnx;
using Sharpformer.IO.SafeTensors;
using Sharpformer.NN;
using Sharpformer.Pipelines;
using Sharpformer.Training;

namespace Sharpformer.Cli;

/// <summary>The exit codes of every verb (README "Exit codes").</summary>
public static class ExitCodes
{
    /// <summary>Success.</summary>
    public const int Ok = 0;

    /// <summary>The input or the model is the problem: a missing or corrupt file, an invalid config, a model of the wrong kind, a bad input text.</summary>
    public const int InputOrModel = 1;

    /// <summary>The command line is the problem: an unknown verb or flag, a missing argument, an option value out of range.</summary>
    public const int Usage = 2;

    /// <summary>The network is the problem: the Hub (or an API) cannot be reached, timed out, or keeps answering busy.</summary>
    public const int Network = 3;

    /// <summary>A bug: an exception no check anticipated (rerun with --verbose for the trace and report it).</summary>
    public const int Internal = 70;

    /// <summary>Interrupted (Ctrl+C).</summary>
    public const int Cancelled = 130;
}

/// <summary>
/// The one error style of the command line: <c>error: &lt;what is wrong&gt;. &lt;what to do&gt;</c> on stderr, in the words of
/// the command line, no stack trace unless <c>--verbose</c> (or SHARPFORMER_VERBOSE=1) asks for it. Verbs report the
/// failures they expect themselves; this turns anything that escapes a verb into the same form.
/// </summary>
public static partial class CliErrors
{
    private static readonly AsyncLocal<bool> VerboseFlag = new();

    /// <summary>
    /// Whether this invocation asked for traces (<c>--verbose</c> or SHARPFORMER_VERBOSE=1): set by <c>Program.Main</c>
    /// for the verb it runs, read by the verbs' own error guards so an error they report also shows its trace.
    /// </summary>
    public static bool Verbose
    {
        get => VerboseFlag.Value;
        set => VerboseFlag.Value = value;
    }

    /// <summary>Writes <paramref name="exception"/> as one error line (plus its trace when verbose) and returns its exit code.</summary>
    /// <param name="exception">What escaped the verb.</param>
    /// <param name="error">Standard error.</param>
    /// <param name="verbose">Also print the exception with its stack trace.</param>
    /// <returns>The exit code for the exception's class of failure.</returns>
    public static int Report(Exception exception, TextWriter error, bool verbose)
    {
        ArgumentNullException.ThrowIfNull(exception);
        ArgumentNullException.ThrowIfNull(error);
        var e = Unwrap(exception);
        int code = ExitCode(e);
        string message = code == ExitCodes.Internal
            ? $"internal error ({e.GetType().Name}): {OneLine(e.Message)} This is a bug in sharpformer: rerun with --verbose and report the trace."
            : OneLine(e.Message);
        if (code == ExitCodes.Cancelled) message = "cancelled.";
        error.WriteLine("error: " + message);
        if (verbose) error.WriteLine(exception.ToString());
        return code;
    }

    /// <summary>The exit code of a class of failure.</summary>
    /// <param name="exception">The failure.</param>
    /// <returns>One of <see cref="ExitCodes"/>.</returns>
    public static int ExitCode(Exception exception) => Unwrap(exception) switch
    {
        OperationCanceledException => ExitCodes.Cancelled,
        HubNetworkException or HttpRequestException or TimeoutException => ExitCodes.Network,
        ArgumentException => ExitCodes.Usage,
        ModelConfigException or SafeTensorsException or GgufFormatException or OnnxFormatException or ModelLoadException
            or ModelUnavailableException or HubException or TrainingDivergedException or IOException or InvalidDataException
            or UnauthorizedAccessException or NotSupportedException or FormatException or System.Text.Json.JsonException => ExitCodes.InputOrModel,
        _ => ExitCodes.Internal,
    };

    /// <summary>A message on one line, without .NET's " (Parameter 'x')" suffix.</summary>
    /// <param name="message">An exception message.</param>
    /// <returns>The message as the command line prints it.</returns>
    public static string OneLine(string message)
    {
        ArgumentNullException.ThrowIfNull(message);
        string text = ParameterSuffix().Replace(message, string.Empty);
        return string.Join(' ', text.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    private static Exception Unwrap(Exception e)
    {
        while (e is AggregateException { InnerExceptions.Count: 1 } aggregate) e = aggregate.InnerExceptions[0];
        while (e is System.Reflection.TargetInvocationException { InnerException: { } inner }) e = inner;
        return e;
    }

    [GeneratedRegex(@" \(Parameter '[^']*'\)")]
    private static partial Regex ParameterSuffix();
}
