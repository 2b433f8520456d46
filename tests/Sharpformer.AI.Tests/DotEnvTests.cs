namespace Sharpformer.AI.Tests;

public class DotEnvTests
{
    [Fact]
    public void Parse_HandlesCommentsQuotesExportAndInlineComments()
    {
        var vars = DotEnv.Parse("""
            # a comment
            PLAIN=value
            export EXPORTED=yes
            SPACED = padded value   # trailing comment
            SINGLE='literal \n # not a comment'
            DOUBLE="line\nnext \"quoted\""
            MULTI="first
            second"
            EMPTY=
            HASH=abc#def
            """);
        Assert.Equal("value", vars["PLAIN"]);
        Assert.Equal("yes", vars["EXPORTED"]);
        Assert.Equal("padded value", vars["SPACED"]);
        Assert.Equal("literal \\n # not a comment", vars["SINGLE"]);
        Assert.Equal("line\nnext \"quoted\"", vars["DOUBLE"]);
        Assert.Equal("first\nsecond", vars["MULTI"]);
        Assert.Equal("", vars["EMPTY"]);
        Assert.Equal("abc#def", vars["HASH"]);
    }

    [Fact]
    public void Parse_BadLine_NamesTheLineButNotTheValue()
    {
        var e = Assert.Throws<FormatException>(() => DotEnv.Parse("OK=1\nsk-secret-value\n", "/x/.env"));
        Assert.Contains("/x/.env line 2", e.Message);
        Assert.DoesNotContain("sk-secret-value", e.Message);
        var quote = Assert.Throws<FormatException>(() => DotEnv.Parse("KEY=\"sk-unclosed\n"));
        Assert.DoesNotContain("sk-unclosed", quote.Message);
    }

    [Fact]
    public void Lookup_FindsTheNearestFileUpwards_AndTheEnvironmentWins()
    {
        string root = Path.Combine(Path.GetTempPath(), $"sharpformer-dotenv-{Guid.NewGuid():N}");
        string deep = Path.Combine(root, "a", "b");
        Directory.CreateDirectory(deep);
        File.WriteAllText(Path.Combine(root, ".env"), "OPENAI_API_KEY=from-root\n");
        Func<string, string?> empty = _ => null;

        Assert.Equal(("from-root", Path.Combine(root, ".env")), DotEnv.Lookup("OPENAI_API_KEY", deep, empty));

        File.WriteAllText(Path.Combine(root, "a", ".env"), "export OPENAI_API_KEY='from-a'\n");
        Assert.Equal(("from-a", Path.Combine(root, "a", ".env")), DotEnv.Lookup("OPENAI_API_KEY", deep, empty));

        Assert.Equal(("from-env", "environment"), DotEnv.Lookup("OPENAI_API_KEY", deep, name => name == "OPENAI_API_KEY" ? "from-env" : null));
        Assert.Null(DotEnv.Lookup("OTHER", deep, empty));
    }
}
