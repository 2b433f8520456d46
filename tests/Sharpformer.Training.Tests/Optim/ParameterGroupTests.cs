using Sharpformer.IO.Config;
using Sharpformer.Models.Bert;
using Sharpformer.NN;
using Sharpformer.Tensors;
using Sharpformer.Training.Optim;

namespace Sharpformer.Training.Tests.Optim;

public class ParameterGroupTests
{
    [Fact]
    public void TrainerGroups_TinyBertForMaskedLM_NoDecayGroupIsExactlyBiasesAndLayerNorms()
    {
        var model = TinyBert();
        var groups = ParameterGroup.TrainerGroups(model, 5e-5, 0.01);
        Assert.Equal(2, groups.Count);
        Assert.Equal(0.01, groups[0].WeightDecay);
        Assert.Equal(0.0, groups[1].WeightDecay);

        // The expectation, written out from HF's rule: LayerNorm modules' parameters and names containing "bias".
        var all = model.NamedParameters().Select(p => p.Name).ToList();
        var noDecay = all.Where(n => n.EndsWith(".bias", StringComparison.Ordinal) || n.Contains(".LayerNorm.", StringComparison.Ordinal)).ToHashSet();
        Assert.Contains("cls.predictions.bias", noDecay);
        Assert.Contains("bert.embeddings.LayerNorm.weight", noDecay);
        Assert.Contains("bert.encoder.layer.1.attention.output.LayerNorm.weight", noDecay);
        Assert.Contains("cls.predictions.transform.LayerNorm.weight", noDecay);

        Assert.Equal(noDecay.Order(), groups[1].Parameters.Select(p => p.Name).Order());
        Assert.Equal(all.Where(n => !noDecay.Contains(n)).Order(), groups[0].Parameters.Select(p => p.Name).Order());
        Assert.Contains("bert.embeddings.word_embeddings.weight", groups[0].Parameters.Select(p => p.Name));
        Assert.Contains("bert.encoder.layer.0.attention.self.query.weight", groups[0].Parameters.Select(p => p.Name));
    }

    [Fact]
    public void TrainerGroups_FrozenParameters_AreInNoGroup()
    {
        var model = TinyBert();
        var frozen = Freezing.Freeze(model, ["bert.embeddings.*"]);
        var groups = ParameterGroup.TrainerGroups(model, 1e-4, 0.1);
        var grouped = groups.SelectMany(g => g.Parameters).Select(p => p.Name).ToHashSet();
        Assert.All(frozen, name => Assert.DoesNotContain(name, grouped));
        Assert.Equal(model.NamedParameters().Count(p => p.Parameter.RequiresGrad), grouped.Count);
    }

    [Fact]
    public void DecayParameterNames_NormsFoundByTypeNotByName()
    {
        var model = new NormsByType();
        var decay = ParameterGroup.DecayParameterNames(model);

        // "LayerNorm" here is a Linear (decayed), "final" an RmsNorm and "inner.post" a LayerNorm (not decayed).
        Assert.Equal(["LayerNorm.weight", "inner.proj.weight"], decay.Order());
    }

    [Fact]
    public void Constructor_RepeatedNameOrParameter_Throws()
    {
        var p = new Parameter(Tensor.Zeros(new Shape(2)));
        var q = new Parameter(Tensor.Zeros(new Shape(2)));
        Assert.Contains("'a'", Assert.Throws<ArgumentException>(() => new ParameterGroup([("a", p), ("a", q)], 0.1)).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new ParameterGroup([("a", p), ("b", p)], 0.1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ParameterGroup([("a", p)], -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ParameterGroup([("a", p)], 0.1, double.NaN));
    }

    internal static BertForMaskedLM TinyBert()
    {
        var config = (BertConfig)ModelConfig.Parse("""
            {"model_type": "bert", "vocab_size": 30, "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 16, "max_position_embeddings": 16, "type_vocab_size": 2}
            """);
        return new BertForMaskedLM(config, VarBuilder.FromInit(seed: 1));
    }

    private sealed class NormsByType : Module
    {
        public NormsByType()
        {
            var vb = VarBuilder.FromInit(seed: 2);
            RegisterModule("LayerNorm", new Linear(4, 4, vb.Push("LayerNorm"), bias: true));
            RegisterModule("inner", new Inner(vb.Push("inner")));
            RegisterModule("final", new RmsNorm(4, 1e-6f, vb.Push("final")));
        }
    }

    private sealed class Inner : Module
    {
        public Inner(VarBuilder vb)
        {
            RegisterModule("proj", new Linear(4, 4, vb.Push("proj"), bias: false));
            RegisterModule("post", new LayerNorm(4, 1e-5f, vb.Push("post")));
        }
    }
}
