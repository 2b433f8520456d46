using System.Text.Json;
using Sharpformer.Cli.Commands;
using Sharpformer.Generation;
using Sharpformer.IO.Hub;
using Sharpformer.Tensors;
using Sharpformer.Text;

namespace Sharpformer.Cli.Tests;

public class GenerateCommandTests
{
    // The PyTorch tiny GPT-2 (tests/fixtures/gpt2_tiny: vocabulary = 256 bytes + <|endoftext|>) with its byte-level
    // tokenizer files (same vocabulary, no merges; make_tokenizer.py there).
    internal static readonly Lazy<string> ModelFolder = new(() =>
    {
        var fixture = Path.Combine(RepoRoot(), "tests", "fixtures", "gpt2_tiny");
        var dir = Path.Combine(AppContext.BaseDirectory, "generate-tiny-gpt2");
        Directory.CreateDirectory(dir);
        foreach (var name in new[] { "config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer_config.json" })
        {
            File.Copy(Path.Combine(fixture, name), Path.Combine(dir, name), overwrite: true);
        }

        return dir;
    });

    private static int[] Greedy(int prompt)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoRoot(), "tests", "fixtures", "gpt2_tiny", "expected.json")));
        return [.. doc.RootElement.GetProperty("greedy")[prompt].EnumerateArray().Select(e => e.GetInt32())];
    }

    private static (int Exit, string Out, string Err) Run(string prompt, string model, GenerationOptions options, HubOptions? hub = null, DType dtype = DType.F32)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = GenerateCommand.RunAsync(prompt, model, options, output, error, CancellationToken.None, hub, dtype).GetAwaiter().GetResult();
        return (exit, output.ToString(), error.ToString());
    }

    [Fact]
    public void Generate_LocalTinyGpt2_PrintsPromptAndPyTorchGreedyText()
    {
        var (exit, output, error) = Run("The cat ", ModelFolder.Value, new GenerationOptions { MaxNewTokens = 12 });

        Assert.Equal(0, exit);
        Assert.Equal("", error);
        var tokenizer = AutoTokenizer.FromPretrained(ModelFolder.Value);
        Assert.Equal("The cat " + tokenizer.Decode(Greedy(1)[..12]) + Environment.NewLine, output);
    }

    [Fact]
    public void Generate_ParsedArguments_SameTextAsDirectRun()
    {
        var writer = new StringWriter();
        var root = Program.BuildRoot();
        var parse = root.Parse(["generate", "The cat ", "--model", ModelFolder.Value, "--max-new-tokens", "6", "--seed", "4", "--top-k", "5"]);
        parse.InvocationConfiguration.Output = writer;
        Assert.Equal(0, parse.Invoke());

        var direct = Run("The cat ", ModelFolder.Value, new GenerationOptions { MaxNewTokens = 6, DoSample = true, Seed = 4, TopK = 5 });
        Assert.Equal(direct.Out, writer.ToString());
    }

    [Fact]
    public void Generate_F16Weights_StillPrintsPyTorchGreedyText()
    {
        // fp16 matrices move this fixture's logits by ≤ 7.3e-3 (Generation.Tests' tolerance note): not enough to change 12 greedy tokens.
        var (exit, output, error) = Run("The cat ", ModelFolder.Value, new GenerationOptions { MaxNewTokens = 12 }, dtype: DType.F16);

        Assert.Equal(0, exit);
        Assert.Equal("", error);
        var tokenizer = AutoTokenizer.FromPretrained(ModelFolder.Value);
        Assert.Equal("The cat " + tokenizer.Decode(Greedy(1)[..12]) + Environment.NewLine, output);
    }

    [Theory]
    [InlineData("f16", DType.F16)]
    [InlineData("bf16", DType.BF16)]
    [InlineData("f32", DType.F32)]
    public void Generate_ParsedDtype_SameTextAsDirectRun(string option, DType dtype)
    {
        var writer = new StringWriter();
        var parse = Program.BuildRoot().Parse(["generate", "The cat ", "--model", ModelFolder.Value, "--max-new-tokens", "8", "--seed", "3", "--dtype", option]);
        parse.InvocationConfiguration.Output = writer;
        Assert.Equal(0, parse.Invoke());

        var direct = Run("The cat ", ModelFolder.Value, new GenerationOptions { MaxNewTokens = 8, DoSample = true, Seed = 3 }, dtype: dtype);
        Assert.Equal(direct.Out, writer.ToString());
    }

    [Fact]
    public void Generate_UnknownDtype_RejectedNamingTheValue()
    {
        var error = new StringWriter();
        var parse = Program.BuildRoot().Parse(["generate", "x", "--model", ModelFolder.Value, "--dtype", "f64"]);
        parse.InvocationConfiguration.Output = new StringWriter();
        parse.InvocationConfiguration.Error = error;

        Assert.NotEqual(0, parse.Invoke());
        Assert.Contains("f64", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Generate_Help_ListsDtypeChoices()
    {
        var output = new StringWriter();
        var parse = Program.BuildRoot().Parse(["generate", "--help"]);
        parse.InvocationConfiguration.Output = output;
        Assert.Equal(0, parse.Invoke());

        Assert.Contains("--dtype", output.ToString(), StringComparison.Ordinal);
        Assert.Contains("bf16", output.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Generate_InvalidTopP_ExitCode2AndNamesTheOption()
    {
        var (exit, _, error) = Run("x", ModelFolder.Value, new GenerationOptions { DoSample = true, TopP = 2f });

        Assert.Equal(2, exit);
        Assert.Contains("TopP", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Generate_PastTheContext_ErrorBeforeAnyOutput()
    {
        var (exit, output, error) = Run("Hi", ModelFolder.Value, new GenerationOptions { MaxNewTokens = 100 });

        Assert.Equal(2, exit);
        Assert.Equal("", output);
        Assert.Contains("MaxNewTokens to at most 46", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Generate_OfflineAndNotCached_OneLineErrorSuggestsModelFolder()
    {
        var cache = Path.Combine(AppContext.BaseDirectory, "empty-hub-cache-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(cache);
        var (exit, _, error) = Run("x", "gpt2", new GenerationOptions(), new HubOptions { Offline = true, CacheDir = cache });

        Assert.Equal(1, exit);
        Assert.Contains("--model <folder>", error, StringComparison.Ordinal);
        Assert.Single(error.Trim().Split('\n'));
    }

    internal static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Sharpformer.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"Cannot find the repository root (Sharpformer.slnx) above {AppContext.BaseDirectory}.");
    }
}
