using System.Net;
using System.Text.Json;

namespace Sharpformer.Server.Tests;

/// <summary>
/// Bounded load on 127.0.0.1: concurrent streams well inside the limits, then ten times the queue limit at once. Only
/// 200 and 429 may come back; every accepted stream must end with a finish_reason and [DONE]; the managed heap must not
/// grow with the number of requests served.
/// </summary>
public sealed class LoadTests
{
    private static async Task<(HttpStatusCode Status, bool Complete, string? RetryAfter, bool Done)> Stream(HttpClient http, string prompt, int maxTokens)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri("v1/completions", UriKind.Relative))
        {
            Content = TestModels.Body(new { model = "tiny", prompt, max_tokens = maxTokens, temperature = 0.8, seed = 1, stream = true }),
        };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            string body = await response.Content.ReadAsStringAsync();
            Assert.True(JsonDocument.Parse(body).RootElement.TryGetProperty("error", out _), body);
            return (response.StatusCode, false, response.Headers.RetryAfter?.Delta?.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture), false);
        }

        var (chunks, done) = await TestModels.ReadEvents(response);
        bool finished = chunks.Count > 0 && chunks[^1].TryGetProperty("choices", out var choices) && choices.GetArrayLength() == 1
            && choices[0].GetProperty("finish_reason").GetString() is "stop" or "length";
        return (response.StatusCode, done && finished, null, done);
    }

    [Fact]
    public async Task Load_ConcurrentStreamsThenTenTimesTheQueue_Only200Or429AndEveryAcceptedStreamComplete()
    {
        const int MaxQueue = 16;
        await using var server = await TestModels.StartAsync(new ServerOptions { ApiKeys = [TestModels.Key], MaxBatch = 16, MaxQueue = MaxQueue },
            ServedModel.Generative("tiny", TestModels.Gpt2(), TestModels.Tokenizer()));
        using var http = TestModels.Http(server);
        http.Timeout = TimeSpan.FromMinutes(3);

        // Warm-up round, then measure the heap across further rounds of 16 concurrent streams (inside the queue limit even before any is admitted).
        long before = 0;
        for (int round = 0; round < 4; round++)
        {
            var results = await Task.WhenAll(Enumerable.Range(0, MaxQueue).Select(i => Stream(http, $"stream {i}", 24)));
            Assert.All(results, r => Assert.True(r.Status == HttpStatusCode.OK && r.Complete, $"status {r.Status}, complete {r.Complete}"));
            if (round == 0)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                before = GC.GetTotalMemory(forceFullCollection: true);
            }
        }

        GC.Collect();
        GC.WaitForPendingFinalizers();
        long after = GC.GetTotalMemory(forceFullCollection: true);
        Assert.True(after - before < 32L << 20, $"the heap grew by {(after - before) >> 20} MiB over 48 streams");
        Assert.True(server.Engines["tiny"].Statistics.MaxSequencesPerStep > 1);

        // Ten times the queue limit at once: some are refused with 429 and Retry-After, the rest complete.
        var burst = await Task.WhenAll(Enumerable.Range(0, 10 * (MaxQueue + 16)).Select(i => Stream(http, $"burst {i}", 16)));
        Assert.All(burst, r => Assert.True(r.Status is HttpStatusCode.OK or HttpStatusCode.TooManyRequests, $"status {r.Status}"));
        Assert.All(burst.Where(r => r.Status == HttpStatusCode.OK), r => Assert.True(r.Complete));
        Assert.Contains(burst, r => r.Status == HttpStatusCode.TooManyRequests);
        Assert.All(burst.Where(r => r.Status == HttpStatusCode.TooManyRequests), r => Assert.Equal("1", r.RetryAfter));
        Assert.Contains(burst, r => r.Status == HttpStatusCode.OK);
        Assert.Equal(0, server.Engines["tiny"].QueueDepth);
    }

    private static ServedModel Slow() =>
        ServedModel.Generative("tiny", new SlowModel(TestModels.Gpt2(), TimeSpan.FromMilliseconds(20)), TestModels.Tokenizer());

    [Fact]
    public async Task Disconnect_ClientCancelsMidStream_SequenceLeavesTheBatchWithinAStep()
    {
        await using var server = await TestModels.StartAsync(new ServerOptions(), Slow());
        using var http = TestModels.Http(server, key: null);
        using var cts = new CancellationTokenSource();
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri("v1/completions", UriKind.Relative))
        {
            Content = TestModels.Body(new { model = "tiny", prompt = "go", max_tokens = 250, temperature = 0, stream = true }),
        };
        var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));
        Assert.StartsWith("data: ", await reader.ReadLineAsync(cts.Token), StringComparison.Ordinal);
        Assert.Equal(1, server.Engines["tiny"].ActiveSequences);
        await cts.CancelAsync();
        response.Dispose();

        // 250 steps would take ≥ 5 s; the sequence must leave long before.
        var until = DateTime.UtcNow.AddSeconds(3);
        while (server.Engines["tiny"].ActiveSequences > 0 && DateTime.UtcNow < until)
        {
            await Task.Delay(10);
        }

        Assert.Equal(0, server.Engines["tiny"].ActiveSequences);
        Assert.True(server.Engines["tiny"].Statistics.GeneratedTokens < 150, $"{server.Engines["tiny"].Statistics.GeneratedTokens} tokens generated after the client left");
    }

    [Fact]
    public async Task Deadline_GenerationPastTheTimeout_504TimeoutError()
    {
        await using var server = await TestModels.StartAsync(new ServerOptions { RequestTimeout = TimeSpan.FromMilliseconds(300) }, Slow());
        using var http = TestModels.Http(server, key: null);
        var response = await http.PostAsync(new Uri("v1/completions", UriKind.Relative), TestModels.Body(new { model = "tiny", prompt = "go", max_tokens = 250, temperature = 0 }));
        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal("timeout", JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task MaxContext_BelowTheModels_BoundsPromptPlusCompletion()
    {
        await using var server = await TestModels.StartAsync(new ServerOptions { MaxContext = 64 }, ServedModel.Generative("tiny", TestModels.Gpt2(), TestModels.Tokenizer()));
        Assert.Equal(64, server.Engines["tiny"].MaxPositions);
        using var http = TestModels.Http(server, key: null);
        var response = await http.PostAsync(new Uri("v1/completions", UriKind.Relative), TestModels.Body(new { model = "tiny", prompt = "abcd", max_tokens = 61 }));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("maximum context length is 64 tokens. However, you requested 65 tokens (4 in the prompt, 61 in the completion)", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var fits = await http.PostAsync(new Uri("v1/completions", UriKind.Relative), TestModels.Body(new { model = "tiny", prompt = "abcd", max_tokens = 60, temperature = 0 }));
        Assert.Equal(HttpStatusCode.OK, fits.StatusCode);
    }

    [Fact]
    public async Task Shutdown_InFlightStreams_EndWithDone()
    {
        var server = await TestModels.StartAsync(new ServerOptions { ShutdownGrace = TimeSpan.Zero }, Slow());
        using var http = TestModels.Http(server, key: null);
        var streams = Enumerable.Range(0, 4).Select(i => Stream(http, $"long {i}", 250)).ToArray();
        var until = DateTime.UtcNow.AddSeconds(10);
        while (server.Engines["tiny"].ActiveSequences < 4 && DateTime.UtcNow < until)
        {
            await Task.Delay(10);
        }

        await server.DisposeAsync();
        foreach (var stream in streams)
        {
            var (status, _, _, done) = await stream;
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.True(done, "a stream cut by shutdown did not end with [DONE]");
        }
    }
}
