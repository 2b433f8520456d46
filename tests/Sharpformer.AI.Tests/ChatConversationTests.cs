using System.Text.Json;
using Microsoft.Extensions.AI;

namespace Sharpformer.AI.Tests;

public class ChatConversationTests
{
    /// <summary>Replies "reply N" and records what it was sent; fails when told to.</summary>
    private sealed class EchoClient : IChatClient
    {
        public List<List<ChatMessage>> Requests { get; } = [];

        public bool Fail { get; set; }

        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            Requests.Add([.. messages]);
            return Fail ? throw new InvalidOperationException("down") : Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, $"reply {Requests.Count}")));
        }

        public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
            [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            Requests.Add([.. messages]);
            await Task.Yield();
            yield return new ChatResponseUpdate(ChatRole.Assistant, "reply ");
            if (Fail)
            {
                throw new InvalidOperationException("down");
            }

            yield return new ChatResponseUpdate(ChatRole.Assistant, Requests.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose()
        {
        }
    }

    [Fact]
    public async Task History_SystemPrompt_Reset_AndFailedTurns()
    {
        var client = new EchoClient();
        var chat = new ChatConversation("be brief");
        var pieces = new List<string>();

        await chat.SendStreamingAsync(client, "one", null, pieces.Add);
        await chat.SendAsync(client, "two");

        Assert.Equal(["reply ", "1"], pieces);
        Assert.Equal(["system:be brief", "user:one", "assistant:reply 1", "user:two"], client.Requests[1].Select(m => $"{m.Role}:{m.Text}"));
        Assert.Equal(5, chat.Messages.Count);

        client.Fail = true;
        await Assert.ThrowsAsync<InvalidOperationException>(() => chat.SendStreamingAsync(client, "three", null, _ => { }));
        Assert.Equal(5, chat.Messages.Count); // the failed turn left no trace

        chat.Reset();
        Assert.Equal(["system:be brief"], chat.Messages.Select(m => $"{m.Role}:{m.Text}"));
    }

    [Fact]
    public async Task SaveAsync_WritesOpenAIShapedMessages()
    {
        var chat = new ChatConversation();
        await chat.SendAsync(new EchoClient(), "hi \"there\"");
        string path = Path.Combine(Path.GetTempPath(), $"sharpformer-chat-{Guid.NewGuid():N}.json");
        await chat.SaveAsync(path, "gpt-4o");

        using var json = JsonDocument.Parse(File.ReadAllText(path));
        Assert.Equal("gpt-4o", json.RootElement.GetProperty("model").GetString());
        var messages = json.RootElement.GetProperty("messages").EnumerateArray().Select(m => (m.GetProperty("role").GetString(), m.GetProperty("content").GetString())).ToList();
        Assert.Equal([("user", "hi \"there\""), ("assistant", "reply 1")], messages);
    }
}
