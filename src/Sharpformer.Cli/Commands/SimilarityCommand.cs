using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Sharpformer.Pipelines;

namespace Sharpformer.Cli.Commands;

/// <summary><c>sharpformer similarity [--model …] [--json] "a" "b"…</c>: the matrix of cosine similarities between sentence embeddings.</summary>
internal static class SimilarityCommand
{
    public static Command Create()
    {
        var texts = new Argument<string[]>("text") { Description = "Two or more texts to compare.", Arity = ArgumentArity.OneOrMore };
        var model = PipelineVerbs.ModelOption(EmbedCommand.DefaultModel);
        var json = PipelineVerbs.JsonOption();
        var truncate = PipelineVerbs.TruncateOption();
        var batchSize = new Option<int>("--batch-size") { Description = "Texts per forward pass.", DefaultValueFactory = _ => 32 };
        var command = new Command("similarity", "Cosine similarity between the sentence embeddings of two or more texts.")
        {
            texts, model, json, truncate, batchSize,
        };
        command.SetAction((parse, ct) => RunAsync(
            parse.GetValue(texts)!, parse.GetValue(model)!, parse.GetValue(json), parse.GetValue(truncate), parse.GetValue(batchSize),
            parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, ct));
        return command;
    }

    internal static Task<int> RunAsync(string[] texts, string model, bool json, bool truncate, int batchSize,
        TextWriter output, TextWriter error, CancellationToken ct) =>
        PipelineVerbs.GuardAsync("similarity", error, async () =>
        {
            if (texts.Length < 2)
            {
                throw new ArgumentException($"similarity needs at least two texts to compare; got {texts.Length}.");
            }

            var pipeline = await BundledModels.LoadWithFallbackAsync(model, error,
                m => SentenceEmbeddingPipeline.FromPretrainedAsync(m, PipelineVerbs.Options(error, truncate), ct)).ConfigureAwait(false);
            var embeddings = EmbedCommand.EmbedWithProgress(pipeline, texts, batchSize, error, ct);
            var matrix = Similarity.CosineMatrix(embeddings);
            var n = texts.Length;
            if (json)
            {
                var rows = Enumerable.Range(0, n).Select(i => Enumerable.Range(0, n).Select(j => matrix[i, j]).ToArray()).ToList();
                output.WriteLine(JsonSerializer.Serialize(new { model, texts, matrix = rows }, PipelineVerbs.Json));
                return 0;
            }

            output.WriteLine($"{model}: cosine similarity of sentence embeddings");
            for (var i = 0; i < n; i++)
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  [{i}] \"{PipelineVerbs.Preview(texts[i])}\""));
            }

            output.WriteLine("       " + string.Concat(Enumerable.Range(0, n).Select(j => $"[{j}]".PadLeft(8))));
            for (var i = 0; i < n; i++)
            {
                var cells = string.Concat(Enumerable.Range(0, n).Select(j => PipelineVerbs.F(matrix[i, j], "F4").PadLeft(8)));
                output.WriteLine($"{$"[{i}]",5}  {cells}");
            }

            return 0;
        });
}
