using System.ClientModel;
using Microsoft.Extensions.AI;
using OpenAI;
using OpenAI.Chat;
using Sharpformer.AI;

namespace Sharpformer.Cli.Tests.Chat;

/// <summary>docs/chat.md's promise: the same IChatClient code runs on OpenAI's SDK and on a local model.</summary>
public class SwapTests
{
    /// <summary>The application code, written once against IChatClient.</summary>
    private static async Task<(string Streamed, ChatResponse Response)> AskAsync(IChatClient client)
    {
        var options = new ChatOptions { MaxOutputTokens = 6 };
        var streamed = new System.Text.StringBuilder();
        await foreach (var update in client.GetStreamingResponseAsync("Once upon a time", options))
        {
            streamed.Append(update.Text);
        }

        return (streamed.ToString(), await client.GetResponseAsync("Once upon a time", options));
    }

    [Fact]
    public async Task SameCode_OpenAIClientAndLocalModel()
    {
        await using var server = await FakeOpenAIServer.StartAsync();
        using IChatClient openAI = new ChatClient("gpt-4o", new ApiKeyCredential("sk-test"), new OpenAIClientOptions { Endpoint = new Uri(server.BaseUrl) }).AsIChatClient();
        var (remoteStreamed, remote) = await AskAsync(openAI);
        Assert.Equal("reply 1: Once upon a time", remoteStreamed);
        Assert.Equal("reply 2: Once upon a time", remote.Text);
        Assert.NotNull(remote.Usage?.OutputTokenCount);

        using IChatClient local = await LocalChatClient.FromPretrainedAsync(GenerateCommandTests.ModelFolder.Value, new() { PromptFormatter = TranscriptPromptFormatter.Instance });
        var (localStreamed, response) = await AskAsync(local);
        Assert.Equal(response.Text, localStreamed); // greedy by default: the same reply both ways
        Assert.InRange(response.Usage!.OutputTokenCount!.Value, 1, 6);
    }
}
