using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;

namespace Sharpformer.AI;

/// <summary>
/// A chat's history over any <see cref="IChatClient"/> (OpenAI's or a local model's): an optional system prompt,
/// then user and assistant turns. A turn that fails leaves the history as it was, so the user can try again.
/// </summary>
public sealed class ChatConversation
{
    private readonly List<ChatMessage> _messages = [];

    /// <summary>Starts a conversation.</summary>
    /// <param name="systemPrompt">The system message that opens every request; null or empty for none.</param>
    public ChatConversation(string? systemPrompt = null)
    {
        SystemPrompt = string.IsNullOrEmpty(systemPrompt) ? null : systemPrompt;
        Reset();
    }

    /// <summary>The system prompt, or null.</summary>
    public string? SystemPrompt { get; }

    /// <summary>The messages sent with the next request: the system prompt (if any), then the turns so far.</summary>
    public IReadOnlyList<ChatMessage> Messages => _messages;

    /// <summary>Forgets every turn; the system prompt stays.</summary>
    public void Reset()
    {
        _messages.Clear();
        if (SystemPrompt is not null)
        {
            _messages.Add(new ChatMessage(ChatRole.System, SystemPrompt));
        }
    }

    /// <summary>
    /// Sends <paramref name="userText"/> with the history, streams the reply's text to <paramref name="onText"/> as it
    /// arrives, and adds both turns to the history once the reply is complete.
    /// </summary>
    /// <param name="client">The chat client.</param>
    /// <param name="userText">The user's message.</param>
    /// <param name="options">The request options (may be null).</param>
    /// <param name="onText">Receives each piece of the reply's text.</param>
    /// <param name="ct">Cancels the request (the history is left as it was).</param>
    /// <returns>The whole reply, with its finish reason and usage when the client reports them.</returns>
    public async Task<ChatResponse> SendStreamingAsync(IChatClient client, string userText, ChatOptions? options, Action<string> onText, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(userText);
        ArgumentNullException.ThrowIfNull(onText);
        var request = new List<ChatMessage>(_messages) { new(ChatRole.User, userText) };
        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in client.GetStreamingResponseAsync(request, options, ct).ConfigureAwait(false))
        {
            updates.Add(update);
            if (update.Text.Length > 0)
            {
                onText(update.Text);
            }
        }

        var response = updates.ToChatResponse();
        Commit(userText, response);
        return response;
    }

    /// <summary>Sends <paramref name="userText"/> with the history without streaming and adds both turns to the history.</summary>
    /// <param name="client">The chat client.</param>
    /// <param name="userText">The user's message.</param>
    /// <param name="options">The request options (may be null).</param>
    /// <param name="ct">Cancels the request (the history is left as it was).</param>
    /// <returns>The reply.</returns>
    public async Task<ChatResponse> SendAsync(IChatClient client, string userText, ChatOptions? options = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(userText);
        var request = new List<ChatMessage>(_messages) { new(ChatRole.User, userText) };
        var response = await client.GetResponseAsync(request, options, ct).ConfigureAwait(false);
        Commit(userText, response);
        return response;
    }

    /// <summary>
    /// The conversation as JSON in OpenAI's message shape: <c>{"model": …, "messages": [{"role": "system"|"user"|"assistant", "content": "…"}]}</c>.
    /// </summary>
    /// <param name="model">The model name to record (may be null).</param>
    /// <returns>Indented JSON.</returns>
    public string ToJson(string? model)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            if (model is not null)
            {
                json.WriteString("model", model);
            }

            json.WriteStartArray("messages");
            foreach (var message in _messages)
            {
                json.WriteStartObject();
                json.WriteString("role", message.Role.Value);
                json.WriteString("content", message.Text);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>Writes <see cref="ToJson"/> to <paramref name="path"/> (replacing the file).</summary>
    /// <param name="path">The file to write.</param>
    /// <param name="model">The model name to record.</param>
    /// <param name="ct">Cancels the write.</param>
    /// <returns>A task that completes when the file is written.</returns>
    public Task SaveAsync(string path, string? model, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        return File.WriteAllTextAsync(path, ToJson(model) + "\n", ct);
    }

    private void Commit(string userText, ChatResponse response)
    {
        _messages.Add(new ChatMessage(ChatRole.User, userText));
        _messages.Add(new ChatMessage(ChatRole.Assistant, response.Text));
    }
}
