using System.Text;
using Sharpformer.Text;

namespace Sharpformer.Generation.Tests;

public class StreamingTests
{
    private const string Tricky = "Hi 😀 — 世界の猫 naïve 🎉🇫🇷 done.";

    private static readonly UTF8Encoding Strict = new(false, throwOnInvalidBytes: true);

    private static async Task<List<string>> Collect(IAsyncEnumerable<string> pieces)
    {
        var list = new List<string>();
        await foreach (var piece in pieces)
        {
            list.Add(piece);
        }

        return list;
    }

    private static void AssertWholeCharacters(IEnumerable<string> pieces)
    {
        foreach (var piece in pieces)
        {
            Assert.DoesNotContain('\uFFFD', piece);
            Strict.GetBytes(piece); // throws on a lone surrogate (half a character)
        }
    }

    [Fact]
    public async Task GenerateStreamingAsync_RealGpt2Bpe_PiecesAreWholeCharactersAndConcatenateToDecode()
    {
        var tokenizer = Gpt2Tokenizer.Instance;
        var ids = tokenizer.Encode(Tricky).Ids.ToArray();
        // GPT-2 splits these emoji / CJK characters across tokens: some token alone is not valid UTF-8.
        Assert.Contains(ids, id => tokenizer.Decode([id]).Contains('\uFFFD', StringComparison.Ordinal));
        int eos = tokenizer.TokenToId("<|endoftext|>")!.Value;
        var model = new ScriptedModel([.. ids, eos], tokenizer.VocabularySize);

        var pieces = await Collect(new TextGenerator(model).GenerateStreamingAsync(tokenizer, "x", new GenerationOptions { MaxNewTokens = 100 }));

        AssertWholeCharacters(pieces);
        Assert.Equal(Tricky, string.Concat(pieces));
        Assert.True(pieces.Count < ids.Length, "split characters must be held back, so fewer pieces than tokens");
    }

    [Fact]
    public async Task StreamUpdatesAsync_CountsTokens_EndsWithTheReason_AndConcatenatesToTheStream()
    {
        var tokenizer = Gpt2Tokenizer.Instance;
        var ids = tokenizer.Encode(Tricky).Ids.ToArray();
        int eos = tokenizer.TokenToId("<|endoftext|>")!.Value;
        var model = new ScriptedModel([.. ids, eos], tokenizer.VocabularySize);
        var generator = new TextGenerator(model);
        var options = new GenerationOptions { MaxNewTokens = 100 };

        var updates = new List<GenerationUpdate>();
        await foreach (var update in generator.StreamUpdatesAsync(tokenizer, "x y", options))
        {
            updates.Add(update);
        }

        // One update per generated token (the EOS included), the reason only on the last.
        Assert.Equal(ids.Length + 1, updates.Count);
        Assert.Equal(Enumerable.Range(1, ids.Length + 1), updates.Select(u => u.GeneratedTokens));
        Assert.All(updates, u => Assert.Equal(tokenizer.Encode("x y").Ids.Count, u.PromptTokens));
        Assert.All(updates.SkipLast(1), u => Assert.Null(u.Reason));
        Assert.Equal(FinishReason.StopToken, updates[^1].Reason);
        Assert.Equal(Tricky, string.Concat(updates.Select(u => u.Text)));
        Assert.Equal(string.Concat(await Collect(generator.GenerateStreamingAsync(tokenizer, "x y", options))), string.Concat(updates.Select(u => u.Text)));

        // A length stop: MaxNewTokens updates, the last one says Length.
        var cut = new List<GenerationUpdate>();
        await foreach (var update in generator.StreamUpdatesAsync(tokenizer, "x y", options with { MaxNewTokens = 3 }))
        {
            cut.Add(update);
        }

        Assert.Equal(3, cut.Count);
        Assert.Equal(FinishReason.Length, cut[^1].Reason);
    }

    [Fact]
    public void Push_ByteTokens_HoldsPartialCharacters()
    {
        var tokenizer = ByteTokenizer();
        var text = new StreamingDetokenizer(tokenizer);
        var bytes = Encoding.UTF8.GetBytes("a😀");
        Assert.Equal("a", text.Push(bytes[0]));
        Assert.Equal("", text.Push(bytes[1]));
        Assert.Equal("", text.Push(bytes[2]));
        Assert.Equal("", text.Push(bytes[3]));
        Assert.Equal("😀", text.Push(bytes[4]));
    }

    [Fact]
    public async Task GenerateStreamingAsync_StopSequenceAcrossTokens_TrimmedAndStops()
    {
        var tokenizer = Gpt2Tokenizer.Instance;
        var ids = tokenizer.Encode("Answer: 42\n\nQuestion: next").Ids.ToArray();
        var model = new ScriptedModel(ids, tokenizer.VocabularySize);
        var options = new GenerationOptions { MaxNewTokens = 50, StopSequences = ["\n\nQuest"] };

        var pieces = await Collect(new TextGenerator(model).GenerateStreamingAsync(tokenizer, "x", options));
        string whole = new TextGenerator(model).Generate(tokenizer, "x", options);

        Assert.Equal("Answer: 42", string.Concat(pieces));
        Assert.Equal("Answer: 42", whole);
    }

    [Fact]
    public async Task GenerateStreamingAsync_TinyGpt2_EqualsGenerate()
    {
        var tokenizer = ByteTokenizer();
        var model = Fixture.LoadModel();
        var options = new GenerationOptions { MaxNewTokens = 20, DoSample = true, Seed = 3, TopK = 0 };
        var pieces = await Collect(new TextGenerator(model).GenerateStreamingAsync(tokenizer, "The cat ", options));
        string whole = new TextGenerator(model).Generate(tokenizer, "The cat ", options);
        Assert.Equal(whole, string.Concat(pieces));
    }

    [Fact]
    public void Generate_EmptyPrompt_StartsFromBos()
    {
        // The fixture's BOS is <|endoftext|> = 256; the continuation must be the model's greedy one after it.
        var tokenizer = ByteTokenizer();
        var model = Fixture.LoadModel();
        var expected = new TextGenerator(model).Generate([256], new GenerationOptions { MaxNewTokens = 8, StopTokenIds = [256] });
        string text = new TextGenerator(model).Generate(tokenizer, "", new GenerationOptions { MaxNewTokens = 8 });
        Assert.Equal(tokenizer.Decode(expected.Tokens), text);
    }

    [Fact]
    public async Task GenerateStreamingAsync_Cancelled_Throws()
    {
        var tokenizer = Gpt2Tokenizer.Instance;
        var model = new ScriptedModel(tokenizer.Encode("one two three four five six").Ids.ToArray(), tokenizer.VocabularySize);
        using var cts = new CancellationTokenSource();
        var seen = new List<string>();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var piece in new TextGenerator(model).GenerateStreamingAsync(tokenizer, "x", new GenerationOptions { MaxNewTokens = 50 }, cts.Token))
            {
                seen.Add(piece);
                await cts.CancelAsync();
            }
        });
        Assert.Single(seen);
    }

    [Fact]
    public void Pipeline_BatchOfPrompts_EachEqualsItsOwnRun()
    {
        var tokenizer = ByteTokenizer();
        var pipeline = new TextGenerationPipeline(Fixture.LoadModel(), tokenizer);
        var options = new GenerationOptions { MaxNewTokens = 12 };
        var batch = pipeline.Run(["Hello", "The cat "], options);
        Assert.Equal(pipeline.Run(["Hello"], options)[0], batch[0]);
        Assert.Equal(pipeline.Run(["The cat "], options)[0], batch[1]);
        var greedy = Fixture.Ints(Fixture.Expected.GetProperty("greedy")[1]);
        Assert.Equal(tokenizer.Decode(greedy[..12]), batch[1]);
    }

    private static TextTokenizer ByteTokenizer() =>
        AutoTokenizer.FromPretrained(Fixture.ByteTokenizerFolder(Path.Combine(AppContext.BaseDirectory, "byte-" + Guid.NewGuid().ToString("N"))));
}
