using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Sharpformer.Cli.Tests.Chat;

/// <summary>One request the fake saw: its Authorization header and JSON body.</summary>
internal sealed record SeenRequest(string Path, string Authorization, JsonObject Body)
{
    public bool Stream => Body["stream"]?.GetValue<bool>() ?? false;

    /// <summary>The messages as "role:content".</summary>
    public IReadOnlyList<string> Messages => [.. Body["messages"]!.AsArray().Select(m => $"{m!["role"]!.GetValue<string>()}:{m["content"]!.GetValue<string>()}")];
}

/// <summary>Faults the fake injects.</summary>
/// <param name="ExpectedKey">When set, any other bearer token gets 401.</param>
/// <param name="RateLimitFirst">Answer this many requests with 429 first.</param>
/// <param name="RetryAfter">The Retry-After header sent with a 429, or null for none.</param>
/// <param name="Stall">Hold every answer until the client gives up (at most 30 s).</param>
internal sealed record FakeOpenAIFaults(string? ExpectedKey = null, int RateLimitFirst = 0, string? RetryAfter = "1", bool Stall = false);

/// <summary>
/// OpenAI's chat completions API on 127.0.0.1, enough for the official SDK: <c>POST /v1/chat/completions</c>, answered
/// as JSON or, when the body says <c>"stream": true</c>, as server-sent events the way OpenAI sends them (chunks with
/// deltas, a last chunk with finish_reason, a usage chunk when <c>stream_options.include_usage</c>, then
/// <c>data: [DONE]</c>). The reply is "reply N: &lt;last user message&gt;". Faults on demand: a wrong key (401 in OpenAI's
/// error shape, echoing the key as a careless server might), 429 with Retry-After, a stalled answer.
/// </summary>
internal sealed class FakeOpenAIServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly FakeOpenAIFaults _faults;
    private int _replies;
    private int _rateLimited;

    private FakeOpenAIServer(WebApplication app, FakeOpenAIFaults faults)
    {
        _app = app;
        _faults = faults;
    }

    /// <summary>The API root to pass as --base-url (ends in /v1).</summary>
    public string BaseUrl { get; private set; } = "";

    public ConcurrentQueue<SeenRequest> Requests { get; } = new();

    public static async Task<FakeOpenAIServer> StartAsync(FakeOpenAIFaults? faults = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(o => o.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var server = new FakeOpenAIServer(app, faults ?? new FakeOpenAIFaults());
        app.Run(server.HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.BaseUrl = address.TrimEnd('/') + "/v1";
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private async Task HandleAsync(HttpContext context)
    {
        var body = (JsonNode.Parse(await new StreamReader(context.Request.Body).ReadToEndAsync()) as JsonObject) ?? [];
        string authorization = context.Request.Headers.Authorization.ToString();
        Requests.Enqueue(new SeenRequest(context.Request.Path, authorization, body));
        if (context.Request.Method != "POST" || context.Request.Path != "/v1/chat/completions")
        {
            await ErrorAsync(context, 404, $"no route {context.Request.Method} {context.Request.Path}", "invalid_request_error");
            return;
        }

        if (_faults.ExpectedKey is not null && authorization != "Bearer " + _faults.ExpectedKey)
        {
            string given = authorization.StartsWith("Bearer ", StringComparison.Ordinal) ? authorization[7..] : authorization;
            await ErrorAsync(context, 401, $"Incorrect API key provided: {given}. You can find your API key at the dashboard.", "invalid_api_key");
            return;
        }

        if (Interlocked.Increment(ref _rateLimited) <= _faults.RateLimitFirst)
        {
            if (_faults.RetryAfter is not null)
            {
                context.Response.Headers["Retry-After"] = _faults.RetryAfter;
            }

            await ErrorAsync(context, 429, "Rate limit reached for requests.", "rate_limit_exceeded");
            return;
        }

        if (_faults.Stall)
        {
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(30), context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        int n = Interlocked.Increment(ref _replies);
        var messages = body["messages"]!.AsArray();
        string lastUser = messages.Last(m => m!["role"]!.GetValue<string>() == "user")!["content"]!.GetValue<string>();
        string reply = $"reply {n.ToString(CultureInfo.InvariantCulture)}: {lastUser}";
        string model = body["model"]?.GetValue<string>() ?? "?";
        int promptTokens = messages.Sum(m => m!["content"]!.GetValue<string>().Length);
        int completionTokens = reply.Length;
        var usage = new JsonObject { ["prompt_tokens"] = promptTokens, ["completion_tokens"] = completionTokens, ["total_tokens"] = promptTokens + completionTokens };
        const long Created = 1_700_000_000;
        if (body["stream"]?.GetValue<bool>() != true)
        {
            var completion = new JsonObject
            {
                ["id"] = "chatcmpl-fake",
                ["object"] = "chat.completion",
                ["created"] = Created,
                ["model"] = model,
                ["choices"] = new JsonArray(new JsonObject
                {
                    ["index"] = 0,
                    ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = reply },
                    ["finish_reason"] = "stop",
                }),
                ["usage"] = usage,
            };
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(completion.ToJsonString());
            return;
        }

        context.Response.ContentType = "text/event-stream";
        async Task SendAsync(JsonObject chunk)
        {
            await context.Response.WriteAsync("data: " + chunk.ToJsonString() + "\n\n");
            await context.Response.Body.FlushAsync();
        }

        JsonObject Chunk(JsonObject delta, string? finish) => new()
        {
            ["id"] = "chatcmpl-fake",
            ["object"] = "chat.completion.chunk",
            ["created"] = Created,
            ["model"] = model,
            ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["finish_reason"] = finish }),
        };

        await SendAsync(Chunk(new JsonObject { ["role"] = "assistant", ["content"] = "" }, null));
        for (int at = 0; at < reply.Length; at += 4)
        {
            await SendAsync(Chunk(new JsonObject { ["content"] = reply.Substring(at, Math.Min(4, reply.Length - at)) }, null));
        }

        await SendAsync(Chunk([], "stop"));
        if (body["stream_options"]?["include_usage"]?.GetValue<bool>() == true)
        {
            await SendAsync(new JsonObject
            {
                ["id"] = "chatcmpl-fake",
                ["object"] = "chat.completion.chunk",
                ["created"] = Created,
                ["model"] = model,
                ["choices"] = new JsonArray(),
                ["usage"] = usage,
            });
        }

        await context.Response.WriteAsync("data: [DONE]\n\n");
    }

    private static async Task ErrorAsync(HttpContext context, int status, string message, string code)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        var error = new JsonObject { ["error"] = new JsonObject { ["message"] = message, ["type"] = code, ["param"] = null, ["code"] = code } };
        await context.Response.WriteAsync(error.ToJsonString(), Encoding.UTF8);
    }
}
