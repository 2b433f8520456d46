using Sharpformer.Tensors.Kernels;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Tests.Kernels;

// Some cases set ParallelFor.MaxDegreeOfParallelism (process-wide): this class shares the collection that runs such tests one at a time.
[Collection("ParallelFor degree")]
public class EncoderAttentionTests
{
    public static TheoryData<int, int, int, int, bool> Cases() => new()
    {
        // B, H, T, D, padding
        { 1, 1, 1, 32, false },    // one token
        { 2, 3, 5, 32, true },     // fewer keys than one panel, fewer queries than one block
        { 1, 2, 33, 32, false },   // one query past a 32-query block, keys past whole panels
        { 2, 2, 50, 64, true },    // BERT-base's head width
        { 1, 1, 130, 20, true },   // D not a multiple of the 12-row panel or a vector
        { 1, 2, 17, 7, false },    // odd D below one panel
        { 1, 1, 300, 32, true },   // k = T above the GEMM's k block
    };

    public static TheoryData<int> Tiers()
    {
        var tiers = new TheoryData<int>();
        foreach (var isa in new[] { GemmIsa.Scalar, GemmIsa.Vector128, GemmIsa.Vector256, GemmIsa.Vector512 })
        {
            if (GemmDriver.IsSupported(isa)) tiers.Add((int)isa);
        }

        return tiers;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Forward_EveryTier_MatchesNaiveReference(int b, int h, int t, int d, bool pad)
    {
        var (qkv, mask) = Make(b, h, t, d, pad, seed: b + h + t + d);
        var expected = Reference(qkv, mask, b, h, t, d);

        foreach (int tier in Tiers())
        {
            var output = new float[b * t * h * d];
            output.AsSpan().Fill(float.NaN); // every element must be written
            EncoderAttention.ForwardCore((GemmIsa)tier, qkv, mask, output, b, t, h, d);
            KernelTestData.Close(expected, output, Tolerances.KernelVsReference, Tolerances.KernelVsReference, $"output on {(GemmIsa)tier}");
        }
    }

    [Fact]
    public void Forward_PublicEntry_SameAsItsTier_AndIndependentOfThreads()
    {
        var (qkv, mask) = Make(3, 4, 70, 32, pad: true, seed: 5);
        var one = new float[3 * 70 * 4 * 32];
        var two = new float[one.Length];
        int saved = ParallelFor.MaxDegreeOfParallelism;
        try
        {
            ParallelFor.MaxDegreeOfParallelism = 1;
            EncoderAttention.Forward(qkv, mask, one, 3, 70, 4, 32);
            ParallelFor.MaxDegreeOfParallelism = 2;
            EncoderAttention.Forward(qkv, mask, two, 3, 70, 4, 32);
        }
        finally
        {
            ParallelFor.MaxDegreeOfParallelism = saved;
        }

        Assert.Equal(one, two);
        KernelTestData.Close(Reference(qkv, mask, 3, 4, 70, 32), one, Tolerances.KernelVsReference, Tolerances.KernelVsReference, "output");
    }

    [Fact]
    public void Forward_ShortSpans_ClearErrors()
    {
        var qkv = new float[2 * 4 * 3 * 8];
        var output = new float[2 * 4 * 8];

        var shortQkv = Assert.Throws<ArgumentException>(() => EncoderAttention.Forward(qkv.AsSpan(1), default, output, 2, 4, 1, 8));
        var shortMask = Assert.Throws<ArgumentException>(() => EncoderAttention.Forward(qkv, new float[3], output, 2, 4, 1, 8));
        var zero = Assert.Throws<ArgumentException>(() => EncoderAttention.Forward(qkv, default, output, 2, 0, 1, 8));

        Assert.Contains("qkv", shortQkv.Message, StringComparison.Ordinal);
        Assert.Contains("keyPaddingMask", shortMask.Message, StringComparison.Ordinal);
        Assert.Contains("length 0", zero.Message, StringComparison.Ordinal);
    }

    private static (float[] Qkv, float[] Mask) Make(int b, int h, int t, int d, bool pad, int seed)
    {
        var qkv = KernelTestData.Uniform(b * t * 3 * h * d, -2f, 2f, seed);
        if (!pad) return (qkv, []);
        var mask = KernelTestData.Uniform(b * t, 0f, 1f, seed + 1).Select(v => v < 0.3f ? 0f : 1f).ToArray();
        mask[t - 1] = 1f; // the first sequence keeps at least its last key
        if (b > 1) Array.Fill(mask, 0f, t, t); // the second is fully padded: its outputs must be zeros
        return (qkv, mask);
    }

    /// <summary>The naive reference over the fused layout: <see cref="Attention.ForwardReference"/> in double.</summary>
    private static float[] Reference(float[] qkv, float[] mask, int b, int h, int t, int d)
    {
        int c = h * d;
        var shape = new AttentionShape(b, h, t, t, d) { QueryRowStride = 3 * c, KeyRowStride = 3 * c, ValueRowStride = 3 * c, OutputRowStride = c };
        var expected = new float[b * t * c];
        Attention.ForwardReference(shape, qkv, qkv.AsSpan(c), qkv.AsSpan(2 * c), expected, false, mask, 1f / MathF.Sqrt(d), default);
        return expected;
    }
}
