using Sharpformer.Tensors.Storage;

namespace Sharpformer.Tensors.Tests;

public class TensorTests
{
    private static Tensor Iota(params int[] dims)
    {
        var shape = new Shape(dims);
        var data = new float[shape.ElementCount];
        for (int i = 0; i < data.Length; i++) data[i] = i;
        return Tensor.FromArray(data, shape);
    }

    [Fact]
    public void Reshape_InfersMinusOne_AndSharesStorage()
    {
        var t = Iota(2, 3, 4);
        var r = t.Reshape(6, -1);
        Assert.Equal(new Shape(6, 4), r.Shape);
        Assert.Same(t.Storage, r.Storage);
    }

    [Fact]
    public void Reshape_WrongCount_NamesBothShapes()
    {
        var t = Iota(2, 3);
        var e = Assert.Throws<ArgumentException>(() => t.Reshape(4, 2));
        Assert.Contains("[2, 3]", e.Message, StringComparison.Ordinal);
        Assert.Contains("[4, 2]", e.Message, StringComparison.Ordinal);
        Assert.Contains("Reshape", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Transpose_IsView_ContiguousMaterializesRowMajor()
    {
        var t = Iota(2, 3);
        var tt = t.Transpose(0, 1);
        Assert.False(tt.IsContiguous);
        Assert.Same(t.Storage, tt.Storage);
        Assert.Equal(new float[] { 0, 3, 1, 4, 2, 5 }, tt.Contiguous().ToArray());
    }

    [Fact]
    public void SplitHeads_MatchesReshapePermute_AndMergeHeadsInverts()
    {
        // [B=2, T=3, H*D=4] with H=2: element (b, h, t, d) = x[b, t, h*D + d].
        var x = Iota(2, 3, 4);
        var heads = x.SplitHeads(2);
        Assert.Equal(new Shape(2, 2, 3, 2), heads.Shape);
        Assert.Same(x.Storage, heads.Storage);
        for (int b = 0; b < 2; b++)
            for (int h = 0; h < 2; h++)
                for (int t = 0; t < 3; t++)
                    for (int d = 0; d < 2; d++)
                        Assert.Equal(x.GetFloat(b, t, (h * 2) + d), heads.GetFloat(b, h, t, d));
        Assert.Equal(x.ToArray(), heads.MergeHeads().ToArray());
    }

    [Fact]
    public void Narrow_Select_Split_AreViewsWithRightValues()
    {
        var t = Iota(4, 5);
        var n = t.Narrow(1, 1, 3);
        Assert.Equal(new float[] { 1, 2, 3, 6, 7, 8, 11, 12, 13, 16, 17, 18 }, n.ToArray());
        Assert.Equal(new float[] { 10, 11, 12, 13, 14 }, t.Select(0, 2).ToArray());
        var parts = t.Split(0, 2);
        Assert.Equal(new float[] { 10, 11, 12, 13, 14, 15, 16, 17, 18, 19 }, parts[1].ToArray());
        Assert.Throws<ArgumentException>(() => t.Split(1, 2));
    }

    [Fact]
    public void Permute_ThreeAxes_ContiguousMatchesIndexing()
    {
        var t = Iota(2, 3, 4);
        var p = t.Permute(2, 0, 1).Contiguous();
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 2; j++)
                for (int k = 0; k < 3; k++)
                    Assert.Equal(t.GetFloat(j, k, i), p.GetFloat(i, j, k));
    }

    [Fact]
    public void Unsqueeze_Squeeze_RoundTrip()
    {
        var t = Iota(3, 4);
        var u = t.Unsqueeze(1);
        Assert.Equal(new Shape(3, 1, 4), u.Shape);
        Assert.True(u.IsContiguous);
        Assert.Equal(t.Shape, u.SqueezeAxis(1).Shape);
        Assert.Equal(new Shape(3, 4, 1), t.Unsqueeze(-1).Shape);
    }

    [Fact]
    public void AsSpan_OnNonContiguousView_ExplainsFix()
    {
        var e = Assert.Throws<InvalidOperationException>(() => Iota(2, 3).Transpose(0, 1).AsSpan<float>());
        Assert.Contains("Contiguous()", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AsSpan_WrongDType_Throws()
    {
        var t = Tensor.Zeros(new Shape(3), DType.I64);
        Assert.Throws<InvalidOperationException>(() => t.AsSpan<float>());
        Assert.Equal(3, t.AsSpan<long>().Length);
    }

    [Theory]
    [InlineData(DType.F16)]
    [InlineData(DType.BF16)]
    public void To_HalfFormats_RoundTripRepresentableValues(DType dtype)
    {
        var values = new float[] { 0f, 1f, -2f, 0.5f, 1024f, -0.125f, float.PositiveInfinity };
        var t = Tensor.FromArray(values).To(dtype);
        Assert.Equal(dtype, t.DType);
        Assert.Equal(values, t.To(DType.F32).ToArray());
    }

    [Fact]
    public void BFloat16_RoundsToNearestEven_AndKeepsNaN()
    {
        // 1 + 2^-8 is exactly half-way between two bf16 values: ties go to the even mantissa (1.0).
        Assert.Equal(1f, BFloat16.FromSingle(1f + MathF.Pow(2, -8)).ToSingle());
        // 1 + 3·2^-8 is half-way too, and rounds up to the even neighbour 1 + 2^-6.
        Assert.Equal(1f + MathF.Pow(2, -6), BFloat16.FromSingle(1f + (3 * MathF.Pow(2, -8))).ToSingle());
        Assert.True(float.IsNaN(BFloat16.FromSingle(float.NaN).ToSingle()));
    }

    [Fact]
    public void NativeStorage_IsAligned_AndZeroed()
    {
        var t = Tensor.Native(new Shape(17, 3));
        var storage = Assert.IsType<NativeStorage>(t.Storage);
        unsafe
        {
            Assert.Equal(0, (long)storage.Pointer % 64);
        }

        Assert.All(t.ToArray(), v => Assert.Equal(0f, v));
        storage.Dispose();
        Assert.Throws<ObjectDisposedException>(() => t.ToArray());
    }

    [Fact]
    public void MemoryMappedStorage_IsZeroCopyAndReadOnly()
    {
        string path = Path.GetTempFileName();
        try
        {
            var data = new float[] { 1.5f, -2f, 3.25f, 4f };
            File.WriteAllBytes(path, System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()).ToArray());
            using var storage = MemoryMappedStorage.Open(path);
            var t = new Tensor(storage, DType.F32, new Shape(2, 2));
            Assert.Equal(data, t.AsReadOnlySpan<float>().ToArray());
            Assert.Throws<InvalidOperationException>(() => t.AsSpan<float>());
            var copy = t.Clone();
            copy.AsSpan<float>()[0] = 9f;
            Assert.Equal(1.5f, t.GetFloat(0, 0));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void View_OutsideStorage_IsRejected()
    {
        var storage = new ManagedStorage<float>(new float[6]);
        Assert.Throws<ArgumentException>(() => new Tensor(storage, DType.F32, new Shape(2, 4)));
        Assert.Throws<ArgumentException>(() => new Tensor(storage, DType.F32, new Shape(2, 3), default, 1));
    }

    [Fact]
    public void Shape_NegativeDimension_IsRejected()
    {
        Assert.Throws<ArgumentException>(() => new Shape(2, -1));
        Assert.Equal(1, Shape.Scalar.ElementCount);
    }
}
