using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Sharpformer.Pipelines;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer search "query" --docs &lt;folder&gt; [--model sentence-transformers/all-MiniLM-L6-v2] [--top-k 5] [--json] [--rebuild]</c>:
/// semantic search over a folder of .txt, .md and .jsonl documents, with the embeddings cached in the folder's
/// <c>.sharpformer-search/</c> and refreshed for changed, added and deleted files.
/// </summary>
internal static class SearchCommand
{
    private const int PassageChars = 600;

    public static Command Create()
    {
        var query = new Argument<string>("query") { Description = "What to look for, in plain words." };
        var docs = new Option<string>("--docs")
        {
            Description = "The folder of documents (.txt, .md, .jsonl with a \"text\" field; sub-folders included).",
            Required = true,
        };
        var model = PipelineVerbs.ModelOption(DocumentSearch.DefaultModel);
        var topK = new Option<int>("--top-k") { Description = "How many passages to show.", DefaultValueFactory = _ => 5 };
        var json = PipelineVerbs.JsonOption();
        var rebuild = new Option<bool>("--rebuild") { Description = "Ignore the cache and embed every document again." };
        var chunkTokens = new Option<int>("--chunk-tokens")
        {
            Description = "Most tokens per passage (capped at the model's limit).",
            DefaultValueFactory = _ => new ChunkingOptions().MaxTokens,
        };
        var overlap = new Option<int>("--overlap-tokens")
        {
            Description = "Tokens of closing sentences a passage repeats from the one before when a paragraph is cut.",
            DefaultValueFactory = _ => new ChunkingOptions().OverlapTokens,
        };
        var batchSize = new Option<int>("--batch-size") { Description = "Passages per forward pass.", DefaultValueFactory = _ => 32 };
        var cacheDir = new Option<string?>("--cache-dir") { Description = "Where to keep the embeddings (default: <docs>/.sharpformer-search/)." };
        var command = new Command("search", "Semantic search over a folder of documents: top passages by cosine of sentence embeddings, cached on disk.")
        {
            query, docs, model, topK, json, rebuild, chunkTokens, overlap, batchSize, cacheDir,
        };
        command.SetAction((parse, ct) => RunAsync(
            new Request(parse.GetValue(query)!, parse.GetValue(docs)!, parse.GetValue(model)!, parse.GetValue(topK), parse.GetValue(json),
                parse.GetValue(rebuild), parse.GetValue(chunkTokens), parse.GetValue(overlap), parse.GetValue(batchSize), parse.GetValue(cacheDir)),
            parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, ct));
        return command;
    }

    internal sealed record Request(string Query, string Docs, string Model, int TopK, bool Json, bool Rebuild, int ChunkTokens, int OverlapTokens,
        int BatchSize, string? CacheDir);

    internal static Task<int> RunAsync(Request request, TextWriter output, TextWriter error, CancellationToken ct) =>
        PipelineVerbs.GuardAsync("search", error, async () =>
        {
            // Check what the command line gave before loading a model.
            if (string.IsNullOrWhiteSpace(request.Query))
            {
                throw new ArgumentException("the query is empty; pass the text to search for, e.g. sharpformer search \"pain in the chest\" --docs notes/.");
            }

            if (request.TopK < 1)
            {
                throw new ArgumentException($"--top-k is {request.TopK}; pass a whole number of at least 1.");
            }

            if (request.BatchSize < 1)
            {
                throw new ArgumentException($"--batch-size is {request.BatchSize}; pass at least 1.");
            }

            var chunking = new ChunkingOptions { MaxTokens = request.ChunkTokens, OverlapTokens = request.OverlapTokens };
            chunking.Validate();
            DocumentReader.List(request.Docs, out _);

            var search = await BundledModels.LoadWithFallbackAsync(request.Model, error,
                m => DocumentSearch.FromPretrainedAsync(m, chunking, PipelineVerbs.Options(error, truncate: true), ct)).ConfigureAwait(false);
            var index = search.BuildIndex(
                request.Docs,
                new SearchIndexOptions { Rebuild = request.Rebuild, BatchSize = request.BatchSize, CacheDirectory = request.CacheDir },
                new ProgressLines(error),
                ct);
            Report(index.Update, error);
            var hits = search.Search(index, request.Query, request.TopK);
            if (request.Json)
            {
                var results = hits.Select(h => new
                {
                    rank = h.Rank,
                    score = h.Score,
                    file = h.Chunk.File,
                    line_start = h.Chunk.LineStart,
                    line_end = h.Chunk.LineEnd,
                    start = h.Chunk.Start,
                    end = h.Chunk.End,
                    in_record = h.Chunk.InRecord,
                    text = h.Chunk.Text,
                }).ToList();
                var u = index.Update;
                var indexInfo = new
                {
                    files = u.Files,
                    chunks = index.Chunks.Count,
                    chunks_embedded = u.ChunksEmbedded,
                    chunks_reused = u.ChunksReused,
                    files_removed = u.FilesRemoved,
                    cache = u.CachePath,
                };
                output.WriteLine(JsonSerializer.Serialize(new { query = request.Query, model = request.Model, index = indexInfo, results }, PipelineVerbs.Json));
                return 0;
            }

            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{hits.Count} best of {index.Chunks.Count} passages in {index.Update.Files} files for \"{request.Query}\":"));
            foreach (var hit in hits)
            {
                var lines = hit.Chunk.LineStart == hit.Chunk.LineEnd
                    ? hit.Chunk.LineStart.ToString(CultureInfo.InvariantCulture)
                    : string.Create(CultureInfo.InvariantCulture, $"{hit.Chunk.LineStart}-{hit.Chunk.LineEnd}");
                output.WriteLine();
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{hit.Rank}. {PipelineVerbs.F(hit.Score, "F4")}  {hit.Chunk.File}:{lines}"));
                foreach (var line in Passage(hit.Chunk.Text))
                {
                    output.WriteLine(line);
                }
            }

            return 0;
        });

    /// <summary>
    /// The passage as indented lines: one per non-blank line of the text, whitespace runs as single spaces, cut at a word
    /// once <see cref="PassageChars"/> characters are shown.
    /// </summary>
    internal static IReadOnlyList<string> Passage(string text)
    {
        var shown = new List<string>();
        int budget = PassageChars;
        foreach (var raw in text.ReplaceLineEndings("\n").Split('\n'))
        {
            var line = string.Join(' ', raw.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
            if (line.Length == 0)
            {
                continue;
            }

            if (budget <= 0)
            {
                shown.Add("   …");
                break;
            }

            if (line.Length > budget)
            {
                int cut = line.LastIndexOf(' ', budget);
                shown.Add("   " + line[..(cut > budget / 2 ? cut : budget)] + " …");
                break;
            }

            shown.Add("   " + line);
            budget -= line.Length;
        }

        return shown;
    }

    private static void Report(IndexUpdate u, TextWriter error)
    {
        if (u.CacheNote is not null)
        {
            error.WriteLine("note: " + u.CacheNote);
        }

        foreach (var s in u.Skipped)
        {
            error.WriteLine($"note: skipped {s.File}: {s.Reason}");
        }

        if (u.OtherTypes.Count > 0)
        {
            error.WriteLine("note: skipped files of other types: " + string.Join(", ", u.OtherTypes.Select(o => string.Create(CultureInfo.InvariantCulture, $"{o.Value} {o.Key}"))));
        }

        error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"index: {u.Files} files ({u.FilesReused} cached, {u.FilesEmbedded} embedded, {u.FilesRemoved} removed), {u.ChunksReused + u.ChunksEmbedded} passages ({u.ChunksEmbedded} embedded now); cache {u.CachePath}"));
    }

    private sealed class ProgressLines(TextWriter error) : IProgress<EmbeddingProgress>
    {
        public void Report(EmbeddingProgress value) =>
            error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"embedded {value.Done}/{value.Total} passages"));
    }
}
