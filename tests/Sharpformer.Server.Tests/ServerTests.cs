using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Embeddings;
using Sharpformer.Pipelines;

namespace Sharpformer.Server.Tests;

/// <summary>
/// The server on 127.0.0.1 driven by the official OpenAI .NET SDK (chat, streaming, embeddings, models, errors, auth)
/// and by raw HTTP where the SDK has no client (/v1/completions, fill-mask, metrics, SSE framing). Expected texts come
/// from the same random GPT-2 decoded greedily alone, token by token, outside the server.
/// </summary>
public sealed class ServerTests : IAsyncLifetime
{
    private SharpformerServer _server = null!;
    private readonly Models.Gpt2.Gpt2LMHeadModel _reference = TestModels.Gpt2();
    private readonly Text.TextTokenizer _tokenizer = TestModels.Tokenizer();
    private SentenceEmbeddingPipeline _embeddings = null!;

    public async Task InitializeAsync()
    {
        var bert = await ServedModel.LoadAsync("bert", TestModels.BertFolder);
        _embeddings = await SentenceEmbeddingPipeline.FromPretrainedAsync(TestModels.BertFolder);
        _server = await TestModels.StartAsync(
            new ServerOptions { ApiKeys = [TestModels.Key], MaxBatch = 8, MaxQueue = 64, MaxRequestBodyBytes = 64 * 1024 },
            ServedModel.Generative("tiny", TestModels.Gpt2(), TestModels.Tokenizer(), TestModels.ChatPrompt),
            ServedModel.Generative("plain", TestModels.Gpt2(), TestModels.Tokenizer()),
            bert);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private OpenAIClient Client(string key = TestModels.Key) => new(new ApiKeyCredential(key), new OpenAIClientOptions
    {
        Endpoint = new Uri(_server.Address, "v1"),
        RetryPolicy = new ClientRetryPolicy(0),
    });

    private string GreedyText(string prompt, int maxTokens) =>
        _tokenizer.Decode(TestModels.GreedyAlone(_reference, [.. _tokenizer.Encode(prompt, null, new Text.EncodeOptions { AddSpecialTokens = false }).Ids], maxTokens, 256));

    [Fact]
    public async Task Chat_OpenAiSdk_GreedyTextAndUsageMatchTheModelDecodedAlone()
    {
        var chat = Client().GetChatClient("tiny");
        var options = new ChatCompletionOptions { Temperature = 0f, MaxOutputTokenCount = 12 };
        ChatCompletion completion = await chat.CompleteChatAsync([new UserChatMessage("Hello")], options);

        string prompt = TestModels.ChatPrompt([new ChatTurn("user", "Hello")]);
        Assert.Equal(GreedyText(prompt, 12), completion.Content[0].Text);
        Assert.Equal(_tokenizer.Encode(prompt, null, new Text.EncodeOptions { AddSpecialTokens = false }).Count, completion.Usage.InputTokenCount);
        Assert.True(completion.Usage.OutputTokenCount is > 0 and <= 12);

        var streamed = new System.Text.StringBuilder();
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("Hello")], options))
        {
            foreach (var part in update.ContentUpdate)
            {
                streamed.Append(part.Text);
            }
        }

        Assert.Equal(completion.Content[0].Text, streamed.ToString());
    }

    [Fact]
    public async Task Chat_OpenAiSdkLogprobs_OnePerTokenWithTheAskedAlternativesBestFirst()
    {
        var options = new ChatCompletionOptions { Temperature = 0f, MaxOutputTokenCount = 6, IncludeLogProbabilities = true, TopLogProbabilityCount = 3 };
        ChatCompletion completion = await Client().GetChatClient("tiny").CompleteChatAsync([new UserChatMessage("Hi")], options);
        var tokens = completion.ContentTokenLogProbabilities;
        Assert.Equal(completion.Usage.OutputTokenCount, tokens.Count);
        foreach (var token in tokens)
        {
            Assert.Equal(3, token.TopLogProbabilities.Count);
            Assert.True(token.LogProbability <= 0f);
            // Greedy: the chosen token is the most likely one.
            Assert.Equal(token.TopLogProbabilities[0].LogProbability, token.LogProbability);
            Assert.True(token.TopLogProbabilities[0].LogProbability >= token.TopLogProbabilities[1].LogProbability);
        }
    }

    [Fact]
    public async Task Chat_ModelWithoutTemplate_400NamesTheFix()
    {
        var error = await Assert.ThrowsAsync<ClientResultException>(() => Client().GetChatClient("plain").CompleteChatAsync([new UserChatMessage("Hi")]));
        Assert.Equal(400, error.Status);
        Assert.Contains("model plain has no chat template; use /v1/completions", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Errors_OpenAiSdk_401WithoutKeyAnd404UnknownModel()
    {
        var unauthorized = await Assert.ThrowsAsync<ClientResultException>(() => Client("wrong").GetChatClient("tiny").CompleteChatAsync([new UserChatMessage("Hi")]));
        Assert.Equal(401, unauthorized.Status);
        var body = JsonDocument.Parse(unauthorized.GetRawResponse()!.Content.ToString()).RootElement.GetProperty("error");
        Assert.Equal("invalid_api_key", body.GetProperty("code").GetString());
        Assert.Equal(JsonValueKind.Null, body.GetProperty("param").ValueKind);

        var missing = await Assert.ThrowsAsync<ClientResultException>(() => Client().GetChatClient("nope").CompleteChatAsync([new UserChatMessage("Hi")]));
        Assert.Equal(404, missing.Status);
        Assert.Contains("model_not_found", missing.GetRawResponse()!.Content.ToString(), StringComparison.Ordinal);

        using var anonymous = TestModels.Http(_server, key: null);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync(new Uri("health", UriKind.Relative))).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync(new Uri("metrics", UriKind.Relative))).StatusCode);
    }

    [Fact]
    public async Task Models_OpenAiSdk_ListsEveryServedModel()
    {
        var models = await Client().GetOpenAIModelClient().GetModelsAsync();
        Assert.Equal(["bert", "plain", "tiny"], models.Value.Select(m => m.Id).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Embeddings_OpenAiSdkFloatAndBase64_EqualThePipeline()
    {
        var client = Client().GetEmbeddingClient("bert");
        string[] texts = ["the cat sat", "a dog"];
        OpenAIEmbeddingCollection got = await client.GenerateEmbeddingsAsync(texts);
        var expected = _embeddings.Embed(texts);
        for (int i = 0; i < texts.Length; i++)
        {
            AssertClose(expected[i], got[i].ToFloats().ToArray());
        }

        using var http = TestModels.Http(_server);
        var floats = await http.PostAsync(new Uri("v1/embeddings", UriKind.Relative), TestModels.Body(new { model = "bert", input = "the cat sat", encoding_format = "float" }));
        var data = JsonDocument.Parse(await floats.Content.ReadAsStringAsync()).RootElement.GetProperty("data")[0].GetProperty("embedding");
        AssertClose(expected[0], [.. data.EnumerateArray().Select(x => x.GetSingle())]);
    }

    private static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= Tolerances.Embedding, $"[{i}]: expected {expected[i]}, got {actual[i]}");
        }
    }

    [Fact]
    public async Task FillMask_ReturnsThePipelinesCandidates()
    {
        var pipeline = await FillMaskPipeline.FromPretrainedAsync(TestModels.BertFolder);
        string input = $"the {pipeline.MaskToken} sat";
        var expected = pipeline.Run(input, 3);
        using var http = TestModels.Http(_server);
        var response = await http.PostAsync(new Uri("v1/fill-mask", UriKind.Relative), TestModels.Body(new { model = "bert", input, top_k = 3 }));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var predictions = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("data")[0].GetProperty("predictions");
        Assert.Equal(expected[0].Select(p => p.Token), predictions.EnumerateArray().Select(p => p.GetProperty("token").GetInt32()));
    }

    [Fact]
    public async Task Completions_StreamingSse_PiecesJoinToTheGreedyTextThenUsageThenDone()
    {
        using var http = TestModels.Http(_server);
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri("v1/completions", UriKind.Relative))
        {
            Content = TestModels.Body(new { model = "plain", prompt = "Once upon", max_tokens = 20, temperature = 0, stream = true, stream_options = new { include_usage = true } }),
        };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        var (chunks, done) = await TestModels.ReadEvents(response);
        Assert.True(done);
        var text = string.Concat(chunks.SelectMany(c => c.GetProperty("choices").EnumerateArray()).Select(c => c.GetProperty("text").GetString()));
        Assert.Equal(GreedyText("Once upon", 20), text);
        Assert.Equal(0, chunks[^1].GetProperty("choices").GetArrayLength());
        var usage = chunks[^1].GetProperty("usage");
        Assert.Equal(usage.GetProperty("prompt_tokens").GetInt32() + usage.GetProperty("completion_tokens").GetInt32(), usage.GetProperty("total_tokens").GetInt32());
        var finish = chunks[^2].GetProperty("choices")[0].GetProperty("finish_reason").GetString();
        Assert.True(finish is "stop" or "length");
    }

    [Fact]
    public async Task Completions_StreamingLogprobs_OneEntryPerTokenEqualToTheNonStreamedOnes()
    {
        using var http = TestModels.Http(_server);
        var whole = await http.PostAsync(new Uri("v1/completions", UriKind.Relative), TestModels.Body(new { model = "plain", prompt = "xy", max_tokens = 6, temperature = 0, logprobs = 1 }));
        var expected = JsonDocument.Parse(await whole.Content.ReadAsStringAsync()).RootElement.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("token_logprobs")
            .EnumerateArray().Select(x => x.GetSingle()).ToList();

        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri("v1/completions", UriKind.Relative))
        {
            Content = TestModels.Body(new { model = "plain", prompt = "xy", max_tokens = 6, temperature = 0, logprobs = 1, stream = true }),
        };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var (chunks, done) = await TestModels.ReadEvents(response);
        Assert.True(done);
        var streamed = chunks.Select(c => c.GetProperty("choices")[0].GetProperty("logprobs"))
            .Where(l => l.ValueKind == JsonValueKind.Object)
            .SelectMany(l => l.GetProperty("token_logprobs").EnumerateArray().Select(x => x.GetSingle())).ToList();
        Assert.Equal(expected, streamed);
    }

    [Fact]
    public async Task Completions_StopSequenceAndLogprobs_CutBeforeTheStopAndReportLogprobs()
    {
        string full = GreedyText("Once upon", 20);
        string stop = full.Length > 6 ? full.Substring(3, 2) : full;
        using var http = TestModels.Http(_server);
        var response = await http.PostAsync(new Uri("v1/completions", UriKind.Relative), TestModels.Body(new { model = "plain", prompt = "Once upon", max_tokens = 20, temperature = 0, stop, logprobs = 2 }));
        var choice = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("choices")[0];
        Assert.Equal(full[..full.IndexOf(stop, StringComparison.Ordinal)], choice.GetProperty("text").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        var logprobs = choice.GetProperty("logprobs");
        Assert.All(logprobs.GetProperty("token_logprobs").EnumerateArray(), lp => Assert.True(lp.GetSingle() <= 0f));
        Assert.All(logprobs.GetProperty("top_logprobs").EnumerateArray(), top => Assert.Equal(2, top.EnumerateObject().Count()));
    }

    [Theory]
    [InlineData("""{"model":"plain","prompt":"hi","max_tokens":300}""", "prompt", "maximum context length is 256 tokens")]
    [InlineData("""{"model":"plain","prompt":"hi","temperature":3}""", "temperature", "between 0 and 2")]
    [InlineData("""{"model":"plain","prompt":"hi","n":0}""", "n", "between 1 and 8")]
    [InlineData("""{"model":"plain","prompt":"hi","max_tokens":"x"}""", "max_tokens", "not valid JSON")]
    [InlineData("""{"model":"plain"}""", "prompt", "prompt is required")]
    [InlineData("""{"prompt":"hi"}""", "model", "model is required")]
    [InlineData("""{"model":"plain","prompt":"hi","presence_penalty":0.5}""", "presence_penalty", "not supported")]
    [InlineData("""{"model":"plain","prompt":"hi","stop":[1]}""", "stop", "array of up to 4 strings")]
    [InlineData("""{"model":"plain","prompt":"hi","stream_options":{"include_usage":true}}""", "stream_options", "only allowed with stream")]
    public async Task Completions_BadInput_400NamesTheParam(string body, string param, string message)
    {
        using var http = TestModels.Http(_server);
        var response = await http.PostAsync(new Uri("v1/completions", UriKind.Relative), new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Contains(message, error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Completions_BodyOverTheLimit_413()
    {
        using var http = TestModels.Http(_server);
        var response = await http.PostAsync(new Uri("v1/completions", UriKind.Relative), TestModels.Body(new { model = "plain", prompt = new string('a', 100_000) }));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
    }

    [Fact]
    public async Task ContinuousBatching_ConcurrentGreedyRequests_BatchTogetherAndEqualSequentialDecoding()
    {
        string[] prompts = ["a", "The quick brown fox", "Hello there", "x y z", "Sharpformer is", "12345", "Once", "It was a dark and stormy night"];
        using var http = TestModels.Http(_server);
        var tasks = prompts.Select(async p =>
        {
            var response = await http.PostAsync(new Uri("v1/completions", UriKind.Relative), TestModels.Body(new { model = "plain", prompt = p, max_tokens = 40, temperature = 0 }));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("choices")[0].GetProperty("text").GetString();
        }).ToArray();
        var texts = await Task.WhenAll(tasks);
        for (int i = 0; i < prompts.Length; i++)
        {
            Assert.Equal(GreedyText(prompts[i], 40), texts[i]);
        }

        Assert.True(_server.Engines["plain"].Statistics.MaxSequencesPerStep > 1, $"no decode step carried more than one sequence ({_server.Engines["plain"].Statistics.MaxSequencesPerStep})");
    }

    [Fact]
    public async Task Completions_NWithSeed_ReturnsNChoicesAndUsageCountsThemAll()
    {
        using var http = TestModels.Http(_server);
        var response = await http.PostAsync(new Uri("v1/completions", UriKind.Relative), TestModels.Body(new { model = "plain", prompt = "abc", max_tokens = 5, temperature = 1, seed = 3, n = 3 }));
        var root = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal([0, 1, 2], root.GetProperty("choices").EnumerateArray().Select(c => c.GetProperty("index").GetInt32()));
        Assert.True(root.GetProperty("usage").GetProperty("completion_tokens").GetInt32() is > 3 and <= 15);

        // The same seed gives the same choices again.
        var again = await http.PostAsync(new Uri("v1/completions", UriKind.Relative), TestModels.Body(new { model = "plain", prompt = "abc", max_tokens = 5, temperature = 1, seed = 3, n = 3 }));
        var texts = root.GetProperty("choices").EnumerateArray().Select(c => c.GetProperty("text").GetString());
        var textsAgain = JsonDocument.Parse(await again.Content.ReadAsStringAsync()).RootElement.GetProperty("choices").EnumerateArray().Select(c => c.GetProperty("text").GetString());
        Assert.Equal(texts, textsAgain);
    }

    [Fact]
    public async Task Completions_JsonObjectFormatWithNonJsonOutput_422SaysTheOutputIsNotJson()
    {
        using var http = TestModels.Http(_server);
        var response = await http.PostAsync(new Uri("v1/completions", UriKind.Relative), TestModels.Body(new { model = "plain", prompt = "abc", max_tokens = 8, temperature = 0, response_format = new { type = "json_object" } }));
        string output = GreedyText("abc", 8);
        bool parses;
        try
        {
            using var document = JsonDocument.Parse(output);
            parses = true;
        }
        catch (JsonException)
        {
            parses = false;
        }

        Assert.Equal(parses ? HttpStatusCode.OK : HttpStatusCode.UnprocessableEntity, response.StatusCode);
        if (!parses)
        {
            Assert.Contains("not valid JSON", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task MetricsAndOpenApi_DescribeTheServer()
    {
        using var http = TestModels.Http(_server);
        await http.PostAsync(new Uri("v1/completions", UriKind.Relative), TestModels.Body(new { model = "plain", prompt = "hi", max_tokens = 2 }));
        string metrics = await http.GetStringAsync(new Uri("metrics", UriKind.Relative));
        Assert.Contains("sharpformer_requests_total{route=\"/v1/completions\",status=\"200\"}", metrics, StringComparison.Ordinal);
        Assert.Contains("sharpformer_queue_depth{model=\"plain\"} 0", metrics, StringComparison.Ordinal);
        Assert.Contains("sharpformer_time_to_first_token_seconds_bucket{le=\"+Inf\"}", metrics, StringComparison.Ordinal);
        Assert.Contains("sharpformer_tokens_per_second", metrics, StringComparison.Ordinal);

        var openApi = JsonDocument.Parse(await http.GetStringAsync(new Uri("openapi/v1.json", UriKind.Relative))).RootElement.GetProperty("paths");
        foreach (var path in new[] { "/v1/fill-mask", "/v1/completions", "/v1/chat/completions", "/v1/embeddings", "/health", "/metrics" })
        {
            Assert.True(openApi.TryGetProperty(path, out _), $"the OpenAPI document lacks {path}");
        }
    }
}
