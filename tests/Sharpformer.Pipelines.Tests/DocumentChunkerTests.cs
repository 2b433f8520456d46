namespace Sharpformer.Pipelines.Tests;

/// <summary>The chunking rule with a word-count tokenizer (one token per whitespace-separated word), so budgets are easy to state.</summary>
public class DocumentChunkerTests
{
    private static int Words(string text) => text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;

    private static string[] Texts(string text, IReadOnlyList<ChunkSpan> spans) => spans.Select(s => text[s.Start..s.End]).ToArray();

    [Fact]
    public void Chunk_ShortParagraphs_ShareAChunkUntilHalfTheBudget()
    {
        var text = "One two three.\n\nFour five.\n\nSix seven eight nine.\n\nEleven.";

        var spans = DocumentChunker.Chunk(text, Words, new ChunkingOptions { MaxTokens = 10, OverlapTokens = 0 });

        // 3 + 2 = 5 tokens is half the budget, so the third paragraph opens a new chunk; 4 is less than half, so 4 + 1 share one.
        Assert.Equal(["One two three.\n\nFour five.", "Six seven eight nine.\n\nEleven."], Texts(text, spans));
        Assert.Equal(new ChunkSpan(0, 26, 1, 3), spans[0]);
        Assert.Equal(5, spans[1].LineStart);
        Assert.Equal(7, spans[1].LineEnd);
    }

    [Fact]
    public void Chunk_LongParagraph_CutAtSentencesWithOverlap()
    {
        var text = "A b c. D e f. G h i. J k l. M n o.";

        var spans = DocumentChunker.Chunk(text, Words, new ChunkingOptions { MaxTokens = 9, OverlapTokens = 3 });

        // Three sentences of three fill a chunk; the next chunk repeats the last sentence (3 tokens of overlap).
        Assert.Equal(["A b c. D e f. G h i.", "G h i. J k l. M n o."], Texts(text, spans));
    }

    [Fact]
    public void Chunk_NoOverlapWhenCutAtAParagraph()
    {
        var text = "A b c d e.\n\nF g h i j.";

        var spans = DocumentChunker.Chunk(text, Words, new ChunkingOptions { MaxTokens = 8, OverlapTokens = 4 });

        Assert.Equal(["A b c d e.", "F g h i j."], Texts(text, spans));
    }

    [Fact]
    public void Chunk_SentenceLongerThanBudget_CutAtSpacesIntoExactSlices()
    {
        var text = "  w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11  \r\n";

        var spans = DocumentChunker.Chunk(text, Words, new ChunkingOptions { MaxTokens = 8, OverlapTokens = 0 });

        Assert.Equal(["w1 w2 w3 w4 w5 w6 w7 w8", "w9 w10 w11"], Texts(text, spans));
        Assert.All(spans, s => Assert.True(Words(text[s.Start..s.End]) <= 8));
    }

    [Fact]
    public void Chunk_EveryChunkFitsIsTrimmedAndCoversEveryWord()
    {
        var sentences = Enumerable.Range(0, 60).Select(i => string.Join(' ', Enumerable.Range(0, (i % 7) + 1).Select(j => $"s{i}w{j}")) + ".");
        var text = string.Join(" ", sentences.Take(20)) + "\n\n" + string.Join("\n", sentences.Skip(20).Take(20)) + "\n\n\n" + string.Join(" ", sentences.Skip(40));

        var spans = DocumentChunker.Chunk(text, Words, new ChunkingOptions { MaxTokens = 16, OverlapTokens = 4 });

        var covered = new HashSet<string>();
        foreach (var chunk in Texts(text, spans))
        {
            Assert.True(Words(chunk) <= 16, chunk);
            Assert.Equal(chunk.Trim(), chunk);
            covered.UnionWith(chunk.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
        }

        Assert.Equal(text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).ToHashSet(), covered);
        Assert.True(spans.Zip(spans.Skip(1)).All(p => p.First.Start < p.Second.Start), "chunks advance");
    }

    [Fact]
    public void Chunk_BlankText_NoChunks() =>
        Assert.Empty(DocumentChunker.Chunk(" \n\n\t ", Words, new ChunkingOptions()));

    [Theory]
    [InlineData(4, 0)]
    [InlineData(32, 17)]
    [InlineData(32, -1)]
    public void Chunk_BadOptions_SayWhichFlag(int max, int overlap)
    {
        var e = Assert.Throws<ArgumentException>(() => DocumentChunker.Chunk("text", Words, new ChunkingOptions { MaxTokens = max, OverlapTokens = overlap }));

        Assert.Matches("--chunk-tokens|--overlap-tokens", e.Message);
    }
}
