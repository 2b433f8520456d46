using System.Runtime.InteropServices;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels;
using Sharpformer.Tensors.Storage;

namespace Sharpformer.NN.Tests;

/// <summary>
/// The one dense layer: <see cref="Linear.Apply"/> (GEMV, packed GEMM, widened F16/BF16 blocks) against the autograd
/// forward and a plain loop, the packed weight following in-place updates, narrow weights refusing autograd, the HF
/// Conv1D checkpoint layout through load / state dict / save, and the weight being the aligned buffer itself.
/// </summary>
public sealed class DenseLayerTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sf-dense-" + Guid.NewGuid().ToString("N"));

    public DenseLayerTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Row counts on both sides of <see cref="Gemv.MaxRows"/>: GEMV for ≤ 8 rows, GEMM above.</summary>
    public static TheoryData<int> Rows => [1, 3, Gemv.MaxRows, Gemv.MaxRows + 1, 37];

    [Theory]
    [MemberData(nameof(Rows))]
    public void Apply_F32_EqualsPlainLoopWithBiasAndAccumulate(int rows)
    {
        var linear = new Linear(19, 13, VarBuilder.FromInit(seed: 1, std: 0.5f));
        linear.Bias!.Value.AsSpan<float>().Fill(0.25f);
        var x = Tensor.RandomNormal(new Shape(rows, 19), new Random(2)).ToArray();
        var expected = Loop(x, rows, linear.Weight.Value.ToArray(), linear.Bias.Value.ToArray(), 19, 13);

        var y = new float[rows * 13];
        linear.Apply(x, rows, y, accumulate: false);
        Close(expected, y);

        // accumulate: y += x·Wᵀ + b (the fused residual add).
        linear.Apply(x, rows, y, accumulate: true);
        Close(expected.Select(v => 2 * v).ToArray(), y);

        // And the autograd forward computes the same function.
        Close(expected, linear.Forward(Tensor.FromArray(x, new Shape(rows, 19))).ToArray());
    }

    [Theory]
    [InlineData(DType.F16, 1)]
    [InlineData(DType.F16, 40)]
    [InlineData(DType.BF16, 1)]
    [InlineData(DType.BF16, 40)]
    public void Apply_NarrowWeight_EqualsF32OnRepresentableValues(DType dtype, int rows)
    {
        // Weights rounded to the narrow type first, so both layers hold the same values.
        var weight = Tensor.RandomNormal(new Shape(70, 33), new Random(4), 0f, 0.3f).To(dtype).To(DType.F32);
        var tensors = new Dictionary<string, Tensor> { ["weight"] = weight, ["bias"] = Tensor.RandomNormal(new Shape(70), new Random(5)) };
        var wide = new Linear(33, 70, VarBuilder.FromTensors(tensors));
        var narrow = new Linear(33, 70, VarBuilder.FromTensors(tensors), dtype: dtype);
        Assert.Equal(dtype, narrow.WeightType);
        Assert.False(narrow.Weight.RequiresGrad);
        var x = Tensor.RandomNormal(new Shape(rows, 33), new Random(6)).ToArray();
        var expected = new float[rows * 70];
        var actual = new float[rows * 70];
        wide.Apply(x, rows, expected, accumulate: false);
        narrow.Apply(x, rows, actual, accumulate: false);
        Close(expected, actual);
    }

    [Fact]
    public void Apply_InPlaceUpdateThenMarkModified_PackedGemmUsesNewValues()
    {
        var linear = new Linear(16, 24, VarBuilder.FromInit(seed: 7));
        int rows = 20; // the packed GEMM
        var x = Tensor.RandomNormal(new Shape(rows, 16), new Random(8)).ToArray();
        var y = new float[rows * 24];
        linear.Apply(x, rows, y, accumulate: false); // packs the weight

        var values = linear.Weight.Value.AsSpan<float>();
        for (int i = 0; i < values.Length; i++) values[i] = -values[i] + 0.01f;
        linear.Weight.MarkModified();

        linear.Apply(x, rows, y, accumulate: false);
        Close(Loop(x, rows, linear.Weight.Value.ToArray(), linear.Bias!.Value.ToArray(), 16, 24), y);
    }

    [Fact]
    public void Forward_NarrowWeight_ThrowsSayingLoadInF32()
    {
        var linear = new Linear(4, 3, VarBuilder.FromInit(seed: 9), dtype: DType.F16);
        var error = Assert.Throws<InvalidOperationException>(() => linear.Forward(Tensor.Zeros(new Shape(2, 4))));
        Assert.Contains("DType.F32", error.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => linear.Weight.RequiresGrad = true);
        Assert.Throws<ArgumentException>(() => new Parameter(Tensor.Zeros(new Shape(2), DType.BF16)));

        var table = new Embedding(5, 4, VarBuilder.FromInit(seed: 9), DType.BF16);
        Assert.Throws<InvalidOperationException>(() => table.Forward(Tensor.FromArray(new[] { 1 }, new Shape(1, 1))));
        var row = new float[4];
        table.CopyRow(3, row);
        Assert.Equal(table.Weight.Value.To(DType.F32).ToArray()[12..16], row);
    }

    [Fact]
    public void Conv1D_CheckpointInOut_HeldOutInAndWrittenBackInOut()
    {
        // HF Conv1D: weight [In = 3, Out = 2].
        var stored = Tensor.FromArray(new float[] { 1, 2, 3, 4, 5, 6 }, new Shape(3, 2));
        var tensors = new Dictionary<string, Tensor> { ["c.weight"] = stored, ["c.bias"] = Tensor.FromArray(new[] { 0.5f, -0.5f }) };
        var model = new ConvModel(VarBuilder.FromTensors(tensors));
        var conv = model.C;
        Assert.Equal(ParameterLayout.Transposed, conv.Weight.CheckpointLayout);
        Assert.Equal(new Shape(2, 3), conv.Weight.Shape);
        Assert.Equal([1f, 3f, 5f, 2f, 4f, 6f], conv.Weight.Value.ToArray());

        // y = x · W_conv + b, HF's Conv1D.
        var y = new float[2];
        conv.Apply([1f, 1f, 1f], 1, y, accumulate: false);
        Assert.Equal([9.5f, 11.5f], y);

        var state = model.StateDict();
        Assert.Equal(new Shape(3, 2), state["c.weight"].Shape);
        Assert.Equal(stored.ToArray(), state["c.weight"].ToArray());

        var path = Path.Combine(_dir, "conv.safetensors");
        model.SaveSafetensors(path);
        using (var file = SafeTensorsLoader.Open(path))
        {
            Assert.Equal([3L, 2L], file.GetInfo("c.weight").Shape);
            Assert.Equal(stored.ToArray(), file.GetTensorAsF32("c.weight").ToArray());

            var other = new ConvModel(VarBuilder.FromInit(seed: 3));
            var report = other.LoadStateDict(file);
            Assert.Empty(report.Missing);
            Assert.Equal(conv.Weight.Value.ToArray(), other.C.Weight.Value.ToArray());
        }

        // A state dict in the module's own [Out, In] would be the wrong shape for a Conv1D parameter.
        var wrong = new Dictionary<string, Tensor> { ["c.weight"] = conv.Weight.Value, ["c.bias"] = conv.Bias!.Value };
        Assert.Throws<ModelLoadException>(() => new ConvModel(VarBuilder.FromInit()).LoadStateDict(wrong));
    }

    [Fact]
    public void Conv1D_F16Checkpoint_TransposedWithoutWidening()
    {
        var stored = Tensor.RandomNormal(new Shape(5, 7), new Random(10)).To(DType.F16);
        var tensors = new Dictionary<string, Tensor> { ["c.weight"] = stored, ["c.bias"] = Tensor.Zeros(new Shape(7)) };
        var conv = Linear.Conv1D(5, 7, VarBuilder.FromTensors(tensors).Push("c"), DType.F16);
        Assert.Equal(DType.F16, conv.Weight.DType);
        var expected = stored.Transpose(0, 1).Contiguous().ToArray<Half>();
        Assert.Equal(expected, conv.Weight.Value.ToArray<Half>());
    }

    [Fact]
    public void Weight_IsA64ByteAlignedBufferTheKernelsRead()
    {
        var linear = new Linear(40, 24, VarBuilder.FromInit(seed: 11));
        var value = linear.Weight.Value;
        var storage = Assert.IsType<ManagedStorage<float>>(value.Storage);
        long address = Marshal.UnsafeAddrOfPinnedArrayElement(storage.Array, (int)value.Offset).ToInt64();
        Assert.Equal(0, address % AlignedBuffer.Alignment);

        // Writing through Parameter.Value changes what Apply computes (GEMV path: no cached copy at all).
        var y = new float[24];
        value.AsSpan<float>().Clear();
        linear.Bias!.Value.AsSpan<float>().Fill(2f);
        linear.Apply(new float[40], 1, y, accumulate: false);
        Assert.All(y, v => Assert.Equal(2f, v));
    }

    [Fact]
    public void Tied_SharedWeight_ListedOnceAndAliasAcceptedOnLoad()
    {
        var model = new TiedModel(VarBuilder.FromInit(seed: 12));
        Assert.Same(model.Table.Weight, model.Head.Weight);
        Assert.Equal(["table.weight"], model.NamedParameters().Select(p => p.Name));

        var state = new Dictionary<string, Tensor>
        {
            ["table.weight"] = Tensor.Ones(new Shape(6, 4)),
            ["head.weight"] = Tensor.Ones(new Shape(6, 4)), // HF state dicts keep the tied copy
        };
        var report = model.LoadStateDict(state);
        Assert.Empty(report.Unused);
        Assert.Equal(["table.weight"], report.Loaded);
        Assert.All(model.Head.Weight.Value.ToArray(), v => Assert.Equal(1f, v));
    }

    private static float[] Loop(float[] x, int rows, float[] w, float[] b, int inF, int outF)
    {
        var y = new float[rows * outF];
        for (int r = 0; r < rows; r++)
        {
            for (int o = 0; o < outF; o++)
            {
                double s = b[o];
                for (int i = 0; i < inF; i++) s += (double)x[(r * inF) + i] * w[(o * inF) + i];
                y[(r * outF) + o] = (float)s;
            }
        }

        return y;
    }

    private static void Close(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(MathF.Abs(expected[i] - actual[i]) <= Tolerances.LayerVsLoop * (1 + MathF.Abs(expected[i])), $"[{i}] expected {expected[i]}, got {actual[i]}");
        }
    }

    private sealed class ConvModel : Module
    {
        public ConvModel(VarBuilder vb) => C = RegisterModule("c", Linear.Conv1D(3, 2, vb.Push("c")));

        public Linear C { get; }
    }

    private sealed class TiedModel : Module
    {
        public TiedModel(VarBuilder vb)
        {
            Table = RegisterModule("table", new Embedding(6, 4, vb.Push("table")));
            Head = RegisterModule("head", Linear.Tied(Table.Weight));
        }

        public Embedding Table { get; }

        public Linear Head { get; }
    }
}
