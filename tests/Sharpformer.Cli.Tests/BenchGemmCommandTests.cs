using System.Text.Json;
using System.Text.RegularExpressions;

namespace Sharpformer.Cli.Tests;

// Console.Out is process-wide: every test that redirects it shares one collection, so they never run concurrently.
[Collection("Console")]
public partial class BenchGemmCommandTests
{
    private static (int Exit, string Output, string Error) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        TextWriter previousOut = Console.Out, previousError = Console.Error;
        Console.SetOut(output);
        Console.SetError(error);
        try
        {
            return (Program.Main(args), output.ToString(), error.ToString());
        }
        finally
        {
            Console.SetOut(previousOut);
            Console.SetError(previousError);
        }
    }

    [GeneratedRegex(@"^FMA peak \(Vector\d+, 16 accumulators\): 1 thread \d+\.\d GFLOP/s, 2 threads \d+\.\d GFLOP/s$", RegexOptions.Multiline)]
    private static partial Regex PeakLine();

    [GeneratedRegex(@"^(?<shape>\S+)\s+(?<layout>A·B.*?)\s+\d+\.\d \(\d+\.\d\)\s+\d+\.\d %\s+\d+\.\d \(\d+\.\d\)\s+\d+\.\d %$", RegexOptions.Multiline)]
    private static partial Regex ResultRow();

    [Fact]
    public void BenchGemm_QuickShapes_PrintsPeakAndOneRowPerShapeAndLayout()
    {
        var (exit, output, error) = Run("bench", "gemm", "--quick", "--repeat", "2", "--threads", "2", "--shapes", "16x32x48t,20x8x40");
        Assert.True(exit == 0, error);
        Assert.Matches(PeakLine(), output);
        Assert.Contains("Linear layout (B stored [N, K], C = A·Bᵀ)", output, StringComparison.Ordinal);
        var rows = ResultRow().Matches(output).Select(m => (m.Groups["shape"].Value, m.Groups["layout"].Value.Trim())).ToList();
        Assert.Equal([("16×32×48", "A·Bᵀ"), ("16×32×48", "A·Bᵀ, B packed once"), ("20×8×40", "A·B")], rows);
    }

    [Fact]
    public void BenchGemm_Json_HasPeakAndFractions()
    {
        var (exit, output, error) = Run("bench", "gemm", "--quick", "--repeat", "1", "--json", "--shapes", "8x8x8");
        Assert.True(exit == 0, error);
        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement root = doc.RootElement;
        Assert.True(root.GetProperty("peak").GetProperty("gflops1").GetDouble() > 0);
        JsonElement shape = Assert.Single(root.GetProperty("shapes").EnumerateArray());
        Assert.Equal("8×8×8", shape.GetProperty("shape").GetString());
        Assert.True(shape.GetProperty("fraction1").GetDouble() > 0);
        Assert.True(shape.GetProperty("fractionAll").GetDouble() > 0);
    }

    [Fact]
    public void BenchGemm_BadShape_FailsWithHint()
    {
        var (exit, _, error) = Run("bench", "gemm", "--quick", "--shapes", "12x0x4");
        Assert.NotEqual(0, exit);
        Assert.Contains("M×K×N", error, StringComparison.Ordinal);
    }
}
