using Sharpformer.IO.Hub;

namespace Sharpformer.IO.Tests.Hub;

public sealed class GlobTests
{
    [Theory]
    [InlineData("config.json", "*.json", true)]
    [InlineData("sub/config.json", "*.json", true)] // fnmatch: '*' crosses '/'
    [InlineData("model.safetensors", "*.json", false)]
    [InlineData("sub/dir/x.txt", "sub/", true)] // a trailing '/' means the whole folder
    [InlineData("subx/y", "sub/", false)]
    [InlineData("model-00001-of-00002.safetensors", "model-0000?-of-00002.safetensors", true)]
    [InlineData("model-00010-of-00002.safetensors", "model-0000?-of-00002.safetensors", false)]
    [InlineData("abc", "[!x]bc", true)]
    [InlineData("xbc", "[!x]bc", false)]
    [InlineData("vocab.txt", "[tv]ocab.txt", true)]
    [InlineData("a+b.json", "a+b.json", true)]
    [InlineData("aab.json", "a+b.json", false)]
    public void IsMatch_FnmatchSemantics(string path, string pattern, bool expected)
    {
        Assert.Equal(expected, Glob.IsMatch(path, pattern));
    }

    [Fact]
    public void MatchesAny_NoPatterns_MatchesEverything()
    {
        Assert.True(Glob.MatchesAny("anything", null));
        Assert.True(Glob.MatchesAny("anything", []));
        Assert.False(Glob.MatchesAny("anything", ["*.json"]));
    }
}
