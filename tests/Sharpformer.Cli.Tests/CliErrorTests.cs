using Sharpformer.IO.Config;
using Sharpformer.IO.Hub;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Pipelines.Tests;
using Sharpformer.Tensors;

namespace Sharpformer.Cli.Tests;

/// <summary>The one error style: "error: …" lines, exit codes by class of failure, traces only with --verbose.</summary>
[Collection("Console")]
public sealed class CliErrorTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sharpformer-cli-errors-" + Guid.NewGuid().ToString("N"));

    public CliErrorTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var (prevOut, prevErr) = (Console.Out, Console.Error);
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try
        {
            return (Program.Main(args), stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetOut(prevOut);
            Console.SetError(prevErr);
        }
    }

    [Fact]
    public void UnknownVerb_UsageExitWithErrorLineAndHelpHint()
    {
        var (exit, output, error) = Run("no-such-verb");

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Empty(output);
        Assert.StartsWith("error: ", error, StringComparison.Ordinal);
        Assert.Contains("no-such-verb", error, StringComparison.Ordinal);
        Assert.Contains("Run 'sharpformer --help' for usage.", error, StringComparison.Ordinal);
    }

    [Fact]
    public void BadOptionValue_UsageExitNamingTheVerbsHelp()
    {
        var (exit, _, error) = Run("inspect");

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("Run 'sharpformer inspect --help' for usage.", error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
    }

    [Fact]
    public void EscapedConfigException_OneLineNoTraceUnlessVerbose()
    {
        File.WriteAllText(Path.Combine(_dir, "config.json"), "{ this is not json");
        File.WriteAllText(Path.Combine(_dir, "vocab.txt"), "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n");
        SafeTensorsWriter.Write(Path.Combine(_dir, "model.safetensors"), [("w", Tensor.Zeros(new Shape(2)))]);

        var (exit, output, error) = Run("embed", "hello", "--model", _dir);

        Assert.Equal(ExitCodes.InputOrModel, exit);
        Assert.Empty(output);
        Assert.StartsWith("error: ", error, StringComparison.Ordinal);
        Assert.Contains("config.json", error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);

        var (verboseExit, _, verboseError) = Run("embed", "hello", "--model", _dir, "--verbose");
        Assert.Equal(ExitCodes.InputOrModel, verboseExit);
        Assert.Contains("   at ", verboseError, StringComparison.Ordinal);
    }

    [Fact]
    public void LocalFolderWithoutWeights_SaysFolderNotRevision()
    {
        File.WriteAllText(Path.Combine(_dir, "config.json"), "{}");

        var (exit, _, error) = Run("embed", "hello", "--model", _dir);

        Assert.Equal(ExitCodes.InputOrModel, exit);
        Assert.Contains("the local folder", error, StringComparison.Ordinal);
        Assert.DoesNotContain("revision", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Embed_HugeInput_IsCutWithANoteUnlessNoTruncate()
    {
        string folder = RandomBertMlm.Write(Path.Combine(_dir, "bert"));
        string huge = string.Join(' ', Enumerable.Repeat("heart", 20_000));

        var (exit, output, error) = Run("embed", huge, "--model", folder);

        Assert.Equal(0, exit);
        Assert.True(output.Length < 1_000, $"stdout echoed {output.Length} characters");
        Assert.Contains("(119,999 characters)", output, StringComparison.Ordinal);
        Assert.Contains("warning: 1 of 1 text(s) were longer than the model's max_seq_length", error, StringComparison.Ordinal);
        Assert.True(error.Length < 1_000, $"stderr echoed {error.Length} characters");

        var (failExit, _, failError) = Run("embed", huge, "--model", folder, "--no-truncate");
        Assert.Equal(ExitCodes.Usage, failExit);
        Assert.Contains("--no-truncate", failError, StringComparison.Ordinal);
        Assert.True(failError.Length < 1_000, $"stderr echoed {failError.Length} characters");
    }

    [Theory]
    [InlineData("generate", "--temperature", "-1", "--temperature must be 0 (greedy) or more (got -1).")]
    [InlineData("generate", "--max-new-tokens", "0", "--max-new-tokens must be at least 1 (got 0).")]
    [InlineData("generate", "--top-p", "2", "--top-p must be in (0, 1] (got 2).")]
    [InlineData("generate", "--top-k", "-3", "--top-k must be 0 (no limit) or more (got -3).")]
    [InlineData("generate", "--beams", "0", "--beams must be at least 1")]
    [InlineData("chat", "--max-tokens", "0", "--max-tokens 0 must be at least 1.")]
    [InlineData("chat", "--temperature", "-0.5", "--temperature -0.5 must be in [0, 2]")]
    public void BadSamplingFlag_NamedInTheFlagsWordsNotCSharpMembers(string verb, string flag, string value, string expected)
    {
        var (exit, output, error) = Run(verb, "hello", "--model", GenerateCommandTests.ModelFolder.Value, flag, value);

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Empty(output);
        Assert.Contains(expected, error, StringComparison.Ordinal);
        Assert.DoesNotContain("Options.", error, StringComparison.Ordinal);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void Report_ClassesOfFailure_MapToDocumentedExitCodes()
    {
        Assert.Equal(ExitCodes.Network, CliErrors.ExitCode(new HubNetworkException("cannot reach the Hub")));
        Assert.Equal(ExitCodes.Network, CliErrors.ExitCode(new HttpRequestException("refused")));
        Assert.Equal(ExitCodes.Usage, CliErrors.ExitCode(new ArgumentOutOfRangeException("topK", "--top-k must be at least 1.")));
        Assert.Equal(ExitCodes.InputOrModel, CliErrors.ExitCode(new ModelConfigException("config.json: bad")));
        Assert.Equal(ExitCodes.InputOrModel, CliErrors.ExitCode(new FileNotFoundException("no such file")));
        Assert.Equal(ExitCodes.InputOrModel, CliErrors.ExitCode(new AggregateException(new ModelConfigException("wrapped"))));
        Assert.Equal(ExitCodes.Cancelled, CliErrors.ExitCode(new OperationCanceledException()));
        Assert.Equal(ExitCodes.Internal, CliErrors.ExitCode(new KeyNotFoundException("key")));
    }

    [Fact]
    public void Report_UnexpectedException_SaysBugAndHowToGetTheTrace()
    {
        var error = new StringWriter();

        int exit = CliErrors.Report(new InvalidCastException("Unable to cast X to Y."), error, verbose: false);

        Assert.Equal(ExitCodes.Internal, exit);
        string text = error.ToString();
        Assert.StartsWith("error: internal error (InvalidCastException): Unable to cast X to Y.", text, StringComparison.Ordinal);
        Assert.Contains("--verbose", text, StringComparison.Ordinal);
        Assert.Single(text.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void OneLine_DropsParameterSuffixAndJoinsLines()
    {
        Assert.Equal("--top-k must be at least 1. Got 0.", CliErrors.OneLine("--top-k must be at least 1.\nGot 0. (Parameter 'topK')"));
    }
}
