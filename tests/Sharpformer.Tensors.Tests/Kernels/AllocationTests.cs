using Sharpformer.Tensors.Kernels;

namespace Sharpformer.Tensors.Tests.Kernels;

/// <summary>Small kernel calls run inline and must not allocate (no closures, no formatted messages on the happy path).</summary>
public class AllocationTests
{
    [Fact]
    public void SmallCalls_AfterWarmUp_AllocateNothing()
    {
        var x = KernelTestData.Uniform(4 * 96, -3f, 3f, 1);
        var y = new float[x.Length];
        var gamma = KernelTestData.Uniform(96, 0.5f, 1.5f, 2);
        float[] mean = new float[4], rstd = new float[4], dg = new float[96], db = new float[96], losses = new float[4];
        int[] targets = [1, 2, 3, 4];
        void Run()
        {
            FastMath.Exp(x, y);
            Activations.GeluBackward(x, x, y);
            Softmax.Forward(x, y, 4, 96);
            Softmax.ForwardMasked(x, y, 4, 96, true, default);
            Norms.LayerNorm(x, gamma, gamma, y, 4, 96, 1e-5f, mean, rstd);
            Norms.LayerNormBackward(x, x, gamma, mean, rstd, y, dg, db, 4, 96);
            Norms.RmsNorm(x, gamma, y, 4, 96, 1e-5f, rstd);
            CrossEntropy.Forward(x, targets, losses, 4, 96);
            Elementwise.AddBroadcast(x, gamma, y, 4, 96);
            Reductions.SumColumns(x, dg, 4, 96);
        }

        Run();
        long before = GC.GetAllocatedBytesForCurrentThread();
        Run();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
