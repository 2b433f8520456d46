namespace Sharpformer.Training.Tests.Reference;

/// <summary>Comparisons against the PyTorch training references, with the one tolerance they share.</summary>
internal static class ReferenceCompare
{
    /// <summary>
    /// The issue's bound for every comparison with the PyTorch training references: per tensor,
    /// max |actual − expected| ≤ 1e-4 · max |expected| (relative to the tensor's largest element, so elements near 0
    /// are not held to a relative bound their float32 rounding cannot meet); for scalars |a − e| ≤ 1e-4 · |e|. The
    /// fixtures' own float32-vs-float64 spread is ~1e-6 (expected.json "conditioning"), so this leaves room for
    /// another summation order but not for a wrong formula.
    /// </summary>
    public const float Relative = 1e-4f;

    /// <summary>Asserts a scalar (a loss, an lr, a gradient norm) is within <see cref="Relative"/> of the reference.</summary>
    /// <param name="what">What is compared, for the message.</param>
    /// <param name="actual">Our value.</param>
    /// <param name="expected">PyTorch's value.</param>
    /// <returns>The relative error |a − e| / |e| (for reports).</returns>
    public static double AssertClose(string what, double actual, double expected)
    {
        double error = Math.Abs(actual - expected);
        Assert.True(error <= Relative * Math.Abs(expected),
            $"{what}: ours {actual:G9}, PyTorch {expected:G9}; |diff| {error:G3} is {error / Math.Max(Math.Abs(expected), double.Epsilon):G3} relative, over the tolerance {Relative:G2}.");
        return error / Math.Max(Math.Abs(expected), double.Epsilon);
    }

    /// <summary>
    /// Asserts a tensor is within <see cref="Relative"/> of the reference: max |actual − expected| ≤ Relative · scale,
    /// scale = max(max |expected|, <paramref name="scaleFloor"/>). The message names the worst element.
    /// </summary>
    /// <param name="name">The tensor's name, for the message.</param>
    /// <param name="actual">Our values, row-major in our layout.</param>
    /// <param name="expected">The reference tensor, in HF layout.</param>
    /// <param name="transposedConv1D">
    /// True when <paramref name="expected"/> is an HF Conv1D weight [in, out] and ours is stored [out, in] (as a Linear
    /// weight): element [o, i] of ours is compared with [i, o] of the reference.
    /// </param>
    /// <param name="scaleFloor">
    /// The smallest scale to measure against; 0 uses the tensor's own. Give a model-wide scale for tensors whose exact
    /// value is 0 (their reference is pure rounding noise).
    /// </param>
    /// <returns>The error measured: max |actual − expected| / scale (for reports).</returns>
    public static float AssertClose(string name, ReadOnlySpan<float> actual, ReferenceTensor expected, bool transposedConv1D = false, float scaleFloor = 0f)
    {
        ArgumentNullException.ThrowIfNull(expected);
        int[] shape = expected.Shape;
        Assert.True(actual.Length == expected.Data.Length,
            $"{name}: ours has {actual.Length} elements, the reference [{string.Join(", ", shape)}] has {expected.Data.Length}.");
        if (transposedConv1D)
        {
            Assert.True(shape.Length == 2, $"{name}: transposedConv1D needs a 2-D reference, got [{string.Join(", ", shape)}].");
        }

        int rows = transposedConv1D ? shape[0] : 0; // the reference's [in, out]
        int cols = transposedConv1D ? shape[1] : 0;
        float scale = scaleFloor;
        foreach (float e in expected.Data)
        {
            scale = Math.Max(scale, Math.Abs(e));
        }

        float worst = 0f;
        int worstIndex = 0; // index into the reference (HF layout)
        for (int i = 0; i < expected.Data.Length; i++)
        {
            // Reference element i is [r, c] of [in, out]; ours holds it at [c, r] of [out, in].
            int ours = transposedConv1D ? ((i % cols) * rows) + (i / cols) : i;
            float error = Math.Abs(actual[ours] - expected.Data[i]);
            if (!(error <= worst))
            {
                worst = error;
                worstIndex = i;
                if (float.IsNaN(error))
                {
                    break;
                }
            }
        }

        int worstOurs = transposedConv1D ? ((worstIndex % cols) * rows) + (worstIndex / cols) : worstIndex;
        Assert.True(worst <= Relative * scale,
            $"{name}: max |ours − PyTorch| = {worst:G3} at {Index(worstIndex, shape)} (HF layout{(transposedConv1D ? ", ours transposed" : "")}): ours {actual[worstOurs]:G9}, PyTorch {expected.Data[worstIndex]:G9}; " +
            $"{worst / Math.Max(scale, float.Epsilon):G3} of the scale {scale:G4}{(scaleFloor > 0f ? " (a model-wide floor)" : " (max |PyTorch|)")}, over the tolerance {Relative:G2}.");
        return worst / Math.Max(scale, float.Epsilon);
    }

    /// <summary>"[i, j, ...]" of a flat row-major index.</summary>
    private static string Index(int flat, int[] shape)
    {
        var index = new int[shape.Length];
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            index[d] = flat % shape[d];
            flat /= shape[d];
        }

        return "[" + string.Join(", ", index) + "]";
    }
}
