using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Sharpformer.IO.Config;
using Sharpformer.Models;
using Sharpformer.Models.Gpt2;
using Sharpformer.Text;

namespace Sharpformer.Server.Tests;

/// <summary>Tiny models and a way to start a server on 127.0.0.1 (a real Kestrel socket, port picked by the OS).</summary>
internal static class TestModels
{
    public const string Key = "test-key";

    private static string Fixtures => Path.Combine(AppContext.BaseDirectory, "fixtures");

    public static string BertFolder => Path.Combine(Fixtures, "train_bert");

    /// <summary>A random byte-level GPT-2 (vocab 257, context 256) made with FromConfig: the same seed, the same weights.</summary>
    public static Gpt2LMHeadModel Gpt2(int seed = 7)
    {
        var config = (Gpt2Config)ModelConfig.Parse("""
            {"model_type": "gpt2", "vocab_size": 257, "n_positions": 256, "n_embd": 32, "n_layer": 2, "n_head": 4,
             "activation_function": "gelu_new", "layer_norm_epsilon": 1e-05, "bos_token_id": 256, "eos_token_id": 256}
            """);
        var model = Gpt2LMHeadModel.FromConfig(config, seed);
        model.Eval();
        return model;
    }

    public static TextTokenizer Tokenizer() => AutoTokenizer.FromPretrained(Path.Combine(Fixtures, "tiny-gpt2"));

    /// <summary>The test's chat prompt formatter: a plain C# function (not a Jinja template), "role: content" lines then "assistant:".</summary>
    public static string ChatPrompt(IReadOnlyList<ChatTurn> turns) =>
        string.Concat(turns.Select(t => $"{t.Role}: {t.Content}\n")) + "assistant:";

    public static async Task<SharpformerServer> StartAsync(ServerOptions options, params ServedModel[] models)
    {
        var server = SharpformerServer.Create(options with { Port = 0 }, models);
        await server.StartAsync();
        return server;
    }

    public static HttpClient Http(SharpformerServer server, string? key = Key)
    {
        var http = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromSeconds(120) };
        if (key is not null)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        return http;
    }

    public static StringContent Body(object value) => new(JsonSerializer.Serialize(value), Encoding.UTF8, "application/json");

    /// <summary>Greedy tokens of one prompt decoded alone (lockstep cache of one sequence): the sequential reference.</summary>
    public static List<int> GreedyAlone(ICausalLM model, IReadOnlyList<int> prompt, int steps, int stopToken)
    {
        var cache = model.CreateCache(1, prompt.Count + steps);
        var logits = new float[model.VocabSize];
        var result = new List<int>();
        model.ForwardLast([.. prompt], default, cache, logits);
        for (int s = 0; s < steps; s++)
        {
            int best = 0;
            for (int v = 1; v < logits.Length; v++)
            {
                best = logits[v] > logits[best] ? v : best;
            }

            result.Add(best);
            if (best == stopToken || s == steps - 1)
            {
                break;
            }

            model.ForwardLast([best], default, cache, logits);
        }

        return result;
    }

    /// <summary>Reads an SSE body: the JSON payload of each <c>data:</c> line, and whether it ended with <c>data: [DONE]</c>.</summary>
    public static async Task<(List<JsonElement> Chunks, bool Done)> ReadEvents(HttpResponseMessage response, CancellationToken ct = default)
    {
        var chunks = new List<JsonElement>();
        bool done = false;
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            if (line.Length == 0)
            {
                continue;
            }

            Assert.StartsWith("data: ", line, StringComparison.Ordinal);
            Assert.False(done, "an event after [DONE]");
            string payload = line["data: ".Length..];
            if (payload == "[DONE]")
            {
                done = true;
                continue;
            }

            chunks.Add(JsonDocument.Parse(payload).RootElement.Clone());
        }

        return (chunks, done);
    }
}

/// <summary>A model that takes at least <paramref name="delay"/> per forward, so a test can act while a sequence is still decoding.</summary>
internal sealed class SlowModel(ISlotCausalLM inner, TimeSpan delay) : ISlotCausalLM
{
    public int VocabSize => inner.VocabSize;

    public int MaxPositions => inner.MaxPositions;

    public KvCache CreateCache(int batch, int capacity) => inner.CreateCache(batch, capacity);

    public void ForwardLast(ReadOnlySpan<int> ids, ReadOnlySpan<float> attentionMask, KvCache cache, Span<float> lastLogits)
    {
        Thread.Sleep(delay);
        inner.ForwardLast(ids, attentionMask, cache, lastLogits);
    }

    public void ForwardSlots(ReadOnlySpan<int> slots, ReadOnlySpan<int> ids, KvCache cache, Span<float> lastLogits)
    {
        Thread.Sleep(delay);
        inner.ForwardSlots(slots, ids, cache, lastLogits);
    }
}
