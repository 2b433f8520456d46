using System.Text.Json;
using Sharpformer.Models;
using Sharpformer.Models.Seq2Seq;

namespace Sharpformer.Generation.Tests;

/// <summary>
/// A deterministic encoder-decoder for generation tests, the model of tests/fixtures/seq2seq_beam/make_fixture.py:
/// the state of a row is h = (Σ source ids) mod 101, then h = (7·h + t + 1) mod 101 for each decoder token t (start
/// token included), and logits[v] = 2.5·sin(1.37·v + 0.61·h). Decoder tokens live in the self-attention cache (width 1)
/// and the source hash in the cross-attention cache, so <see cref="Seq2SeqState.Reorder"/> moves them with the beams.
/// </summary>
internal sealed class HashSeq2SeqModel(Seq2SeqSpecialTokens tokens, int vocab = 8, int maxPositions = 64) : ISeq2SeqLM
{
    public int VocabSize => vocab;

    public int MaxSourcePositions => maxPositions;

    public int MaxTargetPositions => maxPositions;

    public Seq2SeqSpecialTokens SpecialTokens => tokens;

    public int EncodeCalls { get; private set; }

    public Seq2SeqState Encode(ReadOnlySpan<int> sourceIds, ReadOnlySpan<float> sourceMask, int batch, int targetCapacity)
    {
        EncodeCalls++;
        int s = sourceIds.Length / batch;
        var cross = new KvCache(1, batch, 1, 1);
        for (int b = 0; b < batch; b++)
        {
            int sum = 0;
            for (int t = 0; t < s; t++)
            {
                if (sourceMask.IsEmpty || sourceMask[(b * s) + t] != 0f)
                {
                    sum += sourceIds[(b * s) + t];
                }
            }

            cross.Keys(0)[b] = sum % 101;
        }

        cross.Advance(default, 1, new int[batch]);
        return new Seq2SeqState(new KvCache(1, batch, targetCapacity, 1), cross, new float[batch], 1);
    }

    public void DecodeLast(ReadOnlySpan<int> targetIds, Seq2SeqState state, Span<float> lastLogits)
    {
        var cache = state.SelfAttention;
        int batch = state.Batch, t = targetIds.Length / batch, past = cache.Length;
        cache.Advance(default, t, new int[targetIds.Length]);
        for (int b = 0; b < batch; b++)
        {
            for (int i = 0; i < t; i++)
            {
                cache.Keys(0)[(b * cache.Capacity) + past + i] = targetIds[(b * t) + i];
            }

            int h = (int)state.CrossAttention.Keys(0)[b];
            for (int i = 0; i < cache.Length; i++)
            {
                h = ((7 * h) + (int)cache.Keys(0)[(b * cache.Capacity) + i] + 1) % 101;
            }

            for (int v = 0; v < vocab; v++)
            {
                lastLogits[(b * vocab) + v] = (float)(2.5 * Math.Sin((1.37 * v) + (0.61 * h)));
            }
        }
    }
}

/// <summary>
/// Encoder-decoder generation against tests/fixtures/seq2seq_beam (HF's greedy and beam search written out in Python)
/// and against the torch.nn.Transformer fixture's greedy ids; batching, streaming, forced tokens and bad options.
/// </summary>
public class Seq2SeqGeneratorTests
{
    private static readonly Seq2SeqSpecialTokens Tokens = new(DecoderStartTokenId: 1, EosTokenId: 2, PadTokenId: 0);

    private static readonly Lazy<JsonElement> Expected = new(() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "seq2seq_beam", "expected.json"))).RootElement);

    private static GenerationOptions Options(JsonElement o)
    {
        float Get(string name, float fallback) => o.TryGetProperty(name, out var v) ? v.GetSingle() : fallback;
        return new GenerationOptions
        {
            NumBeams = (int)Get("num_beams", 1),
            MaxNewTokens = (int)Get("max_new_tokens", 20),
            LengthPenalty = Get("length_penalty", 1f),
            EarlyStopping = o.TryGetProperty("early_stopping", out var e) && e.GetBoolean(),
            MinNewTokens = (int)Get("min_new_tokens", 0),
            NoRepeatNgramSize = (int)Get("no_repeat", 0),
            NumReturnSequences = (int)Get("num_return_sequences", 1),
        };
    }

    [Fact]
    public void GreedyAndBeamSearch_MatchHfReference()
    {
        var generator = new Seq2SeqGenerator(new HashSeq2SeqModel(Tokens));
        int count = 0;
        foreach (var c in Expected.Value.GetProperty("cases").EnumerateArray())
        {
            var source = Fixture.Ints(c.GetProperty("source"));
            var options = Options(c.GetProperty("options"));
            var results = generator.Generate(source, options);
            var expected = c.GetProperty("results").EnumerateArray().ToList();
            Assert.Equal(expected.Count, results.Count);
            for (int i = 0; i < expected.Count; i++)
            {
                string what = $"{c.GetProperty("kind")} {c.GetProperty("options")} source [{string.Join(",", source)}] result {i}";
                Assert.True(Fixture.Ints(expected[i].GetProperty("tokens")).SequenceEqual(results[i].Tokens), $"{what}: got [{string.Join(",", results[i].Tokens)}]");
                if (expected[i].TryGetProperty("score", out var score))
                {
                    Assert.Equal(score.GetDouble(), results[i].Score!.Value, Tolerances.BeamScore);
                }
            }

            count++;
        }

        Assert.Equal(21, count);
    }

    [Fact]
    public void GreedyBatch_EqualsOneByOne_AndStreamsEveryToken()
    {
        var model = new HashSeq2SeqModel(Tokens);
        var generator = new Seq2SeqGenerator(model);
        int[][] sources = [[3, 4, 5], [6, 7], [5, 5, 3, 6]];
        var options = new GenerationOptions { MaxNewTokens = 8 };
        var streamed = sources.Select(_ => new List<int>()).ToArray();
        var batch = generator.GenerateBatch(sources, options, (row, token) => streamed[row].Add(token));
        Assert.Equal(1, model.EncodeCalls);
        for (int b = 0; b < sources.Length; b++)
        {
            var alone = generator.Generate(sources[b], options)[0];
            Assert.Equal(alone.Tokens, batch[b][0].Tokens);
            Assert.Equal(alone.Reason, batch[b][0].Reason);
            Assert.Equal(alone.Tokens, streamed[b]);
        }
    }

    [Fact]
    public void Sampling_WithReturnSequences_IsSeededAndReturnsEachDraw()
    {
        var generator = new Seq2SeqGenerator(new HashSeq2SeqModel(Tokens));
        var options = new GenerationOptions { DoSample = true, Seed = 7, NumReturnSequences = 3, MaxNewTokens = 6, TopK = 0 };
        var first = generator.Generate([3, 4, 5], options);
        var again = generator.Generate([3, 4, 5], options);
        Assert.Equal(3, first.Count);
        Assert.Equal(first.Select(s => s.Tokens), again.Select(s => s.Tokens));
        Assert.Contains(first, s => !s.Tokens.SequenceEqual(first[0].Tokens));
    }

    [Fact]
    public void ForcedBosAndEos_AreTheFirstAndLastTokens()
    {
        var forced = Tokens with { ForcedBosTokenId = 5, ForcedEosTokenId = 2 };
        var generator = new Seq2SeqGenerator(new HashSeq2SeqModel(forced));
        foreach (int beams in new[] { 1, 3 })
        {
            var result = generator.Generate([6, 7], new GenerationOptions { NumBeams = beams, MaxNewTokens = 7, LengthPenalty = 2f })[0];
            Assert.Equal(5, result.Tokens[0]);
            Assert.Equal(2, result.Tokens[^1]);
            Assert.True(result.Tokens.Count <= 7);
        }
    }

    [Fact]
    public void TransformerFixture_GreedyThroughTheGenerator_EqualsTorch()
    {
        string folder = Path.Combine(AppContext.BaseDirectory, "fixtures", "seq2seq");
        var model = TransformerForConditionalGeneration.FromPretrained(folder);
        var expected = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "expected.json"))).RootElement;
        var sources = expected.GetProperty("source_ids").EnumerateArray()
            .Select(r => (IReadOnlyList<int>)r.EnumerateArray().Select(x => x.GetInt32()).Where(id => id != model.Config.PadTokenId).ToList()).ToList();
        var greedy = expected.GetProperty("greedy_ids").EnumerateArray().Select(Fixture.Ints).ToList();
        int maxLength = expected.GetProperty("greedy_max_length").GetInt32();
        var results = new Seq2SeqGenerator(model).GenerateBatch(sources, new GenerationOptions { MaxNewTokens = maxLength - 1 });
        for (int b = 0; b < sources.Count; b++)
        {
            // torch's rows: the start token, the generated tokens, then pad after an EOS.
            var tokens = results[b][0].Tokens;
            Assert.Equal(greedy[b].Skip(1).Take(tokens.Count), tokens);
        }

        // Beam search with one beam is greedy search.
        var oneBeam = new Seq2SeqGenerator(model).Generate(sources[0], new GenerationOptions { NumBeams = 1, MaxNewTokens = maxLength - 1 })[0];
        Assert.Equal(results[0][0].Tokens, oneBeam.Tokens);
    }

    [Fact]
    public void NoRepeatNgramAndMinNewTokens_BanByHand()
    {
        // Sequence 1 5 6 1 5: the 3-gram prefix (1, 5) was followed by 6 → 6 banned; 2-grams: after 5 came 6 → 6 banned.
        var scores = new float[8];
        LogitsProcessors.NoRepeatNgram(scores, [1, 5, 6, 1, 5], 3);
        Assert.Equal([0, 0, 0, 0, 0, 0, float.NegativeInfinity, 0], scores);
        scores = new float[8];
        LogitsProcessors.NoRepeatNgram(scores, [1, 5, 6, 5, 7, 5], 2);
        Assert.Equal([0, 0, 0, 0, 0, 0, float.NegativeInfinity, float.NegativeInfinity], scores);
        scores = new float[8];
        LogitsProcessors.NoRepeatNgram(scores, [4], 3); // shorter than n − 1: nothing to ban
        Assert.All(scores, s => Assert.Equal(0f, s));

        scores = new float[4];
        LogitsProcessors.MinNewTokens(scores, generatedTokens: 1, minNewTokens: 2, stopTokenIds: [2, 3]);
        Assert.Equal([0, 0, float.NegativeInfinity, float.NegativeInfinity], scores);
        scores = new float[4];
        LogitsProcessors.MinNewTokens(scores, generatedTokens: 2, minNewTokens: 2, stopTokenIds: [2, 3]);
        Assert.All(scores, s => Assert.Equal(0f, s));
    }

    [Fact]
    public void BadWords_BanByHand_AsHfNoBadWordsLogitsProcessor()
    {
        // [6] is always banned; [1, 5, 7] bans 7 only right after 1 5; [3] is an end-of-sequence id, which HF never bans.
        IReadOnlyList<IReadOnlyList<int>> bad = [[6], [1, 5, 7], [3]];
        var scores = new float[8];
        LogitsProcessors.BadWords(scores, [2, 1, 5], bad, stopTokenIds: [3]);
        Assert.Equal([0, 0, 0, 0, 0, 0, float.NegativeInfinity, float.NegativeInfinity], scores);
        scores = new float[8];
        LogitsProcessors.BadWords(scores, [1, 4], bad, stopTokenIds: [3]);
        Assert.Equal([0, 0, 0, 0, 0, 0, float.NegativeInfinity, 0], scores);
        scores = new float[8];
        LogitsProcessors.BadWords(scores, [], bad);
        Assert.Equal([0, 0, 0, float.NegativeInfinity, 0, 0, float.NegativeInfinity, 0], scores);

        // Through the generator: the token greedy search would pick first is never generated once it is a bad word.
        var model = new HashSeq2SeqModel(Tokens);
        var plain = new Seq2SeqGenerator(model).Generate([3, 4], new GenerationOptions { MaxNewTokens = 6 })[0].Tokens;
        int first = plain.First(t => t != model.SpecialTokens.EosTokenId);
        var banned = new Seq2SeqGenerator(model).Generate([3, 4], new GenerationOptions { MaxNewTokens = 6, BadWordsIds = [[first]] })[0].Tokens;
        Assert.DoesNotContain(first, banned);
    }

    public static TheoryData<string, GenerationOptions> InvalidOptions => new()
    {
        { "BadWordsIds", new GenerationOptions { BadWordsIds = [[]] } },
        { "NumReturnSequences", new GenerationOptions { NumBeams = 2, NumReturnSequences = 3 } },
        { "NumReturnSequences", new GenerationOptions { NumReturnSequences = 2 } },
        { "NoRepeatNgramSize", new GenerationOptions { NoRepeatNgramSize = -1 } },
        { "MinNewTokens", new GenerationOptions { MinNewTokens = 30, MaxNewTokens = 20 } },
        { "MaxNewTokens", new GenerationOptions { MaxNewTokens = 64 } },
    };

    [Theory]
    [MemberData(nameof(InvalidOptions))]
    public void BadOptionsOrSources_SayWhatIsWrong(string name, GenerationOptions options)
    {
        var generator = new Seq2SeqGenerator(new HashSeq2SeqModel(Tokens));
        var error = Assert.ThrowsAny<ArgumentException>(() => generator.Generate([3, 4], options));
        Assert.Contains(name, error.Message, StringComparison.Ordinal);
        var tooLong = Assert.Throws<ArgumentException>(() => generator.Generate(new int[65], new GenerationOptions()));
        Assert.Contains("truncate", tooLong.Message, StringComparison.Ordinal);
    }
}
