using System.Text.Json;
using Sharpformer.Models.Llama;

namespace Sharpformer.Cli.Tests;

/// <summary>
/// <c>generate --kv-cache f16|f32</c> end to end on the command line: the tiny PyTorch Llama as an F32 GGUF file gives the
/// PyTorch greedy continuation of the fixture's first prompt with either cache type, and a type the option does not know
/// is refused by name.
/// </summary>
[Collection("Console")]
public class GenerateKvCacheTests
{
    [Theory]
    [InlineData("f16")]
    [InlineData("f32")]
    public void Generate_KvCacheOption_GivesThePyTorchGreedyText(string cache)
    {
        var path = GenerateGgufTests.MakeGguf();
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(GenerateGgufTests.Fixture, "expected.json")));
            var prompt = doc.RootElement.GetProperty("prompts")[0].EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var greedy = doc.RootElement.GetProperty("greedy")[0].EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var (_, tokenizer) = LlamaGguf.Load(path);
            string text = string.Concat(prompt.Select(id => tokenizer.IdToToken(id)));

            var (code, stdout, stderr) = ConsoleCli.Invoke(["generate", text, "--model", path, "--max-new-tokens", greedy.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), "--kv-cache", cache]);
            Assert.True(code == 0, stderr);
            Assert.Equal(text + tokenizer.Decode(greedy) + Environment.NewLine, stdout);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Generate_UnknownKvCacheType_IsRefusedNamingTheChoices()
    {
        var (code, _, stderr) = ConsoleCli.Invoke(["generate", "Hello", "--model", "no-such-folder", "--kv-cache", "f8"]);
        Assert.NotEqual(0, code);
        Assert.Contains("f8", stderr, StringComparison.Ordinal);
        Assert.Contains("f16", stderr, StringComparison.Ordinal);
    }
}
