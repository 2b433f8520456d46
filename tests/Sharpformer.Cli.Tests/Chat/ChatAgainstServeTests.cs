using System.Text;
using System.Text.Json;
using Sharpformer.Cli.Commands;
using Sharpformer.Models;
using Sharpformer.Server;
using Sharpformer.Text;

namespace Sharpformer.Cli.Tests.Chat;

/// <summary>
/// Both halves of the OpenAI API of this repository together: the <c>chat</c> verb (the official OpenAI SDK) against
/// <c>sharpformer serve</c>'s server on 127.0.0.1, serving the tiny GPT-2 fixture with a plain transcript prompt.
/// </summary>
public sealed class ChatAgainstServeTests : IAsyncLifetime
{
    private const string ServerKey = "sk-serve-loopback";
    private SharpformerServer _server = null!;

    private static string Transcript(IReadOnlyList<ChatTurn> turns) =>
        string.Concat(turns.Select(t => $"{t.Role}: {t.Content}\n")) + "assistant:";

    public async Task InitializeAsync()
    {
        string folder = GenerateCommandTests.ModelFolder.Value;
        var model = (ISlotCausalLM)AutoModelForCausalLM.FromPretrained(folder);
        _server = SharpformerServer.Create(new ServerOptions { Port = 0, ApiKeys = [ServerKey] },
            [ServedModel.Generative("tiny", model, AutoTokenizer.FromPretrained(folder), Transcript)]);
        await _server.StartAsync();
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static async Task<(int Exit, string Out, string Err)> ChatAsync(ChatSettings settings, string key)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var host = new ChatHost(new StringReader(""), false, output, error, Path.GetTempPath(), name => name == "OPENAI_API_KEY" ? key : null);
        int exit = await ChatCommand.RunAsync(settings, host, CancellationToken.None);
        return (exit, output.ToString(), error.ToString());
    }

    /// <summary>The server's own greedy answer, asked for with a plain HTTP request.</summary>
    private async Task<string> ServerReplyAsync(string system, string prompt, int maxTokens)
    {
        using var http = new HttpClient { BaseAddress = _server.Address };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", ServerKey);
        var body = JsonSerializer.Serialize(new
        {
            model = "tiny",
            messages = new[] { new { role = "system", content = system }, new { role = "user", content = prompt } },
            temperature = 0,
            max_tokens = maxTokens,
        });
        using var response = await http.PostAsync(new Uri("v1/chat/completions", UriKind.Relative), new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return doc.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
    }

    [Fact]
    public async Task Chat_StreamingAndJson_AgainstServe_EqualTheServersGreedyReply()
    {
        // The fixture has 48 positions and a byte-level vocabulary: a short transcript leaves room for 8 tokens.
        string expected = await ServerReplyAsync("Hi.", "Yo", 8);
        var settings = new ChatSettings { Prompt = "Yo", System = "Hi.", BaseUrl = new Uri(_server.Address, "v1").ToString(), Model = "tiny", Temperature = 0, MaxTokens = 8 };

        var streamed = await ChatAsync(settings, ServerKey);
        var json = await ChatAsync(settings with { Json = true }, ServerKey);

        Assert.True(streamed.Exit == 0, streamed.Err);
        Assert.Equal(expected + Environment.NewLine, streamed.Out);
        Assert.True(json.Exit == 0, json.Err);
        using var doc = JsonDocument.Parse(json.Out);
        Assert.Equal(expected, doc.RootElement.GetProperty("content").GetString());
        Assert.DoesNotContain(ServerKey, streamed.Out + streamed.Err + json.Out + json.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Chat_WrongKey_AgainstServe_OneLine401()
    {
        var settings = new ChatSettings { Prompt = "Hello", BaseUrl = new Uri(_server.Address, "v1").ToString(), Model = "tiny", MaxRetries = 0 };

        var run = await ChatAsync(settings, "sk-wrong");

        Assert.NotEqual(0, run.Exit);
        Assert.Single(run.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("401", run.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("sk-wrong", run.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Chat_UnknownModel_AgainstServe_NamesTheModel()
    {
        var settings = new ChatSettings { Prompt = "Hello", BaseUrl = new Uri(_server.Address, "v1").ToString(), Model = "gpt-4o", MaxRetries = 0 };

        var run = await ChatAsync(settings, ServerKey);

        Assert.NotEqual(0, run.Exit);
        Assert.Contains("gpt-4o", run.Err, StringComparison.Ordinal);
    }
}
