using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Sharpformer.Pipelines;

namespace Sharpformer.Server;

/// <summary>
/// The OpenAI-compatible server: Kestrel on <see cref="ServerOptions.Host"/> (127.0.0.1 by default), one
/// continuously batching <see cref="InferenceEngine"/> per generative model, encoders served from the request thread
/// one request at a time per model. Routes: <c>GET /v1/models</c>, <c>POST /v1/completions</c>,
/// <c>POST /v1/chat/completions</c>, <c>POST /v1/embeddings</c>, <c>POST /v1/fill-mask</c>, <c>GET /health</c>,
/// <c>GET /metrics</c>, and the OpenAPI document at <c>/openapi/v1.json</c>. Every route but /health needs an API key
/// when keys are configured.
/// </summary>
/// <remarks>
/// Semantics where OpenAI leaves room: temperature 0 is greedy, otherwise sampling with top_p (no top-k); choice i of
/// a request with a seed samples with seed + i; logprobs are the model's log-softmax before temperature and top_p
/// (vLLM's default); usage counts a stop token (EOS) as generated. <c>response_format: json_object</c> does not
/// constrain decoding: the finished text of every choice must parse as JSON, otherwise the answer is 422
/// <c>invalid_response_format</c> (streaming: an error event before <c>[DONE]</c>). Fields the server does not
/// implement (presence/frequency penalty, logit_bias, tools) are refused with 400 rather than ignored. A request past
/// its deadline answers 504 (streaming: an error event); one cut by shutdown 503.
/// </remarks>
public sealed class SharpformerServer : IAsyncDisposable
{
    private readonly ServerOptions _options;
    private readonly Dictionary<string, ServedModel> _models;
    private readonly Dictionary<string, InferenceEngine> _engines = [];
    private readonly Dictionary<string, SemaphoreSlim> _encoderLocks = [];
    private readonly ServerMetrics _metrics = new();
    private readonly WebApplication _app;
    private readonly long _created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    private readonly byte[][] _keys;
    private int _stopped;

    private SharpformerServer(ServerOptions options, IReadOnlyList<ServedModel> models, ILoggerProvider? logger)
    {
        _options = options;
        _models = models.ToDictionary(m => m.Name, StringComparer.Ordinal);
        _keys = [.. options.ApiKeys.Select(Encoding.UTF8.GetBytes)];
        foreach (var model in models)
        {
            if (model.CausalLM is { } lm)
            {
                _engines[model.Name] = new InferenceEngine(lm, options.MaxBatch, options.MaxQueue, _metrics.ObserveTimeToFirstToken, options.MaxContext is { } c ? Math.Min(c, lm.MaxPositions) : null);
            }
            else
            {
                _encoderLocks[model.Name] = new SemaphoreSlim(1, 1);
            }
        }

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (logger is not null)
        {
            builder.Logging.AddProvider(logger);
        }

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
            kestrel.Listen(ParseHost(options.Host), options.Port);
        });
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = options.ShutdownGrace + TimeSpan.FromSeconds(5));
        builder.Services.AddOpenApi(o => o.AddDocumentTransformer((document, _, _) =>
        {
            document.Info.Title = "Sharpformer server";
            document.Info.Description = "OpenAI-compatible routes (/v1/models, /v1/completions, /v1/chat/completions, /v1/embeddings) and the ones OpenAI lacks (/v1/fill-mask, /v1/classify, /v1/ner, /health, /metrics).";
            return Task.CompletedTask;
        }));
        _app = builder.Build();
        _app.Lifetime.ApplicationStopping.Register(() => StopEngines().GetAwaiter().GetResult());
        _app.Use(Middleware);
        MapRoutes(_app);
    }

    /// <summary>The models served, by name.</summary>
    public IReadOnlyDictionary<string, ServedModel> Models => _models;

    /// <summary>The inference loop of each generative model, by name.</summary>
    public IReadOnlyDictionary<string, InferenceEngine> Engines => _engines;

    /// <summary>The address the server listens on (with the real port once started).</summary>
    public Uri Address { get; private set; } = new("http://127.0.0.1/");

    /// <summary>Builds a server over loaded models (it does not listen until <see cref="StartAsync"/>).</summary>
    /// <param name="options">Binding, keys and limits.</param>
    /// <param name="models">The models, with distinct names.</param>
    /// <param name="logger">Where ASP.NET Core logs go, or null for nowhere.</param>
    /// <returns>The server.</returns>
    /// <exception cref="ArgumentException">The options are invalid, no model is given, or two models share a name.</exception>
    public static SharpformerServer Create(ServerOptions options, IReadOnlyList<ServedModel> models, ILoggerProvider? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(models);
        options.Validate();
        if (models.Count == 0)
        {
            throw new ArgumentException("Serve at least one model: --model name=path.", nameof(models));
        }

        var duplicate = models.GroupBy(m => m.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new ArgumentException($"Two models are named '{duplicate.Key}'; give each --model a distinct name (name=path).", nameof(models));
        }

        return new SharpformerServer(options, models, logger);
    }

    /// <summary>Starts listening; <see cref="Address"/> then holds the bound address.</summary>
    /// <param name="ct">Cancels the start.</param>
    /// <returns>A task that completes once the server listens.</returns>
    public async Task StartAsync(CancellationToken ct = default)
    {
        await _app.StartAsync(ct).ConfigureAwait(false);
        var addresses = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>();
        string? first = addresses?.Addresses.FirstOrDefault();
        if (first is not null)
        {
            Address = new Uri(first.Replace("[::]", "localhost", StringComparison.Ordinal).Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal));
        }
    }

    /// <summary>Waits until the host shuts down (Ctrl+C, SIGTERM, or <see cref="StopAsync"/>).</summary>
    /// <param name="ct">Stops waiting.</param>
    /// <returns>A task that completes at shutdown.</returns>
    public Task WaitForShutdownAsync(CancellationToken ct = default) => _app.WaitForShutdownAsync(ct);

    /// <summary>
    /// Graceful shutdown: new generation requests get 503, in-flight ones may finish for <see cref="ServerOptions.ShutdownGrace"/>
    /// and are then cancelled (streams end with an error event and [DONE]); then Kestrel stops.
    /// </summary>
    /// <returns>A task that completes when stopped.</returns>
    public async Task StopAsync()
    {
        await StopEngines().ConfigureAwait(false);
        await _app.StopAsync().ConfigureAwait(false);
    }

    /// <summary>Stops the server and releases the engines.</summary>
    /// <returns>A task that completes when disposed.</returns>
    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        foreach (var engine in _engines.Values)
        {
            engine.Dispose();
        }

        foreach (var gate in _encoderLocks.Values)
        {
            gate.Dispose();
        }
    }

    private async Task StopEngines()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        await Task.WhenAll(_engines.Values.Select(e => e.StopAsync(_options.ShutdownGrace))).ConfigureAwait(false);
    }

    private static IPAddress ParseHost(string host)
    {
        if (host == "localhost")
        {
            return IPAddress.Loopback;
        }

        return IPAddress.TryParse(host, out var address)
            ? address
            : throw new ArgumentException($"--host '{host}' is not an IP address; use 127.0.0.1 (loopback), 0.0.0.0 (every IPv4 interface) or another literal address.");
    }

    private async Task Middleware(HttpContext context, RequestDelegate next)
    {
        try
        {
            if (_keys.Length > 0 && context.Request.Path != "/health" && !Authorized(context.Request))
            {
                await Fail(context, 401, "Incorrect or missing API key: send 'Authorization: Bearer <key>' with one of the server's keys (--api-key, SHARPFORMER_API_KEY or --api-keys-file).", "authentication_error", null, "invalid_api_key").ConfigureAwait(false);
                return;
            }

            await next(context).ConfigureAwait(false);
        }
        finally
        {
            string route = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "unmatched";
            _metrics.CountRequest(route, context.Response.StatusCode);
        }
    }

    private bool Authorized(HttpRequest request)
    {
        string header = request.Headers.Authorization.ToString();
        const string Bearer = "Bearer ";
        if (!header.StartsWith(Bearer, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var given = Encoding.UTF8.GetBytes(header[Bearer.Length..].Trim());
        bool ok = false;
        foreach (var key in _keys)
        {
            ok |= CryptographicOperations.FixedTimeEquals(given, key);
        }

        return ok;
    }

    private void MapRoutes(WebApplication app)
    {
        app.MapOpenApi();
        app.MapGet("/health", Handler(context => Json(context, 200, new { status = "ok", models = _models.Keys.ToArray() })))
            .WithSummary("Liveness: 200 with the served model names (no API key needed).");
        app.MapGet("/metrics", (HttpContext context) => Results.Text(_metrics.Render(_engines), "text/plain; version=0.0.4"))
            .WithSummary("Prometheus metrics: requests by route and status, queue depth, active sequences, generated tokens, tokens/s, time to first token.");
        app.MapGet("/v1/models", Handler(context => Json(context, 200, new ListResponse<ModelEntry>("list", [.. _models.Keys.Select(n => new ModelEntry(n, "model", _created, "sharpformer"))]))))
            .WithSummary("The served models.").Produces<ListResponse<ModelEntry>>();
        app.MapPost("/v1/completions", Handler(Completions))
            .WithSummary("OpenAI text completions (streaming with SSE).").Accepts<CompletionRequest>("application/json").Produces<CompletionResponse>();
        app.MapPost("/v1/chat/completions", Handler(ChatCompletions))
            .WithSummary("OpenAI chat completions (streaming with SSE); needs a model with a chat prompt formatter.").Accepts<ChatCompletionRequest>("application/json").Produces<ChatCompletionResponse>();
        app.MapPost("/v1/embeddings", Handler(Embeddings))
            .WithSummary("OpenAI embeddings (float or base64) from an encoder: mean pooling + L2.").Accepts<EmbeddingRequest>("application/json").Produces<ListResponse<EmbeddingEntry>>();
        app.MapPost("/v1/fill-mask", Handler(FillMask))
            .WithSummary("Not in OpenAI's API: the best tokens for each mask token of the input (HF fill-mask).").Accepts<FillMaskRequest>("application/json").Produces<ListResponse<FillMaskEntry>>();
        app.MapPost("/v1/classify", Handler(Classify))
            .WithSummary("Not in OpenAI's API: labels and scores of each input from a sequence classifier (HF text-classification: top_k, function_to_apply).").Accepts<ClassifyRequest>("application/json").Produces<ListResponse<ClassifyEntry>>();
        app.MapPost("/v1/ner", Handler(Ner))
            .WithSummary("Not in OpenAI's API: named entities of each input from a token classifier (HF token-classification: aggregation_strategy, character offsets).").Accepts<NerRequest>("application/json").Produces<ListResponse<NerEntry>>();
    }

    /// <summary>A handler as a Delegate, so the endpoint gets a RouteHandlerBuilder (OpenAPI metadata) rather than a bare RequestDelegate.</summary>
    private static Delegate Handler(Func<HttpContext, Task> handler) => handler;

    // ---- completions and chat ----

    private async Task Completions(HttpContext context)
    {
        var request = await ReadJson<CompletionRequest>(context).ConfigureAwait(false);
        if (request is null || await FindGenerative(context, request.Model).ConfigureAwait(false) is not { } model)
        {
            return;
        }

        var tokenizer = model.Tokenizer!;
        var prompts = new List<IReadOnlyList<int>>();
        string? promptError = ReadPrompts(request.Prompt, tokenizer, model.CausalLM!.VocabSize, prompts);
        if (promptError is not null)
        {
            await Fail(context, 400, promptError, "invalid_request_error", "prompt", null).ConfigureAwait(false);
            return;
        }

        if (request.Logprobs is < 0 or > 5)
        {
            await Fail(context, 400, $"logprobs must be between 0 and 5, got {request.Logprobs}.", "invalid_request_error", "logprobs", null).ConfigureAwait(false);
            return;
        }

        var job = await Prepare(context, model, request, prompts, request.MaxTokens ?? 16, "max_tokens", "prompt", request.Logprobs ?? -1).ConfigureAwait(false);
        if (job is not null)
        {
            await Run(context, job, chat: false).ConfigureAwait(false);
        }
    }

    private async Task ChatCompletions(HttpContext context)
    {
        var request = await ReadJson<ChatCompletionRequest>(context).ConfigureAwait(false);
        if (request is null || await FindGenerative(context, request.Model).ConfigureAwait(false) is not { } model)
        {
            return;
        }

        if (request.Messages is not { Count: > 0 } messages)
        {
            await Fail(context, 400, "messages must be a non-empty array of {role, content}.", "invalid_request_error", "messages", null).ConfigureAwait(false);
            return;
        }

        var turns = new List<ChatTurn>();
        for (int i = 0; i < messages.Count; i++)
        {
            string? text = MessageText(messages[i].Content);
            if (string.IsNullOrEmpty(messages[i].Role) || text is null)
            {
                await Fail(context, 400, $"messages[{i}] needs a role and a content string (or an array of text parts).", "invalid_request_error", $"messages[{i}]", null).ConfigureAwait(false);
                return;
            }

            turns.Add(new ChatTurn(messages[i].Role!, text));
        }

        if (model.ChatPrompt is not { } format)
        {
            await Fail(context, 400, model.ChatUnavailableReason!, "invalid_request_error", "model", "chat_template_missing").ConfigureAwait(false);
            return;
        }

        if (request.TopLogprobs is < 0 or > 20 || (request.TopLogprobs is not null && request.Logprobs != true))
        {
            await Fail(context, 400, "top_logprobs must be between 0 and 20 and needs logprobs: true.", "invalid_request_error", "top_logprobs", null).ConfigureAwait(false);
            return;
        }

        if (request.MaxTokens is not null && request.MaxCompletionTokens is not null && request.MaxTokens != request.MaxCompletionTokens)
        {
            await Fail(context, 400, "max_tokens and max_completion_tokens disagree; send one of them.", "invalid_request_error", "max_completion_tokens", null).ConfigureAwait(false);
            return;
        }

        string promptText;
        try
        {
            promptText = format(turns);
        }
        catch (Text.Jinja.JinjaException e)
        {
            // raise_exception (e.g. roles that do not alternate) is the template's verdict on the request; other template
            // failures are also about what this conversation made the template do.
            string message = e is Text.Jinja.JinjaRaisedException
                ? $"The chat template of model {model.Name} rejected the messages: {e.Message}"
                : $"The chat template of model {model.Name} could not render the messages: {e.Message}";
            await Fail(context, 400, message, "invalid_request_error", "messages", "chat_template_error").ConfigureAwait(false);
            return;
        }

        var prompt = model.Tokenizer!.Encode(promptText, null, new Text.EncodeOptions { AddSpecialTokens = false }).Ids;
        int? maxTokens = request.MaxCompletionTokens ?? request.MaxTokens;
        int budget = maxTokens ?? Math.Max(1, _engines[model.Name].MaxPositions - prompt.Count);
        var job = await Prepare(context, model, request, [prompt], budget, request.MaxCompletionTokens is not null ? "max_completion_tokens" : "max_tokens", "messages", request.Logprobs == true ? request.TopLogprobs ?? 0 : -1).ConfigureAwait(false);
        if (job is not null)
        {
            await Run(context, job, chat: true).ConfigureAwait(false);
        }
    }

    /// <summary>Validates the shared sampling fields and the context, and builds one engine request per choice; null after answering an error.</summary>
    private async Task<Job?> Prepare(HttpContext context, ServedModel model, GenerationRequestBase request, List<IReadOnlyList<int>> prompts, int maxTokens, string maxTokensParam, string promptParam, int topLogprobs)
    {
        string? error = null, param = null, code = null;
        int contextLength = _engines[model.Name].MaxPositions;
        var stops = new List<string>();
        if (maxTokens < 1)
        {
            (error, param) = ($"{maxTokensParam} must be at least 1, got {maxTokens}.", maxTokensParam);
        }
        else if (request.Temperature is < 0f or > 2f || request.Temperature is float.NaN)
        {
            (error, param) = ($"temperature must be between 0 and 2, got {request.Temperature}.", "temperature");
        }
        else if (request.TopP is <= 0f or > 1f || request.TopP is float.NaN)
        {
            (error, param) = ($"top_p must be in (0, 1], got {request.TopP}.", "top_p");
        }
        else if (request.N is < 1 or > 8)
        {
            (error, param) = ($"n must be between 1 and 8, got {request.N}.", "n");
        }
        else if (ReadStops(request.Stop, stops) is { } stopError)
        {
            (error, param) = (stopError, "stop");
        }
        else if (request.ResponseFormat?.Type is not (null or "text" or "json_object"))
        {
            (error, param) = ($"response_format.type '{request.ResponseFormat!.Type}' is not supported; use text or json_object.", "response_format");
        }
        else if (Unsupported(request) is { } unsupported)
        {
            (error, param) = ($"{unsupported} is not supported by this server; leave it out.", unsupported);
        }
        else if (request.StreamOptions is not null && request.Stream != true)
        {
            (error, param) = ("stream_options is only allowed with stream: true.", "stream_options");
        }
        else
        {
            int longest = prompts.Max(p => p.Count);
            if (longest + maxTokens > contextLength)
            {
                (error, param, code) = ($"This model's maximum context length is {contextLength} tokens. However, you requested {longest + maxTokens} tokens ({longest} in the {promptParam}, {maxTokens} in the completion). Please reduce the length of the {promptParam} or {maxTokensParam}.", promptParam, "contextLengthlength_exceeded");
            }
        }

        if (error is not null)
        {
            await Fail(context, 400, error, "invalid_request_error", param, code).ConfigureAwait(false);
            return null;
        }

        float temperature = request.Temperature ?? 1f;
        int n = request.N ?? 1;
        var eos = model.Tokenizer!.SpecialTokens.Eos is { } e && model.Tokenizer.TokenToId(e) is { } eosId ? new[] { eosId } : [];
        var deadline = DateTime.UtcNow + _options.RequestTimeout;
        var engine = _engines[model.Name];
        var choices = new List<Choice>();
        for (int p = 0; p < prompts.Count; p++)
        {
            for (int i = 0; i < n; i++)
            {
                var options = new Generation.GenerationOptions
                {
                    MaxNewTokens = maxTokens,
                    DoSample = temperature > 0f,
                    Temperature = temperature > 0f ? temperature : 1f,
                    TopK = 0,
                    TopP = request.TopP ?? 1f,
                    Seed = request.Seed is { } seed ? seed + i : null,
                };
                var engineRequest = new EngineRequest(prompts[p], options, eos, topLogprobs, deadline, context.RequestAborted);
                choices.Add(new Choice(choices.Count, engineRequest, new Generation.StreamingDetokenizer(model.Tokenizer, stops)));
            }
        }

        for (int i = 0; i < choices.Count; i++)
        {
            var result = engine.Enqueue(choices[i].Request);
            if (result != EnqueueResult.Queued)
            {
                // Nothing of a refused request may keep running: cancel the choices already queued.
                for (int j = 0; j < i; j++)
                {
                    choices[j].Request.RequestStop();
                }

                if (result == EnqueueResult.ShuttingDown)
                {
                    await Fail(context, 503, "The server is shutting down; retry against another instance.", "server_error", null, "shutting_down").ConfigureAwait(false);
                    return null;
                }

                context.Response.Headers.RetryAfter = _options.RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
                await Fail(context, 429, $"Model {model.Name} is at capacity ({engine.MaxQueue} requests waiting); retry after {_options.RetryAfterSeconds} s.", "rate_limit_error", null, "rate_limit_exceeded").ConfigureAwait(false);
                return null;
            }
        }

        return new Job(model, choices, prompts.Sum(p => p.Count), request.Stream == true, request.StreamOptions?.IncludeUsage == true, request.ResponseFormat?.Type == "json_object", topLogprobs >= 0);
    }

    private async Task Run(HttpContext context, Job job, bool chat)
    {
        string id = (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        string name = job.Model.Name;
        var tokenizer = job.Model.Tokenizer!;
        using var writeLock = new SemaphoreSlim(1, 1);
        if (job.Stream)
        {
            context.Response.StatusCode = 200;
            context.Response.ContentType = "text/event-stream";
            context.Response.Headers.CacheControl = "no-cache";
            await context.Response.Body.FlushAsync(context.RequestAborted).ConfigureAwait(false);
        }

        async Task Send(object chunk)
        {
            await writeLock.WaitAsync().ConfigureAwait(false);
            try
            {
                var bytes = JsonSerializer.SerializeToUtf8Bytes(chunk, chunk.GetType(), Protocol.Json);
                await context.Response.Body.WriteAsync("data: "u8.ToArray(), context.RequestAborted).ConfigureAwait(false);
                await context.Response.Body.WriteAsync(bytes, context.RequestAborted).ConfigureAwait(false);
                await context.Response.Body.WriteAsync("\n\n"u8.ToArray(), context.RequestAborted).ConfigureAwait(false);
                await context.Response.Body.FlushAsync(context.RequestAborted).ConfigureAwait(false);
            }
            finally
            {
                writeLock.Release();
            }
        }

        async Task Consume(Choice choice)
        {
            bool first = true;
            await foreach (var e in choice.Request.Events.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
            {
                if (e.Finish is { } finish)
                {
                    choice.Finish = finish;
                    string rest = choice.Detokenizer.Stopped ? "" : choice.Detokenizer.Flush();
                    choice.Text.Append(rest);
                    if (job.Stream && finish is EngineFinish.Stop or EngineFinish.Length)
                    {
                        string reason = choice.Detokenizer.Stopped || finish == EngineFinish.Stop ? "stop" : "length";
                        await Send(Chunk(choice, rest, null, reason, first)).ConfigureAwait(false);
                    }

                    break;
                }

                if (choice.Detokenizer.Stopped)
                {
                    continue;
                }

                choice.Tokens++;
                bool isStopToken = e.Token >= 0 && choice.Request.StopTokenIds.Contains(e.Token);
                string piece = isStopToken ? "" : choice.Detokenizer.Push(e.Token);
                // The token's log-probability, with the offset of its text in the choice's output.
                List<(EngineEvent, int)>? logprob = job.Logprobs ? [(e, choice.Text.Length)] : null;
                choice.Logprobs.AddRange(logprob ?? []);
                choice.Text.Append(piece);
                if (choice.Detokenizer.Stopped)
                {
                    choice.Request.RequestStop();
                }

                if (job.Stream && (piece.Length > 0 || logprob is not null))
                {
                    await Send(Chunk(choice, piece, logprob, null, first)).ConfigureAwait(false);
                    first = false;
                }
            }
        }

        object Chunk(Choice choice, string piece, List<(EngineEvent, int)>? single, string? finishReason, bool first)
        {
            if (chat)
            {
                var delta = new ChatMessageOut(first ? "assistant" : null, finishReason is null || piece.Length > 0 ? piece : null);
                return new ChatCompletionResponse(id, "chat.completion.chunk", created, name, [new ChatChoice(choice.Index, null, delta, single is null ? null : ChatLogprobsOf(tokenizer, single), finishReason)], null);
            }

            return new CompletionResponse(id, "text_completion", created, name, [new CompletionChoice(choice.Index, piece, single is null ? null : CompletionLogprobsOf(tokenizer, single), finishReason)], null);
        }

        try
        {
            await Task.WhenAll(job.Choices.Select(Consume)).ConfigureAwait(false);
            context.RequestAborted.ThrowIfCancellationRequested();
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away: its sequences leave the batch at the next step (their token is RequestAborted).
            foreach (var choice in job.Choices)
            {
                choice.Request.RequestStop();
            }

            return;
        }

        int completionTokens = job.Choices.Sum(c => c.Tokens);
        var usage = new Usage(job.PromptTokens, completionTokens, job.PromptTokens + completionTokens);
        var failure = job.Choices.FirstOrDefault(c => c.Finish is EngineFinish.Deadline or EngineFinish.Cancelled or EngineFinish.Error);
        (int Status, string Message, string Type, string Code)? error = failure?.Finish switch
        {
            EngineFinish.Deadline => (504, $"The request ran past the server's deadline of {_options.RequestTimeout.TotalSeconds:G} s and was stopped.", "timeout_error", "timeout"),
            EngineFinish.Cancelled => (503, "The server shut down before the request finished.", "server_error", "shutting_down"),
            EngineFinish.Error => (500, $"The model failed on this request: {_engines[name].LastError}", "server_error", "model_error"),
            _ => null,
        };
        if (error is null && job.JsonObject)
        {
            var bad = job.Choices.FirstOrDefault(c => !ParsesAsJson(c.Text.ToString()));
            if (bad is not null)
            {
                error = (422, $"response_format json_object: choice {bad.Index}'s output is not valid JSON (this server checks the output but does not constrain decoding). Output: {Truncate(bad.Text.ToString(), 200)}", "invalid_response_format", "invalid_json");
            }
        }

        if (job.Stream)
        {
            if (error is { } streamed)
            {
                await Send(new ErrorResponse(new ErrorDetail(streamed.Message, streamed.Type, null, streamed.Code))).ConfigureAwait(false);
            }
            else if (job.IncludeUsage)
            {
                await Send(chat
                    ? new ChatCompletionResponse(id, "chat.completion.chunk", created, name, [], usage)
                    : new CompletionResponse(id, "text_completion", created, name, [], usage)).ConfigureAwait(false);
            }

            await context.Response.Body.WriteAsync("data: [DONE]\n\n"u8.ToArray(), CancellationToken.None).ConfigureAwait(false);
            await context.Response.Body.FlushAsync(CancellationToken.None).ConfigureAwait(false);
            return;
        }

        if (error is { } e)
        {
            await Fail(context, e.Status, e.Message, e.Type, e.Status == 422 ? "response_format" : null, e.Code).ConfigureAwait(false);
            return;
        }

        static string Reason(Choice c) => c.Detokenizer.Stopped || c.Finish == EngineFinish.Stop ? "stop" : "length";
        object body = chat
            ? new ChatCompletionResponse(id, "chat.completion", created, name,
                [.. job.Choices.Select(c => new ChatChoice(c.Index, new ChatMessageOut("assistant", c.Text.ToString()), null, job.Logprobs ? ChatLogprobsOf(tokenizer, c.Logprobs) : null, Reason(c)))], usage)
            : new CompletionResponse(id, "text_completion", created, name,
                [.. job.Choices.Select(c => new CompletionChoice(c.Index, c.Text.ToString(), job.Logprobs ? CompletionLogprobsOf(tokenizer, c.Logprobs) : null, Reason(c)))], usage);
        await Json(context, 200, body).ConfigureAwait(false);
    }

    private static CompletionLogprobs CompletionLogprobsOf(Text.TextTokenizer tokenizer, List<(EngineEvent Event, int Offset)> events)
    {
        var result = new CompletionLogprobs([], [], [], []);
        foreach (var (e, offset) in events)
        {
            result.Tokens.Add(tokenizer.Decode([e.Token], skipSpecialTokens: false));
            result.TokenLogprobs.Add(e.Logprob);
            var top = new Dictionary<string, float>(StringComparer.Ordinal);
            foreach (var alternative in e.TopLogprobs ?? [])
            {
                top.TryAdd(tokenizer.Decode([alternative.Token], skipSpecialTokens: false), alternative.Logprob);
            }

            result.TopLogprobs.Add(top);
            result.TextOffset.Add(offset);
        }

        return result;
    }

    private static ChatLogprobs ChatLogprobsOf(Text.TextTokenizer tokenizer, List<(EngineEvent Event, int Offset)> events)
    {
        var result = new ChatLogprobs([]);
        foreach (var (e, _) in events)
        {
            string token = tokenizer.Decode([e.Token], skipSpecialTokens: false);
            var top = (e.TopLogprobs ?? []).Select(a =>
            {
                string text = tokenizer.Decode([a.Token], skipSpecialTokens: false);
                return new ChatTopLogprob(text, a.Logprob, Bytes(text));
            }).ToList();
            result.Content.Add(new ChatTokenLogprob(token, e.Logprob, Bytes(token), top));
        }

        return result;
    }

    private static int[] Bytes(string text) => [.. Encoding.UTF8.GetBytes(text).Select(b => (int)b)];

    private static bool ParsesAsJson(string text)
    {
        try
        {
            using var document = JsonDocument.Parse(text);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static string Truncate(string text, int length) => text.Length <= length ? text : text[..length] + "…";

    /// <summary>prompt: a string, an array of strings, or an array of token ids; the error message, or null.</summary>
    private static string? ReadPrompts(JsonElement? prompt, Text.TextTokenizer tokenizer, int vocab, List<IReadOnlyList<int>> prompts)
    {
        if (prompt is not { } p || p.ValueKind == JsonValueKind.Null)
        {
            return "prompt is required: a string, an array of strings, or an array of token ids.";
        }

        if (p.ValueKind == JsonValueKind.String)
        {
            prompts.Add(Encode(tokenizer, p.GetString()!));
        }
        else if (p.ValueKind == JsonValueKind.Array && p.GetArrayLength() > 0 && p.EnumerateArray().All(x => x.ValueKind == JsonValueKind.Number))
        {
            var ids = new List<int>();
            foreach (var x in p.EnumerateArray())
            {
                if (!x.TryGetInt32(out int id) || id < 0 || id >= vocab)
                {
                    return $"prompt token {x} is not a token id in [0, {vocab}).";
                }

                ids.Add(id);
            }

            prompts.Add(ids);
        }
        else if (p.ValueKind == JsonValueKind.Array && p.GetArrayLength() is > 0 and <= 16 && p.EnumerateArray().All(x => x.ValueKind == JsonValueKind.String))
        {
            foreach (var x in p.EnumerateArray())
            {
                prompts.Add(Encode(tokenizer, x.GetString()!));
            }
        }
        else
        {
            return "prompt must be a string, an array of 1 to 16 strings, or a non-empty array of token ids.";
        }

        return prompts.Any(x => x.Count == 0) ? "A prompt encodes to no tokens; send at least one character." : null;
    }

    private static List<int> Encode(Text.TextTokenizer tokenizer, string text) =>
        [.. tokenizer.Encode(text, null, new Text.EncodeOptions { AddSpecialTokens = false }).Ids];

    /// <summary>The first field set that this server does not implement (rather than silently ignore), or null.</summary>
    private static string? Unsupported(GenerationRequestBase request)
    {
        static bool Empty(JsonElement? e) => e is null || e.Value.ValueKind == JsonValueKind.Null
            || (e.Value.ValueKind == JsonValueKind.Array && e.Value.GetArrayLength() == 0)
            || (e.Value.ValueKind == JsonValueKind.Object && !e.Value.EnumerateObject().Any());

        if (request.PresencePenalty is { } presence && presence != 0f)
        {
            return "presence_penalty";
        }

        if (request.FrequencyPenalty is { } frequency && frequency != 0f)
        {
            return "frequency_penalty";
        }

        return !Empty(request.LogitBias) ? "logit_bias" : !Empty(request.Tools) ? "tools" : null;
    }

    private static string? ReadStops(JsonElement? stop, List<string> stops)
    {
        if (stop is not { } s || s.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (s.ValueKind == JsonValueKind.String)
        {
            stops.Add(s.GetString()!);
        }
        else if (s.ValueKind == JsonValueKind.Array && s.GetArrayLength() <= 4 && s.EnumerateArray().All(x => x.ValueKind == JsonValueKind.String))
        {
            stops.AddRange(s.EnumerateArray().Select(x => x.GetString()!));
        }
        else
        {
            return "stop must be a string or an array of up to 4 strings.";
        }

        return stops.Any(string.IsNullOrEmpty) ? "stop sequences must not be empty." : null;
    }

    private static string? MessageText(JsonElement? content)
    {
        if (content is not { } c)
        {
            return null;
        }

        if (c.ValueKind == JsonValueKind.String)
        {
            return c.GetString();
        }

        if (c.ValueKind != JsonValueKind.Array)
        {
            return null;
        }

        var text = new StringBuilder();
        foreach (var part in c.EnumerateArray())
        {
            if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out var type) || type.GetString() != "text" || !part.TryGetProperty("text", out var value) || value.ValueKind != JsonValueKind.String)
            {
                return null;
            }

            text.Append(value.GetString());
        }

        return text.ToString();
    }

    // ---- encoders ----

    private async Task Embeddings(HttpContext context)
    {
        var request = await ReadJson<EmbeddingRequest>(context).ConfigureAwait(false);
        if (request is null || await FindModel(context, request.Model).ConfigureAwait(false) is not { } model)
        {
            return;
        }

        if (model.Embeddings is not { } pipeline)
        {
            await Fail(context, 400, $"model {model.Name} does not serve embeddings; use an encoder model (e.g. a sentence-transformers folder).", "invalid_request_error", "model", null).ConfigureAwait(false);
            return;
        }

        var texts = new List<string>();
        if (request.Input is { ValueKind: JsonValueKind.String } one)
        {
            texts.Add(one.GetString()!);
        }
        else if (request.Input is { ValueKind: JsonValueKind.Array } many && many.GetArrayLength() is > 0 and <= 2048 && many.EnumerateArray().All(x => x.ValueKind == JsonValueKind.String))
        {
            texts.AddRange(many.EnumerateArray().Select(x => x.GetString()!));
        }
        else
        {
            await Fail(context, 400, "input must be a string or an array of 1 to 2048 strings.", "invalid_request_error", "input", null).ConfigureAwait(false);
            return;
        }

        if (request.EncodingFormat is not (null or "float" or "base64"))
        {
            await Fail(context, 400, $"encoding_format '{request.EncodingFormat}' is not supported; use float or base64.", "invalid_request_error", "encoding_format", null).ConfigureAwait(false);
            return;
        }

        if (request.Dimensions is { } dimensions && dimensions != pipeline.Dimensions)
        {
            await Fail(context, 400, $"dimensions {dimensions}: model {model.Name} gives {pipeline.Dimensions}-dimensional embeddings and cannot shorten them; leave dimensions out.", "invalid_request_error", "dimensions", null).ConfigureAwait(false);
            return;
        }

        var gate = _encoderLocks[model.Name];
        await gate.WaitAsync(context.RequestAborted).ConfigureAwait(false);
        IReadOnlyList<float[]> vectors;
        int tokens;
        try
        {
            tokens = texts.Sum(t => pipeline.Tokenizer.Encode(t).Count);
            vectors = await Task.Run(() => pipeline.Embed(texts, ct: context.RequestAborted), context.RequestAborted).ConfigureAwait(false);
        }
        catch (ArgumentException e)
        {
            await Fail(context, 400, e.Message, "invalid_request_error", "input", null).ConfigureAwait(false);
            return;
        }
        finally
        {
            gate.Release();
        }

        bool base64 = request.EncodingFormat == "base64";
        var data = vectors.Select((v, i) => new EmbeddingEntry("embedding", i, base64 ? Convert.ToBase64String(System.Runtime.InteropServices.MemoryMarshal.AsBytes(v.AsSpan())) : v)).ToList();
        await Json(context, 200, new ListResponse<EmbeddingEntry>("list", data, model.Name, new Usage(tokens, 0, tokens))).ConfigureAwait(false);
    }

    private async Task FillMask(HttpContext context)
    {
        var request = await ReadJson<FillMaskRequest>(context).ConfigureAwait(false);
        if (request is null || await FindModel(context, request.Model).ConfigureAwait(false) is not { } model)
        {
            return;
        }

        if (model.FillMask is not { } pipeline)
        {
            await Fail(context, 400, $"model {model.Name} has no masked-LM head; fill-mask needs a BERT-style model with one.", "invalid_request_error", "model", null).ConfigureAwait(false);
            return;
        }

        if (string.IsNullOrEmpty(request.Input) || request.TopK is < 1 or > 100)
        {
            await Fail(context, 400, $"input must be a text holding {pipeline.MaskToken}, and top_k between 1 and 100.", "invalid_request_error", string.IsNullOrEmpty(request.Input) ? "input" : "top_k", null).ConfigureAwait(false);
            return;
        }

        var results = await RunEncoder(context, model, "input", () => pipeline.Run(request.Input, request.TopK ?? 5)).ConfigureAwait(false);
        if (results is null)
        {
            return;
        }

        var data = results.Select((r, i) => new FillMaskEntry(i, [.. r.Select(x => new FillMaskCandidate(x.Score, x.Token, x.TokenStr, x.Sequence))])).ToList();
        await Json(context, 200, new ListResponse<FillMaskEntry>("list", data, model.Name)).ConfigureAwait(false);
    }

    private async Task Classify(HttpContext context)
    {
        var request = await ReadJson<ClassifyRequest>(context).ConfigureAwait(false);
        if (request is null || await FindModel(context, request.Model).ConfigureAwait(false) is not { } model)
        {
            return;
        }

        if (model.Classifier is not { } pipeline)
        {
            await Fail(context, 400, $"model {model.Name} is not a sequence classifier; /v1/classify needs a *ForSequenceClassification checkpoint.", "invalid_request_error", "model", null).ConfigureAwait(false);
            return;
        }

        if (await ReadTexts(context, request.Input).ConfigureAwait(false) is not { } texts)
        {
            return;
        }

        if (request.TopK is < 0 or > 1000)
        {
            await Fail(context, 400, "top_k must be between 1 and 1000, or 0 for every label.", "invalid_request_error", "top_k", null).ConfigureAwait(false);
            return;
        }

        ClassificationFunction? function = null;
        if (request.FunctionToApply is { } name)
        {
            if (name is not ("sigmoid" or "softmax" or "none"))
            {
                await Fail(context, 400, $"function_to_apply '{name}' is not one of sigmoid, softmax, none.", "invalid_request_error", "function_to_apply", null).ConfigureAwait(false);
                return;
            }

            function = name switch { "sigmoid" => ClassificationFunction.Sigmoid, "softmax" => ClassificationFunction.Softmax, _ => ClassificationFunction.None };
        }

        int? topK = request.TopK switch { null => 1, 0 => null, var k => k };
        var results = await RunEncoder(context, model, "input", () => pipeline.RunBatch(texts, null, topK, function)).ConfigureAwait(false);
        if (results is null)
        {
            return;
        }

        var data = results.Select((r, i) => new ClassifyEntry(i, [.. r.Select(x => new ClassifyLabel(x.Label, x.Score))])).ToList();
        await Json(context, 200, new ListResponse<ClassifyEntry>("list", data, model.Name)).ConfigureAwait(false);
    }

    private async Task Ner(HttpContext context)
    {
        var request = await ReadJson<NerRequest>(context).ConfigureAwait(false);
        if (request is null || await FindModel(context, request.Model).ConfigureAwait(false) is not { } model)
        {
            return;
        }

        if (model.Tagger is not { } pipeline)
        {
            await Fail(context, 400, $"model {model.Name} is not a token classifier; /v1/ner needs a *ForTokenClassification checkpoint.", "invalid_request_error", "model", null).ConfigureAwait(false);
            return;
        }

        if (await ReadTexts(context, request.Input).ConfigureAwait(false) is not { } texts)
        {
            return;
        }

        AggregationStrategy aggregation;
        switch (request.AggregationStrategy ?? "simple")
        {
            case "none": aggregation = AggregationStrategy.None; break;
            case "simple": aggregation = AggregationStrategy.Simple; break;
            case "first": aggregation = AggregationStrategy.First; break;
            case "average": aggregation = AggregationStrategy.Average; break;
            case "max": aggregation = AggregationStrategy.Max; break;
            default:
                await Fail(context, 400, $"aggregation_strategy '{request.AggregationStrategy}' is not one of none, simple, first, average, max.", "invalid_request_error", "aggregation_strategy", null).ConfigureAwait(false);
                return;
        }

        var results = await RunEncoder(context, model, "input", () => pipeline.RunBatch(texts, aggregation)).ConfigureAwait(false);
        if (results is null)
        {
            return;
        }

        var data = results.Select((r, i) => new NerEntry(i, [.. r.Select(x => new NerEntity(x.Entity, x.Score, x.Word, x.Start, x.End, x.Index))])).ToList();
        await Json(context, 200, new ListResponse<NerEntry>("list", data, model.Name)).ConfigureAwait(false);
    }

    /// <summary>The texts of an <c>input</c> that is a string or an array of 1 to 2048 non-empty strings, or null after a 400.</summary>
    private static async Task<List<string>?> ReadTexts(HttpContext context, JsonElement? input)
    {
        var texts = new List<string>();
        if (input is { ValueKind: JsonValueKind.String } one)
        {
            texts.Add(one.GetString()!);
        }
        else if (input is { ValueKind: JsonValueKind.Array } many && many.GetArrayLength() is > 0 and <= 2048 && many.EnumerateArray().All(x => x.ValueKind == JsonValueKind.String))
        {
            texts.AddRange(many.EnumerateArray().Select(x => x.GetString()!));
        }

        if (texts.Count == 0 || texts.Any(string.IsNullOrWhiteSpace))
        {
            await Fail(context, 400, "input must be a non-empty string or an array of 1 to 2048 non-empty strings.", "invalid_request_error", "input", null).ConfigureAwait(false);
            return null;
        }

        return texts;
    }

    /// <summary>Runs an encoder pipeline under the model's lock, off the request thread; bad input (too long, say) is a 400 naming <paramref name="param"/>.</summary>
    private async Task<T?> RunEncoder<T>(HttpContext context, ServedModel model, string param, Func<T> run)
        where T : class
    {
        var gate = _encoderLocks[model.Name];
        await gate.WaitAsync(context.RequestAborted).ConfigureAwait(false);
        try
        {
            return await Task.Run(run, context.RequestAborted).ConfigureAwait(false);
        }
        catch (ArgumentException e)
        {
            await Fail(context, 400, e.Message, "invalid_request_error", param, null).ConfigureAwait(false);
            return null;
        }
        finally
        {
            gate.Release();
        }
    }

    // ---- helpers ----

    private async Task<ServedModel?> FindGenerative(HttpContext context, string? name)
    {
        var model = await FindModel(context, name).ConfigureAwait(false);
        if (model is not null && model.CausalLM is null)
        {
            await Fail(context, 400, $"model {model.Name} is an encoder; it serves {EncoderRoutes(model)}, not generation.", "invalid_request_error", "model", null).ConfigureAwait(false);
            return null;
        }

        return model;
    }

    private static string EncoderRoutes(ServedModel model) =>
        model.Classifier is not null ? "/v1/classify" : model.Tagger is not null ? "/v1/ner" : "/v1/embeddings and /v1/fill-mask";

    private async Task<ServedModel?> FindModel(HttpContext context, string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            await Fail(context, 400, $"model is required; served models: {string.Join(", ", _models.Keys)}.", "invalid_request_error", "model", null).ConfigureAwait(false);
            return null;
        }

        if (!_models.TryGetValue(name, out var model))
        {
            await Fail(context, 404, $"The model '{name}' does not exist; served models: {string.Join(", ", _models.Keys)} (GET /v1/models).", "invalid_request_error", "model", "model_not_found").ConfigureAwait(false);
            return null;
        }

        return model;
    }

    private static async Task<T?> ReadJson<T>(HttpContext context)
        where T : class
    {
        if (context.Request.ContentType is not { } type || !type.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
        {
            await Fail(context, 400, "Send the request body as JSON with 'Content-Type: application/json'.", "invalid_request_error", null, null).ConfigureAwait(false);
            return null;
        }

        try
        {
            var value = await JsonSerializer.DeserializeAsync<T>(context.Request.Body, Protocol.Json, context.RequestAborted).ConfigureAwait(false);
            if (value is null)
            {
                await Fail(context, 400, "The request body is JSON null; send an object.", "invalid_request_error", null, null).ConfigureAwait(false);
            }

            return value;
        }
        catch (JsonException e)
        {
            string? param = e.Path is { Length: > 2 } path ? path.TrimStart('$', '.') : null;
            await Fail(context, 400, $"The request body is not valid JSON for this route{(param is null ? "" : $" (at {param})")}: {e.Message}", "invalid_request_error", param, null).ConfigureAwait(false);
            return null;
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            await Fail(context, 413, $"The request body is larger than the server's limit ({context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize} bytes; --max-body-bytes).", "invalid_request_error", null, "request_too_large").ConfigureAwait(false);
            return null;
        }
    }

    private static Task Fail(HttpContext context, int status, string message, string type, string? param, string? code) =>
        context.Response.HasStarted ? Task.CompletedTask : Json(context, status, new ErrorResponse(new ErrorDetail(message, type, param, code)));

    private static Task Json(HttpContext context, int status, object body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(JsonSerializer.Serialize(body, body.GetType(), Protocol.Json), context.RequestAborted);
    }

    /// <summary>One choice in flight: its engine request, detokenizer and what it produced so far.</summary>
    private sealed class Choice(int index, EngineRequest request, Generation.StreamingDetokenizer detokenizer)
    {
        public int Index { get; } = index;

        public EngineRequest Request { get; } = request;

        public Generation.StreamingDetokenizer Detokenizer { get; } = detokenizer;

        public StringBuilder Text { get; } = new();

        public List<(EngineEvent Event, int Offset)> Logprobs { get; } = [];

        public int Tokens { get; set; }

        public EngineFinish? Finish { get; set; }
    }

    private sealed record Job(ServedModel Model, List<Choice> Choices, int PromptTokens, bool Stream, bool IncludeUsage, bool JsonObject, bool Logprobs);
}
