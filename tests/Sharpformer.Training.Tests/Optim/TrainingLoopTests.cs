using Sharpformer.IO.Config;
using Sharpformer.Models.Bert;
using Sharpformer.NN;
using Sharpformer.Tensors;
using Sharpformer.Training.Optim;

namespace Sharpformer.Training.Tests.Optim;

/// <summary>The pieces together on a real model, as the trainer will use them.</summary>
public class TrainingLoopTests
{
    [Fact]
    public void AdamWLoop_TinyBertMlm_LossFallsAndFastPathSeesUpdatedWeights()
    {
        var config = (BertConfig)ModelConfig.Parse("""
            {"model_type": "bert", "vocab_size": 30, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 32, "max_position_embeddings": 16, "type_vocab_size": 2,
             "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
            """);
        var model = new BertForMaskedLM(config, VarBuilder.FromInit(seed: 4));
        var ids = Tensor.FromArray(new[] { 2, 7, 9, 4, 11, 3, 5, 8, 2, 6, 13, 21, 17, 3, 9, 10 }, new Shape(2, 8));
        var labels = Tensor.FromArray(new[] { -100, 7, -100, 4, -100, -100, 5, -100, -100, 6, -100, -100, 17, -100, 9, -100 }, new Shape(2, 8));

        // Run the inference path once so it packs its weights before training changes them.
        model.Eval();
        using (Autograd.NoGrad())
        {
            model.Forward(ids);
        }

        model.Train();
        var optimizer = new AdamW(ParameterGroup.TrainerGroups(model, 1e-2, 0.01));
        var schedule = new LearningRateSchedule(LearningRateScheduleKind.Linear, warmupSteps: 2, trainingSteps: 30);
        float first = 0, last = 0;
        for (int step = 0; step < 30; step++)
        {
            var loss = model.Forward(ids, labels: labels).Loss!;
            if (step == 0) first = loss.ToArray()[0];
            last = loss.ToArray()[0];
            loss.Backward();
            Assert.True(double.IsFinite(GradientClipping.ClipGradNorm(model.Parameters(), 1.0)));
            schedule.Apply(optimizer);
            optimizer.Step();
            optimizer.ZeroGrad();
        }

        Assert.True(last < 0.5f * first, $"loss went from {first} to {last}; 30 AdamW steps on one batch should at least halve it");

        var training = model.Forward(ids).Logits.ToArray();
        model.Eval();
        float[] inference;
        using (Autograd.NoGrad())
        {
            inference = model.Forward(ids).Logits.ToArray();
        }

        OptimFixture.AssertClose(training, inference, 1e-4, 1e-4, "eval-mode logits after training");
    }
}
