namespace Sharpformer.Cli.Tests;

/// <summary>Runs <see cref="Program.Main"/> in process with stdout and stderr captured (tests in the "Console" collection).</summary>
internal static class ConsoleCli
{
    /// <summary>Runs the command line <paramref name="args"/>; returns its exit code and what it wrote.</summary>
    public static (int Code, string Stdout, string Stderr) Invoke(string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var previousOut = Console.Out;
        var previousErr = Console.Error;
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try
        {
            int code = Program.Main(args);
            return (code, stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetOut(previousOut);
            Console.SetError(previousErr);
        }
    }
}
