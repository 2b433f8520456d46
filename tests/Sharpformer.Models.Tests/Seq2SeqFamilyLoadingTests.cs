using Sharpformer.IO.Config;
using Sharpformer.Models.Bart;
using Sharpformer.Models.Marian;
using Sharpformer.Models.T5;
using Sharpformer.Tensors;

namespace Sharpformer.Models.Tests;

/// <summary>
/// Loading the encoder-decoder families: AutoModelForSeq2SeqLM by model_type (and its refusal of other types), every
/// checkpoint tensor read, F16 weights, HF's config defaults (decoder start tokens), Marian's position table and the
/// refusal of separate vocabularies, T5's task-prefix hint, and the relative position buckets against values worked out
/// by hand from HF's formula.
/// </summary>
public class Seq2SeqFamilyLoadingTests
{
    private static string Folder(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "seq2seq_families", name);

    [Theory]
    [InlineData("bart", typeof(BartForConditionalGeneration))]
    [InlineData("marian", typeof(BartForConditionalGeneration))]
    [InlineData("mbart", typeof(BartForConditionalGeneration))]
    [InlineData("t5", typeof(T5ForConditionalGeneration))]
    [InlineData("t5_v1_1", typeof(T5ForConditionalGeneration))]
    public void AutoModel_PicksTheClassAndReadsEveryTensor(string family, Type type)
    {
        var model = AutoModelForSeq2SeqLM.FromPretrained(Folder(family));
        Assert.IsType(type, model);
        var report = model switch
        {
            BartForConditionalGeneration bart => bart.LoadReport!,
            T5ForConditionalGeneration t5 => t5.LoadReport!,
            _ => throw new InvalidOperationException(),
        };
        Assert.Empty(report.Missing);
        Assert.Empty(report.Unused);
    }

    [Fact]
    public void AutoModel_RefusesADecoderOnlyModelListingTheSupportedTypes()
    {
        var gpt2 = Path.Combine(AppContext.BaseDirectory, "fixtures", "gpt2_tiny");
        var error = Assert.Throws<NotSupportedException>(() => AutoModelForSeq2SeqLM.FromPretrained(gpt2));
        Assert.Contains("'gpt2'", error.Message, StringComparison.Ordinal);
        Assert.Contains("bart, marian, mbart, t5, sharpformer-transformer", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("bart")]
    [InlineData("marian")]
    [InlineData("t5_v1_1")]
    public void F16Weights_GiveTheF32LogitsWithinRounding(string family)
    {
        var f32 = AutoModelForSeq2SeqLM.FromPretrained(Folder(family));
        var f16 = AutoModelForSeq2SeqLM.FromPretrained(Folder(family), DType.F16);
        int[] source = [5, 7, 11, 13, f32.SpecialTokens.EosTokenId];
        int[] target = [f32.SpecialTokens.DecoderStartTokenId, 9, 17];
        var expected = new float[f32.VocabSize];
        var actual = new float[f16.VocabSize];
        f32.DecodeLast(target, f32.Encode(source, default, 1, 4), expected);
        f16.DecodeLast(target, f16.Encode(source, default, 1, 4), actual);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= Tolerances.F16VsF32Weights, $"{family} logit {i}: F32 {expected[i]}, F16 {actual[i]}.");
        }
    }

    [Fact]
    public void Configs_ResolveHuggingFaceDecoderStartTokens()
    {
        var bart = (BartConfig)ModelConfig.Parse("""{"model_type": "bart", "d_model": 16, "encoder_attention_heads": 2, "decoder_attention_heads": 2}""");
        Assert.Equal(2, bart.DecoderStartTokenId);
        Assert.Equal(1, bart.PadTokenId);
        var marian = (BartConfig)ModelConfig.Parse("""{"model_type": "marian", "d_model": 16, "encoder_attention_heads": 2, "decoder_attention_heads": 2}""");
        Assert.Equal(58100, marian.DecoderStartTokenId);
        Assert.Equal([0], marian.EosTokenIds);
        var t5 = (T5Config)ModelConfig.Parse("""{"model_type": "t5", "feed_forward_proj": "gated-gelu"}""");
        Assert.Equal(0, t5.DecoderStartTokenId);
        Assert.True(t5.IsGatedActivation);
        Assert.Equal("gelu_new", t5.DenseActivation);
        var bad = Assert.Throws<ModelConfigException>(() => ModelConfig.Parse("""{"model_type": "t5", "feed_forward_proj": "gated-gelu-x"}"""));
        Assert.Contains("feed_forward_proj", bad.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Marian_WithSeparateVocabularies_IsRefusedClearly()
    {
        var error = Assert.Throws<ModelConfigException>(() => ModelConfig.Parse(
            """{"model_type": "marian", "d_model": 16, "encoder_attention_heads": 2, "decoder_attention_heads": 2, "share_encoder_decoder_embeddings": false}"""));
        Assert.Contains("separate source and target vocabularies", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MarianPositions_AreSinInTheFirstHalfAndCosInTheSecond()
    {
        var table = MarianMTModel.SinusoidalPositions(5, 6).ToArray<float>();
        for (int p = 0; p < 5; p++)
        {
            for (int i = 0; i < 3; i++)
            {
                double angle = p / Math.Pow(10000, 2.0 * i / 6);
                Assert.Equal(Math.Sin(angle), table[(p * 6) + i], 5);
                Assert.Equal(Math.Cos(angle), table[(p * 6) + 3 + i], 5);
            }
        }
    }

    [Fact]
    public void T5TaskPrefixHint_ListsTheConfigsPrefixes()
    {
        var model = T5ForConditionalGeneration.FromPretrained(Folder("t5"));
        Assert.Null(model.TaskPrefixHint("summarize: a long text"));
        var hint = model.TaskPrefixHint("a long text");
        Assert.NotNull(hint);
        Assert.Contains("summarization: 'summarize: '", hint, StringComparison.Ordinal);
        Assert.Contains("translation_en_to_de: 'translate English to German: '", hint, StringComparison.Ordinal);
    }

    [Theory]
    // Bidirectional, 32 buckets, max distance 128 (t5-small): 16 per direction, exact below 8, then log-spaced.
    [InlineData(0, true, 0)]
    [InlineData(3, true, 19)]
    [InlineData(-3, true, 3)]
    [InlineData(-8, true, 8)] // 8 + ⌊log(8/8)/log(16)·8⌋ = 8
    [InlineData(-20, true, 10)] // 8 + ⌊log(2.5)/log(16)·8⌋ = 8 + ⌊2.64⌋
    [InlineData(-1000, true, 15)] // clamped to the last bucket of the direction
    [InlineData(1000, true, 31)]
    // Causal, 32 buckets: only earlier keys; later ones fall in bucket 0; exact below 16.
    [InlineData(5, false, 0)]
    [InlineData(-15, false, 15)]
    [InlineData(-40, false, 23)] // 16 + ⌊ln(40/16)/ln(128/16)·16⌋ = 16 + ⌊7.05⌋
    public void RelativePositionBucket_FollowsHfFormula(int relative, bool bidirectional, int expected)
    {
        Assert.Equal(expected, T5Stack.RelativePositionBucket(relative, bidirectional, 32, 128));
    }
}
