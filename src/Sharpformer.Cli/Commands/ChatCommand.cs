using System.CommandLine;
using System.Text.Json;
using Microsoft.Extensions.AI;
using Sharpformer.AI;
using Sharpformer.Cli.Chat;
using Sharpformer.IO.Config;
using Sharpformer.IO.SafeTensors;
using Sharpformer.NN;
using Sharpformer.Pipelines;
using Sharpformer.Tensors;

namespace Sharpformer.Cli.Commands;

/// <summary>What <c>chat</c> was asked to do (its arguments and options).</summary>
internal sealed record ChatSettings
{
    public string? Prompt { get; init; }

    public string Model { get; init; } = "gpt-4o";

    public string? BaseUrl { get; init; }

    public string? System { get; init; }

    public bool Json { get; init; }

    public int? MaxTokens { get; init; }

    public float? Temperature { get; init; }

    public double TimeoutSeconds { get; init; } = 60;

    public int MaxRetries { get; init; } = 3;

    public string? PromptFormat { get; init; }

    public DType? KvCache { get; init; }
}

/// <summary>Where <c>chat</c> reads and writes, and what it reads the key from: the console in the program, fakes in tests.</summary>
internal sealed record ChatHost(TextReader Input, bool InputIsTerminal, TextWriter Output, TextWriter Error, string WorkingDirectory, Func<string, string?> Environment)
{
    /// <summary>Waits between retries; null means Task.Delay.</summary>
    public Func<TimeSpan, CancellationToken, Task>? Wait { get; init; }
}

/// <summary>
/// <c>sharpformer chat ["prompt"] [--model gpt-4o|folder|org/name] [--base-url URL] [--system TEXT] [--json]</c>: chats
/// through Microsoft.Extensions.AI's IChatClient — OpenAI's (the official SDK; key from OPENAI_API_KEY or a .env file)
/// or a local causal LM's. With a prompt (or text on standard input) it answers once; otherwise it is a streaming REPL
/// with history and /reset, /save &lt;file&gt;, /exit.
/// </summary>
internal static class ChatCommand
{
    private const string ReplHelp = "commands: /reset (forget the conversation), /save <file> (write it as JSON), /exit";

    public static Command Create()
    {
        var prompt = new Argument<string?>("prompt") { Description = "Ask once and exit (also: pipe the prompt on standard input). Without it, a REPL starts.", Arity = ArgumentArity.ZeroOrOne };
        var model = new Option<string>("--model")
        {
            Description = "An OpenAI model name (default gpt-4o), or a local causal LM: a folder, a llama.cpp .gguf file or a Hub repo id (org/name). With --base-url the name always goes to that server.",
            DefaultValueFactory = _ => "gpt-4o",
        };
        var baseUrl = new Option<string?>("--base-url") { Description = "An OpenAI-compatible server's API root, e.g. http://127.0.0.1:8000/v1 (sharpformer serve, vLLM, llama.cpp server)." };
        var system = new Option<string?>("--system") { Description = "A system prompt that opens the conversation." };
        var json = new Option<bool>("--json") { Description = "One-shot only: print the reply as JSON (content, finish_reason, usage) instead of streaming text." };
        var maxTokens = new Option<int?>("--max-tokens") { Description = "Tokens to generate at most per reply." };
        var temperature = new Option<float?>("--temperature") { Description = "Sampling temperature (0 = greedy for a local model)." };
        var timeout = new Option<double>("--timeout") { Description = "Seconds to wait for the server before giving up on an attempt.", DefaultValueFactory = _ => 60 };
        var maxRetries = new Option<int>("--max-retries") { Description = "Retries after a 429, 5xx, timeout or network error (waiting what Retry-After asks, else 1, 2, 4… s).", DefaultValueFactory = _ => 3 };
        var promptFormat = new Option<string?>("--prompt-format")
        {
            Description = $"Local models: how messages become the prompt. By default the model's own chat template (tokenizer_config.json chat_template); '{TranscriptPromptFormatter.Name}' is a plain System:/User:/Assistant: transcript for base models without one, such as GPT-2.",
        };
        promptFormat.AcceptOnlyFromAmong(TranscriptPromptFormatter.Name);
        var kvCache = GenerateCommand.KvCacheOption();
        var command = new Command("chat", "Chat with gpt-4o through the OpenAI API (key from OPENAI_API_KEY or .env), any OpenAI-compatible server, or a local model.")
        {
            prompt, model, baseUrl, system, json, maxTokens, temperature, timeout, maxRetries, promptFormat, kvCache,
        };
        command.SetAction((parse, ct) =>
        {
            var settings = new ChatSettings
            {
                Prompt = parse.GetValue(prompt),
                Model = parse.GetValue(model)!,
                BaseUrl = parse.GetValue(baseUrl),
                System = parse.GetValue(system),
                Json = parse.GetValue(json),
                MaxTokens = parse.GetValue(maxTokens),
                Temperature = parse.GetValue(temperature),
                TimeoutSeconds = parse.GetValue(timeout),
                MaxRetries = parse.GetValue(maxRetries),
                PromptFormat = parse.GetValue(promptFormat),
                KvCache = GenerateCommand.ParseKvCache(parse.GetValue(kvCache)),
            };
            var host = new ChatHost(Console.In, !Console.IsInputRedirected, parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error,
                Directory.GetCurrentDirectory(), Environment.GetEnvironmentVariable);
            return RunAsync(settings, host, ct);
        });
        return command;
    }

    /// <summary>True when <paramref name="model"/> names a local model: no --base-url, and a folder, a .gguf file or an "org/name" repo id.</summary>
    internal static bool IsLocal(string model, string? baseUrl) =>
        baseUrl is null && (Directory.Exists(model) || Sharpformer.Models.Llama.LlamaGguf.IsGgufFile(model) || model.Contains('/', StringComparison.Ordinal));

    internal static async Task<int> RunAsync(ChatSettings settings, ChatHost host, CancellationToken ct)
    {
        OpenAIChat? remote = null;
        IChatClient? client = null;
        try
        {
            if (settings.TimeoutSeconds is not (> 0 and <= 3600))
            {
                throw new ArgumentException($"--timeout {settings.TimeoutSeconds} must be in (0, 3600] seconds.");
            }

            if (settings.MaxRetries is < 0 or > 10)
            {
                throw new ArgumentException($"--max-retries {settings.MaxRetries} must be in 0..10.");
            }

            if (settings.MaxTokens is < 1)
            {
                throw new ArgumentException($"--max-tokens {settings.MaxTokens} must be at least 1.");
            }

            if (settings.Temperature is { } t && (!float.IsFinite(t) || t < 0 || t > 2))
            {
                throw new ArgumentException(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"--temperature {t} must be in [0, 2] (0 = greedy for a local model; OpenAI accepts up to 2)."));
            }

            string? oneShot = settings.Prompt;
            if (oneShot is null && !host.InputIsTerminal)
            {
                oneShot = (await host.Input.ReadToEndAsync(ct).ConfigureAwait(false)).Trim();
            }

            if (oneShot is { Length: 0 })
            {
                throw new ArgumentException("the prompt is empty; pass it as an argument or on standard input, or run chat without one for the REPL.");
            }

            if (settings.Json && oneShot is null)
            {
                throw new ArgumentException("--json is for one-shot use: pass a prompt (argument or standard input).");
            }

            if (IsLocal(settings.Model, settings.BaseUrl))
            {
                var formatter = settings.PromptFormat == TranscriptPromptFormatter.Name ? TranscriptPromptFormatter.Instance : null;
                client = await LocalChatClient.FromPretrainedAsync(settings.Model, new LocalChatClientOptions { PromptFormatter = formatter, KvCacheType = settings.KvCache }, ct).ConfigureAwait(false);
            }
            else
            {
                if (settings.PromptFormat is not null)
                {
                    throw new ArgumentException("--prompt-format is for local models; a server applies its own chat template.");
                }

                remote = OpenAIChat.Create(settings.Model, settings.BaseUrl, host.WorkingDirectory, host.Environment, TimeSpan.FromSeconds(settings.TimeoutSeconds), settings.MaxRetries, host.Wait);
                client = remote.Client;
            }

            var options = new ChatOptions { ModelId = settings.Model, MaxOutputTokens = settings.MaxTokens, Temperature = settings.Temperature };
            var conversation = new ChatConversation(settings.System);
            if (oneShot is not null)
            {
                return await OneShotAsync(client, conversation, oneShot, options, settings, host, remote, ct).ConfigureAwait(false);
            }

            return await ReplAsync(client, conversation, options, settings, host, remote, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or ModelUnavailableException or ModelConfigException or ModelLoadException
            or InvalidDataException or SafeTensorsException or FormatException or IOException)
        {
            await WriteErrorAsync(host, remote, e.Message).ConfigureAwait(false);
            return e is ArgumentException ? 2 : 1;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            await host.Error.WriteLineAsync().ConfigureAwait(false);
            return 130;
        }
        finally
        {
            client?.Dispose();
        }
    }

    private static async Task<int> OneShotAsync(IChatClient client, ChatConversation conversation, string prompt, ChatOptions options, ChatSettings settings,
        ChatHost host, OpenAIChat? remote, CancellationToken ct)
    {
        try
        {
            if (settings.Json)
            {
                var response = await conversation.SendAsync(client, prompt, options, ct).ConfigureAwait(false);
                await host.Output.WriteLineAsync(ToJson(response, settings.Model)).ConfigureAwait(false);
            }
            else
            {
                await conversation.SendStreamingAsync(client, prompt, options, piece => Write(host.Output, piece), ct).ConfigureAwait(false);
                await host.Output.WriteLineAsync().ConfigureAwait(false);
            }

            return 0;
        }
        catch (Exception e) when (Describe(e, remote, ct) is { } line)
        {
            await WriteErrorAsync(host, remote, line).ConfigureAwait(false);
            return 1;
        }
    }

    private static async Task<int> ReplAsync(IChatClient client, ChatConversation conversation, ChatOptions options, ChatSettings settings,
        ChatHost host, OpenAIChat? remote, CancellationToken ct)
    {
        await host.Error.WriteLineAsync($"chat with {settings.Model}; {ReplHelp}").ConfigureAwait(false);
        while (true)
        {
            await host.Output.WriteAsync("> ").ConfigureAwait(false);
            await host.Output.FlushAsync(ct).ConfigureAwait(false);
            string? line = await host.Input.ReadLineAsync(ct).ConfigureAwait(false);
            if (line is null)
            {
                await host.Output.WriteLineAsync().ConfigureAwait(false);
                return 0;
            }

            line = line.Trim();
            if (line.Length == 0)
            {
                continue;
            }

            if (line.StartsWith('/'))
            {
                string[] words = line.Split(' ', 2, StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
                switch (words[0])
                {
                    case "/exit" or "/quit":
                        return 0;
                    case "/reset":
                        conversation.Reset();
                        await host.Error.WriteLineAsync("(conversation reset)").ConfigureAwait(false);
                        break;
                    case "/save" when words.Length == 2:
                        string path = Path.GetFullPath(Path.Combine(host.WorkingDirectory, words[1]));
                        try
                        {
                            await conversation.SaveAsync(path, settings.Model, ct).ConfigureAwait(false);
                            await host.Error.WriteLineAsync($"(saved {conversation.Messages.Count} messages to {path})").ConfigureAwait(false);
                        }
                        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                        {
                            await WriteErrorAsync(host, remote, $"cannot write {path}: {e.Message}").ConfigureAwait(false);
                        }

                        break;
                    default:
                        await host.Error.WriteLineAsync($"unknown command '{words[0]}'; {ReplHelp}").ConfigureAwait(false);
                        break;
                }

                continue;
            }

            try
            {
                await conversation.SendStreamingAsync(client, line, options, piece => Write(host.Output, piece), ct).ConfigureAwait(false);
                await host.Output.WriteLineAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (Describe(e, remote, ct) is { } message)
            {
                // The turn failed and left the history as it was: say why in one line and let the user go on.
                await host.Output.WriteLineAsync().ConfigureAwait(false);
                await WriteErrorAsync(host, remote, message).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The one line for a failed turn: the OpenAI client's failures, or a local model's bad request; null for anything else.</summary>
    private static string? Describe(Exception e, OpenAIChat? remote, CancellationToken ct) =>
        remote?.Describe(e, ct) ?? (e is ArgumentException or NotSupportedException ? e.Message : null);

    private static void Write(TextWriter output, string piece)
    {
        output.Write(piece);
        output.Flush();
    }

    private static Task WriteErrorAsync(ChatHost host, OpenAIChat? remote, string message)
    {
        string line = message.ReplaceLineEndings(" ");
        return host.Error.WriteLineAsync("error: " + (remote is null ? line : remote.Scrub(line)));
    }

    private static string ToJson(ChatResponse response, string model)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("model", response.ModelId ?? model);
            json.WriteString("role", "assistant");
            json.WriteString("content", response.Text);
            if (response.FinishReason is { } finish)
            {
                json.WriteString("finish_reason", finish.Value);
            }
            else
            {
                json.WriteNull("finish_reason");
            }

            json.WriteStartObject("usage");
            WriteCount(json, "input_tokens", response.Usage?.InputTokenCount);
            WriteCount(json, "output_tokens", response.Usage?.OutputTokenCount);
            WriteCount(json, "total_tokens", response.Usage?.TotalTokenCount);
            json.WriteEndObject();
            json.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void WriteCount(Utf8JsonWriter json, string name, long? count)
    {
        if (count is { } value)
        {
            json.WriteNumber(name, value);
        }
        else
        {
            json.WriteNull(name);
        }
    }
}
