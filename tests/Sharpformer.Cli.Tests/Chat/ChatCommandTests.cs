using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Sharpformer.Cli.Commands;

namespace Sharpformer.Cli.Tests.Chat;

/// <summary>
/// <c>chat</c> through the official OpenAI SDK against <see cref="FakeOpenAIServer"/> on 127.0.0.1: what the SDK sends
/// (model, system prompt, history, streaming), the error paths (401, 429 + Retry-After, timeout, network), .env
/// discovery and precedence, and that the key never reaches the output. Also a local model through the same verb.
/// </summary>
public class ChatCommandTests
{
    private const string Key = "sk-test-0123456789abcdefSECRET";

    private sealed record Run(int Exit, string Out, string Err, List<TimeSpan> Waits)
    {
        public string All => Out + Err;
    }

    private static async Task<Run> RunAsync(ChatSettings settings, string input = "", bool terminal = false, string? workingDirectory = null,
        Func<string, string?>? environment = null)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var waits = new List<TimeSpan>();
        var host = new ChatHost(new StringReader(input), terminal, output, error, workingDirectory ?? EmptyDirectory(),
            environment ?? (name => name == "OPENAI_API_KEY" ? Key : null))
        {
            // Record the waits the retry policy asks for instead of sleeping through them.
            Wait = (time, _) =>
            {
                waits.Add(time);
                return Task.CompletedTask;
            },
        };
        int exit = await ChatCommand.RunAsync(settings, host, CancellationToken.None);
        return new Run(exit, output.ToString(), error.ToString(), waits);
    }

    private static string EmptyDirectory()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"sharpformer-chat-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static void AssertOneErrorLine(Run run, string start)
    {
        var lines = run.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one error line, got: {run.Err}");
        Assert.StartsWith("error: " + start, lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain(Key, run.All, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OneShot_StreamsTheReply_AndSendsModelSystemPromptAndKey()
    {
        await using var server = await FakeOpenAIServer.StartAsync(new FakeOpenAIFaults(ExpectedKey: Key));
        var run = await RunAsync(new ChatSettings { Prompt = "Hello", System = "Be brief.", BaseUrl = server.BaseUrl });

        Assert.Equal(0, run.Exit);
        Assert.Equal("reply 1: Hello" + Environment.NewLine, run.Out);
        Assert.Equal("", run.Err);
        var request = Assert.Single(server.Requests);
        Assert.Equal("/v1/chat/completions", request.Path);
        Assert.Equal("Bearer " + Key, request.Authorization);
        Assert.Equal("gpt-4o", request.Body["model"]!.GetValue<string>());
        Assert.True(request.Stream);
        Assert.Equal(["system:Be brief.", "user:Hello"], request.Messages);
        Assert.DoesNotContain(Key, run.All, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Repl_KeepsHistory_Resets_Saves_AndExits()
    {
        await using var server = await FakeOpenAIServer.StartAsync();
        string dir = EmptyDirectory();
        var run = await RunAsync(new ChatSettings { System = "sys", BaseUrl = server.BaseUrl, Model = "my-model" },
            "first\nsecond\n/save conversation.json\n/reset\nthird\n/bogus\n/exit\nnever sent\n", terminal: true, workingDirectory: dir);

        Assert.Equal(0, run.Exit);
        var requests = server.Requests.ToArray();
        Assert.Equal(3, requests.Length);
        Assert.All(requests, r => Assert.True(r.Stream));
        Assert.All(requests, r => Assert.Equal("my-model", r.Body["model"]!.GetValue<string>()));
        Assert.Equal(["system:sys", "user:first"], requests[0].Messages);
        Assert.Equal(["system:sys", "user:first", "assistant:reply 1: first", "user:second"], requests[1].Messages);
        Assert.Equal(["system:sys", "user:third"], requests[2].Messages);
        Assert.Contains("reply 2: second", run.Out, StringComparison.Ordinal);
        Assert.Contains("unknown command '/bogus'", run.Err, StringComparison.Ordinal);

        using var saved = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "conversation.json")));
        Assert.Equal("my-model", saved.RootElement.GetProperty("model").GetString());
        var messages = saved.RootElement.GetProperty("messages").EnumerateArray().Select(m => $"{m.GetProperty("role").GetString()}:{m.GetProperty("content").GetString()}");
        Assert.Equal(["system:sys", "user:first", "assistant:reply 1: first", "user:second", "assistant:reply 2: second"], messages);
    }

    [Fact]
    public async Task StandardInput_IsAOneShotPrompt()
    {
        await using var server = await FakeOpenAIServer.StartAsync();
        var run = await RunAsync(new ChatSettings { BaseUrl = server.BaseUrl }, "piped\nprompt\n", terminal: false);

        Assert.Equal(0, run.Exit);
        Assert.Equal(["user:piped\nprompt"], Assert.Single(server.Requests).Messages);
        Assert.Equal("reply 1: piped\nprompt" + Environment.NewLine, run.Out);
    }

    [Fact]
    public async Task Json_OneShot_PrintsContentFinishReasonAndUsage_WithoutStreaming()
    {
        await using var server = await FakeOpenAIServer.StartAsync();
        var run = await RunAsync(new ChatSettings { Prompt = "Hi", BaseUrl = server.BaseUrl, Json = true, MaxTokens = 50, Temperature = 0.5f });

        Assert.Equal(0, run.Exit);
        var request = Assert.Single(server.Requests);
        Assert.False(request.Stream);
        Assert.Equal(0.5f, request.Body["temperature"]!.GetValue<float>());
        int maxTokens = (request.Body["max_completion_tokens"] ?? request.Body["max_tokens"])!.GetValue<int>();
        Assert.Equal(50, maxTokens);
        using var json = JsonDocument.Parse(run.Out);
        Assert.Equal("reply 1: Hi", json.RootElement.GetProperty("content").GetString());
        Assert.Equal("stop", json.RootElement.GetProperty("finish_reason").GetString());
        Assert.Equal("Hi".Length, json.RootElement.GetProperty("usage").GetProperty("input_tokens").GetInt32());
        Assert.Equal("reply 1: Hi".Length, json.RootElement.GetProperty("usage").GetProperty("output_tokens").GetInt32());
    }

    [Fact]
    public async Task WrongKey_Is401_OneLine_AndTheKeyIsNeverShown()
    {
        await using var server = await FakeOpenAIServer.StartAsync(new FakeOpenAIFaults(ExpectedKey: "sk-the-right-one"));
        var run = await RunAsync(new ChatSettings { Prompt = "Hello", BaseUrl = server.BaseUrl });

        Assert.Equal(1, run.Exit);
        AssertOneErrorLine(run, "401 Unauthorized");
        Assert.Contains("environment", run.Err, StringComparison.Ordinal); // where the key came from, not what it is
        Assert.Single(server.Requests); // 401 is not retried
    }

    [Fact]
    public async Task RateLimited_RetriesAfterWhatRetryAfterSays_ThenAnswers()
    {
        await using var server = await FakeOpenAIServer.StartAsync(new FakeOpenAIFaults(RateLimitFirst: 2, RetryAfter: "7"));
        var run = await RunAsync(new ChatSettings { Prompt = "Hello", BaseUrl = server.BaseUrl, MaxRetries = 3 });

        Assert.Equal(0, run.Exit);
        Assert.Equal("reply 1: Hello" + Environment.NewLine, run.Out);
        Assert.Equal(3, server.Requests.Count);
        Assert.Equal([TimeSpan.FromSeconds(7), TimeSpan.FromSeconds(7)], run.Waits);
    }

    [Fact]
    public async Task RateLimited_BeyondMaxRetries_GivesUpWithOneLine()
    {
        await using var server = await FakeOpenAIServer.StartAsync(new FakeOpenAIFaults(RateLimitFirst: 100, RetryAfter: "2"));
        var run = await RunAsync(new ChatSettings { Prompt = "Hello", BaseUrl = server.BaseUrl, MaxRetries = 2 });

        Assert.Equal(1, run.Exit);
        AssertOneErrorLine(run, "429 Too Many Requests");
        Assert.True(run.Err.Contains("after 3 attempt(s)", StringComparison.Ordinal), run.Err);
        Assert.Equal(3, server.Requests.Count);
        Assert.Equal([TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(2)], run.Waits);
    }

    [Fact]
    public async Task RateLimited_WithoutRetryAfter_BacksOffExponentially()
    {
        await using var server = await FakeOpenAIServer.StartAsync(new FakeOpenAIFaults(RateLimitFirst: 3, RetryAfter: null));
        var run = await RunAsync(new ChatSettings { Prompt = "Hello", BaseUrl = server.BaseUrl, MaxRetries = 3 });

        Assert.Equal(0, run.Exit);
        Assert.Equal([TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(4)], run.Waits);
    }

    [Fact]
    public async Task RateLimited_AskingForTooLong_IsNotRetried()
    {
        await using var server = await FakeOpenAIServer.StartAsync(new FakeOpenAIFaults(RateLimitFirst: 100, RetryAfter: "3600"));
        var run = await RunAsync(new ChatSettings { Prompt = "Hello", BaseUrl = server.BaseUrl, MaxRetries = 3 });

        Assert.Equal(1, run.Exit);
        AssertOneErrorLine(run, "429 Too Many Requests");
        Assert.Contains("3600 s", run.Err, StringComparison.Ordinal);
        Assert.Single(server.Requests);
        Assert.Empty(run.Waits);
    }

    [Fact]
    public async Task Timeout_IsOneLine()
    {
        await using var server = await FakeOpenAIServer.StartAsync(new FakeOpenAIFaults(Stall: true));
        var run = await RunAsync(new ChatSettings { Prompt = "Hello", BaseUrl = server.BaseUrl, TimeoutSeconds = 0.5, MaxRetries = 0 });

        Assert.Equal(1, run.Exit);
        AssertOneErrorLine(run, "no answer from");
        Assert.Contains("0.5 s", run.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NetworkError_IsOneLine()
    {
        // A port that was just free: nothing listens there.
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var run = await RunAsync(new ChatSettings { Prompt = "Hello", BaseUrl = $"http://127.0.0.1:{port}/v1", MaxRetries = 1 });

        Assert.Equal(1, run.Exit);
        AssertOneErrorLine(run, "cannot reach http://127.0.0.1:");
        Assert.Single(run.Waits); // network errors are retried too, within the bound
    }

    [Fact]
    public async Task DotEnv_IsFoundUpwards_AndTheEnvironmentWins()
    {
        const string FileKey = "sk-from-dotenv-file-SECRET";
        const string EnvKey = "sk-from-environment-SECRET";
        string root = EmptyDirectory();
        string deep = Path.Combine(root, "project", "src");
        Directory.CreateDirectory(deep);
        File.WriteAllText(Path.Combine(root, ".env"), $"# keys\nexport OPENAI_API_KEY=\"{FileKey}\"\n");
        await using var server = await FakeOpenAIServer.StartAsync();

        var fromFile = await RunAsync(new ChatSettings { Prompt = "a", BaseUrl = server.BaseUrl }, workingDirectory: deep, environment: _ => null);
        var fromEnv = await RunAsync(new ChatSettings { Prompt = "b", BaseUrl = server.BaseUrl }, workingDirectory: deep,
            environment: name => name == "OPENAI_API_KEY" ? EnvKey : null);

        Assert.Equal(0, fromFile.Exit);
        Assert.Equal(0, fromEnv.Exit);
        Assert.Equal(["Bearer " + FileKey, "Bearer " + EnvKey], server.Requests.Select(r => r.Authorization));
        foreach (var run in new[] { fromFile, fromEnv })
        {
            Assert.DoesNotContain(FileKey, run.All, StringComparison.Ordinal);
            Assert.DoesNotContain(EnvKey, run.All, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task NoKey_ForOpenAI_SaysWhereItLooked()
    {
        var run = await RunAsync(new ChatSettings { Prompt = "Hello" }, environment: _ => null);

        Assert.Equal(2, run.Exit);
        Assert.StartsWith("error: no OpenAI API key", run.Err, StringComparison.Ordinal);
        Assert.Contains("OPENAI_API_KEY", run.Err, StringComparison.Ordinal);
        Assert.Contains(".env", run.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UsageErrors_AreOneLine()
    {
        Assert.Equal(2, (await RunAsync(new ChatSettings { Json = true, BaseUrl = "http://127.0.0.1:1/v1" }, terminal: true)).Exit);
        var badUrl = await RunAsync(new ChatSettings { Prompt = "x", BaseUrl = "ftp://example" });
        Assert.Equal(2, badUrl.Exit);
        Assert.Contains("--base-url", badUrl.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LocalModel_ChatsThroughTheSameVerb_WithAPromptFormat()
    {
        string folder = GenerateCommandTests.ModelFolder.Value;
        var run = await RunAsync(new ChatSettings { Prompt = "Hi", Model = folder, PromptFormat = "transcript", MaxTokens = 6 }, environment: _ => null);

        Assert.Equal(0, run.Exit);
        Assert.Equal("", run.Err);
        Assert.True(run.Out.Length > Environment.NewLine.Length, "the local model should have written something");

        var json = await RunAsync(new ChatSettings { Prompt = "Hi", Model = folder, PromptFormat = "transcript", MaxTokens = 6, Json = true }, environment: _ => null);
        using var doc = JsonDocument.Parse(json.Out);
        Assert.Equal(run.Out.TrimEnd('\r', '\n'), doc.RootElement.GetProperty("content").GetString()); // greedy: the same reply
        Assert.InRange(doc.RootElement.GetProperty("usage").GetProperty("output_tokens").GetInt32(), 1, 6);
    }

    [Fact]
    public async Task LocalModel_WithoutChatTemplateOrFormat_FailsClearly()
    {
        var run = await RunAsync(new ChatSettings { Prompt = "Hi", Model = GenerateCommandTests.ModelFolder.Value }, environment: _ => null);

        Assert.Equal(1, run.Exit);
        Assert.StartsWith("error: ", run.Err, StringComparison.Ordinal);
        Assert.Contains("no chat template", run.Err, StringComparison.Ordinal);
        Assert.Contains("--prompt-format transcript", run.Err, StringComparison.Ordinal);
    }
}
