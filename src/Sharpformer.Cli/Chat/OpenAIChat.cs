using System.ClientModel;
using System.Net;
using Microsoft.Extensions.AI;
using OpenAI;
using Sharpformer.AI;

namespace Sharpformer.Cli.Chat;

/// <summary>
/// The OpenAI side of <c>chat</c>: the API key (environment, else .env), the official SDK's client with our retry
/// policy and timeout, seen through Microsoft.Extensions.AI's <see cref="IChatClient"/> — so the local side is the
/// same interface — and one clear line per failure, with the key scrubbed from anything a server echoes.
/// </summary>
internal sealed class OpenAIChat
{
    /// <summary>The variable holding the key.</summary>
    public const string KeyVariable = "OPENAI_API_KEY";

    /// <summary>OpenAI's API.</summary>
    public static readonly Uri DefaultEndpoint = new("https://api.openai.com/v1");

    /// <summary>Sent to an OpenAI-compatible server (--base-url) when no key is set: the SDK insists on one, local servers ignore it.</summary>
    public const string PlaceholderKey = "sk-no-key";

    private OpenAIChat(IChatClient client, string key, string keySource, Uri endpoint, ChatRetryPolicy retry, TimeSpan timeout)
    {
        Client = client;
        Key = key;
        KeySource = keySource;
        Endpoint = endpoint;
        Retry = retry;
        Timeout = timeout;
    }

    public IChatClient Client { get; }

    public string Key { get; }

    public string KeySource { get; }

    public Uri Endpoint { get; }

    public ChatRetryPolicy Retry { get; }

    public TimeSpan Timeout { get; }

    /// <summary>
    /// Finds the key and builds the client; throws <see cref="ArgumentException"/> (a usage error) when OpenAI itself
    /// is the target and no key is set, naming where it was looked for (never a value).
    /// </summary>
    public static OpenAIChat Create(string model, string? baseUrl, string workingDirectory, Func<string, string?> environment, TimeSpan timeout, int maxRetries,
        Func<TimeSpan, CancellationToken, Task>? wait)
    {
        Uri endpoint = DefaultEndpoint;
        if (baseUrl is not null && (!Uri.TryCreate(baseUrl, UriKind.Absolute, out endpoint!) || endpoint.Scheme is not ("http" or "https")))
        {
            throw new ArgumentException($"--base-url '{baseUrl}' is not an http(s) URL; pass the API root, e.g. http://127.0.0.1:8000/v1.");
        }

        string key;
        string source;
        if (DotEnv.Lookup(KeyVariable, workingDirectory, environment) is { } found)
        {
            (key, source) = found;
        }
        else if (baseUrl is not null)
        {
            (key, source) = (PlaceholderKey, "placeholder");
        }
        else
        {
            throw new ArgumentException(
                $"no OpenAI API key: set {KeyVariable} in the environment or put {KeyVariable}=... in a .env file (looked for in {Path.GetFullPath(workingDirectory)} and its parents).");
        }

        var retry = new ChatRetryPolicy(maxRetries, wait);
        var options = new OpenAIClientOptions { Endpoint = endpoint, RetryPolicy = retry, NetworkTimeout = timeout };
        var client = new OpenAI.Chat.ChatClient(model, new ApiKeyCredential(key), options).AsIChatClient();
        return new OpenAIChat(client, key, source, endpoint, retry, timeout);
    }

    /// <summary>One line (without "error: ") for a failed request, or null when the exception is not a request failure.</summary>
    public string? Describe(Exception exception, CancellationToken ct)
    {
        if (exception is AggregateException { InnerExceptions.Count: > 0 } retries)
        {
            // The retry policy gathers every try's failure; the last one says what is wrong now.
            return Describe(retries.InnerExceptions[^1], ct);
        }

        string? line = exception switch
        {
            ClientResultException { Status: (int)HttpStatusCode.Unauthorized } =>
                $"401 Unauthorized: {Endpoint} rejected the API key (from {KeySource}); check {KeyVariable}.",
            ClientResultException { Status: 429 } e => RateLimited(e),
            ClientResultException { Status: 0 } e => $"cannot reach {Endpoint}: {Innermost(e).Message}",
            ClientResultException e => $"{e.Status} from {Endpoint}: {ServerMessage(e)}",
            OperationCanceledException when !ct.IsCancellationRequested =>
                $"no answer from {Endpoint} within {Timeout.TotalSeconds:0.###} s (--timeout), after {Retry.Attempts} attempt(s).",
            HttpRequestException e => $"cannot reach {Endpoint}: {e.Message}",
            IOException e => $"the connection to {Endpoint} broke: {e.Message}",
            _ => null,
        };
        return line is null ? null : Scrub(line);
    }

    /// <summary>Replaces the key wherever it appears.</summary>
    public string Scrub(string text) => Key.Length > 0 ? text.Replace(Key, "[redacted]", StringComparison.Ordinal) : text;

    private string RateLimited(ClientResultException e)
    {
        string asked = Retry.LastRetryAfter is { } wait ? $"; the server asks to wait {wait.TotalSeconds:0.###} s" : "";
        string reason = Retry.LastRetryAfter > ChatRetryPolicy.MaxWait
            ? $" (longer than the {ChatRetryPolicy.MaxWait.TotalSeconds:0} s chat waits)"
            : $" after {Retry.Attempts} attempt(s) (--max-retries {Retry.MaxRetries})";
        return $"429 Too Many Requests: rate-limited{reason}{asked}. {ServerMessage(e)}".TrimEnd();
    }

    /// <summary>The error message in OpenAI's error body ({"error": {"message": …}}), else the status text.</summary>
    private static string ServerMessage(ClientResultException e)
    {
        var response = e.GetRawResponse();
        if (response is not null)
        {
            try
            {
                using var json = System.Text.Json.JsonDocument.Parse(response.Content.ToMemory());
                if (json.RootElement.TryGetProperty("error", out var error) && error.ValueKind == System.Text.Json.JsonValueKind.Object
                    && error.TryGetProperty("message", out var message) && message.GetString() is { Length: > 0 } text)
                {
                    return text.ReplaceLineEndings(" ");
                }
            }
            catch (System.Text.Json.JsonException)
            {
                // Not OpenAI's error shape: fall back to the status line.
            }
            catch (InvalidOperationException)
            {
                // The body was streamed and is gone.
            }

            return response.ReasonPhrase;
        }

        return e.Message.ReplaceLineEndings(" ");
    }

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null)
        {
            e = e.InnerException;
        }

        return e;
    }
}
