using System.CommandLine;
using System.Globalization;
using System.Numerics.Tensors;
using System.Text.Json;
using ScottPlot;
using Sharpformer.Explain;
using Sharpformer.Generation;
using Sharpformer.Models;
using Sharpformer.Pipelines;
using Sharpformer.Text;
using Spectre.Console;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer tour [--step N] [--out folder] [--json]</c>: the lecture, step by step, offline, on the models shipped
/// with sharpformer (sharpformer/bert-mini-en, sharpformer/gpt-mini-en, sharpformer/transformer-de-en, the bundled
/// all-MiniLM-L6-v2): tokens and ids, embeddings and positions, attention heads, fill-mask, next-token probabilities and
/// generation, sentence similarity, translation with its cross-attention — each with the source file that implements
/// it (docs/tour.md).
/// </summary>
internal static class TourCommand
{
    /// <summary>The lecture's seed sentence.</summary>
    internal const string Seed = "The heart is a [MASK] organ.";

    /// <summary>The prompt of the generation step.</summary>
    internal const string Prompt = "The heart is a";

    /// <summary>The sentences of the similarity step.</summary>
    internal static readonly string[] SimilarityTexts = ["a heart attack", "a myocardial infarction", "a parking ticket"];

    /// <summary>The German sentence of the translation step.</summary>
    internal const string GermanSentence = "die Mutter und der Vater";

    /// <summary>The seed's ids in bert-base-uncased's vocabulary, as HF's tokenizer gives them.</summary>
    internal static readonly int[] BertBaseUncasedSeedIds = [101, 1996, 2540, 2003, 1037, 103, 5812, 1012, 102];

    internal const int Steps = 7;

    private static readonly string[] Titles =
    [
        "Tokens: text → WordPiece tokens → ids",
        "Embeddings and positions: ids → vectors, plus where each token is",
        "Attention: each head's weights over the sentence",
        "Fill-mask: the masked language model's top 5",
        "Next token: probabilities and a short generation (GPT)",
        "Sentence similarity: mean-pooled embeddings and their cosine (MiniLM)",
        "Encoder-decoder: translation German → English, and where each output token looked (cross-attention)",
    ];

    public static Command Create()
    {
        var step = new Option<int?>("--step") { Description = "Run only step N (1–7) instead of the whole tour." };
        var output = new Option<string>("--out") { Description = "Folder for the pictures (PNG/SVG).", DefaultValueFactory = _ => "tour" };
        var json = PipelineVerbs.JsonOption();
        var command = new Command("tour", "The lecture, step by step and offline, on the models shipped with sharpformer: tokens, embeddings and positions, attention, fill-mask, next token and generation, sentence similarity, translation with cross-attention.")
        {
            step, output, json,
        };
        command.SetAction((parse, ct) => RunAsync(parse.GetValue(step), parse.GetValue(output)!, parse.GetValue(json),
            parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, ct));
        return command;
    }

    internal static Task<int> RunAsync(int? step, string outFolder, bool json, TextWriter output, TextWriter error, CancellationToken ct) =>
        PipelineVerbs.GuardAsync("tour", error, async () =>
        {
            if (step is < 1 or > Steps)
            {
                throw new ArgumentException($"--step must be 1 to {Steps} (got {step}); leave it out for the whole tour.");
            }

            var tour = new Tour(outFolder, error);
            var results = new List<StepResult>();
            var console = json ? null : CreateConsole(output);
            for (var n = 1; n <= Steps; n++)
            {
                if (step is { } only && only != n)
                {
                    continue;
                }

                ct.ThrowIfCancellationRequested();
                var result = await tour.RunStepAsync(n, ct).ConfigureAwait(false);
                results.Add(result);
                if (console is not null)
                {
                    Render(console, result);
                }
            }

            if (json)
            {
                output.WriteLine(JsonSerializer.Serialize(new { seed = Seed, pictures_folder = Path.GetFullPath(outFolder), steps = results }, PipelineVerbs.Json));
            }

            return 0;
        });

    private static IAnsiConsole CreateConsole(TextWriter output)
    {
        var terminal = ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;
        return AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
    }

    /// <summary>What one step found: its numbers, pictures and the files that implement it.</summary>
    internal sealed record StepResult(int Step, string Title, string Model, IReadOnlyList<string> Source, IReadOnlyList<string> Pictures, object Data, IReadOnlyList<string> Notes);

    internal sealed record TokenRow(int Index, string Token, int Id);

    internal sealed record Candidate(string Token, int Id, float Probability);

    private static void Render(IAnsiConsole console, StepResult result)
    {
        console.WriteLine();
        console.Write(new Rule($"[bold]Step {result.Step}[/] · {Markup.Escape(result.Title)}") { Justification = Justify.Left });
        console.MarkupLine($"[grey]model:[/] {Markup.Escape(result.Model)}");
        switch (result.Data)
        {
            case TokensData tokens:
                var table = new Table().AddColumns("#", "token", "id");
                foreach (var row in tokens.Tokens)
                {
                    table.AddRow(Cell(row.Index), Markup.Escape(row.Token), Cell(row.Id));
                }

                console.Write(table);
                console.MarkupLine($"ids: [bold]{Markup.Escape(Ids(tokens.Ids))}[/]");
                if (tokens.BertBaseUncasedIds is { } reference)
                {
                    console.MarkupLine($"bert-base-uncased ids: {Markup.Escape(Ids(reference))} (its own 30,522-token vocabulary: same text, other ids)");
                }

                break;
            case EmbeddingsData embeddings:
                console.MarkupLine(string.Create(CultureInfo.InvariantCulture,
                    $"{embeddings.Tokens} tokens → a [bold]{embeddings.Tokens} × {embeddings.HiddenSize}[/] matrix of token embeddings; the model adds its {embeddings.PositionKind} position embeddings."));
                console.MarkupLine("sinusoidal encoding (Vaswani et al.): PE(p, 2i) = sin(p / 10000^(2i/C)), PE(p, 2i+1) = cos(p / 10000^(2i/C)); first dimensions per position:");
                var pe = new Table().AddColumn("position");
                for (var d = 0; d < embeddings.SinusoidalFirstDimensions[0].Length; d++)
                {
                    pe.AddColumn(string.Create(CultureInfo.InvariantCulture, $"d{d}"));
                }

                for (var p = 0; p < embeddings.SinusoidalFirstDimensions.Count; p++)
                {
                    pe.AddRow([Cell(p), .. embeddings.SinusoidalFirstDimensions[p].Select(v => v.ToString("F3", CultureInfo.InvariantCulture))]);
                }

                console.Write(pe);
                break;
            case AttentionData attention:
                console.MarkupLine(string.Create(CultureInfo.InvariantCulture, $"layer {attention.Layer} of {attention.Layers}, {attention.Heads.Count} heads; where [bold]{Markup.Escape(attention.QueryToken)}[/] (position {attention.Query}) looks:"));
                var heads = new Table().AddColumns("head", "most attended token", "weight");
                foreach (var head in attention.Heads)
                {
                    heads.AddRow(Cell(head.Head), Markup.Escape(head.Token), head.Weight.ToString("F3", CultureInfo.InvariantCulture));
                }

                console.Write(heads);
                break;
            case FillMaskData fill:
                console.Write(CandidateTable(fill.Candidates.Select(c => (c.TokenStr, c.Score, c.Sequence))));
                break;
            case NextTokenData next:
                console.MarkupLine($"after [bold]\"{Markup.Escape(next.Prompt)}\"[/] the next token is:");
                console.Write(CandidateTable(next.Candidates.Select(c => (c.Token, c.Probability, ""))));
                console.MarkupLine($"greedy, {next.NewTokens} new tokens: [bold]{Markup.Escape(next.Generation.ReplaceLineEndings(" "))}[/]");
                break;
            case SimilarityData similarity:
                console.MarkupLine("cosine similarity of the sentence embeddings (1 = same direction):");
                var matrix = new Table().AddColumn("sentence");
                for (var j = 0; j < similarity.Texts.Count; j++)
                {
                    matrix.AddColumn(Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"[{j}]")));
                }

                for (var i = 0; i < similarity.Texts.Count; i++)
                {
                    matrix.AddRow([Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"[{i}] {similarity.Texts[i]}")), .. similarity.Matrix[i].Select(v => v.ToString("F3", CultureInfo.InvariantCulture))]);
                }

                console.Write(matrix);
                break;
            case TranslationData translation:
                console.MarkupLine($"[bold]{Markup.Escape(translation.Source)}[/] → [bold]{Markup.Escape(translation.Translation)}[/]");
                console.MarkupLine("each output token and the source token its cross-attention weighed most (last decoder layer, mean over heads):");
                var align = new Table().AddColumns("output token", "looked most at", "weight");
                foreach (var row in translation.Alignment)
                {
                    align.AddRow(Markup.Escape(Visible(row.Output)), Markup.Escape(Visible(row.Source)), row.Weight.ToString("F3", CultureInfo.InvariantCulture));
                }

                console.Write(align);
                break;
        }

        foreach (var picture in result.Pictures)
        {
            console.MarkupLine($"[grey]picture:[/] {Markup.Escape(picture)}");
        }

        foreach (var note in result.Notes)
        {
            console.MarkupLine($"[yellow]note:[/] {Markup.Escape(note)}");
        }

        console.MarkupLine($"[grey]code:[/] {Markup.Escape(string.Join(", ", result.Source))}");
    }

    private static Table CandidateTable(IEnumerable<(string Token, float Score, string Sequence)> rows)
    {
        var list = rows.ToList();
        var withSequence = list.Any(r => r.Sequence.Length > 0);
        var table = new Table().AddColumns("rank", "token", "probability", withSequence ? "sequence" : "relative to the first");
        var top = list.Count > 0 ? Math.Max(list[0].Score, 1e-12f) : 1f;
        var rank = 1;
        foreach (var (token, score, sequence) in list)
        {
            // A bar relative to the most likely candidate, so an untrained model's flat distribution still reads.
            var bar = new string('█', Math.Max(1, (int)Math.Round(score / top * 20)));
            table.AddRow(Cell(rank++), Markup.Escape(Visible(token)), score.ToString("F4", CultureInfo.InvariantCulture), Markup.Escape(withSequence ? sequence : bar));
        }

        return table;
    }

    /// <summary>A token as a quoted string with its spaces and line breaks visible.</summary>
    private static string Visible(string token) => "\"" + token.Replace("\n", "\\n", StringComparison.Ordinal).Replace("\t", "\\t", StringComparison.Ordinal) + "\"";

    private static string Cell(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Ids(IEnumerable<int> ids) => "[" + string.Join(", ", ids) + "]";

    internal sealed record TokensData(IReadOnlyList<TokenRow> Tokens, IReadOnlyList<int> Ids, IReadOnlyList<int>? BertBaseUncasedIds, bool MatchesHuggingFace);

    internal sealed record EmbeddingsData(int Tokens, int HiddenSize, string PositionKind, IReadOnlyList<float[]> SinusoidalFirstDimensions);

    internal sealed record HeadFocus(int Head, string Token, int Key, float Weight);

    internal sealed record AttentionData(int Layer, int Layers, int Query, string QueryToken, IReadOnlyList<HeadFocus> Heads);

    internal sealed record FillMaskData(IReadOnlyList<FillMaskResult> Candidates);

    internal sealed record NextTokenData(string Prompt, IReadOnlyList<Candidate> Candidates, int NewTokens, string Generation);

    internal sealed record SimilarityData(IReadOnlyList<string> Texts, IReadOnlyList<float[]> Matrix);

    internal sealed record AlignmentRow(string Output, string Source, float Weight);

    internal sealed record TranslationData(string Source, string Translation, IReadOnlyList<string> SourceTokens, IReadOnlyList<string> OutputTokens, IReadOnlyList<AlignmentRow> Alignment);

    /// <summary>The steps, each loading what it needs from the shipped models (loaded once, kept for later steps).</summary>
    private sealed class Tour(string outFolder, TextWriter error)
    {
        private (TextTokenizer Tokenizer, IExplainableModel Model, string Folder)? _bert;
        private ExplainReport? _bertReport;

        public async Task<StepResult> RunStepAsync(int step, CancellationToken ct) => step switch
        {
            1 => Tokens(),
            2 => Embeddings(),
            3 => Attention(),
            4 => await FillMaskAsync(ct).ConfigureAwait(false),
            5 => NextToken(ct),
            6 => await SimilarityAsync(ct).ConfigureAwait(false),
            _ => Translation(ct),
        };

        private static string Folder(string name) => ShippedModels.TryGetFolder(name) ?? throw new FileNotFoundException(
            $"the tour runs on {name}, shipped with sharpformer, but it is not installed: no {Path.Combine(ShippedModels.Root, name)}{Path.DirectorySeparatorChar}config.json. "
            + $"Reinstall sharpformer, or point {ShippedModels.RootVariable} at a folder holding sharpformer/<name>/ models.");

        private (TextTokenizer Tokenizer, IExplainableModel Model, string Folder) Bert()
        {
            if (_bert is null)
            {
                var folder = Folder(ShippedModels.BertMini);
                var (tokenizer, model) = ExplainModels.Load(folder);
                _bert = (tokenizer, model, folder);
            }

            return _bert.Value;
        }

        private ExplainReport BertReport()
        {
            var (tokenizer, model, _) = Bert();
            return _bertReport ??= Explainer.Run(model, tokenizer, Seed, new ExplainOptions { TopK = 5 }, ShippedModels.BertMini);
        }

        private StepResult Tokens()
        {
            var (tokenizer, _, _) = Bert();
            var encoding = tokenizer.Encode(Seed);
            var rows = Enumerable.Range(0, encoding.Count).Select(i => new TokenRow(i, encoding.Tokens[i], encoding.Ids[i])).ToList();
            var notes = new List<string>();
            IReadOnlyList<int>? reference = null;
            var matches = false;
            if (BundledModels.BertBaseUncasedVocabFolder() is { } vocabFolder)
            {
                reference = AutoTokenizer.FromPretrained(vocabFolder).Encode(Seed).Ids.ToArray();
                matches = reference.SequenceEqual(BertBaseUncasedSeedIds);
                if (!matches)
                {
                    notes.Add($"bert-base-uncased's vocabulary gave {Ids(reference)}, not HF's {Ids(BertBaseUncasedSeedIds)}: a tokenizer bug, please report it.");
                }
            }
            else
            {
                notes.Add("bert-base-uncased's vocab.txt (shipped inside the bundled MiniLM) is missing from this installation; its ids are left out.");
            }

            return new StepResult(1, Titles[0], ShippedModels.BertMini,
                ["src/Sharpformer.Text/BertNormalizer.cs", "src/Sharpformer.Text/BertPreTokenizer.cs", "src/Sharpformer.Text/BertWordPieceTokenizer.cs", "src/Sharpformer.Text/Training/BpeTrainer.cs"],
                [], new TokensData(rows, encoding.Ids.ToArray(), reference, matches), notes);
        }

        private StepResult Embeddings()
        {
            var report = BertReport();
            var t = report.Tokens.Count;
            var c = report.Model.HiddenSize;
            var sinusoidal = PositionPictures.Sinusoidal(t, c);
            var firstDims = Math.Min(6, c);
            var rows = Enumerable.Range(0, t).Select(p => sinusoidal.AsSpan(p * c, firstDims).ToArray()).ToList();
            Directory.CreateDirectory(outFolder);
            var pictures = new List<string>
            {
                Save(Heatmap(report.Embeddings.Values, report.Embeddings.Rows, report.Embeddings.Cols, "Token embeddings of the seed (token ↓, dimension →)", signed: true), "step2-embeddings.png", 900, 420),
            };

            // The sinusoidal table for a longer stretch than the seed, so its waves show: 64 positions.
            var length = 64;
            var table = PositionPictures.Sinusoidal(length, c);
            var plot = Heatmap(table, length, c, string.Create(CultureInfo.InvariantCulture, $"Sinusoidal position encoding, {length} positions × {c} dimensions (position ↓, dimension →)"), signed: true);
            pictures.Add(Save(plot, "step2-positions-sinusoidal.png", 900, 600));
            pictures.Add(Save(plot, "step2-positions-sinusoidal.svg", 900, 600));
            pictures.Add(Save(Heatmap(report.Positions.Table.Values, report.Positions.Table.Rows, report.Positions.Table.Cols, $"{ShippedModels.BertMini}: its own {report.Positions.Kind} position embeddings (position ↓, dimension →)", signed: true), "step2-positions-model.png", 900, 600));
            return new StepResult(2, Titles[1], ShippedModels.BertMini,
                ["src/Sharpformer.Models/Bert/BertModel.cs", "src/Sharpformer.NN/PositionalEncodings.cs", "src/Sharpformer.Explain/PositionPictures.cs"],
                pictures, new EmbeddingsData(t, c, report.Positions.Kind, rows), []);
        }

        private StepResult Attention()
        {
            var report = BertReport();
            var layer = report.Attention.Count - 1;
            var heads = report.Attention[layer].Heads;
            var query = report.Tokens.FirstOrDefault(k => k.Token == "[MASK]")?.Index ?? 0;
            var focus = new List<HeadFocus>();
            var pictures = new List<string>();
            Directory.CreateDirectory(outFolder);
            for (var h = 0; h < heads.Count; h++)
            {
                var m = heads[h];
                var best = TensorPrimitives.IndexOfMax(m.Values.AsSpan(query * m.Cols, m.Cols));
                focus.Add(new HeadFocus(h, report.Tokens[best].Token, best, m.Values[(query * m.Cols) + best]));
                var title = string.Create(CultureInfo.InvariantCulture, $"Layer {layer}, head {h}: attention (query ↓, key →)");
                pictures.Add(Save(Heatmap(m.Values, m.Rows, m.Cols, title, signed: false), string.Create(CultureInfo.InvariantCulture, $"step3-attention-layer{layer}-head{h}.png"), 560, 480));
            }

            return new StepResult(3, Titles[2], ShippedModels.BertMini,
                ["src/Sharpformer.NN/Layers.cs", "src/Sharpformer.Models/Bert/BertModel.cs", "src/Sharpformer.Explain/Explainer.cs"],
                pictures, new AttentionData(layer, report.Attention.Count, query, report.Tokens[query].Token, focus), []);
        }

        private async Task<StepResult> FillMaskAsync(CancellationToken ct)
        {
            var pipeline = await FillMaskPipeline.FromPretrainedAsync(Folder(ShippedModels.BertMini), PipelineVerbs.Options(error, truncate: false), ct).ConfigureAwait(false);
            var results = pipeline.Run(Seed, topK: 5)[0];
            return new StepResult(4, Titles[3], ShippedModels.BertMini,
                ["src/Sharpformer.Pipelines/FillMaskPipeline.cs", "src/Sharpformer.Models/Bert/BertHeads.cs"],
                [], new FillMaskData(results), []);
        }

        private static StepResult NextToken(CancellationToken ct)
        {
            var folder = Folder(ShippedModels.GptMini);
            var (tokenizer, model) = ExplainModels.Load(folder);
            var report = Explainer.Run(model, tokenizer, Prompt, new ExplainOptions { TopK = 5 }, ShippedModels.GptMini);
            var candidates = report.Output.Next?.Raw.Take(5).Select(c => new Candidate(c.Token, c.Id, c.Probability)).ToList() ?? [];
            var lm = AutoModelForCausalLM.FromPretrained(folder);
            var options = new GenerationOptions { MaxNewTokens = 20, DoSample = false };
            var generator = new TextGenerator(lm);
            generator.EnsureFits(tokenizer.Encode(Prompt).Ids.Count, options);
            var generation = Prompt + generator.Generate(tokenizer, Prompt, options, ct);
            return new StepResult(5, Titles[4], ShippedModels.GptMini,
                ["src/Sharpformer.Models/Gpt2/Gpt2LMHeadModel.cs", "src/Sharpformer.Generation/TextGenerator.cs", "src/Sharpformer.Generation/TokenSampler.cs"],
                [], new NextTokenData(Prompt, candidates, options.MaxNewTokens, generation), []);
        }

        private async Task<StepResult> SimilarityAsync(CancellationToken ct)
        {
            var folder = BundledModels.MiniLmFolder(error);
            var pipeline = await SentenceEmbeddingPipeline.FromPretrainedAsync(folder, PipelineVerbs.Options(error, truncate: false), ct).ConfigureAwait(false);
            var embeddings = pipeline.Embed(SimilarityTexts, ct: ct);
            var matrix = Similarity.CosineMatrix(embeddings);
            var rows = Enumerable.Range(0, SimilarityTexts.Length).Select(i => Enumerable.Range(0, SimilarityTexts.Length).Select(j => matrix[i, j]).ToArray()).ToList();
            return new StepResult(6, Titles[5], BundledModels.MiniLmId + " (bundled)",
                ["src/Sharpformer.Pipelines/SentenceEmbeddingPipeline.cs", "src/Sharpformer.Pipelines/Pooling.cs", "src/Sharpformer.Pipelines/Similarity.cs"],
                [], new SimilarityData(SimilarityTexts, rows), []);
        }

        private StepResult Translation(CancellationToken ct)
        {
            var folder = Folder(ShippedModels.TransformerDeEn);
            var model = AutoModelForSeq2SeqLM.FromPretrained(folder);
            var tokenizer = AutoTokenizer.FromPretrained(folder);
            var pipeline = new Text2TextGenerationPipeline(model, tokenizer, Text2TextTask.Translation);
            var options = GenerationConfigFile.Load(folder, new GenerationOptions { MaxNewTokens = 40 });
            var result = pipeline.Run([GermanSentence], options, ct)[0][0];
            var map = pipeline.CrossAttention(GermanSentence, result);
            var alignment = new List<AlignmentRow>();
            for (var i = 0; i < map.TargetTokens.Count; i++)
            {
                var best = TensorPrimitives.IndexOfMax(map.Weights.AsSpan(i * map.SourceTokens.Count, map.SourceTokens.Count));
                alignment.Add(new AlignmentRow(map.TargetTokens[i], map.SourceTokens[best], map.Weights[(i * map.SourceTokens.Count) + best]));
            }

            Directory.CreateDirectory(outFolder);
            var title = string.Create(CultureInfo.InvariantCulture, $"{ShippedModels.TransformerDeEn}: cross-attention, decoder layer {map.Layer + 1} of {map.Layers}, mean of {map.Heads} heads");
            var pictures = new List<string>
            {
                ExplainImages.CrossAttention(map, Path.Combine(outFolder, "step7-cross-attention.png"), title),
                ExplainImages.CrossAttention(map, Path.Combine(outFolder, "step7-cross-attention.svg"), title),
            };
            return new StepResult(7, Titles[6], ShippedModels.TransformerDeEn,
                ["src/Sharpformer.Models/Seq2Seq/TransformerModel.cs", "src/Sharpformer.Generation/Seq2SeqGenerator.cs", "src/Sharpformer.Generation/Text2TextGenerationPipeline.cs"],
                pictures, new TranslationData(GermanSentence, result.Text, map.SourceTokens, map.TargetTokens, alignment), []);
        }

        private string Save(Plot plot, string name, int width, int height)
        {
            var path = Path.Combine(outFolder, name);
            if (name.EndsWith(".svg", StringComparison.Ordinal))
            {
                plot.SaveSvg(path, width, height);
            }
            else
            {
                plot.SavePng(path, width, height);
            }

            return path;
        }

        private static Plot Heatmap(float[] values, int rows, int cols, string title, bool signed)
        {
            var grid = new double[rows, cols];
            double scale = 0;
            for (var i = 0; i < rows; i++)
            {
                for (var j = 0; j < cols; j++)
                {
                    grid[i, j] = values[(i * cols) + j];
                    scale = Math.Max(scale, Math.Abs(grid[i, j]));
                }
            }

            var plot = new Plot();
            var map = plot.Add.Heatmap(grid);
            map.Colormap = signed ? new ScottPlot.Colormaps.MellowRainbow() : new ScottPlot.Colormaps.Viridis();
            if (signed && scale > 0)
            {
                map.ManualRange = new ScottPlot.Range(-scale, scale);
            }

            plot.Add.ColorBar(map);
            plot.Title(title);
            return plot;
        }
    }
}
