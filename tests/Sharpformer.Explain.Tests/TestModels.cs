using Sharpformer.IO.Onnx;
using Sharpformer.IO.Tests.Gguf;
using Sharpformer.IO.Tests.Onnx;
using Sharpformer.Models;
using Sharpformer.Pipelines.Tests;
using Sharpformer.Tensors;
using Sharpformer.Text;

namespace Sharpformer.Explain.Tests;

/// <summary>The model folders the explain tests run on, written once per test run into a temporary folder.</summary>
internal static class TestModels
{
    public const string Seed = "The heart is a [MASK] organ.";

    private static readonly string Root = Path.Combine(Path.GetTempPath(), $"sharpformer-explain-tests-{Environment.ProcessId}");
    private static readonly Lazy<string> BertFolder = new(() => RandomBertMlm.Write(Path.Combine(Root, "bert-mlm")));
    private static readonly Lazy<string> Gpt2Folder = new(() =>
    {
        string folder = Path.Combine(Root, "gpt2");
        Directory.CreateDirectory(folder);
        return TinyGpt2.Make(folder);
    });

    private static readonly Lazy<string> MiniLmFolder = new(() =>
    {
        string folder = Path.Combine(Root, "minilm");
        BertOnnxConverter.ConvertToHuggingFace(Path.Combine(OnnxTestModels.MiniLm, "model.onnx"), folder, Path.Combine(OnnxTestModels.MiniLm, "vocab.txt"));
        return folder;
    });

    static TestModels()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                if (Directory.Exists(Root)) Directory.Delete(Root, recursive: true);
            }
            catch (IOException)
            {
                // Best effort: a temp folder left behind is harmless.
            }
        };
    }

    /// <summary>A seeded random BertForMaskedLM (2 layers, 4 heads, C = 32) with a 26-word vocabulary.</summary>
    public static string Bert => BertFolder.Value;

    /// <summary>A tiny random GPT-2 (2 layers, 2 heads, C = 8) over a byte-level vocabulary of "a", "b" and spaces.</summary>
    public static string Gpt2 => Gpt2Folder.Value;

    /// <summary>all-MiniLM-L6-v2 (a real 6-layer, 12-head BERT, no MLM head) converted from the NuGet package's ONNX file.</summary>
    public static string MiniLm => MiniLmFolder.Value;

    /// <summary>The repository's artifacts folder ($ARTIFACTS when set, else artifacts/ at the repository root): where CI keeps screenshots.</summary>
    public static string Artifacts()
    {
        string? dir = Environment.GetEnvironmentVariable("ARTIFACTS");
        if (string.IsNullOrEmpty(dir))
        {
            var probe = new DirectoryInfo(AppContext.BaseDirectory);
            while (probe is not null && !File.Exists(Path.Combine(probe.FullName, "Sharpformer.slnx"))) probe = probe.Parent;
            dir = Path.Combine(probe?.FullName ?? Path.GetTempPath(), "artifacts");
        }

        dir = Path.Combine(dir, "explain");
        Directory.CreateDirectory(dir);
        return dir;
    }
}

/// <summary>
/// A synthetic model of a family the repository does not have yet — rotary positions, causal attention — to show
/// the explainer works through <see cref="IExplainableModel"/> alone: L = 1, H = 2, C = 4, D = 4 (2 rotary pairs).
/// </summary>
internal sealed class FakeRotaryModel(int vocabSize) : IExplainableModel
{
    public const int Pairs = 2;

    public string ModelType => "fake-rotary";

    public int NumLayers => 1;

    public int NumHeads => 2;

    public int HiddenSize => 4;

    public int VocabSize => vocabSize;

    public int MaxPositions => 64;

    public bool IsCausal => true;

    public PositionEncodingKind PositionEncoding => PositionEncodingKind.Rotary;

    public ExplainOutputKind OutputKind => ExplainOutputKind.CausalLanguageModel;

    /// <summary>θ_i = 10000^(−2i/D) with D = 4, in float as Llama computes it.</summary>
    public static float Theta(int i) => 1f / MathF.Pow(10000f, 2f * i / (2 * Pairs));

    public Tensor TokenEmbeddings(ReadOnlySpan<int> ids)
    {
        var values = new float[ids.Length * HiddenSize];
        for (int i = 0; i < values.Length; i++) values[i] = ((ids[i / HiddenSize] * 7) + (i % HiddenSize)) % 5 - 2;
        return Tensor.FromArray(values, new Shape(ids.Length, HiddenSize));
    }

    public Tensor PositionTable(int length)
    {
        var angles = new float[length * Pairs];
        for (int p = 0; p < length; p++)
        {
            for (int i = 0; i < Pairs; i++) angles[(p * Pairs) + i] = p * Theta(i);
        }

        return Tensor.FromArray(angles, new Shape(length, Pairs));
    }

    public ExplainTrace Trace(ReadOnlySpan<int> ids)
    {
        int t = ids.Length;
        var states = new List<Tensor>();
        for (int l = 0; l <= NumLayers; l++)
        {
            var values = new float[t * HiddenSize];
            for (int i = 0; i < values.Length; i++) values[i] = (l + 1) * 0.5f * ((i % 3) - 1);
            states.Add(Tensor.FromArray(values, new Shape(t, HiddenSize)));
        }

        // Head 0 attends uniformly to every visible token, head 1 only to itself.
        var weights = new float[NumHeads * t * t];
        for (int q = 0; q < t; q++)
        {
            for (int k = 0; k <= q; k++) weights[(q * t) + k] = 1f / (q + 1);
            weights[(t * t) + (q * t) + q] = 1f;
        }

        return new ExplainTrace(states, [Tensor.FromArray(weights, new Shape(NumHeads, t, t))]);
    }

    public Tensor LogitLens(int layer, Tensor hidden)
    {
        int rows = hidden.Shape[0];
        var logits = new float[rows * VocabSize];
        for (int r = 0; r < rows; r++)
        {
            for (int v = 0; v < VocabSize; v++) logits[(r * VocabSize) + v] = ((v * 3) + layer) % 7 * 0.25f;
        }

        return Tensor.FromArray(logits, new Shape(rows, VocabSize));
    }

    public static TextTokenizer Tokenizer() => AutoTokenizer.FromPretrained(TestModels.Bert);
}
