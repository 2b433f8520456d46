using Sharpformer.Models.Gpt2;
using Sharpformer.Models.Llama;
using Sharpformer.Tensors;

namespace Sharpformer.Models.Tests;

/// <summary>
/// The F16 KV cache (<see cref="KvCache.ElementType"/> = F16): the cache's own storage and bookkeeping, the models' default
/// and override (<see cref="IKvCacheElementType"/>), and GPT-2 and Llama-family decoding through it against the F32 cache
/// (lockstep, padded batches, chunked prefill, beam-search reordering; slots in LlamaFixtureTests, for every fixture).
/// </summary>
public class KvCacheF16Tests
{
    private static readonly int[] Prompt = [72, 101, 108, 108, 111, 44, 32, 119, 111];

    private static Gpt2LMHeadModel Gpt2(DType weights = DType.F32) =>
        Gpt2LMHeadModel.FromPretrained(Path.Combine(AppContext.BaseDirectory, "fixtures", "gpt2_tiny"), weights);

    private static LlamaForCausalLM Llama(string name) =>
        LlamaForCausalLM.FromPretrained(Path.Combine(AppContext.BaseDirectory, "fixtures", "llama", name));

    private static int ArgMax(ReadOnlySpan<float> row)
    {
        int best = 0;
        for (int i = 1; i < row.Length; i++)
        {
            best = row[i] > row[best] ? i : best;
        }

        return best;
    }

    /// <summary>Greedy decode with a cache of <paramref name="type"/>: each step's logits and the tokens chosen.</summary>
    private static (List<float[]> Logits, List<int> Tokens) Greedy<TModel>(TModel model, DType type, int[] prompt, int steps)
        where TModel : ICausalLM, IKvCacheElementType
    {
        model.KvCacheType = type;
        var cache = model.CreateCache(1, prompt.Length + steps);
        Assert.Equal(type, cache.ElementType);
        var logits = new float[model.VocabSize];
        var all = new List<float[]>();
        var tokens = new List<int>();
        model.ForwardLast(prompt, default, cache, logits);
        all.Add((float[])logits.Clone());
        for (int s = 0; s < steps; s++)
        {
            int next = ArgMax(logits);
            tokens.Add(next);
            model.ForwardLast([next], default, cache, logits);
            all.Add((float[])logits.Clone());
        }

        return (all, tokens);
    }

    private static float MaxDiff(List<float[]> a, List<float[]> b) =>
        a.Zip(b).Max(p => OnnxParityTests.MaxAbsDiff(p.First, p.Second));

    [Fact]
    public void Cache_F16_StoresHalvesAndRejectsTheF32Views()
    {
        var cache = new KvCache(2, 2, 4, 8, DType.F16);
        Assert.Equal(DType.F16, cache.ElementType);
        Assert.Equal(2L * 2 * 2 * 4 * 8 * 2, cache.Bytes);
        Assert.Equal(2 * 4 * 8, cache.KeysHalf(1).Length);
        Assert.Throws<InvalidOperationException>(() => cache.Keys(0).Length);
        Assert.Throws<InvalidOperationException>(() => cache.Values(0).Length);
        Assert.Throws<InvalidOperationException>(() => new KvCache(1, 1, 1, 8).KeysHalf(0).Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => new KvCache(1, 1, 1, 8, DType.BF16));

        // A row goes in rounded to F16, with subnormals flushed and overflow saturated.
        float[] key = [1f, 1e-6f, -70000f, 0.1f, 2f, 3f, 4f, 5f];
        float[] value = [.. key.Select(x => -x)];
        cache.WriteRow(1, 1, 2, key, value);
        var stored = cache.KeysHalf(1).Slice(((1 * 4) + 2) * 8, 8).ToArray();
        Assert.Equal([(Half)1f, (Half)0f, (Half)(-65504f), (Half)0.1f, (Half)2f, (Half)3f, (Half)4f, (Half)5f], stored);
        Assert.Equal((Half)(-0.1f), cache.ValuesHalf(1)[(((1 * 4) + 2) * 8) + 3]);
    }

    [Fact]
    public void Cache_F16_Reorder_CopiesTheSourceSequences()
    {
        var cache = new KvCache(1, 3, 4, 2, DType.F16);
        Span<int> positions = stackalloc int[3];
        cache.Advance(default, 1, positions);
        for (int b = 0; b < 3; b++)
        {
            cache.WriteRow(0, b, 0, [b + 1f, b + 2f], [-b - 1f, -b - 2f]);
        }

        cache.Reorder([2, 2, 0]);
        Assert.Equal([(Half)3f, (Half)4f], cache.KeysHalf(0).Slice(0, 2).ToArray());
        Assert.Equal([(Half)3f, (Half)4f], cache.KeysHalf(0).Slice(8, 2).ToArray());
        Assert.Equal([(Half)(-1f), (Half)(-2f)], cache.ValuesHalf(0).Slice(16, 2).ToArray());
    }

    [Fact]
    public void Models_DefaultCacheType_FollowsTheWeights_AndCanBeSet()
    {
        Assert.Equal(DType.F32, Gpt2().KvCacheType);
        Assert.Equal(DType.F16, Gpt2(DType.F16).KvCacheType);
        Assert.Equal(DType.F16, Gpt2(DType.BF16).CreateCache(1, 4).ElementType);
        Assert.Equal(DType.F32, Llama("llama").KvCacheType);
        Assert.Equal(DType.F16, LlamaForCausalLM.FromPretrained(Path.Combine(AppContext.BaseDirectory, "fixtures", "llama", "llama"), DType.F16).KvCacheType);

        var model = Gpt2(DType.F16);
        model.KvCacheType = DType.F32;
        Assert.Equal(DType.F32, model.CreateCache(1, 4).ElementType);
        Assert.Throws<ArgumentOutOfRangeException>(() => model.KvCacheType = DType.BF16);
    }

    [Fact]
    public void Gpt2_F16Cache_DecodesCloseToTheF32Cache_SameGreedyTokens()
    {
        var model = Gpt2();
        var f32 = Greedy(model, DType.F32, Prompt, 12);
        var f16 = Greedy(model, DType.F16, Prompt, 12);
        float diff = MaxDiff(f32.Logits, f16.Logits);
        Assert.True(diff <= Tolerances.F16CacheVsF32Cache, $"GPT-2 F16 vs F32 cache: max |Δlogit| = {diff}");
        Assert.Equal(f32.Tokens, f16.Tokens);
    }

    [Theory]
    [MemberData(nameof(LlamaFixtureTests.Cases), MemberType = typeof(LlamaFixtureTests))]
    public void Llama_F16Cache_DecodesCloseToTheF32Cache_SameGreedyTokens(string name)
    {
        // The fixtures include grouped-query attention (Hkv < H) and Mistral's sliding window, which a 20-token decode crosses.
        var model = Llama(name);
        int[] prompt = [5, 17, 42, 8, 33, 71, 2];
        var f32 = Greedy(model, DType.F32, prompt, 14);
        var f16 = Greedy(model, DType.F16, prompt, 14);
        float diff = MaxDiff(f32.Logits, f16.Logits);
        Assert.True(diff <= Tolerances.F16CacheVsF32Cache, $"{name} F16 vs F32 cache: max |Δlogit| = {diff}");
        Assert.Equal(f32.Tokens, f16.Tokens);
    }

    [Fact]
    public void Gpt2_F16Cache_ChunkedPrefill_SameAsOneChunk()
    {
        // Every attention reads K/V back from the F16 cache, so a prompt prefilled in two chunks sees the same values
        // as in one up to the kernels' sum order, except where that F32 noise moves a K or V value across an F16
        // rounding boundary (as in a padded batch vs alone).
        var model = Gpt2();
        model.KvCacheType = DType.F16;
        int v = model.VocabSize;
        var one = model.CreateCache(1, 16);
        var whole = new float[v];
        model.ForwardLast(Prompt, default, one, whole);
        var two = model.CreateCache(1, 16);
        var chunked = new float[v];
        model.ForwardLast(Prompt.AsSpan(0, 4), default, two, chunked);
        model.ForwardLast(Prompt.AsSpan(4), default, two, chunked);
        float diff = OnnxParityTests.MaxAbsDiff(whole, chunked);
        Assert.True(diff <= Tolerances.F16CacheBatchVsAlone, $"chunked vs one-chunk prefill with the F16 cache: max |Δ| = {diff}");
    }

    [Theory]
    [InlineData(DType.F32)]
    [InlineData(DType.F16)]
    public void Gpt2_PaddedBatch_EachRowAsAlone(DType cacheType)
    {
        // Two prompts left-padded to one length, decoded in lockstep, against each alone (both with the same cache type).
        var model = Gpt2();
        model.KvCacheType = cacheType;
        int v = model.VocabSize;
        int[] a = [72, 101, 108, 108, 111], b = [84, 104, 101];
        int[] ids = [.. a, 0, 0, .. b];
        float[] mask = [1, 1, 1, 1, 1, 0, 0, 1, 1, 1];
        var cache = model.CreateCache(2, 8);
        var logits = new float[2 * v];
        model.ForwardLast(ids, mask, cache, logits);
        int[] next = [ArgMax(logits.AsSpan(0, v)), ArgMax(logits.AsSpan(v, v))];
        model.ForwardLast(next, [1f, 1f], cache, logits);
        foreach (var (prompt, row) in new[] { (a, 0), (b, 1) })
        {
            var alone = model.CreateCache(1, 8);
            var single = new float[v];
            model.ForwardLast(prompt, default, alone, single);
            model.ForwardLast([next[row]], default, alone, single);
            float diff = OnnxParityTests.MaxAbsDiff(single, logits.AsSpan(row * v, v).ToArray());
            float tolerance = cacheType == DType.F16 ? Tolerances.F16CacheBatchVsAlone : Tolerances.VsReference;
            Assert.True(diff <= tolerance, $"row {row}: max |Δ| vs alone = {diff}");
        }
    }

    [Fact]
    public void Apply_SetsTheModelsCacheType_NullKeepsIt_AndAModelWithoutTheChoiceTakesF32Only()
    {
        var model = Gpt2();
        KvCacheElementType.Apply(model, null);
        Assert.Equal(DType.F32, model.KvCacheType);
        KvCacheElementType.Apply(model, DType.F16);
        Assert.Equal(DType.F16, model.KvCacheType);
        Assert.Equal(DType.F16, model.CreateCache(1, 4).ElementType);

        var fixedF32 = new F32OnlyModel(model);
        KvCacheElementType.Apply(fixedF32, DType.F32);
        var e = Assert.Throws<NotSupportedException>(() => KvCacheElementType.Apply(fixedF32, DType.F16));
        Assert.Contains("F32 only", e.Message, StringComparison.Ordinal);
    }

    /// <summary>A causal LM that does not offer the cache-type choice (forwards to another model).</summary>
    private sealed class F32OnlyModel(ICausalLM inner) : ICausalLM
    {
        public int VocabSize => inner.VocabSize;

        public int MaxPositions => inner.MaxPositions;

        public KvCache CreateCache(int batch, int capacity) => new(1, batch, capacity, 1);

        public void ForwardLast(ReadOnlySpan<int> ids, ReadOnlySpan<float> attentionMask, KvCache cache, Span<float> lastLogits) =>
            inner.ForwardLast(ids, attentionMask, cache, lastLogits);
    }
}
