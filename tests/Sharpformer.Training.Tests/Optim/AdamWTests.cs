using Sharpformer.NN;
using Sharpformer.Tensors;
using Sharpformer.Training.Optim;

namespace Sharpformer.Training.Tests.Optim;

public class AdamWTests
{
    /// <summary>Relative tolerance against torch (F32 on both sides; torch's vector code may fuse a multiply-add).</summary>
    private const double Relative = 1e-6;

    /// <summary>Absolute floor for elements near zero.</summary>
    private const double Absolute = 1e-7;

    public static TheoryData<string> CaseNames() => ["defaults_with_decay", "hf_trainer_like", "no_decay_low_beta2"];

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Step_FixtureSequence_MatchesTorchAdamWEveryStep(string name)
    {
        var c = OptimFixture.Case("adamw", name);
        var parameters = OptimFixture.Parameters(c);
        var group = new ParameterGroup(parameters, learningRate: 1, weightDecay: c.GetProperty("weight_decay").GetDouble());
        var optimizer = new AdamW([group], c.GetProperty("beta1").GetDouble(), c.GetProperty("beta2").GetDouble(), c.GetProperty("eps").GetDouble());
        var lrs = OptimFixture.Doubles(c.GetProperty("lrs"));
        var after = c.GetProperty("after");
        for (int step = 0; step < lrs.Length; step++)
        {
            group.LearningRate = lrs[step];
            OptimFixture.SetGrads(c, step, parameters);
            optimizer.Step();
            for (int i = 0; i < parameters.Count; i++)
            {
                OptimFixture.AssertClose(OptimFixture.Floats(after[step][i]), parameters[i].Parameter.Value.ToArray(), Relative, Absolute, $"{name} step {step} p{i}");
            }
        }

        var state = optimizer.StateDict();
        var expectedSteps = c.GetProperty("steps").EnumerateArray().Select(s => s.GetInt64()).ToArray();
        for (int i = 0; i < parameters.Count; i++)
        {
            OptimFixture.AssertClose(OptimFixture.Floats(c.GetProperty("exp_avg")[i]), state.Tensors[$"exp_avg.p{i}"].ToArray(), Relative, Absolute, $"exp_avg.p{i}");
            OptimFixture.AssertClose(OptimFixture.Floats(c.GetProperty("exp_avg_sq")[i]), state.Tensors[$"exp_avg_sq.p{i}"].ToArray(), Relative, 1e-10, $"exp_avg_sq.p{i}");
            Assert.Equal(expectedSteps[i], state.ParameterSteps[$"p{i}"]);
        }

        Assert.Equal(lrs.Length, optimizer.StepCount);
    }

    [Fact]
    public void Step_ParameterWithoutGradient_IsUnchangedAndMarkedOnlyWhenUpdated()
    {
        var a = new Parameter(Tensor.FromArray(new[] { 1f, 2f, 3f }));
        var b = new Parameter(Tensor.FromArray(new[] { 4f, 5f }));
        var optimizer = new AdamW([new ParameterGroup([("a", a), ("b", b)], 0.1, 0.5)]);
        OptimFixture.SetGrad(a, [0.5f, -1f, 2f]);
        int versionA = a.Version, versionB = b.Version;

        optimizer.Step();

        Assert.Equal([4f, 5f], b.Value.ToArray());
        Assert.Equal(versionB, b.Version);
        Assert.True(a.Version > versionA, "an updated parameter must be marked modified so packed copies are rebuilt");
        Assert.NotEqual([1f, 2f, 3f], a.Value.ToArray());
        Assert.DoesNotContain("exp_avg.b", optimizer.StateDict().Tensors.Keys);
    }

    [Fact]
    public void Step_NonContiguousValue_ThrowsNamingItBeforeChangingAnything()
    {
        var a = new Parameter(Tensor.FromArray(new[] { 1f, 2f }));
        var b = new Parameter(Tensor.FromArray(new[] { 1f, 2f, 3f, 4f, 5f, 6f }, new Shape(2, 3)).Transpose(0, 1));
        OptimFixture.SetGrad(a, [1f, 1f]);
        OptimFixture.SetGrad(b, [1f, 1f, 1f, 1f, 1f, 1f]);
        var optimizer = new AdamW([new ParameterGroup([("a", a), ("b", b)], 0.1)]);

        var e = Assert.Throws<InvalidOperationException>(optimizer.Step);

        Assert.Contains("'b'", e.Message, StringComparison.Ordinal);
        Assert.Contains("Contiguous()", e.Message, StringComparison.Ordinal);
        Assert.Equal([1f, 2f], a.Value.ToArray());
        Assert.Empty(optimizer.StateDict().Tensors);
        Assert.Empty(optimizer.StateDict().ParameterSteps);
        Assert.Equal(0, optimizer.StepCount);
    }

    [Fact]
    public void StateDict_SaveLoadIntoFreshOptimizer_NextStepsIdentical()
    {
        var c = OptimFixture.Case("adamw", "hf_trainer_like");
        var original = OptimFixture.Parameters(c);
        var first = new AdamW([new ParameterGroup(original, 1e-3, 0.1)], epsilon: 1e-6);
        for (int step = 0; step < 3; step++)
        {
            OptimFixture.SetGrads(c, step, original);
            first.Step();
        }

        // Save to files, load into a fresh optimizer over copies of the same parameters.
        string dir = Directory.CreateTempSubdirectory("sharpformer-optim-").FullName;
        try
        {
            string tensors = Path.Combine(dir, "optimizer.safetensors"), json = Path.Combine(dir, "optimizer.json");
            first.StateDict().Save(tensors, json);
            var copies = original.Select(p => (p.Name, new Parameter(p.Parameter.Value.Clone()))).ToList();
            var second = new AdamW([new ParameterGroup(copies, 1e-3, 0.1)], epsilon: 1e-6);
            second.LoadStateDict(OptimizerState.Load(tensors, json));
            Assert.Equal(3, second.StepCount);

            for (int step = 3; step < 6; step++)
            {
                OptimFixture.SetGrads(c, step, original);
                OptimFixture.SetGrads(c, step, copies);
                first.Step();
                second.Step();
                for (int i = 0; i < original.Count; i++)
                {
                    Assert.Equal(original[i].Parameter.Value.ToArray(), copies[i].Item2.Value.ToArray());
                }
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void LoadStateDict_WrongShape_ThrowsNamingTensor()
    {
        var (optimizer, _) = TrainedOptimizer([3, 4]);
        var (other, _) = TrainedOptimizer([4, 3]);
        var e = Assert.Throws<ArgumentException>(() => other.LoadStateDict(optimizer.StateDict()));
        Assert.Contains("exp_avg", e.Message, StringComparison.Ordinal);
        Assert.Contains("'w'", e.Message, StringComparison.Ordinal);
        Assert.Contains("[3, 4]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LoadStateDict_UnknownParameterName_ThrowsNamingTensor()
    {
        var (optimizer, _) = TrainedOptimizer([2, 2]);
        var state = optimizer.StateDict();
        var renamed = state.Tensors.ToDictionary(t => t.Key.Replace(".w", ".encoder.w", StringComparison.Ordinal), t => t.Value);
        var e = Assert.Throws<ArgumentException>(() => optimizer.LoadStateDict(new OptimizerState("AdamW", 1, renamed, new Dictionary<string, long>())));
        Assert.Contains("exp_avg", e.Message, StringComparison.Ordinal);
        Assert.Contains("encoder.w", e.Message, StringComparison.Ordinal);
        Assert.Contains("another model", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LoadStateDict_MissingSecondMoment_ThrowsNamingItAndKeepsOldState()
    {
        var (optimizer, _) = TrainedOptimizer([2, 2]);
        var state = optimizer.StateDict();
        var before = state.Tensors["exp_avg.w"].ToArray();
        var partial = state.Tensors.Where(t => t.Key != "exp_avg_sq.w").ToDictionary(t => t.Key, t => t.Value.Clone());
        partial["exp_avg.w"].AsSpan<float>().Fill(42f);
        var e = Assert.Throws<ArgumentException>(() => optimizer.LoadStateDict(new OptimizerState("AdamW", 1, partial, state.ParameterSteps)));
        Assert.Contains("exp_avg_sq.w", e.Message, StringComparison.Ordinal);
        Assert.Equal(before, optimizer.StateDict().Tensors["exp_avg.w"].ToArray());
    }

    [Fact]
    public void LoadStateDict_StateOfSgd_ThrowsNamingOptimizer()
    {
        var w = new Parameter(Tensor.Zeros(new Shape(2)));
        var sgd = new Sgd([new ParameterGroup([("w", w)], 0.1)], momentum: 0.9);
        OptimFixture.SetGrad(w, [1f, 2f]);
        sgd.Step();
        var (adam, _) = TrainedOptimizer([2]);
        var e = Assert.Throws<ArgumentException>(() => adam.LoadStateDict(sgd.StateDict()));
        Assert.Contains("SGD", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_BadHyperparameters_Throw()
    {
        var group = new ParameterGroup([("w", new Parameter(Tensor.Zeros(new Shape(2))))], 0.1);
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW([group], beta1: 1.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW([group], beta2: -0.1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW([group], epsilon: double.NaN));
        var e = Assert.Throws<ArgumentException>(() => new AdamW([new ParameterGroup([], 0.1)]));
        Assert.Contains("no parameter", e.Message, StringComparison.Ordinal);
        var shared = new ParameterGroup([("w", group.Parameters[0].Parameter)], 0.1);
        Assert.Throws<ArgumentException>(() => new AdamW([group, shared]));
    }

    [Fact]
    public void Kernel_VectorPath_EqualsScalarReferenceBitForBit_AllTailLengths()
    {
        var random = new Random(3);
        var c = new AdamWCoefficients(0.999f, 0.9f, 0.1f, 0.999f, 0.001f, 0.05f, 1e-8f, -0.01f);
        for (int n = 0; n <= 70; n++)
        {
            float[] p = Random(random, n), g = Random(random, n), m = Random(random, n), v = Random(random, n).Select(Math.Abs).ToArray();
            float[] p2 = (float[])p.Clone(), m2 = (float[])m.Clone(), v2 = (float[])v.Clone();
            OptimKernels.AdamW(c, p, g, m, v);
            OptimKernels.AdamWReference(c, p2, g, m2, v2);
            Assert.Equal(p2, p);
            Assert.Equal(m2, m);
            Assert.Equal(v2, v);
        }
    }

    [Theory]
    [InlineData(1f)]
    [InlineData(0.37f)]
    public void KernelWithSumOfSquares_EqualsAdamWAndSumOfSquaresBitForBit_AllTailLengths(float gradientScale)
    {
        // The norm taken inside AdamW's loop must be SumOfSquares's bits (GlobalNorm's), the update AdamW's, on every tier.
        var random = new Random(5);
        var c = new AdamWCoefficients(0.999f, 0.9f, 0.1f, 0.999f, 0.001f, 0.05f, 1e-8f, -0.01f, gradientScale);
        for (int n = 0; n <= 100; n++)
        {
            float[] p = Random(random, n), g = Random(random, n), m = Random(random, n), v = Random(random, n).Select(Math.Abs).ToArray();
            float[] p2 = (float[])p.Clone(), m2 = (float[])m.Clone(), v2 = (float[])v.Clone();
            double sum = OptimKernels.AdamWSumOfSquares(c, p, g, m, v);
            OptimKernels.AdamW(c, p2, g, m2, v2);
            Assert.Equal(BitConverter.DoubleToInt64Bits(OptimKernels.SumOfSquares(g)), BitConverter.DoubleToInt64Bits(sum));
            Assert.Equal(p2, p);
            Assert.Equal(m2, m);
            Assert.Equal(v2, v);
        }

        // The scalar reference beside it: the update equals AdamWReference, the sum the double reference (order aside).
        for (int n = 0; n <= 40; n += 13)
        {
            float[] p = Random(random, n), g = Random(random, n), m = Random(random, n), v = Random(random, n).Select(Math.Abs).ToArray();
            float[] p2 = (float[])p.Clone(), m2 = (float[])m.Clone(), v2 = (float[])v.Clone();
            double sum = OptimKernels.AdamWSumOfSquares(c, p, g, m, v);
            OptimKernels.AdamWReference(c, p2, g, m2, v2);
            double reference = OptimKernels.SumOfSquaresReference(g);
            Assert.True(Math.Abs(sum - reference) <= 1e-12 * Math.Max(1, reference), $"n = {n}");
            Assert.Equal(p2, p);
            Assert.Equal(m2, m);
            Assert.Equal(v2, v);
        }
    }

    [Fact]
    public void Step_ParameterLongerThanOneChunk_MatchesScalarReference()
    {
        // 70 000 elements: three parallel chunks, the last one short.
        var random = new Random(9);
        int n = 70_000;
        float[] start = Random(random, n), grad = Random(random, n);
        var w = new Parameter(Tensor.FromArray((float[])start.Clone()));
        var optimizer = new AdamW([new ParameterGroup([("w", w)], 1e-3, 0.01)]);
        OptimFixture.SetGrad(w, grad);
        optimizer.Step();

        float[] p = (float[])start.Clone(), m = new float[n], v = new float[n];
        double stepSize = 1e-3 / (1 - 0.9);
        var c = new AdamWCoefficients((float)(1 - (1e-3 * 0.01)), 0.9f, (float)(1 - 0.9), 0.999f, (float)(1 - 0.999), (float)Math.Sqrt(1 - 0.999), 1e-8f, (float)-stepSize);
        OptimKernels.AdamWReference(c, p, grad, m, v);
        Assert.Equal(p, w.Value.ToArray());
    }

    private static (AdamW Optimizer, Parameter Weight) TrainedOptimizer(int[] shape)
    {
        var w = new Parameter(Tensor.Zeros(new Shape(shape)));
        var optimizer = new AdamW([new ParameterGroup([("w", w)], 0.1)]);
        OptimFixture.SetGrad(w, [.. Enumerable.Range(0, (int)w.Shape.ElementCount).Select(i => i + 1f)]);
        optimizer.Step();
        return (optimizer, w);
    }

    private static float[] Random(Random random, int n) => [.. Enumerable.Range(0, n).Select(_ => (float)((random.NextDouble() * 2) - 1))];
}
