using Sharpformer.IO.Hub;

namespace Sharpformer.IO.Tests.Hub;

public sealed class HubOptionsTests
{
    private static Func<string, string?> Env(params (string Key, string Value)[] vars)
    {
        var map = vars.ToDictionary(v => v.Key, v => v.Value, StringComparer.Ordinal);
        return key => map.GetValueOrDefault(key);
    }

    [Fact]
    public void FromEnvironment_Nothing_UsesHomeCacheAndHuggingFaceCo()
    {
        var o = HubOptions.FromEnvironment(Env(("HOME", "/home/u")));

        Assert.Equal(new Uri("https://huggingface.co"), o.Endpoint);
        Assert.Equal("/home/u/.cache/huggingface/hub", o.CacheDir);
        Assert.Null(o.Token);
        Assert.False(o.Offline);
    }

    [Fact]
    public void FromEnvironment_Variables_OverrideEachSetting()
    {
        var o = HubOptions.FromEnvironment(Env(
            ("HOME", "/home/u"), ("HF_ENDPOINT", "http://mirror.local:8080/"), ("HF_TOKEN", "hf_x"),
            ("HF_HUB_CACHE", "/data/hub"), ("HF_HUB_OFFLINE", "1"), ("HF_HUB_ETAG_TIMEOUT", "2.5")));

        Assert.Equal(new Uri("http://mirror.local:8080"), o.Endpoint);
        Assert.Equal(("hf_x", "/data/hub", true), (o.Token, o.CacheDir, o.Offline));
        Assert.Equal(TimeSpan.FromSeconds(2.5), o.MetadataTimeout);
    }

    [Fact]
    public void FromEnvironment_HfHomeWithTokenFile_ReadsTokenAndHubFolder()
    {
        var home = Path.Combine(Path.GetTempPath(), "sharpformer-hfhome-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(home);
        try
        {
            File.WriteAllText(Path.Combine(home, "token"), "hf_from_file\n");

            var o = HubOptions.FromEnvironment(Env(("HF_HOME", home)));

            Assert.Equal("hf_from_file", o.Token);
            Assert.Equal(Path.Combine(home, "hub"), o.CacheDir);
            Assert.Equal("hf_env", HubOptions.FromEnvironment(Env(("HF_HOME", home), ("HF_TOKEN", "hf_env"))).Token);
        }
        finally
        {
            Directory.Delete(home, recursive: true);
        }
    }

    [Fact]
    public void FromEnvironment_XdgCacheHome_IsTheParentOfHuggingface()
    {
        var o = HubOptions.FromEnvironment(Env(("HOME", "/home/u"), ("XDG_CACHE_HOME", "/xdg")));

        Assert.Equal("/xdg/huggingface/hub", o.CacheDir);
    }

    [Theory]
    [InlineData("1", true)]
    [InlineData("TRUE", true)]
    [InlineData("yes", true)]
    [InlineData("On", true)]
    [InlineData("0", false)]
    [InlineData("false", false)]
    [InlineData("", false)]
    public void FromEnvironment_HfHubOffline_AcceptsHuggingfaceHubTruthyValues(string value, bool expected)
    {
        Assert.Equal(expected, HubOptions.FromEnvironment(Env(("HOME", "/h"), ("HF_HUB_OFFLINE", value))).Offline);
    }

    [Fact]
    public void FromEnvironment_BadEndpoint_ThrowsNamingTheVariable()
    {
        var e = Assert.Throws<ArgumentException>(() => HubOptions.FromEnvironment(Env(("HOME", "/h"), ("HF_ENDPOINT", "ftp://x"))));

        Assert.Contains("HF_ENDPOINT", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ToString_WithToken_MasksIt()
    {
        var text = new HubOptions { Token = "hf_secret_value", CacheDir = "/c" }.ToString();

        Assert.DoesNotContain("hf_secret_value", text, StringComparison.Ordinal);
        Assert.Contains("Token = ***", text, StringComparison.Ordinal);
        Assert.Contains("/c", text, StringComparison.Ordinal);
    }
}
