using System.Text.Json;

namespace Sharpformer.Tensors.Tests;

/// <summary>
/// One pre-norm transformer block (embeddings, causal + padded attention, GELU MLP, final norm, an untied output head,
/// cross-entropy with ignored targets) rebuilt with <see cref="Ops"/> and compared with PyTorch: block output, logits,
/// loss and the gradient of every parameter. The fixture and the script that made it live in
/// tests/fixtures/transformer_block/ (make_fixture.py explains how to regenerate it).
/// </summary>
public class TransformerBlockFixtureTests
{
    private static readonly Lazy<Fixture> Data = new(Fixture.Load);

    [Fact]
    public void BlockOutputLogitsAndLoss_MatchPyTorch()
    {
        var f = Data.Value;
        var run = Run(f);
        AssertClose("block output", f.Tensor("block_output"), run.BlockOutput);
        AssertClose("logits", f.Tensor("logits"), run.Logits);
        Assert.True(Math.Abs(f.Loss - run.Loss.GetFloat()) <= Tolerances.VsPyTorch, $"loss: PyTorch {f.Loss:G9}, Sharpformer {run.Loss.GetFloat():G9}");
    }

    [Fact]
    public void EveryParameterGradient_MatchesPyTorch()
    {
        var f = Data.Value;
        var run = Run(f);
        run.Loss.Backward();
        Assert.Equal(17, run.Params.Count);
        foreach (var (name, parameter) in run.Params)
        {
            Assert.NotNull(parameter.Grad);
            AssertClose($"grad of {name}", f.Grad(name), parameter.Grad);
        }
    }

    [Fact]
    public void Forward_UnderNoGrad_SameValuesAndNoGraph()
    {
        var f = Data.Value;
        Result run;
        using (Autograd.NoGrad())
        {
            run = Run(f);
        }

        Assert.False(run.Loss.RequiresGrad);
        Assert.True(run.Loss.IsLeaf);
        AssertClose("logits under NoGrad", f.Tensor("logits"), run.Logits);
    }

    [Fact]
    public void PlainSgdSteps_LowerTheLoss()
    {
        // The gradients drive learning: 10 SGD steps (lr 0.1) on the fixture's batch, rebuilding the graph each step.
        var f = Data.Value;
        var p = new Dictionary<string, Tensor>();
        foreach (var name in f.ParamNames) p[name] = f.Param(name);
        float first = 0, last = 0;
        for (int step = 0; step < 10; step++)
        {
            foreach (var t in p.Values)
            {
                t.ZeroGrad();
                t.RequiresGrad = true;
            }

            var loss = Run(f, p).Loss;
            loss.Backward();
            if (step == 0) first = loss.GetFloat();
            last = loss.GetFloat();
            foreach (var t in p.Values)
            {
                var w = t.AsSpan<float>();
                var g = t.Grad!.AsReadOnlySpan<float>();
                for (int i = 0; i < w.Length; i++) w[i] -= 0.1f * g[i];
            }
        }

        Assert.True(last < 0.5f * first, $"loss went from {first} to {last} in 10 steps");
    }

    private sealed record Result(Tensor BlockOutput, Tensor Logits, Tensor Loss, Dictionary<string, Tensor> Params);

    private static Result Run(Fixture f)
    {
        var p = new Dictionary<string, Tensor>();
        foreach (var name in f.ParamNames)
        {
            var t = f.Param(name);
            t.RequiresGrad = true;
            p[name] = t;
        }

        return Run(f, p);
    }

    private static Result Run(Fixture f, Dictionary<string, Tensor> p)
    {
        int c = f.Config("C"), heads = f.Config("H");

        var ids = f.Ints("ids");                 // [B, T]
        var mask = f.Ints("attention_mask");     // [B, T], 0 = padded key
        var targets = f.Ints("targets");         // [B, T], -100 = ignored

        var x = Ops.Add(Ops.Embedding(ids, p["tok_emb"]), p["pos_emb"]);                       // [B, T, C]

        var a = Ops.LayerNorm(x, p["ln1.weight"], p["ln1.bias"]);
        var qkv = Ops.Linear(a, p["attn.qkv.weight"], p["attn.qkv.bias"]);                     // [B, T, 3C]
        var q = Ops.SplitHeads(Ops.Narrow(qkv, 2, 0, c), heads);                              // [B, H, T, D]
        var k = Ops.SplitHeads(Ops.Narrow(qkv, 2, c, c), heads);
        var v = Ops.SplitHeads(Ops.Narrow(qkv, 2, 2 * c, c), heads);
        var o = Ops.MergeHeads(Ops.ScaledDotProductAttention(q, k, v, causal: true, attentionMask: mask)); // [B, T, C]
        var h = Ops.Add(x, Ops.Linear(o, p["attn.proj.weight"], p["attn.proj.bias"]));

        var m = Ops.LayerNorm(h, p["ln2.weight"], p["ln2.bias"]);
        m = Ops.Gelu(Ops.Linear(m, p["mlp.fc_in.weight"], p["mlp.fc_in.bias"]));               // [B, T, 4C]
        var y = Ops.Add(h, Ops.Linear(m, p["mlp.fc_out.weight"], p["mlp.fc_out.bias"]));      // [B, T, C]

        var logits = Ops.Linear(Ops.LayerNorm(y, p["ln_f.weight"], p["ln_f.bias"]), p["head.weight"]); // [B, T, V]
        var loss = Ops.CrossEntropy(logits, targets, ignoreIndex: -100);
        return new Result(y, logits, loss, p);
    }

    private static void AssertClose(string what, Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.Shape, actual.Shape);
        float diff = expected.MaxAbsDiff(actual);
        Assert.True(diff <= Tolerances.VsPyTorch, $"{what} {actual.Shape}: max abs difference to PyTorch {diff:G3} > {Tolerances.VsPyTorch:G3}");
    }

    private sealed class Fixture
    {
        private readonly JsonElement _root;

        private Fixture(JsonElement root) => _root = root;

        public IEnumerable<string> ParamNames => _root.GetProperty("params").EnumerateObject().Select(e => e.Name).ToList();

        public float Loss => _root.GetProperty("loss").GetSingle();

        public static Fixture Load()
        {
            var path = Path.Combine(RepoRoot(), "tests", "fixtures", "transformer_block", "transformer_block.json");
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            return new Fixture(doc.RootElement.Clone());
        }

        public int Config(string key) => _root.GetProperty("config").GetProperty(key).GetInt32();

        public Tensor Param(string name) => ReadFloats(_root.GetProperty("params").GetProperty(name));

        public Tensor Grad(string name) => ReadFloats(_root.GetProperty("grads").GetProperty(name));

        public Tensor Tensor(string key) => ReadFloats(_root.GetProperty(key));

        public Tensor Ints(string key)
        {
            var e = _root.GetProperty("inputs").GetProperty(key);
            var data = e.GetProperty("data").EnumerateArray().Select(v => v.GetInt32()).ToArray();
            return Sharpformer.Tensors.Tensor.FromArray(data, ShapeOf(e));
        }

        private static Tensor ReadFloats(JsonElement e)
        {
            // Values carry 9 significant digits, so parsing as float recovers PyTorch's float32 bits exactly.
            var data = e.GetProperty("data").EnumerateArray().Select(v => v.GetSingle()).ToArray();
            return Sharpformer.Tensors.Tensor.FromArray(data, ShapeOf(e));
        }

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
}
