using Sharpformer.Tensors.Kernels;

namespace Sharpformer.Tensors.Tests.Kernels;

/// <summary>Elementwise, reductions, embedding and cross-entropy against their references.</summary>
public class MiscKernelTests
{
    [Theory]
    [InlineData(Elementwise.BinaryKind.Add)]
    [InlineData(Elementwise.BinaryKind.Subtract)]
    [InlineData(Elementwise.BinaryKind.Multiply)]
    [InlineData(Elementwise.BinaryKind.Divide)]
    internal void Broadcast_EveryWidth_MatchesReference(Elementwise.BinaryKind kind)
    {
        foreach (int n in KernelTestData.Lengths())
        {
            var x = KernelTestData.Uniform(3 * n, -5f, 5f, n);
            var row = KernelTestData.Uniform(n, 0.5f, 2f, n + 1);
            var y = new float[x.Length];
            var expected = new float[x.Length];
            switch (kind)
            {
                case Elementwise.BinaryKind.Add: Elementwise.AddBroadcast(x, row, y, 3, n); break;
                case Elementwise.BinaryKind.Subtract: Elementwise.SubtractBroadcast(x, row, y, 3, n); break;
                case Elementwise.BinaryKind.Multiply: Elementwise.MultiplyBroadcast(x, row, y, 3, n); break;
                default: Elementwise.DivideBroadcast(x, row, y, 3, n); break;
            }

            Elementwise.BroadcastReference(kind, x, row, expected, 3, n);
            KernelTestData.Close(expected, y, 0f, 1e-7f, $"{kind} n={n}");

            // Same-shape form: the row repeated.
            var y2 = new float[n];
            var x0 = x.AsSpan(0, n);
            switch (kind)
            {
                case Elementwise.BinaryKind.Add: Elementwise.Add(x0, row, y2); break;
                case Elementwise.BinaryKind.Subtract: Elementwise.Subtract(x0, row, y2); break;
                case Elementwise.BinaryKind.Multiply: Elementwise.Multiply(x0, row, y2); break;
                default: Elementwise.Divide(x0, row, y2); break;
            }

            KernelTestData.Close(expected.AsSpan(0, n), y2, 0f, 1e-7f, $"{kind} same-shape n={n}");
        }
    }

    [Fact]
    public void Reductions_EveryWidth_MatchReference()
    {
        foreach (int n in KernelTestData.Lengths())
        {
            if (n == 0) continue;
            var x = KernelTestData.Uniform(5 * n, -3f, 3f, n);
            float[] got = new float[5], expected = new float[5];
            Reductions.SumRows(x, got, 5, n);
            Reductions.SumRowsReference(x, expected, 5, n);
            KernelTestData.Close(expected, got, 1e-5f, 1e-5f, $"sum rows n={n}");
            Reductions.MaxRows(x, got, 5, n);
            Reductions.MaxRowsReference(x, expected, 5, n);
            Assert.Equal(expected, got);

            float[] cols = new float[n], eCols = new float[n];
            Reductions.SumColumns(x, cols, 5, n);
            Reductions.SumColumnsReference(x, eCols, 5, n);
            KernelTestData.Close(eCols, cols, 1e-5f, 1e-5f, $"sum columns n={n}");
        }
    }

    [Fact]
    public void Max_EmptyInput_Throws()
    {
        Assert.Throws<ArgumentException>(() => Reductions.Max([]));
        Assert.Equal(0f, Reductions.Sum([]));
    }

    [Fact]
    public void EmbeddingBackward_RandomDuplicates_MatchesReference()
    {
        const int V = 11, C = 37, N = 50;
        var rng = new Random(4);
        var ids = Enumerable.Range(0, N).Select(_ => rng.Next(V)).ToArray();
        var dOut = KernelTestData.Uniform(N * C, -1f, 1f, 5);
        float[] dTable = new float[V * C], expected = new float[V * C];
        Embedding.Backward(ids, dOut, dTable, V, C);
        Embedding.BackwardReference(ids, dOut, expected, C);
        KernelTestData.Close(expected, dTable, 1e-6f, 1e-6f, "embedding backward");
    }

    [Fact]
    public void Embedding_IdOutOfRange_ThrowsNamingIdAndVocab()
    {
        var e = Assert.Throws<ArgumentException>(() => Embedding.Forward([1, 7], new float[12], new float[8], 3, 4));
        Assert.Contains("ids[1] = 7", e.Message, StringComparison.Ordinal);
        Assert.Contains("[0, 3)", e.Message, StringComparison.Ordinal);
        Assert.Equal("ids", e.ParamName);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(17)]
    [InlineData(130)]
    [InlineData(1000)]
    public void CrossEntropy_MatchesReference(int vocab)
    {
        const int N = 6;
        var logits = KernelTestData.Uniform(N * vocab, -20f, 20f, vocab);
        var rng = new Random(vocab);
        var targets = Enumerable.Range(0, N).Select(i => i == 2 ? CrossEntropy.DefaultIgnoreIndex : rng.Next(vocab)).ToArray();
        float[] losses = new float[N], eLosses = new float[N];
        int count = CrossEntropy.Forward(logits, targets, losses, N, vocab);
        int eCount = CrossEntropy.ForwardReference(logits, targets, eLosses, N, vocab, CrossEntropy.DefaultIgnoreIndex);
        Assert.Equal(N - 1, count);
        Assert.Equal(eCount, count);
        KernelTestData.Close(eLosses, losses, 1e-5f, 1e-5f, "losses");

        var dLoss = Enumerable.Repeat(1f / count, N).ToArray();
        float[] d = new float[logits.Length], eD = new float[logits.Length];
        CrossEntropy.Backward(logits, targets, dLoss, d, N, vocab);
        CrossEntropy.BackwardReference(logits, targets, dLoss, eD, N, vocab, CrossEntropy.DefaultIgnoreIndex);
        KernelTestData.Close(eD, d, 1e-7f, 1e-5f, "dlogits");
    }

    [Fact]
    public void CrossEntropyBackward_MatchesFiniteDifferences()
    {
        const int N = 4, V = 9;
        var logits = KernelTestData.Uniform(N * V, -3f, 3f, 8);
        int[] targets = [3, CrossEntropy.DefaultIgnoreIndex, 0, 8];
        float[] dLoss = [0.5f, 0.25f, 1f, -2f];
        var d = new float[logits.Length];
        CrossEntropy.Backward(logits, targets, dLoss, d, N, V);
        var numeric = KernelTestData.NumericGradient(logits, l =>
        {
            var losses = new float[N];
            CrossEntropy.Forward(l, targets, losses, N, V);
            return KernelTestData.Probe(losses, dLoss);
        });
        KernelTestData.GradClose(numeric, d, "dlogits");
    }

    [Theory]
    [InlineData(1, 0.1f)]
    [InlineData(17, 0.1f)]
    [InlineData(130, 0.25f)]
    [InlineData(1000, 1f)]
    public void CrossEntropy_LabelSmoothing_MatchesReference(int vocab, float epsilon)
    {
        const int N = 6;
        var logits = KernelTestData.Uniform(N * vocab, -20f, 20f, vocab + 1);
        var rng = new Random(vocab);
        var targets = Enumerable.Range(0, N).Select(i => i == 4 ? CrossEntropy.DefaultIgnoreIndex : rng.Next(vocab)).ToArray();
        float[] losses = new float[N], eLosses = new float[N];
        int count = CrossEntropy.Forward(logits, targets, losses, N, vocab, CrossEntropy.DefaultIgnoreIndex, epsilon);
        int eCount = CrossEntropy.ForwardReference(logits, targets, eLosses, N, vocab, CrossEntropy.DefaultIgnoreIndex, epsilon);
        Assert.Equal(eCount, count);
        Assert.Equal(0f, losses[4]);
        KernelTestData.Close(eLosses, losses, 1e-5f, 1e-5f, "smoothed losses");

        var dLoss = Enumerable.Repeat(1f / count, N).ToArray();
        float[] d = new float[logits.Length], eD = new float[logits.Length];
        CrossEntropy.Backward(logits, targets, dLoss, d, N, vocab, CrossEntropy.DefaultIgnoreIndex, epsilon);
        CrossEntropy.BackwardReference(logits, targets, dLoss, eD, N, vocab, CrossEntropy.DefaultIgnoreIndex, epsilon);
        KernelTestData.Close(eD, d, 1e-7f, 1e-5f, "smoothed dlogits");
    }

    [Fact]
    public void CrossEntropyBackward_LabelSmoothing_MatchesFiniteDifferences()
    {
        const int N = 4, V = 9;
        var logits = KernelTestData.Uniform(N * V, -3f, 3f, 9);
        int[] targets = [3, CrossEntropy.DefaultIgnoreIndex, 0, 8];
        float[] dLoss = [0.5f, 0.25f, 1f, -2f];
        var d = new float[logits.Length];
        CrossEntropy.Backward(logits, targets, dLoss, d, N, V, CrossEntropy.DefaultIgnoreIndex, 0.2f);
        var numeric = KernelTestData.NumericGradient(logits, l =>
        {
            var losses = new float[N];
            CrossEntropy.Forward(l, targets, losses, N, V, CrossEntropy.DefaultIgnoreIndex, 0.2f);
            return KernelTestData.Probe(losses, dLoss);
        });
        KernelTestData.GradClose(numeric, d, "smoothed dlogits");
    }

    [Fact]
    public void CrossEntropy_GptSizedRows_ParallelMatchesReference()
    {
        // [B·T, 50257] logits split over rows between threads: the same losses and gradients as the scalar reference.
        const int N = 8, V = 50257;
        var logits = KernelTestData.Uniform(N * V, -8f, 8f, 77);
        int[] targets = [5, 50256, CrossEntropy.DefaultIgnoreIndex, 0, 123, 40000, 7, 9];
        float[] losses = new float[N], eLosses = new float[N];
        int count = CrossEntropy.Forward(logits, targets, losses, N, V, CrossEntropy.DefaultIgnoreIndex, 0.1f);
        CrossEntropy.ForwardReference(logits, targets, eLosses, N, V, CrossEntropy.DefaultIgnoreIndex, 0.1f);
        Assert.Equal(7, count);
        KernelTestData.Close(eLosses, losses, 1e-4f, 1e-5f, "losses");
        var dLoss = Enumerable.Repeat(1f / count, N).ToArray();
        float[] d = new float[logits.Length], eD = new float[logits.Length];
        CrossEntropy.Backward(logits, targets, dLoss, d, N, V, CrossEntropy.DefaultIgnoreIndex, 0.1f);
        CrossEntropy.BackwardReference(logits, targets, dLoss, eD, N, V, CrossEntropy.DefaultIgnoreIndex, 0.1f);
        KernelTestData.Close(eD, d, 1e-8f, 1e-5f, "dlogits");
    }

    [Theory]
    [InlineData(-0.1f)]
    [InlineData(1.5f)]
    [InlineData(float.NaN)]
    public void CrossEntropy_LabelSmoothingOutOfRange_Throws(float epsilon)
    {
        var e = Assert.Throws<ArgumentException>(() => CrossEntropy.Forward(new float[6], [0, 1], new float[2], 2, 3, CrossEntropy.DefaultIgnoreIndex, epsilon));
        Assert.Contains("label smoothing must be in [0, 1]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CrossEntropy_BadTarget_ThrowsNamingTarget()
    {
        var e = Assert.Throws<ArgumentException>(() => CrossEntropy.Forward(new float[6], [0, 5], new float[2], 2, 3));
        Assert.Contains("targets[1] = 5", e.Message, StringComparison.Ordinal);
    }
}
