using System.Text.Json;

namespace Sharpformer.Tensors.Tests;

/// <summary>
/// Every op against PyTorch 1.13 one at a time: forward output and the gradient of every input for
/// loss = Σ output ⊙ probe (or the scalar output itself), within <see cref="Tolerances.VsPyTorchOp"/>. The fixture and
/// the script that made it live in tests/fixtures/ops/ (make_fixture.py lists the cases and how to regenerate them).
/// </summary>
public class OpsFixtureTests
{
    private static readonly Lazy<Dictionary<string, Case>> Cases = new(Load);

    private static readonly string[] CaseNames =
    [
        "linear_bias_3d", "embedding_repeated", "embedding_tied", "layer_norm", "gelu_erf", "gelu_tanh", "relu",
        "softmax_causal_padding", "softmax_padding", "sdpa_causal_fused", "sdpa_padding", "sdpa_causal_kv",
        "cross_entropy_smoothed", "cross_entropy_plain", "residual_add",
    ];

    public static TheoryData<string> Names() => new(CaseNames);

    [Theory]
    [MemberData(nameof(Names))]
    public void OutputAndInputGradients_MatchPyTorch(string name)
    {
        var c = Cases.Value[name];
        var output = Run(c);
        AssertClose($"{name}: output", c.Output, output);

        var loss = output.Rank == 0 ? output : Ops.Sum(Ops.Mul(output, c.Probe));
        loss.Backward();
        foreach (var (input, expected) in c.Grads)
        {
            Assert.True(c.Inputs[input].Grad is not null, $"{name}: no gradient reached {input}");
            AssertClose($"{name}: gradient of {input}", expected, c.Inputs[input].Grad!);
        }
    }

    [Fact]
    public void Fixture_HasEveryCaseTheTestsName()
    {
        Assert.Equal(CaseNames.Order(), Cases.Value.Keys.Order());
    }

    /// <summary>The op of each case, written with <see cref="Ops"/> as a model would call it.</summary>
    private static Tensor Run(Case c)
    {
        var x = c.Inputs;
        return c.Name switch
        {
            "linear_bias_3d" => Ops.Linear(x["x"], x["weight"], x["bias"]),
            "embedding_repeated" => Ops.Embedding(c.Ids["ids"], x["table"]),
            "embedding_tied" => Ops.Linear(Ops.Tanh(Ops.Embedding(c.Ids["ids"], x["table"])), x["table"]),
            "layer_norm" => Ops.LayerNorm(x["x"], x["weight"], x["bias"], (float)c.Options.GetProperty("eps").GetDouble()),
            "gelu_erf" => Ops.Gelu(x["x"]),
            "gelu_tanh" => Ops.Gelu(x["x"], GeluApproximation.Tanh),
            "relu" => Ops.Relu(x["x"]),
            "softmax_causal_padding" or "softmax_padding" =>
                Ops.Softmax(x["x"], c.Options.GetProperty("causal").GetBoolean(), c.Ids["attention_mask"]),
            "sdpa_causal_fused" => FusedAttention(x["qkv"], c.Options.GetProperty("heads").GetInt32()),
            "sdpa_padding" => Ops.ScaledDotProductAttention(x["q"], x["k"], x["v"], attentionMask: c.Ids["attention_mask"]),
            "sdpa_causal_kv" => Ops.ScaledDotProductAttention(x["q"], x["k"], x["v"], causal: true),
            "cross_entropy_smoothed" or "cross_entropy_plain" => Ops.CrossEntropy(
                x["logits"], c.Ids["targets"], c.Options.GetProperty("ignore_index").GetInt32(),
                (float)c.Options.GetProperty("label_smoothing").GetDouble()),
            "residual_add" => Ops.Add(x["x"], Ops.Gelu(x["x"])),
            _ => throw new InvalidOperationException($"No op is written for fixture case '{c.Name}'."),
        };
    }

    /// <summary>q, k, v as head views of one fused [B, T, 3·C] projection (the fused kernel reads them in place).</summary>
    private static Tensor FusedAttention(Tensor qkv, int heads)
    {
        int c = qkv.Shape[2] / 3;
        var q = Ops.SplitHeads(Ops.Narrow(qkv, 2, 0, c), heads);
        var k = Ops.SplitHeads(Ops.Narrow(qkv, 2, c, c), heads);
        var v = Ops.SplitHeads(Ops.Narrow(qkv, 2, 2 * c, c), heads);
        return Ops.ScaledDotProductAttention(q, k, v, causal: true);
    }

    private static void AssertClose(string what, Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.Shape, actual.Shape);
        var e = expected.ToArray();
        var a = actual.ToArray();
        for (int i = 0; i < e.Length; i++)
        {
            float limit = Tolerances.VsPyTorchOp * MathF.Max(1f, MathF.Abs(e[i]));
            Assert.True(
                MathF.Abs(e[i] - a[i]) <= limit,
                $"{what}[{i}]: PyTorch {e[i]:G9}, Sharpformer {a[i]:G9} (|diff| {MathF.Abs(e[i] - a[i]):G3} > {limit:G3})");
        }
    }

    private sealed record Case(
        string Name, JsonElement Options, Dictionary<string, Tensor> Inputs, Dictionary<string, Tensor> Ids, Tensor Probe, Tensor Output,
        Dictionary<string, Tensor> Grads);

    private static Dictionary<string, Case> Load()
    {
        var path = Path.Combine(RepoRoot(), "tests", "fixtures", "ops", "ops.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var cases = new Dictionary<string, Case>();
        foreach (var e in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            var inputs = e.GetProperty("inputs").EnumerateObject().ToDictionary(p => p.Name, p =>
            {
                var t = Floats(p.Value);
                t.RequiresGrad = true;
                return t;
            });
            var ids = e.GetProperty("ids").EnumerateObject().ToDictionary(p => p.Name, p => Longs(p.Value));
            var grads = e.GetProperty("grads").EnumerateObject().ToDictionary(p => p.Name, p => Floats(p.Value));
            string name = e.GetProperty("name").GetString()!;
            cases[name] = new Case(
                name, e.GetProperty("options").Clone(), inputs, ids, Floats(e.GetProperty("probe")), Floats(e.GetProperty("output")), grads);
        }

        return cases;
    }

    // Values carry 9 significant digits, so parsing as float recovers PyTorch's float32 bits exactly.
    private static Tensor Floats(JsonElement e) =>
        Tensor.FromArray(e.GetProperty("data").EnumerateArray().Select(v => v.GetSingle()).ToArray(), ShapeOf(e));

    private static Tensor Longs(JsonElement e) =>
        Tensor.FromArray(e.GetProperty("data").EnumerateArray().Select(v => v.GetInt64()).ToArray(), ShapeOf(e));

    private static Shape ShapeOf(JsonElement e) => new(e.GetProperty("shape").EnumerateArray().Select(v => v.GetInt32()).ToArray());

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Sharpformer.slnx"))) return dir.FullName;
        }

        throw new InvalidOperationException($"Cannot find the repository root (Sharpformer.slnx) above {AppContext.BaseDirectory}; run the tests from inside the repository.");
    }
}
