using Microsoft.Extensions.AI;
using Sharpformer.Generation;
using Sharpformer.IO.Hub;
using Sharpformer.Models;
using Sharpformer.Pipelines;
using Sharpformer.Text;

namespace Sharpformer.AI.Tests;

public class LocalChatClientTests
{
    private static readonly ChatMessage[] Conversation =
    [
        new(ChatRole.System, "You answer briefly."),
        new(ChatRole.User, "Hello there"),
        new(ChatRole.Assistant, "Hi."),
        new(ChatRole.User, "Tell me a story"),
    ];

    private static PipelineOptions Offline() => new()
    {
        Hub = new HubOptions { Offline = true, CacheDir = Path.Combine(Path.GetTempPath(), $"sharpformer-empty-cache-{Guid.NewGuid():N}") },
    };

    private static Task<LocalChatClient> LoadAsync() => LocalChatClient.FromPretrainedAsync(TinyChatModel.Folder,
        new LocalChatClientOptions { PromptFormatter = TranscriptPromptFormatter.Instance, Source = Offline() });

    /// <summary>The same model and tokenizer, driven straight through TextGenerator: the oracle for the client.</summary>
    private static (TextGenerator Generator, TextTokenizer Tokenizer, string Prompt) Reference()
    {
        var generator = new TextGenerator(AutoModelForCausalLM.FromPretrained(TinyChatModel.Folder));
        var tokenizer = AutoTokenizer.FromPretrained(TinyChatModel.Folder);
        return (generator, tokenizer, TranscriptPromptFormatter.Instance.Format(Conversation));
    }

    private static async Task<(string Text, List<ChatResponseUpdate> Updates)> StreamAsync(LocalChatClient client, ChatOptions? options)
    {
        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in client.GetStreamingResponseAsync(Conversation, options))
        {
            updates.Add(update);
        }

        return (string.Concat(updates.Select(u => u.Text)), updates);
    }

    [Fact]
    public async Task Greedy_StreamingEqualsNonStreamingEqualsTextGenerator()
    {
        using var client = await LoadAsync();
        var options = new ChatOptions { MaxOutputTokens = 24 };

        var response = await client.GetResponseAsync(Conversation, options);
        var (streamed, updates) = await StreamAsync(client, options);

        var (generator, tokenizer, prompt) = Reference();
        string expected = generator.Generate(tokenizer, prompt, new GenerationOptions { MaxNewTokens = 24, StopSequences = TranscriptPromptFormatter.Instance.StopSequences });
        Assert.Equal(expected, response.Text);
        Assert.Equal(expected, streamed);
        Assert.True(updates.Count > 1, "the reply should arrive in several updates");
        Assert.All(updates, u => Assert.Equal(ChatRole.Assistant, u.Role));
        Assert.Single(updates, u => u.FinishReason is not null);
        Assert.NotNull(updates[^1].FinishReason);
        Assert.Equal(ChatRole.Assistant, Assert.Single(response.Messages).Role);
        Assert.Equal(TinyChatModel.Folder, response.ModelId);
    }

    [Fact]
    public async Task Usage_CountsPromptAndGeneratedTokens()
    {
        using var client = await LoadAsync();
        var response = await client.GetResponseAsync(Conversation, new ChatOptions { MaxOutputTokens = 9 });

        var (generator, tokenizer, prompt) = Reference();
        var promptIds = tokenizer.Encode(prompt).Ids;
        var eos = tokenizer.TokenToId(tokenizer.SpecialTokens.Eos!)!.Value;
        var generated = generator.Generate(promptIds, new GenerationOptions { MaxNewTokens = 9, StopTokenIds = [eos] });
        Assert.Equal(promptIds.Count, response.Usage!.InputTokenCount);
        Assert.Equal(generated.Tokens.Count, response.Usage.OutputTokenCount);
        Assert.Equal(promptIds.Count + generated.Tokens.Count, response.Usage.TotalTokenCount);
        Assert.Equal(generated.Reason == FinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop, response.FinishReason);

        // Streaming reports the same counts in a UsageContent on its last update.
        var (_, updates) = await StreamAsync(client, new ChatOptions { MaxOutputTokens = 9 });
        var usage = Assert.Single(updates.SelectMany(u => u.Contents).OfType<UsageContent>()).Details;
        Assert.Equal(response.Usage.InputTokenCount, usage.InputTokenCount);
        Assert.Equal(response.Usage.OutputTokenCount, usage.OutputTokenCount);
    }

    [Fact]
    public async Task MaxOutputTokens_IsHonoured()
    {
        using var client = await LoadAsync();
        foreach (int max in new[] { 1, 5, 17 })
        {
            var response = await client.GetResponseAsync(Conversation, new ChatOptions { MaxOutputTokens = max, Temperature = 1f, Seed = 3 });
            Assert.InRange(response.Usage!.OutputTokenCount!.Value, 1, max);
            if (response.FinishReason == ChatFinishReason.Length)
            {
                Assert.Equal(max, response.Usage.OutputTokenCount);
            }
        }
    }

    [Fact]
    public async Task Seed_ReproducesSampling_AndMatchesTheSampler()
    {
        using var client = await LoadAsync();
        var options = new ChatOptions { MaxOutputTokens = 30, Temperature = 1f, Seed = 5 };

        string first = (await client.GetResponseAsync(Conversation, options)).Text;
        string again = (await client.GetResponseAsync(Conversation, options)).Text;
        var streamed = await StreamAsync(client, options);
        string other = (await client.GetResponseAsync(Conversation, new ChatOptions { MaxOutputTokens = 30, Temperature = 1f, Seed = 6 })).Text;

        var (generator, tokenizer, prompt) = Reference();
        string expected = generator.Generate(tokenizer, prompt, new GenerationOptions
        {
            MaxNewTokens = 30,
            DoSample = true,
            Temperature = 1f,
            TopK = 0,
            TopP = 1f,
            Seed = 5,
            StopSequences = TranscriptPromptFormatter.Instance.StopSequences,
        });
        Assert.Equal(expected, first);
        Assert.Equal(first, again);
        Assert.Equal(first, streamed.Text);
        Assert.NotEqual(first, other);
    }

    [Fact]
    public async Task StopSequences_CutTheReply()
    {
        using var client = await LoadAsync();
        string full = (await client.GetResponseAsync(Conversation, new ChatOptions { MaxOutputTokens = 40 })).Text;
        int at = Enumerable.Range(3, Math.Max(0, full.Length - 3)).FirstOrDefault(i => char.IsAsciiLetterOrDigit(full[i]), -1);
        Assert.True(at > 0, $"the greedy reply '{full}' should hold an ASCII letter or digit after its third character to cut at");
        string stop = full[at].ToString();

        var response = await client.GetResponseAsync(Conversation, new ChatOptions { MaxOutputTokens = 40, StopSequences = [stop] });
        var (streamed, _) = await StreamAsync(client, new ChatOptions { MaxOutputTokens = 40, StopSequences = [stop] });

        Assert.Equal(full[..full.IndexOf(stop, StringComparison.Ordinal)], response.Text);
        Assert.Equal(response.Text, streamed);
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
    }

    [Fact]
    public void Options_MapToGenerationOptions()
    {
        var greedy = LocalChatClient.ToGenerationOptions(null, promptTokens: 10, maxPositions: 100, defaultMaxOutputTokens: 512, formatStops: ["\nUser:"]);
        Assert.False(greedy.DoSample);
        Assert.Equal(90, greedy.MaxNewTokens);
        Assert.Equal(["\nUser:"], greedy.StopSequences);

        var sampled = LocalChatClient.ToGenerationOptions(
            new ChatOptions { Temperature = 0.7f, TopP = 0.9f, TopK = 40, Seed = 12, MaxOutputTokens = 8, StopSequences = ["END"] }, 10, 100, 512, []);
        Assert.True(sampled.DoSample);
        Assert.Equal(0.7f, sampled.Temperature);
        Assert.Equal(0.9f, sampled.TopP);
        Assert.Equal(40, sampled.TopK);
        Assert.Equal(12, sampled.Seed);
        Assert.Equal(8, sampled.MaxNewTokens);
        Assert.Equal(["END"], sampled.StopSequences);

        Assert.False(LocalChatClient.ToGenerationOptions(new ChatOptions { Temperature = 0f, Seed = 1 }, 10, 100, 512, []).DoSample);
        Assert.True(LocalChatClient.ToGenerationOptions(new ChatOptions { Seed = 1 }, 10, 100, 512, []).DoSample);
    }

    [Fact]
    public void Options_Invalid_ThrowNamingTheOption()
    {
        Assert.Contains("ChatOptions.TopP", Assert.Throws<ArgumentException>(() => LocalChatClient.ToGenerationOptions(new ChatOptions { TopP = 1.5f }, 1, 10, 5, [])).Message);
        Assert.Contains("ChatOptions.Temperature", Assert.Throws<ArgumentException>(() => LocalChatClient.ToGenerationOptions(new ChatOptions { Temperature = -1f }, 1, 10, 5, [])).Message);
        Assert.Contains("ChatOptions.Seed", Assert.Throws<ArgumentException>(() => LocalChatClient.ToGenerationOptions(new ChatOptions { Seed = 1L << 40 }, 1, 10, 5, [])).Message);
        Assert.Contains("context", Assert.Throws<ArgumentException>(() => LocalChatClient.ToGenerationOptions(null, promptTokens: 10, maxPositions: 10, 5, [])).Message);
        var json = Assert.Throws<NotSupportedException>(() => LocalChatClient.ToGenerationOptions(new ChatOptions { ResponseFormat = ChatResponseFormat.Json }, 1, 10, 5, []));
        Assert.Contains("ResponseFormat", json.Message);
    }

    [Fact]
    public async Task MaxOutputTokens_PastTheContext_FailsWithTheNumbers()
    {
        using var client = await LoadAsync();
        var e = await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync(Conversation, new ChatOptions { MaxOutputTokens = TinyChatModel.Positions }));
        var (_, tokenizer, prompt) = Reference();
        int promptTokens = tokenizer.Encode(prompt).Ids.Count;
        Assert.Contains("ChatOptions.MaxOutputTokens", e.Message);
        Assert.Contains($"context of {TinyChatModel.Positions}", e.Message);
        Assert.Contains($"at most {TinyChatModel.Positions - promptTokens}", e.Message);
    }

    [Fact]
    public async Task NoFormatterAndNoTemplate_FailsClearly()
    {
        var none = await Assert.ThrowsAsync<NotSupportedException>(() => LocalChatClient.FromPretrainedAsync(TinyChatModel.Folder, new LocalChatClientOptions { Source = Offline() }));
        Assert.Contains("no chat template", none.Message);
        Assert.Contains("PromptFormatter", none.Message);
    }

    [Fact]
    public async Task ChatTemplate_IsRenderedAndTheReplyIsGeneratedFromItsPrompt()
    {
        string folder = TinyChatModel.Write(Path.Combine(Path.GetTempPath(), $"sharpformer-ai-templated-{Guid.NewGuid():N}"), withTemplate: true);
        using var client = await LocalChatClient.FromPretrainedAsync(folder, new LocalChatClientOptions { Source = Offline() });
        var response = await client.GetResponseAsync(Conversation, new ChatOptions { MaxOutputTokens = 12 });

        // What jinja2 renders for this template and conversation (trim_blocks, lstrip_blocks, as transformers does).
        const string Expected = "<|endoftext|><|system|>\nYou answer briefly.\n<|user|>\nHello there\n<|assistant|>\nHi.\n<|user|>\nTell me a story\n<|assistant|>\n";
        var tokenizer = AutoTokenizer.FromPretrained(folder);
        var promptIds = tokenizer.Encode(Expected).Ids;
        Assert.Equal(256, promptIds[0]);
        Assert.Equal(promptIds.Count, response.Usage!.InputTokenCount);

        var generator = new TextGenerator(AutoModelForCausalLM.FromPretrained(folder));
        var reference = generator.Generate(promptIds, new GenerationOptions { MaxNewTokens = 12, StopTokenIds = [256] });
        Assert.Equal(reference.Tokens.Count, response.Usage.OutputTokenCount);
        Assert.Equal(generator.Generate(tokenizer, Expected, new GenerationOptions { MaxNewTokens = 12, StopSequences = ["<|endoftext|>"] }), response.Text);
    }

    [Fact]
    public async Task ChatTemplate_RaiseException_BecomesAnArgumentExceptionWithTheTemplatesMessage()
    {
        string folder = TinyChatModel.Write(Path.Combine(Path.GetTempPath(), $"sharpformer-ai-templated-{Guid.NewGuid():N}"), withTemplate: true);
        using var client = await LocalChatClient.FromPretrainedAsync(folder, new LocalChatClientOptions { Source = Offline() });
        var e = await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync([new ChatMessage(ChatRole.Tool, "42")]));
        Assert.Contains("This template has no place for tool messages.", e.Message);
    }

    [Fact]
    public async Task UnparsableTemplate_TokenizerStillLoads_ChatSaysWhereTheTemplateFails()
    {
        string folder = TinyChatModel.Write(Path.Combine(Path.GetTempPath(), $"sharpformer-ai-badtemplate-{Guid.NewGuid():N}"), withTemplate: false);
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """
            {"eos_token": "<|endoftext|>", "chat_template": "{% for m in messages %}\n{% include 'x' %}{% endfor %}"}
            """);
        var tokenizer = AutoTokenizer.FromPretrained(folder);
        Assert.Null(tokenizer.ChatTemplate);
        Assert.NotEmpty(tokenizer.Encode("hello").Ids);

        var e = await Assert.ThrowsAsync<NotSupportedException>(() => LocalChatClient.FromPretrainedAsync(folder, new LocalChatClientOptions { Source = Offline() }));
        Assert.Contains("Unsupported Jinja statement '{% include %}'", e.Message);
        Assert.Contains("line 2, column 4", e.Message);
        Assert.Contains("PromptFormatter", e.Message);
    }

    [Fact]
    public async Task ExplicitFormatter_WinsOverTheTemplate()
    {
        string folder = TinyChatModel.Write(Path.Combine(Path.GetTempPath(), $"sharpformer-ai-templated-{Guid.NewGuid():N}"), withTemplate: true);
        using var client = await LocalChatClient.FromPretrainedAsync(folder, new LocalChatClientOptions { PromptFormatter = TranscriptPromptFormatter.Instance, Source = Offline() });
        var response = await client.GetResponseAsync(Conversation, new ChatOptions { MaxOutputTokens = 1 });
        var tokenizer = AutoTokenizer.FromPretrained(folder);
        Assert.Equal(tokenizer.Encode(TranscriptPromptFormatter.Instance.Format(Conversation)).Ids.Count, response.Usage!.InputTokenCount);
    }

    [Fact]
    public async Task Metadata_AndServices()
    {
        using var client = await LoadAsync();
        var metadata = client.GetService<ChatClientMetadata>();
        Assert.Equal("sharpformer", metadata!.ProviderName);
        Assert.Equal(TinyChatModel.Folder, metadata.DefaultModelId);
        Assert.Same(client, client.GetService<LocalChatClient>());
    }

    [Fact]
    public void TranscriptFormatter_WritesTurnsAndEndsWithTheAssistant()
    {
        Assert.Equal("System: You answer briefly.\nUser: Hello there\nAssistant: Hi.\nUser: Tell me a story\nAssistant:", TranscriptPromptFormatter.Instance.Format(Conversation));
    }
}
