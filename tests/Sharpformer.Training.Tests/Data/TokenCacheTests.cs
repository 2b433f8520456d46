using System.Text;
using Sharpformer.Text;
using Sharpformer.Training.Data;
using static Sharpformer.Training.Tests.Data.DataTestKit;

namespace Sharpformer.Training.Tests.Data;

public class TokenCacheTests
{
    [Fact]
    public void Corpus_Folder_TakesTxtAndJsonlRecursively_InOrdinalOrder()
    {
        var dir = NewFolder("corpus");
        Write(dir, "b.txt", "b");
        Write(dir, "B.txt", "B");
        Write(dir, "sub/a.txt", "a");
        Write(dir, "notes.md", "ignored");
        Write(dir, "c.jsonl", "{\"text\":\"c\"}\n");
        var corpus = Corpus.FromPath(dir);
        var names = corpus.Files.Select(f => Path.GetRelativePath(dir, f.Path).Replace('\\', '/')).ToArray();
        Assert.Equal(["B.txt", "b.txt", "c.jsonl", "sub/a.txt"], names);
        Assert.Equal(CorpusFormat.JsonLines, corpus.Files[2].Format);
        Assert.Equal(corpus.Files.Sum(f => new FileInfo(f.Path).Length), corpus.TotalBytes);

        using var cache = TokenCache.Open(corpus, Bytes(), "bytes", NewFolder("cache"));
        Assert.Equal(Ids("Bbca"), AllTokens(cache));
        Assert.Equal(4, cache.DocumentCount);
        Assert.Equal((2L, 3L), cache.DocumentRange(2));
    }

    [Fact]
    public void Corpus_Missing_SaysWhatToPass()
    {
        var ex = Assert.Throws<FileNotFoundException>(() => Corpus.FromPath(Path.Combine(NewFolder("none"), "nope.txt")));
        Assert.Contains("does not exist", ex.Message, StringComparison.Ordinal);
        ex = Assert.Throws<FileNotFoundException>(() => Corpus.FromPath(NewFolder("empty")));
        Assert.Contains("no .txt or .jsonl", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"text\":\"ok\"}\n{\"text\":\"ok\"}\n{\"title\":\"no text\"}\n", 3, "no \"text\" field")]
    [InlineData("{\"text\":\"ok\"}\n\n{\"text\":5}\n", 3, "not a string")]
    [InlineData("{\"text\":\"ok\"}\n[1,2]\n", 2, "not an object")]
    [InlineData("{\"text\":\"ok\"\n", 1, "not a JSON object")]
    public void Jsonl_BadRecord_NamesFileAndLine(string content, int line, string problem)
    {
        var dir = NewFolder("jsonl");
        var path = Write(dir, "data.jsonl", content);
        var cacheDir = NewFolder("cache");
        var ex = Assert.Throws<InvalidDataException>(() => ByteCache(path, cacheDir));
        Assert.Contains($"{path}:{line}:", ex.Message, StringComparison.Ordinal);
        Assert.Contains(problem, ex.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(cacheDir));
    }

    [Fact]
    public void Jsonl_RecordsAreDocuments_BlankLinesSkipped_EmptyTextsLeftOut()
    {
        var dir = NewFolder("jsonl");
        var path = Write(dir, "data.jsonl", "{\"text\":\"ab\",\"id\":1}\r\n\n{\"text\":\"\"}\n{\"text\":\"c\\nd\"}\n");
        using var cache = ByteCache(path, NewFolder("cache"));
        Assert.Equal(Ids("abc\nd"), AllTokens(cache));
        Assert.Equal(2, cache.DocumentCount);
        Assert.Equal((0L, 2L), cache.DocumentRange(0));
        Assert.Equal((2L, 5L), cache.DocumentRange(1));
    }

    /// <summary>A document tokenized in pieces (cut at a space after a letter or digit) gives the ids of the whole text.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ChunkedTokenization_EqualsWholeText(bool bert)
    {
        var random = new Random(7);
        string[] words = ["the", "w1", "w2ab", "w17c", "the", "cat", "zz", "w3", "."];
        string[] gaps = [" ", "  ", "\n", "\n\n", " \n", "\n ", "\t", "\n\n\n", "   ", "\r\n", " \n\n "];
        var text = new StringBuilder("  lead");
        for (var i = 0; i < 3000; i++)
        {
            text.Append(gaps[random.Next(gaps.Length)]).Append(words[random.Next(words.Length)]);
        }

        text.Append("\n\n");
        var dir = NewFolder("chunks");
        var path = Write(dir, "doc.txt", text.ToString());
        TextTokenizer tokenizer = bert ? AutoTokenizer.FromPretrained(BertFolder()) : Bytes(merges: true);
        var whole = tokenizer.Encode(text.ToString(), options: new EncodeOptions { AddSpecialTokens = false }).Ids.ToArray();
        using var cache = TokenCache.Open(Corpus.FromPath(path), tokenizer, "t", NewFolder("cache"), progress: null, chunkChars: 40, CancellationToken.None);
        Assert.Equal(whole, AllTokens(cache));
        Assert.Equal(1, cache.DocumentCount);

        // The same text in one JSON Lines record is cut the same way.
        var jsonl = Write(dir, "doc.jsonl", System.Text.Json.JsonSerializer.Serialize(new { text = text.ToString() }) + "\n");
        using var fromJson = TokenCache.Open(Corpus.FromPath(jsonl), tokenizer, "t", NewFolder("cache"), progress: null, chunkChars: 40, CancellationToken.None);
        Assert.Equal(whole, AllTokens(fromJson));
    }

    /// <summary>Why the cut is not after a newline: GPT-2's "\n\n" before a word is two pre-tokens, but one at the end of a piece.</summary>
    [Fact]
    public void CutAfterNewline_WouldChangeByteLevelTokens()
    {
        var tokenizer = Bytes(merges: true);
        var noSpecials = new EncodeOptions { AddSpecialTokens = false };
        var whole = tokenizer.Encode("a\n\nb", options: noSpecials).Ids;
        var pieces = tokenizer.Encode("a\n\n", options: noSpecials).Ids.Concat(tokenizer.Encode("b", options: noSpecials).Ids);
        Assert.Equal(Ids("a\n\nb"), whole);
        Assert.NotEqual(whole, pieces);
        Assert.Equal(0, Corpus.LastSafeCut("a\n\nb"));
        Assert.Equal(5, Corpus.LastSafeCut("ab cd ef\n".AsSpan(0, 7)));
    }

    [Fact]
    public void Cache_IsReused_NotRewritten_WhileCorpusAndTokenizerAreUnchanged()
    {
        var dir = NewFolder("reuse");
        var path = Write(dir, "doc.txt", "hello world");
        var cacheDir = NewFolder("cache");
        string file;
        using (var first = ByteCache(path, cacheDir))
        {
            Assert.True(first.WasBuilt);
            Assert.Equal("no cache file", first.BuildReason);
            file = first.Path;
        }

        var written = File.GetLastWriteTimeUtc(file);
        var bytes = File.ReadAllBytes(file);
        File.SetLastWriteTimeUtc(file, written.AddMinutes(-5));
        using (var second = ByteCache(path, cacheDir))
        {
            Assert.False(second.WasBuilt);
            Assert.Null(second.BuildReason);
            Assert.Equal(file, second.Path);
            Assert.Equal(Ids("hello world"), AllTokens(second));
        }

        Assert.Equal(written.AddMinutes(-5), File.GetLastWriteTimeUtc(file));
        Assert.Equal(bytes, File.ReadAllBytes(file));
        Assert.Single(Directory.GetFiles(cacheDir));
    }

    [Fact]
    public void Cache_IsRebuilt_WhenACorpusFileOrTheTokenizerChanges()
    {
        var dir = NewFolder("rebuild");
        var path = Write(dir, "doc.txt", "one");
        var cacheDir = NewFolder("cache");
        using (var first = ByteCache(path, cacheDir))
        {
            Assert.True(first.WasBuilt);
        }

        // Same size, new content and time: the modification time alone changes the key.
        File.WriteAllText(path, "two");
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddHours(1));
        using (var changed = ByteCache(path, cacheDir))
        {
            Assert.True(changed.WasBuilt);
            Assert.Equal(Ids("two"), AllTokens(changed));
        }

        using (var otherTokenizer = ByteCache(path, cacheDir, merges: true))
        {
            Assert.True(otherTokenizer.WasBuilt);
        }

        using var again = ByteCache(path, cacheDir);
        Assert.False(again.WasBuilt);
        Assert.Equal(Ids("two"), AllTokens(again));
    }

    [Fact]
    public void FingerprintFolder_ChangesWithTheTokenizerFiles()
    {
        var folder = BertFolder();
        var before = TokenCache.FingerprintFolder(folder);
        Assert.Equal(before, TokenCache.FingerprintFolder(folder));
        File.AppendAllText(Path.Combine(folder, "vocab.txt"), "extra\n");
        Assert.NotEqual(before, TokenCache.FingerprintFolder(folder));
        Assert.Throws<FileNotFoundException>(() => TokenCache.FingerprintFolder(NewFolder("empty")));
    }

    public static TheoryData<string> Damages => new() { "truncate-header", "truncate-ids", "magic", "version", "id-out-of-range", "document-ends", "garbage", "empty" };

    [Theory]
    [MemberData(nameof(Damages))]
    public void DamagedCache_IsDetectedAndRebuilt(string damage)
    {
        var dir = NewFolder("damage");
        var path = Write(dir, "a.txt", "alpha beta");
        Write(dir, "b.txt", "gamma");
        var cacheDir = NewFolder("cache");
        string file;
        using (var first = ByteCache(dir, cacheDir))
        {
            file = first.Path;
        }

        var bytes = File.ReadAllBytes(file);
        switch (damage)
        {
            case "truncate-header": bytes = bytes[..40]; break;
            case "truncate-ids": bytes = bytes[..^9]; break;
            case "magic": bytes[0] = (byte)'X'; break;
            case "version": bytes[8] = 99; break;
            case "id-out-of-range": BitConverter.GetBytes(1_000_000).CopyTo(bytes, 64 + 8); break;
            case "document-ends": BitConverter.GetBytes(3L).CopyTo(bytes, bytes.Length - 8); break;
            case "garbage": Random.Shared.NextBytes(bytes); break;
            case "empty": bytes = []; break;
        }

        File.WriteAllBytes(file, bytes);
        using var rebuilt = ByteCache(dir, cacheDir);
        Assert.True(rebuilt.WasBuilt);
        Assert.Contains(file, rebuilt.BuildReason, StringComparison.Ordinal);
        Assert.Equal(Ids("alpha betagamma"), AllTokens(rebuilt));
        Assert.Equal(2, rebuilt.DocumentCount);
        Assert.Single(Directory.GetFiles(cacheDir));
        _ = path;
    }

    [Fact]
    public void Progress_ReportsBytesDocumentsAndTokens_UpToTheTotal()
    {
        var dir = NewFolder("progress");
        Write(dir, "a.txt", string.Concat(Enumerable.Repeat("word ", 200)));
        Write(dir, "b.jsonl", "{\"text\":\"xy\"}\n{\"text\":\"z\"}\n");
        var reports = new List<CorpusProgress>();
        var corpus = Corpus.FromPath(dir);
        using var cache = TokenCache.Open(corpus, Bytes(), "bytes", NewFolder("cache"), new SynchronousProgress(reports.Add), chunkChars: 64, CancellationToken.None);
        Assert.True(reports.Count > 3);
        Assert.All(reports, r => Assert.Equal(corpus.TotalBytes, r.BytesTotal));
        Assert.True(reports.Zip(reports.Skip(1)).All(p => p.Second.BytesDone >= p.First.BytesDone && p.Second.Tokens >= p.First.Tokens));
        Assert.Equal(new CorpusProgress(corpus.TotalBytes, corpus.TotalBytes, 3, 1003), reports[^1]);
    }

    [Fact]
    public void Cancellation_LeavesNoCacheBehind()
    {
        var dir = NewFolder("cancel");
        var path = Write(dir, "a.txt", "some text");
        var cacheDir = NewFolder("cache");
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => TokenCache.Open(Corpus.FromPath(path), Bytes(), "bytes", cacheDir, null, cts.Token));
        Assert.Empty(Directory.GetFiles(cacheDir));
    }

    private sealed class SynchronousProgress(Action<CorpusProgress> report) : IProgress<CorpusProgress>
    {
        public void Report(CorpusProgress value) => report(value);
    }
}
