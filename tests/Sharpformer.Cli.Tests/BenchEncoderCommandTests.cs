using Sharpformer.Cli.Commands;

namespace Sharpformer.Cli.Tests;

public class BenchEncoderCommandTests
{
    [Fact]
    public void FindPeersProject_InsideRepository_FindsBenchmarkProject()
    {
        string? project = BenchEncoderCommand.FindPeersProject();
        Assert.NotNull(project);
        Assert.True(File.Exists(project));
        Assert.EndsWith("Sharpformer.Bench.Peers.csproj", project, StringComparison.Ordinal);
    }

    [Fact]
    public void BenchEncoder_WithoutModel_FailsParsingNamingTheOption()
    {
        var result = Program.BuildRoot().Parse(["bench", "encoder", "--onnx", "model.onnx"]);
        Assert.Contains(result.Errors, e => e.Message.Contains("--model", StringComparison.Ordinal));
    }
}
