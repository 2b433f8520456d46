namespace Sharpformer.Pipelines.Tests;

/// <summary>The names of the shipped models and the HF defaults they stand in for (resolution itself is tested end to end in the CLI tests).</summary>
public class ShippedModelsTests
{
    [Theory]
    [InlineData("sharpformer/bert-mini-en", true)]
    [InlineData("sharpformer/gpt-mini-en", true)]
    [InlineData("sharpformer/", false)]
    [InlineData("sharpformer/..", false)]
    [InlineData("sharpformer/a/b", false)]
    [InlineData("bert-base-uncased", false)]
    [InlineData("org/sharpformer", false)]
    public void IsShippedName_OnlySharpformerSlashName(string name, bool expected) =>
        Assert.Equal(expected, ShippedModels.IsShippedName(name));

    [Theory]
    [InlineData("bert-base-uncased", ShippedModels.BertMini)]
    [InlineData("google-bert/bert-base-uncased", ShippedModels.BertMini)]
    [InlineData("gpt2", ShippedModels.GptMini)]
    [InlineData("openai-community/gpt2", ShippedModels.GptMini)]
    [InlineData("distilbert/distilbert-base-uncased-finetuned-sst-2-english", null)]
    [InlineData("sentence-transformers/all-MiniLM-L6-v2", null)]
    public void StandInFor_TheHuggingFaceDefaults(string model, string? expected) =>
        Assert.Equal(expected, ShippedModels.StandInFor(model));

    [Fact]
    public void TryGetFolder_NotAShippedName_Null() => Assert.Null(ShippedModels.TryGetFolder("bert-base-uncased"));
}
