using Sharpformer.Models.Gpt2;
using Sharpformer.Text;

namespace Sharpformer.Training.Tests.Reference;

/// <summary>
/// The GPT-2 training fixture (tests/fixtures/train_gpt2) against what exists today: our tokenizer rebuilds its token
/// stream, and our GPT-2 (inference path) gives its step-0 loss. The gradient, optimizer and CLI comparisons use the
/// same <see cref="ReferenceFixture"/> once GPT-2 trains.
/// </summary>
public class Gpt2ClmReferenceTests
{
    private static readonly Lazy<ReferenceFixture> Fixture = new(() => ReferenceFixture.Load("train_gpt2"));

    [Fact]
    public void TokenStream_AutoTokenizerOnCorpus_IsTheFixtureStreamPlusEos()
    {
        var fixture = Fixture.Value;
        var tokenizer = AutoTokenizer.FromPretrained(fixture.Folder);
        int eos = tokenizer.TokenToId(tokenizer.SpecialTokens.Eos!)!.Value;
        var stream = fixture.TokenStream;
        Assert.Equal(256, eos);
        Assert.Equal(eos, stream[^1]);
        var ids = tokenizer.Encode(File.ReadAllText(fixture.CorpusPath)).Ids;
        Assert.Equal(stream[..^1], ids);
        Assert.Equal(new FileInfo(fixture.CorpusPath).Length, ids.Count); // one token per UTF-8 byte (no merges)
    }

    [Fact]
    public void Run_BlocksAndSchedule_FollowTheCliSemantics()
    {
        var fixture = Fixture.Value;
        var run = fixture.Run;
        int blockSize = fixture.Root.GetProperty("run").GetProperty("block_size").GetInt32();
        int batchSize = fixture.Root.GetProperty("run").GetProperty("batch_size").GetInt32();
        int blocks = fixture.TokenStream.Length / blockSize;
        Assert.Equal(blocks, fixture.Root.GetProperty("run").GetProperty("num_blocks").GetInt32());
        foreach (var step in fixture.Steps)
        {
            Assert.Equal(Enumerable.Range(0, batchSize).Select(r => ((batchSize * step.Step) + r) % blocks), step.Blocks);
            double lambda = step.Step < run.WarmupSteps
                ? (double)step.Step / run.WarmupSteps
                : Math.Max(0.0, (double)(run.Steps - step.Step) / (run.Steps - run.WarmupSteps));
            Assert.Equal(run.Lr * lambda, step.Lr, 1e-9);
        }

        var step0 = fixture.Step0InputIds.ToArray<int>();
        Assert.Equal(fixture.TokenStream[..(batchSize * blockSize)], step0);
        Assert.Equal(step0, fixture.ClmBatch(0).ToArray<int>());
        Assert.Equal(fixture.TokenStream[(2 * batchSize * blockSize)..(3 * batchSize * blockSize)], fixture.ClmBatch(2).ToArray<int>());
        var args = fixture.CliArgs("/m", "/d/corpus.txt");
        Assert.Equal(["train", "clm", "--model", "/m", "--data", "/d/corpus.txt"], args[..6]);
        Assert.Contains("--no-shuffle", args);
        Assert.True(fixture.IsConv1D("transformer.h.0.attn.c_attn.weight"));
        Assert.True(fixture.IsNoDecay("transformer.h.1.ln_2.weight"));
        Assert.False(fixture.IsNoDecay("transformer.wte.weight"));
    }

    [Fact]
    public void Step0Loss_OurGpt2InferencePath_MatchesPyTorch()
    {
        var fixture = Fixture.Value;
        var model = Gpt2LMHeadModel.FromPretrained(fixture.Folder);
        Assert.Empty(model.LoadReport!.Missing);
        Assert.Empty(model.LoadReport.Unused);
        var ids = fixture.Step0InputIds;
        int b = ids.Shape[0], t = ids.Shape[1], v = model.VocabSize;
        var flat = ids.ToArray<int>();
        var logits = model.Forward(flat, b).Logits.ToArray();

        // HF's causal-LM loss: mean cross-entropy of logits[:, :-1] against labels[:, 1:], labels = input ids.
        double total = 0;
        for (int row = 0; row < b; row++)
        {
            for (int j = 0; j < t - 1; j++)
            {
                var z = logits.AsSpan((((row * t) + j) * v), v);
                double max = double.NegativeInfinity;
                foreach (float x in z) max = Math.Max(max, x);
                double sum = 0;
                foreach (float x in z) sum += Math.Exp(x - max);
                total += max + Math.Log(sum) - z[flat[(row * t) + j + 1]];
            }
        }

        ReferenceCompare.AssertClose("step-0 loss", total / (b * (t - 1)), fixture.Step0Loss);
    }

    [Fact]
    public void Step0_AutogradLossAndEveryGradient_MatchPyTorch()
    {
        var fixture = Fixture.Value;
        var model = Gpt2LMHeadModel.FromPretrained(fixture.Folder);
        model.Train(); // dropout is 0 in the config: training mode only selects the autograd path
        var ids = fixture.Step0InputIds;
        var loss = model.Forward(ids, labels: ids).Loss!;
        ReferenceCompare.AssertClose("step-0 loss", loss.ToArray()[0], fixture.Step0Loss);
        loss.Backward();

        var parameters = model.NamedParameters().ToList();
        Assert.Equal(fixture.ParameterNames.Order(StringComparer.Ordinal), parameters.Select(p => p.Name).Order(StringComparer.Ordinal));
        foreach (var (name, parameter) in parameters)
        {
            var grad = parameter.Value.Grad;
            Assert.True(grad is not null, $"{name} has no gradient after Backward()");
            bool transposed = parameter.CheckpointLayout == Sharpformer.NN.ParameterLayout.Transposed;
            Assert.Equal(fixture.IsConv1D(name), transposed);
            fixture.AssertGradient(name, grad.ToArray(), transposedConv1D: transposed);
        }
    }

    [Fact]
    public void Fixture_GradientsAndFinalWeights_CoverEveryParameterInHfLayout()
    {
        var fixture = Fixture.Value;
        Assert.Equal(fixture.ParameterNames.Order(StringComparer.Ordinal), fixture.Step0Gradients.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(fixture.ParameterNames.Order(StringComparer.Ordinal), fixture.FinalWeights.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(fixture.ParameterNames.Order(StringComparer.Ordinal), fixture.InitialWeights.Keys.Order(StringComparer.Ordinal));
        Assert.DoesNotContain("lm_head.weight", fixture.ParameterNames);
        Assert.Equal([32, 96], fixture.Step0Gradients["transformer.h.0.attn.c_attn.weight"].Shape);

        // The run moved every parameter, and the key-bias slices stayed inside the Adam bound in PyTorch too.
        foreach (var name in fixture.ParameterNames)
        {
            Assert.NotEqual(fixture.InitialWeights[name].Data, fixture.FinalWeights[name].Data);
            fixture.AssertFinalWeight(name, fixture.FinalWeights[name].Data);
        }
    }
}
