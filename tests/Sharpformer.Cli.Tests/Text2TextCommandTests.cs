using System.Text.Json;
using Sharpformer.Cli.Commands;
using Sharpformer.Generation;
using Sharpformer.Models;
using Sharpformer.Models.Seq2Seq;
using Sharpformer.Text;

namespace Sharpformer.Cli.Tests;

/// <summary>
/// <c>translate</c> and <c>summarize</c> over a small random original Transformer saved as a model folder with the
/// byte-level tokenizer of tests/fixtures/gpt2_tiny (257 ids, model_max_length 48): output equals the pipeline's,
/// JSON keys as HF's, streaming of one text, truncation note vs --no-truncate, bad flags.
/// </summary>
public class Text2TextCommandTests
{
    private static readonly Lazy<string> Folder = new(() =>
    {
        string dir = Path.Combine(AppContext.BaseDirectory, "t2t-model-" + Guid.NewGuid().ToString("N"));
        var config = new TransformerConfig
        {
            VocabSize = 257,
            DModel = 16,
            EncoderLayers = 1,
            DecoderLayers = 1,
            NumAttentionHeads = 2,
            FfnDim = 32,
            MaxPositionEmbeddings = 64,
            PadTokenId = 256,
            BosTokenId = 256,
            EosTokenId = 256,
            DecoderStartTokenId = 256,
            InitStd = 0.3f,
        };
        TransformerForConditionalGeneration.FromConfig(config, seed: 3).SavePretrained(dir);
        string fixture = Path.Combine(RepoRoot(), "tests", "fixtures", "gpt2_tiny");
        foreach (var name in new[] { "vocab.json", "merges.txt", "tokenizer_config.json" })
        {
            File.Copy(Path.Combine(fixture, name), Path.Combine(dir, name), overwrite: true);
        }

        return dir;
    });

    private static (int Exit, string Out, string Err) Run(Text2TextTask task, string[] texts, Text2TextCommand.Flags flags)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = Text2TextCommand.RunAsync(task, texts, Folder.Value, flags, null, output, error, CancellationToken.None).GetAwaiter().GetResult();
        return (exit, output.ToString(), error.ToString());
    }

    private static Text2TextGenerationPipeline Pipeline() =>
        new(AutoModelForSeq2SeqLM.FromPretrained(Folder.Value), AutoTokenizer.FromPretrained(Folder.Value), Text2TextTask.Translation);

    [Fact]
    public void Translate_Batch_PrintsOneLinePerTextAsThePipeline()
    {
        string[] texts = ["Guten Tag", "Wo ist der Bahnhof?"];
        var (exit, output, error) = Run(Text2TextTask.Translation, texts, new Text2TextCommand.Flags(null, 10, null, null, null, false, false));
        Assert.True(exit == 0, error);
        var expected = Pipeline().Run(texts, new GenerationOptions { MaxNewTokens = 9 });
        Assert.Equal(string.Concat(expected.Select(r => r[0].Text.ReplaceLineEndings(" ") + Environment.NewLine)), output);
    }

    [Fact]
    public void Translate_OneText_StreamsTheSameText()
    {
        var (exit, output, _) = Run(Text2TextTask.Translation, ["Guten Tag"], new Text2TextCommand.Flags(null, 12, null, null, null, false, false));
        Assert.Equal(0, exit);
        Assert.Equal(Pipeline().Run("Guten Tag", new GenerationOptions { MaxNewTokens = 11 }) + Environment.NewLine, output);
    }

    [Theory]
    [InlineData(Text2TextTask.Translation, "translation_text")]
    [InlineData(Text2TextTask.Summarization, "summary_text")]
    public void Json_UsesHfResultKeys(Text2TextTask task, string key)
    {
        var (exit, output, error) = Run(task, ["eins", "zwei"], new Text2TextCommand.Flags(2, 6, 3, 1.5f, 2, false, true));
        Assert.True(exit == 0, error);
        var rows = JsonDocument.Parse(output).RootElement.EnumerateArray().ToList();
        Assert.Equal(2, rows.Count);
        Assert.All(rows, r => Assert.Equal(JsonValueKind.String, r.GetProperty(key).ValueKind));
    }

    [Fact]
    public void LongSource_NoteByDefault_ErrorWithNoTruncate()
    {
        string longText = string.Concat(Enumerable.Repeat("abcdefgh ", 8)); // 72 byte tokens > model_max_length 48
        var (exit, _, error) = Run(Text2TextTask.Translation, [longText], new Text2TextCommand.Flags(null, 4, null, null, null, false, false));
        Assert.Equal(0, exit);
        Assert.Contains("note: translate:", error, StringComparison.Ordinal);

        var (strictExit, _, strictError) = Run(Text2TextTask.Translation, [longText], new Text2TextCommand.Flags(null, 4, null, null, null, true, false));
        Assert.Equal(2, strictExit);
        Assert.Contains("at most 48", strictError, StringComparison.Ordinal);
    }

    [Fact]
    public void ParsedArguments_BeamSearch_Runs_AndBadFlagsAreUsageErrors()
    {
        var writer = new StringWriter();
        var parse = Program.BuildRoot().Parse(["translate", "Hallo Welt", "--model", Folder.Value, "--beams", "3", "--max-length", "8", "--no-repeat-ngram", "2"]);
        parse.InvocationConfiguration.Output = writer;
        Assert.Equal(0, parse.Invoke());
        Assert.EndsWith(Environment.NewLine, writer.ToString(), StringComparison.Ordinal);

        var (exit, _, error) = Run(Text2TextTask.Translation, ["x"], new Text2TextCommand.Flags(null, 1, null, null, null, false, false));
        Assert.Equal(2, exit);
        Assert.Contains("--max-length", error, StringComparison.Ordinal);
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

        throw new DirectoryNotFoundException("Sharpformer.slnx not found above the test folder.");
    }

    [Fact]
    public void Translate_CrossAttention_WritesThePictureAndStillPrintsTheTranslation()
    {
        string picture = Path.Combine(AppContext.BaseDirectory, "xattn-" + Guid.NewGuid().ToString("N") + ".png");
        var (exit, output, error) = Run(Text2TextTask.Translation, ["Guten Tag"], new Text2TextCommand.Flags(null, 8, null, null, null, false, false, CrossAttention: picture));
        Assert.True(exit == 0, error);
        Assert.Equal(Pipeline().Run("Guten Tag", new GenerationOptions { MaxNewTokens = 7 }), output.TrimEnd('\n'));
        var bytes = File.ReadAllBytes(picture);
        Assert.True(bytes.Length > 1000 && bytes[1] == (byte)'P' && bytes[2] == (byte)'N' && bytes[3] == (byte)'G', "a PNG file");
        Assert.Contains(picture, error, StringComparison.Ordinal);
    }
}
