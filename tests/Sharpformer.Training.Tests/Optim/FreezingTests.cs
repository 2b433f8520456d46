using Sharpformer.Training.Optim;

namespace Sharpformer.Training.Tests.Optim;

public class FreezingTests
{
    [Fact]
    public void Freeze_EmbeddingsAndLayerNormGlobs_FreezesExactlyTheMatches()
    {
        var model = ParameterGroupTests.TinyBert();
        var frozen = Freezing.Freeze(model, ["bert.embeddings.*", "*.LayerNorm.*"]);

        var expected = model.NamedParameters().Select(p => p.Name)
            .Where(n => n.StartsWith("bert.embeddings.", StringComparison.Ordinal) || n.Contains(".LayerNorm.", StringComparison.Ordinal))
            .ToList();
        Assert.Equal(expected, frozen);
        foreach (var (name, parameter) in model.NamedParameters())
        {
            Assert.Equal(!expected.Contains(name), parameter.RequiresGrad);
        }
    }

    [Fact]
    public void Freeze_PatternMatchingNothing_ThrowsNamingItAndFreezesNothing()
    {
        var model = ParameterGroupTests.TinyBert();
        var e = Assert.Throws<ArgumentException>(() => Freezing.Freeze(model, ["bert.embeddings.*", "bert.encoder.layers.*"]));
        Assert.Contains("bert.encoder.layers.*", e.Message, StringComparison.Ordinal);
        Assert.All(model.NamedParameters(), p => Assert.True(p.Parameter.RequiresGrad));
    }

    [Fact]
    public void Freeze_NoPatterns_Throws() =>
        Assert.Throws<ArgumentException>(() => Freezing.Freeze(ParameterGroupTests.TinyBert(), []));

    [Theory]
    [InlineData("bert.embeddings.*", "bert.embeddings.LayerNorm.weight", true)]
    [InlineData("*.LayerNorm.*", "bert.encoder.layer.0.output.LayerNorm.bias", true)]
    [InlineData("*.LayerNorm.*", "LayerNorm.bias", false)]
    [InlineData("bert.encoder.layer.?.*", "bert.encoder.layer.3.output.dense.weight", true)]
    [InlineData("bert.encoder.layer.?.*", "bert.encoder.layer.11.output.dense.weight", false)]
    [InlineData("*bias", "cls.predictions.bias", true)]
    [InlineData("cls.predictions.bias", "cls.predictions.bias", true)]
    [InlineData("cls.predictions", "cls.predictions.bias", false)]
    [InlineData("a*b*c", "aXXbYYbc", true)]
    [InlineData("a*b*c", "aXXbYYc", true)]
    [InlineData("a*b*c", "aXXcYY", false)]
    [InlineData("*", "", true)]
    public void GlobMatches_WholeNameWithStarAndQuestionMark(string pattern, string name, bool expected) =>
        Assert.Equal(expected, Freezing.GlobMatches(pattern, name));
}
