namespace Sharpformer.Tensors.Tests;

/// <summary>
/// Checks reverse-mode gradients against central finite differences. The scalar loss is a fixed random projection of
/// the op's output, L = Σ out ⊙ R, so every output element contributes with its own weight; its analytic gradient comes
/// from <c>out.Backward(R)</c>, and the numeric one from (L(x + h) − L(x − h)) / 2h per input element, with L
/// accumulated in double and the forward run in float under <see cref="Autograd.NoGrad"/>.
/// </summary>
internal static class GradCheck
{
    /// <summary>Finite-difference step; small enough for curvature, large enough that float rounding stays below tolerance.</summary>
    public const float Step = 1e-3f;

    /// <summary>
    /// Runs <paramref name="forward"/> on <paramref name="inputs"/> and checks the gradient of every input that requires
    /// one. Inputs must be contiguous F32 leaves; they are perturbed in place and restored.
    /// </summary>
    public static void Check(Func<Tensor[], Tensor> forward, params Tensor[] inputs) => Check(forward, Step, inputs);

    /// <summary>As <see cref="Check(Func{Tensor[], Tensor}, Tensor[])"/> with an explicit step.</summary>
    public static void Check(Func<Tensor[], Tensor> forward, float step, params Tensor[] inputs)
    {
        foreach (var input in inputs) input.ZeroGrad();
        var output = forward(inputs);
        Assert.True(output.RequiresGrad, "the op's output must require gradients when an input does");
        var projection = Tensor.RandomUniform(output.Shape, new Random(12345), -1f, 1f);
        output.Backward(projection);
        var weights = projection.ToArray();

        int checkedInputs = 0;
        for (int n = 0; n < inputs.Length; n++)
        {
            var input = inputs[n];
            if (!input.RequiresGrad)
            {
                Assert.Null(input.Grad);
                continue;
            }

            checkedInputs++;
            Assert.NotNull(input.Grad);
            Assert.Equal(input.Shape, input.Grad.Shape);
            var analytic = input.Grad.ToArray();
            var values = input.AsSpan<float>();
            for (int i = 0; i < values.Length; i++)
            {
                float original = values[i];
                values[i] = original + step;
                double plus = Loss(forward, inputs, weights);
                values = input.AsSpan<float>();
                values[i] = original - step;
                double minus = Loss(forward, inputs, weights);
                values = input.AsSpan<float>();
                values[i] = original;

                // The perturbed values are rounded to float, so divide by the step actually taken.
                double taken = (double)(original + step) - (original - step);
                double numeric = (plus - minus) / taken;
                double error = Math.Abs(analytic[i] - numeric);
                double allowed = Tolerances.GradCheckAbsolute + (Tolerances.GradCheckRelative * Math.Abs(numeric));
                Assert.True(error <= allowed, $"input {n} {input.Shape}, element {i}: analytic {analytic[i]:G6} vs numeric {numeric:G6} (error {error:G3} > {allowed:G3})");
            }
        }

        Assert.True(checkedInputs > 0, "no input requires gradients: nothing was checked");
    }

    private static double Loss(Func<Tensor[], Tensor> forward, Tensor[] inputs, float[] weights)
    {
        using var scope = Autograd.NoGrad();
        var output = forward(inputs).ToArray();
        double sum = 0;
        for (int i = 0; i < output.Length; i++) sum += (double)output[i] * weights[i];
        return sum;
    }

    /// <summary>A leaf requiring gradients with values uniform in [−1, 1) from <paramref name="seed"/>.</summary>
    public static Tensor Param(int seed, params int[] dims)
    {
        var t = Tensor.RandomUniform(new Shape(dims), new Random(seed), -1f, 1f);
        t.RequiresGrad = true;
        return t;
    }

    /// <summary>Like <see cref="Param"/> but with every |value| ≥ 0.1, away from kinks at zero (ReLU).</summary>
    public static Tensor ParamAwayFromZero(int seed, params int[] dims)
    {
        var t = Tensor.RandomUniform(new Shape(dims), new Random(seed), -1f, 1f);
        var s = t.AsSpan<float>();
        for (int i = 0; i < s.Length; i++) s[i] = MathF.CopySign(0.1f + (0.9f * MathF.Abs(s[i])), s[i]);
        t.RequiresGrad = true;
        return t;
    }
}
