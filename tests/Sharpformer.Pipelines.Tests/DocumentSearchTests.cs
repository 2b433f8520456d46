using Sharpformer.IO.Hub;

namespace Sharpformer.Pipelines.Tests;

/// <summary>DocumentSearch over small folders with the real all-MiniLM-L6-v2 (converted from its NuGet package).</summary>
public sealed class DocumentSearchTests(MiniLmFolder model) : IClassFixture<MiniLmFolder>, IDisposable
{
    private readonly string _docs = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"sharpformer-search-{Guid.NewGuid():N}")).FullName;

    private static readonly Dictionary<string, string> Corpus = new()
    {
        ["cardiology/heart.txt"] = "Angina is chest pain caused by reduced blood flow to the heart muscle.\n\nA heart attack happens when an artery to the heart is blocked.\n",
        ["fruit.md"] = "# Orchard\n\nApples and pears grow on trees in the orchard.\n\nThey are picked in autumn.\n",
        ["sport.txt"] = "The football match ended in a draw after extra time.\n",
        ["cooking.txt"] = "Knead the dough, let it rise for an hour, then bake the bread.\n",
    };

    public void Dispose() => Directory.Delete(_docs, recursive: true);

    private static PipelineOptions Offline() => new()
    {
        Hub = new HubOptions { Offline = true, CacheDir = Path.Combine(Path.GetTempPath(), $"sharpformer-empty-cache-{Guid.NewGuid():N}") },
    };

    private void Write(string file, string text)
    {
        var path = Path.Combine(_docs, file);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
    }

    private void WriteCorpus()
    {
        foreach (var (file, text) in Corpus) Write(file, text);
    }

    private Task<DocumentSearch> OpenAsync() => DocumentSearch.FromPretrainedAsync(model.Folder, options: Offline());

    [Fact]
    public async Task Search_FindsTheRightDocumentAmongDistractors_WithFileLineAndPassage()
    {
        WriteCorpus();
        var search = await OpenAsync();
        var index = search.BuildIndex(_docs);

        var hits = search.Search(index, "pain in the chest", topK: 2);

        Assert.Equal(2, hits.Count);
        Assert.Equal("cardiology/heart.txt", hits[0].Chunk.File);
        Assert.Equal(1, hits[0].Rank);
        Assert.Equal(1, hits[0].Chunk.LineStart);
        Assert.Equal(3, hits[0].Chunk.LineEnd);
        Assert.Equal(Corpus["cardiology/heart.txt"].Trim(), hits[0].Chunk.Text);
        Assert.True(hits[0].Score > hits[1].Score, $"{hits[0].Score} vs {hits[1].Score}");
        Assert.Equal("fruit.md", search.Search(index, "where do apples come from", 1)[0].Chunk.File);
        Assert.Equal("cooking.txt", search.Search(index, "how to make a loaf", 1)[0].Chunk.File);
    }

    [Fact]
    public async Task Search_ScoresEqualCosineOfThePipelinesOwnEmbeddings()
    {
        WriteCorpus();
        var search = await OpenAsync();
        var index = search.BuildIndex(_docs);
        const string query = "a sweet fruit";

        var hits = search.Search(index, query, topK: 10);

        Assert.Equal(index.Chunks.Count, hits.Count);
        var q = search.Pipeline.Embed(query);
        foreach (var hit in hits)
        {
            var expected = Similarity.Cosine(q, search.Pipeline.Embed(hit.Chunk.Text));
            Assert.Equal(expected, hit.Score, Tolerances.SearchScore);
        }

        Assert.True(hits.Zip(hits.Skip(1)).All(p => p.First.Score >= p.Second.Score), "best first");
    }

    [Fact]
    public async Task BuildIndex_ReusesTheCache_AndRefreshesChangedAddedAndDeletedFilesOnly()
    {
        WriteCorpus();
        var search = await OpenAsync();
        var first = search.BuildIndex(_docs);
        int total = first.Chunks.Count;
        int ChunksOf(SearchIndex index, string file) => index.Chunks.Count(c => c.File == file);
        Assert.Equal(total, first.Update.ChunksEmbedded);
        Assert.Equal(0, first.Update.ChunksReused);
        Assert.True(File.Exists(first.Update.CachePath));
        Assert.StartsWith(Path.Combine(_docs, DocumentSearch.CacheFolderName), first.Update.CachePath, StringComparison.Ordinal);

        // Unchanged: nothing embedded, the same embeddings read back bit for bit.
        var again = search.BuildIndex(_docs);
        Assert.Equal((0, total, Corpus.Count), (again.Update.ChunksEmbedded, again.Update.ChunksReused, again.Update.FilesReused));
        for (var row = 0; row < total; row++) Assert.True(first.Embedding(row).SequenceEqual(again.Embedding(row)), $"row {row}");

        // A changed file: only its chunks are embedded again.
        Write("sport.txt", "Tennis players serve, volley and smash.\n\nThe final went to five sets.\n");
        var changed = search.BuildIndex(_docs);
        int sport = ChunksOf(changed, "sport.txt");
        Assert.Equal(sport, changed.Update.ChunksEmbedded);
        Assert.Equal(total - ChunksOf(first, "sport.txt"), changed.Update.ChunksReused);
        Assert.Equal(1, changed.Update.FilesEmbedded);
        Assert.Contains(changed.Chunks, c => c.Text.Contains("Tennis", StringComparison.Ordinal));
        Assert.Equal("sport.txt", search.Search(changed, "a tennis tournament", 1)[0].Chunk.File);

        // A new file: only it is embedded.
        Write("notes/new.txt", "Penicillin is an antibiotic that treats bacterial infections.\n");
        var added = search.BuildIndex(_docs);
        Assert.Equal(ChunksOf(added, "notes/new.txt"), added.Update.ChunksEmbedded);
        Assert.Equal(changed.Chunks.Count, added.Update.ChunksReused);
        Assert.Equal("notes/new.txt", search.Search(added, "drug against bacteria", 1)[0].Chunk.File);

        // A deleted file: dropped, nothing embedded.
        File.Delete(Path.Combine(_docs, "fruit.md"));
        var deleted = search.BuildIndex(_docs);
        Assert.Equal((0, 1), (deleted.Update.ChunksEmbedded, deleted.Update.FilesRemoved));
        Assert.DoesNotContain(deleted.Chunks, c => c.File == "fruit.md");
        Assert.Equal(added.Chunks.Count - ChunksOf(added, "fruit.md"), deleted.Chunks.Count);

        // Touched but not changed: the hash matches, so it is reused.
        File.SetLastWriteTimeUtc(Path.Combine(_docs, "cooking.txt"), DateTime.UtcNow.AddMinutes(5));
        var touched = search.BuildIndex(_docs);
        Assert.Equal((0, deleted.Chunks.Count), (touched.Update.ChunksEmbedded, touched.Update.ChunksReused));

        // A rebuild embeds everything; the fresh embeddings match the cached ones up to batch-padding rounding.
        var rebuilt = search.BuildIndex(_docs, new SearchIndexOptions { Rebuild = true });
        Assert.Equal(rebuilt.Chunks.Count, rebuilt.Update.ChunksEmbedded);
        for (var row = 0; row < rebuilt.Chunks.Count; row++)
        {
            Assert.Equal(touched.Chunks[row], rebuilt.Chunks[row]);
            var diff = touched.Embedding(row).ToArray().Zip(rebuilt.Embedding(row).ToArray()).Max(p => Math.Abs(p.First - p.Second));
            Assert.True(diff <= Tolerances.SearchScore, $"row {row}: {diff}");
        }
    }

    [Fact]
    public async Task BuildIndex_OtherChunkSettings_UseAnotherCache_AndACorruptCacheIsRebuiltWithANote()
    {
        WriteCorpus();
        var search = await OpenAsync();
        var first = search.BuildIndex(_docs);
        var small = new DocumentSearch(search.Pipeline, search.ModelKey, new ChunkingOptions { MaxTokens = 8, OverlapTokens = 2 });

        var other = small.BuildIndex(_docs);

        Assert.NotEqual(first.Update.CachePath, other.Update.CachePath);
        Assert.Equal(other.Chunks.Count, other.Update.ChunksEmbedded);
        Assert.True(other.Chunks.Count > first.Chunks.Count);
        Assert.All(other.Chunks, c => Assert.True(small.CountTokens(c.Text) <= 8, c.Text));

        // A matrix whose bytes changed (same length) no longer matches the manifest's SHA-256.
        var matrixPath = Path.ChangeExtension(first.Update.CachePath, ".f32");
        var bytes = File.ReadAllBytes(matrixPath);
        bytes[^1] ^= 0x40;
        File.WriteAllBytes(matrixPath, bytes);
        var resynced = search.BuildIndex(_docs);
        Assert.Equal(first.Chunks.Count, resynced.Update.ChunksEmbedded);
        Assert.Contains("does not match its manifest", resynced.Update.CacheNote, StringComparison.Ordinal);

        File.WriteAllText(first.Update.CachePath, "{ not json");
        var repaired = search.BuildIndex(_docs);
        Assert.Equal(first.Chunks.Count, repaired.Update.ChunksEmbedded);
        Assert.Contains("not valid JSON", repaired.Update.CacheNote, StringComparison.Ordinal);
        Assert.Equal(0, search.BuildIndex(_docs).Update.ChunksEmbedded);
    }

    [Fact]
    public async Task BuildIndex_JsonlRecordsBinariesAndHiddenFolders()
    {
        Write("records.jsonl", "{\"text\": \"Insulin treats diabetes.\"}\n\n{\"id\": 2}\nnot json\n{\"text\": \"Rain falls from clouds.\"}\n");
        File.WriteAllBytes(Path.Combine(_docs, "image.txt"), [0x89, 0x50, 0x00, 0x47]);
        Write(".hidden/secret.txt", "hidden text");
        Write("photo.png", "not read");
        var search = await OpenAsync();

        var index = search.BuildIndex(_docs);

        Assert.Equal(
            [new DocumentChunk("records.jsonl", 1, 1, 0, 24, true, "Insulin treats diabetes."), new DocumentChunk("records.jsonl", 5, 5, 0, 23, true, "Rain falls from clouds.")],
            index.Chunks);
        Assert.Equal(["image.txt", "records.jsonl:3", "records.jsonl:4"], index.Update.Skipped.Select(s => s.File));
        Assert.Equal(1, index.Update.OtherTypes[".png"]);

        // The JSONL notes come back from the cache too.
        Assert.Equal(index.Update.Skipped, search.BuildIndex(_docs).Update.Skipped);
    }

    [Fact]
    public async Task BuildIndex_BadFolders_ClearErrors()
    {
        var search = await OpenAsync();

        var missing = Assert.Throws<DirectoryNotFoundException>(() => search.BuildIndex(Path.Combine(_docs, "nope")));
        Assert.Contains("does not exist", missing.Message, StringComparison.Ordinal);

        var empty = Assert.Throws<InvalidDataException>(() => search.BuildIndex(_docs));
        Assert.Contains("has no documents (it is empty)", empty.Message, StringComparison.Ordinal);

        Write("a.pdf", "x");
        var others = Assert.Throws<InvalidDataException>(() => search.BuildIndex(_docs));
        Assert.Contains("it holds only 1 .pdf", others.Message, StringComparison.Ordinal);

        File.WriteAllBytes(Path.Combine(_docs, "b.txt"), [0, 1, 2]);
        Write("c.md", "  \n\n ");
        var unreadable = Assert.Throws<InvalidDataException>(() => search.BuildIndex(_docs));
        Assert.Contains("no readable documents", unreadable.Message, StringComparison.Ordinal);
        Assert.Contains("b.txt: binary", unreadable.Message, StringComparison.Ordinal);

        Write("d.txt", "Some text.");
        var index = search.BuildIndex(_docs);
        Assert.Throws<ArgumentOutOfRangeException>(() => search.Search(index, "text", 0));
        Assert.Throws<ArgumentException>(() => search.Search(index, "  ", 1));
    }
}
