using System.Text.Json;
using Sharpformer.Cli.Commands;
using Sharpformer.Models;
using Sharpformer.Pipelines;
using Sharpformer.Text;

namespace Sharpformer.Cli.Tests;

/// <summary>
/// The real shipped models (repository models/sharpformer/, installed by the build beside the command, as the tool
/// package installs them): each is in place with its card, meets the quality bar its card reports, and the tour runs on
/// them offline with the default shipped-models root (no SHARPFORMER_SHIPPED_MODELS).
/// </summary>
public class ShippedModelsTests(ShippedModelFolders offline) : IClassFixture<ShippedModelFolders>
{
    /// <summary>
    /// Adjectives that fit "The heart is a ___ organ." (the bar: the top 5 hold a word that fits an organ, e.g.
    /// muscular, hollow, vital). Fixed before the model was trained; function words and nouns are not in it.
    /// </summary>
    private static readonly HashSet<string> OrganWords = new(StringComparer.Ordinal)
    {
        "muscular", "hollow", "vital", "internal", "major", "large", "important", "essential", "principal", "main", "central",
        "chief", "human", "living", "bodily", "cardiac", "circulatory", "vascular", "fleshy", "glandular", "sensory",
        "respiratory", "digestive", "reproductive", "abdominal", "thoracic", "complex", "delicate", "soft", "strong",
        "powerful", "primary", "small", "great", "single", "double", "muscle", "membranous", "tubular",
    };

    /// <summary>bert-mini-en's scored tokens of John 15 under the unigram baseline (see the theory below).</summary>
    private const double BertUnigramPerplexity = 702.53;

    private static string Root => Path.Combine(AppContext.BaseDirectory, "models");

    private static string Folder(string name) => Path.Combine(Root, name.Replace('/', Path.DirectorySeparatorChar));

    [Theory]
    [InlineData(ShippedModels.BertMini)]
    [InlineData(ShippedModels.GptMini)]
    [InlineData(ShippedModels.TransformerDeEn)]
    public void Installed_WithTheirCardLicenceAndLossCurve(string name)
    {
        var folder = Folder(name);
        foreach (var file in new[] { "config.json", "model.safetensors", "README.md", "loss.png" })
        {
            Assert.True(File.Exists(Path.Combine(folder, file)), $"{name}: {file} is missing from {folder}");
        }

        var card = File.ReadAllText(Path.Combine(folder, "README.md"));
        Assert.Contains("license_name: gpl-2.0-or-later", card, StringComparison.Ordinal);
        Assert.Contains("--resume", card, StringComparison.Ordinal);
        Assert.NotNull(AutoTokenizer.FromPretrained(folder));
    }

    [Fact]
    public async Task BertMini_FillMask_TopFiveHoldsAWordThatFitsAnOrgan()
    {
        var pipeline = await FillMaskPipeline.FromPretrainedAsync(Folder(ShippedModels.BertMini));
        var top5 = pipeline.Run("The heart is a [MASK] organ.", topK: 5)[0];
        Assert.True(top5.Any(c => OrganWords.Contains(c.TokenStr)), "top 5: " + string.Join(", ", top5.Select(c => c.TokenStr)));
    }

    [Fact]
    public async Task Tour_OnTheRealShippedModels_OfflineFromTheDefaultRoot()
    {
        var (exit, stdout, stderr) = await offline.RunOfflineAsync(string.Empty, "tour", "--json", "--out", Path.Combine(offline.Root, "tour-real"));
        Assert.True(exit == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var steps = doc.RootElement.GetProperty("steps").EnumerateArray().ToList();
        Assert.Equal(7, steps.Count);
        Assert.Equal(ShippedModels.BertMini, steps[3].GetProperty("model").GetString());
        var fill = steps[3].GetProperty("data").GetProperty("candidates").EnumerateArray().Select(c => c.GetProperty("token_str").GetString()!).ToList();
        Assert.Contains(fill, OrganWords.Contains);
        var generation = steps[4].GetProperty("data").GetProperty("generation").GetString()!;
        Assert.StartsWith(TourCommand.Prompt, generation, StringComparison.Ordinal);
        Assert.Equal(ShippedModels.TransformerDeEn, steps[6].GetProperty("model").GetString());
        Assert.False(string.IsNullOrWhiteSpace(steps[6].GetProperty("data").GetProperty("translation").GetString()));
    }

    [Fact]
    public void TransformerDeEn_TranslatesCommonDictionaryPhrases()
    {
        // Phrases written for this test (not taken from the corpus); the model's held-out BLEU is in its card. A guard
        // against loading or decoding regressions: five of six must come out exactly.
        (string German, string English)[] phrases =
        [
            ("das Haus", "the house"), ("der Hund", "the dog"), ("ein Buch", "a book"),
            ("der Tisch", "the table"), ("die Mutter", "the mother"), ("die Stadt", "the city"),
        ];
        var folder = Folder(ShippedModels.TransformerDeEn);
        var pipeline = new Generation.Text2TextGenerationPipeline(AutoModelForSeq2SeqLM.FromPretrained(folder), AutoTokenizer.FromPretrained(folder), Generation.Text2TextTask.Translation);
        var options = Generation.GenerationConfigFile.Load(folder, new Generation.GenerationOptions { MaxNewTokens = 63 });
        Assert.Equal(4, options.NumBeams);
        var results = pipeline.Run([.. phrases.Select(p => p.German)], options);
        var correct = phrases.Where((p, i) => results[i][0].Text.Trim() == p.English).Count();
        Assert.True(correct >= 5, string.Join("; ", phrases.Select((p, i) => $"{p.German} → {results[i][0].Text}")));
    }

    /// <summary>
    /// John 15 (King James Bible, public domain) from corpus-en's held-out split: 27 verses neither tokenizer nor model saw.
    /// The unigram perplexities are of the same scored tokens under the add-one unigram of the training corpus, measured
    /// with <c>sharpformer evaluate clm|mlm --model models/sharpformer/NAME --data tests/fixtures/shipped/kjv-john-15.txt
    /// --baseline-data corpus/train.jsonl --block-size 256|128</c> (the corpus is rebuilt by data/corpus/make_corpus.py).
    /// </summary>
    [Theory]
    [InlineData(ShippedModels.GptMini, 256, 941.18)] // gpt-mini-en: 765 scored tokens, perplexity 50.3 when measured
    [InlineData(ShippedModels.BertMini, 128, BertUnigramPerplexity)] // bert-mini-en: 92 masked tokens, perplexity 17.1 when measured
    public void HeldOutScripture_PerplexityFarBelowTheUnigramBaseline(string name, int blockSize, double unigramPerplexity)
    {
        var fixture = Path.Combine(Text2TextCommandTests.RepoRoot(), "tests", "fixtures", "shipped", "kjv-john-15.txt");
        var result = Training.LanguageModelEvaluation.Run(new Training.LanguageModelEvaluationOptions
        {
            Objective = name == ShippedModels.GptMini ? Training.LanguageModelingObjective.CausalLM : Training.LanguageModelingObjective.MaskedLM,
            ModelFolder = Folder(name),
            Data = fixture,
            BlockSize = blockSize,
            CacheFolder = Path.Combine(offline.Root, "token-cache-" + name.Replace('/', '-')),
        });
        Assert.True(result.ScoredTokens > 50, $"{result.ScoredTokens} tokens scored");
        Assert.True(result.Perplexity < unigramPerplexity / 4, $"{name}: perplexity {result.Perplexity:F1} vs the unigram baseline's {unigramPerplexity}");
    }
}
