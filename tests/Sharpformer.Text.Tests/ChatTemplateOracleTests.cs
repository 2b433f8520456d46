using System.Text.Json;
using Sharpformer.Text.Jinja;

namespace Sharpformer.Text.Tests;

/// <summary>
/// Chat templates (Llama 3.1, Mistral, Qwen2, Phi-3, Zephyr and a constructs template) rendered byte for byte as jinja2
/// renders them the way transformers configures it (tests/fixtures/chat_templates/make_fixtures.py → expected.json).
/// </summary>
public class ChatTemplateOracleTests
{
    private static readonly Lazy<JsonDocument> Fixture = new(() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "chat_templates", "expected.json"))));

    public static TheoryData<int, string> Cases()
    {
        var data = new TheoryData<int, string>();
        int index = 0;
        foreach (var item in Fixture.Value.RootElement.GetProperty("cases").EnumerateArray())
        {
            data.Add(index++, $"{item.GetProperty("template").GetString()}/{item.GetProperty("conversation").GetString()}/gen={item.GetProperty("add_generation_prompt").GetBoolean()}");
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void RendersLikeJinja2(int index, string name)
    {
        var item = Fixture.Value.RootElement.GetProperty("cases")[index];
        var templateInfo = Fixture.Value.RootElement.GetProperty("templates").GetProperty(item.GetProperty("template").GetString()!);
        var specials = templateInfo.GetProperty("special_tokens").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
        var template = new ChatTemplate(templateInfo.GetProperty("template").GetString()!, specials, name);
        var messages = item.GetProperty("messages").EnumerateArray()
            .Select(m => (IReadOnlyDictionary<string, object?>)m.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone()))
            .ToList();
        var options = new ChatTemplateOptions
        {
            AddGenerationPrompt = item.GetProperty("add_generation_prompt").GetBoolean(),
            Tools = item.TryGetProperty("tools", out var tools) ? tools.EnumerateArray().Select(t => (object?)t.Clone()).ToList() : null,
        };

        if (item.TryGetProperty("error", out var error))
        {
            var e = Assert.Throws<JinjaRaisedException>(() => template.Render(messages, options));
            Assert.Equal(error.GetString(), e.Message);
            Assert.True(e.Line > 0, "raise_exception's error carries the position of the call");
        }
        else
        {
            Assert.Equal(item.GetProperty("expected").GetString(), template.Render(messages, options));
        }
    }

    [Fact]
    public void FixtureCoversTheFiveModelsAndTheirErrorPaths()
    {
        var cases = Fixture.Value.RootElement.GetProperty("cases").EnumerateArray().ToList();
        foreach (var model in new[] { "llama31", "mistral", "qwen2", "phi3", "zephyr" })
        {
            Assert.Contains(cases, c => c.GetProperty("template").GetString() == model && c.TryGetProperty("expected", out _));
        }

        Assert.Contains(cases, c => c.GetProperty("template").GetString() == "mistral"
            && c.TryGetProperty("error", out var e) && e.GetString()!.Contains("alternate", StringComparison.Ordinal));
    }
}
