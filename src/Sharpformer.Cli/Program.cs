using System.CommandLine;
using Sharpformer.Cli.Commands;

namespace Sharpformer.Cli;

/// <summary>Entry point of the <c>sharpformer</c> command.</summary>
public static class Program
{
    /// <summary>Parses <paramref name="args"/> and runs the chosen verb; returns the process exit code.</summary>
    public static int Main(string[] args) => BuildRoot().Parse(args).Invoke();

    /// <summary>The command tree: one <see cref="Command"/> per verb, each defined in Commands/.</summary>
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("Sharpformer: transformers and LLMs in pure C#.");
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(ConvertCommand.Create());
        root.Subcommands.Add(InspectCommand.Create());
        root.Subcommands.Add(DownloadCommand.Create());
        root.Subcommands.Add(TokenizeCommand.Create());
        root.Subcommands.Add(GenerateCommand.Create());
        root.Subcommands.Add(FillMaskCommand.Create());
        root.Subcommands.Add(EmbedCommand.Create());
        root.Subcommands.Add(SimilarityCommand.Create());
        root.Subcommands.Add(TrainCommand.Create());
        root.Subcommands.Add(ServeCommand.Create());
        return root;
    }
}
