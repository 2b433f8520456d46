using System.Net;
using System.Text.Json;
using Sharpformer.IO.SafeTensors;

namespace Sharpformer.Server.Tests;

/// <summary>
/// A model folder whose tokenizer_config.json has a chat_template, loaded by ServedModel.LoadAsync: /v1/chat/completions
/// renders the template (the prompt's token count and the greedy reply match the expected rendering decoded alone), and
/// a template's raise_exception is a 400 carrying its message.
/// </summary>
public sealed class ChatTemplateServerTests : IAsyncLifetime
{
    // The rendering of Template for [user " Hello "] with add_generation_prompt, as jinja2 renders it (trim_blocks, lstrip_blocks).
    private const string ExpectedPrompt = "<|endoftext|><|user|>\nHello\n<|assistant|>\n";

    private const string Template = "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'tool' %}{{ raise_exception('This template has no place for tool messages.') }}{% endif %}"
        + "<|{{ message['role'] }}|>\n{{ message['content'] | trim }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}";

    private readonly Models.Gpt2.Gpt2LMHeadModel _reference = TestModels.Gpt2();
    private readonly Text.TextTokenizer _tokenizer = TestModels.Tokenizer();
    private SharpformerServer _server = null!;
    private string _folder = null!;

    public async Task InitializeAsync()
    {
        _folder = Path.Combine(Path.GetTempPath(), $"sharpformer-server-templated-{Guid.NewGuid():N}");
        Directory.CreateDirectory(_folder);
        File.WriteAllText(Path.Combine(_folder, "config.json"), """
            {"model_type": "gpt2", "vocab_size": 257, "n_positions": 256, "n_embd": 32, "n_layer": 2, "n_head": 4,
             "activation_function": "gelu_new", "layer_norm_epsilon": 1e-05, "bos_token_id": 256, "eos_token_id": 256}
            """);
        SafeTensorsWriter.Write(Path.Combine(_folder, "model.safetensors"), _reference.StateDict().Select(kv => (kv.Key, kv.Value)));
        string tokenizerFolder = Path.Combine(AppContext.BaseDirectory, "fixtures", "tiny-gpt2");
        File.Copy(Path.Combine(tokenizerFolder, "vocab.json"), Path.Combine(_folder, "vocab.json"));
        File.Copy(Path.Combine(tokenizerFolder, "merges.txt"), Path.Combine(_folder, "merges.txt"));
        File.WriteAllText(Path.Combine(_folder, "tokenizer_config.json"), JsonSerializer.Serialize(new Dictionary<string, string>
        {
            ["tokenizer_class"] = "GPT2Tokenizer",
            ["bos_token"] = "<|endoftext|>",
            ["eos_token"] = "<|endoftext|>",
            ["chat_template"] = Template,
        }));
        var served = await ServedModel.LoadAsync("templated", _folder);
        _server = await TestModels.StartAsync(new ServerOptions { ApiKeys = [TestModels.Key], MaxBatch = 4, MaxQueue = 16 }, served);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task ChatCompletions_RenderTheModelsTemplate()
    {
        using var http = TestModels.Http(_server);
        using var response = await http.PostAsync("/v1/chat/completions", TestModels.Body(new
        {
            model = "templated",
            messages = new[] { new { role = "user", content = " Hello " } },
            max_tokens = 10,
            temperature = 0,
        }));
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        using var json = JsonDocument.Parse(body);

        var promptIds = _tokenizer.Encode(ExpectedPrompt, null, new Text.EncodeOptions { AddSpecialTokens = false }).Ids;
        Assert.Equal(256, promptIds[0]);
        Assert.Equal(promptIds.Count, json.RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        string expected = _tokenizer.Decode(TestModels.GreedyAlone(_reference, [.. promptIds], 10, 256));
        Assert.Equal(expected, json.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task ChatCompletions_TemplateRaiseException_Is400WithItsMessage()
    {
        using var http = TestModels.Http(_server);
        using var response = await http.PostAsync("/v1/chat/completions", TestModels.Body(new
        {
            model = "templated",
            messages = new[] { new { role = "tool", content = "42" } },
            max_tokens = 4,
        }));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var error = json.RootElement.GetProperty("error");
        Assert.Contains("This template has no place for tool messages.", error.GetProperty("message").GetString());
        Assert.Equal("messages", error.GetProperty("param").GetString());
        Assert.Equal("chat_template_error", error.GetProperty("code").GetString());
    }
}
