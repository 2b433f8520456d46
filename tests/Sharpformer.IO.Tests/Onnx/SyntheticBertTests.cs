using Sharpformer.IO.Onnx;

namespace Sharpformer.IO.Tests.Onnx;

/// <summary>
/// A tiny hand-built BERT graph (C = 4, H = 2, I = 8) with anonymous, shuffled initializer names and V/K/Q emitted in
/// that order, so the importer can only get the mapping right by following data flow. Every initializer holds distinct
/// random values, and each imported tensor is checked against the initializer it must come from.
/// </summary>
public class SyntheticBertTests
{
    private const int C = 4, H = 2, I = 8, V = 10, P = 6, Types = 2;

    [Theory]
    [InlineData(false, 1, false)]
    [InlineData(true, 1, false)]
    [InlineData(false, 3, false)]
    [InlineData(true, 2, true)]
    public void Import_SyntheticBert_MapsEveryTensorByDataFlow(bool fusedLayerNorm, int layers, bool positionIdsInput)
    {
        var (bytes, sources) = Build(fusedLayerNorm, layers, positionIdsInput: positionIdsInput);
        var import = BertOnnxImporter.Import(OnnxReader.Parse(bytes, "synthetic.onnx", null));

        Assert.Equal(new BertOnnxConfig(V, C, layers, H, I, P, Types, 1e-12, "gelu", HasPooler: true), import.Config);
        Assert.Equal(sources.Keys.Order(StringComparer.Ordinal), import.Tensors.Select(t => t.Key).Order(StringComparer.Ordinal));
        foreach (var (name, tensor) in import.Tensors)
        {
            var (source, transposed) = sources[name];
            float[] expected = transposed ? Transpose(source.Values, source.Rows, source.Cols) : source.Values;
            Assert.True(expected.SequenceEqual(tensor.ToArray()), $"{name} does not hold the values of the initializer it belongs to");
            int[] shape = transposed ? [source.Cols, source.Rows] : source.Shape;
            Assert.Equal(shape, tensor.Shape.Dims.ToArray());
        }
    }

    [Fact]
    public void Import_AttentionWithoutSoftmax_ThrowsNotABertExport()
    {
        var (bytes, _) = Build(fusedLayerNorm: false, layers: 1, softmaxOp: "Sigmoid");
        var ex = Assert.Throws<OnnxFormatException>(() => BertOnnxImporter.Import(OnnxReader.Parse(bytes, "sigmoid.onnx", null)));
        Assert.Contains("not a BERT export", ex.Message, StringComparison.Ordinal);
        Assert.Contains("encoder.layer.0", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Softmax", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Import_GraphWithCycle_ThrowsInsteadOfLooping()
    {
        var (bytes, _) = Build(fusedLayerNorm: true, layers: 2, cycle: true);
        var ex = Assert.Throws<OnnxFormatException>(() => BertOnnxImporter.Import(OnnxReader.Parse(bytes, "cycle.onnx", null)));
        Assert.Contains("cycle", ex.Message, StringComparison.Ordinal);
    }

    private sealed record Source(int[] Shape, float[] Values)
    {
        public int Rows => Shape[0];

        public int Cols => Shape.Length > 1 ? Shape[1] : 1;
    }

    private static float[] Transpose(float[] values, int rows, int cols)
    {
        var t = new float[values.Length];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < cols; c++) t[(c * rows) + r] = values[(r * cols) + c];
        }

        return t;
    }

    /// <summary>The synthetic graph's bytes, for the mutation tests.</summary>
    internal static byte[] SyntheticBytes(bool fusedLayerNorm) => Build(fusedLayerNorm, 2).Bytes;

    private static (byte[] Bytes, Dictionary<string, (Source Source, bool Transposed)> Sources) Build(bool fusedLayerNorm, int layers, string softmaxOp = "Softmax", bool positionIdsInput = false, bool cycle = false)
    {
        var random = new Random(1234);
        var nodes = new List<ProtoBuilder>();
        var inits = new List<(string Name, ProtoBuilder Tensor)>();
        var sources = new Dictionary<string, (Source, bool)>(StringComparer.Ordinal);
        int counter = 0;
        string Fresh() => $"v{counter++}";

        // A float initializer with random values under an anonymous name, recorded as the source of an HF tensor.
        string Weight(string? hfName, bool transposed, params int[] shape)
        {
            string name = $"onnx::{random.Next(100_000, 999_999)}";
            var values = new float[shape.Aggregate(1, (a, b) => a * b)];
            for (int i = 0; i < values.Length; i++) values[i] = (float)random.NextDouble();
            inits.Add((name, Onnx.Tensor(name, Onnx.Float, shape.Select(d => (long)d).ToArray(), Onnx.F32(values))));
            if (hfName is not null) sources[hfName] = (new Source(shape, values), transposed);
            return name;
        }

        string Scalar(float value)
        {
            string name = Fresh();
            nodes.Add(Onnx.Node("Constant", [], [name], new ProtoBuilder().String(1, "value").Message(5, Onnx.Tensor(string.Empty, Onnx.Float, [], Onnx.F32(value))).Varint(20, 4)));
            return name;
        }

        string Ints(params long[] values)
        {
            string name = Fresh();
            var raw = values.SelectMany(BitConverter.GetBytes).ToArray();
            inits.Add((name, Onnx.Tensor(name, Onnx.Int64, [values.Length], raw)));
            return name;
        }

        string Op(string op, params string[] inputs) => OpTo(Fresh(), op, inputs);

        string OpTo(string output, string op, params string[] inputs)
        {
            nodes.Add(Onnx.Node(op, inputs, [output]));
            return output;
        }

        string Perm(string input, params long[] perm)
        {
            string output = Fresh();
            var attr = new ProtoBuilder().String(1, "perm");
            foreach (long p in perm) attr.Varint(8, p);
            nodes.Add(Onnx.Node("Transpose", [input], [output], attr.Varint(20, 7)));
            return output;
        }

        string LayerNorm(string x, string prefix, string? output = null)
        {
            string gamma = Weight(prefix + ".weight", false, C), beta = Weight(prefix + ".bias", false, C);
            if (fusedLayerNorm)
            {
                output ??= Fresh();
                nodes.Add(Onnx.Node("LayerNormalization", [x, gamma, beta], [output], new ProtoBuilder().String(1, "epsilon").Float(2, 1e-12f).Varint(20, 1)));
                return output;
            }

            string mean = Op("ReduceMean", x);
            string centered = Op("Sub", x, mean);
            string variance = Op("ReduceMean", Op("Pow", centered, Scalar(2)));
            string std = Op("Sqrt", Op("Add", variance, Scalar(1e-12f)));
            return OpTo(output ?? Fresh(), "Add", Op("Mul", Op("Div", centered, std), gamma), beta);
        }

        // MatMul with an [in, out] weight, then the bias added on the left (as the PyTorch exporter writes it).
        string Dense(string x, string prefix, int inF, int outF) =>
            Op("Add", Weight(prefix + ".bias", false, outF), Op("MatMul", x, Weight(prefix + ".weight", true, inF, outF)));

        string word = Op("Gather", Weight("embeddings.word_embeddings.weight", false, V, C), "input_ids");
        string type = Op("Gather", Weight("embeddings.token_type_embeddings.weight", false, Types, C), "token_type_ids");
        string pos = Op("Gather", Weight("embeddings.position_embeddings.weight", false, P, C), positionIdsInput ? "position_ids" : Ints(0, 1, 2));
        string h = LayerNorm(Op("Add", Op("Add", word, type), pos), "embeddings.LayerNorm");
        string embeddingsOut = h;
        for (int l = 0; l < layers; l++)
        {
            string p = $"encoder.layer.{l}";
            string v = Dense(h, p + ".attention.self.value", C, C);
            string k = Dense(h, p + ".attention.self.key", C, C);
            string q = Dense(h, p + ".attention.self.query", C, C);
            string heads = Ints(0, 0, H, C / H);
            string qt = Perm(Op("Reshape", q, heads), 0, 2, 1, 3);
            string kt = Perm(Op("Reshape", k, heads), 0, 2, 3, 1);
            string vt = Perm(Op("Reshape", v, heads), 0, 2, 1, 3);
            string probs = Op(softmaxOp, Op("Div", Op("MatMul", qt, kt), Scalar(MathF.Sqrt(C / H))));
            string context = Op("Reshape", Perm(Op("MatMul", probs, vt), 0, 2, 1, 3), Ints(0, 0, C));
            string attn = LayerNorm(Op("Add", Dense(context, p + ".attention.output.dense", C, C), h), p + ".attention.output.LayerNorm");
            string inter = Dense(attn, p + ".intermediate.dense", C, I);
            string gelu = Op("Mul", Op("Mul", inter, Op("Add", Op("Erf", Op("Div", inter, Scalar(MathF.Sqrt(2)))), Scalar(1))), Scalar(0.5f));
            // With cycle, the last layer writes its output back into the embedding output (a loop no valid graph has).
            h = LayerNorm(Op("Add", Dense(gelu, p + ".output.dense", I, C), attn), p + ".output.LayerNorm", cycle && l == layers - 1 ? embeddingsOut : null);
        }

        // Pooler as Gemm with transB = 1: its weight is already [out, in].
        string first = Fresh();
        string zero = Fresh();
        inits.Add((zero, Onnx.Tensor(zero, Onnx.Int64, [], BitConverter.GetBytes(0L))));
        nodes.Add(Onnx.Node("Gather", [h, zero], [first], Onnx.IntAttribute("axis", 1)));
        string pooled = Fresh();
        nodes.Add(Onnx.Node("Gemm", [first, Weight("pooler.dense.weight", false, C, C), Weight("pooler.dense.bias", false, C)], [pooled], Onnx.IntAttribute("transB", 1)));
        string tanh = Op("Tanh", pooled);

        // Shuffle the initializers so their order says nothing about their role.
        var shuffled = inits.OrderBy(_ => random.Next()).Select(i => i.Tensor).ToArray();
        var graph = Onnx.Graph("synthetic-bert", nodes.ToArray(), shuffled, positionIdsInput ? ["input_ids", "position_ids", "token_type_ids"] : ["input_ids", "token_type_ids"], [h, tanh]);
        return (Onnx.Model(graph), sources);
    }
}
