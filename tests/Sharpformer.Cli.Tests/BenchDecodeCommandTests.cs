using Sharpformer.Cli.Commands;

namespace Sharpformer.Cli.Tests;

public sealed class BenchDecodeCommandTests
{
    [Fact]
    public void HarnessArguments_Random124M_ForwardsEveryOption()
    {
        var args = BenchDecodeCommand.HarnessArguments(null, true, "f16", 3, 32, 16, 4);
        Assert.Equal(["decode", "--random-124m", "--dtype", "f16", "--threads", "3", "--prompt-tokens", "32", "--new-tokens", "16", "--batch", "4"], args);
    }

    [Fact]
    public void HarnessArguments_ModelFolder_MadeAbsolute()
    {
        var args = BenchDecodeCommand.HarnessArguments("some/gpt2", false, "both", 2, 128, 64, 8);
        Assert.Equal(Path.GetFullPath("some/gpt2"), args[2]);
    }

    [Theory]
    [InlineData(null, false)]
    [InlineData("gpt2", true)]
    public void HarnessArguments_NotExactlyOneModelSource_Throws(string? model, bool random)
    {
        var ex = Assert.Throws<ArgumentException>(() => BenchDecodeCommand.HarnessArguments(model, random, "f32", 2, 8, 8, 8));
        Assert.Contains("--random-124m", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HarnessArguments_Llama_NeedsNoModelAndForwardsSamples()
    {
        var args = BenchDecodeCommand.HarnessArguments(null, false, "q4_k", 2, 32, 16, 8, "llama", 3);
        Assert.Equal(["decode", "--arch", "llama", "--dtype", "q4_k", "--threads", "2", "--prompt-tokens", "32", "--new-tokens", "16", "--batch", "8", "--samples", "3"], args);
    }

    [Theory]
    [InlineData("gpt2", false)]
    [InlineData(null, true)]
    public void HarnessArguments_LlamaWithAModelSource_Throws(string? model, bool random)
    {
        var ex = Assert.Throws<ArgumentException>(() => BenchDecodeCommand.HarnessArguments(model, random, "f16", 2, 8, 8, 8, "llama"));
        Assert.Contains("--arch llama", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HarnessArguments_ZeroSamples_Throws()
    {
        var ex = Assert.Throws<ArgumentException>(() => BenchDecodeCommand.HarnessArguments(null, true, "f32", 2, 8, 8, 8, "gpt2", 0));
        Assert.Contains("--samples", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HarnessArguments_ZeroNewTokens_Throws()
    {
        var ex = Assert.Throws<ArgumentException>(() => BenchDecodeCommand.HarnessArguments(null, true, "f32", 2, 8, 0, 8));
        Assert.Contains("--new-tokens", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CliProjects_DoNotReferenceThePeer()
    {
        // The peer engines stay out of src/: only the benchmark harness and test projects may name LLamaSharp.
        var project = BenchEncoderCommand.FindPeersProject();
        Assert.NotNull(project);
        var root = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(project)!, "..", ".."));
        var sources = Directory.GetFiles(Path.Combine(root, "src"), "*.csproj", SearchOption.AllDirectories);
        Assert.NotEmpty(sources);
        foreach (var source in sources)
        {
            Assert.DoesNotContain("LLamaSharp", File.ReadAllText(source), StringComparison.OrdinalIgnoreCase);
        }

        Assert.Contains("LLamaSharp", File.ReadAllText(project), StringComparison.Ordinal);
    }
}
