using Sharpformer.NN;
using Sharpformer.Tensors;
using Sharpformer.Training.Optim;

namespace Sharpformer.Training.Tests.Optim;

public class SgdTests
{
    private const double Relative = 1e-6;
    private const double Absolute = 1e-7;

    public static TheoryData<string> CaseNames() =>
        ["plain", "momentum", "momentum_dampening", "nesterov", "weight_decay", "nesterov_weight_decay"];

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Step_FixtureSequence_MatchesTorchSgdEveryStep(string name)
    {
        var c = OptimFixture.Case("sgd", name);
        var parameters = OptimFixture.Parameters(c);
        var group = new ParameterGroup(parameters, learningRate: 1, weightDecay: c.GetProperty("weight_decay").GetDouble());
        var optimizer = new Sgd([group], c.GetProperty("momentum").GetDouble(), c.GetProperty("dampening").GetDouble(), c.GetProperty("nesterov").GetBoolean());
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
        var buffers = c.GetProperty("momentum_buffer").EnumerateArray().ToArray();
        for (int i = 0; i < parameters.Count; i++)
        {
            if (buffers[i].ValueKind == System.Text.Json.JsonValueKind.Null)
            {
                Assert.False(state.Tensors.ContainsKey($"momentum_buffer.p{i}"));
            }
            else
            {
                OptimFixture.AssertClose(OptimFixture.Floats(buffers[i]), state.Tensors[$"momentum_buffer.p{i}"].ToArray(), Relative, Absolute, $"momentum_buffer.p{i}");
            }
        }

        Assert.Empty(state.ParameterSteps);
    }

    [Fact]
    public void StateDict_LoadIntoFreshOptimizer_NextStepsIdentical()
    {
        var c = OptimFixture.Case("sgd", "nesterov_weight_decay");
        var original = OptimFixture.Parameters(c);
        var first = new Sgd([new ParameterGroup(original, 0.05, 0.01)], momentum: 0.9, nesterov: true);
        for (int step = 0; step < 2; step++)
        {
            OptimFixture.SetGrads(c, step, original);
            first.Step();
        }

        var copies = original.Select(p => (p.Name, new Parameter(p.Parameter.Value.Clone()))).ToList();
        var second = new Sgd([new ParameterGroup(copies, 0.05, 0.01)], momentum: 0.9, nesterov: true);
        second.LoadStateDict(first.StateDict());
        for (int step = 2; step < 6; step++)
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

    [Fact]
    public void OptimizerState_PlainSgdWithoutTensors_SavesAndLoadsThroughFiles()
    {
        var w = new Parameter(Tensor.FromArray(new[] { 1f, 2f }));
        var optimizer = new Sgd([new ParameterGroup([("w", w)], 0.1)]);
        OptimFixture.SetGrad(w, [1f, 1f]);
        optimizer.Step();
        optimizer.Step();
        string dir = Directory.CreateTempSubdirectory("sharpformer-optim-").FullName;
        try
        {
            string tensors = Path.Combine(dir, "optimizer.safetensors"), json = Path.Combine(dir, "optimizer.json");
            optimizer.StateDict().Save(tensors, json);
            var loaded = OptimizerState.Load(tensors, json);
            Assert.Equal("SGD", loaded.Optimizer);
            Assert.Equal(2, loaded.StepCount);
            Assert.Empty(loaded.Tensors);
            var fresh = new Sgd([new ParameterGroup([("w", w)], 0.1)]);
            fresh.LoadStateDict(loaded);
            Assert.Equal(2, fresh.StepCount);

            File.WriteAllText(json, """{"optimizer": "SGD", "parameter_steps": {}}""");
            var e = Assert.Throws<InvalidDataException>(() => OptimizerState.Load(tensors, json));
            Assert.Contains("step_count", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Step_DoesNotChangeTheGradient()
    {
        var w = new Parameter(Tensor.FromArray(new[] { 1f, -2f }));
        var optimizer = new Sgd([new ParameterGroup([("w", w)], 0.1, 0.5)], momentum: 0.9);
        OptimFixture.SetGrad(w, [3f, 4f]);
        optimizer.Step();
        optimizer.Step();
        Assert.Equal([3f, 4f], w.Value.Grad!.ToArray());
    }

    [Fact]
    public void LoadStateDict_MomentumStateIntoPlainSgd_ThrowsNamingTensor()
    {
        var w = new Parameter(Tensor.Zeros(new Shape(2)));
        var withMomentum = new Sgd([new ParameterGroup([("w", w)], 0.1)], momentum: 0.9);
        OptimFixture.SetGrad(w, [1f, 2f]);
        withMomentum.Step();
        var plain = new Sgd([new ParameterGroup([("w", w)], 0.1)]);
        var e = Assert.Throws<ArgumentException>(() => plain.LoadStateDict(withMomentum.StateDict()));
        Assert.Contains("momentum_buffer.w", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_NesterovWithoutMomentumOrWithDampening_Throws()
    {
        var group = new ParameterGroup([("w", new Parameter(Tensor.Zeros(new Shape(2))))], 0.1);
        Assert.Throws<ArgumentException>(() => new Sgd([group], nesterov: true));
        Assert.Throws<ArgumentException>(() => new Sgd([group], momentum: 0.9, dampening: 0.1, nesterov: true));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd([group], momentum: -0.5));
    }

    [Theory]
    [InlineData(false, false, false)]
    [InlineData(true, false, false)]
    [InlineData(true, true, false)]
    [InlineData(true, false, true)]
    public void Kernel_VectorPath_EqualsScalarReferenceBitForBit_AllTailLengths(bool momentum, bool first, bool nesterov)
    {
        var random = new Random(5);
        var c = new SgdCoefficients(0.01f, true, momentum ? 0.9f : 0f, momentum, 0.75f, nesterov, -0.05f);
        for (int n = 0; n <= 70; n++)
        {
            float[] p = Random(random, n), g = Random(random, n), b = Random(random, n);
            float[] p2 = (float[])p.Clone(), b2 = (float[])b.Clone();
            OptimKernels.Sgd(c, first, p, g, momentum ? b : []);
            OptimKernels.SgdReference(c, first, p2, g, momentum ? b2 : []);
            Assert.Equal(p2, p);
            Assert.Equal(b2, b);
        }
    }

    private static float[] Random(Random random, int n) => [.. Enumerable.Range(0, n).Select(_ => (float)((random.NextDouble() * 2) - 1))];
}
