using System.CommandLine;
using System.Text.Json;

namespace Sharpformer.Cli.Tests;

/// <summary>
/// The embed verb's sentence-transformers options (<c>--prompt-name</c>) on tests/fixtures/sentence_transformers, and
/// <c>--dtype</c> on the encoder verbs.
/// </summary>
public sealed class EncoderOptionsCommandTests : IDisposable
{
    private static readonly string Fixtures = Path.Combine(AppContext.BaseDirectory, "fixtures");
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"sharpformer-cli-st-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = Program.BuildRoot().Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }

    private string Assemble(string variant)
    {
        var folder = Path.Combine(_dir, variant);
        foreach (var from in new[] { Path.Combine(Fixtures, "sentence_transformers", "model"), Path.Combine(Fixtures, "sentence_transformers", "variants", variant) })
        {
            foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
            {
                var target = Path.Combine(folder, Path.GetRelativePath(from, file));
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.Copy(file, target);
            }
        }

        return folder;
    }

    [Fact]
    public void Embed_PromptName_MatchesSentenceTransformersWithThatPrompt()
    {
        using var expected = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures, "sentence_transformers", "expected.json")));
        var variant = expected.RootElement.GetProperty("variants").GetProperty("prompt_excluded");
        var text = variant.GetProperty("texts")[0].GetString()!;
        var embedding = variant.GetProperty("embeddings")[0].EnumerateArray().Select(v => v.GetSingle()).ToArray();

        var (exit, output, error) = Run("embed", text, "--model", Assemble("prompt_excluded"), "--prompt-name", "query", "--json");

        Assert.True(exit == 0, error);
        using var doc = JsonDocument.Parse(output);
        var ours = doc.RootElement.GetProperty("data")[0].GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray();
        Assert.Equal(embedding.Length, ours.Length);
        for (int j = 0; j < ours.Length; j++) Assert.Equal(embedding[j], ours[j], 1e-5f);
    }

    [Fact]
    public void Embed_UnknownPromptName_IsAUsageErrorListingThePrompts()
    {
        var (exit, _, error) = Run("embed", "red", "--model", Assemble("prompt_included"), "--prompt-name", "document");

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("'query', 'passage'", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("bf16")]
    [InlineData("int8")]
    public void FillMask_Dtype_KeepsTheF32TopOne(string dtype)
    {
        var folder = Path.Combine(Fixtures, "distilbert_mlm");
        var (exit32, out32, err32) = Run("fill-mask", "the heart is a [MASK] organ.", "--model", folder, "--top-k", "1", "--json");
        var (exit, output, error) = Run("fill-mask", "the heart is a [MASK] organ.", "--model", folder, "--top-k", "1", "--json", "--dtype", dtype);

        Assert.True(exit32 == 0 && exit == 0, err32 + error);
        using var f32 = JsonDocument.Parse(out32);
        using var narrow = JsonDocument.Parse(output);
        Assert.Equal(f32.RootElement[0].GetProperty("token").GetInt32(), narrow.RootElement[0].GetProperty("token").GetInt32());
    }

    [Fact]
    public void Embed_UnknownDtype_IsRejectedByTheParser()
    {
        var (exit, _, error) = Run("embed", "red", "--dtype", "fp8");

        Assert.NotEqual(0, exit);
        Assert.Contains("fp8", error, StringComparison.Ordinal);
    }
}
