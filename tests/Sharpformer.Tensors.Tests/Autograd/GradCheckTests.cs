namespace Sharpformer.Tensors.Tests;

/// <summary>Every op's gradient, for every differentiable input, against central finite differences.</summary>
public class GradCheckTests
{
    private static Tensor P(int seed, params int[] dims) => GradCheck.Param(seed, dims);

    private static Tensor Ids(int[] values, params int[] dims) => Tensor.FromArray(values, new Shape(dims));

    // ---------------------------------------------------------------- matrix products

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void MatMul_2D_AllTransposes_MatchesFiniteDifferences(bool transposeA, bool transposeB)
    {
        var a = transposeA ? P(1, 4, 3) : P(1, 3, 4);
        var b = transposeB ? P(2, 5, 4) : P(2, 4, 5);
        GradCheck.Check(x => Ops.MatMul(x[0], x[1], transposeA, transposeB), a, b);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public void MatMul_Batched_MatchesFiniteDifferences(bool transposeA, bool transposeB)
    {
        var a = transposeA ? P(3, 2, 2, 4, 3) : P(3, 2, 2, 3, 4);
        var b = transposeB ? P(4, 2, 2, 5, 4) : P(4, 2, 2, 4, 5);
        GradCheck.Check(x => Ops.MatMul(x[0], x[1], transposeA, transposeB), a, b);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MatMul_SharedRank2B_SumsItsGradientOverTheBatch(bool transposeA)
    {
        var a = transposeA ? P(5, 3, 4, 3) : P(5, 3, 3, 4);
        var b = P(6, 4, 2);
        GradCheck.Check(x => Ops.MatMul(x[0], x[1], transposeA), a, b);
    }

    [Fact]
    public void MatMul_OnlyOneInputRequiresGrad_OtherGetsNone()
    {
        var a = P(7, 3, 4);
        var b = Tensor.RandomUniform(new Shape(4, 2), new Random(8), -1f, 1f);
        GradCheck.Check(x => Ops.MatMul(x[0], x[1]), a, b);
    }

    [Fact]
    public void Linear_WithBias_3DInput_MatchesFiniteDifferences() =>
        GradCheck.Check(x => Ops.Linear(x[0], x[1], x[2]), P(9, 2, 3, 4), P(10, 5, 4), P(11, 5));

    [Fact]
    public void Linear_NoBias_MatchesFiniteDifferences() =>
        GradCheck.Check(x => Ops.Linear(x[0], x[1]), P(12, 3, 4), P(13, 2, 4));

    // ---------------------------------------------------------------- elementwise and broadcasting

    public static TheoryData<string, int[], int[]> BinaryCases() => new()
    {
        { "Add", [2, 3, 4], [2, 3, 4] },
        { "Add", [2, 3, 4], [4] },
        { "Add", [2, 3, 4], [3, 4] },
        { "Sub", [2, 3, 4], [2, 3, 4] },
        { "Sub", [2, 3, 4], [4] },
        { "Mul", [2, 3, 4], [2, 3, 4] },
        { "Mul", [2, 3, 4], [4] },
        { "Mul", [2, 3, 4], [3, 4] },
    };

    [Theory]
    [MemberData(nameof(BinaryCases))]
    public void Binary_SameShapeAndBroadcast_MatchesFiniteDifferences(string op, int[] aDims, int[] bDims)
    {
        Func<Tensor, Tensor, Tensor> f = op switch
        {
            "Add" => Ops.Add,
            "Sub" => Ops.Sub,
            _ => Ops.Mul,
        };
        GradCheck.Check(x => f(x[0], x[1]), P(14, aDims), P(15, bDims));
    }

    [Fact]
    public void Mul_SameTensorTwice_SumsBothPaths()
    {
        // x ⊙ x: the tape must add the two gradient contributions (2x), not keep one.
        var x = P(16, 3, 4);
        GradCheck.Check(t => Ops.Mul(t[0], t[0]), x);
    }

    [Fact]
    public void Scale_MatchesFiniteDifferences() => GradCheck.Check(x => Ops.Scale(x[0], -2.5f), P(17, 3, 5));

    [Fact]
    public void Relu_AwayFromZero_MatchesFiniteDifferences() => GradCheck.Check(x => Ops.Relu(x[0]), GradCheck.ParamAwayFromZero(18, 4, 6));

    [Fact]
    public void Silu_MatchesFiniteDifferences() => GradCheck.Check(x => Ops.Silu(Ops.Scale(x[0], 3f)), P(19, 4, 6));

    [Theory]
    [InlineData(GeluApproximation.None)]
    [InlineData(GeluApproximation.Tanh)]
    public void Gelu_BothForms_MatchFiniteDifferences(GeluApproximation approximation) =>
        GradCheck.Check(x => Ops.Gelu(Ops.Scale(x[0], 3f), approximation), P(20, 4, 6));

    [Fact]
    public void Dropout_Training_MatchesFiniteDifferencesWithTheSameMask() =>
        GradCheck.Check(x => Ops.Dropout(x[0], 0.3f, training: true, new Random(21)), P(22, 4, 8));

    // ---------------------------------------------------------------- reductions

    [Fact]
    public void SumAndMean_All_MatchFiniteDifferences()
    {
        GradCheck.Check(x => Ops.Sum(x[0]), P(23, 3, 4));
        GradCheck.Check(x => Ops.Mean(x[0]), P(24, 3, 4));
    }

    [Theory]
    [InlineData(0, false)]
    [InlineData(1, true)]
    [InlineData(-1, false)]
    public void SumAndMean_OverAxis_MatchFiniteDifferences(int axis, bool keepDim)
    {
        GradCheck.Check(x => Ops.Sum(x[0], axis, keepDim), P(25, 2, 3, 4));
        GradCheck.Check(x => Ops.Mean(x[0], axis, keepDim), P(26, 2, 3, 4));
    }

    // ---------------------------------------------------------------- views

    [Fact]
    public void Reshape_MatchesFiniteDifferences() =>
        GradCheck.Check(x => Ops.Mul(Ops.Reshape(x[0], 4, -1), x[1]), P(27, 2, 3, 4), P(28, 6));

    [Fact]
    public void TransposeAndPermute_StridedViews_MatchFiniteDifferences()
    {
        // A view feeding a broadcasting op: the gradient must land back in the source layout.
        GradCheck.Check(x => Ops.Mul(Ops.Transpose(x[0], 0, 2), x[1]), P(29, 2, 3, 4), P(30, 2));
        GradCheck.Check(x => Ops.Mul(Ops.Permute(x[0], 2, 0, 1), x[1]), P(31, 2, 3, 4), P(32, 3));
    }

    [Fact]
    public void Narrow_GradientIsZeroOutsideTheWindow()
    {
        var x = P(33, 3, 5);
        GradCheck.Check(t => Ops.Scale(Ops.Narrow(t[0], 1, 1, 3), 2f), x);
        var g = x.Grad!;
        for (int r = 0; r < 3; r++)
        {
            Assert.Equal(0f, g.GetFloat(r, 0));
            Assert.Equal(0f, g.GetFloat(r, 4));
        }
    }

    [Fact]
    public void SplitHeadsAndMergeHeads_MatchFiniteDifferences()
    {
        GradCheck.Check(x => Ops.Mul(Ops.SplitHeads(x[0], 2), x[1]), P(34, 2, 3, 4), P(35, 3, 2));
        GradCheck.Check(x => Ops.Mul(Ops.MergeHeads(x[0]), x[1]), P(36, 2, 2, 3, 2), P(37, 4));
    }

    [Fact]
    public void Concat_MatchesFiniteDifferences() =>
        GradCheck.Check(x => Ops.Mul(Ops.Concat([x[0], x[1]], 1), x[2]), P(38, 2, 2, 3), P(39, 2, 1, 3), P(40, 3));

    // ---------------------------------------------------------------- softmax, norms, attention

    [Fact]
    public void Softmax_Plain_MatchesFiniteDifferences() => GradCheck.Check(x => Ops.Softmax(Ops.Scale(x[0], 2f)), P(41, 3, 5));

    [Fact]
    public void Softmax_CausalAndPadded_MatchesFiniteDifferences()
    {
        // [B=2, H=2, Tq=3, Tk=4]; batch row 1 hides key 3; causal aligns queries to the last keys.
        var mask = Ids([1, 1, 1, 1, 1, 1, 1, 0], 2, 4);
        GradCheck.Check(x => Ops.Softmax(Ops.Scale(x[0], 2f), causal: true, attentionMask: mask), P(42, 2, 2, 3, 4));
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    public void LayerNorm_WithAndWithoutAffine_MatchesFiniteDifferences(bool withWeight, bool withBias)
    {
        var x = P(43, 2, 3, 6);
        var w = withWeight ? P(44, 6) : null;
        var b = withBias ? P(45, 6) : null;
        var inputs = new[] { x, w, b }.OfType<Tensor>().ToArray();
        GradCheck.Check(
            t => Ops.LayerNorm(t[0], withWeight ? t[1] : null, withBias ? t[withWeight ? 2 : 1] : null),
            inputs);
    }

    [Fact]
    public void RmsNorm_MatchesFiniteDifferences() => GradCheck.Check(x => Ops.RmsNorm(x[0], x[1]), P(46, 2, 3, 6), P(47, 6));

    [Fact]
    public void RmsNorm_NoWeight_MatchesFiniteDifferences() => GradCheck.Check(x => Ops.RmsNorm(x[0], null), P(64, 3, 5));

    [Fact]
    public void LayerNorm_OnlyWeightRequiresGrad_InputGetsNone()
    {
        var x = Tensor.RandomUniform(new Shape(2, 4), new Random(65), -1f, 1f);
        GradCheck.Check(t => Ops.LayerNorm(t[0], t[1], null), x, P(66, 4));
    }

    [Fact]
    public void Embedding_RepeatedIds_AccumulatesTableGradient() =>
        GradCheck.Check(x => Ops.Embedding(Ids([1, 3, 1, 0, 4, 1], 2, 3), x[0]), P(48, 5, 4));

    [Fact]
    public void Embedding_I64Ids_MatchesFiniteDifferences() =>
        GradCheck.Check(x => Ops.Embedding(Tensor.FromArray(new long[] { 2, 0, 2 }), x[0]), P(49, 3, 2));

    [Fact]
    public void ScaledDotProductAttention_HeadViewsCausalPadded_MatchesFiniteDifferences()
    {
        // q, k, v come from [B, T, C] through SplitHeads views, as in a transformer layer.
        var mask = Ids([1, 1, 1, 1, 1, 1, 1, 0], 2, 4);
        GradCheck.Check(
            x => Ops.ScaledDotProductAttention(Ops.SplitHeads(x[0], 2), Ops.SplitHeads(x[1], 2), Ops.SplitHeads(x[2], 2), causal: true, attentionMask: mask),
            P(50, 2, 4, 6), P(51, 2, 4, 6), P(52, 2, 4, 6));
    }

    [Fact]
    public void ScaledDotProductAttention_ContiguousHeadsKvCacheShape_MatchesFiniteDifferences()
    {
        // Plain [B, H, T, D] tensors (copied into the kernel's layout), Tq = 2 new queries over Tk = 4 keys, padded key.
        var mask = Ids([1, 1, 1, 1, 0, 1, 1, 1], 2, 4);
        GradCheck.Check(
            x => Ops.ScaledDotProductAttention(x[0], x[1], x[2], causal: true, attentionMask: mask),
            P(58, 2, 2, 2, 3), P(59, 2, 2, 4, 3), P(60, 2, 2, 4, 3));
    }

    [Fact]
    public void ScaledDotProductAttention_ValueWidthDiffers_MatchesFiniteDifferences() =>
        GradCheck.Check(x => Ops.ScaledDotProductAttention(x[0], x[1], x[2]), P(61, 1, 2, 3, 2), P(62, 1, 2, 3, 2), P(63, 1, 2, 3, 5));

    [Fact]
    public void ScaledDotProductAttention_CrossAttentionReturnedWeights_MatchFiniteDifferences()
    {
        // Tq = 2 queries over Tk = 3 keys; the loss also reads the returned probabilities.
        GradCheck.Check(
            x =>
            {
                var output = Ops.ScaledDotProductAttention(x[0], x[1], x[2], out var weights, scale: 0.7f);
                return Ops.Concat([Ops.Reshape(output, -1), Ops.Reshape(weights, -1)], 0);
            },
            P(53, 1, 2, 2, 3), P(54, 1, 2, 3, 3), P(55, 1, 2, 3, 4));
    }

    [Fact]
    public void BinaryCrossEntropyWithLogits_LogitsAndTargets_MatchFiniteDifferences()
    {
        // Soft targets in (0, 1) require gradients too; logits scaled so both signs and |x| > 1 occur.
        GradCheck.Check(x => Ops.BinaryCrossEntropyWithLogits(Ops.Scale(x[0], 3f), x[1]), P(90, 3, 4), Probabilities(91, 3, 4));
    }

    [Fact]
    public void MseLoss_InputAndTarget_MatchFiniteDifferences()
    {
        GradCheck.Check(x => Ops.MseLoss(x[0], x[1]), P(92, 2, 3, 2), P(93, 2, 3, 2));
    }

    [Fact]
    public void BinaryCrossEntropyWithLogits_ForwardEqualsTheNaiveFormula()
    {
        var logits = Tensor.FromArray([-2f, 0.5f, 3f, 0f], new Shape(2, 2));
        var targets = Tensor.FromArray([0f, 1f, 0.25f, 1f], new Shape(2, 2));
        double expected = 0;
        var x = logits.ToArray();
        var y = targets.ToArray();
        for (int i = 0; i < 4; i++)
        {
            double p = 1 / (1 + Math.Exp(-x[i]));
            expected -= (y[i] * Math.Log(p)) + ((1 - y[i]) * Math.Log(1 - p));
        }

        Assert.Equal(expected / 4, Ops.BinaryCrossEntropyWithLogits(logits, targets).GetFloat(), Tolerances.ActivationVsDouble);
    }

    [Fact]
    public void PairwiseLosses_ShapeMismatch_Throws()
    {
        var a = Tensor.Zeros(new Shape(2, 3));
        var b = Tensor.Zeros(new Shape(3, 2));
        Assert.Contains("same shape", Assert.Throws<ArgumentException>(() => Ops.MseLoss(a, b)).Message);
        Assert.Contains("same shape", Assert.Throws<ArgumentException>(() => Ops.BinaryCrossEntropyWithLogits(a, b)).Message);
    }

    private static Tensor Probabilities(int seed, params int[] dims)
    {
        var t = Tensor.RandomUniform(new Shape(dims), new Random(seed), 0.05f, 0.95f);
        t.RequiresGrad = true;
        return t;
    }

    [Fact]
    public void CrossEntropy_WithIgnoredTargets_MatchesFiniteDifferences()
    {
        var targets = Ids([2, -100, 0, 4, -100], 5);
        GradCheck.Check(x => Ops.CrossEntropy(Ops.Scale(x[0], 3f), targets), P(56, 5, 5));
    }

    [Fact]
    public void CrossEntropy_LabelSmoothingWithIgnoredTargets_MatchesFiniteDifferences()
    {
        var targets = Ids([2, -100, 0, 4, -100], 5);
        GradCheck.Check(x => Ops.CrossEntropy(Ops.Scale(x[0], 3f), targets, labelSmoothing: 0.1f), P(67, 5, 5));
    }

    [Fact]
    public void Tanh_MatchesFiniteDifferences() => GradCheck.Check(x => Ops.Tanh(Ops.Scale(x[0], 2f)), P(68, 3, 5));

    [Fact]
    public void Embedding_TiedAsOutputProjection_SumsBothGradients() =>
        GradCheck.Check(x => Ops.Linear(Ops.Tanh(Ops.Embedding(Ids([2, 0, 2, 4], 2, 2), x[0])), x[0]), P(69, 5, 3));

    [Fact]
    public void ScaledDotProductAttention_FusedQkvWithFullyPaddedSequence_MatchesFiniteDifferences()
    {
        // q, k, v as head views of one fused [B, T, 3·C] projection; sequence 1 is all padding (its gradients are zero).
        var mask = Ids([1, 1, 0, 1, 0, 0, 0, 0], 2, 4);
        GradCheck.Check(
            x =>
            {
                var q = Ops.SplitHeads(Ops.Narrow(x[0], 2, 0, 4), 2);
                var k = Ops.SplitHeads(Ops.Narrow(x[0], 2, 4, 4), 2);
                var v = Ops.SplitHeads(Ops.Narrow(x[0], 2, 8, 4), 2);
                return Ops.ScaledDotProductAttention(q, k, v, causal: true, attentionMask: mask, scale: 0.8f);
            },
            P(70, 2, 4, 12));
    }

    [Fact]
    public void Checkpoint_MatchesFiniteDifferences() =>
        GradCheck.Check(x => Ops.Checkpoint(h => Ops.Linear(Ops.Gelu(Ops.Linear(h, x[1], x[2])), x[3]), x[0]), P(71, 2, 3, 4), P(72, 5, 4), P(73, 5), P(74, 4, 5));

    [Fact]
    public void CrossEntropy_3DLogitsI64Targets_MatchesFiniteDifferences()
    {
        var targets = Tensor.FromArray(new long[] { 1, 0, 3, -1 }, new Shape(2, 2));
        GradCheck.Check(x => Ops.CrossEntropy(x[0], targets, ignoreIndex: -1), P(57, 2, 2, 4));
    }
}
