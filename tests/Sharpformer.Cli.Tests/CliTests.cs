namespace Sharpformer.Cli.Tests;

[Collection("Console")]
public class CliTests
{
    [Fact]
    public void Help_ListsBenchVerb()
    {
        var output = new StringWriter();
        var previous = Console.Out;
        Console.SetOut(output);
        try
        {
            Assert.Equal(0, Program.Main(["--help"]));
        }
        finally
        {
            Console.SetOut(previous);
        }

        Assert.Contains("bench", output.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownVerb_FailsWithNonZeroExit()
    {
        var previousErr = Console.Error;
        Console.SetError(new StringWriter());
        try
        {
            Assert.NotEqual(0, Program.Main(["no-such-verb"]));
        }
        finally
        {
            Console.SetError(previousErr);
        }
    }
}
