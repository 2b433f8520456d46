using Sharpformer.Models.Bert;
using Sharpformer.Models.Gpt2;
using Sharpformer.NN;
using Sharpformer.Tensors;

namespace Sharpformer.Training.Tests.Reference;

/// <summary>--gradient-checkpointing recomputes each block in backward: the gradients are the plain graph's, bit for bit.</summary>
public class GradientCheckpointingTests
{
    [Fact]
    public void Gpt2_Checkpointed_GradientsEqualPlainBitForBit()
    {
        var fixture = ReferenceFixture.Load("train_gpt2");
        var ids = fixture.Step0InputIds;
        var plain = Gradients(Gpt2LMHeadModel.FromPretrained(fixture.Folder), m => m.Forward(ids, labels: ids).Loss!, checkpoint: false);
        var checkpointed = Gradients(Gpt2LMHeadModel.FromPretrained(fixture.Folder), m => m.Forward(ids, labels: ids).Loss!, checkpoint: true);
        AssertSame(plain, checkpointed);

        // The blocks really ran checkpointed: each block's output is one Checkpoint node.
        var model = Gpt2LMHeadModel.FromPretrained(fixture.Folder);
        model.Train();
        model.GradientCheckpointing = true;
        var states = model.Forward(ids, labels: ids, outputHiddenStates: true).HiddenStates!;
        Assert.Equal("Checkpoint", states[1].GradFnName);
        model.GradientCheckpointing = false;
        Assert.NotEqual("Checkpoint", model.Forward(ids, labels: ids, outputHiddenStates: true).HiddenStates![1].GradFnName);
    }

    [Fact]
    public void Bert_Checkpointed_GradientsEqualPlainBitForBit()
    {
        var fixture = ReferenceFixture.Load("train_bert");
        var b = fixture.Step0Batch;
        var plain = Gradients(BertForMaskedLM.FromPretrained(fixture.Folder), m => m.Forward(b.InputIds, b.AttentionMask, b.TokenTypeIds, labels: b.Labels).Loss!, checkpoint: false);
        var checkpointed = Gradients(BertForMaskedLM.FromPretrained(fixture.Folder), m => m.Forward(b.InputIds, b.AttentionMask, b.TokenTypeIds, labels: b.Labels).Loss!, checkpoint: true);
        AssertSame(plain, checkpointed);

        var model = BertForMaskedLM.FromPretrained(fixture.Folder);
        model.Train();
        model.GradientCheckpointing = true;
        Assert.Equal("Checkpoint", model.Forward(b.InputIds, b.AttentionMask, b.TokenTypeIds, outputHiddenStates: true).HiddenStates![1].GradFnName);
    }

    private static Dictionary<string, float[]> Gradients<T>(T model, Func<T, Tensor> loss, bool checkpoint)
        where T : Module, ISupportsGradientCheckpointing
    {
        model.Train();
        model.GradientCheckpointing = checkpoint;
        loss(model).Backward();
        return model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Value.Grad!.ToArray());
    }

    private static void AssertSame(Dictionary<string, float[]> expected, Dictionary<string, float[]> actual)
    {
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, grad) in expected)
        {
            Assert.True(grad.AsSpan().SequenceEqual(actual[name]), $"{name}: the checkpointed gradient differs from the plain one");
        }
    }
}
