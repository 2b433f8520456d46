using Sharpformer.Tensors.Kernels;

namespace Sharpformer.Tensors.Tests.Kernels;

/// <summary>Inputs large enough that the kernels split across cores: the split results must equal the references.</summary>
public class ParallelPathTests
{
    [Fact]
    public void ExpAndActivations_LongSpans_MatchScalarReferences()
    {
        const int N = (5 * RowParallel.ChunkElements) + 13;
        var x = KernelTestData.Uniform(N, -10f, 10f, 1);
        var y = new float[N];
        var expected = new float[N];
        FastMath.Exp(x, y);
        FastMath.ExpReference(x, expected);
        KernelTestData.Close(expected, y, 0f, 2e-7f, "exp");

        var dy = KernelTestData.Uniform(N, -1f, 1f, 2);
        Activations.SiluBackward(x, dy, y);
        SimdDriver.BinaryReference<Activations.SiluBackwardOp>(x, dy, expected);
        KernelTestData.Close(expected, y, Tolerances.KernelVsReference, Tolerances.KernelVsReference, "silu backward");
    }

    [Fact]
    public void SoftmaxAndNorms_ManyRows_MatchReferences()
    {
        const int Rows = 96, Cols = 771;
        var x = KernelTestData.Uniform(Rows * Cols, -8f, 8f, 3);
        var y = new float[x.Length];
        var expected = new float[x.Length];
        Softmax.Forward(x, y, Rows, Cols);
        Softmax.Reference(x, expected, Rows, Cols, false, default);
        KernelTestData.Close(expected, y, 1e-7f, Tolerances.KernelVsReference, "softmax");

        var gamma = KernelTestData.Uniform(Cols, 0.5f, 1.5f, 4);
        var beta = KernelTestData.Uniform(Cols, -1f, 1f, 5);
        float[] mean = new float[Rows], rstd = new float[Rows], eMean = new float[Rows], eRstd = new float[Rows];
        Norms.LayerNorm(x, gamma, beta, y, Rows, Cols, 1e-5f, mean, rstd);
        Norms.LayerNormReference(x, gamma, beta, expected, Rows, Cols, 1e-5f, eMean, eRstd);
        KernelTestData.Close(expected, y, Tolerances.NormVsDouble, Tolerances.NormVsDouble, "layernorm");
        KernelTestData.Close(eRstd, rstd, 0f, Tolerances.NormVsDouble, "layernorm rstd");

        Norms.RmsNorm(x, gamma, y, Rows, Cols, 1e-6f, rstd);
        Norms.RmsNormReference(x, gamma, expected, Rows, Cols, 1e-6f, eRstd);
        KernelTestData.Close(expected, y, Tolerances.NormVsDouble, Tolerances.NormVsDouble, "rmsnorm");
    }

    [Fact]
    public void NormBackwards_ManyRows_MatchReferences()
    {
        const int Rows = 90, Cols = 777;
        var x = KernelTestData.Uniform(Rows * Cols, -3f, 3f, 7);
        var dy = KernelTestData.Uniform(Rows * Cols, -1f, 1f, 8);
        var gamma = KernelTestData.Uniform(Cols, 0.5f, 1.5f, 9);
        float[] mean = new float[Rows], rstd = new float[Rows];
        Norms.LayerNorm(x, gamma, default, new float[x.Length], Rows, Cols, 1e-5f, mean, rstd);
        float[] dx = new float[x.Length], dg = new float[Cols], db = new float[Cols];
        float[] edx = new float[x.Length], edg = new float[Cols], edb = new float[Cols];
        Norms.LayerNormBackward(dy, x, gamma, mean, rstd, dx, dg, db, Rows, Cols);
        Norms.LayerNormBackwardReference(dy, x, gamma, mean, rstd, edx, edg, edb, Rows, Cols);
        KernelTestData.Close(edx, dx, 1e-5f, 1e-4f, "layernorm dx");
        KernelTestData.Close(edg, dg, 1e-4f, 1e-4f, "layernorm dgamma");
        KernelTestData.Close(edb, db, 1e-4f, 1e-4f, "layernorm dbeta");

        Norms.RmsNorm(x, gamma, new float[x.Length], Rows, Cols, 1e-6f, rstd);
        Norms.RmsNormBackward(dy, x, gamma, rstd, dx, dg, Rows, Cols);
        Norms.RmsNormBackwardReference(dy, x, gamma, rstd, edx, edg, Rows, Cols);
        KernelTestData.Close(edx, dx, 1e-5f, 1e-4f, "rmsnorm dx");
        KernelTestData.Close(edg, dg, 1e-4f, 1e-4f, "rmsnorm dgamma");
    }

    [Fact]
    public void CrossEntropy_ManyRows_MatchesReferenceAndCountsAllChunks()
    {
        const int Rows = 70, V = 1003;
        var logits = KernelTestData.Uniform(Rows * V, -10f, 10f, 6);
        var targets = Enumerable.Range(0, Rows).Select(i => i % 7 == 0 ? CrossEntropy.DefaultIgnoreIndex : (i * 31) % V).ToArray();
        float[] losses = new float[Rows], eLosses = new float[Rows];
        int count = CrossEntropy.Forward(logits, targets, losses, Rows, V);
        Assert.Equal(CrossEntropy.ForwardReference(logits, targets, eLosses, Rows, V, CrossEntropy.DefaultIgnoreIndex), count);
        KernelTestData.Close(eLosses, losses, 1e-5f, 1e-5f, "losses");

        var dLoss = Enumerable.Repeat(1f / count, Rows).ToArray();
        float[] d = new float[logits.Length], eD = new float[logits.Length];
        CrossEntropy.Backward(logits, targets, dLoss, d, Rows, V);
        CrossEntropy.BackwardReference(logits, targets, dLoss, eD, Rows, V, CrossEntropy.DefaultIgnoreIndex);
        KernelTestData.Close(eD, d, 1e-8f, 1e-5f, "dlogits");
    }

    [Theory]
    [InlineData(70, 1003, 0f)]
    [InlineData(70, 1003, 0.1f)]
    [InlineData(3, 37, 0f)]
    [InlineData(3, 37, 0.2f)]
    public void CrossEntropy_ForwardWithGradient_EqualsForwardThenBackward(int rows, int vocab, float smoothing)
    {
        var logits = KernelTestData.Uniform(rows * vocab, -10f, 10f, 8);
        var targets = Enumerable.Range(0, rows).Select(i => i % 7 == 1 ? CrossEntropy.DefaultIgnoreIndex : (i * 31) % vocab).ToArray();
        float[] losses = new float[rows], eLosses = new float[rows];
        int count = CrossEntropy.Forward(logits, targets, eLosses, rows, vocab, CrossEntropy.DefaultIgnoreIndex, smoothing);
        float dLoss = 1f / count;
        float[] d = new float[logits.Length], eD = new float[logits.Length];
        Array.Fill(d, 5f); // overwritten, ignored rows included
        CrossEntropy.Backward(logits, targets, Enumerable.Repeat(dLoss, rows).ToArray(), eD, rows, vocab, CrossEntropy.DefaultIgnoreIndex, smoothing);
        Assert.Equal(count, CrossEntropy.ForwardWithGradient(logits, targets, losses, dLoss, d, rows, vocab, CrossEntropy.DefaultIgnoreIndex, smoothing));
        Assert.Equal(eLosses, losses);
        Assert.Equal(eD, d);
    }

    [Theory]
    [InlineData(96, 771)] // split by rows across cores
    [InlineData(3, 50)] // one thread
    public void AddLayerNorm_EqualsAddThenLayerNormBitForBit_AndTheReference(int rows, int cols)
    {
        var x = KernelTestData.Uniform(rows * cols, -4f, 4f, 21);
        var r = KernelTestData.Uniform(rows * cols, -4f, 4f, 22);
        var gamma = KernelTestData.Uniform(cols, 0.5f, 1.5f, 23);
        var beta = KernelTestData.Uniform(cols, -1f, 1f, 24);
        float[] sum = new float[x.Length], y = new float[x.Length], mean = new float[rows], rstd = new float[rows];
        Norms.AddLayerNorm(x, r, gamma, beta, sum, y, rows, cols, 1e-5f, mean, rstd);

        float[] eSum = new float[x.Length], eY = new float[x.Length], eMean = new float[rows], eRstd = new float[rows];
        Elementwise.Add(x, r, eSum);
        Norms.LayerNorm(eSum, gamma, beta, eY, rows, cols, 1e-5f, eMean, eRstd);
        Assert.Equal(eSum, sum);
        Assert.Equal(eY, y);
        Assert.Equal(eMean, mean);
        Assert.Equal(eRstd, rstd);

        float[] refSum = new float[x.Length], refY = new float[x.Length];
        Elementwise.BroadcastReference(Elementwise.BinaryKind.Add, x, r, refSum, 1, x.Length);
        Norms.LayerNormReference(refSum, gamma, beta, refY, rows, cols, 1e-5f, new float[rows], new float[rows]);
        Assert.Equal(refSum, sum);
        KernelTestData.Close(refY, y, Tolerances.NormVsDouble, Tolerances.NormVsDouble, "add + layernorm");

        // In place: the sum over the first addend, no affine.
        Norms.AddLayerNorm(x, r, default, default, x, y, rows, cols, 1e-5f);
        Norms.LayerNorm(eSum, default, default, eY, rows, cols, 1e-5f);
        Assert.Equal(eSum, x);
        Assert.Equal(eY, y);
    }

    [Theory]
    [InlineData(1, (5 * RowParallel.ChunkElements) + 13)] // one long row: chunks across cores
    [InlineData(96, 771)] // broadcast rows across cores
    [InlineData(3, 50)] // one thread
    public void Elementwise_LongAndManyRows_EqualScalarReferenceBitForBit(int rows, int cols)
    {
        var x = KernelTestData.Uniform(rows * cols, -4f, 4f, 31);
        var y = KernelTestData.Uniform(rows * cols, 0.5f, 4f, 32);
        var row = KernelTestData.Uniform(cols, 0.5f, 4f, 33);
        var actual = new float[x.Length];
        var expected = new float[x.Length];
        foreach (var kind in new[] { Elementwise.BinaryKind.Add, Elementwise.BinaryKind.Subtract, Elementwise.BinaryKind.Multiply, Elementwise.BinaryKind.Divide })
        {
            // Same shape.
            Action<float[], float[], float[]> same = kind switch
            {
                Elementwise.BinaryKind.Add => (a, b, d) => Elementwise.Add(a, b, d),
                Elementwise.BinaryKind.Subtract => (a, b, d) => Elementwise.Subtract(a, b, d),
                Elementwise.BinaryKind.Multiply => (a, b, d) => Elementwise.Multiply(a, b, d),
                _ => (a, b, d) => Elementwise.Divide(a, b, d),
            };
            same(x, y, actual);
            Elementwise.BroadcastReference(kind, x, y, expected, 1, x.Length);
            Assert.Equal(expected, actual);

            // Broadcast of one row.
            Action<float[], float[], float[]> broadcast = kind switch
            {
                Elementwise.BinaryKind.Add => (a, b, d) => Elementwise.AddBroadcast(a, b, d, rows, cols),
                Elementwise.BinaryKind.Subtract => (a, b, d) => Elementwise.SubtractBroadcast(a, b, d, rows, cols),
                Elementwise.BinaryKind.Multiply => (a, b, d) => Elementwise.MultiplyBroadcast(a, b, d, rows, cols),
                _ => (a, b, d) => Elementwise.DivideBroadcast(a, b, d, rows, cols),
            };
            broadcast(x, row, actual);
            Elementwise.BroadcastReference(kind, x, row, expected, rows, cols);
            Assert.Equal(expected, actual);

            // In place over the first operand.
            var copy = (float[])x.Clone();
            same(copy, y, copy);
            Elementwise.BroadcastReference(kind, x, y, expected, 1, x.Length);
            Assert.Equal(expected, copy);
        }
    }
}
