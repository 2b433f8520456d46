using System.CommandLine;
using Sharpformer.Cli.Commands;

namespace Sharpformer.Cli;

/// <summary>Entry point of the <c>sharpformer</c> command.</summary>
public static class Program
{
    /// <summary>
    /// Parses <paramref name="args"/> and runs the chosen verb; returns the process exit code (<see cref="ExitCodes"/>).
    /// A command-line mistake prints one <c>error:</c> line per problem and how to get help (exit 2); anything a verb
    /// throws becomes one <c>error:</c> line too (<see cref="CliErrors"/>), with the trace only under <c>--verbose</c>.
    /// </summary>
    public static int Main(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var parse = BuildRoot().Parse(args);
        bool verbose = parse.GetValue(Verbose) || Environment.GetEnvironmentVariable("SHARPFORMER_VERBOSE") is "1" or "true";
        if (parse.Errors.Count > 0)
        {
            foreach (var problem in parse.Errors) Console.Error.WriteLine("error: " + CliErrors.OneLine(problem.Message));
            string path = CommandPath(parse.CommandResult.Command);
            Console.Error.WriteLine($"Run '{path} --help' for usage.");
            return ExitCodes.Usage;
        }

        CliErrors.Verbose = verbose;
        try
        {
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e)
        {
            return CliErrors.Report(e, Console.Error, verbose);
        }
        finally
        {
            CliErrors.Verbose = false;
        }
    }

    /// <summary><c>--verbose</c>, on every verb: print the stack trace of an error as well.</summary>
    internal static Option<bool> Verbose { get; } = new("--verbose")
    {
        Description = "On an error, also print its stack trace (or set SHARPFORMER_VERBOSE=1).",
        Recursive = true,
    };

    private static string CommandPath(Command command)
    {
        var names = new List<string>();
        for (Symbol? s = command; s is not null; s = s.Parents.FirstOrDefault())
        {
            names.Add(s is RootCommand ? "sharpformer" : s.Name);
            if (s is RootCommand) break;
        }

        names.Reverse();
        return string.Join(' ', names);
    }

    /// <summary>The command tree: one <see cref="Command"/> per verb, each defined in Commands/.</summary>
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("Sharpformer: transformers and LLMs in pure C#.");
        root.Options.Add(Verbose);
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(ConvertCommand.Create());
        root.Subcommands.Add(InspectCommand.Create());
        root.Subcommands.Add(DownloadCommand.Create());
        root.Subcommands.Add(TokenizeCommand.Create());
        root.Subcommands.Add(GenerateCommand.Create());
        root.Subcommands.Add(ChatCommand.Create());
        root.Subcommands.Add(FillMaskCommand.Create());
        root.Subcommands.Add(EmbedCommand.Create());
        root.Subcommands.Add(SimilarityCommand.Create());
        root.Subcommands.Add(SearchCommand.Create());
        root.Subcommands.Add(ClassifyCommand.Create());
        root.Subcommands.Add(NerCommand.Create());
        root.Subcommands.Add(QaCommand.Create());
        root.Subcommands.Add(Text2TextCommand.Create(Sharpformer.Generation.Text2TextTask.Translation));
        root.Subcommands.Add(Text2TextCommand.Create(Sharpformer.Generation.Text2TextTask.Summarization));
        root.Subcommands.Add(BleuCommand.Create());
        root.Subcommands.Add(TrainCommand.Create());
        root.Subcommands.Add(TrainTokenizerCommand.Create());
        root.Subcommands.Add(EvaluateCommand.Create());
        root.Subcommands.Add(TourCommand.Create());
        root.Subcommands.Add(FinetuneCommand.Create());
        root.Subcommands.Add(ExplainCommand.Create());
        root.Subcommands.Add(ServeCommand.Create());
        return root;
    }
}
