using Sharpformer.Models;
using Sharpformer.Models.Bert;

namespace Sharpformer.Training.Tests.Reference;

/// <summary>The trainer's MLM loss runs the head on the labelled rows only; it must equal HF's full-logits loss and gradients.</summary>
public class SparseMlmLossTests
{
    [Fact]
    public void LanguageModelingLoss_EqualsForwardLoss_AndPyTorchGradients()
    {
        var fixture = ReferenceFixture.Load("train_bert");
        var batch = fixture.Step0Batch;
        var full = BertForMaskedLM.FromPretrained(fixture.Folder);
        full.Train();
        float fullLoss = full.Forward(batch.InputIds, batch.AttentionMask, labels: batch.Labels).Loss!.ToArray()[0];

        var sparse = BertForMaskedLM.FromPretrained(fixture.Folder);
        sparse.Train();
        var loss = ((ILanguageModel)sparse).LanguageModelingLoss(batch.InputIds, batch.AttentionMask, batch.Labels);
        Assert.Equal(fullLoss, loss.ToArray()[0], 5);
        ReferenceCompare.AssertClose("sparse MLM loss", loss.ToArray()[0], fixture.Step0Loss);
        loss.Backward();
        foreach (var (name, parameter) in sparse.NamedParameters())
        {
            fixture.AssertGradient(name, parameter.Value.Grad!.ToArray());
        }
    }
}
